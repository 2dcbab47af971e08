package ca_test

import (
	"bytes"
	"context"
	"crypto/x509"
	"path/filepath"
	"sync"
	"testing"

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
