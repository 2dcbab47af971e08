// Package admin serves clm's administrative API: JSON under /admin/v1/
// for operators and their tools (examples/clmctl), on top of any
// lifecycle.Manager. Every request carries "Authorization: Bearer TOKEN";
// a wrong or missing token answers 401, compared in constant time.
//
//	h := admin.New(manager, &admin.Options{Token: token})
//	mux.Handle("/admin/v1/", h)
//
// Endpoints (the OpenAPI document, openapi.yaml beside this file, is
// served at /admin/v1/openapi.yaml):
//
//	GET    tenants
//	GET    psks?tenant=&after=&limit=            POST psks {tenant, alias}
//	POST   psks/{keyid}/disable | enable         DELETE psks/{keyid}
//	GET    devices/{tenant}?after=&limit=        GET  devices/{tenant}/{id}
//	POST   devices/{tenant}/{id}/disable | enable | decommission {reason}
//	GET    credentials?tenant=&device=&kind=&state=&ca=&expiring_before=&expiring_after=&after=&limit=
//	GET    credentials/{tenant}/{keynumber}      POST credentials/{tenant}/{keynumber}/revoke {reason}
//	POST   credentials/{tenant}/serials/{ca}/{serial}/revoke {reason}
//	GET    cas                                   GET  cas/{name}/chain   GET cas/{name}/crl
//
// Errors are {"code": CLM code, "error": message}, with the HTTP status of
// the code (httpadapter.StatusOf). No answer carries a private key or a
// key's value; a PSK's password is answered once, when it is issued.
package admin

import (
	"crypto/sha256"
	"crypto/subtle"
	_ "embed"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/credlife/clm/httpadapter"
	"github.com/credlife/clm/internal/lockout"
	"github.com/credlife/clm/lifecycle"
)

//go:embed openapi.yaml
var openAPI []byte

// OpenAPI returns the OpenAPI 3.1 document of the admin API.
func OpenAPI() []byte { return slices.Clone(openAPI) }

// Options configure a Handler.
type Options struct {
	// Token is the bearer token every request must carry. Required; at
	// least 16 characters.
	Token string
	// Prefix is where the API is mounted; "/admin/v1/" when "".
	Prefix string
	// Logger receives a line per request (never a token or a secret);
	// nothing when nil.
	Logger *slog.Logger
	// TokenFailures is how many wrong tokens from one client address within
	// 5 minutes lock that address out for 5 minutes; 20 when 0.
	TokenFailures int
}

// Handler serves the admin API. It is safe for concurrent use.
type Handler struct {
	m      lifecycle.Manager
	token  [32]byte
	prefix string
	log    *slog.Logger
	fails  *lockout.Limiter
	mux    *http.ServeMux
}

