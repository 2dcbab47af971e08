package main

import (
	"crypto"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"slices"
	"time"

	"go.step.sm/crypto/keyutil"
	"go.step.sm/crypto/pemutil"
	"go.step.sm/crypto/x509util"

	"github.com/credlife/clm/lifecycle"
)

// The files of -tls-auto, in the data directory. The server's TLS identity
// has a CA of its own: a CA that signs device certificates never signs the
// server's names (with one, any device could ask it for a certificate for
// localhost and impersonate the server to its own clients).
const (
	tlsCAFile   = "clm-tls-ca.pem" // the trust file for clients
	tlsCAKey    = "clm-tls-ca.key" // mode 0600
	tlsCertFile = "clm-tls.pem"    // the server's certificate and chain
	tlsKeyFile  = "clm-tls.key"    // mode 0600
)

// tlsRenewBefore is how long before its expiry the server's certificate is
// issued anew at a start.
const tlsRenewBefore = 30 * 24 * time.Hour

// autoTLS returns the server's TLS certificate for -tls-auto: the one kept
// in dir while it covers the listen host and has more than tlsRenewBefore
// left, else a new one from the server's own TLS CA (itself created in dir
// on first use). It returns the CA certificate too, which clients trust.
func autoTLS(dir, addr string, now time.Time) (tls.Certificate, *x509.Certificate, error) {
	caCert, caKey, err := loadOrCreateTLSCA(dir, now)
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("-tls-auto: %w", err)
	}
	dns, ips := serverNames(addr)
	if pair, err := tls.LoadX509KeyPair(filepath.Join(dir, tlsCertFile), filepath.Join(dir, tlsKeyFile)); err == nil {
		leaf := pair.Leaf
		if leaf != nil && leaf.CheckSignatureFrom(caCert) == nil && leaf.NotAfter.Sub(now) > tlsRenewBefore && covers(leaf, dns, ips) {
			return pair, caCert, nil
		}
	}
	key, err := keyutil.GenerateDefaultSigner()
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	tmpl := &x509.Certificate{
		Subject:     pkix.Name{CommonName: "clmserver"},
		NotBefore:   now.Add(-time.Minute),
		NotAfter:    now.Add(90 * 24 * time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:    dns,
		IPAddresses: ips,
	}
	if tmpl.SerialNumber, err = lifecycle.NewSerialNumber(rand.Reader); err != nil {
		return tls.Certificate{}, nil, err
	}
	if tmpl.SubjectKeyId, err = x509util.GenerateSubjectKeyID(key.Public()); err != nil {
		return tls.Certificate{}, nil, err
	}
	tmpl.AuthorityKeyId = caCert.SubjectKeyId
	cert, err := x509util.CreateCertificate(tmpl, caCert, key.Public(), caKey)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	chain := append(pemCert(cert), pemCert(caCert)...)
	if err := writeKey(filepath.Join(dir, tlsKeyFile), key); err != nil {
		return tls.Certificate{}, nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, tlsCertFile), chain, 0o644); err != nil {
		return tls.Certificate{}, nil, err
	}
	return tls.Certificate{Certificate: [][]byte{cert.Raw, caCert.Raw}, PrivateKey: key, Leaf: cert}, caCert, nil
}

// loadOrCreateTLSCA reads the server's TLS CA from dir, creating it (a
// self-signed P-256 root of 10 years, path length 0) on first use.
func loadOrCreateTLSCA(dir string, now time.Time) (*x509.Certificate, crypto.Signer, error) {
	certPath, keyPath := filepath.Join(dir, tlsCAFile), filepath.Join(dir, tlsCAKey)
	cert, err := pemutil.ReadCertificate(certPath)
	if err == nil {
		k, err := pemutil.Read(keyPath)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", keyPath, err)
		}
		signer, ok := k.(crypto.Signer)
		if !ok || !keyutil.Equal(signer.Public(), cert.PublicKey) {
			return nil, nil, fmt.Errorf("%s is not the key of %s", keyPath, certPath)
		}
		return cert, signer, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, nil, fmt.Errorf("%s: %w", certPath, err)
	}
	key, err := keyutil.GenerateDefaultSigner()
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		Subject:               pkix.Name{CommonName: "clmserver TLS CA"},
		NotBefore:             now.Add(-time.Minute),
		NotAfter:              now.Add(10 * 365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	if tmpl.SerialNumber, err = lifecycle.NewSerialNumber(rand.Reader); err != nil {
		return nil, nil, err
	}
	if tmpl.SubjectKeyId, err = x509util.GenerateSubjectKeyID(key.Public()); err != nil {
		return nil, nil, err
	}
	if cert, err = x509util.CreateCertificate(tmpl, tmpl, key.Public(), key); err != nil {
		return nil, nil, err
	}
	if err := writeKey(keyPath, key); err != nil {
		return nil, nil, err
	}
	if err := os.WriteFile(certPath, pemCert(cert), 0o644); err != nil {
		return nil, nil, err
	}
	return cert, key, nil
}

// serverNames are the names of the server's certificate: localhost, the
// loopback addresses and the listen host.
func serverNames(addr string) ([]string, []net.IP) {
	dns := []string{"localhost"}
	ips := []net.IP{net.IPv4(127, 0, 0, 1).To4(), net.IPv6loopback}
	host, _, _ := net.SplitHostPort(addr)
	if ip := net.ParseIP(host); ip != nil && !ip.IsUnspecified() && !ip.IsLoopback() {
		ips = append(ips, ip)
	} else if ip == nil && host != "" && host != "localhost" {
		dns = append(dns, host)
	}
	return dns, ips
}

func covers(c *x509.Certificate, dns []string, ips []net.IP) bool {
	for _, d := range dns {
		if !slices.Contains(c.DNSNames, d) {
			return false
		}
	}
	for _, ip := range ips {
		if !slices.ContainsFunc(c.IPAddresses, ip.Equal) {
			return false
		}
	}
	return true
}

func pemCert(c *x509.Certificate) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
}

// writeKey writes a private key as unencrypted PKCS#8 PEM, mode 0600.
func writeKey(path string, key crypto.Signer) error {
	block, err := pemutil.Serialize(key, pemutil.WithPKCS8(true))
	if err != nil {
		return err
	}
	return os.WriteFile(path, pem.EncodeToMemory(block), 0o600)
}
