package gormstore

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
	"gorm.io/gorm/logger"

	"github.com/credlife/clm/lifecycle"
	"github.com/credlife/clm/lifecycle/driver"
)

// Class tells the Store how to treat a database error.
type Class int

const (
	ClassOther       Class = iota // a plain failure (CLM code 1602)
	ClassRetry                    // a transient conflict: deadlock, serialization failure; Atomic runs again
	ClassLockTimeout              // a lock not granted in time (1403)
	ClassUnavailable              // the database cannot be reached (1601)
)

// Dialect is what an opener tells the Store about its database.
type Dialect struct {
	// Name is "sqlite", "mysql" or "postgres".
	Name string
	// Classify sorts a driver error (anywhere in the chain) into a Class.
	Classify func(error) Class
	// TableOptions are appended to CREATE TABLE (MySQL: engine, charset,
	// collation).
	TableOptions string
	// AfterMigrate, when set, runs after the tables are created or
	// upgraded, on every Open: for conversions that GORM's migrator does not
	// make (MySQL: a table created with a padding collation is converted to
	// one that compares byte for byte). It must be idempotent.
	AfterMigrate func(ctx context.Context, db *gorm.DB) error
	// SerializeWrites makes Atomic take a lock of the process before it
	// begins: for a database with one writer at a time (SQLite), waiting in
	// Go is cheaper and fairer than the database's busy loop. Other
	// processes are still held off by the database itself.
	SerializeWrites bool
	// Checkpoint, when set, is run by the Store in the background, off the
	// path of requests: every 64 transactions and every second. holdWrites
	// holds off the Store's own writers until release is called (with
	// SerializeWrites; otherwise it does nothing), for a checkpoint that
	// must catch up with them. SQLite's opener turns
	// off the automatic WAL checkpoint, which a committing request would
	// otherwise pay for, and checkpoints here. An error is left to the next
	// run.
	Checkpoint func(ctx context.Context, db *gorm.DB, holdWrites func() (release func())) error
	// DetachContext runs the prepared statements and the transactions
	// without the cancellation of the caller's context, which is checked
	// before each statement instead. For SQLite: mattn/go-sqlite3 runs every
	// statement under a cancellable context on a goroutine of its own,
	// which costs more than the point lookups of a request take.
	DetachContext bool
	// OnWriter, when set, prepares the connection that group commit keeps
	// for its transactions (SQLite: a larger page cache).
	OnWriter func(ctx context.Context, c *sql.Conn) error
}

// Options configure a Store. The zero value means defaults.
type Options struct {
	// Logger receives GORM's errors and slow queries as SQL with
	// placeholders: the values, which can be secrets, are never logged.
	// Nothing is logged when nil.
	Logger *slog.Logger
	// SlowQuery is the threshold above which a query is logged as slow;
	// 200ms when 0.
	SlowQuery time.Duration
	// MaxRetries bounds how often Atomic runs a transaction again after a
	// deadlock or serialization failure; 8 when 0.
	MaxRetries int
	// MaxConns is the size of the connection pool; the opener's default
	// when 0 (16 for SQLite, 32 for MariaDB/MySQL and PostgreSQL).
	MaxConns int
	// GroupCommit tunes how concurrent transactions share one commit on a
	// database with one writer at a time (SQLite); other databases ignore
	// it.
	GroupCommit GroupCommit
}

// GroupCommit tunes group commit (see Store.Atomic). The zero value means
// defaults.
//
// The shared transactions run on one connection of the pool, kept for them
// (and for reads outside transactions while it is free), so that its page
// cache survives; in a pool of one connection none is kept.
type GroupCommit struct {
	// MaxSize bounds how many Atomic calls share one transaction: 32 when
	// 0. 1 turns group commit off: each call commits on its own.
	MaxSize int
	// MaxDelay bounds how long a shared transaction takes new calls, from
	// its BEGIN: 2ms when 0. No call waits for others to arrive; this
	// bounds what the first call of a group can wait for the calls that
	// joined it.
	MaxDelay time.Duration
	// Observe, when set, is told the size of each group as it commits
	// (1 for a call that committed alone), on the committing goroutine:
	// it must not block.
	Observe func(size int)
}

