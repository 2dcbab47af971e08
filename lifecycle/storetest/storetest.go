// Package storetest is the conformance suite of driver.Store: what makes a
// Store a Store. Every backend runs it from its own tests:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(ctx context.Context, t *testing.T) (storetest.Harness, error) {
//			return newHarness(t) // a fresh, empty database
//		})
//	}
//
// Run has one named subtest per behaviour (select them with -run): the
// create/read/update/delete of each record, uniqueness, sequences and
// compare-and-swap under concurrency (goroutines, and two Store handles on
// one database as two processes would have), paging, time and binary round
// trips, context cancellation, sentinel errors, reopening, and the PSK and
// device flows of the engine over the Store. A failure message says which
// part of the contract was broken.
//
// Benchmark measures every engine operation on a Store, so that a backend's
// figures can be set beside the others' (go test -bench).
package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/credlife/clm/lifecycle/driver"
)

// Harness gives the suite a fresh, empty database.
type Harness interface {
	// Open returns a new Store handle on the harness's database, as another
	// process would open it. Every call opens another handle; the suite
	// closes those it opens.
	Open(ctx context.Context) (driver.Store, error)
	// Close releases the database. The suite calls it once, after closing
	// every Store it opened.
	Close()
}

// NewHarness makes a Harness on a fresh database. It is called once per
// subtest.
type NewHarness func(ctx context.Context, t *testing.T) (Harness, error)

// Run runs the conformance suite.
func Run(t *testing.T, newHarness NewHarness) {
	for _, tc := range allCases() {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			h, err := newHarness(ctx, t)
			if err != nil {
				t.Fatalf("harness: %v", err)
			}
			env := &env{t: t, ctx: ctx, h: h}
			defer h.Close()
			defer env.closeAll()
			tc.fn(env)
		})
	}
}

type testCase struct {
	name string
	fn   func(e *env)
}

type env struct {
	t      *testing.T
	ctx    context.Context
	h      Harness
	stores []driver.Store
}

// store opens a new handle on the database.
func (e *env) store() driver.Store {
	e.t.Helper()
	s, err := e.h.Open(e.ctx)
	if err != nil {
		e.t.Fatalf("Harness.Open: %v", err)
	}
	e.stores = append(e.stores, s)
	return s
}

func (e *env) closeAll() {
	for _, s := range e.stores {
		_ = s.Close()
	}
}

// must fails the test with the contract's words if err is not nil.
func (e *env) must(err error, contract string, args ...any) {
	e.t.Helper()
	if err != nil {
		e.t.Fatalf(contract+": %v", append(args, err)...)
	}
}
