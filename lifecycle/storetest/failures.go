package storetest

import (
	"fmt"
	"sync"
	"time"

	"github.com/credlife/clm/lifecycle/driver"
)

func testAuthFailures(e *env) {
	s := e.store()
	e.must(s.CreatePSK(e.ctx, psk(1, "t")), "CreatePSK")
	w := 5 * time.Minute
	fail := func(client string, at time.Time, limit int) *driver.AuthFailures {
		e.t.Helper()
		rs, err := s.CountAuthFailures(e.ctx, driver.AuthFailure{KeyID: 1, Client: client, At: at, Window: w, Limit: limit})
		e.must(err, "CountAuthFailures")
		if len(rs) != 1 {
			e.t.Fatalf("CountAuthFailures of one failure must return one count, got %d", len(rs))
		}
		return rs[0]
	}
	r := fail("192.0.2.1", t0, 3)
	if r.Count != 1 || !sameTime(r.Since, t0) || !r.LockedUntil.IsZero() {
		e.t.Fatalf("a first failure starts a window at its time with count 1: %+v", r)
	}
	p, err := s.GetPSK(e.ctx, 1)
	e.must(err, "GetPSK")
	if !sameTime(p.FailuresUntil, t0.Add(w)) {
		e.t.Fatalf("CountAuthFailures must raise the PSK's FailuresUntil to At+Window (%v), got %v", t0.Add(w), p.FailuresUntil)
	}
	fail("192.0.2.1", t0.Add(time.Minute), 3)
	r = fail("192.0.2.1", t0.Add(2*time.Minute), 3)
	if r.Count != 0 || !sameTime(r.LockedUntil, t0.Add(2*time.Minute+w)) || !sameTime(r.Since, t0.Add(2*time.Minute)) {
		e.t.Fatalf("the failure that reaches the limit locks the pair for a window and starts a new one: %+v", r)
	}
	other := fail("192.0.2.2", t0.Add(2*time.Minute), 3)
	if other.Count != 1 {
		e.t.Fatalf("another client of the same PSK counts apart: %+v", other)
	}
	r = fail("192.0.2.1", t0.Add(2*time.Minute+w), 3)
	if r.Count != 1 || !sameTime(r.Since, t0.Add(2*time.Minute+w)) {
		e.t.Fatalf("a failure past the window starts a new one: %+v", r)
	}
	rs, err := s.GetAuthFailures(e.ctx, 1, "192.0.2.1", "192.0.2.2", "198.51.100.9")
	e.must(err, "GetAuthFailures")
	if len(rs) != 2 {
		e.t.Fatalf("GetAuthFailures must return the pairs counted, and only them: %d", len(rs))
	}
	e.must(s.ClearAuthFailures(e.ctx, 1, "192.0.2.1"), "ClearAuthFailures")
	e.must(s.ClearAuthFailures(e.ctx, 1, "never"), "ClearAuthFailures of a pair never counted")
	rs, err = s.GetAuthFailures(e.ctx, 1, "192.0.2.1", "192.0.2.2")
	e.must(err, "GetAuthFailures")
	if len(rs) != 1 || rs[0].Client != "192.0.2.2" {
		e.t.Fatalf("ClearAuthFailures must forget that pair alone: %+v", rs)
	}
	// Several in one call, and the PSK as a whole (client "").
	rs, err = s.CountAuthFailures(e.ctx,
		driver.AuthFailure{KeyID: 1, Client: "", At: t0, Window: w, Limit: 100},
		driver.AuthFailure{KeyID: 1, Client: "192.0.2.3", At: t0, Window: w, Limit: 1})
	e.must(err, "CountAuthFailures")
	if len(rs) != 2 || rs[0].Client != "" || rs[0].Count != 1 || rs[1].LockedUntil.IsZero() {
		e.t.Fatalf("CountAuthFailures of two must count each and keep the order: %+v %+v", rs[0], rs[1])
	}
	_, err = s.CountAuthFailures(e.ctx, driver.AuthFailure{KeyID: 99, Client: "x", At: t0, Window: w, Limit: 3})
	e.must(err, "CountAuthFailures of a PSK that does not exist (an unknown keyid is guessed too)")
}

func testAuthFailuresConcurrent(e *env) {
	a, b := e.store(), e.store()
	e.must(a.CreatePSK(e.ctx, psk(1, "t")), "CreatePSK")
	const workers, each = 8, 10
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for i := range workers {
		s := []driver.Store{a, b}[i%2]
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				_, err := s.CountAuthFailures(e.ctx, driver.AuthFailure{KeyID: 1, Client: "c", At: t0, Window: time.Hour, Limit: 1000})
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		e.must(err, "CountAuthFailures from two handles")
	}
	rs, err := a.GetAuthFailures(e.ctx, 1, "c")
	e.must(err, "GetAuthFailures")
	if len(rs) != 1 || rs[0].Count != workers*each {
		e.t.Fatalf("%d concurrent failures on two handles must all count: got %s", workers*each, fmt.Sprint(rs[0].Count))
	}
}
