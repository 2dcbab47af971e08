// Package postgresstore opens a driver.Store on PostgreSQL.
//
// Serialization failures and deadlocks are retried by Store.Atomic; a lock
// not granted in time answers CLM code 1403 and an unreachable server 1601.
// The schema goes in the DSN's search_path (the current schema).
//
// A DSN may name several hosts, libpq-style, for a primary with replicas
// behind a failover manager: "postgres://clm@db1:5432,db2:5432/clm?target_session_attrs=read-write"
// (or "host=db1,db2 target_session_attrs=read-write"): connections go to the
// host that is the writable primary.
//
// Program against driver.Store and lifecycle.Manager; this package only
// opens the database, and importing it links only the pgx driver.
package postgresstore

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"net"
	"strings"
	"syscall"

	"github.com/jackc/pgx/v5/pgconn"
	"gorm.io/driver/postgres"

	"github.com/credlife/clm/backends/gormstore"
)

// Options configure the Store: its logger, slow-query threshold, retries
// and pool size (see gormstore.Options, which it is).
type Options = gormstore.Options

// Open opens the database named by dsn (a postgres:// URL or key=value
// pairs), creating the schema if needed. A DSN without connect_timeout gets
// 5 seconds.
func Open(ctx context.Context, dsn string, opts *Options) (*gormstore.Store, error) {
	cfg, err := pgconn.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("postgresstore: bad DSN: %w", err)
	}
	if cfg.ConnectTimeout == 0 && !strings.Contains(dsn, "connect_timeout") {
		if strings.Contains(dsn, "://") {
			if strings.Contains(dsn, "?") {
				dsn += "&connect_timeout=5"
			} else {
				dsn += "?connect_timeout=5"
			}
		} else {
			dsn += " connect_timeout=5"
		}
	}
	return gormstore.Open(ctx, postgres.New(postgres.Config{DSN: dsn}), Dialect, 32, opts)
}

// Dialect is PostgreSQL's gormstore.Dialect.
var Dialect = gormstore.Dialect{Name: "postgres", Classify: classify}

func classify(err error) gormstore.Class {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch {
		case pe.Code == "40001", pe.Code == "40P01": // serialization failure, deadlock
			return gormstore.ClassRetry
		case pe.Code == "55P03": // lock not available (lock_timeout)
			return gormstore.ClassLockTimeout
		case strings.HasPrefix(pe.Code, "08"), pe.Code == "57P01", pe.Code == "57P02", pe.Code == "57P03", pe.Code == "53300":
			return gormstore.ClassUnavailable
		}
		return gormstore.ClassOther
	}
	var ce *pgconn.ConnectError
	var ne net.Error
	switch {
	case errors.As(err, &ce), errors.Is(err, driver.ErrBadConn),
		errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET),
		errors.As(err, &ne):
		return gormstore.ClassUnavailable
	}
	return gormstore.ClassOther
}
