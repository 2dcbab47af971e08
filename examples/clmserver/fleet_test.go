package main

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/credlife/clm/httpadapter/client"
	"github.com/credlife/clm/internal/testdb"
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

// receiver is a loopback webhook that fails until told otherwise and
// records each event it takes, checking its signature.
type receiver struct {
	t      *testing.T
	secret []byte
	mu     sync.Mutex
	up     bool
	got    map[string]int // event id → deliveries taken
	bodies map[string]map[string]any
	failed int
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if !rc.up {
		rc.failed++
		http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
		return
	}
	mac := hmac.New(sha256.New, rc.secret)
	mac.Write(body)
	if !hmac.Equal([]byte(r.Header.Get("X-CLM-Signature")), []byte("sha256="+hex.EncodeToString(mac.Sum(nil)))) {
		rc.t.Errorf("a delivery with a wrong signature: %s", body)
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	var ev map[string]any
	if err := json.Unmarshal(body, &ev); err != nil || ev["id"] != r.Header.Get("X-CLM-Event") {
		rc.t.Errorf("a delivery that is not an event: %s", body)
	}
	id := ev["id"].(string)
	rc.got[id]++
	rc.bodies[id] = ev
	w.WriteHeader(http.StatusNoContent)
}

// TestExpiryWebhookTwoProcesses: two clmserver processes on one database
// sweep for expiring certificates and deliver to one webhook that is down
// for a while. Each certificate's warning and expiry reach it once each
// (not once per process), signed, after the receiver comes back.
func TestExpiryWebhookTwoProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	bin := buildServer(t)
	for _, db := range []struct {
		name string
		dsn  func(testing.TB) string
	}{{"mysql", testdb.MySQL}, {"postgres", testdb.Postgres}} {
		t.Run(db.name, func(t *testing.T) {
			secretFile := filepath.Join(t.TempDir(), "secret")
			require.NoError(t, os.WriteFile(secretFile, []byte("webhook-secret-0123456789\n"), 0o600))
			rc := &receiver{t: t, secret: []byte("webhook-secret-0123456789"), got: map[string]int{}, bodies: map[string]map[string]any{}}
			hook := httptest.NewServer(rc)
			defer hook.Close()
			flags := []string{"-cert-validity", "8s", "-expiry-warnings", "1h", "-sweep-interval", "500ms",
				"-notify-url", hook.URL, "-notify-secret-file", secretFile}
			dsn := db.dsn(t)
			a := startProcess(t, bin, db.name+":"+dsn, flags...)
			startProcess(t, bin, db.name+":"+dsn, flags...)
			c := client.New(a, "race-license-0123456789", nil)
			psk, err := c.IssuePSK(context.Background(), lifecycle.IssuePSKRequest{Tenant: "hooks", Alias: "a"})
			require.NoError(t, err)
			var serials []string
			for i := range 3 {
				res, err := c.IssueCertificate(context.Background(), lifecycle.IssueCertificateRequest{PSK: lifecycle.PSKCredentials{KeyID: psk.KeyID, Password: psk.Password},
					Device: lifecycle.DeviceRequest{Name: fmt.Sprint("d", i)}, CA: "ca1", Subject: fmt.Sprint("/CN=d", i), KeyPath: "/k", Path: "/c", CAPath: "/ca"})
				require.NoError(t, err)
				serials = append(serials, res.Certificate.Serial)
			}
			time.Sleep(3 * time.Second) // deliveries fail meanwhile, and are retried
			rc.mu.Lock()
			rc.up = true
			failed := rc.failed
			rc.mu.Unlock()
			assert.Positive(t, failed, "the receiver refused deliveries while down")

			deadline := time.Now().Add(45 * time.Second)
			for {
				rc.mu.Lock()
				n := len(rc.got)
				rc.mu.Unlock()
				if n >= 6 || time.Now().After(deadline) {
					break
				}
				time.Sleep(200 * time.Millisecond)
			}
			time.Sleep(2 * time.Second) // would a second process's copy come?
			rc.mu.Lock()
			defer rc.mu.Unlock()
			var expiring, expired []string
			for id, n := range rc.got {
				assert.Equal(t, 1, n, "event %s taken once", id)
				ev := rc.bodies[id]
				assert.Equal(t, "hooks", ev["tenant"])
				switch ev["op"] {
				case "CredentialExpiring":
					assert.Equal(t, "1h0m0s", ev["detail"])
					expiring = append(expiring, ev["serial"].(string))
				case "CredentialExpired":
					expired = append(expired, ev["serial"].(string))
				}
			}
			assert.ElementsMatch(t, serials, expiring, "one warning per certificate")
			assert.ElementsMatch(t, serials, expired, "one expiry per certificate")
		})
	}
}
