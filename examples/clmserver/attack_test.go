package main

// The attacks of the security review (issue #11), repeated over HTTP
// against the server on SQLite, MariaDB and PostgreSQL: an attacker holds
// the license key (every v10 client does) and one tenant's PSK.

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/credlife/clm/internal/testdb"
)

const testMasterKey = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="

// onEachStore starts the server (with c's other settings) on each database and
// runs fn against it.
func onEachStore(t *testing.T, c config, fn func(t *testing.T, api *attacker)) {
	t.Run("SQLite", func(t *testing.T) {
		c := c
		dir := t.TempDir()
		c.store = "sqlite:" + filepath.Join(dir, "clm.db")
		fn(t, newAttacker(t, c))
	})
	for _, db := range []struct{ name, kind string }{{"MariaDB", "mysql"}, {"PostgreSQL", "postgres"}} {
		t.Run(db.name, func(t *testing.T) {
			c := c
			dsn := testdb.MySQL
			if db.kind == "postgres" {
				dsn = testdb.Postgres
			}
			c.store = db.kind + ":" + dsn(t)
			c.dataDir = t.TempDir()
			t.Setenv("CLM_MASTER_KEY", testMasterKey)
			fn(t, newAttacker(t, c))
		})
	}
}

// attacker speaks the protocol with the license, as the attacker does.
type attacker struct {
	t       *testing.T
	url     string
	license string
	trust   string       // with -tls-auto: the file the server tells clients to trust
	hc      *http.Client // trusting it
}

// newAttacker starts the server with c and returns a client of it, with
// the license; over HTTPS it trusts what the server tells clients to trust.
func newAttacker(t *testing.T, c config) *attacker {
	if c.license == "" {
		c.license = "the-license-every-client-holds"
	}
	url, _, trust := startServerTLS(t, c)
	a := &attacker{t: t, url: url, license: c.license, trust: trust, hc: http.DefaultClient}
	if trust != "" {
		pem, err := os.ReadFile(trust)
		if err != nil {
			t.Fatal(err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			t.Fatalf("%s holds no certificate", trust)
		}
		a.hc = &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	}
	return a
}

// post sends a JSON body and returns the status and the decoded answer.
func (c *attacker) post(path string, body map[string]any) (int, map[string]any) {
	c.t.Helper()
	j, _ := json.Marshal(body)
	req, _ := http.NewRequest("POST", c.url+"/SWCLM/v10/"+path, bytes.NewReader(j))
	req.SetBasicAuth("secureware-clm", c.license)
	return c.do(req)
}

func (c *attacker) do(req *http.Request) (int, map[string]any) {
	c.t.Helper()
	resp, err := c.hc.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	var m map[string]any
	_ = json.Unmarshal(data, &m)
	return resp.StatusCode, m
}

// psk issues a PSK of tenant.
func (c *attacker) psk(tenant string) (keyid, key string) {
	c.t.Helper()
	st, r := c.post("IDInfo", map[string]any{"mode": "create", "tenantid": tenant, "alias": "a"})
	if st != 201 {
		c.t.Fatalf("IDInfo create %q: %d %v", tenant, st, r)
	}
	return r["keyid"].(string), r["key"].(string)
}

func code(r map[string]any) int {
	f, _ := r["errorcode"].(float64)
	return int(f)
}

// TestAttackTenantConfusion: a PSK for "tenantB " must not reach tenantB's
// devices. The server refuses to issue it (400/1103), and a store that
// compared "tenantB" and "tenantB " as equal is caught by the conformance
// suite's Identity cases on every backend.
func TestAttackTenantConfusion(t *testing.T) {
	onEachStore(t, config{}, func(t *testing.T, api *attacker) {
		keyID, key := api.psk("tenantB")
		st, r := api.post("KeyInfo", map[string]any{"mode": "create", "keyid": keyID, "key": key, "devicename": "victim",
			"alias": "k", "keytype": "AES", "keyfilepath": "/k", "commonkeyfilepath": "/c"})
		if st != 201 {
			t.Fatalf("victim's key: %d %v", st, r)
		}
		for _, tenant := range []string{"tenantB ", " tenantB", "tenantB\t", "tenant\x00B", "tenantB\n", "tenant\x7fB"} {
			st, r := api.post("IDInfo", map[string]any{"mode": "create", "tenantid": tenant, "alias": "attacker"})
			if st != 400 || code(r) != 1103 {
				t.Errorf("IDInfo create with tenantid %q: %d %v, want 400/1103", tenant, st, r)
			}
		}
	})
}

// TestAttackServerImpersonation: a device asks the device CA for a
// certificate for /CN=localhost and serves TLS with it, as a man in the
// middle would. Clients that trust what the server (-tls-auto) tells them
// to trust must refuse it, and still accept the real server.
func TestAttackServerImpersonation(t *testing.T) {
	onEachStore(t, config{tlsAuto: true}, func(t *testing.T, api *attacker) {
		if api.trust == "" || !strings.HasPrefix(api.url, "https://") {
			t.Fatalf("-tls-auto must serve HTTPS and name a trust file: %s %q", api.url, api.trust)
		}
		keyID, key := api.psk("tenantA")
		st, r := api.post("CredInfo", map[string]any{"mode": "create", "keyid": keyID, "key": key, "devicename": "mitm",
			"certmode": "client", "catype": "ca1", "clientsubject": "/CN=localhost", "keyfilepath": "/k",
			"cafilepath": "/ca", "clientfilepath": "/c"})
		if st != 201 {
			t.Fatalf("the attacker's certificate: %d %v", st, r)
		}
		pair, err := tls.X509KeyPair([]byte(r["clientcert"].(string)), []byte(r["privatekey"].(string)))
		if err != nil {
			t.Fatal(err)
		}
		ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{pair}})
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				go func() { c.(*tls.Conn).Handshake(); c.Close() }()
			}
		}()
		_, port, _ := net.SplitHostPort(ln.Addr().String())
		_, err = api.hc.Get("https://" + net.JoinHostPort("localhost", port) + "/SWCLM/v10/SystemStatus")
		var unknown x509.UnknownAuthorityError
		if err == nil || !errors.As(err, &unknown) {
			t.Fatalf("a client trusting %s must refuse a server certificate for localhost from the device CA as of an unknown authority (err %v)", api.trust, err)
		}
		// The server's own certificate: trusted, and not from a device CA.
		resp, err := api.hc.Get(api.url + "/SWCLM/v10/SystemStatus")
		if err != nil {
			t.Fatalf("the real server must be trusted: %v", err)
		}
		resp.Body.Close()
		ca1, _ := pem.Decode([]byte(r["cacert"].(string)))
		for _, c := range resp.TLS.PeerCertificates {
			if bytes.Equal(c.RawIssuer, mustParse(t, ca1.Bytes).RawSubject) || bytes.Equal(c.Raw, ca1.Bytes) {
				t.Fatal("the server's TLS chain involves the device CA")
			}
		}
	})
}

