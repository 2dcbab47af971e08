// Package sqlitestore opens a driver.Store on an SQLite file, the
// embedded default: no server to run, one file to back up.
//
// The database runs in WAL mode with a busy timeout, and every transaction
// begins IMMEDIATE, so concurrent writers (goroutines or processes) queue
// for the write lock instead of failing with "database is locked".
//
// Program against driver.Store and lifecycle.Manager; this package only
// opens the database. It links the SQLite driver, a C library built by cgo;
// importing it does not link the MySQL or PostgreSQL drivers. A program
// built with CGO_ENABLED=0 still compiles, and Open answers ErrNoCgo,
// which names the alternatives.
package sqlitestore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"gorm.io/driver/sqlite"
	"gorm.io/gorm"

	"github.com/credlife/clm/backends/gormstore"
)

// BusyTimeoutMillis is how long a statement waits for a lock held by another
// connection before it fails with a lock timeout (CLM code 1403).
const BusyTimeoutMillis = 10000

// MmapSize is how much of the database file each connection maps into
// memory for reading: none. In WAL mode SQLite unmaps a connection's whole
// map at the start of each read transaction after any other connection
// has written, and maps it again on the next page read: under a steady
// write load that was an munmap (a TLB shootdown on every CPU) and page
// faults for nearly every request, and key creation over HTTP ran 15%
// slower with a 1 GiB map than with none. Pages come from read calls
// instead, served by the operating system's page cache.
const MmapSize = 0

// Options configure the Store: its logger, slow-query threshold, retries
// and pool size (see gormstore.Options, which it is).
type Options = gormstore.Options

// ErrNoCgo is Open's error in a program built without cgo.
var ErrNoCgo = errors.New("sqlitestore: this program was built with CGO_ENABLED=0, and SQLite here is a C library (github.com/mattn/go-sqlite3) that needs cgo: " +
	"build with CGO_ENABLED=1 and a C compiler (gcc), or use another store: backends/mysqlstore or backends/postgresstore (pure Go), or backends/memstore in tests")

// Open opens the SQLite database at path, creating the file and the schema
// if needed.
func Open(ctx context.Context, path string, opts *Options) (*gormstore.Store, error) {
	if !cgoEnabled {
		return nil, ErrNoCgo
	}
	if path == "" || strings.ContainsAny(path, "?#") {
		return nil, errors.New("sqlitestore: path must be a file name without '?' or '#'")
	}
	q := url.Values{}
	q.Set("_journal_mode", "WAL")
	q.Set("_busy_timeout", fmt.Sprint(BusyTimeoutMillis))
	q.Set("_txlock", "immediate")
	q.Set("_synchronous", "NORMAL")
	q.Set("_foreign_keys", "1")
	dsn := "file:" + path + "?" + q.Encode()
	register()
	return gormstore.Open(ctx, sqlite.New(sqlite.Config{DriverName: driverName, DSN: dsn}), Dialect, 16, opts)
}

// driverName is the mattn/go-sqlite3 driver registered with the connection
// settings that the DSN cannot carry.
const driverName = "sqlite3_clm"

// Dialect is SQLite's gormstore.Dialect.
var Dialect = gormstore.Dialect{
	Name:            "sqlite",
	Classify:        classify,
	SerializeWrites: true,
	Checkpoint:      checkpoint,
	DetachContext:   true,
	OnWriter: func(ctx context.Context, c *sql.Conn) error {
		_, err := c.ExecContext(ctx, fmt.Sprintf("PRAGMA cache_size = %d", -WriterCacheKiB))
		return err
	},
}

// WriterCacheKiB is the page cache of the connection that runs the Store's
// write transactions (the others keep SQLite's default of 2 MiB). Its
// cache stays valid from one transaction to the next unless another
// connection writes meanwhile (a write outside a transaction, another
// process). The size is a choice, not a measured optimum.
const WriterCacheKiB = 32 << 10

// WALSizeLimit bounds the WAL file: when the log has reached it, the
// background checkpoint waits for readers and other processes' writers (up
// to RestartWait) so that the log starts over, and the file is cut back to
// it. This process's writers are held off from a quarter of it, which is
// enough unless other processes write to the same file all the time.
const WALSizeLimit = 64 << 20

// RestartWait is how long the restarting checkpoint waits for readers and
// other processes' writers; this process's writers wait with it.
const RestartWait = time.Second

// restartFrames is WALSizeLimit in WAL frames of the default page size.
var restartFrames = WALSizeLimit / (4096 + 24)

// checkpoint is the Dialect's Checkpoint. A passive checkpoint copies what
// it can without waiting for anyone. But SQLite starts the log over only
// after a checkpoint has copied all of it, and under a steady load commits
// keep overtaking a passive one: the WAL grew by about 100 MB a second in
// issue #7's load runs, and every read searched the longer log. So once
// the log is a quarter of WALSizeLimit long, a second checkpoint copies
// the few commits made meanwhile with this process's writers held off,
// and the next commit starts the log over; at WALSizeLimit, a restarting
// checkpoint waits for other connections too.
func checkpoint(ctx context.Context, db *gorm.DB, holdWrites func() (release func())) error {
	db = db.WithContext(ctx)
	var busy, frames, copied int
	if err := db.Raw("PRAGMA wal_checkpoint(PASSIVE)").Row().Scan(&busy, &frames, &copied); err != nil {
		return err
	}
	if frames < restartFrames/4 {
		return nil
	}
	release := holdWrites()
	defer release()
	if frames < restartFrames {
		return db.Exec("PRAGMA wal_checkpoint(PASSIVE)").Error
	}
	return db.Connection(func(c *gorm.DB) error {
		if err := c.Exec(fmt.Sprintf("PRAGMA busy_timeout = %d", RestartWait.Milliseconds())).Error; err != nil {
			return err
		}
		err := c.Exec("PRAGMA wal_checkpoint(RESTART)").Error
		return errors.Join(err, c.Exec(fmt.Sprintf("PRAGMA busy_timeout = %d", BusyTimeoutMillis)).Error)
	})
}
