// Package catest is the conformance suite of lifecycle.CA: every CA
// implementation runs it from its own tests.
//
//	func TestConformance(t *testing.T) {
//		catest.Run(t, func(t *testing.T) lifecycle.CA { return newCA(t) })
//	}
//
// One named subtest per behaviour: issued certificates verify against the
// CA; validity, subject, names and key usages are the template's; serials are
// positive, of at least 64 bits, and unique over 10,000 issuances; the
// caller's template is never modified; leaf certificates carry Subject and
// Authority Key Identifiers; CRLs parse, are signed by the CA and list what
// they were given; OCSP responses parse, verify against the CA (directly
// or through a delegated responder certificate with id-kp-OCSPSigning) and
// say what they were given; concurrent signing is safe.
package catest

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/credlife/clm/lifecycle"
)

// NewCA returns the CA under test. It is called once per subtest.
type NewCA func(t *testing.T) lifecycle.CA

// Options tune the suite.
type Options struct {
	// Issuances is the number of certificates of the serial uniqueness
	// test; 10,000 when 0.
	Issuances int
}

// Run runs the suite.
func Run(t *testing.T, newCA NewCA, opts *Options) {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.Issuances == 0 {
		o.Issuances = 10000
	}
	cases := []struct {
		name string
		fn   func(t *testing.T, ca lifecycle.CA)
	}{
		{"Identity", testIdentity},
		{"Sign/VerifiesAgainstCA", testVerifies},
		{"Sign/TemplateHonoured", testTemplateHonoured},
		{"Sign/TemplateNotModified", testTemplateNotModified},
		{"Sign/KeyIdentifiers", testKeyIdentifiers},
		{"Sign/LeafKeyTypes", testLeafKeyTypes},
		{"Sign/SerialsUnique", func(t *testing.T, ca lifecycle.CA) { testSerials(t, ca, o.Issuances) }},
		{"Sign/Concurrent", testConcurrent},
		{"Sign/CancelledContext", testCancelled},
		{"CRL/SignedAndComplete", testCRL},
		{"CRL/TemplateNotModified", testCRLTemplate},
		{"OCSP/GoodRevokedUnknown", testOCSP},
		{"OCSP/TemplateNotModified", testOCSPTemplate},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, newCA(t)) })
	}
}

var ctx = context.Background()

