package httpadapter_test

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"io"
	"math/big"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/ocsp"

	"github.com/credlife/clm/httpadapter"
	"github.com/credlife/clm/lifecycle"
)

// csrPEM makes a P-256 key and a CSR for it with the given CN.
func csrPEM(t testing.TB, cn string) (crypto.Signer, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: cn}}, key)
	require.NoError(t, err)
	return key, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))
}

// raw sends a request without the license and returns the answer's bytes,
// checked against the OpenAPI document when the server has a check.
func (s *server) raw(method, path, contentType string, body []byte) (*http.Response, []byte) {
	s.t.Helper()
	req, err := http.NewRequest(method, s.url+path, bytes.NewReader(body))
	require.NoError(s.t, err)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(s.t, err)
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	require.NoError(s.t, err)
	if s.check != nil {
		s.check(req, body, resp, data)
	}
	return resp, data
}

func certOf(t testing.TB, s string) *x509.Certificate {
	t.Helper()
	b, _ := pem.Decode([]byte(s))
	require.NotNil(t, b, "a PEM certificate")
	c, err := x509.ParseCertificate(b.Bytes)
	require.NoError(t, err)
	return c
}

// runCSRScenario issues, fetches, renews and revokes a certificate for a
// device's own key over the wire (spec §8b), with the refusals.
func runCSRScenario(t *testing.T, s *server) {
	keyid, key := s.psk("tenant01")
	key1, csr1 := csrPEM(t, "dev-1.example.com")
	create := map[string]any{"mode": "create", "keyid": keyid, "key": key, "devicename": "gw", "certmode": "csr", "catype": "ca1",
		"csr": csr1, "keyfilepath": "/k", "cafilepath": "/ca.pem", "clientfilepath": "/dev.pem"}
	st, _, r := s.call("POST", credinfo, create)
	require.Equal(t, 201, st, "%v", r)
	assert.Nil(t, r["privatekey"], "no private key for a CSR")
	cert := certOf(t, r["clientcert"].(string))
	assert.True(t, cert.PublicKey.(*ecdsa.PublicKey).Equal(key1.Public()), "the certificate's key is the CSR's")
	assert.NotEmpty(t, r["cacert"])
	dev, devkey, kn := r["deviceid"].(string), r["devicekey"].(string), r["clientkeynumber"].(string)
	devBody := func(m map[string]any) map[string]any {
		out := map[string]any{"keyid": keyid, "key": key, "deviceid": dev, "devicename": "gw", "devicekey": devkey, "catype": "ca1"}
		for k, v := range m {
			out[k] = v
		}
		return out
	}
	before := s.hash()
	fails := []struct {
		name   string
		body   map[string]any
		status int
		code   float64
	}{
		{"no csr", map[string]any{"csr": nil}, 400, 1102},
		{"p12", map[string]any{"clientcerttype": "p12", "passphrase": "pw"}, 400, 1103},
		{"bad signature", map[string]any{"csr": strings.Replace(csr1, csr1[len(csr1)-40:len(csr1)-36], "AAAA", 1)}, 400, 1103},
		{"wildcard", map[string]any{"csr": func() string { _, c := csrPEM(t, "*.example.com"); return c }()}, 400, 1103},
		{"too long", map[string]any{"csr": strings.Repeat("A", lifecycle.MaxCSRLen+1)}, 400, 1104},
		{"unknown certmode", map[string]any{"certmode": "csr2"}, 400, 1103},
	}
	for _, f := range fails {
		body := map[string]any{}
		for k, v := range create {
			body[k] = v
		}
		body["devicename"] = "new-" + f.name // a device the refusal must not register
		for k, v := range f.body {
			if v == nil {
				delete(body, k)
			} else {
				body[k] = v
			}
		}
		st, _, r := s.call("POST", credinfo, body)
		assert.Equal(t, f.status, st, f.name)
		assert.Equal(t, f.code, toFloat(r["errorcode"]), f.name)
	}
	st, _, r = s.call("POST", credinfo, devBody(map[string]any{"mode": "get", "keynumber": kn, "certtype": "p12", "passphrase": "pw", "filepath": "/dev.pem"}))
	assert.Equal(t, 400, st)
	assert.Equal(t, 1103.0, toFloat(r["errorcode"]), "p12 of a CSR's certificate")
	st, _, r = s.call("POST", credinfo, devBody(map[string]any{"mode": "update", "keynumber": kn, "filepath": "/dev.pem", "passphrase": "pw"}))
	assert.Equal(t, 400, st)
	assert.Equal(t, 1102.0, toFloat(r["errorcode"]), "renewal without a csr")
	require.Equal(t, before, s.hash(), "a refused request changes nothing")

	st, _, r = s.call("POST", credinfo, devBody(map[string]any{"mode": "get", "keynumber": kn, "filepath": "/dev.pem"}))
	require.Equal(t, 200, st, "%v", r)
	assert.Nil(t, r["privatekey"])
	assert.Equal(t, cert.Raw, certOf(t, r["clientcert"].(string)).Raw)

	key2, csr2 := csrPEM(t, "ignored")
	st, _, r = s.call("POST", credinfo, devBody(map[string]any{"mode": "update", "keynumber": kn, "filepath": "/dev.pem", "csr": csr2}))
	require.Equal(t, 200, st, "%v", r)
	renewed := certOf(t, r["clientcert"].(string))
	assert.True(t, renewed.PublicKey.(*ecdsa.PublicKey).Equal(key2.Public()))
	assert.Equal(t, cert.RawSubject, renewed.RawSubject)
	assert.Nil(t, r["privatekey"])
	st, _, r = s.call("POST", credinfo, devBody(map[string]any{"mode": "get", "keynumber": kn, "filepath": "/dev.pem"}))
	assert.Equal(t, 403, st)
	assert.Equal(t, 1306.0, toFloat(r["errorcode"]), "the old one is superseded")
	st, _, r = s.call("POST", credinfo, devBody(map[string]any{"mode": "revoke", "certserial": lifecycle.FormatSerial(renewed.SerialNumber)}))
	require.Equal(t, 200, st, "%v", r)
}

