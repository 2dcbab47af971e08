// Package memstore is a driver.Store in memory: the reference for
// backend authors (each method of the contract in a few lines, with no
// database in the way) and a fast test double for embedders.
//
//	m, err := lifecycle.New(memstore.New(), &lifecycle.Options{Keys: keys})
//
// It passes the whole conformance suite (lifecycle/storetest). The data
// lives as long as the process: New makes an empty database, and
// Store.Handle opens another handle on the same one, as a second process
// would open the same database.
//
// # Concurrency
//
// A Store is safe for concurrent use. Every call holds the database's lock
// while it runs, and Atomic holds it for the whole transaction: memstore
// serialises all work, which makes every transaction trivially isolated
// (and a sequence a lock, as the contract asks of Atomic). A failed
// transaction undoes its changes.
package memstore

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/credlife/clm/lifecycle"
	"github.com/credlife/clm/lifecycle/driver"
)

type devKey struct{ tenant, id string }
type serialKey struct{ ca, serial string }
type failKey struct {
	keyID  int64
	client string
}

// database is the data every handle shares.
type database struct {
	mu       sync.Mutex
	seq      map[driver.Sequence]int64
	psks     map[int64]*driver.PSKRecord
	devices  map[devKey]*driver.DeviceRecord
	names    map[devKey]string // (tenant, name) → device id
	creds    map[int64]*driver.CredentialRecord
	serials  map[serialKey]int64
	bindings []*driver.BindingRecord // in insertion order
	failures map[failKey]*driver.AuthFailures
	notices  map[noticeKey]time.Time
}

type noticeKey struct {
	keyNumber int64
	kind      string
}

// Store is a handle on an in-memory database. It implements
// driver.Store.
type Store struct {
	db     *database
	closed atomic.Bool
}

var _ driver.Store = (*Store)(nil)

// New returns a Store on a new, empty database.
func New() *Store {
	return &Store{db: &database{
		seq:      map[driver.Sequence]int64{},
		psks:     map[int64]*driver.PSKRecord{},
		devices:  map[devKey]*driver.DeviceRecord{},
		names:    map[devKey]string{},
		creds:    map[int64]*driver.CredentialRecord{},
		serials:  map[serialKey]int64{},
		failures: map[failKey]*driver.AuthFailures{},
		notices:  map[noticeKey]time.Time{},
	}}
}

// Handle returns another Store on the same database, as another process
// would open it. Closing one handle leaves the others open.
func (s *Store) Handle() *Store { return &Store{db: s.db} }

var (
	errNotFound = fmt.Errorf("memstore: %w", driver.ErrNotFound)
	errExists   = fmt.Errorf("memstore: %w", driver.ErrExists)
	errConflict = fmt.Errorf("memstore: %w", driver.ErrConflict)
	errClosed   = fmt.Errorf("memstore: the store is closed: %w", driver.ErrUnavailable)
)

// ready checks that the handle is open and ctx is not done.
func (s *Store) ready(ctx context.Context) error {
	if s.closed.Load() {
		return errClosed
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memstore: %w", err)
	}
	return nil
}

// Atomic implements driver.Store.
func (s *Store) Atomic(ctx context.Context, fn func(tx driver.Tx) error) error {
	if err := s.ready(ctx); err != nil {
		return err
	}
	s.db.mu.Lock()
	defer s.db.mu.Unlock()
	t := &txn{db: s.db}
	err := fn(t)
	t.done = true // fn must not keep tx
	if err != nil {
		t.rollback()
	}
	return err
}

// Ping implements driver.Store.
func (s *Store) Ping(ctx context.Context) error { return s.ready(ctx) }

// Close implements driver.Store: this handle answers every call with an
// error from now on; the data stays for the other handles.
func (s *Store) Close() error {
	s.closed.Store(true)
	return nil
}

// do runs f as a transaction of its own: each call of a Store outside
// Atomic is atomic on its own.
func do[T any](s *Store, ctx context.Context, f func(t *txn) (T, error)) (T, error) {
	var zero T
	if err := s.ready(ctx); err != nil {
		return zero, err
	}
	s.db.mu.Lock()
	defer s.db.mu.Unlock()
	t := &txn{db: s.db}
	v, err := f(t)
	t.done = true
	if err != nil {
		t.rollback()
		return zero, err
	}
	return v, nil
}

