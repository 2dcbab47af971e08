package admin_test

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pb33f/libopenapi"
	validator "github.com/pb33f/libopenapi-validator"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/credlife/clm/backends/sqlitestore"
	"github.com/credlife/clm/ca"
	"github.com/credlife/clm/httpadapter/admin"
	"github.com/credlife/clm/lifecycle"
)

const token = "an-admin-token-of-some-length"

type apiClient struct {
	t     *testing.T
	url   string
	m     *lifecycle.Engine
	check validator.Validator
}

func newAPI(t *testing.T) *apiClient {
	t.Helper()
	ctx := context.Background()
	st, err := sqlitestore.Open(ctx, filepath.Join(t.TempDir(), "clm.db"), nil)
	require.NoError(t, err)
	t.Cleanup(func() { st.Close() })
	keys, _ := lifecycle.NewStaticKeys(1, map[uint32][]byte{1: bytes.Repeat([]byte{4}, 32)})
	ca1, err := ca.Open(ctx, st, keys, nil)
	require.NoError(t, err)
	m, err := lifecycle.New(st, &lifecycle.Options{Keys: keys, CAs: []lifecycle.CA{ca1}})
	require.NoError(t, err)
	h := admin.New(m, &admin.Options{Token: token})
	mux := http.NewServeMux()
	mux.Handle(h.Prefix(), h)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	doc, err := libopenapi.NewDocument(admin.OpenAPI())
	require.NoError(t, err)
	v, errs := validator.NewValidator(doc)
	require.Empty(t, errs)
	ok, verrs := v.ValidateDocument()
	require.True(t, ok, "%v", verrs)
	return &apiClient{t: t, url: srv.URL, m: m, check: v}
}

