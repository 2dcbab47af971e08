package twine

import (
	"bytes"
	"testing"
)

// FuzzRoundTrip: for any 80- or 128-bit key and block, Decrypt undoes
// Encrypt, in place and not.
func FuzzRoundTrip(f *testing.F) {
	f.Add([]byte("0123456789"), []byte("abcdefgh"))
	f.Add(bytes.Repeat([]byte{0xff}, 16), make([]byte, 8))
	f.Fuzz(func(t *testing.T, key, block []byte) {
		switch {
		case len(key) >= 16:
			key = key[:16]
		case len(key) >= 10:
			key = key[:10]
		default:
			if _, err := NewCipher(key); err == nil {
				t.Fatalf("a %d-byte key must be refused", len(key))
			}
			return
		}
		if len(block) < BlockSize {
			return
		}
		c, err := NewCipher(key)
		if err != nil {
			t.Fatal(err)
		}
		pt := bytes.Clone(block[:BlockSize])
		ct := make([]byte, BlockSize)
		c.Encrypt(ct, pt)
		back := make([]byte, BlockSize)
		c.Decrypt(back, ct)
		if !bytes.Equal(back, pt) {
			t.Fatalf("round trip failed: key %x block %x", key, pt)
		}
		c.Encrypt(pt, pt)
		if !bytes.Equal(pt, ct) {
			t.Fatal("in place must equal out of place")
		}
	})
}
