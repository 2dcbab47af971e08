// Package client is a Go client of the CLM WebAPI v10 protocol, for Go
// devices, agents and scripts. It speaks to any server of the protocol
// (httpadapter, or the vendor's own) and takes and returns the types of
// package lifecycle, so code written against the library reads the same over
// HTTP:
//
//	c := client.New("https://clm.example.com", license, nil)
//	psk, err := c.IssuePSK(ctx, lifecycle.IssuePSKRequest{Tenant: "tenant01", Alias: "gw"})
//	res, err := c.IssueCertificate(ctx, lifecycle.IssueCertificateRequest{...})
//
// Every error the server answers is a *lifecycle.Error with its CLM code:
// test it with errors.Is(err, lifecycle.CodeCertRevoked) or
// lifecycle.CodeOf(err). Every call takes a context.
package client

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/credlife/clm/internal/wire"
	"github.com/credlife/clm/lifecycle"
)

// Options configure a Client. The zero value means defaults.
type Options struct {
	// HTTPClient sends the requests; http.DefaultClient when nil.
	HTTPClient *http.Client
	// Prefix is the path of the protocol on the server; "/SWCLM/v10/" when "".
	Prefix string
}

// Client calls a CLM server. It is safe for concurrent use.
type Client struct {
	base    string
	license string
	hc      *http.Client
}

// New returns a client of the server at baseURL (scheme and host, as
// "https://clm.example.com:8443"), authenticating with the license key.
func New(baseURL, license string, opts *Options) *Client {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.HTTPClient == nil {
		o.HTTPClient = http.DefaultClient
	}
	if o.Prefix == "" {
		o.Prefix = "/SWCLM/v10/"
	}
	base := strings.TrimSuffix(baseURL, "/")
	if p := strings.Trim(o.Prefix, "/"); !strings.HasSuffix(base, "/"+p) {
		base += "/" + p
	}
	return &Client{
		base:    base + "/",
		license: license,
		hc:      o.HTTPClient,
	}
}

// BaseURL returns the URL of the protocol on the server, with the prefix.
func (c *Client) BaseURL() string { return c.base }

// HTTPError is wrapped by the errors of answers that carry no CLM body.
type HTTPError struct {
	Status int
}

func (e *HTTPError) Error() string { return "HTTP " + strconv.Itoa(e.Status) }

// do sends a request and decodes a JSON answer into out; an answer with a
// non-zero errorcode becomes a *lifecycle.Error.
func (c *Client) do(ctx context.Context, op, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return &lifecycle.Error{Code: lifecycle.CodeSystem, Op: op, Err: err}
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return &lifecycle.Error{Code: lifecycle.CodeSystem, Op: op, Err: err}
	}
	req.SetBasicAuth(wire.LicenseUser, c.license)
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return &lifecycle.Error{Code: lifecycle.CodeSystem, Op: op, Err: err}
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return &lifecycle.Error{Code: lifecycle.CodeSystem, Op: op, Err: err}
	}
	var e wire.ErrorResponse
	if json.Unmarshal(data, &e) != nil {
		return &lifecycle.Error{Code: lifecycle.CodeSystem, Op: op, Err: &HTTPError{resp.StatusCode}}
	}
	if e.ErrorCode != 0 {
		return &lifecycle.Error{Code: lifecycle.Code(e.ErrorCode), Op: op, Err: &HTTPError{resp.StatusCode}}
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return &lifecycle.Error{Code: lifecycle.CodeSystem, Op: op, Err: err}
		}
	}
	return nil
}

func expires(s string) time.Time {
	t, _ := wire.ParseExpiration(s)
	return t
}

func num(s string) int64 {
	n, _ := strconv.ParseInt(s, 10, 64)
	return n
}

func numText(n int64) string {
	if n == 0 {
		return ""
	}
	return wire.Num(n)
}

func device(d lifecycle.DeviceRequest) wire.Device {
	return wire.Device{DeviceID: d.ID, DeviceName: d.Name, DeviceKey: d.Key.Reveal(), IPAddress: d.IPAddress, MACAddress: d.MACAddress, ExtData: d.ExtData}
}

func deviceResult(id, key string) *lifecycle.DeviceResult {
	if id == "" {
		return nil
	}
	return &lifecycle.DeviceResult{Device: &lifecycle.Device{ID: id}, Key: lifecycle.Secret(key)}
}