func exec(s *Store, ctx context.Context, f func(t *txn) error) error {
	_, err := do(s, ctx, func(t *txn) (struct{}, error) { return struct{}{}, f(t) })
	return err
}

// The Store's own calls: each in a transaction of its own.

func (s *Store) NextNumber(ctx context.Context, seq driver.Sequence) (int64, error) {
	return do(s, ctx, func(t *txn) (int64, error) { return t.NextNumber(ctx, seq) })
}
func (s *Store) NextNumbers(ctx context.Context, seq driver.Sequence, n int) (int64, error) {
	return do(s, ctx, func(t *txn) (int64, error) { return t.NextNumbers(ctx, seq, n) })
}
func (s *Store) CreatePSK(ctx context.Context, r *driver.PSKRecord) error {
	return exec(s, ctx, func(t *txn) error { return t.CreatePSK(ctx, r) })
}
func (s *Store) GetPSK(ctx context.Context, keyID int64) (*driver.PSKRecord, error) {
	return do(s, ctx, func(t *txn) (*driver.PSKRecord, error) { return t.GetPSK(ctx, keyID) })
}
func (s *Store) ListPSKs(ctx context.Context, q driver.PSKQuery) ([]*driver.PSKRecord, error) {
	return do(s, ctx, func(t *txn) ([]*driver.PSKRecord, error) { return t.ListPSKs(ctx, q) })
}
func (s *Store) SetPSKStatus(ctx context.Context, keyID int64, st lifecycle.PSKStatus) error {
	return exec(s, ctx, func(t *txn) error { return t.SetPSKStatus(ctx, keyID, st) })
}
func (s *Store) DeletePSK(ctx context.Context, keyID int64) error {
	return exec(s, ctx, func(t *txn) error { return t.DeletePSK(ctx, keyID) })
}
func (s *Store) CreateDevice(ctx context.Context, r *driver.DeviceRecord) error {
	return exec(s, ctx, func(t *txn) error { return t.CreateDevice(ctx, r) })
}
func (s *Store) GetDevice(ctx context.Context, tenant, id string) (*driver.DeviceRecord, error) {
	return do(s, ctx, func(t *txn) (*driver.DeviceRecord, error) { return t.GetDevice(ctx, tenant, id) })
}
func (s *Store) GetDeviceByName(ctx context.Context, tenant, name string) (*driver.DeviceRecord, error) {
	return do(s, ctx, func(t *txn) (*driver.DeviceRecord, error) { return t.GetDeviceByName(ctx, tenant, name) })
}
func (s *Store) ListDevices(ctx context.Context, q driver.DeviceQuery) ([]*driver.DeviceRecord, error) {
	return do(s, ctx, func(t *txn) ([]*driver.DeviceRecord, error) { return t.ListDevices(ctx, q) })
}
func (s *Store) UpdateDevice(ctx context.Context, r *driver.DeviceRecord) error {
	return exec(s, ctx, func(t *txn) error { return t.UpdateDevice(ctx, r) })
}
func (s *Store) CreateCredential(ctx context.Context, r *driver.CredentialRecord) error {
	return exec(s, ctx, func(t *txn) error { return t.CreateCredential(ctx, r) })
}
func (s *Store) GetCredential(ctx context.Context, kn int64) (*driver.CredentialRecord, error) {
	return do(s, ctx, func(t *txn) (*driver.CredentialRecord, error) { return t.GetCredential(ctx, kn) })
}
func (s *Store) GetCredentialBySerial(ctx context.Context, ca, serial string) (*driver.CredentialRecord, error) {
	return do(s, ctx, func(t *txn) (*driver.CredentialRecord, error) { return t.GetCredentialBySerial(ctx, ca, serial) })
}
func (s *Store) ListCredentials(ctx context.Context, q driver.CredentialQuery) ([]*driver.CredentialRecord, error) {
	return do(s, ctx, func(t *txn) ([]*driver.CredentialRecord, error) { return t.ListCredentials(ctx, q) })
}
func (s *Store) CredentialStats(ctx context.Context, q driver.CredentialQuery) (driver.CredentialStats, error) {
	return do(s, ctx, func(t *txn) (driver.CredentialStats, error) { return t.CredentialStats(ctx, q) })
}
func (s *Store) TransitionCredential(ctx context.Context, tr driver.Transition) error {
	return exec(s, ctx, func(t *txn) error { return t.TransitionCredential(ctx, tr) })
}
func (s *Store) DeleteCredential(ctx context.Context, kn int64) error {
	return exec(s, ctx, func(t *txn) error { return t.DeleteCredential(ctx, kn) })
}
func (s *Store) PutNotice(ctx context.Context, r *driver.NoticeRecord) (bool, error) {
	return do(s, ctx, func(t *txn) (bool, error) { return t.PutNotice(ctx, r) })
}
func (s *Store) PutBinding(ctx context.Context, rs ...*driver.BindingRecord) error {
	return exec(s, ctx, func(t *txn) error { return t.PutBinding(ctx, rs...) })
}
func (s *Store) ListBindings(ctx context.Context, tenant, deviceID string, kn int64) ([]*driver.BindingRecord, error) {
	return do(s, ctx, func(t *txn) ([]*driver.BindingRecord, error) { return t.ListBindings(ctx, tenant, deviceID, kn) })
}
func (s *Store) BindingsOf(ctx context.Context, kn int64) ([]*driver.BindingRecord, error) {
	return do(s, ctx, func(t *txn) ([]*driver.BindingRecord, error) { return t.BindingsOf(ctx, kn) })
}
func (s *Store) BindingsAt(ctx context.Context, tenant, deviceID, path string, limit int) ([]*driver.BindingRecord, error) {
	return do(s, ctx, func(t *txn) ([]*driver.BindingRecord, error) {
		return t.BindingsAt(ctx, tenant, deviceID, path, limit)
	})
}
func (s *Store) CountAuthFailures(ctx context.Context, fs ...driver.AuthFailure) ([]*driver.AuthFailures, error) {
	return do(s, ctx, func(t *txn) ([]*driver.AuthFailures, error) { return t.CountAuthFailures(ctx, fs...) })
}
func (s *Store) GetAuthFailures(ctx context.Context, keyID int64, clients ...string) ([]*driver.AuthFailures, error) {
	return do(s, ctx, func(t *txn) ([]*driver.AuthFailures, error) { return t.GetAuthFailures(ctx, keyID, clients...) })
}
func (s *Store) ClearAuthFailures(ctx context.Context, keyID int64, client string) error {
	return exec(s, ctx, func(t *txn) error { return t.ClearAuthFailures(ctx, keyID, client) })
}
func (s *Store) ListSealed(ctx context.Context, kind driver.SealedKind, after driver.SealedValue, limit int) ([]driver.SealedValue, error) {
	return do(s, ctx, func(t *txn) ([]driver.SealedValue, error) { return t.ListSealed(ctx, kind, after, limit) })
}
func (s *Store) ReplaceSealed(ctx context.Context, v driver.SealedValue, value []byte) error {
	return exec(s, ctx, func(t *txn) error { return t.ReplaceSealed(ctx, v, value) })
}