// New returns a Handler serving m. It panics if opts.Token is shorter than
// 16 characters: an admin API without a strong token would be open.
func New(m lifecycle.Manager, opts *Options) *Handler {
	var o Options
	if opts != nil {
		o = *opts
	}
	if len(o.Token) < 16 {
		panic("admin: Options.Token must have at least 16 characters")
	}
	if o.Prefix == "" {
		o.Prefix = "/admin/v1/"
	}
	if !strings.HasSuffix(o.Prefix, "/") {
		o.Prefix += "/"
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.TokenFailures == 0 {
		o.TokenFailures = 20
	}
	h := &Handler{m: m, token: sha256.Sum256([]byte(o.Token)), prefix: o.Prefix, log: o.Logger,
		fails: lockout.New(o.TokenFailures, 5*time.Minute), mux: http.NewServeMux()}
	p := strings.TrimSuffix(o.Prefix, "/")
	route := func(pattern string, fn func(w http.ResponseWriter, r *http.Request) error) {
		method, path, _ := strings.Cut(pattern, " ")
		h.mux.HandleFunc(method+" "+p+path, func(w http.ResponseWriter, r *http.Request) {
			if err := fn(w, r); err != nil {
				writeError(w, err)
			}
		})
	}
	route("GET /openapi.yaml", func(w http.ResponseWriter, r *http.Request) error {
		w.Header().Set("Content-Type", "application/yaml")
		_, err := w.Write(openAPI)
		return err
	})
	route("GET /tenants", h.tenants)
	route("GET /psks", h.listPSKs)
	route("POST /psks", h.issuePSK)
	route("POST /psks/{keyid}/disable", h.pskStatus(lifecycle.PSKDisabled))
	route("POST /psks/{keyid}/enable", h.pskStatus(lifecycle.PSKActive))
	route("DELETE /psks/{keyid}", h.deletePSK)
	route("GET /devices/{tenant}", h.listDevices)
	route("GET /devices/{tenant}/{id}", h.getDevice)
	route("POST /devices/{tenant}/{id}/disable", h.deviceStatus(lifecycle.DeviceDisabled))
	route("POST /devices/{tenant}/{id}/enable", h.deviceStatus(lifecycle.DeviceActive))
	route("POST /devices/{tenant}/{id}/decommission", h.decommission)
	route("GET /credentials", h.listCredentials)
	route("GET /credentials/{tenant}/{keynumber}", h.getCredential)
	route("POST /credentials/{tenant}/{keynumber}/revoke", h.revoke)
	route("POST /credentials/{tenant}/serials/{ca}/{serial}/revoke", h.revoke)
	route("GET /cas", h.listCAs)
	route("GET /cas/{name}/chain", h.caChain)
	route("GET /cas/{name}/crl", h.caCRL)
	return h
}

// Prefix returns where the Handler expects to be mounted.
func (h *Handler) Prefix() string { return h.prefix }

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
	addr, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		addr = r.RemoteAddr
	}
	defer func() {
		h.log.Info("admin request", slog.String("client", addr), slog.String("method", r.Method),
			slog.String("path", r.URL.Path), slog.Int("status", sw.status), slog.Duration("latency", time.Since(start)))
	}()
	if h.fails.Locked(addr, time.Now()) || !h.authorized(r) {
		if !h.fails.Locked(addr, time.Now()) {
			h.fails.Fail(addr, time.Now())
		}
		sw.Header().Set("WWW-Authenticate", `Bearer realm="clm-admin"`)
		writeJSON(sw, http.StatusUnauthorized, errorBody{Code: int(lifecycle.CodePasswordMismatch), Error: "a valid bearer token is required"})
		return
	}
	h.mux.ServeHTTP(sw, r)
}

// authorized checks the bearer token in constant time (both hashed, so
// that their lengths do not show).
func (h *Handler) authorized(r *http.Request) bool {
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return false
	}
	got := sha256.Sum256([]byte(token))
	return subtle.ConstantTimeCompare(got[:], h.token[:]) == 1
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(s int) { w.status = s; w.ResponseWriter.WriteHeader(s) }

type errorBody struct {
	Code  int    `json:"code"`
	Error string `json:"error"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// writeError answers an error with its CLM code; an error that is not a
// CLM error is 9901 without its text.
func writeError(w http.ResponseWriter, err error) {
	var ce *lifecycle.Error
	if !errors.As(err, &ce) {
		writeJSON(w, http.StatusInternalServerError, errorBody{Code: int(lifecycle.CodeSystem), Error: "internal error"})
		return
	}
	msg := ce.Code.String()
	if ce.Field != "" {
		msg += " (" + ce.Field + ")"
	}
	if ce.Err != nil && ce.Code != lifecycle.CodeSystem && httpadapter.StatusOf(ce.Code) < 500 {
		msg += ": " + ce.Err.Error()
	}
	writeJSON(w, httpadapter.StatusOf(ce.Code), errorBody{Code: int(ce.Code), Error: msg})
}

func bad(field, why string) error {
	return &lifecycle.Error{Code: lifecycle.CodeMalformed, Op: "admin", Field: field, Err: errors.New(why)}
}

func missing(field string) error {
	return &lifecycle.Error{Code: lifecycle.CodeMissing, Op: "admin", Field: field, Err: errors.New("required")}
}

// readJSON decodes a small JSON body (an empty body is an empty object).
func readJSON(w http.ResponseWriter, r *http.Request, v any) error {
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 64<<10))
	if err != nil {
		return &lifecycle.Error{Code: lifecycle.CodeOutOfRange, Op: "admin", Err: errors.New("a body of at most 64 KiB")}
	}
	if len(strings.TrimSpace(string(b))) == 0 {
		return nil
	}
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return &lifecycle.Error{Code: lifecycle.CodeSyntax, Op: "admin", Err: errors.New("the body is not the JSON object expected")}
	}
	return nil
}

func limitOf(r *http.Request) (int, error) {
	s := r.URL.Query().Get("limit")
	if s == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		return 0, bad("limit", "a positive number")
	}
	return n, nil
}

// --- tenants and PSKs -------------------------------------------------------

type pskJSON struct {
	KeyID     string    `json:"keyid"`
	Tenant    string    `json:"tenant"`
	Alias     string    `json:"alias"`
	Status    string    `json:"status"`
	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at"`
	// Password is answered once, when the PSK is issued.
	Password string `json:"password,omitempty"`
}

