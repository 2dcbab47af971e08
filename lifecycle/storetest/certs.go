package storetest

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"go.step.sm/crypto/keyutil"
	"go.step.sm/crypto/pemutil"
	"software.sslmate.com/src/go-pkcs12"

	"github.com/credlife/clm/ca"
	"github.com/credlife/clm/lifecycle"
	"github.com/credlife/clm/lifecycle/driver"
)

// certEnv is an engine with a local CA, a PSK and a device holding one
// client certificate.
type certEnv struct {
	*env
	s     driver.Store
	c     *clock
	ca    *ca.CA
	m     *lifecycle.Engine
	creds lifecycle.PSKCredentials
	dev   lifecycle.DeviceRequest
	cert  *lifecycle.CertificateResult
}

const certPath = "/etc/opt/nec/swclm/keyfile/clcert.pem"

func (e *env) certEnv(o *lifecycle.Options) *certEnv {
	k := &certEnv{env: e, s: e.store(), c: &clock{now: time.Now().UTC().Truncate(time.Second)}}
	keys := testKeys(e, 1, 1)
	var err error
	k.ca, err = ca.Open(e.ctx, k.s, keys, &ca.Options{Now: k.c.Now})
	e.must(err, "ca.Open")
	var opts lifecycle.Options
	if o != nil {
		opts = *o
	}
	opts.Keys, opts.CAs = keys, []lifecycle.CA{k.ca}
	k.m = e.engine(k.s, k.c, &opts)
	p, err := k.m.IssuePSK(e.ctx, lifecycle.IssuePSKRequest{Tenant: "tenant01", Alias: "a"})
	e.must(err, "IssuePSK")
	k.creds = lifecycle.PSKCredentials{KeyID: p.KeyID, Password: p.Password}
	k.cert, err = k.m.IssueCertificate(e.ctx, lifecycle.IssueCertificateRequest{
		PSK: k.creds, Device: lifecycle.DeviceRequest{Name: "nec-edge-0001", MACAddress: "aa:aa:aa:aa:aa:aa"},
		CA: "ca1", Subject: "/C=JP/L=Tokyo/O=NEC/CN=ap1.example.com", KeyPath: "/tmp/key",
		CAPath: "/etc/opt/nec/swclm/keyfile/cacert.pem", Path: certPath,
	})
	e.must(err, "IssueCertificate")
	k.dev = lifecycle.DeviceRequest{ID: k.cert.Device.Device.ID, Name: "nec-edge-0001", Key: k.cert.Device.Key}
	return k
}

func (k *certEnv) parse(data []byte, f lifecycle.CertFormat) *x509.Certificate {
	k.t.Helper()
	der := data
	if f == lifecycle.FormatPEM {
		b, _ := pem.Decode(data)
		if b == nil || b.Type != "CERTIFICATE" {
			k.t.Fatalf("a pem certificate must be a CERTIFICATE block")
		}
		der = b.Bytes
	}
	c, err := x509.ParseCertificate(der)
	k.must(err, "the certificate must parse")
	return c
}