// IssuePSK issues a PSK (IDInfo create).
func (c *Client) IssuePSK(ctx context.Context, req lifecycle.IssuePSKRequest) (*lifecycle.PSK, error) {
	var r wire.IDInfoResponse
	if err := c.do(ctx, "IssuePSK", http.MethodPost, wire.PathIDInfo, wire.IDInfoRequest{Mode: "create", TenantID: req.Tenant, Alias: req.Alias}, &r); err != nil {
		return nil, err
	}
	return &lifecycle.PSK{KeyID: r.KeyID, Tenant: req.Tenant, Alias: r.Alias, Password: lifecycle.Secret(r.Key), Status: lifecycle.PSKActive, ExpiresAt: expires(r.Expiration)}, nil
}

func pskOf(i wire.PSKInfo) *lifecycle.PSK {
	return &lifecycle.PSK{KeyID: i.KeyID, Tenant: i.TenantID, Alias: i.Alias, Password: lifecycle.Secret(i.Key), Status: lifecycle.PSKActive, ExpiresAt: expires(i.Expiration)}
}

// GetPSK reads a PSK (GET IDInfo?keyid=); an unknown keyid answers
// CodePSKNotFound.
func (c *Client) GetPSK(ctx context.Context, keyID string) (*lifecycle.PSK, error) {
	var r wire.IDInfoResponse
	if err := c.do(ctx, "GetPSK", http.MethodGet, wire.PathIDInfo+"?keyid="+url.QueryEscape(keyID), nil, &r); err != nil {
		return nil, err
	}
	if r.KeyInfo == nil || len(*r.KeyInfo) == 0 {
		return nil, &lifecycle.Error{Code: lifecycle.CodePSKNotFound, Op: "GetPSK"}
	}
	return pskOf((*r.KeyInfo)[0]), nil
}

// ListPSKs lists PSKs a page at a time (GET IDInfo).
func (c *Client) ListPSKs(ctx context.Context, req lifecycle.ListPSKsRequest) (*lifecycle.PSKPage, error) {
	q := url.Values{}
	if req.Tenant != "" {
		q.Set("tenantid", req.Tenant)
	}
	if req.After != "" {
		q.Set("after", req.After)
	}
	if req.Limit != 0 {
		q.Set("limit", strconv.Itoa(req.Limit))
	}
	var r wire.IDInfoResponse
	if err := c.do(ctx, "ListPSKs", http.MethodGet, wire.PathIDInfo+"?"+q.Encode(), nil, &r); err != nil {
		return nil, err
	}
	page := &lifecycle.PSKPage{Next: r.Next}
	if r.KeyInfo != nil {
		for _, i := range *r.KeyInfo {
			page.PSKs = append(page.PSKs, pskOf(i))
		}
	}
	return page, nil
}

// AuthenticatePSK checks a PSK (IDInfo auth). The tenant is not part of the
// protocol's answer and is left empty.
func (c *Client) AuthenticatePSK(ctx context.Context, p lifecycle.PSKCredentials) (*lifecycle.Caller, error) {
	var r wire.IDInfoResponse
	if err := c.do(ctx, "AuthenticatePSK", http.MethodPost, wire.PathIDInfo, wire.IDInfoRequest{Mode: "auth", KeyID: p.KeyID, Key: p.Password.Reveal()}, &r); err != nil {
		return nil, err
	}
	return &lifecycle.Caller{KeyID: r.KeyID}, nil
}

// DeletePSK deletes a PSK (IDInfo delete).
func (c *Client) DeletePSK(ctx context.Context, p lifecycle.PSKCredentials) error {
	return c.do(ctx, "DeletePSK", http.MethodPost, wire.PathIDInfo, wire.IDInfoRequest{Mode: "delete", KeyID: p.KeyID, Key: p.Password.Reveal()}, nil)
}

// certData reads certificate data as the protocol carries it.
func certData(text, format string) ([]byte, error) {
	if format == "" || format == "pem" {
		return []byte(text), nil
	}
	return base64.StdEncoding.DecodeString(text)
}

