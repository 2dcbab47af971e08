// Package httpadapter serves the CLM WebAPI v10 wire protocol (NEC
// SecureWare/Credential Lifecycle Manager) over net/http, on top of any
// lifecycle.Manager, so that existing device agents and scripts work
// against a Go service unchanged.
//
//	h := httpadapter.New(manager, &httpadapter.Options{License: license})
//	mux.Handle("/SWCLM/v10/", h) // net/http, chi, gorilla: any mux
//
// Endpoints, under the prefix (/SWCLM/v10/ by default):
//
//	POST IDInfo        mode create | auth | delete   PSKs
//	GET  IDInfo        ?keyid= (or ?tenantid=&limit=&after= to list)
//	POST CredInfo      mode create | get | update | revoke   certificates
//	POST KeyInfo       mode create | get | update | delete   symmetric keys
//	GET  SystemStatus  health (no authentication)
//	GET  CRL           ?catype=ca1[&format=pem] (no authentication)
//	POST OCSP/{catype}            an OCSP request, DER (no authentication)
//	GET  OCSP/{catype}/{request}  the same, base64 and URL-escaped
//	GET  CACert        ?catype=ca1[&format=pem] the CA's certificate (no authentication)
//	GET  openapi.yaml  the OpenAPI 3.1 document of all of this (no authentication)
//
// Every endpoint but SystemStatus, CRL, OCSP and CACert needs HTTP Basic authentication
// with the user secureware-clm and the installation's license key; a failure
// answers 401 with WWW-Authenticate. Bodies are decoded strictly and in the
// spec's order of checks: JSON syntax (1101), mode (1102/1103), required
// fields (1102), types (1103), limits (1104), then the Manager's own checks.
// Numbers the reference shows as strings are accepted as strings or JSON
// numbers; the reference's misspelt field names are accepted as aliases;
// unknown fields are ignored.
//
// Integrators put their own checks in front with Options.Authenticate
// (which replaces or extends the license check: mTLS, bearer tokens),
// name the client behind a proxy with Options.ClientAddr, and count
// requests with Options.Observe (examples/clmserver feeds Prometheus from
// it). Every answer carries X-Request-Id (the request's, or a new one),
// and so does its log line.
//
// Every error carries its CLM code, and the HTTP status comes from one table
// (spec §9). No response and no log line carries a secret or the text of an
// internal error. Each request is logged through log/slog with its client
// address, method, path, mode, status, errorcode and latency.
package httpadapter

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/credlife/clm/internal/lockout"
	"github.com/credlife/clm/internal/wire"
	"github.com/credlife/clm/lifecycle"
)

