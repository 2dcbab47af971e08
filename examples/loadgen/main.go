// Command loadgen drives a CLM server over HTTP (keep-alive, N concurrent
// clients, bounded by a request count and by time, loopback only) with a
// mix of operations, and prints the throughput and the p50/p99 latency of
// each, and, when the server's /metrics has them, the sizes of the groups
// its SQLite store committed (group commit). Beside the server it can drive
// three bare baselines served by the same net/http stack in this process: a
// minimal handler that only generates a key, signs a certificate and
// inserts one row, one that only inserts a random key as one row, and a
// JSON echo handler; the performance targets are ratios against them,
// measured in alternated pairs.
//
//	go run ./examples/loadgen -spawn ./clmserver -mix cert-issue=1,psk-auth=4 -duration 10s
//	go run ./examples/loadgen -url http://127.0.0.1:8080 -license "$(cat clm.license)" -mix key-create=1
//	go run ./examples/loadgen -spawn ./clmserver -targets        # P2, P3 and P8, 5 pairs each
//	go run ./examples/loadgen -serve-baselines                  # the baselines alone, for another tool (independent.sh)
//	go run ./examples/loadgen -spawn ./clmserver -mix psk-auth=1 -clients 1 \
//	    -flood cert-issue-pass=1 -flood-clients 16              # cheap requests under a flood of expensive ones
package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/credlife/clm/backends/gormstore"
	"github.com/credlife/clm/backends/sqlitestore"
	"github.com/credlife/clm/httpadapter/client"
	"github.com/credlife/clm/internal/testdb"
	"github.com/credlife/clm/lifecycle"
)

type config struct {
	url, license, spawn, mix, store string
	clients, requests               int
	duration                        time.Duration
	targets                         bool
	pairs                           int
	flood                           string
	floodClients                    int
	serveBaselines                  bool
	serverArgs                      string
}

