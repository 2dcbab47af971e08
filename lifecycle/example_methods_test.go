package lifecycle_test

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"log"
	"strings"

	"github.com/credlife/clm/backends/memstore"
	"github.com/credlife/clm/ca"
	"github.com/credlife/clm/lifecycle"
)

// The examples of the Manager's methods run on an in-memory store with the
// local CA; they print only what does not change from run to run (never a
// password, a key or a serial).

// world is an engine, a PSK of tenant01 and a registered device.
type world struct {
	m      *lifecycle.Engine
	creds  lifecycle.PSKCredentials
	device lifecycle.DeviceRequest
}

func newWorld() *world {
	ctx := context.Background()
	store := memstore.New()
	keys, err := lifecycle.NewStaticKeys(1, map[uint32][]byte{1: make([]byte, 32)})
	if err != nil {
		log.Fatal(err)
	}
	ca1, err := ca.Open(ctx, store, keys, nil)
	if err != nil {
		log.Fatal(err)
	}
	m, err := lifecycle.New(store, &lifecycle.Options{Keys: keys, CAs: []lifecycle.CA{ca1}})
	if err != nil {
		log.Fatal(err)
	}
	p, err := m.IssuePSK(ctx, lifecycle.IssuePSKRequest{Tenant: "tenant01", Alias: "gateways"})
	if err != nil {
		log.Fatal(err)
	}
	w := &world{m: m, creds: lifecycle.PSKCredentials{KeyID: p.KeyID, Password: p.Password}}
	d, err := m.EnrollDevice(ctx, lifecycle.EnrollDeviceRequest{PSK: w.creds, Device: lifecycle.DeviceRequest{Name: "edge-1"}})
	if err != nil {
		log.Fatal(err)
	}
	w.device = lifecycle.DeviceRequest{ID: d.Device.ID, Key: d.Key}
	return w
}

// cert issues the device a certificate.
func (w *world) cert() *lifecycle.CertificateResult {
	c, err := w.m.IssueCertificate(context.Background(), lifecycle.IssueCertificateRequest{PSK: w.creds, Device: w.device, Subject: "/O=Example/CN=ap1.example.com"})
	if err != nil {
		log.Fatal(err)
	}
	return c
}

func ExampleEngine_IssuePSK() {
	w := newWorld()
	p, err := w.m.IssuePSK(context.Background(), lifecycle.IssuePSKRequest{Tenant: "tenant01", Alias: "sensors"})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(p.KeyID, p.Tenant, p.Alias, len(p.Password.Reveal()), p.Password)
	// Output: 0000000002 tenant01 sensors 24 [REDACTED]
}

func ExampleEngine_GetPSK() {
	w := newWorld()
	p, err := w.m.GetPSK(context.Background(), "1") // "1" and "0000000001" name the same PSK
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(p.KeyID, p.Alias, p.Password == w.creds.Password)
	_, err = w.m.GetPSK(context.Background(), "42")
	fmt.Println(lifecycle.CodeOf(err))
	// Output:
	// 0000000001 gateways true
	// 1204 PSK not found
}

func ExampleEngine_ListPSKs() {
	w := newWorld()
	ctx := context.Background()
	for _, alias := range []string{"b", "c"} {
		w.m.IssuePSK(ctx, lifecycle.IssuePSKRequest{Tenant: "tenant01", Alias: alias})
	}
	req := lifecycle.ListPSKsRequest{Tenant: "tenant01", Limit: 2}
	for {
		page, err := w.m.ListPSKs(ctx, req)
		if err != nil {
			log.Fatal(err)
		}
		for _, p := range page.PSKs {
			fmt.Print(p.KeyID, " ")
		}
		fmt.Println("| next:", page.Next)
		if page.Next == "" {
			break
		}
		req.After = page.Next
	}
	// Output:
	// 0000000001 0000000002 | next: 0000000002
	// 0000000003 | next:
}

func ExampleEngine_AuthenticatePSK() {
	w := newWorld()
	ctx := context.Background()
	caller, err := w.m.AuthenticatePSK(ctx, w.creds)
	fmt.Println(caller.KeyID, caller.Tenant, err)
	_, err = w.m.AuthenticatePSK(ctx, lifecycle.PSKCredentials{KeyID: w.creds.KeyID, Password: "guess"})
	fmt.Println(errors.Is(err, lifecycle.CodePasswordMismatch))
	// Output:
	// 0000000001 tenant01 <nil>
	// true
}

