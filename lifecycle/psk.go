package lifecycle

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"time"

	"github.com/credlife/clm/lifecycle/driver"
)

// MaxKeyID is the largest keyid; past it IssuePSK answers CodeKeyIDExhausted.
const MaxKeyID = 9999999999

// Limits of the PSK request fields, in bytes.
const (
	MaxTenantLen   = 128
	MaxPSKAliasLen = 256
)

// FormatKeyID returns the canonical text of a keyid: 10 digits, zero-padded.
func FormatKeyID(id int64) string { return fmt.Sprintf("%010d", id) }

// ParseKeyID parses a keyid of 1 to 10 decimal digits, with or without
// zero padding, to its number (≥ 1).
func ParseKeyID(s string) (int64, error) {
	if len(s) == 0 || len(s) > 10 {
		return 0, errors.New("keyid must be 1 to 10 decimal digits")
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, errors.New("keyid must be 1 to 10 decimal digits")
		}
	}
	n, _ := strconv.ParseInt(s, 10, 64)
	if n < 1 {
		return 0, errors.New("keyid 0 does not exist")
	}
	return n, nil
}

// pskSealed names the sealed password of a PSK.
func pskSealed(r *driver.PSKRecord) driver.SealedValue {
	return driver.SealedValue{Kind: driver.SealedPSKPassword, ID: r.KeyID, Tenant: r.Tenant, Value: r.Password}
}

// IssuePSK implements Manager.
func (e *Engine) IssuePSK(ctx context.Context, req IssuePSKRequest) (res *PSK, err error) {
	const op = "IssuePSK"
	defer func() {
		ev := AuditEvent{Op: op, Tenant: req.Tenant}
		if res != nil {
			ev.KeyID = res.KeyID
		}
		e.audit(ctx, ev, err)
	}()
	c := newCheck(op)
	c.require("tenantid", req.Tenant != "")
	c.require("alias", req.Alias != "")
	c.text("tenantid", req.Tenant, MaxTenantLen)
	c.identifier("tenantid", req.Tenant)
	c.text("alias", req.Alias, MaxPSKAliasLen)
	if err := c.err(); err != nil {
		return nil, err
	}
	password, err := e.randomString(e.password.Length, e.password.Alphabet)
	if err != nil {
		return nil, errf(op, CodeSystem, "", err)
	}
	id, err := e.nextNumber(ctx, driver.SeqKeyID)
	if err != nil {
		return nil, e.storeErr(op, entityNone, err)
	}
	if id > MaxKeyID {
		return nil, errf(op, CodeKeyIDExhausted, "", errors.New("keyid sequence past 9999999999"))
	}
	sealed, err := e.sealer.SealFor(ctx, driver.SealedValue{Kind: driver.SealedPSKPassword, ID: id, Tenant: req.Tenant}, []byte(password))
	if err != nil {
		return nil, err
	}
	now := e.now().UTC()
	r := &driver.PSKRecord{
		KeyID:     id,
		Tenant:    req.Tenant,
		Alias:     req.Alias,
		Password:  sealed,
		Status:    PSKActive,
		CreatedAt: now,
		ExpiresAt: now.Add(e.pskValidity),
	}
	if err := e.store.CreatePSK(ctx, r); err != nil {
		return nil, e.storeErr(op, entityPSK, err)
	}
	return pskOf(r, Secret(password)), nil
}

func pskOf(r *driver.PSKRecord, password Secret) *PSK {
	return &PSK{
		KeyID:     FormatKeyID(r.KeyID),
		Tenant:    r.Tenant,
		Alias:     r.Alias,
		Password:  password,
		Status:    r.Status,
		CreatedAt: r.CreatedAt,
		ExpiresAt: r.ExpiresAt,
	}
}

// GetPSK implements Manager.
func (e *Engine) GetPSK(ctx context.Context, keyID string) (*PSK, error) {
	const op = "GetPSK"
	id, err := ParseKeyID(keyID)
	if err != nil {
		return nil, fieldErr(op, CodeMalformed, "keyid", err.Error())
	}
	r, err := e.store.GetPSK(ctx, id)
	if err != nil {
		return nil, e.storeErr(op, entityPSK, err)
	}
	return e.openPSK(ctx, op, r)
}

func (e *Engine) openPSK(ctx context.Context, op string, r *driver.PSKRecord) (*PSK, error) {
	pw, err := e.sealer.OpenSealed(ctx, pskSealed(r))
	if err != nil {
		return nil, errf(op, CodeDecrypt, "", err)
	}
	return pskOf(r, Secret(pw)), nil
}

