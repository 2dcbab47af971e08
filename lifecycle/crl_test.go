package lifecycle_test

import (
	"context"
	"crypto"
	"crypto/x509"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/credlife/clm/backends/gormstore"
	"github.com/credlife/clm/ca"
	"github.com/credlife/clm/lifecycle"
)

// countingCA counts the certificates and CRLs a CA signs.
type countingCA struct {
	lifecycle.CA
	certs, crls atomic.Int64
}

func (c *countingCA) Sign(ctx context.Context, t *x509.Certificate, pub crypto.PublicKey) (*x509.Certificate, error) {
	c.certs.Add(1)
	return c.CA.Sign(ctx, t, pub)
}

func (c *countingCA) SignCRL(ctx context.Context, t *x509.RevocationList) ([]byte, error) {
	c.crls.Add(1)
	return c.CA.SignCRL(ctx, t)
}

// wrappedCA is an engine on SQLite whose CA, the local one, is seen
// through wrap; o's Keys and CAs are set here.
type wrappedCA struct {
	store *gormstore.Store
	keys  *lifecycle.StaticKeys
	local *ca.CA
	m     *lifecycle.Engine
}

func newWrappedCA(t *testing.T, wrap func(lifecycle.CA) lifecycle.CA, o *lifecycle.Options) *wrappedCA {
	t.Helper()
	w := &wrappedCA{store: openStore(t), keys: keys(t, 1, 1)}
	var err error
	if w.local, err = ca.Open(context.Background(), w.store, w.keys, nil); err != nil {
		t.Fatal(err)
	}
	if o == nil {
		o = &lifecycle.Options{}
	}
	o.Keys, o.CAs = w.keys, []lifecycle.CA{wrap(w.local)}
	w.m = newEngine(t, w.store, o)
	return w
}

// TestCRLSignedWhenItChanges: GET /CRL is unauthenticated, so a CRL is
// signed when the CA's revoked and superseded certificates change (by any
// engine on the store) or half its validity has passed; other calls are
// answered with the same CRL, with no signature and no CRL number drawn.
func TestCRLSignedWhenItChanges(t *testing.T) {
	ctx := context.Background()
	clk := &testClock{now: time.Now()}
	counted := &countingCA{}
	w := newWrappedCA(t, func(c lifecycle.CA) lifecycle.CA { counted.CA = c; return counted }, &lifecycle.Options{Now: clk.Now})
	m := w.m
	other := newEngine(t, w.store, &lifecycle.Options{Keys: w.keys, CAs: []lifecycle.CA{w.local}, Now: clk.Now}) // another process
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
	clk := &testClock{now: time.Now()}
	counted := &countingCA{}
	m := newWrappedCA(t, func(c lifecycle.CA) lifecycle.CA { counted.CA = c; return counted }, &lifecycle.Options{Now: clk.Now}).m
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

// TestNothingExpensiveBeforeChecks: a certificate request or a renewal that
// fails a check that needs no key (the device, the CA, the certificate's
// binding and state) answers before a key is generated or signed.
func TestNothingExpensiveBeforeChecks(t *testing.T) {
	ctx := context.Background()
	counted := &countingCA{}
	m := newWrappedCA(t, func(c lifecycle.CA) lifecycle.CA { counted.CA = c; return counted }, nil).m
	f := &certFixture{t: t, m: m}
	p, _ := m.IssuePSK(ctx, lifecycle.IssuePSKRequest{Tenant: "t", Alias: "a"})
	f.creds = lifecycle.PSKCredentials{KeyID: p.KeyID, Password: p.Password}
	enroll := func(name string) lifecycle.DeviceRequest {
		d, err := m.EnrollDevice(ctx, lifecycle.EnrollDeviceRequest{PSK: f.creds, Device: lifecycle.DeviceRequest{Name: name}})
		if err != nil {
			t.Fatal(err)
		}
		return lifecycle.DeviceRequest{ID: d.Device.ID, Name: name, Key: d.Key}
	}
	f.dev = enroll("gw")
	other := enroll("other")
	disabled := enroll("off")
	if err := m.SetDeviceStatus(ctx, "t", disabled.ID, lifecycle.DeviceDisabled); err != nil {
		t.Fatal(err)
	}
	held := f.issue(lifecycle.IssueCertificateRequest{Subject: "/CN=held", Path: "/held"})
	revoked := f.issue(lifecycle.IssueCertificateRequest{Subject: "/CN=gone", Path: "/gone"})
	if _, err := m.RevokeCertificate(ctx, lifecycle.RevokeCertificateRequest{PSK: f.creds, Device: f.dev, CA: "ca1", Ref: lifecycle.CertificateRef{KeyNumber: revoked.Certificate.KeyNumber}}); err != nil {
		t.Fatal(err)
	}
	wrongKey := f.dev
	wrongKey.Key = "not-the-device-key"
	wrongName := f.dev
	wrongName.Name = "someone-else"
	issue := func(dev lifecycle.DeviceRequest, caName string) error {
		_, err := m.IssueCertificate(ctx, lifecycle.IssueCertificateRequest{PSK: f.creds, Device: dev, CA: caName, Subject: "/CN=x",
			KeyPath: "/k", Path: "/x", CAPath: "/ca"})
		return err
	}
	renew := func(dev lifecycle.DeviceRequest, kn int64, path string) error {
		_, err := m.RenewCertificate(ctx, lifecycle.RenewCertificateRequest{PSK: f.creds, Device: dev, CA: "ca1",
			Ref: lifecycle.CertificateRef{KeyNumber: kn}, Passphrase: "p", Path: path})
		return err
	}
	for _, tc := range []struct {
		name string
		call func() error
		want lifecycle.Code
	}{
		{"IssueUnknownDevice", func() error { return issue(lifecycle.DeviceRequest{ID: "nosuchdevice", Name: "gw"}, "ca1") }, lifecycle.CodeDeviceNotFound},
		{"IssueWrongDeviceKey", func() error { return issue(wrongKey, "ca1") }, lifecycle.CodeDeviceKeyMismatch},
		{"IssueWrongDeviceName", func() error { return issue(wrongName, "ca1") }, lifecycle.CodeDeviceMismatch},
		{"IssueDisabledDevice", func() error { return issue(disabled, "ca1") }, lifecycle.CodeDeviceNotActive},
		{"IssueTakenName", func() error { return issue(lifecycle.DeviceRequest{Name: "gw"}, "ca1") }, lifecycle.CodeDeviceNameExists},
		{"IssueUnknownCA", func() error { return issue(f.dev, "ca9") }, lifecycle.CodeCANameInvalid},
		{"RenewWrongDeviceKey", func() error { return renew(wrongKey, held.Certificate.KeyNumber, "/held") }, lifecycle.CodeDeviceKeyMismatch},
		{"RenewUnknownCertificate", func() error { return renew(f.dev, 99999, "/held") }, lifecycle.CodeCertNotFound},
		{"RenewNotBound", func() error { return renew(other, held.Certificate.KeyNumber, "/held") }, lifecycle.CodeCertNotBound},
		{"RenewWrongPath", func() error { return renew(f.dev, held.Certificate.KeyNumber, "/elsewhere") }, lifecycle.CodeCertPathNotFound},
		{"RenewRevoked", func() error { return renew(f.dev, revoked.Certificate.KeyNumber, "/gone") }, lifecycle.CodeCertRevoked},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := counted.certs.Load()
			err := tc.call()
			if lifecycle.CodeOf(err) != tc.want {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			if n := counted.certs.Load() - before; n != 0 {
				t.Fatalf("a request failing with %v had %d certificate(s) signed first", tc.want, n)
			}
		})
	}
}
