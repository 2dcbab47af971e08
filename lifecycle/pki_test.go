package lifecycle_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/ocsp"
	"software.sslmate.com/src/go-pkcs12"

	"github.com/credlife/clm/ca"
	"github.com/credlife/clm/lifecycle"
	"github.com/credlife/clm/lifecycle/driver"
)

var bg = context.Background()

// newCSR makes a key and a PKCS#10 request for it.
func newCSR(t testing.TB, key crypto.Signer, tmpl *x509.CertificateRequest) []byte {
	t.Helper()
	if key == nil {
		var err error
		if key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
			t.Fatal(err)
		}
	}
	if tmpl == nil {
		tmpl = &x509.CertificateRequest{Subject: pkix.Name{CommonName: "dev-1.example.com", Organization: []string{"Acme"}}}
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, tmpl, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})
}

func (f *certFixture) fromCSR(req lifecycle.IssueFromCSRRequest) (*lifecycle.CertificateResult, error) {
	req.PSK, req.Device = f.creds, f.dev
	return f.m.IssueCertificateFromCSR(bg, req)
}

func parseCert(t testing.TB, data []byte) *x509.Certificate {
	t.Helper()
	if b, _ := pem.Decode(data); b != nil {
		data = b.Bytes
	}
	c, err := x509.ParseCertificate(data)
	require.NoError(t, err)
	return c
}

// fieldOf is the Field of a *lifecycle.Error.
func fieldOf(err error) string {
	var e *lifecycle.Error
	if errors.As(err, &e) {
		return e.Field
	}
	return ""
}

// certificates counts the store's certificates.
func (f *certFixture) certificates() int {
	page, err := f.store.ListCredentials(bg, driver.CredentialQuery{Kind: driver.KindCertificate, Limit: 1000})
	require.NoError(f.t, err)
	return len(page)
}

