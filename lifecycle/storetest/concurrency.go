package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/credlife/clm/lifecycle/driver"
)

// distinct draws n numbers from seq over the given stores, from workers
// goroutines, and fails if any number is handed out twice.
func (e *env) distinct(stores []driver.Store, seq driver.Sequence, workers, each int) {
	e.t.Helper()
	var (
		mu   sync.Mutex
		seen = map[int64]int{}
		errs []error
		wg   sync.WaitGroup
	)
	for w := range workers {
		s := stores[w%len(stores)]
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				n, err := s.NextNumber(e.ctx, seq)
				mu.Lock()
				if err != nil {
					errs = append(errs, err)
				} else {
					seen[n]++
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(errs) > 0 {
		e.t.Fatalf("NextNumber under concurrency must not fail: %d errors, first: %v", len(errs), errs[0])
	}
	for n, c := range seen {
		if c > 1 {
			e.t.Fatalf("a sequence must never hand out a number twice: %d was handed out %d times", n, c)
		}
	}
	if len(seen) != workers*each {
		e.t.Fatalf("got %d distinct numbers, want %d", len(seen), workers*each)
	}
}

func testSequenceGoroutines(e *env) {
	s := e.store()
	e.distinct([]driver.Store{s}, driver.SeqKeyNumber, 8, 40)
}

func testSequenceTwoHandles(e *env) {
	a, b := e.store(), e.store()
	e.distinct([]driver.Store{a, b}, driver.SeqKeyID, 8, 40)
	// inside transactions too, with one rolled back
	var first int64
	err := a.Atomic(e.ctx, func(tx driver.Tx) error {
		n, err := tx.NextNumber(e.ctx, driver.SeqKeyID)
		first = n
		if err != nil {
			return err
		}
		return errors.New("roll back")
	})
	if err == nil || first == 0 {
		e.t.Fatalf("Atomic must return fn's error: %v", err)
	}
	n, err := b.NextNumber(e.ctx, driver.SeqKeyID)
	e.must(err, "NextNumber")
	if n <= 320 {
		e.t.Fatalf("after 320 numbers the next must be above 320, got %d", n)
	}
}

func testCredentialConcurrentTransitions(e *env) {
	a, b := e.store(), e.store()
	e.must(a.CreateCredential(e.ctx, cert(1, "t1", "ca1", "01")), "CreateCredential")
	const n = 10
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		wins     int
		winner   int
		failures []error
	)
	start := make(chan struct{})
	for i := range n {
		s := a
		if i%2 == 1 {
			s = b
		}
		to := driver.StateRevoked
		if i%3 == 0 {
			to = driver.StateSuperseded
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			err := s.TransitionCredential(e.ctx, driver.Transition{KeyNumber: 1, From: driver.StateValid, To: to, At: t0, Reason: i})
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				wins++
				winner = i
			case !errors.Is(err, driver.ErrConflict):
				failures = append(failures, err)
			}
		}()
	}
	close(start)
	wg.Wait()
	if len(failures) > 0 {
		e.t.Fatalf("a losing transition must fail with ErrConflict: %v", failures[0])
	}
	if wins != 1 {
		e.t.Fatalf("of %d concurrent transitions from one state exactly one must win, %d did", n, wins)
	}
	got, _ := b.GetCredential(e.ctx, 1)
	if got.Reason != winner {
		e.t.Fatalf("the stored transition must be the winner's: reason %d, winner %d", got.Reason, winner)
	}
}

func testAtomic(e *env) {
	s := e.store()
	boom := errors.New("boom")
	err := s.Atomic(e.ctx, func(tx driver.Tx) error {
		if err := tx.CreatePSK(e.ctx, psk(1, "t")); err != nil {
			return err
		}
		if err := tx.CreateDevice(e.ctx, device("t", "d", "n")); err != nil {
			return err
		}
		if _, err := tx.GetPSK(e.ctx, 1); err != nil {
			return fmt.Errorf("a transaction must read its own writes: %w", err)
		}
		return boom
	})
	if !errors.Is(err, boom) {
		e.t.Fatalf("Atomic must return fn's error: got %v", err)
	}
	if _, err := s.GetPSK(e.ctx, 1); !errors.Is(err, driver.ErrNotFound) {
		e.t.Fatal("a rolled-back transaction must leave no record (PSK)")
	}
	if _, err := s.GetDevice(e.ctx, "t", "d"); !errors.Is(err, driver.ErrNotFound) {
		e.t.Fatal("a rolled-back transaction must leave no record (device)")
	}
	e.must(s.Atomic(e.ctx, func(tx driver.Tx) error {
		if err := tx.CreatePSK(e.ctx, psk(1, "t")); err != nil {
			return err
		}
		return tx.CreateCredential(e.ctx, key(1, "t"))
	}), "Atomic")
	if _, err := s.GetPSK(e.ctx, 1); err != nil {
		e.t.Fatal("a committed transaction must keep its records")
	}
	if _, err := e.store().GetCredential(e.ctx, 1); err != nil {
		e.t.Fatal("a committed transaction must be visible to another handle")
	}
}

// testAtomicConcurrent runs read-modify-write transactions on one record
// from two handles; none may be lost.
func testAtomicConcurrent(e *env) {
	a, b := e.store(), e.store()
	d := device("t", "d", "n")
	d.ExtData = map[string]string{"count": "0"}
	e.must(a.CreateDevice(e.ctx, d), "CreateDevice")
	const workers, each = 4, 10
	var wg sync.WaitGroup
	errs := make(chan error, workers*each)
	for w := range workers {
		s := a
		if w%2 == 1 {
			s = b
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				errs <- s.Atomic(e.ctx, func(tx driver.Tx) error {
					// Take the row lock first, as the engine does with a
					// compare-and-swap, then read and write.
					if _, err := tx.NextNumber(e.ctx, "lock-d"); err != nil {
						return err
					}
					r, err := tx.GetDevice(e.ctx, "t", "d")
					if err != nil {
						return err
					}
					var c int
					fmt.Sscan(r.ExtData["count"], &c)
					r.ExtData["count"] = fmt.Sprint(c + 1)
					return tx.UpdateDevice(e.ctx, r)
				})
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		e.must(err, "a serialised read-modify-write transaction")
	}
	r, _ := a.GetDevice(e.ctx, "t", "d")
	if r.ExtData["count"] != fmt.Sprint(workers*each) {
		e.t.Fatalf("transactions serialised on a sequence row must not lose updates: count %s, want %d", r.ExtData["count"], workers*each)
	}
}

func testContextCancelled(e *env) {
	s := e.store()
	e.must(s.CreatePSK(e.ctx, psk(1, "t")), "CreatePSK")
	ctx, cancel := context.WithCancel(e.ctx)
	cancel()
	calls := map[string]func() error{
		"NextNumber": func() error { _, err := s.NextNumber(ctx, driver.SeqKeyID); return err },
		"CreatePSK":  func() error { return s.CreatePSK(ctx, psk(2, "t")) },
		"GetPSK":     func() error { _, err := s.GetPSK(ctx, 1); return err },
		"ListPSKs":   func() error { _, err := s.ListPSKs(ctx, driver.PSKQuery{Limit: 1}); return err },
		"GetDevice":  func() error { _, err := s.GetDevice(ctx, "t", "d"); return err },
		"Transition": func() error {
			return s.TransitionCredential(ctx, driver.Transition{KeyNumber: 1, From: 1, To: 2})
		},
		"Atomic": func() error { return s.Atomic(ctx, func(driver.Tx) error { return nil }) },
	}
	for name, call := range calls {
		if err := call(); !errors.Is(err, context.Canceled) {
			e.t.Errorf("%s with a cancelled context must fail wrapping context.Canceled, got %v", name, err)
		}
	}
	if _, err := s.GetPSK(e.ctx, 2); !errors.Is(err, driver.ErrNotFound) {
		e.t.Error("a call with a cancelled context must write nothing")
	}
	dctx, dcancel := context.WithDeadline(e.ctx, time.Now().Add(-time.Second))
	defer dcancel()
	if _, err := s.GetPSK(dctx, 1); !errors.Is(err, context.DeadlineExceeded) {
		e.t.Errorf("a call past its deadline must fail wrapping context.DeadlineExceeded, got %v", err)
	}
}

func testSealed(e *env) {
	s := e.store()
	for i := int64(1); i <= 5; i++ {
		p := psk(i, "t")
		p.Password = []byte(fmt.Sprint("sealed-", i))
		e.must(s.CreatePSK(e.ctx, p), "CreatePSK")
		c := key(i*10, "t")
		c.Secret = []byte(fmt.Sprint("secret-", i))
		e.must(s.CreateCredential(e.ctx, c), "CreateCredential")
	}
	var ids []int64
	var after driver.SealedValue
	for {
		vs, err := s.ListSealed(e.ctx, driver.SealedPSKPassword, after, 2)
		e.must(err, "ListSealed")
		if len(vs) == 0 {
			break
		}
		for _, v := range vs {
			if v.Kind != driver.SealedPSKPassword || string(v.Value) != fmt.Sprint("sealed-", v.ID) || v.Tenant != "t" {
				e.t.Fatalf("ListSealed must return each record's sealed value and tenant: %+v", v)
			}
			ids = append(ids, v.ID)
		}
		after = vs[len(vs)-1]
	}
	if fmt.Sprint(ids) != "[1 2 3 4 5]" {
		e.t.Fatalf("ListSealed must page in ascending id order: %v", ids)
	}
	vs, err := s.ListSealed(e.ctx, driver.SealedCredentialSecret, driver.SealedValue{ID: 20}, 10)
	e.must(err, "ListSealed of credentials")
	if len(vs) != 3 || vs[0].ID != 30 || string(vs[0].Value) != "secret-3" || vs[0].Tenant != "t" || vs[0].CredentialKind != driver.KindSymmetricKey {
		e.t.Fatalf("ListSealed(credentials, after 20) must list 30, 40, 50 with their tenant and kind: %+v", vs)
	}
	v := vs[0]
	e.must(s.ReplaceSealed(e.ctx, v, []byte("resealed")), "ReplaceSealed")
	got, _ := s.GetCredential(e.ctx, 30)
	if string(got.Secret) != "resealed" {
		e.t.Fatal("ReplaceSealed must store the new value")
	}
	e.wantErr(s.ReplaceSealed(e.ctx, v, []byte("again")), driver.ErrConflict, "ReplaceSealed of a value changed since it was read")
	got, _ = s.GetCredential(e.ctx, 30)
	if string(got.Secret) != "resealed" {
		e.t.Fatal("a failed ReplaceSealed must change nothing")
	}
	e.wantErr(s.ReplaceSealed(e.ctx, driver.SealedValue{Kind: driver.SealedPSKPassword, ID: 99, Value: []byte("x")}, []byte("y")),
		driver.ErrNotFound, "ReplaceSealed of a missing record")

	// Device keys page in (tenant, device id) order.
	for _, d := range []*driver.DeviceRecord{device("t2", "a", "n1"), device("t1", "b", "n2"), device("t1", "a", "n3"), device("t1 ", "a", "n4")} {
		d.SealedKey = []byte(d.Tenant + "/" + d.ID)
		e.must(s.CreateDevice(e.ctx, d), "CreateDevice")
	}
	var devs []string
	after = driver.SealedValue{}
	for {
		vs, err := s.ListSealed(e.ctx, driver.SealedDeviceKey, after, 1)
		e.must(err, "ListSealed of device keys")
		if len(vs) == 0 {
			break
		}
		if string(vs[0].Value) != vs[0].Tenant+"/"+vs[0].DeviceID || vs[0].Kind != driver.SealedDeviceKey {
			e.t.Fatalf("ListSealed must return each device's sealed key with its tenant and id: %+v", vs[0])
		}
		devs = append(devs, vs[0].Tenant+"/"+vs[0].DeviceID)
		after = vs[0]
	}
	if fmt.Sprintf("%q", devs) != `["t1/a" "t1/b" "t1 /a" "t2/a"]` {
		e.t.Fatalf("ListSealed of device keys must page in (tenant, id) order, byte-wise: %q", devs)
	}
	dv := driver.SealedValue{Kind: driver.SealedDeviceKey, Tenant: "t1", DeviceID: "b", Value: []byte("t1/b")}
	e.must(s.ReplaceSealed(e.ctx, dv, []byte("new")), "ReplaceSealed of a device key")
	if d, _ := s.GetDevice(e.ctx, "t1", "b"); string(d.SealedKey) != "new" {
		e.t.Fatal("ReplaceSealed must store a device's new key")
	}
	if d, _ := s.GetDevice(e.ctx, "t1", "a"); string(d.SealedKey) != "t1/a" {
		e.t.Fatal("ReplaceSealed of one device's key must not touch another's")
	}
	e.wantErr(s.ReplaceSealed(e.ctx, dv, []byte("again")), driver.ErrConflict, "ReplaceSealed of a device key changed since it was read")
}

func testReopen(e *env) {
	s := e.store()
	e.must(s.CreatePSK(e.ctx, psk(1, "t")), "CreatePSK")
	n, err := s.NextNumber(e.ctx, driver.SeqKeyNumber)
	e.must(err, "NextNumber")
	e.must(s.Close(), "Close")
	if _, err := s.GetPSK(e.ctx, 1); err == nil {
		e.t.Fatal("a closed Store must answer with an error")
	}
	r := e.store()
	got, err := r.GetPSK(e.ctx, 1)
	e.must(err, "data must survive Close and a new Open")
	e.checkPSK(got, psk(1, "t"))
	m, err := r.NextNumber(e.ctx, driver.SeqKeyNumber)
	e.must(err, "NextNumber after reopening")
	if m <= n {
		e.t.Fatalf("a sequence must continue after reopening: got %d after %d", m, n)
	}
}

func testPing(e *env) {
	s := e.store()
	e.must(s.Ping(e.ctx), "Ping of an open Store")
}

// testSequenceBlocks mixes single numbers and reserved blocks from two
// handles: no number is handed out twice.
func testSequenceBlocks(e *env) {
	a, b := e.store(), e.store()
	first, err := a.NextNumbers(e.ctx, driver.SeqKeyNumber, 10)
	e.must(err, "NextNumbers")
	if first != 1 {
		e.t.Fatalf("the first block of a fresh sequence starts at 1, got %d", first)
	}
	if n, _ := b.NextNumber(e.ctx, driver.SeqKeyNumber); n != 11 {
		e.t.Fatalf("a number after a block of 10 from 1 is 11, got %d", n)
	}
	var (
		mu   sync.Mutex
		seen = map[int64]bool{}
		wg   sync.WaitGroup
		errs []error
	)
	for w := range 6 {
		s := []driver.Store{a, b}[w%2]
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 20 {
				size := 1 + (w+i)%7
				first, err := s.NextNumbers(e.ctx, driver.SeqKeyNumber, size)
				mu.Lock()
				if err != nil {
					errs = append(errs, err)
				}
				for n := first; n < first+int64(size) && err == nil; n++ {
					if seen[n] {
						errs = append(errs, fmt.Errorf("number %d handed out twice", n))
					}
					seen[n] = true
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(errs) > 0 {
		e.t.Fatalf("blocks must never overlap: %v", errs[0])
	}
	if _, err := a.NextNumbers(e.ctx, driver.SeqKeyNumber, 0); err == nil {
		e.t.Fatal("a block of 0 numbers must be refused")
	}
}
