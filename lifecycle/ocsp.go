package lifecycle

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/credlife/clm/lifecycle/driver"
)

// OCSPResponse is an OCSP response (RFC 6960) in DER. A response about a
// certificate has ThisUpdate and NextUpdate; an error response
// (malformedRequest, unauthorized) has neither.
type OCSPResponse struct {
	DER        []byte
	ThisUpdate time.Time
	NextUpdate time.Time
}

// ocspCacheMax bounds the responses an engine keeps per CA.
const ocspCacheMax = 100_000

// ocspCache keeps signed OCSP responses by what they say: the request's
// hash algorithm and serial, and the certificate's state as read from the
// store. A response is served from it while the state read for a request is
// the same and half its validity has not passed: a revocation or
// supersession by any engine on the store changes the state read, and so the
// answer, at once.
type ocspCache struct {
	mu sync.Mutex
	m  map[string]*OCSPResponse
}

func newOCSPCache() *ocspCache { return &ocspCache{m: map[string]*OCSPResponse{}} }

func (c *ocspCache) get(key string, now time.Time, validity time.Duration) *OCSPResponse {
	c.mu.Lock()
	defer c.mu.Unlock()
	r := c.m[key]
	if r == nil || now.Before(r.ThisUpdate) || !now.Before(r.ThisUpdate.Add(validity/2)) {
		return nil
	}
	return r
}

func (c *ocspCache) put(key string, r *OCSPResponse) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= ocspCacheMax {
		// Forget half, arbitrarily: a flood of distinct serials must not
		// grow memory without bound.
		n := 0
		for k := range c.m {
			delete(c.m, k)
			if n++; n >= ocspCacheMax/2 {
				break
			}
		}
	}
	c.m[key] = r
}

// OCSP implements Manager: it answers an OCSP request (DER) about a
// certificate of the CA. A certificate that is valid is good (also after
// its expiry); a revoked one is revoked with its time and reason, a
// superseded one revoked with reason superseded; a serial the CA did not
// issue is unknown. A request that does not parse gets a malformedRequest
// response, and one about another issuer an unauthorized response, both
// with a nil error. Each call reads the certificate's state from the store
// (one query by serial), so that a change made by any engine is answered
// at once; the signed response is kept and served again, unsigned anew,
// while that state is unchanged and half of OCSPValidity has not passed.
// Signing takes a slot of ExpensiveConcurrency. An unknown CA answers
// CodeCANameInvalid.
func (e *Engine) OCSP(ctx context.Context, caName string, request []byte) (*OCSPResponse, error) {
	const op = "OCSP"
	ca := e.cas[caName]
	if ca == nil {
		return nil, errf(op, CodeCANameInvalid, "catype", nil)
	}
	req, err := ocsp.ParseRequest(request)
	if err != nil || req.SerialNumber == nil || requestCount(request) != 1 {
		// One certificate per request, as RFC 5019 §2.1.1 (the profile
		// of responders with cached responses) has it.
		return &OCSPResponse{DER: ocsp.MalformedRequestErrorResponse}, nil
	}
	if !issuedBy(req, ca.Certificate()) {
		return &OCSPResponse{DER: ocsp.UnauthorizedErrorResponse}, nil
	}
	tmpl := &ocsp.Response{Status: ocsp.Unknown, SerialNumber: req.SerialNumber, IssuerHash: req.HashAlgorithm}
	key := strconv.Itoa(int(req.HashAlgorithm)) + "/" + FormatSerial(req.SerialNumber)
	if req.SerialNumber.Sign() > 0 {
		rec, err := e.store.GetCredentialBySerial(ctx, caName, FormatSerial(req.SerialNumber))
		switch {
		case errors.Is(err, driver.ErrNotFound):
		case err != nil:
			return nil, e.storeErr(op, entityNone, err)
		case rec.Kind != driver.KindCertificate:
		case rec.State == driver.StateValid:
			tmpl.Status = ocsp.Good
		default:
			tmpl.Status, tmpl.RevokedAt, tmpl.RevocationReason = ocsp.Revoked, rec.StateChangedAt, rec.Reason
		}
	}
	key += fmt.Sprintf("/%d/%d/%d", tmpl.Status, tmpl.RevokedAt.UnixNano(), tmpl.RevocationReason)
	now := e.now().UTC()
	c := e.ocsps[caName]
	if r := c.get(key, now, e.ocspValidity); r != nil {
		return r, nil
	}
	release, err := e.expensive(ctx, op, true)
	if err != nil {
		return nil, err
	}
	defer release()
	tmpl.ThisUpdate = now.Truncate(time.Second)
	tmpl.NextUpdate = tmpl.ThisUpdate.Add(e.ocspValidity)
	der, err := ca.SignOCSP(ctx, tmpl)
	if err != nil {
		return nil, errf(op, CodeCryptoFailed, "", err)
	}
	r := &OCSPResponse{DER: der, ThisUpdate: tmpl.ThisUpdate, NextUpdate: tmpl.NextUpdate}
	c.put(key, r)
	return r, nil
}

// requestCount is the number of certificates an OCSP request asks about
// (RFC 6960 §4.1.1), or 0 if it does not parse.
func requestCount(der []byte) int {
	var req struct {
		TBSRequest struct {
			Version       int              `asn1:"explicit,tag:0,default:0,optional"`
			RequestorName asn1.RawValue    `asn1:"explicit,tag:1,optional"`
			RequestList   []asn1.RawValue  // Request
			Extensions    []pkix.Extension `asn1:"explicit,tag:2,optional"`
		}
		Signature asn1.RawValue `asn1:"explicit,tag:0,optional"`
	}
	if rest, err := asn1.Unmarshal(der, &req); err != nil || len(rest) > 0 {
		return 0
	}
	return len(req.TBSRequest.RequestList)
}

// issuedBy reports whether an OCSP request names issuer: the hashes of
// its name and public key match.
func issuedBy(req *ocsp.Request, issuer *x509.Certificate) bool {
	switch req.HashAlgorithm {
	case crypto.SHA1, crypto.SHA256, crypto.SHA384, crypto.SHA512:
	default:
		return false
	}
	var spki struct {
		Algorithm asn1.RawValue
		PublicKey asn1.BitString
	}
	if _, err := asn1.Unmarshal(issuer.RawSubjectPublicKeyInfo, &spki); err != nil {
		return false
	}
	h := req.HashAlgorithm.New()
	h.Write(issuer.RawSubject)
	name := h.Sum(nil)
	h.Reset()
	h.Write(spki.PublicKey.RightAlign())
	return bytes.Equal(name, req.IssuerNameHash) && bytes.Equal(h.Sum(nil), req.IssuerKeyHash)
}

// CAChain implements Manager: the CA's certificate chain, its own
// certificate first, up to the root; "" names the default CA.
func (e *Engine) CAChain(ctx context.Context, caName string) ([]*x509.Certificate, error) {
	ca := e.cas[e.caName(caName)]
	if ca == nil {
		return nil, errf("CAChain", CodeCANameInvalid, "catype", nil)
	}
	return append([]*x509.Certificate(nil), ca.Chain()...), nil
}
