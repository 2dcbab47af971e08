package lifecycle

import (
	"cmp"
	"context"
	"crypto"
	"crypto/x509"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"net"
	"net/netip"
	"time"

	"github.com/credlife/clm/lifecycle/driver"
)

// Limits of the certificate fields (spec §6).
const MaxPassphraseLen = 128

// certFormat checks a format field: "" means pem.
func (c *check) certFormat(field string, f CertFormat, allowP12 bool) CertFormat {
	switch f {
	case "", FormatPEM:
		return FormatPEM
	case FormatDER:
		return FormatDER
	case FormatP12:
		if allowP12 {
			return FormatP12
		}
	}
	c.format(field, false, "must be pem, der"+map[bool]string{true: " or p12"}[allowP12])
	return FormatPEM
}

// passphrase checks a passphrase; a PKCS#12 password must fit a BMPString.
func (c *check) passphrase(p Secret, forP12 bool) {
	c.text("passphrase", string(p), MaxPassphraseLen)
	c.format("passphrase", !forP12 || bmpOnly(string(p)), "a PKCS#12 passphrase has no character outside the Basic Multilingual Plane")
}

// ref checks a certificate reference and returns it with its serial
// normalised.
func (c *check) ref(prefix string, r CertificateRef, required bool) CertificateRef {
	if required {
		c.require(prefix+"keynumber", r.KeyNumber != 0 || r.Serial != "")
	}
	c.number(prefix+"keynumber", r.KeyNumber, false)
	if r.Serial != "" {
		s, err := ParseSerial(r.Serial)
		c.format(prefix+"certserial", err == nil, "a serial is hex digits")
		r.Serial = s
	}
	return r
}

func (r CertificateRef) zero() bool { return r.KeyNumber == 0 && r.Serial == "" }

// subject checks a subject field and returns it parsed.
func (c *check) subject(field, s string) *Subject {
	if s == "" {
		return nil
	}
	sub, err := ParseSubject(s)
	switch {
	case errors.Is(err, ErrSubjectLimit):
		c.limit(field, false, "an attribute or the whole is too long")
	case err != nil:
		c.format(field, false, "must be /C=../ST=../L=../O=../OU=../CN=.. with CN")
	}
	return sub
}

// lookupCert finds a certificate issued by ca to the tenant, by keynumber or
// serial; anything else (absent, another tenant's, another CA's, a CA
// certificate) answers notFound.
func (e *Engine) lookupCert(ctx context.Context, tx driver.Tx, op, tenant, ca string, ref CertificateRef, notFound Code, field string) (*driver.CredentialRecord, error) {
	r, err := credentialByRef(ctx, tx, ca, ref)
	switch {
	case err != nil:
		return nil, err
	case r == nil:
		return nil, errf(op, notFound, field, nil)
	case r.Tenant != tenant || r.Kind != driver.KindCertificate || r.CA != ca ||
		(ref.Serial != "" && r.Serial != ref.Serial):
		return nil, errf(op, notFound, field, nil)
	}
	return r, nil
}

// caByRef finds a CA certificate by keynumber or serial.
func (e *Engine) caByRef(ref CertificateRef) CA {
	for _, ca := range e.caList {
		if ref.KeyNumber != 0 && ca.KeyNumber() == ref.KeyNumber {
			return ca
		}
		if ref.KeyNumber == 0 && FormatSerial(ca.Certificate().SerialNumber) == ref.Serial {
			return ca
		}
	}
	return nil
}

// caName is the CA a request names, or the default CA's name when it names
// none.
func (e *Engine) caName(name string) string {
	if name == "" && len(e.caList) > 0 {
		return e.caList[0].Name()
	}
	return name
}

func (e *Engine) defaultCA() CA {
	if len(e.caList) == 0 {
		return nil
	}
	return e.caList[0]
}

// encodedCA is a CA's certificate as an answer carries it: in PEM, with
// the rest of its chain after it (an intermediate's issuers up to the
// root), in DER alone. PEM and DER are encoded once, by New; the copy
// returned shares Data, which must not be modified.
func (e *Engine) encodedCA(ca CA, f CertFormat) *EncodedCertificate {
	enc := e.caEncodings[caEncodingKey{ca.Name(), f}]
	if enc == nil {
		enc = encodeCA(ca, f)
	}
	c := *enc
	return &c
}

// caEncodingKey keys Engine.caEncodings.
type caEncodingKey struct {
	ca string
	f  CertFormat
}

