package mysqlstore

import (
	"context"
	sqldriver "database/sql/driver"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
	"sync/atomic"

	"github.com/go-sql-driver/mysql"
)

// errNotReady is MySQL error 1047 as a Galera node answers it while it is
// not in the primary component or not synced: "WSREP has not yet prepared
// node for application use". The server did not run the statement.
const errNotReady = 1047

// tcpAddrs matches the address list of a DSN: tcp(a:1,b:2).
var tcpAddrs = regexp.MustCompile(`@tcp\(([^)]*)\)`)

// splitAddrs returns the DSN with its first address only, and every
// address it names.
func splitAddrs(dsn string) (string, []string) {
	m := tcpAddrs.FindStringSubmatchIndex(dsn)
	if m == nil {
		return dsn, nil
	}
	list := strings.Split(dsn[m[2]:m[3]], ",")
	for i := range list {
		list[i] = strings.TrimSpace(list[i])
	}
	return dsn[:m[2]] + list[0] + dsn[m[3]:], list
}

// failover is a connector over several nodes (a Galera cluster): each new
// connection goes to the first node, in the DSN's order, that answers and
// is ready (wsrep_ready ON, Synced, in the Primary component; any node
// without wsrep is ready). Connections are wrapped so that a node that
// stops being ready (error 1047) costs the request nothing but a retry on a
// new connection, which goes to a ready node.
type failover struct {
	nodes []sqldriver.Connector
	addrs []string
	last  atomic.Int64 // the node of the last connection made, for Node
}

func newFailover(cfg *mysql.Config, addrs []string) (*failover, error) {
	f := &failover{addrs: addrs}
	for _, a := range addrs {
		c := cfg.Clone()
		c.Addr = a
		conn, err := mysql.NewConnector(c)
		if err != nil {
			return nil, err
		}
		f.nodes = append(f.nodes, conn)
	}
	return f, nil
}

// Connect implements driver.Connector.
func (f *failover) Connect(ctx context.Context) (sqldriver.Conn, error) {
	var errs []error
	for i, n := range f.nodes {
		c, err := n.Connect(ctx)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", f.addrs[i], err))
			continue
		}
		galera, err := ready(ctx, c)
		if err == nil && galera {
			err = causal(ctx, c)
		}
		if err != nil {
			c.Close()
			errs = append(errs, fmt.Errorf("%s: %w", f.addrs[i], err))
			continue
		}
		f.last.Store(int64(i))
		return &conn{Conn: c}, nil
	}
	return nil, errors.Join(errs...)
}

// Driver implements driver.Connector.
func (f *failover) Driver() sqldriver.Driver { return mysql.MySQLDriver{} }

// causal makes a Galera connection's reads, updates and deletes wait
// until the node has applied every write committed in the cluster before
// them (wsrep_sync_wait = 3): without it a node may not yet see what
// another server committed an instant ago (a PSK issued there, a
// certificate renewed), and answer "not found".
func causal(ctx context.Context, c sqldriver.Conn) error {
	e, ok := c.(sqldriver.ExecerContext)
	if !ok {
		return nil
	}
	_, err := e.ExecContext(ctx, "SET SESSION wsrep_sync_wait = 3", nil)
	return err
}

// ready checks that a node may serve: without Galera, always; with it,
// ready, Synced and in the Primary component. It reports whether the node
// is a Galera node.
func ready(ctx context.Context, c sqldriver.Conn) (galera bool, err error) {
	q, ok := c.(sqldriver.QueryerContext)
	if !ok {
		return false, nil
	}
	on, err := show(ctx, q, "SHOW GLOBAL VARIABLES LIKE 'wsrep_on'")
	if err != nil || on["wsrep_on"] != "ON" {
		return false, err // not a Galera node (MariaDB builds have wsrep, off)
	}
	st, err := show(ctx, q, "SHOW GLOBAL STATUS WHERE Variable_name IN ('wsrep_ready', 'wsrep_local_state_comment', 'wsrep_cluster_status')")
	if err != nil {
		return true, err
	}
	if st["wsrep_ready"] != "ON" || st["wsrep_local_state_comment"] != "Synced" || st["wsrep_cluster_status"] != "Primary" {
		return true, fmt.Errorf("%w: Galera node not ready (ready %s, state %s, component %s)", sqldriver.ErrBadConn,
			st["wsrep_ready"], st["wsrep_local_state_comment"], st["wsrep_cluster_status"])
	}
	return true, nil
}

