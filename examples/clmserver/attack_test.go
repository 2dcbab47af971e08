package main

// The attacks of the security review (issue #11), repeated over HTTP
// against the server on SQLite, MariaDB and PostgreSQL: an attacker holds
// the license key (every v10 client does) and one tenant's PSK.

import (
	"bytes"
	"cmp"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
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
	admin   string       // the admin license, with -admin-license-file
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
	return c.postAs(c.license, path, body)
}

// postAs is post with another license.
func (c *attacker) postAs(license, path string, body map[string]any) (int, map[string]any) {
	c.t.Helper()
	j, _ := json.Marshal(body)
	req, _ := http.NewRequest("POST", c.url+"/SWCLM/v10/"+path, bytes.NewReader(j))
	req.SetBasicAuth("secureware-clm", license)
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
	st, r := c.postAs(cmp.Or(c.admin, c.license), "IDInfo", map[string]any{"mode": "create", "tenantid": tenant, "alias": "a"})
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

// twoDevices registers two devices of one tenant (one PSK, shared as the
// protocol shares it), each with a symmetric key and a certificate.
type fleet struct {
	keyID, key string
	dev        [2]map[string]any // deviceid, devicename, devicekey
	keyNumber  [2]string
	certNumber [2]string
}

func twoDevices(t *testing.T, api *attacker) *fleet {
	f := &fleet{}
	f.keyID, f.key = api.psk("tenantA")
	for i, name := range []string{"dev-a", "dev-b"} {
		st, r := api.post("KeyInfo", map[string]any{"mode": "create", "keyid": f.keyID, "key": f.key, "devicename": name,
			"alias": "k", "keytype": "AES", "keyfilepath": "/k", "commonkeyfilepath": "/c"})
		if st != 201 {
			t.Fatalf("key of %s: %d %v", name, st, r)
		}
		f.dev[i] = map[string]any{"deviceid": r["deviceid"], "devicename": name, "devicekey": r["devicekey"]}
		f.keyNumber[i] = r["keynumber"].(string)
		st, r = api.post("CredInfo", f.body(i, map[string]any{"mode": "create", "certmode": "client", "catype": "ca1",
			"clientsubject": "/CN=" + name, "keyfilepath": "/k", "cafilepath": "/ca", "clientfilepath": "/cert"}))
		if st != 201 {
			t.Fatalf("certificate of %s: %d %v", name, st, r)
		}
		f.certNumber[i] = r["clientkeynumber"].(string)
	}
	return f
}

// body is a request of device i: its PSK and device fields, and fields.
func (f *fleet) body(i int, fields map[string]any) map[string]any {
	b := map[string]any{"keyid": f.keyID, "key": f.key}
	for k, v := range f.dev[i] {
		b[k] = v
	}
	for k, v := range fields {
		b[k] = v
	}
	return b
}

// TestStrictModes: what the options of the Security model change, against
// the protocol's behaviour, which stays the default.
func TestStrictModes(t *testing.T) {
	t.Run("Default", func(t *testing.T) {
		onEachStore(t, config{}, func(t *testing.T, api *attacker) {
			f := twoDevices(t, api)
			// The protocol: any device of a tenant may get any credential of it.
			if st, r := api.post("KeyInfo", f.body(1, map[string]any{"mode": "get", "keynumber": f.keyNumber[0], "filepath": "/stolen"})); st != 200 {
				t.Fatalf("by default device b may get device a's key: %d %v", st, r)
			}
			if st, _ := api.get("IDInfo?tenantid=tenantA"); st != 401 {
				t.Fatalf("GET IDInfo without the license: %d, want 401", st)
			}
			req, _ := http.NewRequest("GET", api.url+"/SWCLM/v10/IDInfo?tenantid=tenantA", nil)
			req.SetBasicAuth("secureware-clm", api.license)
			if st, r := api.do(req); st != 200 || r["keyinfo"] == nil {
				t.Fatalf("by default the license lists PSKs: %d %v", st, r)
			}
			// Wildcards are refused by default.
			st, r := api.post("CredInfo", f.body(0, map[string]any{"mode": "create", "certmode": "client", "catype": "ca1",
				"clientsubject": "/CN=*.example.com", "keyfilepath": "/k", "cafilepath": "/ca", "clientfilepath": "/w"}))
			if st != 400 || code(r) != 1103 {
				t.Fatalf("a wildcard CN: %d %v, want 400/1103", st, r)
			}
		})
	})
	adminFile := filepath.Join(t.TempDir(), "admin")
	if err := os.WriteFile(adminFile, []byte("the-admin-license-0123456789\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	strict := config{requireDeviceKey: true, deviceIsolation: true, adminLicenseFile: adminFile}
	t.Run("Strict", func(t *testing.T) {
		onEachStore(t, strict, func(t *testing.T, api *attacker) {
			// -admin-license-file: the device license neither issues nor reads PSKs.
			if st, r := api.post("IDInfo", map[string]any{"mode": "create", "tenantid": "tenantA", "alias": "a"}); st != 401 || code(r) != 1201 {
				t.Fatalf("IDInfo create with the device license: %d %v, want 401/1201", st, r)
			}
			req, _ := http.NewRequest("GET", api.url+"/SWCLM/v10/IDInfo?tenantid=tenantA", nil)
			req.SetBasicAuth("secureware-clm", api.license)
			if st, _ := api.do(req); st != 401 {
				t.Fatalf("GET IDInfo with the device license: %d, want 401", st)
			}
			api.admin = "the-admin-license-0123456789"
			f := twoDevices(t, api)
			req.SetBasicAuth("secureware-clm", api.admin)
			if st, r := api.do(req); st != 200 || r["keyinfo"] == nil {
				t.Fatalf("GET IDInfo with the admin license: %d %v", st, r)
			}
			// -require-device-key
			noKey := f.body(0, map[string]any{"mode": "get", "keynumber": f.keyNumber[0], "filepath": "/k2"})
			delete(noKey, "devicekey")
			if st, r := api.post("KeyInfo", noKey); st != 400 || code(r) != 1102 {
				t.Fatalf("a request naming a deviceid without its devicekey: %d %v, want 400/1102", st, r)
			}
			// -device-isolation: device b does not see device a's credentials.
			for _, tc := range []struct {
				path string
				body map[string]any
				want int
			}{
				{"KeyInfo", map[string]any{"mode": "get", "keynumber": f.keyNumber[0], "filepath": "/c"}, 1501},
				{"KeyInfo", map[string]any{"mode": "update", "keynumber": f.keyNumber[0], "filepath": "/c"}, 1501},
				{"KeyInfo", map[string]any{"mode": "delete", "keynumber": f.keyNumber[0], "filepath": "/c", "commonkey": "AAAAAAAAAAAAAAAAAAAAAA=="}, 1501},
				{"KeyInfo", map[string]any{"mode": "update", "keynumber": f.keyNumber[1], "newkeynumber": f.keyNumber[0], "filepath": "/c"}, 1502},
				{"CredInfo", map[string]any{"mode": "get", "keynumber": f.certNumber[0], "catype": "ca1", "filepath": "/cert"}, 1301},
				{"CredInfo", map[string]any{"mode": "update", "keynumber": f.certNumber[0], "catype": "ca1", "passphrase": "p", "filepath": "/cert"}, 1301},
				{"CredInfo", map[string]any{"mode": "revoke", "keynumber": f.certNumber[0], "catype": "ca1"}, 1301},
				{"CredInfo", map[string]any{"mode": "update", "keynumber": f.certNumber[1], "newkeynumber": f.certNumber[0], "catype": "ca1", "filepath": "/cert"}, 1301},
			} {
				if st, r := api.post(tc.path, f.body(1, tc.body)); code(r) != tc.want || st != 404 {
					t.Errorf("device b, %s %v on device a's credential: %d %v, want 404/%d", tc.path, tc.body["mode"], st, r, tc.want)
				}
			}
			// Device a still reaches its own.
			if st, r := api.post("KeyInfo", f.body(0, map[string]any{"mode": "get", "keynumber": f.keyNumber[0], "filepath": "/c"})); st != 200 {
				t.Fatalf("device a's get of its own key: %d %v", st, r)
			}
			if st, r := api.post("CredInfo", f.body(0, map[string]any{"mode": "revoke", "keynumber": f.certNumber[0], "catype": "ca1"})); st != 200 {
				t.Fatalf("device a's revocation of its own certificate: %d %v", st, r)
			}
		})
	})
}

// from returns an HTTP client whose connections come from a loopback
// address of its own (127.0.0.0/8 is all loopback), as another host would.
func from(ip string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	return &http.Client{Transport: &http.Transport{DialContext: d.DialContext}}
}

// TestAttackBruteForceTwoProcesses: two server processes on one database
// share the failure counts. A guesser with the license gets 10 wrong
// passwords per keyid from its address in all (split over both servers),
// not 10 per server; the device, from its own address, keeps working; 100
// from many addresses lock the keyid for everyone.
func TestAttackBruteForceTwoProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	bin := buildServer(t)
	for _, db := range []struct {
		name  string
		store func(t *testing.T) string
	}{
		{"SQLite", func(t *testing.T) string { return "sqlite:" + filepath.Join(t.TempDir(), "clm.db") }},
		{"MariaDB", func(t *testing.T) string { return "mysql:" + testdb.MySQL(t) }},
		{"PostgreSQL", func(t *testing.T) string { return "postgres:" + testdb.Postgres(t) }},
	} {
		t.Run(db.name, func(t *testing.T) {
			store := db.store(t)
			servers := []string{startProcess(t, bin, store), startProcess(t, bin, store)}
			api := &attacker{t: t, url: servers[0], license: "race-license-0123456789", hc: http.DefaultClient}
			keyID, key := api.psk("tenantA")
			auth := func(hc *http.Client, server int, password string) (int, int) {
				api.hc, api.url = hc, servers[server]
				st, r := api.post("IDInfo", map[string]any{"mode": "auth", "keyid": keyID, "key": password})
				return st, code(r)
			}
			guesser, device := from("127.0.0.1"), from("127.0.0.2")
			for i := range 10 {
				if st, c := auth(guesser, i%2, fmt.Sprint("guess-", i)); st != 403 || c != 1201 {
					t.Fatalf("guess %d: %d/%d, want 403/1201", i+1, st, c)
				}
			}
			for s := range servers {
				if st, c := auth(guesser, s, "guess-11"); st != 403 || c != 1202 {
					t.Fatalf("after 10 guesses split over two servers, server %d must refuse the address (403/1202), got %d/%d", s, st, c)
				}
				if st, c := auth(guesser, s, key); c != 1202 {
					t.Fatalf("a locked address is refused even with the right password: %d/%d", st, c)
				}
				if st, c := auth(device, s, key); st != 200 {
					t.Fatalf("the device, from its own address, must keep working on server %d: %d/%d", s, st, c)
				}
			}
			// The ceiling: 100 failures from many addresses.
			for n := 3; n <= 11; n++ {
				hc := from(fmt.Sprintf("127.0.0.%d", n))
				for i := range 10 {
					auth(hc, i%2, "guess")
				}
			}
			for s := range servers {
				if st, c := auth(device, s, key); st != 403 || c != 1202 {
					t.Fatalf("after 100 failures from 10 addresses the keyid is locked for everyone, on server %d: %d/%d", s, st, c)
				}
			}
			t.Logf("FIGURE brute force over HTTP, 2 clmserver processes on %s: 10 guesses per keyid and address in all (5 on each), the device from another address unaffected; 100 from 10 addresses lock the keyid", db.name)
		})
	}
}
