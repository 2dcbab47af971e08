package cipher_test

import (
	"bytes"
	"crypto/aes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"testing"

	clmcipher "github.com/credlife/clm/cipher"
)

func TestNewKeyType(t *testing.T) {
	tests := []struct {
		a       clmcipher.Algorithm
		bits    int
		wantErr error
	}{
		{clmcipher.AES, 128, nil},
		{clmcipher.AES, 192, nil},
		{clmcipher.AES, 256, nil},
		{clmcipher.TWINE, 80, nil},
		{clmcipher.TWINE, 128, nil},
		{clmcipher.TWINE, 256, clmcipher.ErrKeyLength}, // the reference's "TWINE 256" does not exist
		{clmcipher.AES, 80, clmcipher.ErrKeyLength},
		{clmcipher.TWINE, 0, clmcipher.ErrKeyLength},
		{clmcipher.Algorithm(9), 128, clmcipher.ErrUnknownAlgorithm},
	}
	for _, tc := range tests {
		kt, err := clmcipher.NewKeyType(tc.a, tc.bits)
		if !errors.Is(err, tc.wantErr) || (err == nil && (kt.Bits != tc.bits || !kt.Valid())) {
			t.Errorf("NewKeyType(%v, %d) = %v, %v; want error %v", tc.a, tc.bits, kt, err, tc.wantErr)
		}
	}
}

func TestParseAndString(t *testing.T) {
	for _, kt := range []clmcipher.KeyType{clmcipher.AES128, clmcipher.AES192, clmcipher.AES256, clmcipher.TWINE80, clmcipher.TWINE128} {
		got, err := clmcipher.ParseKeyType(kt.String())
		if err != nil || got != kt {
			t.Errorf("ParseKeyType(%q) = %v, %v", kt.String(), got, err)
		}
	}
	for _, bad := range []string{"AES", "AES-", "DES-56", "TWINE-256", "AES-x"} {
		if _, err := clmcipher.ParseKeyType(bad); err == nil {
			t.Errorf("ParseKeyType(%q) must fail", bad)
		}
	}
	if a, err := clmcipher.ParseAlgorithm("twine"); err != nil || a != clmcipher.TWINE || a.String() != "TWINE" {
		t.Errorf("ParseAlgorithm(twine) = %v, %v", a, err)
	}
}

func TestGenerateKey(t *testing.T) {
	for _, kt := range []clmcipher.KeyType{clmcipher.AES128, clmcipher.AES256, clmcipher.TWINE80, clmcipher.TWINE128} {
		a, err := clmcipher.GenerateKey(rand.Reader, kt)
		if err != nil || len(a) != kt.Bits/8 {
			t.Fatalf("GenerateKey(%v): %d bytes, %v", kt, len(a), err)
		}
		b, _ := clmcipher.GenerateKey(rand.Reader, kt)
		if bytes.Equal(a, b) {
			t.Fatalf("two generated %v keys are equal", kt)
		}
	}
	if _, err := clmcipher.GenerateKey(rand.Reader, clmcipher.KeyType{clmcipher.TWINE, 256}); !errors.Is(err, clmcipher.ErrKeyLength) {
		t.Fatal("GenerateKey of TWINE-256 must fail")
	}
	if _, err := clmcipher.GenerateKey(bytes.NewReader([]byte{1, 2}), clmcipher.AES128); err == nil {
		t.Fatal("a short random source must be an error")
	}
}

func TestNewBlock(t *testing.T) {
	// FIPS 197, Appendix C.1: AES-128.
	key, _ := hex.DecodeString("000102030405060708090a0b0c0d0e0f")
	pt, _ := hex.DecodeString("00112233445566778899aabbccddeeff")
	ct, _ := hex.DecodeString("69c4e0d86a7b0430d8cdb78070b4c55a")
	b, err := clmcipher.NewBlock(clmcipher.AES128, key)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]byte, aes.BlockSize)
	b.Encrypt(out, pt)
	if !bytes.Equal(out, ct) {
		t.Fatalf("AES-128 = %x", out)
	}
	// TWINE paper vector, 80-bit key.
	tkey, _ := hex.DecodeString("00112233445566778899")
	tpt, _ := hex.DecodeString("0123456789ABCDEF")
	tb, err := clmcipher.NewBlock(clmcipher.TWINE80, tkey)
	if err != nil {
		t.Fatal(err)
	}
	tout := make([]byte, 8)
	tb.Encrypt(tout, tpt)
	if hex.EncodeToString(tout) != "7c1f0f80b1df9c28" {
		t.Fatalf("TWINE-80 = %x", tout)
	}
	if _, err := clmcipher.NewBlock(clmcipher.AES256, key); err == nil {
		t.Fatal("a key of the wrong length must be refused")
	}
}

func BenchmarkAES128Block(b *testing.B) {
	blk, _ := clmcipher.NewBlock(clmcipher.AES128, make([]byte, 16))
	buf := make([]byte, 16)
	b.SetBytes(16)
	b.ReportAllocs()
	for b.Loop() {
		blk.Encrypt(buf, buf)
	}
}
