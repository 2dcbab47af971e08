// Package ca is the local certificate authority of clm: a self-signed root,
// created on first start and kept in the Store as a credential like any
// other (a keynumber, a serial, its private key sealed with the engine's
// keys), that signs certificates and CRLs for the lifecycle engine through
// any crypto.Signer.
//
// Open one CA per name and hand them to the engine:
//
//	ca1, err := ca.Open(ctx, store, keys, &ca.Options{Name: "ca1"})
//	m, err := lifecycle.New(store, &lifecycle.Options{Keys: keys, CAs: []lifecycle.CA{ca1}})
//
// Keys are generated with go.step.sm/crypto/keyutil and certificates made
// with go.step.sm/crypto/x509util, from Go templates built once per request
// (no text templating on the issuing path). A key held in a KMS or an HSM
// (go.step.sm/crypto/kms gives a crypto.Signer for each) plugs in through
// Options.Signer: the CA then never sees or stores the private key.
//
// # Concurrency
//
// A CA is safe for concurrent use. Several processes may Open the same CA
// on one database: the first creates it, under a lock taken in the store;
// the others load it.
package ca

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"time"

	"go.step.sm/crypto/keyutil"
	"go.step.sm/crypto/x509util"

	"github.com/credlife/clm/lifecycle"
	"github.com/credlife/clm/lifecycle/driver"
)

// Options configure a local CA. Zero fields mean defaults.
type Options struct {
	// Name is the CA's name, the protocol's catype: "ca1" when "". At most
	// 24 bytes; "CA" is reserved.
	Name string
	// CommonName of the root certificate; "clm <Name> root CA" when "".
	CommonName string
	// Organization of the root certificate; none when "".
	Organization string
	// KeyType of the CA's key when it is generated; EC-P256 when "".
	KeyType lifecycle.CertKeyType
	// Validity of the root certificate when it is created; 20 years when 0.
	Validity time.Duration
	// Signer is an external key (KMS, HSM). When set the CA signs with it
	// and stores no private key; an existing CA must have been created with
	// the same key.
	Signer crypto.Signer
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// Rand is the source of serial numbers and signatures; crypto/rand when
	// nil. It must be a CSPRNG.
	Rand io.Reader
}

// CA is a local certificate authority. It implements lifecycle.CA.
type CA struct {
	name      string
	cert      *x509.Certificate
	signer    crypto.Signer
	keyNumber int64
	rand      io.Reader
}

var _ lifecycle.CA = (*CA)(nil)

