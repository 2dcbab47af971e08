package main

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/ocsp"
)

// freeAddr returns a loopback address with a port free a moment ago, so
// that the server's public URL can name it before it starts.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	return ln.Addr().String()
}

// sh runs a command in dir and returns its combined output; it fails the
// test unless the command's success is want.
func sh(t *testing.T, dir string, want bool, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if (err == nil) != want {
		t.Fatalf("%s %s: %v (want success %v)\n%s", name, strings.Join(args, " "), err, want, out)
	}
	return string(out)
}

// pemCerts reads every certificate of a PEM text.
func pemCerts(t *testing.T, text string) []*x509.Certificate {
	t.Helper()
	var out []*x509.Certificate
	rest := []byte(text)
	for {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			return out
		}
		out = append(out, mustParse(t, b.Bytes))
	}
}

func writeFile(t *testing.T, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	require.NoError(t, os.WriteFile(p, data, 0o600))
	return p
}

// TestPKIWithOpenSSL: on each store, a server with an intermediate under
// a root and a public URL issues for a CSR made by openssl req; openssl
// verify passes with the root alone as anchor; openssl ocsp, at the URL the
// certificate names, answers good, then revoked after a renewal with a new
// CSR and after a revocation, and unknown for a serial never issued; bad
// CSRs answer 1103.
func TestPKIWithOpenSSL(t *testing.T) {
	needTools(t)
	addr := freeAddr(t) // each store's server in turn, stopped before the next starts
	onEachStore(t, config{addr: addr, publicURL: "http://" + addr, caRoot: "root"}, func(t *testing.T, api *attacker) {
		dir := t.TempDir()
		keyid, key := api.psk("tenant01")
		newCSR := func(name, subject, keySpec string) string {
			args := []string{"req", "-new", "-nodes", "-keyout", name + ".key", "-subj", subject, "-out", name + ".csr"}
			if curve, ok := strings.CutPrefix(keySpec, "ec:"); ok {
				args = append(args, "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:"+curve)
			} else {
				args = append(args, "-newkey", keySpec)
			}
			sh(t, dir, true, "openssl", args...)
			return readText(t, dir, name+".csr")
		}
		csr := newCSR("dev", "/O=Acme/CN=dev-1.example.com", "ec:P-256")
		create := map[string]any{"mode": "create", "keyid": keyid, "key": key, "devicename": "gw", "certmode": "csr", "catype": "ca1",
			"csr": csr, "keyfilepath": "/k", "cafilepath": "/etc/ca.pem", "clientfilepath": "/etc/dev.pem"}

		// Refusals first: a bad signature, a wildcard, a key the CA does
		// not issue for.
		lines := strings.Split(strings.TrimSpace(csr), "\n")
		last := lines[len(lines)-2] // the last base64 line: the signature's end
		lines[len(lines)-2] = last[:len(last)-6] + flip(last[len(last)-6:len(last)-5]) + last[len(last)-5:]
		for name, text := range map[string]string{
			"bad signature": strings.Join(lines, "\n") + "\n",
			"wildcard":      newCSR("wild", "/CN=*.example.com", "ec:P-256"),
			"RSA 1024":      newCSR("weak", "/CN=weak", "rsa:1024"),
		} {
			body := map[string]any{}
			for k, v := range create {
				body[k] = v
			}
			body["csr"], body["devicename"] = text, "refused"
			st, r := api.post("CredInfo", body)
			assert.Equal(t, 400, st, name)
			assert.Equal(t, 1103, code(r), name)
		}

		st, r := api.post("CredInfo", create)
		require.Equal(t, 201, st, "%v", r)
		assert.Nil(t, r["privatekey"])
		leafPEM := r["clientcert"].(string)
		writeFile(t, dir, "leaf.pem", []byte(leafPEM))
		bundle := pemCerts(t, r["cacert"].(string))
		require.Len(t, bundle, 2, "cacert carries the intermediate and the root")
		inter, root := bundle[0], bundle[1]
		writeFile(t, dir, "root.pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: root.Raw}))
		writeFile(t, dir, "chain.pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: inter.Raw}))

		// The certificate's key is the CSR's.
		assert.Equal(t, sh(t, dir, true, "openssl", "req", "-in", "dev.csr", "-noout", "-pubkey"),
			sh(t, dir, true, "openssl", "x509", "-in", "leaf.pem", "-noout", "-pubkey"), "the certificate's public key is the CSR's")
		assert.Contains(t, sh(t, dir, true, "openssl", "verify", "-CAfile", "root.pem", "-untrusted", "chain.pem", "leaf.pem"), "leaf.pem: OK")
		sh(t, dir, false, "openssl", "verify", "-CAfile", "root.pem", "leaf.pem") // not without the chain
		leaf := pemCerts(t, leafPEM)[0]
		roots, inters := x509.NewCertPool(), x509.NewCertPool()
		roots.AddCert(root)
		inters.AddCert(inter)
		_, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inters, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
		require.NoError(t, err, "Go verifies with the root alone as anchor")

		// The pointers name this server.
		base := "http://" + addr + "/SWCLM/v10/"
		require.Equal(t, []string{base + "OCSP/ca1"}, leaf.OCSPServer)
		require.Equal(t, []string{base + "CACert?catype=ca1"}, leaf.IssuingCertificateURL)
		require.Equal(t, []string{base + "CRL?catype=ca1"}, leaf.CRLDistributionPoints)
		ocspURL := strings.TrimSpace(sh(t, dir, true, "openssl", "x509", "-in", "leaf.pem", "-noout", "-ocsp_uri"))
		require.Equal(t, leaf.OCSPServer[0], ocspURL)
		st, der := api.get("CACert?catype=ca1")
		require.Equal(t, 200, st)
		assert.Equal(t, inter.Raw, der, "caIssuers serves the issuing CA's certificate")

		ocspStatus := func(args ...string) string {
			t.Helper()
			out := sh(t, dir, true, "openssl", append([]string{"ocsp", "-issuer", "chain.pem", "-CAfile", "root.pem", "-url", ocspURL}, args...)...)
			assert.Contains(t, out, "Response verify OK")
			return out
		}
		assert.Contains(t, ocspStatus("-cert", "leaf.pem"), "leaf.pem: good")
		assert.Contains(t, ocspStatus("-serial", "0x1234567"), "0x1234567: unknown")

		// Renewal with a new CSR supersedes the first certificate.
		dev, devkey, kn := r["deviceid"], r["devicekey"], r["clientkeynumber"]
		csr2 := newCSR("dev2", "/CN=ignored", "ec:P-384")
		st, r = api.post("CredInfo", map[string]any{"mode": "update", "keyid": keyid, "key": key, "deviceid": dev, "devicekey": devkey, "devicename": "gw",
			"catype": "ca1", "keynumber": kn, "filepath": "/etc/dev.pem", "csr": csr2})
		require.Equal(t, 200, st, "%v", r)
		writeFile(t, dir, "leaf2.pem", []byte(r["clientcert"].(string)))
		assert.Equal(t, sh(t, dir, true, "openssl", "req", "-in", "dev2.csr", "-noout", "-pubkey"), sh(t, dir, true, "openssl", "x509", "-in", "leaf2.pem", "-noout", "-pubkey"))
		out := ocspStatus("-cert", "leaf.pem")
		assert.Contains(t, out, "leaf.pem: revoked")
		assert.Contains(t, out, "Reason: superseded")
		assert.Contains(t, ocspStatus("-cert", "leaf2.pem"), "leaf2.pem: good")

		st, r = api.post("CredInfo", map[string]any{"mode": "revoke", "keyid": keyid, "key": key, "deviceid": dev, "devicekey": devkey, "devicename": "gw",
			"catype": "ca1", "keynumber": r["clientkeynumber"]})
		require.Equal(t, 200, st, "%v", r)
		assert.Contains(t, ocspStatus("-cert", "leaf2.pem"), "leaf2.pem: revoked")

		// The CRL at the certificate's distribution point is the
		// intermediate's and lists both.
		st, der = api.get("CRL?catype=ca1")
		require.Equal(t, 200, st)
		writeFile(t, dir, "crl.der", der)
		crlText := sh(t, dir, true, "openssl", "crl", "-inform", "DER", "-in", "crl.der", "-CAfile", "chain.pem", "-noout", "-text")
		assert.Contains(t, crlText, "verify OK")
		for _, p := range []string{"leaf.pem", "leaf2.pem"} {
			serial := strings.TrimPrefix(strings.TrimSpace(sh(t, dir, true, "openssl", "x509", "-in", p, "-noout", "-serial")), "serial=")
			assert.Contains(t, crlText, "Serial Number: "+serial, p)
		}
	})
}

func readText(t *testing.T, dir, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, name))
	require.NoError(t, err)
	return string(b)
}