func (c *Client) credInfo(ctx context.Context, op string, req wire.CredInfoRequest) (*lifecycle.CertificateResult, error) {
	var r wire.CredInfoResponse
	if err := c.do(ctx, op, http.MethodPost, wire.PathCredInfo, req, &r); err != nil {
		return nil, err
	}
	res := &lifecycle.CertificateResult{Device: deviceResult(r.DeviceID, r.DeviceKey), PrivateKey: lifecycle.Secret(r.PrivateKey)}
	if r.CACert != "" {
		data, err := certData(r.CACert, r.CACertType)
		if err != nil {
			return nil, &lifecycle.Error{Code: lifecycle.CodeCryptoMalformed, Op: op, Err: err}
		}
		res.CA = &lifecycle.EncodedCertificate{KeyNumber: num(r.CAKeyNumber), Serial: r.CASerial, Format: lifecycle.CertFormat(r.CACertType), Data: data}
	}
	if r.ClientCert != "" || r.ClientKeyNumber != "" {
		data, err := certData(r.ClientCert, r.ClientCertType)
		if err != nil {
			return nil, &lifecycle.Error{Code: lifecycle.CodeCryptoMalformed, Op: op, Err: err}
		}
		res.Certificate = lifecycle.EncodedCertificate{KeyNumber: num(r.ClientKeyNumber), Serial: r.ClientSerial, Format: lifecycle.CertFormat(r.ClientCertType), Data: data}
	}
	return res, nil
}

// CACertificate fetches a CA certificate (CredInfo create, certmode caonly).
func (c *Client) CACertificate(ctx context.Context, req lifecycle.CACertificateRequest) (*lifecycle.CACertificateResult, error) {
	res, err := c.credInfo(ctx, "CACertificate", wire.CredInfoRequest{Mode: "create", KeyID: req.PSK.KeyID, Key: req.PSK.Password.Reveal(),
		Device: device(req.Device), CertMode: "caonly", CAType: req.CA, CACertType: string(req.Format), CAFilePath: req.Path, KeyFilePath: req.KeyPath})
	if err != nil {
		return nil, err
	}
	if res.CA == nil {
		return nil, &lifecycle.Error{Code: lifecycle.CodeCryptoMalformed, Op: "CACertificate", Err: errors.New("no cacert in the answer")}
	}
	return &lifecycle.CACertificateResult{Device: res.Device, CA: *res.CA}, nil
}

// IssueCertificate issues a certificate (CredInfo create, certmode client).
// The request's KeyType is not part of the protocol and must be empty.
func (c *Client) IssueCertificate(ctx context.Context, req lifecycle.IssueCertificateRequest) (*lifecycle.CertificateResult, error) {
	if req.KeyType != "" {
		return nil, &lifecycle.Error{Code: lifecycle.CodeMalformed, Op: "IssueCertificate", Field: "keytype", Err: errors.New("the protocol has no key type; the server chooses")}
	}
	return c.credInfo(ctx, "IssueCertificate", wire.CredInfoRequest{Mode: "create", KeyID: req.PSK.KeyID, Key: req.PSK.Password.Reveal(),
		Device: device(req.Device), CertMode: "client", CAType: req.CA, CACertType: string(req.CAFormat), ClientCertType: string(req.Format),
		ClientSubject: req.Subject, Passphrase: req.Passphrase.Reveal(), KeyFilePath: req.KeyPath, CAFilePath: req.CAPath, ClientFilePath: req.Path})
}

// IssueCertificateFromCSR issues a certificate for the device's own key
// (CredInfo create, certmode csr, spec §8b). A CSR in DER is sent in base64.
func (c *Client) IssueCertificateFromCSR(ctx context.Context, req lifecycle.IssueFromCSRRequest) (*lifecycle.CertificateResult, error) {
	return c.credInfo(ctx, "IssueCertificateFromCSR", wire.CredInfoRequest{Mode: "create", KeyID: req.PSK.KeyID, Key: req.PSK.Password.Reveal(),
		Device: device(req.Device), CertMode: "csr", CAType: req.CA, CACertType: string(req.CAFormat), ClientCertType: string(req.Format),
		ClientSubject: req.Subject, CSR: csrText(req.CSR), KeyFilePath: req.KeyPath, CAFilePath: req.CAPath, ClientFilePath: req.Path})
}

// csrText writes a CSR as the protocol carries it: PEM as it is, DER in
// base64.
func csrText(b []byte) string {
	if len(b) > 0 && b[0] == 0x30 { // a DER SEQUENCE
		return base64.StdEncoding.EncodeToString(b)
	}
	return string(b)
}

// GetCertificate fetches a certificate (CredInfo get).
func (c *Client) GetCertificate(ctx context.Context, req lifecycle.GetCertificateRequest) (*lifecycle.CertificateResult, error) {
	return c.credInfo(ctx, "GetCertificate", wire.CredInfoRequest{Mode: "get", KeyID: req.PSK.KeyID, Key: req.PSK.Password.Reveal(),
		Device: device(req.Device), CAType: req.CA, KeyNumber: numText(req.Ref.KeyNumber), CertSerial: req.Ref.Serial,
		CertType: string(req.Format), Passphrase: req.Passphrase.Reveal(), FilePath: req.Path})
}

