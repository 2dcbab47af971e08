package lifecycle_test

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/credlife/clm/lifecycle"
)

// FuzzParseSubject: no panic; an accepted subject prints in a form that
// parses back to the same attributes; every error is one of the two kinds.
func FuzzParseSubject(f *testing.F) {
	for _, s := range []string{"/C=JP/ST=Tokyo/L=Minato/O=NEC/OU=IoT/CN=AP1", `/CN=a\/b/O=x\\y`, "/CN=", "CN=x", "/CN=x/CN=y", "/C=jp/CN=x", "/CN=" + string(rune(0x1F600))} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		sub, err := lifecycle.ParseSubject(s)
		if err != nil {
			if !errors.Is(err, lifecycle.ErrSubjectSyntax) && !errors.Is(err, lifecycle.ErrSubjectLimit) {
				t.Fatalf("an error of no known kind: %v", err)
			}
			return
		}
		again, err := lifecycle.ParseSubject(sub.String())
		if err != nil || len(again.Attributes) != len(sub.Attributes) {
			t.Fatalf("String() must parse back: %q → %q: %v", s, sub.String(), err)
		}
		for i := range sub.Attributes {
			if again.Attributes[i] != sub.Attributes[i] {
				t.Fatalf("attribute %d changed: %v → %v", i, sub.Attributes[i], again.Attributes[i])
			}
		}
		if sub.CommonName() == "" {
			t.Fatal("an accepted subject has a CN")
		}
		sub.SANs()
		sub.RDNSequence()
	})
}

// FuzzParseAddresses: MAC and IP parsing never panic, and what they accept
// is already normal (parsing it again gives it back).
func FuzzParseAddresses(f *testing.F) {
	for _, s := range []string{"12:34:56:78:90:AB", "12-34-56-78-90-ab", "1234567890ab", "::1", "192.168.0.1", "fe80::1%eth0", "1.2.3", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if mac, err := lifecycle.ParseMACAddress(s); err == nil {
			if again, err := lifecycle.ParseMACAddress(mac); err != nil || again != mac || len(mac) != 17 {
				t.Fatalf("MAC %q → %q is not normal", s, mac)
			}
		}
		if ip, err := lifecycle.ParseIPAddress(s); err == nil {
			if again, err := lifecycle.ParseIPAddress(ip); err != nil || again != ip {
				t.Fatalf("IP %q → %q is not normal", s, ip)
			}
		}
		if n, err := lifecycle.ParseKeyID(s); err == nil && (n < 1 || n > lifecycle.MaxKeyID) {
			t.Fatalf("keyid %q → %d out of range", s, n)
		}
		if sn, err := lifecycle.ParseSerial(s); err == nil {
			if again, _ := lifecycle.ParseSerial(sn); again != sn {
				t.Fatalf("serial %q → %q is not normal", s, sn)
			}
		}
	})
}

// FuzzSealedOpen: opening arbitrary bytes never panics and never
// succeeds unless they are a value sealed for that record.
func FuzzSealedOpen(f *testing.F) {
	ctx := context.Background()
	// A fixed nonce source, so that the fuzzing workers (other processes)
	// compute the same sealed value as the seed corpus holds.
	s := lifecycle.NewSealer(keys(f, 1, 1, 2), bytes.NewReader(make([]byte, 12)))
	good, _ := s.Seal(ctx, []byte("secret"), []byte("rec"))
	mac, _ := s.MAC(ctx, []byte("secret"), []byte("rec"))
	f.Add(good, []byte("rec"))
	f.Add(mac, []byte("rec"))
	f.Add([]byte{1, 0, 0, 0, 9}, []byte("rec"))
	f.Add([]byte{}, []byte{})
	f.Fuzz(func(t *testing.T, sealed, ad []byte) {
		pt, err := s.Open(ctx, sealed, ad)
		if err == nil && !(bytes.Equal(sealed, good) && string(ad) == "rec" && string(pt) == "secret") {
			t.Fatalf("an arbitrary value opened: %x", sealed)
		}
		if err != nil && !errors.Is(err, lifecycle.CodeDecrypt) {
			t.Fatalf("a failed open answers 2003: %v", err)
		}
		ok, err := s.VerifyMAC(ctx, sealed, []byte("secret"), ad)
		if ok && !(bytes.Equal(sealed, mac) && string(ad) == "rec") {
			t.Fatalf("an arbitrary hash verified: %x", sealed)
		}
		_ = err
	})
}