func main() {
	var c config
	flag.StringVar(&c.url, "url", "", "server URL (loopback only); with -spawn, the spawned server's")
	flag.StringVar(&c.license, "license", os.Getenv("CLM_LICENSE"), "license key")
	flag.StringVar(&c.spawn, "spawn", "", "a clmserver binary to start on a temporary store (and stop)")
	flag.StringVar(&c.store, "store", "", "with -spawn: the -store of the server (default: a temporary SQLite file; mysql:DSN or postgres:DSN: a fresh database on that server, dropped at the end)")
	flag.StringVar(&c.mix, "mix", "psk-auth=4,cert-issue=1,cert-get=2,key-create=1,key-get=2", "operations and weights")
	flag.IntVar(&c.clients, "clients", 8, "concurrent clients")
	flag.IntVar(&c.requests, "requests", 0, "stop after this many requests (0: no count bound)")
	flag.DurationVar(&c.duration, "duration", 5*time.Second, "stop after this long")
	flag.BoolVar(&c.targets, "targets", false, "measure targets P2, P3 and P8 against the in-process baselines")
	flag.IntVar(&c.pairs, "pairs", 5, "pairs per target (at least 5)")
	flag.StringVar(&c.flood, "flood", "", "a second mix, run at the same time from -flood-clients other clients (its figures printed apart)")
	flag.IntVar(&c.floodClients, "flood-clients", 16, "clients of the -flood mix")
	flag.StringVar(&c.serverArgs, "server-args", "", "with -spawn: more flags for the server, separated by spaces (e.g. \"-group-commit 1\")")
	flag.BoolVar(&c.serveBaselines, "serve-baselines", false, "only serve the baseline handlers (POST /baseline-issue, /baseline-insert, /echo) until interrupted, printing their URL: for another load generator")
	flag.Parse()
	if c.serveBaselines {
		url, stop, err := baselines()
		if err != nil {
			fmt.Fprintln(os.Stderr, "loadgen:", err)
			os.Exit(1)
		}
		fmt.Println("loadgen: serving the baselines at " + url)
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
		<-sig
		stop()
		return
	}
	if err := run(context.Background(), c, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, c config, out io.Writer) error {
	serverPID := 0
	if c.spawn != "" {
		stop, url, lic, pid, err := spawn(c.spawn, c.store, strings.Fields(c.serverArgs)...)
		if err != nil {
			return err
		}
		defer stop()
		c.url, c.license, serverPID = url, lic, pid
	}
	if err := loopbackOnly(c.url); err != nil {
		return err
	}
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256, MaxConnsPerHost: 256}, Timeout: 60 * time.Second}
	if c.targets {
		return targets(ctx, c, hc, out)
	}
	mix, err := parseMix(c.mix)
	if err != nil {
		return err
	}
	cl := client.New(c.url, c.license, &client.Options{HTTPClient: hc})
	var (
		flood    *results
		floodErr error
		wg       sync.WaitGroup
	)
	if c.flood != "" {
		fmix, err := parseMix(c.flood)
		if err != nil {
			return err
		}
		// Its own connections: the measured clients do not queue behind it
		// in the client's pool, only in the server.
		fhc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256, MaxConnsPerHost: 256}, Timeout: 60 * time.Second}
		fcl := client.New(c.url, c.license, &client.Options{HTTPClient: fhc})
		wg.Add(1)
		go func() {
			defer wg.Done()
			flood, floodErr = drive(ctx, fcl, c.license, fhc, c.url, fmix, c.floodClients, 0, c.duration)
		}()
		time.Sleep(500 * time.Millisecond) // the flood under way first
	}
	before := cpuSnapshot(serverPID)
	res, err := drive(ctx, cl, c.license, hc, c.url, mix, c.clients, c.requests, c.duration)
	wg.Wait()
	if err != nil {
		return err
	}
	res.print(out, fmt.Sprintf("%s, %d clients, %v", c.url, c.clients, c.duration))
	if serverPID != 0 && c.flood == "" {
		if w := cpuSnapshot(serverPID).since(before, res.total()); w != "" {
			fmt.Fprintln(out, w)
		}
	}
	if g, err := groupSizes(hc, c.url); err == nil && g != "" {
		fmt.Fprintln(out, g)
	}
	if c.flood != "" {
		if floodErr != nil {
			return floodErr
		}
		flood.print(out, fmt.Sprintf("flood: %d clients", c.floodClients))
	}
	return nil
}

// cpu is the CPU time used so far by this process (the client), the
// spawned server, and the database servers of this machine (processes
// named mariadbd, mysqld or postgres), from /proc; zero where unreadable.
type cpu struct {
	at                       time.Time
	client, server, database time.Duration
	ok                       bool
}

// clockTick is the unit of /proc/PID/stat's CPU times (USER_HZ, 100 on
// Linux).
const clockTick = 10 * time.Millisecond

func cpuSnapshot(server int) cpu {
	if server == 0 {
		return cpu{}
	}
	c := cpu{at: time.Now(), client: procCPU(os.Getpid()), server: procCPU(server), ok: true}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
		if err != nil {
			continue
		}
		switch strings.TrimSpace(string(comm)) {
		case "mariadbd", "mysqld", "postgres":
			c.database += procCPU(pid)
		}
	}
	return c
}

// procCPU is a process's user and system time.
func procCPU(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// The fields after the command (in parentheses, which may hold spaces).
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * clockTick
}

// since describes where the time of n requests went between two
// snapshots: CPU per request in the client, the server and the database,
// and what is left of the machine's cores (waiting: network, disk, locks).
func (c cpu) since(before cpu, n int) string {
	if !c.ok || !before.ok || n == 0 {
		return ""
	}
	per := func(d time.Duration) string { return fmt.Sprintf("%.0f µs", float64(d.Microseconds())/float64(n)) }
	wall := c.at.Sub(before.at)
	busy := (c.client - before.client) + (c.server - before.server) + (c.database - before.database)
	cores := time.Duration(runtime.NumCPU()) * wall
	return fmt.Sprintf("CPU per request: client %s, server %s, database %s; the %d cores were %.0f%% busy with them",
		per(c.client-before.client), per(c.server-before.server), per(c.database-before.database), runtime.NumCPU(), 100*float64(busy)/float64(cores))
}