// flip changes one base64 character.
func flip(c string) string {
	if c == "A" {
		return "B"
	}
	return "A"
}

// TestOfflineRootImport: an operator makes a root and an intermediate with
// openssl on an offline machine and starts the server with the
// intermediate's chain and key; issued certificates verify against that
// root alone, and the root's key never reaches the server.
func TestOfflineRootImport(t *testing.T) {
	needTools(t)
	dir := t.TempDir()
	sh(t, dir, true, "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-384", "-nodes", "-keyout", "root.key",
		"-subj", "/O=Acme/CN=Acme offline root", "-days", "3650", "-out", "root.pem",
		"-addext", "basicConstraints=critical,CA:TRUE,pathlen:1", "-addext", "keyUsage=critical,keyCertSign,cRLSign")
	sh(t, dir, true, "openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "inter.key",
		"-subj", "/O=Acme/CN=Acme devices CA", "-out", "inter.csr")
	writeFile(t, dir, "ext.cnf", []byte("basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign,digitalSignature\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n"))
	sh(t, dir, true, "openssl", "x509", "-req", "-in", "inter.csr", "-CA", "root.pem", "-CAkey", "root.key", "-CAcreateserial",
		"-days", "1825", "-extfile", "ext.cnf", "-out", "inter.pem")
	writeFile(t, dir, "chain.pem", []byte(readText(t, dir, "inter.pem")+readText(t, dir, "root.pem")))

	data := t.TempDir() // the server's machine: no root key there
	c := config{store: "sqlite:" + filepath.Join(data, "clm.db"), caImportChain: filepath.Join(dir, "chain.pem"), caImportKey: filepath.Join(dir, "inter.key"),
		license: "the-license-every-client-holds"}
	api := newAttacker(t, c)
	keyid, key := api.psk("t")
	st, r := api.post("CredInfo", map[string]any{"mode": "create", "keyid": keyid, "key": key, "devicename": "gw", "certmode": "client", "catype": "ca1",
		"clientsubject": "/CN=gw", "keyfilepath": "/k", "cafilepath": "/ca", "clientfilepath": "/c"})
	require.Equal(t, 201, st, "%v", r)
	writeFile(t, dir, "leaf.pem", []byte(r["clientcert"].(string)))
	writeFile(t, dir, "served-chain.pem", []byte(r["cacert"].(string)))
	assert.Len(t, pemCerts(t, r["cacert"].(string)), 2)
	assert.Contains(t, sh(t, dir, true, "openssl", "verify", "-CAfile", "root.pem", "-untrusted", "served-chain.pem", "leaf.pem"), "leaf.pem: OK")
	st, p := api.get("CACert?catype=ca1&format=pem")
	require.Equal(t, 200, st)
	assert.Equal(t, readText(t, dir, "served-chain.pem"), string(p), "CACert in PEM is the chain")
}

