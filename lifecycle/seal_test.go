package lifecycle_test

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/credlife/clm/lifecycle"
)

func keys(t testing.TB, current uint32, versions ...uint32) *lifecycle.StaticKeys {
	t.Helper()
	m := map[uint32][]byte{}
	for _, v := range versions {
		m[v] = bytes.Repeat([]byte{byte(v)}, 32)
	}
	k, err := lifecycle.NewStaticKeys(current, m)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestSealOpen(t *testing.T) {
	ctx := context.Background()
	s := lifecycle.NewSealer(keys(t, 1, 1), nil)
	pt := []byte("private key bytes")
	sealed, err := s.Seal(ctx, pt, []byte("record-1"))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(sealed, pt) {
		t.Fatal("a sealed value must not contain its plaintext")
	}
	if v, err := lifecycle.SealedVersion(sealed); err != nil || v != 1 {
		t.Fatalf("a sealed value names its KEK version: %d, %v", v, err)
	}
	got, err := s.Open(ctx, sealed, []byte("record-1"))
	if err != nil || !bytes.Equal(got, pt) {
		t.Fatalf("Open must return the plaintext: %q, %v", got, err)
	}
	again, _ := s.Seal(ctx, pt, []byte("record-1"))
	if bytes.Equal(again, sealed) {
		t.Fatal("two seals of one value must differ (random nonce)")
	}

	tampered := bytes.Clone(sealed)
	tampered[len(tampered)-1] ^= 1
	retagged := bytes.Clone(sealed)
	retagged[4] = 9 // names KEK version 9
	tests := []struct {
		name   string
		sealed []byte
		ad     string
	}{
		{"another record", sealed, "record-2"},
		{"tampered ciphertext", tampered, "record-1"},
		{"unknown KEK version", retagged, "record-1"},
		{"truncated", sealed[:10], "record-1"},
		{"empty", nil, "record-1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.Open(ctx, tc.sealed, []byte(tc.ad))
			if !errors.Is(err, lifecycle.CodeDecrypt) {
				t.Fatalf("Open must fail with code 2003, got %v", err)
			}
		})
	}
	other := lifecycle.NewSealer(keys(t, 1, 1, 2), nil)
	if _, err := other.Open(ctx, sealed, []byte("record-1")); err != nil {
		t.Fatal("another Sealer with the same KEK must open the value")
	}
	wrongKey, _ := lifecycle.NewStaticKeys(1, map[uint32][]byte{1: bytes.Repeat([]byte{7}, 32)})
	if _, err := lifecycle.NewSealer(wrongKey, nil).Open(ctx, sealed, []byte("record-1")); !errors.Is(err, lifecycle.CodeDecrypt) {
		t.Fatal("a different key of the same version must not open the value")
	}
}

func TestMAC(t *testing.T) {
	ctx := context.Background()
	s := lifecycle.NewSealer(keys(t, 1, 1), nil)
	mac, err := s.MAC(ctx, []byte("device-key"), []byte("dev-1"))
	if err != nil {
		t.Fatal(err)
	}
	check := func(name string, mac, secret, ad []byte, want bool) {
		t.Run(name, func(t *testing.T) {
			ok, err := s.VerifyMAC(ctx, mac, secret, ad)
			if err != nil || ok != want {
				t.Fatalf("VerifyMAC = %v, %v; want %v", ok, err, want)
			}
		})
	}
	check("right key", mac, []byte("device-key"), []byte("dev-1"), true)
	check("wrong key", mac, []byte("device-kez"), []byte("dev-1"), false)
	check("another device", mac, []byte("device-key"), []byte("dev-2"), false)
	rotated := lifecycle.NewSealer(keys(t, 2, 1, 2), nil)
	if ok, err := rotated.VerifyMAC(ctx, mac, []byte("device-key"), []byte("dev-1")); !ok || err != nil {
		t.Fatal("a hash made under KEK 1 must verify while KEK 1 is kept")
	}
	if _, err := s.VerifyMAC(ctx, mac[:10], nil, nil); !errors.Is(err, lifecycle.CodeDecrypt) {
		t.Fatal("a malformed hash is an error (2003)")
	}
}

func TestNewStaticKeys(t *testing.T) {
	k32 := bytes.Repeat([]byte{1}, 32)
	tests := []struct {
		name    string
		current uint32
		keys    map[uint32][]byte
	}{
		{"version 0", 0, map[uint32][]byte{0: k32}},
		{"short key", 1, map[uint32][]byte{1: k32[:16]}},
		{"current missing", 2, map[uint32][]byte{1: k32}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := lifecycle.NewStaticKeys(tc.current, tc.keys); err == nil {
				t.Fatal("NewStaticKeys must refuse this")
			}
		})
	}
}
