package httpadapter_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/credlife/clm/httpadapter"
	"github.com/credlife/clm/lifecycle"
)

// TestAuthenticateHook: an integrator replaces the license by a bearer
// token, or narrows what the license may do.
func TestAuthenticateHook(t *testing.T) {
	s := newServer(t, nil)
	bearer := func(r *http.Request, license httpadapter.Access) httpadapter.Access {
		switch r.Header.Get("X-Token") {
		case "admin-token":
			return httpadapter.AccessAdmin
		case "device-token":
			return httpadapter.AccessDevice
		}
		return httpadapter.AccessNone // the license alone no longer opens anything
	}
	srv := httptest.NewServer(httpadapter.New(s.m, &httpadapter.Options{License: license, Authenticate: bearer}))
	defer srv.Close()
	post := func(token string, withLicense bool) int {
		req, _ := http.NewRequest("POST", srv.URL+idinfo, strings.NewReader(`{"mode":"create","tenantid":"t","alias":"a"}`))
		if token != "" {
			req.Header.Set("X-Token", token)
		}
		if withLicense {
			req.SetBasicAuth(httpadapter.LicenseUser, license)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, tc := range []struct {
		token   string
		license bool
		want    int
	}{
		{"admin-token", false, 201}, // the token replaces the license
		{"device-token", true, 401}, // device access cannot issue PSKs
		{"", true, 401},             // the license alone is no longer enough
		{"wrong", false, 401},
	} {
		if got := post(tc.token, tc.license); got != tc.want {
			t.Errorf("token %q, license %v: %d, want %d", tc.token, tc.license, got, tc.want)
		}
	}
	// Requests the hook lets in without the license are not license
	// failures: past the limit (100 per address) they are still served.
	for i := range 110 {
		if got := post("admin-token", false); got != 201 {
			t.Fatalf("request %d with the token alone: %d, want 201", i+1, got)
		}
	}
}

// TestClientAddrObserveRequestID: behind a proxy the client address comes
// from the hook, into the logs and the observation; each request is
// observed once with its endpoint, mode, status and code; a request id is
// taken from X-Request-Id, or made, and answered.
func TestClientAddrObserveRequestID(t *testing.T) {
	s := newServer(t, nil)
	var (
		mu  sync.Mutex
		obs []httpadapter.Observation
	)
	h := httpadapter.New(s.m, &httpadapter.Options{License: license, Logger: s.logger(),
		ClientAddr: func(r *http.Request) string { return r.Header.Get("X-Forwarded-For") },
		Observe: func(o httpadapter.Observation) {
			mu.Lock()
			obs = append(obs, o)
			mu.Unlock()
		}})
	srv := httptest.NewServer(h)
	defer srv.Close()
	req, _ := http.NewRequest("POST", srv.URL+idinfo, strings.NewReader(`{"mode":"auth","keyid":"1","key":"guess"}`))
	req.SetBasicAuth(httpadapter.LicenseUser, license)
	req.Header.Set("X-Forwarded-For", "203.0.113.9")
	req.Header.Set("X-Request-Id", "req-42")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.Header.Get("X-Request-Id") != "req-42" {
		t.Fatalf("the request id must be answered: %q", resp.Header.Get("X-Request-Id"))
	}
	resp, err = http.Get(srv.URL + "/SWCLM/v10/SystemStatus")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if id := resp.Header.Get("X-Request-Id"); len(id) != 16 {
		t.Fatalf("a request without an id gets one: %q", id)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(obs) != 2 {
		t.Fatalf("each request is observed once: %d", len(obs))
	}
	o := obs[0]
	if o.Endpoint != "IDInfo" || o.Mode != "auth" || o.Status != 404 || o.Code != lifecycle.CodePSKNotFound || o.Client != "203.0.113.9" || o.RequestID != "req-42" || o.Duration <= 0 {
		t.Fatalf("observation: %+v", o)
	}
	if obs[1].Endpoint != "SystemStatus" || obs[1].Mode != "GET" || obs[1].Status != 200 {
		t.Fatalf("observation of a GET: %+v", obs[1])
	}
	logs := s.logs.String()
	for _, want := range []string{`"client":"203.0.113.9"`, `"request_id":"req-42"`} {
		if !strings.Contains(logs, want) {
			t.Fatalf("the log lacks %s", want)
		}
	}
}