// call sends a request with the token, checks the answer against the
// OpenAPI document, and returns its status and JSON (nil if not JSON).
func (c *apiClient) call(method, path string, body any) (int, map[string]any, []byte) {
	c.t.Helper()
	var raw []byte
	if body != nil {
		raw, _ = json.Marshal(body)
	}
	req, err := http.NewRequest(method, c.url+"/admin/v1/"+path, bytes.NewReader(raw))
	require.NoError(c.t, err)
	req.Header.Set("Authorization", "Bearer "+token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(c.t, err)
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	vreq := req.Clone(req.Context())
	vreq.Body = io.NopCloser(bytes.NewReader(raw))
	resp.Body = io.NopCloser(bytes.NewReader(data))
	if ok, errs := c.check.ValidateHttpResponse(vreq, resp); !ok {
		for _, e := range errs {
			c.t.Errorf("%s %s (answer %d): %s: %s", method, path, resp.StatusCode, e.Message, e.Reason)
		}
	}
	var m map[string]any
	_ = json.Unmarshal(data, &m)
	return resp.StatusCode, m, data
}

func TestTokenRequired(t *testing.T) {
	c := newAPI(t)
	for _, auth := range []string{"", "Bearer wrong-token-wrong-token", "Basic " + token, "Bearer " + token + "x"} {
		req, _ := http.NewRequest("GET", c.url+"/admin/v1/tenants", nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, 401, resp.StatusCode, auth)
		assert.Equal(t, `Bearer realm="clm-admin"`, resp.Header.Get("WWW-Authenticate"))
	}
	st, _, _ := c.call("GET", "tenants", nil)
	assert.Equal(t, 200, st)
	assert.Panics(t, func() { admin.New(c.m, &admin.Options{Token: "short"}) }, "a short token is refused")
}

func TestTokenFailuresLockTheAddress(t *testing.T) {
	c := newAPI(t)
	for range 20 {
		req, _ := http.NewRequest("GET", c.url+"/admin/v1/tenants", nil)
		req.Header.Set("Authorization", "Bearer guess-guess-guess-guess")
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
	}
	st, _, _ := c.call("GET", "tenants", nil)
	assert.Equal(t, 401, st, "after 20 wrong tokens the address is locked out, right token or not")
}

func TestAdminEndpoints(t *testing.T) {
	c := newAPI(t)
	st, r, _ := c.call("POST", "psks", map[string]any{"tenant": "acme", "alias": "gateways"})
	require.Equal(t, 201, st, "%v", r)
	keyid, password := r["keyid"].(string), r["password"].(string)
	require.NotEmpty(t, password, "the password is answered when issued")
	st, r, _ = c.call("POST", "psks", map[string]any{"tenant": "acme"})
	assert.Equal(t, 400, st, "%v", r)
	_, _, _ = c.call("POST", "psks", map[string]any{"tenant": "beta", "alias": "b"})

	st, r, _ = c.call("GET", "tenants", nil)
	require.Equal(t, 200, st)
	assert.Equal(t, []any{"acme", "beta"}, r["tenants"])
	st, r, raw := c.call("GET", "psks?tenant=acme", nil)
	require.Equal(t, 200, st)
	assert.Len(t, r["psks"], 1)
	assert.NotContains(t, string(raw), password, "a listing carries no password")

	st, r, _ = c.call("POST", "psks/"+keyid+"/disable", nil)
	require.Equal(t, 200, st)
	assert.Equal(t, "disabled", r["status"])
	creds := lifecycle.PSKCredentials{KeyID: keyid, Password: lifecycle.Secret(password)}
	_, err := c.m.AuthenticatePSK(context.Background(), creds)
	require.ErrorIs(t, err, lifecycle.CodePSKNotActive)
	st, r, _ = c.call("POST", "psks/"+keyid+"/enable", nil)
	require.Equal(t, 200, st)
	assert.Equal(t, "active", r["status"])

	// A device with a certificate and a key.
	ctx := context.Background()
	cert, err := c.m.IssueCertificate(ctx, lifecycle.IssueCertificateRequest{PSK: creds, Device: lifecycle.DeviceRequest{Name: "gw"}, Subject: "/CN=gw"})
	require.NoError(t, err)
	dev := cert.Device.Device.ID
	_, err = c.m.CreateKey(ctx, lifecycle.CreateKeyRequest{PSK: creds, Device: lifecycle.DeviceRequest{ID: dev, Key: cert.Device.Key}, Alias: "k"})
	require.NoError(t, err)

	st, r, _ = c.call("GET", "devices/acme", nil)
	require.Equal(t, 200, st)
	devices := r["devices"].([]any)
	require.Len(t, devices, 1)
	assert.Equal(t, 2.0, devices[0].(map[string]any)["valid_credentials"])
	st, r, _ = c.call("GET", "devices/acme/"+dev, nil)
	require.Equal(t, 200, st)
	assert.Equal(t, "gw", r["name"])
	st, _, _ = c.call("GET", "devices/beta/"+dev, nil)
	assert.Equal(t, 404, st, "another tenant's device does not exist")
	st, r, _ = c.call("POST", "devices/acme/"+dev+"/disable", nil)
	require.Equal(t, 200, st)
	assert.Equal(t, "disabled", r["status"])
	st, r, _ = c.call("POST", "devices/acme/"+dev+"/enable", nil)
	require.Equal(t, 200, st)
	assert.Equal(t, "active", r["status"])

	st, r, raw = c.call("GET", "credentials?tenant=acme", nil)
	require.Equal(t, 200, st)
	assert.Len(t, r["credentials"], 2)
	assert.NotContains(t, string(raw), "PRIVATE KEY")
	st, r, _ = c.call("GET", "credentials/acme/"+jsonNum(cert.Certificate.KeyNumber), nil)
	require.Equal(t, 200, st)
	b, _ := pem.Decode([]byte(r["certificate"].(string)))
	require.NotNil(t, b, "get carries the certificate in PEM")
	st, _, _ = c.call("GET", "credentials/beta/"+jsonNum(cert.Certificate.KeyNumber), nil)
	assert.Equal(t, 404, st)
	st, r, _ = c.call("POST", "credentials/acme/"+jsonNum(cert.Certificate.KeyNumber)+"/revoke", map[string]any{"reason": "bogus"})
	assert.Equal(t, 400, st, "%v", r)
	st, r, _ = c.call("POST", "credentials/acme/"+jsonNum(cert.Certificate.KeyNumber)+"/revoke", map[string]any{"reason": "affiliationChanged"})
	require.Equal(t, 200, st, "%v", r)
	assert.Equal(t, "revoked", r["state"])
	assert.Equal(t, 3.0, r["reason"])
	st, r, _ = c.call("POST", "credentials/acme/"+jsonNum(cert.Certificate.KeyNumber)+"/revoke", nil)
	assert.Equal(t, 403, st)
	assert.Equal(t, 1306.0, r["code"])
	second, err := c.m.IssueCertificate(ctx, lifecycle.IssueCertificateRequest{PSK: creds, Device: lifecycle.DeviceRequest{ID: dev, Key: cert.Device.Key}, Subject: "/CN=gw2"})
	require.NoError(t, err)
	st, r, _ = c.call("POST", "credentials/acme/serials/ca1/"+strings.ToLower(second.Certificate.Serial)+"/revoke", map[string]any{"reason": 1})
	require.Equal(t, 200, st, "%v", r)
	assert.Equal(t, second.Certificate.KeyNumber, int64(r["keynumber"].(float64)), "revoked by serial, any case")
	st, _, _ = c.call("POST", "credentials/beta/serials/ca1/"+second.Certificate.Serial+"/revoke", nil)
	assert.Equal(t, 404, st, "another tenant's serial")

	st, r, _ = c.call("GET", "cas", nil)
	require.Equal(t, 200, st)
	assert.Equal(t, "ca1", r["cas"].([]any)[0].(map[string]any)["name"])
	st, _, raw = c.call("GET", "cas/ca1/chain", nil)
	require.Equal(t, 200, st)
	b, _ = pem.Decode(raw)
	require.NotNil(t, b)
	st, _, _ = c.call("GET", "cas/ca1/crl", nil)
	assert.Equal(t, 200, st)
	st, _, _ = c.call("GET", "cas/nope/crl", nil)
	assert.Equal(t, 404, st)

	st, _, _ = c.call("DELETE", "psks/"+keyid, nil)
	assert.Equal(t, 204, st)
	st, _, _ = c.call("DELETE", "psks/"+keyid, nil)
	assert.Equal(t, 404, st)
	st, _, _ = c.call("GET", "openapi.yaml", nil)
	assert.Equal(t, 200, st)
}

func jsonNum(n int64) string { b, _ := json.Marshal(n); return string(b) }
