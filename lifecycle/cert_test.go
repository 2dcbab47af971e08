package lifecycle_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/credlife/clm/ca"
	"github.com/credlife/clm/lifecycle"
	"github.com/credlife/clm/lifecycle/driver"
)

// certFixture is an engine with the local CA on SQLite, and a PSK.
type certFixture struct {
	t     testing.TB
	m     *lifecycle.Engine
	store driver.Store
	ca    *ca.CA
	creds lifecycle.PSKCredentials
	dev   lifecycle.DeviceRequest
	dir   string
}

func newCertFixture(t *testing.T, o *lifecycle.Options) *certFixture { return newCertFixtureTB(t, o) }

func newCertFixtureTB(t testing.TB, o *lifecycle.Options) *certFixture {
	t.Helper()
	ctx := context.Background()
	s := openStore(t)
	k := keys(t, 1, 1)
	c, err := ca.Open(ctx, s, k, nil)
	if err != nil {
		t.Fatal(err)
	}
	if o == nil {
		o = &lifecycle.Options{}
	}
	o.Keys, o.CAs = k, []lifecycle.CA{c}
	m := newEngine(t, s, o)
	p, err := m.IssuePSK(ctx, lifecycle.IssuePSKRequest{Tenant: "t", Alias: "a"})
	if err != nil {
		t.Fatal(err)
	}
	f := &certFixture{t: t, m: m, store: s, ca: c, creds: lifecycle.PSKCredentials{KeyID: p.KeyID, Password: p.Password}, dir: t.TempDir()}
	d, err := m.EnrollDevice(ctx, lifecycle.EnrollDeviceRequest{PSK: f.creds, Device: lifecycle.DeviceRequest{Name: "gw"}})
	if err != nil {
		t.Fatal(err)
	}
	f.dev = lifecycle.DeviceRequest{ID: d.Device.ID, Key: d.Key}
	return f
}

func (f *certFixture) issue(req lifecycle.IssueCertificateRequest) *lifecycle.CertificateResult {
	f.t.Helper()
	req.PSK, req.Device, req.CA, req.KeyPath = f.creds, f.dev, "ca1", "/tmp/key"
	if req.Path == "" {
		req.Path = "/cert"
	}
	if req.CAPath == "" {
		req.CAPath = "/ca"
	}
	r, err := f.m.IssueCertificate(context.Background(), req)
	if err != nil {
		f.t.Fatal(err)
	}
	return r
}

func (f *certFixture) write(name string, data []byte) string {
	p := filepath.Join(f.dir, name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		f.t.Fatal(err)
	}
	return p
}

// openssl runs the openssl CLI and returns its combined output and whether
// it exited 0.
func openssl(t *testing.T, args ...string) (string, bool) {
	t.Helper()
	out, err := exec.Command("openssl", args...).CombinedOutput()
	return string(out), err == nil
}

func needOpenSSL(t *testing.T) {
	if _, err := exec.LookPath("openssl"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("openssl is required in CI")
		}
		t.Skip("no openssl CLI")
	}
}

