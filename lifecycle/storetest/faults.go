package storetest

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/credlife/clm/ca"
	"github.com/credlife/clm/lifecycle"
	"github.com/credlife/clm/lifecycle/driver"
)

// FailPath is the binding path that NoPartialState makes fail.
const FailPath = "/fail"

// NoPartialState checks that an operation of several statements whose last
// statement fails leaves no row behind. failBindings must make every insert
// of a binding with Path FailPath fail, from then on (a trigger does it).
func NoPartialState(t *testing.T, s driver.Store, failBindings func(ctx context.Context) error) {
	ctx := context.Background()
	e := &env{t: t, ctx: ctx}
	k := &certEnv{env: e, s: s, c: &clock{now: time.Now().UTC().Truncate(time.Second)}}
	keys := testKeys(e, 1, 1)
	var err error
	k.ca, err = ca.Open(ctx, s, keys, &ca.Options{Now: k.c.Now})
	e.must(err, "ca.Open")
	k.m = e.engine(s, k.c, &lifecycle.Options{Keys: keys, CAs: []lifecycle.CA{k.ca}})
	p, err := k.m.IssuePSK(ctx, lifecycle.IssuePSKRequest{Tenant: "partial", Alias: "a"})
	e.must(err, "IssuePSK")
	creds := lifecycle.PSKCredentials{KeyID: p.KeyID, Password: p.Password}
	c, err := k.m.IssueCertificate(ctx, lifecycle.IssueCertificateRequest{PSK: creds, Device: lifecycle.DeviceRequest{Name: "d"},
		CA: "ca1", Subject: "/CN=p", KeyPath: "/k", Path: "/ok", CAPath: "/ca"})
	e.must(err, "IssueCertificate")
	dev := lifecycle.DeviceRequest{ID: c.Device.Device.ID, Key: c.Device.Key}
	count := func() (int, int) {
		devs, err := s.ListDevices(ctx, driver.DeviceQuery{Tenant: "partial", Limit: 1000})
		e.must(err, "ListDevices")
		creds, err := s.ListCredentials(ctx, driver.CredentialQuery{Tenant: "partial", Limit: 1000})
		e.must(err, "ListCredentials")
		return len(devs), len(creds)
	}
	d0, c0 := count()
	e.must(failBindings(ctx), "installing the failing statement")
	checks := []struct {
		name string
		call func() error
	}{
		{"a new device with its certificate", func() error {
			_, err := k.m.IssueCertificate(ctx, lifecycle.IssueCertificateRequest{PSK: creds, Device: lifecycle.DeviceRequest{Name: "new", ExtData: map[string]string{"a": "b"}},
				CA: "ca1", Subject: "/CN=n", KeyPath: "/k", Path: FailPath, CAPath: "/ca"})
			return err
		}},
		{"a key", func() error {
			_, err := k.m.CreateKey(ctx, lifecycle.CreateKeyRequest{PSK: creds, Device: dev, Alias: "k", KeyType: "AES", KeyPath: "/k", Path: FailPath})
			return err
		}},
		{"a renewal", func() error {
			_, err := k.m.RenewCertificate(ctx, lifecycle.RenewCertificateRequest{PSK: creds, Device: dev, CA: "ca1",
				Ref: lifecycle.CertificateRef{KeyNumber: c.Certificate.KeyNumber}, Passphrase: "p", Path: "/ok", NewPath: FailPath})
			return err
		}},
	}
	for _, ch := range checks {
		err := ch.call()
		if code := lifecycle.CodeOf(err); code < 1601 || code > 1604 {
			t.Fatalf("%s: a failing statement must answer a database error (160x), got %v", ch.name, err)
		}
		if d, cr := count(); d != d0 || cr != c0 {
			t.Fatalf("%s: a failed operation left rows behind: devices %d→%d, credentials %d→%d", ch.name, d0, d, c0, cr)
		}
	}
	r, err := s.GetCredential(ctx, c.Certificate.KeyNumber)
	e.must(err, "GetCredential")
	if r.State != driver.StateValid {
		t.Fatal("a failed renewal must leave the old certificate valid")
	}
	// The Store's own PutBinding, outside a transaction, of more bindings
	// than one statement may take, the last of which fails.
	var batch []*driver.BindingRecord
	for i := range int64(9) {
		path := "/batch"
		if i == 8 {
			path = FailPath
		}
		batch = append(batch, &driver.BindingRecord{Tenant: "partial", DeviceID: dev.ID, KeyNumber: 100 + i, Path: path, CreatedAt: time.Now().UTC()})
	}
	if err := s.PutBinding(ctx, batch...); err == nil {
		t.Fatal("PutBinding with a failing binding must fail")
	}
	if bs, err := s.BindingsAt(ctx, "partial", dev.ID, "/batch", 100); err != nil || len(bs) != 0 {
		t.Fatalf("a failed PutBinding of %d bindings left %d of them behind (%v)", len(batch), len(bs), err)
	}
	t.Logf("FIGURE partial states found after %d failed multi-row operations: 0", len(checks)+1)
}

