package storetest

import (
	"bytes"
	"context"
	"strconv"
	"testing"

	"github.com/credlife/clm/ca"
	"github.com/credlife/clm/lifecycle"
	"github.com/credlife/clm/lifecycle/driver"
)

// Open returns a Store on a fresh, empty database for a benchmark; the
// benchmark closes it.
type Open func(ctx context.Context, b *testing.B) (driver.Store, error)

// Benchmark measures every engine operation on a Store, one sub-benchmark
// each (with allocations): PSK issue and authenticate; symmetric-key
// create, get, rotate and delete; certificate issue (EC P-256, RSA-2048,
// Ed25519, and P-256 as PKCS#12), get, revoke, renew, and a CRL of 100
// revoked certificates. Each sub-benchmark opens its own Store with open.
// A backend runs it from its own tests:
//
//	func BenchmarkEngine(b *testing.B) {
//		storetest.Benchmark(b, func(ctx context.Context, b *testing.B) (driver.Store, error) {
//			return mybackend.Open(ctx, freshDatabase(b))
//		})
//	}
func Benchmark(b *testing.B, open Open) {
	for _, bc := range benchCases {
		b.Run(bc.name, func(b *testing.B) {
			ctx := context.Background()
			s, err := open(ctx, b)
			if err != nil {
				b.Fatalf("open: %v", err)
			}
			defer s.Close()
			f := newBenchEnv(ctx, b, s)
			b.ReportAllocs()
			bc.fn(ctx, b, f) // b.Loop starts the timer after the setup
		})
	}
}

// benchEnv is an engine with a local CA, a PSK and a registered device.
type benchEnv struct {
	m     *lifecycle.Engine
	creds lifecycle.PSKCredentials
	dev   lifecycle.DeviceRequest
}

func newBenchEnv(ctx context.Context, b *testing.B, s driver.Store) *benchEnv {
	keys, err := lifecycle.NewStaticKeys(1, map[uint32][]byte{1: bytes.Repeat([]byte{1}, 32)})
	if err != nil {
		b.Fatal(err)
	}
	c, err := ca.Open(ctx, s, keys, nil)
	if err != nil {
		b.Fatalf("ca.Open: %v", err)
	}
	m, err := lifecycle.New(s, &lifecycle.Options{Keys: keys, CAs: []lifecycle.CA{c}})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { m.Close() })
	p, err := m.IssuePSK(ctx, lifecycle.IssuePSKRequest{Tenant: "t", Alias: "a"})
	if err != nil {
		b.Fatal(err)
	}
	creds := lifecycle.PSKCredentials{KeyID: p.KeyID, Password: p.Password}
	d, err := m.EnrollDevice(ctx, lifecycle.EnrollDeviceRequest{PSK: creds, Device: lifecycle.DeviceRequest{Name: "d"}})
	if err != nil {
		b.Fatal(err)
	}
	return &benchEnv{m: m, creds: creds, dev: lifecycle.DeviceRequest{ID: d.Device.ID, Key: d.Key}}
}

func (f *benchEnv) createKey(ctx context.Context, b *testing.B, path string) *lifecycle.KeyResult {
	k, err := f.m.CreateKey(ctx, lifecycle.CreateKeyRequest{PSK: f.creds, Device: f.dev, Alias: "k", KeyType: "AES", KeyPath: "/tmp/key", Path: path})
	if err != nil {
		b.Fatal(err)
	}
	return k
}

// issue issues a certificate at path; kt "" is the engine's default (EC
// P-256).
func (f *benchEnv) issue(ctx context.Context, b *testing.B, kt lifecycle.CertKeyType, format lifecycle.CertFormat, path string) *lifecycle.CertificateResult {
	var pass lifecycle.Secret
	if format == lifecycle.FormatP12 {
		pass = "pfx-pass"
	}
	r, err := f.m.IssueCertificate(ctx, lifecycle.IssueCertificateRequest{PSK: f.creds, Device: f.dev, CA: "ca1",
		Subject: "/CN=bench.example.com", KeyType: string(kt), Format: format, Passphrase: pass,
		KeyPath: "/tmp/key", CAPath: "/ca", Path: path})
	if err != nil {
		b.Fatal(err)
	}
	return r
}

func (f *benchEnv) revoke(ctx context.Context, b *testing.B, kn int64) {
	if _, err := f.m.RevokeCertificate(ctx, lifecycle.RevokeCertificateRequest{PSK: f.creds, Device: f.dev, CA: "ca1",
		Ref: lifecycle.CertificateRef{KeyNumber: kn}}); err != nil {
		b.Fatal(err)
	}
}

// issueEach issues a certificate of key type kt in each iteration, at
// another path each time (a repeat within the replay window is a replay).
func issueEach(kt lifecycle.CertKeyType, format lifecycle.CertFormat) func(context.Context, *testing.B, *benchEnv) {
	return func(ctx context.Context, b *testing.B, f *benchEnv) {
		i := 0
		for b.Loop() {
			i++
			f.issue(ctx, b, kt, format, "/c"+strconv.Itoa(i))
		}
	}
}