// encodeCA encodes a CA's certificate, and in PEM its chain up to the root.
func encodeCA(ca CA, f CertFormat) *EncodedCertificate {
	cert := ca.Certificate()
	data := encodeCertificate(cert.Raw, f)
	if chain := ca.Chain(); f == FormatPEM && len(chain) > 1 {
		for _, c := range chain[1:] {
			data = append(data, encodeCertificate(c.Raw, FormatPEM)...)
		}
	}
	return &EncodedCertificate{
		KeyNumber: ca.KeyNumber(),
		Serial:    FormatSerial(cert.SerialNumber),
		Format:    f,
		Data:      data,
		NotAfter:  cert.NotAfter,
	}
}

// newLeaf is a certificate made but not yet recorded. key is nil for a
// certificate of a CSR.
type newLeaf struct {
	key    crypto.Signer
	pkcs8  []byte // key's PKCS#8 DER; the answer's encoding wipes it
	cert   *x509.Certificate
	record *driver.CredentialRecord
}

// wipe clears the leaf's PKCS#8 DER; callers defer it, so that no path
// (an error, a replay) leaves the key's bytes to the garbage collector.
func (l *newLeaf) wipe() { clear(l.pkcs8) }

// secretKey is the leaf's key as encodeLeaf takes it: nil for a
// certificate of a CSR.
func (l *newLeaf) secretKey() *leafKey {
	if l.key == nil {
		return nil
	}
	return &leafKey{der: l.pkcs8, key: l.key}
}

// issueLeaf generates a key of type kt and has ca sign a certificate for
// it as spec says; the key is sealed under the new keynumber.
func (e *Engine) issueLeaf(ctx context.Context, op string, ca CA, tenant string, kt CertKeyType, spec *leafSpec) (*newLeaf, error) {
	key, err := e.certKey(kt)
	if err != nil {
		return nil, errf(op, CodeCryptoFailed, "", err)
	}
	leaf, err := e.signLeaf(ctx, op, ca, tenant, key.Public(), kt, spec)
	if err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, errf(op, CodeCryptoFailed, "", err)
	}
	leaf.key, leaf.pkcs8 = key, der // the answer's PEM is made of der, not marshalled again
	if leaf.record.Secret, err = e.sealer.SealFor(ctx, driver.SealedOf(leaf.record), der); err != nil {
		clear(der)
		return nil, err
	}
	return leaf, nil
}

// signLeaf has ca sign a certificate for pub as spec says, under a new
// keynumber, with the CA's URLs when the engine knows them. The record
// holds no private key.
func (e *Engine) signLeaf(ctx context.Context, op string, ca CA, tenant string, pub crypto.PublicKey, kt CertKeyType, spec *leafSpec) (*newLeaf, error) {
	raw := spec.raw
	if raw == nil {
		var err error
		if raw, err = asn1.Marshal(spec.subject.RDNSequence()); err != nil {
			return nil, errf(op, CodeCryptoFailed, "", err)
		}
	}
	now := e.now().UTC().Truncate(time.Second)
	notAfter := now.Add(spec.validity)
	if caEnd := ca.Certificate().NotAfter; caEnd.Before(notAfter) {
		notAfter = caEnd // a certificate never outlives its issuer
	}
	tmpl := &x509.Certificate{
		RawSubject:            raw,
		NotBefore:             now.Add(-time.Minute), // allow for devices whose clock runs slow
		NotAfter:              notAfter,
		KeyUsage:              spec.usage,
		ExtKeyUsage:           spec.ext,
		BasicConstraintsValid: true,
		DNSNames:              spec.dns,
		IPAddresses:           spec.ips,
	}
	if e.urls != nil {
		u := e.urls(ca.Name())
		tmpl.OCSPServer, tmpl.IssuingCertificateURL, tmpl.CRLDistributionPoints = u.OCSP, u.CAIssuers, u.CRL
	}
	cert, err := ca.Sign(ctx, tmpl, pub)
	if err != nil {
		return nil, errf(op, CodeCryptoFailed, "", err)
	}
	kn, err := e.nextNumber(ctx, driver.SeqKeyNumber)
	if err != nil {
		return nil, e.storeErr(op, entityNone, err)
	}
	return &newLeaf{cert: cert, record: &driver.CredentialRecord{
		KeyNumber:   kn,
		Tenant:      tenant,
		Kind:        driver.KindCertificate,
		State:       driver.StateValid,
		CA:          ca.Name(),
		Serial:      FormatSerial(cert.SerialNumber),
		Subject:     spec.text(),
		KeyType:     string(kt),
		KeyLength:   kt.Bits(),
		Certificate: cert.Raw,
		NotBefore:   cert.NotBefore,
		NotAfter:    cert.NotAfter,
		CreatedAt:   e.now().UTC(),
	}}, nil
}

