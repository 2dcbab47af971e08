package lifecycle_test

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/credlife/clm/lifecycle"
	"github.com/credlife/clm/lifecycle/driver"
)

// countingStore counts the PSK reads that reach the store.
type countingStore struct {
	driver.Store
	reads atomic.Int64
}

func (c *countingStore) GetPSK(ctx context.Context, id int64) (*driver.PSKRecord, error) {
	c.reads.Add(1)
	return c.Store.GetPSK(ctx, id)
}

type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *testClock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *testClock) add(d time.Duration) { c.mu.Lock(); c.now = c.now.Add(d); c.mu.Unlock() }

func TestBruteForceLimit(t *testing.T) {
	ctx := context.Background()
	store := &countingStore{Store: openStore(t)}
	clock := &testClock{now: time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)}
	m := newEngine(t, store, &lifecycle.Options{Now: clock.Now})
	a, _ := m.IssuePSK(ctx, lifecycle.IssuePSKRequest{Tenant: "tenantA", Alias: "a"})
	b, _ := m.IssuePSK(ctx, lifecycle.IssuePSKRequest{Tenant: "tenantB", Alias: "b"})

	store.reads.Store(0)
	for i := range 1000 {
		keyID := a.KeyID
		if i%2 == 1 {
			keyID = "1" // the same PSK, not zero-padded: one counter
		}
		_, err := m.AuthenticatePSK(ctx, lifecycle.PSKCredentials{KeyID: keyID, Password: "guess"})
		if !errors.Is(err, lifecycle.CodePasswordMismatch) && !errors.Is(err, lifecycle.CodePSKNotActive) {
			t.Fatalf("attempt %d: %v", i, err)
		}
	}
	reached := store.reads.Load()
	t.Logf("FIGURE brute force: of 1,000 bad attempts, %d reached the store (limit 10 per 5 minutes per keyid)", reached)
	if reached != 10 {
		t.Fatalf("of 1,000 bad attempts %d reached the store, want 10", reached)
	}
	_, err := m.AuthenticatePSK(ctx, lifecycle.PSKCredentials{KeyID: a.KeyID, Password: a.Password})
	if !errors.Is(err, lifecycle.CodePSKNotActive) {
		t.Fatalf("while locked even the right password answers 1202 (403): %v", err)
	}
	if _, err := m.AuthenticatePSK(ctx, lifecycle.PSKCredentials{KeyID: b.KeyID, Password: b.Password}); err != nil {
		t.Fatalf("another tenant's PSK must not be locked: %v", err)
	}
	clock.add(5*time.Minute + time.Second)
	if _, err := m.AuthenticatePSK(ctx, lifecycle.PSKCredentials{KeyID: a.KeyID, Password: a.Password}); err != nil {
		t.Fatalf("after the window the PSK works again: %v", err)
	}
	// A success resets the count: nine failures, a success, nine failures
	// do not lock.
	for round := range 2 {
		for range 9 {
			m.AuthenticatePSK(ctx, lifecycle.PSKCredentials{KeyID: a.KeyID, Password: "guess"})
		}
		if _, err := m.AuthenticatePSK(ctx, lifecycle.PSKCredentials{KeyID: a.KeyID, Password: a.Password}); err != nil {
			t.Fatalf("round %d: nine failures must not lock: %v", round, err)
		}
	}
	// Off when negative.
	off := newEngine(t, openStore(t), &lifecycle.Options{AuthFailures: -1})
	p, _ := off.IssuePSK(ctx, lifecycle.IssuePSKRequest{Tenant: "t", Alias: "a"})
	for range 20 {
		off.AuthenticatePSK(ctx, lifecycle.PSKCredentials{KeyID: p.KeyID, Password: "guess"})
	}
	if _, err := off.AuthenticatePSK(ctx, lifecycle.PSKCredentials{KeyID: p.KeyID, Password: p.Password}); err != nil {
		t.Fatalf("with the limit off nothing locks: %v", err)
	}
}

// recorder is an Auditor that keeps the events.
type recorder struct {
	mu sync.Mutex
	ev []lifecycle.AuditEvent
}

func (r *recorder) Audit(_ context.Context, ev lifecycle.AuditEvent) {
	r.mu.Lock()
	r.ev = append(r.ev, ev)
	r.mu.Unlock()
}

