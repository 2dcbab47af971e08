package ca_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/credlife/clm/backends/sqlitestore"
	"github.com/credlife/clm/ca"
	"github.com/credlife/clm/lifecycle"
)

// Open the default CA, give it to the engine, and issue a certificate.
func Example() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "clm-ca")
	defer os.RemoveAll(dir)
	store, err := sqlitestore.Open(ctx, filepath.Join(dir, "clm.db"), nil)
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()
	kek := make([]byte, 32)
	rand.Read(kek)
	keys, _ := lifecycle.NewStaticKeys(1, map[uint32][]byte{1: kek})

	ca1, err := ca.Open(ctx, store, keys, &ca.Options{Name: "ca1", Organization: "Example"})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("CA:", ca1.Certificate().Subject)

	m, _ := lifecycle.New(store, &lifecycle.Options{Keys: keys, CAs: []lifecycle.CA{ca1}})
	psk, _ := m.IssuePSK(ctx, lifecycle.IssuePSKRequest{Tenant: "tenant01", Alias: "gateways"})
	res, err := m.IssueCertificate(ctx, lifecycle.IssueCertificateRequest{
		PSK:     lifecycle.PSKCredentials{KeyID: psk.KeyID, Password: psk.Password},
		Device:  lifecycle.DeviceRequest{Name: "nec-edge-0001"},
		CA:      "ca1",
		Subject: "/C=JP/O=Example/CN=ap1.example.com",
		KeyPath: "/tmp/key", Path: "/etc/clm/client.pem", CAPath: "/etc/clm/ca.pem",
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("format:", res.Certificate.Format, "serial hex digits ≥ 16:", len(res.Certificate.Serial) >= 16)
	fmt.Println("private key:", res.PrivateKey)
	// Output:
	// CA: CN=clm ca1 root CA,O=Example
	// format: pem serial hex digits ≥ 16: true
	// private key: [REDACTED]
}
