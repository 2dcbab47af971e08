package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"flag"
	"io"
	"net/http"
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
	url, license, _ = startServerTLS(t, c)
	return url, license
}

// startServerTLS is startServer that also returns the file the server
// tells its clients to trust, when it serves HTTPS with -tls-auto.
func startServerTLS(t *testing.T, c config) (url, license, trust string) {
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
		if _, f, ok := strings.Cut(line, "clients trust "); ok {
			trust = f
		}
		if rest, ok := strings.CutPrefix(line, "clmserver: serving the CLM v10 protocol at "); ok {
			url = strings.TrimSuffix(strings.Fields(rest)[0], "/SWCLM/v10/")
			go io.Copy(io.Discard, pr)
			return url, license, trust
		}
	}
	t.Fatalf("the server did not start: %v", <-done)
	return "", "", ""
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
	flows(t, strings.Replace(url, "127.0.0.1", "localhost", 1), license, filepath.Join(dir, "clm-tls-ca.pem"))
}

func TestFlowsOnMySQL(t *testing.T) {
	needTools(t)
	dsn := testdb.MySQL(t)
	os.Setenv("CLM_MASTER_KEY", "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=")
	defer os.Unsetenv("CLM_MASTER_KEY")
	url, _ := startServer(t, config{store: "mysql:" + dsn, license: "mysql-license-0123456789", dataDir: t.TempDir()})
	flows(t, url, "mysql-license-0123456789", "")
}

func TestFlowsOnPostgres(t *testing.T) {
	needTools(t)
	dsn := testdb.Postgres(t)
	os.Setenv("CLM_MASTER_KEY", "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=")
	defer os.Unsetenv("CLM_MASTER_KEY")
	url, _ := startServer(t, config{store: "postgres:" + dsn, license: "pg-license-0123456789", dataDir: t.TempDir()})
	flows(t, url, "pg-license-0123456789", "")
}

func TestRefusesAServerStoreWithoutAKey(t *testing.T) {
	os.Unsetenv("CLM_MASTER_KEY")
	err := run(context.Background(), config{store: "postgres:postgres://nowhere/x", dataDir: t.TempDir(), cas: "ca1", logLevel: "error"}, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "no master key") {
		t.Fatalf("a server store without a master key must be refused: %v", err)
	}
}

func TestLicenseRules(t *testing.T) {
	os.Setenv("CLM_MASTER_KEY", testMasterKey)
	defer os.Unsetenv("CLM_MASTER_KEY")
	start := func(c config) error {
		c.store, c.cas, c.logLevel, c.addr = "sqlite:"+filepath.Join(t.TempDir(), "clm.db"), "ca1", "error", "127.0.0.1:0"
		ctx, cancel := context.WithCancel(context.Background())
		cancel() // stop at once if it starts
		return run(ctx, c, io.Discard)
	}
	t.Run("ShortLicenseRefused", func(t *testing.T) {
		err := start(config{license: "fifteen-chars15"})
		if err == nil || !strings.Contains(err.Error(), "at least 16") {
			t.Fatalf("a 15-character license must be refused at start with a clear message: %v", err)
		}
	})
	t.Run("ShortLicenseFileRefused", func(t *testing.T) {
		f := filepath.Join(t.TempDir(), "license")
		os.WriteFile(f, []byte("short\n"), 0o600)
		err := start(config{licenseFile: f})
		if err == nil || !strings.Contains(err.Error(), "at least 16") || strings.Contains(err.Error(), "short") {
			t.Fatalf("a short license file must be refused, without echoing it: %v", err)
		}
	})
	t.Run("LicenseFile", func(t *testing.T) {
		f := filepath.Join(t.TempDir(), "license")
		os.WriteFile(f, []byte("a-license-from-a-file-0123\n"), 0o600)
		url, printed := startServer(t, config{store: "sqlite:" + filepath.Join(t.TempDir(), "clm.db"), licenseFile: f})
		if printed != "" {
			t.Fatal("a license from a file must not be generated or printed")
		}
		api := &attacker{t: t, url: url, license: "a-license-from-a-file-0123", hc: http.DefaultClient}
		api.psk("t1") // the license of the file opens IDInfo
		api.license = "a-license-from-a-file-012"
		if st, _ := api.post("IDInfo", map[string]any{"mode": "create", "tenantid": "t1", "alias": "a"}); st != 401 {
			t.Fatalf("another license: %d, want 401", st)
		}
	})
	t.Run("LicenseFromEnvironment", func(t *testing.T) {
		fs := flag.NewFlagSet("clmserver", flag.ContinueOnError)
		var c config
		fs.StringVar(&c.license, "license", "", "")
		t.Setenv("CLM_LICENSE", "an-environment-license-01")
		if err := fromEnv(fs); err != nil || c.license != "an-environment-license-01" {
			t.Fatalf("CLM_LICENSE must set the license: %q %v", c.license, err)
		}
	})
}

