package est_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"

	"github.com/credlife/clm/backends/memstore"
	"github.com/credlife/clm/ca"
	"github.com/credlife/clm/httpadapter/est"
	"github.com/credlife/clm/lifecycle"
)

// Serve EST on a TLS listener that asks for client certificates, and
// enrol a device with its PSK through the Go client.
func Example() {
	ctx := context.Background()
	store := memstore.New()
	keys, _ := lifecycle.NewStaticKeys(1, map[uint32][]byte{1: make([]byte, 32)})
	ca1, _ := ca.Open(ctx, store, keys, nil)
	m, err := lifecycle.New(store, &lifecycle.Options{Keys: keys, CAs: []lifecycle.CA{ca1}})
	if err != nil {
		log.Fatal(err)
	}
	psk, _ := m.IssuePSK(ctx, lifecycle.IssuePSKRequest{Tenant: "factory", Alias: "line-3"})

	h := est.New(m, nil)
	srv := httptest.NewUnstartedServer(h)
	srv.TLS = &tls.Config{ClientAuth: tls.RequestClientCert}
	srv.StartTLS()
	defer srv.Close()

	// The device: its key never leaves it.
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	c := est.NewClient(srv.URL, "", &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}})
	chain, err := c.CACerts(ctx)
	if err != nil {
		log.Fatal(err)
	}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	csr, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "plc-17"}}, key)
	cert, err := c.Enroll(ctx, csr, &lifecycle.PSKCredentials{KeyID: psk.KeyID, Password: psk.Password})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(len(chain), cert.Subject.CommonName, cert.CheckSignatureFrom(chain[0]) == nil)
	// Output: 1 plc-17 true
}