func TestArtifactsWithOpenSSL(t *testing.T) {
	needOpenSSL(t)
	ctx := context.Background()
	f := newCertFixture(t, nil)
	caPEM := f.write("ca.pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: f.ca.Certificate().Raw}))

	for _, kt := range lifecycle.CertKeyTypes() {
		t.Run(string(kt), func(t *testing.T) {
			r := f.issue(lifecycle.IssueCertificateRequest{Subject: "/C=JP/O=NEC/CN=" + strings.ToLower(string(kt)) + ".example.com", KeyType: string(kt), Passphrase: "s3cret phrase"})
			cert := f.write(string(kt)+".pem", r.Certificate.Data)
			key := f.write(string(kt)+".key", []byte(r.PrivateKey.Reveal()))
			if out, ok := openssl(t, "verify", "-CAfile", caPEM, cert); !ok {
				t.Fatalf("openssl verify: %s", out)
			}
			if _, ok := openssl(t, "pkey", "-in", key, "-passin", "pass:s3cret phrase", "-noout"); !ok {
				t.Fatal("openssl pkey must open the encrypted PKCS#8 key with its passphrase")
			}
			if _, ok := openssl(t, "pkey", "-in", key, "-passin", "pass:wrong", "-noout"); ok {
				t.Fatal("openssl pkey must refuse a wrong passphrase")
			}
			if out, _ := openssl(t, "asn1parse", "-in", key); !strings.Contains(out, "PBES2") || !strings.Contains(out, "aes-256-cbc") || !strings.Contains(out, "hmacWithSHA256") {
				t.Fatalf("the key must be PBES2 with AES-256-CBC and PBKDF2-SHA256:\n%s", out)
			}
			pubKey, ok1 := openssl(t, "pkey", "-in", key, "-passin", "pass:s3cret phrase", "-pubout")
			pubCert, ok2 := openssl(t, "x509", "-in", cert, "-pubkey", "-noout")
			if !ok1 || !ok2 || pubKey != pubCert {
				t.Fatal("the key's public half must equal the certificate's")
			}
		})
	}

	t.Run("PKCS12", func(t *testing.T) {
		for _, legacy := range []bool{false, true} {
			g := f
			if legacy {
				g = newCertFixture(t, &lifecycle.Options{LegacyPKCS12: true})
			}
			r := g.issue(lifecycle.IssueCertificateRequest{Subject: "/CN=p12", Format: lifecycle.FormatP12, Passphrase: "pfx-pass"})
			p12 := g.write("c.p12", r.Certificate.Data)
			args := []string{"pkcs12", "-in", p12, "-noout"}
			if legacy {
				args = append(args, "-legacy")
			}
			if out, ok := openssl(t, append(args, "-passin", "pass:pfx-pass")...); !ok {
				t.Fatalf("openssl pkcs12 (legacy %v) must open the PFX: %s", legacy, out)
			}
			if _, ok := openssl(t, append(args, "-passin", "pass:wrong")...); ok {
				t.Fatalf("openssl pkcs12 (legacy %v) must refuse a wrong passphrase", legacy)
			}
			info, _ := openssl(t, "pkcs12", "-in", p12, "-info", "-noout", "-passin", "pass:pfx-pass", "-legacy")
			want := "AES-256-CBC"
			if legacy {
				want = "TripleDES"
			}
			if !strings.Contains(info, want) {
				t.Fatalf("legacy %v: want %s in\n%s", legacy, want, info)
			}
		}
	})

	t.Run("CRL", func(t *testing.T) {
		r := f.issue(lifecycle.IssueCertificateRequest{Subject: "/CN=to-revoke"})
		cert := f.write("r.pem", r.Certificate.Data)
		crl, err := f.m.CRL(ctx, "ca1")
		if err != nil {
			t.Fatal(err)
		}
		before := f.write("before.crl", pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: crl.DER}))
		if out, ok := openssl(t, "verify", "-crl_check", "-CAfile", caPEM, "-CRLfile", before, cert); !ok {
			t.Fatalf("before revocation the certificate must pass a CRL check: %s", out)
		}
		_, err = f.m.RevokeCertificate(ctx, lifecycle.RevokeCertificateRequest{PSK: f.creds, Device: f.dev, CA: "ca1",
			Ref: lifecycle.CertificateRef{KeyNumber: r.Certificate.KeyNumber}, Reason: 1})
		if err != nil {
			t.Fatal(err)
		}
		crl, err = f.m.CRL(ctx, "ca1")
		if err != nil {
			t.Fatal(err)
		}
		after := f.write("after.crl", crl.DER)
		if out, ok := openssl(t, "crl", "-in", after, "-inform", "DER", "-CAfile", caPEM, "-noout"); !ok || !strings.Contains(out, "verify OK") {
			t.Fatalf("openssl must verify the CRL's signature: %s", out)
		}
		afterPEM := f.write("after.pem.crl", pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: crl.DER}))
		out, ok := openssl(t, "verify", "-crl_check", "-CAfile", caPEM, "-CRLfile", afterPEM, cert)
		if ok || !strings.Contains(out, "certificate revoked") {
			t.Fatalf("after revocation openssl verify -crl_check must report it revoked: %s", out)
		}
	})
}

// TestMutualTLS: an issued server certificate and an issued client
// certificate complete a TLS handshake over loopback, each side trusting
// only the CA.
func TestMutualTLS(t *testing.T) {
	f := newCertFixture(t, nil)
	pair := func(subject string) tls.Certificate {
		r := f.issue(lifecycle.IssueCertificateRequest{Subject: subject})
		c, err := tls.X509KeyPair(r.Certificate.Data, []byte(r.PrivateKey.Reveal()))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	pool := x509.NewCertPool()
	pool.AddCert(f.ca.Certificate())
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{
		Certificates: []tls.Certificate{pair("/O=clm/CN=localhost")},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    pool,
		MinVersion:   tls.VersionTLS12,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	got := make(chan string, 1)
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			got <- err.Error()
			return
		}
		defer conn.Close()
		tc := conn.(*tls.Conn)
		if err := tc.Handshake(); err != nil {
			got <- err.Error()
			return
		}
		got <- "client " + tc.ConnectionState().PeerCertificates[0].Subject.CommonName
		io.WriteString(conn, "ok")
	}()
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", ln.Addr().String(), &tls.Config{
		RootCAs:      pool,
		ServerName:   "localhost",
		Certificates: []tls.Certificate{pair("/CN=device-0001")},
	})
	if err != nil {
		t.Fatalf("the client must accept the issued server certificate: %v", err)
	}
	defer conn.Close()
	b, _ := io.ReadAll(conn)
	if s := <-got; s != "client device-0001" || !bytes.Equal(b, []byte("ok")) {
		t.Fatalf("the server must accept the issued client certificate: %s", s)
	}
}