func TestCSRIssuanceLifecycle(t *testing.T) {
	f := newCertFixture(t, nil)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	res, err := f.fromCSR(lifecycle.IssueFromCSRRequest{CSR: newCSR(t, key, nil), Path: "/etc/dev.pem"})
	require.NoError(t, err)
	assert.Empty(t, res.PrivateKey, "a CSR's certificate comes without a private key")
	require.NotNil(t, res.CA)
	cert := parseCert(t, res.Certificate.Data)
	assert.True(t, cert.PublicKey.(*ecdsa.PublicKey).Equal(key.Public()), "the certificate's key is the CSR's")
	assert.Equal(t, "dev-1.example.com", cert.Subject.CommonName)
	assert.Equal(t, []string{"Acme"}, cert.Subject.Organization)
	assert.Equal(t, []string{"dev-1.example.com"}, cert.DNSNames, "the CN is copied into the SAN as for server keys")
	require.NoError(t, cert.CheckSignatureFrom(f.ca.Certificate()))

	ref := lifecycle.CertificateRef{KeyNumber: res.Certificate.KeyNumber}
	got, err := f.m.GetCertificate(bg, lifecycle.GetCertificateRequest{PSK: f.creds, Device: f.dev, Ref: ref, Format: lifecycle.FormatDER})
	require.NoError(t, err)
	assert.Equal(t, cert.Raw, got.Certificate.Data)
	assert.Empty(t, got.PrivateKey)
	_, err = f.m.GetCertificate(bg, lifecycle.GetCertificateRequest{PSK: f.creds, Device: f.dev, Ref: ref, Format: lifecycle.FormatP12, Passphrase: "pw"})
	require.ErrorIs(t, err, lifecycle.CodeMalformed, "p12 of a CSR's certificate")
	assert.Equal(t, "Format", fieldOf(err))

	// Renewal without a CSR: 1102, and nothing changes.
	_, err = f.m.RenewCertificate(bg, lifecycle.RenewCertificateRequest{PSK: f.creds, Device: f.dev, Ref: ref, Path: "/etc/dev.pem"})
	require.ErrorIs(t, err, lifecycle.CodeMissing)
	assert.Equal(t, "CSR", fieldOf(err))
	_, err = f.m.RenewCertificate(bg, lifecycle.RenewCertificateRequest{PSK: f.creds, Device: f.dev, Ref: ref, Path: "/etc/dev.pem", CSR: newCSR(t, nil, nil), Format: lifecycle.FormatP12, Passphrase: "pw"})
	require.ErrorIs(t, err, lifecycle.CodeMalformed, "p12 with a CSR")
	assert.Equal(t, 1, f.certificates())

	// Renewal with a new CSR: the new key, the old subject, the old superseded.
	key2, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	require.NoError(t, err)
	other := newCSR(t, key2, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "ignored"}})
	ren, err := f.m.RenewCertificate(bg, lifecycle.RenewCertificateRequest{PSK: f.creds, Device: f.dev, Ref: ref, Path: "/etc/dev.pem", CSR: other})
	require.NoError(t, err)
	assert.Empty(t, ren.PrivateKey)
	c2 := parseCert(t, ren.Certificate.Data)
	assert.True(t, c2.PublicKey.(*ecdsa.PublicKey).Equal(key2.Public()), "the successor's key is the new CSR's")
	assert.Equal(t, cert.RawSubject, c2.RawSubject, "a renewal keeps the subject")
	_, err = f.m.GetCertificate(bg, lifecycle.GetCertificateRequest{PSK: f.creds, Device: f.dev, Ref: ref})
	require.ErrorIs(t, err, lifecycle.CodeCertRevoked, "the old one is superseded")

	// Revoked: on the CRL and in OCSP.
	ref2 := lifecycle.CertificateRef{KeyNumber: ren.Certificate.KeyNumber}
	_, err = f.m.RevokeCertificate(bg, lifecycle.RevokeCertificateRequest{PSK: f.creds, Device: f.dev, Ref: ref2, Reason: ocsp.KeyCompromise})
	require.NoError(t, err)
	crl, err := f.m.CRL(bg, "ca1")
	require.NoError(t, err)
	rl, err := x509.ParseRevocationList(crl.DER)
	require.NoError(t, err)
	listed := map[string]int{}
	for _, e := range rl.RevokedCertificateEntries {
		listed[lifecycle.FormatSerial(e.SerialNumber)] = e.ReasonCode
	}
	assert.Equal(t, map[string]int{res.Certificate.Serial: ocsp.Superseded, ren.Certificate.Serial: ocsp.KeyCompromise}, listed)
	r := f.ocsp(t, c2)
	assert.Equal(t, ocsp.Revoked, r.Status)
	assert.Equal(t, ocsp.KeyCompromise, r.RevocationReason)
}

// ocsp asks the engine about a certificate of ca1 and checks the answer's
// signature.
func (f *certFixture) ocsp(t testing.TB, cert *x509.Certificate) *ocsp.Response {
	t.Helper()
	req, err := ocsp.CreateRequest(cert, f.ca.Certificate(), &ocsp.RequestOptions{Hash: crypto.SHA256})
	require.NoError(t, err)
	res, err := f.m.OCSP(bg, "ca1", req)
	require.NoError(t, err)
	r, err := ocsp.ParseResponseForCert(res.DER, cert, f.ca.Certificate())
	require.NoError(t, err, "the OCSP response verifies against the CA")
	assert.Equal(t, 0, r.SerialNumber.Cmp(cert.SerialNumber))
	assert.True(t, r.NextUpdate.After(r.ThisUpdate))
	return r
}

