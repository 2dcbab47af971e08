package httpadapter_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"encoding/json"
	"errors"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/credlife/clm/httpadapter"
	"github.com/credlife/clm/lifecycle"
	"github.com/credlife/clm/lifecycle/driver"
)

// fixture is a server with two tenants, a device holding a certificate and
// a key, and credentials in every state an error needs.
type fixture struct {
	*server
	keyid, key, keyid2, key2 string
	devid, devkey            string
	kn, serial               string // a valid certificate bound at certPath
	revoked, other           string // a revoked certificate; another device's
	foreign                  string // a certificate of tenant02
	k1, ck1, kTwine, kOld    string // an AES key, its value, a TWINE key, a rotated key
}

const (
	certPath = "/etc/cl.pem"
	keyPath  = "/etc/aes.key"
)

func num(v any) string {
	switch x := v.(type) {
	case json.Number:
		return x.String()
	case string:
		return x
	}
	return ""
}

func newFixture(t *testing.T) *fixture {
	f := &fixture{server: newServer(t, &lifecycle.Options{CertValidity: 48 * time.Hour})}
	f.keyid, f.key = f.psk("tenant01")
	f.keyid2, f.key2 = f.psk("tenant02")
	post := func(path string, body map[string]any) map[string]any {
		t.Helper()
		st, _, r := f.call("POST", "/SWCLM/v10/"+path, body)
		if st != 200 && st != 201 {
			t.Fatalf("setup %s %v: %d %v", path, body["mode"], st, r)
		}
		return r
	}
	r := post("CredInfo", map[string]any{"mode": "create", "keyid": f.keyid, "key": f.key, "devicename": "gw", "certmode": "client", "catype": "ca1",
		"clientsubject": "/CN=gw", "keyfilepath": "/tmp/key", "cafilepath": "/etc/ca.pem", "clientfilepath": certPath})
	f.devid, f.devkey, f.kn, f.serial = r["deviceid"].(string), r["devicekey"].(string), num(r["clientkeynumber"]), r["clientserial"].(string)
	r = post("CredInfo", f.dev(map[string]any{"mode": "create", "certmode": "client", "catype": "ca1", "clientsubject": "/CN=r", "keyfilepath": "/tmp/key", "cafilepath": "/ca", "clientfilepath": "/r"}))
	f.revoked = num(r["clientkeynumber"])
	post("CredInfo", f.dev(map[string]any{"mode": "revoke", "keynumber": f.revoked, "catype": "ca1"}))
	r = post("CredInfo", map[string]any{"mode": "create", "keyid": f.keyid, "key": f.key, "devicename": "other", "certmode": "client", "catype": "ca1",
		"clientsubject": "/CN=o", "keyfilepath": "/tmp/key", "cafilepath": "/ca", "clientfilepath": "/o"})
	f.other = num(r["clientkeynumber"])
	r = post("CredInfo", map[string]any{"mode": "create", "keyid": f.keyid2, "key": f.key2, "devicename": "f", "certmode": "client", "catype": "ca1",
		"clientsubject": "/CN=f", "keyfilepath": "/tmp/key", "cafilepath": "/ca", "clientfilepath": "/f"})
	f.foreign = num(r["clientkeynumber"])
	r = post("KeyInfo", f.dev(map[string]any{"mode": "create", "alias": "k", "keytype": "AES", "keyfilepath": "/tmp/key", "commonkeyfilepath": keyPath}))
	f.k1, f.ck1 = num(r["keynumber"]), r["commonkey"].(string)
	r = post("KeyInfo", f.dev(map[string]any{"mode": "create", "alias": "t", "keytype": "TWINE", "keyfilepath": "/tmp/key", "commonkeyfilepath": "/t"}))
	f.kTwine = num(r["keynumber"])
	r = post("KeyInfo", f.dev(map[string]any{"mode": "create", "alias": "o", "keytype": "AES", "keyfilepath": "/tmp/key", "commonkeyfilepath": "/old"}))
	f.kOld = num(r["keynumber"])
	post("KeyInfo", f.dev(map[string]any{"mode": "update", "keynumber": f.kOld, "filepath": "/old"}))
	return f
}

