package httpadapter

import (
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/credlife/clm/internal/wire"
	"github.com/credlife/clm/lifecycle"
)

// systemStatus serves SystemStatus: 200 when the Manager's Status (the
// store answers, every CA signs) passes.
func (h *Handler) systemStatus(x *exchange) {
	if err := h.m.Status(x.ctx); err != nil {
		x.fail(err)
		return
	}
	x.json(http.StatusOK, wire.ErrorResponse{})
}

// caQuery reads catype (required: 1102) and format ("", der or pem: 1103
// otherwise) of a GET about a CA, answering the error itself.
func caQuery(x *exchange, op string) (caName, format string, ok bool) {
	q := x.r.URL.Query()
	caName, format = q.Get("catype"), q.Get("format")
	switch {
	case caName == "":
		x.fail(&lifecycle.Error{Code: lifecycle.CodeMissing, Op: op, Field: "catype"})
	case format != "" && format != "der" && format != "pem":
		x.fail(&lifecycle.Error{Code: lifecycle.CodeMalformed, Op: op, Field: "format"})
	default:
		return caName, format, true
	}
	return "", "", false
}

// crl serves a CA's current CRL (spec §8a): DER, or PEM with format=pem.
func (h *Handler) crl(x *exchange) {
	caName, format, ok := caQuery(x, "CRL")
	if !ok {
		return
	}
	crl, err := h.m.CRL(x.ctx, caName)
	if err != nil {
		x.fail(err)
		return
	}
	x.status = http.StatusOK
	x.w.Header().Set("Cache-Control", "no-cache")
	if format == "pem" {
		x.w.Header().Set("Content-Type", "application/x-pem-file")
		x.w.WriteHeader(http.StatusOK)
		_ = pem.Encode(x.w, &pem.Block{Type: "X509 CRL", Bytes: crl.DER})
		return
	}
	x.w.Header().Set("Content-Type", "application/pkix-crl")
	x.w.WriteHeader(http.StatusOK)
	_, _ = x.w.Write(crl.DER)
}

// maxOCSPRequest bounds an OCSP request's body; one CertID is about 100
// bytes, and nonces and other extensions add little.
const maxOCSPRequest = 10 << 10

// ocspServe serves OCSP (spec §8c): POST {prefix}OCSP/{catype} with the
// DER request as the body, or GET {prefix}OCSP/{catype}/{request} with it in
// base64, URL-escaped (RFC 6960 Appendix A). No authentication.
func (h *Handler) ocspServe(x *exchange) {
	rest, _ := strings.CutPrefix(x.r.URL.EscapedPath(), h.prefix+wire.PathOCSP+"/")
	caName, encoded, _ := strings.Cut(rest, "/")
	caName, err := url.PathUnescape(caName)
	if err != nil || caName == "" {
		x.fail(&lifecycle.Error{Code: lifecycle.CodeCANameInvalid, Op: "OCSP", Field: "catype"})
		return
	}
	var der []byte
	if x.r.Method == http.MethodPost {
		der, err = io.ReadAll(http.MaxBytesReader(x.w, x.r.Body, maxOCSPRequest))
	} else {
		var b64 string
		if b64, err = url.PathUnescape(encoded); err == nil {
			der, err = base64.StdEncoding.DecodeString(b64)
		}
	}
	if err != nil {
		der = nil // answered as malformed by the Manager
	}
	res, err := h.m.OCSP(x.ctx, caName, der)
	if err != nil {
		x.fail(err)
		return
	}
	x.status = http.StatusOK
	hd := x.w.Header()
	hd.Set("Content-Type", "application/ocsp-response")
	if !res.NextUpdate.IsZero() {
		// RFC 5019 §6: caches may keep a response until its nextUpdate.
		hd.Set("Last-Modified", res.ThisUpdate.UTC().Format(http.TimeFormat))
		hd.Set("Expires", res.NextUpdate.UTC().Format(http.TimeFormat))
		hd.Set("Cache-Control", fmt.Sprintf("max-age=%d, public, no-transform, must-revalidate", int(time.Until(res.NextUpdate).Seconds())))
	} else {
		hd.Set("Cache-Control", "no-store")
	}
	x.w.WriteHeader(http.StatusOK)
	_, _ = x.w.Write(res.DER)
}

// caCert serves a CA's certificate (spec §8c): DER, or with format=pem its
// chain in PEM, its own certificate first. No authentication.
func (h *Handler) caCert(x *exchange) {
	caName, format, ok := caQuery(x, "CAChain")
	if !ok {
		return
	}
	chain, err := h.m.CAChain(x.ctx, caName)
	if err != nil {
		x.fail(err)
		return
	}
	x.status = http.StatusOK
	x.w.Header().Set("Cache-Control", "max-age=3600")
	if format == "pem" {
		x.w.Header().Set("Content-Type", "application/x-pem-file")
		x.w.WriteHeader(http.StatusOK)
		for _, c := range chain {
			_ = pem.Encode(x.w, &pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
		}
		return
	}
	x.w.Header().Set("Content-Type", "application/pkix-cert")
	x.w.WriteHeader(http.StatusOK)
	_, _ = x.w.Write(chain[0].Raw)
}

// IssuerURLs returns, for lifecycle.Options.URLs, the URLs at which a
// Handler mounted at prefix ("" for /SWCLM/v10/) under the public base URL
// base (as "https://clm.example.com") serves each CA's OCSP responder,
// certificate and CRL. Issued certificates then name them.
func IssuerURLs(base, prefix string) func(ca string) lifecycle.IssuerURLs {
	if prefix == "" {
		prefix = "/SWCLM/v10/"
	}
	if !strings.HasSuffix(prefix, "/") {
		prefix += "/"
	}
	root := strings.TrimSuffix(base, "/") + prefix
	return func(ca string) lifecycle.IssuerURLs {
		q := url.QueryEscape(ca)
		return lifecycle.IssuerURLs{
			OCSP:      []string{root + wire.PathOCSP + "/" + url.PathEscape(ca)},
			CAIssuers: []string{root + wire.PathCACert + "?catype=" + q},
			CRL:       []string{root + wire.PathCRL + "?catype=" + q},
		}
	}
}