const (
	defaultGroupSize  = 32
	defaultGroupDelay = 2 * time.Millisecond
)

const defaultSlowQuery = 200 * time.Millisecond

// GormConfig returns the gorm.Config every opener uses: errors translated,
// no implicit transactions around single statements, and a logger that never
// sees SQL values.
func GormConfig(o *Options) *gorm.Config {
	var opts Options
	if o != nil {
		opts = *o
	}
	lg := logger.Discard
	if opts.Logger != nil {
		lg = logger.NewSlogLogger(opts.Logger, logger.Config{
			SlowThreshold:             cmp.Or(opts.SlowQuery, defaultSlowQuery),
			LogLevel:                  logger.Warn,
			IgnoreRecordNotFoundError: true,
			ParameterizedQueries:      true,
		})
	}
	return &gorm.Config{
		TranslateError:         true,
		SkipDefaultTransaction: true,
		Logger:                 lg,
		NowFunc:                func() time.Time { return time.Now().UTC() },
	}
}

// quietLogger keeps the expected outcomes of races out of the error log:
// a unique key another transaction took first (ErrExists, which the
// engine answers), and a deadlock or certification conflict that Atomic
// retries. They are logged at Debug; other errors as before.
type quietLogger struct {
	logger.Interface
	classify func(error) Class
	debug    *slog.Logger
}

func (q quietLogger) LogMode(l logger.LogLevel) logger.Interface {
	q.Interface = q.Interface.LogMode(l)
	return q
}

// ParamsFilter keeps the inner logger's filter (ParameterizedQueries:
// values never reach the log).
func (q quietLogger) ParamsFilter(ctx context.Context, sql string, params ...any) (string, []any) {
	if f, ok := q.Interface.(gorm.ParamsFilter); ok {
		return f.ParamsFilter(ctx, sql, params...)
	}
	return sql, params
}

func (q quietLogger) Trace(ctx context.Context, begin time.Time, fc func() (string, int64), err error) {
	if err != nil && (errors.Is(err, gorm.ErrDuplicatedKey) || q.classify(err) == ClassRetry) {
		if q.debug != nil && q.debug.Enabled(ctx, slog.LevelDebug) {
			sql, _ := fc()
			q.debug.DebugContext(ctx, "an expected outcome of a race", slog.String("sql", sql), slog.String("error", err.Error()))
		}
		err = nil // still reported if slow
	}
	q.Interface.Trace(ctx, begin, fc, err)
}

// Store is a driver.Store on a GORM database. Make one with an opener:
// sqlitestore.Open, mysqlstore.Open or postgresstore.Open.
type Store struct {
	ops
	dialect     Dialect
	maxRetries  int
	writes      sync.Mutex           // held by Atomic when the dialect serialises writes
	group       *group               // the open shared transaction; guarded by writes
	writer      *sql.Conn            // the connection of the shared transactions; guarded by writes
	writerStmts map[string]*sql.Stmt // statements prepared on writer, for readOnWriter; guarded by writes
	closed      bool                 // set by Close; guarded by writes
	pinWriter   bool                 // group commit is on and keeps a connection (not in a pool of one)
	waiting     atomic.Int32         // Atomic calls waiting for writes
	gc          GroupCommit          // Options.GroupCommit with its defaults
	groups      atomic.Int64         // shared transactions committed or rolled back
	groupCalls  atomic.Int64         // Atomic calls run in them
	prep        prepared
	logger      *slog.Logger  // Options.Logger: slow prepared statements go there too
	slow        time.Duration // Options.SlowQuery
	commits     atomic.Int64  // transactions committed, for the checkpointer
	kick        chan struct{} // asks the checkpointer to run (nil: none runs)
	stop        chan struct{} // closed by Close
	stopOnce    sync.Once
	done        sync.WaitGroup
}