// ListPSKs implements Manager.
func (e *Engine) ListPSKs(ctx context.Context, req ListPSKsRequest) (*PSKPage, error) {
	const op = "ListPSKs"
	limit, err := e.limit(op, req.Limit)
	if err != nil {
		return nil, err
	}
	var after int64
	if req.After != "" {
		if after, err = ParseKeyID(req.After); err != nil {
			return nil, fieldErr(op, CodeMalformed, "after", err.Error())
		}
	}
	if len(req.Tenant) > MaxTenantLen {
		return nil, fieldErr(op, CodeOutOfRange, "tenantid", "longer than 128 bytes")
	}
	rs, err := e.store.ListPSKs(ctx, driver.PSKQuery{Tenant: req.Tenant, After: after, Limit: limit + 1})
	if err != nil {
		return nil, e.storeErr(op, entityNone, err)
	}
	page := &PSKPage{PSKs: make([]*PSK, 0, min(len(rs), limit))}
	for i, r := range rs {
		if i == limit {
			page.Next = page.PSKs[limit-1].KeyID
			break
		}
		p, err := e.openPSK(ctx, op, r)
		if err != nil {
			return nil, err
		}
		page.PSKs = append(page.PSKs, p)
	}
	return page, nil
}

func (e *Engine) limit(op string, n int) (int, error) {
	switch {
	case n == 0:
		return e.pageSize, nil
	case n < 0 || n > e.maxPageSize:
		return 0, fieldErr(op, CodeOutOfRange, "limit", fmt.Sprintf("must be 1 to %d", e.maxPageSize))
	}
	return n, nil
}

// AuthenticatePSK implements Manager.
func (e *Engine) AuthenticatePSK(ctx context.Context, c PSKCredentials) (res *Caller, err error) {
	const op = "AuthenticatePSK"
	defer func() {
		if err != nil { // a failed authentication; successes are not state changes
			e.audit(ctx, AuditEvent{Op: op, KeyID: c.KeyID}, err)
		}
	}()
	if err := checkPSKFields(op, c); err != nil {
		return nil, err
	}
	r, err := e.authenticate(ctx, op, c)
	if err != nil {
		return nil, err
	}
	return &Caller{KeyID: FormatKeyID(r.KeyID), Tenant: r.Tenant}, nil
}

// checkPSKFields checks the keyid and key of a request that has no other
// fields.
func checkPSKFields(op string, p PSKCredentials) error {
	c := newCheck(op)
	c.psk(p)
	return c.err()
}

// authLock is a (keyid, client) pair of the brute-force limits; client ""
// is the PSK as a whole.
type authLock struct {
	keyID  int64
	client string
}

// errLocked answers a request of a locked pair.
func errLocked(op string) error {
	return errf(op, CodePSKNotActive, "keyid", errors.New("locked after repeated failed authentications"))
}

// authenticate checks PSK credentials whose form checkPSKFields accepted:
// 1202 locked after too many wrong passwords (from this client, or from
// all), 1204 absent, 1201 wrong password (compared in constant time), 1202
// disabled, 1203 expired. The password is checked before the state, so the
// state of a PSK is told only to who knows its password.
func (e *Engine) authenticate(ctx context.Context, op string, c PSKCredentials) (*driver.PSKRecord, error) {
	id, _ := ParseKeyID(c.KeyID)
	now := e.now().UTC()
	if e.authLimit > 0 && e.authLocks.Any() &&
		(e.authLocks.Locked(authLock{id, clientOf(ctx)}, now) || e.authLocks.Locked(authLock{id, ""}, now)) {
		return nil, errLocked(op)
	}
	r, err := e.store.GetPSK(ctx, id)
	if err != nil {
		return nil, e.storeErr(op, entityPSK, err)
	}
	var (
		failed bool   // this client has failures on record
		client string // made only when failures matter
	)
	if e.authLimit > 0 && now.Before(r.FailuresUntil) {
		client = clientOf(ctx)
		fs, err := e.store.GetAuthFailures(ctx, id, "", client)
		if err != nil {
			return nil, e.storeErr(op, entityNone, err)
		}
		for _, f := range fs {
			if now.Before(f.LockedUntil) {
				e.authLocks.Lock(authLock{id, f.Client}, f.LockedUntil, now)
				return nil, errLocked(op)
			}
			failed = failed || f.Client == client && f.Count > 0
		}
	}
	pw, err := e.sealer.OpenSealed(ctx, pskSealed(r))
	if err != nil {
		return nil, errf(op, CodeDecrypt, "", err)
	}
	match := subtle.ConstantTimeCompare(pw, []byte(c.Password)) == 1
	clear(pw)
	if !match {
		if client == "" {
			client = clientOf(ctx)
		}
		e.countFailure(ctx, id, client, now)
		return nil, errf(op, CodePasswordMismatch, "key", nil)
	}
	if failed {
		if err := e.store.ClearAuthFailures(ctx, id, client); err != nil {
			e.log.Warn("clearing failed authentications", "op", op, "err", err.Error())
		}
	}
	if r.Status != PSKActive {
		return nil, errf(op, CodePSKNotActive, "", nil)
	}
	if !e.now().Before(r.ExpiresAt) {
		return nil, errf(op, CodePSKExpired, "", nil)
	}
	return r, nil
}