func ExampleEngine_DeletePSK() {
	w := newWorld()
	ctx := context.Background()
	fmt.Println(w.m.DeletePSK(ctx, w.creds))
	_, err := w.m.AuthenticatePSK(ctx, w.creds)
	fmt.Println(lifecycle.CodeOf(err))
	// Output:
	// <nil>
	// 1204 PSK not found
}

func ExampleEngine_SetPSKStatus() {
	w := newWorld()
	ctx := context.Background()
	w.m.SetPSKStatus(ctx, w.creds.KeyID, lifecycle.PSKDisabled)
	_, err := w.m.AuthenticatePSK(ctx, w.creds)
	fmt.Println(lifecycle.CodeOf(err))
	w.m.SetPSKStatus(ctx, w.creds.KeyID, lifecycle.PSKActive)
	_, err = w.m.AuthenticatePSK(ctx, w.creds)
	fmt.Println(err)
	// Output:
	// 1202 PSK not active
	// <nil>
}

func ExampleEngine_GetDevice() {
	w := newWorld()
	d, err := w.m.GetDevice(context.Background(), "tenant01", w.device.ID)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(d.Name, d.Status)
	_, err = w.m.GetDevice(context.Background(), "tenant02", w.device.ID) // another tenant's device is absent
	fmt.Println(lifecycle.CodeOf(err))
	// Output:
	// edge-1 active
	// 1706 device not found
}

func ExampleEngine_ListDevices() {
	w := newWorld()
	ctx := context.Background()
	w.m.EnrollDevice(ctx, lifecycle.EnrollDeviceRequest{PSK: w.creds, Device: lifecycle.DeviceRequest{Name: "edge-2"}})
	page, err := w.m.ListDevices(ctx, lifecycle.ListDevicesRequest{Tenant: "tenant01"})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(len(page.Devices), page.Next == "")
	// Output: 2 true
}

func ExampleEngine_SetDeviceStatus() {
	w := newWorld()
	ctx := context.Background()
	w.m.SetDeviceStatus(ctx, "tenant01", w.device.ID, lifecycle.DeviceDisabled)
	_, err := w.m.CreateKey(ctx, lifecycle.CreateKeyRequest{PSK: w.creds, Device: w.device, Alias: "k"})
	fmt.Println(lifecycle.CodeOf(err))
	// Output: 1704 device not active
}

func ExampleEngine_CACertificate() {
	w := newWorld()
	res, err := w.m.CACertificate(context.Background(), lifecycle.CACertificateRequest{PSK: w.creds, Device: w.device})
	if err != nil {
		log.Fatal(err)
	}
	block, _ := pem.Decode(res.CA.Data)
	c, _ := x509.ParseCertificate(block.Bytes)
	fmt.Println(res.CA.Format, c.Subject.CommonName, c.IsCA)
	// Output: pem clm ca1 root CA true
}

func ExampleEngine_IssueCertificate() {
	w := newWorld()
	res := w.cert() // no CA, format or path given: ca1, PEM, unencrypted PKCS#8
	block, _ := pem.Decode(res.Certificate.Data)
	c, _ := x509.ParseCertificate(block.Bytes)
	fmt.Println(c.Subject.CommonName, c.DNSNames, c.Issuer.CommonName)
	fmt.Println(strings.SplitN(res.PrivateKey.Reveal(), "\n", 2)[0])
	// Output:
	// ap1.example.com [ap1.example.com] clm ca1 root CA
	// -----BEGIN PRIVATE KEY-----
}

func ExampleEngine_GetCertificate() {
	w := newWorld()
	issued := w.cert()
	p12, err := w.m.GetCertificate(context.Background(), lifecycle.GetCertificateRequest{PSK: w.creds, Device: w.device,
		Ref: lifecycle.CertificateRef{Serial: issued.Certificate.Serial}, Format: lifecycle.FormatP12, Passphrase: "pfx-pass"})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(p12.Certificate.Format, p12.Certificate.KeyNumber == issued.Certificate.KeyNumber, p12.PrivateKey == "")
	// Output: p12 true true
}

func ExampleEngine_RenewCertificate() {
	w := newWorld()
	old := w.cert()
	ctx := context.Background()
	renewed, err := w.m.RenewCertificate(ctx, lifecycle.RenewCertificateRequest{PSK: w.creds, Device: w.device,
		Ref: lifecycle.CertificateRef{KeyNumber: old.Certificate.KeyNumber}})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(renewed.Certificate.KeyNumber > old.Certificate.KeyNumber)
	_, err = w.m.GetCertificate(ctx, lifecycle.GetCertificateRequest{PSK: w.creds, Device: w.device,
		Ref: lifecycle.CertificateRef{KeyNumber: old.Certificate.KeyNumber}})
	fmt.Println(lifecycle.CodeOf(err)) // the old one is superseded
	// Output:
	// true
	// 1306 certificate already revoked or updated
}

