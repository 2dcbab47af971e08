package lifecycle_test

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"strings"
	"testing"

	"github.com/credlife/clm/lifecycle"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestRequestDefaults checks every default the request types document: a
// Go caller gives what the request is about, and nothing that only the v10
// protocol needs.
func TestRequestDefaults(t *testing.T) {
	ctx := context.Background()
	f := newCertFixture(t, nil)
	m, creds, dev := f.m, f.creds, f.dev

	var cert *lifecycle.CertificateResult
	t.Run("IssueCertificate", func(t *testing.T) {
		var err error
		cert, err = m.IssueCertificate(ctx, lifecycle.IssueCertificateRequest{PSK: creds, Device: dev, Subject: "/CN=ap1.example.com"})
		require.NoError(t, err, "with no CA, formats or paths")
		c := parsePEMCert(t, cert.Certificate.Data)
		assert.Equal(t, lifecycle.FormatPEM, cert.Certificate.Format, "the certificate defaults to PEM")
		require.NotNil(t, cert.CA, "the CA certificate is answered")
		assert.Equal(t, lifecycle.FormatPEM, cert.CA.Format, "the CA certificate defaults to PEM")
		assert.Equal(t, f.ca.Certificate().Subject.CommonName, c.Issuer.CommonName, "the CA defaults to the first of Options.CAs")
		assert.True(t, strings.HasPrefix(cert.PrivateKey.Reveal(), "-----BEGIN PRIVATE KEY-----"), "without a passphrase the key is unencrypted PKCS#8")
		assert.Equal(t, x509.ECDSA, c.PublicKeyAlgorithm, "the key type defaults to EC-P256")
		again, err := m.IssueCertificate(ctx, lifecycle.IssueCertificateRequest{PSK: creds, Device: dev, Subject: "/CN=ap1.example.com"})
		require.NoError(t, err)
		assert.NotEqual(t, cert.Certificate.KeyNumber, again.Certificate.KeyNumber, "without a path a second request is a second certificate, not a retry")
	})
	t.Run("IssueCertificateRegistersUnnamedDevice", func(t *testing.T) {
		res, err := m.IssueCertificate(ctx, lifecycle.IssueCertificateRequest{PSK: creds, Subject: "/CN=new"})
		if err != nil {
			t.Fatal(err)
		}
		if res.Device.Device.Name != res.Device.Device.ID || res.Device.Key == "" {
			t.Fatal("a device registered without a name is named by its id, and gets its key")
		}
	})
	t.Run("GetCertificate", func(t *testing.T) {
		got, err := m.GetCertificate(ctx, lifecycle.GetCertificateRequest{PSK: creds, Device: dev, Ref: lifecycle.CertificateRef{KeyNumber: cert.Certificate.KeyNumber}})
		if err != nil || got.Certificate.Format != lifecycle.FormatPEM {
			t.Fatalf("with no CA, format or path: %v", err)
		}
		p12, err := m.GetCertificate(ctx, lifecycle.GetCertificateRequest{PSK: creds, Device: dev,
			Ref: lifecycle.CertificateRef{KeyNumber: cert.Certificate.KeyNumber}, Format: lifecycle.FormatP12, Passphrase: "pfx"})
		if err != nil || len(p12.Certificate.Data) == 0 {
			t.Fatalf("as PKCS#12: %v", err)
		}
		_, err = m.GetCertificate(ctx, lifecycle.GetCertificateRequest{PSK: creds, Device: dev,
			Ref: lifecycle.CertificateRef{KeyNumber: cert.Certificate.KeyNumber}, Format: lifecycle.FormatP12})
		var e *lifecycle.Error
		if !errors.As(err, &e) || e.Code != lifecycle.CodeMissing || e.Field != "Passphrase" {
			t.Fatalf("PKCS#12 without a passphrase: %v, want 1102 on Passphrase", err)
		}
	})
	var renewed *lifecycle.CertificateResult
	t.Run("RenewCertificate", func(t *testing.T) {
		var err error
		renewed, err = m.RenewCertificate(ctx, lifecycle.RenewCertificateRequest{PSK: creds, Device: dev, Ref: lifecycle.CertificateRef{KeyNumber: cert.Certificate.KeyNumber}})
		if err != nil {
			t.Fatalf("with no CA, passphrase or path (the certificate is bound without one): %v", err)
		}
		if !strings.HasPrefix(renewed.PrivateKey.Reveal(), "-----BEGIN PRIVATE KEY-----") {
			t.Fatal("a renewal without a passphrase answers the new key as unencrypted PKCS#8")
		}
	})
	t.Run("RevokeCertificate", func(t *testing.T) {
		if _, err := m.RevokeCertificate(ctx, lifecycle.RevokeCertificateRequest{PSK: creds, Device: dev, Ref: lifecycle.CertificateRef{KeyNumber: renewed.Certificate.KeyNumber}}); err != nil {
			t.Fatalf("with no CA: %v", err)
		}
	})
	t.Run("CACertificate", func(t *testing.T) {
		res, err := m.CACertificate(ctx, lifecycle.CACertificateRequest{PSK: creds, Device: dev})
		if err != nil || res.CA.Format != lifecycle.FormatPEM || res.CA.KeyNumber != f.ca.KeyNumber() {
			t.Fatalf("with no CA, format or paths: the default CA's certificate in PEM: %v", err)
		}
	})
	t.Run("Keys", func(t *testing.T) {
		k, err := m.CreateKey(ctx, lifecycle.CreateKeyRequest{PSK: creds, Device: dev, Alias: "sensor"})
		require.NoError(t, err, "with no key type, length or paths")
		assert.Equal(t, "AES", k.KeyType, "the key type defaults to AES")
		assert.Equal(t, 128, k.KeyLength, "the key length defaults to 128")
		assert.Len(t, k.Key, 16)
		if _, err := m.GetKey(ctx, lifecycle.GetKeyRequest{PSK: creds, Device: dev, KeyNumber: k.KeyNumber}); err != nil {
			t.Fatalf("GetKey without a path: %v", err)
		}
		r, err := m.RotateKey(ctx, lifecycle.RotateKeyRequest{PSK: creds, Device: dev, KeyNumber: k.KeyNumber})
		if err != nil || r.Alias != "sensor" || r.KeyLength != 128 {
			t.Fatalf("RotateKey without a path keeps the alias and length: %v", err)
		}
		if _, err := m.DeleteKey(ctx, lifecycle.DeleteKeyRequest{PSK: creds, Device: dev, KeyNumber: r.KeyNumber, Key: r.Key}); err != nil {
			t.Fatalf("DeleteKey without a path: %v", err)
		}
	})
	t.Run("ErrorsNameGoFields", func(t *testing.T) {
		for _, tc := range []struct {
			err   error
			field string
		}{
			{call(m.IssueCertificate(ctx, lifecycle.IssueCertificateRequest{PSK: creds, Device: dev})), "Subject"},
			{call(m.IssueCertificate(ctx, lifecycle.IssueCertificateRequest{PSK: creds, Device: dev, Subject: "/CN=x", CA: "ca9"})), "CA"},
			{call(m.GetKey(ctx, lifecycle.GetKeyRequest{PSK: creds, Device: dev})), "KeyNumber"},
			{call(m.GetCertificate(ctx, lifecycle.GetCertificateRequest{PSK: creds, Device: dev, Ref: lifecycle.CertificateRef{KeyNumber: 99999}})), "Ref.KeyNumber"},
			{call(m.RotateKey(ctx, lifecycle.RotateKeyRequest{PSK: creds, Device: dev, KeyNumber: 99999})), "KeyNumber"},
			{call(m.CreateKey(ctx, lifecycle.CreateKeyRequest{PSK: creds, Device: lifecycle.DeviceRequest{ID: dev.ID, Key: "wrong"}, Alias: "a"})), "Device.Key"},
			{call(m.IssuePSK(ctx, lifecycle.IssuePSKRequest{Tenant: "t ", Alias: "a"})), "Tenant"},
			{m.DeletePSK(ctx, lifecycle.PSKCredentials{KeyID: "x", Password: "p"}), "KeyID"},
		} {
			var e *lifecycle.Error
			if assert.ErrorAs(t, tc.err, &e) {
				assert.Equal(t, tc.field, e.Field, "Error.Field of %v", tc.err)
			}
		}
	})
}

func call[T any](_ T, err error) error { return err }

func parsePEMCert(t *testing.T, data []byte) *x509.Certificate {
	t.Helper()
	b, _ := pem.Decode(data)
	if b == nil {
		t.Fatal("not PEM")
	}
	c, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
