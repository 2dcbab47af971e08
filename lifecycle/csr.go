package lifecycle

import (
	"bytes"
	"context"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"encoding/pem"
	"errors"

	"github.com/credlife/clm/lifecycle/driver"
)

// MaxCSRLen is the limit of a PKCS#10 request, in bytes (spec §8b).
const MaxCSRLen = 16384

// ParseCSR reads a PKCS#10 certificate request in PEM (CERTIFICATE
// REQUEST), DER, or base64 of the DER, and checks its signature.
func ParseCSR(b []byte) (*x509.CertificateRequest, error) {
	der := b
	switch t := bytes.TrimSpace(b); {
	case bytes.HasPrefix(t, []byte("-----BEGIN")):
		block, rest := pem.Decode(t)
		if block == nil || (block.Type != "CERTIFICATE REQUEST" && block.Type != "NEW CERTIFICATE REQUEST") || len(bytes.TrimSpace(rest)) > 0 {
			return nil, errors.New("not one PEM CERTIFICATE REQUEST")
		}
		der = block.Bytes
	case len(t) > 0 && t[0] != 0x30: // not a DER SEQUENCE: base64
		d, err := base64.StdEncoding.DecodeString(string(t))
		if err != nil {
			return nil, errors.New("neither PEM, DER nor base64 of DER")
		}
		der = d
	}
	csr, err := x509.ParseCertificateRequest(der)
	if err != nil {
		return nil, errors.New("not a PKCS#10 certificate request")
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, errors.New("its signature does not verify")
	}
	return csr, nil
}

// csr checks a CSR field and returns it parsed, or nil when it is absent
// (and required is false) or bad.
func (c *check) csr(field string, b []byte, required bool) *x509.CertificateRequest {
	if required {
		c.require(field, len(b) > 0)
	}
	if len(b) == 0 {
		return nil
	}
	c.limit(field, len(b) <= MaxCSRLen, "at most 16384 bytes")
	if len(b) > MaxCSRLen {
		return nil
	}
	csr, err := ParseCSR(b)
	if err != nil {
		c.format(field, false, err.Error())
		return nil
	}
	if _, err := CertKeyTypeOf(csr.PublicKey); err != nil {
		c.format(field, false, "the key must be EC P-256 or P-384, RSA 2048, 3072 or 4096, or Ed25519")
		return nil
	}
	if len(csr.EmailAddresses) > 0 || len(csr.URIs) > 0 {
		c.format(field, false, "only DNS and IP subjectAltNames may be asked for")
		return nil
	}
	return csr
}

// subjectOfName reads an X.501 name (a CSR's subject) as a Subject: only
// the attributes a subject may have, one value per RDN, and the same rules
// as ParseSubject.
func subjectOfName(raw []byte) (*Subject, error) {
	var rdns pkix.RDNSequence
	if rest, err := asn1.Unmarshal(raw, &rdns); err != nil || len(rest) > 0 {
		return nil, errors.New("the subject does not parse")
	}
	sub := &Subject{}
	for _, rdn := range rdns {
		if len(rdn) != 1 {
			return nil, errors.New("a multi-valued RDN in the subject")
		}
		name := ""
		for n, oid := range subjectOIDs {
			if oid.Equal(rdn[0].Type) {
				name = n
			}
		}
		v, ok := rdn[0].Value.(string)
		if name == "" || !ok {
			return nil, errors.New("subject attributes are C, ST, L, O, OU and CN, as text")
		}
		sub.Attributes = append(sub.Attributes, SubjectAttribute{name, v})
	}
	// The protocol's rules: each attribute once, CN required, bounds.
	return ParseSubject(sub.String())
}

// IssueCertificateFromCSR implements Manager (certmode "csr", spec §8b).
// The checks are IssueCertificate's, with the CSR's: 1102 without one,
// 1104 over MaxCSRLen, 1103 if it does not parse, its signature does not
// verify, its key is of a type not issued, or its subject (when the request
// gives none) breaks the subject rules; then the CA's Policy.
func (e *Engine) IssueCertificateFromCSR(ctx context.Context, req IssueFromCSRRequest) (res *CertificateResult, err error) {
	const op = "IssueCertificateFromCSR"
	defer func() { e.auditCertificate(ctx, op, req.PSK.KeyID, req.Device.ID, res, err) }()
	c := newCheck(op)
	c.psk(req.PSK)
	d := c.device(req.Device, deviceRules{mayRegister: true}, e.requireDevKey)
	csr := c.csr("csr", req.CSR, true)
	f := c.certFormat("clientcerttype", req.Format, false)
	caf := c.certFormat("cacerttype", req.CAFormat, false)
	sub := c.subject("clientsubject", req.Subject)
	if csr != nil && sub == nil {
		var err error
		sub, err = subjectOfName(csr.RawSubject)
		c.format("csr", err == nil, "the CSR's subject must be /C=../ST=../L=../O=../OU=../CN=.. with CN, or the request must give one")
	}
	c.text("keyfilepath", req.KeyPath, MaxPathLen)
	c.text("clientfilepath", req.Path, MaxPathLen)
	c.text("cafilepath", req.CAPath, MaxPathLen)
	caller, err := e.admit(ctx, op, c, req.PSK)
	if err != nil {
		return nil, err
	}
	if err := e.precheckDevice(ctx, op, caller.Tenant, d); err != nil {
		return nil, err
	}
	ca := e.cas[e.caName(req.CA)]
	if ca == nil {
		return nil, errf(op, CodeCANameInvalid, "catype", nil)
	}
	kt, _ := CertKeyTypeOf(csr.PublicKey) // checked with the CSR
	n := names{subject: sub, dns: csr.DNSNames, ips: addrsOf(csr.IPAddresses)}
	spec, err := e.policyFor(ca.Name(), caller.Tenant).apply(caller.Tenant, kt, n, e.certValidity)
	if err != nil {
		return nil, policyFail(op, err, "csr", "csr")
	}
	leaf, err := e.signLeaf(ctx, op, ca, caller.Tenant, csr.PublicKey, kt, spec)
	if err != nil {
		return nil, err
	}
	dev, replayed, err := e.recordLeaf(ctx, op, caller.Tenant, d, ca, leaf, req.Path, req.CAPath, func(r *driver.CredentialRecord) bool {
		if len(r.Secret) > 0 {
			return false // a certificate whose key the server made
		}
		old, err := x509.ParseCertificate(r.Certificate)
		return err == nil && bytes.Equal(old.RawSubjectPublicKeyInfo, csr.RawSubjectPublicKeyInfo)
	})
	if err != nil {
		return nil, err
	}
	rec := leaf.record
	if replayed != nil {
		rec = replayed
	}
	enc, _, err := e.encodeLeaf(op, rec, nil, nil, f, "")
	if err != nil {
		return nil, err
	}
	return &CertificateResult{Device: dev, CA: e.encodedCA(ca, caf), Certificate: enc}, nil
}