// dev adds the PSK and device fields to a body.
func (f *fixture) dev(m map[string]any) map[string]any {
	out := map[string]any{"keyid": f.keyid, "key": f.key, "deviceid": f.devid, "devicename": "gw", "devicekey": f.devkey}
	for k, v := range m {
		out[k] = v
	}
	return out
}

type errCase struct {
	name       string
	method     string
	path       string
	body       any
	wantStatus int
	wantCode   lifecycle.Code
}

// run sends each case and checks the status, the code, and that the store
// did not change.
func (f *fixture) run(t *testing.T, cases []errCase) {
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := f.hash()
			method := tc.method
			if method == "" {
				method = "POST"
			}
			status, _, r := f.call(method, tc.path, tc.body)
			if status != tc.wantStatus || r == nil || num(r["errorcode"]) != json.Number(itoa(int(tc.wantCode))).String() {
				t.Fatalf("got %d %v, want %d with errorcode %d", status, r, tc.wantStatus, tc.wantCode)
			}
			if len(r) != 1 {
				t.Fatalf("an error answer carries only the errorcode: %v", r)
			}
			if after := f.hash(); after != before {
				t.Fatal("a failed request must leave the store as it was")
			}
		})
	}
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

const (
	idinfo   = "/SWCLM/v10/IDInfo"
	credinfo = "/SWCLM/v10/CredInfo"
	keyinfo  = "/SWCLM/v10/KeyInfo"
)

