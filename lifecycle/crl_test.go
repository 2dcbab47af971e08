package lifecycle_test

import (
	"context"
	"crypto/x509"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/credlife/clm/ca"
	"github.com/credlife/clm/lifecycle"
)

// countingCA counts the CRLs a CA signs.
type countingCA struct {
	lifecycle.CA
	crls atomic.Int64
}

func (c *countingCA) SignCRL(ctx context.Context, t *x509.RevocationList) ([]byte, error) {
	c.crls.Add(1)
	return c.CA.SignCRL(ctx, t)
}

// TestCRLSignedWhenItChanges: GET /CRL is unauthenticated, so a CRL is
// signed when the CA's revoked and superseded certificates change (by any
// engine on the store) or half its validity has passed; other calls are
// answered with the same CRL, with no signature and no CRL number drawn.
func TestCRLSignedWhenItChanges(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	k := keys(t, 1, 1)
	local, err := ca.Open(ctx, s, k, nil)
	if err != nil {
		t.Fatal(err)
	}
	clk := &testClock{now: time.Now()}
	counted := &countingCA{CA: local}
	m := newEngine(t, s, &lifecycle.Options{Keys: k, CAs: []lifecycle.CA{counted}, Now: clk.Now})
	other := newEngine(t, s, &lifecycle.Options{Keys: k, CAs: []lifecycle.CA{local}, Now: clk.Now}) // another process
	f := &certFixture{t: t, m: other}
	p, _ := other.IssuePSK(ctx, lifecycle.IssuePSKRequest{Tenant: "t", Alias: "a"})
	f.creds = lifecycle.PSKCredentials{KeyID: p.KeyID, Password: p.Password}
	d, err := other.EnrollDevice(ctx, lifecycle.EnrollDeviceRequest{PSK: f.creds, Device: lifecycle.DeviceRequest{Name: "gw"}})
	if err != nil {
		t.Fatal(err)
	}
	f.dev = lifecycle.DeviceRequest{ID: d.Device.ID, Key: d.Key}
	issued := f.issue(lifecycle.IssueCertificateRequest{Subject: "/CN=a"})

	first, err := m.CRL(ctx, "ca1")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 50 {
				c, err := m.CRL(ctx, "ca1")
				if err != nil || c.Number != first.Number {
					t.Errorf("an unchanged CRL must be served as it is: number %v (first %d), %v", c, first.Number, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if n := counted.crls.Load(); n != 1 {
		t.Fatalf("401 CRL requests with nothing revoked signed %d CRLs, want 1", n)
	}

	// A revocation by the other engine is on the next CRL of this one.
	if _, err := other.RevokeCertificate(ctx, lifecycle.RevokeCertificateRequest{PSK: f.creds, Device: f.dev, CA: "ca1",
		Ref: lifecycle.CertificateRef{KeyNumber: issued.Certificate.KeyNumber}, Reason: lifecycle.ReasonKeyCompromise}); err != nil {
		t.Fatal(err)
	}
	second, err := m.CRL(ctx, "ca1")
	if err != nil {
		t.Fatal(err)
	}
	parsed, err := x509.ParseRevocationList(second.DER)
	if err != nil {
		t.Fatal(err)
	}
	if second.Number <= first.Number || len(parsed.RevokedCertificateEntries) != 1 ||
		lifecycle.FormatSerial(parsed.RevokedCertificateEntries[0].SerialNumber) != issued.Certificate.Serial {
		t.Fatalf("the CRL after a revocation by another engine must list it under a higher number: number %d, %d entries", second.Number, len(parsed.RevokedCertificateEntries))
	}
	if n := counted.crls.Load(); n != 2 {
		t.Fatalf("one revocation must cost one signature: %d CRLs signed, want 2", n)
	}

	// Past half its validity (24 h by default) the CRL is signed anew.
	clk.add(11 * time.Hour)
	if c, _ := m.CRL(ctx, "ca1"); c.Number != second.Number {
		t.Fatal("a CRL within the first half of its validity must be kept")
	}
	clk.add(2 * time.Hour)
	third, err := m.CRL(ctx, "ca1")
	if err != nil || third.Number <= second.Number || !third.NextUpdate.After(second.NextUpdate) {
		t.Fatalf("a CRL past half its validity must be signed anew: %v", err)
	}
}

// TestStatusDoesNotSignPerCall: SystemStatus is unauthenticated; its proof
// that the CAs sign is reused for 10 seconds.
func TestStatusDoesNotSignPerCall(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	k := keys(t, 1, 1)
	local, err := ca.Open(ctx, s, k, nil)
	if err != nil {
		t.Fatal(err)
	}
	clk := &testClock{now: time.Now()}
	counted := &countingCA{CA: local}
	m := newEngine(t, s, &lifecycle.Options{Keys: k, CAs: []lifecycle.CA{counted}, Now: clk.Now})
	for range 200 {
		if err := m.Status(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if n := counted.crls.Load(); n != 1 {
		t.Fatalf("200 Status calls signed %d times, want 1", n)
	}
	clk.add(11 * time.Second)
	if err := m.Status(ctx); err != nil || counted.crls.Load() != 2 {
		t.Fatalf("after 10 s Status must prove again that the CA signs: %d signatures, %v", counted.crls.Load(), err)
	}
}