// recordLeaf records a new certificate for the device at path, with the
// CA's certificate at caPath, in one transaction; or, when the device
// retries (a known device, a path, within the replay window), returns the
// certificate it was given then: the valid one most recently bound at path,
// of the same CA and subject, that same also accepts.
func (e *Engine) recordLeaf(ctx context.Context, op, tenant string, d DeviceRequest, ca CA, leaf *newLeaf, path, caPath string,
	same func(*driver.CredentialRecord) bool) (dev *DeviceResult, replayed *driver.CredentialRecord, err error) {
	dev, err = e.withDevice(ctx, op, entityCertificate, tenant, d, func(tx driver.Tx, dev *DeviceResult) error {
		if d.ID != "" && path != "" {
			var err error
			replayed, err = e.findReplay(ctx, tx, tenant, dev.Device.ID, path, func(r *driver.CredentialRecord) bool {
				return r.Kind == driver.KindCertificate && r.CA == leaf.record.CA && r.Subject == leaf.record.Subject && same(r)
			})
			if err != nil || replayed != nil {
				return err
			}
		}
		if err := tx.CreateCredential(ctx, leaf.record); err != nil {
			return err
		}
		b := &driver.BindingRecord{Tenant: tenant, DeviceID: dev.Device.ID, KeyNumber: leaf.record.KeyNumber, Path: path, CreatedAt: e.now().UTC()}
		return tx.PutBinding(ctx, append(e.caBindings(tenant, dev.Device.ID, ca, caPath), b)...)
	})
	return dev, replayed, err
}

// addrsOf returns IP addresses as netip (IPv4-mapped ones unmapped).
func addrsOf(ips []net.IP) []netip.Addr {
	var out []netip.Addr
	for _, ip := range ips {
		if a, ok := netip.AddrFromSlice(ip); ok {
			out = append(out, a.Unmap())
		}
	}
	return out
}

// credentialByRef reads a credential by keynumber, or a certificate of ca
// by serial; nil, nil when there is none.
func credentialByRef(ctx context.Context, tx driver.Tx, ca string, ref CertificateRef) (*driver.CredentialRecord, error) {
	var (
		r   *driver.CredentialRecord
		err error
	)
	if ref.KeyNumber != 0 {
		r, err = tx.GetCredential(ctx, ref.KeyNumber)
	} else {
		r, err = tx.GetCredentialBySerial(ctx, ca, ref.Serial)
	}
	if errors.Is(err, driver.ErrNotFound) {
		return nil, nil
	}
	return r, err
}

// leafKey is a certificate's private key as the engine holds it between
// the store and an answer: its PKCS#8 DER (what is sealed, and what a PEM
// answer without a passphrase carries) and the parsed key, parsed only when
// an encoding needs it (PKCS#12, a passphrase). For a P-256 key the parse
// is a scalar multiplication and the marshalling another, which a
// certificate fetched or issued as plain PEM no longer pays.
type leafKey struct {
	der []byte
	key crypto.PrivateKey
}

// parsed returns the key, parsing the DER on first use.
func (k *leafKey) parsed() (crypto.PrivateKey, error) {
	if k.key == nil {
		key, err := x509.ParsePKCS8PrivateKey(k.der)
		if err != nil {
			return nil, err
		}
		k.key = key
	}
	return k.key, nil
}

// encodeLeaf writes a certificate and its key as a response carries them,
// then wipes the key's DER. cert, the parsed certificate of rec, may be nil:
// it is parsed when the encoding needs it. k is nil for a certificate of a
// CSR.
func (e *Engine) encodeLeaf(op string, rec *driver.CredentialRecord, cert *x509.Certificate, k *leafKey, f CertFormat, passphrase Secret) (EncodedCertificate, Secret, error) {
	enc := EncodedCertificate{KeyNumber: rec.KeyNumber, Serial: rec.Serial, Format: f, NotAfter: rec.NotAfter}
	if k == nil { // a certificate of a CSR: the device has the key
		if f == FormatP12 {
			return enc, "", errNoServerKey(op)
		}
		enc.Data = encodeCertificate(rec.Certificate, f)
		return enc, "", nil
	}
	defer clear(k.der)
	if f == FormatP12 {
		var chain []*x509.Certificate
		if ca := e.cas[rec.CA]; ca != nil && len(ca.Chain()) > 1 {
			chain = ca.Chain() // an intermediate's PFX carries its chain
		}
		if cert == nil {
			var err error
			if cert, err = x509.ParseCertificate(rec.Certificate); err != nil {
				return enc, "", errf(op, CodeDBData, "", err)
			}
		}
		key, err := k.parsed()
		if err != nil {
			return enc, "", errf(op, CodeDBData, "", err)
		}
		pfx, err := encodePKCS12(key, cert, chain, passphrase, e.legacyP12)
		if err != nil {
			return enc, "", errf(op, CodeCryptoFailed, "", err)
		}
		enc.Data = pfx
		return enc, "", nil
	}
	enc.Data = encodeCertificate(rec.Certificate, f)
	if passphrase == "" {
		return enc, Secret(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: k.der})), nil
	}
	key, err := k.parsed()
	if err != nil {
		return enc, "", errf(op, CodeDBData, "", err)
	}
	pk, err := encodePrivateKey(key, passphrase)
	if err != nil {
		return enc, "", errf(op, CodeCryptoFailed, "", err)
	}
	return enc, pk, nil
}

