package ca_test

import (
	"bytes"
	"context"
	"crypto/x509"
	"crypto/x509/pkix"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/credlife/clm/backends/sqlitestore"
	"github.com/credlife/clm/ca"
	"github.com/credlife/clm/lifecycle"
	"github.com/credlife/clm/lifecycle/catest"
	"github.com/credlife/clm/lifecycle/driver"
)

func keys(t testing.TB) *lifecycle.StaticKeys {
	k, err := lifecycle.NewStaticKeys(1, map[uint32][]byte{1: bytes.Repeat([]byte{1}, 32)})
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func openStore(t testing.TB, path string) driver.Store {
	s, err := sqlitestore.Open(context.Background(), path, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	for _, kt := range lifecycle.CertKeyTypes() {
		t.Run(string(kt), func(t *testing.T) {
			opts := &catest.Options{}
			if kt == lifecycle.KeyRSA3072 || kt == lifecycle.KeyRSA4096 || kt == lifecycle.KeyECP384 {
				// Each of these signatures costs milliseconds (P-384 many
				// more under the race detector); serials do not depend on
				// the CA's key, and EC-P256, RSA-2048 and Ed25519 run the
				// full 10,000.
				opts.Issuances = 1000
			}
			catest.Run(t, func(t *testing.T) lifecycle.CA {
				c, err := ca.Open(context.Background(), openStore(t, filepath.Join(t.TempDir(), "clm.db")), keys(t), &ca.Options{KeyType: kt})
				if err != nil {
					t.Fatal(err)
				}
				return c
			}, opts)
		})
	}
}

func TestOpenCreatesOnceAndReloads(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "clm.db")
	s := openStore(t, path)
	first, err := ca.Open(ctx, s, keys(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	if first.Name() != "ca1" || first.KeyNumber() == 0 {
		t.Fatalf("the default CA is ca1 with a keynumber: %q %d", first.Name(), first.KeyNumber())
	}
	rec, err := s.GetCredential(ctx, first.KeyNumber())
	if err != nil || rec.Kind != driver.KindCACertificate || len(rec.Secret) == 0 {
		t.Fatalf("the CA must be recorded with its sealed key: %v", err)
	}
	der, _ := x509.MarshalPKCS8PrivateKey(first.Signer())
	if bytes.Contains(rec.Secret, der) {
		t.Fatal("the CA key must be sealed at rest")
	}
	// Another handle, as another process: the same CA, several at once.
	s2 := openStore(t, path)
	var wg sync.WaitGroup
	got := make([]*ca.CA, 4)
	for i := range got {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got[i], _ = ca.Open(ctx, s2, keys(t), nil)
		}()
	}
	wg.Wait()
	for _, c := range got {
		if c == nil || !c.Certificate().Equal(first.Certificate()) || c.KeyNumber() != first.KeyNumber() {
			t.Fatal("reopening must load the same CA")
		}
	}
	// A second CA name is a second CA, concurrently created once.
	var ca2s [4]*ca.CA
	for i := range ca2s {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ca2s[i], _ = ca.Open(ctx, []driver.Store{s, s2}[i%2], keys(t), &ca.Options{Name: "ca2"})
		}()
	}
	wg.Wait()
	for _, c := range ca2s {
		if c == nil || !c.Certificate().Equal(ca2s[0].Certificate()) || c.Certificate().Equal(first.Certificate()) {
			t.Fatal("concurrent first starts must create one ca2, distinct from ca1")
		}
	}
	if _, err := ca.Open(ctx, s, lifecycle.KeySource(mustKeys(t, 2)), nil); err == nil {
		t.Fatal("a CA key sealed under other KEKs must not open")
	}
}

func mustKeys(t testing.TB, b byte) *lifecycle.StaticKeys {
	k, _ := lifecycle.NewStaticKeys(1, map[uint32][]byte{1: bytes.Repeat([]byte{b}, 32)})
	return k
}

// TestExternalSigner: a key held elsewhere (a KMS or HSM gives a
// crypto.Signer) signs, and nothing of it is stored.
func TestExternalSigner(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "clm.db")
	s := openStore(t, path)
	hsm, _ := lifecycle.GenerateCertKey(lifecycle.KeyECP384)
	c, err := ca.Open(ctx, s, keys(t), &ca.Options{Name: "hsm", Signer: hsm})
	if err != nil {
		t.Fatal(err)
	}
	rec, _ := s.GetCredential(ctx, c.KeyNumber())
	if len(rec.Secret) != 0 {
		t.Fatal("a CA with an external signer must store no key")
	}
	if _, err := ca.Open(ctx, s, keys(t), &ca.Options{Name: "hsm"}); err == nil {
		t.Fatal("reopening without the external signer must fail")
	}
	other, _ := lifecycle.GenerateCertKey(lifecycle.KeyECP384)
	if _, err := ca.Open(ctx, s, keys(t), &ca.Options{Name: "hsm", Signer: other}); err == nil {
		t.Fatal("reopening with another key must fail")
	}
	again, err := ca.Open(ctx, s, keys(t), &ca.Options{Name: "hsm", Signer: hsm})
	if err != nil || !again.Certificate().Equal(c.Certificate()) {
		t.Fatalf("reopening with the same signer: %v", err)
	}
	catest.Run(t, func(*testing.T) lifecycle.CA { return again }, &catest.Options{Issuances: 500})
}

