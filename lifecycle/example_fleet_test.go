package lifecycle_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"log"
	"time"

	"github.com/credlife/clm/lifecycle"
)

// Which of a tenant's certificates expire within 400 days?
func ExampleEngine_ListCredentials() {
	w := newWorld()
	w.cert()
	w.cert()
	page, err := w.m.ListCredentials(context.Background(), lifecycle.ListCredentialsRequest{
		Tenant: "tenant01", Kind: lifecycle.KindCertificate,
		States:         []lifecycle.CredentialState{lifecycle.StateValid},
		ExpiringBefore: time.Now().Add(400 * 24 * time.Hour),
	})
	if err != nil {
		log.Fatal(err)
	}
	for _, c := range page.Credentials {
		fmt.Println(c.Kind, c.State, c.Subject)
	}
	fmt.Printf("next page: %q\n", page.Next)
	// Output:
	// certificate valid /O=Example/CN=ap1.example.com
	// certificate valid /O=Example/CN=ap1.example.com
	// next page: ""
}

func ExampleEngine_GetCredential() {
	w := newWorld()
	res := w.cert()
	c, err := w.m.GetCredential(context.Background(), lifecycle.GetCredentialRequest{Tenant: "tenant01", CA: "ca1", Ref: lifecycle.CertificateRef{Serial: res.Certificate.Serial}})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(c.KeyNumber == res.Certificate.KeyNumber, c.State, c.KeyType, c.DeviceKey)
	// Output: true valid EC-P256 false
}

func ExampleEngine_RevokeCredential() {
	w := newWorld()
	res := w.cert()
	c, err := w.m.RevokeCredential(context.Background(), lifecycle.RevokeCredentialRequest{Tenant: "tenant01",
		Ref: lifecycle.CertificateRef{KeyNumber: res.Certificate.KeyNumber}, Reason: 1}) // keyCompromise
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(c.State, c.Reason)
	// Output: revoked 1
}

// A device was stolen: everything it holds is revoked or deleted, and it
// is disabled, at once.
func ExampleEngine_DecommissionDevice() {
	w := newWorld()
	ctx := context.Background()
	w.cert()
	if _, err := w.m.CreateKey(ctx, lifecycle.CreateKeyRequest{PSK: w.creds, Device: w.device, Alias: "telemetry"}); err != nil {
		log.Fatal(err)
	}
	res, err := w.m.DecommissionDevice(ctx, lifecycle.DecommissionRequest{Tenant: "tenant01", DeviceID: w.device.ID, Reason: 1})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(len(res.Revoked), "revoked,", len(res.KeysDeleted), "keys deleted, device", res.Device.Status)
	again, _ := w.m.DecommissionDevice(ctx, lifecycle.DecommissionRequest{Tenant: "tenant01", DeviceID: w.device.ID})
	fmt.Println(len(again.Revoked), "revoked,", len(again.KeysDeleted), "keys deleted, disabled now:", again.Disabled)
	// Output:
	// 1 revoked, 1 keys deleted, device disabled
	// 0 revoked, 0 keys deleted, disabled now: false
}

func ExampleEngine_ListCAs() {
	w := newWorld()
	cas, err := w.m.ListCAs(context.Background())
	if err != nil {
		log.Fatal(err)
	}
	for _, c := range cas {
		fmt.Println(c.Name, c.Chain[0].Subject.CommonName)
	}
	// Output: ca1 clm ca1 root CA
}

// SweepExpiry warns of what is near its end, once per threshold, across
// every process on the store; the events go to the Auditor.
func ExampleEngine_SweepExpiry() {
	w := newWorld()
	w.cert() // valid for 365 days: within none of 30, 7 and 1 days
	res, err := w.m.SweepExpiry(context.Background())
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(res.Warned, res.Expired)
	// Output: 0 0
}

// Purge removes what was revoked or superseded and ended more than
// Options.Retention ago.
func ExampleEngine_Purge() {
	w := newWorld()
	res, err := w.m.Purge(context.Background())
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(res.Purged)
	// Output: 0
}

// A device enrols over EST with its PSK; the certificate is bound at
// ESTPath("ca1"), where CLM v10 finds it.
func ExampleEngine_EnrollEST() {
	w := newWorld()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	csr, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "router-7"}}, key)
	res, err := w.m.EnrollEST(context.Background(), lifecycle.ESTRequest{PSK: &w.creds, CSR: csr})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(res.Device.Name, res.Certificate.Subject.CommonName, key.PublicKey.Equal(res.Certificate.PublicKey), lifecycle.ESTPath("ca1"))
	// Output: router-7 router-7 true est:ca1
}
