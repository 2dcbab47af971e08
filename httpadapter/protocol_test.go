package httpadapter_test

import (
	"bytes"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/credlife/clm/httpadapter"
	"github.com/credlife/clm/lifecycle"
)

func TestLicenseAuth(t *testing.T) {
	s := newServer(t, nil)
	body := map[string]any{"mode": "create", "tenantid": "t", "alias": "a"}
	for _, c := range []struct{ name, user, pass string }{
		{"none", "", ""},
		{"wrong license", "secureware-clm", "nope"},
		{"wrong user", "admin", license},
		{"license with a suffix", "secureware-clm", license + "x"},
	} {
		t.Run(c.name, func(t *testing.T) {
			before := s.hash()
			status, hdr, r := s.callAuth("POST", idinfo, body, c.user, c.pass)
			if status != 401 || num(r["errorcode"]) != "1201" || hdr.Get("WWW-Authenticate") != `Basic realm="SWCLM"` {
				t.Fatalf("got %d %v %q", status, r, hdr.Get("WWW-Authenticate"))
			}
			if s.hash() != before {
				t.Fatal("an unauthorised request must change nothing")
			}
		})
	}
	if status, _, r := s.callAuth("GET", "/SWCLM/v10/SystemStatus", nil, "", ""); status != 200 || num(r["errorcode"]) != "0" {
		t.Fatalf("SystemStatus needs no authentication: %d %v", status, r)
	}
}

func TestProtocolConventions(t *testing.T) {
	s := newServer(t, nil)
	t.Run("405 names the allowed methods", func(t *testing.T) {
		status, hdr, _ := s.call("DELETE", idinfo, nil)
		if status != 405 || hdr.Get("Allow") != "GET, POST" {
			t.Fatalf("%d Allow=%q", status, hdr.Get("Allow"))
		}
		status, hdr, _ = s.call("GET", keyinfo, nil)
		if status != 405 || hdr.Get("Allow") != "POST" {
			t.Fatalf("%d Allow=%q", status, hdr.Get("Allow"))
		}
	})
	t.Run("a body over 1 MiB is refused", func(t *testing.T) {
		big := `{"mode":"create","tenantid":"t","alias":"` + strings.Repeat("a", 2<<20) + `"}`
		status, _, r := s.call("POST", idinfo, big)
		if status != 413 || num(r["errorcode"]) != "1104" {
			t.Fatalf("%d %v", status, r)
		}
	})
	t.Run("unknown fields are ignored", func(t *testing.T) {
		status, _, r := s.call("POST", idinfo, map[string]any{"mode": "create", "tenantid": "t", "alias": "a", "colour": "blue", "nested": map[string]any{"x": 1}})
		if status != 201 || r["keyid"] == nil {
			t.Fatalf("%d %v", status, r)
		}
	})
	t.Run("answers are not cached", func(t *testing.T) {
		_, hdr, _ := s.call("POST", idinfo, map[string]any{"mode": "create", "tenantid": "t", "alias": "a"})
		if hdr.Get("Cache-Control") != "no-store" {
			t.Fatalf("Cache-Control %q", hdr.Get("Cache-Control"))
		}
	})
	t.Run("a JSON Content-Type is not required", func(t *testing.T) {
		req, _ := http.NewRequest("POST", s.url+idinfo, strings.NewReader(`{"mode":"create","tenantid":"t","alias":"a"}`))
		req.SetBasicAuth("secureware-clm", license)
		req.Header.Set("Content-Type", "text/plain")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 201 {
			t.Fatalf("%d", resp.StatusCode)
		}
	})
}