var _ driver.Store = (*Store)(nil)

// Open opens a GORM database with dialector (configured by GormConfig),
// sizes its connection pool to Options.MaxConns (defaultConns when 0), and
// returns a Store on it, with the schema created or upgraded. The opener
// packages call it.
func Open(ctx context.Context, dialector gorm.Dialector, d Dialect, defaultConns int, o *Options) (*Store, error) {
	cfg := GormConfig(o)
	if d.Classify != nil && cfg.Logger != logger.Discard {
		var debug *slog.Logger
		if o != nil {
			debug = o.Logger
		}
		cfg.Logger = quietLogger{Interface: cfg.Logger, classify: d.Classify, debug: debug}
	}
	db, err := gorm.Open(dialector, cfg)
	if err != nil {
		return nil, fmt.Errorf("%sstore: %w", d.Name, err)
	}
	sqlDB, err := db.DB()
	if err != nil {
		return nil, fmt.Errorf("%sstore: %w", d.Name, err)
	}
	maxConns := defaultConns
	if o != nil && o.MaxConns > 0 {
		maxConns = o.MaxConns
	}
	sqlDB.SetMaxOpenConns(maxConns)
	sqlDB.SetMaxIdleConns(maxConns)
	sqlDB.SetConnMaxLifetime(time.Hour)
	s, err := New(ctx, db, d, o)
	if err != nil {
		sqlDB.Close()
		return nil, err
	}
	return s, nil
}

// New returns a Store on db, creating or upgrading the schema. db should
// come from GormConfig; an opener does all of this.
func New(ctx context.Context, db *gorm.DB, d Dialect, o *Options) (*Store, error) {
	var opts Options
	if o != nil {
		opts = *o
	}
	if opts.MaxRetries == 0 {
		opts.MaxRetries = 8
	}
	if d.Classify == nil {
		d.Classify = func(error) Class { return ClassOther }
	}
	s := &Store{dialect: d, maxRetries: opts.MaxRetries, logger: opts.Logger, slow: cmp.Or(opts.SlowQuery, defaultSlowQuery), gc: opts.GroupCommit}
	s.gc.MaxSize = cmp.Or(s.gc.MaxSize, defaultGroupSize)
	s.gc.MaxDelay = cmp.Or(s.gc.MaxDelay, defaultGroupDelay)
	if sqlDB, err := db.DB(); err == nil && d.SerializeWrites && s.gc.MaxSize > 1 {
		n := sqlDB.Stats().MaxOpenConnections // 0: no limit
		s.pinWriter = n == 0 || n >= 2
	}
	s.ops = ops{db: db, s: s}
	if err := s.Ping(ctx); err != nil {
		return nil, fmt.Errorf("gormstore: %w", err)
	}
	var err error
	for attempt := 0; attempt < 4; attempt++ {
		// Two processes migrating at once may race on CREATE TABLE; the
		// loser sees the tables on its next attempt.
		if err = s.migrate(ctx); err == nil || errors.Is(err, errNewerSchema) || ctx.Err() != nil {
			break
		}
		time.Sleep(time.Duration(50*(attempt+1)) * time.Millisecond)
	}
	if err != nil {
		return nil, fmt.Errorf("gormstore: schema: %w", s.wrap(err))
	}
	if d.Checkpoint != nil {
		s.kick, s.stop = make(chan struct{}, 1), make(chan struct{})
		s.done.Add(1)
		go s.checkpointer()
	}
	return s, nil
}

// checkpointer runs the dialect's checkpoint when Atomic asks and every
// second, until Close. A failed checkpoint is left to the next one.
func (s *Store) checkpointer() {
	defer s.done.Done()
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-s.kick:
		case <-t.C:
		}
		s.dialect.Checkpoint(context.Background(), s.db, s.holdWrites)
	}
}

