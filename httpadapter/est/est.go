// Package est serves EST (Enrollment over Secure Transport, RFC 7030 and
// RFC 8951) on any lifecycle.Manager, so that standard device stacks
// (routers, industrial controllers, IoT SDKs, libest, curl and openssl)
// enrol into the same registry, tenants and CAs as CLM v10 clients. The
// mapping onto clm's model is the project's spec/est.md.
//
//	h := est.New(manager, nil)
//	mux.Handle("/.well-known/est/", h) // on a TLS listener that asks for client certificates
//
// Paths, under /.well-known/est/ (the default CA) or /.well-known/est/{label}/
// (the CA named label):
//
//	GET  cacerts         the CA chain, certs-only PKCS#7, base64 (no authentication)
//	GET  csrattrs        204: the CA asks for no attributes (no authentication)
//	POST simpleenroll    a PKCS#10 request, base64 DER: PSK (HTTP Basic keyid:password) or client certificate
//	POST simplereenroll  the same, with the certificate being renewed as client certificate
//	POST serverkeygen    the server makes the key: multipart/mixed, the key (PKCS#8) and the certificate
//
// A PSK enrols a new device named by the CSR (its subject's serialNumber,
// else its CN); a client certificate (valid, issued by the CA, bound to a
// device) enrols or renews for its device. Each certificate is a credential
// of the device, bound at lifecycle.ESTPath(label), which CLM v10 and the
// admin API see. Errors: 400 a malformed CSR, 401 authentication (with
// WWW-Authenticate: Basic), 403 what the CA's policy refuses or a name
// already registered, 404 an unknown label, 413 a body over 64 KiB, with a
// short text/plain reason; nothing changes on an error. Certs-only PKCS#7 is
// made by github.com/smallstep/pkcs7.
package est

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime/multipart"
	"net"
	"net/http"
	"net/netip"
	"net/textproto"
	"strings"
	"time"

	"github.com/smallstep/pkcs7"

	"github.com/credlife/clm/lifecycle"
)

// MaxBody is the largest request body EST accepts.
const MaxBody = 64 << 10

// Options configure a Handler.
type Options struct {
	// Prefix is where the handler is mounted; "/.well-known/est/" when "".
	Prefix string
	// Logger receives a line per request (never a secret); nothing when nil.
	Logger *slog.Logger
}

// Handler serves EST. It is safe for concurrent use.
type Handler struct {
	m      lifecycle.Manager
	prefix string
	log    *slog.Logger
}

// New returns a Handler serving m.
func New(m lifecycle.Manager, opts *Options) *Handler {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.Prefix == "" {
		o.Prefix = "/.well-known/est/"
	}
	if !strings.HasSuffix(o.Prefix, "/") {
		o.Prefix += "/"
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return &Handler{m: m, prefix: o.Prefix, log: o.Logger}
}

// Prefix returns where the Handler expects to be mounted.
func (h *Handler) Prefix() string { return h.prefix }

// methods are the EST operations and the method of each.
var methods = map[string]string{"cacerts": "GET", "csrattrs": "GET", "simpleenroll": "POST", "simplereenroll": "POST", "serverkeygen": "POST"}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
	defer func() {
		h.log.Info("est request", slog.String("client", r.RemoteAddr), slog.String("method", r.Method),
			slog.String("path", r.URL.Path), slog.Int("status", sw.status), slog.Duration("latency", time.Since(start)))
	}()
	rest, ok := strings.CutPrefix(r.URL.Path, h.prefix)
	if !ok {
		textError(sw, http.StatusNotFound, "not an EST path")
		return
	}
	label, op := "", rest
	if i := strings.IndexByte(rest, '/'); i >= 0 {
		label, op = rest[:i], rest[i+1:]
	}
	method, known := methods[op]
	switch {
	case !known || strings.Contains(op, "/"):
		textError(sw, http.StatusNotFound, "unknown EST operation")
		return
	case r.Method != method:
		sw.Header().Set("Allow", method)
		textError(sw, http.StatusMethodNotAllowed, "use "+method)
		return
	}
	switch op {
	case "cacerts":
		h.cacerts(sw, r, label)
	case "csrattrs":
		if _, err := h.m.CAChain(r.Context(), label); err != nil {
			fail(sw, err)
			return
		}
		sw.WriteHeader(http.StatusNoContent) // RFC 7030 §4.5.2: no attributes asked for
	default:
		h.enroll(sw, r, label, op)
	}
}

func (h *Handler) cacerts(w http.ResponseWriter, r *http.Request, label string) {
	chain, err := h.m.CAChain(r.Context(), label)
	if err != nil {
		fail(w, err)
		return
	}
	var der []byte
	for _, c := range chain {
		der = append(der, c.Raw...)
	}
	writePKCS7(w, der, "application/pkcs7-mime")
}

// writePKCS7 answers certificates (DER, concatenated) as a certs-only
// SignedData, base64.
func writePKCS7(w http.ResponseWriter, certs []byte, contentType string) {
	p7, err := pkcs7.DegenerateCertificate(certs)
	if err != nil {
		textError(w, http.StatusInternalServerError, "internal error")
		return
	}
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("Content-Transfer-Encoding", "base64")
	w.WriteHeader(http.StatusOK)
	_, _ = io.WriteString(w, wrap(base64.StdEncoding.EncodeToString(p7)))
}

// wrap breaks base64 into lines of 64 characters (LF: base64 -d takes
// them, as RFC 8951 asks receivers to).
func wrap(s string) string {
	var b strings.Builder
	for len(s) > 64 {
		b.WriteString(s[:64] + "\n")
		s = s[64:]
	}
	b.WriteString(s + "\n")
	return b.String()
}