func TestAuditEvents(t *testing.T) {
	ctx := context.Background()
	rec := &recorder{}
	f := newCertFixtureTB(t, &lifecycle.Options{Auditor: rec})
	m := f.m
	r := f.issue(lifecycle.IssueCertificateRequest{Subject: "/CN=a", Passphrase: "pp-secret"})
	m.AuthenticatePSK(ctx, lifecycle.PSKCredentials{KeyID: f.creds.KeyID, Password: "wrong"})
	m.RevokeCertificate(ctx, lifecycle.RevokeCertificateRequest{PSK: f.creds, Device: f.dev, CA: "ca1", Ref: lifecycle.CertificateRef{KeyNumber: r.Certificate.KeyNumber}})
	k, _ := m.CreateKey(ctx, lifecycle.CreateKeyRequest{PSK: f.creds, Device: f.dev, Alias: "k", KeyType: "AES", KeyPath: "/tmp/key", Path: "/k"})
	m.DeleteKey(ctx, lifecycle.DeleteKeyRequest{PSK: f.creds, Device: f.dev, KeyNumber: k.KeyNumber, Key: make([]byte, 16), Path: "/k"})

	want := []struct {
		op      string
		outcome lifecycle.Code
		kn      int64
	}{
		{"IssuePSK", 0, 0},
		{"EnrollDevice", 0, 0},
		{"IssueCertificate", 0, r.Certificate.KeyNumber},
		{"AuthenticatePSK", lifecycle.CodePasswordMismatch, 0},
		{"RevokeCertificate", 0, r.Certificate.KeyNumber},
		{"CreateKey", 0, k.KeyNumber},
		{"DeleteKey", lifecycle.CodeCommonKeyMismatch, k.KeyNumber},
	}
	if len(rec.ev) != len(want) {
		t.Fatalf("got %d events, want %d: %+v", len(rec.ev), len(want), rec.ev)
	}
	for i, w := range want {
		ev := rec.ev[i]
		if ev.Op != w.op || ev.Outcome != w.outcome || ev.KeyNumber != w.kn || ev.Time.IsZero() {
			t.Errorf("event %d: %+v, want op %s outcome %d keynumber %d", i, ev, w.op, w.outcome, w.kn)
		}
		if ev.Op != "IssuePSK" && ev.KeyID != f.creds.KeyID {
			t.Errorf("event %d must name the PSK that acted: %q", i, ev.KeyID)
		}
		if i >= 2 && ev.Op != "AuthenticatePSK" && ev.DeviceID != f.dev.ID {
			t.Errorf("event %d must name the device: %+v", i, ev)
		}
		if ev.Outcome == lifecycle.CodeOK && ev.Tenant != "t" {
			t.Errorf("a successful event names the tenant: %+v", ev)
		}
	}
	if rec.ev[2].Serial != r.Certificate.Serial {
		t.Error("a certificate's event names its serial")
	}
	dump := fmt.Sprintf("%+v %#v", rec.ev, rec.ev)
	for _, secret := range []string{f.creds.Password.Reveal(), "pp-secret", f.dev.Key.Reveal(), string(k.Key), r.PrivateKey.Reveal()} {
		if strings.Contains(dump, secret) {
			t.Fatal("an audit event carries a secret")
		}
	}
}

func TestRSAKeyPool(t *testing.T) {
	f := newCertFixtureTB(t, &lifecycle.Options{RSAKeyPool: 2})
	defer f.m.Close()
	if f.m.PooledKeys(lifecycle.KeyRSA2048) != 0 || f.m.PooledKeys(lifecycle.KeyRSA4096) != 0 {
		t.Fatal("a pool starts with the first issuance of its type")
	}
	f.issue(lifecycle.IssueCertificateRequest{Subject: "/CN=rsa", KeyType: "RSA-2048", Path: "/first"})
	deadline := time.Now().Add(60 * time.Second)
	for f.m.PooledKeys(lifecycle.KeyRSA2048) < 2 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := f.m.PooledKeys(lifecycle.KeyRSA2048); n != 2 {
		t.Fatalf("the pool fills to its bound: %d of 2", n)
	}
	time.Sleep(100 * time.Millisecond)
	if n := f.m.PooledKeys(lifecycle.KeyRSA2048); n > 2 {
		t.Fatalf("the pool is bounded: %d", n)
	}
	if f.m.PooledKeys(lifecycle.KeyRSA4096) != 0 {
		t.Fatal("no pool for a type never issued")
	}
	var keys []string
	for i := range 3 { // two from the pool, one generated on the path
		r := f.issue(lifecycle.IssueCertificateRequest{Subject: "/CN=rsa", KeyType: "RSA-2048", Path: fmt.Sprint("/rsa", i)})
		keys = append(keys, r.PrivateKey.Reveal())
	}
	if keys[0] == keys[1] || keys[1] == keys[2] {
		t.Fatal("each issuance gets its own key")
	}
	f.m.Close()
	if n := f.m.PooledKeys(lifecycle.KeyRSA2048); n != 0 {
		t.Fatalf("Close drops the pooled keys: %d left", n)
	}
	r := f.issue(lifecycle.IssueCertificateRequest{Subject: "/CN=rsa", KeyType: "RSA-2048", Path: "/after-close"})
	if r.PrivateKey == "" {
		t.Fatal("after Close the engine still issues, generating keys itself")
	}
}

