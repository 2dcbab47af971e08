package httpadapter_test

import (
	"bytes"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

// A step is one request of the golden scenario. Body values written
// {{name}} are filled from what earlier answers gave (captured by name).
type step struct {
	name    string
	method  string
	path    string
	body    map[string]any
	capture map[string]string // state name ← response field
}

var placeholder = regexp.MustCompile(`\{\{(\w+)\}\}`)

func expand(v any, state map[string]string) any {
	switch x := v.(type) {
	case string:
		return placeholder.ReplaceAllStringFunc(x, func(m string) string { return state[m[2:len(m)-2]] })
	case map[string]any:
		out := map[string]any{}
		for k, e := range x {
			out[k] = expand(e, state)
		}
		return out
	}
	return v
}

// normalise replaces the values that differ from run to run (random keys,
// ids, certificates, serials) by a description of their form, checking
// that form on the way.
func normalise(t *testing.T, name string, v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := map[string]any{}
		for k, e := range x {
			out[k] = normaliseField(t, k, e, x)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = normalise(t, name, e)
		}
		return out
	}
	return v
}

func normaliseField(t *testing.T, k string, v any, obj map[string]any) any {
	s, ok := v.(string)
	if !ok {
		return normalise(t, k, v)
	}
	switch k {
	case "key", "devicekey":
		return fmt.Sprintf("<secret: %d characters>", len(s))
	case "deviceid":
		if !regexp.MustCompile(`^[0-9a-z]{36}$`).MatchString(s) {
			t.Errorf("deviceid %q is not 36 characters of [0-9a-z]", s)
		}
		return "<deviceid>"
	case "caserial", "clientserial":
		if !regexp.MustCompile(`^[0-9A-F]+$`).MatchString(s) {
			t.Errorf("serial %q is not uppercase hex", s)
		}
		return "<serial>"
	case "commonkey":
		b, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			t.Errorf("commonkey is not base64: %v", err)
		}
		return fmt.Sprintf("<base64: %d bytes>", len(b))
	case "privatekey":
		b, _ := pem.Decode([]byte(s))
		if b == nil {
			t.Errorf("privatekey is not PEM")
			return "<not PEM>"
		}
		return "<PEM " + b.Type + ">"
	case "cacert", "clientcert":
		typ, _ := obj[strings.TrimSuffix(k, "cert")+"certtype"].(string)
		switch typ {
		case "pem":
			b, _ := pem.Decode([]byte(s))
			if b == nil || b.Type != "CERTIFICATE" {
				t.Errorf("%s is not a PEM certificate", k)
				return "<not PEM>"
			}
			if _, err := x509.ParseCertificate(b.Bytes); err != nil {
				t.Errorf("%s does not parse: %v", k, err)
			}
			return "<PEM CERTIFICATE>"
		case "der":
			der, err := base64.StdEncoding.DecodeString(s)
			if _, err2 := x509.ParseCertificate(der); err != nil || err2 != nil {
				t.Errorf("%s is not base64 DER", k)
			}
			return "<base64 DER certificate>"
		case "p12":
			if _, err := base64.StdEncoding.DecodeString(s); err != nil {
				t.Errorf("%s is not base64", k)
			}
			return "<base64 PKCS#12>"
		}
	}
	return s
}