// TestPolicyFile: -policy-file restricts what the CA issues; a policy
// that cannot apply, or a bad -public-url, stops the server at start.
func TestPolicyFile(t *testing.T) {
	needTools(t)
	dir := t.TempDir()
	pol := writeFile(t, dir, "policy.json", []byte(`{"policies": [
		{"ca": "ca1", "key_types": ["EC-P256"], "dns_suffixes": ["devices.example.com"], "max_validity": "720h",
		 "fixed_subject": {"O": "{tenant}"}, "ext_key_usage": ["clientAuth"]}]}`))
	api := newAttacker(t, config{store: "sqlite:" + filepath.Join(dir, "clm.db"), policyFile: pol, license: "the-license-every-client-holds"})
	keyid, key := api.psk("acme")
	issue := func(subject string) (int, map[string]any) {
		return api.post("CredInfo", map[string]any{"mode": "create", "keyid": keyid, "key": key, "devicename": "d-" + subject, "certmode": "client", "catype": "ca1",
			"clientsubject": subject, "keyfilepath": "/k", "cafilepath": "/ca", "clientfilepath": "/c"})
	}
	st, r := issue("/CN=gw.other.example")
	assert.Equal(t, 400, st)
	assert.Equal(t, 1103, code(r), "a name outside dns_suffixes")
	sh(t, dir, true, "openssl", "req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", "rsa.key", "-subj", "/CN=rsa.devices.example.com", "-out", "rsa.csr")
	st, r = api.post("CredInfo", map[string]any{"mode": "create", "keyid": keyid, "key": key, "devicename": "rsa", "certmode": "csr", "catype": "ca1",
		"csr": readText(t, dir, "rsa.csr"), "keyfilepath": "/k", "cafilepath": "/ca", "clientfilepath": "/c"})
	assert.Equal(t, 400, st)
	assert.Equal(t, 1103, code(r), "a CSR key type the policy refuses")
	st, r = issue("/CN=gw.devices.example.com")
	require.Equal(t, 201, st, "%v", r)
	c := pemCerts(t, r["clientcert"].(string))[0]
	assert.Equal(t, []string{"acme"}, c.Subject.Organization)
	assert.Equal(t, []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, c.ExtKeyUsage)
	assert.LessOrEqual(t, c.NotAfter.Sub(c.NotBefore), 720*time.Hour+time.Minute)

	for want, cfg := range map[string]config{
		"-policy-file: policy 0: policy KeyTypes": {policyFile: writeFile(t, dir, "bad.json", []byte(`{"policies": [{"key_types": ["RSA-1024"]}]}`))},
		"-policy-file: json: unknown field":       {policyFile: writeFile(t, dir, "bad2.json", []byte(`{"policies": [{"max_validty": "1h"}]}`))},
		"-public-url":                             {publicURL: "clm.example.com"},
	} {
		cfg.store, cfg.license, cfg.addr, cfg.cas, cfg.logLevel = "sqlite:"+filepath.Join(t.TempDir(), "clm.db"), "the-license-every-client-holds", "127.0.0.1:0", "ca1", "error"
		assert.ErrorContains(t, run(t.Context(), cfg, io.Discard), want)
	}
}

