package gormstore

import (
	"cmp"
	"context"
	"database/sql"
	sqldriver "database/sql/driver"
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"

	"github.com/credlife/clm/lifecycle/driver"
)

// Group commit. SQLite has one writer at a time, and the Store already
// queues its writers on a mutex (Dialect.SerializeWrites). Each of them
// paid its own BEGIN and COMMIT, and its COMMIT wrote every page it
// dirtied to the WAL, even when the next writer dirtied the same index
// pages a moment later. Now a writer that finds others queued behind it
// leaves its transaction open for them:
//
//   - each call after the first runs in a savepoint of its own in the
//     shared transaction; a call that fails rolls back to its savepoint, so
//     it changes nothing and the others' work stands (a first call that
//     fails rolls back the transaction, which holds nothing else);
//   - the transaction commits when no call is queued, when MaxSize calls
//     have run in it, or when MaxDelay has passed since its BEGIN; the
//     last call to run commits it;
//   - no call returns before the COMMIT has: a call that returns nil is as
//     durable as one that committed alone; if the COMMIT fails, every call
//     of the group gets its error;
//   - a call that finds nobody queued commits at once, as before.
//
// The calls of a group run one after another, each on its own goroutine
// (the mutex is handed over; the transaction stays open between them).

// group is a shared transaction.
type group struct {
	tx     *gorm.DB // sqlTx as GORM sees it, made on first use (most calls use prepared statements only)
	sqlTx  *sql.Tx
	size   int       // calls run in it so far
	begun  time.Time // its BEGIN
	broken error     // the transaction was lost (SQLite rolled it back); nothing more runs in it
	err    error     // its COMMIT's error, set before done is closed
	done   chan struct{}
}

// savepoint is the name of each call's savepoint. Calls run one at a time,
// so one name serves them all.
const savepoint = "clm_call"

// grouped is Atomic with group commit.
func (s *Store) grouped(ctx context.Context, fn func(tx driver.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return s.wrap(err)
	}
	s.waiting.Add(1)
	s.writes.Lock()
	s.waiting.Add(-1)
	g := s.group
	if g == nil {
		var err error
		if g, err = s.beginGroup(); err != nil {
			s.writes.Unlock()
			return s.wrap(err)
		}
	}
	g.size++
	panicked, err := s.inSavepoint(ctx, g, fn)
	if panicked == nil && g.broken == nil && s.waiting.Load() > 0 && g.size < s.gc.MaxSize && time.Since(g.begun) < s.gc.MaxDelay {
		// Whoever takes the mutex next runs in g and commits it or passes
		// it on (holdWrites commits it).
		s.writes.Unlock()
		<-g.done
	} else {
		s.endGroup(g)
		s.writes.Unlock()
	}
	if panicked != nil {
		panic(panicked)
	}
	if err != nil {
		return s.wrap(err)
	}
	if g.err != nil {
		return s.wrap(g.err)
	}
	return nil
}

// beginGroup begins a shared transaction on the writer connection. Its
// context is not a caller's: database/sql rolls a transaction back when the
// context of its BEGIN is done, and this one outlives the call that began
// it.
//
// Every shared transaction runs on one connection, kept for the purpose.
// SQLite drops a connection's page cache whenever another connection has
// written since its last transaction; with transactions spread over the
// pool, every transaction began with an empty cache and read each page of
// its lookups anew. The writer's cache now survives from one transaction
// to the next. A pool of one connection keeps none (it would be the pool's
// only one, for good): its transactions take the pool's connection.
func (s *Store) beginGroup() (*group, error) {
	var (
		sqlTx *sql.Tx
		err   error
	)
	if s.pinWriter {
		var c *sql.Conn
		if c, err = s.writerConn(); err != nil {
			return nil, err
		}
		if sqlTx, err = c.BeginTx(context.Background(), nil); err != nil {
			s.writerFailed(err)
			return nil, err
		}
	} else {
		sqlDB, err := s.db.DB()
		if err != nil {
			return nil, err
		}
		if sqlTx, err = sqlDB.BeginTx(context.Background(), nil); err != nil {
			return nil, err
		}
	}
	g := &group{sqlTx: sqlTx, begun: time.Now(), done: make(chan struct{})}
	s.group = g
	return g, nil
}

// writerConn returns the writer connection, taking one from the pool on
// first use. The caller holds s.writes.
func (s *Store) writerConn() (*sql.Conn, error) {
	if s.writer != nil {
		return s.writer, nil
	}
	bg := context.Background()
	sqlDB, err := s.db.DB()
	if err != nil {
		return nil, err
	}
	c, err := sqlDB.Conn(bg)
	if err != nil {
		return nil, err
	}
	if s.dialect.OnWriter != nil {
		if err := s.dialect.OnWriter(bg, c); err != nil {
			c.Close()
			return nil, err
		}
	}
	s.writer = c
	return c, nil
}

// writerFailed drops the writer connection after an error that says it is
// unusable; the next use takes another. The caller holds s.writes.
func (s *Store) writerFailed(err error) {
	if s.writer != nil && (errors.Is(err, sql.ErrConnDone) || errors.Is(err, sqldriver.ErrBadConn)) {
		s.closeWriter()
	}
}

