package lifecycle_test

import (
	"context"
	"crypto/x509"
	"fmt"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/credlife/clm/backends/sqlitestore"
	"github.com/credlife/clm/ca"
	"github.com/credlife/clm/lifecycle"
	"github.com/credlife/clm/lifecycle/driver"
)

// events collects audit events.
type events struct {
	mu  sync.Mutex
	evs []lifecycle.AuditEvent
}

func (e *events) Audit(_ context.Context, ev lifecycle.AuditEvent) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.evs = append(e.evs, ev)
}

// of returns "op keynumber detail" of the events of the given ops, sorted.
func (e *events) of(ops ...string) []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []string
	for _, ev := range e.evs {
		for _, op := range ops {
			if ev.Op == op {
				out = append(out, fmt.Sprintf("%s %d %s", ev.Op, ev.KeyNumber, ev.Detail))
			}
		}
	}
	sort.Strings(out)
	return out
}

// TestSweepExpiry: two engines sweep one store as time passes; each
// credential gets each warning once (the nearest of those crossed at once),
// and one expiry event; revoked credentials get none.
func TestSweepExpiry(t *testing.T) {
	clock := &testClock{now: time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)}
	s := openStore(t)
	k := keys(t, 1, 1)
	c, err := ca.Open(bg, s, k, &ca.Options{Now: clock.Now})
	require.NoError(t, err)
	var ev1, ev2 events
	opts := func(a lifecycle.Auditor, validity time.Duration) *lifecycle.Options {
		return &lifecycle.Options{Keys: k, CAs: []lifecycle.CA{c}, Now: clock.Now, Auditor: a, CertValidity: validity, KeyValidity: 40 * 24 * time.Hour}
	}
	m1 := newEngine(t, s, opts(&ev1, 60*24*time.Hour))
	m2 := newEngine(t, s, opts(&ev2, 2*24*time.Hour)) // issues for 2 days
	p, err := m1.IssuePSK(bg, lifecycle.IssuePSKRequest{Tenant: "t", Alias: "a"})
	require.NoError(t, err)
	creds := lifecycle.PSKCredentials{KeyID: p.KeyID, Password: p.Password}
	long, err := m1.IssueCertificate(bg, lifecycle.IssueCertificateRequest{PSK: creds, Subject: "/CN=long"})
	require.NoError(t, err)
	short, err := m2.IssueCertificate(bg, lifecycle.IssueCertificateRequest{PSK: creds, Subject: "/CN=short"})
	require.NoError(t, err)
	revoked, err := m2.IssueCertificate(bg, lifecycle.IssueCertificateRequest{PSK: creds, Subject: "/CN=revoked"})
	require.NoError(t, err)
	_, err = m2.RevokeCertificate(bg, lifecycle.RevokeCertificateRequest{PSK: creds, Device: lifecycle.DeviceRequest{ID: revoked.Device.Device.ID}, Ref: lifecycle.CertificateRef{KeyNumber: revoked.Certificate.KeyNumber}})
	require.NoError(t, err)
	key, err := m1.CreateKey(bg, lifecycle.CreateKeyRequest{PSK: creds, Alias: "k"})
	require.NoError(t, err)

	all := func() []string {
		return append(ev1.of(lifecycle.OpCredentialExpiring, lifecycle.OpCredentialExpired), ev2.of(lifecycle.OpCredentialExpiring, lifecycle.OpCredentialExpired)...)
	}
	sweepBoth := func() {
		t.Helper()
		var wg sync.WaitGroup
		for _, m := range []*lifecycle.Engine{m1, m2} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := m.SweepExpiry(bg)
				assert.NoError(t, err)
			}()
		}
		wg.Wait()
	}
	l, sh, kn := long.Certificate.KeyNumber, short.Certificate.KeyNumber, key.KeyNumber
	// Day 0: the short certificate has 2 days left, within 30 and 7 days
	// but not 1: the 7-day warning only. The key (40 days) and the long
	// certificate (60 days) are outside every threshold.
	sweepBoth()
	want := []string{fmt.Sprintf("CredentialExpiring %d 168h0m0s", sh)}
	assert.ElementsMatch(t, want, all(), "the short certificate gets the nearest warning only")
	clock.add(25 * time.Hour) // 23 h left
	sweepBoth()
	sweepBoth()
	want = append(want, fmt.Sprintf("CredentialExpiring %d 24h0m0s", sh))
	assert.ElementsMatch(t, want, all(), "the 1-day warning, once")
	clock.add(24 * time.Hour) // past the short certificate's end
	sweepBoth()
	want = append(want, fmt.Sprintf("CredentialExpired %d ", sh))
	assert.ElementsMatch(t, want, all())
	clock.add(9 * 24 * time.Hour) // day 11: the key has 29 days left
	sweepBoth()
	want = append(want, fmt.Sprintf("CredentialExpiring %d 720h0m0s", kn))
	assert.ElementsMatch(t, want, all())
	clock.add(23 * 24 * time.Hour) // day 34: the key has 6 days left, the long certificate 26
	sweepBoth()
	want = append(want, fmt.Sprintf("CredentialExpiring %d 168h0m0s", kn), fmt.Sprintf("CredentialExpiring %d 720h0m0s", l))
	assert.ElementsMatch(t, want, all())
	clock.add(7 * 24 * time.Hour) // day 41: the key has ended (its 1-day warning fell between sweeps)
	sweepBoth()
	want = append(want, fmt.Sprintf("CredentialExpired %d ", kn))
	assert.ElementsMatch(t, want, all(), "each event once, across both engines")
	for _, ev := range append(ev1.evs, ev2.evs...) {
		if ev.Op == lifecycle.OpCredentialExpiring || ev.Op == lifecycle.OpCredentialExpired {
			assert.Equal(t, "t", ev.Tenant)
			assert.False(t, ev.NotAfter.IsZero())
			assert.NotEqual(t, revoked.Certificate.KeyNumber, ev.KeyNumber, "a revoked certificate gets no notice")
		}
	}
}