func pskOf(p *lifecycle.PSK) pskJSON {
	return pskJSON{KeyID: p.KeyID, Tenant: p.Tenant, Alias: p.Alias, Status: p.Status.String(), CreatedAt: p.CreatedAt, ExpiresAt: p.ExpiresAt}
}

// tenants lists the tenants that hold PSKs (a tenant exists through its
// PSKs): it reads every PSK, a page at a time.
func (h *Handler) tenants(w http.ResponseWriter, r *http.Request) error {
	seen := map[string]bool{}
	out := []string{}
	req := lifecycle.ListPSKsRequest{}
	for {
		page, err := h.m.ListPSKs(r.Context(), req)
		if err != nil {
			return err
		}
		for _, p := range page.PSKs {
			if !seen[p.Tenant] {
				seen[p.Tenant] = true
				out = append(out, p.Tenant)
			}
		}
		if page.Next == "" {
			break
		}
		req.After = page.Next
	}
	slices.Sort(out)
	writeJSON(w, http.StatusOK, map[string]any{"tenants": out})
	return nil
}

func (h *Handler) listPSKs(w http.ResponseWriter, r *http.Request) error {
	limit, err := limitOf(r)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	page, err := h.m.ListPSKs(r.Context(), lifecycle.ListPSKsRequest{Tenant: q.Get("tenant"), After: q.Get("after"), Limit: limit})
	if err != nil {
		return err
	}
	out := make([]pskJSON, len(page.PSKs))
	for i, p := range page.PSKs {
		out[i] = pskOf(p)
	}
	writeJSON(w, http.StatusOK, map[string]any{"psks": out, "next": page.Next})
	return nil
}

func (h *Handler) issuePSK(w http.ResponseWriter, r *http.Request) error {
	var body struct {
		Tenant string `json:"tenant"`
		Alias  string `json:"alias"`
	}
	if err := readJSON(w, r, &body); err != nil {
		return err
	}
	p, err := h.m.IssuePSK(r.Context(), lifecycle.IssuePSKRequest{Tenant: body.Tenant, Alias: body.Alias})
	if err != nil {
		return err
	}
	out := pskOf(p)
	out.Password = p.Password.Reveal()
	writeJSON(w, http.StatusCreated, out)
	return nil
}

func (h *Handler) pskStatus(s lifecycle.PSKStatus) func(http.ResponseWriter, *http.Request) error {
	return func(w http.ResponseWriter, r *http.Request) error {
		keyID := r.PathValue("keyid")
		if err := h.m.SetPSKStatus(r.Context(), keyID, s); err != nil {
			return err
		}
		p, err := h.m.GetPSK(r.Context(), keyID)
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, pskOf(p))
		return nil
	}
}