// txn is the Tx of a transaction; the database's lock is held while it
// lives. undo restores, in reverse, what its calls changed.
type txn struct {
	db   *database
	undo []func()
	done bool
}

var _ driver.Tx = (*txn)(nil)

func (t *txn) rollback() {
	for i := len(t.undo) - 1; i >= 0; i-- {
		t.undo[i]()
	}
	t.undo = nil
}

// check refuses a call on a finished transaction or a done ctx.
func (t *txn) check(ctx context.Context) error {
	if t.done {
		return errors.New("memstore: a Tx used after its transaction ended")
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memstore: %w", err)
	}
	return nil
}

// set stores v under k in m, recording how to undo it.
func set[K comparable, V any](t *txn, m map[K]V, k K, v V) {
	old, had := m[k]
	m[k] = v
	t.undo = append(t.undo, func() {
		if had {
			m[k] = old
		} else {
			delete(m, k)
		}
	})
}

// del removes k from m, recording how to undo it.
func del[K comparable, V any](t *txn, m map[K]V, k K) {
	old, had := m[k]
	if !had {
		return
	}
	delete(m, k)
	t.undo = append(t.undo, func() { m[k] = old })
}

// Records are copied on the way in and on the way out, so that neither
// the caller nor the store sees the other's later changes to a map or a
// slice. Times are kept in UTC.

