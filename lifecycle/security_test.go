package lifecycle_test

import (
	"context"
	"crypto"
	"crypto/x509"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/credlife/clm/lifecycle"
	"github.com/credlife/clm/lifecycle/driver"
)

// TestWildcardsRefusedByDefault: a wildcard CN (which would become a
// wildcard subjectAltName) is refused unless Options.AllowWildcards.
func TestWildcardsRefusedByDefault(t *testing.T) {
	req := lifecycle.IssueCertificateRequest{Subject: "/CN=*.example.com", KeyPath: "/k", Path: "/w", CAPath: "/ca", CA: "ca1"}
	f := newCertFixture(t, nil)
	req.PSK, req.Device = f.creds, f.dev
	_, err := f.m.IssueCertificate(context.Background(), req)
	var e *lifecycle.Error
	if !errors.As(err, &e) || e.Code != lifecycle.CodeMalformed || e.Field != "Subject" {
		t.Fatalf("a wildcard CN by default: %v, want 1103 on Subject", err)
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

// blockingCA holds every Sign until release is closed, counting those in
// flight.
type blockingCA struct {
	lifecycle.CA
	inFlight atomic.Int64
	release  chan struct{}
}

func (c *blockingCA) Sign(ctx context.Context, t *x509.Certificate, pub crypto.PublicKey) (*x509.Certificate, error) {
	c.inFlight.Add(1)
	<-c.release
	return c.CA.Sign(ctx, t, pub)
}

// TestExpensiveOperationsBounded: requests that do expensive work (here a
// passphrase's PBKDF2) run ExpensiveConcurrency at a time; a cheap request
// is not held behind them; one that waits past ExpensiveWait answers 1403
// and changes nothing.
func TestExpensiveOperationsBounded(t *testing.T) {
	ctx := context.Background()
	blocking := &blockingCA{release: make(chan struct{})}
	w := newWrappedCA(t, func(c lifecycle.CA) lifecycle.CA { blocking.CA = c; return blocking },
		&lifecycle.Options{ExpensiveConcurrency: 1, ExpensiveWait: 200 * time.Millisecond})
	m, s := w.m, w.store
	p, _ := m.IssuePSK(ctx, lifecycle.IssuePSKRequest{Tenant: "t", Alias: "a"})
	creds := lifecycle.PSKCredentials{KeyID: p.KeyID, Password: p.Password}
	d, err := m.EnrollDevice(ctx, lifecycle.EnrollDeviceRequest{PSK: creds, Device: lifecycle.DeviceRequest{Name: "gw"}})
	if err != nil {
		t.Fatal(err)
	}
	dev := lifecycle.DeviceRequest{ID: d.Device.ID, Key: d.Key}
	issue := func(path string, passphrase lifecycle.Secret) error {
		_, err := m.IssueCertificate(ctx, lifecycle.IssueCertificateRequest{PSK: creds, Device: dev, CA: "ca1", Subject: "/CN=x",
			KeyPath: "/k", Path: path, CAPath: "/ca", Passphrase: passphrase})
		return err
	}
	waitFor := func(n int64) {
		deadline := time.Now().Add(10 * time.Second)
		for blocking.inFlight.Load() < n {
			if time.Now().After(deadline) {
				t.Fatalf("%d signings in flight, want %d", blocking.inFlight.Load(), n)
			}
			time.Sleep(time.Millisecond)
		}
	}
	errs := make(chan error, 2)
	go func() { errs <- issue("/heavy", "pass") }()
	waitFor(1) // the expensive request holds the only slot
	go func() { errs <- issue("/cheap", "") }()
	waitFor(2) // a cheap request is not held behind it

	stats := func() int64 {
		st, err := s.CredentialStats(ctx, driver.CredentialQuery{Tenant: "t"})
		if err != nil {
			t.Fatal(err)
		}
		return st.Count
	}
	before := stats()
	start := time.Now()
	err = issue("/queued", "pass")
	if !errors.Is(err, lifecycle.CodeLockTimeout) {
		t.Fatalf("an expensive request waiting past ExpensiveWait: %v, want 1403", err)
	}
	if time.Since(start) < 200*time.Millisecond || blocking.inFlight.Load() != 2 {
		t.Fatal("the queued request must wait its turn, not sign")
	}
	if stats() != before {
		t.Fatal("a request that waited too long must change nothing")
	}
	close(blocking.release)
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if err := issue("/later", "pass"); err != nil {
		t.Fatalf("once the slot is free an expensive request runs: %v", err)
	}
}