func (k *certEnv) verify(c *x509.Certificate) {
	k.t.Helper()
	roots := x509.NewCertPool()
	roots.AddCert(k.ca.Certificate())
	_, err := c.Verify(x509.VerifyOptions{Roots: roots, CurrentTime: k.c.Now(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
	k.must(err, "an issued certificate must verify against the CA")
}

// privateKey reads a PKCS#8 PEM private key, encrypted with passphrase
// when it is not empty.
func (k *certEnv) privateKey(pk lifecycle.Secret, passphrase string) crypto.PrivateKey {
	k.t.Helper()
	b, _ := pem.Decode([]byte(pk.Reveal()))
	if b == nil {
		k.t.Fatal("the private key must be PEM")
	}
	if passphrase == "" {
		if b.Type != "PRIVATE KEY" {
			k.t.Fatalf("an unencrypted key must be PKCS#8 (PRIVATE KEY), got %s", b.Type)
		}
		key, err := x509.ParsePKCS8PrivateKey(b.Bytes)
		k.must(err, "PKCS#8")
		return key
	}
	if b.Type != "ENCRYPTED PRIVATE KEY" {
		k.t.Fatalf("a key with a passphrase must be ENCRYPTED PRIVATE KEY, got %s", b.Type)
	}
	// CBC decryption with a wrong passphrase ends in valid padding about
	// once in 256 tries; what must never happen is a key coming out.
	if der, err := pemutil.DecryptPKCS8PrivateKey(b.Bytes, []byte("wrong")); err == nil {
		if _, err := x509.ParsePKCS8PrivateKey(der); err == nil {
			k.t.Fatal("a wrong passphrase must not open the key")
		}
	}
	der, err := pemutil.DecryptPKCS8PrivateKey(b.Bytes, []byte(passphrase))
	k.must(err, "the passphrase must open the key")
	key, err := x509.ParsePKCS8PrivateKey(der)
	k.must(err, "PKCS#8")
	return key
}

func (k *certEnv) matches(key crypto.PrivateKey, c *x509.Certificate) {
	k.t.Helper()
	k.must(keyutil.VerifyPair(c.PublicKey, key), "the private key must be the certificate's")
}

func testEngineCertFlow(e *env) {
	k := e.certEnv(nil)
	r := k.cert
	if r.Device.Key == "" || r.CA == nil || r.Certificate.Format != lifecycle.FormatPEM {
		e.t.Fatal("a first issue registers the device and returns the CA certificate")
	}
	if r.CA.KeyNumber != k.ca.KeyNumber() || r.CA.Serial != lifecycle.FormatSerial(k.ca.Certificate().SerialNumber) {
		e.t.Fatal("the CA certificate returned is the issuing CA's, with its keynumber and serial")
	}
	leaf := k.parse(r.Certificate.Data, lifecycle.FormatPEM)
	k.verify(leaf)
	k.matches(k.privateKey(r.PrivateKey, ""), leaf)
	if leaf.Subject.String() != "CN=ap1.example.com,O=NEC,L=Tokyo,C=JP" || len(leaf.DNSNames) != 1 || leaf.DNSNames[0] != "ap1.example.com" {
		e.t.Fatalf("subject in the given order, and a DNS-name CN in the SAN: %q %v", leaf.Subject, leaf.DNSNames)
	}
	if lifecycle.FormatSerial(leaf.SerialNumber) != r.Certificate.Serial || leaf.SerialNumber.BitLen() < 64 {
		e.t.Fatal("the serial returned is the certificate's, of at least 64 bits")
	}
	if len(leaf.ExtKeyUsage) != 2 || leaf.KeyUsage&x509.KeyUsageDigitalSignature == 0 {
		e.t.Fatalf("a client certificate serves TLS clients and servers: %v", leaf.ExtKeyUsage)
	}
	if got, _ := lifecycle.CertKeyTypeOf(leaf.PublicKey); got != lifecycle.KeyECP256 {
		e.t.Fatalf("the default key type is EC P-256, got %s", got)
	}

	// caonly, pem and der
	for _, f := range []lifecycle.CertFormat{lifecycle.FormatPEM, lifecycle.FormatDER} {
		co, err := k.m.CACertificate(e.ctx, lifecycle.CACertificateRequest{PSK: k.creds, Device: k.dev, CA: "CA", Format: f, Path: "/ca.pem", KeyPath: "/tmp/key"})
		e.must(err, "CACertificate")
		if !k.parse(co.CA.Data, f).Equal(k.ca.Certificate()) || co.CA.KeyNumber != k.ca.KeyNumber() {
			e.t.Fatalf("caonly must return the CA certificate in %s", f)
		}
	}

	// der with a passphrase, an IP CN, and P-384
	d, err := k.m.IssueCertificate(e.ctx, lifecycle.IssueCertificateRequest{PSK: k.creds, Device: k.dev, CA: "ca1",
		Subject: `/CN=192.0.2.7/O=A\/B`, Format: lifecycle.FormatDER, KeyType: "EC-P384", Passphrase: "pass phrase", KeyPath: "/tmp/key", Path: "/der"})
	e.must(err, "IssueCertificate der")
	dc := k.parse(d.Certificate.Data, lifecycle.FormatDER)
	k.matches(k.privateKey(d.PrivateKey, "pass phrase"), dc)
	if len(dc.IPAddresses) != 1 || dc.IPAddresses[0].String() != "192.0.2.7" || dc.Subject.Organization[0] != "A/B" {
		e.t.Fatalf("an IP CN goes in the SAN, and \\/ is a slash: %v %v", dc.IPAddresses, dc.Subject)
	}
	if d.Device.Key != "" {
		e.t.Fatal("a known device is not given its key again")
	}

	// p12 with RSA and Ed25519
	for _, kt := range []string{"RSA-2048", "Ed25519"} {
		p, err := k.m.IssueCertificate(e.ctx, lifecycle.IssueCertificateRequest{PSK: k.creds, Device: k.dev, CA: "ca1",
			Subject: "/CN=p12-" + kt, Format: lifecycle.FormatP12, KeyType: kt, Passphrase: "pässword", KeyPath: "/tmp/key", Path: "/p12", CAPath: "/ca"})
		e.must(err, "IssueCertificate p12 "+kt)
		if p.PrivateKey != "" {
			e.t.Fatal("a p12 answer carries no separate private key")
		}
		key, c, err := pkcs12.Decode(p.Certificate.Data, "pässword")
		e.must(err, "the PFX must open with the passphrase")
		k.verify(c)
		k.matches(key, c)
		if _, _, err := pkcs12.Decode(p.Certificate.Data, "wrong"); err == nil {
			e.t.Fatal("the PFX must not open with a wrong passphrase")
		}
	}

	// get by keynumber and by serial (any case, leading zeros), converting
	kn, serial := r.Certificate.KeyNumber, r.Certificate.Serial
	g, err := k.m.GetCertificate(e.ctx, lifecycle.GetCertificateRequest{PSK: k.creds, Device: k.dev, CA: "ca1",
		Ref: lifecycle.CertificateRef{Serial: "000" + strings.ToLower(serial)}, Format: lifecycle.FormatDER, Path: "/copy.der"})
	e.must(err, "GetCertificate by serial")
	if !k.parse(g.Certificate.Data, lifecycle.FormatDER).Equal(leaf) || g.Certificate.KeyNumber != kn {
		e.t.Fatal("GetCertificate must return the stored certificate")
	}
	k.matches(k.privateKey(g.PrivateKey, ""), leaf)
	g12, err := k.m.GetCertificate(e.ctx, lifecycle.GetCertificateRequest{PSK: k.creds, Device: k.dev, CA: "ca1",
		Ref: lifecycle.CertificateRef{KeyNumber: kn}, Format: lifecycle.FormatP12, Passphrase: "x", Path: "/copy.p12"})
	e.must(err, "GetCertificate as p12")
	if _, c, err := pkcs12.Decode(g12.Certificate.Data, "x"); err != nil || !c.Equal(leaf) {
		e.t.Fatalf("a stored certificate must convert to p12: %v", err)
	}
	gca, err := k.m.GetCertificate(e.ctx, lifecycle.GetCertificateRequest{PSK: k.creds, Device: k.dev, CA: "CA",
		Ref: lifecycle.CertificateRef{KeyNumber: k.ca.KeyNumber()}, Path: "/ca.pem"})
	e.must(err, "GetCertificate of the CA certificate")
	if gca.CA == nil || !k.parse(gca.CA.Data, lifecycle.FormatPEM).Equal(k.ca.Certificate()) {
		e.t.Fatal("GetCertificate with catype CA returns the CA certificate")
	}

	// renewal: same subject, new key and serial; the old is superseded
	n, err := k.m.RenewCertificate(e.ctx, lifecycle.RenewCertificateRequest{PSK: k.creds, Device: k.dev, CA: "ca1",
		Ref: lifecycle.CertificateRef{KeyNumber: kn}, Passphrase: "renewed", Path: certPath, NewPath: certPath + ".new"})
	e.must(err, "RenewCertificate")
	nc := k.parse(n.Certificate.Data, lifecycle.FormatPEM)
	k.verify(nc)
	k.matches(k.privateKey(n.PrivateKey, "renewed"), nc)
	if !bytes.Equal(nc.RawSubject, leaf.RawSubject) || nc.SerialNumber.Cmp(leaf.SerialNumber) == 0 || keyutil.Equal(nc.PublicKey, leaf.PublicKey) {
		e.t.Fatal("a renewal keeps the subject with a new key and serial")
	}
	_, err = k.m.GetCertificate(e.ctx, lifecycle.GetCertificateRequest{PSK: k.creds, Device: k.dev, CA: "ca1", Ref: lifecycle.CertificateRef{KeyNumber: kn}, Path: certPath})
	e.wantCode(err, lifecycle.CodeCertRevoked, "GetCertificate of a superseded certificate")
	crl1, err := k.m.CRL(e.ctx, "ca1")
	e.must(err, "CRL")
	k.onCRL(crl1, leaf, 4)

	// revoke the renewed one; a second revoke answers 1306
	rv, err := k.m.RevokeCertificate(e.ctx, lifecycle.RevokeCertificateRequest{PSK: k.creds, Device: k.dev, CA: "ca1",
		Ref: lifecycle.CertificateRef{Serial: n.Certificate.Serial}, Reason: 1, Path: certPath + ".new"})
	e.must(err, "RevokeCertificate")
	if rv.KeyNumber != n.Certificate.KeyNumber || rv.Serial != n.Certificate.Serial {
		e.t.Fatal("RevokeCertificate names what it revoked")
	}
	_, err = k.m.RevokeCertificate(e.ctx, lifecycle.RevokeCertificateRequest{PSK: k.creds, Device: k.dev, CA: "ca1", Ref: lifecycle.CertificateRef{KeyNumber: rv.KeyNumber}})
	e.wantCode(err, lifecycle.CodeCertRevoked, "revoking twice")
	crl2, err := k.m.CRL(e.ctx, "ca1")
	e.must(err, "CRL")
	k.onCRL(crl2, nc, 1)
	k.onCRL(crl2, leaf, 4)
	if crl2.Number <= crl1.Number {
		e.t.Fatalf("CRL numbers must grow: %d then %d", crl1.Number, crl2.Number)
	}
	_, err = k.m.CRL(e.ctx, "nosuch")
	e.wantCode(err, lifecycle.CodeCANameInvalid, "the CRL of an unknown CA")
}

// onCRL checks that the CRL is signed by the CA and lists c with reason.
func (k *certEnv) onCRL(crl *lifecycle.CRL, c *x509.Certificate, reason int) {
	k.t.Helper()
	l, err := x509.ParseRevocationList(crl.DER)
	k.must(err, "the CRL must parse")
	k.must(l.CheckSignatureFrom(k.ca.Certificate()), "the CRL must be signed by the CA")
	if l.Number.Int64() != crl.Number {
		k.t.Fatal("the CRL carries its number")
	}
	for _, en := range l.RevokedCertificateEntries {
		if en.SerialNumber.Cmp(c.SerialNumber) == 0 {
			if en.ReasonCode != reason {
				k.t.Fatalf("reason %d on the CRL, want %d", en.ReasonCode, reason)
			}
			return
		}
	}
	k.t.Fatalf("serial %X must be on the CRL", c.SerialNumber)
}

func testEngineCertChecks(e *env) {
	k := e.certEnv(&lifecycle.Options{CertValidity: 48 * time.Hour})
	kn := k.cert.Certificate.KeyNumber
	issue := func(mod func(*lifecycle.IssueCertificateRequest)) error {
		req := lifecycle.IssueCertificateRequest{PSK: k.creds, Device: k.dev, CA: "ca1", Subject: "/CN=x", KeyPath: "/tmp/key", Path: "/c", CAPath: "/ca"}
		mod(&req)
		_, err := k.m.IssueCertificate(e.ctx, req)
		return err
	}
	caonly := func(mod func(*lifecycle.CACertificateRequest)) error {
		req := lifecycle.CACertificateRequest{PSK: k.creds, Device: k.dev, CA: "CA", KeyPath: "/tmp/key", Path: "/ca"}
		mod(&req)
		_, err := k.m.CACertificate(e.ctx, req)
		return err
	}
	get := func(mod func(*lifecycle.GetCertificateRequest)) error {
		req := lifecycle.GetCertificateRequest{PSK: k.creds, Device: k.dev, CA: "ca1", Ref: lifecycle.CertificateRef{KeyNumber: kn}, Path: certPath}
		mod(&req)
		_, err := k.m.GetCertificate(e.ctx, req)
		return err
	}
	renew := func(mod func(*lifecycle.RenewCertificateRequest)) error {
		req := lifecycle.RenewCertificateRequest{PSK: k.creds, Device: k.dev, CA: "ca1", Ref: lifecycle.CertificateRef{KeyNumber: kn}, Passphrase: "p", Path: certPath}
		mod(&req)
		_, err := k.m.RenewCertificate(e.ctx, req)
		return err
	}
	revoke := func(mod func(*lifecycle.RevokeCertificateRequest)) error {
		req := lifecycle.RevokeCertificateRequest{PSK: k.creds, Device: k.dev, CA: "ca1", Ref: lifecycle.CertificateRef{KeyNumber: kn}}
		mod(&req)
		_, err := k.m.RevokeCertificate(e.ctx, req)
		return err
	}
	mk := func(subject, path string) *lifecycle.CertificateResult {
		r, err := k.m.IssueCertificate(e.ctx, lifecycle.IssueCertificateRequest{PSK: k.creds, Device: k.dev, CA: "ca1", Subject: subject, KeyPath: "/tmp/key", Path: path, CAPath: "/ca"})
		e.must(err, "IssueCertificate")
		return r
	}
	// Another device of the tenant with its own certificate; another tenant.
	p2, _ := k.m.IssuePSK(e.ctx, lifecycle.IssuePSKRequest{Tenant: "tenant02", Alias: "b"})
	t2 := lifecycle.PSKCredentials{KeyID: p2.KeyID, Password: p2.Password}
	foreign, err := k.m.IssueCertificate(e.ctx, lifecycle.IssueCertificateRequest{PSK: t2, Device: lifecycle.DeviceRequest{Name: "f"}, CA: "ca1", Subject: "/CN=f", KeyPath: "/tmp/key", Path: "/f", CAPath: "/ca"})
	e.must(err, "IssueCertificate in another tenant")
	other, err := k.m.IssueCertificate(e.ctx, lifecycle.IssueCertificateRequest{PSK: k.creds, Device: lifecycle.DeviceRequest{Name: "other"}, CA: "ca1", Subject: "/CN=o", KeyPath: "/tmp/key", Path: "/o", CAPath: "/ca"})
	e.must(err, "IssueCertificate for another device")
	revoked := mk("/CN=r", "/r")
	_, err = k.m.RevokeCertificate(e.ctx, lifecycle.RevokeCertificateRequest{PSK: k.creds, Device: k.dev, CA: "ca1", Ref: lifecycle.CertificateRef{KeyNumber: revoked.Certificate.KeyNumber}})
	e.must(err, "RevokeCertificate")
	spare := mk("/CN=s", "/s")

	long := strings.Repeat("x", 65)
	cases := []struct {
		name string
		err  error
		want lifecycle.Code
	}{
		{"issue: subject missing", issue(func(r *lifecycle.IssueCertificateRequest) { r.Subject = "" }), lifecycle.CodeMissing},
		{"issue: passphrase missing for p12", issue(func(r *lifecycle.IssueCertificateRequest) { r.Format = lifecycle.FormatP12 }), lifecycle.CodeMissing},
		{"issue: subject without CN", issue(func(r *lifecycle.IssueCertificateRequest) { r.Subject = "/C=JP/O=x" }), lifecycle.CodeMalformed},
		{"issue: subject without leading slash", issue(func(r *lifecycle.IssueCertificateRequest) { r.Subject = "CN=x" }), lifecycle.CodeMalformed},
		{"issue: unknown attribute", issue(func(r *lifecycle.IssueCertificateRequest) { r.Subject = "/CN=x/E=a@b" }), lifecycle.CodeMalformed},
		{"issue: bad format", issue(func(r *lifecycle.IssueCertificateRequest) { r.Format = "crt" }), lifecycle.CodeMalformed},
		{"issue: p12 CA format", issue(func(r *lifecycle.IssueCertificateRequest) { r.CAFormat = lifecycle.FormatP12 }), lifecycle.CodeMalformed},
		{"issue: unknown key type", issue(func(r *lifecycle.IssueCertificateRequest) { r.KeyType = "DSA-1024" }), lifecycle.CodeMalformed},
		{"issue: p12 passphrase outside the BMP", issue(func(r *lifecycle.IssueCertificateRequest) {
			r.Format, r.Passphrase = lifecycle.FormatP12, "key🔑"
		}), lifecycle.CodeMalformed},
		{"issue: subject over 512 bytes", issue(func(r *lifecycle.IssueCertificateRequest) { r.Subject = "/CN=x/O=" + strings.Repeat("o", 510) }), lifecycle.CodeOutOfRange},
		{"issue: CN over 64 characters", issue(func(r *lifecycle.IssueCertificateRequest) { r.Subject = "/CN=" + long }), lifecycle.CodeOutOfRange},
		{"issue: passphrase over 128 bytes", issue(func(r *lifecycle.IssueCertificateRequest) { r.Passphrase = lifecycle.Secret(strings.Repeat("p", 129)) }), lifecycle.CodeOutOfRange},
		{"issue: unknown catype", issue(func(r *lifecycle.IssueCertificateRequest) { r.CA = "ca9" }), lifecycle.CodeCANameInvalid},
		{"issue: catype CA for a client certificate", issue(func(r *lifecycle.IssueCertificateRequest) { r.CA = "CA" }), lifecycle.CodeCANameInvalid},
		{"issue: unknown device before catype", issue(func(r *lifecycle.IssueCertificateRequest) { r.CA, r.Device.ID = "ca9", "nosuch" }), lifecycle.CodeDeviceNotFound},
		{"caonly: catype ca1", caonly(func(r *lifecycle.CACertificateRequest) { r.CA = "ca1" }), lifecycle.CodeCANameInvalid},
		{"caonly: p12", caonly(func(r *lifecycle.CACertificateRequest) { r.Format = lifecycle.FormatP12 }), lifecycle.CodeMalformed},
		{"get: neither keynumber nor serial", get(func(r *lifecycle.GetCertificateRequest) { r.Ref = lifecycle.CertificateRef{} }), lifecycle.CodeMissing},
		{"get: bad serial", get(func(r *lifecycle.GetCertificateRequest) { r.Ref = lifecycle.CertificateRef{Serial: "XYZ"} }), lifecycle.CodeMalformed},
		{"get: no such certificate", get(func(r *lifecycle.GetCertificateRequest) { r.Ref.KeyNumber = 99999 }), lifecycle.CodeCertNotFound},
		{"get: no such serial", get(func(r *lifecycle.GetCertificateRequest) { r.Ref = lifecycle.CertificateRef{Serial: "ABCDEF"} }), lifecycle.CodeCertNotFound},
		{"get: another tenant's certificate", get(func(r *lifecycle.GetCertificateRequest) { r.Ref.KeyNumber = foreign.Certificate.KeyNumber }), lifecycle.CodeCertNotFound},
		{"get: catype CA naming a client certificate", get(func(r *lifecycle.GetCertificateRequest) { r.CA = "CA" }), lifecycle.CodeCertNotFound},
		{"get: catype ca1 naming the CA certificate", get(func(r *lifecycle.GetCertificateRequest) { r.Ref.KeyNumber = k.ca.KeyNumber() }), lifecycle.CodeCertNotFound},
		{"get: unknown catype", get(func(r *lifecycle.GetCertificateRequest) { r.CA = "ca9" }), lifecycle.CodeCANameInvalid},
		{"get: revoked", get(func(r *lifecycle.GetCertificateRequest) { r.Ref.KeyNumber = revoked.Certificate.KeyNumber }), lifecycle.CodeCertRevoked},
		{"renew: no path, for a certificate bound at one", renew(func(r *lifecycle.RenewCertificateRequest) { r.Path = "" }), lifecycle.CodeCertPathNotFound},
		{"renew: adopting itself", renew(func(r *lifecycle.RenewCertificateRequest) { r.Adopt = lifecycle.CertificateRef{KeyNumber: kn} }), lifecycle.CodeMalformed},
		{"renew: not bound to this device", renew(func(r *lifecycle.RenewCertificateRequest) { r.Ref.KeyNumber = other.Certificate.KeyNumber }), lifecycle.CodeCertNotBound},
		{"renew: wrong filepath", renew(func(r *lifecycle.RenewCertificateRequest) { r.Path = "/elsewhere" }), lifecycle.CodeCertPathNotFound},
		{"renew: revoked", renew(func(r *lifecycle.RenewCertificateRequest) {
			r.Ref.KeyNumber, r.Path = revoked.Certificate.KeyNumber, "/r"
		}), lifecycle.CodeCertRevoked},
		{"renew: adopting a revoked certificate", renew(func(r *lifecycle.RenewCertificateRequest) {
			r.Adopt = lifecycle.CertificateRef{KeyNumber: revoked.Certificate.KeyNumber}
		}), lifecycle.CodeNewCertNotValid},
		{"renew: adopting an absent certificate", renew(func(r *lifecycle.RenewCertificateRequest) { r.Adopt = lifecycle.CertificateRef{KeyNumber: 99999} }), lifecycle.CodeCertNotFound},
		{"renew: catype CA", renew(func(r *lifecycle.RenewCertificateRequest) { r.CA = "CA" }), lifecycle.CodeCANameInvalid},
		{"revoke: wrong filepath", revoke(func(r *lifecycle.RevokeCertificateRequest) { r.Path = "/elsewhere" }), lifecycle.CodeCertPathNotFound},
		{"revoke: not bound to this device", revoke(func(r *lifecycle.RevokeCertificateRequest) { r.Ref.KeyNumber = other.Certificate.KeyNumber }), lifecycle.CodeCertNotBound},
		{"revoke: bad reason", revoke(func(r *lifecycle.RevokeCertificateRequest) { r.Reason = 7 }), lifecycle.CodeMalformed},
		{"revoke: another tenant's", revoke(func(r *lifecycle.RevokeCertificateRequest) { r.Ref.KeyNumber = foreign.Certificate.KeyNumber }), lifecycle.CodeCertNotFound},
	}
	for _, tc := range cases {
		e.wantCode(tc.err, tc.want, tc.name)
	}
	// Time: not yet valid (1304), expired (1305), adopted expired (1308).
	now := k.c.Now()
	k.c.now = now.Add(-2 * time.Minute)
	e.wantCode(renew(func(*lifecycle.RenewCertificateRequest) {}), lifecycle.CodeCertNotValid, "renew: not yet valid")
	k.c.now = now
	k.c.advance(24 * time.Hour)
	young := mk("/CN=young", "/y") // valid 48h from now+24h
	k.c.advance(25 * time.Hour)    // the first ones expired, young has not
	e.wantCode(get(func(*lifecycle.GetCertificateRequest) {}), lifecycle.CodeCertExpired, "get: expired")
	e.wantCode(renew(func(*lifecycle.RenewCertificateRequest) {}), lifecycle.CodeCertExpired, "renew: expired")
	e.wantCode(renew(func(r *lifecycle.RenewCertificateRequest) {
		r.Ref.KeyNumber, r.Path, r.Adopt = young.Certificate.KeyNumber, "/y", lifecycle.CertificateRef{KeyNumber: spare.Certificate.KeyNumber}
	}), lifecycle.CodeNewCertExpired, "renew: adopting an expired certificate")
	k.c.now = now.Add(24 * time.Hour)
	// Adoption that works, and nothing above changed the first certificate.
	ad, err := k.m.RenewCertificate(e.ctx, lifecycle.RenewCertificateRequest{PSK: k.creds, Device: k.dev, CA: "ca1",
		Ref: lifecycle.CertificateRef{KeyNumber: spare.Certificate.KeyNumber}, Adopt: lifecycle.CertificateRef{Serial: young.Certificate.Serial}, Path: "/s", NewPath: "/s2"})
	e.must(err, "RenewCertificate adopting a certificate")
	if ad.Certificate.KeyNumber != young.Certificate.KeyNumber || ad.PrivateKey == "" {
		e.t.Fatal("an adoption answers with the adopted certificate and its key")
	}
	k.c.now = now
	raw, _ := k.s.GetCredential(e.ctx, kn)
	if raw.State != driver.StateValid {
		e.t.Fatal("refused requests must not change the certificate")
	}
	if err := get(func(*lifecycle.GetCertificateRequest) {}); err != nil {
		e.t.Fatalf("the certificate must still be served: %v", err)
	}
}

func testEngineCertSealed(e *env) {
	k := e.certEnv(nil)
	raw, err := k.s.GetCredential(e.ctx, k.cert.Certificate.KeyNumber)
	e.must(err, "GetCredential")
	key := k.privateKey(k.cert.PrivateKey, "")
	der, _ := x509.MarshalPKCS8PrivateKey(key)
	if bytes.Contains(raw.Secret, der) || len(raw.Secret) == 0 {
		e.t.Fatal("a private key must be sealed at rest")
	}
	if raw.Serial != k.cert.Certificate.Serial || raw.CA != "ca1" || raw.Kind != driver.KindCertificate {
		e.t.Fatal("the record names its CA, serial and kind")
	}
}

// testEngineConcurrentCertTransitions races renewals against revocations
// of one certificate from two engines: exactly one wins each round.
func testEngineConcurrentCertTransitions(e *env) {
	k := e.certEnv(nil)
	m2 := e.engine(e.store(), k.c, &lifecycle.Options{CAs: []lifecycle.CA{k.ca}})
	for round := range 4 {
		path := fmt.Sprint("/race/", round)
		r, err := k.m.IssueCertificate(e.ctx, lifecycle.IssueCertificateRequest{PSK: k.creds, Device: k.dev, CA: "ca1", Subject: "/CN=race", KeyPath: "/tmp/key", Path: path, CAPath: "/ca"})
		e.must(err, "IssueCertificate")
		ref := lifecycle.CertificateRef{KeyNumber: r.Certificate.KeyNumber}
		ops := []func(*lifecycle.Engine) error{
			func(m *lifecycle.Engine) error {
				_, err := m.RenewCertificate(e.ctx, lifecycle.RenewCertificateRequest{PSK: k.creds, Device: k.dev, CA: "ca1", Ref: ref, Passphrase: "p", Path: path})
				return err
			},
			func(m *lifecycle.Engine) error {
				_, err := m.RevokeCertificate(e.ctx, lifecycle.RevokeCertificateRequest{PSK: k.creds, Device: k.dev, CA: "ca1", Ref: ref})
				return err
			},
		}
		a, b := ops[round%2], ops[(round/2)%2]
		var wg sync.WaitGroup
		errs := make([]error, 2)
		start := make(chan struct{})
		for i, op := range []func(*lifecycle.Engine) error{a, b} {
			m := []*lifecycle.Engine{k.m, m2}[i]
			wg.Add(1)
			go func() { defer wg.Done(); <-start; errs[i] = op(m) }()
		}
		close(start)
		wg.Wait()
		ok := 0
		for _, err := range errs {
			switch {
			case err == nil:
				ok++
			case !errors.Is(err, lifecycle.CodeCertRevoked):
				e.t.Fatalf("round %d: the loser must answer 1306, got %v", round, err)
			}
		}
		if ok != 1 {
			e.t.Fatalf("round %d: of two racing transitions exactly one must succeed, %d did", round, ok)
		}
	}
	// No serial or keynumber was issued twice.
	all, err := k.s.ListCredentials(e.ctx, driver.CredentialQuery{Limit: 1000})
	e.must(err, "ListCredentials")
	serials := map[string]bool{}
	for _, c := range all {
		if c.Serial != "" && serials[c.CA+c.Serial] {
			e.t.Fatalf("serial %s issued twice", c.Serial)
		}
		serials[c.CA+c.Serial] = true
	}
}
