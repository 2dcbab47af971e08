package main

import (
	"context"
	"net/http"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/credlife/clm/httpadapter"
	"github.com/credlife/clm/lifecycle"
)

// metrics are the server's Prometheus series, fed by the adapter's Observe
// hook and by the engine's audit events.
type metrics struct {
	reg         *prometheus.Registry
	requests    *prometheus.CounterVec
	latency     *prometheus.HistogramVec
	issued      *prometheus.CounterVec
	storeErrors *prometheus.CounterVec
	locked      prometheus.Counter
	licenseFail prometheus.Counter
	groupSize   prometheus.Histogram
}

func newMetrics() *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "clm_requests_total", Help: "Requests served, by endpoint, mode and CLM code (0 for success).",
		}, []string{"endpoint", "mode", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "clm_request_duration_seconds", Help: "Time to serve a request, by endpoint and mode.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}, []string{"endpoint", "mode"}),
		issued: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "clm_credentials_issued_total", Help: "Credentials issued, by kind (psk, certificate, symmetric-key).",
		}, []string{"kind"}),
		storeErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "clm_store_errors_total", Help: "Requests that failed in the store, by CLM code (1403, 1601 to 1604).",
		}, []string{"code"}),
		locked: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "clm_psk_refused_total", Help: "Requests refused 403/1202: a PSK locked out after wrong passwords, or disabled.",
		}),
		licenseFail: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "clm_license_failures_total", Help: "Requests refused 401: no or a wrong license, or an address locked out for them.",
		}),
		groupSize: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "clm_store_group_commit_size", Help: "Store transactions per commit on SQLite (group commit; 1: a transaction committed alone).",
			Buckets: []float64{1, 2, 4, 8, 16, 32},
		}),
	}
	m.reg.MustRegister(m.requests, m.latency, m.issued, m.storeErrors, m.locked, m.licenseFail, m.groupSize,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// observeGroup is the store's GroupCommit.Observe hook.
func (m *metrics) observeGroup(size int) { m.groupSize.Observe(float64(size)) }

// observe is the adapter's Observe hook.
func (m *metrics) observe(o httpadapter.Observation) {
	endpoint := o.Endpoint
	if endpoint == "" {
		endpoint = "unknown"
	}
	m.requests.WithLabelValues(endpoint, o.Mode, strconv.Itoa(int(o.Code))).Inc()
	m.latency.WithLabelValues(endpoint, o.Mode).Observe(o.Duration.Seconds())
	switch {
	case o.Status == http.StatusUnauthorized:
		m.licenseFail.Inc()
	case o.Code == lifecycle.CodePSKNotActive:
		m.locked.Inc()
	case o.Code == lifecycle.CodeLockTimeout || o.Code >= lifecycle.CodeDBConnection && o.Code <= lifecycle.CodeDBData:
		m.storeErrors.WithLabelValues(strconv.Itoa(int(o.Code))).Inc()
	}
}

// issuedKinds are the operations that issue a credential, by its kind.
var issuedKinds = map[string]string{
	"IssuePSK": "psk", "IssueCertificate": "certificate", "RenewCertificate": "certificate",
	"CreateKey": "symmetric-key", "RotateKey": "symmetric-key",
}

// auditor counts issued credentials, then hands each event on to next.
type auditor struct {
	m    *metrics
	next lifecycle.Auditor
}

func (a auditor) Audit(ctx context.Context, ev lifecycle.AuditEvent) {
	if kind, ok := issuedKinds[ev.Op]; ok && ev.Outcome == lifecycle.CodeOK {
		a.m.issued.WithLabelValues(kind).Inc()
	}
	if a.next != nil {
		a.next.Audit(ctx, ev)
	}
}

// watchPools exposes how many pre-generated RSA keys of each type e holds.
func (m *metrics) watchPools(e *lifecycle.Engine) {
	for _, kt := range []lifecycle.CertKeyType{lifecycle.KeyRSA2048, lifecycle.KeyRSA3072, lifecycle.KeyRSA4096} {
		m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "clm_rsa_key_pool_keys", Help: "Pre-generated RSA keys ready, by key type (Options.RSAKeyPool).",
			ConstLabels: prometheus.Labels{"type": string(kt)},
		}, func() float64 { return float64(e.PooledKeys(kt)) }))
	}
}

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}
