package lifecycle_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"log"

	"golang.org/x/crypto/ocsp"

	"github.com/credlife/clm/backends/memstore"
	"github.com/credlife/clm/ca"
	"github.com/credlife/clm/lifecycle"
)

// A device makes its key and sends only a CSR; the certificate comes back
// without a private key, and a renewal takes a new CSR.
func ExampleEngine_IssueCertificateFromCSR() {
	w := newWorld()
	ctx := context.Background()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader) // on the device
	der, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "sensor-9.example.com"}}, key)
	res, err := w.m.IssueCertificateFromCSR(ctx, lifecycle.IssueFromCSRRequest{PSK: w.creds, Device: w.device,
		CSR: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})})
	if err != nil {
		log.Fatal(err)
	}
	b, _ := pem.Decode(res.Certificate.Data)
	cert, _ := x509.ParseCertificate(b.Bytes)
	fmt.Println(cert.Subject.CommonName, cert.DNSNames, key.PublicKey.Equal(cert.PublicKey), res.PrivateKey == "")

	// A renewal without a new CSR is refused: the server never had the key.
	_, err = w.m.RenewCertificate(ctx, lifecycle.RenewCertificateRequest{PSK: w.creds, Device: w.device, Ref: lifecycle.CertificateRef{KeyNumber: res.Certificate.KeyNumber}})
	fmt.Println(errors.Is(err, lifecycle.CodeMissing))
	// Output:
	// sensor-9.example.com [sensor-9.example.com] true true
	// true
}

// A policy restricts what ca1 issues to tenant01: names under one domain,
// O fixed to the tenant, no RSA. A refusal names the rule.
func ExamplePolicy() {
	ctx := context.Background()
	store := memstore.New()
	keys, _ := lifecycle.NewStaticKeys(1, map[uint32][]byte{1: make([]byte, 32)})
	ca1, _ := ca.Open(ctx, store, keys, nil)
	m, err := lifecycle.New(store, &lifecycle.Options{Keys: keys, CAs: []lifecycle.CA{ca1},
		Policies: map[lifecycle.PolicyScope]*lifecycle.Policy{
			{CA: "ca1", Tenant: "tenant01"}: {
				KeyTypes:     []lifecycle.CertKeyType{lifecycle.KeyECP256, lifecycle.KeyEd25519},
				DNSSuffixes:  []string{"devices.example.com"},
				FixedSubject: map[string]string{"O": lifecycle.PolicyTenant},
			},
		}})
	if err != nil {
		log.Fatal(err)
	}
	p, _ := m.IssuePSK(ctx, lifecycle.IssuePSKRequest{Tenant: "tenant01", Alias: "a"})
	creds := lifecycle.PSKCredentials{KeyID: p.KeyID, Password: p.Password}

	_, err = m.IssueCertificate(ctx, lifecycle.IssueCertificateRequest{PSK: creds, Subject: "/CN=gw.elsewhere.example"})
	var pe *lifecycle.PolicyError
	fmt.Println(errors.Is(err, lifecycle.CodeMalformed), errors.As(err, &pe) && pe.Rule == "DNSSuffixes")
	_, err = m.IssueCertificate(ctx, lifecycle.IssueCertificateRequest{PSK: creds, Subject: "/CN=gw.devices.example.com", KeyType: "RSA-2048"})
	fmt.Println(errors.As(err, &pe) && pe.Rule == "KeyTypes")

	res, err := m.IssueCertificate(ctx, lifecycle.IssueCertificateRequest{PSK: creds, Subject: "/O=Someone/CN=gw.devices.example.com"})
	if err != nil {
		log.Fatal(err)
	}
	b, _ := pem.Decode(res.Certificate.Data)
	cert, _ := x509.ParseCertificate(b.Bytes)
	fmt.Println(cert.Subject.Organization, cert.DNSNames)
	// Output:
	// true true
	// true
	// [tenant01] [gw.devices.example.com]
}

// OCSP answers about a certificate of the CA; the answer changes at once
// when the certificate is revoked.
func ExampleEngine_OCSP() {
	w := newWorld()
	ctx := context.Background()
	res := w.cert()
	chain, _ := w.m.CAChain(ctx, "ca1")
	b, _ := pem.Decode(res.Certificate.Data)
	cert, _ := x509.ParseCertificate(b.Bytes)

	status := func() int {
		req, _ := ocsp.CreateRequest(cert, chain[0], nil)
		r, err := w.m.OCSP(ctx, "ca1", req)
		if err != nil {
			log.Fatal(err)
		}
		resp, err := ocsp.ParseResponseForCert(r.DER, cert, chain[0])
		if err != nil {
			log.Fatal(err)
		}
		return resp.Status
	}
	fmt.Println(status() == ocsp.Good)
	if _, err := w.m.RevokeCertificate(ctx, lifecycle.RevokeCertificateRequest{PSK: w.creds, Device: w.device,
		Ref: lifecycle.CertificateRef{KeyNumber: res.Certificate.KeyNumber}, Reason: ocsp.KeyCompromise}); err != nil {
		log.Fatal(err)
	}
	fmt.Println(status() == ocsp.Revoked)
	// Output:
	// true
	// true
}

// CAChain of an intermediate is the intermediate and its root.
func ExampleEngine_CAChain() {
	ctx := context.Background()
	store := memstore.New()
	keys, _ := lifecycle.NewStaticKeys(1, map[uint32][]byte{1: make([]byte, 32)})
	root, _ := ca.Open(ctx, store, keys, &ca.Options{Name: "root", Root: true})
	ca1, err := ca.Open(ctx, store, keys, &ca.Options{Name: "ca1", Issuer: root})
	if err != nil {
		log.Fatal(err)
	}
	m, _ := lifecycle.New(store, &lifecycle.Options{Keys: keys, CAs: []lifecycle.CA{ca1}})
	chain, err := m.CAChain(ctx, "ca1")
	if err != nil {
		log.Fatal(err)
	}
	for _, c := range chain {
		fmt.Println(c.Subject.CommonName)
	}
	// Output:
	// clm ca1 issuing CA
	// clm root root CA
}

func ExampleParseCSR() {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "dev-1"}}, key)
	csr, err := lifecycle.ParseCSR(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))
	fmt.Println(csr.Subject.CommonName, err)
	der[len(der)-1] ^= 1 // the signature no longer verifies
	_, err = lifecycle.ParseCSR(der)
	fmt.Println(err)
	// Output:
	// dev-1 <nil>
	// its signature does not verify
}

func ExamplePolicy_Validate() {
	p := &lifecycle.Policy{KeyTypes: []lifecycle.CertKeyType{"RSA-1024"}}
	fmt.Println(p.Validate())
	// Output: policy KeyTypes: unknown key type "RSA-1024"
}
