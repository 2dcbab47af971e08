package kmskeys_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.step.sm/crypto/kms/apiv1"
	"go.step.sm/crypto/kms/pkcs11"
	"go.step.sm/crypto/kms/softkms"
	"go.step.sm/crypto/pemutil"

	"github.com/credlife/clm/backends/sqlitestore"
	"github.com/credlife/clm/internal/softhsm"
	"github.com/credlife/clm/kmskeys"
	"github.com/credlife/clm/lifecycle"
)

// SoftHSM2 decrypts OAEP over SHA-1 only.
var sha1 = &kmskeys.Options{Hash: crypto.SHA1}

// TestKEKWrappedInSoftHSM: a KEK wrapped by an RSA key in a SoftHSM2 token
// seals a store; the store reopens with the KEK unwrapped again by the
// token; a KEK wrapped under another token key does not unwrap.
func TestKEKWrappedInSoftHSM(t *testing.T) {
	ctx := context.Background()
	km, err := pkcs11.New(ctx, apiv1.Options{Type: apiv1.PKCS11, URI: softhsm.Token(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer km.Close()
	for _, id := range []string{"7331", "7332"} {
		if _, err := km.CreateKey(&apiv1.CreateKeyRequest{Name: "pkcs11:id=" + id + ";object=kek-" + id, SignatureAlgorithm: apiv1.SHA256WithRSA, Bits: 2048}); err != nil {
			t.Fatal(err)
		}
	}
	keyURI := "pkcs11:id=7331;object=kek-7331"
	wrapped, err := kmskeys.Wrap(km, keyURI, sha1)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := kmskeys.Unwrap(km, keyURI, 1, map[uint32][]byte{1: wrapped}, sha1)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "clm.db")
	s, err := sqlitestore.Open(ctx, path, nil)
	if err != nil {
		t.Fatal(err)
	}
	m, _ := lifecycle.New(s, &lifecycle.Options{Keys: keys})
	p, err := m.IssuePSK(ctx, lifecycle.IssuePSKRequest{Tenant: "t", Alias: "a"})
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := s.GetPSK(ctx, 1)
	s.Close()
	if bytes.Contains(raw.Password, []byte(p.Password.Reveal())) {
		t.Fatal("the password must be sealed at rest")
	}

	// A restart: the same wrapped KEK, unwrapped again by the token.
	again, err := kmskeys.Unwrap(km, keyURI, 1, map[uint32][]byte{1: wrapped}, sha1)
	if err != nil {
		t.Fatal(err)
	}
	s, err = sqlitestore.Open(ctx, path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	m, _ = lifecycle.New(s, &lifecycle.Options{Keys: again})
	if err := m.CheckKeys(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := m.AuthenticatePSK(ctx, lifecycle.PSKCredentials{KeyID: p.KeyID, Password: p.Password}); err != nil {
		t.Fatalf("the store must open with the KEK unwrapped again: %v", err)
	}
	if _, err := kmskeys.Unwrap(km, "pkcs11:id=7332;object=kek-7332", 1, map[uint32][]byte{1: wrapped}, sha1); err == nil || !strings.Contains(err.Error(), "does not unwrap") {
		t.Fatalf("a KEK wrapped under another key must not unwrap: %v", err)
	}
}

// TestKEKWrappedDefault: the default OAEP hash (SHA-256), with a software
// key through go.step.sm/crypto/kms/softkms.
func TestKEKWrappedDefault(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	block, err := pemutil.Serialize(key)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "kek-wrapper.pem")
	if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	km := &softkms.SoftKMS{} // its key names are file paths
	wrapped, err := kmskeys.Wrap(km, path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kmskeys.Unwrap(km, path, 1, map[uint32][]byte{1: wrapped}, nil); err != nil {
		t.Fatalf("SHA-256 by default: %v", err)
	}
	if _, err := kmskeys.Unwrap(km, path, 1, map[uint32][]byte{1: wrapped}, sha1); err == nil {
		t.Fatal("a KEK wrapped with one OAEP hash must not unwrap with another")
	}
}