// heavyEncoding reports whether encoding a certificate's key in f under
// passphrase is expensive (PBKDF2 of a PEM passphrase, a PKCS#12 file).
func heavyEncoding(f CertFormat, passphrase Secret) bool {
	return f == FormatP12 || passphrase != ""
}

// openLeaf reads back the private key of a record: nil for a certificate
// of a CSR. The key stays DER until an encoding needs it parsed.
func (e *Engine) openLeaf(ctx context.Context, op string, rec *driver.CredentialRecord) (*leafKey, error) {
	if len(rec.Secret) == 0 {
		return nil, nil
	}
	der, err := e.sealer.OpenSealed(ctx, driver.SealedOf(rec))
	if err != nil {
		return nil, errf(op, CodeDecrypt, "", err)
	}
	return &leafKey{der: der}, nil
}

// CACertificate implements Manager (certmode "caonly").
func (e *Engine) CACertificate(ctx context.Context, req CACertificateRequest) (res *CACertificateResult, err error) {
	const op = "CACertificate"
	defer func() {
		ev := AuditEvent{Op: op, KeyID: req.PSK.KeyID, DeviceID: req.Device.ID}
		if res != nil {
			ev.DeviceID, ev.Tenant, ev.KeyNumber, ev.Serial = devID(res.Device), devTenant(res.Device), res.CA.KeyNumber, res.CA.Serial
		}
		e.audit(ctx, ev, err)
	}()
	c := newCheck(op)
	c.psk(req.PSK)
	d := c.device(req.Device, deviceRules{mayRegister: true}, e.requireDevKey)
	f := c.certFormat("cacerttype", req.Format, false)
	c.text("keyfilepath", req.KeyPath, MaxPathLen)
	c.text("cafilepath", req.Path, MaxPathLen)
	caller, err := e.admit(ctx, op, c, req.PSK)
	if err != nil {
		return nil, err
	}
	ca := e.defaultCA()
	if req.Issuer != "" {
		ca = e.cas[req.Issuer]
	}
	dev, err := e.withDevice(ctx, op, entityCertificate, caller.Tenant, d, func(tx driver.Tx, dev *DeviceResult) error {
		if cmp.Or(req.CA, CANameCA) != CANameCA || ca == nil {
			return errf(op, CodeCANameInvalid, "catype", nil)
		}
		return tx.PutBinding(ctx, e.caBindings(caller.Tenant, dev.Device.ID, ca, req.Path)...)
	})
	if err != nil {
		return nil, err
	}
	return &CACertificateResult{Device: dev, CA: *e.encodedCA(ca, f)}, nil
}

// caBindings is the binding of a CA certificate to a device at path: none
// without a path, or when the CA's certificate is not recorded.
func (e *Engine) caBindings(tenant, deviceID string, ca CA, path string) []*driver.BindingRecord {
	if path == "" || ca.KeyNumber() == 0 {
		return nil
	}
	return []*driver.BindingRecord{{Tenant: tenant, DeviceID: deviceID, KeyNumber: ca.KeyNumber(), Path: path, CreatedAt: e.now().UTC()}}
}

