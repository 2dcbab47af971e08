package lifecycle

import (
	"context"
	"crypto/x509"
	"errors"
	"strconv"
	"time"

	"github.com/credlife/clm/lifecycle/driver"
)

// CredentialKind, CredentialState: what a credential is and where it is
// in its lifecycle, as the inventory reports them.
type (
	CredentialKind  = driver.CredentialKind
	CredentialState = driver.CredentialState
)

// Kinds and states of credentials.
const (
	KindCertificate  = driver.KindCertificate
	KindSymmetricKey = driver.KindSymmetricKey

	StateValid      = driver.StateValid
	StateRevoked    = driver.StateRevoked
	StateSuperseded = driver.StateSuperseded
	StateDeleted    = driver.StateDeleted
)

// CredentialInfo is what the inventory tells of a credential: never a
// private key or a key's value.
type CredentialInfo struct {
	KeyNumber int64
	Tenant    string
	Kind      CredentialKind
	State     CredentialState
	CA        string // the issuing CA of a certificate
	Serial    string // a certificate's serial, uppercase hex
	Subject   string // a certificate's subject, /C=../CN=..
	Alias     string // a symmetric key's alias
	KeyType   string
	KeyLength int
	// Certificate is a certificate's DER (public); nil for a key.
	Certificate []byte
	// DeviceKey tells that a certificate was issued for a CSR: the device
	// made its key, the server never had it.
	DeviceKey      bool
	NotBefore      time.Time
	NotAfter       time.Time
	CreatedAt      time.Time
	StateChangedAt time.Time // zero while valid
	Reason         int       // the RFC 5280 reason of a revocation
	ReplacedBy     int64     // the successor of a superseded credential
}

func credentialInfo(r *driver.CredentialRecord) *CredentialInfo {
	return &CredentialInfo{
		KeyNumber: r.KeyNumber, Tenant: r.Tenant, Kind: r.Kind, State: r.State, CA: r.CA, Serial: r.Serial,
		Subject: r.Subject, Alias: r.Alias, KeyType: r.KeyType, KeyLength: r.KeyLength, Certificate: r.Certificate,
		DeviceKey: r.Kind == driver.KindCertificate && len(r.Secret) == 0,
		NotBefore: r.NotBefore, NotAfter: r.NotAfter, CreatedAt: r.CreatedAt,
		StateChangedAt: r.StateChangedAt, Reason: r.Reason, ReplacedBy: r.ReplacedBy,
	}
}

// ListCredentialsRequest selects a page of a tenant's credentials, in
// keynumber order (stable: a credential's keynumber never changes).
type ListCredentialsRequest struct {
	Tenant   string            // required
	DeviceID string            // only credentials bound to this device; "" for any
	Kind     CredentialKind    // KindCertificate or KindSymmetricKey; 0 for both
	States   []CredentialState // nil for any
	CA       string            // only certificates of this CA; "" for any
	// ExpiringBefore selects credentials whose NotAfter is before it;
	// ExpiringAfter those whose NotAfter is at or after it. Zero for any.
	ExpiringBefore time.Time
	ExpiringAfter  time.Time
	After          string // exclusive cursor: the Next of the previous page; "" from the start
	Limit          int    // 0 for the engine's default page size
}

// CredentialPage is a page of credentials; Next is "" on the last page.
type CredentialPage struct {
	Credentials []*CredentialInfo
	Next        string
}

// ListCredentials implements Manager: the inventory of a tenant's
// certificates and keys (CA certificates are not a tenant's).
func (e *Engine) ListCredentials(ctx context.Context, req ListCredentialsRequest) (*CredentialPage, error) {
	const op = "ListCredentials"
	if req.Tenant == "" {
		return nil, fieldErr(op, CodeMissing, "tenantid", "required")
	}
	limit, err := e.limit(op, req.Limit)
	if err != nil {
		return nil, err
	}
	var after int64
	if req.After != "" {
		if after, err = strconv.ParseInt(req.After, 10, 64); err != nil || after < 0 {
			return nil, fieldErr(op, CodeMalformed, "after", "the Next of a previous page")
		}
	}
	switch req.Kind {
	case 0, driver.KindCertificate, driver.KindSymmetricKey:
	default:
		return nil, fieldErr(op, CodeMalformed, "kind", "certificate or symmetric key")
	}
	for _, s := range req.States {
		if s < driver.StateValid || s > driver.StateDeleted {
			return nil, fieldErr(op, CodeMalformed, "states", "valid, revoked, superseded or deleted")
		}
	}
	q := driver.CredentialQuery{Tenant: req.Tenant, DeviceID: req.DeviceID, Kind: req.Kind, States: req.States, CA: req.CA,
		ExpiresBefore: req.ExpiringBefore, ExpiresAfter: req.ExpiringAfter, After: after, Limit: limit + 1}
	page := &CredentialPage{Credentials: []*CredentialInfo{}}
	for {
		rs, err := e.store.ListCredentials(ctx, q)
		if err != nil {
			return nil, e.storeErr(op, entityNone, err)
		}
		for _, r := range rs {
			if r.Kind == driver.KindCACertificate {
				continue // a CA's own certificate is no tenant's
			}
			if len(page.Credentials) == limit {
				page.Next = strconv.FormatInt(page.Credentials[limit-1].KeyNumber, 10)
				return page, nil
			}
			page.Credentials = append(page.Credentials, credentialInfo(r))
		}
		if len(rs) < q.Limit {
			return page, nil
		}
		q.After = rs[len(rs)-1].KeyNumber
	}
}

