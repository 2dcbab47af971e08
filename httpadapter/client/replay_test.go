package client_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/credlife/clm/backends/sqlitestore"
	"github.com/credlife/clm/ca"
	"github.com/credlife/clm/httpadapter"
	"github.com/credlife/clm/httpadapter/client"
	"github.com/credlife/clm/lifecycle"
	"github.com/credlife/clm/lifecycle/driver"
)

// lossyTransport delivers every request but loses the answer of the first
// one whose body contains marker: the server commits, the client sees an
// error, as when a connection drops after the commit.
type lossyTransport struct {
	marker string
	lost   atomic.Bool
}

func (l *lossyTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	var body []byte
	if r.Body != nil {
		body, _ = io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
	}
	resp, err := http.DefaultTransport.RoundTrip(r)
	if err == nil && bytes.Contains(body, []byte(l.marker)) && l.lost.CompareAndSwap(false, true) {
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return nil, errors.New("connection reset after the commit")
	}
	return resp, err
}

// TestRetryAfterLostAnswer: a device whose answer was lost retries, and
// gets the certificate (or key) the server committed, not a second one.
func TestRetryAfterLostAnswer(t *testing.T) {
	ctx := context.Background()
	st, err := sqlitestore.Open(ctx, filepath.Join(t.TempDir(), "clm.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	keys, _ := lifecycle.NewStaticKeys(1, map[uint32][]byte{1: bytes.Repeat([]byte{3}, 32)})
	ca1, _ := ca.Open(ctx, st, keys, nil)
	m, _ := lifecycle.New(st, &lifecycle.Options{Keys: keys, CAs: []lifecycle.CA{ca1}})
	srv := httptest.NewServer(httpadapter.New(m, &httpadapter.Options{License: license}))
	defer srv.Close()
	plain := client.New(srv.URL, license, nil)
	psk, _ := plain.IssuePSK(ctx, lifecycle.IssuePSKRequest{Tenant: "t", Alias: "a"})
	creds := lifecycle.PSKCredentials{KeyID: psk.KeyID, Password: psk.Password}
	first, err := plain.CreateKey(ctx, lifecycle.CreateKeyRequest{PSK: creds, Device: lifecycle.DeviceRequest{Name: "d"}, Alias: "k", KeyType: "AES", KeyPath: "/k", Path: "/first"})
	if err != nil {
		t.Fatal(err)
	}
	dev := lifecycle.DeviceRequest{ID: first.Device.Device.ID, Name: "d", Key: first.Device.Key}
	count := func() int {
		all, _ := st.ListCredentials(ctx, driver.CredentialQuery{Tenant: "t", Limit: 1000})
		return len(all)
	}

	lossy := &lossyTransport{marker: "/etc/cert.pem"}
	c := client.New(srv.URL, license, &client.Options{HTTPClient: &http.Client{Transport: lossy}})
	req := lifecycle.IssueCertificateRequest{PSK: creds, Device: dev, CA: "ca1", Subject: "/CN=retry", KeyPath: "/k", Path: "/etc/cert.pem", CAPath: "/ca"}
	before := count()
	if _, err := c.IssueCertificate(ctx, req); err == nil || !lossy.lost.Load() {
		t.Fatal("the first answer must be lost")
	}
	got, err := c.IssueCertificate(ctx, req)
	if err != nil {
		t.Fatalf("the retry: %v", err)
	}
	if n := count(); n != before+1 {
		t.Fatalf("a retry after a lost answer must not make a second certificate: %d new", n-before)
	}
	again, _ := c.IssueCertificate(ctx, req)
	if again.Certificate.KeyNumber != got.Certificate.KeyNumber || again.PrivateKey == "" {
		t.Fatal("the retry answers the committed certificate, with its key")
	}

	lossyKey := &lossyTransport{marker: "/etc/aes.key"}
	ck := client.New(srv.URL, license, &client.Options{HTTPClient: &http.Client{Transport: lossyKey}})
	kreq := lifecycle.CreateKeyRequest{PSK: creds, Device: dev, Alias: "k2", KeyType: "TWINE", KeyLength: 80, KeyPath: "/k", Path: "/etc/aes.key"}
	before = count()
	ck.CreateKey(ctx, kreq)
	k, err := ck.CreateKey(ctx, kreq)
	if err != nil || count() != before+1 {
		t.Fatalf("a retried key creation must not make a second key: %v, %d new", err, count()-before)
	}
	stored, _ := m.GetKey(ctx, lifecycle.GetKeyRequest{PSK: creds, Device: dev, KeyNumber: k.KeyNumber, Path: "/etc/aes.key"})
	if !bytes.Equal(stored.Key, k.Key) {
		t.Fatal("the retry answers the committed key")
	}
	// Another path is another credential.
	other := req
	other.Path = "/etc/cert2.pem"
	if o, _ := plain.IssueCertificate(ctx, other); o.Certificate.KeyNumber == got.Certificate.KeyNumber {
		t.Fatal("a request for another path is not a retry")
	}
	t.Logf("FIGURE lost answers: 2 commits whose answers were lost, retried: 0 second credentials")
}
