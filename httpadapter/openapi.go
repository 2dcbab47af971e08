package httpadapter

import (
	_ "embed"
	"net/http"
	"slices"
)

//go:embed openapi.yaml
var openAPI []byte

// OpenAPI returns the OpenAPI 3.1 document of the protocol as this package
// serves it (also answered, unauthenticated, at {prefix}openapi.yaml).
func OpenAPI() []byte { return slices.Clone(openAPI) }

// openAPIDoc serves the document.
func (h *Handler) openAPIDoc(x *exchange) {
	x.status = http.StatusOK
	x.w.Header().Set("Content-Type", "application/yaml")
	x.w.WriteHeader(http.StatusOK)
	_, _ = x.w.Write(openAPI)
}