func TestProfilesServeNoCommandLine(t *testing.T) {
	addr, stop, err := serveProfiles("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	get := func(path string) int {
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if st := get("/debug/pprof/cmdline"); st == 200 {
		t.Fatal("/debug/pprof/cmdline must not be served: the command line may carry -license")
	}
	if st := get("/debug/pprof/goroutine?debug=1"); st != 200 {
		t.Fatalf("the profiles themselves must still be served: %d", st)
	}
}

// TestTLSAutoPersists: the TLS CA and the server's certificate are kept in
// the data directory (keys mode 0600) and reused by the next start; a
// certificate near its end is issued anew by the same CA.
func TestTLSAutoPersists(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	first, ca1, err := autoTLS(dir, "127.0.0.1:8443", now)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{tlsCAKey, tlsKeyFile} {
		if st, err := os.Stat(filepath.Join(dir, f)); err != nil || st.Mode().Perm() != 0o600 {
			t.Fatalf("%s must be kept with mode 0600: %v", f, err)
		}
	}
	again, ca2, err := autoTLS(dir, "127.0.0.1:8443", now.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if !ca1.Equal(ca2) || !again.Leaf.Equal(first.Leaf) {
		t.Fatal("a second start must reuse the kept CA and certificate")
	}
	late, ca3, err := autoTLS(dir, "127.0.0.1:8443", now.Add(80*24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if !ca3.Equal(ca1) || late.Leaf.Equal(first.Leaf) || late.Leaf.CheckSignatureFrom(ca1) != nil {
		t.Fatal("a certificate with less than 30 days left must be issued anew by the same CA")
	}
	other, _, err := autoTLS(dir, "192.0.2.10:8443", now.Add(80*24*time.Hour))
	if err != nil || other.Leaf.VerifyHostname("192.0.2.10") != nil {
		t.Fatalf("a new listen address must be covered: %v", err)
	}
}

func TestResealFlag(t *testing.T) {
	dir := t.TempDir()
	store := "sqlite:" + filepath.Join(dir, "clm.db")
	url, license := startServer(t, config{store: store})
	api := &attacker{t: t, url: url, license: license, hc: http.DefaultClient}
	api.psk("t1")
	var out strings.Builder
	err := run(context.Background(), config{store: store, cas: "ca1", logLevel: "error", reseal: true, addr: "127.0.0.1:0"}, &out)
	if err != nil || !strings.Contains(out.String(), "sealed values examined") {
		t.Fatalf("-reseal: %v\n%s", err, out.String())
	}
}

// TestMasterKeyRotation: with -master-key-dir, rotating the master key is
// adding the next version, -reseal, and removing the old version; a store
// started under another master key is refused, saying so.
func TestMasterKeyRotation(t *testing.T) {
	os.Unsetenv("CLM_MASTER_KEY")
	dir, keys := t.TempDir(), t.TempDir()
	store := "sqlite:" + filepath.Join(dir, "clm.db")
	writeKey := func(name string, fill byte) {
		k := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{fill}, 32))
		if err := os.WriteFile(filepath.Join(keys, name), []byte(k), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	writeKey("1.key", 1)
	c := config{store: store, masterKeyDir: keys, license: "rotation-license-0123456789", dataDir: dir}
	url, _ := startServer(t, c)
	api := &attacker{t: t, url: url, license: c.license, hc: http.DefaultClient}
	keyID, key := api.psk("t1")

	writeKey("2.key", 2)
	var out strings.Builder
	r := c
	r.reseal, r.cas, r.logLevel, r.addr = true, "ca1", "error", "127.0.0.1:0"
	if err := run(context.Background(), r, &out); err != nil || !strings.Contains(out.String(), "re-sealed") {
		t.Fatalf("-reseal under version 2: %v %s", err, out.String())
	}
	if err := os.Remove(filepath.Join(keys, "1.key")); err != nil {
		t.Fatal(err)
	}
	url, _ = startServer(t, c)
	api.url = url
	if st, r := api.post("IDInfo", map[string]any{"mode": "auth", "keyid": keyID, "key": key}); st != 200 {
		t.Fatalf("after the rotation, with version 1 removed, the PSK must still authenticate: %d %v", st, r)
	}

	other := t.TempDir()
	os.WriteFile(filepath.Join(other, "2.key"), []byte(base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{9}, 32))), 0o600)
	w := r
	w.reseal, w.masterKeyDir = false, other
	err := run(context.Background(), w, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "this store was sealed with a different master key") {
		t.Fatalf("a store started under another master key must be refused, saying so: %v", err)
	}
}

// TestMetrics: after a few requests /metrics answers with the requests by
// endpoint, mode and code, latency histograms, credentials issued by kind,
// license failures, and the key-pool levels.
func TestMetrics(t *testing.T) {
	url, license := startServer(t, config{store: "sqlite:" + filepath.Join(t.TempDir(), "clm.db"), metrics: true, rsaKeyPool: 2})
	api := &attacker{t: t, url: url, license: license, hc: http.DefaultClient}
	keyID, key := api.psk("t1")
	if st, r := api.post("CredInfo", map[string]any{"mode": "create", "keyid": keyID, "key": key, "devicename": "d",
		"certmode": "client", "catype": "ca1", "clientsubject": "/CN=d", "keyfilepath": "/k", "cafilepath": "/ca", "clientfilepath": "/c"}); st != 201 {
		t.Fatalf("issue: %d %v", st, r)
	}
	api.post("IDInfo", map[string]any{"mode": "auth", "keyid": keyID, "key": "wrong"})
	api.license = "not-the-license-0123456789"
	api.post("IDInfo", map[string]any{"mode": "create", "tenantid": "t", "alias": "a"})
	resp, err := http.Get(url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`clm_requests_total{code="0",endpoint="IDInfo",mode="create"} 1`,
		`clm_requests_total{code="0",endpoint="CredInfo",mode="create"} 1`,
		`clm_requests_total{code="1201",endpoint="IDInfo",mode="auth"} 1`,
		`clm_request_duration_seconds_bucket{endpoint="CredInfo",mode="create",le="2.5"} 1`,
		`clm_credentials_issued_total{kind="certificate"} 1`,
		`clm_credentials_issued_total{kind="psk"} 1`,
		`clm_license_failures_total 1`,
		`clm_rsa_key_pool_keys{type="RSA-2048"} 0`,
		`clm_psk_refused_total 0`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if t.Failed() {
		t.Logf("/metrics:\n%s", body)
	}
}