// LockTimeout checks that a request waiting on a row lock held past the
// database's lock timeout answers 1403 and changes nothing. hold must lock
// the row of the keyid sequence (as SELECT ... FOR UPDATE in an open
// transaction would) until release is called; s must be opened with a
// short lock timeout.
func LockTimeout(t *testing.T, s driver.Store, hold func(ctx context.Context) (release func(), err error)) {
	ctx := context.Background()
	e := &env{t: t, ctx: ctx}
	m := e.engine(s, &clock{now: time.Now()}, nil)
	release, err := hold(ctx)
	e.must(err, "holding the lock")
	start := time.Now()
	_, err = m.IssuePSK(ctx, lifecycle.IssuePSKRequest{Tenant: "locked", Alias: "a"})
	waited := time.Since(start)
	release()
	if !errors.Is(err, lifecycle.CodeLockTimeout) {
		t.Fatalf("a lock held past the timeout must answer 1403, got %v", err)
	}
	if page, _ := m.ListPSKs(ctx, lifecycle.ListPSKsRequest{Tenant: "locked"}); len(page.PSKs) != 0 {
		t.Fatal("a timed-out request must change nothing")
	}
	if _, err := m.IssuePSK(ctx, lifecycle.IssuePSKRequest{Tenant: "locked", Alias: "a"}); err != nil {
		t.Fatalf("once the lock is released requests succeed: %v", err)
	}
	t.Logf("FIGURE lock timeout: answered 1403 after %v", waited.Round(time.Millisecond))
}

// PoolHeldByTransactions checks that transactions holding every connection
// of s's pool at their first use of s's statements all complete: a burst
// of requests, more than the pool has connections, just after a start. If
// a transaction took a second connection (to prepare a statement for the
// Store), each would wait for another forever. The caller has set s's pool
// to conns connections; conns must be 1 for a Store that runs one
// transaction at a time.
func PoolHeldByTransactions(t *testing.T, s driver.Store, conns int) {
	t.Helper()
	ctx := context.Background()
	var arrived sync.WaitGroup
	arrived.Add(conns)
	errs := make(chan error, conns)
	for i := range conns {
		go func() {
			errs <- s.Atomic(ctx, func(tx driver.Tx) error {
				arrived.Done()
				arrived.Wait() // every connection is held by a transaction
				kn := int64(1000 + i)
				if err := tx.CreateCredential(ctx, &driver.CredentialRecord{KeyNumber: kn, Tenant: "t",
					Kind: driver.KindSymmetricKey, State: driver.StateValid, Secret: []byte{1}}); err != nil {
					return err
				}
				_, err := tx.GetCredential(ctx, kn)
				return err
			})
		}()
	}
	start := time.Now()
	deadline := time.After(30 * time.Second)
	for range conns {
		select {
		case err := <-errs:
			if err != nil {
				t.Fatalf("a transaction at its first use of the statements: %v", err)
			}
		case <-deadline:
			t.Fatalf("%d transactions holding the pool's %d connections did not complete in 30 s: they wait for another connection", conns, conns)
		}
	}
	t.Logf("FIGURE pool held by transactions: %d transactions holding all %d connections, at their first use of the statements, completed in %v",
		conns, conns, time.Since(start).Round(time.Millisecond))
}
