package postgresstore_test

import (
	"context"
	"testing"

	"github.com/credlife/clm/backends/postgresstore"
	"github.com/credlife/clm/internal/testdb"
	"github.com/credlife/clm/lifecycle"
	"github.com/credlife/clm/lifecycle/storetest"
)

type harness struct{ dsn string }

func (h harness) Open(ctx context.Context) (lifecycle.Store, error) {
	return postgresstore.Open(ctx, h.dsn, nil)
}

func (harness) Close() {}

func TestConformance(t *testing.T) {
	testdb.Postgres(t) // skip or fail early when the server is not configured
	storetest.Run(t, func(ctx context.Context, t *testing.T) (storetest.Harness, error) {
		return harness{dsn: testdb.Postgres(t)}, nil
	})
}