func ExampleEngine_RevokeCertificate() {
	w := newWorld()
	c := w.cert()
	res, err := w.m.RevokeCertificate(context.Background(), lifecycle.RevokeCertificateRequest{PSK: w.creds, Device: w.device,
		Ref: lifecycle.CertificateRef{KeyNumber: c.Certificate.KeyNumber}, Reason: lifecycle.ReasonKeyCompromise})
	fmt.Println(res.Serial == c.Certificate.Serial, err)
	// Output: true <nil>
}

func ExampleEngine_CRL() {
	w := newWorld()
	c := w.cert()
	ctx := context.Background()
	w.m.RevokeCertificate(ctx, lifecycle.RevokeCertificateRequest{PSK: w.creds, Device: w.device,
		Ref: lifecycle.CertificateRef{KeyNumber: c.Certificate.KeyNumber}, Reason: lifecycle.ReasonKeyCompromise})
	crl, err := w.m.CRL(ctx, "ca1")
	if err != nil {
		log.Fatal(err)
	}
	list, _ := x509.ParseRevocationList(crl.DER)
	e := list.RevokedCertificateEntries[0]
	fmt.Println(len(list.RevokedCertificateEntries), lifecycle.FormatSerial(e.SerialNumber) == c.Certificate.Serial, e.ReasonCode)
	// Output: 1 true 1
}

func ExampleEngine_CreateKey() {
	w := newWorld()
	k, err := w.m.CreateKey(context.Background(), lifecycle.CreateKeyRequest{PSK: w.creds, Device: w.device, Alias: "telemetry", KeyType: "TWINE", KeyLength: 80})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(k.Alias, k.KeyType, k.KeyLength, len(k.Key), k.Key)
	// Output: telemetry TWINE 80 10 [REDACTED]
}

func ExampleEngine_GetKey() {
	w := newWorld()
	ctx := context.Background()
	k, _ := w.m.CreateKey(ctx, lifecycle.CreateKeyRequest{PSK: w.creds, Device: w.device, Alias: "sensor"})
	got, err := w.m.GetKey(ctx, lifecycle.GetKeyRequest{PSK: w.creds, Device: w.device, KeyNumber: k.KeyNumber})
	fmt.Println(got.KeyType, got.KeyLength, string(got.Key) == string(k.Key), err)
	// Output: AES 128 true <nil>
}

func ExampleEngine_RotateKey() {
	w := newWorld()
	ctx := context.Background()
	k, _ := w.m.CreateKey(ctx, lifecycle.CreateKeyRequest{PSK: w.creds, Device: w.device, Alias: "sensor"})
	r, err := w.m.RotateKey(ctx, lifecycle.RotateKeyRequest{PSK: w.creds, Device: w.device, KeyNumber: k.KeyNumber, KeyLength: 256})
	if err != nil {
		log.Fatal(err)
	}
	_, err = w.m.GetKey(ctx, lifecycle.GetKeyRequest{PSK: w.creds, Device: w.device, KeyNumber: k.KeyNumber})
	fmt.Println(r.Alias, r.KeyLength, lifecycle.CodeOf(err))
	// Output: sensor 256 1504 symmetric key already revoked or updated
}

func ExampleEngine_DeleteKey() {
	w := newWorld()
	ctx := context.Background()
	k, _ := w.m.CreateKey(ctx, lifecycle.CreateKeyRequest{PSK: w.creds, Device: w.device, Alias: "sensor"})
	_, err := w.m.DeleteKey(ctx, lifecycle.DeleteKeyRequest{PSK: w.creds, Device: w.device, KeyNumber: k.KeyNumber, Key: k.Key})
	fmt.Println(err)
	_, err = w.m.GetKey(ctx, lifecycle.GetKeyRequest{PSK: w.creds, Device: w.device, KeyNumber: k.KeyNumber})
	fmt.Println(lifecycle.CodeOf(err))
	// Output:
	// <nil>
	// 1501 symmetric key not found
}

func ExampleEngine_Status() {
	w := newWorld()
	fmt.Println(w.m.Status(context.Background()))
	// Output: <nil>
}

func ExampleEngine_Reseal() {
	w := newWorld()
	st, err := w.m.Reseal(context.Background()) // nothing to move: every value is under the current key
	fmt.Println(st.Examined > 0, st.Resealed, err)
	// Output: true 0 <nil>
}

func ExampleEngine_CheckKeys() {
	w := newWorld()
	fmt.Println(w.m.CheckKeys(context.Background()))
	// Output: <nil>
}