var benchCases = []struct {
	name string
	fn   func(ctx context.Context, b *testing.B, f *benchEnv)
}{
	{"IssuePSK", func(ctx context.Context, b *testing.B, f *benchEnv) {
		for b.Loop() {
			if _, err := f.m.IssuePSK(ctx, lifecycle.IssuePSKRequest{Tenant: "t", Alias: "a"}); err != nil {
				b.Fatal(err)
			}
		}
	}},
	{"AuthenticatePSK", func(ctx context.Context, b *testing.B, f *benchEnv) {
		for b.Loop() {
			if _, err := f.m.AuthenticatePSK(ctx, f.creds); err != nil {
				b.Fatal(err)
			}
		}
	}},
	{"CreateKey", func(ctx context.Context, b *testing.B, f *benchEnv) {
		i := 0
		for b.Loop() {
			i++
			f.createKey(ctx, b, "/k"+strconv.Itoa(i))
		}
	}},
	{"GetKey", func(ctx context.Context, b *testing.B, f *benchEnv) {
		k := f.createKey(ctx, b, "/k")
		for b.Loop() {
			if _, err := f.m.GetKey(ctx, lifecycle.GetKeyRequest{PSK: f.creds, Device: f.dev, KeyNumber: k.KeyNumber, Path: "/k"}); err != nil {
				b.Fatal(err)
			}
		}
	}},
	{"RotateKey", func(ctx context.Context, b *testing.B, f *benchEnv) {
		kn := f.createKey(ctx, b, "/k").KeyNumber
		for b.Loop() {
			r, err := f.m.RotateKey(ctx, lifecycle.RotateKeyRequest{PSK: f.creds, Device: f.dev, KeyNumber: kn, Path: "/k"})
			if err != nil {
				b.Fatal(err)
			}
			kn = r.KeyNumber
		}
	}},
	{"DeleteKey", func(ctx context.Context, b *testing.B, f *benchEnv) {
		i := 0
		for b.Loop() {
			b.StopTimer()
			i++
			path := "/k" + strconv.Itoa(i)
			k := f.createKey(ctx, b, path)
			b.StartTimer()
			if _, err := f.m.DeleteKey(ctx, lifecycle.DeleteKeyRequest{PSK: f.creds, Device: f.dev, KeyNumber: k.KeyNumber, Key: k.Key, Path: path}); err != nil {
				b.Fatal(err)
			}
		}
	}},
	{"IssueCertificateP256", issueEach(lifecycle.KeyECP256, "")},
	{"IssueCertificateRSA2048", issueEach(lifecycle.KeyRSA2048, "")}, // RSA key generation dominates
	{"IssueCertificateEd25519", issueEach(lifecycle.KeyEd25519, "")},
	{"IssueCertificateP12", issueEach(lifecycle.KeyECP256, lifecycle.FormatP12)},
	{"GetCertificate", func(ctx context.Context, b *testing.B, f *benchEnv) {
		r := f.issue(ctx, b, "", "", "/c")
		req := lifecycle.GetCertificateRequest{PSK: f.creds, Device: f.dev, CA: "ca1", Ref: lifecycle.CertificateRef{KeyNumber: r.Certificate.KeyNumber}, Path: "/c"}
		for b.Loop() {
			if _, err := f.m.GetCertificate(ctx, req); err != nil {
				b.Fatal(err)
			}
		}
	}},
	{"RevokeCertificate", func(ctx context.Context, b *testing.B, f *benchEnv) {
		i := 0
		for b.Loop() {
			b.StopTimer()
			i++
			r := f.issue(ctx, b, "", "", "/c"+strconv.Itoa(i))
			b.StartTimer()
			f.revoke(ctx, b, r.Certificate.KeyNumber)
		}
	}},
	// A renewal must carry a passphrase (spec §6), so each one pays the
	// PBKDF2 of go.step.sm/crypto/pemutil (600,000 iterations) to encrypt
	// the new key.
	{"RenewCertificate", func(ctx context.Context, b *testing.B, f *benchEnv) {
		kn := f.issue(ctx, b, "", "", "/c").Certificate.KeyNumber
		for b.Loop() {
			n, err := f.m.RenewCertificate(ctx, lifecycle.RenewCertificateRequest{PSK: f.creds, Device: f.dev, CA: "ca1",
				Ref: lifecycle.CertificateRef{KeyNumber: kn}, Passphrase: "p", Path: "/c"})
			if err != nil {
				b.Fatal(err)
			}
			kn = n.Certificate.KeyNumber
		}
	}},
	// A CRL of 100 revoked certificates, as a request gets it: from the
	// CRL the engine keeps while nothing is revoked (a signature only after
	// a change).
	{"CRL", func(ctx context.Context, b *testing.B, f *benchEnv) {
		for i := range 100 {
			f.revoke(ctx, b, f.issue(ctx, b, "", "", "/c"+strconv.Itoa(i)).Certificate.KeyNumber)
		}
		for b.Loop() {
			if _, err := f.m.CRL(ctx, "ca1"); err != nil {
				b.Fatal(err)
			}
		}
	}},
}
