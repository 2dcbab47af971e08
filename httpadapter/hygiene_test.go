package httpadapter_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"log"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/credlife/clm/backends/gormstore"
	"github.com/credlife/clm/backends/mysqlstore"
	"github.com/credlife/clm/backends/sqlitestore"
	"github.com/credlife/clm/ca"
	"github.com/credlife/clm/httpadapter"
	"github.com/credlife/clm/internal/testdb"
	"github.com/credlife/clm/lifecycle"
)

// secretSet collects every secret a run hands out or sends, in the forms
// it could leak in: as is, hex, base64 and, for base64 values, decoded.
type secretSet map[string]bool

func (s secretSet) add(v string) {
	if len(v) < 6 {
		return
	}
	s[v] = true
	s[hex.EncodeToString([]byte(v))] = true
	s[base64.StdEncoding.EncodeToString([]byte(v))] = true
	if raw, err := base64.StdEncoding.DecodeString(v); err == nil && len(raw) >= 8 {
		s[string(raw)] = true
		s[hex.EncodeToString(raw)] = true
	}
	if strings.Contains(v, "PRIVATE KEY") {
		// the base64 body of a PEM key, line by line
		for _, line := range strings.Split(v, "\n") {
			if len(line) > 40 && !strings.HasPrefix(line, "-----") {
				s[line] = true
			}
		}
	}
}

// collect walks an answer for secret fields.
func (s secretSet) collect(body map[string]any) {
	for k, v := range body {
		switch x := v.(type) {
		case string:
			switch k {
			case "key", "devicekey", "privatekey", "commonkey", "clientcert":
				// clientcert carries the private key in p12; its bytes are secret too
				s.add(x)
			}
		case []any:
			for _, e := range x {
				if m, ok := e.(map[string]any); ok {
					s.collect(m)
				}
			}
		}
	}
}

// mysqlLog captures the MySQL driver's own log.
type mysqlLog struct{ w *syncBuffer }

func (m mysqlLog) Print(v ...any) { fmt.Fprintln(m.w, v...) }