func TestCSRRefused(t *testing.T) {
	f := newCertFixture(t, nil)
	good := newCSR(t, nil, nil)
	block, _ := pem.Decode(good)
	tampered := append([]byte(nil), block.Bytes...)
	tampered[len(tampered)-3] ^= 0xFF // in the signature
	weak, err := rsa.GenerateKey(rand.Reader, 1024)
	require.NoError(t, err)
	cases := []struct {
		name  string
		req   lifecycle.IssueFromCSRRequest
		code  lifecycle.Code
		field string
	}{
		{"none", lifecycle.IssueFromCSRRequest{}, lifecycle.CodeMissing, "CSR"},
		{"bad signature", lifecycle.IssueFromCSRRequest{CSR: tampered}, lifecycle.CodeMalformed, "CSR"},
		{"not a CSR", lifecycle.IssueFromCSRRequest{CSR: []byte("-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n")}, lifecycle.CodeMalformed, "CSR"},
		{"too long", lifecycle.IssueFromCSRRequest{CSR: []byte(strings.Repeat("A", lifecycle.MaxCSRLen+1))}, lifecycle.CodeOutOfRange, "CSR"},
		{"RSA 1024", lifecycle.IssueFromCSRRequest{CSR: newCSR(t, weak, nil)}, lifecycle.CodeMalformed, "CSR"},
		{"wildcard CN", lifecycle.IssueFromCSRRequest{CSR: newCSR(t, nil, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "*.example.com"}})}, lifecycle.CodeMalformed, "CSR"},
		{"wildcard SAN", lifecycle.IssueFromCSRRequest{CSR: newCSR(t, nil, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "d"}, DNSNames: []string{"*.example.com"}})}, lifecycle.CodeMalformed, "CSR"},
		{"email SAN", lifecycle.IssueFromCSRRequest{CSR: newCSR(t, nil, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "d"}, EmailAddresses: []string{"a@example.com"}})}, lifecycle.CodeMalformed, "CSR"},
		{"no CN", lifecycle.IssueFromCSRRequest{CSR: newCSR(t, nil, &x509.CertificateRequest{Subject: pkix.Name{Organization: []string{"Acme"}}})}, lifecycle.CodeMalformed, "CSR"},
		{"other attribute", lifecycle.IssueFromCSRRequest{CSR: newCSR(t, nil, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "d", SerialNumber: "42"}})}, lifecycle.CodeMalformed, "CSR"},
		{"p12", lifecycle.IssueFromCSRRequest{CSR: good, Format: lifecycle.FormatP12}, lifecycle.CodeMalformed, "Format"},
		{"bad subject", lifecycle.IssueFromCSRRequest{CSR: good, Subject: "CN=x"}, lifecycle.CodeMalformed, "Subject"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := f.fromCSR(tc.req)
			require.ErrorIs(t, err, tc.code)
			assert.Equal(t, tc.field, fieldOf(err))
		})
	}
	assert.Equal(t, 0, f.certificates(), "a refused CSR issues nothing")

	// DER, base64 of DER and a subject that replaces the CSR's.
	for _, form := range [][]byte{block.Bytes, []byte(base64.StdEncoding.EncodeToString(block.Bytes))} {
		res, err := f.fromCSR(lifecycle.IssueFromCSRRequest{CSR: form, Subject: "/O=Other/CN=10.0.0.7"})
		require.NoError(t, err)
		c := parseCert(t, res.Certificate.Data)
		assert.Equal(t, "10.0.0.7", c.Subject.CommonName)
		assert.Equal(t, []string{"Other"}, c.Subject.Organization)
		require.Len(t, c.IPAddresses, 1)
		assert.Equal(t, "10.0.0.7", c.IPAddresses[0].String())
	}
}