// groupSizes reads the server's clm_store_group_commit_size histogram
// (since its start) and describes it: "" when it has none (not SQLite, or
// no metrics).
func groupSizes(hc *http.Client, base string) (string, error) {
	resp, err := hc.Get(base + "/metrics")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("/metrics: HTTP %d", resp.StatusCode)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		return "", err
	}
	f := fams["clm_store_group_commit_size"]
	if f == nil || len(f.GetMetric()) == 0 || f.GetMetric()[0].GetHistogram().GetSampleCount() == 0 {
		return "", nil
	}
	h := f.GetMetric()[0].GetHistogram()
	n := h.GetSampleCount()
	var b strings.Builder
	fmt.Fprintf(&b, "group commit: %d commits of %.0f transactions, mean size %.2f; commits by size:", n, h.GetSampleSum(), h.GetSampleSum()/float64(n))
	var prev uint64
	lo := 1.0
	for _, bk := range h.GetBucket() {
		c := bk.GetCumulativeCount() - prev
		prev = bk.GetCumulativeCount()
		if lo == bk.GetUpperBound() {
			fmt.Fprintf(&b, " %v: %.0f%%", lo, 100*float64(c)/float64(n))
		} else {
			fmt.Fprintf(&b, " %v-%v: %.0f%%", lo, bk.GetUpperBound(), 100*float64(c)/float64(n))
		}
		lo = bk.GetUpperBound() + 1
	}
	return b.String(), nil
}

// loopbackOnly refuses any target but this machine.
func loopbackOnly(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return fmt.Errorf("-url %q: not a URL", raw)
	}
	host := u.Hostname()
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("-url %q: load is only sent to loopback addresses", raw)
}

// spawn starts a clmserver on a free loopback port and a temporary store:
// an SQLite file, or for store "mysql:DSN" or "postgres:DSN" a fresh
// database (schema) on that server, dropped at the end.
func spawn(bin, store string, args ...string) (stop func(), url, license string, pid int, err error) {
	dir, err := os.MkdirTemp("", "loadgen")
	if err != nil {
		return nil, "", "", 0, err
	}
	drop := func() error { return nil }
	ctx := context.Background()
	switch kind, dsn, _ := strings.Cut(store, ":"); kind {
	case "":
		store = "sqlite:" + filepath.Join(dir, "clm.db")
	case "mysql":
		dsn, drop, err = testdb.FreshMySQL(ctx, dsn, "clm_loadgen_")
		store = "mysql:" + dsn
	case "postgres":
		dsn, drop, err = testdb.FreshPostgres(ctx, dsn, "clm_loadgen_")
		store = "postgres:" + dsn
	}
	if err != nil {
		os.RemoveAll(dir)
		return nil, "", "", 0, err
	}
	cmd := exec.Command(bin, append([]string{"-addr", "127.0.0.1:0", "-store", store, "-license", "loadgen-license-0123456789", "-data-dir", dir, "-log-level", "error"}, args...)...)
	cmd.Env = append(os.Environ(), "CLM_MASTER_KEY=AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=")
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		drop()
		os.RemoveAll(dir)
		return nil, "", "", 0, err
	}
	stop = func() {
		cmd.Process.Signal(os.Interrupt)
		cmd.Wait()
		drop()
		os.RemoveAll(dir)
	}
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "clmserver: serving the CLM v10 protocol at "); ok {
			go io.Copy(io.Discard, stdout)
			return stop, strings.TrimSuffix(strings.Fields(rest)[0], "/SWCLM/v10/"), "loadgen-license-0123456789", cmd.Process.Pid, nil
		}
	}
	stop()
	return nil, "", "", 0, errors.New("the server did not start")
}

