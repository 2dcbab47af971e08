package est_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/credlife/clm/backends/sqlitestore"
	"github.com/credlife/clm/ca"
	"github.com/credlife/clm/httpadapter/est"
	"github.com/credlife/clm/lifecycle"
	"github.com/credlife/clm/lifecycle/driver"
)

type server struct {
	url   string
	pool  *x509.CertPool
	m     *lifecycle.Engine
	store driver.Store
	psk   lifecycle.PSKCredentials
}

func newServer(t *testing.T) *server {
	t.Helper()
	ctx := context.Background()
	st, err := sqlitestore.Open(ctx, filepath.Join(t.TempDir(), "clm.db"), nil)
	require.NoError(t, err)
	t.Cleanup(func() { st.Close() })
	keys, _ := lifecycle.NewStaticKeys(1, map[uint32][]byte{1: bytes.Repeat([]byte{7}, 32)})
	root, err := ca.Open(ctx, st, keys, &ca.Options{Name: "root", Root: true})
	require.NoError(t, err)
	ca1, err := ca.Open(ctx, st, keys, &ca.Options{Name: "ca1", Issuer: root})
	require.NoError(t, err)
	ca2, err := ca.Open(ctx, st, keys, &ca.Options{Name: "ca2"})
	require.NoError(t, err)
	m, err := lifecycle.New(st, &lifecycle.Options{Keys: keys, CAs: []lifecycle.CA{ca1, ca2}})
	require.NoError(t, err)
	srv := httptest.NewUnstartedServer(est.New(m, nil))
	srv.TLS = &tls.Config{ClientAuth: tls.RequestClientCert}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	p, err := m.IssuePSK(ctx, lifecycle.IssuePSKRequest{Tenant: "t", Alias: "est"})
	require.NoError(t, err)
	return &server{url: srv.URL, pool: pool, m: m, store: st, psk: lifecycle.PSKCredentials{KeyID: p.KeyID, Password: p.Password}}
}

// httpClient trusts the server and presents cert, when given.
func (s *server) httpClient(cert *tls.Certificate) *http.Client {
	cfg := &tls.Config{RootCAs: s.pool}
	if cert != nil {
		cfg.Certificates = []tls.Certificate{*cert}
	}
	return &http.Client{Transport: &http.Transport{TLSClientConfig: cfg}}
}

func csrFor(t *testing.T, cn string) (*ecdsa.PrivateKey, []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: cn}}, key)
	require.NoError(t, err)
	return key, der
}

func statusOf(err error) int {
	var e *est.Error
	if errors.As(err, &e) {
		return e.Status
	}
	return 0
}

func TestClientEnrollReenrollServerKeyGen(t *testing.T) {
	ctx := context.Background()
	s := newServer(t)
	c := est.NewClient(s.url, "", s.httpClient(nil))

	chain, err := c.CACerts(ctx)
	require.NoError(t, err)
	require.Len(t, chain, 2, "the issuing intermediate and its root")

	key, csr := csrFor(t, "gw-1")
	cert, err := c.Enroll(ctx, csr, &s.psk)
	require.NoError(t, err)
	assert.True(t, key.PublicKey.Equal(cert.PublicKey))
	roots, inters := x509.NewCertPool(), x509.NewCertPool()
	roots.AddCert(chain[1])
	inters.AddCert(chain[0])
	_, err = cert.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inters, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
	require.NoError(t, err)

	// The same name again with the PSK: refused (403), nothing issued.
	_, csr2 := csrFor(t, "gw-1")
	_, err = c.Enroll(ctx, csr2, &s.psk)
	assert.Equal(t, http.StatusForbidden, statusOf(err), "%v", err)
	wrong := lifecycle.PSKCredentials{KeyID: s.psk.KeyID, Password: "wrong"}
	_, err = c.Enroll(ctx, csr2, &wrong)
	assert.Equal(t, http.StatusUnauthorized, statusOf(err))

	// Renewal with the certificate over mTLS.
	pair := tls.Certificate{Certificate: [][]byte{cert.Raw}, PrivateKey: key}
	mtls := est.NewClient(s.url, "", s.httpClient(&pair))
	key2, csr3 := csrFor(t, "gw-1")
	renewed, err := mtls.Reenroll(ctx, csr3)
	require.NoError(t, err)
	assert.True(t, key2.PublicKey.Equal(renewed.PublicKey))
	_, err = mtls.Reenroll(ctx, csr3)
	assert.Equal(t, http.StatusUnauthorized, statusOf(err), "the superseded certificate no longer authenticates")
	rec, err := s.store.GetCredentialBySerial(ctx, "ca1", lifecycle.FormatSerial(cert.SerialNumber))
	require.NoError(t, err)
	assert.Equal(t, driver.StateSuperseded, rec.State)

	// A further certificate for the same device, enrolled with the new one.
	pair2 := tls.Certificate{Certificate: [][]byte{renewed.Raw}, PrivateKey: key2}
	_, csr4 := csrFor(t, "gw-1-extra")
	extra, err := est.NewClient(s.url, "", s.httpClient(&pair2)).Enroll(ctx, csr4, nil)
	require.NoError(t, err)
	bs, err := s.store.BindingsOf(ctx, mustRecord(t, s, extra).KeyNumber)
	require.NoError(t, err)
	bs0, err := s.store.BindingsOf(ctx, mustRecord(t, s, renewed).KeyNumber)
	require.NoError(t, err)
	require.Len(t, bs, 1)
	assert.Equal(t, bs0[0].DeviceID, bs[0].DeviceID, "enrolled for the certificate's device")
	assert.Equal(t, "est:ca1", bs[0].Path)

	// serverkeygen: the key comes back.
	_, csr5 := csrFor(t, "gw-2")
	skCert, skKey, err := c.ServerKeyGen(ctx, csr5, &s.psk)
	require.NoError(t, err)
	assert.True(t, skCert.PublicKey.(*ecdsa.PublicKey).Equal(skKey.(*ecdsa.PrivateKey).Public()))

	// Another label names another CA; an unknown one is 404.
	c2, err := est.NewClient(s.url, "ca2", s.httpClient(nil)).CACerts(ctx)
	require.NoError(t, err)
	require.Len(t, c2, 1)
	assert.Equal(t, "clm ca2 root CA", c2[0].Subject.CommonName)
	_, err = est.NewClient(s.url, "nope", s.httpClient(nil)).CACerts(ctx)
	assert.Equal(t, http.StatusNotFound, statusOf(err))
}

func mustRecord(t *testing.T, s *server, c *x509.Certificate) *driver.CredentialRecord {
	t.Helper()
	r, err := s.store.GetCredentialBySerial(context.Background(), "ca1", lifecycle.FormatSerial(c.SerialNumber))
	require.NoError(t, err)
	return r
}
