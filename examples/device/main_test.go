package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/pem"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/credlife/clm/backends/sqlitestore"
	"github.com/credlife/clm/ca"
	"github.com/credlife/clm/httpadapter"
	"github.com/credlife/clm/httpadapter/est"
	"github.com/credlife/clm/lifecycle"
)

// newEngine is a server's engine on a fresh SQLite file with one CA,
// certificates valid for 60 days, on clock (the real one when nil).
func newEngine(t *testing.T, clock func() time.Time) *lifecycle.Engine {
	t.Helper()
	ctx := context.Background()
	st, err := sqlitestore.Open(ctx, filepath.Join(t.TempDir(), "clm.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	keys, _ := lifecycle.NewStaticKeys(1, map[uint32][]byte{1: bytes.Repeat([]byte{5}, 32)})
	ca1, err := ca.Open(ctx, st, keys, nil)
	if err != nil {
		t.Fatal(err)
	}
	m, err := lifecycle.New(st, &lifecycle.Options{Keys: keys, CAs: []lifecycle.CA{ca1}, CertValidity: 60 * 24 * time.Hour, Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestAgent runs the agent against a real server on loopback: enrolment,
// then a run with nothing to do, then renewal and rotation as time passes.
func TestAgent(t *testing.T) {
	ctx := context.Background()
	var mu = struct{ now time.Time }{time.Now()}
	clock := func() time.Time { return mu.now }
	m := newEngine(t, clock)
	srv := httptest.NewServer(httpadapter.New(m, &httpadapter.Options{License: "lic"}))
	defer srv.Close()
	psk, _ := m.IssuePSK(ctx, lifecycle.IssuePSKRequest{Tenant: "t", Alias: "agents"})
	dir := t.TempDir()
	cfg := config{server: srv.URL, license: "lic", keyID: psk.KeyID, psk: psk.Password.Reveal(), name: "edge-7", dir: dir,
		renewBefore: 30 * 24 * time.Hour, rotateAfter: 90 * 24 * time.Hour}
	step := func(want ...string) {
		t.Helper()
		var out bytes.Buffer
		if err := run(ctx, cfg, &out, clock); err != nil {
			t.Fatalf("run: %v\n%s", err, out.String())
		}
		for _, w := range want {
			if !strings.Contains(out.String(), w) {
				t.Fatalf("want %q in:\n%s", w, out.String())
			}
		}
	}
	step("enrolled device", "created key")
	if fi, err := os.Stat(filepath.Join(dir, "state.json")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatal("the state (with the device key) is kept with mode 0600")
	}
	step("certificate valid until", "is current")
	mu.now = mu.now.Add(40 * 24 * time.Hour) // within 30 days of expiry
	step("renewed the certificate")
	mu.now = mu.now.Add(55 * 24 * time.Hour) // the key is 95 days old; the certificate due again
	step("renewed the certificate", "rotated the key")
}

// TestAgentWithCSR: the agent makes its own key, enrols and renews with
// CSRs (a new key each time, never sent), and checks its certificate over
// OCSP at the URL the certificate names; after a revocation the check
// fails.
func TestAgentWithCSR(t *testing.T) {
	ctx := context.Background()
	st, err := sqlitestore.Open(ctx, filepath.Join(t.TempDir(), "clm.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	keys, _ := lifecycle.NewStaticKeys(1, map[uint32][]byte{1: bytes.Repeat([]byte{5}, 32)})
	var mu = struct{ now time.Time }{time.Now()}
	clock := func() time.Time { return mu.now }
	ca1, err := ca.Open(ctx, st, keys, nil)
	if err != nil {
		t.Fatal(err)
	}
	var base string
	urls := func(ca string) lifecycle.IssuerURLs { return httpadapter.IssuerURLs(base, "")(ca) }
	m, err := lifecycle.New(st, &lifecycle.Options{Keys: keys, CAs: []lifecycle.CA{ca1}, CertValidity: 60 * 24 * time.Hour, Now: clock, URLs: urls})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(httpadapter.New(m, &httpadapter.Options{License: "lic"}))
	defer srv.Close()
	base = srv.URL
	psk, _ := m.IssuePSK(ctx, lifecycle.IssuePSKRequest{Tenant: "t", Alias: "agents"})
	dir := t.TempDir()
	cfg := config{server: srv.URL, license: "lic", keyID: psk.KeyID, psk: psk.Password.Reveal(), name: "edge-8", dir: dir,
		renewBefore: 30 * 24 * time.Hour, rotateAfter: 90 * 24 * time.Hour, csr: true, ocsp: true}
	step := func(wantErr bool, want ...string) {
		t.Helper()
		var out bytes.Buffer
		if err := run(ctx, cfg, &out, clock); (err != nil) != wantErr {
			t.Fatalf("run: %v (want an error: %v)\n%s", err, wantErr, out.String())
		}
		for _, w := range want {
			if !strings.Contains(out.String(), w) {
				t.Fatalf("want %q in:\n%s", w, out.String())
			}
		}
	}
	keyOf := func() string {
		b, err := os.ReadFile(filepath.Join(dir, "client.key"))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	certKeyMatches := func() {
		t.Helper()
		if _, err := tls.LoadX509KeyPair(filepath.Join(dir, "client.pem"), filepath.Join(dir, "client.key")); err != nil {
			t.Fatalf("the certificate is not for the device's key: %v", err)
		}
	}
	step(false, "enrolled device", "OCSP: certificate good")
	certKeyMatches()
	first := keyOf()
	mu.now = mu.now.Add(40 * 24 * time.Hour)
	step(false, "OCSP: certificate good", "renewed the certificate")
	certKeyMatches()
	if keyOf() == first {
		t.Fatal("a renewal with a CSR makes a new key")
	}
	if _, err := os.Stat(filepath.Join(dir, "client.key.new")); err == nil {
		t.Fatal("the new key is moved into place")
	}
	step(false, "OCSP: certificate good", "certificate valid until")

	// Revoked by the operator (through the engine): the agent sees it.
	stt, err := load(dir)
	if err != nil {
		t.Fatal(err)
	}
	_, err = m.RevokeCertificate(ctx, lifecycle.RevokeCertificateRequest{PSK: lifecycle.PSKCredentials{KeyID: psk.KeyID, Password: psk.Password},
		Device: lifecycle.DeviceRequest{ID: stt.DeviceID, Key: lifecycle.Secret(stt.DeviceKey)}, Ref: lifecycle.CertificateRef{KeyNumber: stt.CertKeyNumber}, Reason: 1})
	if err != nil {
		t.Fatal(err)
	}
	step(true, "OCSP: certificate revoked", "reason 1")
}

// TestAgentOverEST: the agent fetches the CA chain, enrols with its own
// key and PSK, and renews before expiry with its certificate over mutual
// TLS, against a real EST server on loopback.
func TestAgentOverEST(t *testing.T) {
	ctx := context.Background()
	// The agent's clock moves; the server's is the real one (its TLS
	// listener and the certificate's validity stay current).
	var mu = struct{ now time.Time }{time.Now()}
	clock := func() time.Time { return mu.now }
	m := newEngine(t, nil)
	srv := httptest.NewUnstartedServer(est.New(m, nil))
	srv.TLS = &tls.Config{ClientAuth: tls.RequestClientCert}
	srv.StartTLS()
	defer srv.Close()
	dir := t.TempDir()
	trust := filepath.Join(t.TempDir(), "server.pem")
	if err := os.WriteFile(trust, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o644); err != nil {
		t.Fatal(err)
	}
	psk, _ := m.IssuePSK(ctx, lifecycle.IssuePSKRequest{Tenant: "t", Alias: "est-agents"})
	cfg := config{server: srv.URL, keyID: psk.KeyID, psk: psk.Password.Reveal(), name: "edge-est", dir: dir, caFile: trust,
		renewBefore: 30 * 24 * time.Hour, est: true}
	step := func(want string) {
		t.Helper()
		var out bytes.Buffer
		if err := run(ctx, cfg, &out, clock); err != nil {
			t.Fatalf("run: %v\n%s", err, out.String())
		}
		if !strings.Contains(out.String(), want) {
			t.Fatalf("want %q in:\n%s", want, out.String())
		}
	}
	step("enrolled over EST")
	if _, err := tls.LoadX509KeyPair(filepath.Join(dir, "client.pem"), filepath.Join(dir, "client.key")); err != nil {
		t.Fatalf("the certificate is not for the device's key: %v", err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "ca.pem")); err != nil || !bytes.Contains(b, []byte("CERTIFICATE")) {
		t.Fatal("the CA chain from cacerts is kept")
	}
	step("certificate valid until")
	mu.now = mu.now.Add(40 * 24 * time.Hour)
	step("renewed over EST")
	if _, err := tls.LoadX509KeyPair(filepath.Join(dir, "client.pem"), filepath.Join(dir, "client.key")); err != nil {
		t.Fatalf("the renewed certificate is not for the new key: %v", err)
	}
	devs, err := m.ListDevices(ctx, lifecycle.ListDevicesRequest{Tenant: "t", Counts: true})
	if err != nil || len(devs.Devices) != 1 || devs.Devices[0].Name != "edge-est" || devs.Devices[0].ValidCredentials != 1 {
		t.Fatalf("one device, edge-est, holding one valid certificate: %+v %v", devs, err)
	}
}