// TestPurgeBoundaries seeds credentials on both sides of each boundary of
// retention: state (valid is never purged) and end (more or less than the
// retention ago); Purge removes exactly those it should, with their
// bindings, and the CRL stops listing them.
func TestPurgeBoundaries(t *testing.T) {
	now := time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := &testClock{now: now}
	s := openStore(t)
	k := keys(t, 1, 1)
	c, err := ca.Open(bg, s, k, nil)
	require.NoError(t, err)
	var ev events
	m := newEngine(t, s, &lifecycle.Options{Keys: k, CAs: []lifecycle.CA{c}, Now: clock.Now, Auditor: &ev, Retention: 10 * 24 * time.Hour})
	cut := now.Add(-10 * 24 * time.Hour)
	type seed struct {
		kind     driver.CredentialKind
		state    driver.CredentialState
		notAfter time.Time
		purged   bool
	}
	seeds := []seed{
		{driver.KindCertificate, driver.StateRevoked, cut.Add(-time.Second), true},
		{driver.KindCertificate, driver.StateRevoked, cut.Add(time.Second), false},
		{driver.KindCertificate, driver.StateRevoked, cut, false}, // exactly at the boundary: kept
		{driver.KindCertificate, driver.StateSuperseded, cut.Add(-time.Hour), true},
		{driver.KindCertificate, driver.StateSuperseded, cut.Add(time.Hour), false},
		{driver.KindCertificate, driver.StateValid, cut.Add(-365 * 24 * time.Hour), false}, // expired long ago but never revoked
		{driver.KindSymmetricKey, driver.StateDeleted, cut.Add(-time.Hour), true},
		{driver.KindSymmetricKey, driver.StateSuperseded, cut.Add(-time.Hour), true},
		{driver.KindSymmetricKey, driver.StateDeleted, cut.Add(time.Hour), false},
		{driver.KindSymmetricKey, driver.StateValid, cut.Add(-time.Hour), false},
	}
	for i, sd := range seeds {
		kn := int64(1000 + i)
		r := &driver.CredentialRecord{KeyNumber: kn, Tenant: "t", Kind: sd.kind, State: driver.StateValid, KeyType: "AES", KeyLength: 128,
			NotBefore: sd.notAfter.Add(-time.Hour), NotAfter: sd.notAfter, CreatedAt: sd.notAfter.Add(-time.Hour)}
		if sd.kind == driver.KindCertificate {
			r.CA, r.Serial, r.KeyType, r.Certificate = "ca1", fmt.Sprintf("%X", kn), "EC-P256", []byte{0x30}
		}
		require.NoError(t, s.CreateCredential(bg, r))
		require.NoError(t, s.PutBinding(bg, &driver.BindingRecord{Tenant: "t", DeviceID: "d", KeyNumber: kn, Path: "/p", CreatedAt: now}))
		if sd.state != driver.StateValid {
			require.NoError(t, s.TransitionCredential(bg, driver.Transition{KeyNumber: kn, From: driver.StateValid, To: sd.state, At: sd.notAfter.Add(-time.Minute)}))
		}
	}
	res, err := m.Purge(bg)
	require.NoError(t, err)
	var want int
	for i, sd := range seeds {
		kn := int64(1000 + i)
		_, err := s.GetCredential(bg, kn)
		bs, berr := s.ListBindings(bg, "t", "d", kn)
		require.NoError(t, berr)
		if sd.purged {
			want++
			assert.ErrorIs(t, err, driver.ErrNotFound, "seed %d (%v %v, end %v) is purged", i, sd.kind, sd.state, sd.notAfter)
			assert.Empty(t, bs, "with its bindings")
		} else {
			assert.NoError(t, err, "seed %d (%v %v, end %v) is kept", i, sd.kind, sd.state, sd.notAfter)
			assert.Len(t, bs, 1)
		}
	}
	assert.Equal(t, want, res.Purged)
	assert.Len(t, ev.of(lifecycle.OpCredentialPurged), want, "one audit event per purged credential")
	again, err := m.Purge(bg)
	require.NoError(t, err)
	assert.Equal(t, 0, again.Purged, "a second purge finds nothing")

	// The CRL lists the revoked and superseded certificates still within
	// retention, and none past it.
	crl, err := m.CRL(bg, "ca1")
	require.NoError(t, err)
	rl, err := x509.ParseRevocationList(crl.DER)
	require.NoError(t, err)
	var listed []string
	for _, e := range rl.RevokedCertificateEntries {
		listed = append(listed, lifecycle.FormatSerial(e.SerialNumber))
	}
	assert.ElementsMatch(t, []string{"3E9", "3EA", "3EC"}, listed) // seeds 1, 2 and 4

	off := newEngine(t, s, &lifecycle.Options{Keys: k, CAs: []lifecycle.CA{c}, Now: clock.Now, Retention: -1})
	r, err := off.Purge(bg)
	require.NoError(t, err)
	assert.Equal(t, 0, r.Purged, "negative retention keeps everything")
}

