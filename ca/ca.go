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
	"bytes"
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"golang.org/x/crypto/ocsp"

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
	// CommonName of the CA's certificate; "clm <Name> root CA" when "", or
	// "clm <Name> issuing CA" for an intermediate.
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

	// Root, when the CA is created, makes a root that certifies
	// intermediate CAs (path length 1) rather than one that issues to
	// devices (path length 0). A root is opened to create intermediates
	// (Issuer) and need not be handed to the engine.
	Root bool
	// Issuer, when the CA is created, makes it an intermediate CA signed
	// by Issuer (a CA opened with Root) rather than a self-signed root; its
	// validity ends no later than Issuer's. An existing CA is loaded as it
	// is, whatever Issuer says. For an intermediate whose root is offline,
	// see Import.
	Issuer *CA
	// DelegatedOCSP makes the CA sign OCSP responses with a responder
	// certificate it issues itself (id-kp-OCSPSigning, id-pkix-ocsp-nocheck,
	// an EC P-256 key held in memory only, valid 7 days and renewed at half
	// of that) rather than with its own key, so that the CA's key (in an
	// HSM, say) signs once a week instead of once per response. Always on
	// for an Ed25519 CA key, which OCSP cannot use.
	DelegatedOCSP bool
}

// CA is a local certificate authority. It implements lifecycle.CA.
type CA struct {
	name      string
	cert      *x509.Certificate
	chain     []*x509.Certificate // cert, then its issuers up to the root
	signer    crypto.Signer
	keyNumber int64
	rand      io.Reader
	now       func() time.Time

	delegated bool
	respMu    sync.Mutex
	resp      *responder
}

// responder is a delegated OCSP responder: a certificate the CA issued
// with id-kp-OCSPSigning, and its key.
type responder struct {
	cert *x509.Certificate
	key  crypto.Signer
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
		if o.Issuer != nil {
			o.CommonName = "clm " + o.Name + " issuing CA"
		}
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
	c := &CA{name: o.Name, rand: o.Rand, now: o.Now, delegated: o.DelegatedOCSP}

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
	if c.chain, err = chainOf(ctx, store, c.cert); err != nil {
		return nil, fmt.Errorf("ca: %s: %w", o.Name, err)
	}
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
	if _, ok := c.signer.Public().(ed25519.PublicKey); ok {
		c.delegated = true // OCSP signatures are RSA or ECDSA
	}
	return c, nil
}

// chainOf returns cert and its issuers up to a self-signed root, each
// found among the CA certificates of the store.
func chainOf(ctx context.Context, store driver.Store, cert *x509.Certificate) ([]*x509.Certificate, error) {
	chain := []*x509.Certificate{cert}
	var cas []*x509.Certificate
	for len(chain) < 8 {
		last := chain[len(chain)-1]
		if bytes.Equal(last.RawIssuer, last.RawSubject) && last.CheckSignatureFrom(last) == nil {
			return chain, nil
		}
		if cas == nil {
			var err error
			if cas, err = caCertificates(ctx, store); err != nil {
				return nil, err
			}
		}
		var issuer *x509.Certificate
		for _, c := range cas {
			if bytes.Equal(c.RawSubject, last.RawIssuer) && last.CheckSignatureFrom(c) == nil {
				issuer = c
				break
			}
		}
		if issuer == nil {
			return nil, errors.New("the certificate of its issuer is not in the store (Import records an offline root's chain)")
		}
		chain = append(chain, issuer)
	}
	return nil, errors.New("its chain is longer than 8 certificates")
}

