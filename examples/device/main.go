// Command device is a device-side agent of the CLM v10 protocol, written
// with httpadapter/client. Each run brings the device's credentials up to
// date and keeps them in a directory:
//
//   - the first run enrols the device: a client certificate (with the CA
//     certificate and the private key) and an AES key; the device id and
//     device key the server returns are kept in state.json (mode 0600);
//
//   - a later run renews the certificate when it expires within
//     -renew-before, and rotates the key when it is older than -rotate-after;
//
//   - with -csr the device makes its own private key (EC P-256), keeps it in
//     client.key (mode 0600) and never sends it: it enrols and renews with a
//     PKCS#10 request (certmode csr), a new key for each renewal;
//
//   - with -ocsp it asks, at the OCSP URL its certificate names (or the
//     server's), whether its certificate is still good, and fails if it is
//     revoked;
//
//   - with -est it speaks EST (RFC 7030) instead, over HTTPS: it fetches the
//     CA chain (cacerts), enrols with a key it makes and its PSK
//     (simpleenroll), and renews before expiry with its certificate over
//     mutual TLS (simplereenroll). EST carries certificates only: no
//     symmetric key is kept then.
//
//     go run ./examples/device -server http://127.0.0.1:8080 -license "$(cat clm.license)" \
//     -keyid 0000000001 -key PSK-PASSWORD -name nec-edge-0001 -dir ./device-state
package main

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"go.step.sm/crypto/keyutil"
	"go.step.sm/crypto/pemutil"
	"golang.org/x/crypto/ocsp"

	"github.com/credlife/clm/httpadapter/client"
	"github.com/credlife/clm/httpadapter/est"
	"github.com/credlife/clm/lifecycle"
)

type config struct {
	server, license, keyID, psk, name, dir, caFile, subject string
	renewBefore, rotateAfter                                time.Duration
	csr, ocsp, est                                          bool
}

// state is what the device keeps between runs.
type state struct {
	DeviceID      string    `json:"deviceid"`
	DeviceKey     string    `json:"devicekey"`
	CertKeyNumber int64     `json:"cert_keynumber"`
	KeyNumber     int64     `json:"key_keynumber"`
	KeyCreated    time.Time `json:"key_created"`
}

