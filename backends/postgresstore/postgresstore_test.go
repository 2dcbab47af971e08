package postgresstore_test

import (
	"context"
	"net/url"
	"testing"

	"github.com/credlife/clm/backends/gormstore"
	"github.com/credlife/clm/backends/postgresstore"
	"github.com/credlife/clm/internal/testdb"
	"github.com/credlife/clm/lifecycle/driver"
	"github.com/credlife/clm/lifecycle/storetest"
)

type harness struct{ dsn string }

func (h harness) Open(ctx context.Context) (driver.Store, error) {
	return postgresstore.Open(ctx, h.dsn, nil)
}

func (harness) Close() {}

func TestConformance(t *testing.T) {
	testdb.Postgres(t) // skip or fail early when the server is not configured
	storetest.Run(t, func(ctx context.Context, t *testing.T) (storetest.Harness, error) {
		return harness{dsn: testdb.Postgres(t)}, nil
	})
}

func TestNoPartialState(t *testing.T) {
	s, err := postgresstore.Open(context.Background(), testdb.Postgres(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	storetest.NoPartialState(t, s, func(ctx context.Context) error {
		db := s.DB().WithContext(ctx)
		if err := db.Exec(`CREATE FUNCTION clm_fail() RETURNS trigger AS $$ BEGIN
			IF NEW.path = '` + storetest.FailPath + `' THEN RAISE EXCEPTION 'forced failure'; END IF; RETURN NEW; END $$ LANGUAGE plpgsql`).Error; err != nil {
			return err
		}
		return db.Exec(`CREATE TRIGGER clm_fail BEFORE INSERT ON clm_bindings FOR EACH ROW EXECUTE FUNCTION clm_fail()`).Error
	})
}

func TestLockTimeout(t *testing.T) {
	s, err := postgresstore.Open(context.Background(), testdb.Postgres(t)+"&lock_timeout=1000", nil)
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

// BenchmarkEngine runs every engine operation on a fresh schema of the
// server of CLM_TEST_POSTGRES_DSN (skipped when it is not set).
func BenchmarkEngine(b *testing.B) {
	storetest.Benchmark(b, func(ctx context.Context, b *testing.B) (driver.Store, error) {
		return postgresstore.Open(ctx, testdb.Postgres(b), nil)
	})
}

func TestPoolHeldByTransactions(t *testing.T) {
	s, err := postgresstore.Open(context.Background(), testdb.Postgres(t), &gormstore.Options{MaxConns: 4})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	storetest.PoolHeldByTransactions(t, s, 4)
}

func TestSealedMovedRecord(t *testing.T) {
	s := openForSealing(t)
	defer s.Close()
	storetest.SealedMovedRecord(t, s, func(ctx context.Context, kn int64, tenant string) error {
		return s.DB().WithContext(ctx).Exec("UPDATE clm_credentials SET tenant = ? WHERE key_number = ?", tenant, kn).Error
	})
}

func openForSealing(t *testing.T) *gormstore.Store {
	s, err := postgresstore.Open(context.Background(), testdb.Postgres(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestMultiHostDSN: a libpq-style multi-host DSN whose first host does not
// answer opens on the next one that is writable (target_session_attrs).
func TestMultiHostDSN(t *testing.T) {
	dsn := testdb.Postgres(t)
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	u.Host = "127.0.0.1:1," + u.Host // nothing listens on port 1
	q := u.Query()
	q.Set("target_session_attrs", "read-write")
	u.RawQuery = q.Encode()
	s, err := postgresstore.Open(context.Background(), u.String(), nil)
	if err != nil {
		t.Fatalf("a multi-host DSN: %v", err)
	}
	defer s.Close()
	if _, err := s.NextNumber(context.Background(), driver.SeqKeyID); err != nil {
		t.Fatal(err)
	}
}
