package postgresstore_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/credlife/clm/backends/postgresstore"
	"github.com/credlife/clm/lifecycle"
)

// privatePostgres runs a PostgreSQL server of its own (initdb in a
// temporary directory, a free port) that the test may stop and start
// without disturbing anything else.
type privatePostgres struct {
	t         *testing.T
	bin, data string
	port      int
}

func newPrivatePostgres(t *testing.T) *privatePostgres {
	t.Helper()
	bins, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	if len(bins) == 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("PostgreSQL's initdb is required in CI")
		}
		t.Skip("no initdb")
	}
	dir, err := os.MkdirTemp("", "clm-pg-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755)
	exec.Command("chown", "postgres", dir).Run()
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	p := &privatePostgres{t: t, bin: filepath.Dir(bins[len(bins)-1]), data: filepath.Join(dir, "data"), port: port}
	if out, err := p.asPostgres("initdb", "-D", p.data, "-U", "postgres", "--auth=trust", "-E", "UTF8"); err != nil {
		t.Fatalf("initdb: %v\n%s", err, out)
	}
	p.start()
	t.Cleanup(func() { p.asPostgres("pg_ctl", "-D", p.data, "-m", "immediate", "stop") })
	return p
}

func (p *privatePostgres) asPostgres(tool string, args ...string) (string, error) {
	out, err := exec.Command("runuser", append([]string{"-u", "postgres", "--", filepath.Join(p.bin, tool)}, args...)...).CombinedOutput()
	return string(out), err
}

func (p *privatePostgres) start() {
	p.t.Helper()
	opts := fmt.Sprintf("-p %d -c listen_addresses=127.0.0.1 -k %s", p.port, filepath.Dir(p.data))
	if out, err := p.asPostgres("pg_ctl", "-D", p.data, "-o", opts, "-l", filepath.Join(filepath.Dir(p.data), "log"), "-w", "start"); err != nil {
		p.t.Fatalf("pg_ctl start: %v\n%s", err, out)
	}
}

func (p *privatePostgres) stop() {
	p.t.Helper()
	if out, err := p.asPostgres("pg_ctl", "-D", p.data, "-m", "immediate", "-w", "stop"); err != nil {
		p.t.Fatalf("pg_ctl stop: %v\n%s", err, out)
	}
}

func (p *privatePostgres) dsn() string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable&connect_timeout=2", p.port)
}

// TestDatabaseOutage stops the database under load and starts it again:
// requests answer 1601/1602 within a bound, nothing hangs or panics,
// SystemStatus says 1601, and the service recovers without a restart.
func TestDatabaseOutage(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	ctx := context.Background()
	pg := newPrivatePostgres(t)
	st, err := postgresstore.Open(ctx, pg.dsn(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	keys, _ := lifecycle.NewStaticKeys(1, map[uint32][]byte{1: make([]byte, 32)})
	m, err := lifecycle.New(st, &lifecycle.Options{Keys: keys})
	if err != nil {
		t.Fatal(err)
	}
	type result struct {
		at, took time.Duration
		code     lifecycle.Code
	}
	var (
		mu      sync.Mutex
		results []result
		stop    = make(chan struct{})
		wg      sync.WaitGroup
	)
	begin := time.Now()
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				t0 := time.Now()
				rctx, cancel := context.WithTimeout(ctx, 15*time.Second)
				_, err := m.IssuePSK(rctx, lifecycle.IssuePSKRequest{Tenant: fmt.Sprint("t", w), Alias: "a"})
				cancel()
				mu.Lock()
				results = append(results, result{t0.Sub(begin), time.Since(t0), lifecycle.CodeOf(err)})
				mu.Unlock()
				time.Sleep(5 * time.Millisecond)
			}
		}()
	}
	time.Sleep(time.Second)
	stoppedAt := time.Since(begin)
	pg.stop()
	time.Sleep(3 * time.Second)
	if err := m.Status(ctx); !errors.Is(err, lifecycle.CodeDBConnection) {
		t.Errorf("SystemStatus with the database down must answer 1601: %v", err)
	}
	restartedAt := time.Since(begin)
	pg.start()
	time.Sleep(3 * time.Second)
	close(stop)
	wg.Wait()
	if err := m.Status(ctx); err != nil {
		t.Fatalf("SystemStatus after the database returned: %v", err)
	}

	var firstErr, recovered, slowest time.Duration = -1, -1, 0
	for _, r := range results {
		if r.at >= stoppedAt && r.code != lifecycle.CodeOK && firstErr < 0 {
			firstErr = r.at + r.took - stoppedAt
		}
		if r.at >= restartedAt && r.code == lifecycle.CodeOK && recovered < 0 {
			recovered = r.at + r.took - restartedAt
		}
		if r.took > slowest {
			slowest = r.took
		}
		if r.code != lifecycle.CodeOK && r.code != lifecycle.CodeDBConnection && r.code != lifecycle.CodeDBAccess {
			t.Errorf("during the outage a request answered %v, want 1601 or 1602", r.code)
		}
	}
	t.Logf("FIGURE outage: %d requests; time to first error %v, time to recovery %v, slowest request %v",
		len(results), firstErr.Round(time.Millisecond), recovered.Round(time.Millisecond), slowest.Round(time.Millisecond))
	if firstErr < 0 || recovered < 0 {
		t.Fatal("the outage must show as errors, and the service must recover without a restart")
	}
	if slowest > 10*time.Second {
		t.Fatalf("a request took %v: requests must answer within a bound", slowest)
	}
}