// deletePSK deletes a PSK as its holder would: the Manager checks its
// password, which the administrator need not know.
func (h *Handler) deletePSK(w http.ResponseWriter, r *http.Request) error {
	p, err := h.m.GetPSK(r.Context(), r.PathValue("keyid"))
	if err != nil {
		return err
	}
	if err := h.m.DeletePSK(r.Context(), lifecycle.PSKCredentials{KeyID: p.KeyID, Password: p.Password}); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// --- devices ------------------------------------------------------------------

type deviceJSON struct {
	Tenant           string            `json:"tenant"`
	ID               string            `json:"id"`
	Name             string            `json:"name"`
	Status           string            `json:"status"`
	IPAddress        string            `json:"ipaddress,omitempty"`
	MACAddress       string            `json:"macaddress,omitempty"`
	ExtData          map[string]string `json:"ext_data,omitempty"`
	CreatedAt        time.Time         `json:"created_at"`
	UpdatedAt        time.Time         `json:"updated_at"`
	ExpiresAt        *time.Time        `json:"expires_at,omitempty"`
	ValidCredentials *int              `json:"valid_credentials,omitempty"`
}

func deviceOf(d *lifecycle.Device, counted bool) deviceJSON {
	out := deviceJSON{Tenant: d.Tenant, ID: d.ID, Name: d.Name, Status: d.Status.String(), IPAddress: d.IPAddress,
		MACAddress: d.MACAddress, ExtData: d.ExtData, CreatedAt: d.CreatedAt, UpdatedAt: d.UpdatedAt}
	if !d.ExpiresAt.IsZero() {
		out.ExpiresAt = &d.ExpiresAt
	}
	if counted {
		n := d.ValidCredentials
		out.ValidCredentials = &n
	}
	return out
}

func (h *Handler) listDevices(w http.ResponseWriter, r *http.Request) error {
	limit, err := limitOf(r)
	if err != nil {
		return err
	}
	page, err := h.m.ListDevices(r.Context(), lifecycle.ListDevicesRequest{Tenant: r.PathValue("tenant"), After: r.URL.Query().Get("after"), Limit: limit, Counts: true})
	if err != nil {
		return err
	}
	out := make([]deviceJSON, len(page.Devices))
	for i, d := range page.Devices {
		out[i] = deviceOf(d, true)
	}
	writeJSON(w, http.StatusOK, map[string]any{"devices": out, "next": page.Next})
	return nil
}

func (h *Handler) getDevice(w http.ResponseWriter, r *http.Request) error {
	d, err := h.m.GetDevice(r.Context(), r.PathValue("tenant"), r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, deviceOf(d, false))
	return nil
}

func (h *Handler) deviceStatus(s lifecycle.DeviceStatus) func(http.ResponseWriter, *http.Request) error {
	return func(w http.ResponseWriter, r *http.Request) error {
		tenant, id := r.PathValue("tenant"), r.PathValue("id")
		if err := h.m.SetDeviceStatus(r.Context(), tenant, id, s); err != nil {
			return err
		}
		return h.getDevice(w, r)
	}
}

func (h *Handler) decommission(w http.ResponseWriter, r *http.Request) error {
	var body struct {
		Reason json.RawMessage `json:"reason"`
	}
	if err := readJSON(w, r, &body); err != nil {
		return err
	}
	reason, err := reasonOf(body.Reason, 0)
	if err != nil {
		return err
	}
	res, err := h.m.DecommissionDevice(r.Context(), lifecycle.DecommissionRequest{Tenant: r.PathValue("tenant"), DeviceID: r.PathValue("id"), Reason: reason})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"device": deviceOf(res.Device, false), "revoked": nonNil(res.Revoked), "keys_deleted": nonNil(res.KeysDeleted), "disabled": res.Disabled,
		"changed": res.Disabled || len(res.Revoked) > 0 || len(res.KeysDeleted) > 0,
	})
	return nil
}

func nonNil(s []int64) []int64 {
	if s == nil {
		return []int64{}
	}
	return s
}

// reasons are the RFC 5280 CRLReason names a request may give.
var reasons = map[string]int{
	"unspecified": 0, "keyCompromise": 1, "cACompromise": 2, "affiliationChanged": 3, "superseded": 4,
	"cessationOfOperation": 5, "certificateHold": 6, "removeFromCRL": 8, "privilegeWithdrawn": 9, "aACompromise": 10,
}

