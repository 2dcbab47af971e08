// Command quickstart is the README's library sample: a PSK, a device, a
// certificate, a renewal, a revocation and the CRL, a symmetric key rotated
// and deleted, on an SQLite file. Its master key is kept beside the
// database, so that it runs again on the same file.
package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"log"
	"os"

	"github.com/credlife/clm/backends/sqlitestore"
	"github.com/credlife/clm/ca"
	"github.com/credlife/clm/lifecycle"
)

func main() {
	ctx := context.Background()
	// The master key seals every secret in the store: keep it, and keep it
	// away from the database (here a file for the sample; in production an
	// environment variable, a file of its own, or a KMS).
	kek, err := os.ReadFile("clm.masterkey")
	if errors.Is(err, fs.ErrNotExist) {
		kek = make([]byte, 32)
		rand.Read(kek)
		err = os.WriteFile("clm.masterkey", kek, 0o600)
	}
	if err != nil {
		log.Fatal(err)
	}
	keys, err := lifecycle.NewStaticKeys(1, map[uint32][]byte{1: kek})
	if err != nil {
		log.Fatal(err)
	}
	store, err := sqlitestore.Open(ctx, "clm.db", nil) // or mysqlstore.Open, postgresstore.Open
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()
	ca1, err := ca.Open(ctx, store, keys, nil) // the local CA "ca1", created on first start
	if err != nil {
		log.Fatal(err)
	}
	m, err := lifecycle.New(store, &lifecycle.Options{Keys: keys, CAs: []lifecycle.CA{ca1}})
	if err != nil {
		log.Fatal(err)
	}

	psk, err := m.IssuePSK(ctx, lifecycle.IssuePSKRequest{Tenant: "tenant01", Alias: "gateways"})
	if err != nil {
		log.Fatal(err)
	}
	creds := lifecycle.PSKCredentials{KeyID: psk.KeyID, Password: psk.Password}
	dev, err := m.EnrollDevice(ctx, lifecycle.EnrollDeviceRequest{
		PSK:    creds,
		Device: lifecycle.DeviceRequest{Name: "edge-" + psk.KeyID, MACAddress: "aa-bb-cc-dd-ee-ff"},
	})
	if err != nil {
		log.Fatal(err)
	}
	device := lifecycle.DeviceRequest{ID: dev.Device.ID, Key: dev.Key}

	// A certificate from the default CA, in PEM, its key unencrypted PKCS#8.
	cert, err := m.IssueCertificate(ctx, lifecycle.IssueCertificateRequest{
		PSK: creds, Device: device, Subject: "/C=JP/O=Example/CN=ap1.example.com",
	})
	if err != nil {
		log.Fatal(err)
	}
	ref := lifecycle.CertificateRef{KeyNumber: cert.Certificate.KeyNumber}
	p12, err := m.GetCertificate(ctx, lifecycle.GetCertificateRequest{
		PSK: creds, Device: device, Ref: ref, Format: lifecycle.FormatP12, Passphrase: "pfx-pass",
	})
	if err != nil {
		log.Fatal(err)
	}
	renewed, err := m.RenewCertificate(ctx, lifecycle.RenewCertificateRequest{PSK: creds, Device: device, Ref: ref})
	if err != nil {
		log.Fatal(err)
	}
	_, err = m.RevokeCertificate(ctx, lifecycle.RevokeCertificateRequest{
		PSK: creds, Device: device, Ref: lifecycle.CertificateRef{KeyNumber: renewed.Certificate.KeyNumber},
		Reason: lifecycle.ReasonKeyCompromise,
	})
	if err != nil {
		log.Fatal(err)
	}
	crl, err := m.CRL(ctx, ca1.Name())
	if err != nil {
		log.Fatal(err)
	}

	// A symmetric key (AES-128 by default), rotated, then deleted.
	key, err := m.CreateKey(ctx, lifecycle.CreateKeyRequest{PSK: creds, Device: device, Alias: "sensor-key"})
	if err != nil {
		log.Fatal(err)
	}
	rotated, err := m.RotateKey(ctx, lifecycle.RotateKeyRequest{PSK: creds, Device: device, KeyNumber: key.KeyNumber})
	if err != nil {
		log.Fatal(err)
	}
	_, err = m.DeleteKey(ctx, lifecycle.DeleteKeyRequest{PSK: creds, Device: device, KeyNumber: rotated.KeyNumber, Key: rotated.Key})
	if err != nil {
		log.Fatal(err)
	}
	// Secrets (psk.Password, dev.Key, cert.PrivateKey, key.Key) print as [REDACTED].
	fmt.Printf("PSK %s, device %s, certificate %s (PKCS#12 %d bytes), renewed as %s and revoked (CRL %d), key %d rotated to %d and deleted\n",
		psk.KeyID, dev.Device.ID, cert.Certificate.Serial, len(p12.Certificate.Data), renewed.Certificate.Serial, crl.Number, key.KeyNumber, rotated.KeyNumber)
}
