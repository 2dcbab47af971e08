package main

// The attacks of the security review (issue #11), repeated over HTTP
// against the server on SQLite, MariaDB and PostgreSQL: an attacker holds
// the license key (every v10 client does) and one tenant's PSK.

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
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
		url, license := startServer(t, c)
		fn(t, &attacker{t: t, url: url, license: license})
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
			url, license := startServer(t, c)
			fn(t, &attacker{t: t, url: url, license: license})
		})
	}
}

// attacker speaks the protocol with the license, as the attacker does.
type attacker struct {
	t       *testing.T
	url     string
	license string
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
	resp, err := http.DefaultClient.Do(req)
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