// caCertificates reads every valid CA certificate of the store.
func caCertificates(ctx context.Context, store driver.Store) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	q := driver.CredentialQuery{Kind: driver.KindCACertificate, States: []driver.CredentialState{driver.StateValid}, Limit: 100}
	for {
		page, err := store.ListCredentials(ctx, q)
		if err != nil {
			return nil, err
		}
		for _, r := range page {
			c, err := x509.ParseCertificate(r.Certificate)
			if err != nil {
				return nil, fmt.Errorf("stored CA certificate %d: %w", r.KeyNumber, err)
			}
			out = append(out, c)
		}
		if len(page) < q.Limit {
			return out, nil
		}
		q.After = page[len(page)-1].KeyNumber
	}
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
	if _, err := lifecycle.CertKeyTypeOf(signer.Public()); err != nil {
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
	if o.Root {
		tmpl.MaxPathLen, tmpl.MaxPathLenZero = 1, false
	}
	if tmpl.SubjectKeyId, err = x509util.GenerateSubjectKeyID(signer.Public()); err != nil {
		return nil, err
	}
	parent, parentKey := tmpl, signer
	if o.Issuer != nil {
		parent, parentKey = o.Issuer.cert, o.Issuer.signer
		if parent.NotAfter.Before(tmpl.NotAfter) {
			tmpl.NotAfter = parent.NotAfter
		}
	}
	cert, err := x509util.CreateCertificate(tmpl, parent, signer.Public(), parentKey)
	if err != nil {
		return nil, err
	}
	rec, err := caRecord(ctx, tx, o.Name, cert)
	if err != nil {
		return nil, err
	}
	rec.CreatedAt = now
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

// Chain implements lifecycle.CA: the CA's certificate, then its issuers
// up to the root (a root alone for a root).
func (c *CA) Chain() []*x509.Certificate { return c.chain }

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

// SignOCSP implements lifecycle.CA, with the CA's key or, with
// Options.DelegatedOCSP, a responder certificate's.
func (c *CA) SignOCSP(ctx context.Context, template *ocsp.Response) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	t := *template
	responderCert, key := c.cert, c.signer
	if c.delegated {
		r, err := c.responder(ctx)
		if err != nil {
			return nil, err
		}
		responderCert, key, t.Certificate = r.cert, r.key, r.cert
	}
	der, err := ocsp.CreateResponse(c.cert, responderCert, t, key)
	if err != nil {
		return nil, fmt.Errorf("ca: %s: OCSP: %w", c.name, err)
	}
	return der, nil
}

// responderValidity is how long a delegated OCSP responder's certificate
// is valid; a new one is made when half of it has passed.
const responderValidity = 7 * 24 * time.Hour

// oidOCSPNoCheck is id-pkix-ocsp-nocheck (RFC 6960 §4.2.2.2.1): a client
// need not check the responder certificate's own status.
var oidOCSPNoCheck = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 48, 1, 5}

// responder returns the delegated responder, issuing a new one when there
// is none or half of its validity has passed.
func (c *CA) responder(ctx context.Context) (*responder, error) {
	c.respMu.Lock()
	defer c.respMu.Unlock()
	now := c.now()
	if r := c.resp; r != nil && now.Before(r.cert.NotBefore.Add(responderValidity/2)) && !now.Before(r.cert.NotBefore) {
		return r, nil
	}
	key, err := keyutil.GenerateSigner("EC", "P-256", 0)
	if err != nil {
		return nil, fmt.Errorf("ca: %s: OCSP responder key: %w", c.name, err)
	}
	start := now.UTC().Truncate(time.Second).Add(-time.Minute)
	end := start.Add(responderValidity)
	if c.cert.NotAfter.Before(end) {
		end = c.cert.NotAfter
	}
	cert, err := c.Sign(ctx, &x509.Certificate{
		Subject:         pkix.Name{CommonName: c.cert.Subject.CommonName + " OCSP responder"},
		NotBefore:       start,
		NotAfter:        end,
		KeyUsage:        x509.KeyUsageDigitalSignature,
		ExtKeyUsage:     []x509.ExtKeyUsage{x509.ExtKeyUsageOCSPSigning},
		ExtraExtensions: []pkix.Extension{{Id: oidOCSPNoCheck, Value: asn1.NullBytes}},
	}, key.Public())
	if err != nil {
		return nil, err
	}
	c.resp = &responder{cert: cert, key: key}
	return c.resp, nil
}