// holdWrites holds off Atomic's writers until release is called, when the
// dialect serialises writes. A shared transaction left open for calls to
// join is committed first.
func (s *Store) holdWrites() (release func()) {
	if !s.dialect.SerializeWrites {
		return func() {}
	}
	s.writes.Lock()
	if s.group != nil {
		s.endGroup(s.group)
	}
	return s.writes.Unlock
}

// checkpointEvery is how many committed transactions wake the checkpointer.
const checkpointEvery = 64

// committed counts a committed transaction and wakes the checkpointer
// every checkpointEvery of them.
func (s *Store) committed() {
	if s.kick == nil {
		return
	}
	if s.commits.Add(1)%checkpointEvery == 0 {
		select {
		case s.kick <- struct{}{}:
		default: // one is already asked for
		}
	}
}

var errNewerSchema = errors.New("the database has a newer schema than this program")

func (s *Store) migrate(ctx context.Context) error {
	db := s.db.WithContext(ctx)
	if s.dialect.TableOptions != "" {
		db = db.Set("gorm:table_options", s.dialect.TableOptions).Session(&gorm.Session{})
	}
	if db.Migrator().HasTable(&schemaRow{}) {
		var cur schemaRow
		err := db.Where("id = 1").Take(&cur).Error
		if err != nil && !errors.Is(err, gorm.ErrRecordNotFound) {
			return err
		}
		if cur.Version > SchemaVersion {
			return fmt.Errorf("%w (%d > %d)", errNewerSchema, cur.Version, SchemaVersion)
		}
	}
	if err := db.AutoMigrate(models...); err != nil {
		return err
	}
	for _, d := range droppedIndexes {
		if m := db.Migrator(); m.HasIndex(d.model, d.name) {
			if err := m.DropIndex(d.model, d.name); err != nil {
				return err
			}
		}
	}
	if s.dialect.AfterMigrate != nil {
		if err := s.dialect.AfterMigrate(ctx, s.db.WithContext(ctx)); err != nil {
			return err
		}
	}
	for _, seq := range []driver.Sequence{driver.SeqKeyID, driver.SeqKeyNumber, driver.SeqCRLNumber} {
		if err := db.Clauses(clause.OnConflict{DoNothing: true}).Create(&sequenceRow{Name: string(seq)}).Error; err != nil {
			return err
		}
	}
	return db.Clauses(clause.OnConflict{
		Columns:   []clause.Column{{Name: "id"}},
		DoUpdates: clause.AssignmentColumns([]string{"version", "updated_at"}),
	}).Create(&schemaRow{ID: 1, Version: SchemaVersion, UpdatedAt: micros(time.Now())}).Error
}

// DB returns the underlying GORM handle, for operators' own queries.
func (s *Store) DB() *gorm.DB { return s.db }

// Dialect returns the name of the database: "sqlite", "mysql" or "postgres".
func (s *Store) Dialect() string { return s.dialect.Name }

// Atomic implements driver.Store.
//
// On a database with one writer at a time (Dialect.SerializeWrites:
// SQLite), concurrent calls share transactions (group commit, tuned by
// Options.GroupCommit): a call that finds others queued behind it leaves
// its transaction open for them, and each of them runs in a savepoint of
// its own. A call that fails rolls back only its own work and gets its
// own error; every call returns only after the shared COMMIT has, with
// its error if it failed; a call with nobody queued commits alone, at
// once. fn runs on the caller's goroutine, one call at a time, and must
// not call the Store's own methods that write (it has tx for that).
func (s *Store) Atomic(ctx context.Context, fn func(tx driver.Tx) error) error {
	if s.dialect.SerializeWrites && s.gc.MaxSize > 1 {
		return s.grouped(ctx, fn)
	}
	if s.dialect.SerializeWrites {
		s.writes.Lock()
		defer s.writes.Unlock()
	}
	txCtx := s.detach(ctx)
	for attempt := 0; ; attempt++ {
		if err := ctx.Err(); err != nil {
			return s.wrap(err)
		}
		err := s.db.WithContext(txCtx).Transaction(func(tx *gorm.DB) error {
			sqlTx, err := sqlTxOf(tx)
			if err != nil {
				return err
			}
			return fn(&ops{db: tx, s: s, tx: sqlTx})
		})
		if err == nil {
			s.committed()
			return nil
		}
		if attempt < s.maxRetries && ctx.Err() == nil && s.dialect.Classify(err) == ClassRetry {
			backoff := time.Duration(1<<min(attempt, 6)) * time.Millisecond
			select {
			case <-time.After(backoff):
			case <-ctx.Done():
				return s.wrap(ctx.Err())
			}
			continue
		}
		return s.wrap(err)
	}
}

