package lifecycle

import (
	"cmp"
	"context"
	"crypto"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"runtime"
	"sync"
	"time"

	"github.com/credlife/clm/lifecycle/driver"

	"github.com/credlife/clm/internal/lockout"
)

// Options configure an Engine. The zero value of every field means the
// documented default; a nil *Options means all defaults, except Keys, which
// is required.
type Options struct {
	// Keys supplies the key-encryption keys that seal every secret at rest.
	// Required.
	Keys KeySource

	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// Rand is the source of every random value (passwords, device ids and
	// keys, nonces); crypto/rand.Reader when nil. It must be a CSPRNG.
	Rand io.Reader
	// Logger receives the engine's own diagnostics, never a secret;
	// nothing is logged when nil.
	Logger *slog.Logger
	// Auditor receives an AuditEvent for every state change (and attempt at
	// one) and every failed authentication; when nil, a NewSlogAuditor on
	// Logger, or nothing when Logger is nil too.
	Auditor Auditor

	// PSKValidity is how long an issued PSK stays valid; 10 years when 0.
	PSKValidity time.Duration
	// Password is the policy of issued PSK passwords; DefaultPasswordPolicy
	// when zero.
	Password PasswordPolicy

	// KeyValidity is how long a symmetric key stays valid; 10 years when 0.
	KeyValidity time.Duration

	// DeviceValidity is how long a registered device stays valid; never
	// expires when 0.
	DeviceValidity time.Duration
	// ReplayWindow makes certificate and key creation safe to retry: a
	// known device that asks again, within this window, for the same
	// credential at the same path (a retry after a lost answer) gets the one
	// it was given, not a second. "The same" is the valid credential most
	// recently bound at that path, bound within the window, of the same
	// subject (CA, key type) or alias (key type, length). 2 minutes when 0;
	// negative turns it off.
	ReplayWindow time.Duration

	// driver.AuthFailures is how many wrong passwords for one PSK from one client
	// within AuthWindow lock that client out of that PSK for AuthWindow:
	// its authentications then answer CodePSKNotActive (HTTP 403), right
	// password or not, while the PSK's device, elsewhere, goes on working.
	// The client is the address of WithClientAddress (an IPv6 address
	// counts as its /64); requests that name none count as one client.
	// Failures are counted in the store, so every engine on it sees them;
	// a lock an engine has seen is refused from memory, without a store
	// read. A success forgets that client's failures. 10 when 0; negative
	// turns the limits off.
	AuthFailures int
	// AuthFailuresPerPSK is how many wrong passwords for one PSK from all
	// clients together within AuthWindow lock the PSK for everyone for
	// AuthWindow: the ceiling that a guesser with many addresses meets.
	// Successes do not reset it. 100 when 0.
	AuthFailuresPerPSK int
	// AuthWindow is the counting window and the lock's length; 5 minutes
	// when 0.
	AuthWindow time.Duration

	// RequireDeviceKey makes the device key mandatory in every request that
	// names a device ID (spec §2.4); when false it is checked only if given.
	RequireDeviceKey bool

	// DeviceIsolation confines a device to the credentials already bound
	// to it: a get, renewal, revocation, rotation or deletion of a
	// certificate or key (and the adoption of one) that the device does not
	// hold answers as if it did not exist (CodeCertNotFound,
	// CodeKeyNotFound, CodeNewKeyNotFound). Off by default, as in the
	// protocol, where any device of a tenant may get any credential of the
	// tenant.
	DeviceIsolation bool

	// AllowWildcards lets a certificate's subject carry a wildcard ("*")
	// in its CN, and so in its subjectAltName; refused (CodeMalformed) by
	// default. It is the AllowWildcards of the default Policy, the one
	// that applies where Policies name none.
	AllowWildcards bool

	// Policies restrict what each CA issues, to each tenant (see Policy):
	// a request is held to the most specific policy whose scope matches it
	// ({CA, Tenant}, then {CA}, then {Tenant}, then {}), or, without one, to
	// the default policy (Policy{AllowWildcards: AllowWildcards}).
	Policies map[PolicyScope]*Policy

	// URLs, when set, gives the public URLs of a CA's services; issued
	// certificates then name them (authorityInfoAccess: OCSP and
	// caIssuers; a CRL distribution point). httpadapter.IssuerURLs makes
	// it from the server's public base URL. Certificates carry none when
	// nil.
	URLs func(ca string) IssuerURLs
	// ExpiryWarnings are the thresholds before a credential's end at which
	// SweepExpiry warns (DefaultExpiryWarnings, 30, 7 and 1 days, when
	// nil).
	ExpiryWarnings []time.Duration
	// Retention is how long after its end a revoked, superseded or deleted
	// credential is kept: Purge removes it then, and CRLs stop listing it.
	// 90 days when 0; negative keeps everything.
	Retention time.Duration

	// OCSPValidity is the time from an OCSP response's thisUpdate to its
	// nextUpdate; 1 hour when 0. A response is signed again when half of it
	// has passed, or at once when the certificate's state changes.
	OCSPValidity time.Duration

	// CAs are the certificate authorities that issue certificates, each
	// under its Name (the protocol's catype; "CA" is reserved for CA
	// certificates themselves). The first is the default, whose certificate
	// certmode "caonly" returns. Without CAs the certificate operations
	// answer CodeCANameInvalid.
	CAs []CA
	// CertKeyType is the key type of issued certificates when a request
	// names none; EC-P256 when "".
	CertKeyType CertKeyType
	// CertValidity is how long an issued certificate is valid; 365 days when 0.
	CertValidity time.Duration
	// CRLValidity is the time from a CRL's thisUpdate to its nextUpdate; 24
	// hours when 0.
	CRLValidity time.Duration
	// LegacyPKCS12 makes PKCS#12 files with 3DES and SHA-1 (LegacyDES), for
	// old devices; by default they use AES-256 and PBKDF2-SHA256 (Modern2023).
	LegacyPKCS12 bool

	// RSAKeyPool, when positive, keeps up to that many RSA keys of each
	// RSA key type in use pre-generated in memory (one background goroutine
	// per type, started by the first issuance of that type), so that an RSA
	// issuance with a warm pool costs about what an EC one does; when the
	// pool is empty the key is generated on the request's path. A pool
	// refills in bursts, once half its keys are taken. Call Engine.Close to
	// stop the generators. Off by default.
	RSAKeyPool int

	// ExpensiveConcurrency bounds how many expensive operations run at
	// once: encrypting a private key under a passphrase (PBKDF2, 600,000
	// iterations), a PKCS#12 file, an RSA key generated on the request's
	// path. Requests beyond it wait their turn, so that a flood of them
	// leaves the other CPUs to cheap requests (PSK authentication, gets).
	// Half of GOMAXPROCS, at least 1, when 0.
	ExpensiveConcurrency int
	// ExpensiveWait is how long an expensive operation waits for its turn
	// (also bounded by the request's context) before its request answers
	// CodeLockTimeout, changing nothing; 30 seconds when 0.
	ExpensiveWait time.Duration

	// NumberBlock is how many keyids or keynumbers the engine reserves in
	// the store at once, handing them out from memory; 16 when 0, 1 to
	// take each from the store. Numbers never repeat across engines; the
	// unused rest of a block is a gap.
	NumberBlock int

	// PageSize is the default page size of the List methods (100 when 0);
	// MaxPageSize bounds what a caller may ask (1000 when 0).
	PageSize    int
	MaxPageSize int
}

