package lifecycle

import (
	"cmp"
	"context"
	"errors"
	"slices"
	"time"

	"github.com/credlife/clm/lifecycle/driver"
)

// Audit operations of the expiry sweeper and of retention.
const (
	// OpCredentialExpiring is the event of a valid credential whose end
	// is within a warning threshold (AuditEvent.Detail names it, "720h0m0s").
	OpCredentialExpiring = "CredentialExpiring"
	// OpCredentialExpired is the event of a valid credential past its end.
	OpCredentialExpired = "CredentialExpired"
	// OpCredentialPurged is the event of a credential removed by retention.
	OpCredentialPurged = "CredentialPurged"
)

// DefaultExpiryWarnings are the thresholds of expiry warnings: 30, 7 and 1
// days before a credential's end.
var DefaultExpiryWarnings = []time.Duration{30 * 24 * time.Hour, 7 * 24 * time.Hour, 24 * time.Hour}

// SweepResult says what a sweep found.
type SweepResult struct {
	Warned  int // OpCredentialExpiring events given
	Expired int // OpCredentialExpired events given
}

// SweepExpiry gives notice of valid credentials (certificates, symmetric
// keys and CA certificates) that are near or past their end: one
// OpCredentialExpiring audit event per credential and threshold of
// Options.ExpiryWarnings it has crossed, and one OpCredentialExpired when it
// has ended. A credential that crosses several thresholds between two
// sweeps (one issued for less than the widest) gets the event of the
// nearest only. Each notice is recorded in the store before its event is
// given, so that of several processes sweeping one store exactly one gives
// it; a process that stops between the two loses that event (at most
// once). An engine remembers the notices it has seen recorded, so that a
// sweep asks the store only about those it does not know. Revoked,
// superseded and deleted credentials get none. Run it periodically
// (examples/clmserver: -sweep-interval); each sweep reads the credentials
// whose end is in its windows, more the first time.
func (e *Engine) SweepExpiry(ctx context.Context) (*SweepResult, error) {
	const op = "SweepExpiry"
	now := e.now().UTC()
	res := &SweepResult{}
	widest := time.Duration(0)
	if len(e.warnings) > 0 {
		widest = e.warnings[0]
	}
	// Since the last sweep of this engine only (with a margin for clocks
	// and transactions still committing); everything the first time.
	e.sweepMu.Lock()
	from := time.Time{}
	if !e.sweptAt.IsZero() {
		from = e.sweptAt.Add(-time.Hour)
	}
	e.sweepMu.Unlock()
	q := driver.CredentialQuery{States: []driver.CredentialState{driver.StateValid}, ExpiresBefore: now.Add(widest), Limit: 500}
	if !from.IsZero() {
		q.ExpiresAfter = from
	}
	for {
		page, err := e.store.ListCredentials(ctx, q)
		if err != nil {
			return nil, e.storeErr(op, entityNone, err)
		}
		for _, r := range page {
			if err := e.notice(ctx, r, now, res); err != nil {
				return nil, e.storeErr(op, entityNone, err)
			}
		}
		if len(page) < q.Limit {
			break
		}
		q.After = page[len(page)-1].KeyNumber
	}
	e.sweepMu.Lock()
	if now.After(e.sweptAt) {
		e.sweptAt = now
	}
	for k, end := range e.noticed {
		if end.Before(now.Add(-2 * time.Hour)) {
			delete(e.noticed, k) // out of every window of the next sweeps
		}
	}
	e.sweepMu.Unlock()
	return res, nil
}

// noticeKey names a notice of a credential.
type noticeKey struct {
	keyNumber int64
	kind      string
}

// putNotice records a notice in the store unless this engine knows it is
// there, and reports whether it recorded it (the caller gives the event).
func (e *Engine) putNotice(ctx context.Context, r *driver.CredentialRecord, kind string, now time.Time) (bool, error) {
	k := noticeKey{r.KeyNumber, kind}
	e.sweepMu.Lock()
	_, known := e.noticed[k]
	e.sweepMu.Unlock()
	if known {
		return false, nil
	}
	isNew, err := e.store.PutNotice(ctx, &driver.NoticeRecord{KeyNumber: r.KeyNumber, Kind: kind, At: now})
	if err != nil {
		return false, err
	}
	e.sweepMu.Lock()
	if e.noticed == nil {
		e.noticed = map[noticeKey]time.Time{}
	}
	e.noticed[k] = r.NotAfter
	e.sweepMu.Unlock()
	return isNew, nil
}

