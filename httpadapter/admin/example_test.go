package admin_test

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"

	"github.com/credlife/clm/backends/memstore"
	"github.com/credlife/clm/ca"
	"github.com/credlife/clm/httpadapter/admin"
	"github.com/credlife/clm/lifecycle"
)

// Mount the admin API beside the v10 protocol, behind a bearer token.
func ExampleNew() {
	ctx := context.Background()
	store := memstore.New()
	keys, _ := lifecycle.NewStaticKeys(1, map[uint32][]byte{1: make([]byte, 32)})
	ca1, _ := ca.Open(ctx, store, keys, nil)
	m, err := lifecycle.New(store, &lifecycle.Options{Keys: keys, CAs: []lifecycle.CA{ca1}})
	if err != nil {
		log.Fatal(err)
	}
	h := admin.New(m, &admin.Options{Token: "a-token-of-at-least-16-characters"})
	mux := http.NewServeMux()
	mux.Handle(h.Prefix(), h)
	srv := httptest.NewServer(mux)
	defer srv.Close()

	req, _ := http.NewRequest("GET", srv.URL+"/admin/v1/cas", nil)
	req.Header.Set("Authorization", "Bearer a-token-of-at-least-16-characters")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		log.Fatal(err)
	}
	resp.Body.Close()
	fmt.Println(resp.StatusCode)
	resp, _ = http.Get(srv.URL + "/admin/v1/cas") // no token
	resp.Body.Close()
	fmt.Println(resp.StatusCode)
	// Output:
	// 200
	// 401
}

func ExampleOpenAPI() {
	fmt.Println(string(admin.OpenAPI()[:14]))
	// Output: openapi: 3.1.0
}