// closeWriter closes the writer connection and its statements. The caller
// holds s.writes.
func (s *Store) closeWriter() {
	for _, st := range s.writerStmts {
		st.Close()
	}
	s.writerStmts = nil
	if s.writer != nil {
		s.writer.Close()
		s.writer = nil
	}
}

// readOnWriter runs a read outside any transaction on the writer
// connection, when that connection is free: no call holds it and no
// shared transaction is open (whose writes are not committed yet). It
// reports whether it ran; if not, the caller reads through the pool.
//
// A pool connection's page cache is dropped whenever the writer has
// committed since its last read, so under a write load every read through
// the pool starts from an empty cache; the writer's cache is never dropped
// by this process's writes. The lock is only tried: a read never waits for
// a writer.
func (s *Store) readOnWriter(query string, read func(*sql.Stmt) error) (bool, error) {
	if !s.pinWriter || !s.writes.TryLock() {
		return false, nil
	}
	defer s.writes.Unlock()
	if s.group != nil || s.closed {
		return false, nil
	}
	c, err := s.writerConn()
	if err != nil {
		return false, nil
	}
	st := s.writerStmts[query]
	if st == nil {
		if st, err = c.PrepareContext(context.Background(), s.dialect.placeholders(query)); err != nil {
			s.writerFailed(err)
			return false, nil
		}
		if s.writerStmts == nil {
			s.writerStmts = map[string]*sql.Stmt{}
		}
		s.writerStmts[query] = st
	}
	err = read(st)
	s.writerFailed(err)
	return true, err
}

// gormTx returns the GORM handle of g's transaction, making it on first
// use.
func (g *group) gormTx(s *Store) *gorm.DB {
	if g.tx == nil {
		g.tx = s.db.Session(&gorm.Session{NewDB: true, Context: context.Background()})
		g.tx.Statement.ConnPool = g.sqlTx
	}
	return g.tx
}

// inSavepoint runs fn in a savepoint of g: released when fn succeeds,
// rolled back when it fails or panics (and run again for a transient
// conflict, as Atomic does). A savepoint that cannot be rolled back means
// the database gave up the whole transaction: g is marked broken.
func (s *Store) inSavepoint(ctx context.Context, g *group, fn func(tx driver.Tx) error) (panicked any, err error) {
	bg := context.Background()
	if g.size == 1 {
		// The first call needs no savepoint: when it fails, the
		// transaction holds nothing else, and is rolled back whole.
		// (On SQLite, whose transactions begin IMMEDIATE, no error is a
		// conflict worth running again.)
		if err := ctx.Err(); err != nil {
			g.broken = err
			return nil, err
		}
		panicked, err = call(fn, &ops{db: g.tx, s: s, tx: g.sqlTx, g: g})
		if err != nil || panicked != nil {
			g.broken = cmp.Or(err, errPanicked)
		}
		return panicked, err
	}
	for attempt := 0; ; attempt++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if _, err := g.sqlTx.ExecContext(bg, "SAVEPOINT "+savepoint); err != nil {
			g.broken = err
			return nil, err
		}
		panicked, err = call(fn, &ops{db: g.tx, s: s, tx: g.sqlTx, g: g})
		if err == nil && panicked == nil {
			if _, err = g.sqlTx.ExecContext(bg, "RELEASE "+savepoint); err == nil {
				return nil, nil
			}
		}
		if _, rerr := g.sqlTx.ExecContext(bg, "ROLLBACK TO "+savepoint); rerr != nil {
			g.broken = fmt.Errorf("the shared transaction was rolled back: %w", errors.Join(err, rerr))
			return panicked, g.broken
		}
		if _, rerr := g.sqlTx.ExecContext(bg, "RELEASE "+savepoint); rerr != nil {
			g.broken = rerr
			return panicked, errors.Join(err, rerr)
		}
		if panicked != nil || attempt >= s.maxRetries || s.dialect.Classify(err) != ClassRetry {
			return panicked, err
		}
	}
}

// errPanicked is the error of a group whose only call panicked (the caller
// gets the panic).
var errPanicked = errors.New("gormstore: the transaction's function panicked")

// call runs fn, turning a panic into a value.
func call(fn func(tx driver.Tx) error, tx driver.Tx) (panicked any, err error) {
	defer func() {
		if p := recover(); p != nil {
			panicked = p
		}
	}()
	return nil, fn(tx)
}

// endGroup commits g (rolls it back when broken), answers its calls and
// closes it. The caller holds s.writes.
func (s *Store) endGroup(g *group) {
	if g.broken != nil {
		g.sqlTx.Rollback()
		g.err = g.broken
	} else {
		g.err = g.sqlTx.Commit()
	}
	s.group = nil
	s.groups.Add(1)
	s.groupCalls.Add(int64(g.size))
	if g.err == nil {
		s.committed()
	}
	if s.gc.Observe != nil {
		s.gc.Observe(g.size)
	}
	close(g.done)
}

// GroupCommitStats counts the shared transactions of group commit.
type GroupCommitStats struct {
	Groups int64 // transactions ended (committed, or rolled back after a failure)
	Calls  int64 // Atomic calls run in them
}

// GroupCommitStats returns the Store's counts since Open: Calls/Groups is
// the mean group size. Both are 0 on a database without group commit.
func (s *Store) GroupCommitStats() GroupCommitStats {
	return GroupCommitStats{Groups: s.groups.Load(), Calls: s.groupCalls.Load()}
}