// IssueCertificate implements Manager (certmode "client").
func (e *Engine) IssueCertificate(ctx context.Context, req IssueCertificateRequest) (res *CertificateResult, err error) {
	const op = "IssueCertificate"
	defer func() { e.auditCertificate(ctx, op, req.PSK.KeyID, req.Device.ID, res, err) }()
	c := newCheck(op)
	c.psk(req.PSK)
	d := c.device(req.Device, deviceRules{mayRegister: true}, e.requireDevKey)
	c.require("clientsubject", req.Subject != "")
	f := c.certFormat("clientcerttype", req.Format, true)
	caf := c.certFormat("cacerttype", req.CAFormat, false)
	c.require("passphrase", req.Passphrase != "" || f != FormatP12)
	sub := c.subject("clientsubject", req.Subject)
	kt := CertKeyType(req.KeyType)
	if kt == "" {
		kt = e.certKeyType
	}
	c.format("keytype", kt.Valid(), "unknown key type")
	c.passphrase(req.Passphrase, f == FormatP12)
	c.text("keyfilepath", req.KeyPath, MaxPathLen)
	c.text("clientfilepath", req.Path, MaxPathLen)
	c.text("cafilepath", req.CAPath, MaxPathLen)
	caller, err := e.admit(ctx, op, c, req.PSK)
	if err != nil {
		return nil, err
	}
	// Nothing expensive before every check that can fail without it.
	if err := e.precheckDevice(ctx, op, caller.Tenant, d); err != nil {
		return nil, err
	}
	ca := e.cas[e.caName(req.CA)]
	if ca == nil {
		return nil, errf(op, CodeCANameInvalid, "catype", nil)
	}
	spec, err := e.policyFor(ca.Name(), caller.Tenant).apply(caller.Tenant, kt, names{subject: sub}, e.certValidity)
	if err != nil {
		return nil, policyFail(op, err, "keytype", "clientsubject")
	}
	release, err := e.expensive(ctx, op, heavyEncoding(f, req.Passphrase) || kt.isRSA())
	if err != nil {
		return nil, err
	}
	defer release()
	leaf, err := e.issueLeaf(ctx, op, ca, caller.Tenant, kt, spec)
	if err != nil {
		return nil, err
	}
	defer leaf.wipe()
	dev, replayed, err := e.recordLeaf(ctx, op, caller.Tenant, d, ca, leaf, req.Path, req.CAPath, func(r *driver.CredentialRecord) bool {
		return r.KeyType == leaf.record.KeyType && len(r.Secret) > 0
	})
	if err != nil {
		return nil, err
	}
	rec, cert, key := leaf.record, leaf.cert, leaf.secretKey()
	if replayed != nil {
		if key, err = e.openLeaf(ctx, op, replayed); err != nil {
			return nil, err
		}
		rec, cert = replayed, nil
	}
	enc, pk, err := e.encodeLeaf(op, rec, cert, key, f, req.Passphrase)
	if err != nil {
		return nil, err
	}
	return &CertificateResult{Device: dev, CA: e.encodedCA(ca, caf), Certificate: enc, PrivateKey: pk}, nil
}

// GetCertificate implements Manager. With CA "CA" it fetches a CA
// certificate; otherwise a certificate of the tenant issued by that CA:
// 1301 absent, 1306 revoked or superseded, 1305 expired.
func (e *Engine) GetCertificate(ctx context.Context, req GetCertificateRequest) (res *CertificateResult, err error) {
	const op = "GetCertificate"
	defer func() { e.auditCertificate(ctx, op, req.PSK.KeyID, req.Device.ID, res, err) }()
	c := newCheck(op)
	c.psk(req.PSK)
	d := c.device(req.Device, deviceRules{}, e.requireDevKey)
	caName := e.caName(req.CA)
	ref := c.ref("", req.Ref, true)
	f := c.certFormat("certtype", req.Format, caName != CANameCA)
	c.require("passphrase", req.Passphrase != "" || f != FormatP12)
	c.passphrase(req.Passphrase, f == FormatP12)
	c.text("filepath", req.Path, MaxPathLen)
	caller, err := e.admit(ctx, op, c, req.PSK)
	if err != nil {
		return nil, err
	}
	release, err := e.expensive(ctx, op, caName != CANameCA && heavyEncoding(f, req.Passphrase))
	if err != nil {
		return nil, err
	}
	defer release()
	var (
		rec *driver.CredentialRecord
		ca  CA
	)
	now := e.now()
	dev, err := e.withDevice(ctx, op, entityCertificate, caller.Tenant, d, func(tx driver.Tx, dev *DeviceResult) error {
		var err error
		if caName == CANameCA {
			if ca = e.caByRef(ref); ca == nil {
				return errf(op, CodeCertNotFound, "keynumber", nil)
			}
			return tx.PutBinding(ctx, e.caBindings(caller.Tenant, dev.Device.ID, ca, req.Path)...)
		}
		if e.cas[caName] == nil {
			return errf(op, CodeCANameInvalid, "catype", nil)
		}
		if rec, err = e.lookupCert(ctx, tx, op, caller.Tenant, caName, ref, CodeCertNotFound, "keynumber"); err != nil {
			return err
		}
		if err := e.isolated(ctx, tx, op, caller.Tenant, dev.Device.ID, rec.KeyNumber, CodeCertNotFound, "keynumber"); err != nil {
			return err
		}
		switch {
		case rec.State != driver.StateValid:
			return errf(op, CodeCertRevoked, "keynumber", nil)
		case !now.Before(rec.NotAfter):
			return errf(op, CodeCertExpired, "keynumber", nil)
		case f == FormatP12 && len(rec.Secret) == 0:
			return errNoServerKey(op)
		}
		return tx.PutBinding(ctx, &driver.BindingRecord{Tenant: caller.Tenant, DeviceID: dev.Device.ID, KeyNumber: rec.KeyNumber, Path: req.Path, CreatedAt: e.now().UTC()})
	})
	if err != nil {
		return nil, err
	}
	if ca != nil {
		return &CertificateResult{Device: dev, CA: e.encodedCA(ca, f)}, nil
	}
	key, err := e.openLeaf(ctx, op, rec)
	if err != nil {
		return nil, err
	}
	enc, pk, err := e.encodeLeaf(op, rec, nil, key, f, req.Passphrase)
	if err != nil {
		return nil, err
	}
	return &CertificateResult{Device: dev, Certificate: enc, PrivateKey: pk}, nil
}

