package lifecycle

import (
	"context"
	"log/slog"
	"time"
)

// AuditEvent records one state change, or one attempt at one, and every
// failed authentication: who asked (the PSK's keyid, or "" for an
// administrative call), in which tenant, what (the Manager method) on which
// device and credential, and the outcome. It never holds a secret.
type AuditEvent struct {
	Time      time.Time
	Op        string // the Manager method, as "RevokeCertificate"
	KeyID     string // the PSK that made the request, canonical; "" when administrative
	Tenant    string // on success; a failure names the keyid, not the tenant
	DeviceID  string // when known
	KeyNumber int64  // the credential acted on (or created), when known
	Serial    string // the certificate's serial, when there is one
	Outcome   Code   // CodeOK, or the code of the failure
	// NotAfter is the credential's end, in the events of the expiry
	// sweeper and of retention.
	NotAfter time.Time
	// Detail qualifies the event: the threshold of an expiry warning
	// ("168h0m0s").
	Detail string
}

// Auditor receives audit events. Implementations must be safe for
// concurrent use and should not block: the engine calls Audit on the
// request's path, after the outcome is known.
type Auditor interface {
	Audit(ctx context.Context, ev AuditEvent)
}

// NewSlogAuditor returns an Auditor that writes each event to l, at Info
// for successes and Warn for failures, under the message "audit".
func NewSlogAuditor(l *slog.Logger) Auditor { return slogAuditor{l} }

type slogAuditor struct{ l *slog.Logger }

func (a slogAuditor) Audit(ctx context.Context, ev AuditEvent) {
	level := slog.LevelInfo
	if ev.Outcome != CodeOK {
		level = slog.LevelWarn
	}
	attrs := []slog.Attr{slog.String("op", ev.Op), slog.Int("outcome", int(ev.Outcome))}
	for _, kv := range []struct{ k, v string }{{"keyid", ev.KeyID}, {"tenant", ev.Tenant}, {"deviceid", ev.DeviceID}, {"serial", ev.Serial}} {
		if kv.v != "" {
			attrs = append(attrs, slog.String(kv.k, kv.v))
		}
	}
	if ev.KeyNumber != 0 {
		attrs = append(attrs, slog.Int64("keynumber", ev.KeyNumber))
	}
	if !ev.NotAfter.IsZero() {
		attrs = append(attrs, slog.Time("not_after", ev.NotAfter))
	}
	if ev.Detail != "" {
		attrs = append(attrs, slog.String("detail", ev.Detail))
	}
	a.l.LogAttrs(ctx, level, "audit", attrs...)
}

// audit completes ev with the time and outcome and hands it to the
// auditor. A keyid that does not parse is not echoed.
func (e *Engine) audit(ctx context.Context, ev AuditEvent, err error) {
	if e.auditor == nil {
		return
	}
	ev.Time = e.now().UTC()
	ev.Outcome = CodeOf(err)
	if ev.KeyID != "" {
		if id, perr := ParseKeyID(ev.KeyID); perr == nil {
			ev.KeyID = FormatKeyID(id)
		} else {
			ev.KeyID = "(malformed)"
		}
	}
	e.auditor.Audit(ctx, ev)
}

func devID(d *DeviceResult) string {
	if d == nil || d.Device == nil {
		return ""
	}
	return d.Device.ID
}

func devTenant(d *DeviceResult) string {
	if d == nil || d.Device == nil {
		return ""
	}
	return d.Device.Tenant
}

// auditCertificate audits a certificate operation from its result.
func (e *Engine) auditCertificate(ctx context.Context, op, keyID, deviceID string, res *CertificateResult, err error) {
	ev := AuditEvent{Op: op, KeyID: keyID, DeviceID: deviceID}
	if res != nil {
		ev.DeviceID, ev.Tenant = devID(res.Device), devTenant(res.Device)
		ev.KeyNumber, ev.Serial = res.Certificate.KeyNumber, res.Certificate.Serial
		if ev.KeyNumber == 0 && res.CA != nil {
			ev.KeyNumber, ev.Serial = res.CA.KeyNumber, res.CA.Serial
		}
	}
	e.audit(ctx, ev, err)
}

// auditKey audits a symmetric-key operation from its result; keyNumber
// names the key acted on when the request names one.
func (e *Engine) auditKey(ctx context.Context, op, keyID, deviceID string, keyNumber int64, res *KeyResult, err error) {
	ev := AuditEvent{Op: op, KeyID: keyID, DeviceID: deviceID, KeyNumber: keyNumber}
	if res != nil {
		ev.DeviceID, ev.Tenant, ev.KeyNumber = devID(res.Device), devTenant(res.Device), res.KeyNumber
	}
	e.audit(ctx, ev, err)
}
