// Package testdb creates fresh, throw-away MariaDB/MySQL databases and
// PostgreSQL schemas for tests, from the DSNs in CLM_TEST_MYSQL_DSN and
// CLM_TEST_POSTGRES_DSN. Without a DSN the test is skipped, except under
// CI=true, where it fails: in CI every database runs. FreshMySQL and
// FreshPostgres do the same for a program (the load generator).
package testdb

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"
)

// The environment variables that name the test servers.
const (
	MySQLEnv    = "CLM_TEST_MYSQL_DSN"
	PostgresEnv = "CLM_TEST_POSTGRES_DSN"
)

func baseDSN(t testing.TB, env string) string {
	t.Helper()
	dsn := os.Getenv(env)
	if dsn == "" {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is not set, and under CI=true the %s tests are mandatory", env, env)
		}
		t.Skipf("%s not set", env)
	}
	return dsn
}

func randomName(prefix string) string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

// MySQL creates a fresh database on the server of CLM_TEST_MYSQL_DSN and
// returns a DSN for it; the database is dropped when the test ends.
func MySQL(t testing.TB) string {
	t.Helper()
	return fresh(t, FreshMySQL, MySQLEnv)
}

// Postgres creates a fresh schema on the server of CLM_TEST_POSTGRES_DSN
// and returns a DSN whose search_path is that schema; the schema is dropped
// when the test ends.
func Postgres(t testing.TB) string {
	t.Helper()
	return fresh(t, FreshPostgres, PostgresEnv)
}

func fresh(t testing.TB, create func(ctx context.Context, base, prefix string) (string, func() error, error), env string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dsn, drop, err := create(ctx, baseDSN(t, env), "clm_test_")
	if err != nil {
		t.Fatalf("%s: %v", env, err)
	}
	t.Cleanup(func() { _ = drop() })
	return dsn
}

// FreshMySQL creates a database named prefix and a random suffix on the
// MySQL or MariaDB server of base (a DSN) and returns a DSN for it, and a
// function that drops it.
func FreshMySQL(ctx context.Context, base, prefix string) (dsn string, drop func() error, err error) {
	cfg, err := mysql.ParseDSN(base)
	if err != nil {
		return "", nil, err
	}
	admin := cfg.Clone()
	admin.DBName = ""
	name := randomName(prefix)
	if err := execOn(ctx, "mysql", admin.FormatDSN(), "CREATE DATABASE "+name+" CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"); err != nil {
		return "", nil, fmt.Errorf("create database: %w", err)
	}
	cfg.DBName = name
	return cfg.FormatDSN(), func() error { return dropLater("mysql", admin.FormatDSN(), "DROP DATABASE IF EXISTS "+name) }, nil
}

// FreshPostgres creates a schema named prefix and a random suffix on the
// PostgreSQL server of base (a DSN) and returns a DSN whose search_path is
// that schema, and a function that drops it.
func FreshPostgres(ctx context.Context, base, prefix string) (dsn string, drop func() error, err error) {
	name := randomName(prefix)
	if err := execOn(ctx, "pgx", base, "CREATE SCHEMA "+name); err != nil {
		return "", nil, fmt.Errorf("create schema: %w", err)
	}
	return withSearchPath(base, name), func() error { return dropLater("pgx", base, "DROP SCHEMA IF EXISTS "+name+" CASCADE") }, nil
}

// execOn runs one statement on a connection of its own.
func execOn(ctx context.Context, driver, dsn, stmt string) error {
	db, err := sql.Open(driver, dsn)
	if err != nil {
		return err
	}
	defer db.Close()
	_, err = db.ExecContext(ctx, stmt)
	return err
}

// dropLater runs a DROP with a deadline of its own: the context of the
// creation may be over.
func dropLater(driver, dsn, stmt string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return execOn(ctx, driver, dsn, stmt)
}

func withSearchPath(dsn, schema string) string {
	if strings.Contains(dsn, "://") {
		u, err := url.Parse(dsn)
		if err == nil {
			q := u.Query()
			q.Set("search_path", schema)
			u.RawQuery = q.Encode()
			return u.String()
		}
	}
	return fmt.Sprintf("%s search_path=%s", dsn, schema)
}