// RenewCertificate implements Manager. After the device: 1302 unknown CA,
// 1301 no such certificate, 1303 not bound to the device, 1309 not bound at
// filepath, 1306 revoked or superseded, 1304 not yet valid, 1305 expired;
// when adopting, 1301 no such certificate, 1307 not valid, 1308 expired.
// Of concurrent renewals and revocations of one certificate exactly one
// succeeds; the others answer 1306.
func (e *Engine) RenewCertificate(ctx context.Context, req RenewCertificateRequest) (res *CertificateResult, err error) {
	const op = "RenewCertificate"
	defer func() { e.auditCertificate(ctx, op, req.PSK.KeyID, req.Device.ID, res, err) }()
	c := newCheck(op)
	c.psk(req.PSK)
	d := c.device(req.Device, deviceRules{}, e.requireDevKey)
	caName := e.caName(req.CA)
	ref := c.ref("", req.Ref, true)
	adopt := c.ref("new", req.Adopt, false)
	f := c.certFormat("certtype", req.Format, true)
	c.require("passphrase", req.Passphrase != "" || f != FormatP12)
	c.format("newkeynumber", adopt.zero() || adopt != ref, "must name another certificate")
	c.passphrase(req.Passphrase, f == FormatP12)
	c.text("filepath", req.Path, MaxPathLen)
	c.text("newfilepath", req.NewPath, MaxPathLen)
	csr := c.csr("csr", req.CSR, false)
	c.format("csr", csr == nil || adopt.zero(), "a CSR asks for a new certificate; it cannot go with an adoption")
	c.format("certtype", csr == nil || f != FormatP12, "the server holds no private key for a CSR: pem or der")
	caller, err := e.admit(ctx, op, c, req.PSK)
	if err != nil {
		return nil, err
	}
	newPath := cmp.Or(req.NewPath, req.Path)
	ca := e.cas[caName]
	now := e.now()

	// The successor is made before the transaction (which may run more
	// than once), but only after the checks that can fail without it have
	// passed on a first read; the transaction checks everything again.
	var leaf *newLeaf
	if adopt.zero() {
		if err := e.precheckDevice(ctx, op, caller.Tenant, d); err != nil {
			return nil, err
		}
		if ca == nil {
			return nil, errf(op, CodeCANameInvalid, "catype", nil)
		}
		old, err := e.renewable(ctx, e.store, op, caller.Tenant, d.ID, caName, ref, req.Path, now)
		if err != nil {
			return nil, err
		}
		oc, err := x509.ParseCertificate(old.Certificate)
		if err != nil {
			return nil, errf(op, CodeDBData, "", err)
		}
		if csr == nil && len(old.Secret) == 0 {
			return nil, errf(op, CodeMissing, "csr", errors.New("a certificate issued for a CSR renews with a new CSR"))
		}
		kt := CertKeyType(old.KeyType)
		if !kt.Valid() {
			kt = e.certKeyType
		}
		if csr != nil {
			kt, _ = CertKeyTypeOf(csr.PublicKey) // checked with the CSR
		}
		sub, err := ParseSubject(old.Subject)
		if err != nil {
			return nil, errf(op, CodeDBData, "", err)
		}
		n := names{subject: sub, dns: oc.DNSNames, ips: addrsOf(oc.IPAddresses), cnInSAN: true, keepSubject: true}
		spec, err := e.policyFor(ca.Name(), caller.Tenant).apply(caller.Tenant, kt, n, e.certValidity)
		if err != nil {
			return nil, policyFail(op, err, "csr", "keynumber")
		}
		spec.raw, spec.rawText = oc.RawSubject, old.Subject
		release, err := e.expensive(ctx, op, csr == nil && (heavyEncoding(f, req.Passphrase) || kt.isRSA()))
		if err != nil {
			return nil, err
		}
		defer release()
		if csr != nil {
			leaf, err = e.signLeaf(ctx, op, ca, caller.Tenant, csr.PublicKey, kt, spec)
		} else {
			leaf, err = e.issueLeaf(ctx, op, ca, caller.Tenant, kt, spec)
		}
		if err != nil {
			return nil, err
		}
		defer leaf.wipe()
	} else {
		release, err := e.expensive(ctx, op, heavyEncoding(f, req.Passphrase))
		if err != nil {
			return nil, err
		}
		defer release()
	}
	var (
		result *driver.CredentialRecord
	)
	dev, err := e.withDevice(ctx, op, entityCertificate, caller.Tenant, d, func(tx driver.Tx, dev *DeviceResult) error {
		var err error
		if ca == nil {
			return errf(op, CodeCANameInvalid, "catype", nil)
		}
		old, err := e.renewable(ctx, tx, op, caller.Tenant, dev.Device.ID, caName, ref, req.Path, now)
		if err != nil {
			return err
		}
		if !adopt.zero() {
			n, err := e.lookupCert(ctx, tx, op, caller.Tenant, caName, adopt, CodeCertNotFound, "newkeynumber")
			if err == nil {
				err = e.isolated(ctx, tx, op, caller.Tenant, dev.Device.ID, n.KeyNumber, CodeCertNotFound, "newkeynumber")
			}
			switch {
			case err != nil:
				return err
			case n.KeyNumber == old.KeyNumber:
				return fieldErr(op, CodeMalformed, "newkeynumber", "must name another certificate")
			case n.State != driver.StateValid || now.Before(n.NotBefore):
				return errf(op, CodeNewCertNotValid, "newkeynumber", nil)
			case !now.Before(n.NotAfter):
				return errf(op, CodeNewCertExpired, "newkeynumber", nil)
			case f == FormatP12 && len(n.Secret) == 0:
				return errNoServerKey(op)
			}
			result = n
		} else {
			if leaf == nil || leaf.record.Subject != old.Subject {
				return errf(op, CodeCryptoFailed, "", errors.New("the successor could not be prepared"))
			}
			result = leaf.record
			if err := tx.CreateCredential(ctx, result); err != nil {
				return err
			}
		}
		err = tx.TransitionCredential(ctx, driver.Transition{
			KeyNumber: old.KeyNumber, From: driver.StateValid, To: driver.StateSuperseded,
			At: e.now().UTC(), Reason: ReasonSuperseded, ReplacedBy: result.KeyNumber,
		})
		if err != nil {
			return err
		}
		return tx.PutBinding(ctx, &driver.BindingRecord{Tenant: caller.Tenant, DeviceID: dev.Device.ID, KeyNumber: result.KeyNumber, Path: newPath, CreatedAt: e.now().UTC()})
	})
	if err != nil {
		return nil, err
	}
	var (
		cert *x509.Certificate
		key  *leafKey
	)
	if leaf != nil && result == leaf.record {
		cert, key = leaf.cert, leaf.secretKey()
	} else if key, err = e.openLeaf(ctx, op, result); err != nil {
		return nil, err
	}
	enc, pk, err := e.encodeLeaf(op, result, cert, key, f, req.Passphrase)
	if err != nil {
		return nil, err
	}
	return &CertificateResult{Device: dev, Certificate: enc, PrivateKey: pk}, nil
}