// GetCredentialRequest names one credential of a tenant: by keynumber, or
// a certificate by its CA and serial.
type GetCredentialRequest struct {
	Tenant string // required
	CA     string // with Ref.Serial: the issuing CA; "" for the default
	Ref    CertificateRef
}

// GetCredential implements Manager: CodeCertNotFound when the tenant has
// no such credential.
func (e *Engine) GetCredential(ctx context.Context, req GetCredentialRequest) (*CredentialInfo, error) {
	const op = "GetCredential"
	r, err := e.adminLookup(ctx, e.store, op, req.Tenant, req.CA, req.Ref)
	if err != nil {
		return nil, err
	}
	return credentialInfo(r), nil
}

// adminLookup finds a tenant's credential by keynumber or (CA, serial).
func (e *Engine) adminLookup(ctx context.Context, tx driver.Tx, op, tenant, caName string, ref CertificateRef) (*driver.CredentialRecord, error) {
	c := newCheck(op)
	c.require("tenantid", tenant != "")
	ref = c.ref("", ref, true)
	if err := c.err(); err != nil {
		return nil, err
	}
	r, err := credentialByRef(ctx, tx, e.caName(caName), ref)
	switch {
	case err != nil:
		return nil, e.storeErr(op, entityNone, err)
	case r == nil:
		return nil, errf(op, CodeCertNotFound, "keynumber", nil)
	case r.Tenant != tenant || r.Kind == driver.KindCACertificate || (ref.Serial != "" && r.Serial != ref.Serial):
		return nil, errf(op, CodeCertNotFound, "keynumber", nil)
	}
	return r, nil
}

// RevokeCredentialRequest revokes a tenant's certificate as an
// administrator, whatever device holds it.
type RevokeCredentialRequest struct {
	Tenant string // required
	CA     string // with Ref.Serial: the issuing CA; "" for the default
	Ref    CertificateRef
	Reason int // RFC 5280 CRLReason: 1 keyCompromise, 4 superseded, 5 cessationOfOperation, ...
}

// RevokeCredential implements Manager: CodeCertNotFound when the tenant has
// no such certificate (a symmetric key is not revoked: DecommissionDevice
// deletes keys), CodeCertRevoked when it is revoked or superseded already.
// The revocation is on the CA's CRL and in OCSP at once.
func (e *Engine) RevokeCredential(ctx context.Context, req RevokeCredentialRequest) (res *CredentialInfo, err error) {
	const op = "RevokeCredential"
	defer func() {
		ev := AuditEvent{Op: op, Tenant: req.Tenant, KeyNumber: req.Ref.KeyNumber, Serial: req.Ref.Serial}
		if res != nil {
			ev.KeyNumber, ev.Serial = res.KeyNumber, res.Serial
		}
		e.audit(ctx, ev, err)
	}()
	if !validReason(req.Reason) {
		return nil, fieldErr(op, CodeMalformed, "reason", "an RFC 5280 reason code: 0 to 10 but 7")
	}
	var rec *driver.CredentialRecord
	err = e.store.Atomic(ctx, func(tx driver.Tx) error {
		var err error
		if rec, err = e.adminLookup(ctx, tx, op, req.Tenant, req.CA, req.Ref); err != nil {
			return err
		}
		if rec.Kind != driver.KindCertificate {
			return errf(op, CodeCertNotFound, "keynumber", errors.New("not a certificate"))
		}
		if rec.State != driver.StateValid {
			return errf(op, CodeCertRevoked, "keynumber", nil)
		}
		at := e.now().UTC()
		if err := tx.TransitionCredential(ctx, driver.Transition{KeyNumber: rec.KeyNumber, From: driver.StateValid, To: driver.StateRevoked, At: at, Reason: req.Reason}); err != nil {
			return err
		}
		rec.State, rec.StateChangedAt, rec.Reason = driver.StateRevoked, at, req.Reason
		return nil
	})
	if errors.Is(err, driver.ErrConflict) {
		err = errf(op, CodeCertRevoked, "keynumber", err) // a concurrent change won
	}
	if err != nil {
		return nil, e.storeErr(op, entityNone, err)
	}
	return credentialInfo(rec), nil
}