// reasonOf reads a reason given as a name ("keyCompromise") or a number.
func reasonOf(raw json.RawMessage, def int) (int, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return def, nil
	}
	var name string
	if json.Unmarshal(raw, &name) == nil {
		if n, ok := reasons[name]; ok {
			return n, nil
		}
		return 0, bad("reason", "an RFC 5280 reason: keyCompromise, cessationOfOperation, ...")
	}
	var n int
	if err := json.Unmarshal(raw, &n); err != nil {
		return 0, bad("reason", "a reason name or code")
	}
	return n, nil
}

// --- credentials --------------------------------------------------------------

type credentialJSON struct {
	KeyNumber      int64      `json:"keynumber"`
	Tenant         string     `json:"tenant"`
	Kind           string     `json:"kind"`
	State          string     `json:"state"`
	CA             string     `json:"ca,omitempty"`
	Serial         string     `json:"serial,omitempty"`
	Subject        string     `json:"subject,omitempty"`
	Alias          string     `json:"alias,omitempty"`
	KeyType        string     `json:"keytype"`
	KeyLength      int        `json:"keylength"`
	DeviceKey      bool       `json:"device_key,omitempty"`
	NotBefore      time.Time  `json:"not_before"`
	NotAfter       time.Time  `json:"not_after"`
	CreatedAt      time.Time  `json:"created_at"`
	StateChangedAt *time.Time `json:"state_changed_at,omitempty"`
	Reason         *int       `json:"reason,omitempty"`
	ReplacedBy     int64      `json:"replaced_by,omitempty"`
	Certificate    string     `json:"certificate,omitempty"` // PEM
}

func credentialOf(c *lifecycle.CredentialInfo) credentialJSON {
	out := credentialJSON{KeyNumber: c.KeyNumber, Tenant: c.Tenant, Kind: c.Kind.String(), State: c.State.String(), CA: c.CA, Serial: c.Serial,
		Subject: c.Subject, Alias: c.Alias, KeyType: c.KeyType, KeyLength: c.KeyLength, DeviceKey: c.DeviceKey,
		NotBefore: c.NotBefore, NotAfter: c.NotAfter, CreatedAt: c.CreatedAt, ReplacedBy: c.ReplacedBy}
	if !c.StateChangedAt.IsZero() {
		out.StateChangedAt = &c.StateChangedAt
		if c.State == lifecycle.StateRevoked || c.State == lifecycle.StateSuperseded {
			reason := c.Reason
			out.Reason = &reason
		}
	}
	if c.Certificate != nil {
		out.Certificate = string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Certificate}))
	}
	return out
}

var kinds = map[string]lifecycle.CredentialKind{"certificate": lifecycle.KindCertificate, "symmetric-key": lifecycle.KindSymmetricKey}

var states = map[string]lifecycle.CredentialState{
	"valid": lifecycle.StateValid, "revoked": lifecycle.StateRevoked, "superseded": lifecycle.StateSuperseded, "deleted": lifecycle.StateDeleted,
}

func timeParam(q map[string][]string, name string) (time.Time, error) {
	v := ""
	if vs := q[name]; len(vs) > 0 {
		v = vs[0]
	}
	if v == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return time.Time{}, bad(name, "an RFC 3339 time, as 2027-01-31T00:00:00Z")
	}
	return t, nil
}

func (h *Handler) listCredentials(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	req := lifecycle.ListCredentialsRequest{Tenant: q.Get("tenant"), DeviceID: q.Get("device"), CA: q.Get("ca"), After: q.Get("after")}
	if req.Tenant == "" {
		return missing("tenant")
	}
	var err error
	if req.Limit, err = limitOf(r); err != nil {
		return err
	}
	if k := q.Get("kind"); k != "" {
		var ok bool
		if req.Kind, ok = kinds[k]; !ok {
			return bad("kind", "certificate or symmetric-key")
		}
	}
	for _, s := range q["state"] {
		for _, one := range strings.Split(s, ",") {
			if one == "" {
				continue // state= is no filter
			}
			st, ok := states[one]
			if !ok {
				return bad("state", "valid, revoked, superseded or deleted")
			}
			req.States = append(req.States, st)
		}
	}
	if req.ExpiringBefore, err = timeParam(q, "expiring_before"); err != nil {
		return err
	}
	if req.ExpiringAfter, err = timeParam(q, "expiring_after"); err != nil {
		return err
	}
	page, err := h.m.ListCredentials(r.Context(), req)
	if err != nil {
		return err
	}
	out := make([]credentialJSON, len(page.Credentials))
	for i, c := range page.Credentials {
		out[i] = credentialOf(c)
		out[i].Certificate = "" // a page lists; get shows the certificate
	}
	writeJSON(w, http.StatusOK, map[string]any{"credentials": out, "next": page.Next})
	return nil
}

