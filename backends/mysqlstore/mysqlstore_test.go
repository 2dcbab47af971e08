package mysqlstore_test

import (
	"context"
	"strings"
	"testing"

	"github.com/credlife/clm/backends/gormstore"
	"github.com/credlife/clm/backends/mysqlstore"
	"github.com/credlife/clm/internal/testdb"
	"github.com/credlife/clm/lifecycle"
	"github.com/credlife/clm/lifecycle/storetest"
)

type harness struct{ dsn string }

func (h harness) Open(ctx context.Context) (lifecycle.Store, error) {
	return mysqlstore.Open(ctx, h.dsn, nil)
}

func (harness) Close() {}

func TestConformance(t *testing.T) {
	testdb.MySQL(t) // skip or fail early when the server is not configured
	storetest.Run(t, func(ctx context.Context, t *testing.T) (storetest.Harness, error) {
		return harness{dsn: testdb.MySQL(t)}, nil
	})
}

func TestNoPartialState(t *testing.T) {
	s, err := mysqlstore.Open(context.Background(), testdb.MySQL(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	storetest.NoPartialState(t, s, func(ctx context.Context) error {
		return s.DB().WithContext(ctx).Exec(`CREATE TRIGGER clm_fail BEFORE INSERT ON clm_bindings FOR EACH ROW
			BEGIN IF NEW.path = '` + storetest.FailPath + `' THEN SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'forced failure'; END IF; END`).Error
	})
}

func TestLockTimeout(t *testing.T) {
	dsn := testdb.MySQL(t)
	sep := "?"
	if strings.Contains(dsn, "?") {
		sep = "&"
	}
	s, err := mysqlstore.Open(context.Background(), dsn+sep+"innodb_lock_wait_timeout=1", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	storetest.LockTimeout(t, s, func(ctx context.Context) (func(), error) {
		tx := s.DB().WithContext(ctx).Begin()
		if err := tx.Exec("SELECT value FROM clm_sequences WHERE name = 'keyid' FOR UPDATE").Error; err != nil {
			return nil, err
		}
		return func() { tx.Rollback() }, nil
	})
}

// BenchmarkEngine runs every engine operation on a fresh database of the
// server of CLM_TEST_MYSQL_DSN (skipped when it is not set).
func BenchmarkEngine(b *testing.B) {
	storetest.Benchmark(b, func(ctx context.Context, b *testing.B) (lifecycle.Store, error) {
		return mysqlstore.Open(ctx, testdb.MySQL(b), nil)
	})
}

func TestPoolHeldByTransactions(t *testing.T) {
	s, err := mysqlstore.Open(context.Background(), testdb.MySQL(t), &gormstore.Options{MaxConns: 4})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	storetest.PoolHeldByTransactions(t, s, 4)
}
