package sqlitestore_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/credlife/clm/backends/sqlitestore"
	"github.com/credlife/clm/lifecycle"
	"github.com/credlife/clm/lifecycle/storetest"
)

type harness struct{ path string }

func (h harness) Open(ctx context.Context) (lifecycle.Store, error) {
	return sqlitestore.Open(ctx, h.path, nil)
}

func (harness) Close() {}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(ctx context.Context, t *testing.T) (storetest.Harness, error) {
		return harness{path: filepath.Join(t.TempDir(), "clm.db")}, nil
	})
}