// PasswordPolicy says how PSK passwords are made: Length characters drawn
// uniformly from Alphabet.
type PasswordPolicy struct {
	Length   int
	Alphabet string // distinct ASCII characters
}

// DefaultPasswordPolicy gives 24 characters of [0-9A-Za-z], about 142 bits
// of entropy.
var DefaultPasswordPolicy = PasswordPolicy{
	Length:   24,
	Alphabet: "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
}

// MinPasswordEntropy is the least entropy, in bits, that New accepts of a
// password policy.
const MinPasswordEntropy = 128

// Entropy returns the bits of entropy of a password made by p.
func (p PasswordPolicy) Entropy() float64 {
	if p.Length <= 0 || len(p.Alphabet) < 2 {
		return 0
	}
	return float64(p.Length) * math.Log2(float64(len(p.Alphabet)))
}

// Engine is the lifecycle engine: it implements Manager over a driver.Store. It
// is safe for concurrent use, and several engines (in one process or many)
// may share one database.
type Engine struct {
	store   driver.Store
	sealer  *Sealer
	now     func() time.Time
	rand    io.Reader
	log     *slog.Logger
	auditor Auditor

	pskValidity    time.Duration
	password       PasswordPolicy
	keyValidity    time.Duration
	deviceValidity time.Duration
	requireDevKey  bool
	isolation      bool
	wildcards      bool
	pageSize       int
	maxPageSize    int

	authLimit   int // per PSK and client; 0: off
	authCeiling int // per PSK
	authWindow  time.Duration
	authLocks   lockout.Locks // locks seen in the store: (keyid, client) → until
	heavy       chan struct{} // a slot per expensive operation running
	heavyWait   time.Duration
	blocks      map[driver.Sequence]*numberBlock
	poolSize    int
	poolMu      sync.Mutex
	pools       map[CertKeyType]*keyPool
	blockSize   int
	replay      time.Duration

	warnings  []time.Duration // widest first
	retention time.Duration   // ≤ 0: off
	sweepMu   sync.Mutex
	sweptAt   time.Time // of this engine's last sweep
	// noticed are the notices this engine has seen recorded (by it or by
	// another), by credential and kind, with the credential's end: a sweep
	// does not ask the store again for them.
	noticed map[noticeKey]time.Time

	policies      map[PolicyScope]*Policy
	defaultPolicy Policy
	urls          func(string) IssuerURLs
	ocspValidity  time.Duration
	ocsps         map[string]*ocspCache

	cas          map[string]CA
	caEncodings  map[caEncodingKey]*EncodedCertificate // each CA in PEM and DER, made by New
	caList       []CA
	certKeyType  CertKeyType
	certValidity time.Duration
	crlValidity  time.Duration
	legacyP12    bool
	crls         map[string]*crlCache
	caCheck      caCheck
}