func keyNumberOf(r *http.Request) (int64, error) {
	n, err := strconv.ParseInt(r.PathValue("keynumber"), 10, 64)
	if err != nil || n <= 0 {
		return 0, bad("keynumber", "a positive number")
	}
	return n, nil
}

func (h *Handler) getCredential(w http.ResponseWriter, r *http.Request) error {
	kn, err := keyNumberOf(r)
	if err != nil {
		return err
	}
	c, err := h.m.GetCredential(r.Context(), lifecycle.GetCredentialRequest{Tenant: r.PathValue("tenant"), Ref: lifecycle.CertificateRef{KeyNumber: kn}})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, credentialOf(c))
	return nil
}

// revoke revokes a certificate named by keynumber, or by CA and serial.
func (h *Handler) revoke(w http.ResponseWriter, r *http.Request) error {
	ref := lifecycle.CertificateRef{Serial: r.PathValue("serial")}
	if ref.Serial == "" {
		kn, err := keyNumberOf(r)
		if err != nil {
			return err
		}
		ref.KeyNumber = kn
	}
	var body struct {
		Reason json.RawMessage `json:"reason"`
	}
	if err := readJSON(w, r, &body); err != nil {
		return err
	}
	reason, err := reasonOf(body.Reason, 0)
	if err != nil {
		return err
	}
	c, err := h.m.RevokeCredential(r.Context(), lifecycle.RevokeCredentialRequest{Tenant: r.PathValue("tenant"), CA: r.PathValue("ca"), Ref: ref, Reason: reason})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, credentialOf(c))
	return nil
}

// --- CAs ------------------------------------------------------------------------

func (h *Handler) listCAs(w http.ResponseWriter, r *http.Request) error {
	cas, err := h.m.ListCAs(r.Context())
	if err != nil {
		return err
	}
	type caJSON struct {
		Name     string    `json:"name"`
		Subject  string    `json:"subject"`
		Issuer   string    `json:"issuer"`
		Serial   string    `json:"serial"`
		NotAfter time.Time `json:"not_after"`
		Chain    int       `json:"chain_length"`
	}
	out := make([]caJSON, len(cas))
	for i, c := range cas {
		cert := c.Chain[0]
		out[i] = caJSON{Name: c.Name, Subject: cert.Subject.String(), Issuer: cert.Issuer.String(),
			Serial: lifecycle.FormatSerial(cert.SerialNumber), NotAfter: cert.NotAfter, Chain: len(c.Chain)}
	}
	writeJSON(w, http.StatusOK, map[string]any{"cas": out})
	return nil
}

func (h *Handler) caChain(w http.ResponseWriter, r *http.Request) error {
	chain, err := h.m.CAChain(r.Context(), r.PathValue("name"))
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/x-pem-file")
	for _, c := range chain {
		if err := pem.Encode(w, &pem.Block{Type: "CERTIFICATE", Bytes: c.Raw}); err != nil {
			return nil // the answer has begun
		}
	}
	return nil
}

func (h *Handler) caCRL(w http.ResponseWriter, r *http.Request) error {
	crl, err := h.m.CRL(r.Context(), r.PathValue("name"))
	if err != nil {
		return err
	}
	if r.URL.Query().Get("format") == "pem" {
		w.Header().Set("Content-Type", "application/x-pem-file")
		return pem.Encode(w, &pem.Block{Type: "X509 CRL", Bytes: crl.DER})
	}
	w.Header().Set("Content-Type", "application/pkix-crl")
	_, _ = w.Write(crl.DER)
	return nil
}
