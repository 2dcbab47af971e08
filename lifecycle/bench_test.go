package lifecycle_test

import (
	"context"
	"testing"

	"github.com/credlife/clm/lifecycle"
)

func BenchmarkIssuePSK(b *testing.B) {
	ctx := context.Background()
	e := newEngine(b, openStore(b), nil)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := e.IssuePSK(ctx, lifecycle.IssuePSKRequest{Tenant: "t", Alias: "a"}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAuthenticatePSK(b *testing.B) {
	ctx := context.Background()
	e := newEngine(b, openStore(b), nil)
	p, err := e.IssuePSK(ctx, lifecycle.IssuePSKRequest{Tenant: "t", Alias: "a"})
	if err != nil {
		b.Fatal(err)
	}
	creds := lifecycle.PSKCredentials{KeyID: p.KeyID, Password: p.Password}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := e.AuthenticatePSK(ctx, creds); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSealOpen(b *testing.B) {
	ctx := context.Background()
	s := lifecycle.NewSealer(keys(b, 1, 1), nil)
	pt := make([]byte, 64)
	ad := []byte("clm/psk/0000000001/password")
	b.ReportAllocs()
	for b.Loop() {
		sealed, err := s.Seal(ctx, pt, ad)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := s.Open(ctx, sealed, ad); err != nil {
			b.Fatal(err)
		}
	}
}
