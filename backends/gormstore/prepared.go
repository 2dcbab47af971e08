package gormstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"gorm.io/gorm"

	"github.com/credlife/clm/lifecycle/driver"
)

// The statements every request runs (the PSK, device, credential and
// binding lookups, the credential and binding inserts) are prepared once
// and run through database/sql: GORM builds a statement anew on each call,
// which costs more than SQLite takes to run it (issue #7's profile). The
// rest of the Store goes through GORM. Column lists live beside the row
// types (schema.go), so a column is named in one place for both paths.

// prepared holds a Store's prepared statements, by query text.
type prepared struct {
	mu        sync.RWMutex
	m         map[string]*sql.Stmt
	preparing map[string]bool // by prepareLater
	later     sync.WaitGroup  // prepareLater's goroutines, waited for by Close
	closed    bool
}

// cachedStmt returns the prepared statement for query, or nil if it has
// not been prepared yet.
func (s *Store) cachedStmt(query string) *sql.Stmt {
	s.prep.mu.RLock()
	defer s.prep.mu.RUnlock()
	return s.prep.m[query]
}

// stmt returns the prepared statement for query, preparing it on first use.
// query is written with ? placeholders; PostgreSQL's are numbered here.
//
// Preparing takes a connection from the pool, and no lock is held while it
// waits for one. A transaction must not wait for one at all: see prepared.
func (s *Store) stmt(ctx context.Context, query string) (*sql.Stmt, error) {
	if st := s.cachedStmt(query); st != nil {
		return st, nil
	}
	sqlDB, err := s.db.DB()
	if err != nil {
		return nil, err
	}
	// Not ctx: the statement outlives the request that prepares it.
	st, err := sqlDB.PrepareContext(context.WithoutCancel(ctx), s.dialect.placeholders(query))
	if err != nil {
		return nil, err
	}
	s.prep.mu.Lock()
	defer s.prep.mu.Unlock()
	switch prev := s.prep.m[query]; {
	case s.prep.closed:
		st.Close()
		return nil, sql.ErrConnDone
	case prev != nil: // prepared meanwhile by another caller
		st.Close()
		return prev, nil
	}
	if s.prep.m == nil {
		s.prep.m = map[string]*sql.Stmt{}
	}
	s.prep.m[query] = st
	return st, nil
}

// closePrepared waits for the background preparations, then closes every
// prepared statement. Close must not return while one of them still holds
// a connection: with SQLite, that connection's files would outlive Close.
func (s *Store) closePrepared() {
	s.prep.mu.Lock()
	s.prep.closed = true // no prepareLater starts after this
	s.prep.mu.Unlock()
	s.prep.later.Wait()
	s.prep.mu.Lock()
	defer s.prep.mu.Unlock()
	for _, st := range s.prep.m {
		st.Close()
	}
	s.prep.m = nil
}