// TestSecretHygiene runs every flow (and failing ones) with the library's,
// GORM's and the MySQL driver's logs at debug level, a slow-query threshold
// of 1ns so that every statement is logged, and the audit sink on: no
// password, private key, passphrase, license key or symmetric key of the
// run appears in any captured output.
func TestSecretHygiene(t *testing.T) {
	stores := map[string]func(context.Context, *gormstore.Options) (*gormstore.Store, error){
		"sqlite": func(ctx context.Context, o *gormstore.Options) (*gormstore.Store, error) {
			return sqlitestore.Open(ctx, filepath.Join(t.TempDir(), "clm.db"), o)
		},
	}
	if os.Getenv(testdb.MySQLEnv) != "" || os.Getenv("CI") == "true" {
		dsn := testdb.MySQL(t)
		stores["mysql"] = func(ctx context.Context, o *gormstore.Options) (*gormstore.Store, error) {
			return mysqlstore.Open(ctx, dsn, o)
		}
	}
	for name, open := range stores {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			logs := &syncBuffer{}
			logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
			mysql.SetLogger(mysqlLog{logs})
			defer mysql.SetLogger(log.New(os.Stderr, "[mysql] ", log.Ldate|log.Ltime|log.Lshortfile))
			st, err := open(ctx, &gormstore.Options{Logger: logger, SlowQuery: time.Nanosecond})
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			keys, _ := lifecycle.NewStaticKeys(1, map[uint32][]byte{1: bytes.Repeat([]byte{0x5a}, 32)})
			ca1, err := ca.Open(ctx, st, keys, nil)
			if err != nil {
				t.Fatal(err)
			}
			m, err := lifecycle.New(st, &lifecycle.Options{Keys: keys, CAs: []lifecycle.CA{ca1}, Logger: logger})
			if err != nil {
				t.Fatal(err)
			}
			srv := httptest.NewServer(httpadapter.New(m, &httpadapter.Options{License: license, Logger: logger}))
			defer srv.Close()
			s := &server{t: t, url: srv.URL, store: st, m: m, ca: ca1, clock: &clock{now: time.Now()}, h: nil}

			secrets := secretSet{}
			secrets.add(license)
			state := runGolden(t, s)
			for _, k := range []string{"key", "key2", "devicekey", "ck1", "ck3"} {
				secrets.add(state[k])
			}
			for _, p := range []string{"pass", "pfx-pass", "renewed", "x"} {
				if len(p) >= 6 {
					secrets.add(p)
				}
			}
			// Answers carry more secrets: collect them from a second run of
			// issuing calls, and force error paths with them.
			keyid, key := s.psk("hygiene")
			secrets.add(key)
			_, _, r := s.call("POST", credinfo, map[string]any{"mode": "create", "keyid": keyid, "key": key, "devicename": "h", "certmode": "client",
				"catype": "ca1", "clientsubject": "/CN=h", "passphrase": "hygiene-passphrase", "keyfilepath": "/k", "cafilepath": "/c", "clientfilepath": "/p"})
			secrets.collect(r)
			secrets.add("hygiene-passphrase")
			devid, devkey := r["deviceid"].(string), r["devicekey"].(string)
			_, _, k := s.call("POST", keyinfo, map[string]any{"mode": "create", "keyid": keyid, "key": key, "deviceid": devid, "devicekey": devkey,
				"alias": "a", "keytype": "AES", "keyfilepath": "/k", "commonkeyfilepath": "/a"})
			secrets.collect(k)
			// Error paths, each carrying a secret in the request.
			s.call("POST", idinfo, map[string]any{"mode": "auth", "keyid": keyid, "key": key + "-wrong"})
			secrets.add(key + "-wrong")
			s.call("POST", keyinfo, map[string]any{"mode": "delete", "keyid": keyid, "key": key, "deviceid": devid, "devicekey": devkey, "devicename": "h",
				"keynumber": k["keynumber"], "commonkey": "AAECAwQFBgcICQoLDA0ODw==", "filepath": "/a"})
			secrets.add("AAECAwQFBgcICQoLDA0ODw==")
			s.call("POST", keyinfo, map[string]any{"mode": "get", "keyid": keyid, "key": key, "deviceid": devid, "devicekey": devkey + "-bad", "devicename": "h", "keynumber": k["keynumber"], "filepath": "/a"})
			secrets.add(devkey + "-bad")
			s.call("POST", credinfo, map[string]any{"mode": "create", "keyid": keyid, "key": key, "deviceid": devid, "devicekey": devkey, "devicename": "h",
				"certmode": "client", "catype": "ca1", "clientsubject": "/CN=h", "clientcerttype": "p12", "passphrase": "emoji-🔑-passphrase", "keyfilepath": "/k", "clientfilepath": "/p"})
			secrets.add("emoji-🔑-passphrase")
			s.callAuth("POST", idinfo, map[string]any{"mode": "create", "tenantid": "t", "alias": "a"}, "secureware-clm", "wrong-license-value")
			secrets.add("wrong-license-value")
			// A forced database error: the store closed under the engine.
			st.Close()
			s.call("POST", idinfo, map[string]any{"mode": "auth", "keyid": keyid, "key": key})

			out := logs.String()
			for _, must := range []string{"SQL executed", "audit", "request"} {
				if !strings.Contains(out, must) {
					t.Fatalf("the captured logs lack %q: the test would prove nothing", must)
				}
			}
			var leaked []string
			for sec := range secrets {
				if strings.Contains(out, sec) {
					leaked = append(leaked, fmt.Sprintf("%.12s… (%d bytes)", sec, len(sec)))
				}
			}
			sort.Strings(leaked)
			if len(leaked) > 0 {
				t.Fatalf("secrets reached the logs: %v", leaked)
			}
			t.Logf("FIGURE hygiene (%s): %d secrets and forms checked against %d bytes of debug logs: 0 found", name, len(secrets), len(out))
		})
	}
}