func clonePSK(r *driver.PSKRecord) *driver.PSKRecord {
	c := *r
	c.Password = bytes.Clone(r.Password)
	c.CreatedAt, c.ExpiresAt, c.FailuresUntil = c.CreatedAt.UTC(), c.ExpiresAt.UTC(), c.FailuresUntil.UTC()
	return &c
}

func cloneDevice(r *driver.DeviceRecord) *driver.DeviceRecord {
	c := *r
	c.SealedKey = bytes.Clone(r.SealedKey)
	c.ExtData = maps.Clone(r.ExtData)
	c.CreatedAt, c.UpdatedAt, c.ExpiresAt = c.CreatedAt.UTC(), c.UpdatedAt.UTC(), c.ExpiresAt.UTC()
	return &c
}

func cloneCredential(r *driver.CredentialRecord) *driver.CredentialRecord {
	c := *r
	c.Certificate, c.Secret = bytes.Clone(r.Certificate), bytes.Clone(r.Secret)
	c.NotBefore, c.NotAfter, c.CreatedAt, c.StateChangedAt = c.NotBefore.UTC(), c.NotAfter.UTC(), c.CreatedAt.UTC(), c.StateChangedAt.UTC()
	return &c
}

func cloneBinding(r *driver.BindingRecord) *driver.BindingRecord {
	c := *r
	c.CreatedAt = c.CreatedAt.UTC()
	return &c
}

func (t *txn) NextNumber(ctx context.Context, seq driver.Sequence) (int64, error) {
	return t.NextNumbers(ctx, seq, 1)
}

// NextNumbers implements driver.Tx. A number is never given back, not
// even by a rollback (the contract allows the gap).
func (t *txn) NextNumbers(ctx context.Context, seq driver.Sequence, n int) (int64, error) {
	if err := t.check(ctx); err != nil {
		return 0, err
	}
	if seq == "" || n < 1 {
		return 0, errors.New("memstore: empty sequence name or count below 1")
	}
	first := t.db.seq[seq] + 1
	t.db.seq[seq] += int64(n)
	return first, nil
}

func (t *txn) CreatePSK(ctx context.Context, r *driver.PSKRecord) error {
	if err := t.check(ctx); err != nil {
		return err
	}
	if _, ok := t.db.psks[r.KeyID]; ok {
		return errExists
	}
	set(t, t.db.psks, r.KeyID, clonePSK(r))
	return nil
}

func (t *txn) GetPSK(ctx context.Context, keyID int64) (*driver.PSKRecord, error) {
	if err := t.check(ctx); err != nil {
		return nil, err
	}
	r, ok := t.db.psks[keyID]
	if !ok {
		return nil, errNotFound
	}
	return clonePSK(r), nil
}

func (t *txn) ListPSKs(ctx context.Context, q driver.PSKQuery) ([]*driver.PSKRecord, error) {
	if err := t.check(ctx); err != nil {
		return nil, err
	}
	if q.Limit <= 0 {
		return nil, errors.New("memstore: ListPSKs: limit must be positive")
	}
	ids := slices.Sorted(maps.Keys(t.db.psks))
	out := []*driver.PSKRecord{}
	for _, id := range ids {
		r := t.db.psks[id]
		if id > q.After && (q.Tenant == "" || r.Tenant == q.Tenant) {
			if out = append(out, clonePSK(r)); len(out) == q.Limit {
				break
			}
		}
	}
	return out, nil
}

func (t *txn) SetPSKStatus(ctx context.Context, keyID int64, st lifecycle.PSKStatus) error {
	if err := t.check(ctx); err != nil {
		return err
	}
	r, ok := t.db.psks[keyID]
	if !ok {
		return errNotFound
	}
	c := clonePSK(r)
	c.Status = st
	set(t, t.db.psks, keyID, c)
	return nil
}