func main() {
	var c config
	flag.StringVar(&c.server, "server", "http://127.0.0.1:8080", "CLM server URL")
	flag.StringVar(&c.license, "license", os.Getenv("CLM_LICENSE"), "license key (or CLM_LICENSE)")
	flag.StringVar(&c.keyID, "keyid", os.Getenv("CLM_KEYID"), "PSK keyid (or CLM_KEYID)")
	flag.StringVar(&c.psk, "key", os.Getenv("CLM_KEY"), "PSK password (or CLM_KEY)")
	flag.StringVar(&c.name, "name", "", "device name (default: the host name)")
	flag.StringVar(&c.subject, "subject", "", "certificate subject (default: /CN=<name>)")
	flag.StringVar(&c.dir, "dir", "device-state", "directory of the device's credentials")
	flag.StringVar(&c.caFile, "cacert", "", "CA certificate to trust for an HTTPS server")
	flag.DurationVar(&c.renewBefore, "renew-before", 30*24*time.Hour, "renew the certificate when it expires within this")
	flag.DurationVar(&c.rotateAfter, "rotate-after", 90*24*time.Hour, "rotate the key when it is older than this")
	flag.BoolVar(&c.csr, "csr", false, "make the certificate's key on the device and send a CSR (the key never leaves the device)")
	flag.BoolVar(&c.ocsp, "ocsp", false, "check the certificate's status over OCSP on each run")
	flag.BoolVar(&c.est, "est", false, "enrol and renew over EST (RFC 7030; -server must be https) instead of CLM v10")
	flag.Parse()
	if c.name == "" {
		c.name, _ = os.Hostname()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := run(ctx, c, os.Stdout, time.Now); err != nil {
		fmt.Fprintln(os.Stderr, "device:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, c config, out io.Writer, now func() time.Time) error {
	if (c.license == "" && !c.est) || c.keyID == "" || c.psk == "" {
		return errors.New("-keyid and -key are required, and -license unless -est")
	}
	if c.subject == "" {
		c.subject = "/CN=" + c.name
	}
	hc := http.DefaultClient
	if c.caFile != "" {
		pemData, err := os.ReadFile(c.caFile)
		if err != nil {
			return err
		}
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(pemData)
		hc = &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	}
	if c.est {
		return runEST(ctx, c, hc, out, now)
	}
	cl := client.New(c.server, c.license, &client.Options{HTTPClient: hc})
	creds := lifecycle.PSKCredentials{KeyID: c.keyID, Password: lifecycle.Secret(c.psk)}
	if err := os.MkdirAll(c.dir, 0o700); err != nil {
		return err
	}
	st, err := load(c.dir)
	if err != nil {
		return err
	}
	file := func(name string) string { return filepath.Join(c.dir, name) }

	if st.DeviceID == "" {
		var res *lifecycle.CertificateResult
		if c.csr {
			csr, err := newKeyAndCSR(file("client.key"), c.name)
			if err != nil {
				return err
			}
			res, err = cl.IssueCertificateFromCSR(ctx, lifecycle.IssueFromCSRRequest{PSK: creds, Device: lifecycle.DeviceRequest{Name: c.name},
				CA: "ca1", CSR: csr, Subject: c.subject, KeyPath: file("client.key"), Path: file("client.pem"), CAPath: file("ca.pem")})
			if err != nil {
				return fmt.Errorf("enrolment: %w", err)
			}
		} else {
			var err error
			res, err = cl.IssueCertificate(ctx, lifecycle.IssueCertificateRequest{PSK: creds, Device: lifecycle.DeviceRequest{Name: c.name},
				CA: "ca1", Subject: c.subject, KeyPath: "/tmp/key", Path: file("client.pem"), CAPath: file("ca.pem")})
			if err != nil {
				return fmt.Errorf("enrolment: %w", err)
			}
		}
		st.DeviceID, st.DeviceKey, st.CertKeyNumber = res.Device.Device.ID, res.Device.Key.Reveal(), res.Certificate.KeyNumber
		if err := save(c.dir, st); err != nil { // the device key is returned once: keep it first
			return err
		}
		if err := writeCert(c.dir, res); err != nil {
			return err
		}
		fmt.Fprintf(out, "enrolled device %s: certificate %s\n", st.DeviceID, res.Certificate.Serial)
	}
	dev := lifecycle.DeviceRequest{ID: st.DeviceID, Name: c.name, Key: lifecycle.Secret(st.DeviceKey)}

	// Renew the certificate before it expires.
	cert, err := readCert(file("client.pem"))
	if err != nil {
		return err
	}
	if c.ocsp {
		if err := checkOCSP(ctx, hc, cl, cert, file("ca.pem"), out); err != nil {
			return err
		}
	}
	if now().Add(c.renewBefore).After(cert.NotAfter) {
		req := lifecycle.RenewCertificateRequest{PSK: creds, Device: dev, CA: "ca1",
			Ref: lifecycle.CertificateRef{KeyNumber: st.CertKeyNumber}, Passphrase: lifecycle.Secret(c.psk), Path: file("client.pem")}
		if c.csr {
			// A new key for the successor, kept aside until it is issued.
			if req.CSR, err = newKeyAndCSR(file("client.key.new"), c.name); err != nil {
				return err
			}
			req.Passphrase = ""
		}
		res, err := cl.RenewCertificate(ctx, req)
		if err != nil {
			return fmt.Errorf("renewal: %w", err)
		}
		if c.csr {
			if err := os.Rename(file("client.key.new"), file("client.key")); err != nil {
				return err
			}
		}
		// The key comes encrypted with the passphrase the protocol requires
		// for renewals; the PSK password serves, and the agent keeps it.
		st.CertKeyNumber = res.Certificate.KeyNumber
		if err := writeCert(c.dir, res); err != nil {
			return err
		}
		if err := save(c.dir, st); err != nil {
			return err
		}
		fmt.Fprintf(out, "renewed the certificate (it expired %s): new serial %s\n", cert.NotAfter.Format(time.RFC3339), res.Certificate.Serial)
	} else {
		fmt.Fprintf(out, "certificate valid until %s\n", cert.NotAfter.Format(time.RFC3339))
	}

	// A symmetric key, created once and rotated when old.
	switch {
	case st.KeyNumber == 0:
		k, err := cl.CreateKey(ctx, lifecycle.CreateKeyRequest{PSK: creds, Device: dev, Alias: "telemetry", KeyType: "AES", KeyPath: "/tmp/key", Path: file("aes.key")})
		if err != nil {
			return fmt.Errorf("key: %w", err)
		}
		st.KeyNumber, st.KeyCreated = k.KeyNumber, now()
		if err := os.WriteFile(file("aes.key"), k.Key, 0o600); err != nil {
			return err
		}
		fmt.Fprintf(out, "created key %d\n", k.KeyNumber)
	case now().Sub(st.KeyCreated) > c.rotateAfter:
		k, err := cl.RotateKey(ctx, lifecycle.RotateKeyRequest{PSK: creds, Device: dev, KeyNumber: st.KeyNumber, Path: file("aes.key")})
		if err != nil {
			return fmt.Errorf("rotation: %w", err)
		}
		st.KeyNumber, st.KeyCreated = k.KeyNumber, now()
		if err := os.WriteFile(file("aes.key"), k.Key, 0o600); err != nil {
			return err
		}
		fmt.Fprintf(out, "rotated the key: now %d\n", k.KeyNumber)
	default:
		fmt.Fprintf(out, "key %d is current\n", st.KeyNumber)
	}
	return save(c.dir, st)
}

// runEST keeps the device's certificate over EST: the CA chain in ca.pem,
// the certificate in client.pem and the key, made here, in client.key.
func runEST(ctx context.Context, c config, hc *http.Client, out io.Writer, now func() time.Time) error {
	if err := os.MkdirAll(c.dir, 0o700); err != nil {
		return err
	}
	file := func(name string) string { return filepath.Join(c.dir, name) }
	ec := est.NewClient(c.server, "", hc)
	chain, err := ec.CACerts(ctx)
	if err != nil {
		return fmt.Errorf("cacerts: %w", err)
	}
	var pemChain []byte
	for _, ca := range chain {
		pemChain = append(pemChain, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Raw})...)
	}
	if err := os.WriteFile(file("ca.pem"), pemChain, 0o644); err != nil {
		return err
	}
	cert, err := readCert(file("client.pem"))
	if errors.Is(err, fs.ErrNotExist) {
		csr, err := newKeyAndCSR(file("client.key"), c.name)
		if err != nil {
			return err
		}
		b, _ := pem.Decode(csr)
		cert, err = ec.Enroll(ctx, b.Bytes, &lifecycle.PSKCredentials{KeyID: c.keyID, Password: lifecycle.Secret(c.psk)})
		if err != nil {
			return fmt.Errorf("EST enrolment: %w", err)
		}
		if err := os.WriteFile(file("client.pem"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}), 0o644); err != nil {
			return err
		}
		fmt.Fprintf(out, "enrolled over EST: certificate %X\n", cert.SerialNumber)
		return nil
	}
	if err != nil {
		return err
	}
	if !now().Add(c.renewBefore).After(cert.NotAfter) {
		fmt.Fprintf(out, "certificate valid until %s\n", cert.NotAfter.Format(time.RFC3339))
		return nil
	}
	// simplereenroll authenticates with the current certificate and key.
	pair, err := tls.LoadX509KeyPair(file("client.pem"), file("client.key"))
	if err != nil {
		return err
	}
	mtls := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: rootsOf(hc), Certificates: []tls.Certificate{pair}}}}
	csr, err := newKeyAndCSR(file("client.key.new"), c.name)
	if err != nil {
		return err
	}
	b, _ := pem.Decode(csr)
	renewed, err := est.NewClient(c.server, "", mtls).Reenroll(ctx, b.Bytes)
	if err != nil {
		return fmt.Errorf("EST renewal: %w", err)
	}
	if err := os.WriteFile(file("client.pem"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: renewed.Raw}), 0o644); err != nil {
		return err
	}
	if err := os.Rename(file("client.key.new"), file("client.key")); err != nil {
		return err
	}
	fmt.Fprintf(out, "renewed over EST (it expired %s): new serial %X\n", cert.NotAfter.Format(time.RFC3339), renewed.SerialNumber)
	return nil
}