// DeletePSK implements Manager.
func (e *Engine) DeletePSK(ctx context.Context, c PSKCredentials) (err error) {
	const op = "DeletePSK"
	defer func() { e.audit(ctx, AuditEvent{Op: op, KeyID: c.KeyID}, err) }()
	if err := checkPSKFields(op, c); err != nil {
		return err
	}
	r, err := e.authenticate(ctx, op, c)
	if err != nil {
		return err
	}
	if err := e.store.DeletePSK(ctx, r.KeyID); err != nil {
		return e.storeErr(op, entityPSK, err)
	}
	return nil
}

// SetPSKStatus implements Manager.
func (e *Engine) SetPSKStatus(ctx context.Context, keyID string, s PSKStatus) (err error) {
	const op = "SetPSKStatus"
	defer func() { e.audit(ctx, AuditEvent{Op: op + "(" + s.String() + ")", KeyID: keyID}, err) }()
	id, err := ParseKeyID(keyID)
	if err != nil {
		return fieldErr(op, CodeMalformed, "keyid", err.Error())
	}
	if s != PSKActive && s != PSKDisabled {
		return fieldErr(op, CodeMalformed, "status", "unknown PSK status")
	}
	if err := e.store.SetPSKStatus(ctx, id, s); err != nil {
		return e.storeErr(op, entityPSK, err)
	}
	return nil
}

// countFailure records a wrong password for PSK id from client, in the
// store, against the pair and against the PSK as a whole, and remembers
// the locks that result. A store that cannot count is logged; the answer
// stays 1201.
func (e *Engine) countFailure(ctx context.Context, id int64, client string, now time.Time) {
	if e.authLimit <= 0 {
		return
	}
	fs, err := e.store.CountAuthFailures(ctx,
		driver.AuthFailure{KeyID: id, Client: client, At: now, Window: e.authWindow, Limit: e.authLimit},
		driver.AuthFailure{KeyID: id, Client: "", At: now, Window: e.authWindow, Limit: e.authCeiling})
	if err != nil {
		e.log.Warn("counting a failed authentication", "err", err.Error())
		return
	}
	for _, f := range fs {
		if now.Before(f.LockedUntil) {
			e.authLocks.Lock(authLock{id, f.Client}, f.LockedUntil, now)
		}
	}
}

type clientAddressKey struct{}

// WithClientAddress returns a copy of ctx that names the address of the
// client a request comes from. The engine's brute-force limits count
// failed authentications per PSK and client address (Options.AuthFailures);
// httpadapter sets it from each request's peer.
func WithClientAddress(ctx context.Context, addr netip.Addr) context.Context {
	return context.WithValue(ctx, clientAddressKey{}, addr)
}

// ClientAddress returns the client address of ctx, if it names one.
func ClientAddress(ctx context.Context) (netip.Addr, bool) {
	a, ok := ctx.Value(clientAddressKey{}).(netip.Addr)
	return a, ok && a.IsValid()
}

// clientOf is the client of the brute-force limits: an IPv4 address, the
// /64 of an IPv6 one (a host usually has a whole /64), or "?" for requests
// that name none, which then count as one client.
func clientOf(ctx context.Context) string {
	a, ok := ClientAddress(ctx)
	if !ok {
		return "?"
	}
	a = a.Unmap()
	if a.Is4() {
		return a.String()
	}
	p, _ := a.WithZone("").Prefix(64)
	return p.String()
}