// RenewCertificate renews a certificate (CredInfo update).
func (c *Client) RenewCertificate(ctx context.Context, req lifecycle.RenewCertificateRequest) (*lifecycle.CertificateResult, error) {
	return c.credInfo(ctx, "RenewCertificate", wire.CredInfoRequest{Mode: "update", KeyID: req.PSK.KeyID, Key: req.PSK.Password.Reveal(),
		Device: device(req.Device), CAType: req.CA, KeyNumber: numText(req.Ref.KeyNumber), CertSerial: req.Ref.Serial,
		NewKeyNumber: numText(req.Adopt.KeyNumber), NewCertSerial: req.Adopt.Serial, CertType: string(req.Format),
		Passphrase: req.Passphrase.Reveal(), FilePath: req.Path, NewFilePath: req.NewPath, CSR: csrText(req.CSR)})
}

// RevokeCertificate revokes a certificate (CredInfo revoke). The protocol
// carries no reason: the server records "unspecified".
func (c *Client) RevokeCertificate(ctx context.Context, req lifecycle.RevokeCertificateRequest) (*lifecycle.RevokeCertificateResult, error) {
	res, err := c.credInfo(ctx, "RevokeCertificate", wire.CredInfoRequest{Mode: "revoke", KeyID: req.PSK.KeyID, Key: req.PSK.Password.Reveal(),
		Device: device(req.Device), CAType: req.CA, KeyNumber: numText(req.Ref.KeyNumber), CertSerial: req.Ref.Serial, FilePath: req.Path})
	if err != nil {
		return nil, err
	}
	return &lifecycle.RevokeCertificateResult{Device: res.Device, KeyNumber: res.Certificate.KeyNumber, Serial: res.Certificate.Serial}, nil
}

func (c *Client) keyInfo(ctx context.Context, op string, req wire.KeyInfoRequest) (*lifecycle.KeyResult, error) {
	var r wire.KeyInfoResponse
	if err := c.do(ctx, op, http.MethodPost, wire.PathKeyInfo, req, &r); err != nil {
		return nil, err
	}
	key, err := base64.StdEncoding.DecodeString(r.CommonKey)
	if err != nil {
		return nil, &lifecycle.Error{Code: lifecycle.CodeCryptoMalformed, Op: op, Err: err}
	}
	return &lifecycle.KeyResult{Device: deviceResult(r.DeviceID, r.DeviceKey), KeyNumber: num(r.KeyNumber), Alias: r.Alias,
		KeyLength: len(key) * 8, Key: key, ExpiresAt: expires(r.Expiration)}, nil
}

// CreateKey creates a symmetric key (KeyInfo create).
func (c *Client) CreateKey(ctx context.Context, req lifecycle.CreateKeyRequest) (*lifecycle.KeyResult, error) {
	kl := ""
	if req.KeyLength != 0 {
		kl = strconv.Itoa(req.KeyLength)
	}
	r, err := c.keyInfo(ctx, "CreateKey", wire.KeyInfoRequest{Mode: "create", KeyID: req.PSK.KeyID, Key: req.PSK.Password.Reveal(), Device: device(req.Device),
		Alias: req.Alias, KeyType: req.KeyType, KeyLength: kl, KeyFilePath: req.KeyPath, CommonKeyFilePath: req.Path})
	if r != nil {
		r.KeyType = strings.ToUpper(req.KeyType)
	}
	return r, err
}

// GetKey fetches a symmetric key (KeyInfo get).
func (c *Client) GetKey(ctx context.Context, req lifecycle.GetKeyRequest) (*lifecycle.KeyResult, error) {
	return c.keyInfo(ctx, "GetKey", wire.KeyInfoRequest{Mode: "get", KeyID: req.PSK.KeyID, Key: req.PSK.Password.Reveal(), Device: device(req.Device),
		KeyNumber: numText(req.KeyNumber), FilePath: req.Path})
}

