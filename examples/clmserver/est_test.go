package main

import (
	"bytes"
	"encoding/base64"
	"encoding/pem"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"crypto/x509"

	"github.com/credlife/clm/lifecycle"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/ocsp"
)

// TestESTWithCurlAndOpenSSL drives EST over HTTPS (-tls-auto) with the
// real curl and openssl, as a device with a shell would (spec est.md), on
// each store: cacerts, simpleenroll with a PSK, simplereenroll over mTLS
// (the old certificate superseded: OCSP, CRL, and it no longer
// authenticates), serverkeygen, every failure, and the device visible over
// CLM v10 and the admin API.
func TestESTWithCurlAndOpenSSL(t *testing.T) {
	needTools(t)
	cfg := adminConfig(t)
	cfg.tlsAuto, cfg.caRoot = true, "root"
	onEachStore(t, cfg, func(t *testing.T, api *attacker) {
		dir := t.TempDir()
		estURL := api.url + "/.well-known/est/"
		keyid, key := api.psk("est")
		curl := func(want bool, args ...string) string {
			t.Helper()
			return sh(t, dir, want, "curl", append([]string{"-sS", "--cacert", api.trust}, args...)...)
		}
		// status runs curl and returns the HTTP status and the body.
		status := func(args ...string) (string, string) {
			t.Helper()
			out := curl(true, append([]string{"-o", "body.out", "-w", "%{http_code}"}, args...)...)
			return out, readText(t, dir, "body.out")
		}
		newCSR := func(name, subject string) {
			t.Helper()
			sh(t, dir, true, "sh", "-c", "openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "+name+".key -subj '"+subject+"' -outform DER 2>/dev/null | base64 > "+name+".b64")
		}
		p7certs := func(b64File, out string) {
			t.Helper()
			sh(t, dir, true, "sh", "-c", "base64 -d < "+b64File+" | openssl pkcs7 -inform DER -print_certs -out "+out)
		}
		credentials := func() int {
			t.Helper()
			st, r := api.adminCall("GET", "credentials?tenant=est", testAdminToken, nil)
			require.Equal(t, 200, st, "%v", r)
			return len(r["credentials"].([]any))
		}

		// cacerts: the chain, intermediate and root.
		curl(true, "-o", "cacerts.b64", estURL+"cacerts")
		p7certs("cacerts.b64", "chain.pem")
		chain := pemCerts(t, readText(t, dir, "chain.pem"))
		require.Len(t, chain, 2, "cacerts holds the issuing CA and its root")
		var root, inter *x509.Certificate
		for _, c := range chain {
			if c.Subject.String() == c.Issuer.String() {
				root = c
			} else {
				inter = c
			}
		}
		require.NotNil(t, root)
		require.NotNil(t, inter)
		writeFile(t, dir, "root.pem", pemOf(root))
		writeFile(t, dir, "inter.pem", pemOf(inter))
		code, _ := status(estURL + "csrattrs")
		assert.Equal(t, "204", code)

		// simpleenroll with the PSK.
		newCSR("dev1", "/CN=est-dev-1")
		auth := keyid + ":" + key
		curl(true, "--fail", "-u", auth, "-H", "Content-Type: application/pkcs10", "--data-binary", "@dev1.b64", "-o", "dev1.p7", estURL+"simpleenroll")
		p7certs("dev1.p7", "dev1.pem")
		assert.Equal(t, sh(t, dir, true, "openssl", "pkey", "-in", "dev1.key", "-pubout"), sh(t, dir, true, "openssl", "x509", "-in", "dev1.pem", "-noout", "-pubkey"),
			"the certificate is for the CSR's key")
		assert.Contains(t, sh(t, dir, true, "openssl", "verify", "-CAfile", "root.pem", "-untrusted", "inter.pem", "dev1.pem"), "dev1.pem: OK")
		dev1 := pemCerts(t, readText(t, dir, "dev1.pem"))[0]

		// Failures answer as est.md says, and change nothing.
		before := credentials()
		writeFile(t, dir, "junk.b64", []byte("this is not base64 of a CSR!\n"))
		newCSR("wild", "/CN=*.example.com")
		bad := []byte(readText(t, dir, "dev1.b64"))
		raw, _ := base64.StdEncoding.DecodeString(strings.ReplaceAll(string(bad), "\n", ""))
		raw[len(raw)-2] ^= 0xFF
		writeFile(t, dir, "badsig.b64", []byte(base64.StdEncoding.EncodeToString(raw)))
		newCSR("again", "/CN=est-dev-1")
		writeFile(t, dir, "big.b64", bytes.Repeat([]byte("QUFB"), 20000))
		for _, f := range []struct {
			name, want string
			args       []string
		}{
			{"malformed", "400", []string{"-u", auth, "--data-binary", "@junk.b64", estURL + "simpleenroll"}},
			{"bad signature", "400", []string{"-u", auth, "--data-binary", "@badsig.b64", estURL + "simpleenroll"}},
			{"policy refuses a wildcard", "403", []string{"-u", auth, "--data-binary", "@wild.b64", estURL + "simpleenroll"}},
			{"a PSK for a registered name", "403", []string{"-u", auth, "--data-binary", "@again.b64", estURL + "simpleenroll"}},
			{"unknown label", "404", []string{"-u", auth, "--data-binary", "@again.b64", estURL + "nope/simpleenroll"}},
			{"oversized", "413", []string{"-u", auth, "--data-binary", "@big.b64", estURL + "simpleenroll"}},
			{"wrong PSK", "401", []string{"-u", keyid + ":wrong", "--data-binary", "@again.b64", estURL + "simpleenroll"}},
			{"no authentication", "401", []string{"--data-binary", "@again.b64", estURL + "simpleenroll"}},
			{"reenroll without a certificate", "401", []string{"-u", auth, "--data-binary", "@again.b64", estURL + "simplereenroll"}},
		} {
			code, body := status(append([]string{"-H", "Content-Type: application/pkcs10"}, f.args...)...)
			assert.Equal(t, f.want, code, "%s: %s", f.name, body)
			assert.NotEmpty(t, strings.TrimSpace(body), "%s: a reason", f.name)
		}
		assert.Equal(t, before, credentials(), "a refused request changes nothing")

		// simplereenroll over mTLS: a new key, the same subject.
		newCSR("dev1b", "/CN=est-dev-1")
		curl(true, "--fail", "--cert", "dev1.pem", "--key", "dev1.key", "-H", "Content-Type: application/pkcs10", "--data-binary", "@dev1b.b64", "-o", "dev1b.p7", estURL+"simplereenroll")
		p7certs("dev1b.p7", "dev1b.pem")
		assert.Equal(t, sh(t, dir, true, "openssl", "pkey", "-in", "dev1b.key", "-pubout"), sh(t, dir, true, "openssl", "x509", "-in", "dev1b.pem", "-noout", "-pubkey"))
		oreq, err := ocsp.CreateRequest(dev1, inter, nil)
		require.NoError(t, err)
		oresp, err := api.hc.Post(api.url+"/SWCLM/v10/OCSP/ca1", "application/ocsp-request", bytes.NewReader(oreq))
		require.NoError(t, err)
		oder, _ := io.ReadAll(oresp.Body)
		oresp.Body.Close()
		o, err := ocsp.ParseResponseForCert(oder, dev1, inter)
		require.NoError(t, err)
		assert.Equal(t, ocsp.Revoked, o.Status, "OCSP: the renewed certificate is revoked")
		assert.Equal(t, ocsp.Superseded, o.RevocationReason)
		st, der := api.get("CRL?catype=ca1")
		require.Equal(t, 200, st)
		crl, err := x509.ParseRevocationList(der)
		require.NoError(t, err)
		found := false
		for _, e := range crl.RevokedCertificateEntries {
			found = found || (e.SerialNumber.Cmp(dev1.SerialNumber) == 0 && e.ReasonCode == 4)
		}
		assert.True(t, found, "the renewed certificate is on the CRL, superseded")
		// The superseded certificate no longer authenticates; a mismatched
		// subject is refused.
		newCSR("dev1c", "/CN=est-dev-1")
		code, body := status("--cert", "dev1.pem", "--key", "dev1.key", "-H", "Content-Type: application/pkcs10", "--data-binary", "@dev1c.b64", estURL+"simplereenroll")
		assert.Equal(t, "401", code, body)
		newCSR("other", "/CN=someone-else")
		code, body = status("--cert", "dev1b.pem", "--key", "dev1b.key", "-H", "Content-Type: application/pkcs10", "--data-binary", "@other.b64", estURL+"simplereenroll")
		assert.Equal(t, "400", code, body)

		// serverkeygen: the key comes back and matches its certificate.
		newCSR("dev2", "/CN=est-dev-2")
		req, err := http.NewRequest("POST", estURL+"serverkeygen", strings.NewReader(readText(t, dir, "dev2.b64")))
		require.NoError(t, err)
		req.SetBasicAuth(keyid, key)
		req.Header.Set("Content-Type", "application/pkcs10")
		resp, err := api.hc.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		require.Equal(t, 200, resp.StatusCode)
		mt, params, err := mime.ParseMediaType(resp.Header.Get("Content-Type"))
		require.NoError(t, err)
		require.Equal(t, "multipart/mixed", mt)
		mr := multipart.NewReader(resp.Body, params["boundary"])
		parts := map[string][]byte{}
		for {
			p, err := mr.NextPart()
			if err == io.EOF {
				break
			}
			require.NoError(t, err)
			b, _ := io.ReadAll(p)
			ct, _, _ := mime.ParseMediaType(p.Header.Get("Content-Type"))
			parts[ct], _ = base64.StdEncoding.DecodeString(strings.Join(strings.Fields(string(b)), ""))
		}
		require.NotEmpty(t, parts["application/pkcs8"])
		require.NotEmpty(t, parts["application/pkcs7-mime"])
		writeFile(t, dir, "dev2.key.der", parts["application/pkcs8"])
		writeFile(t, dir, "dev2.p7.der", parts["application/pkcs7-mime"])
		sh(t, dir, true, "openssl", "pkcs7", "-inform", "DER", "-in", "dev2.p7.der", "-print_certs", "-out", "dev2.pem")
		assert.Equal(t, sh(t, dir, true, "openssl", "pkey", "-inform", "DER", "-in", "dev2.key.der", "-pubout"), sh(t, dir, true, "openssl", "x509", "-in", "dev2.pem", "-noout", "-pubkey"),
			"serverkeygen's key matches its certificate")

		// Visible over CLM v10 and the admin API.
		st, r := api.adminCall("GET", "devices/est", testAdminToken, nil)
		require.Equal(t, 200, st)
		var devID string
		for _, d := range r["devices"].([]any) {
			if m := d.(map[string]any); m["name"] == "est-dev-1" {
				devID = m["id"].(string)
				assert.Equal(t, 1.0, m["valid_credentials"], "the renewed certificate only")
			}
		}
		require.NotEmpty(t, devID)
		dev1b := pemCerts(t, readText(t, dir, "dev1b.pem"))[0]
		st, r = api.post("CredInfo", map[string]any{"mode": "get", "keyid": keyid, "key": key, "deviceid": devID, "devicename": "est-dev-1", "catype": "ca1",
			"certserial": lifecycle.FormatSerial(dev1b.SerialNumber), "filepath": "est:ca1"})
		require.Equal(t, 200, st, "%v", r)
		assert.Equal(t, dev1b.Raw, pemCerts(t, r["clientcert"].(string))[0].Raw)
		st, r = api.adminCall("POST", "devices/est/"+url.PathEscape(devID)+"/decommission", testAdminToken, nil)
		require.Equal(t, 200, st, "%v", r)
		code, body = status("--cert", "dev1b.pem", "--key", "dev1b.key", "-H", "Content-Type: application/pkcs10", "--data-binary", "@dev1c.b64", estURL+"simplereenroll")
		assert.Equal(t, "401", code, "a decommissioned device's certificate no longer authenticates: %s", body)
	})
}

func pemOf(c *x509.Certificate) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
}

// TestESTNeedsTLS: a plain-HTTP server does not serve EST (RFC 7030 needs
// TLS).
func TestESTNeedsTLS(t *testing.T) {
	url, _ := startServer(t, config{store: "sqlite:" + filepath.Join(t.TempDir(), "clm.db"), license: "the-license-every-client-holds"})
	resp, err := http.Get(url + "/.well-known/est/cacerts")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, 404, resp.StatusCode)
}