var _ Manager = (*Engine)(nil)

// New returns an Engine over store. opts.Keys is required.
func New(store driver.Store, opts *Options) (*Engine, error) {
	if store == nil {
		return nil, errf("New", CodeConfigInvalid, "", errors.New("nil driver.Store"))
	}
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.Keys == nil {
		return nil, errf("New", CodeConfigInvalid, "", errors.New("Options.Keys is required: every secret is sealed under it"))
	}
	e := &Engine{
		store:          store,
		now:            o.Now,
		rand:           o.Rand,
		log:            o.Logger,
		pskValidity:    o.PSKValidity,
		password:       o.Password,
		keyValidity:    o.KeyValidity,
		deviceValidity: o.DeviceValidity,
		requireDevKey:  o.RequireDeviceKey,
		isolation:      o.DeviceIsolation,
		wildcards:      o.AllowWildcards,
		pageSize:       o.PageSize,
		maxPageSize:    o.MaxPageSize,
	}
	if e.now == nil {
		e.now = time.Now
	}
	if e.rand == nil {
		e.rand = rand.Reader
	}
	e.auditor = o.Auditor
	if e.auditor == nil && e.log != nil {
		e.auditor = NewSlogAuditor(e.log)
	}
	if e.log == nil {
		e.log = slog.New(slog.DiscardHandler)
	}
	if e.pskValidity == 0 {
		e.pskValidity = 10 * 365 * 24 * time.Hour
	}
	if e.keyValidity == 0 {
		e.keyValidity = 10 * 365 * 24 * time.Hour
	}
	if e.pskValidity < 0 || e.deviceValidity < 0 || e.keyValidity < 0 {
		return nil, errf("New", CodeConfigInvalid, "", errors.New("negative validity"))
	}
	if e.password == (PasswordPolicy{}) {
		e.password = DefaultPasswordPolicy
	}
	if err := e.password.validate(); err != nil {
		return nil, errf("New", CodeConfigInvalid, "", err)
	}
	if e.maxPageSize == 0 {
		e.maxPageSize = 1000
	}
	if e.pageSize == 0 {
		e.pageSize = min(100, e.maxPageSize)
	}
	if e.pageSize < 0 || e.maxPageSize < 0 || e.pageSize > e.maxPageSize {
		return nil, errf("New", CodeConfigInvalid, "", errors.New("page sizes must satisfy 0 < PageSize ≤ MaxPageSize"))
	}
	e.authWindow = cmp.Or(o.AuthWindow, 5*time.Minute)
	e.authLimit = max(cmp.Or(o.AuthFailures, 10), 0)
	e.authCeiling = cmp.Or(o.AuthFailuresPerPSK, 100)
	if e.authWindow < 0 || e.authCeiling < 0 {
		return nil, errf("New", CodeConfigInvalid, "", errors.New("negative AuthWindow or AuthFailuresPerPSK"))
	}
	e.blockSize = o.NumberBlock
	if e.blockSize == 0 {
		e.blockSize = 16
	}
	if e.blockSize < 0 {
		return nil, errf("New", CodeConfigInvalid, "", errors.New("negative NumberBlock"))
	}
	e.blocks = map[driver.Sequence]*numberBlock{driver.SeqKeyID: {}, driver.SeqKeyNumber: {}}
	e.replay = o.ReplayWindow
	if e.replay == 0 {
		e.replay = 2 * time.Minute
	}
	e.certKeyType, e.certValidity, e.crlValidity, e.legacyP12 = o.CertKeyType, o.CertValidity, o.CRLValidity, o.LegacyPKCS12
	if e.certKeyType == "" {
		e.certKeyType = KeyECP256
	}
	if !e.certKeyType.Valid() {
		return nil, errf("New", CodeConfigInvalid, "", fmt.Errorf("unknown certificate key type %q", e.certKeyType))
	}
	if e.certValidity == 0 {
		e.certValidity = 365 * 24 * time.Hour
	}
	if e.crlValidity == 0 {
		e.crlValidity = 24 * time.Hour
	}
	if e.certValidity < 0 || e.crlValidity < 0 {
		return nil, errf("New", CodeConfigInvalid, "", errors.New("negative validity"))
	}
	e.defaultPolicy = Policy{AllowWildcards: o.AllowWildcards}
	e.policies = make(map[PolicyScope]*Policy, len(o.Policies))
	for scope, p := range o.Policies {
		if p == nil {
			return nil, errf("New", CodeConfigInvalid, "", fmt.Errorf("the policy of %+v is nil", scope))
		}
		if err := p.Validate(); err != nil {
			return nil, errf("New", CodeConfigInvalid, "", fmt.Errorf("the policy of %+v: %w", scope, err))
		}
		e.policies[scope] = p
	}
	e.urls = o.URLs
	var err error
	if e.warnings, err = expiryWarnings(o.ExpiryWarnings); err != nil {
		return nil, errf("New", CodeConfigInvalid, "", err)
	}
	e.retention = cmp.Or(o.Retention, 90*24*time.Hour)
	e.ocspValidity = cmp.Or(o.OCSPValidity, time.Hour)
	if e.ocspValidity < 0 {
		return nil, errf("New", CodeConfigInvalid, "", errors.New("negative OCSPValidity"))
	}
	e.ocsps = make(map[string]*ocspCache, len(o.CAs))
	e.cas = make(map[string]CA, len(o.CAs))
	e.caEncodings = make(map[caEncodingKey]*EncodedCertificate, 2*len(o.CAs))
	e.crls = make(map[string]*crlCache, len(o.CAs))
	for _, ca := range o.CAs {
		name := ca.Name()
		if name == "" || name == CANameCA || e.cas[name] != nil {
			return nil, errf("New", CodeConfigInvalid, "", fmt.Errorf("CA name %q is empty, reserved or repeated", name))
		}
		e.cas[name] = ca
		for _, f := range []CertFormat{FormatPEM, FormatDER} {
			e.caEncodings[caEncodingKey{name, f}] = encodeCA(ca, f)
		}
		e.crls[name] = &crlCache{}
		e.ocsps[name] = newOCSPCache()
		e.caList = append(e.caList, ca)
	}
	if o.ExpensiveConcurrency < 0 || o.ExpensiveWait < 0 {
		return nil, errf("New", CodeConfigInvalid, "", errors.New("negative ExpensiveConcurrency or ExpensiveWait"))
	}
	e.heavy = make(chan struct{}, cmp.Or(o.ExpensiveConcurrency, max(1, runtime.GOMAXPROCS(0)/2)))
	e.heavyWait = cmp.Or(o.ExpensiveWait, 30*time.Second)
	e.poolSize = o.RSAKeyPool
	e.pools = map[CertKeyType]*keyPool{}
	e.sealer = NewSealer(o.Keys, e.rand)
	return e, nil
}