// TestConstantTimeSites lists every comparison of a secret in the
// module's code (the test kits storetest, catest and testdb aside): each
// must be one of these constant-time calls, and a new one, or any
// bytes.Equal, must be added here on purpose.
func TestConstantTimeSites(t *testing.T) {
	want := []string{
		"httpadapter/adapter.go: subtle.ConstantTimeCompare (license user)",
		"httpadapter/adapter.go: subtle.ConstantTimeCompare (license key)",
		"httpadapter/adapter.go: subtle.ConstantTimeCompare (admin license key)",
		"lifecycle/device.go: subtle.ConstantTimeCompare (sealed device key)",
		"lifecycle/key.go: subtle.ConstantTimeCompare (commonkey on delete)",
		"lifecycle/psk.go: subtle.ConstantTimeCompare (PSK password)",
		"lifecycle/seal.go: hmac.Equal (device key hash of an older store)",
		"httpadapter/decode.go: bytes.Equal (not constant-time) (a JSON null, not a secret)",
		"backends/memstore/memstore.go: bytes.Equal (not constant-time) (a sealed PSK password's compare-and-swap: ciphertext, not a secret)",
		"backends/memstore/memstore.go: bytes.Equal (not constant-time) (a sealed credential secret's compare-and-swap)",
		"backends/memstore/memstore.go: bytes.Equal (not constant-time) (a sealed device key's compare-and-swap)",
		"httpadapter/admin/admin.go: subtle.ConstantTimeCompare (admin API bearer token)",
		"ca/ca.go: bytes.Equal (not constant-time) (a certificate's issuer is its own subject: public names)",
		"ca/ca.go: bytes.Equal (not constant-time) (a CA certificate's subject is the issuer sought: public names)",
		"ca/ca.go: bytes.Equal (not constant-time) (an imported certificate's issuer is the next one's subject: public names)",
		"lifecycle/csr.go: bytes.Equal (not constant-time) (a retried CSR's public key: public)",
		"lifecycle/est.go: bytes.Equal (not constant-time) (an EST client certificate against the stored one: public)",
		"lifecycle/ocsp.go: bytes.Equal (not constant-time) (an OCSP request's issuer name hash: public)",
		"lifecycle/ocsp.go: bytes.Equal (not constant-time) (an OCSP request's issuer key hash: public)",
	}
	var got []string
	root := ".."
	fset := token.NewFileSet()
	err := filepath.Walk(root, func(path string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") || strings.Contains(path, "/examples/") ||
			strings.Contains(path, "/storetest/") || strings.Contains(path, "/catest/") || strings.Contains(path, "/testdb/") {
			return err
		}
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok {
				return true
			}
			sel, ok := call.Fun.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			pkg, _ := sel.X.(*ast.Ident)
			if pkg == nil {
				return true
			}
			name := pkg.Name + "." + sel.Sel.Name
			switch name {
			case "subtle.ConstantTimeCompare", "hmac.Equal":
				got = append(got, rel+": "+name)
			case "bytes.Equal":
				// bytes.Equal is not constant-time: it must never see a secret.
				got = append(got, rel+": "+name+" (not constant-time)")
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(got)
	var wantSites []string
	for _, w := range want {
		site := w[:strings.LastIndex(w, " (")]
		wantSites = append(wantSites, site)
	}
	sort.Strings(wantSites)
	if fmt.Sprint(got) != fmt.Sprint(wantSites) {
		t.Fatalf("the comparisons in the code are\n  %s\nwant (each constant-time, each on purpose)\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
	b, _ := json.MarshalIndent(want, "", "  ")
	t.Logf("constant-time comparison sites:\n%s", b)
}