// renewable reads the certificate a renewal names and checks it: 1301
// absent, 1303 not bound to the device, 1309 not bound at path, 1306
// revoked or superseded, 1304 not yet valid, 1305 expired.
func (e *Engine) renewable(ctx context.Context, tx driver.Tx, op, tenant, deviceID, ca string, ref CertificateRef, path string, now time.Time) (*driver.CredentialRecord, error) {
	old, err := e.lookupCert(ctx, tx, op, tenant, ca, ref, CodeCertNotFound, "keynumber")
	if err != nil {
		return nil, err
	}
	if err := e.isolated(ctx, tx, op, tenant, deviceID, old.KeyNumber, CodeCertNotFound, "keynumber"); err != nil {
		return nil, err
	}
	if err := e.checkCertBound(ctx, tx, op, tenant, deviceID, old.KeyNumber, path, true); err != nil {
		return nil, err
	}
	switch {
	case old.State != driver.StateValid:
		return nil, errf(op, CodeCertRevoked, "keynumber", nil)
	case now.Before(old.NotBefore):
		return nil, errf(op, CodeCertNotValid, "keynumber", nil)
	case !now.Before(old.NotAfter):
		return nil, errf(op, CodeCertExpired, "keynumber", nil)
	}
	return old, nil
}

// isolated answers notFound, with DeviceIsolation, when the device holds
// no binding of credential kn: under isolation a credential of another
// device does not exist for this one.
func (e *Engine) isolated(ctx context.Context, tx driver.Tx, op, tenant, deviceID string, kn int64, notFound Code, field string) error {
	if !e.isolation {
		return nil
	}
	bs, err := tx.ListBindings(ctx, tenant, deviceID, kn)
	if err != nil {
		return err
	}
	if len(bs) == 0 {
		return errf(op, notFound, field, nil)
	}
	return nil
}