// rootsOf is the trust pool of an HTTP client made by run (nil: the
// system's).
func rootsOf(hc *http.Client) *x509.CertPool {
	if t, ok := hc.Transport.(*http.Transport); ok && t.TLSClientConfig != nil {
		return t.TLSClientConfig.RootCAs
	}
	return nil
}

func load(dir string) (*state, error) {
	var st state
	b, err := os.ReadFile(filepath.Join(dir, "state.json"))
	if errors.Is(err, fs.ErrNotExist) {
		return &st, nil
	}
	if err != nil {
		return nil, err
	}
	return &st, json.Unmarshal(b, &st)
}

func save(dir string, st *state) error {
	b, _ := json.MarshalIndent(st, "", "  ")
	return os.WriteFile(filepath.Join(dir, "state.json"), b, 0o600)
}

func writeCert(dir string, res *lifecycle.CertificateResult) error {
	if res.CA != nil {
		if err := os.WriteFile(filepath.Join(dir, "ca.pem"), res.CA.Data, 0o644); err != nil {
			return err
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "client.pem"), res.Certificate.Data, 0o644); err != nil {
		return err
	}
	if res.PrivateKey == "" {
		return nil // a CSR's certificate: the device made the key
	}
	return os.WriteFile(filepath.Join(dir, "client.key"), []byte(res.PrivateKey.Reveal()), 0o600)
}