type weighted struct {
	op     string
	weight int
}

var ops = []string{"psk-create", "psk-auth", "cert-issue", "cert-issue-p12", "cert-issue-pass", "cert-get", "key-create", "key-get", "echo", "baseline-issue",
	"baseline-insert", "psk-auth-raw", "cert-issue-raw", "key-create-raw"}

func parseMix(s string) ([]weighted, error) {
	var mix []weighted
	for _, part := range strings.Split(s, ",") {
		name, w, _ := strings.Cut(strings.TrimSpace(part), "=")
		n := 1
		if w != "" {
			var err error
			if n, err = strconv.Atoi(w); err != nil || n < 0 {
				return nil, fmt.Errorf("-mix %q: bad weight", part)
			}
		}
		if !slices.Contains(ops, name) {
			return nil, fmt.Errorf("-mix: unknown operation %q (know %s)", name, strings.Join(ops, ", "))
		}
		mix = append(mix, weighted{name, n})
	}
	return mix, nil
}

// results are the latencies of each operation.
type results struct {
	mu       sync.Mutex
	lat      map[string][]time.Duration
	errs     map[string]int
	firstErr map[string]error
	elapsed  time.Duration
}

func (r *results) add(op string, d time.Duration, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err != nil {
		r.errs[op]++
		if r.firstErr[op] == nil {
			r.firstErr[op] = err
		}
		return
	}
	r.lat[op] = append(r.lat[op], d)
}

// total is the number of requests made, successful or not.
func (r *results) total() int {
	n := 0
	for op, l := range r.lat {
		n += len(l) + r.errs[op]
	}
	return n
}

func (r *results) throughput(op string) float64 {
	return float64(len(r.lat[op])) / r.elapsed.Seconds()
}

func (r *results) quantile(op string, q float64) time.Duration {
	l := r.lat[op]
	if len(l) == 0 {
		return 0
	}
	sort.Slice(l, func(i, j int) bool { return l[i] < l[j] })
	return l[min(len(l)-1, int(q*float64(len(l))))]
}

func (r *results) print(out io.Writer, title string) {
	fmt.Fprintf(out, "%s, %v\n%-16s %8s %7s %10s %10s %10s\n", title, r.elapsed.Round(time.Millisecond), "operation", "ok", "errors", "req/s", "p50", "p99")
	names := make([]string, 0, len(r.lat))
	for op := range r.lat {
		names = append(names, op)
	}
	for op := range r.errs {
		if r.lat[op] == nil {
			names = append(names, op)
		}
	}
	sort.Strings(names)
	for _, op := range names {
		fmt.Fprintf(out, "%-16s %8d %7d %10.1f %10v %10v\n", op, len(r.lat[op]), r.errs[op], r.throughput(op),
			r.quantile(op, 0.5).Round(time.Microsecond), r.quantile(op, 0.99).Round(time.Microsecond))
		if e := r.firstErr[op]; e != nil {
			fmt.Fprintf(out, "  first error: %v\n", e)
		}
	}
}

// drive runs the mix from n clients until the count or the time is spent.
func drive(ctx context.Context, cl *client.Client, license string, hc *http.Client, base string, mix []weighted, n, count int, d time.Duration) (*results, error) {
	r := &results{lat: map[string][]time.Duration{}, errs: map[string]int{}, firstErr: map[string]error{}}
	total := 0
	for _, w := range mix {
		total += w.weight
	}
	if total == 0 {
		return nil, errors.New("-mix: all weights are 0")
	}
	var sent atomic.Int64
	deadline := time.Now().Add(d)
	var wg sync.WaitGroup
	var setupErr atomic.Value
	start := time.Now()
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := newSession(ctx, cl, license, i)
			if err != nil {
				setupErr.Store(err)
				return
			}
			for k := 0; time.Now().Before(deadline); k++ {
				if count > 0 && sent.Add(1) > int64(count) {
					return
				}
				pick := (i*7919 + k*104729) % total
				op := mix[0].op
				for _, w := range mix {
					if pick < w.weight {
						op = w.op
						break
					}
					pick -= w.weight
				}
				t0 := time.Now()
				err := s.do(ctx, op, hc, base, k)
				r.add(op, time.Since(t0), err)
			}
		}()
	}
	wg.Wait()
	r.elapsed = time.Since(start)
	if err, _ := setupErr.Load().(error); err != nil {
		return r, err
	}
	return r, nil
}

