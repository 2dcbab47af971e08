package client_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/credlife/clm/httpadapter/client"
	"github.com/credlife/clm/lifecycle"
)

// FuzzAnswers feeds the client arbitrary answers, as a hostile or broken
// server could: PEM, base64 DER and PKCS#12 fields, numbers and times are
// decoded without a panic, and a failure is a CLM-coded error.
func FuzzAnswers(f *testing.F) {
	var mu sync.Mutex
	var answer []byte
	var status int
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		w.WriteHeader(status)
		w.Write(answer)
	}))
	f.Cleanup(srv.Close)
	c := client.New(srv.URL, "x", nil)
	for _, a := range []string{
		`{"errorcode":0,"deviceid":"d","cacert":"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n","cacerttype":"pem","clientcert":"AAEC","clientcerttype":"der","clientkeynumber":"7"}`,
		`{"errorcode":0,"clientcert":"!!!","clientcerttype":"p12"}`,
		`{"errorcode":0,"commonkey":"AAAA","keynumber":"x","expiration":"-1"}`,
		`{"errorcode":1306}`, `{"errorcode":"1306"}`, `[]`, `null`, `{"keyinfo":[{"keyid":1}]}`,
	} {
		f.Add(200, []byte(a))
	}
	f.Fuzz(func(t *testing.T, st int, body []byte) {
		if st < 100 || st > 599 {
			st = 200
		}
		mu.Lock()
		answer, status = body, st
		mu.Unlock()
		ctx := context.Background()
		p := lifecycle.PSKCredentials{KeyID: "1", Password: "p"}
		check := func(err error) {
			if err != nil && lifecycle.CodeOf(err) == lifecycle.CodeOK {
				t.Fatalf("an error without a code: %v", err)
			}
		}
		_, err := c.GetCertificate(ctx, lifecycle.GetCertificateRequest{PSK: p, CA: "ca1", Ref: lifecycle.CertificateRef{KeyNumber: 1}, Path: "/p"})
		check(err)
		_, err = c.GetKey(ctx, lifecycle.GetKeyRequest{PSK: p, KeyNumber: 1, Path: "/p"})
		check(err)
		_, err = c.ListPSKs(ctx, lifecycle.ListPSKsRequest{})
		check(err)
		_, err = c.CRL(ctx, "ca1")
		check(err)
	})
}