func (t *txn) DeletePSK(ctx context.Context, keyID int64) error {
	if err := t.check(ctx); err != nil {
		return err
	}
	if _, ok := t.db.psks[keyID]; !ok {
		return errNotFound
	}
	del(t, t.db.psks, keyID)
	for k := range t.db.failures {
		if k.keyID == keyID {
			del(t, t.db.failures, k)
		}
	}
	return nil
}

func (t *txn) CreateDevice(ctx context.Context, r *driver.DeviceRecord) error {
	if err := t.check(ctx); err != nil {
		return err
	}
	k, nk := devKey{r.Tenant, r.ID}, devKey{r.Tenant, r.Name}
	if _, ok := t.db.devices[k]; ok {
		return errExists
	}
	if _, ok := t.db.names[nk]; ok {
		return errExists
	}
	set(t, t.db.devices, k, cloneDevice(r))
	set(t, t.db.names, nk, r.ID)
	return nil
}

func (t *txn) GetDevice(ctx context.Context, tenant, id string) (*driver.DeviceRecord, error) {
	if err := t.check(ctx); err != nil {
		return nil, err
	}
	r, ok := t.db.devices[devKey{tenant, id}]
	if !ok {
		return nil, errNotFound
	}
	return cloneDevice(r), nil
}

func (t *txn) GetDeviceByName(ctx context.Context, tenant, name string) (*driver.DeviceRecord, error) {
	if err := t.check(ctx); err != nil {
		return nil, err
	}
	id, ok := t.db.names[devKey{tenant, name}]
	if !ok {
		return nil, errNotFound
	}
	return cloneDevice(t.db.devices[devKey{tenant, id}]), nil
}

func (t *txn) ListDevices(ctx context.Context, q driver.DeviceQuery) ([]*driver.DeviceRecord, error) {
	if err := t.check(ctx); err != nil {
		return nil, err
	}
	if q.Limit <= 0 {
		return nil, errors.New("memstore: ListDevices: limit must be positive")
	}
	var ids []string
	for k := range t.db.devices {
		if k.tenant == q.Tenant && k.id > q.After {
			ids = append(ids, k.id)
		}
	}
	slices.Sort(ids)
	out := make([]*driver.DeviceRecord, 0, min(len(ids), q.Limit))
	for _, id := range ids[:min(len(ids), q.Limit)] {
		out = append(out, cloneDevice(t.db.devices[devKey{q.Tenant, id}]))
	}
	return out, nil
}

func (t *txn) UpdateDevice(ctx context.Context, r *driver.DeviceRecord) error {
	if err := t.check(ctx); err != nil {
		return err
	}
	k := devKey{r.Tenant, r.ID}
	old, ok := t.db.devices[k]
	if !ok {
		return errNotFound
	}
	c, in := cloneDevice(old), cloneDevice(r)
	c.Status, c.IPAddress, c.MACAddress, c.ExtData, c.UpdatedAt, c.ExpiresAt = in.Status, in.IPAddress, in.MACAddress, in.ExtData, in.UpdatedAt, in.ExpiresAt
	set(t, t.db.devices, k, c)
	return nil
}

func (t *txn) CreateCredential(ctx context.Context, r *driver.CredentialRecord) error {
	if err := t.check(ctx); err != nil {
		return err
	}
	if _, ok := t.db.creds[r.KeyNumber]; ok {
		return errExists
	}
	sk := serialKey{r.CA, r.Serial}
	if r.Serial != "" {
		if _, ok := t.db.serials[sk]; ok {
			return errExists
		}
		set(t, t.db.serials, sk, r.KeyNumber)
	}
	set(t, t.db.creds, r.KeyNumber, cloneCredential(r))
	return nil
}

func (t *txn) GetCredential(ctx context.Context, kn int64) (*driver.CredentialRecord, error) {
	if err := t.check(ctx); err != nil {
		return nil, err
	}
	r, ok := t.db.creds[kn]
	if !ok {
		return nil, errNotFound
	}
	return cloneCredential(r), nil
}

