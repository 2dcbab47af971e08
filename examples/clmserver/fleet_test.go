package main

import (
	"bytes"
	"crypto/x509"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/credlife/clm/lifecycle"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/ocsp"
)

const testAdminToken = "the-admin-token-0123456789"

// adminCall sends a request to the admin API with the token and decodes
// the JSON answer.
func (c *attacker) adminCall(method, path, token string, body any) (int, map[string]any) {
	c.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, c.url+"/admin/v1/"+path, rd)
	require.NoError(c.t, err)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return c.do(req)
}

func adminConfig(t *testing.T) config {
	f := filepath.Join(t.TempDir(), "admin.token")
	require.NoError(t, os.WriteFile(f, []byte(testAdminToken+"\n"), 0o600))
	return config{adminTokenFile: f}
}

// TestDecommissionOverHTTP: on each store, a device with certificates and
// keys is decommissioned through the admin API: its certificates are on
// the CRL and revoked in OCSP, its keys answer 1501, its requests are
// refused; a second call changes nothing. A wrong token changes nothing.
func TestDecommissionOverHTTP(t *testing.T) {
	onEachStore(t, adminConfig(t), func(t *testing.T, api *attacker) {
		keyid, key := api.psk("fleet")
		st, r := api.post("CredInfo", map[string]any{"mode": "create", "keyid": keyid, "key": key, "devicename": "stolen", "certmode": "client", "catype": "ca1",
			"clientsubject": "/CN=stolen", "keyfilepath": "/k", "cafilepath": "/ca", "clientfilepath": "/c1"})
		require.Equal(t, 201, st, "%v", r)
		dev := map[string]any{"keyid": keyid, "key": key, "deviceid": r["deviceid"], "devicekey": r["devicekey"], "devicename": "stolen"}
		with := func(m map[string]any) map[string]any {
			out := map[string]any{}
			for k, v := range dev {
				out[k] = v
			}
			for k, v := range m {
				out[k] = v
			}
			return out
		}
		cert1 := pemCerts(t, r["clientcert"].(string))[0]
		issuer := pemCerts(t, r["cacert"].(string))[0]
		st, r = api.post("CredInfo", with(map[string]any{"mode": "create", "certmode": "client", "catype": "ca1", "clientsubject": "/CN=stolen-2",
			"keyfilepath": "/k", "cafilepath": "/ca", "clientfilepath": "/c2"}))
		require.Equal(t, 201, st, "%v", r)
		cert2 := pemCerts(t, r["clientcert"].(string))[0]
		st, r = api.post("KeyInfo", with(map[string]any{"mode": "create", "alias": "k", "keytype": "AES", "keyfilepath": "/k", "commonkeyfilepath": "/aes"}))
		require.Equal(t, 201, st, "%v", r)
		keyNumber := r["keynumber"]
		deviceID := dev["deviceid"].(string)

		path := "devices/fleet/" + url.PathEscape(deviceID) + "/decommission"
		for _, token := range []string{"", "the-admin-token-0123456780"} {
			st, _ = api.adminCall("POST", path, token, nil)
			assert.Equal(t, 401, st, "token %q", token)
		}
		st, r = api.post("KeyInfo", with(map[string]any{"mode": "get", "keynumber": keyNumber, "filepath": "/aes"}))
		require.Equal(t, 200, st, "a wrong token changed nothing: %v", r)

		st, r = api.adminCall("POST", path, testAdminToken, map[string]any{"reason": "keyCompromise"})
		require.Equal(t, 200, st, "%v", r)
		assert.Len(t, r["revoked"], 2)
		assert.Len(t, r["keys_deleted"], 1)
		assert.Equal(t, true, r["changed"])

		_, der := api.get("CRL?catype=ca1")
		crl, err := x509.ParseRevocationList(der)
		require.NoError(t, err)
		listed := map[string]bool{}
		for _, e := range crl.RevokedCertificateEntries {
			listed[e.SerialNumber.String()] = e.ReasonCode == ocsp.KeyCompromise
		}
		assert.True(t, listed[cert1.SerialNumber.String()] && listed[cert2.SerialNumber.String()], "both on the CRL with keyCompromise")
		for _, c := range []*x509.Certificate{cert1, cert2} {
			req, err := ocsp.CreateRequest(c, issuer, nil)
			require.NoError(t, err)
			resp, err := api.hc.Post(api.url+"/SWCLM/v10/OCSP/ca1", "application/ocsp-request", bytes.NewReader(req))
			require.NoError(t, err)
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			o, err := ocsp.ParseResponseForCert(body, c, issuer)
			require.NoError(t, err)
			assert.Equal(t, ocsp.Revoked, o.Status)
		}
		// The key is gone for any device of the tenant; the device is refused.
		st, r = api.post("CredInfo", map[string]any{"mode": "create", "keyid": keyid, "key": key, "devicename": "other", "certmode": "caonly", "catype": "CA",
			"keyfilepath": "/k", "cafilepath": "/ca"})
		require.Equal(t, 201, st, "%v", r)
		st, r = api.post("KeyInfo", map[string]any{"mode": "get", "keyid": keyid, "key": key, "deviceid": r["deviceid"], "devicekey": r["devicekey"], "devicename": "other",
			"keynumber": keyNumber, "filepath": "/aes"})
		assert.Equal(t, 404, st)
		assert.Equal(t, 1501, code(r), "the decommissioned device's key answers 1501")
		st, r = api.post("KeyInfo", with(map[string]any{"mode": "create", "alias": "again", "keytype": "AES", "keyfilepath": "/k", "commonkeyfilepath": "/x"}))
		assert.Equal(t, 403, st)
		assert.Equal(t, 1704, code(r), "its requests are refused")

		// Again: nothing changes.
		st, r = api.adminCall("POST", path, testAdminToken, nil)
		require.Equal(t, 200, st, "%v", r)
		assert.Equal(t, false, r["changed"])
		_, der2 := api.get("CRL?catype=ca1")
		crl2, err := x509.ParseRevocationList(der2)
		require.NoError(t, err)
		assert.Equal(t, crl.Number, crl2.Number, "the CRL did not change")

		st, r = api.adminCall("POST", "devices/fleet/nope/decommission", testAdminToken, nil)
		assert.Equal(t, 404, st)
		assert.Equal(t, 1706, int(r["code"].(float64)))
	})
}