// placeholders numbers the ? of query as $1, $2, ... for PostgreSQL. The
// queries given to it have no ? in literals.
func (d Dialect) placeholders(query string) string {
	if d.Name != "postgres" {
		return query
	}
	var b strings.Builder
	n := 0
	for _, r := range query {
		if r == '?' {
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// onConflictDoNothing is the dialect's ending of an INSERT that skips a row
// whose unique key exists. (A failed INSERT would abort a PostgreSQL
// transaction.)
func (d Dialect) onConflictDoNothing() string {
	if d.Name == "mysql" {
		return " ON DUPLICATE KEY UPDATE id = id"
	}
	return " ON CONFLICT DO NOTHING"
}

// prepared returns the prepared statement for query, on the transaction of
// o or else on the database, after checking that ctx is not done.
//
// A transaction holds a connection; preparing on the pool takes another.
// Were every connection held by a transaction at its first use of a
// statement (a burst of requests after a start, more than the pool has
// connections), each would wait for another forever. So a transaction
// prepares a statement not yet in the Store's cache on its own connection,
// for itself, and the Store's is prepared beside it for the next ones.
func (o *ops) prepared(ctx context.Context, query string) (*sql.Stmt, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if o.tx == nil {
		return o.s.stmt(ctx, query)
	}
	if st := o.s.cachedStmt(query); st != nil {
		// Prepared once per connection: database/sql keeps the statement
		// of each connection it has run on.
		return o.tx.StmtContext(ctx, st), nil
	}
	o.s.prepareLater(query)
	return o.tx.PrepareContext(o.s.detach(ctx), o.s.dialect.placeholders(query))
}

// prepareLater prepares query for the Store's cache in the background,
// once however many transactions ask meanwhile.
func (s *Store) prepareLater(query string) {
	s.prep.mu.Lock()
	defer s.prep.mu.Unlock()
	if s.prep.preparing[query] || s.prep.closed {
		return
	}
	if s.prep.preparing == nil {
		s.prep.preparing = map[string]bool{}
	}
	s.prep.preparing[query] = true
	s.prep.later.Add(1)
	go func() {
		defer s.prep.later.Done()
		s.stmt(context.Background(), query) // an error is left to the next use
		s.prep.mu.Lock()
		delete(s.prep.preparing, query)
		s.prep.mu.Unlock()
	}()
}

// queryRow runs a prepared query expected to return one row and scans it
// into dest; no row is driver.ErrNotFound.
func (o *ops) queryRow(ctx context.Context, query string, args []any, dest ...any) error {
	defer o.s.logSlow(query, time.Now())
	if o.tx == nil {
		if err := ctx.Err(); err != nil {
			return o.rawErr(err)
		}
		if ok, err := o.s.readOnWriter(query, func(st *sql.Stmt) error {
			return st.QueryRowContext(context.WithoutCancel(ctx), args...).Scan(dest...)
		}); ok {
			return o.rawErr(err)
		}
	}
	st, err := o.prepared(ctx, query)
	if err != nil {
		return o.rawErr(err)
	}
	return o.rawErr(st.QueryRowContext(o.s.detach(ctx), args...).Scan(dest...))
}

// query runs a prepared query and calls scan on each row.
func (o *ops) query(ctx context.Context, query string, args []any, scan func(*sql.Rows) error) error {
	defer o.s.logSlow(query, time.Now())
	run := func(st *sql.Stmt, ctx context.Context) error {
		rows, err := st.QueryContext(ctx, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			if err := scan(rows); err != nil {
				return err
			}
		}
		return rows.Err()
	}
	if o.tx == nil {
		if err := ctx.Err(); err != nil {
			return o.rawErr(err)
		}
		if ok, err := o.s.readOnWriter(query, func(st *sql.Stmt) error { return run(st, context.WithoutCancel(ctx)) }); ok {
			return o.rawErr(err)
		}
	}
	st, err := o.prepared(ctx, query)
	if err != nil {
		return o.rawErr(err)
	}
	return o.rawErr(run(st, o.s.detach(ctx)))
}

// exec runs a prepared statement.
func (o *ops) exec(ctx context.Context, query string, args ...any) error {
	defer o.s.logSlow(query, time.Now())
	st, err := o.prepared(ctx, query)
	if err != nil {
		return o.rawErr(err)
	}
	_, err = st.ExecContext(o.s.detach(ctx), args...)
	return o.rawErr(err)
}

// detach returns ctx without its cancellation when the dialect asks for it
// (Dialect.DetachContext); prepared checks ctx before each statement.
func (s *Store) detach(ctx context.Context) context.Context {
	if s.dialect.DetachContext {
		return context.WithoutCancel(ctx)
	}
	return ctx
}

// logSlow logs a prepared statement that took longer than Options.SlowQuery,
// as GORM does its own: the SQL with its placeholders, never the values.
func (s *Store) logSlow(query string, start time.Time) {
	if d := time.Since(start); s.logger != nil && d > s.slow {
		s.logger.Warn("gormstore: slow query", "sql", query, "elapsed", d)
	}
}

// rawErr does for an error of database/sql what GORM does for its own
// (no row, duplicate key), then wraps it like every error of the Store.
func (o *ops) rawErr(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("gormstore: %w", driver.ErrNotFound)
	}
	if t, ok := o.s.db.Dialector.(gorm.ErrorTranslator); ok {
		if te := t.Translate(err); te != err {
			err = fmt.Errorf("%w: %w", te, err)
		}
	}
	return o.s.wrap(err)
}

// insertQuery is an INSERT of rows rows of columns into table.
func insertQuery(table, columns string, rows int) string {
	one := "(" + strings.TrimSuffix(strings.Repeat("?, ", strings.Count(columns, ",")+1), ", ") + ")"
	return "INSERT INTO " + table + " (" + columns + ") VALUES " + strings.TrimSuffix(strings.Repeat(one+", ", rows), ", ")
}