// Import records in the store an intermediate CA made elsewhere, whose root
// stays offline: chain is its certificate first, then each issuer up to
// the (self-signed) root; key is its private key, sealed in the store
// under keys, or nil when the key stays in a KMS or an HSM (Open then
// takes it as Options.Signer). Each issuer is recorded as a CA
// certificate without a key, under the name name.1, name.2, ... Open(name)
// then loads the CA with its chain. Import refuses a chain that does not
// verify, a key that is not the certificate's, and a name already in use.
func Import(ctx context.Context, store driver.Store, keys lifecycle.KeySource, name string, chain []*x509.Certificate, key crypto.Signer) error {
	if name == "" || name == lifecycle.CANameCA || len(name) > 24 {
		return fmt.Errorf("ca: import: name %q is empty, reserved or longer than 24 bytes", name)
	}
	if len(chain) == 0 || len(chain) > 8 {
		return fmt.Errorf("ca: import %s: a chain is 1 to 8 certificates", name)
	}
	for i, c := range chain {
		if !c.IsCA || !c.BasicConstraintsValid {
			return fmt.Errorf("ca: import %s: certificate %d of the chain is not a CA", name, i)
		}
		issuer := c
		if i+1 < len(chain) {
			issuer = chain[i+1]
		}
		if err := c.CheckSignatureFrom(issuer); err != nil || !bytes.Equal(c.RawIssuer, issuer.RawSubject) {
			return fmt.Errorf("ca: import %s: certificate %d of the chain is not signed by the next", name, i)
		}
	}
	if key != nil && !keyutil.Equal(key.Public(), chain[0].PublicKey) {
		return fmt.Errorf("ca: import %s: the key is not the certificate's", name)
	}
	sealer := lifecycle.NewSealer(keys, rand.Reader)
	return store.Atomic(ctx, func(tx driver.Tx) error {
		if _, err := tx.NextNumber(ctx, driver.Sequence("calock/"+name)); err != nil {
			return err
		}
		if _, err := findCA(ctx, tx, name); !errors.Is(err, driver.ErrNotFound) {
			if err == nil {
				err = fmt.Errorf("ca: import %s: the store already has a CA of that name", name)
			}
			return err
		}
		// The root first; the order does not matter to chainOf, which
		// finds issuers by subject and signature.
		for i := len(chain) - 1; i >= 0; i-- {
			n := name
			if i > 0 {
				n = fmt.Sprintf("%s.%d", name, i)
			}
			rec, err := caRecord(ctx, tx, n, chain[i])
			if err != nil {
				return err
			}
			if i == 0 && key != nil {
				der, err := x509.MarshalPKCS8PrivateKey(key)
				if err != nil {
					return fmt.Errorf("ca: import %s: %w", name, err)
				}
				rec.Secret, err = sealer.SealFor(ctx, driver.SealedOf(rec), der)
				clear(der)
				if err != nil {
					return err
				}
			}
			if err := tx.CreateCredential(ctx, rec); err != nil {
				return fmt.Errorf("ca: import %s: %w", name, err)
			}
		}
		return nil
	})
}

// caRecord is the record of a CA certificate under a name and a new
// keynumber, without its key.
func caRecord(ctx context.Context, tx driver.Tx, name string, cert *x509.Certificate) (*driver.CredentialRecord, error) {
	kt, err := lifecycle.CertKeyTypeOf(cert.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("ca: %s: %w", name, err)
	}
	kn, err := tx.NextNumber(ctx, driver.SeqKeyNumber)
	if err != nil {
		return nil, err
	}
	return &driver.CredentialRecord{
		KeyNumber:   kn,
		Kind:        driver.KindCACertificate,
		State:       driver.StateValid,
		CA:          name,
		Serial:      lifecycle.FormatSerial(cert.SerialNumber),
		Subject:     "/CN=" + cert.Subject.CommonName,
		KeyType:     string(kt),
		KeyLength:   kt.Bits(),
		Certificate: cert.Raw,
		NotBefore:   cert.NotBefore,
		NotAfter:    cert.NotAfter,
		CreatedAt:   time.Now().UTC(),
	}, nil
}