// checkCertBound answers 1303 when the device holds no binding of the
// certificate, and 1309 when it holds none at path (checked only if
// pathRequired or path is given).
func (e *Engine) checkCertBound(ctx context.Context, tx driver.Tx, op, tenant, deviceID string, kn int64, path string, pathRequired bool) error {
	bs, err := tx.ListBindings(ctx, tenant, deviceID, kn)
	if err != nil {
		return err
	}
	if len(bs) == 0 {
		return errf(op, CodeCertNotBound, "keynumber", nil)
	}
	if path == "" && !pathRequired {
		return nil
	}
	for _, b := range bs {
		if b.Path == path {
			return nil
		}
	}
	return errf(op, CodeCertPathNotFound, "filepath", nil)
}

// errNoServerKey refuses a PKCS#12 file of a certificate issued for a CSR.
func errNoServerKey(op string) error {
	return fieldErr(op, CodeMalformed, "certtype", "the server holds no private key of a certificate issued for a CSR: pem or der only")
}

// RFC 5280 §5.3.1 reason codes a revocation may give (7 is unused).
func validReason(r int) bool { return r >= 0 && r <= 10 && r != 7 }

// RevokeCertificate implements Manager. After the device: 1302 unknown CA,
// 1301 no such certificate, 1303 not bound to the device, 1309 not bound at
// the given filepath, 1306 already revoked or superseded.
func (e *Engine) RevokeCertificate(ctx context.Context, req RevokeCertificateRequest) (res *RevokeCertificateResult, err error) {
	const op = "RevokeCertificate"
	defer func() {
		ev := AuditEvent{Op: op, KeyID: req.PSK.KeyID, DeviceID: req.Device.ID, KeyNumber: req.Ref.KeyNumber, Serial: req.Ref.Serial}
		if res != nil {
			ev.DeviceID, ev.Tenant, ev.KeyNumber, ev.Serial = devID(res.Device), devTenant(res.Device), res.KeyNumber, res.Serial
		}
		e.audit(ctx, ev, err)
	}()
	c := newCheck(op)
	c.psk(req.PSK)
	d := c.device(req.Device, deviceRules{}, e.requireDevKey)
	caName := e.caName(req.CA)
	ref := c.ref("", req.Ref, true)
	c.format("reason", validReason(req.Reason), "an RFC 5280 reason code: 0 to 10 but 7")
	c.text("filepath", req.Path, MaxPathLen)
	caller, err := e.admit(ctx, op, c, req.PSK)
	if err != nil {
		return nil, err
	}
	var (
		rec *driver.CredentialRecord
	)
	dev, err := e.withDevice(ctx, op, entityCertificate, caller.Tenant, d, func(tx driver.Tx, dev *DeviceResult) error {
		var err error
		if e.cas[caName] == nil {
			return errf(op, CodeCANameInvalid, "catype", nil)
		}
		if rec, err = e.lookupCert(ctx, tx, op, caller.Tenant, caName, ref, CodeCertNotFound, "keynumber"); err != nil {
			return err
		}
		if err := e.isolated(ctx, tx, op, caller.Tenant, dev.Device.ID, rec.KeyNumber, CodeCertNotFound, "keynumber"); err != nil {
			return err
		}
		if err := e.checkCertBound(ctx, tx, op, caller.Tenant, dev.Device.ID, rec.KeyNumber, req.Path, false); err != nil {
			return err
		}
		if rec.State != driver.StateValid {
			return errf(op, CodeCertRevoked, "keynumber", nil)
		}
		return tx.TransitionCredential(ctx, driver.Transition{KeyNumber: rec.KeyNumber, From: driver.StateValid, To: driver.StateRevoked, At: e.now().UTC(), Reason: req.Reason})
	})
	if err != nil {
		return nil, err
	}
	return &RevokeCertificateResult{Device: dev, KeyNumber: rec.KeyNumber, Serial: rec.Serial}, nil
}
