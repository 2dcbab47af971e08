package memstore_test

import (
	"context"
	"testing"

	"github.com/credlife/clm/backends/memstore"
	"github.com/credlife/clm/lifecycle/driver"
	"github.com/credlife/clm/lifecycle/storetest"
)

// harness is a fresh in-memory database; each Open is another handle on it.
type harness struct{ db *memstore.Store }

func (h harness) Open(context.Context) (driver.Store, error) { return h.db.Handle(), nil }
func (harness) Close()                                       {}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(ctx context.Context, t *testing.T) (storetest.Harness, error) {
		return harness{db: memstore.New()}, nil
	})
}

// BenchmarkEngine runs every engine operation on the in-memory store.
func BenchmarkEngine(b *testing.B) {
	storetest.Benchmark(b, func(ctx context.Context, b *testing.B) (driver.Store, error) {
		return memstore.New(), nil
	})
}
