package httpadapter_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/credlife/clm/backends/gormstore"
	"github.com/credlife/clm/backends/sqlitestore"
	"github.com/credlife/clm/ca"
	"github.com/credlife/clm/httpadapter"
	"github.com/credlife/clm/lifecycle"
)

const license = "test-license-key-0123456789"

// server is the adapter over a real engine on SQLite with the local CA,
// listening on loopback.
type server struct {
	t     testing.TB
	url   string
	store *gormstore.Store
	m     *lifecycle.Engine
	ca    *ca.CA
	clock *clock
	logs  *syncBuffer
	h     http.Handler
	// check, when set, sees every exchange of call and callAuth: the
	// request (its body in reqBody) and the answer (its body in respBody).
	check func(req *http.Request, reqBody []byte, resp *http.Response, respBody []byte)
}

type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) set(t time.Time) { c.mu.Lock(); c.now = t; c.mu.Unlock() }

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func newServer(t testing.TB, o *lifecycle.Options) *server {
	t.Helper()
	ctx := context.Background()
	st, err := sqlitestore.Open(ctx, filepath.Join(t.TempDir(), "clm.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	keys, _ := lifecycle.NewStaticKeys(1, map[uint32][]byte{1: bytes.Repeat([]byte{9}, 32)})
	c := &clock{now: t0}
	ca1, err := ca.Open(ctx, st, keys, &ca.Options{Now: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	if o == nil {
		o = &lifecycle.Options{}
	}
	o.Keys, o.CAs, o.Now = keys, []lifecycle.CA{ca1}, c.Now
	m, err := lifecycle.New(st, o)
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	h := httpadapter.New(m, &httpadapter.Options{License: license, Logger: slog.New(slog.NewJSONHandler(logs, nil))})
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return &server{t: t, url: srv.URL, store: st, m: m, ca: ca1, clock: c, logs: logs, h: h}
}

// logger writes JSON lines into the server's log buffer.
func (s *server) logger() *slog.Logger { return slog.New(slog.NewJSONHandler(s.logs, nil)) }

// call sends a request with the license and returns status, headers and
// the body decoded as a JSON object (nil if it is not one).
func (s *server) call(method, path string, body any) (int, http.Header, map[string]any) {
	s.t.Helper()
	return s.callAuth(method, path, body, "secureware-clm", license)
}

func (s *server) callAuth(method, path string, body any, user, pass string) (int, http.Header, map[string]any) {
	s.t.Helper()
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		r = strings.NewReader(b)
	case []byte:
		r = bytes.NewReader(b)
	default:
		j, _ := json.Marshal(b)
		r = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, s.url+path, r)
	if err != nil {
		s.t.Fatal(err)
	}
	if user != "" {
		req.SetBasicAuth(user, pass)
	}
	var reqBody []byte
	if r != nil {
		reqBody, _ = io.ReadAll(r)
		req.Body = io.NopCloser(bytes.NewReader(reqBody))
		if s.check != nil { // the document names the type; the adapter reads JSON without it too
			req.Header.Set("Content-Type", "application/json")
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if s.check != nil {
		s.check(req, reqBody, resp, data)
	}
	var m map[string]any
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if dec.Decode(&m) != nil {
		m = nil
	}
	return resp.StatusCode, resp.Header, m
}

// hash is a digest of every row of the data tables: equal hashes mean the
// store did not change. (Sequences may advance on a failed request; a
// number is never handed out twice, gaps are allowed. A wrong PSK password
// is counted by the brute-force limits, clm_auth_failures and the PSK's
// failures_until: their bookkeeping, not data.)
func (s *server) hash() string { return s.hashT(s.t) }

func (s *server) hashT(t testing.TB) string {
	t.Helper()
	h := sha256.New()
	for _, table := range []string{"clm_psks", "clm_devices", "clm_credentials", "clm_bindings"} {
		var rows []map[string]any
		if err := s.store.DB().Table(table).Order("1").Find(&rows).Error; err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(h, "%s:%d\n", table, len(rows))
		for _, r := range rows {
			delete(r, "failures_until")
			j, _ := json.Marshal(r)
			h.Write(j)
		}
	}
	return hex.EncodeToString(h.Sum(nil))
}

// psk issues a PSK over HTTP.
func (s *server) psk(tenant string) (keyid, key string) {
	s.t.Helper()
	st, _, r := s.call("POST", "/SWCLM/v10/IDInfo", map[string]any{"mode": "create", "tenantid": tenant, "alias": "a"})
	if st != 201 {
		s.t.Fatalf("IDInfo create: %d %v", st, r)
	}
	return r["keyid"].(string), r["key"].(string)
}
