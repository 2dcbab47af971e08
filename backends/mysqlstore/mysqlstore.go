// Package mysqlstore opens a lifecycle.Store on MariaDB or MySQL.
//
// Tables are InnoDB, utf8mb4 with binary collation, so names and ids compare
// case-sensitively as on the other databases. Deadlocks are retried by
// Store.Atomic; a lock wait timeout answers CLM code 1403 and an unreachable
// server 1601.
//
// Program against lifecycle.Store and lifecycle.Manager; this package only
// opens the database, and importing it links only the MySQL driver.
package mysqlstore

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"net"
	"syscall"
	"time"

	"github.com/go-sql-driver/mysql"
	gormmysql "gorm.io/driver/mysql"

	"github.com/credlife/clm/backends/gormstore"
)

// Open opens the database named by dsn (the go-sql-driver/mysql format,
// "user:password@tcp(host:3306)/dbname"), creating the schema if needed.
// The database itself must exist. Timeouts the DSN leaves unset default to
// 5s to connect and 30s to read or write; clientFoundRows is always on.
func Open(ctx context.Context, dsn string, opts *gormstore.Options) (*gormstore.Store, error) {
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		return nil, fmt.Errorf("mysqlstore: bad DSN: %w", err)
	}
	cfg.ClientFoundRows = true
	if cfg.Timeout == 0 {
		cfg.Timeout = 5 * time.Second
	}
	if cfg.ReadTimeout == 0 {
		cfg.ReadTimeout = 30 * time.Second
	}
	if cfg.WriteTimeout == 0 {
		cfg.WriteTimeout = 30 * time.Second
	}
	return gormstore.Open(ctx, gormmysql.New(gormmysql.Config{DSNConfig: cfg}), Dialect, 32, opts)
}

// Dialect is MySQL's gormstore.Dialect.
var Dialect = gormstore.Dialect{
	Name:         "mysql",
	Classify:     classify,
	TableOptions: "ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin",
}

func classify(err error) gormstore.Class {
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		switch me.Number {
		case 1213, 1020: // deadlock; record changed since last read
			return gormstore.ClassRetry
		case 1205: // lock wait timeout
			return gormstore.ClassLockTimeout
		case 1040, 1045, 1053, 1077, 1129, 1152, 2002, 2003, 2006, 2013:
			return gormstore.ClassUnavailable
		}
		return gormstore.ClassOther
	}
	var ne net.Error
	switch {
	case errors.Is(err, driver.ErrBadConn), errors.Is(err, mysql.ErrInvalidConn),
		errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET),
		errors.As(err, &ne):
		return gormstore.ClassUnavailable
	}
	return gormstore.ClassOther
}
