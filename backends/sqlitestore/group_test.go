package sqlitestore_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/credlife/clm/backends/gormstore"
	"github.com/credlife/clm/backends/sqlitestore"
	"github.com/credlife/clm/lifecycle"
	"github.com/credlife/clm/lifecycle/driver"
)

// sizes records the group sizes a Store observes.
type sizes struct {
	mu sync.Mutex
	n  []int
}

func (s *sizes) observe(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.n = append(s.n, n)
}

func (s *sizes) all() []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]int(nil), s.n...)
}

func psk(id int64) *driver.PSKRecord {
	now := time.Now().UTC()
	return &driver.PSKRecord{KeyID: id, Tenant: "t", Password: []byte("sealed"), Status: lifecycle.PSKActive, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
}

// TestGroupCommit runs 240 concurrent writers on one store, with groups
// held open long enough to fill: a third succeed, a third return an error
// after writing, and some of the rest panic after writing or are rolled
// back by a trigger that aborts the whole transaction (RAISE(ROLLBACK)).
// Afterwards, read through a second handle on the file: every call that
// returned nil has its row, every other call has none; groups were shared
// (fewer groups than calls) and never larger than MaxSize.
func TestGroupCommit(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "clm.db")
	var seen sizes
	s, err := sqlitestore.Open(ctx, path, &gormstore.Options{GroupCommit: gormstore.GroupCommit{MaxSize: 8, MaxDelay: time.Second, Observe: seen.observe}})
	require.NoError(t, err)
	defer s.Close()
	// An alias "rollback" makes SQLite roll back the whole transaction:
	// the calls that shared it must all fail, none silently lost.
	require.NoError(t, s.DB().Exec(`CREATE TRIGGER clm_rollback BEFORE INSERT ON clm_psks
		WHEN NEW.alias = 'rollback' BEGIN SELECT RAISE(ROLLBACK, 'forced rollback'); END`).Error)

	const n = 240
	errRefused := errors.New("refused after writing")
	results := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			defer func() {
				if p := recover(); p != nil {
					results[i] = fmt.Errorf("panicked: %v", p)
				}
			}()
			results[i] = s.Atomic(ctx, func(tx driver.Tx) error {
				r := psk(int64(i + 1))
				if i%40 == 39 {
					r.Alias = "rollback"
				}
				if err := tx.CreatePSK(ctx, r); err != nil {
					return err
				}
				time.Sleep(200 * time.Microsecond) // let others queue
				switch {
				case i%3 == 1:
					return errRefused
				case i%20 == 2:
					panic("a bug in a caller")
				}
				return nil
			})
		})
	}
	close(start)
	wg.Wait()

	other, err := sqlitestore.Open(ctx, path, &gormstore.Options{GroupCommit: gormstore.GroupCommit{MaxSize: 1}})
	require.NoError(t, err)
	defer other.Close()
	var ok, refused, panicked, rolledBack int
	for i, err := range results {
		_, gerr := other.GetPSK(ctx, int64(i+1))
		if err == nil {
			ok++
			assert.NoError(t, gerr, "call %d returned nil but its row is missing", i)
			continue
		}
		assert.ErrorIs(t, gerr, driver.ErrNotFound, "call %d failed (%v) but its row is there", i, err)
		switch {
		case errors.Is(err, errRefused):
			refused++
		case i%20 == 2:
			panicked++
			assert.Contains(t, err.Error(), "a bug in a caller")
		default:
			rolledBack++
		}
	}
	var total int
	for _, sz := range seen.all() {
		total += sz
		assert.LessOrEqual(t, sz, 8, "a group larger than MaxSize")
		assert.GreaterOrEqual(t, sz, 1)
	}
	st := s.GroupCommitStats()
	t.Logf("%d calls: %d committed, %d refused, %d panicked, %d lost with a rolled-back group; %d groups (mean size %.1f)",
		n, ok, refused, panicked, rolledBack, st.Groups, float64(st.Calls)/float64(st.Groups))
	assert.Equal(t, n, total, "every call is counted in one observed group")
	assert.EqualValues(t, n, st.Calls)
	assert.Less(t, st.Groups, int64(n/2), "calls queued behind each other did not share transactions")
	var wantRefused, wantPanicked int
	for i := range n {
		switch {
		case i%40 == 39: // its insert fails
		case i%3 == 1:
			wantRefused++
		case i%20 == 2:
			wantPanicked++
		}
	}
	assert.Equal(t, wantRefused, refused)
	assert.Equal(t, wantPanicked, panicked)
	assert.GreaterOrEqual(t, rolledBack, n/40, "the calls that asked for a rollback")
	assert.Positive(t, ok)
}

// TestGroupCommitAlone: a call with nobody queued behind it commits alone,
// before it returns, and a second handle sees its row at once.
func TestGroupCommitAlone(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "clm.db")
	var seen sizes
	s, err := sqlitestore.Open(ctx, path, &gormstore.Options{GroupCommit: gormstore.GroupCommit{MaxDelay: time.Hour, Observe: seen.observe}})
	require.NoError(t, err)
	defer s.Close()
	other, err := sqlitestore.Open(ctx, path, nil)
	require.NoError(t, err)
	defer other.Close()
	for i := range 5 {
		require.NoError(t, s.Atomic(ctx, func(tx driver.Tx) error { return tx.CreatePSK(ctx, psk(int64(i+1))) }))
		_, err := other.GetPSK(ctx, int64(i+1))
		require.NoError(t, err, "the row of a returned call is not committed")
	}
	assert.Equal(t, []int{1, 1, 1, 1, 1}, seen.all())
}

// TestGroupCommitOff: MaxSize 1 commits each call on its own.
func TestGroupCommitOff(t *testing.T) {
	ctx := context.Background()
	s, err := sqlitestore.Open(ctx, filepath.Join(t.TempDir(), "clm.db"), &gormstore.Options{GroupCommit: gormstore.GroupCommit{MaxSize: 1}})
	require.NoError(t, err)
	defer s.Close()
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			assert.NoError(t, s.Atomic(ctx, func(tx driver.Tx) error { return tx.CreatePSK(ctx, psk(int64(i+1))) }))
		})
	}
	wg.Wait()
	assert.Equal(t, gormstore.GroupCommitStats{}, s.GroupCommitStats())
	n, err := s.ListPSKs(ctx, driver.PSKQuery{Tenant: "t", Limit: 100})
	require.NoError(t, err)
	assert.Len(t, n, 20)
}

// TestGroupCommitOneConnection: with a pool of one connection, group
// commit keeps no connection of its own (it would hold the only one for
// good): concurrent writers and readers outside transactions all finish.
func TestGroupCommitOneConnection(t *testing.T) {
	ctx := context.Background()
	s, err := sqlitestore.Open(ctx, filepath.Join(t.TempDir(), "clm.db"), &gormstore.Options{MaxConns: 1})
	require.NoError(t, err)
	defer func() {
		if !t.Failed() { // else Close would wait for the stuck calls
			s.Close()
		}
	}()
	done := make(chan struct{})
	go func() {
		defer close(done)
		var wg sync.WaitGroup
		for i := range 40 {
			wg.Go(func() {
				assert.NoError(t, s.Atomic(ctx, func(tx driver.Tx) error { return tx.CreatePSK(ctx, psk(int64(i+1))) }))
				_, err := s.GetPSK(ctx, int64(i+1))
				assert.NoError(t, err)
			})
		}
		wg.Wait()
	}()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("writers and readers on a pool of one connection did not finish")
	}
}