func (t *txn) GetCredentialBySerial(ctx context.Context, ca, serial string) (*driver.CredentialRecord, error) {
	if err := t.check(ctx); err != nil {
		return nil, err
	}
	kn, ok := t.db.serials[serialKey{ca, serial}]
	if !ok {
		return nil, errNotFound
	}
	return cloneCredential(t.db.creds[kn]), nil
}

// selects reports whether q's filters (not its cursor or limit) select r.
func (t *txn) selects(q driver.CredentialQuery, r *driver.CredentialRecord) bool {
	return (q.Tenant == "" || r.Tenant == q.Tenant) && (q.CA == "" || r.CA == q.CA) &&
		(q.Kind == 0 || r.Kind == q.Kind) && (len(q.States) == 0 || slices.Contains(q.States, r.State)) &&
		(q.ExpiresBefore.IsZero() || r.NotAfter.Before(q.ExpiresBefore)) &&
		(q.ExpiresAfter.IsZero() || !r.NotAfter.Before(q.ExpiresAfter)) &&
		(q.DeviceID == "" || slices.ContainsFunc(t.db.bindings, func(b *driver.BindingRecord) bool {
			return b.Tenant == q.Tenant && b.DeviceID == q.DeviceID && b.KeyNumber == r.KeyNumber
		}))
}

func (t *txn) ListCredentials(ctx context.Context, q driver.CredentialQuery) ([]*driver.CredentialRecord, error) {
	if err := t.check(ctx); err != nil {
		return nil, err
	}
	if q.Limit <= 0 {
		return nil, errors.New("memstore: ListCredentials: limit must be positive")
	}
	out := []*driver.CredentialRecord{}
	for _, kn := range slices.Sorted(maps.Keys(t.db.creds)) {
		if r := t.db.creds[kn]; kn > q.After && t.selects(q, r) {
			if out = append(out, cloneCredential(r)); len(out) == q.Limit {
				break
			}
		}
	}
	return out, nil
}

func (t *txn) CredentialStats(ctx context.Context, q driver.CredentialQuery) (driver.CredentialStats, error) {
	var st driver.CredentialStats
	if err := t.check(ctx); err != nil {
		return st, err
	}
	for _, r := range t.db.creds {
		if t.selects(q, r) {
			st.Count++
			if r.StateChangedAt.After(st.LastStateChange) {
				st.LastStateChange = r.StateChangedAt.UTC()
			}
		}
	}
	return st, nil
}

func (t *txn) TransitionCredential(ctx context.Context, tr driver.Transition) error {
	if err := t.check(ctx); err != nil {
		return err
	}
	if tr.From == tr.To {
		return errors.New("memstore: a transition must change the state")
	}
	r, ok := t.db.creds[tr.KeyNumber]
	switch {
	case !ok:
		return errNotFound
	case r.State != tr.From:
		return errConflict
	}
	c := cloneCredential(r)
	c.State, c.StateChangedAt, c.Reason, c.ReplacedBy = tr.To, tr.At.UTC(), tr.Reason, tr.ReplacedBy
	set(t, t.db.creds, tr.KeyNumber, c)
	return nil
}

func (t *txn) DeleteCredential(ctx context.Context, kn int64) error {
	if err := t.check(ctx); err != nil {
		return err
	}
	r, ok := t.db.creds[kn]
	if !ok {
		return errNotFound
	}
	del(t, t.db.creds, kn)
	if r.Serial != "" {
		del(t, t.db.serials, serialKey{r.CA, r.Serial})
	}
	for k := range t.db.notices {
		if k.keyNumber == kn {
			del(t, t.db.notices, k)
		}
	}
	old := t.db.bindings
	kept := slices.DeleteFunc(slices.Clone(old), func(b *driver.BindingRecord) bool { return b.KeyNumber == kn })
	t.db.bindings = kept
	t.undo = append(t.undo, func() { t.db.bindings = old })
	return nil
}

func (t *txn) PutNotice(ctx context.Context, r *driver.NoticeRecord) (bool, error) {
	if err := t.check(ctx); err != nil {
		return false, err
	}
	if len(r.Kind) == 0 || len(r.Kind) > 32 {
		return false, errors.New("memstore: PutNotice: a kind is 1 to 32 bytes")
	}
	k := noticeKey{r.KeyNumber, r.Kind}
	if _, ok := t.db.notices[k]; ok {
		return false, nil
	}
	set(t, t.db.notices, k, r.At.UTC())
	return true, nil
}

