package storetest_test

import (
	"context"
	"testing"

	"github.com/credlife/clm/backends/memstore"
	"github.com/credlife/clm/lifecycle/driver"
	"github.com/credlife/clm/lifecycle/storetest"
)

// harness gives the suite a fresh database for each subtest; Open returns
// another handle on it, as another process would open it.
type harness struct{ db *memstore.Store }

func (h harness) Open(context.Context) (driver.Store, error) { return h.db.Handle(), nil }
func (harness) Close()                                       {}

// Run the conformance suite on your Store from a test of your backend's
// package (here the in-memory one): go test -run Conformance -v.
func ExampleRun() {
	testConformance := func(t *testing.T) {
		storetest.Run(t, func(ctx context.Context, t *testing.T) (storetest.Harness, error) {
			return harness{db: memstore.New()}, nil // a fresh, empty database
		})
	}
	_ = testConformance // in your package: func TestConformance(t *testing.T) { ... }
}