func leafTemplate() *x509.Certificate {
	now := time.Now().UTC().Truncate(time.Second)
	return &x509.Certificate{
		Subject:               pkix.Name{CommonName: "device-1.example.com", Organization: []string{"Example"}, Country: []string{"JP"}},
		NotBefore:             now.Add(-time.Minute),
		NotAfter:              now.Add(90 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
		DNSNames:              []string{"device-1.example.com"},
		IPAddresses:           []net.IP{net.ParseIP("192.0.2.10").To4()},
	}
}

func newKey(t testing.TB, kt lifecycle.CertKeyType) crypto.Signer {
	t.Helper()
	k, err := lifecycle.GenerateCertKey(kt)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func sign(t testing.TB, ca lifecycle.CA, tmpl *x509.Certificate, pub crypto.PublicKey) *x509.Certificate {
	t.Helper()
	c, err := ca.Sign(ctx, tmpl, pub)
	if err != nil {
		t.Fatalf("Sign: %v", err)
	}
	return c
}

func roots(ca lifecycle.CA) (*x509.CertPool, *x509.CertPool) {
	chain := ca.Chain()
	r, im := x509.NewCertPool(), x509.NewCertPool()
	r.AddCert(chain[len(chain)-1])
	for _, c := range chain[:len(chain)-1] {
		im.AddCert(c)
	}
	return r, im
}

func testIdentity(t *testing.T, ca lifecycle.CA) {
	if ca.Name() == "" || ca.Name() == lifecycle.CANameCA {
		t.Fatalf("a CA must have a name other than %q: %q", lifecycle.CANameCA, ca.Name())
	}
	chain := ca.Chain()
	if len(chain) == 0 || !chain[0].Equal(ca.Certificate()) {
		t.Fatal("Chain must start with the CA's own certificate")
	}
	cert := ca.Certificate()
	if !cert.IsCA || cert.KeyUsage&x509.KeyUsageCertSign == 0 || cert.KeyUsage&x509.KeyUsageCRLSign == 0 {
		t.Fatal("the CA certificate must be a CA with certSign and cRLSign")
	}
	for i := range chain {
		issuer := chain[len(chain)-1]
		if i+1 < len(chain) {
			issuer = chain[i+1]
		}
		if err := chain[i].CheckSignatureFrom(issuer); err != nil {
			t.Fatalf("chain[%d] must be signed by the next (the root by itself): %v", i, err)
		}
	}
	if len(cert.SubjectKeyId) == 0 {
		t.Fatal("the CA certificate must carry a Subject Key Identifier")
	}
}

func testVerifies(t *testing.T, ca lifecycle.CA) {
	key := newKey(t, lifecycle.KeyECP256)
	c := sign(t, ca, leafTemplate(), key.Public())
	r, im := roots(ca)
	if _, err := c.Verify(x509.VerifyOptions{Roots: r, Intermediates: im, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Fatalf("an issued certificate must verify against the CA: %v", err)
	}
	if _, err := c.Verify(x509.VerifyOptions{Roots: r, Intermediates: im, DNSName: "device-1.example.com"}); err != nil {
		t.Fatalf("an issued server certificate must verify for its DNS name: %v", err)
	}
	if !bytes.Equal(c.RawIssuer, ca.Certificate().RawSubject) {
		t.Fatal("the issuer must be the CA's subject")
	}
}

func testTemplateHonoured(t *testing.T, ca lifecycle.CA) {
	tmpl := leafTemplate()
	c := sign(t, ca, tmpl, newKey(t, lifecycle.KeyECP256).Public())
	switch {
	case !c.NotBefore.Equal(tmpl.NotBefore) || !c.NotAfter.Equal(tmpl.NotAfter):
		t.Fatalf("validity must be the template's: %v–%v, want %v–%v", c.NotBefore, c.NotAfter, tmpl.NotBefore, tmpl.NotAfter)
	case c.KeyUsage != tmpl.KeyUsage:
		t.Fatalf("key usage must be the template's: %v", c.KeyUsage)
	case !reflect.DeepEqual(c.ExtKeyUsage, tmpl.ExtKeyUsage):
		t.Fatalf("extended key usage must be the template's: %v", c.ExtKeyUsage)
	case c.Subject.CommonName != tmpl.Subject.CommonName || !reflect.DeepEqual(c.Subject.Organization, tmpl.Subject.Organization):
		t.Fatalf("the subject must be the template's: %v", c.Subject)
	case !reflect.DeepEqual(c.DNSNames, tmpl.DNSNames) || len(c.IPAddresses) != 1 || !c.IPAddresses[0].Equal(tmpl.IPAddresses[0]):
		t.Fatalf("subject alternative names must be the template's: %v %v", c.DNSNames, c.IPAddresses)
	case c.IsCA:
		t.Fatal("a leaf must not be a CA")
	}
	raw := leafTemplate()
	raw.RawSubject = []byte{0x30, 0x0f, 0x31, 0x0d, 0x30, 0x0b, 0x06, 0x03, 0x55, 0x04, 0x03, 0x0c, 0x04, 'r', 'a', 'w', '!'}
	c = sign(t, ca, raw, newKey(t, lifecycle.KeyECP256).Public())
	if !bytes.Equal(c.RawSubject, raw.RawSubject) {
		t.Fatal("a template's RawSubject must be used as it is")
	}
}

func testTemplateNotModified(t *testing.T, ca lifecycle.CA) {
	tmpl := leafTemplate()
	before := *tmpl
	before.DNSNames = append([]string(nil), tmpl.DNSNames...)
	before.ExtKeyUsage = append([]x509.ExtKeyUsage(nil), tmpl.ExtKeyUsage...)
	sign(t, ca, tmpl, newKey(t, lifecycle.KeyECP256).Public())
	if tmpl.SerialNumber != nil || tmpl.SubjectKeyId != nil || tmpl.AuthorityKeyId != nil ||
		!reflect.DeepEqual(tmpl.DNSNames, before.DNSNames) || !reflect.DeepEqual(tmpl.ExtKeyUsage, before.ExtKeyUsage) ||
		!tmpl.NotAfter.Equal(before.NotAfter) {
		t.Fatal("Sign must not modify the caller's template")
	}
}

func testKeyIdentifiers(t *testing.T, ca lifecycle.CA) {
	a := sign(t, ca, leafTemplate(), newKey(t, lifecycle.KeyECP256).Public())
	b := sign(t, ca, leafTemplate(), newKey(t, lifecycle.KeyECP256).Public())
	if len(a.SubjectKeyId) == 0 || bytes.Equal(a.SubjectKeyId, b.SubjectKeyId) {
		t.Fatal("a leaf must carry the Subject Key Identifier of its own key")
	}
	if !bytes.Equal(a.AuthorityKeyId, ca.Certificate().SubjectKeyId) {
		t.Fatal("a leaf's Authority Key Identifier must be the CA's Subject Key Identifier")
	}
	tmpl := leafTemplate()
	tmpl.SubjectKeyId = []byte{1, 2, 3, 4}
	if c := sign(t, ca, tmpl, newKey(t, lifecycle.KeyECP256).Public()); !bytes.Equal(c.SubjectKeyId, []byte{1, 2, 3, 4}) {
		t.Fatal("a template's Subject Key Identifier must be kept")
	}
}

func testLeafKeyTypes(t *testing.T, ca lifecycle.CA) {
	r, im := roots(ca)
	for _, kt := range []lifecycle.CertKeyType{lifecycle.KeyECP256, lifecycle.KeyECP384, lifecycle.KeyRSA2048, lifecycle.KeyEd25519} {
		key := newKey(t, kt)
		c := sign(t, ca, leafTemplate(), key.Public())
		if _, err := c.Verify(x509.VerifyOptions{Roots: r, Intermediates: im, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
			t.Fatalf("a %s leaf must verify: %v", kt, err)
		}
		if got, _ := lifecycle.CertKeyTypeOf(c.PublicKey); got != kt {
			t.Fatalf("the certificate must carry the given %s key, has %s", kt, got)
		}
	}
}

func testSerials(t *testing.T, ca lifecycle.CA, n int) {
	pub := newKey(t, lifecycle.KeyECP256).Public()
	tmpl := leafTemplate()
	seen := make(map[string]bool, n)
	var mu sync.Mutex
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	for w := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += 2 {
				c, err := ca.Sign(ctx, tmpl, pub)
				if err != nil {
					errs <- err
					return
				}
				sn := c.SerialNumber
				if sn.Sign() <= 0 || sn.BitLen() < 64 {
					errs <- errSerial(sn)
					return
				}
				mu.Lock()
				seen[sn.String()] = true
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if len(seen) != n {
		t.Fatalf("serials must be unique: %d distinct of %d", len(seen), n)
	}
}

type serialError struct{ n *big.Int }

func (e serialError) Error() string {
	return "a serial must be positive with at least 64 bits: " + e.n.Text(16)
}

func errSerial(n *big.Int) error { return serialError{n} }

func testConcurrent(t *testing.T, ca lifecycle.CA) {
	r, im := roots(ca)
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			key := newKey(t, lifecycle.KeyECP256)
			for range 8 {
				c, err := ca.Sign(ctx, leafTemplate(), key.Public())
				if err == nil {
					_, err = c.Verify(x509.VerifyOptions{Roots: r, Intermediates: im, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
				}
				if err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("concurrent signing must be safe: %v", err)
	}
}

func testCancelled(t *testing.T, ca lifecycle.CA) {
	c, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := ca.Sign(c, leafTemplate(), newKey(t, lifecycle.KeyECP256).Public()); err == nil {
		t.Fatal("Sign with a cancelled context must fail")
	}
}

func crlTemplate() *x509.RevocationList {
	now := time.Now().UTC().Truncate(time.Second)
	return &x509.RevocationList{
		Number:     big.NewInt(42),
		ThisUpdate: now,
		NextUpdate: now.Add(24 * time.Hour),
		RevokedCertificateEntries: []x509.RevocationListEntry{
			{SerialNumber: big.NewInt(0x1234), RevocationTime: now.Add(-time.Hour), ReasonCode: 1},
			{SerialNumber: new(big.Int).Lsh(big.NewInt(1), 127), RevocationTime: now.Add(-time.Minute), ReasonCode: 4},
			{SerialNumber: big.NewInt(7), RevocationTime: now, ReasonCode: 0},
		},
	}
}

func testCRL(t *testing.T, ca lifecycle.CA) {
	tmpl := crlTemplate()
	der, err := ca.SignCRL(ctx, tmpl)
	if err != nil {
		t.Fatalf("SignCRL: %v", err)
	}
	crl, err := x509.ParseRevocationList(der)
	if err != nil {
		t.Fatalf("the CRL must parse: %v", err)
	}
	if err := crl.CheckSignatureFrom(ca.Certificate()); err != nil {
		t.Fatalf("the CRL must be signed by the CA: %v", err)
	}
	if crl.Number.Cmp(tmpl.Number) != 0 || !crl.ThisUpdate.Equal(tmpl.ThisUpdate) || !crl.NextUpdate.Equal(tmpl.NextUpdate) {
		t.Fatalf("number and dates must be the template's: %v %v %v", crl.Number, crl.ThisUpdate, crl.NextUpdate)
	}
	if len(crl.RevokedCertificateEntries) != len(tmpl.RevokedCertificateEntries) {
		t.Fatalf("the CRL must list every entry: %d of %d", len(crl.RevokedCertificateEntries), len(tmpl.RevokedCertificateEntries))
	}
	for i, e := range crl.RevokedCertificateEntries {
		w := tmpl.RevokedCertificateEntries[i]
		if e.SerialNumber.Cmp(w.SerialNumber) != 0 || !e.RevocationTime.Equal(w.RevocationTime) || e.ReasonCode != w.ReasonCode {
			t.Fatalf("entry %d must be as given: %v %v %d", i, e.SerialNumber, e.RevocationTime, e.ReasonCode)
		}
	}
	if !bytes.Equal(crl.RawIssuer, ca.Certificate().RawSubject) {
		t.Fatal("the CRL's issuer must be the CA")
	}
}

func testCRLTemplate(t *testing.T, ca lifecycle.CA) {
	tmpl := crlTemplate()
	n := len(tmpl.RevokedCertificateEntries)
	if _, err := ca.SignCRL(ctx, tmpl); err != nil {
		t.Fatal(err)
	}
	if tmpl.Issuer.CommonName != "" || tmpl.AuthorityKeyId != nil || len(tmpl.RevokedCertificateEntries) != n || tmpl.SignatureAlgorithm != 0 {
		t.Fatal("SignCRL must not modify the caller's template")
	}
}

func ocspTemplate(status int) *ocsp.Response {
	now := time.Now().UTC().Truncate(time.Second)
	r := &ocsp.Response{Status: status, SerialNumber: big.NewInt(0xC0FFEE), ThisUpdate: now, NextUpdate: now.Add(time.Hour), IssuerHash: crypto.SHA256}
	if status == ocsp.Revoked {
		r.RevokedAt, r.RevocationReason = now.Add(-time.Hour), ocsp.KeyCompromise
	}
	return r
}

func testOCSP(t *testing.T, ca lifecycle.CA) {
	leaf := sign(t, ca, leafTemplate(), newKey(t, lifecycle.KeyECP256).Public())
	for _, status := range []int{ocsp.Good, ocsp.Revoked, ocsp.Unknown} {
		tmpl := ocspTemplate(status)
		tmpl.SerialNumber = leaf.SerialNumber
		der, err := ca.SignOCSP(ctx, tmpl)
		if err != nil {
			t.Fatalf("SignOCSP: %v", err)
		}
		// ParseResponseForCert checks the signature against the CA, or
		// the embedded responder certificate's against the CA.
		r, err := ocsp.ParseResponseForCert(der, leaf, ca.Certificate())
		if err != nil {
			t.Fatalf("status %d: the response does not verify against the CA: %v", status, err)
		}
		if r.Certificate != nil {
			if !slices.Contains(r.Certificate.ExtKeyUsage, x509.ExtKeyUsageOCSPSigning) {
				t.Fatal("a delegated responder certificate without id-kp-OCSPSigning")
			}
			if err := r.Certificate.CheckSignatureFrom(ca.Certificate()); err != nil {
				t.Fatalf("the responder certificate is not the CA's: %v", err)
			}
		}
		if r.Status != status || r.SerialNumber.Cmp(leaf.SerialNumber) != 0 || !r.ThisUpdate.Equal(tmpl.ThisUpdate) || !r.NextUpdate.Equal(tmpl.NextUpdate) {
			t.Fatalf("the response says status %d serial %v %v–%v; want %d %v %v–%v", r.Status, r.SerialNumber, r.ThisUpdate, r.NextUpdate, status, leaf.SerialNumber, tmpl.ThisUpdate, tmpl.NextUpdate)
		}
		if status == ocsp.Revoked && (!r.RevokedAt.Equal(tmpl.RevokedAt) || r.RevocationReason != ocsp.KeyCompromise) {
			t.Fatalf("revoked at %v reason %d; want %v %d", r.RevokedAt, r.RevocationReason, tmpl.RevokedAt, ocsp.KeyCompromise)
		}
	}
}

func testOCSPTemplate(t *testing.T, ca lifecycle.CA) {
	tmpl := ocspTemplate(ocsp.Revoked)
	before := *tmpl
	if _, err := ca.SignOCSP(ctx, tmpl); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(*tmpl, before) {
		t.Fatal("SignOCSP modified its template")
	}
}