// TestRSAKeyPoolRefillsInBursts checks that a full pool's generator rests
// until half the keys are taken, then fills the pool again.
func TestRSAKeyPoolRefillsInBursts(t *testing.T) {
	const size = 4
	f := newCertFixtureTB(t, &lifecycle.Options{RSAKeyPool: size})
	defer f.m.Close()
	waitFor := func(n int) time.Duration {
		t.Helper()
		start, deadline := time.Now(), time.Now().Add(120*time.Second)
		for f.m.PooledKeys(lifecycle.KeyRSA2048) < n {
			if time.Now().After(deadline) {
				t.Fatalf("the pool holds %d keys, want %d", f.m.PooledKeys(lifecycle.KeyRSA2048), n)
			}
			time.Sleep(5 * time.Millisecond)
		}
		return time.Since(start)
	}
	f.issue(lifecycle.IssueCertificateRequest{Subject: "/CN=rsa", KeyType: "RSA-2048", Path: "/first"})
	perKey := waitFor(size) / size
	f.issue(lifecycle.IssueCertificateRequest{Subject: "/CN=rsa", KeyType: "RSA-2048", Path: "/a"})
	time.Sleep(4 * perKey) // time enough for a generator at work to make a key
	if n := f.m.PooledKeys(lifecycle.KeyRSA2048); n != size-1 {
		t.Fatalf("above half full the generator rests: %d keys, want %d", n, size-1)
	}
	f.issue(lifecycle.IssueCertificateRequest{Subject: "/CN=rsa", KeyType: "RSA-2048", Path: "/b"})
	waitFor(size) // at half, the pool fills again
}

// TestBruteForceAcrossEngines: the counts live in the store, so two
// engines on one database (two server processes) give a guesser 10 tries
// per client address in all, not 10 each; the PSK's device, from another
// address, keeps working; 100 failures from many addresses lock the PSK
// for everyone (the ceiling).
func TestBruteForceAcrossEngines(t *testing.T) {
	ctx := context.Background()
	store := openStore(t)
	clock := &testClock{now: time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)}
	k := keys(t, 1, 1)
	a := newEngine(t, store, &lifecycle.Options{Keys: k, Now: clock.Now})
	b := newEngine(t, store, &lifecycle.Options{Keys: k, Now: clock.Now})
	p, _ := a.IssuePSK(ctx, lifecycle.IssuePSKRequest{Tenant: "t", Alias: "a"})
	from := func(addr string) context.Context {
		return lifecycle.WithClientAddress(ctx, netip.MustParseAddr(addr))
	}
	guess := lifecycle.PSKCredentials{KeyID: p.KeyID, Password: "guess"}
	right := lifecycle.PSKCredentials{KeyID: p.KeyID, Password: p.Password}
	attacker := from("203.0.113.7")
	for i := range 10 {
		_, err := []*lifecycle.Engine{a, b}[i%2].AuthenticatePSK(attacker, guess)
		if !errors.Is(err, lifecycle.CodePasswordMismatch) {
			t.Fatalf("guess %d: %v, want 1201", i+1, err)
		}
	}
	for i, m := range []*lifecycle.Engine{a, b} {
		if _, err := m.AuthenticatePSK(attacker, guess); !errors.Is(err, lifecycle.CodePSKNotActive) {
			t.Fatalf("after 10 failures split over two engines, engine %d must refuse the address (1202): %v", i, err)
		}
		if _, err := m.AuthenticatePSK(attacker, right); !errors.Is(err, lifecycle.CodePSKNotActive) {
			t.Fatalf("a locked address is refused even with the right password: %v", err)
		}
	}
	if _, err := b.AuthenticatePSK(from("198.51.100.20"), right); err != nil {
		t.Fatalf("the device, from its own address, must keep working: %v", err)
	}
	// An IPv6 attacker's /64 is one client.
	for i := range 10 {
		a.AuthenticatePSK(from(fmt.Sprintf("2001:db8:1:2::%x", i+1)), guess)
	}
	if _, err := b.AuthenticatePSK(from("2001:db8:1:2::ffff"), right); !errors.Is(err, lifecycle.CodePSKNotActive) {
		t.Fatalf("10 failures from one IPv6 /64 lock the /64: %v", err)
	}
	// The ceiling: 100 failures from all addresses lock the PSK for everyone.
	failures := 20 // so far
	for n := 0; failures < 100; n++ {
		for range 10 {
			a.AuthenticatePSK(from(fmt.Sprintf("192.0.2.%d", n+1)), guess)
			failures++
		}
	}
	_, err := b.AuthenticatePSK(from("198.51.100.20"), right)
	if !errors.Is(err, lifecycle.CodePSKNotActive) {
		t.Fatalf("after 100 failures from many addresses the PSK is locked for everyone: %v", err)
	}
	t.Logf("FIGURE brute force, two engines on one store: 10 failures per keyid and address (5 on each engine) lock that address; the device from another address works; 100 from many addresses lock the keyid")
	clock.add(5*time.Minute + time.Second)
	if _, err := a.AuthenticatePSK(from("198.51.100.20"), right); err != nil {
		t.Fatalf("after the window the PSK works again: %v", err)
	}
}
