package mysqlstore_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/credlife/clm/backends/gormstore"
	"github.com/credlife/clm/backends/mysqlstore"
	"github.com/credlife/clm/internal/testdb"
	"github.com/credlife/clm/lifecycle"
	"github.com/credlife/clm/lifecycle/driver"
	"github.com/credlife/clm/lifecycle/storetest"
)

type harness struct{ dsn string }

func (h harness) Open(ctx context.Context) (driver.Store, error) {
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
	storetest.Benchmark(b, func(ctx context.Context, b *testing.B) (driver.Store, error) {
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

// TestConvertsPaddingCollation: a database made by schema version 2
// (tables in utf8mb4_bin, a PAD SPACE collation where 'tenantB' =
// 'tenantB ') is converted by Open, and its tenants then compare byte for
// byte.
func TestConvertsPaddingCollation(t *testing.T) {
	ctx := context.Background()
	dsn := testdb.MySQL(t)
	s, err := mysqlstore.Open(ctx, dsn, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CreateDevice(ctx, &driver.DeviceRecord{Tenant: "tenantB", ID: "d1", Name: "gw", SealedKey: []byte{1}, Status: lifecycle.DeviceActive}); err != nil {
		t.Fatal(err)
	}
	var tables []string
	if err := s.DB().Raw(`SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME LIKE 'clm\_%'`).Scan(&tables).Error; err != nil {
		t.Fatal(err)
	}
	for _, tb := range tables {
		if err := s.DB().Exec("ALTER TABLE `" + tb + "` CONVERT TO CHARACTER SET utf8mb4 COLLATE utf8mb4_bin").Error; err != nil {
			t.Fatal(err)
		}
	}
	if err := s.DB().Exec("UPDATE clm_schema SET version = 2").Error; err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetDevice(ctx, "tenantB ", "d1"); err != nil {
		t.Fatalf("the old collation should pad (that is what is being converted): %v", err)
	}
	s.Close()

	s, err = mysqlstore.Open(ctx, dsn, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var padded []string
	if err := s.DB().Raw(`SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE()
		AND TABLE_NAME LIKE 'clm\_%' AND TABLE_COLLATION NOT IN ('utf8mb4_nopad_bin', 'utf8mb4_0900_bin')`).Scan(&padded).Error; err != nil {
		t.Fatal(err)
	}
	if len(padded) > 0 {
		t.Fatalf("tables left in a padding collation after Open: %v", padded)
	}
	if _, err := s.GetDevice(ctx, "tenantB ", "d1"); !errors.Is(err, driver.ErrNotFound) {
		t.Fatalf(`after the conversion tenant "tenantB " must not see tenantB's device: %v`, err)
	}
	if got, err := s.GetDevice(ctx, "tenantB", "d1"); err != nil || got.Name != "gw" {
		t.Fatalf("the converted table must keep its rows: %v", err)
	}
	var version int
	if err := s.DB().Raw("SELECT version FROM clm_schema WHERE id = 1").Scan(&version).Error; err != nil || version != gormstore.SchemaVersion {
		t.Fatalf("schema version after Open: %d (%v), want %d", version, err, gormstore.SchemaVersion)
	}
}

func TestSealedMovedRecord(t *testing.T) {
	s := openForSealing(t)
	defer s.Close()
	storetest.SealedMovedRecord(t, s, func(ctx context.Context, kn int64, tenant string) error {
		return s.DB().WithContext(ctx).Exec("UPDATE clm_credentials SET tenant = ? WHERE key_number = ?", tenant, kn).Error
	})
}

func openForSealing(t *testing.T) *gormstore.Store {
	s, err := mysqlstore.Open(context.Background(), testdb.MySQL(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestExpectedOutcomesNotErrors: the losing insert of a unique race is an
// expected outcome (ErrExists, which the engine answers), not an ERROR
// line in the log.
func TestExpectedOutcomesNotErrors(t *testing.T) {
	var logs syncBuffer
	s, err := mysqlstore.Open(context.Background(), testdb.MySQL(t), &gormstore.Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	r := &driver.PSKRecord{KeyID: 1, Tenant: "t", Alias: "a", Password: []byte{1}, Status: driver.PSKActive, CreatedAt: time.Now(), ExpiresAt: time.Now().Add(time.Hour)}
	if err := s.CreatePSK(ctx, r); err != nil {
		t.Fatal(err)
	}
	if err := s.CreatePSK(ctx, r); !errors.Is(err, driver.ErrExists) {
		t.Fatalf("a taken keyid: %v", err)
	}
	if strings.Contains(logs.String(), "level=ERROR") {
		t.Fatalf("the losing insert of a unique race was logged as an error:\n%s", logs.String())
	}
	// A real error is still logged.
	if err := s.DB().WithContext(ctx).Exec("SELECT no_such_column FROM clm_psks").Error; err == nil {
		t.Fatal("want an error")
	}
	if !strings.Contains(logs.String(), "level=ERROR") {
		t.Fatalf("a real error must still be logged:\n%s", logs.String())
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }
