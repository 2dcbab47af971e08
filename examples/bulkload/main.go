// Command bulkload seeds a store with many PSKs, devices and credentials
// straight into the tables (not through the API), in bounded time, and
// measures whether the engine's latency and memory depend on the row count
// (target P4): the p50 of authenticate, get and issue on a large store
// against the same on a small one, alternated pair by pair, and the heap in
// use after each.
//
//	go run ./examples/bulkload -store sqlite:/tmp/big.db -n 1000000    # seed
//	go run ./examples/bulkload -measure -large 1000000 -small 1000     # seed two temp stores and compare
package main

import (
	"context"
	"crypto/rand"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"gorm.io/gorm"

	"github.com/credlife/clm/backends/gormstore"
	"github.com/credlife/clm/backends/sqlitestore"
	"github.com/credlife/clm/ca"
	"github.com/credlife/clm/lifecycle"
	"github.com/credlife/clm/lifecycle/driver"
)

func main() {
	store := flag.String("store", "", "sqlite:PATH to seed")
	n := flag.Int("n", 1000000, "rows of each kind (PSKs, devices, credentials) to seed")
	measure := flag.Bool("measure", false, "seed a small and a large temporary store and compare")
	small := flag.Int("small", 1000, "with -measure: rows of the small store")
	large := flag.Int("large", 1000000, "with -measure: rows of the large store")
	pairs := flag.Int("pairs", 5, "with -measure: pairs (at least 5)")
	flag.Parse()
	ctx := context.Background()
	var err error
	switch {
	case *measure:
		err = compare(ctx, *small, *large, max(5, *pairs), os.Stdout)
	case strings.HasPrefix(*store, "sqlite:"):
		var st *gormstore.Store
		if st, err = sqlitestore.Open(ctx, strings.TrimPrefix(*store, "sqlite:"), nil); err == nil {
			defer st.Close()
			var took time.Duration
			took, err = seed(ctx, st, *n)
			fmt.Printf("seeded %d PSKs, devices and credentials in %v\n", *n, took.Round(time.Millisecond))
		}
	default:
		err = fmt.Errorf("give -store sqlite:PATH or -measure")
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bulkload:", err)
		os.Exit(1)
	}
}

// seed inserts n rows of each kind, in batches, with numbers reserved from
// the store's sequences so that the API goes on from there. Sealed values
// are random bytes: these rows fill the tables and indexes; they are never
// opened.
func seed(ctx context.Context, st *gormstore.Store, n int) (time.Duration, error) {
	start := time.Now()
	db := st.DB().WithContext(ctx)
	keyIDs, err := st.NextNumbers(ctx, driver.SeqKeyID, n)
	if err != nil {
		return 0, err
	}
	keyNumbers, err := st.NextNumbers(ctx, driver.SeqKeyNumber, n)
	if err != nil {
		return 0, err
	}
	blob := make([]byte, 64)
	rand.Read(blob)
	cert := make([]byte, 400)
	rand.Read(cert)
	now := time.Now().UnixMicro()
	later := time.Now().Add(10 * 365 * 24 * time.Hour).UnixMicro()
	const batch = 60 // rows per statement (SQLite allows 999 parameters by default)
	insert := func(table, cols string, perRow int, row func(i int) []any) error {
		ph := "(" + strings.TrimSuffix(strings.Repeat("?,", perRow), ",") + ")"
		for lo := 0; lo < n; lo += batch * 100 {
			err := db.Transaction(func(tx *gorm.DB) error {
				for b := lo; b < min(n, lo+batch*100); b += batch {
					hi := min(n, b+batch, lo+batch*100)
					args := make([]any, 0, (hi-b)*perRow)
					for i := b; i < hi; i++ {
						args = append(args, row(i)...)
					}
					sql := "INSERT INTO " + table + " (" + cols + ") VALUES " + strings.TrimSuffix(strings.Repeat(ph+",", hi-b), ",")
					if err := tx.Exec(sql, args...).Error; err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				return err
			}
		}
		return nil
	}
	err = insert("clm_psks", "key_id, tenant, alias, password, status, created_at, expires_at", 7, func(i int) []any {
		return []any{keyIDs + int64(i), fmt.Sprint("bulk", i%1000), "bulk", blob, 1, now, later}
	})
	if err != nil {
		return 0, err
	}
	err = insert("clm_devices", "tenant, id, name, key_hash, status, ip_address, mac_address, ext_data, created_at, updated_at, expires_at", 11, func(i int) []any {
		id := fmt.Sprintf("bulk%032d", i)
		return []any{fmt.Sprint("bulk", i%1000), id, "device-" + id, blob[:37], 1, "", "", "{}", now, now, 0}
	})
	if err != nil {
		return 0, err
	}
	err = insert("clm_credentials", "key_number, tenant, kind, state, ca, serial, subject, alias, key_type, key_length, certificate, secret, not_before, not_after, created_at, state_changed_at, reason, replaced_by", 18, func(i int) []any {
		kn := keyNumbers + int64(i)
		if i%2 == 0 {
			return []any{kn, fmt.Sprint("bulk", i%1000), 2, 1, "ca1", fmt.Sprintf("B%031X", i), "/CN=bulk", "", "EC-P256", 256, cert, blob, now, later, now, 0, 0, 0}
		}
		return []any{kn, fmt.Sprint("bulk", i%1000), 3, 1, "", nil, "", "bulk", "AES", 128, nil, blob[:44], now, later, now, 0, 0, 0}
	})
	if err != nil {
		return 0, err
	}
	return time.Since(start), nil
}

// fixture is an engine on a seeded store, with a PSK, a device, a
// certificate made through the API.
type fixture struct {
	m     *lifecycle.Engine
	creds lifecycle.PSKCredentials
	dev   lifecycle.DeviceRequest
	cert  int64
	n     int
}

func newFixture(ctx context.Context, dir string, rows int) (*fixture, *gormstore.Store, time.Duration, error) {
	st, err := sqlitestore.Open(ctx, filepath.Join(dir, fmt.Sprint("store-", rows, ".db")), nil)
	if err != nil {
		return nil, nil, 0, err
	}
	took, err := seed(ctx, st, rows)
	if err != nil {
		return nil, nil, 0, err
	}
	kek := make([]byte, 32)
	rand.Read(kek)
	keys, _ := lifecycle.NewStaticKeys(1, map[uint32][]byte{1: kek})
	ca1, err := ca.Open(ctx, st, keys, nil)
	if err != nil {
		return nil, nil, 0, err
	}
	m, err := lifecycle.New(st, &lifecycle.Options{Keys: keys, CAs: []lifecycle.CA{ca1}})
	if err != nil {
		return nil, nil, 0, err
	}
	p, err := m.IssuePSK(ctx, lifecycle.IssuePSKRequest{Tenant: "measure", Alias: "m"})
	if err != nil {
		return nil, nil, 0, err
	}
	f := &fixture{m: m, creds: lifecycle.PSKCredentials{KeyID: p.KeyID, Password: p.Password}, n: rows}
	c, err := m.IssueCertificate(ctx, lifecycle.IssueCertificateRequest{PSK: f.creds, Device: lifecycle.DeviceRequest{Name: "m"}, CA: "ca1", Subject: "/CN=m", KeyPath: "/k", Path: "/c", CAPath: "/ca"})
	if err != nil {
		return nil, nil, 0, err
	}
	f.dev = lifecycle.DeviceRequest{ID: c.Device.Device.ID, Key: c.Device.Key}
	f.cert = c.Certificate.KeyNumber
	return f, st, took, nil
}

// p50 runs op k times and returns the median latency.
func p50(k int, op func(i int) error) (time.Duration, error) {
	lat := make([]time.Duration, 0, k)
	for i := range k {
		t0 := time.Now()
		if err := op(i); err != nil {
			return 0, err
		}
		lat = append(lat, time.Since(t0))
	}
	slices.Sort(lat)
	return lat[len(lat)/2], nil
}

func (f *fixture) measure(ctx context.Context, round int) (map[string]time.Duration, error) {
	out := map[string]time.Duration{}
	var err error
	if out["authenticate"], err = p50(4000, func(int) error { _, err := f.m.AuthenticatePSK(ctx, f.creds); return err }); err != nil {
		return nil, err
	}
	if out["get"], err = p50(2000, func(int) error {
		_, err := f.m.GetCertificate(ctx, lifecycle.GetCertificateRequest{PSK: f.creds, Device: f.dev, CA: "ca1", Ref: lifecycle.CertificateRef{KeyNumber: f.cert}, Path: "/c"})
		return err
	}); err != nil {
		return nil, err
	}
	if out["issue"], err = p50(1000, func(i int) error {
		_, err := f.m.IssueCertificate(ctx, lifecycle.IssueCertificateRequest{PSK: f.creds, Device: f.dev, CA: "ca1", Subject: "/CN=i", KeyPath: "/k",
			Path: fmt.Sprintf("/i/%d/%d", round, i), CAPath: "/ca"})
		return err
	}); err != nil {
		return nil, err
	}
	return out, nil
}

func heapInUse() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}

func compare(ctx context.Context, small, large, pairs int, out io.Writer) error {
	dir, err := os.MkdirTemp("", "bulkload")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	fs, sst, tookS, err := newFixture(ctx, dir, small)
	if err != nil {
		return err
	}
	defer sst.Close()
	fl, lst, tookL, err := newFixture(ctx, dir, large)
	if err != nil {
		return err
	}
	defer lst.Close()
	fmt.Fprintf(out, "seeded %d rows of each kind in %v, and %d in %v\n", small, tookS.Round(time.Millisecond), large, tookL.Round(time.Millisecond))
	ratios := map[string][]float64{}
	var heapS, heapL uint64
	for i := range pairs {
		order := []*fixture{fs, fl}
		if i%2 == 1 {
			order = []*fixture{fl, fs}
		}
		res := map[int]map[string]time.Duration{}
		for _, f := range order {
			r, err := f.measure(ctx, i)
			if err != nil {
				return err
			}
			res[f.n] = r
			if f == fs {
				heapS = max(heapS, heapInUse())
			} else {
				heapL = max(heapL, heapInUse())
			}
		}
		for op := range res[small] {
			ratios[op] = append(ratios[op], float64(res[large][op])/float64(res[small][op]))
		}
	}
	fmt.Fprintf(out, "%-14s %8s %8s %6s\n", "p50 large/small", "median", "worst", "limit")
	for _, op := range []string{"authenticate", "get", "issue"} {
		r := ratios[op]
		slices.Sort(r)
		verdict := "met"
		if r[len(r)/2] > 1.3 {
			verdict = "NOT met"
		}
		fmt.Fprintf(out, "%-14s %8.2f %8.2f %6.2f %s\n", op, r[len(r)/2], r[len(r)-1], 1.3, verdict)
	}
	fmt.Fprintf(out, "heap in use after the operations: %.1f MiB on %d rows, %.1f MiB on %d rows\n",
		float64(heapS)/(1<<20), small, float64(heapL)/(1<<20), large)
	return nil
}
