// Command clmserver is the runnable CLM server: the lifecycle engine with a
// local CA, served over the CLM WebAPI v10 protocol.
//
//	go run ./examples/clmserver                       # SQLite clm.db, http://127.0.0.1:8080
//	go run ./examples/clmserver -store 'mysql:root@tcp(127.0.0.1:3306)/clm'
//	go run ./examples/clmserver -store 'postgres:postgres://postgres@127.0.0.1/clm' -tls-auto
//
// Every flag can also be set by an environment variable: -addr by CLM_ADDR,
// -store by CLM_STORE, and so on (the flag's name, upper-cased, dashes as
// underscores, after CLM_). A flag given on the command line wins.
//
// The license key (HTTP Basic password of the user secureware-clm) comes
// from CLM_LICENSE, -license-file or -license (which shows it in the
// process list); an operator's license must have at least 16 characters.
// When none is given, one is generated on the first start, kept in a file
// beside the database (mode 0600) and printed once. The
// master key that seals every secret comes from CLM_MASTER_KEY (base64 of 32
// bytes) or -master-key-file; for a fresh SQLite store without one, a key
// file is generated beside the database, with a warning: production should
// supply its own and keep it away from the database.
//
// With -tls-cert and -tls-key the server speaks HTTPS with that pair; with
// -tls-auto it issues itself a server certificate from a TLS CA of its own,
// kept in the data directory (clm-tls-ca.pem is the file clients trust),
// never from a CA that signs device certificates. SIGINT and SIGTERM shut it
// down gracefully.
package main

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/credlife/clm/backends/gormstore"
	"github.com/credlife/clm/backends/mysqlstore"
	"github.com/credlife/clm/backends/postgresstore"
	"github.com/credlife/clm/backends/sqlitestore"
	"github.com/credlife/clm/httpadapter"
	"github.com/credlife/clm/httpadapter/admin"
	"github.com/credlife/clm/httpadapter/est"
	"github.com/credlife/clm/lifecycle"
	"github.com/credlife/clm/lifecycle/driver"
)

type config struct {
	addr, store, license, licenseFile string
	masterKeyFile, masterKeyDir       string
	dataDir                           string
	tlsCert, tlsKey, tlsCAOut         string
	tlsAuto                           bool
	requireDeviceKey, deviceIsolation bool
	allowWildcards                    bool
	adminLicenseFile                  string
	reseal                            bool
	metrics                           bool
	rsaKeyPool                        int
	cas                               string
	caRoot                            string
	caImportChain, caImportKey        string
	delegatedOCSP                     bool
	publicURL                         string
	policyFile                        string
	adminTokenFile                    string
	notifyURL, notifySecretFile       string
	notifyOps                         string
	notifyQueue                       int
	sweepInterval, retention          time.Duration
	certValidity                      time.Duration
	storeWait                         time.Duration
	groupCommit                       int
	expiryWarnings                    string
	logLevel                          string
	pprofAddr                         string
}

