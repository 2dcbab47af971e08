// Package mysqlstore opens a driver.Store on MariaDB or MySQL.
//
// Tables are InnoDB, utf8mb4 with a binary NO PAD collation
// (utf8mb4_nopad_bin on MariaDB, utf8mb4_0900_bin on MySQL 8), so that
// tenants, names and ids compare byte for byte as on the other databases:
// under a PAD SPACE collation such as utf8mb4_bin, 'tenantB' = 'tenantB ',
// and a PSK of tenant "tenantB " would reach tenantB's devices. Open
// converts tables made with another collation (schema version 2 and
// earlier). Deadlocks are retried by
// Store.Atomic; a lock wait timeout answers CLM code 1403 and an unreachable
// server 1601.
//
// Program against driver.Store and lifecycle.Manager; this package only
// opens the database, and importing it links only the MySQL driver.
package mysqlstore

import (
	"context"
	"database/sql"
	sqldriver "database/sql/driver"
	"errors"
	"fmt"
	"net"
	"syscall"
	"time"

	"github.com/go-sql-driver/mysql"
	gormmysql "gorm.io/driver/mysql"
	"gorm.io/gorm"

	"github.com/credlife/clm/backends/gormstore"
	"github.com/credlife/clm/lifecycle/driver"
)

// Options configure the Store: its logger, slow-query threshold, retries
// and pool size (see gormstore.Options, which it is).
type Options = gormstore.Options

// Open opens the database named by dsn (the go-sql-driver/mysql format,
// "user:password@tcp(host:3306)/dbname"), creating the schema if needed.
// The database itself must exist. Timeouts the DSN leaves unset default to
// 5s to connect and 30s to read or write; clientFoundRows is always on.
//
// The DSN may name several nodes of a MariaDB Galera cluster,
// "root@tcp(10.0.0.1:3306,10.0.0.2:3306,10.0.0.3:3306)/clm": each new
// connection then goes to the first node, in that order, that answers and
// is ready (wsrep_ready, Synced, in the Primary component), and a
// connection whose node stops being ready (error 1047) or dies is dropped,
// the statement retried on a new connection where nothing ran yet; a
// transaction in flight fails with CLM code 1601. List each server's
// nearest node first. On a Galera node (one address or several) reads,
// updates and deletes are causal (wsrep_sync_wait = 3): a server sees at
// once what another server committed through another node.
func Open(ctx context.Context, dsn string, opts *Options) (*gormstore.Store, error) {
	dsn, addrs := splitAddrs(dsn)
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
	if len(addrs) == 0 {
		addrs = []string{cfg.Addr}
	}
	connector, err := newFailover(cfg, addrs)
	if err != nil {
		return nil, fmt.Errorf("mysqlstore: %w", err)
	}
	collation, err := noPadCollation(ctx, connector)
	if err != nil {
		return nil, err
	}
	d := Dialect
	d.TableOptions = "ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=" + collation
	d.AfterMigrate = func(ctx context.Context, db *gorm.DB) error { return convertTables(ctx, db, collation) }
	return gormstore.Open(ctx, gormmysql.New(gormmysql.Config{Conn: sql.OpenDB(connector), DSNConfig: cfg}), d, 32, opts)
}

// Dialect is MySQL's gormstore.Dialect. Open completes it with the
// collation of the server (TableOptions, AfterMigrate).
var Dialect = gormstore.Dialect{
	Name:     "mysql",
	Classify: classify,
}

// The binary collations that do not pad: MariaDB's, then MySQL 8's.
var noPadCollations = []string{"utf8mb4_nopad_bin", "utf8mb4_0900_bin"}

// noPadCollation returns the first of noPadCollations that the server has.
func noPadCollation(ctx context.Context, conn sqldriver.Connector) (string, error) {
	db := sql.OpenDB(conn)
	defer db.Close()
	for _, c := range noPadCollations {
		var name string
		err := db.QueryRowContext(ctx, "SELECT COLLATION_NAME FROM information_schema.COLLATIONS WHERE COLLATION_NAME = ?", c).Scan(&name)
		switch {
		case err == nil:
			return name, nil
		case !errors.Is(err, sql.ErrNoRows):
			return "", fmt.Errorf("mysqlstore: %w: %w", driver.ErrUnavailable, err)
		}
	}
	return "", fmt.Errorf("mysqlstore: the server has none of the collations %v: identifiers could not compare byte for byte", noPadCollations)
}

// convertTables converts every clm_ table whose collation is not
// collation (a PAD SPACE one, from an older schema) to it.
func convertTables(ctx context.Context, db *gorm.DB, collation string) error {
	var tables []string
	err := db.WithContext(ctx).Raw(`SELECT TABLE_NAME FROM information_schema.TABLES
		WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME LIKE 'clm\_%' AND TABLE_COLLATION <> ?`, collation).Scan(&tables).Error
	if err != nil {
		return err
	}
	for _, t := range tables {
		if err := db.WithContext(ctx).Exec("ALTER TABLE `" + t + "` CONVERT TO CHARACTER SET utf8mb4 COLLATE " + collation).Error; err != nil {
			return fmt.Errorf("converting %s to %s: %w", t, collation, err)
		}
	}
	return nil
}

func classify(err error) gormstore.Class {
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		switch me.Number {
		case 1213, 1020: // deadlock; record changed since last read
			return gormstore.ClassRetry
		case 1205: // lock wait timeout
			return gormstore.ClassLockTimeout
		case 1040, 1045, 1053, 1077, 1129, 1152, 2002, 2003, 2006, 2013, errNotReady:
			return gormstore.ClassUnavailable
		}
		return gormstore.ClassOther
	}
	var ne net.Error
	switch {
	case errors.Is(err, sqldriver.ErrBadConn), errors.Is(err, mysql.ErrInvalidConn),
		errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET),
		errors.As(err, &ne):
		return gormstore.ClassUnavailable
	}
	return gormstore.ClassOther
}