// hierarchy opens a root (sealed in the store) and an intermediate "ca1"
// under it on one store.
func hierarchy(t *testing.T, s driver.Store, o *ca.Options) (root, ca1 *ca.CA) {
	t.Helper()
	ctx := context.Background()
	root, err := ca.Open(ctx, s, keys(t), &ca.Options{Name: "root", Root: true})
	if err != nil {
		t.Fatal(err)
	}
	opts := ca.Options{}
	if o != nil {
		opts = *o
	}
	opts.Name, opts.Issuer = "ca1", root
	if ca1, err = ca.Open(ctx, s, keys(t), &opts); err != nil {
		t.Fatal(err)
	}
	return root, ca1
}

func TestConformanceIntermediate(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts ca.Options
	}{{"Sealed", ca.Options{}}, {"DelegatedOCSP", ca.Options{DelegatedOCSP: true}}} {
		t.Run(tc.name, func(t *testing.T) {
			catest.Run(t, func(t *testing.T) lifecycle.CA {
				_, c := hierarchy(t, openStore(t, filepath.Join(t.TempDir(), "clm.db")), &tc.opts)
				return c
			}, &catest.Options{Issuances: 300}) // serials are the signer's, not the hierarchy's: TestConformance draws 10,000
		})
	}
}

func TestIntermediateChain(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "clm.db")
	s := openStore(t, path)
	root, c := hierarchy(t, s, nil)
	chain := c.Chain()
	if len(chain) != 2 || !chain[1].Equal(root.Certificate()) || !chain[0].Equal(c.Certificate()) {
		t.Fatalf("the intermediate's chain is %d certificates, want itself and the root", len(chain))
	}
	if root.Certificate().MaxPathLen != 1 || c.Certificate().MaxPathLen != 0 || !c.Certificate().MaxPathLenZero {
		t.Fatalf("path lengths: root %d, intermediate %d (zero %v); want 1 and 0", root.Certificate().MaxPathLen, c.Certificate().MaxPathLen, c.Certificate().MaxPathLenZero)
	}
	if c.Certificate().NotAfter.After(root.Certificate().NotAfter) {
		t.Fatal("the intermediate outlives its root")
	}
	// Reopened from the store (without Issuer), it has the same chain.
	again, err := ca.Open(ctx, s, keys(t), &ca.Options{Name: "ca1"})
	if err != nil {
		t.Fatal(err)
	}
	if got := again.Chain(); len(got) != 2 || !got[0].Equal(chain[0]) || !got[1].Equal(chain[1]) {
		t.Fatal("reopened, the intermediate lost its chain")
	}
	leaf, err := c.Sign(ctx, &x509.Certificate{Subject: pkix.Name{CommonName: "d"}, NotBefore: time.Now().Add(-time.Minute), NotAfter: time.Now().Add(time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}, c.Signer().Public())
	if err != nil {
		t.Fatal(err)
	}
	roots, inter := x509.NewCertPool(), x509.NewCertPool()
	roots.AddCert(root.Certificate())
	inter.AddCert(c.Certificate())
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Fatalf("a leaf of the intermediate does not verify with the root alone as anchor: %v", err)
	}
}

func TestImportOfflineRoot(t *testing.T) {
	ctx := context.Background()
	// The root lives on another store (an offline machine) and never
	// touches this one.
	offline := openStore(t, filepath.Join(t.TempDir(), "offline.db"))
	root, inter := hierarchy(t, offline, nil)
	s := openStore(t, filepath.Join(t.TempDir(), "clm.db"))

	// Refusals change nothing.
	other, err := lifecycle.GenerateCertKey(lifecycle.KeyECP256)
	if err != nil {
		t.Fatal(err)
	}
	for name, call := range map[string]func() error{
		"wrong key": func() error { return ca.Import(ctx, s, keys(t), "ca1", inter.Chain(), other) },
		"broken chain": func() error {
			return ca.Import(ctx, s, keys(t), "ca1", []*x509.Certificate{inter.Certificate(), inter.Certificate()}, inter.Signer())
		},
		"reserved name":  func() error { return ca.Import(ctx, s, keys(t), lifecycle.CANameCA, inter.Chain(), inter.Signer()) },
		"no certificate": func() error { return ca.Import(ctx, s, keys(t), "ca1", nil, inter.Signer()) },
	} {
		if err := call(); err == nil {
			t.Fatalf("%s: Import accepted it", name)
		}
	}
	if page, err := s.ListCredentials(ctx, driver.CredentialQuery{Limit: 10}); err != nil || len(page) != 0 {
		t.Fatalf("a refused Import recorded %d credentials (%v)", len(page), err)
	}

	if err := ca.Import(ctx, s, keys(t), "ca1", inter.Chain(), inter.Signer()); err != nil {
		t.Fatal(err)
	}
	if err := ca.Import(ctx, s, keys(t), "ca1", inter.Chain(), inter.Signer()); err == nil {
		t.Fatal("a second Import under the same name was accepted")
	}
	c, err := ca.Open(ctx, s, keys(t), &ca.Options{Name: "ca1"})
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Chain(); len(got) != 2 || !got[1].Equal(root.Certificate()) || !got[0].Equal(inter.Certificate()) {
		t.Fatal("the imported CA's chain is not the intermediate and its root")
	}
	if _, err := ca.Open(ctx, s, keys(t), &ca.Options{Name: "ca1.1"}); err == nil {
		t.Fatal("the offline root opened as a CA on this store: its key is not here")
	}
	catest.Run(t, func(*testing.T) lifecycle.CA { return c }, &catest.Options{Issuances: 300})
}