func goldenScenario() []step {
	dev := map[string]any{"keyid": "{{keyid}}", "key": "{{key}}", "deviceid": "{{deviceid}}", "devicename": "nec-edge-0001", "devicekey": "{{devicekey}}"}
	with := func(extra map[string]any) map[string]any {
		m := map[string]any{}
		for k, v := range dev {
			m[k] = v
		}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	p := "/SWCLM/v10/"
	return []step{
		{"idinfo-create", "POST", p + "IDInfo", map[string]any{"mode": "create", "tenantid": "tenant01", "alias": "DemoKey1"}, map[string]string{"keyid": "keyid", "key": "key"}},
		{"idinfo-create-typo-alias", "POST", p + "IDInfo", map[string]any{"mode": "create", "tenanted": "tenant02", "alias": "DemoKey2"}, map[string]string{"keyid2": "keyid", "key2": "key"}},
		{"idinfo-get", "GET", p + "IDInfo?keyid={{keyid}}", nil, nil},
		{"idinfo-get-unknown", "GET", p + "IDInfo?keyid=0000009999", nil, nil},
		{"idinfo-get-malformed", "GET", p + "IDInfo?keyid=abc", nil, nil},
		{"idinfo-list-page", "GET", p + "IDInfo?limit=1", nil, nil},
		{"idinfo-list-tenant", "GET", p + "IDInfo?tenantid=tenant02", nil, nil},
		{"idinfo-auth", "POST", p + "IDInfo", map[string]any{"mode": "auth", "keyid": "{{keyid}}", "key": "{{key}}"}, nil},
		{"credinfo-create-client-pem", "POST", p + "CredInfo", map[string]any{"mode": "create", "keyid": "{{keyid}}", "key": "{{key}}",
			"devicename": "nec-edge-0001", "certmode": "client", "catype": "ca1", "clientsubject": "/C=JP/L=Tokyo/O=NEC/CN=AP1",
			"keyfilepath": "/tmp/key", "cafepath": "/etc/opt/nec/swclm/keyfile/cacert.pem", "clientfilepath": "/etc/opt/nec/swclm/keyfile/clcert.pem",
			"ipaddress": "192.168.0.1", "macaddress": "aa:aa:aa:aa:aa:aa", "ext_data": map[string]any{"osname": "CentOS", "osversion": "6.8", "memoriesize": "2048MB", "flag": "1"}},
			map[string]string{"deviceid": "deviceid", "devicekey": "devicekey", "kn": "clientkeynumber", "serial": "clientserial"}},
		{"credinfo-create-caonly-pem", "POST", p + "CredInfo", with(map[string]any{"mode": "create", "certmode": "caonly", "catype": "CA", "keyfilepath": "/tmp/key", "caffilepath": "/etc/ca.pem"}), nil},
		{"credinfo-create-caonly-der", "POST", p + "CredInfo", with(map[string]any{"mode": "create", "certmode": "caonly", "catype": "CA", "cacerttype": "der", "keyfilepath": "/tmp/key", "cafilepath": "/etc/ca.der"}), nil},
		{"credinfo-create-client-der", "POST", p + "CredInfo", with(map[string]any{"mode": "create", "certmode": "client", "catype": "ca1", "clientcerttype": "der", "cacerttype": "der",
			"clientsubject": "/CN=192.0.2.7", "passphrase": "pass", "keyfilepath": "/tmp/key", "clientfilepath": "/etc/c.der"}), map[string]string{"kn2": "clientkeynumber"}},
		{"credinfo-create-client-p12", "POST", p + "CredInfo", with(map[string]any{"mode": "create", "certmode": "client", "catype": "ca1", "clientcerttype": "p12",
			"clientsubject": "/O=NEC/CN=ap2.example.com", "passphrase": "pfx-pass", "keyfilepath": "/tmp/key", "clientfilepath": "/etc/c.p12"}), nil},
		{"credinfo-get-pem", "POST", p + "CredInfo", with(map[string]any{"mode": "get", "keynumber": "{{kn}}", "catype": "ca1", "filepath": "/etc/opt/nec/swclm/keyfile/clcert.pem"}), nil},
		{"credinfo-get-der-by-serial", "POST", p + "CredInfo", with(map[string]any{"mode": "get", "certserial": "{{serial}}", "catype": "ca1", "certtype": "der", "filepath": "/etc/copy.der"}), nil},
		{"credinfo-get-p12", "POST", p + "CredInfo", with(map[string]any{"mode": "get", "keynumber": "{{kn}}", "catype": "ca1", "certtype": "p12", "passphrase": "x", "filepath": "/etc/copy.p12"}), nil},
		{"credinfo-get-ca", "POST", p + "CredInfo", with(map[string]any{"mode": "get", "keynumber": 1, "catype": "CA", "filepath": "/etc/ca.pem"}), nil},
		{"credinfo-update", "POST", p + "CredInfo", with(map[string]any{"mode": "update", "keynumber": "{{kn}}", "catype": "ca1", "passphrase": "renewed",
			"filepath": "/etc/opt/nec/swclm/keyfile/clcert.pem", "newfilepath": "/etc/opt/nec/swclm/keyfile/clcert2.pem"}), map[string]string{"kn3": "clientkeynumber"}},
		{"credinfo-update-adopt", "POST", p + "CredInfo", with(map[string]any{"mode": "update", "keynumber": "{{kn3}}", "newkeynumber": "{{kn2}}", "catype": "ca1",
			"filepath": "/etc/opt/nec/swclm/keyfile/clcert2.pem", "newfilepath": "/etc/c3.pem"}), nil},
		{"credinfo-revoke", "POST", p + "CredInfo", with(map[string]any{"mode": "revoke", "keynumber": "{{kn2}}", "catype": "ca1", "filepath": "/etc/c3.pem"}), nil},
		{"keyinfo-create-aes", "POST", p + "KeyInfo", with(map[string]any{"mode": "create", "alias": "iotgatewaytest cmkey", "keytype": "AES", "keyfilepath": "/tmp/key", "commonkeyfilepath": "/etc/aes.key"}),
			map[string]string{"k1": "keynumber", "ck1": "commonkey"}},
		{"keyinfo-create-twine-new-device", "POST", p + "KeyInfo", map[string]any{"mode": "create", "keyid": "{{keyid}}", "key": "{{key}}", "alias": "tw", "keytype": "TWINE", "keylength": 80,
			"keyfilepath": "/tmp/key", "commonkeyfilepath": "/etc/twine.key"}, nil},
		{"keyinfo-get", "POST", p + "KeyInfo", with(map[string]any{"mode": "get", "keynumber": "{{k1}}", "filepath": "/etc/aes.key"}), nil},
		{"keyinfo-update", "POST", p + "KeyInfo", with(map[string]any{"mode": "update", "keynumber": "{{k1}}", "keylength": "256", "filepath": "/etc/aes.key", "newfilepath": "/etc/aes2.key"}),
			map[string]string{"k2": "keynumber"}},
		{"keyinfo-create-spare", "POST", p + "KeyInfo", with(map[string]any{"mode": "create", "alias": "spare", "keytype": "AES", "keyfilepath": "/tmp/key", "commonkeyfilepath": "/etc/spare.key"}),
			map[string]string{"k3": "keynumber", "ck3": "commonkey"}},
		{"keyinfo-update-adopt", "POST", p + "KeyInfo", with(map[string]any{"mode": "update", "keynumber": "{{k2}}", "newkeynumber": "{{k3}}", "filepath": "/etc/aes2.key", "newfilepath": "/etc/aes3.key"}), nil},
		{"keyinfo-delete", "POST", p + "KeyInfo", with(map[string]any{"mode": "delete", "keynumber": "{{k3}}", "commonkey": "{{ck3}}", "filepath": "/etc/aes3.key"}), nil},
		{"systemstatus", "GET", p + "SystemStatus", nil, nil},
		{"idinfo-delete", "POST", p + "IDInfo", map[string]any{"mode": "delete", "keyid": "{{keyid2}}", "key": "{{key2}}"}, nil},
	}
}

// TestGolden runs the scenario of every endpoint and mode against a real
// server and compares each full answer (volatile fields normalised) with
// testdata/golden. Run with -update to rewrite the files.
func TestGolden(t *testing.T) { runGolden(t, nil) }

// runGolden runs the golden scenario against s (a new server, compared
// with the golden files, when nil) and returns what it captured; other
// tests reuse it to drive every endpoint and mode.
func runGolden(t *testing.T, s *server) map[string]string {
	compare := s == nil
	if s == nil {
		s = newServer(t, nil)
	}
	state := map[string]string{}
	for i, st := range goldenScenario() {
		path := expand(st.path, state).(string)
		var body any
		if st.body != nil {
			body = expand(st.body, state)
		}
		status, hdr, resp := s.call(st.method, path, body)
		if resp == nil {
			t.Fatalf("%s: the answer is not a JSON object", st.name)
		}
		for name, field := range st.capture {
			v := resp[field]
			if n, ok := v.(json.Number); ok {
				state[name] = n.String()
			} else if str, ok := v.(string); ok {
				state[name] = str
			}
		}
		if ct := hdr.Get("Content-Type"); ct != "application/json; charset=utf-8" {
			t.Errorf("%s: Content-Type %q", st.name, ct)
		}
		var got bytes.Buffer
		fmt.Fprintf(&got, "%s %s\n", st.method, st.path)
		enc := json.NewEncoder(&got)
		enc.SetEscapeHTML(false)
		enc.SetIndent("", "  ")
		if st.body != nil {
			enc.Encode(st.body)
		}
		fmt.Fprintf(&got, "\n%d\n", status)
		enc.Encode(normalise(t, st.name, resp))
		file := filepath.Join("testdata", "golden", fmt.Sprintf("%02d-%s.txt", i+1, st.name))
		if !compare {
			continue
		}
		if *update {
			if err := os.WriteFile(file, got.Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(file)
		if err != nil {
			t.Fatalf("%s: %v (run go test -run TestGolden -update)", st.name, err)
		}
		if !bytes.Equal(got.Bytes(), want) {
			t.Errorf("%s: the answer differs from %s:\n--- got\n%s\n--- want\n%s", st.name, file, got.String(), want)
		}
	}
	return state
}