// Options configure the handler. License is required.
type Options struct {
	// License is the installation's license key, the password of the HTTP
	// Basic authentication (user "secureware-clm").
	License lifecycle.Secret
	// AdminLicense, when set, is a second license that alone may issue
	// PSKs and read them (IDInfo create and GET, which answer PSK
	// passwords); License is then refused there (401). AdminLicense is
	// accepted wherever License is. Without it, every holder of License
	// (every v10 client) may list every tenant's PSK passwords, as in the
	// protocol.
	AdminLicense lifecycle.Secret
	// Prefix is the path the protocol is served under; "/SWCLM/v10/" when "".
	Prefix string
	// Logger receives one line per request; nothing is logged when nil.
	Logger *slog.Logger
	// MaxBodyBytes bounds a request body; 1 MiB when 0. A larger body is
	// refused (413, 1104) without being read whole.
	MaxBodyBytes int64
	// AddressFailures, when positive, locks a client address for
	// AddressWindow once its failed PSK authentications (1201) within
	// AddressWindow reach it: its requests then answer 403/1202 before the
	// Manager is called. Off by default: devices behind one NAT share an
	// address. (The engine's own limit per keyid is on by default.)
	AddressFailures int
	// AddressWindow is the window and lock length of AddressFailures and
	// LicenseFailures; 5 minutes when 0.
	AddressWindow time.Duration
	// Authenticate, when set, decides the access of each request to an
	// authenticated endpoint, given the access its license grants
	// (AccessAdmin for the admin license, or for the license when no admin
	// license is set; AccessDevice for the license otherwise; AccessNone
	// for neither). Return license to keep the license check, or another
	// Access to extend or replace it: a client certificate (r.TLS), a
	// bearer token, a scope of one's own. AccessNone answers 401.
	Authenticate func(r *http.Request, license Access) Access
	// ClientAddr returns the address of a request's client, for the
	// per-address limits, the engine's brute-force limits and the logs:
	// behind a proxy, the address the proxy vouches for. The host of
	// r.RemoteAddr when nil.
	ClientAddr func(r *http.Request) string
	// Observe, when set, is called once for every request, after its
	// answer, with what was served (for metrics). It must not block.
	Observe func(Observation)
	// LicenseFailures is how many requests with a wrong license (401) from
	// one client address within AddressWindow lock that address for
	// AddressWindow: its requests then answer 401 without their license
	// being checked, so that the license cannot be guessed from it. Counted
	// in memory, per process. 100 when 0; negative turns it off. (Devices
	// behind one NAT share an address: one with a wrong license counts for
	// all of them.)
	LicenseFailures int
}

// LicenseUser is the HTTP Basic user name of the license.
const LicenseUser = wire.LicenseUser

// Access is what an authenticated request may do.
type Access int

const (
	AccessNone   Access = iota // refused: 401
	AccessDevice               // the device endpoints: IDInfo auth and delete, CredInfo, KeyInfo
	AccessAdmin                // also IDInfo create and GET, which issue and read PSKs
)

// Observation is what Options.Observe is told of a request.
type Observation struct {
	Endpoint  string // "IDInfo", "CredInfo", "KeyInfo", "SystemStatus", "CRL", "OCSP", "CACert", "openapi.yaml"; "" for an unknown path
	Mode      string // the body's mode ("create", ...); "GET" for a GET
	Status    int    // the HTTP status answered
	Code      lifecycle.Code
	Duration  time.Duration
	Client    string // as Options.ClientAddr gives it
	RequestID string
}

// Handler serves the protocol. Make one with New.
type Handler struct {
	m          lifecycle.Manager
	prefix     string
	license    [32]byte // SHA-256 of the license, compared in constant time
	admin      [32]byte // SHA-256 of the admin license; zero when none
	user       [32]byte
	log        *slog.Logger
	limit      int64
	byAddr     *lockout.Limiter
	licenseLim *lockout.Limiter // license failures per address
	auth       func(*http.Request, Access) Access
	clientAddr func(*http.Request) string
	observe    func(Observation)
}

