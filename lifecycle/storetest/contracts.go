package storetest

import (
	"bytes"
	"fmt"
	"sync"
	"time"

	"github.com/credlife/clm/ca"
	"github.com/credlife/clm/lifecycle/driver"
)

// testDeviceListLimit: ListDevices returns at most Limit devices.
func testDeviceListLimit(e *env) {
	s := e.store()
	for i := range 5 {
		e.must(s.CreateDevice(e.ctx, device("t", fmt.Sprint("d", i), fmt.Sprint("n", i))), "CreateDevice")
	}
	got, err := s.ListDevices(e.ctx, driver.DeviceQuery{Tenant: "t", Limit: 2})
	e.must(err, "ListDevices")
	if len(got) != 2 || got[0].ID != "d0" || got[1].ID != "d1" {
		e.t.Fatalf("ListDevices with Limit 2 must return the first 2 devices in id order, got %d", len(got))
	}
}

// testNoAliasing: a Store keeps no reference to the records it is given,
// and hands out none to what it keeps: a caller that changes a map or a
// slice afterwards changes nothing stored.
func testNoAliasing(e *env) {
	s := e.store()
	d := device("t", "d", "n")
	d.SealedKey = []byte("sealed")
	e.must(s.CreateDevice(e.ctx, d), "CreateDevice")
	d.ExtData["osname"] = "changed after CreateDevice"
	d.SealedKey[0] = 'X'
	got, err := s.GetDevice(e.ctx, "t", "d")
	e.must(err, "GetDevice")
	if got.ExtData["osname"] != "Linux" || string(got.SealedKey) != "sealed" {
		e.t.Fatal("CreateDevice must not keep the caller's ExtData map or SealedKey slice")
	}
	got.ExtData["osname"] = "changed after GetDevice"
	got.SealedKey[0] = 'Y'
	again, err := s.GetDevice(e.ctx, "t", "d")
	e.must(err, "GetDevice")
	if again.ExtData["osname"] != "Linux" || string(again.SealedKey) != "sealed" {
		e.t.Fatal("GetDevice must not hand out the stored ExtData map or SealedKey slice")
	}
	u := *again
	u.ExtData = map[string]string{"osname": "BSD"}
	e.must(s.UpdateDevice(e.ctx, &u), "UpdateDevice")
	u.ExtData["osname"] = "changed after UpdateDevice"
	list, err := s.ListDevices(e.ctx, driver.DeviceQuery{Tenant: "t", Limit: 10})
	e.must(err, "ListDevices")
	if len(list) != 1 || list[0].ExtData["osname"] != "BSD" {
		e.t.Fatal("UpdateDevice must not keep the caller's ExtData map")
	}
	list[0].ExtData["osname"] = "changed after ListDevices"
	if again, _ := s.GetDevice(e.ctx, "t", "d"); again.ExtData["osname"] != "BSD" {
		e.t.Fatal("ListDevices must not hand out the stored ExtData map")
	}

	p := psk(1, "t")
	e.must(s.CreatePSK(e.ctx, p), "CreatePSK")
	want := bytes.Clone(p.Password)
	p.Password[0] ^= 0xff
	gp, err := s.GetPSK(e.ctx, 1)
	e.must(err, "GetPSK")
	gp.Password[1] ^= 0xff
	if gp2, _ := s.GetPSK(e.ctx, 1); !bytes.Equal(gp2.Password, want) {
		e.t.Fatal("CreatePSK and GetPSK must not share the Password slice with the caller")
	}

	c := cert(1, "t", "ca1", "01")
	e.must(s.CreateCredential(e.ctx, c), "CreateCredential")
	wantSecret, wantCert := bytes.Clone(c.Secret), bytes.Clone(c.Certificate)
	c.Secret[0] ^= 0xff
	c.Certificate[0] ^= 0xff
	gc, err := s.GetCredential(e.ctx, 1)
	e.must(err, "GetCredential")
	gc.Secret[1] ^= 0xff
	lc, err := s.ListCredentials(e.ctx, driver.CredentialQuery{Limit: 1})
	e.must(err, "ListCredentials")
	lc[0].Certificate[1] ^= 0xff
	if gc2, _ := s.GetCredential(e.ctx, 1); !bytes.Equal(gc2.Secret, wantSecret) || !bytes.Equal(gc2.Certificate, wantCert) {
		e.t.Fatal("CreateCredential, GetCredential and ListCredentials must not share Secret or Certificate with the caller")
	}
}

// testSequenceLocksInsideAtomic: inside Atomic, NextNumber holds its
// sequence until the transaction ends, on every handle (the contract on
// Tx.NextNumber; ca.Open relies on it to create a CA once).
func testSequenceLocksInsideAtomic(e *env) {
	a, b := e.store(), e.store()
	const lock = driver.Sequence("lock/test")
	held := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- a.Atomic(e.ctx, func(tx driver.Tx) error {
			if _, err := tx.NextNumber(e.ctx, lock); err != nil {
				return err
			}
			close(held)
			time.Sleep(200 * time.Millisecond) // b must wait for this transaction
			return tx.CreatePSK(e.ctx, psk(1, "t"))
		})
	}()
	<-held
	var seen bool
	err := b.Atomic(e.ctx, func(tx driver.Tx) error {
		if _, err := tx.NextNumber(e.ctx, lock); err != nil {
			return err
		}
		_, err := tx.GetPSK(e.ctx, 1)
		seen = err == nil
		return nil
	})
	e.must(err, "Atomic taking the sequence on a second handle")
	e.must(<-done, "Atomic holding the sequence")
	if !seen {
		e.t.Fatal("NextNumber inside Atomic must wait for another transaction that took the same sequence to end: it ran before the first committed")
	}
}

// testConcurrentCAOpen: ca.Open on one database from several handles at
// once creates the CA once; every caller gets the same certificate.
func testConcurrentCAOpen(e *env) {
	keys := testKeys(e, 1, 1)
	stores := []driver.Store{e.store(), e.store()}
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		numbers = map[int64]bool{}
		errs    []error
	)
	for i := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := ca.Open(e.ctx, stores[i%2], keys, &ca.Options{Name: "ca1"})
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
				return
			}
			numbers[c.KeyNumber()] = true
		}()
	}
	wg.Wait()
	for _, err := range errs {
		e.must(err, "ca.Open")
	}
	if len(numbers) != 1 {
		e.t.Fatalf("concurrent ca.Open on one database must create the CA once: %d CA certificates", len(numbers))
	}
}