func TestCRLEndpoint(t *testing.T) {
	f := newFixture(t)
	get := func(q string) (*http.Response, []byte) {
		resp, err := http.Get(f.url + "/SWCLM/v10/CRL" + q)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, b
	}
	resp, der := get("?catype=ca1")
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/pkix-crl" {
		t.Fatalf("%d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	crl, err := x509.ParseRevocationList(der)
	if err != nil || crl.CheckSignatureFrom(f.ca.Certificate()) != nil {
		t.Fatalf("the CRL must parse and be signed by the CA: %v", err)
	}
	if len(crl.RevokedCertificateEntries) != 1 {
		t.Fatalf("the fixture revoked one certificate: %d entries", len(crl.RevokedCertificateEntries))
	}
	resp, p := get("?catype=ca1&format=pem")
	if b, _ := pem.Decode(p); resp.StatusCode != 200 || b == nil || b.Type != "X509 CRL" {
		t.Fatalf("format=pem must give a PEM CRL: %d", resp.StatusCode)
	}
	if resp, _ := get("?catype=ca1&format=xml"); resp.StatusCode != 400 {
		t.Fatalf("an unknown format: %d", resp.StatusCode)
	}
	if resp, _ := get(""); resp.StatusCode != 400 {
		t.Fatalf("no catype: %d", resp.StatusCode)
	}
	// A revocation shows in the next CRL fetched.
	status, _, _ := f.call("POST", credinfo, f.dev(map[string]any{"mode": "revoke", "keynumber": f.kn, "catype": "ca1"}))
	if status != 200 {
		t.Fatal(status)
	}
	_, der = get("?catype=ca1")
	crl2, _ := x509.ParseRevocationList(der)
	if len(crl2.RevokedCertificateEntries) != 2 || crl2.Number.Cmp(crl.Number) <= 0 {
		t.Fatal("a revocation must show in the next CRL, under a greater number")
	}
}

// TestMountsOnAnyMux serves the protocol under another prefix on a
// ServeMux that has other routes.
func TestMountsOnAnyMux(t *testing.T) {
	s := newServer(t, nil)
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok") })
	mux.Handle("/api/clm/", httpadapter.New(s.m, &httpadapter.Options{License: license, Prefix: "/api/clm"}))
	srv := httptest.NewServer(mux)
	defer srv.Close()
	other := &server{t: t, url: srv.URL, store: s.store}
	status, _, r := other.call("POST", "/api/clm/IDInfo", map[string]any{"mode": "create", "tenantid": "t", "alias": "a"})
	if status != 201 || r["keyid"] != "0000000001" {
		t.Fatalf("%d %v", status, r)
	}
	resp, _ := http.Get(srv.URL + "/healthz")
	if resp.StatusCode != 200 {
		t.Fatal("the mux's other routes must still work")
	}
}

// TestLogsCarryNoSecrets runs every flow and checks that the request log
// has its fields and none of the secrets that went over the wire.
func TestLogsCarryNoSecrets(t *testing.T) {
	f := newFixture(t)
	state := runGolden(t, f.server)
	logs := f.logs.String()
	for _, field := range []string{`"client":"127.0.0.1"`, `"method":"POST"`, `"path":"/SWCLM/v10/CredInfo"`, `"mode":"create"`, `"status":201`, `"errorcode":0`, `"latency":`} {
		if !strings.Contains(logs, field) {
			t.Fatalf("the request log lacks %s", field)
		}
	}
	secrets := []string{license, f.key, f.key2, f.devkey, f.ck1, state["key"], state["key2"], state["devicekey"], state["ck1"], state["ck3"]}
	if raw, err := base64.StdEncoding.DecodeString(f.ck1); err == nil {
		secrets = append(secrets, string(raw))
	}
	for _, sec := range secrets {
		if sec != "" && strings.Contains(logs, sec) {
			t.Fatal("a secret reached the request log")
		}
	}
	for _, word := range []string{"PRIVATE KEY", "pfx-pass", "renewed"} {
		if strings.Contains(logs, word) {
			t.Fatalf("%q reached the request log", word)
		}
	}
}

// TestAddressLimit: with the per-address limit on, an address that keeps
// failing is refused before the engine; the engine's per-keyid limit is
// off here so that only the address limit acts.
func TestAddressLimit(t *testing.T) {
	s := newServer(t, &lifecycle.Options{AuthFailures: -1})
	keyid, key := s.psk("t")
	srv := httptest.NewServer(httpadapter.New(s.m, &httpadapter.Options{License: license, AddressFailures: 5}))
	defer srv.Close()
	c := &server{t: t, url: srv.URL, store: s.store}
	for i := range 5 {
		if status, _, _ := c.call("POST", idinfo, map[string]any{"mode": "auth", "keyid": keyid, "key": "guess"}); status != 403 {
			t.Fatalf("attempt %d: %d", i, status)
		}
	}
	status, _, r := c.call("POST", idinfo, map[string]any{"mode": "auth", "keyid": keyid, "key": key})
	if status != 403 || num(r["errorcode"]) != "1202" {
		t.Fatalf("a locked address is refused, even with the right password: %d %v", status, r)
	}
	// Without the address limit (the default) the right password works.
	if status, _, _ := s.call("POST", idinfo, map[string]any{"mode": "auth", "keyid": keyid, "key": key}); status != 200 {
		t.Fatalf("the default handler has no address limit: %d", status)
	}
}

// TestLicenseFailureLimit: an address that keeps sending a wrong license is
// refused (401) without its license being checked, so that guessing stops
// there, while other addresses are served.
func TestLicenseFailureLimit(t *testing.T) {
	s := newServer(t, nil)
	srv := httptest.NewServer(httpadapter.New(s.m, &httpadapter.Options{License: license, LicenseFailures: 20}))
	defer srv.Close()
	c := &server{t: t, url: srv.URL, store: s.store}
	body := map[string]any{"mode": "create", "tenantid": "t", "alias": "a"}
	for i := range 20 {
		if status, _, _ := c.callAuth("POST", idinfo, body, "secureware-clm", fmt.Sprint("guess-", i)); status != 401 {
			t.Fatalf("guess %d: %d, want 401", i, status)
		}
	}
	if status, _, _ := c.call("POST", idinfo, body); status != 401 {
		t.Fatalf("after 20 wrong licenses the address is refused even with the right one: %d", status)
	}
	// Another address (127.0.0.2, also loopback) is served.
	dialer := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}}
	hc := &http.Client{Transport: &http.Transport{DialContext: dialer.DialContext}}
	j, _ := json.Marshal(body)
	req, _ := http.NewRequest("POST", srv.URL+idinfo, bytes.NewReader(j))
	req.SetBasicAuth("secureware-clm", license)
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 201 {
		t.Fatalf("another address with the license: %d, want 201", resp.StatusCode)
	}
}
