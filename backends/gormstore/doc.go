// Package gormstore implements driver.Store on GORM, for SQLite,
// MariaDB/MySQL and PostgreSQL. Open it through sqlitestore, mysqlstore or
// postgresstore, which configure the driver; this package holds what the
// three share: the schema, the queries, and the handling of errors.
//
// The schema is created and upgraded when the Store opens, and its version
// recorded in the table clm_schema; a database with a newer schema than the
// program is refused. Every lookup path has an index. Times are stored as
// microseconds since the Unix epoch (UTC) in BIGINT columns. Sealed secrets
// are opaque BLOBs: no column holds a plaintext secret.
//
// GORM's logger is either silent or, with Options.Logger, a log/slog logger
// that sees SQL with placeholders only: values, which can be secrets, never
// reach a log.
//
// # Errors
//
// GORM's errors are translated (TranslateError): a unique violation wraps
// driver.ErrExists, a missing row driver.ErrNotFound. The Dialect of
// each opener sorts driver errors: deadlocks and serialization failures are
// retried by Atomic (Options.MaxRetries), a lock timeout wraps
// driver.ErrLockTimeout, an unreachable server driver.ErrUnavailable.
package gormstore
