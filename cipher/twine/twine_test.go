package twine

import (
	"bytes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"testing"
)

// Known answers from the TWINE paper (Suzaki et al., SAC 2012, Appendix:
// test vectors), as restated in the project's twine.md.
var paperVectors = []struct {
	key, plaintext, ciphertext string
}{
	{"00112233445566778899", "0123456789ABCDEF", "7C1F0F80B1DF9C28"},
	{"00112233445566778899AABBCCDDEEFF", "0123456789ABCDEF", "979FF9B379B5A9B8"},
}

func unhex(t testing.TB, s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestPaperVectors(t *testing.T) {
	for _, v := range paperVectors {
		t.Run(v.key, func(t *testing.T) {
			c, err := NewCipher(unhex(t, v.key))
			if err != nil {
				t.Fatal(err)
			}
			pt, ct := unhex(t, v.plaintext), unhex(t, v.ciphertext)
			got := make([]byte, BlockSize)
			c.Encrypt(got, pt)
			if !bytes.Equal(got, ct) {
				t.Fatalf("Encrypt = %X, want %X", got, ct)
			}
			c.Decrypt(got, ct)
			if !bytes.Equal(got, pt) {
				t.Fatalf("Decrypt = %X, want %X", got, pt)
			}
		})
	}
}

func TestSboxConstant(t *testing.T) {
	for x, s := range sboxTable {
		if got := (sboxBits >> (4 * x)) & 0xF; got != uint64(s) {
			t.Fatalf("sboxBits nibble %d = %X, want %X", x, got, s)
		}
	}
}

// TestShuffle checks the mask-and-shift forms of π and π⁻¹ against the
// paper's table, nibble by nibble.
func TestShuffle(t *testing.T) {
	pi := [16]int{5, 0, 1, 4, 7, 12, 3, 8, 13, 6, 9, 2, 15, 10, 11, 14}
	for h := range 16 {
		x := uint64(0xF) << (60 - 4*h)
		y := shuffleFwd(x)
		if want := uint64(0xF) << (60 - 4*pi[h]); y != want {
			t.Fatalf("π must move nibble %d to %d: %016X", h, pi[h], y)
		}
		if shuffleInv(y) != x {
			t.Fatalf("π⁻¹ must undo π for nibble %d", h)
		}
	}
}

func TestRandomRoundTrips(t *testing.T) {
	for _, size := range []int{10, 16} {
		for range 200 {
			key := make([]byte, size)
			pt := make([]byte, BlockSize)
			rand.Read(key)
			rand.Read(pt)
			c, err := NewCipher(key)
			if err != nil {
				t.Fatal(err)
			}
			ct := make([]byte, BlockSize)
			c.Encrypt(ct, pt)
			if bytes.Equal(ct, pt) {
				t.Fatalf("a ciphertext equal to its plaintext: key %X", key)
			}
			back := make([]byte, BlockSize)
			c.Decrypt(back, ct)
			if !bytes.Equal(back, pt) {
				t.Fatalf("Decrypt(Encrypt(p)) != p for key %X, p %X", key, pt)
			}
		}
	}
}

func TestKeySizes(t *testing.T) {
	for _, n := range []int{0, 8, 9, 11, 15, 17, 24, 32} {
		_, err := NewCipher(make([]byte, n))
		var ks KeySizeError
		if !errors.As(err, &ks) || int(ks) != n {
			t.Errorf("NewCipher with %d bytes: %v, want KeySizeError(%d)", n, err, n)
		}
	}
}

// TestBlockContract checks what crypto/cipher.Block promises: in-place
// operation, exact overlap allowed, inexact overlap and short buffers panic.
func TestBlockContract(t *testing.T) {
	c, _ := NewCipher(unhex(t, paperVectors[0].key))
	if c.BlockSize() != 8 {
		t.Fatal("BlockSize must be 8")
	}
	pt, ct := unhex(t, paperVectors[0].plaintext), unhex(t, paperVectors[0].ciphertext)
	t.Run("in place", func(t *testing.T) {
		buf := bytes.Clone(pt)
		c.Encrypt(buf, buf)
		if !bytes.Equal(buf, ct) {
			t.Fatalf("in-place Encrypt = %X", buf)
		}
		c.Decrypt(buf, buf)
		if !bytes.Equal(buf, pt) {
			t.Fatalf("in-place Decrypt = %X", buf)
		}
	})
	t.Run("longer buffers use the first block", func(t *testing.T) {
		src := append(bytes.Clone(pt), 1, 2, 3)
		dst := bytes.Repeat([]byte{0xAA}, 12)
		c.Encrypt(dst, src)
		if !bytes.Equal(dst[:8], ct) || !bytes.Equal(dst[8:], []byte{0xAA, 0xAA, 0xAA, 0xAA}) {
			t.Fatalf("Encrypt must write exactly one block: %X", dst)
		}
	})
	mustPanic := func(name string, fn func()) {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Fatal("want a panic")
				}
			}()
			fn()
		})
	}
	buf := make([]byte, 16)
	mustPanic("short src", func() { c.Encrypt(make([]byte, 8), make([]byte, 7)) })
	mustPanic("short dst", func() { c.Decrypt(make([]byte, 7), make([]byte, 8)) })
	mustPanic("inexact overlap", func() { c.Encrypt(buf[1:9], buf[0:8]) })
	mustPanic("inexact overlap decrypt", func() { c.Decrypt(buf[0:8], buf[4:12]) })
}