func main() {
	var c config
	fs := flag.NewFlagSet("clmserver", flag.ExitOnError)
	fs.StringVar(&c.addr, "addr", "127.0.0.1:8080", "listen address")
	fs.StringVar(&c.store, "store", "sqlite:clm.db", "store: sqlite:PATH, mysql:DSN or postgres:DSN")
	fs.StringVar(&c.license, "license", "", "license key, at least 16 characters; prefer CLM_LICENSE or -license-file, which keep it out of the process list (default: generated on first start and kept beside the database)")
	fs.StringVar(&c.licenseFile, "license-file", "", "file holding the license key")
	fs.StringVar(&c.adminLicenseFile, "admin-license-file", "", "file holding a second license that alone may issue and list PSKs (IDInfo create and GET); the device license then cannot read PSK passwords")
	fs.BoolVar(&c.requireDeviceKey, "require-device-key", false, "every request that names a deviceid must carry its devicekey")
	fs.BoolVar(&c.deviceIsolation, "device-isolation", false, "a device reaches only credentials already bound to it; another device's get/update/revoke/delete of them answers as if they did not exist")
	fs.BoolVar(&c.reseal, "reseal", false, "re-seal every secret in the store under the current master key and format (which binds each to its tenant and kind), print what was done, and exit")
	fs.BoolVar(&c.metrics, "metrics", true, "serve Prometheus metrics at /metrics")
	fs.IntVar(&c.rsaKeyPool, "rsa-key-pool", 0, "keep this many RSA keys of each type in use pre-generated (0: none)")
	fs.BoolVar(&c.allowWildcards, "allow-wildcards", false, "allow a wildcard (*) in a certificate's CN and subjectAltName (refused by default)")
	fs.StringVar(&c.masterKeyFile, "master-key-file", "", "file with the base64 master key (default: CLM_MASTER_KEY, or a file beside a SQLite database)")
	fs.StringVar(&c.masterKeyDir, "master-key-dir", "", "directory of versioned master keys, VERSION.key (mode 0600), the highest sealing: to rotate, add the next version and run -reseal")
	fs.StringVar(&c.dataDir, "data-dir", "", "where the generated license, key and CA files go (default: beside a SQLite database, else the working directory)")
	fs.StringVar(&c.tlsCert, "tls-cert", "", "HTTPS certificate file (PEM)")
	fs.StringVar(&c.tlsKey, "tls-key", "", "HTTPS private key file (PEM)")
	fs.BoolVar(&c.tlsAuto, "tls-auto", false, "HTTPS with a certificate from a TLS CA of the server's own, kept in the data directory (never a device CA)")
	fs.StringVar(&c.tlsCAOut, "tls-ca-out", "", "with -tls-auto, also write the TLS CA certificate that clients trust here (it is always in the data directory as "+tlsCAFile+")")
	fs.StringVar(&c.cas, "cas", "ca1", "comma-separated names of the local CAs; the first is the default")
	fs.StringVar(&c.caRoot, "ca-root", "", "create each new CA of -cas as an intermediate under a root of this name, kept sealed in the store (its chain is served with every CA certificate); existing CAs load as they are")
	fs.StringVar(&c.caImportChain, "ca-import-chain", "", "PEM chain of an intermediate CA made elsewhere (its certificate first, up to the offline root), imported as the first of -cas when the store has no CA of that name")
	fs.StringVar(&c.caImportKey, "ca-import-key", "", "with -ca-import-chain, the intermediate's private key (PKCS#8 or SEC 1 PEM), sealed into the store")
	fs.BoolVar(&c.delegatedOCSP, "delegated-ocsp", false, "sign OCSP responses with a responder certificate each CA issues itself every 7 days, not with the CA's key")
	fs.StringVar(&c.publicURL, "public-url", "", "the server's public base URL (https://clm.example.com): issued certificates then name its OCSP, CA certificate and CRL URLs")
	fs.StringVar(&c.policyFile, "policy-file", "", "JSON file of certificate policies per CA and tenant (see README, Certificate policy)")
	fs.StringVar(&c.notifyURL, "notify-url", "", "deliver audit events (-notify-ops) to this webhook as JSON signed with HMAC-SHA256 (X-CLM-Signature), retried until taken")
	fs.StringVar(&c.notifySecretFile, "notify-secret-file", "", "file holding the webhook's HMAC secret (at least 16 characters); required with -notify-url")
	fs.StringVar(&c.notifyOps, "notify-ops", defaultNotifyOps, "comma-separated audit operations the webhook receives")
	fs.IntVar(&c.notifyQueue, "notify-queue", 10000, "events the webhook queue holds while the receiver is down; beyond it events are dropped (and logged)")
	fs.DurationVar(&c.sweepInterval, "sweep-interval", time.Hour, "run the expiry sweeper and retention this often (0: never)")
	fs.StringVar(&c.expiryWarnings, "expiry-warnings", "720h,168h,24h", "comma-separated thresholds before a credential's end at which it is warned of")
	fs.DurationVar(&c.retention, "retention", 90*24*time.Hour, "remove revoked, superseded and deleted credentials this long after their end (0: keep everything)")
	fs.IntVar(&c.groupCommit, "group-commit", 32, "SQLite: at most this many concurrent write transactions share one commit (1: each commits alone)")
	fs.DurationVar(&c.storeWait, "store-wait", 30*time.Second, "at start, wait this long for the database to answer (retrying with backoff) before giving up")
	fs.DurationVar(&c.certValidity, "cert-validity", 365*24*time.Hour, "validity of issued certificates")
	fs.StringVar(&c.adminTokenFile, "admin-token-file", "", "file holding the bearer token of the admin API (at least 16 characters); the API is served at /admin/v1/ only with it")
	fs.StringVar(&c.logLevel, "log-level", "info", "debug, info, warn or error")
	fs.StringVar(&c.pprofAddr, "pprof-addr", "", "serve Go's profiles (net/http/pprof) at this address, e.g. 127.0.0.1:6060; keep it on loopback")
	_ = fs.Parse(os.Args[1:])
	if err := fromEnv(fs); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, c, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "clmserver:", err)
		os.Exit(1)
	}
}