func toFloat(v any) float64 {
	switch n := v.(type) {
	case float64:
		return n
	case interface{ Float64() (float64, error) }:
		f, _ := n.Float64()
		return f
	}
	return -1
}

func TestCSROverTheWire(t *testing.T) {
	s := newServer(t, nil)
	runCSRScenario(t, s)
}

func TestOCSPEndpoint(t *testing.T) {
	s := newServer(t, &lifecycle.Options{URLs: httpadapter.IssuerURLs("https://clm.example.com", "")})
	runOCSPScenario(t, s)
	resp, _ := s.raw("POST", "/SWCLM/v10/OCSP", "application/ocsp-request", []byte("junk"))
	assert.Equal(t, 404, resp.StatusCode, "OCSP without a CA")
	resp, _ = s.raw("PUT", "/SWCLM/v10/OCSP/ca1", "application/ocsp-request", []byte("junk"))
	assert.Equal(t, 405, resp.StatusCode)
}

// runOCSPScenario asks the OCSP endpoint, by POST and by GET, about a
// certificate before and after its revocation, and about a serial never
// issued; then the CA certificate download.
func runOCSPScenario(t *testing.T, s *server) {
	keyid, key := s.psk("tenant01")
	st, _, r := s.call("POST", credinfo, map[string]any{"mode": "create", "keyid": keyid, "key": key, "devicename": "gw", "certmode": "client", "catype": "ca1",
		"clientsubject": "/CN=gw", "keyfilepath": "/k", "cafilepath": "/ca.pem", "clientfilepath": "/c.pem"})
	require.Equal(t, 201, st)
	cert := certOf(t, r["clientcert"].(string))
	assert.Equal(t, []string{"https://clm.example.com/SWCLM/v10/OCSP/ca1"}, cert.OCSPServer)
	assert.Equal(t, []string{"https://clm.example.com/SWCLM/v10/CACert?catype=ca1"}, cert.IssuingCertificateURL)
	assert.Equal(t, []string{"https://clm.example.com/SWCLM/v10/CRL?catype=ca1"}, cert.CRLDistributionPoints)
	issuer := s.ca.Certificate()

	ask := func(c *x509.Certificate, get bool) *ocsp.Response {
		t.Helper()
		req, err := ocsp.CreateRequest(c, issuer, nil)
		require.NoError(t, err)
		var resp *http.Response
		var der []byte
		if get {
			resp, der = s.raw("GET", "/SWCLM/v10/OCSP/ca1/"+url.PathEscape(base64.StdEncoding.EncodeToString(req)), "", nil)
		} else {
			resp, der = s.raw("POST", "/SWCLM/v10/OCSP/ca1", "application/ocsp-request", req)
		}
		require.Equal(t, 200, resp.StatusCode)
		assert.Equal(t, "application/ocsp-response", resp.Header.Get("Content-Type"))
		o, err := ocsp.ParseResponseForCert(der, c, issuer)
		require.NoError(t, err)
		return o
	}
	assert.Equal(t, ocsp.Good, ask(cert, false).Status)
	assert.Equal(t, ocsp.Good, ask(cert, true).Status)
	st, _, r = s.call("POST", credinfo, map[string]any{"mode": "revoke", "keyid": keyid, "key": key, "deviceid": r["deviceid"], "devicename": "gw", "catype": "ca1",
		"keynumber": r["clientkeynumber"]})
	require.Equal(t, 200, st, "%v", r)
	o := ask(cert, false)
	assert.Equal(t, ocsp.Revoked, o.Status)
	assert.Equal(t, ocsp.Revoked, ask(cert, true).Status)
	never := *cert
	never.SerialNumber = new(big.Int).Lsh(cert.SerialNumber, 1)
	assert.Equal(t, ocsp.Unknown, ask(&never, false).Status)

	resp, der := s.raw("POST", "/SWCLM/v10/OCSP/ca1", "application/ocsp-request", []byte("junk"))
	require.Equal(t, 200, resp.StatusCode)
	assert.Equal(t, ocsp.MalformedRequestErrorResponse, der)
	resp, _ = s.raw("POST", "/SWCLM/v10/OCSP/ca9", "application/ocsp-request", []byte("junk"))
	assert.Equal(t, 404, resp.StatusCode)

	resp, der = s.raw("GET", "/SWCLM/v10/CACert?catype=ca1", "", nil)
	require.Equal(t, 200, resp.StatusCode)
	assert.Equal(t, "application/pkix-cert", resp.Header.Get("Content-Type"))
	assert.Equal(t, issuer.Raw, der)
	resp, p := s.raw("GET", "/SWCLM/v10/CACert?catype=ca1&format=pem", "", nil)
	require.Equal(t, 200, resp.StatusCode)
	assert.Equal(t, issuer.Raw, certOf(t, string(p)).Raw)
	resp, _ = s.raw("GET", "/SWCLM/v10/CACert?catype=nope", "", nil)
	assert.Equal(t, 404, resp.StatusCode)
	resp, _ = s.raw("GET", "/SWCLM/v10/CACert", "", nil)
	assert.Equal(t, 400, resp.StatusCode)
}