// session is one client: its PSK, its device, a certificate and a key.
type session struct {
	cl      *client.Client
	license string
	creds   lifecycle.PSKCredentials
	dev     lifecycle.DeviceRequest
	cert    int64
	key     int64
	id      int
}

func newSession(ctx context.Context, cl *client.Client, license string, id int) (*session, error) {
	s := &session{cl: cl, id: id, license: license}
	if cl == nil {
		// A baseline session: bodies of the same shape, made-up values.
		s.creds = lifecycle.PSKCredentials{KeyID: "0000000001", Password: "abcdefghijklmnopqrstuvwx"}
		s.dev = lifecycle.DeviceRequest{ID: strings.Repeat("d", 36), Name: "load", Key: lifecycle.Secret(strings.Repeat("k", 32))}
		return s, nil
	}
	p, err := cl.IssuePSK(ctx, lifecycle.IssuePSKRequest{Tenant: "load", Alias: "loadgen"})
	if err != nil {
		return nil, fmt.Errorf("setup: %w", err)
	}
	s.creds = lifecycle.PSKCredentials{KeyID: p.KeyID, Password: p.Password}
	name := fmt.Sprintf("load-%d-%d", id, time.Now().UnixNano())
	c, err := cl.IssueCertificate(ctx, lifecycle.IssueCertificateRequest{PSK: s.creds, Device: lifecycle.DeviceRequest{Name: name},
		CA: "ca1", Subject: "/CN=load", KeyPath: "/k", Path: "/cert", CAPath: "/ca"})
	if err != nil {
		return nil, fmt.Errorf("setup: %w", err)
	}
	s.dev = lifecycle.DeviceRequest{ID: c.Device.Device.ID, Name: name, Key: c.Device.Key}
	s.cert = c.Certificate.KeyNumber
	k, err := cl.CreateKey(ctx, lifecycle.CreateKeyRequest{PSK: s.creds, Device: s.dev, Alias: "k", KeyType: "AES", KeyPath: "/k", Path: "/key"})
	if err != nil {
		return nil, fmt.Errorf("setup: %w", err)
	}
	s.key = k.KeyNumber
	return s, nil
}

func (s *session) do(ctx context.Context, op string, hc *http.Client, base string, k int) error {
	path := fmt.Sprintf("/load/%d/%d", s.id, k) // a new path each time: a repeat would be a replay
	switch op {
	case "psk-create":
		_, err := s.cl.IssuePSK(ctx, lifecycle.IssuePSKRequest{Tenant: "load", Alias: "x"})
		return err
	case "psk-auth":
		_, err := s.cl.AuthenticatePSK(ctx, s.creds)
		return err
	case "cert-issue", "cert-issue-p12", "cert-issue-pass":
		req := lifecycle.IssueCertificateRequest{PSK: s.creds, Device: s.dev, CA: "ca1", Subject: "/CN=load", KeyPath: "/k", Path: path, CAPath: "/ca"}
		switch op {
		case "cert-issue-p12":
			req.Format, req.Passphrase = lifecycle.FormatP12, "pfx-pass"
		case "cert-issue-pass": // the key encrypted under a passphrase: pemutil's PBKDF2
			req.Passphrase = "key-pass"
		}
		_, err := s.cl.IssueCertificate(ctx, req)
		return err
	case "cert-get":
		_, err := s.cl.GetCertificate(ctx, lifecycle.GetCertificateRequest{PSK: s.creds, Device: s.dev, CA: "ca1", Ref: lifecycle.CertificateRef{KeyNumber: s.cert}, Path: "/cert"})
		return err
	case "key-create":
		_, err := s.cl.CreateKey(ctx, lifecycle.CreateKeyRequest{PSK: s.creds, Device: s.dev, Alias: "k", KeyType: "AES", KeyPath: "/k", Path: path})
		return err
	case "key-get":
		_, err := s.cl.GetKey(ctx, lifecycle.GetKeyRequest{PSK: s.creds, Device: s.dev, KeyNumber: s.key, Path: "/key"})
		return err
	case "echo", "baseline-issue", "baseline-insert":
		return post(hc, base+"/"+op, "", s.rawBody(op, path))
	case "psk-auth-raw":
		// The same client work as "echo": a prepared body, the answer read
		// and dropped; only the server side differs.
		return post(hc, base+"/SWCLM/v10/IDInfo", s.license, s.rawBody("psk-auth", path))
	case "cert-issue-raw":
		return post(hc, base+"/SWCLM/v10/CredInfo", s.license, s.rawBody("cert-issue", path))
	case "key-create-raw":
		return post(hc, base+"/SWCLM/v10/KeyInfo", s.license, s.rawBody("key-create", path))
	}
	return fmt.Errorf("unknown operation %q", op)
}