// TestPKIScript runs examples/clmserver/pki.sh, the README's PKI flows,
// against a server with an intermediate and a public URL.
func TestPKIScript(t *testing.T) {
	needTools(t)
	addr := freeAddr(t)
	url, license := startServer(t, config{store: "sqlite:" + filepath.Join(t.TempDir(), "clm.db"), addr: addr, publicURL: "http://" + addr, caRoot: "root"})
	cmd := exec.Command("bash", "pki.sh")
	cmd.Env = append(os.Environ(), "CLM_URL="+url, "CLM_LICENSE="+license)
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "pki: all passed") {
		t.Fatalf("pki.sh: %v\n%s", err, out)
	}
}

// TestAttackOCSPFlood: OCSP is unauthenticated. A flood of requests about
// an unchanged certificate must not make the CA sign each: the answers are
// the same bytes (an ECDSA signature differs each time it is made); after
// a revocation the very next answer says revoked.
func TestAttackOCSPFlood(t *testing.T) {
	onEachStore(t, config{}, func(t *testing.T, api *attacker) {
		keyID, key := api.psk("tenantA")
		st, r := api.post("CredInfo", map[string]any{"mode": "create", "keyid": keyID, "key": key, "devicename": "d",
			"certmode": "client", "catype": "ca1", "clientsubject": "/CN=d", "keyfilepath": "/k", "cafilepath": "/ca", "clientfilepath": "/c"})
		require.Equal(t, 201, st, "%v", r)
		cert, issuer := pemCerts(t, r["clientcert"].(string))[0], pemCerts(t, r["cacert"].(string))[0]
		req, err := ocsp.CreateRequest(cert, issuer, nil)
		require.NoError(t, err)
		ask := func() []byte {
			t.Helper()
			resp, err := api.hc.Post(api.url+"/SWCLM/v10/OCSP/ca1", "application/ocsp-request", bytes.NewReader(req))
			require.NoError(t, err)
			defer resp.Body.Close()
			der, err := io.ReadAll(resp.Body)
			require.NoError(t, err)
			require.Equal(t, 200, resp.StatusCode)
			return der
		}
		first := ask()
		o, err := ocsp.ParseResponseForCert(first, cert, issuer)
		require.NoError(t, err)
		require.Equal(t, ocsp.Good, o.Status)
		for range 300 {
			if !bytes.Equal(ask(), first) {
				t.Fatal("an answer about an unchanged certificate was signed anew: every unauthenticated request costs a signature")
			}
		}
		st, r = api.post("CredInfo", map[string]any{"mode": "revoke", "keyid": keyID, "key": key, "deviceid": r["deviceid"],
			"devicename": "d", "devicekey": r["devicekey"], "keynumber": r["clientkeynumber"], "catype": "ca1"})
		require.Equal(t, 200, st, "%v", r)
		o, err = ocsp.ParseResponseForCert(ask(), cert, issuer)
		require.NoError(t, err)
		assert.Equal(t, ocsp.Revoked, o.Status, "a revocation changes the next answer")
	})
}