// show runs a SHOW of name-value rows.
func show(ctx context.Context, q sqldriver.QueryerContext, query string) (map[string]string, error) {
	rows, err := q.QueryContext(ctx, query, nil)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	st := map[string]string{}
	row := make([]sqldriver.Value, 2)
	for {
		if err := rows.Next(row); err != nil {
			if errors.Is(err, io.EOF) {
				return st, nil
			}
			return nil, err
		}
		st[text(row[0])] = text(row[1])
	}
}

func text(v sqldriver.Value) string {
	switch v := v.(type) {
	case []byte:
		return string(v)
	case string:
		return v
	}
	return fmt.Sprint(v)
}

// notReady reports whether err is a node's refusal to serve (1047).
func notReady(err error) bool {
	var me *mysql.MySQLError
	return errors.As(err, &me) && me.Number == errNotReady
}

// badIfNotReady turns a node's refusal (which ran nothing) into
// driver.ErrBadConn, so that database/sql drops the connection and retries
// on a new one, and marks the connection bad.
func (c *conn) badIfNotReady(err error) error {
	if err != nil && notReady(err) {
		c.bad.Store(true)
		return sqldriver.ErrBadConn
	}
	return err
}

// conn is a connection of the failover connector.
type conn struct {
	sqldriver.Conn
	bad atomic.Bool
}

var (
	_ sqldriver.ConnBeginTx        = (*conn)(nil)
	_ sqldriver.ConnPrepareContext = (*conn)(nil)
	_ sqldriver.ExecerContext      = (*conn)(nil)
	_ sqldriver.QueryerContext     = (*conn)(nil)
	_ sqldriver.Pinger             = (*conn)(nil)
	_ sqldriver.SessionResetter    = (*conn)(nil)
	_ sqldriver.Validator          = (*conn)(nil)
	_ sqldriver.NamedValueChecker  = (*conn)(nil)
)

func (c *conn) BeginTx(ctx context.Context, opts sqldriver.TxOptions) (sqldriver.Tx, error) {
	tx, err := c.Conn.(sqldriver.ConnBeginTx).BeginTx(ctx, opts)
	return tx, c.badIfNotReady(err)
}

func (c *conn) PrepareContext(ctx context.Context, query string) (sqldriver.Stmt, error) {
	s, err := c.Conn.(sqldriver.ConnPrepareContext).PrepareContext(ctx, query)
	if err != nil {
		return nil, c.badIfNotReady(err)
	}
	return &stmt{Stmt: s, c: c}, nil
}

func (c *conn) ExecContext(ctx context.Context, query string, args []sqldriver.NamedValue) (sqldriver.Result, error) {
	r, err := c.Conn.(sqldriver.ExecerContext).ExecContext(ctx, query, args)
	return r, c.badIfNotReady(err)
}

func (c *conn) QueryContext(ctx context.Context, query string, args []sqldriver.NamedValue) (sqldriver.Rows, error) {
	r, err := c.Conn.(sqldriver.QueryerContext).QueryContext(ctx, query, args)
	return r, c.badIfNotReady(err)
}

func (c *conn) Ping(ctx context.Context) error {
	return c.badIfNotReady(c.Conn.(sqldriver.Pinger).Ping(ctx))
}

func (c *conn) ResetSession(ctx context.Context) error {
	if c.bad.Load() {
		return sqldriver.ErrBadConn
	}
	return c.Conn.(sqldriver.SessionResetter).ResetSession(ctx)
}

func (c *conn) IsValid() bool {
	return !c.bad.Load() && c.Conn.(sqldriver.Validator).IsValid()
}

func (c *conn) CheckNamedValue(nv *sqldriver.NamedValue) error {
	return c.Conn.(sqldriver.NamedValueChecker).CheckNamedValue(nv)
}

// stmt is a prepared statement of a failover connection.
type stmt struct {
	sqldriver.Stmt
	c *conn
}

func (s *stmt) ExecContext(ctx context.Context, args []sqldriver.NamedValue) (sqldriver.Result, error) {
	r, err := s.Stmt.(sqldriver.StmtExecContext).ExecContext(ctx, args)
	return r, s.c.badIfNotReady(err)
}

func (s *stmt) QueryContext(ctx context.Context, args []sqldriver.NamedValue) (sqldriver.Rows, error) {
	r, err := s.Stmt.(sqldriver.StmtQueryContext).QueryContext(ctx, args)
	return r, s.c.badIfNotReady(err)
}

func (s *stmt) CheckNamedValue(nv *sqldriver.NamedValue) error {
	return s.c.CheckNamedValue(nv)
}