// sqlTxOf returns the database/sql transaction of a GORM transaction.
func sqlTxOf(tx *gorm.DB) (*sql.Tx, error) {
	switch p := tx.Statement.ConnPool.(type) {
	case *sql.Tx:
		return p, nil
	case *gorm.PreparedStmtTX:
		if t, ok := p.Tx.(*sql.Tx); ok {
			return t, nil
		}
	}
	return nil, fmt.Errorf("gormstore: a transaction on %T, not database/sql", tx.Statement.ConnPool)
}

// Ping implements driver.Store.
func (s *Store) Ping(ctx context.Context) error {
	sqlDB, err := s.db.DB()
	if err != nil {
		return s.wrap(err)
	}
	if err := sqlDB.PingContext(ctx); err != nil {
		if ctx.Err() != nil {
			return s.wrap(err)
		}
		return fmt.Errorf("%w: %w", driver.ErrUnavailable, err)
	}
	return nil
}

// Close implements driver.Store. It stops the checkpointer and waits
// for the statements being prepared in the background, so that, called
// after the Store's last operation has returned, Close leaves no connection
// open (a SQLite database's files can then be moved or removed).
func (s *Store) Close() error {
	if s.stop != nil {
		s.stopOnce.Do(func() { close(s.stop) })
		s.done.Wait()
	}
	s.writes.Lock()
	if s.group != nil { // only if Close races an Atomic call
		s.endGroup(s.group)
	}
	s.closeWriter()
	s.closed = true
	s.writes.Unlock()
	s.closePrepared()
	sqlDB, err := s.db.DB()
	if err != nil {
		return err
	}
	return sqlDB.Close()
}

// RaiseSequence makes the next number of seq at least atLeast+1, for an
// operator who imports records numbered elsewhere. It never lowers a
// sequence.
func (s *Store) RaiseSequence(ctx context.Context, seq driver.Sequence, atLeast int64) error {
	return s.wrap(s.db.WithContext(ctx).Exec(
		"UPDATE clm_sequences SET value = ? WHERE name = ? AND value < ?", atLeast, string(seq), atLeast).Error)
}

// wrap turns a GORM or driver error into one that wraps the lifecycle
// sentinels, keeping the cause in the chain.
func (s *Store) wrap(err error) error {
	if err == nil {
		return nil
	}
	var le *lifecycle.Error
	switch {
	case errors.As(err, &le),
		errors.Is(err, driver.ErrNotFound), errors.Is(err, driver.ErrExists),
		errors.Is(err, driver.ErrConflict), errors.Is(err, driver.ErrUnavailable),
		errors.Is(err, driver.ErrLockTimeout):
		return err
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("gormstore: %w", err)
	case errors.Is(err, gorm.ErrRecordNotFound):
		return fmt.Errorf("gormstore: %w", driver.ErrNotFound)
	case errors.Is(err, gorm.ErrDuplicatedKey):
		return fmt.Errorf("gormstore: %w", driver.ErrExists)
	}
	switch s.dialect.Classify(err) {
	case ClassUnavailable:
		return fmt.Errorf("gormstore: %w: %w", driver.ErrUnavailable, err)
	case ClassLockTimeout:
		return fmt.Errorf("gormstore: %w: %w", driver.ErrLockTimeout, err)
	}
	return fmt.Errorf("gormstore: %w", err)
}