// rawBody is the request body of an operation, the same shape for ours
// and the baseline's, so that the client's work is the same on both sides.
func (s *session) rawBody(op, path string) string {
	switch op {
	case "cert-issue", "baseline-issue":
		return fmt.Sprintf(`{"mode":"create","keyid":%q,"key":%q,"deviceid":%q,"devicename":%q,"devicekey":%q,"certmode":"client","catype":"ca1","clientsubject":"/CN=load","keyfilepath":"/k","cafilepath":"/ca","clientfilepath":%q}`,
			s.creds.KeyID, s.creds.Password.Reveal(), s.dev.ID, s.dev.Name, s.dev.Key.Reveal(), path)
	case "key-create", "baseline-insert":
		return fmt.Sprintf(`{"mode":"create","keyid":%q,"key":%q,"deviceid":%q,"devicename":%q,"devicekey":%q,"alias":"k","keytype":"AES","keyfilepath":"/k","commonkeyfilepath":%q}`,
			s.creds.KeyID, s.creds.Password.Reveal(), s.dev.ID, s.dev.Name, s.dev.Key.Reveal(), path)
	default:
		return fmt.Sprintf(`{"mode":"auth","keyid":%q,"key":%q}`, s.creds.KeyID, s.creds.Password.Reveal())
	}
}

// post sends a prepared body and drops the answer, failing on a status
// other than 2xx.
func post(hc *http.Client, url, license, body string) error {
	req, err := http.NewRequest("POST", url, strings.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	if license != "" {
		req.SetBasicAuth("secureware-clm", license)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	return nil
}

// baselines serves, in this process and with the same net/http stack, the
// bare handlers the targets compare against.
func baselines() (url string, stop func(), err error) {
	dir, err := os.MkdirTemp("", "loadgen-baseline")
	if err != nil {
		return "", nil, err
	}
	st, err := sqlitestore.Open(context.Background(), filepath.Join(dir, "base.db"), &gormstore.Options{})
	if err != nil {
		return "", nil, err
	}
	db := st.DB()
	type row struct {
		ID          int64 `gorm:"primaryKey"`
		Certificate []byte
		Secret      []byte
	}
	if err := db.AutoMigrate(&row{}); err != nil {
		return "", nil, err
	}
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "baseline"}, NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, _ := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, caKey.Public(), caKey)
	ca, _ := x509.ParseCertificate(caDER)
	mux := http.NewServeMux()
	mux.HandleFunc("POST /echo", func(w http.ResponseWriter, r *http.Request) {
		var m map[string]any
		if err := json.NewDecoder(r.Body).Decode(&m); err != nil {
			http.Error(w, "bad", 400)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"errorcode": 0, "keyid": m["keyid"]})
	})
	mux.HandleFunc("POST /baseline-issue", func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		sn, _ := lifecycle.NewSerialNumber(rand.Reader)
		tmpl := &x509.Certificate{SerialNumber: sn, Subject: pkix.Name{CommonName: "load"}, NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, key.Public(), caKey)
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		pk, _ := x509.MarshalPKCS8PrivateKey(key)
		if err := db.Create(&row{Certificate: der, Secret: pk}).Error; err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"errorcode": 0, "clientcert": der})
	})
	mux.HandleFunc("POST /baseline-insert", func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		key := make([]byte, 16)
		rand.Read(key)
		rw := &row{Secret: key}
		if err := db.Create(rw).Error; err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"errorcode": 0, "keynumber": strconv.FormatInt(rw.ID, 10), "commonkey": key})
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	// The same server settings as clmserver's: the timeouts make net/http
	// set deadlines on every request, part of the stack both sides share.
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 60 * time.Second,
		WriteTimeout: 60 * time.Second, IdleTimeout: 120 * time.Second}
	go srv.Serve(ln)
	return "http://" + ln.Addr().String(), func() { srv.Close(); st.Close(); os.RemoveAll(dir) }, nil
}