func TestPolicy(t *testing.T) {
	policies := map[lifecycle.PolicyScope]*lifecycle.Policy{
		{CA: "ca1"}: {
			KeyTypes:        []lifecycle.CertKeyType{lifecycle.KeyECP256, lifecycle.KeyEd25519},
			MaxValidity:     48 * time.Hour,
			DNSSuffixes:     []string{"devices.example.com"},
			DenyIPAddresses: true,
			RequiredSubject: []string{"OU"},
			FixedSubject:    map[string]string{"O": lifecycle.PolicyTenant, "C": "JP"},
			ExtKeyUsage:     []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		},
		// The tenant's own policy is more specific and wins entirely.
		{CA: "ca1", Tenant: "wild"}: {AllowWildcards: true, OmitCNFromSAN: true},
	}
	f := newCertFixture(t, &lifecycle.Options{Policies: policies})
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	refusals := []struct {
		name    string
		subject string
		csr     []byte
		keyType string
		rule    string
	}{
		{"key type", "/OU=x/CN=a.devices.example.com", nil, "RSA-2048", "KeyTypes"},
		{"CSR key type", "", newCSR(t, rsaKey, &x509.CertificateRequest{Subject: pkix.Name{OrganizationalUnit: []string{"x"}, CommonName: "a.devices.example.com"}}), "", "KeyTypes"},
		{"DNS suffix", "/OU=x/CN=a.example.org", nil, "", "DNSSuffixes"},
		{"CSR SAN suffix", "", newCSR(t, nil, &x509.CertificateRequest{Subject: pkix.Name{OrganizationalUnit: []string{"x"}, CommonName: "d.devices.example.com"}, DNSNames: []string{"evil.example.com"}}), "", "DNSSuffixes"},
		{"IP", "/OU=x/CN=192.0.2.1", nil, "", "DenyIPAddresses"},
		{"CSR IP SAN", "", newCSR(t, nil, &x509.CertificateRequest{Subject: pkix.Name{OrganizationalUnit: []string{"x"}, CommonName: "d.devices.example.com"}, IPAddresses: []net.IP{net.ParseIP("192.0.2.1")}}), "", "DenyIPAddresses"},
		{"wildcard", "/OU=x/CN=*.devices.example.com", nil, "", "AllowWildcards"},
		{"required OU", "/CN=a.devices.example.com", nil, "", "RequiredSubject"},
	}
	for _, tc := range refusals {
		t.Run(tc.name, func(t *testing.T) {
			var err error
			if tc.csr != nil {
				_, err = f.fromCSR(lifecycle.IssueFromCSRRequest{CSR: tc.csr})
			} else {
				_, err = f.m.IssueCertificate(bg, lifecycle.IssueCertificateRequest{PSK: f.creds, Device: f.dev, Subject: tc.subject, KeyType: tc.keyType})
			}
			require.ErrorIs(t, err, lifecycle.CodeMalformed)
			var pe *lifecycle.PolicyError
			require.ErrorAs(t, err, &pe)
			assert.Equal(t, tc.rule, pe.Rule)
			assert.Contains(t, err.Error(), "policy "+tc.rule, "the error names the rule")
		})
	}
	assert.Equal(t, 0, f.certificates())

	res := f.issue(lifecycle.IssueCertificateRequest{Subject: "/O=Asked/OU=x/CN=a.devices.example.com"})
	c := parseCert(t, res.Certificate.Data)
	assert.Equal(t, []string{"t"}, c.Subject.Organization, "O is fixed to the tenant")
	assert.Equal(t, []string{"JP"}, c.Subject.Country)
	assert.Equal(t, []string{"a.devices.example.com"}, c.DNSNames)
	assert.Equal(t, []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, c.ExtKeyUsage)
	assert.Equal(t, 48*time.Hour+time.Minute, c.NotAfter.Sub(c.NotBefore), "validity capped at MaxValidity")

	// Another tenant's policy: wildcards allowed, the CN kept out of the SAN.
	p, err := f.m.IssuePSK(bg, lifecycle.IssuePSKRequest{Tenant: "wild", Alias: "w"})
	require.NoError(t, err)
	w, err := f.m.IssueCertificate(bg, lifecycle.IssueCertificateRequest{PSK: lifecycle.PSKCredentials{KeyID: p.KeyID, Password: p.Password}, Subject: "/CN=*.anything.example", KeyType: "RSA-2048"})
	require.NoError(t, err)
	wc := parseCert(t, w.Certificate.Data)
	assert.Equal(t, "*.anything.example", wc.Subject.CommonName)
	assert.Empty(t, wc.DNSNames, "OmitCNFromSAN")

	_, err = lifecycle.New(f.store, &lifecycle.Options{Keys: keys(t, 1, 1), Policies: map[lifecycle.PolicyScope]*lifecycle.Policy{{}: {KeyTypes: []lifecycle.CertKeyType{"RSA-1024"}}}})
	require.ErrorIs(t, err, lifecycle.CodeConfigInvalid, "New refuses a policy it cannot apply")
}

// countingOCSP counts OCSP signatures.
type countingOCSP struct {
	lifecycle.CA
	n atomic.Int64
}

func (c *countingOCSP) SignOCSP(ctx context.Context, t *ocsp.Response) ([]byte, error) {
	c.n.Add(1)
	return c.CA.SignOCSP(ctx, t)
}

