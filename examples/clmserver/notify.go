package main

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/credlife/clm/lifecycle"
)

// defaultNotifyOps are the audit operations delivered to -notify-url.
const defaultNotifyOps = lifecycle.OpCredentialExpiring + "," + lifecycle.OpCredentialExpired + "," +
	lifecycle.OpCredentialPurged + ",DecommissionDevice,RevokeCredential,RevokeCertificate"

// notification is the JSON body of a webhook delivery.
type notification struct {
	// ID names the event: the same event delivered again (a retry) has the
	// same ID, so that a receiver can drop repeats.
	ID        string    `json:"id"`
	Time      time.Time `json:"time"`
	Op        string    `json:"op"`
	Tenant    string    `json:"tenant,omitempty"`
	DeviceID  string    `json:"deviceid,omitempty"`
	KeyNumber int64     `json:"keynumber,omitempty"`
	Serial    string    `json:"serial,omitempty"`
	NotAfter  time.Time `json:"not_after,omitzero"`
	Detail    string    `json:"detail,omitempty"`
}

// notifier delivers audit events of chosen operations to a webhook: JSON
// bodies signed with HMAC-SHA256 (header X-CLM-Signature: sha256=HEX of the
// body under the secret), in order, each retried with exponential backoff
// (1 s doubling to 1 min) until the receiver answers 2xx. The queue is
// bounded: when it is full an event is dropped and counted (Dropped), never
// the request that caused it delayed.
type notifier struct {
	url     string
	secret  []byte
	ops     map[string]bool
	hc      *http.Client
	queue   chan notification
	log     *slog.Logger
	next    lifecycle.Auditor
	dropped atomic.Int64
	sent    atomic.Int64
	maxWait time.Duration
}

func newNotifier(url string, secret []byte, ops string, queue int, log *slog.Logger, next lifecycle.Auditor) *notifier {
	n := &notifier{url: url, secret: secret, ops: map[string]bool{}, hc: &http.Client{Timeout: 10 * time.Second},
		queue: make(chan notification, queue), log: log, next: next, maxWait: time.Minute}
	for _, op := range strings.Split(ops, ",") {
		if op = strings.TrimSpace(op); op != "" {
			n.ops[op] = true
		}
	}
	return n
}

// Audit implements lifecycle.Auditor: it queues the events to deliver and
// passes every event on.
func (n *notifier) Audit(ctx context.Context, ev lifecycle.AuditEvent) {
	if n.ops[ev.Op] && ev.Outcome == lifecycle.CodeOK {
		// A notice about a credential happens once: its id says which.
		// Other events are named by what they acted on and when.
		id := ev.Op + "/" + strconv.FormatInt(ev.KeyNumber, 10) + "/" + ev.Detail
		if ev.Op != lifecycle.OpCredentialExpiring && ev.Op != lifecycle.OpCredentialExpired && ev.Op != lifecycle.OpCredentialPurged {
			id = ev.Op + "/" + strconv.FormatInt(ev.KeyNumber, 10) + "/" + ev.DeviceID + "/" + strconv.FormatInt(ev.Time.UnixNano(), 10)
		}
		select {
		case n.queue <- notification{ID: id, Time: ev.Time, Op: ev.Op, Tenant: ev.Tenant, DeviceID: ev.DeviceID, KeyNumber: ev.KeyNumber,
			Serial: ev.Serial, NotAfter: ev.NotAfter, Detail: ev.Detail}:
		default:
			n.dropped.Add(1)
			n.log.Warn("webhook queue full: event dropped", slog.String("op", ev.Op), slog.Int64("keynumber", ev.KeyNumber))
		}
	}
	if n.next != nil {
		n.next.Audit(ctx, ev)
	}
}

// run delivers the queue until ctx is done.
func (n *notifier) run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case ev := <-n.queue:
			n.deliver(ctx, ev)
		}
	}
}

// sign is the X-CLM-Signature of a body.
func sign(secret, body []byte) string {
	mac := hmac.New(sha256.New, secret)
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

// deliver posts one event until the receiver takes it or ctx is done.
func (n *notifier) deliver(ctx context.Context, ev notification) {
	body, _ := json.Marshal(ev)
	wait := time.Second
	for attempt := 1; ; attempt++ {
		err := n.post(ctx, ev.ID, body)
		if err == nil {
			n.sent.Add(1)
			return
		}
		n.log.Warn("webhook delivery failed; retrying", slog.String("id", ev.ID), slog.Int("attempt", attempt), slog.Duration("in", wait), slog.String("error", err.Error()))
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = min(2*wait, n.maxWait)
	}
}

func (n *notifier) post(ctx context.Context, id string, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, n.url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-CLM-Event", id)
	req.Header.Set("X-CLM-Signature", sign(n.secret, body))
	resp, err := n.hc.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	return nil
}

// sweep runs the expiry sweeper and retention now and then every
// interval, until ctx is done.
func sweep(ctx context.Context, m *lifecycle.Engine, interval time.Duration, log *slog.Logger) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if r, err := m.SweepExpiry(ctx); err != nil {
			log.Warn("expiry sweep failed", slog.String("error", err.Error()))
		} else if r.Warned+r.Expired > 0 {
			log.Info("expiry sweep", slog.Int("warned", r.Warned), slog.Int("expired", r.Expired))
		}
		if r, err := m.Purge(ctx); err != nil {
			log.Warn("retention purge failed", slog.String("error", err.Error()))
		} else if r.Purged > 0 {
			log.Info("retention purge", slog.Int("purged", r.Purged))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