func (t *txn) PutBinding(ctx context.Context, rs ...*driver.BindingRecord) error {
	if err := t.check(ctx); err != nil {
		return err
	}
	for _, r := range rs {
		if slices.ContainsFunc(t.db.bindings, func(b *driver.BindingRecord) bool {
			return b.Tenant == r.Tenant && b.DeviceID == r.DeviceID && b.KeyNumber == r.KeyNumber && b.Path == r.Path
		}) {
			continue
		}
		n := len(t.db.bindings)
		t.db.bindings = append(t.db.bindings, cloneBinding(r))
		t.undo = append(t.undo, func() { t.db.bindings = t.db.bindings[:n] })
	}
	return nil
}

func (t *txn) ListBindings(ctx context.Context, tenant, deviceID string, kn int64) ([]*driver.BindingRecord, error) {
	return t.bindingsWhere(ctx, func(b *driver.BindingRecord) bool {
		return b.Tenant == tenant && b.DeviceID == deviceID && b.KeyNumber == kn
	})
}

func (t *txn) BindingsOf(ctx context.Context, kn int64) ([]*driver.BindingRecord, error) {
	return t.bindingsWhere(ctx, func(b *driver.BindingRecord) bool { return b.KeyNumber == kn })
}

// bindingsWhere returns copies of the bindings that match, oldest first.
func (t *txn) bindingsWhere(ctx context.Context, match func(*driver.BindingRecord) bool) ([]*driver.BindingRecord, error) {
	if err := t.check(ctx); err != nil {
		return nil, err
	}
	out := []*driver.BindingRecord{}
	for _, b := range t.db.bindings {
		if match(b) {
			out = append(out, cloneBinding(b))
		}
	}
	return out, nil
}

func (t *txn) BindingsAt(ctx context.Context, tenant, deviceID, path string, limit int) ([]*driver.BindingRecord, error) {
	if err := t.check(ctx); err != nil {
		return nil, err
	}
	if limit <= 0 {
		return nil, errors.New("memstore: BindingsAt: limit must be positive")
	}
	out := []*driver.BindingRecord{}
	for i := len(t.db.bindings) - 1; i >= 0 && len(out) < limit; i-- {
		if b := t.db.bindings[i]; b.Tenant == tenant && b.DeviceID == deviceID && b.Path == path {
			out = append(out, cloneBinding(b))
		}
	}
	return out, nil
}

func (t *txn) CountAuthFailures(ctx context.Context, fs ...driver.AuthFailure) ([]*driver.AuthFailures, error) {
	if err := t.check(ctx); err != nil {
		return nil, err
	}
	out := make([]*driver.AuthFailures, 0, len(fs))
	for _, f := range fs {
		if f.Limit < 1 || f.Window <= 0 || len(f.Client) > 64 {
			return nil, errors.New("memstore: CountAuthFailures: a limit below 1, a window not positive, or a client over 64 bytes")
		}
		k := failKey{f.KeyID, f.Client}
		at := f.At.UTC()
		c := &driver.AuthFailures{KeyID: f.KeyID, Client: f.Client}
		if old := t.db.failures[k]; old != nil {
			*c = *old
		}
		if c.Since.IsZero() || !at.Before(c.Since.Add(f.Window)) {
			c.Count, c.Since = 1, at
		} else {
			c.Count++
		}
		if c.Count >= f.Limit {
			c.LockedUntil, c.Count, c.Since = at.Add(f.Window), 0, at
		}
		set(t, t.db.failures, k, c)
		if p, ok := t.db.psks[f.KeyID]; ok && p.FailuresUntil.Before(at.Add(f.Window)) {
			u := clonePSK(p)
			u.FailuresUntil = at.Add(f.Window)
			set(t, t.db.psks, f.KeyID, u)
		}
		cp := *c
		out = append(out, &cp)
	}
	return out, nil
}

