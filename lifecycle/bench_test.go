package lifecycle_test

import (
	"context"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/credlife/clm/backends/sqlitestore"
	"github.com/credlife/clm/lifecycle"
	"github.com/credlife/clm/lifecycle/driver"
	"github.com/credlife/clm/lifecycle/storetest"
)

// BenchmarkEngine runs every engine operation on SQLite (a file in a
// temporary directory): storetest's benchmarks, which the MariaDB and
// PostgreSQL backends run too when their DSNs are set.
func BenchmarkEngine(b *testing.B) {
	storetest.Benchmark(b, func(ctx context.Context, b *testing.B) (driver.Store, error) {
		return sqlitestore.Open(ctx, filepath.Join(b.TempDir(), "clm.db"), nil)
	})
}

func BenchmarkSealOpen(b *testing.B) {
	ctx := context.Background()
	s := lifecycle.NewSealer(keys(b, 1, 1), nil)
	pt := make([]byte, 64)
	ad := []byte("clm/psk/0000000001/password")
	b.ReportAllocs()
	for b.Loop() {
		sealed, err := s.Seal(ctx, pt, ad)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := s.Open(ctx, sealed, ad); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkIssueCertificateRSA2048WarmPool issues RSA-2048 certificates
// with keys taken from a warm pool: the timer stops while the pool refills
// (from half to full). Each refill of 16 keys takes about a second: run it
// with a count, e.g. -benchtime 96x.
//
// After each RSA issuance, with the timer stopped, it issues an EC P-256
// certificate, and it reports the median latency of each (p50-ns and
// p256-p50-ns): P7 compares them in the same run, because a refill leaves
// the machine slower for a while after it, for any issuance (P-256
// issuance measured right after a refill of the pool was as slow as the
// RSA issuance here).
func BenchmarkIssueCertificateRSA2048WarmPool(b *testing.B) {
	ctx := context.Background()
	const size = 32
	fx := newCertFixtureTB(b, &lifecycle.Options{RSAKeyPool: size})
	defer fx.m.Close()
	req := lifecycle.IssueCertificateRequest{PSK: fx.creds, Device: fx.dev, CA: "ca1", Subject: "/CN=bench.example.com",
		KeyType: string(lifecycle.KeyRSA2048), KeyPath: "/tmp/key", CAPath: "/ca", Path: "/warm-up"}
	if _, err := fx.m.IssueCertificate(ctx, req); err != nil { // starts the pool
		b.Fatal(err)
	}
	ec := req
	ec.KeyType = string(lifecycle.KeyECP256)
	var rsa, p256 latencies
	issue := func(r lifecycle.IssueCertificateRequest, lat *latencies) {
		t0 := time.Now()
		if _, err := fx.m.IssueCertificate(ctx, r); err != nil {
			b.Fatal(err)
		}
		*lat = append(*lat, time.Since(t0))
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if fx.m.PooledKeys(lifecycle.KeyRSA2048) <= size/2 {
			b.StopTimer()
			for fx.m.PooledKeys(lifecycle.KeyRSA2048) < size {
				time.Sleep(5 * time.Millisecond)
			}
			b.StartTimer()
		}
		req.Path = "/c" + strconv.Itoa(i)
		issue(req, &rsa)
		b.StopTimer()
		ec.Path = "/e" + strconv.Itoa(i)
		issue(ec, &p256)
		b.StartTimer()
	}
	b.StopTimer() // the deferred Close waits for a key being generated
	b.ReportMetric(rsa.p50(), "p50-ns")
	b.ReportMetric(p256.p50(), "p256-p50-ns")
}

// latencies are the durations of a benchmark's operations.
type latencies []time.Duration

// p50 is their median in nanoseconds.
func (l latencies) p50() float64 {
	if len(l) == 0 {
		return 0
	}
	s := slices.Sorted(slices.Values(l))
	return float64(s[len(s)/2])
}

// BenchmarkRSA2048KeyGen is the cost of one RSA-2048 key: what bounds the
// sustained RSA issuance rate of a pool (one generator per core).
func BenchmarkRSA2048KeyGen(b *testing.B) {
	for b.Loop() {
		if _, err := lifecycle.GenerateCertKey(lifecycle.KeyRSA2048); err != nil {
			b.Fatal(err)
		}
	}
}