// TestInventoryOverHTTP: GET /admin/v1/credentials?tenant=T&expiring_before=
// returns exactly the tenant's credentials expiring before that time, and
// nothing of another tenant's.
func TestInventoryOverHTTP(t *testing.T) {
	onEachStore(t, adminConfig(t), func(t *testing.T, api *attacker) {
		issue := func(tenant, keyid, key, name string) *x509.Certificate {
			st, r := api.post("CredInfo", map[string]any{"mode": "create", "keyid": keyid, "key": key, "devicename": name, "certmode": "client", "catype": "ca1",
				"clientsubject": "/CN=" + name, "keyfilepath": "/k", "cafilepath": "/ca", "clientfilepath": "/c"})
			require.Equal(t, 201, st, "%v", r)
			return pemCerts(t, r["clientcert"].(string))[0]
		}
		k1, p1 := api.psk("inv1")
		k2, p2 := api.psk("inv2")
		early := issue("inv1", k1, p1, "a")
		foreign := issue("inv2", k2, p2, "x") // another tenant's, expiring in the window
		time.Sleep(1100 * time.Millisecond)   // validities end on whole seconds
		late := issue("inv1", k1, p1, "b")
		require.True(t, late.NotAfter.After(early.NotAfter))
		require.False(t, foreign.NotAfter.After(early.NotAfter.Add(time.Second)))

		list := func(query string) []string {
			t.Helper()
			st, r := api.adminCall("GET", "credentials?"+query, testAdminToken, nil)
			require.Equal(t, 200, st, "%v", r)
			var serials []string
			for _, c := range r["credentials"].([]any) {
				m := c.(map[string]any)
				assert.Equal(t, "inv1", m["tenant"])
				serials = append(serials, m["serial"].(string))
			}
			return serials
		}
		serial := func(c *x509.Certificate) string { return lifecycle.FormatSerial(c.SerialNumber) }
		cut := early.NotAfter.Add(500 * time.Millisecond).UTC().Format(time.RFC3339Nano)
		assert.Equal(t, []string{serial(early)}, list("tenant=inv1&expiring_before="+url.QueryEscape(cut)))
		assert.Equal(t, []string{serial(late)}, list("tenant=inv1&expiring_after="+url.QueryEscape(cut)))
		assert.Equal(t, []string{serial(early), serial(late)}, list("tenant=inv1&kind=certificate&state=valid"))
		st, r := api.adminCall("GET", "credentials?tenant=inv1&expiring_before=tomorrow", testAdminToken, nil)
		assert.Equal(t, 400, st, "%v", r)
		st, r = api.adminCall("GET", "credentials", testAdminToken, nil)
		assert.Equal(t, 400, st, "%v", r)
		assert.Equal(t, 1102, int(r["code"].(float64)))
	})
}