// TestPurgeConcurrent: two engines on two handles of one database purge
// at once, beside traffic: every purgeable credential is removed once (one
// event each, in all), nothing else is, and neither fails.
func TestPurgeConcurrent(t *testing.T) {
	now := time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := &testClock{now: now}
	path := filepath.Join(t.TempDir(), "clm.db")
	open := func() driver.Store {
		s, err := sqlitestore.Open(bg, path, nil)
		require.NoError(t, err)
		t.Cleanup(func() { s.Close() })
		return s
	}
	s1, s2 := open(), open()
	k := keys(t, 1, 1)
	c, err := ca.Open(bg, s1, k, nil)
	require.NoError(t, err)
	var ev1, ev2 events
	m1 := newEngine(t, s1, &lifecycle.Options{Keys: k, CAs: []lifecycle.CA{c}, Now: clock.Now, Auditor: &ev1, Retention: 24 * time.Hour})
	m2 := newEngine(t, s2, &lifecycle.Options{Keys: k, CAs: []lifecycle.CA{c}, Now: clock.Now, Auditor: &ev2, Retention: 24 * time.Hour})
	const old = 450
	for i := range old + 50 {
		kn := int64(5000 + i)
		end := now.Add(-48 * time.Hour) // past retention
		if i >= old {
			end = now.Add(-time.Hour) // within it
		}
		r := &driver.CredentialRecord{KeyNumber: kn, Tenant: "t", Kind: driver.KindSymmetricKey, State: driver.StateValid, KeyType: "AES", KeyLength: 128,
			NotBefore: end.Add(-time.Hour), NotAfter: end, CreatedAt: end.Add(-time.Hour)}
		require.NoError(t, s1.CreateCredential(bg, r))
		require.NoError(t, s1.TransitionCredential(bg, driver.Transition{KeyNumber: kn, From: driver.StateValid, To: driver.StateDeleted, At: end}))
	}
	p, err := m1.IssuePSK(bg, lifecycle.IssuePSKRequest{Tenant: "t", Alias: "a"})
	require.NoError(t, err)
	var wg sync.WaitGroup
	var purged [2]int
	stop := make(chan struct{})
	wg.Add(1)
	go func() { // traffic
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			_, err := m2.CreateKey(bg, lifecycle.CreateKeyRequest{PSK: lifecycle.PSKCredentials{KeyID: p.KeyID, Password: p.Password}, Alias: "k"})
			assert.NoError(t, err)
		}
	}()
	var pw sync.WaitGroup
	for i, m := range []*lifecycle.Engine{m1, m2} {
		pw.Add(1)
		go func() {
			defer pw.Done()
			r, err := m.Purge(bg)
			assert.NoError(t, err)
			if err == nil {
				purged[i] = r.Purged
			}
		}()
	}
	pw.Wait()
	close(stop)
	wg.Wait()
	assert.Equal(t, old, purged[0]+purged[1], "each purgeable credential purged once (%d by one engine, %d by the other)", purged[0], purged[1])
	assert.Len(t, append(ev1.of(lifecycle.OpCredentialPurged), ev2.of(lifecycle.OpCredentialPurged)...), old)
	left, err := s1.ListCredentials(bg, driver.CredentialQuery{States: []driver.CredentialState{driver.StateDeleted}, Limit: 1000})
	require.NoError(t, err)
	assert.Len(t, left, 50, "the deleted keys within retention stay")
}