// New returns a Handler serving m. It panics if opts.License is empty: a
// server without a license key would be open to anyone.
func New(m lifecycle.Manager, opts *Options) *Handler {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.License == "" {
		panic("httpadapter: Options.License is required")
	}
	if o.Prefix == "" {
		o.Prefix = "/SWCLM/v10/"
	}
	if !strings.HasSuffix(o.Prefix, "/") {
		o.Prefix += "/"
	}
	if o.MaxBodyBytes == 0 {
		o.MaxBodyBytes = 1 << 20
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.AddressWindow == 0 {
		o.AddressWindow = 5 * time.Minute
	}
	if o.ClientAddr == nil {
		o.ClientAddr = clientAddr
	}
	if o.LicenseFailures == 0 {
		o.LicenseFailures = 100
	}
	return &Handler{
		auth:       o.Authenticate,
		clientAddr: o.ClientAddr,
		observe:    o.Observe,
		byAddr:     lockout.New(o.AddressFailures, o.AddressWindow),
		licenseLim: lockout.New(o.LicenseFailures, o.AddressWindow),
		m:          m,
		prefix:     o.Prefix,
		license:    sha256.Sum256([]byte(o.License)),
		admin:      adminHash(o.AdminLicense),
		user:       sha256.Sum256([]byte(wire.LicenseUser)),
		log:        o.Logger,
		limit:      o.MaxBodyBytes,
	}
}

// statusOf is the one table from CLM codes to HTTP statuses (spec §9).
var statusOf = map[lifecycle.Code]int{
	lifecycle.CodeConfigInvalid:      500,
	lifecycle.CodeConfigRead:         500,
	lifecycle.CodeSyntax:             400,
	lifecycle.CodeMissing:            400,
	lifecycle.CodeMalformed:          400,
	lifecycle.CodeOutOfRange:         400,
	lifecycle.CodePasswordMismatch:   403,
	lifecycle.CodePSKNotActive:       403,
	lifecycle.CodePSKExpired:         403,
	lifecycle.CodePSKNotFound:        404,
	lifecycle.CodeKeyIDExhausted:     500,
	lifecycle.CodeCertNotFound:       404,
	lifecycle.CodeCANameInvalid:      404,
	lifecycle.CodeCertNotBound:       404,
	lifecycle.CodeCertNotValid:       403,
	lifecycle.CodeCertExpired:        403,
	lifecycle.CodeCertRevoked:        403,
	lifecycle.CodeNewCertNotValid:    403,
	lifecycle.CodeNewCertExpired:     403,
	lifecycle.CodeCertPathNotFound:   404,
	lifecycle.CodeCryptoFailed:       500,
	lifecycle.CodeCryptoMalformed:    500,
	lifecycle.CodeLockTimeout:        500,
	lifecycle.CodeKeyNotFound:        404,
	lifecycle.CodeNewKeyNotFound:     404,
	lifecycle.CodeKeyNotBound:        404,
	lifecycle.CodeKeyUpdated:         403,
	lifecycle.CodeNewKeyNotActive:    403,
	lifecycle.CodeNewKeyExpired:      403,
	lifecycle.CodeNewKeyTypeMismatch: 400,
	lifecycle.CodeCommonKeyMismatch:  400,
	lifecycle.CodeDBConnection:       500,
	lifecycle.CodeDBAccess:           500,
	lifecycle.CodeDBColumn:           500,
	lifecycle.CodeDBData:             500,
	lifecycle.CodeDeviceMismatch:     400,
	lifecycle.CodeDeviceNameExists:   400,
	lifecycle.CodeDeviceKeyMismatch:  403,
	lifecycle.CodeDeviceNotActive:    403,
	lifecycle.CodeDeviceExpired:      403,
	lifecycle.CodeDeviceNotFound:     404,
	lifecycle.CodeScript:             500,
	lifecycle.CodeLogInit:            500,
	lifecycle.CodeInit:               500,
	lifecycle.CodeEncrypt:            500,
	lifecycle.CodeDecrypt:            500,
	lifecycle.CodeCryptoToolkit:      500,
	lifecycle.CodeSystem:             500,
}

// StatusOf returns the HTTP status of a CLM code (500 for a code outside
// the table).
func StatusOf(c lifecycle.Code) int {
	if s, ok := statusOf[c]; ok {
		return s
	}
	return http.StatusInternalServerError
}

// exchange is one request being served: what the log line says of it.
type exchange struct {
	w      http.ResponseWriter
	r      *http.Request
	ctx    context.Context // r's, naming the client address
	mode   string
	status int
	code   lifecycle.Code
	access Access
}

func (x *exchange) json(status int, v any) {
	x.status = status
	h := x.w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Cache-Control", "no-store") // answers carry secrets
	x.w.WriteHeader(status)
	_ = json.NewEncoder(x.w).Encode(v)
}

// fail answers err with its code and status; an error that is not a CLM
// error answers 9901. The error's text never leaves the process.
func (x *exchange) fail(err error) {
	x.code = lifecycle.CodeOf(err)
	if errors.Is(err, context.Canceled) {
		x.code = lifecycle.CodeSystem
	}
	x.json(StatusOf(x.code), wire.ErrorResponse{ErrorCode: int(x.code)})
}

func (x *exchange) failCode(c lifecycle.Code, status int) {
	x.code = c
	x.json(status, wire.ErrorResponse{ErrorCode: int(c)})
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	x := &exchange{w: w, r: r, ctx: r.Context()}
	addr := h.clientAddr(r)
	id := requestID(r)
	w.Header().Set("X-Request-Id", id)
	var endpoint string
	defer func() {
		took := time.Since(start)
		h.log.LogAttrs(r.Context(), slog.LevelInfo, "request",
			slog.String("request_id", id),
			slog.String("client", addr),
			slog.String("method", r.Method),
			slog.String("path", r.URL.Path),
			slog.String("mode", x.mode),
			slog.Int("status", x.status),
			slog.Int("errorcode", int(x.code)),
			slog.Duration("latency", took),
		)
		if h.observe != nil {
			mode := x.mode
			if r.Method == http.MethodGet {
				mode = "GET"
			}
			h.observe(Observation{Endpoint: endpoint, Mode: mode, Status: x.status, Code: x.code, Duration: took, Client: addr, RequestID: id})
		}
	}()
	name, ok := strings.CutPrefix(r.URL.Path, h.prefix)
	if !ok {
		x.failCode(lifecycle.CodeMalformed, http.StatusNotFound)
		return
	}
	type route struct {
		methods []string
		auth    bool
		serve   func(*exchange)
	}
	routes := map[string]route{
		wire.PathIDInfo:       {[]string{"GET", "POST"}, true, h.idInfo},
		wire.PathCredInfo:     {[]string{"POST"}, true, h.credInfo},
		wire.PathKeyInfo:      {[]string{"POST"}, true, h.keyInfo},
		wire.PathSystemStatus: {[]string{"GET"}, false, h.systemStatus},
		wire.PathCRL:          {[]string{"GET"}, false, h.crl},
		wire.PathOCSP:         {[]string{"GET", "POST"}, false, h.ocspServe},
		wire.PathCACert:       {[]string{"GET"}, false, h.caCert},
		"openapi.yaml":        {[]string{"GET"}, false, h.openAPIDoc},
	}
	if strings.HasPrefix(name, wire.PathOCSP+"/") {
		name = wire.PathOCSP // OCSP/{catype}[/{request}]
	} else if name == wire.PathOCSP {
		name = "" // the CA is part of the path
	}
	rt, ok := routes[name]
	if ok {
		endpoint = name
	}
	if !ok {
		x.failCode(lifecycle.CodeMalformed, http.StatusNotFound)
		return
	}
	if !slices.Contains(rt.methods, r.Method) {
		w.Header().Set("Allow", strings.Join(rt.methods, ", "))
		x.failCode(lifecycle.CodeMalformed, http.StatusMethodNotAllowed)
		return
	}
	if ip, err := netip.ParseAddr(addr); err == nil {
		// The engine's brute-force limits count per client address.
		x.ctx = lifecycle.WithClientAddress(x.ctx, ip)
	}
	if rt.auth {
		if h.licenseLim.Locked(addr, time.Now()) {
			h.unauthorized(x)
			return
		}
		access := h.authorized(r)
		if h.auth != nil {
			access = h.auth(r, access)
		}
		if access == AccessNone {
			// Counted only when refused: a request the Authenticate hook
			// lets in without the license is no failed guess.
			h.licenseLim.Fail(addr, time.Now())
			h.unauthorized(x)
			return
		}
		x.access = access
	}
	if h.byAddr != nil && rt.auth && r.Method == http.MethodPost && h.byAddr.Locked(addr, time.Now()) {
		x.failCode(lifecycle.CodePSKNotActive, http.StatusForbidden)
		return
	}
	rt.serve(x)
	if h.byAddr != nil && x.code == lifecycle.CodePasswordMismatch {
		h.byAddr.Fail(addr, time.Now())
	}
}

// clientAddr is the host part of the peer's address (no port), the key of
// the per-address limit.
func clientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// authorized checks the license key in constant time (both the user and
// the password are hashed first, so their lengths do not show), and tells
// the access it grants.
func (h *Handler) authorized(r *http.Request) Access {
	user, pass, basic := r.BasicAuth()
	u, p := sha256.Sum256([]byte(user)), sha256.Sum256([]byte(pass))
	userOK := subtle.ConstantTimeCompare(u[:], h.user[:])
	passOK := subtle.ConstantTimeCompare(p[:], h.license[:])
	adminSet := h.admin != ([32]byte{})
	adminOK := 0
	if adminSet {
		adminOK = subtle.ConstantTimeCompare(p[:], h.admin[:])
	}
	switch {
	case !basic || userOK != 1:
		return AccessNone
	case adminOK == 1, passOK == 1 && !adminSet:
		return AccessAdmin
	case passOK == 1:
		return AccessDevice
	}
	return AccessNone
}

// requireAdmin answers 401 to a request without admin access, and reports
// whether it did so.
func (h *Handler) requireAdmin(x *exchange) bool {
	if x.access >= AccessAdmin {
		return false
	}
	h.unauthorized(x)
	return true
}

// requestID is the request's X-Request-Id when it is a sane one (1 to 128
// printable ASCII characters), else a new random id.
func requestID(r *http.Request) string {
	if id := r.Header.Get("X-Request-Id"); id != "" && len(id) <= 128 && strings.IndexFunc(id, func(c rune) bool { return c < 0x21 || c > 0x7e }) < 0 {
		return id
	}
	// An id, not a secret: math/rand's generator is enough, and cheaper.
	const hexDigits = "0123456789abcdef"
	var b [16]byte
	for i, n := 0, rand.Uint64(); i < 16; i, n = i+1, n>>4 {
		b[i] = hexDigits[n&15]
	}
	return string(b[:])
}

func (h *Handler) unauthorized(x *exchange) {
	x.w.Header().Set("WWW-Authenticate", `Basic realm="SWCLM"`)
	x.failCode(lifecycle.CodePasswordMismatch, http.StatusUnauthorized)
}

func adminHash(s lifecycle.Secret) (h [32]byte) {
	if s != "" {
		h = sha256.Sum256([]byte(s))
	}
	return h
}

// readBody decodes a POST body and its mode; it answers the request
// itself and returns nil on failure.
func (h *Handler) readBody(x *exchange, modes ...string) *body {
	b, code := decodeBody(x.w, x.r, h.limit)
	switch code {
	case lifecycle.CodeOK:
	case lifecycle.CodeOutOfRange:
		x.failCode(code, http.StatusRequestEntityTooLarge)
		return nil
	default:
		x.failCode(code, http.StatusBadRequest)
		return nil
	}
	v, _, ok := b.get("mode")
	if !ok {
		x.failCode(lifecycle.CodeMissing, http.StatusBadRequest)
		return nil
	}
	var mode string
	if json.Unmarshal(v, &mode) != nil {
		x.failCode(lifecycle.CodeMalformed, http.StatusBadRequest)
		return nil
	}
	if mode == "" {
		x.failCode(lifecycle.CodeMissing, http.StatusBadRequest)
		return nil
	}
	for _, m := range modes {
		if m == mode {
			x.mode = mode
			return b
		}
	}
	x.mode = "invalid"
	x.failCode(lifecycle.CodeMalformed, http.StatusBadRequest)
	return nil
}

// Prefix returns the path the handler serves under.
func (h *Handler) Prefix() string { return h.prefix }
