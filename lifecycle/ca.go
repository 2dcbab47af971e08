package lifecycle

import (
	"context"
	"crypto"
	"crypto/x509"
	"errors"
	"io"
	"math/big"
	"strings"

	"golang.org/x/crypto/ocsp"
)

// CA is a certificate authority the engine issues through: the driver
// interface of certificates. Package ca has a local implementation; any
// other (a remote CA, an HSM-backed one) proves itself with the conformance
// suite in lifecycle/catest.
//
// A CA is safe for concurrent use. It keeps no state of the engine's: the
// engine records what the CA signs.
type CA interface {
	// Name is the CA's name, the protocol's catype ("ca1").
	Name() string

	// Certificate is the CA's own certificate, the issuer of what it signs.
	Certificate() *x509.Certificate

	// Chain is the CA's certificate chain: its own certificate first, then
	// each issuer up to the root. For a self-signed root it is the root alone.
	Chain() []*x509.Certificate

	// KeyNumber is the keynumber under which the store records the CA's
	// certificate (a credential like any other), or 0 if it is not recorded.
	KeyNumber() int64

	// Sign issues a certificate for pub from template. It never modifies
	// template. It sets a serial number of at least 64 bits (positive, from a
	// CSPRNG; unique in practice), the issuer, the Authority Key Identifier
	// (the CA's Subject Key Identifier) and, if the template has none, the
	// Subject Key Identifier of pub. Validity, subject, subject alternative
	// names and key usages are the template's. An error means nothing was
	// issued; ctx bounds a remote or hardware signer.
	Sign(ctx context.Context, template *x509.Certificate, pub crypto.PublicKey) (*x509.Certificate, error)

	// SignCRL signs a certificate revocation list from template (Number,
	// ThisUpdate, NextUpdate, RevokedCertificateEntries) and returns it in
	// DER. It never modifies template.
	SignCRL(ctx context.Context, template *x509.RevocationList) ([]byte, error)

	// SignOCSP signs an OCSP response (RFC 6960) about a certificate the
	// CA issued, from template (Status, SerialNumber, ThisUpdate,
	// NextUpdate, RevokedAt, RevocationReason, IssuerHash), with its own key
	// or with a delegated responder's (a certificate it issued with
	// id-kp-OCSPSigning, which the response then carries), and returns it
	// in DER. It never modifies template.
	SignOCSP(ctx context.Context, template *ocsp.Response) ([]byte, error)
}

// IssuerURLs are the public URLs of a CA's services that issued
// certificates name (RFC 5280 §4.2.2.1 and §4.2.1.13).
type IssuerURLs struct {
	OCSP      []string // OCSP responders (authorityInfoAccess id-ad-ocsp)
	CAIssuers []string // the CA's certificate, DER (authorityInfoAccess id-ad-caIssuers)
	CRL       []string // the CA's CRL (cRLDistributionPoints)
}

// CANameCA is the catype that addresses CA certificates themselves (spec
// §6): certmode "caonly", or a get of a CA certificate.
const CANameCA = "CA"

// NewSerialNumber draws a positive 128-bit serial number from rand (a
// CSPRNG), never zero, as CAs should (CA/Browser Forum: at least 64 bits).
func NewSerialNumber(rand io.Reader) (*big.Int, error) {
	b := make([]byte, 16)
	for {
		if _, err := io.ReadFull(rand, b); err != nil {
			return nil, err
		}
		if n := new(big.Int).SetBytes(b); n.Sign() > 0 {
			return n, nil
		}
	}
}

// FormatSerial writes a serial number as the protocol does: uppercase hex
// without separators or leading zeros.
func FormatSerial(n *big.Int) string { return strings.ToUpper(n.Text(16)) }

// ParseSerial reads a serial number in hex, any case, leading zeros ignored,
// and returns it in the form FormatSerial writes.
func ParseSerial(s string) (string, error) {
	if s == "" || len(s) > 80 {
		return "", errors.New("a serial is 1 to 80 hex digits")
	}
	n, ok := new(big.Int).SetString(s, 16)
	if !ok || n.Sign() < 0 || strings.ContainsAny(s, "+-_xX") {
		return "", errors.New("a serial is hex digits")
	}
	return FormatSerial(n), nil
}
