package hsm_test

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/pem"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/credlife/clm/backends/sqlitestore"
	"github.com/credlife/clm/ca"
	"github.com/credlife/clm/ca/hsm"
	"github.com/credlife/clm/internal/softhsm"
	"github.com/credlife/clm/lifecycle"
	"github.com/credlife/clm/lifecycle/catest"
)

// TestCAInSoftHSM: the local CA signs with a key in a SoftHSM2 token; its
// certificate, a leaf and a CRL signed in the token verify with openssl;
// the store holds no private key; the CA conformance suite passes.
func TestCAInSoftHSM(t *testing.T) {
	ctx := context.Background()
	module := softhsm.Token(t)
	for kt, id := range map[lifecycle.CertKeyType]string{lifecycle.KeyECP256: "7301", lifecycle.KeyRSA2048: "7302"} {
		t.Run(string(kt), func(t *testing.T) {
			signer, closeFn, err := hsm.Signer(ctx, module, "pkcs11:id="+id+";object=clm-"+strings.ToLower(string(kt)), kt)
			if err != nil {
				t.Fatal(err)
			}
			defer closeFn()
			dir := t.TempDir()
			store, err := sqlitestore.Open(ctx, filepath.Join(dir, "clm.db"), nil)
			if err != nil {
				t.Fatal(err)
			}
			defer store.Close()
			keys, _ := lifecycle.NewStaticKeys(1, map[uint32][]byte{1: bytes.Repeat([]byte{1}, 32)})
			c, err := ca.Open(ctx, store, keys, &ca.Options{Name: "hsm", Signer: signer})
			if err != nil {
				t.Fatal(err)
			}
			rec, _ := store.GetCredential(ctx, c.KeyNumber())
			if len(rec.Secret) != 0 {
				t.Fatal("a CA whose key is in the token stores no key")
			}
			m, err := lifecycle.New(store, &lifecycle.Options{Keys: keys, CAs: []lifecycle.CA{c}})
			if err != nil {
				t.Fatal(err)
			}
			p, _ := m.IssuePSK(ctx, lifecycle.IssuePSKRequest{Tenant: "t", Alias: "a"})
			creds := lifecycle.PSKCredentials{KeyID: p.KeyID, Password: p.Password}
			leaf, err := m.IssueCertificate(ctx, lifecycle.IssueCertificateRequest{PSK: creds, Device: lifecycle.DeviceRequest{Name: "d"},
				CA: "hsm", Subject: "/CN=hsm-leaf", KeyPath: "/k", Path: "/c", CAPath: "/ca"})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := m.RevokeCertificate(ctx, lifecycle.RevokeCertificateRequest{PSK: creds, Device: lifecycle.DeviceRequest{ID: leaf.Device.Device.ID},
				CA: "hsm", Ref: lifecycle.CertificateRef{KeyNumber: leaf.Certificate.KeyNumber}}); err != nil {
				t.Fatal(err)
			}
			crl, err := m.CRL(ctx, "hsm")
			if err != nil {
				t.Fatal(err)
			}
			write := func(name string, b []byte) string {
				p := filepath.Join(dir, name)
				os.WriteFile(p, b, 0o600)
				return p
			}
			caPEM := write("ca.pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Certificate().Raw}))
			leafPEM := write("leaf.pem", leaf.Certificate.Data)
			crlPEM := write("ca.crl", pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: crl.DER}))
			if out, err := exec.Command("openssl", "verify", "-CAfile", caPEM, caPEM).CombinedOutput(); err != nil {
				t.Fatalf("the CA certificate signed in the token: %s", out)
			}
			if out, err := exec.Command("openssl", "verify", "-CAfile", caPEM, leafPEM).CombinedOutput(); err != nil {
				t.Fatalf("the leaf signed in the token: %s", out)
			}
			if out, err := exec.Command("openssl", "crl", "-in", crlPEM, "-CAfile", caPEM, "-noout").CombinedOutput(); err != nil || !strings.Contains(string(out), "verify OK") {
				t.Fatalf("the CRL signed in the token: %s", out)
			}
			out, err := exec.Command("openssl", "verify", "-crl_check", "-CAfile", caPEM, "-CRLfile", crlPEM, leafPEM).CombinedOutput()
			if err == nil || !strings.Contains(string(out), "certificate revoked") {
				t.Fatalf("the revoked leaf must fail the CRL check: %s", out)
			}
			if _, err := x509.ParseCertificate(c.Certificate().Raw); err != nil {
				t.Fatal(err)
			}
			catest.Run(t, func(*testing.T) lifecycle.CA { return c }, &catest.Options{Issuances: 300})
		})
	}
}

// TestRootInSoftHSM: a root whose key stays in the token certifies an
// intermediate whose key is sealed in the store; the engine issues from the
// intermediate, and its certificates verify with the root alone as anchor.
func TestRootInSoftHSM(t *testing.T) {
	ctx := context.Background()
	module := softhsm.Token(t)
	signer, closeFn, err := hsm.Signer(ctx, module, "pkcs11:id=7303;object=clm-root", lifecycle.KeyECP256)
	if err != nil {
		t.Fatal(err)
	}
	defer closeFn()
	store, err := sqlitestore.Open(ctx, filepath.Join(t.TempDir(), "clm.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	keys, _ := lifecycle.NewStaticKeys(1, map[uint32][]byte{1: bytes.Repeat([]byte{1}, 32)})
	root, err := ca.Open(ctx, store, keys, &ca.Options{Name: "root", Root: true, Signer: signer})
	if err != nil {
		t.Fatal(err)
	}
	if rec, _ := store.GetCredential(ctx, root.KeyNumber()); len(rec.Secret) != 0 {
		t.Fatal("the root's key is in the token, not the store")
	}
	ca1, err := ca.Open(ctx, store, keys, &ca.Options{Name: "ca1", Issuer: root})
	if err != nil {
		t.Fatal(err)
	}
	m, err := lifecycle.New(store, &lifecycle.Options{Keys: keys, CAs: []lifecycle.CA{ca1}})
	if err != nil {
		t.Fatal(err)
	}
	p, _ := m.IssuePSK(ctx, lifecycle.IssuePSKRequest{Tenant: "t", Alias: "a"})
	res, err := m.IssueCertificate(ctx, lifecycle.IssueCertificateRequest{PSK: lifecycle.PSKCredentials{KeyID: p.KeyID, Password: p.Password}, Subject: "/CN=leaf"})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := pem.Decode(res.Certificate.Data)
	leaf, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	roots, inters := x509.NewCertPool(), x509.NewCertPool()
	roots.AddCert(root.Certificate())
	inters.AddCert(ca1.Certificate())
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inters, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		t.Fatalf("a leaf of the intermediate does not verify against the root in the token: %v", err)
	}
}