func (h *Handler) enroll(w http.ResponseWriter, r *http.Request, label, op string) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBody))
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		textError(w, http.StatusRequestEntityTooLarge, "the body is over 64 KiB")
		return
	}
	if err != nil {
		textError(w, http.StatusBadRequest, "the body could not be read")
		return
	}
	// RFC 8951: base64, with or without line breaks.
	der, err := base64.StdEncoding.DecodeString(strings.Map(func(r rune) rune {
		if r == '\r' || r == '\n' || r == ' ' || r == '\t' {
			return -1
		}
		return r
	}, string(body)))
	if err != nil || len(der) == 0 {
		textError(w, http.StatusBadRequest, "the body must be a base64 PKCS#10 request")
		return
	}
	req := lifecycle.ESTRequest{CA: label, CSR: der, Renew: op == "simplereenroll", ServerKeyGen: op == "serverkeygen"}
	if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
		req.Certificate = r.TLS.PeerCertificates[0]
	} else if user, pass, ok := r.BasicAuth(); ok {
		req.PSK = &lifecycle.PSKCredentials{KeyID: user, Password: lifecycle.Secret(pass)}
	} else {
		unauthorized(w, "a PSK (HTTP Basic keyid:password) or a client certificate is required")
		return
	}
	if req.Renew && req.Certificate == nil {
		unauthorized(w, "simplereenroll authenticates with the certificate being renewed")
		return
	}
	ctx := r.Context()
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		if ip, err := netip.ParseAddr(host); err == nil {
			ctx = lifecycle.WithClientAddress(ctx, ip) // the PSK's brute-force limits count per address
		}
	}
	res, err := h.m.EnrollEST(ctx, req)
	if err != nil {
		failEnroll(w, err, req.Certificate != nil)
		return
	}
	if !req.ServerKeyGen {
		writePKCS7(w, res.Certificate.Raw, "application/pkcs7-mime; smime-type=certs-only")
		return
	}
	// serverkeygen (RFC 7030 §4.4.2): the key, then the certificate.
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	part, _ := mw.CreatePart(textproto.MIMEHeader{"Content-Type": {"application/pkcs8"}, "Content-Transfer-Encoding": {"base64"}})
	_, _ = io.WriteString(part, wrap(base64.StdEncoding.EncodeToString([]byte(res.PrivateKey.Reveal()))))
	p7, err := pkcs7.DegenerateCertificate(res.Certificate.Raw)
	if err != nil {
		textError(w, http.StatusInternalServerError, "internal error")
		return
	}
	part, _ = mw.CreatePart(textproto.MIMEHeader{"Content-Type": {"application/pkcs7-mime; smime-type=certs-only"}, "Content-Transfer-Encoding": {"base64"}})
	_, _ = io.WriteString(part, wrap(base64.StdEncoding.EncodeToString(p7)))
	_ = mw.Close()
	w.Header().Set("Content-Type", "multipart/mixed; boundary="+mw.Boundary())
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(buf.Bytes())
}

// failEnroll answers an enrollment's error as est.md says.
func failEnroll(w http.ResponseWriter, err error, byCertificate bool) {
	code := lifecycle.CodeOf(err)
	var pe *lifecycle.PolicyError
	switch {
	case errors.As(err, &pe):
		textError(w, http.StatusForbidden, "refused by the CA's policy: "+pe.Error())
	case code == lifecycle.CodeCANameInvalid:
		textError(w, http.StatusNotFound, "unknown EST label")
	case code == lifecycle.CodeDeviceNameExists:
		textError(w, http.StatusForbidden, "a device of that name is registered: it renews with its certificate")
	case code == lifecycle.CodeMissing, code == lifecycle.CodeMalformed, code == lifecycle.CodeOutOfRange, code == lifecycle.CodeSyntax:
		msg := "bad request"
		var ce *lifecycle.Error
		if errors.As(err, &ce) && ce.Err != nil {
			msg += ": " + ce.Err.Error()
		}
		textError(w, http.StatusBadRequest, msg)
	case code == lifecycle.CodePSKNotFound, code == lifecycle.CodePasswordMismatch, code == lifecycle.CodePSKNotActive, code == lifecycle.CodePSKExpired,
		byCertificate && (code == lifecycle.CodeCertNotFound || code == lifecycle.CodeCertRevoked || code == lifecycle.CodeCertExpired || code == lifecycle.CodeCertNotBound):
		unauthorized(w, "authentication failed")
	case code == lifecycle.CodeDeviceNotActive, code == lifecycle.CodeDeviceExpired:
		textError(w, http.StatusForbidden, "the device is not active")
	case code == lifecycle.CodeLockTimeout:
		w.Header().Set("Retry-After", "5")
		textError(w, http.StatusServiceUnavailable, "busy: retry later")
	default:
		textError(w, http.StatusInternalServerError, fmt.Sprintf("internal error (CLM %d)", int(code)))
	}
}

// fail answers an error of cacerts or csrattrs.
func fail(w http.ResponseWriter, err error) {
	if lifecycle.CodeOf(err) == lifecycle.CodeCANameInvalid {
		textError(w, http.StatusNotFound, "unknown EST label")
		return
	}
	textError(w, http.StatusInternalServerError, "internal error")
}

func unauthorized(w http.ResponseWriter, msg string) {
	w.Header().Set("WWW-Authenticate", `Basic realm="EST"`)
	textError(w, http.StatusUnauthorized, msg)
}

func textError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, msg+"\n")
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(s int) { w.status = s; w.ResponseWriter.WriteHeader(s) }