// targets measures P2 (client-certificate issuance throughput against the
// minimal issuing handler) and P3 (PSK authentication throughput against
// the JSON echo handler), alternating the two sides, pair by pair.
func targets(ctx context.Context, c config, hc *http.Client, out io.Writer) error {
	base, stop, err := baselines()
	if err != nil {
		return err
	}
	defer stop()
	cl := client.New(c.url, c.license, &client.Options{HTTPClient: hc})
	type t struct {
		name         string
		ours, theirs string
		limit        float64
	}
	ts := []t{
		{"P2 HTTP certificate issue / minimal issuing handler (throughput)", "cert-issue-raw", "baseline-issue", 0.9},
		{"P3 HTTP PSK authentication / JSON echo handler (throughput)", "psk-auth-raw", "echo", 0.5},
		{"P8 HTTP symmetric-key issue / minimal one-row-insert handler (throughput)", "key-create-raw", "baseline-insert", 0.8},
	}
	per := c.duration / time.Duration(max(1, 2*c.pairs))
	if per < 500*time.Millisecond {
		per = 500 * time.Millisecond
	}
	fmt.Fprintf(out, "%-66s %8s %8s %6s\n", "target (ours/theirs, higher is better)", "median", "worst", "limit")
	for _, x := range ts {
		var ratios []float64
		var ourRate, theirRate float64
		for i := range max(5, c.pairs) {
			run := func(op string, url string, cl *client.Client) (float64, error) {
				r, err := drive(ctx, cl, c.license, hc, url, []weighted{{op, 1}}, c.clients, 0, per)
				if err != nil {
					return 0, err
				}
				if r.errs[op] > 0 {
					return 0, fmt.Errorf("%s: %d errors, first %v", op, r.errs[op], r.firstErr[op])
				}
				return r.throughput(op), nil
			}
			var a, b float64
			if i%2 == 0 {
				a, err = run(x.ours, c.url, cl)
				if err == nil {
					b, err = run(x.theirs, base, nil)
				}
			} else {
				b, err = run(x.theirs, base, nil)
				if err == nil {
					a, err = run(x.ours, c.url, cl)
				}
			}
			if err != nil {
				return err
			}
			ratios = append(ratios, a/b)
			ourRate, theirRate = a, b
		}
		slices.Sort(ratios)
		median, worst := ratios[len(ratios)/2], ratios[0]
		verdict := "met"
		if median < x.limit {
			verdict = fmt.Sprintf("NOT met (%.0f%% short)", (1-median/x.limit)*100)
		}
		fmt.Fprintf(out, "%-66s %8.2f %8.2f %6.2f %s (last pair %.0f vs %.0f req/s)\n", x.name, median, worst, x.limit, verdict, ourRate, theirRate)
	}
	return nil
}