func (p PasswordPolicy) validate() error {
	seen := map[rune]bool{}
	for _, r := range p.Alphabet {
		if r < 0x21 || r > 0x7e {
			return errors.New("password alphabet must be printable ASCII without space")
		}
		if seen[r] {
			return errors.New("password alphabet has a repeated character")
		}
		seen[r] = true
	}
	if p.Entropy() < MinPasswordEntropy {
		return fmt.Errorf("password policy gives %.0f bits of entropy, want at least %d", p.Entropy(), MinPasswordEntropy)
	}
	return nil
}

// Close stops the engine's background work (the RSA key pools) and drops
// the keys they hold. The engine answers requests after Close, generating
// keys on the request's path. Close does not close the driver.Store.
func (e *Engine) Close() error {
	e.poolMu.Lock()
	defer e.poolMu.Unlock()
	for _, p := range e.pools {
		p.shutdown()
	}
	e.poolSize = 0
	return nil
}

// PooledKeys returns how many pre-generated keys of type kt are ready.
func (e *Engine) PooledKeys(kt CertKeyType) int {
	e.poolMu.Lock()
	defer e.poolMu.Unlock()
	if p := e.pools[kt]; p != nil {
		return p.ready()
	}
	return 0
}

// certKey returns a new private key of type kt: from its pool when the
// engine keeps one (starting the pool on first use), else generated now.
func (e *Engine) certKey(kt CertKeyType) (crypto.Signer, error) {
	if !kt.isRSA() {
		return GenerateCertKey(kt)
	}
	e.poolMu.Lock()
	p := e.pools[kt]
	if p == nil && e.poolSize > 0 {
		p = newKeyPool(kt, e.poolSize)
		e.pools[kt] = p
	}
	e.poolMu.Unlock()
	if p == nil {
		return GenerateCertKey(kt)
	}
	return p.take()
}

