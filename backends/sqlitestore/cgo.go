//go:build cgo

package sqlitestore

import (
	"database/sql"
	"errors"
	"fmt"
	"sync"

	"github.com/mattn/go-sqlite3"

	"github.com/credlife/clm/backends/gormstore"
)

// cgoEnabled: github.com/mattn/go-sqlite3 is SQLite's C library, built by
// cgo. Without cgo this package still compiles, and Open answers ErrNoCgo.
const cgoEnabled = true

var registerDriver sync.Once

// register registers the driver under driverName, once.
func register() {
	registerDriver.Do(func() {
		sql.Register(driverName, &sqlite3.SQLiteDriver{ConnectHook: func(c *sqlite3.SQLiteConn) error {
			// The Store checkpoints in the background (Dialect.Checkpoint),
			// so no commit pays for copying the WAL into the database. Reads
			// use read calls, not a memory map: see MmapSize.
			// A WAL that grew anyway is cut back to WALSizeLimit when it
			// starts over.
			_, err := c.Exec(fmt.Sprintf("PRAGMA wal_autocheckpoint = 0; PRAGMA mmap_size = %d; PRAGMA journal_size_limit = %d",
				MmapSize, WALSizeLimit), nil)
			return err
		}})
	})
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
