package est

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"strings"

	"github.com/smallstep/pkcs7"

	"github.com/credlife/clm/lifecycle"
)

// Client is a Go client of EST (RFC 7030) for devices: any EST server,
// httpadapter/est among them. Its HTTP client carries the device's TLS
// configuration: the server's trust anchors and, to renew, the device's
// certificate and key (tls.Config.Certificates). It is safe for concurrent
// use.
type Client struct {
	base string
	hc   *http.Client
}

// NewClient returns a client of the EST server at baseURL (scheme and
// host, as "https://clm.example.com:8443") for the CA named label ("" for
// the default), sending its requests with hc (http.DefaultClient when
// nil).
func NewClient(baseURL, label string, hc *http.Client) *Client {
	if hc == nil {
		hc = http.DefaultClient
	}
	base := strings.TrimSuffix(baseURL, "/") + "/.well-known/est/"
	if label != "" {
		base += label + "/"
	}
	return &Client{base: base, hc: hc}
}

// Error is an answer of the server other than success: its HTTP status and
// the reason it gave.
type Error struct {
	Op     string
	Status int
	Reason string
}

func (e *Error) Error() string {
	return fmt.Sprintf("est: %s: HTTP %d: %s", e.Op, e.Status, e.Reason)
}

// Temporary reports whether retrying later may succeed (the server was
// busy or unreachable in part: 429, 502, 503, 504).
func (e *Error) Temporary() bool {
	switch e.Status {
	case http.StatusTooManyRequests, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return false
}

// CACerts fetches the CA's chain (cacerts).
func (c *Client) CACerts(ctx context.Context) ([]*x509.Certificate, error) {
	_, body, err := c.do(ctx, "cacerts", http.MethodGet, nil, nil)
	if err != nil {
		return nil, err
	}
	return certsOf("cacerts", body)
}

// Enroll asks for a certificate for a CSR (DER; simpleenroll),
// authenticated by psk or, when psk is nil, by the client certificate of
// the HTTP client's TLS configuration.
func (c *Client) Enroll(ctx context.Context, csr []byte, psk *lifecycle.PSKCredentials) (*x509.Certificate, error) {
	return c.enroll(ctx, "simpleenroll", csr, psk)
}

// Reenroll renews the client certificate of the HTTP client's TLS
// configuration with a new key (simplereenroll): csr (DER) names the same
// subject. The old certificate is superseded.
func (c *Client) Reenroll(ctx context.Context, csr []byte) (*x509.Certificate, error) {
	return c.enroll(ctx, "simplereenroll", csr, nil)
}

// ServerKeyGen asks the server to make the key (serverkeygen): csr (DER)
// names the subject. It returns the certificate and its private key.
func (c *Client) ServerKeyGen(ctx context.Context, csr []byte, psk *lifecycle.PSKCredentials) (*x509.Certificate, crypto.PrivateKey, error) {
	resp, body, err := c.do(ctx, "serverkeygen", http.MethodPost, csr, psk)
	if err != nil {
		return nil, nil, err
	}
	mt, params, err := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if err != nil || !strings.HasPrefix(mt, "multipart/") {
		return nil, nil, &Error{Op: "serverkeygen", Status: resp.StatusCode, Reason: "the answer is not multipart"}
	}
	var (
		cert *x509.Certificate
		key  crypto.PrivateKey
	)
	mr := multipart.NewReader(bytes.NewReader(body), params["boundary"])
	for {
		p, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, nil, err
		}
		data, err := io.ReadAll(p)
		if err != nil {
			return nil, nil, err
		}
		ct, _, _ := mime.ParseMediaType(p.Header.Get("Content-Type"))
		switch ct {
		case "application/pkcs8":
			der, err := unbase64(data)
			if err != nil {
				return nil, nil, err
			}
			if key, err = x509.ParsePKCS8PrivateKey(der); err != nil {
				return nil, nil, fmt.Errorf("est: serverkeygen: the key: %w", err)
			}
		case "application/pkcs7-mime":
			certs, err := certsOf("serverkeygen", data)
			if err != nil {
				return nil, nil, err
			}
			cert = certs[0]
		}
	}
	if cert == nil || key == nil {
		return nil, nil, &Error{Op: "serverkeygen", Status: resp.StatusCode, Reason: "the answer lacks the key or the certificate"}
	}
	return cert, key, nil
}

func (c *Client) enroll(ctx context.Context, op string, csr []byte, psk *lifecycle.PSKCredentials) (*x509.Certificate, error) {
	_, body, err := c.do(ctx, op, http.MethodPost, csr, psk)
	if err != nil {
		return nil, err
	}
	certs, err := certsOf(op, body)
	if err != nil {
		return nil, err
	}
	return certs[0], nil
}

// do sends a request (a CSR in base64, when given) and returns a 2xx
// answer's body; anything else is an *Error.
func (c *Client) do(ctx context.Context, op, method string, csr []byte, psk *lifecycle.PSKCredentials) (*http.Response, []byte, error) {
	var rd io.Reader
	if csr != nil {
		rd = strings.NewReader(base64.StdEncoding.EncodeToString(csr))
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+op, rd)
	if err != nil {
		return nil, nil, err
	}
	if csr != nil {
		req.Header.Set("Content-Type", "application/pkcs10")
		req.Header.Set("Content-Transfer-Encoding", "base64")
	}
	if psk != nil {
		req.SetBasicAuth(psk.KeyID, psk.Password.Reveal())
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, nil, fmt.Errorf("est: %s: %w", op, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, nil, fmt.Errorf("est: %s: %w", op, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, nil, &Error{Op: op, Status: resp.StatusCode, Reason: strings.TrimSpace(string(body))}
	}
	return resp, body, nil
}

func unbase64(b []byte) ([]byte, error) {
	der, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(string(b)), ""))
	if err != nil {
		return nil, fmt.Errorf("est: the answer is not base64: %w", err)
	}
	return der, nil
}

// certsOf reads a base64 certs-only PKCS#7.
func certsOf(op string, body []byte) ([]*x509.Certificate, error) {
	der, err := unbase64(body)
	if err != nil {
		return nil, err
	}
	p7, err := pkcs7.Parse(der)
	if err != nil {
		return nil, fmt.Errorf("est: %s: the answer is not PKCS#7: %w", op, err)
	}
	if len(p7.Certificates) == 0 {
		return nil, fmt.Errorf("est: %s: the answer holds no certificate", op)
	}
	return p7.Certificates, nil
}
