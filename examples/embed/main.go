// Command embed shows clm embedded in a Go service, without HTTP: the
// lifecycle engine on an SQLite file, with a local CA. It prints what it
// does: it issues PSKs, lists them, authenticates one, registers a device,
// issues it a certificate and a TWINE key, then deletes a PSK.
//
//	go run ./examples/embed -db clm.db
//
// The key-encryption key that seals every secret comes from CLM_MASTER_KEY
// (base64 of 32 bytes) or from the file named by -keyfile; when neither
// exists, a key file is generated beside the database with mode 0600.
// Production should supply its own key and keep it away from the database.
package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"log"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/credlife/clm/backends/sqlitestore"
	"github.com/credlife/clm/ca"
	"github.com/credlife/clm/lifecycle"
)

func main() {
	db := flag.String("db", "clm.db", "SQLite database file")
	keyFile := flag.String("keyfile", "", "file holding the base64 master key (default: beside the database)")
	flag.Parse()
	if *keyFile == "" {
		*keyFile = filepath.Join(filepath.Dir(*db), strings.TrimSuffix(filepath.Base(*db), filepath.Ext(*db))+".masterkey")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := run(ctx, *db, *keyFile); err != nil {
		log.Fatal(err)
	}
}

// masterKey reads CLM_MASTER_KEY or the key file, generating the file when
// neither exists.
func masterKey(path string) ([]byte, error) {
	if env := os.Getenv("CLM_MASTER_KEY"); env != "" {
		return decodeKey(env, "CLM_MASTER_KEY")
	}
	b, err := os.ReadFile(path)
	if err == nil {
		return decodeKey(strings.TrimSpace(string(b)), path)
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	if err := os.WriteFile(path, []byte(base64.StdEncoding.EncodeToString(key)+"\n"), 0o600); err != nil {
		return nil, err
	}
	fmt.Printf("generated a master key in %s (mode 0600); production should supply its own\n", path)
	return key, nil
}

func decodeKey(s, from string) ([]byte, error) {
	key, err := base64.StdEncoding.DecodeString(s)
	if err != nil || len(key) != 32 {
		return nil, fmt.Errorf("%s: want base64 of 32 bytes", from)
	}
	return key, nil
}

func run(ctx context.Context, dbPath, keyPath string) error {
	kek, err := masterKey(keyPath)
	if err != nil {
		return err
	}
	keys, err := lifecycle.NewStaticKeys(1, map[uint32][]byte{1: kek})
	if err != nil {
		return err
	}
	store, err := sqlitestore.Open(ctx, dbPath, nil)
	if err != nil {
		return err
	}
	defer store.Close()
	ca1, err := ca.Open(ctx, store, keys, nil) // the local CA, created on the first run
	if err != nil {
		return err
	}
	m, err := lifecycle.New(store, &lifecycle.Options{Keys: keys, CAs: []lifecycle.CA{ca1}})
	if err != nil {
		return err
	}
	fmt.Printf("store: SQLite %s\n", dbPath)

	// Issue two PSKs in a tenant.
	var psks []*lifecycle.PSK
	for _, alias := range []string{"gateways", "sensors"} {
		p, err := m.IssuePSK(ctx, lifecycle.IssuePSKRequest{Tenant: "tenant01", Alias: alias})
		if err != nil {
			return err
		}
		psks = append(psks, p)
		fmt.Printf("issued PSK keyid=%s alias=%s expires=%s password=%d characters (sealed at rest)\n",
			p.KeyID, p.Alias, p.ExpiresAt.Format(time.DateOnly), len(p.Password.Reveal()))
	}

	// List the tenant's PSKs, a page at a time.
	req := lifecycle.ListPSKsRequest{Tenant: "tenant01", Limit: 50}
	n := 0
	for {
		page, err := m.ListPSKs(ctx, req)
		if err != nil {
			return err
		}
		n += len(page.PSKs)
		if page.Next == "" {
			break
		}
		req.After = page.Next
	}
	fmt.Printf("listed %d PSKs of tenant01\n", n)

	// Authenticate, with the right password and a wrong one.
	creds := lifecycle.PSKCredentials{KeyID: psks[0].KeyID, Password: psks[0].Password}
	caller, err := m.AuthenticatePSK(ctx, creds)
	if err != nil {
		return err
	}
	fmt.Printf("authenticated keyid=%s: tenant %s\n", caller.KeyID, caller.Tenant)
	_, err = m.AuthenticatePSK(ctx, lifecycle.PSKCredentials{KeyID: creds.KeyID, Password: "guess"})
	fmt.Printf("a wrong password answers %v\n", lifecycle.CodeOf(err))

	// Register a device with the first PSK, then present it again.
	name := fmt.Sprintf("nec-edge-%d", time.Now().UnixNano()%100000)
	dev, err := m.EnrollDevice(ctx, lifecycle.EnrollDeviceRequest{PSK: creds, Device: lifecycle.DeviceRequest{
		Name: name, IPAddress: "192.168.0.1", MACAddress: "AA-BB-CC-DD-EE-FF",
		ExtData: map[string]string{"osname": "Linux", "architecture": "arm64"},
	}})
	if err != nil {
		return err
	}
	fmt.Printf("registered device %s id=%s mac=%s (device key returned once, sealed at rest)\n",
		dev.Device.Name, dev.Device.ID, dev.Device.MACAddress)
	again, err := m.EnrollDevice(ctx, lifecycle.EnrollDeviceRequest{PSK: creds, Device: lifecycle.DeviceRequest{
		ID: dev.Device.ID, Name: name, Key: dev.Key,
	}})
	if err != nil {
		return err
	}
	fmt.Printf("device %s checked with its key: status %v\n", again.Device.ID, again.Device.Status)
	_, err = m.EnrollDevice(ctx, lifecycle.EnrollDeviceRequest{PSK: creds, Device: lifecycle.DeviceRequest{Name: name}})
	fmt.Printf("registering the name again answers %v\n", lifecycle.CodeOf(err))

	// A certificate and a TWINE key for the device.
	known := lifecycle.DeviceRequest{ID: dev.Device.ID, Key: dev.Key}
	cert, err := m.IssueCertificate(ctx, lifecycle.IssueCertificateRequest{PSK: creds, Device: known,
		Subject: "/C=JP/O=Example/CN=" + name + ".example.com", Path: "/etc/clm/client.pem"})
	if err != nil {
		return err
	}
	fmt.Printf("issued certificate keynumber=%d serial=%s until %s\n", cert.Certificate.KeyNumber, cert.Certificate.Serial, cert.Certificate.NotAfter.Format(time.DateOnly))
	key, err := m.CreateKey(ctx, lifecycle.CreateKeyRequest{PSK: creds, Device: known, Alias: "telemetry",
		KeyType: "TWINE", KeyLength: 80, Path: "/etc/clm/twine.key"})
	if err != nil {
		return err
	}
	fmt.Printf("created a %s-%d key keynumber=%d (%d bytes, sealed at rest)\n", key.KeyType, key.KeyLength, key.KeyNumber, len(key.Key))

	// Delete the second PSK.
	del := lifecycle.PSKCredentials{KeyID: psks[1].KeyID, Password: psks[1].Password}
	if err := m.DeletePSK(ctx, del); err != nil {
		return err
	}
	_, err = m.AuthenticatePSK(ctx, del)
	fmt.Printf("deleted PSK keyid=%s; it now answers %v\n", del.KeyID, lifecycle.CodeOf(err))
	return nil
}