// expensive takes one of the ExpensiveConcurrency slots for a request that
// will do expensive work (an RSA key, a passphrase's PBKDF2, a PKCS#12
// file), when need is true: it waits for one up to ExpensiveWait
// (CodeLockTimeout) or the end of ctx. The request calls release when it is
// done; it takes its slot before it changes anything, so that a request
// that waited too long has changed nothing.
func (e *Engine) expensive(ctx context.Context, op string, need bool) (release func(), err error) {
	if !need {
		return func() {}, nil
	}
	select {
	case e.heavy <- struct{}{}:
	default:
		t := time.NewTimer(e.heavyWait)
		defer t.Stop()
		select {
		case e.heavy <- struct{}{}:
		case <-t.C:
			return nil, errf(op, CodeLockTimeout, "", errors.New("too many expensive operations waiting"))
		case <-ctx.Done():
			return nil, errf(op, CodeSystem, "", ctx.Err())
		}
	}
	return func() { <-e.heavy }, nil
}

// Sealer returns the engine's sealer, for components that keep secrets of
// their own in the store (a CA's private key).
func (e *Engine) Sealer() *Sealer { return e.sealer }

// Status implements Manager: it checks that the store answers
// (CodeDBConnection otherwise) and that every CA signs (CodeCryptoFailed
// otherwise), by signing an empty CRL that is not kept; that proof is
// reused for 10 seconds, so that health checks cost no signature each.
func (e *Engine) Status(ctx context.Context) error {
	if err := e.store.Ping(ctx); err != nil {
		return e.storeErr("Status", entityNone, err)
	}
	return e.checkCAs(ctx)
}

// randomString draws n characters uniformly from alphabet (len ≤ 256) by
// rejection sampling.
func (e *Engine) randomString(n int, alphabet string) (string, error) {
	out := make([]byte, 0, n)
	limit := 256 - 256%len(alphabet)
	buf := make([]byte, n+n/2+8)
	for len(out) < n {
		if _, err := io.ReadFull(e.rand, buf); err != nil {
			return "", err
		}
		for _, b := range buf {
			if int(b) < limit {
				out = append(out, alphabet[int(b)%len(alphabet)])
				if len(out) == n {
					break
				}
			}
		}
	}
	return string(out), nil
}

// entity names what a store call was about, so that its sentinel errors map
// onto the right codes.
type entity int

const (
	entityNone entity = iota
	entityPSK
	entityDevice
	entityCertificate
	entityKey
)

// storeCodes is the one table from the driver.Store's sentinel errors to CLM codes.
var storeCodes = map[entity]struct{ notFound, exists, conflict Code }{
	entityNone:        {CodeDBData, CodeDBData, CodeDBData},
	entityPSK:         {CodePSKNotFound, CodeDBData, CodeDBData},
	entityDevice:      {CodeDeviceNotFound, CodeDeviceNameExists, CodeDBData},
	entityCertificate: {CodeCertNotFound, CodeDBData, CodeCertRevoked},
	entityKey:         {CodeKeyNotFound, CodeDBData, CodeKeyUpdated},
}

// storeErr maps an error from the driver.Store onto a CLM *Error. An *Error made
// by the engine inside Atomic passes through unchanged.
func (e *Engine) storeErr(op string, what entity, err error) error {
	var ce *Error
	if errors.As(err, &ce) {
		return err
	}
	codes := storeCodes[what]
	code := CodeDBAccess
	switch {
	case errors.Is(err, driver.ErrNotFound):
		code = codes.notFound
	case errors.Is(err, driver.ErrExists):
		code = codes.exists
	case errors.Is(err, driver.ErrConflict):
		code = codes.conflict
	case errors.Is(err, driver.ErrUnavailable):
		code = CodeDBConnection
	case errors.Is(err, driver.ErrLockTimeout):
		code = CodeLockTimeout
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		code = CodeSystem
	}
	if code == CodeDBAccess || code == CodeDBConnection || code == CodeDBData {
		e.log.Warn("store error", "op", op, "code", int(code), "err", err.Error())
	}
	return errf(op, code, "", err)
}
