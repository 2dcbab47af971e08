package memstore_test

import (
	"context"
	"crypto/x509"
	"testing"

	"github.com/credlife/clm/backends/memstore"
	"github.com/credlife/clm/ca"
	"github.com/credlife/clm/lifecycle"
	"github.com/credlife/clm/lifecycle/driver"
	"github.com/credlife/clm/lifecycle/storetest"
)

// harness is a fresh in-memory database; each Open is another handle on it.
type harness struct{ db *memstore.Store }

func (h harness) Open(context.Context) (driver.Store, error) { return h.db.Handle(), nil }
func (harness) Close()                                       {}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(ctx context.Context, t *testing.T) (storetest.Harness, error) {
		return harness{db: memstore.New()}, nil
	})
}

// BenchmarkEngine runs every engine operation on the in-memory store.
func BenchmarkEngine(b *testing.B) {
	storetest.Benchmark(b, func(ctx context.Context, b *testing.B) (driver.Store, error) {
		return memstore.New(), nil
	})
}

// TestProgramFlow is the README's program on memstore.New(): a PSK, a
// device, a certificate with no CA and no paths, its PKCS#12, a renewal
// without a passphrase, a revocation, the CRL, and an AES key created,
// rotated and deleted without paths.
func TestProgramFlow(t *testing.T) {
	ctx := context.Background()
	store := memstore.New()
	keys, err := lifecycle.NewStaticKeys(1, map[uint32][]byte{1: make([]byte, 32)})
	if err != nil {
		t.Fatal(err)
	}
	ca1, err := ca.Open(ctx, store, keys, nil)
	if err != nil {
		t.Fatal(err)
	}
	m, err := lifecycle.New(store, &lifecycle.Options{Keys: keys, CAs: []lifecycle.CA{ca1}})
	if err != nil {
		t.Fatal(err)
	}
	step := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	psk, err := m.IssuePSK(ctx, lifecycle.IssuePSKRequest{Tenant: "tenant01", Alias: "gateways"})
	step("IssuePSK", err)
	creds := lifecycle.PSKCredentials{KeyID: psk.KeyID, Password: psk.Password}
	dev, err := m.EnrollDevice(ctx, lifecycle.EnrollDeviceRequest{PSK: creds, Device: lifecycle.DeviceRequest{Name: "edge"}})
	step("EnrollDevice", err)
	device := lifecycle.DeviceRequest{ID: dev.Device.ID, Key: dev.Key}
	cert, err := m.IssueCertificate(ctx, lifecycle.IssueCertificateRequest{PSK: creds, Device: device, Subject: "/CN=ap1.example.com"})
	step("IssueCertificate", err)
	ref := lifecycle.CertificateRef{KeyNumber: cert.Certificate.KeyNumber}
	_, err = m.GetCertificate(ctx, lifecycle.GetCertificateRequest{PSK: creds, Device: device, Ref: ref, Format: lifecycle.FormatP12, Passphrase: "p"})
	step("GetCertificate as PKCS#12", err)
	renewed, err := m.RenewCertificate(ctx, lifecycle.RenewCertificateRequest{PSK: creds, Device: device, Ref: ref})
	step("RenewCertificate", err)
	_, err = m.RevokeCertificate(ctx, lifecycle.RevokeCertificateRequest{PSK: creds, Device: device, Ref: lifecycle.CertificateRef{KeyNumber: renewed.Certificate.KeyNumber}})
	step("RevokeCertificate", err)
	crl, err := m.CRL(ctx, "ca1")
	step("CRL", err)
	list, err := x509.ParseRevocationList(crl.DER)
	step("the CRL parses", err)
	if len(list.RevokedCertificateEntries) != 2 {
		t.Fatalf("the CRL lists the superseded and the revoked certificate: %d entries", len(list.RevokedCertificateEntries))
	}
	key, err := m.CreateKey(ctx, lifecycle.CreateKeyRequest{PSK: creds, Device: device, Alias: "k"})
	step("CreateKey", err)
	rotated, err := m.RotateKey(ctx, lifecycle.RotateKeyRequest{PSK: creds, Device: device, KeyNumber: key.KeyNumber})
	step("RotateKey", err)
	_, err = m.DeleteKey(ctx, lifecycle.DeleteKeyRequest{PSK: creds, Device: device, KeyNumber: rotated.KeyNumber, Key: rotated.Key})
	step("DeleteKey", err)
}