func mustParse(t *testing.T, der []byte) *x509.Certificate {
	t.Helper()
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// get sends an unauthenticated GET and returns the status and body.
func (c *attacker) get(path string) (int, []byte) {
	c.t.Helper()
	resp, err := c.hc.Get(c.url + "/SWCLM/v10/" + path)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// TestAttackCRLFlood: GET /CRL is unauthenticated. Flooding it must not
// make the CA sign or draw CRL numbers (one CRL number for 300 requests),
// and a revocation must still be on the next CRL at once.
func TestAttackCRLFlood(t *testing.T) {
	onEachStore(t, config{}, func(t *testing.T, api *attacker) {
		number := func() int64 {
			st, der := api.get("CRL?catype=ca1")
			if st != 200 {
				t.Fatalf("GET CRL: %d", st)
			}
			crl, err := x509.ParseRevocationList(der)
			if err != nil {
				t.Fatal(err)
			}
			return crl.Number.Int64()
		}
		first := number()
		for range 300 {
			if n := number(); n != first {
				t.Fatalf("an unchanged CRL was signed anew (number %d, then %d): every request costs a signature and a database write", first, n)
			}
		}
		for range 50 {
			if st, _ := api.get("SystemStatus"); st != 200 {
				t.Fatalf("SystemStatus: %d", st)
			}
		}
		keyID, key := api.psk("tenantA")
		st, r := api.post("CredInfo", map[string]any{"mode": "create", "keyid": keyID, "key": key, "devicename": "d",
			"certmode": "client", "catype": "ca1", "clientsubject": "/CN=d", "keyfilepath": "/k", "cafilepath": "/ca", "clientfilepath": "/c"})
		if st != 201 {
			t.Fatalf("issue: %d %v", st, r)
		}
		st, r = api.post("CredInfo", map[string]any{"mode": "revoke", "keyid": keyID, "key": key, "deviceid": r["deviceid"],
			"devicename": "d", "devicekey": r["devicekey"], "keynumber": r["clientkeynumber"], "catype": "ca1"})
		if st != 200 {
			t.Fatalf("revoke: %d %v", st, r)
		}
		if n := number(); n <= first {
			t.Fatalf("the CRL after a revocation must be a new one: number %d, before %d", n, first)
		}
	})
}