func TestOCSPResponder(t *testing.T) {
	s := openStore(t)
	k := keys(t, 1, 1)
	c, err := ca.Open(bg, s, k, nil)
	require.NoError(t, err)
	counted := &countingOCSP{CA: c}
	m1 := newEngine(t, s, &lifecycle.Options{Keys: k, CAs: []lifecycle.CA{counted}})
	m2 := newEngine(t, s, &lifecycle.Options{Keys: k, CAs: []lifecycle.CA{c}}) // another process on the store
	p, err := m1.IssuePSK(bg, lifecycle.IssuePSKRequest{Tenant: "t", Alias: "a"})
	require.NoError(t, err)
	creds := lifecycle.PSKCredentials{KeyID: p.KeyID, Password: p.Password}
	res, err := m1.IssueCertificate(bg, lifecycle.IssueCertificateRequest{PSK: creds, Subject: "/CN=d1"})
	require.NoError(t, err)
	cert := parseCert(t, res.Certificate.Data)

	ask := func(m *lifecycle.Engine, cert *x509.Certificate) *ocsp.Response {
		t.Helper()
		req, err := ocsp.CreateRequest(cert, c.Certificate(), nil)
		require.NoError(t, err)
		der, err := m.OCSP(bg, "ca1", req)
		require.NoError(t, err)
		r, err := ocsp.ParseResponseForCert(der.DER, cert, c.Certificate())
		require.NoError(t, err)
		return r
	}
	assert.Equal(t, ocsp.Good, ask(m1, cert).Status)
	for range 50 {
		assert.Equal(t, ocsp.Good, ask(m1, cert).Status)
	}
	assert.Equal(t, int64(1), counted.n.Load(), "51 requests about an unchanged certificate cost one signature")

	// Revoked through the other engine: this one answers revoked at once.
	_, err = m2.RevokeCertificate(bg, lifecycle.RevokeCertificateRequest{PSK: creds, Device: lifecycle.DeviceRequest{ID: res.Device.Device.ID}, Ref: lifecycle.CertificateRef{KeyNumber: res.Certificate.KeyNumber}, Reason: ocsp.CessationOfOperation})
	require.NoError(t, err)
	r := ask(m1, cert)
	assert.Equal(t, ocsp.Revoked, r.Status)
	assert.Equal(t, ocsp.CessationOfOperation, r.RevocationReason)
	assert.False(t, r.RevokedAt.IsZero())

	// A serial the CA never issued: unknown.
	fake := *cert
	fake.SerialNumber = big.NewInt(0x1234567)
	assert.Equal(t, ocsp.Unknown, ask(m1, &fake).Status)

	// Malformed, and about another issuer.
	bad, err := m1.OCSP(bg, "ca1", []byte("not DER"))
	require.NoError(t, err)
	_, err = ocsp.ParseResponse(bad.DER, nil)
	var re ocsp.ResponseError
	require.ErrorAs(t, err, &re)
	assert.Equal(t, ocsp.Malformed, re.Status)
	otherCA, err := ca.Open(bg, openStore(t), k, nil)
	require.NoError(t, err)
	req, err := ocsp.CreateRequest(cert, otherCA.Certificate(), nil)
	require.NoError(t, err)
	un, err := m1.OCSP(bg, "ca1", req)
	require.NoError(t, err)
	_, err = ocsp.ParseResponse(un.DER, nil)
	require.ErrorAs(t, err, &re)
	assert.Equal(t, ocsp.Unauthorized, re.Status)

	_, err = m1.OCSP(bg, "nope", req)
	require.ErrorIs(t, err, lifecycle.CodeCANameInvalid)

	// Two certificates in one request: malformed (RFC 5019 §2.1.1), not an
	// answer about the first alone.
	one, err := ocsp.CreateRequest(cert, c.Certificate(), nil)
	require.NoError(t, err)
	var parsed struct {
		TBSRequest struct {
			RequestList []asn1.RawValue
		}
	}
	_, err = asn1.Unmarshal(one, &parsed)
	require.NoError(t, err)
	require.Len(t, parsed.TBSRequest.RequestList, 1)
	parsed.TBSRequest.RequestList = append(parsed.TBSRequest.RequestList, parsed.TBSRequest.RequestList[0])
	two, err := asn1.Marshal(parsed)
	require.NoError(t, err)
	multi, err := m1.OCSP(bg, "ca1", two)
	require.NoError(t, err)
	assert.Equal(t, ocsp.MalformedRequestErrorResponse, multi.DER)
}

