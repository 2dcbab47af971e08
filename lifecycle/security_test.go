package lifecycle_test

import (
	"context"
	"errors"
	"testing"

	"github.com/credlife/clm/lifecycle"
)

// TestWildcardsRefusedByDefault: a wildcard CN (which would become a
// wildcard subjectAltName) is refused unless Options.AllowWildcards.
func TestWildcardsRefusedByDefault(t *testing.T) {
	req := lifecycle.IssueCertificateRequest{Subject: "/CN=*.example.com", KeyPath: "/k", Path: "/w", CAPath: "/ca", CA: "ca1"}
	f := newCertFixture(t, nil)
	req.PSK, req.Device = f.creds, f.dev
	_, err := f.m.IssueCertificate(context.Background(), req)
	var e *lifecycle.Error
	if !errors.As(err, &e) || e.Code != lifecycle.CodeMalformed || e.Field != "clientsubject" {
		t.Fatalf("a wildcard CN by default: %v, want 1103 on clientsubject", err)
	}
	f = newCertFixture(t, &lifecycle.Options{AllowWildcards: true})
	req.PSK, req.Device = f.creds, f.dev
	res, err := f.m.IssueCertificate(context.Background(), req)
	if err != nil {
		t.Fatalf("with AllowWildcards: %v", err)
	}
	if res.Certificate.Serial == "" {
		t.Fatal("with AllowWildcards the certificate must be issued")
	}
}