// notice gives the notice a credential is due, if no process has.
func (e *Engine) notice(ctx context.Context, r *driver.CredentialRecord, now time.Time, res *SweepResult) error {
	kind, detail := "", ""
	if !now.Before(r.NotAfter) {
		kind = "expired"
	} else {
		left := r.NotAfter.Sub(now)
		// The nearest threshold crossed; the wider ones are recorded as
		// given, so that they are not given late.
		for i := len(e.warnings) - 1; i >= 0; i-- {
			if left <= e.warnings[i] {
				detail = e.warnings[i].String()
				kind = "expiring/" + detail
				for _, wider := range e.warnings[:i] {
					if _, err := e.putNotice(ctx, r, "expiring/"+wider.String(), now); err != nil {
						return err
					}
				}
				break
			}
		}
		if kind == "" {
			return nil
		}
	}
	isNew, err := e.putNotice(ctx, r, kind, now)
	if err != nil || !isNew {
		return err
	}
	ev := AuditEvent{Op: OpCredentialExpiring, Tenant: r.Tenant, KeyNumber: r.KeyNumber, Serial: r.Serial, NotAfter: r.NotAfter, Detail: detail}
	if kind == "expired" {
		ev.Op = OpCredentialExpired
		res.Expired++
	} else {
		res.Warned++
	}
	if r.Kind == driver.KindCACertificate {
		ev.Detail = "CA " + r.CA + " " + ev.Detail
	}
	e.audit(ctx, ev, nil)
	return nil
}

// PurgeResult says what a purge removed.
type PurgeResult struct {
	Purged int // credentials removed
}

// Purge removes the credentials that were revoked, superseded or deleted
// and whose end is more than Options.Retention ago, with their bindings,
// sealed values and notices, a batch per transaction, and gives an
// OpCredentialPurged audit event for each. Valid credentials are never
// removed, expired or not. It is safe beside traffic and other processes
// purging (a credential another removed first is skipped). Nothing is
// removed when retention is off.
func (e *Engine) Purge(ctx context.Context) (*PurgeResult, error) {
	const op = "Purge"
	res := &PurgeResult{}
	if e.retention <= 0 {
		return res, nil
	}
	cut := e.now().UTC().Add(-e.retention)
	q := driver.CredentialQuery{States: []driver.CredentialState{driver.StateRevoked, driver.StateSuperseded, driver.StateDeleted},
		ExpiresBefore: cut, Limit: 200}
	for {
		page, err := e.store.ListCredentials(ctx, q)
		if err != nil {
			return nil, e.storeErr(op, entityNone, err)
		}
		var purged []*driver.CredentialRecord
		err = e.store.Atomic(ctx, func(tx driver.Tx) error {
			purged = purged[:0]
			for _, r := range page {
				// Read again inside: only what is still past retention.
				cur, err := tx.GetCredential(ctx, r.KeyNumber)
				if errors.Is(err, driver.ErrNotFound) {
					continue // another process purged it
				}
				if err != nil {
					return err
				}
				if cur.State == driver.StateValid || !cur.NotAfter.Before(cut) || cur.Kind == driver.KindCACertificate {
					continue
				}
				if err := tx.DeleteCredential(ctx, r.KeyNumber); err != nil && !errors.Is(err, driver.ErrNotFound) {
					return err
				}
				purged = append(purged, cur)
			}
			return nil
		})
		if err != nil {
			return nil, e.storeErr(op, entityNone, err)
		}
		for _, r := range purged {
			e.audit(ctx, AuditEvent{Op: OpCredentialPurged, Tenant: r.Tenant, KeyNumber: r.KeyNumber, Serial: r.Serial, NotAfter: r.NotAfter}, nil)
		}
		res.Purged += len(purged)
		if len(page) < q.Limit {
			return res, nil
		}
		// The page's records are gone (or kept for a reason that holds):
		// go on after them.
		q.After = page[len(page)-1].KeyNumber
	}
}

// expiryWarnings validates and sorts (widest first) warning thresholds.
func expiryWarnings(ws []time.Duration) ([]time.Duration, error) {
	if ws == nil {
		ws = DefaultExpiryWarnings
	}
	out := slices.Clone(ws)
	for _, w := range out {
		if w <= 0 {
			return nil, errors.New("an expiry warning is a positive duration before the end")
		}
	}
	slices.SortFunc(out, func(a, b time.Duration) int { return cmp.Compare(b, a) })
	return slices.Compact(out), nil
}
