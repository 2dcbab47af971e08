package lifecycle

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"strconv"
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
func pskSealed(r *PSKRecord) SealedValue {
	return SealedValue{Kind: SealedPSKPassword, ID: r.KeyID, Tenant: r.Tenant, Value: r.Password}
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
	id, err := e.nextNumber(ctx, SeqKeyID)
	if err != nil {
		return nil, e.storeErr(op, entityNone, err)
	}
	if id > MaxKeyID {
		return nil, errf(op, CodeKeyIDExhausted, "", errors.New("keyid sequence past 9999999999"))
	}
	sealed, err := e.sealer.SealFor(ctx, SealedValue{Kind: SealedPSKPassword, ID: id, Tenant: req.Tenant}, []byte(password))
	if err != nil {
		return nil, err
	}
	now := e.now().UTC()
	r := &PSKRecord{
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

func pskOf(r *PSKRecord, password Secret) *PSK {
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

func (e *Engine) openPSK(ctx context.Context, op string, r *PSKRecord) (*PSK, error) {
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
	rs, err := e.store.ListPSKs(ctx, PSKQuery{Tenant: req.Tenant, After: after, Limit: limit + 1})
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

// authenticate checks PSK credentials whose form checkPSKFields accepted:
// 1202 locked after too many wrong passwords (before the store is read),
// 1204 absent, 1201 wrong password (compared in constant time), 1202
// disabled, 1203 expired. The password is checked before the state, so the
// state of a PSK is told only to who knows its password.
func (e *Engine) authenticate(ctx context.Context, op string, c PSKCredentials) (*PSKRecord, error) {
	id, _ := ParseKeyID(c.KeyID)
	if e.pskLimit.Locked(id, e.now()) {
		return nil, errf(op, CodePSKNotActive, "keyid", errors.New("locked after repeated failed authentications"))
	}
	r, err := e.store.GetPSK(ctx, id)
	if err != nil {
		return nil, e.storeErr(op, entityPSK, err)
	}
	pw, err := e.sealer.OpenSealed(ctx, pskSealed(r))
	if err != nil {
		return nil, errf(op, CodeDecrypt, "", err)
	}
	match := subtle.ConstantTimeCompare(pw, []byte(c.Password)) == 1
	clear(pw)
	if !match {
		e.pskLimit.Fail(id, e.now())
		return nil, errf(op, CodePasswordMismatch, "key", nil)
	}
	e.pskLimit.Succeed(id)
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
