package client_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"
	"software.sslmate.com/src/go-pkcs12"

	"github.com/credlife/clm/backends/sqlitestore"
	"github.com/credlife/clm/ca"
	"github.com/credlife/clm/httpadapter"
	"github.com/credlife/clm/httpadapter/client"
	"github.com/credlife/clm/lifecycle"
)

const license = "client-test-license"

// newClient starts a real server on loopback and returns a client of it.
func newClient(t *testing.T) (*client.Client, *ca.CA) {
	t.Helper()
	ctx := context.Background()
	st, err := sqlitestore.Open(ctx, filepath.Join(t.TempDir(), "clm.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	keys, _ := lifecycle.NewStaticKeys(1, map[uint32][]byte{1: bytes.Repeat([]byte{3}, 32)})
	ca1, err := ca.Open(ctx, st, keys, nil)
	if err != nil {
		t.Fatal(err)
	}
	m, err := lifecycle.New(st, &lifecycle.Options{Keys: keys, CAs: []lifecycle.CA{ca1}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(httpadapter.New(m, &httpadapter.Options{License: license}))
	t.Cleanup(srv.Close)
	return client.New(srv.URL, license, nil), ca1
}

func must(t *testing.T, err error, what string) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func TestEndToEnd(t *testing.T) {
	ctx := context.Background()
	c, ca1 := newClient(t)
	must(t, c.Status(ctx), "Status")

	psk, err := c.IssuePSK(ctx, lifecycle.IssuePSKRequest{Tenant: "tenant01", Alias: "gw"})
	must(t, err, "IssuePSK")
	creds := lifecycle.PSKCredentials{KeyID: psk.KeyID, Password: psk.Password}
	got, err := c.GetPSK(ctx, psk.KeyID)
	must(t, err, "GetPSK")
	if got.Password != psk.Password || got.Tenant != "tenant01" || !got.ExpiresAt.Equal(psk.ExpiresAt) {
		t.Fatal("GetPSK must return the issued PSK")
	}
	if _, err := c.GetPSK(ctx, "0000000099"); !errors.Is(err, lifecycle.CodePSKNotFound) {
		t.Fatalf("GetPSK of an unknown keyid: %v", err)
	}
	page, err := c.ListPSKs(ctx, lifecycle.ListPSKsRequest{Tenant: "tenant01"})
	must(t, err, "ListPSKs")
	if len(page.PSKs) != 1 {
		t.Fatalf("ListPSKs: %d", len(page.PSKs))
	}
	_, err = c.AuthenticatePSK(ctx, creds)
	must(t, err, "AuthenticatePSK")
	_, err = c.AuthenticatePSK(ctx, lifecycle.PSKCredentials{KeyID: psk.KeyID, Password: "nope"})
	if !errors.Is(err, lifecycle.CodePasswordMismatch) {
		t.Fatalf("a wrong password must answer 1201: %v", err)
	}
	var he *client.HTTPError
	if !errors.As(err, &he) || he.Status != 403 {
		t.Fatalf("the HTTP status is kept: %v", err)
	}

	// First enrolment: a certificate, which registers the device.
	issued, err := c.IssueCertificate(ctx, lifecycle.IssueCertificateRequest{PSK: creds, Device: lifecycle.DeviceRequest{Name: "edge-1"},
		CA: "ca1", Subject: "/O=Example/CN=edge-1.example.com", KeyPath: "/tmp/key", Path: "/etc/clm/cert.pem", CAPath: "/etc/clm/ca.pem"})
	must(t, err, "IssueCertificate")
	dev := lifecycle.DeviceRequest{ID: issued.Device.Device.ID, Name: "edge-1", Key: issued.Device.Key}
	block, _ := pem.Decode(issued.Certificate.Data)
	leaf, err := x509.ParseCertificate(block.Bytes)
	must(t, err, "parse")
	roots := x509.NewCertPool()
	roots.AddCert(ca1.Certificate())
	_, err = leaf.Verify(x509.VerifyOptions{Roots: roots, DNSName: "edge-1.example.com"})
	must(t, err, "the certificate verifies")
	if _, err := tlsPair(issued); err != nil {
		t.Fatalf("the certificate and key pair: %v", err)
	}
	cao, err := c.CACertificate(ctx, lifecycle.CACertificateRequest{PSK: creds, Device: dev, CA: "CA", Format: lifecycle.FormatDER, Path: "/ca.der", KeyPath: "/tmp/key"})
	must(t, err, "CACertificate")
	if !bytes.Equal(cao.CA.Data, ca1.Certificate().Raw) {
		t.Fatal("caonly der must return the CA certificate's DER")
	}
	p12, err := c.GetCertificate(ctx, lifecycle.GetCertificateRequest{PSK: creds, Device: dev, CA: "ca1",
		Ref: lifecycle.CertificateRef{Serial: issued.Certificate.Serial}, Format: lifecycle.FormatP12, Passphrase: "pfx", Path: "/etc/clm/cert.p12"})
	must(t, err, "GetCertificate p12")
	if _, c2, err := pkcs12.Decode(p12.Certificate.Data, "pfx"); err != nil || !c2.Equal(leaf) {
		t.Fatalf("the PFX holds the certificate: %v", err)
	}

	// Renewal before expiry, then revocation, seen on the CRL.
	renewed, err := c.RenewCertificate(ctx, lifecycle.RenewCertificateRequest{PSK: creds, Device: dev, CA: "ca1",
		Ref: lifecycle.CertificateRef{KeyNumber: issued.Certificate.KeyNumber}, Passphrase: "new-pass", Path: "/etc/clm/cert.pem"})
	must(t, err, "RenewCertificate")
	if renewed.Certificate.Serial == issued.Certificate.Serial || renewed.PrivateKey == "" {
		t.Fatal("a renewal gives a new certificate and key")
	}
	_, err = c.GetCertificate(ctx, lifecycle.GetCertificateRequest{PSK: creds, Device: dev, CA: "ca1", Ref: lifecycle.CertificateRef{KeyNumber: issued.Certificate.KeyNumber}, Path: "/etc/clm/cert.pem"})
	if !errors.Is(err, lifecycle.CodeCertRevoked) {
		t.Fatalf("the renewed certificate answers 1306: %v", err)
	}
	rv, err := c.RevokeCertificate(ctx, lifecycle.RevokeCertificateRequest{PSK: creds, Device: dev, CA: "ca1", Ref: lifecycle.CertificateRef{KeyNumber: renewed.Certificate.KeyNumber}})
	must(t, err, "RevokeCertificate")
	if rv.Serial != renewed.Certificate.Serial {
		t.Fatal("RevokeCertificate names the certificate")
	}
	der, err := c.CRL(ctx, "ca1")
	must(t, err, "CRL")
	crl, err := x509.ParseRevocationList(der)
	must(t, err, "parse CRL")
	if len(crl.RevokedCertificateEntries) != 2 {
		t.Fatalf("the CRL lists the superseded and the revoked certificate: %d", len(crl.RevokedCertificateEntries))
	}
	if _, err := c.CRL(ctx, "nosuch"); !errors.Is(err, lifecycle.CodeCANameInvalid) {
		t.Fatalf("the CRL of an unknown CA: %v", err)
	}

	// Symmetric keys: create, get, rotate, delete.
	k, err := c.CreateKey(ctx, lifecycle.CreateKeyRequest{PSK: creds, Device: dev, Alias: "k", KeyType: "TWINE", KeyLength: 80, KeyPath: "/tmp/key", Path: "/etc/clm/k"})
	must(t, err, "CreateKey")
	if len(k.Key) != 10 || k.KeyLength != 80 {
		t.Fatalf("a TWINE-80 key is 10 bytes: %d", len(k.Key))
	}
	g, err := c.GetKey(ctx, lifecycle.GetKeyRequest{PSK: creds, Device: dev, KeyNumber: k.KeyNumber, Path: "/etc/clm/k"})
	must(t, err, "GetKey")
	if !bytes.Equal(g.Key, k.Key) || !g.ExpiresAt.Equal(k.ExpiresAt) {
		t.Fatal("GetKey returns the key")
	}
	r, err := c.RotateKey(ctx, lifecycle.RotateKeyRequest{PSK: creds, Device: dev, KeyNumber: k.KeyNumber, KeyLength: 128, Path: "/etc/clm/k"})
	must(t, err, "RotateKey")
	if len(r.Key) != 16 || r.KeyNumber == k.KeyNumber {
		t.Fatal("a rotation gives a new key of the new length")
	}
	_, err = c.DeleteKey(ctx, lifecycle.DeleteKeyRequest{PSK: creds, Device: dev, KeyNumber: r.KeyNumber, Key: k.Key, Path: "/etc/clm/k"})
	if !errors.Is(err, lifecycle.CodeCommonKeyMismatch) {
		t.Fatalf("deleting with the wrong key answers 1508: %v", err)
	}
	d, err := c.DeleteKey(ctx, lifecycle.DeleteKeyRequest{PSK: creds, Device: dev, KeyNumber: r.KeyNumber, Key: r.Key, Path: "/etc/clm/k"})
	must(t, err, "DeleteKey")
	if d.KeyNumber != r.KeyNumber {
		t.Fatal("DeleteKey names the key")
	}
	_, err = c.GetKey(ctx, lifecycle.GetKeyRequest{PSK: creds, Device: dev, KeyNumber: r.KeyNumber, Path: "/etc/clm/k"})
	if !errors.Is(err, lifecycle.CodeKeyNotFound) {
		t.Fatalf("a deleted key answers 1501: %v", err)
	}

	must(t, c.DeletePSK(ctx, creds), "DeletePSK")
	if _, err := c.AuthenticatePSK(ctx, creds); !errors.Is(err, lifecycle.CodePSKNotFound) {
		t.Fatalf("a deleted PSK answers 1204: %v", err)
	}
}

func TestContextAndWrongLicense(t *testing.T) {
	c, _ := newClient(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Nanosecond)
	defer cancel()
	time.Sleep(time.Millisecond)
	if _, err := c.IssuePSK(ctx, lifecycle.IssuePSKRequest{Tenant: "t", Alias: "a"}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("an expired context must end the call: %v", err)
	}
	bad := client.New(c.BaseURL(), "wrong-license", nil)
	_, err := bad.IssuePSK(context.Background(), lifecycle.IssuePSKRequest{Tenant: "t", Alias: "a"})
	var he *client.HTTPError
	if !errors.Is(err, lifecycle.CodePasswordMismatch) || !errors.As(err, &he) || he.Status != 401 {
		t.Fatalf("a wrong license answers 401 with 1201: %v", err)
	}
}

func tlsPair(r *lifecycle.CertificateResult) (tls.Certificate, error) {
	return tls.X509KeyPair(r.Certificate.Data, []byte(r.PrivateKey.Reveal()))
}

func TestCSRAndOCSP(t *testing.T) {
	ctx := context.Background()
	c, ca1 := newClient(t)
	psk, err := c.IssuePSK(ctx, lifecycle.IssuePSKRequest{Tenant: "t", Alias: "a"})
	must(t, err, "IssuePSK")
	creds := lifecycle.PSKCredentials{KeyID: psk.KeyID, Password: psk.Password}
	newCSR := func() (*ecdsa.PrivateKey, []byte) {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		must(t, err, "key")
		der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "dev-1"}}, key)
		must(t, err, "CSR")
		return key, der
	}
	key, der := newCSR() // DER: the client sends it in base64
	res, err := c.IssueCertificateFromCSR(ctx, lifecycle.IssueFromCSRRequest{PSK: creds, Device: lifecycle.DeviceRequest{Name: "gw"}, CA: "ca1", CSR: der, Path: "/c", CAPath: "/ca", KeyPath: "/k"})
	must(t, err, "IssueCertificateFromCSR")
	if res.PrivateKey != "" {
		t.Fatal("a CSR's certificate comes without a private key")
	}
	b, _ := pem.Decode(res.Certificate.Data)
	cert, err := x509.ParseCertificate(b.Bytes)
	must(t, err, "parse")
	if !key.PublicKey.Equal(cert.PublicKey) {
		t.Fatal("the certificate is not for the CSR's key")
	}
	dev := lifecycle.DeviceRequest{ID: res.Device.Device.ID, Name: "gw", Key: res.Device.Key}
	key2, der2 := newCSR()
	ren, err := c.RenewCertificate(ctx, lifecycle.RenewCertificateRequest{PSK: creds, Device: dev, CA: "ca1", Ref: lifecycle.CertificateRef{KeyNumber: res.Certificate.KeyNumber}, Path: "/c",
		CSR: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der2})})
	must(t, err, "RenewCertificate with a CSR")
	b, _ = pem.Decode(ren.Certificate.Data)
	cert2, err := x509.ParseCertificate(b.Bytes)
	must(t, err, "parse")
	if !key2.PublicKey.Equal(cert2.PublicKey) {
		t.Fatal("the successor is not for the new CSR's key")
	}

	chain, err := c.CAChain(ctx, "ca1")
	must(t, err, "CAChain")
	if len(chain) != 1 || !chain[0].Equal(ca1.Certificate()) {
		t.Fatal("CAChain of a root is the root")
	}
	status := func(cert *x509.Certificate) int {
		req, err := ocsp.CreateRequest(cert, chain[0], nil)
		must(t, err, "ocsp request")
		der, err := c.OCSP(ctx, "ca1", req)
		must(t, err, "OCSP")
		r, err := ocsp.ParseResponseForCert(der, cert, chain[0])
		must(t, err, "ocsp response")
		return r.Status
	}
	if status(cert) != ocsp.Revoked || status(cert2) != ocsp.Good {
		t.Fatal("OCSP: the renewed certificate is revoked (superseded), its successor good")
	}
	if _, err := c.OCSP(ctx, "nope", []byte{0x30}); !errors.Is(err, lifecycle.CodeCANameInvalid) {
		t.Fatalf("OCSP of an unknown CA answers 1302: %v", err)
	}
}
