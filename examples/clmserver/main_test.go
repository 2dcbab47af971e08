package main

import (
	"bufio"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/credlife/clm/internal/testdb"
)

// startServer runs the server in-process on a free loopback port and
// returns its base URL and license; it stops when the test ends.
func startServer(t *testing.T, c config) (url, license string) {
	t.Helper()
	if c.addr == "" {
		c.addr = "127.0.0.1:0"
	}
	c.cas, c.logLevel = "ca1", "error"
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() { done <- run(ctx, c, pw); pw.Close() }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("the server must stop cleanly: %v", err)
			}
		case <-time.After(20 * time.Second):
			t.Error("the server did not stop")
		}
	})
	lines := bufio.NewScanner(pr)
	go func() {
		<-ctx.Done()
	}()
	for lines.Scan() {
		line := lines.Text()
		if strings.HasPrefix(line, "generated a license key") && lines.Scan() {
			license = lines.Text()
		}
		if rest, ok := strings.CutPrefix(line, "clmserver: serving the CLM v10 protocol at "); ok {
			url = strings.TrimSuffix(strings.Fields(rest)[0], "/SWCLM/v10/")
			go io.Copy(io.Discard, pr)
			return url, license
		}
	}
	t.Fatalf("the server did not start: %v", <-done)
	return "", ""
}

func needTools(t *testing.T) {
	for _, tool := range []string{"bash", "curl", "jq", "openssl"} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("%s is required in CI", tool)
			}
			t.Skipf("no %s", tool)
		}
	}
}

// flows runs the README's curl flows against a server, from outside the
// process.
func flows(t *testing.T, url, license, cacert string) {
	t.Helper()
	cmd := exec.Command("bash", "flows.sh")
	cmd.Env = append(os.Environ(), "CLM_URL="+url, "CLM_LICENSE="+license, "CLM_CACERT="+cacert)
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "flows: all passed") {
		t.Fatalf("flows.sh: %v\n%s", err, out)
	}
}

func TestFlowsOnSQLite(t *testing.T) {
	needTools(t)
	dir := t.TempDir()
	url, license := startServer(t, config{store: "sqlite:" + filepath.Join(dir, "clm.db")})
	if license == "" {
		t.Fatal("a first start must print the generated license")
	}
	for _, f := range []string{"clm.license", "clm.masterkey"} {
		st, err := os.Stat(filepath.Join(dir, f))
		if err != nil || st.Mode().Perm() != 0o600 {
			t.Fatalf("%s must be written with mode 0600: %v", f, err)
		}
	}
	flows(t, url, license, "")
}

func TestFlowsWithTLSAuto(t *testing.T) {
	needTools(t)
	dir := t.TempDir()
	url, license := startServer(t, config{store: "sqlite:" + filepath.Join(dir, "clm.db"), tlsAuto: true})
	if !strings.HasPrefix(url, "https://") {
		t.Fatalf("-tls-auto must serve HTTPS: %s", url)
	}
	flows(t, strings.Replace(url, "127.0.0.1", "localhost", 1), license, filepath.Join(dir, "clm-ca.pem"))
}

func TestFlowsOnMySQL(t *testing.T) {
	needTools(t)
	dsn := testdb.MySQL(t)
	os.Setenv("CLM_MASTER_KEY", "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=")
	defer os.Unsetenv("CLM_MASTER_KEY")
	url, _ := startServer(t, config{store: "mysql:" + dsn, license: "mysql-license", dataDir: t.TempDir()})
	flows(t, url, "mysql-license", "")
}

func TestFlowsOnPostgres(t *testing.T) {
	needTools(t)
	dsn := testdb.Postgres(t)
	os.Setenv("CLM_MASTER_KEY", "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=")
	defer os.Unsetenv("CLM_MASTER_KEY")
	url, _ := startServer(t, config{store: "postgres:" + dsn, license: "pg-license", dataDir: t.TempDir()})
	flows(t, url, "pg-license", "")
}

func TestRefusesAServerStoreWithoutAKey(t *testing.T) {
	os.Unsetenv("CLM_MASTER_KEY")
	err := run(context.Background(), config{store: "postgres:postgres://nowhere/x", dataDir: t.TempDir(), cas: "ca1", logLevel: "error"}, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "no master key") {
		t.Fatalf("a server store without a master key must be refused: %v", err)
	}
}
