package lifecycle

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"unicode/utf8"

	"go.step.sm/crypto/keyutil"
	"go.step.sm/crypto/pemutil"
	"software.sslmate.com/src/go-pkcs12"
)

// CertKeyType is the key algorithm of a certificate whose key the server
// generates.
type CertKeyType string

// The key types of issued certificates.
const (
	KeyECP256  CertKeyType = "EC-P256" // the default
	KeyECP384  CertKeyType = "EC-P384"
	KeyRSA2048 CertKeyType = "RSA-2048"
	KeyRSA3072 CertKeyType = "RSA-3072"
	KeyRSA4096 CertKeyType = "RSA-4096"
	KeyEd25519 CertKeyType = "Ed25519"
)

// CertKeyTypes lists every CertKeyType.
func CertKeyTypes() []CertKeyType {
	return []CertKeyType{KeyECP256, KeyECP384, KeyRSA2048, KeyRSA3072, KeyRSA4096, KeyEd25519}
}

// ErrUnknownKeyType is returned for a key type clm does not generate.
var ErrUnknownKeyType = errors.New("unknown key type")

type keyParams struct {
	kty, crv string
	bits     int
}

var certKeyParams = map[CertKeyType]keyParams{
	KeyECP256:  {"EC", "P-256", 256},
	KeyECP384:  {"EC", "P-384", 384},
	KeyRSA2048: {"RSA", "", 2048},
	KeyRSA3072: {"RSA", "", 3072},
	KeyRSA4096: {"RSA", "", 4096},
	KeyEd25519: {"OKP", "Ed25519", 256},
}

// Bits returns the key's size in bits (256 for Ed25519).
func (t CertKeyType) Bits() int { return certKeyParams[t].bits }

// Valid reports whether t is a key type clm generates.
func (t CertKeyType) Valid() bool { _, ok := certKeyParams[t]; return ok }

func (t CertKeyType) isRSA() bool { return t == KeyRSA2048 || t == KeyRSA3072 || t == KeyRSA4096 }

// GenerateCertKey generates a private key of type t with
// go.step.sm/crypto/keyutil (randomness from crypto/rand).
func GenerateCertKey(t CertKeyType) (crypto.Signer, error) {
	p, ok := certKeyParams[t]
	if !ok {
		return nil, ErrUnknownKeyType
	}
	return keyutil.GenerateSigner(p.kty, p.crv, p.bits)
}

// CertKeyTypeOf returns the CertKeyType of a public key.
func CertKeyTypeOf(pub crypto.PublicKey) (CertKeyType, error) {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		switch k.Curve.Params().BitSize {
		case 256:
			return KeyECP256, nil
		case 384:
			return KeyECP384, nil
		}
	case *rsa.PublicKey:
		for _, t := range []CertKeyType{KeyRSA2048, KeyRSA3072, KeyRSA4096} {
			if k.N.BitLen() == t.Bits() {
				return t, nil
			}
		}
	case ed25519.PublicKey:
		return KeyEd25519, nil
	}
	return "", ErrUnknownKeyType
}

// encodeCertificate writes a certificate as PEM or DER.
func encodeCertificate(der []byte, f CertFormat) []byte {
	if f == FormatDER {
		return der
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// encodePrivateKey writes a private key as PKCS#8 PEM, encrypted with the
// passphrase when there is one (PBES2: AES-256-CBC, PBKDF2-SHA256, as
// go.step.sm/crypto/pemutil writes it).
func encodePrivateKey(key crypto.PrivateKey, passphrase Secret) (Secret, error) {
	if passphrase == "" {
		der, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			return "", err
		}
		return Secret(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})), nil
	}
	block, err := pemutil.Serialize(key, pemutil.WithPKCS8(true), pemutil.WithPassword([]byte(passphrase)))
	if err != nil {
		return "", err
	}
	return Secret(pem.EncodeToMemory(block)), nil
}

// encodePKCS12 writes a PFX of the certificate and its key, with the CA
// certificates of chain (none for a certificate of a root).
func encodePKCS12(key crypto.PrivateKey, cert *x509.Certificate, chain []*x509.Certificate, passphrase Secret, legacy bool) ([]byte, error) {
	enc := pkcs12.Modern2023
	if legacy {
		enc = pkcs12.LegacyDES
	}
	return enc.Encode(key, cert, chain, string(passphrase))
}

// bmpOnly reports whether s fits a PKCS#12 password (a BMPString): no
// character outside the Basic Multilingual Plane.
func bmpOnly(s string) bool {
	for _, r := range s {
		if r > 0xFFFF || r == utf8.RuneError {
			return false
		}
	}
	return true
}
