// Package backends groups the driver.Store implementations. Each database
// has its own opener package, so that a program links only the SQL driver it
// uses:
//
//   - sqlitestore: SQLite, the embedded default (cgo, github.com/mattn/go-sqlite3).
//   - mysqlstore: MariaDB and MySQL (github.com/go-sql-driver/mysql).
//   - postgresstore: PostgreSQL (github.com/jackc/pgx).
//
// All three return a *gormstore.Store, which implements driver.Store on
// GORM and passes the conformance suite of lifecycle/storetest. memstore is
// a Store in memory, with no driver at all: the reference for backend
// authors and a test double for embedders. Program against
// lifecycle.Manager; a Store is only handed to lifecycle.New.
package backends