// Open loads the CA named opts.Name from the store, creating it (a new key
// unless opts.Signer is given, and a self-signed root certificate) if the
// store has none. keys are the engine's key-encryption keys: the CA's
// private key is sealed under them.
func Open(ctx context.Context, store driver.Store, keys lifecycle.KeySource, opts *Options) (*CA, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.Name == "" {
		o.Name = "ca1"
	}
	if o.Name == lifecycle.CANameCA || len(o.Name) > 24 {
		return nil, fmt.Errorf("ca: name %q is reserved or longer than 24 bytes", o.Name)
	}
	if o.CommonName == "" {
		o.CommonName = "clm " + o.Name + " root CA"
	}
	if o.KeyType == "" {
		o.KeyType = lifecycle.KeyECP256
	}
	if !o.KeyType.Valid() {
		return nil, fmt.Errorf("ca: unknown key type %q", o.KeyType)
	}
	if o.Validity == 0 {
		o.Validity = 20 * 365 * 24 * time.Hour
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Rand == nil {
		o.Rand = rand.Reader
	}
	sealer := lifecycle.NewSealer(keys, o.Rand)
	c := &CA{name: o.Name, rand: o.Rand}

	rec, err := findCA(ctx, store, o.Name)
	if errors.Is(err, driver.ErrNotFound) {
		// Create it under a lock: the increment of a sequence row of its own
		// holds that row until the transaction ends.
		err = store.Atomic(ctx, func(tx driver.Tx) error {
			if _, err := tx.NextNumber(ctx, driver.Sequence("calock/"+o.Name)); err != nil {
				return err
			}
			var err error
			rec, err = findCA(ctx, tx, o.Name)
			if !errors.Is(err, driver.ErrNotFound) {
				return err
			}
			rec, err = create(ctx, tx, sealer, &o)
			return err
		})
	}
	if err != nil {
		return nil, fmt.Errorf("ca: %s: %w", o.Name, err)
	}
	if c.cert, err = x509.ParseCertificate(rec.Certificate); err != nil {
		return nil, fmt.Errorf("ca: %s: stored certificate: %w", o.Name, err)
	}
	c.keyNumber = rec.KeyNumber
	switch {
	case o.Signer != nil:
		if !keyutil.Equal(o.Signer.Public(), c.cert.PublicKey) {
			return nil, fmt.Errorf("ca: %s: the given signer is not the key of the stored CA certificate", o.Name)
		}
		c.signer = o.Signer
	case len(rec.Secret) == 0:
		return nil, fmt.Errorf("ca: %s: the CA was created with an external signer; give Options.Signer", o.Name)
	default:
		der, err := sealer.OpenSealed(ctx, driver.SealedOf(rec))
		if err != nil {
			ver, _ := lifecycle.SealedVersion(rec.Secret)
			return nil, fmt.Errorf("ca: %s: its private key does not open: %w, version %d: %w", o.Name, lifecycle.ErrWrongMasterKey, ver, err)
		}
		key, err := x509.ParsePKCS8PrivateKey(der)
		clear(der)
		if err != nil {
			return nil, fmt.Errorf("ca: %s: stored key: %w", o.Name, err)
		}
		signer, ok := key.(crypto.Signer)
		if !ok || !keyutil.Equal(signer.Public(), c.cert.PublicKey) {
			return nil, fmt.Errorf("ca: %s: the stored key does not match the certificate", o.Name)
		}
		c.signer = signer
	}
	return c, nil
}

// findCA returns the newest valid CA certificate record of a name.
func findCA(ctx context.Context, tx driver.Tx, name string) (*driver.CredentialRecord, error) {
	var found *driver.CredentialRecord
	q := driver.CredentialQuery{CA: name, Kind: driver.KindCACertificate, States: []driver.CredentialState{driver.StateValid}, Limit: 100}
	for {
		page, err := tx.ListCredentials(ctx, q)
		if err != nil {
			return nil, err
		}
		if len(page) > 0 {
			found = page[len(page)-1]
		}
		if len(page) < q.Limit {
			break
		}
		q.After = page[len(page)-1].KeyNumber
	}
	if found == nil {
		return nil, driver.ErrNotFound
	}
	return found, nil
}

func create(ctx context.Context, tx driver.Tx, sealer *lifecycle.Sealer, o *Options) (*driver.CredentialRecord, error) {
	signer := o.Signer
	if signer == nil {
		var err error
		if signer, err = lifecycle.GenerateCertKey(o.KeyType); err != nil {
			return nil, err
		}
	}
	kt, err := lifecycle.CertKeyTypeOf(signer.Public())
	if err != nil {
		return nil, err
	}
	sn, err := lifecycle.NewSerialNumber(o.Rand)
	if err != nil {
		return nil, err
	}
	now := o.Now().UTC().Truncate(time.Second)
	subject := pkix.Name{CommonName: o.CommonName}
	if o.Organization != "" {
		subject.Organization = []string{o.Organization}
	}
	tmpl := &x509.Certificate{
		SerialNumber:          sn,
		Subject:               subject,
		NotBefore:             now.Add(-time.Minute),
		NotAfter:              now.Add(o.Validity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLen:            0,
		MaxPathLenZero:        true,
	}
	if tmpl.SubjectKeyId, err = x509util.GenerateSubjectKeyID(signer.Public()); err != nil {
		return nil, err
	}
	cert, err := x509util.CreateCertificate(tmpl, tmpl, signer.Public(), signer)
	if err != nil {
		return nil, err
	}
	kn, err := tx.NextNumber(ctx, driver.SeqKeyNumber)
	if err != nil {
		return nil, err
	}
	rec := &driver.CredentialRecord{
		KeyNumber:   kn,
		Kind:        driver.KindCACertificate,
		State:       driver.StateValid,
		CA:          o.Name,
		Serial:      lifecycle.FormatSerial(cert.SerialNumber),
		Subject:     "/CN=" + o.CommonName,
		KeyType:     string(kt),
		KeyLength:   kt.Bits(),
		Certificate: cert.Raw,
		NotBefore:   cert.NotBefore,
		NotAfter:    cert.NotAfter,
		CreatedAt:   now,
	}
	if o.Signer == nil {
		der, err := x509.MarshalPKCS8PrivateKey(signer)
		if err != nil {
			return nil, err
		}
		rec.Secret, err = sealer.SealFor(ctx, driver.SealedOf(rec), der)
		clear(der)
		if err != nil {
			return nil, err
		}
	}
	if err := tx.CreateCredential(ctx, rec); err != nil {
		return nil, err
	}
	return rec, nil
}

// Name implements lifecycle.CA.
func (c *CA) Name() string { return c.name }

// Certificate implements lifecycle.CA.
func (c *CA) Certificate() *x509.Certificate { return c.cert }

// Chain implements lifecycle.CA: the root alone.
func (c *CA) Chain() []*x509.Certificate { return []*x509.Certificate{c.cert} }

// KeyNumber implements lifecycle.CA.
func (c *CA) KeyNumber() int64 { return c.keyNumber }

// Signer returns the CA's signing key, for tests and for embedders that
// sign other artifacts with it.
func (c *CA) Signer() crypto.Signer { return c.signer }

// Sign implements lifecycle.CA.
func (c *CA) Sign(ctx context.Context, template *x509.Certificate, pub crypto.PublicKey) (*x509.Certificate, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	t := *template // never modify the caller's template
	sn, err := lifecycle.NewSerialNumber(c.rand)
	if err != nil {
		return nil, fmt.Errorf("ca: serial: %w", err)
	}
	t.SerialNumber = sn
	t.AuthorityKeyId = c.cert.SubjectKeyId
	if len(t.SubjectKeyId) == 0 {
		if t.SubjectKeyId, err = x509util.GenerateSubjectKeyID(pub); err != nil {
			return nil, fmt.Errorf("ca: %w", err)
		}
	}
	cert, err := x509util.CreateCertificate(&t, c.cert, pub, c.signer)
	if err != nil {
		return nil, fmt.Errorf("ca: %s: %w", c.name, err)
	}
	return cert, nil
}

// SignCRL implements lifecycle.CA.
func (c *CA) SignCRL(ctx context.Context, template *x509.RevocationList) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	t := *template
	der, err := x509.CreateRevocationList(c.rand, &t, c.cert, c.signer)
	if err != nil {
		return nil, fmt.Errorf("ca: %s: CRL: %w", c.name, err)
	}
	return der, nil
}
