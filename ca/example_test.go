package ca_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/credlife/clm/backends/memstore"
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

// An issuing intermediate under a root: the root's key sealed in the store
// (or, with Options.Signer, in an HSM), the intermediate handed to the
// engine. Certificates chain to the root through it.
func ExampleOptions_issuer() {
	ctx := context.Background()
	store := memstore.New()
	keys, _ := lifecycle.NewStaticKeys(1, map[uint32][]byte{1: make([]byte, 32)})
	root, err := ca.Open(ctx, store, keys, &ca.Options{Name: "root", Root: true, Organization: "Example"})
	if err != nil {
		log.Fatal(err)
	}
	ca1, err := ca.Open(ctx, store, keys, &ca.Options{Name: "ca1", Issuer: root, Organization: "Example"})
	if err != nil {
		log.Fatal(err)
	}
	for _, c := range ca1.Chain() {
		fmt.Println(c.Subject.CommonName, "issued by", c.Issuer.CommonName)
	}
	// Output:
	// clm ca1 issuing CA issued by clm root root CA
	// clm root root CA issued by clm root root CA
}

// An intermediate made elsewhere under a root that stays offline: its
// chain and key go into the store once, and Open loads it from there.
func ExampleImport() {
	ctx := context.Background()
	keys, _ := lifecycle.NewStaticKeys(1, map[uint32][]byte{1: make([]byte, 32)})
	// The offline machine (here another store) makes the root and the
	// intermediate; only the intermediate's chain and key leave it.
	offline := memstore.New()
	root, _ := ca.Open(ctx, offline, keys, &ca.Options{Name: "root", Root: true, CommonName: "Example offline root"})
	inter, _ := ca.Open(ctx, offline, keys, &ca.Options{Name: "ca1", Issuer: root, CommonName: "Example devices CA"})

	store := memstore.New()
	if err := ca.Import(ctx, store, keys, "ca1", inter.Chain(), inter.Signer()); err != nil {
		log.Fatal(err)
	}
	ca1, err := ca.Open(ctx, store, keys, &ca.Options{Name: "ca1"})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(len(ca1.Chain()), ca1.Chain()[1].Subject.CommonName)
	// Output: 2 Example offline root
}
