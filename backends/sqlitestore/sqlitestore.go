// Package sqlitestore opens a lifecycle.Store on an SQLite file, the
// embedded default: no server to run, one file to back up.
//
// The database runs in WAL mode with a busy timeout, and every transaction
// begins IMMEDIATE, so concurrent writers (goroutines or processes) queue
// for the write lock instead of failing with "database is locked".
//
// Program against lifecycle.Store and lifecycle.Manager; this package only
// opens the database. It links the SQLite driver (cgo); importing it does not
// link the MySQL or PostgreSQL drivers.
package sqlitestore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"

	"github.com/mattn/go-sqlite3"
	"gorm.io/driver/sqlite"

	"github.com/credlife/clm/backends/gormstore"
)

// BusyTimeoutMillis is how long a statement waits for a lock held by another
// connection before it fails with a lock timeout (CLM code 1403).
const BusyTimeoutMillis = 10000

// MmapSize is how much of the database file each connection maps into
// memory for reading. The mapped pages are the operating system's page
// cache, shared by the connections and given back under memory pressure;
// they are not the process's heap.
const MmapSize = 1 << 30

// Open opens the SQLite database at path, creating the file and the schema
// if needed.
func Open(ctx context.Context, path string, opts *gormstore.Options) (*gormstore.Store, error) {
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
	registerDriver.Do(func() {
		sql.Register(driverName, &sqlite3.SQLiteDriver{ConnectHook: func(c *sqlite3.SQLiteConn) error {
			// The Store checkpoints in the background (Dialect.Checkpoint),
			// so no commit pays for copying the WAL into the database. Reads
			// go through a memory map of the file (up to MmapSize) instead of
			// a read call per page missing from the connection's small cache:
			// on a large store most lookups miss it.
			_, err := c.Exec(fmt.Sprintf("PRAGMA wal_autocheckpoint = 0; PRAGMA mmap_size = %d", MmapSize), nil)
			return err
		}})
	})
	return gormstore.Open(ctx, sqlite.New(sqlite.Config{DriverName: driverName, DSN: dsn}), Dialect, 16, opts)
}

// driverName is the mattn/go-sqlite3 driver registered with the connection
// settings that the DSN cannot carry.
const driverName = "sqlite3_clm"

var registerDriver sync.Once

// Dialect is SQLite's gormstore.Dialect.
var Dialect = gormstore.Dialect{
	Name:            "sqlite",
	Classify:        classify,
	SerializeWrites: true,
	Checkpoint:      "PRAGMA wal_checkpoint(PASSIVE)",
	DetachContext:   true,
}

func classify(err error) gormstore.Class {
	var se sqlite3.Error
	if !errors.As(err, &se) {
		return gormstore.ClassOther
	}
	switch {
	case se.ExtendedCode == sqlite3.ErrBusySnapshot:
		return gormstore.ClassRetry
	case se.Code == sqlite3.ErrBusy, se.Code == sqlite3.ErrLocked:
		return gormstore.ClassLockTimeout
	case se.Code == sqlite3.ErrCantOpen, se.Code == sqlite3.ErrIoErr, se.Code == sqlite3.ErrNotADB:
		return gormstore.ClassUnavailable
	}
	return gormstore.ClassOther
}
