package lifecycle_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log"
	"net/netip"
	"os"
	"path/filepath"

	"github.com/credlife/clm/backends/sqlitestore"
	"github.com/credlife/clm/lifecycle"
	"github.com/credlife/clm/lifecycle/driver"
)

// Build a Manager on SQLite, then issue, authenticate and delete a PSK.
func Example() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "clm-example")
	defer os.RemoveAll(dir)

	store, err := sqlitestore.Open(ctx, filepath.Join(dir, "clm.db"), nil)
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()

	// Every secret is sealed at rest under a key-encryption key. Keep it
	// outside the database (a file, an environment variable, a KMS).
	kek := make([]byte, 32)
	rand.Read(kek)
	keys, err := lifecycle.NewStaticKeys(1, map[uint32][]byte{1: kek})
	if err != nil {
		log.Fatal(err)
	}
	m, err := lifecycle.New(store, &lifecycle.Options{Keys: keys})
	if err != nil {
		log.Fatal(err)
	}

	psk, err := m.IssuePSK(ctx, lifecycle.IssuePSKRequest{Tenant: "tenant01", Alias: "DemoKey1"})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("keyid:", psk.KeyID)
	fmt.Println("password:", psk.Password) // a Secret never prints
	fmt.Println("password length:", len(psk.Password.Reveal()))

	creds := lifecycle.PSKCredentials{KeyID: psk.KeyID, Password: psk.Password}
	caller, err := m.AuthenticatePSK(ctx, creds)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("authenticated tenant:", caller.Tenant)

	_, err = m.AuthenticatePSK(ctx, lifecycle.PSKCredentials{KeyID: psk.KeyID, Password: "guess"})
	fmt.Println("wrong password:", lifecycle.CodeOf(err).String())

	if err := m.DeletePSK(ctx, creds); err != nil {
		log.Fatal(err)
	}
	_, err = m.AuthenticatePSK(ctx, creds)
	fmt.Println("after delete:", errors.Is(err, lifecycle.CodePSKNotFound))
	// Output:
	// keyid: 0000000001
	// password: [REDACTED]
	// password length: 24
	// authenticated tenant: tenant01
	// wrong password: 1201 password mismatch
	// after delete: true
}

// A device registers on its first request and gets its id and key once.
func ExampleEngine_EnrollDevice() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "clm-example")
	defer os.RemoveAll(dir)
	store, _ := sqlitestore.Open(ctx, filepath.Join(dir, "clm.db"), nil)
	defer store.Close()
	kek := make([]byte, 32)
	rand.Read(kek)
	keys, _ := lifecycle.NewStaticKeys(1, map[uint32][]byte{1: kek})
	m, _ := lifecycle.New(store, &lifecycle.Options{Keys: keys})

	psk, _ := m.IssuePSK(ctx, lifecycle.IssuePSKRequest{Tenant: "tenant01", Alias: "gateways"})
	creds := lifecycle.PSKCredentials{KeyID: psk.KeyID, Password: psk.Password}

	first, err := m.EnrollDevice(ctx, lifecycle.EnrollDeviceRequest{PSK: creds, Device: lifecycle.DeviceRequest{
		Name: "nec-edge-0001", MACAddress: "AA-BB-CC-DD-EE-FF",
	}})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("device id length:", len(first.Device.ID))
	fmt.Println("key returned:", first.Key != "")
	fmt.Println("mac:", first.Device.MACAddress)

	later, _ := m.EnrollDevice(ctx, lifecycle.EnrollDeviceRequest{PSK: creds, Device: lifecycle.DeviceRequest{
		ID: first.Device.ID, Name: "nec-edge-0001", Key: first.Key,
	}})
	fmt.Println("same device:", later.Device.ID == first.Device.ID, "key again:", later.Key != "")

	_, err = m.EnrollDevice(ctx, lifecycle.EnrollDeviceRequest{PSK: creds, Device: lifecycle.DeviceRequest{Name: "nec-edge-0001"}})
	fmt.Println("name taken:", lifecycle.CodeOf(err).String())
	// Output:
	// device id length: 36
	// key returned: true
	// mac: aa:bb:cc:dd:ee:ff
	// same device: true key again: false
	// name taken: 1702 device name already registered
}

// Name the client a request comes from, so that the brute-force limits
// count wrong passwords per PSK and address: a guesser is locked out of a
// PSK while its device, elsewhere, keeps working. httpadapter does this for
// every request.
func ExampleWithClientAddress() {
	ctx := lifecycle.WithClientAddress(context.Background(), netip.MustParseAddr("2001:db8::7"))
	addr, ok := lifecycle.ClientAddress(ctx)
	fmt.Println(addr, ok)
	// Output: 2001:db8::7 true
}

// Seal a secret for one record: it opens for that record, and not once
// the record is moved to another tenant.
func ExampleSealer_SealFor() {
	ctx := context.Background()
	keys, _ := lifecycle.NewStaticKeys(1, map[uint32][]byte{1: make([]byte, 32)})
	sealer := lifecycle.NewSealer(keys, nil)
	rec := driver.SealedValue{Kind: driver.SealedCredentialSecret, ID: 42, Tenant: "tenant01", CredentialKind: driver.KindSymmetricKey}
	sealed, err := sealer.SealFor(ctx, rec, []byte("a symmetric key"))
	if err != nil {
		log.Fatal(err)
	}
	rec.Value = sealed
	opened, err := sealer.OpenSealed(ctx, rec)
	fmt.Println(string(opened), err)
	rec.Tenant = "tenant02"
	_, err = sealer.OpenSealed(ctx, rec)
	fmt.Println(errors.Is(err, lifecycle.CodeDecrypt))
	// Output:
	// a symmetric key <nil>
	// true
}

// Load the master key from the environment (one key, or versioned keys for
// a rotation): here CLM_MASTER_KEY holds versions 1 and 2, and 2 seals.
func ExampleKeysFromEnv() {
	one := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{1}, 32))
	two := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{2}, 32))
	os.Setenv("CLM_MASTER_KEY", "1:"+one+",2:"+two)
	defer os.Unsetenv("CLM_MASTER_KEY")
	keys, err := lifecycle.KeysFromEnv("CLM_MASTER_KEY")
	if err != nil {
		log.Fatal(err)
	}
	cur, _ := keys.CurrentKEK(context.Background())
	fmt.Println(cur) // a KEK prints its version, never its key
	// Output: KEK{Version:2 Key:[REDACTED]}
}
