package httpadapter

import (
	"encoding/pem"
	"net/http"

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

// crl serves a CA's current CRL (spec §8a): DER, or PEM with format=pem.
func (h *Handler) crl(x *exchange) {
	q := x.r.URL.Query()
	caName := q.Get("catype")
	if caName == "" {
		x.fail(&lifecycle.Error{Code: lifecycle.CodeMissing, Op: "CRL", Field: "catype"})
		return
	}
	format := q.Get("format")
	if format != "" && format != "der" && format != "pem" {
		x.fail(&lifecycle.Error{Code: lifecycle.CodeMalformed, Op: "CRL", Field: "format"})
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