func TestErrorCodes(t *testing.T) {
	f := newFixture(t)
	cert := func(m map[string]any) map[string]any {
		base := map[string]any{"mode": "create", "certmode": "client", "catype": "ca1", "clientsubject": "/CN=x", "keyfilepath": "/tmp/key", "cafilepath": "/ca", "clientfilepath": "/x"}
		for k, v := range m {
			base[k] = v
		}
		return f.dev(base)
	}
	get := func(m map[string]any) map[string]any {
		base := map[string]any{"mode": "get", "keynumber": f.kn, "catype": "ca1", "filepath": certPath}
		for k, v := range m {
			base[k] = v
		}
		return f.dev(base)
	}
	upd := func(m map[string]any) map[string]any {
		base := map[string]any{"mode": "update", "keynumber": f.kn, "catype": "ca1", "passphrase": "p", "filepath": certPath}
		for k, v := range m {
			base[k] = v
		}
		return f.dev(base)
	}
	key := func(mode string, m map[string]any) map[string]any {
		base := map[string]any{"mode": mode, "keynumber": f.k1, "filepath": keyPath}
		if mode == "create" {
			base = map[string]any{"mode": mode, "alias": "a", "keytype": "AES", "keyfilepath": "/tmp/key", "commonkeyfilepath": "/k"}
		}
		if mode == "delete" {
			base["commonkey"] = f.ck1
		}
		for k, v := range m {
			base[k] = v
		}
		return f.dev(base)
	}
	f.run(t, []errCase{
		{"1101 not JSON", "", idinfo, "{mode:create", 400, 1101},
		{"1101 null", "", credinfo, "null", 400, 1101},
		{"1101 an array", "", keyinfo, `[{"mode":"get"}]`, 400, 1101},
		{"1101 trailing data", "", idinfo, `{"mode":"auth"} {}`, 400, 1101},
		{"1102 mode missing", "", idinfo, map[string]any{"tenantid": "t"}, 400, 1102},
		{"1103 mode unknown", "", idinfo, map[string]any{"mode": "issue"}, 400, 1103},
		{"1103 mode a number", "", keyinfo, map[string]any{"mode": 1}, 400, 1103},
		{"1102 tenantid missing", "", idinfo, map[string]any{"mode": "create", "alias": "a"}, 400, 1102},
		{"1102 before 1103", "", keyinfo, key("create", map[string]any{"alias": nil, "keylength": "x"}), 400, 1102},
		{"1103 alias a number", "", idinfo, map[string]any{"mode": "create", "tenantid": "t", "alias": 5}, 400, 1103},
		{"1103 keynumber not decimal", "", keyinfo, key("get", map[string]any{"keynumber": "12a"}), 400, 1103},
		{"1103 keynumber negative", "", keyinfo, key("get", map[string]any{"keynumber": -3}), 400, 1103},
		{"1103 ext_data not an object", "", keyinfo, key("get", map[string]any{"ext_data": []string{"a"}}), 400, 1103},
		{"1103 ext_data value not a string", "", keyinfo, key("get", map[string]any{"ext_data": map[string]any{"a": 1}}), 400, 1103},
		{"1103 bad MAC", "", keyinfo, key("get", map[string]any{"macaddress": "12:34"}), 400, 1103},
		{"1103 bad IP", "", keyinfo, key("get", map[string]any{"ipaddress": "1.2.3"}), 400, 1103},
		{"1103 unknown keytype", "", keyinfo, key("create", map[string]any{"keytype": "DES"}), 400, 1103},
		{"1103 unknown certmode", "", credinfo, cert(map[string]any{"certmode": "server"}), 400, 1103},
		{"1103 bad subject", "", credinfo, cert(map[string]any{"clientsubject": "CN=x"}), 400, 1103},
		{"1103 non-BMP p12 passphrase", "", credinfo, cert(map[string]any{"clientcerttype": "p12", "passphrase": "🔑"}), 400, 1103},
		{"1103 commonkey not base64", "", keyinfo, key("delete", map[string]any{"commonkey": "!!"}), 400, 1103},
		{"1104 alias over 64 bytes", "", keyinfo, key("create", map[string]any{"alias": strings.Repeat("a", 65)}), 400, 1104},
		{"1104 TWINE-256", "", keyinfo, key("create", map[string]any{"keytype": "TWINE", "keylength": 256}), 400, 1104},
		{"1104 keylength 0", "", keyinfo, key("create", map[string]any{"keylength": "0"}), 400, 1104},
		{"1104 keynumber past int64", "", keyinfo, key("get", map[string]any{"keynumber": "99999999999999999999"}), 400, 1104},
		{"1104 devicename over 256 bytes", "", credinfo, cert(map[string]any{"deviceid": nil, "devicename": strings.Repeat("n", 257)}), 400, 1104},
		{"1104 subject over 512 bytes", "", credinfo, cert(map[string]any{"clientsubject": "/CN=x/O=" + strings.Repeat("o", 510)}), 400, 1104},
		{"1104 filepath over 1024 bytes", "", keyinfo, key("get", map[string]any{"filepath": "/" + strings.Repeat("p", 1024)}), 400, 1104},
		{"1201 wrong PSK password", "", idinfo, map[string]any{"mode": "auth", "keyid": f.keyid, "key": "wrong"}, 403, 1201},
		{"1204 unknown keyid", "", idinfo, map[string]any{"mode": "auth", "keyid": "0000099999", "key": "x"}, 404, 1204},
		{"1204 on a credential request", "", keyinfo, key("get", map[string]any{"keyid": "0000099999"}), 404, 1204},
		{"1301 no such certificate", "", credinfo, get(map[string]any{"keynumber": "99999"}), 404, 1301},
		{"1301 another tenant's certificate", "", credinfo, get(map[string]any{"keynumber": f.foreign}), 404, 1301},
		{"1301 catype CA for a client certificate", "", credinfo, get(map[string]any{"catype": "CA"}), 404, 1301},
		{"1302 unknown catype", "", credinfo, cert(map[string]any{"catype": "ca9"}), 404, 1302},
		{"1302 caonly with ca1", "", credinfo, cert(map[string]any{"certmode": "caonly", "catype": "ca1"}), 404, 1302},
		{"1303 not bound to this device", "", credinfo, upd(map[string]any{"keynumber": f.other}), 404, 1303},
		{"1306 revoked", "", credinfo, get(map[string]any{"keynumber": f.revoked}), 403, 1306},
		{"1306 revoke twice", "", credinfo, f.dev(map[string]any{"mode": "revoke", "keynumber": f.revoked, "catype": "ca1"}), 403, 1306},
		{"1307 adopting a revoked certificate", "", credinfo, upd(map[string]any{"newkeynumber": f.revoked}), 403, 1307},
		{"1309 wrong filepath", "", credinfo, upd(map[string]any{"filepath": "/nowhere"}), 404, 1309},
		{"1501 no such key", "", keyinfo, key("get", map[string]any{"keynumber": 99999}), 404, 1501},
		{"1502 no such new key", "", keyinfo, key("update", map[string]any{"newkeynumber": 99999}), 404, 1502},
		{"1503 wrong filepath", "", keyinfo, key("update", map[string]any{"filepath": "/nowhere"}), 404, 1503},
		{"1504 rotated key", "", keyinfo, key("get", map[string]any{"keynumber": f.kOld}), 403, 1504},
		{"1505 new key not active", "", keyinfo, key("update", map[string]any{"newkeynumber": f.kOld}), 403, 1505},
		{"1507 new key of another type", "", keyinfo, key("update", map[string]any{"newkeynumber": f.kTwine}), 400, 1507},
		{"1508 commonkey mismatch", "", keyinfo, key("delete", map[string]any{"commonkey": "AAAAAAAAAAAAAAAAAAAAAA=="}), 400, 1508},
		{"1701 devicename mismatch", "", keyinfo, key("get", map[string]any{"devicename": "someone"}), 400, 1701},
		{"1702 device name taken", "", credinfo, cert(map[string]any{"deviceid": nil}), 400, 1702},
		{"1703 device key mismatch", "", keyinfo, key("get", map[string]any{"devicekey": "wrong"}), 403, 1703},
		{"1706 unknown device", "", keyinfo, key("get", map[string]any{"deviceid": "nosuchdevice"}), 404, 1706},
		{"1706 another tenant's device", "", keyinfo, key("get", map[string]any{"keyid": f.keyid2, "key": f.key2}), 404, 1706},
		{"405 wrong method", "PUT", credinfo, map[string]any{}, 405, 1103},
		{"404 unknown path", "POST", "/SWCLM/v10/Nothing", map[string]any{}, 404, 1103},
		{"404 CRL of an unknown CA", "GET", "/SWCLM/v10/CRL?catype=ca9", nil, 404, 1302},
	})

	// Codes that need the clock or the state moved.
	ctx := context.Background()
	if err := f.m.SetPSKStatus(ctx, f.keyid2, lifecycle.PSKDisabled); err != nil {
		t.Fatal(err)
	}
	f.run(t, []errCase{{"1202 disabled PSK", "", idinfo, map[string]any{"mode": "auth", "keyid": f.keyid2, "key": f.key2}, 403, 1202}})
	if err := f.m.SetDeviceStatus(ctx, "tenant01", f.devid, lifecycle.DeviceDisabled); err != nil {
		t.Fatal(err)
	}
	f.run(t, []errCase{{"1704 disabled device", "", keyinfo, key("get", nil), 403, 1704}})
	f.m.SetDeviceStatus(ctx, "tenant01", f.devid, lifecycle.DeviceActive)
	f.clock.set(t0.Add(-2 * time.Minute))
	f.run(t, []errCase{{"1304 not yet valid", "", credinfo, upd(nil), 403, 1304}})
	f.clock.set(t0.Add(49 * time.Hour))
	f.run(t, []errCase{
		{"1305 expired", "", credinfo, get(nil), 403, 1305},
	})
	f.clock.set(t0.Add(11 * 365 * 24 * time.Hour))
	f.run(t, []errCase{{"1203 expired PSK", "", idinfo, map[string]any{"mode": "auth", "keyid": f.keyid, "key": f.key}, 403, 1203}})
	f.clock.set(t0)
}