// TestWithModes: TWINE works with crypto/cipher's modes.
func TestWithModes(t *testing.T) {
	c, _ := NewCipher(unhex(t, paperVectors[1].key))
	iv := make([]byte, BlockSize)
	msg := bytes.Repeat([]byte("0123456789abcdef"), 4)
	ct := make([]byte, len(msg))
	cipher.NewCBCEncrypter(c, iv).CryptBlocks(ct, msg)
	back := make([]byte, len(msg))
	cipher.NewCBCDecrypter(c, iv).CryptBlocks(back, ct)
	if !bytes.Equal(back, msg) {
		t.Fatal("CBC round trip failed")
	}
}

func benchmark(b *testing.B, keySize int, decrypt bool) {
	c, _ := NewCipher(make([]byte, keySize))
	buf := make([]byte, BlockSize)
	b.SetBytes(BlockSize)
	b.ReportAllocs()
	for b.Loop() {
		if decrypt {
			c.Decrypt(buf, buf)
		} else {
			c.Encrypt(buf, buf)
		}
	}
}

func BenchmarkEncrypt80(b *testing.B)  { benchmark(b, 10, false) }
func BenchmarkEncrypt128(b *testing.B) { benchmark(b, 16, false) }
func BenchmarkDecrypt128(b *testing.B) { benchmark(b, 16, true) }

func BenchmarkNewCipher(b *testing.B) {
	key := make([]byte, 16)
	b.ReportAllocs()
	for b.Loop() {
		NewCipher(key)
	}
}

// fTable is f with the S-box read from memory, indexed by secret nibbles:
// the form this package avoids. It is here only to measure what avoiding
// it costs.
func fTable(x, rk uint64) uint64 {
	t := x ^ rk
	for j := range 8 {
		e := 60 - 8*j
		x ^= uint64(sboxTable[(t>>e)&0xF]) << (e - 4)
	}
	return x
}

func BenchmarkFLayer(b *testing.B) {
	for _, v := range []struct {
		name string
		f    func(x, rk uint64) uint64
	}{{"register-shift", f}, {"memory-table", fTable}} {
		b.Run(v.name, func(b *testing.B) {
			x := uint64(0x0123456789ABCDEF)
			for b.Loop() {
				x = v.f(x, 0x5A5A5A5A5A5A5A5A)
			}
			sink = x
		})
	}
}

var sink uint64

func TestFTableAgrees(t *testing.T) {
	for i := range uint64(1000) {
		x, rk := i*0x9E3779B97F4A7C15, i*0xC2B2AE3D27D4EB4F
		if f(x, rk) != fTable(x, rk) {
			t.Fatal("the two forms of f must agree")
		}
	}
}
