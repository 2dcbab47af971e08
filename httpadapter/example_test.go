package httpadapter_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/credlife/clm/backends/memstore"
	"github.com/credlife/clm/httpadapter"
	"github.com/credlife/clm/lifecycle"
)

// Mount the protocol on your own mux, behind your own middleware (here one
// that refuses requests without a tenant header, and tags the rest), next
// to your other routes.
func Example() {
	keys, _ := lifecycle.NewStaticKeys(1, map[uint32][]byte{1: make([]byte, 32)})
	m, err := lifecycle.New(memstore.New(), &lifecycle.Options{Keys: keys})
	if err != nil {
		log.Fatal(err)
	}
	clm := httpadapter.New(m, &httpadapter.Options{License: "the-installation-license"})
	requireTenant := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("X-Tenant") == "" {
				http.Error(w, "no tenant", http.StatusForbidden)
				return
			}
			w.Header().Set("X-Served-By", "clm")
			next.ServeHTTP(w, r)
		})
	}
	mux := http.NewServeMux()
	mux.Handle(clm.Prefix(), requireTenant(clm))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	srv := httptest.NewServer(mux)
	defer srv.Close()

	req, _ := http.NewRequestWithContext(context.Background(), "POST", srv.URL+clm.Prefix()+"IDInfo",
		strings.NewReader(`{"mode":"create","tenantid":"tenant01","alias":"gateways"}`))
	req.SetBasicAuth(httpadapter.LicenseUser, "the-installation-license")
	req.Header.Set("X-Tenant", "tenant01")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		log.Fatal(err)
	}
	resp.Body.Close()
	fmt.Println(resp.StatusCode, resp.Header.Get("X-Served-By"))
	// Output: 201 clm
}

// Certificates name the server's OCSP responder, CA certificate and CRL
// when the engine knows its public URL.
func ExampleIssuerURLs() {
	urls := httpadapter.IssuerURLs("https://clm.example.com", "")
	u := urls("ca1")
	fmt.Println(u.OCSP[0])
	fmt.Println(u.CAIssuers[0])
	fmt.Println(u.CRL[0])
	// Then: lifecycle.New(store, &lifecycle.Options{..., URLs: urls})
	// Output:
	// https://clm.example.com/SWCLM/v10/OCSP/ca1
	// https://clm.example.com/SWCLM/v10/CACert?catype=ca1
	// https://clm.example.com/SWCLM/v10/CRL?catype=ca1
}
