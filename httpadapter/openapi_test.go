//go:build !clmfuzz

// The fuzz builds (make fuzz: -tags clmfuzz) leave this file out: fuzzing
// instruments every package of the test binary, and libopenapi is large.

package httpadapter_test

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/pb33f/libopenapi"
	validator "github.com/pb33f/libopenapi-validator"

	"github.com/credlife/clm/httpadapter"
	"github.com/credlife/clm/lifecycle"
)

// openAPIValidator checks exchanges against httpadapter's OpenAPI document
// with pb33f/libopenapi-validator.
// With answersOnly, requests (which may be wrong on purpose) are not checked.
func openAPIValidator(t *testing.T, answersOnly bool) func(*http.Request, []byte, *http.Response, []byte) {
	t.Helper()
	doc, err := libopenapi.NewDocument(httpadapter.OpenAPI())
	if err != nil {
		t.Fatal(err)
	}
	v, errs := validator.NewValidator(doc)
	if len(errs) > 0 {
		t.Fatalf("the OpenAPI document does not load: %v", errs)
	}
	if ok, errs := v.ValidateDocument(); !ok {
		for _, e := range errs {
			t.Errorf("the OpenAPI document is not valid: %s: %s", e.Message, e.Reason)
		}
		t.FailNow()
	}
	return func(req *http.Request, reqBody []byte, resp *http.Response, respBody []byte) {
		t.Helper()
		req = req.Clone(req.Context())
		req.Body = io.NopCloser(bytes.NewReader(reqBody))
		resp.Body = io.NopCloser(bytes.NewReader(respBody))
		validate := v.ValidateHttpRequestResponse
		if answersOnly {
			validate = v.ValidateHttpResponse
		}
		if ok, errs := validate(req, resp); !ok {
			for _, e := range errs {
				t.Errorf("%s %s (answer %d): %s: %s", req.Method, req.URL.Path, resp.StatusCode, e.Message, e.Reason)
				for _, se := range e.SchemaValidationErrors {
					t.Errorf("  %s (%s): %s", se.FieldPath, se.KeywordLocation, se.Reason)
				}
			}
		}
	}
}

// TestGoldenMatchesOpenAPI runs the golden scenario (every endpoint and
// mode, with the reference's aliases) and validates each request and
// answer against openapi.yaml, so that the document cannot drift from the
// code; then a few failures, whose answers must match it too.
func TestGoldenMatchesOpenAPI(t *testing.T) {
	s := newServer(t, nil)
	s.check = openAPIValidator(t, false)
	runGolden(t, s)
	s.check = openAPIValidator(t, true)
	s.call("POST", idinfo, map[string]any{"mode": "auth", "keyid": "1", "key": "wrong"})
	s.call("POST", idinfo, map[string]any{"mode": "create", "alias": "no tenant"})
	s.call("POST", "/SWCLM/v10/KeyInfo", map[string]any{"mode": "get", "keyid": "1", "key": "x", "deviceid": "d", "devicename": "n", "keynumber": 99, "filepath": "/p"})
	s.callAuth("POST", idinfo, map[string]any{"mode": "create", "tenantid": "t", "alias": "a"}, "secureware-clm", "wrong-license")
}

// TestServesOpenAPI: the document is served at {prefix}openapi.yaml,
// without authentication.
func TestServesOpenAPI(t *testing.T) {
	s := newServer(t, nil)
	resp, err := http.Get(s.url + "/SWCLM/v10/openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/yaml" || !bytes.Equal(body, httpadapter.OpenAPI()) ||
		!strings.HasPrefix(string(body), "openapi: 3.1.0") {
		t.Fatalf("GET openapi.yaml: %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
}

// TestPKIMatchesOpenAPI validates the exchanges of certificates for a CSR,
// OCSP and the CA certificate download against the document.
func TestPKIMatchesOpenAPI(t *testing.T) {
	s := newServer(t, nil)
	s.check = openAPIValidator(t, true)
	runCSRScenario(t, s)
	s = newServer(t, &lifecycle.Options{URLs: httpadapter.IssuerURLs("https://clm.example.com", "")})
	s.check = openAPIValidator(t, true)
	runOCSPScenario(t, s)
}