// DecommissionRequest takes a device out of service.
type DecommissionRequest struct {
	Tenant   string // required
	DeviceID string // required
	// Reason is the RFC 5280 reason of the revocations; 0 (unspecified)
	// means cessationOfOperation (5). keyCompromise (1) for a stolen device.
	Reason int
}

// DecommissionResult says what a decommissioning changed.
type DecommissionResult struct {
	Device      *Device
	Revoked     []int64 // keynumbers of the certificates revoked
	KeysDeleted []int64 // keynumbers of the symmetric keys deleted
	// Disabled is false when the device was disabled already.
	Disabled bool
}

// ReasonCessationOfOperation is the RFC 5280 reason of a decommissioning.
const ReasonCessationOfOperation = 5

// DecommissionDevice implements Manager: in one transaction, every valid
// certificate bound to the device is revoked (on the CRL and in OCSP at
// once), every symmetric key bound to it that is not deleted is deleted
// (its value erased), and the device is disabled, so that its requests are
// refused (CodeDeviceNotActive). A second call finds nothing to change and
// changes nothing. CodeDeviceNotFound when the tenant has no such device.
func (e *Engine) DecommissionDevice(ctx context.Context, req DecommissionRequest) (res *DecommissionResult, err error) {
	const op = "DecommissionDevice"
	defer func() {
		ev := AuditEvent{Op: op, Tenant: req.Tenant, DeviceID: req.DeviceID}
		e.audit(ctx, ev, err)
	}()
	c := newCheck(op)
	c.require("tenantid", req.Tenant != "")
	c.require("deviceid", req.DeviceID != "")
	c.format("reason", validReason(req.Reason), "an RFC 5280 reason code: 0 to 10 but 7")
	if err := c.err(); err != nil {
		return nil, err
	}
	reason := req.Reason
	if reason == 0 {
		reason = ReasonCessationOfOperation
	}
	err = e.store.Atomic(ctx, func(tx driver.Tx) error {
		res = &DecommissionResult{}
		d, err := tx.GetDevice(ctx, req.Tenant, req.DeviceID)
		if err != nil {
			return e.storeErr(op, entityDevice, err)
		}
		now := e.now().UTC()
		q := driver.CredentialQuery{Tenant: req.Tenant, DeviceID: req.DeviceID, Limit: 500,
			States: []driver.CredentialState{driver.StateValid, driver.StateSuperseded}}
		for {
			page, err := tx.ListCredentials(ctx, q)
			if err != nil {
				return err
			}
			for _, r := range page {
				switch {
				case r.Kind == driver.KindCertificate && r.State == driver.StateValid:
					err = tx.TransitionCredential(ctx, driver.Transition{KeyNumber: r.KeyNumber, From: driver.StateValid, To: driver.StateRevoked, At: now, Reason: reason})
					res.Revoked = append(res.Revoked, r.KeyNumber)
				case r.Kind == driver.KindSymmetricKey:
					if err = tx.TransitionCredential(ctx, driver.Transition{KeyNumber: r.KeyNumber, From: r.State, To: driver.StateDeleted, At: now}); err == nil {
						err = tx.ReplaceSealed(ctx, driver.SealedOf(r), nil)
					}
					res.KeysDeleted = append(res.KeysDeleted, r.KeyNumber)
				}
				if err != nil {
					return err
				}
			}
			if len(page) < q.Limit {
				break
			}
			q.After = page[len(page)-1].KeyNumber
		}
		if d.Status != driver.DeviceDisabled {
			d.Status, d.UpdatedAt = driver.DeviceDisabled, now
			if err := tx.UpdateDevice(ctx, d); err != nil {
				return err
			}
			res.Disabled = true
		}
		res.Device = deviceOf(d)
		return nil
	})
	if err != nil {
		return nil, e.storeErr(op, entityDevice, err)
	}
	return res, nil
}

// CAInfo describes a CA of the engine.
type CAInfo struct {
	Name  string
	Chain []*x509.Certificate // its certificate first, up to the root
}

// ListCAs implements Manager: the engine's CAs, the default first.
func (e *Engine) ListCAs(ctx context.Context) ([]CAInfo, error) {
	out := make([]CAInfo, len(e.caList))
	for i, ca := range e.caList {
		out[i] = CAInfo{Name: ca.Name(), Chain: append([]*x509.Certificate(nil), ca.Chain()...)}
	}
	return out, nil
}
