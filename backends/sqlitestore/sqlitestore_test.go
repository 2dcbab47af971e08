package sqlitestore_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/credlife/clm/backends/gormstore"
	"github.com/credlife/clm/backends/sqlitestore"
	"github.com/credlife/clm/lifecycle"
	"github.com/credlife/clm/lifecycle/driver"
	"github.com/credlife/clm/lifecycle/storetest"
)

type harness struct{ path string }

func (h harness) Open(ctx context.Context) (driver.Store, error) {
	return sqlitestore.Open(ctx, h.path, nil)
}

func (harness) Close() {}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(ctx context.Context, t *testing.T) (storetest.Harness, error) {
		return harness{path: filepath.Join(t.TempDir(), "clm.db")}, nil
	})
}

// TestLogsCarryNoValues logs every query (a 1ns slow-query threshold) and
// checks that SQL values, which can be secrets, never reach the log.
func TestLogsCarryNoValues(t *testing.T) {
	ctx := context.Background()
	var buf bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	s, err := sqlitestore.Open(ctx, filepath.Join(t.TempDir(), "clm.db"), &gormstore.Options{Logger: logger, SlowQuery: time.Nanosecond})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	const secret = "SECRET-VALUE-4711"
	r := &driver.PSKRecord{KeyID: 1, Tenant: "tenant-" + secret, Alias: secret, Password: []byte(secret), Status: lifecycle.PSKActive}
	if err := s.CreatePSK(ctx, r); err != nil {
		t.Fatal(err)
	}
	_ = s.CreatePSK(ctx, r) // an error path too
	if _, err := s.ListPSKs(ctx, driver.PSKQuery{Tenant: "tenant-" + secret, Limit: 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetPSK(ctx, 1); err != nil { // a prepared statement, not GORM's
		t.Fatal(err)
	}
	out := buf.String()
	if !strings.Contains(out, "INSERT INTO") || !strings.Contains(out, "FROM clm_psks WHERE key_id = ?") {
		t.Fatalf("the slow-query log should hold the statements, GORM's and the prepared ones:\n%s", out)
	}
	if strings.Contains(out, secret) {
		t.Fatalf("a SQL value reached the log:\n%s", out)
	}
}

// TestBackgroundCheckpoint checks that the WAL is copied into the database
// file while the store is open, though no commit checkpoints it (the
// connections' automatic checkpoint is off).
func TestBackgroundCheckpoint(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "clm.db")
	s, err := sqlitestore.Open(ctx, path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var auto int
	if err := s.DB().Raw("PRAGMA wal_autocheckpoint").Scan(&auto).Error; err != nil || auto != 0 {
		t.Fatalf("wal_autocheckpoint = %d, %v; want 0", auto, err)
	}
	var limit int64
	if err := s.DB().Raw("PRAGMA journal_size_limit").Scan(&limit).Error; err != nil || limit != sqlitestore.WALSizeLimit {
		t.Fatalf("journal_size_limit = %d, %v; want %d", limit, err, sqlitestore.WALSizeLimit)
	}
	before := fileSize(t, path)
	secret := make([]byte, 8192) // a few pages per row
	for i := range 200 {
		err := s.Atomic(ctx, func(tx driver.Tx) error {
			return tx.CreateCredential(ctx, &driver.CredentialRecord{KeyNumber: int64(i + 1), Tenant: "t",
				Kind: driver.KindSymmetricKey, State: driver.StateValid, Secret: secret})
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for fileSize(t, path) < before+200*8192 {
		if time.Now().After(deadline) {
			t.Fatalf("the database file stayed at %d bytes (was %d): no checkpoint ran", fileSize(t, path), before)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestWALStartsOver writes without a pause from several goroutines, with
// readers beside them, and watches the WAL file's header, whose checkpoint
// sequence number SQLite increments each time the log starts over from the
// beginning: on one store, and on two stores on one file (two processes'
// writers, which a store's own lock does not hold off). The lengths at
// which the checkpoint catches up and restarts are lowered to a quarter
// MiB and a MiB. Without them, the log did not start over under this load
// and the file grew with what was written.
func TestWALStartsOver(t *testing.T) {
	for _, stores := range []int{1, 2} {
		t.Run(fmt.Sprintf("%d stores", stores), func(t *testing.T) {
			defer sqlitestore.SetRestartFrames(256)() // about 1 MiB
			ctx := context.Background()
			path := filepath.Join(t.TempDir(), "clm.db")
			var all []*gormstore.Store
			for range stores {
				s, err := sqlitestore.Open(ctx, path, nil)
				if err != nil {
					t.Fatal(err)
				}
				defer s.Close()
				all = append(all, s)
			}
			const perWriter, writersPerStore = 1500, 2
			total := int64(len(all) * writersPerStore * perWriter)
			secret := make([]byte, 8192) // three pages a row: about 20 KB of log a transaction
			var writers, readers sync.WaitGroup
			var next atomic.Int64
			errs := make(chan error, 16)
			done := make(chan struct{})
			restarts, largest := map[uint32]bool{}, int64(0)
			watched := make(chan struct{})
			go func() { // the WAL header's checkpoint sequence and the file's size
				defer close(watched)
				for {
					select {
					case <-done:
						return
					case <-time.After(time.Millisecond):
					}
					f, err := os.Open(path + "-wal")
					if err != nil {
						continue
					}
					var h [16]byte
					if _, err := io.ReadFull(f, h[:]); err == nil {
						restarts[binary.BigEndian.Uint32(h[12:])] = true
					}
					if fi, err := f.Stat(); err == nil {
						largest = max(largest, fi.Size())
					}
					f.Close()
				}
			}()
			for _, s := range all {
				for range writersPerStore {
					writers.Go(func() {
						for range perWriter {
							kn := next.Add(1)
							err := s.Atomic(ctx, func(tx driver.Tx) error {
								return tx.CreateCredential(ctx, &driver.CredentialRecord{KeyNumber: kn, Tenant: "t",
									Kind: driver.KindSymmetricKey, State: driver.StateValid, Secret: secret})
							})
							if err != nil {
								errs <- err
								return
							}
						}
					})
				}
				readers.Go(func() { // a reader that never pauses either, until the writers are done
					for {
						select {
						case <-done:
							return
						default:
						}
						if _, err := s.GetCredential(ctx, max(1, next.Load()-1)); err != nil && !errors.Is(err, driver.ErrNotFound) {
							errs <- err
							return
						}
					}
				})
			}
			writers.Wait()
			close(done)
			readers.Wait()
			<-watched
			close(errs)
			for err := range errs {
				t.Fatal(err)
			}
			t.Logf("FIGURE WAL under steady writes and reads (SQLite, %d store(s) on one file): %d MiB written through the log, which started over %d times; the file peaked at %.1f MiB",
				stores, total*20>>10, len(restarts)-1, float64(largest)/(1<<20))
			if len(restarts) < 4 {
				t.Fatalf("the WAL started over %d times under %d transactions", len(restarts)-1, total)
			}
		})
	}
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

func TestNewerSchemaRefused(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "clm.db")
	s, err := sqlitestore.Open(ctx, path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.DB().Exec("UPDATE clm_schema SET version = ?", gormstore.SchemaVersion+1).Error; err != nil {
		t.Fatal(err)
	}
	s.Close()
	if _, err := sqlitestore.Open(ctx, path, nil); err == nil || !strings.Contains(err.Error(), "newer schema") {
		t.Fatalf("a database with a newer schema must be refused, got %v", err)
	}
}

func TestSchemaVersionRecorded(t *testing.T) {
	ctx := context.Background()
	s, err := sqlitestore.Open(ctx, filepath.Join(t.TempDir(), "clm.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var v int
	if err := s.DB().Raw("SELECT version FROM clm_schema WHERE id = 1").Scan(&v).Error; err != nil || v != gormstore.SchemaVersion {
		t.Fatalf("the schema version must be recorded: %d, %v", v, err)
	}
	var idx []string
	s.DB().Raw("SELECT name FROM sqlite_master WHERE type = 'index' AND name LIKE 'clm_%'").Scan(&idx)
	for _, want := range []string{"clm_psks_tenant_keyid", "clm_devices_tenant_name", "clm_credentials_ca_serial", "clm_credentials_ca_state", "clm_bindings_key", "clm_bindings_device_path"} {
		if !slices.Contains(idx, want) {
			t.Errorf("index %s missing: %v", want, idx)
		}
	}
	for _, gone := range []string{"clm_bindings_unique", "clm_bindings_keynumber"} {
		if slices.Contains(idx, gone) {
			t.Errorf("index %s of schema 4 is there: %v", gone, idx)
		}
	}
}

// TestBindingIndexesUpgraded opens a database whose bindings have schema
// 4's indexes (a unique one beginning with the tenant, and one on the
// keynumber): Open makes the unique index that begins with the keynumber,
// drops both, and keeps the bindings; a duplicate binding is still
// refused, and every query of bindings uses an index.
func TestBindingIndexesUpgraded(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "clm.db")
	s, err := sqlitestore.Open(ctx, path, nil)
	require.NoError(t, err)
	b := &driver.BindingRecord{Tenant: "t", DeviceID: "d", KeyNumber: 7, Path: "/p", CreatedAt: time.Now().UTC()}
	require.NoError(t, s.PutBinding(ctx, b))
	for _, q := range []string{
		"DROP INDEX clm_bindings_key",
		"CREATE UNIQUE INDEX clm_bindings_unique ON clm_bindings (tenant, device_id, key_number, path_hash)",
		"CREATE INDEX clm_bindings_keynumber ON clm_bindings (key_number)",
		"UPDATE clm_schema SET version = 4 WHERE id = 1",
	} {
		require.NoError(t, s.DB().Exec(q).Error, q)
	}
	require.NoError(t, s.Close())

	s, err = sqlitestore.Open(ctx, path, nil)
	require.NoError(t, err)
	defer s.Close()
	var idx []string
	require.NoError(t, s.DB().Raw("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'clm_bindings' AND name LIKE 'clm_%'").Scan(&idx).Error)
	assert.ElementsMatch(t, []string{"clm_bindings_key", "clm_bindings_device_path"}, idx)
	got, err := s.ListBindings(ctx, "t", "d", 7)
	require.NoError(t, err)
	require.Len(t, got, 1)
	// The same binding again is skipped (ON CONFLICT DO NOTHING): one row.
	require.NoError(t, s.PutBinding(ctx, b))
	got, err = s.BindingsOf(ctx, 7)
	require.NoError(t, err)
	assert.Len(t, got, 1)
	for _, q := range []string{
		"SELECT * FROM clm_bindings WHERE tenant = 't' AND device_id = 'd' AND key_number = 7 ORDER BY created_at, id",
		"SELECT * FROM clm_bindings WHERE key_number = 7 ORDER BY created_at, id",
		"SELECT * FROM clm_bindings WHERE tenant = 't' AND device_id = 'd' AND path_hash = 'x' ORDER BY created_at DESC, id DESC LIMIT 1",
		"SELECT * FROM clm_credentials WHERE key_number IN (SELECT key_number FROM clm_bindings WHERE tenant = 't' AND device_id = 'd')",
		"DELETE FROM clm_bindings WHERE key_number = 7",
	} {
		var plan []struct {
			ID, Parent, Notused int
			Detail              string
		}
		require.NoError(t, s.DB().Raw("EXPLAIN QUERY PLAN "+q).Scan(&plan).Error)
		var details []string
		for _, p := range plan {
			details = append(details, p.Detail)
		}
		all := strings.Join(details, "; ")
		assert.NotContains(t, all, "SCAN clm_bindings", q)
		assert.Contains(t, all, "INDEX clm_bindings_", q)
	}
}

// TestNoPlaintextAtRest scans the raw database file for the secrets the
// engine handed out: PSK passwords, device keys and symmetric keys must not
// appear in it, in binary, hex or base64.
func TestNoPlaintextAtRest(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "clm.db")
	s, err := sqlitestore.Open(ctx, path, nil)
	if err != nil {
		t.Fatal(err)
	}
	keys, _ := lifecycle.NewStaticKeys(1, map[uint32][]byte{1: bytes.Repeat([]byte{7}, 32)})
	m, err := lifecycle.New(s, &lifecycle.Options{Keys: keys})
	if err != nil {
		t.Fatal(err)
	}
	var secrets [][]byte
	for i := range 5 {
		p, err := m.IssuePSK(ctx, lifecycle.IssuePSKRequest{Tenant: "t", Alias: "a"})
		if err != nil {
			t.Fatal(err)
		}
		creds := lifecycle.PSKCredentials{KeyID: p.KeyID, Password: p.Password}
		secrets = append(secrets, []byte(p.Password.Reveal()))
		for _, kt := range []string{"AES", "TWINE"} {
			k, err := m.CreateKey(ctx, lifecycle.CreateKeyRequest{PSK: creds, Device: lifecycle.DeviceRequest{Name: fmt.Sprint(kt, i)},
				Alias: "k", KeyType: kt, KeyPath: "/tmp/key", Path: "/k"})
			if err != nil {
				t.Fatal(err)
			}
			secrets = append(secrets, k.Key.Reveal(), []byte(k.Device.Key.Reveal()))
		}
	}
	s.Close()
	var raw []byte
	for _, f := range []string{path, path + "-wal"} {
		b, _ := os.ReadFile(f)
		raw = append(raw, b...)
	}
	if !bytes.Contains(raw, []byte("TWINE4")) {
		t.Fatal("the scan must see the stored rows (a device name is missing)")
	}
	for _, sec := range secrets {
		for _, form := range [][]byte{sec, []byte(hex.EncodeToString(sec)), []byte(strings.ToUpper(hex.EncodeToString(sec))), []byte(base64.StdEncoding.EncodeToString(sec))} {
			if bytes.Contains(raw, form) {
				t.Fatalf("a secret is stored in plain text (%d bytes)", len(sec))
			}
		}
	}
}

func TestNoPartialState(t *testing.T) {
	s, err := sqlitestore.Open(context.Background(), filepath.Join(t.TempDir(), "clm.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	storetest.NoPartialState(t, s, func(ctx context.Context) error {
		return s.DB().WithContext(ctx).Exec(`CREATE TRIGGER clm_fail BEFORE INSERT ON clm_bindings
			WHEN NEW.path = '` + storetest.FailPath + `' BEGIN SELECT RAISE(ABORT, 'forced failure'); END`).Error
	})
}

func TestPoolHeldByTransactions(t *testing.T) {
	// SQLite runs one transaction at a time.
	s, err := sqlitestore.Open(context.Background(), filepath.Join(t.TempDir(), "clm.db"), &gormstore.Options{MaxConns: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if !t.Failed() { // else Close would wait for the stuck transaction
			s.Close()
		}
	}()
	sqlDB, err := s.DB().DB()
	if err != nil {
		t.Fatal(err)
	}
	if n := sqlDB.Stats().MaxOpenConnections; n != 1 {
		t.Fatalf("Options.MaxConns 1 gave a pool of %d connections", n)
	}
	storetest.PoolHeldByTransactions(t, s, 1)
}

// TestCloseLeavesOnlyTheDatabase closes a store right after its first
// transaction, which prepares its statements on its own connection and asks
// for the Store's copies in the background. Close must wait for those: a
// connection left open past Close keeps the WAL and shared-memory files,
// and a caller that removes the directory after Close (as t.TempDir does)
// finds it not empty.
func TestCloseLeavesOnlyTheDatabase(t *testing.T) {
	ctx := context.Background()
	for i := range 50 {
		dir := t.TempDir()
		s, err := sqlitestore.Open(ctx, filepath.Join(dir, "clm.db"), nil)
		if err != nil {
			t.Fatal(err)
		}
		err = s.Atomic(ctx, func(tx driver.Tx) error {
			_, err := tx.GetPSK(ctx, 1)
			return err
		})
		if !errors.Is(err, driver.ErrNotFound) {
			t.Fatalf("GetPSK of a missing key: %v, want ErrNotFound", err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		entries, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		if len(names) != 1 || names[0] != "clm.db" {
			t.Fatalf("round %d: after Close the directory holds %v, want only clm.db", i, names)
		}
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
	s, err := sqlitestore.Open(context.Background(), filepath.Join(t.TempDir(), "clm.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestWithoutCgo: a program built with CGO_ENABLED=0 gets an error from
// Open that says why and names the alternatives.
func TestWithoutCgo(t *testing.T) {
	cmd := exec.Command("go", "run", "./testdata/nocgo")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go run with CGO_ENABLED=0: %v\n%s", err, out)
	}
	for _, want := range []string{"true ", "CGO_ENABLED=0", "needs cgo", "mysqlstore", "postgresstore", "memstore"} {
		if !strings.Contains(string(out), want) {
			t.Fatalf("without cgo Open must say why and name the alternatives (%q): %s", want, out)
		}
	}
}