func (t *txn) GetAuthFailures(ctx context.Context, keyID int64, clients ...string) ([]*driver.AuthFailures, error) {
	if err := t.check(ctx); err != nil {
		return nil, err
	}
	var out []*driver.AuthFailures
	cs := slices.Clone(clients)
	slices.Sort(cs)
	for _, c := range slices.Compact(cs) {
		if f := t.db.failures[failKey{keyID, c}]; f != nil {
			cp := *f
			out = append(out, &cp)
		}
	}
	return out, nil
}

func (t *txn) ClearAuthFailures(ctx context.Context, keyID int64, client string) error {
	if err := t.check(ctx); err != nil {
		return err
	}
	del(t, t.db.failures, failKey{keyID, client})
	return nil
}

func (t *txn) ListSealed(ctx context.Context, kind driver.SealedKind, after driver.SealedValue, limit int) ([]driver.SealedValue, error) {
	if err := t.check(ctx); err != nil {
		return nil, err
	}
	if limit <= 0 {
		return nil, errors.New("memstore: ListSealed: bad limit")
	}
	var all []driver.SealedValue
	switch kind {
	case driver.SealedPSKPassword:
		for _, id := range slices.Sorted(maps.Keys(t.db.psks)) {
			r := t.db.psks[id]
			all = append(all, driver.SealedValue{Kind: kind, ID: id, Tenant: r.Tenant, Value: r.Password})
		}
	case driver.SealedCredentialSecret:
		for _, kn := range slices.Sorted(maps.Keys(t.db.creds)) {
			r := t.db.creds[kn]
			all = append(all, driver.SealedValue{Kind: kind, ID: kn, Tenant: r.Tenant, CredentialKind: r.Kind, Value: r.Secret})
		}
	case driver.SealedDeviceKey:
		keys := slices.SortedFunc(maps.Keys(t.db.devices), func(a, b devKey) int {
			return cmp.Or(cmp.Compare(a.tenant, b.tenant), cmp.Compare(a.id, b.id))
		})
		for _, k := range keys {
			all = append(all, driver.SealedValue{Kind: kind, Tenant: k.tenant, DeviceID: k.id, Value: t.db.devices[k].SealedKey})
		}
	default:
		return nil, fmt.Errorf("memstore: ListSealed: unknown kind %d", kind)
	}
	out := []driver.SealedValue{}
	for _, v := range all {
		if len(v.Value) == 0 || !sealedAfter(v, after) {
			continue
		}
		v.Value = bytes.Clone(v.Value)
		if out = append(out, v); len(out) == limit {
			break
		}
	}
	return out, nil
}

// sealedAfter reports whether v comes after the cursor after.
func sealedAfter(v, after driver.SealedValue) bool {
	if v.Kind == driver.SealedDeviceKey {
		return v.Tenant > after.Tenant || v.Tenant == after.Tenant && v.DeviceID > after.DeviceID
	}
	return v.ID > after.ID
}

func (t *txn) ReplaceSealed(ctx context.Context, v driver.SealedValue, value []byte) error {
	if err := t.check(ctx); err != nil {
		return err
	}
	switch v.Kind {
	case driver.SealedPSKPassword:
		r, ok := t.db.psks[v.ID]
		if !ok {
			return errNotFound
		}
		if !bytes.Equal(r.Password, v.Value) {
			return errConflict
		}
		c := clonePSK(r)
		c.Password = bytes.Clone(value)
		set(t, t.db.psks, v.ID, c)
	case driver.SealedCredentialSecret:
		r, ok := t.db.creds[v.ID]
		if !ok {
			return errNotFound
		}
		if !bytes.Equal(r.Secret, v.Value) {
			return errConflict
		}
		c := cloneCredential(r)
		c.Secret = bytes.Clone(value)
		set(t, t.db.creds, v.ID, c)
	case driver.SealedDeviceKey:
		k := devKey{v.Tenant, v.DeviceID}
		r, ok := t.db.devices[k]
		if !ok {
			return errNotFound
		}
		if !bytes.Equal(r.SealedKey, v.Value) {
			return errConflict
		}
		c := cloneDevice(r)
		c.SealedKey = bytes.Clone(value)
		set(t, t.db.devices, k, c)
	default:
		return fmt.Errorf("memstore: ReplaceSealed: unknown kind %d", v.Kind)
	}
	return nil
}