func TestIntermediateIssuance(t *testing.T) {
	s := openStore(t)
	k := keys(t, 1, 1)
	root, err := ca.Open(bg, s, k, &ca.Options{Name: "root", Root: true})
	require.NoError(t, err)
	inter, err := ca.Open(bg, s, k, &ca.Options{Name: "ca1", Issuer: root})
	require.NoError(t, err)
	m := newEngine(t, s, &lifecycle.Options{Keys: k, CAs: []lifecycle.CA{inter},
		URLs: func(string) lifecycle.IssuerURLs {
			return lifecycle.IssuerURLs{OCSP: []string{"http://clm.test/ocsp"}, CAIssuers: []string{"http://clm.test/ca"}, CRL: []string{"http://clm.test/crl"}}
		}})
	p, err := m.IssuePSK(bg, lifecycle.IssuePSKRequest{Tenant: "t", Alias: "a"})
	require.NoError(t, err)
	creds := lifecycle.PSKCredentials{KeyID: p.KeyID, Password: p.Password}
	res, err := m.IssueCertificate(bg, lifecycle.IssueCertificateRequest{PSK: creds, Subject: "/CN=d1", Format: lifecycle.FormatP12, Passphrase: "pw"})
	require.NoError(t, err)

	// The PFX carries the chain; the leaf verifies with the root alone.
	key, leaf, chain, err := pkcs12.DecodeChain(res.Certificate.Data, "pw")
	require.NoError(t, err)
	require.NotNil(t, key)
	require.Len(t, chain, 2)
	assert.True(t, chain[0].Equal(inter.Certificate()))
	assert.True(t, chain[1].Equal(root.Certificate()))
	roots, inters := x509.NewCertPool(), x509.NewCertPool()
	roots.AddCert(root.Certificate())
	// The CA answer in PEM is the intermediate and the root.
	var bundle []*x509.Certificate
	for rest := res.CA.Data; ; {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			break
		}
		bundle = append(bundle, parseCert(t, b.Bytes))
	}
	require.Len(t, bundle, 2, "cacert in PEM carries the chain")
	inters.AddCert(bundle[0])
	_, err = leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inters, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
	require.NoError(t, err, "Go verifies the leaf with only the root as anchor")
	assert.Equal(t, []string{"http://clm.test/ocsp"}, leaf.OCSPServer)
	assert.Equal(t, []string{"http://clm.test/ca"}, leaf.IssuingCertificateURL)
	assert.Equal(t, []string{"http://clm.test/crl"}, leaf.CRLDistributionPoints)

	// CRL and OCSP are signed by the intermediate.
	crl, err := m.CRL(bg, "ca1")
	require.NoError(t, err)
	rl, err := x509.ParseRevocationList(crl.DER)
	require.NoError(t, err)
	require.NoError(t, rl.CheckSignatureFrom(inter.Certificate()))
	req, err := ocsp.CreateRequest(leaf, inter.Certificate(), nil)
	require.NoError(t, err)
	o, err := m.OCSP(bg, "ca1", req)
	require.NoError(t, err)
	r, err := ocsp.ParseResponseForCert(o.DER, leaf, inter.Certificate())
	require.NoError(t, err)
	assert.Equal(t, ocsp.Good, r.Status)

	got, err := m.CAChain(bg, "ca1")
	require.NoError(t, err)
	require.Len(t, got, 2)
	assert.True(t, got[1].Equal(root.Certificate()))

	// Without URLs, a certificate names none.
	plain := newEngine(t, s, &lifecycle.Options{Keys: k, CAs: []lifecycle.CA{inter}})
	pr, err := plain.IssueCertificate(bg, lifecycle.IssueCertificateRequest{PSK: creds, Subject: "/CN=d2"})
	require.NoError(t, err)
	pc := parseCert(t, pr.Certificate.Data)
	assert.Empty(t, pc.OCSPServer)
	assert.Empty(t, pc.IssuingCertificateURL)
	assert.Empty(t, pc.CRLDistributionPoints)
}