// TestErrorCodesNeedingTheirOwnServer covers codes whose setup would
// disturb the shared fixture.
func TestErrorCodesNeedingTheirOwnServer(t *testing.T) {
	ctx := context.Background()
	t.Run("1205 keyid sequence exhausted", func(t *testing.T) {
		s := newServer(t, nil)
		if err := s.store.RaiseSequence(ctx, driver.SeqKeyID, lifecycle.MaxKeyID); err != nil {
			t.Fatal(err)
		}
		f := &fixture{server: s}
		f.run(t, []errCase{{"create", "", idinfo, map[string]any{"mode": "create", "tenantid": "t", "alias": "a"}, 500, 1205}})
	})
	t.Run("1308 adopting an expired certificate", func(t *testing.T) {
		s := newServer(t, &lifecycle.Options{CertValidity: time.Hour})
		f := &fixture{server: s}
		f.keyid, f.key = s.psk("t")
		mk := func(devName, path string, extra map[string]any) map[string]any {
			b := map[string]any{"mode": "create", "keyid": f.keyid, "key": f.key, "devicename": devName, "certmode": "client", "catype": "ca1",
				"clientsubject": "/CN=a", "keyfilepath": "/tmp/key", "cafilepath": "/ca", "clientfilepath": path}
			for k, v := range extra {
				b[k] = v
			}
			_, _, r := s.call("POST", credinfo, b)
			return r
		}
		old := mk("d", "/old", nil)
		f.devid, f.devkey = old["deviceid"].(string), old["devicekey"].(string)
		s.clock.set(t0.Add(59 * time.Minute))
		young := mk("d", "/young", map[string]any{"deviceid": f.devid, "devicekey": f.devkey})
		s.clock.set(t0.Add(61 * time.Minute)) // old expired, young valid
		f.run(t, []errCase{{"adopt", "", credinfo, map[string]any{"mode": "update", "keyid": f.keyid, "key": f.key, "deviceid": f.devid, "devicename": "d",
			"keynumber": num(young["clientkeynumber"]), "newkeynumber": num(old["clientkeynumber"]), "catype": "ca1", "filepath": "/young"}, 403, 1308}})
	})
	t.Run("1506 adopting an expired key", func(t *testing.T) {
		s := newServer(t, &lifecycle.Options{KeyValidity: time.Hour})
		f := &fixture{server: s}
		f.keyid, f.key = s.psk("t")
		_, _, a := s.call("POST", keyinfo, map[string]any{"mode": "create", "keyid": f.keyid, "key": f.key, "alias": "a", "keytype": "AES", "keyfilepath": "/tmp/key", "commonkeyfilepath": "/a"})
		f.devid, f.devkey = a["deviceid"].(string), a["devicekey"].(string)
		s.clock.set(t0.Add(59 * time.Minute))
		_, _, b := s.call("POST", keyinfo, map[string]any{"mode": "create", "keyid": f.keyid, "key": f.key, "deviceid": f.devid, "alias": "b", "keytype": "AES", "keyfilepath": "/tmp/key", "commonkeyfilepath": "/b"})
		s.clock.set(t0.Add(61 * time.Minute))
		f.run(t, []errCase{{"adopt", "", keyinfo, map[string]any{"mode": "update", "keyid": f.keyid, "key": f.key, "deviceid": f.devid, "devicename": f.devid,
			"keynumber": num(b["keynumber"]), "newkeynumber": num(a["keynumber"]), "filepath": "/b"}, 403, 1506}})
	})
	t.Run("1705 expired device", func(t *testing.T) {
		s := newServer(t, &lifecycle.Options{DeviceValidity: time.Hour})
		f := &fixture{server: s}
		f.keyid, f.key = s.psk("t")
		_, _, a := s.call("POST", keyinfo, map[string]any{"mode": "create", "keyid": f.keyid, "key": f.key, "alias": "a", "keytype": "AES", "keyfilepath": "/tmp/key", "commonkeyfilepath": "/a"})
		s.clock.set(t0.Add(2 * time.Hour))
		f.run(t, []errCase{{"get", "", keyinfo, map[string]any{"mode": "get", "keyid": f.keyid, "key": f.key, "deviceid": a["deviceid"], "devicename": a["deviceid"],
			"keynumber": a["keynumber"], "filepath": "/a"}, 403, 1705}})
	})
	t.Run("2003 a sealed value moved to another row", func(t *testing.T) {
		s := newServer(t, nil)
		f := &fixture{server: s}
		k1, p1 := s.psk("t")
		_, p2 := s.psk("t")
		_ = p2
		db := s.store.DB()
		if err := db.Exec("UPDATE clm_psks SET password = (SELECT password FROM clm_psks WHERE key_id = 2) WHERE key_id = 1").Error; err != nil {
			t.Fatal(err)
		}
		f.run(t, []errCase{{"auth", "", idinfo, map[string]any{"mode": "auth", "keyid": k1, "key": p1}, 500, 2003}})
	})
	t.Run("1401 a CA that cannot sign", func(t *testing.T) {
		s := newServer(t, nil)
		keys, _ := lifecycle.NewStaticKeys(1, map[uint32][]byte{1: bytes.Repeat([]byte{9}, 32)})
		m, err := lifecycle.New(s.store, &lifecycle.Options{Keys: keys, CAs: []lifecycle.CA{&brokenCA{CA: s.ca}}})
		if err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewServer(httpadapter.New(m, &httpadapter.Options{License: license}))
		defer srv.Close()
		f := &fixture{server: &server{t: t, url: srv.URL, store: s.store, m: m, clock: s.clock}}
		f.keyid, f.key = f.psk("t")
		f.run(t, []errCase{
			{"SystemStatus", "GET", "/SWCLM/v10/SystemStatus", nil, 500, 1401},
			{"issue", "", credinfo, map[string]any{"mode": "create", "keyid": f.keyid, "key": f.key, "devicename": "d", "certmode": "client", "catype": "ca1",
				"clientsubject": "/CN=a", "keyfilepath": "/tmp/key", "cafilepath": "/ca", "clientfilepath": "/c"}, 500, 1401},
		})
	})
	t.Run("1601 the database is gone", func(t *testing.T) {
		s := newServer(t, nil)
		f := &fixture{server: s}
		f.keyid, f.key = s.psk("t")
		s.store.Close()
		status, _, r := s.call("GET", "/SWCLM/v10/SystemStatus", nil)
		if status != 500 || num(r["errorcode"]) != "1601" {
			t.Fatalf("SystemStatus with the store closed: %d %v", status, r)
		}
		status, _, r = s.call("POST", idinfo, map[string]any{"mode": "auth", "keyid": f.keyid, "key": f.key})
		if status != 500 || !strings.HasPrefix(num(r["errorcode"]), "16") {
			t.Fatalf("a request with the store closed must answer a database error: %d %v", status, r)
		}
	})
}

// brokenCA is a CA whose key is gone: it signs nothing.
type brokenCA struct{ lifecycle.CA }

func (b *brokenCA) Sign(context.Context, *x509.Certificate, crypto.PublicKey) (*x509.Certificate, error) {
	return nil, errors.New("the HSM is gone")
}

func (b *brokenCA) SignCRL(context.Context, *x509.RevocationList) ([]byte, error) {
	return nil, errors.New("the HSM is gone")
}
