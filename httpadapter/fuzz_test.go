package httpadapter_test

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"

	"github.com/credlife/clm/httpadapter"
	"github.com/credlife/clm/lifecycle"
)

var fuzzPaths = []string{idinfo, credinfo, keyinfo, "/SWCLM/v10/SystemStatus", "/SWCLM/v10/CRL"}

// fuzzServer is a server whose randomness is fixed, so that the PSK in the
// seeds authenticates in every fuzzing worker process.
func fuzzServer(f *testing.F) (*server, string, string) {
	s := newServer(f, &lifecycle.Options{Rand: rand.NewChaCha8([32]byte{1}), AuthFailures: -1})
	// Without the limit on wrong licenses: every fuzzed request comes from
	// one address, and after 100 wrong licenses the right one would be
	// refused too (found by CI's fuzzing: "BAsiC <the license>" got 401).
	s.h = httpadapter.New(s.m, &httpadapter.Options{License: license, LicenseFailures: -1})
	keyid, key := s.psk("tenant01")
	return s, keyid, key
}

// checkAnswer: the answer is a JSON object with a known errorcode and the
// status of the table; a rejected request changed no row.
func checkAnswer(t *testing.T, s *server, rec *httptest.ResponseRecorder, before string) {
	var r map[string]any
	dec := json.NewDecoder(bytes.NewReader(rec.Body.Bytes()))
	dec.UseNumber()
	if rec.Header().Get("Content-Type") == "application/pkix-crl" {
		return
	}
	if err := dec.Decode(&r); err != nil {
		t.Fatalf("the answer is not JSON: %d %q", rec.Code, rec.Body.String())
	}
	n, err := r["errorcode"].(json.Number).Int64()
	if err != nil {
		t.Fatalf("errorcode is not a number: %v", r["errorcode"])
	}
	code := lifecycle.Code(n)
	if code == lifecycle.CodeOK {
		if rec.Code != 200 && rec.Code != 201 {
			t.Fatalf("success with status %d", rec.Code)
		}
		return
	}
	if !slices.Contains(lifecycle.Codes(), code) {
		t.Fatalf("errorcode %d is not in the table", code)
	}
	if want := httpadapter.StatusOf(code); rec.Code != want && rec.Code != 401 && rec.Code != 404 && rec.Code != 405 && rec.Code != 413 {
		t.Fatalf("errorcode %d with status %d, want %d", code, rec.Code, want)
	}
	if s.hashT(t) != before {
		t.Fatalf("a rejected request (%d) changed the store", code)
	}
}

// FuzzRequest sends arbitrary bodies to every endpoint.
func FuzzRequest(f *testing.F) {
	s, keyid, key := fuzzServer(f)
	seeds := []string{
		`{"mode":"create","tenantid":"t","alias":"a"}`,
		`{"mode":"auth","keyid":"` + keyid + `","key":"` + key + `"}`,
		`{"mode":"create","keyid":"` + keyid + `","key":"` + key + `","devicename":"d","certmode":"client","catype":"ca1","clientsubject":"/CN=x","keyfilepath":"/k","cafilepath":"/c","clientfilepath":"/p"}`,
		`{"mode":"create","keyid":"` + keyid + `","key":"` + key + `","alias":"a","keytype":"TWINE","keylength":80,"keyfilepath":"/k","commonkeyfilepath":"/c"}`,
		`{"mode":"get","keyid":"` + keyid + `","key":"` + key + `","deviceid":"x","devicename":"d","keynumber":"1","filepath":"/p","ext_data":{"a":"b"}}`,
		`{"mode":"update","keynumber":18446744073709551616}`, `null`, `[]`, `{"mode":1}`, `{`, ``,
	}
	for i, b := range seeds {
		f.Add(uint8(i%3), []byte(b))
	}
	f.Add(uint8(3), []byte{})
	f.Add(uint8(4), []byte("catype=ca1"))
	f.Fuzz(func(t *testing.T, endpoint uint8, body []byte) {
		path := fuzzPaths[int(endpoint)%len(fuzzPaths)]
		method, query := "POST", ""
		if endpoint%len8(fuzzPaths) >= 3 {
			method, query = "GET", string(body)
		}
		before := s.hashT(t)
		req := httptest.NewRequest(method, path, bytes.NewReader(body))
		req.URL.RawQuery = query
		req.SetBasicAuth("secureware-clm", license)
		rec := httptest.NewRecorder()
		s.h.ServeHTTP(rec, req)
		checkAnswer(t, s, rec, before)
	})
}

func len8(s []string) uint8 { return uint8(len(s)) }

// FuzzBasicAuth: only the exact license passes; nothing panics.
func FuzzBasicAuth(f *testing.F) {
	s, _, _ := fuzzServer(f)
	for _, h := range []string{"Basic c2VjdXJld2FyZS1jbG06dGVzdC1saWNlbnNlLWtleS0wMTIzNDU2Nzg5", "Basic", "Basic !!!", "Bearer x", "basic c2VjdXJld2FyZS1jbG06", ""} {
		f.Add(h)
	}
	f.Fuzz(func(t *testing.T, header string) {
		req := httptest.NewRequest("GET", idinfo+"?keyid=1", nil)
		req.Header.Set("Authorization", header)
		rec := httptest.NewRecorder()
		s.h.ServeHTTP(rec, req)
		user, pass, ok := req.BasicAuth()
		valid := ok && user == "secureware-clm" && pass == license
		if valid != (rec.Code == http.StatusOK) {
			t.Fatalf("header %q: status %d", header, rec.Code)
		}
		if !valid && (rec.Code != 401 || rec.Header().Get("WWW-Authenticate") == "") {
			t.Fatalf("a refused header answers 401 with WWW-Authenticate: %d", rec.Code)
		}
	})
}