// fromEnv sets every flag not given on the command line from CLM_<NAME>.
func fromEnv(fs *flag.FlagSet) error {
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		env := "CLM_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v, ok := os.LookupEnv(env); ok && !given[f.Name] && err == nil {
			if e := f.Value.Set(v); e != nil {
				err = fmt.Errorf("%s: %w", env, e)
			}
		}
	})
	return err
}

func run(ctx context.Context, c config, out io.Writer) error {
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.logLevel)); err != nil {
		return err
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))

	kind, dsn, ok := strings.Cut(c.store, ":")
	if !ok || dsn == "" {
		return fmt.Errorf("-store %q: want sqlite:PATH, mysql:DSN or postgres:DSN", c.store)
	}
	if c.dataDir == "" {
		c.dataDir = "."
		if kind == "sqlite" {
			c.dataDir = filepath.Dir(dsn)
		}
	}
	if err := os.MkdirAll(c.dataDir, 0o700); err != nil {
		return err
	}
	fresh := false
	if kind == "sqlite" {
		_, err := os.Stat(dsn)
		fresh = errors.Is(err, fs.ErrNotExist)
	}
	keys, err := masterKeys(c, kind, fresh, logger)
	if err != nil {
		return err
	}
	license, err := licenseKey(c, out)
	if err != nil {
		return err
	}
	var adminLicense lifecycle.Secret
	if c.adminLicenseFile != "" {
		if adminLicense, err = readLicenseFile("-admin-license-file", c.adminLicenseFile); err != nil {
			return err
		}
		if adminLicense == license {
			return errors.New("-admin-license-file holds the license itself: the admin license must differ from the one every client holds")
		}
	}

	openCtx, cancel := context.WithTimeout(ctx, 30*time.Second+c.storeWait)
	defer cancel()
	mt := newMetrics()
	store, err := openStore(openCtx, kind, dsn, &gormstore.Options{Logger: logger, GroupCommit: gormstore.GroupCommit{MaxSize: c.groupCommit, Observe: mt.observeGroup}}, c.storeWait, logger)
	if err != nil {
		return err
	}
	defer store.Close()

	cas, err := openCAs(openCtx, store, keys, c)
	if err != nil {
		return err
	}
	policies, err := readPolicies(c.policyFile)
	if err != nil {
		return err
	}
	var urls func(string) lifecycle.IssuerURLs
	if c.publicURL != "" {
		if u, err := url.Parse(c.publicURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return fmt.Errorf("-public-url %q: want an absolute http(s) URL", c.publicURL)
		}
		urls = httpadapter.IssuerURLs(c.publicURL, "")
	}
	var warnings []time.Duration
	for _, w := range strings.Split(c.expiryWarnings, ",") {
		if strings.TrimSpace(w) == "" {
			continue // none given: the library's
		}
		d, err := time.ParseDuration(strings.TrimSpace(w))
		if err != nil {
			return fmt.Errorf("-expiry-warnings: %w", err)
		}
		warnings = append(warnings, d)
	}
	retention := c.retention
	if retention == 0 {
		retention = -1 // the flag's 0 is off; the library's is its default
	}
	var next lifecycle.Auditor = lifecycle.NewSlogAuditor(logger)
	var notify *notifier
	if c.notifyURL != "" {
		if c.notifySecretFile == "" {
			return errors.New("-notify-url needs -notify-secret-file: receivers check the HMAC signature")
		}
		secret, err := readLicenseFile("-notify-secret-file", c.notifySecretFile)
		if err != nil {
			return err
		}
		notify = newNotifier(c.notifyURL, []byte(secret.Reveal()), c.notifyOps, c.notifyQueue, logger, next)
		next = notify
	}
	m, err := lifecycle.New(store, &lifecycle.Options{Keys: keys, CAs: cas, Logger: logger,
		Auditor:          auditor{m: mt, next: next},
		RequireDeviceKey: c.requireDeviceKey, DeviceIsolation: c.deviceIsolation, AllowWildcards: c.allowWildcards,
		RSAKeyPool: c.rsaKeyPool, Policies: policies, URLs: urls,
		CertValidity: c.certValidity, ExpiryWarnings: warnings, Retention: retention})
	if err != nil {
		return err
	}
	defer m.Close()
	mt.watchPools(m)
	if err := m.CheckKeys(openCtx); err != nil {
		return err
	}
	if c.reseal {
		st, err := m.Reseal(ctx)
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "clmserver: reseal: %d sealed values examined, %d re-sealed, %d changed meanwhile (run again), %d device keys still kept as keyed hashes (sealed at each device's next request with its key)\n",
			st.Examined, st.Resealed, st.Skipped, st.DeviceKeysPending)
		return nil
	}
	handler := httpadapter.New(m, &httpadapter.Options{License: license, AdminLicense: adminLicense, Logger: logger, Observe: mt.observe})
	mux := http.NewServeMux()
	mux.Handle(handler.Prefix(), handler)
	if c.adminTokenFile != "" {
		token, err := readLicenseFile("-admin-token-file", c.adminTokenFile)
		if err != nil {
			return err
		}
		if token == license || token == adminLicense {
			return errors.New("-admin-token-file holds a license: the admin token must differ from every license")
		}
		ah := admin.New(m, &admin.Options{Token: token.Reveal(), Logger: logger})
		mux.Handle(ah.Prefix(), ah)
	}
	if c.metrics {
		mux.Handle("/metrics", mt.handler())
	}

	srv := &http.Server{
		Addr:              c.addr,
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
	}
	ln, err := net.Listen("tcp", c.addr)
	if err != nil {
		return err
	}
	scheme := "http"
	switch {
	case c.tlsCert != "" || c.tlsKey != "":
		pair, err := tls.LoadX509KeyPair(c.tlsCert, c.tlsKey)
		if err != nil {
			return err
		}
		srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}
	case c.tlsAuto:
		pair, tlsCA, err := autoTLS(c.dataDir, ln.Addr().String(), time.Now())
		if err != nil {
			return err
		}
		trust := filepath.Join(c.dataDir, tlsCAFile)
		if c.tlsCAOut != "" {
			if err := os.WriteFile(c.tlsCAOut, pemCert(tlsCA), 0o644); err != nil {
				return err
			}
			trust = c.tlsCAOut
		}
		fmt.Fprintf(out, "TLS: server certificate from the server's own TLS CA; clients trust %s\n", trust)
		srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}
	}
	if srv.TLSConfig != nil {
		scheme = "https"
		// EST (RFC 7030) needs TLS: served only here. Client certificates
		// are asked for, not required; the EST handler checks them against
		// the CAs (a PSK enrols without one).
		srv.TLSConfig.ClientAuth = tls.RequestClientCert
		eh := est.New(m, &est.Options{Logger: logger})
		mux.Handle(eh.Prefix(), eh)
		ln = tls.NewListener(ln, srv.TLSConfig)
	}
	fmt.Fprintf(out, "clmserver: serving the CLM v10 protocol at %s://%s%s (store %s)\n", scheme, ln.Addr(), handler.Prefix(), kind)

	if c.pprofAddr != "" {
		_, stopProfiles, err := serveProfiles(c.pprofAddr)
		if err != nil {
			return err
		}
		defer stopProfiles()
		fmt.Fprintf(out, "clmserver: profiles at http://%s/debug/pprof/\n", c.pprofAddr)
	}

	bg, stopBackground := context.WithCancel(ctx)
	defer stopBackground()
	if notify != nil {
		go notify.run(bg)
	}
	if c.sweepInterval > 0 {
		go sweep(bg, m, c.sweepInterval, logger)
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	logger.Info("shutting down")
	shutdown, cancel2 := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel2()
	if err := srv.Shutdown(shutdown); err != nil {
		return err
	}
	fmt.Fprintln(out, "clmserver: stopped")
	return nil
}