// newKeyAndCSR makes an EC P-256 key, writes it to path (PKCS#8 PEM, mode
// 0600) and returns a CSR for it.
func newKeyAndCSR(path, name string) ([]byte, error) {
	key, err := keyutil.GenerateSigner("EC", "P-256", 0)
	if err != nil {
		return nil, err
	}
	block, err := pemutil.Serialize(key, pemutil.WithPKCS8(true))
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
		return nil, err
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: name}}, key)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}), nil
}

// checkOCSP asks whether cert is good: at the OCSP URL it names, or the
// server's own. The answer must be signed for the CA in caFile (the first
// certificate there is the issuer).
func checkOCSP(ctx context.Context, hc *http.Client, cl *client.Client, cert *x509.Certificate, caFile string, out io.Writer) error {
	issuer, err := readCert(caFile)
	if err != nil {
		return err
	}
	req, err := ocsp.CreateRequest(cert, issuer, &ocsp.RequestOptions{Hash: crypto.SHA256})
	if err != nil {
		return err
	}
	var der []byte
	if len(cert.OCSPServer) > 0 {
		der, err = postOCSP(ctx, hc, cert.OCSPServer[0], req)
	} else {
		der, err = cl.OCSP(ctx, "ca1", req)
	}
	if err != nil {
		return fmt.Errorf("OCSP: %w", err)
	}
	r, err := ocsp.ParseResponseForCert(der, cert, issuer)
	if err != nil {
		return fmt.Errorf("OCSP: %w", err)
	}
	switch r.Status {
	case ocsp.Good:
		fmt.Fprintf(out, "OCSP: certificate good (as of %s)\n", r.ThisUpdate.Format(time.RFC3339))
		return nil
	case ocsp.Revoked:
		fmt.Fprintf(out, "OCSP: certificate revoked at %s, reason %d\n", r.RevokedAt.Format(time.RFC3339), r.RevocationReason)
		return errors.New("the certificate is revoked: enrol again")
	}
	fmt.Fprintln(out, "OCSP: certificate unknown to its CA")
	return errors.New("the certificate is unknown to its CA")
}

// postOCSP sends an OCSP request to url.
func postOCSP(ctx context.Context, hc *http.Client, url string, req []byte) ([]byte, error) {
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(req))
	if err != nil {
		return nil, err
	}
	hr.Header.Set("Content-Type", "application/ocsp-request")
	resp, err := hc.Do(hr)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	return io.ReadAll(io.LimitReader(resp.Body, 1<<20))
}

func readCert(path string) (*x509.Certificate, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	block, _ := pem.Decode(b)
	if block == nil {
		return nil, fmt.Errorf("%s: not PEM", path)
	}
	return x509.ParseCertificate(block.Bytes)
}