// noticeCounter counts PutNotice calls.
type noticeCounter struct {
	driver.Store
	n atomic.Int64
}

func (c *noticeCounter) PutNotice(ctx context.Context, r *driver.NoticeRecord) (bool, error) {
	c.n.Add(1)
	return c.Store.PutNotice(ctx, r)
}

// TestSweepAsksOnce: a sweep asks the store about the notices this engine
// has not seen recorded yet; the next sweep, with nothing new, asks
// nothing.
func TestSweepAsksOnce(t *testing.T) {
	clock := &testClock{now: time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)}
	s := &noticeCounter{Store: openStore(t)}
	k := keys(t, 1, 1)
	c, err := ca.Open(bg, s, k, &ca.Options{Now: clock.Now})
	require.NoError(t, err)
	var ev events
	m := newEngine(t, s, &lifecycle.Options{Keys: k, CAs: []lifecycle.CA{c}, Now: clock.Now, Auditor: &ev, CertValidity: 2 * 24 * time.Hour})
	p, err := m.IssuePSK(bg, lifecycle.IssuePSKRequest{Tenant: "t", Alias: "a"})
	require.NoError(t, err)
	for i := range 5 {
		_, err := m.IssueCertificate(bg, lifecycle.IssueCertificateRequest{PSK: lifecycle.PSKCredentials{KeyID: p.KeyID, Password: p.Password}, Subject: fmt.Sprint("/CN=c", i)})
		require.NoError(t, err)
	}
	r, err := m.SweepExpiry(bg)
	require.NoError(t, err)
	assert.Equal(t, 5, r.Warned)
	first := s.n.Load()
	assert.Equal(t, int64(10), first, "per certificate: its 7-day warning, and the 30-day one recorded as given")
	r, err = m.SweepExpiry(bg)
	require.NoError(t, err)
	assert.Equal(t, 0, r.Warned)
	assert.Equal(t, first, s.n.Load(), "a second sweep with nothing new asks the store nothing")
	clock.add(25 * time.Hour)
	r, err = m.SweepExpiry(bg)
	require.NoError(t, err)
	assert.Equal(t, 5, r.Warned, "the 1-day warnings")
	assert.Equal(t, first+5, s.n.Load())
}