// openStore opens the store, retrying with backoff (250 ms doubling to 5
// s) for up to wait while the database cannot be reached, as when the
// server starts before its database; any other error ends it at once.
func openStore(ctx context.Context, kind, dsn string, opts *gormstore.Options, wait time.Duration, log *slog.Logger) (*gormstore.Store, error) {
	deadline := time.Now().Add(wait)
	backoff := 250 * time.Millisecond
	for {
		var (
			store *gormstore.Store
			err   error
		)
		switch kind {
		case "sqlite":
			store, err = sqlitestore.Open(ctx, dsn, opts)
		case "mysql":
			store, err = mysqlstore.Open(ctx, dsn, opts)
		case "postgres":
			store, err = postgresstore.Open(ctx, dsn, opts)
		default:
			return nil, fmt.Errorf("-store: unknown kind %q", kind)
		}
		if err == nil || !errors.Is(err, driver.ErrUnavailable) || time.Now().Add(backoff).After(deadline) {
			return store, err
		}
		log.Warn("the database does not answer yet; retrying", slog.Duration("in", backoff), slog.String("error", err.Error()))
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

// serveProfiles serves net/http/pprof's handlers on a listener of their
// own, and returns the address it listens on.
func serveProfiles(addr string) (bound string, stop func(), err error) {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	// Not /debug/pprof/cmdline: the command line may carry -license.
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", nil, err
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	return ln.Addr().String(), func() { srv.Close() }, nil
}

// masterKeys returns the KEKs of -master-key-dir, or of CLM_MASTER_KEY
// (one key, or versioned ones), or the one of the key file.
func masterKeys(c config, kind string, fresh bool, logger *slog.Logger) (*lifecycle.StaticKeys, error) {
	switch {
	case c.masterKeyDir != "":
		return lifecycle.KeysFromDir(c.masterKeyDir)
	case os.Getenv("CLM_MASTER_KEY") != "":
		return lifecycle.KeysFromEnv("CLM_MASTER_KEY")
	}
	kek, err := masterKey(c, kind, fresh, logger)
	if err != nil {
		return nil, err
	}
	return lifecycle.NewStaticKeys(1, map[uint32][]byte{1: kek})
}

// masterKey returns the KEK from a key file, generating
// the file for a fresh SQLite store.
func masterKey(c config, kind string, fresh bool, logger *slog.Logger) ([]byte, error) {
	path := c.masterKeyFile
	if path == "" {
		path = filepath.Join(c.dataDir, "clm.masterkey")
	}
	b, err := os.ReadFile(path)
	if err == nil {
		return decodeKey(strings.TrimSpace(string(b)), path)
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	if kind != "sqlite" || !fresh || c.masterKeyFile != "" {
		return nil, fmt.Errorf("no master key: set CLM_MASTER_KEY (base64 of 32 bytes) or -master-key-file (%s does not exist)", path)
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	if err := os.WriteFile(path, []byte(base64.StdEncoding.EncodeToString(key)+"\n"), 0o600); err != nil {
		return nil, err
	}
	logger.Warn("generated a master key file beside the database; production should supply its own (CLM_MASTER_KEY) and keep it away from the database", "file", path)
	return key, nil
}

func decodeKey(s, from string) ([]byte, error) {
	k, err := base64.StdEncoding.DecodeString(s)
	if err != nil || len(k) != 32 {
		return nil, fmt.Errorf("%s: want base64 of 32 bytes", from)
	}
	return k, nil
}

// MinLicenseLen is the least number of characters of an operator's
// license key: every v10 client holds it, and it guards IDInfo.
const MinLicenseLen = 16

// licenseKey returns the operator's license (-license, CLM_LICENSE or
// -license-file), or the license kept in the data directory, generating and
// printing it once when there is none.
func licenseKey(c config, out io.Writer) (lifecycle.Secret, error) {
	if c.license != "" && c.licenseFile != "" {
		return "", errors.New("give the license by -license (or CLM_LICENSE) or by -license-file, not both")
	}
	if c.licenseFile != "" {
		return readLicenseFile("-license-file", c.licenseFile)
	}
	if c.license != "" {
		return checkLicense("-license (or CLM_LICENSE)", c.license)
	}
	path := filepath.Join(c.dataDir, "clm.license")
	b, err := os.ReadFile(path)
	if err == nil {
		return lifecycle.Secret(strings.TrimSpace(string(b))), nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return "", err
	}
	raw := make([]byte, 24)
	if _, err := rand.Read(raw); err != nil {
		return "", err
	}
	lic := base64.RawURLEncoding.EncodeToString(raw)
	if err := os.WriteFile(path, []byte(lic+"\n"), 0o600); err != nil {
		return "", err
	}
	fmt.Fprintf(out, "generated a license key (kept in %s, mode 0600); this is the only time it is printed:\n%s\n", path, lic)
	return lifecycle.Secret(lic), nil
}

// readLicenseFile reads a license from a file (white space around it
// ignored) and checks its length.
func readLicenseFile(flag, path string) (lifecycle.Secret, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("%s: %w", flag, err)
	}
	return checkLicense(flag+" "+path, strings.TrimSpace(string(b)))
}

// checkLicense refuses a license shorter than MinLicenseLen characters,
// saying where it came from and never what it is.
func checkLicense(from, lic string) (lifecycle.Secret, error) {
	if n := utf8.RuneCountInString(lic); n < MinLicenseLen {
		return "", fmt.Errorf("the license from %s has %d characters; it must have at least %d", from, n, MinLicenseLen)
	}
	return lifecycle.Secret(lic), nil
}
