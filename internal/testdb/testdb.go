// Package testdb creates fresh, throw-away MariaDB/MySQL databases and
// PostgreSQL schemas for tests, from the DSNs in CLM_TEST_MYSQL_DSN and
// CLM_TEST_POSTGRES_DSN. Without a DSN the test is skipped, except under
// CI=true, where it fails: in CI every database runs.
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
	cfg, err := mysql.ParseDSN(baseDSN(t, MySQLEnv))
	if err != nil {
		t.Fatalf("%s: %v", MySQLEnv, err)
	}
	admin := cfg.Clone()
	admin.DBName = ""
	db, err := sql.Open("mysql", admin.FormatDSN())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	name := randomName("clm_test_")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := db.ExecContext(ctx, "CREATE DATABASE "+name+" CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"); err != nil {
		t.Fatalf("create database: %v", err)
	}
	t.Cleanup(func() {
		db, err := sql.Open("mysql", admin.FormatDSN())
		if err != nil {
			return
		}
		defer db.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_, _ = db.ExecContext(ctx, "DROP DATABASE IF EXISTS "+name)
	})
	cfg.DBName = name
	return cfg.FormatDSN()
}

// Postgres creates a fresh schema on the server of CLM_TEST_POSTGRES_DSN
// and returns a DSN whose search_path is that schema; the schema is dropped
// when the test ends.
func Postgres(t testing.TB) string {
	t.Helper()
	base := baseDSN(t, PostgresEnv)
	db, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	name := randomName("clm_test_")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := db.ExecContext(ctx, "CREATE SCHEMA "+name); err != nil {
		t.Fatalf("create schema: %v", err)
	}
	t.Cleanup(func() {
		db, err := sql.Open("pgx", base)
		if err != nil {
			return
		}
		defer db.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_, _ = db.ExecContext(ctx, "DROP SCHEMA IF EXISTS "+name+" CASCADE")
	})
	return withSearchPath(base, name)
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