// RotateKey rotates a symmetric key (KeyInfo update).
func (c *Client) RotateKey(ctx context.Context, req lifecycle.RotateKeyRequest) (*lifecycle.KeyResult, error) {
	kl := ""
	if req.KeyLength != 0 {
		kl = strconv.Itoa(req.KeyLength)
	}
	return c.keyInfo(ctx, "RotateKey", wire.KeyInfoRequest{Mode: "update", KeyID: req.PSK.KeyID, Key: req.PSK.Password.Reveal(), Device: device(req.Device),
		KeyNumber: numText(req.KeyNumber), NewKeyNumber: numText(req.NewKeyNumber), Alias: req.Alias, KeyLength: kl, FilePath: req.Path, NewFilePath: req.NewPath})
}

// DeleteKey deletes a symmetric key (KeyInfo delete).
func (c *Client) DeleteKey(ctx context.Context, req lifecycle.DeleteKeyRequest) (*lifecycle.DeleteKeyResult, error) {
	var r wire.KeyInfoResponse
	err := c.do(ctx, "DeleteKey", http.MethodPost, wire.PathKeyInfo, wire.KeyInfoRequest{Mode: "delete", KeyID: req.PSK.KeyID, Key: req.PSK.Password.Reveal(),
		Device: device(req.Device), KeyNumber: numText(req.KeyNumber), CommonKey: base64.StdEncoding.EncodeToString(req.Key), FilePath: req.Path}, &r)
	if err != nil {
		return nil, err
	}
	return &lifecycle.DeleteKeyResult{Device: deviceResult(r.DeviceID, ""), KeyNumber: num(r.KeyNumber)}, nil
}

// Status asks SystemStatus.
func (c *Client) Status(ctx context.Context) error {
	return c.do(ctx, "Status", http.MethodGet, wire.PathSystemStatus, nil, nil)
}

// CRL fetches a CA's current CRL, DER.
func (c *Client) CRL(ctx context.Context, ca string) ([]byte, error) {
	return c.fetch(ctx, "CRL", http.MethodGet, wire.PathCRL+"?catype="+url.QueryEscape(ca), "", nil)
}

// OCSP sends an OCSP request (DER, as golang.org/x/crypto/ocsp's
// CreateRequest makes it) about a certificate of a CA and returns the
// response, DER (spec §8c); ocsp.ParseResponseForCert reads and verifies it.
func (c *Client) OCSP(ctx context.Context, ca string, request []byte) ([]byte, error) {
	return c.fetch(ctx, "OCSP", http.MethodPost, wire.PathOCSP+"/"+url.PathEscape(ca), "application/ocsp-request", request)
}

// CAChain fetches a CA's certificate chain (spec §8c): its own certificate
// first, then its issuers up to the root.
func (c *Client) CAChain(ctx context.Context, ca string) ([]*x509.Certificate, error) {
	data, err := c.fetch(ctx, "CAChain", http.MethodGet, wire.PathCACert+"?format=pem&catype="+url.QueryEscape(ca), "", nil)
	if err != nil {
		return nil, err
	}
	var chain []*x509.Certificate
	for {
		var b *pem.Block
		if b, data = pem.Decode(data); b == nil {
			break
		}
		cert, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, &lifecycle.Error{Code: lifecycle.CodeCryptoMalformed, Op: "CAChain", Err: err}
		}
		chain = append(chain, cert)
	}
	if len(chain) == 0 {
		return nil, &lifecycle.Error{Code: lifecycle.CodeCryptoMalformed, Op: "CAChain", Err: errors.New("no certificate in the answer")}
	}
	return chain, nil
}

// fetch sends an unauthenticated request and returns the answer's body; an
// answer other than 200 becomes a *lifecycle.Error.
func (c *Client) fetch(ctx context.Context, op, method, path, contentType string, body []byte) ([]byte, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return nil, &lifecycle.Error{Code: lifecycle.CodeSystem, Op: op, Err: err}
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, &lifecycle.Error{Code: lifecycle.CodeSystem, Op: op, Err: err}
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, &lifecycle.Error{Code: lifecycle.CodeSystem, Op: op, Err: err}
	}
	if resp.StatusCode != http.StatusOK {
		var e wire.ErrorResponse
		if json.Unmarshal(data, &e) == nil && e.ErrorCode != 0 {
			return nil, &lifecycle.Error{Code: lifecycle.Code(e.ErrorCode), Op: op, Err: &HTTPError{resp.StatusCode}}
		}
		return nil, &lifecycle.Error{Code: lifecycle.CodeSystem, Op: op, Err: fmt.Errorf("%w", &HTTPError{resp.StatusCode})}
	}
	return data, nil
}
