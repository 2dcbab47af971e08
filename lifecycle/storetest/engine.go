package storetest

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/credlife/clm/lifecycle"
	"github.com/credlife/clm/lifecycle/driver"
)

// clock is a settable clock for the engine.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func testKeys(e *env, current uint32, versions ...uint32) *lifecycle.StaticKeys {
	keys := map[uint32][]byte{}
	for _, v := range versions {
		keys[v] = bytes.Repeat([]byte{byte(v)}, 32)
	}
	k, err := lifecycle.NewStaticKeys(current, keys)
	e.must(err, "NewStaticKeys")
	return k
}

func (e *env) engine(s driver.Store, c *clock, opts *lifecycle.Options) *lifecycle.Engine {
	e.t.Helper()
	var o lifecycle.Options
	if opts != nil {
		o = *opts
	}
	if o.Keys == nil {
		o.Keys = testKeys(e, 1, 1)
	}
	o.Now = c.Now
	eng, err := lifecycle.New(s, &o)
	e.must(err, "lifecycle.New")
	return eng
}

func (e *env) wantCode(err error, code lifecycle.Code, what string) {
	e.t.Helper()
	if !errors.Is(err, code) {
		e.t.Fatalf("%s: got %v, want code %v", what, err, code)
	}
}

func testEnginePSKFlow(e *env) {
	s := e.store()
	c := &clock{now: t0}
	m := e.engine(s, c, nil)
	p, err := m.IssuePSK(e.ctx, lifecycle.IssuePSKRequest{Tenant: "tenant01", Alias: "DemoKey1"})
	e.must(err, "IssuePSK")
	if len(p.KeyID) != 10 || p.KeyID != "0000000001" {
		e.t.Fatalf("the first keyid must be 0000000001, got %q", p.KeyID)
	}
	if len(p.Password.Reveal()) != 24 || !p.ExpiresAt.Equal(t0.Add(10*365*24*time.Hour)) {
		e.t.Fatalf("a PSK must have the policy's password and validity: %d chars, expires %v", len(p.Password.Reveal()), p.ExpiresAt)
	}
	got, err := m.GetPSK(e.ctx, p.KeyID)
	e.must(err, "GetPSK")
	if got.Password != p.Password || got.Alias != "DemoKey1" || got.Tenant != "tenant01" {
		e.t.Fatal("GetPSK must return the issued PSK with its password")
	}
	caller, err := m.AuthenticatePSK(e.ctx, lifecycle.PSKCredentials{KeyID: "1", Password: p.Password})
	e.must(err, "AuthenticatePSK with an unpadded keyid")
	if caller.Tenant != "tenant01" || caller.KeyID != p.KeyID {
		e.t.Fatalf("AuthenticatePSK must name the tenant: %+v", caller)
	}
	e.wantCode(func() error {
		_, err := m.AuthenticatePSK(e.ctx, lifecycle.PSKCredentials{KeyID: p.KeyID, Password: p.Password + "x"})
		return err
	}(), lifecycle.CodePasswordMismatch, "a wrong password")
	_, err = m.AuthenticatePSK(e.ctx, lifecycle.PSKCredentials{KeyID: "0000000099", Password: "x"})
	e.wantCode(err, lifecycle.CodePSKNotFound, "an unknown keyid")
	_, err = m.AuthenticatePSK(e.ctx, lifecycle.PSKCredentials{KeyID: "12a", Password: "x"})
	e.wantCode(err, lifecycle.CodeMalformed, "a malformed keyid")
	_, err = m.AuthenticatePSK(e.ctx, lifecycle.PSKCredentials{KeyID: p.KeyID})
	e.wantCode(err, lifecycle.CodeMissing, "a missing password")

	e.must(m.SetPSKStatus(e.ctx, p.KeyID, lifecycle.PSKDisabled), "SetPSKStatus")
	_, err = m.AuthenticatePSK(e.ctx, lifecycle.PSKCredentials{KeyID: p.KeyID, Password: p.Password})
	e.wantCode(err, lifecycle.CodePSKNotActive, "a disabled PSK")
	e.must(m.SetPSKStatus(e.ctx, p.KeyID, lifecycle.PSKActive), "SetPSKStatus")

	c.advance(10*365*24*time.Hour + time.Millisecond)
	_, err = m.AuthenticatePSK(e.ctx, lifecycle.PSKCredentials{KeyID: p.KeyID, Password: p.Password})
	e.wantCode(err, lifecycle.CodePSKExpired, "an expired PSK")
	c.now = t0

	for i := range 4 {
		tenant := "tenant01"
		if i%2 == 1 {
			tenant = "tenant02"
		}
		_, err := m.IssuePSK(e.ctx, lifecycle.IssuePSKRequest{Tenant: tenant, Alias: fmt.Sprint("k", i)})
		e.must(err, "IssuePSK")
	}
	var seen []string
	req := lifecycle.ListPSKsRequest{Limit: 2}
	for {
		page, err := m.ListPSKs(e.ctx, req)
		e.must(err, "ListPSKs")
		for _, p := range page.PSKs {
			seen = append(seen, p.KeyID)
			if p.Password == "" {
				e.t.Fatal("a listed PSK carries its password")
			}
		}
		if page.Next == "" {
			break
		}
		req.After = page.Next
	}
	if strings.Join(seen, ",") != "0000000001,0000000002,0000000003,0000000004,0000000005" {
		e.t.Fatalf("ListPSKs must page through every PSK in keyid order: %v", seen)
	}
	page, err := m.ListPSKs(e.ctx, lifecycle.ListPSKsRequest{Tenant: "tenant02"})
	e.must(err, "ListPSKs of a tenant")
	if len(page.PSKs) != 2 || page.Next != "" {
		e.t.Fatalf("ListPSKs(tenant02) must give its 2 PSKs on one page: %d, next %q", len(page.PSKs), page.Next)
	}

	e.wantCode(m.DeletePSK(e.ctx, lifecycle.PSKCredentials{KeyID: p.KeyID, Password: "wrong"}), lifecycle.CodePasswordMismatch, "DeletePSK with a wrong password")
	if _, err := m.GetPSK(e.ctx, p.KeyID); err != nil {
		e.t.Fatal("a refused DeletePSK must change nothing")
	}
	e.must(m.DeletePSK(e.ctx, lifecycle.PSKCredentials{KeyID: p.KeyID, Password: p.Password}), "DeletePSK")
	_, err = m.AuthenticatePSK(e.ctx, lifecycle.PSKCredentials{KeyID: p.KeyID, Password: p.Password})
	e.wantCode(err, lifecycle.CodePSKNotFound, "a deleted PSK")
	_, err = m.GetPSK(e.ctx, p.KeyID)
	e.wantCode(err, lifecycle.CodePSKNotFound, "GetPSK of a deleted PSK")

	_, err = m.IssuePSK(e.ctx, lifecycle.IssuePSKRequest{Alias: "a"})
	e.wantCode(err, lifecycle.CodeMissing, "IssuePSK without a tenant")
	_, err = m.IssuePSK(e.ctx, lifecycle.IssuePSKRequest{Tenant: strings.Repeat("t", 129), Alias: "a"})
	e.wantCode(err, lifecycle.CodeOutOfRange, "IssuePSK with a 129-byte tenant")
}

func testEnginePSKSealed(e *env) {
	s := e.store()
	m := e.engine(s, &clock{now: t0}, nil)
	a, err := m.IssuePSK(e.ctx, lifecycle.IssuePSKRequest{Tenant: "t", Alias: "a"})
	e.must(err, "IssuePSK")
	b, err := m.IssuePSK(e.ctx, lifecycle.IssuePSKRequest{Tenant: "t", Alias: "b"})
	e.must(err, "IssuePSK")
	ra, _ := s.GetPSK(e.ctx, 1)
	rb, _ := s.GetPSK(e.ctx, 2)
	if bytes.Contains(ra.Password, []byte(a.Password.Reveal())) || bytes.Contains(rb.Password, []byte(b.Password.Reveal())) {
		e.t.Fatal("a stored PSK must not hold its password in plain text")
	}
	// Swap the two sealed values: each must then fail to open (2003).
	e.must(s.ReplaceSealed(e.ctx, driver.SealedValue{Kind: driver.SealedPSKPassword, ID: 1, Value: ra.Password}, rb.Password), "ReplaceSealed")
	e.must(s.ReplaceSealed(e.ctx, driver.SealedValue{Kind: driver.SealedPSKPassword, ID: 2, Value: rb.Password}, ra.Password), "ReplaceSealed")
	_, err = m.AuthenticatePSK(e.ctx, lifecycle.PSKCredentials{KeyID: a.KeyID, Password: a.Password})
	e.wantCode(err, lifecycle.CodeDecrypt, "a sealed value moved to another row")
	_, err = m.AuthenticatePSK(e.ctx, lifecycle.PSKCredentials{KeyID: b.KeyID, Password: a.Password})
	e.wantCode(err, lifecycle.CodeDecrypt, "a sealed value moved to another row")
	_, err = m.GetPSK(e.ctx, a.KeyID)
	e.wantCode(err, lifecycle.CodeDecrypt, "GetPSK of a moved sealed value")
}

func testEngineDeviceFlow(e *env) {
	s := e.store()
	m := e.engine(s, &clock{now: t0}, nil)
	p, err := m.IssuePSK(e.ctx, lifecycle.IssuePSKRequest{Tenant: "t1", Alias: "a"})
	e.must(err, "IssuePSK")
	cred := lifecycle.PSKCredentials{KeyID: p.KeyID, Password: p.Password}
	res, err := m.EnrollDevice(e.ctx, lifecycle.EnrollDeviceRequest{PSK: cred, Device: lifecycle.DeviceRequest{
		Name: "nec-edge-0001", IPAddress: "2001:DB8::0:1", MACAddress: "AA-BB-CC-DD-EE-0F",
		ExtData: map[string]string{"osname": "CentOS", "osversion": "6.8"},
	}})
	e.must(err, "EnrollDevice of a new device")
	d := res.Device
	if len(d.ID) != 36 || res.Key == "" || d.Tenant != "t1" || d.Name != "nec-edge-0001" {
		e.t.Fatalf("a new device must get a 36-character id and a key, in the PSK's tenant: %+v", d)
	}
	if d.IPAddress != "2001:db8::1" || d.MACAddress != "aa:bb:cc:dd:ee:0f" {
		e.t.Fatalf("IP and MAC must be stored normalised: %q %q", d.IPAddress, d.MACAddress)
	}
	raw, err := s.GetDevice(e.ctx, "t1", d.ID)
	e.must(err, "GetDevice")
	if bytes.Contains(raw.SealedKey, []byte(res.Key.Reveal())) || len(raw.SealedKey) == 0 {
		e.t.Fatal("a device key must be kept only as a keyed hash")
	}
	again, err := m.EnrollDevice(e.ctx, lifecycle.EnrollDeviceRequest{PSK: cred, Device: lifecycle.DeviceRequest{
		ID: d.ID, Name: "nec-edge-0001", Key: res.Key, IPAddress: "192.0.2.7",
		ExtData: map[string]string{"osversion": "7.0", "flag": "1"},
	}})
	e.must(err, "EnrollDevice of a known device")
	if again.Key != "" || again.Device.ID != d.ID {
		e.t.Fatal("a known device must keep its id and never see its key again")
	}
	want := map[string]string{"osname": "CentOS", "osversion": "7.0", "flag": "1"}
	got, err := m.GetDevice(e.ctx, "t1", d.ID)
	e.must(err, "GetDevice")
	if fmt.Sprint(got.ExtData) != fmt.Sprint(want) || got.IPAddress != "192.0.2.7" || got.MACAddress != "aa:bb:cc:dd:ee:0f" {
		e.t.Fatalf("a later request must update ext_data and the addresses it gives: %+v", got)
	}
	_, err = m.EnrollDevice(e.ctx, lifecycle.EnrollDeviceRequest{PSK: cred, Device: lifecycle.DeviceRequest{ID: d.ID}})
	e.must(err, "a known device without name or key (both optional)")
	for i := range 3 {
		_, err := m.EnrollDevice(e.ctx, lifecycle.EnrollDeviceRequest{PSK: cred, Device: lifecycle.DeviceRequest{Name: fmt.Sprint("dev-", i)}})
		e.must(err, "EnrollDevice")
	}
	var ids []string
	req := lifecycle.ListDevicesRequest{Tenant: "t1", Limit: 3}
	for {
		page, err := m.ListDevices(e.ctx, req)
		e.must(err, "ListDevices")
		for _, d := range page.Devices {
			ids = append(ids, d.ID)
		}
		if page.Next == "" {
			break
		}
		req.After = page.Next
	}
	if len(ids) != 4 {
		e.t.Fatalf("ListDevices must page through the tenant's 4 devices: %v", ids)
	}
}

func testEngineDeviceChecks(e *env) {
	s := e.store()
	c := &clock{now: t0}
	m := e.engine(s, c, &lifecycle.Options{DeviceValidity: 24 * time.Hour})
	issue := func(tenant string) lifecycle.PSKCredentials {
		p, err := m.IssuePSK(e.ctx, lifecycle.IssuePSKRequest{Tenant: tenant, Alias: "a"})
		e.must(err, "IssuePSK")
		return lifecycle.PSKCredentials{KeyID: p.KeyID, Password: p.Password}
	}
	t1, t2 := issue("t1"), issue("t2")
	enroll := func(c lifecycle.PSKCredentials, d lifecycle.DeviceRequest) (*lifecycle.DeviceResult, error) {
		return m.EnrollDevice(e.ctx, lifecycle.EnrollDeviceRequest{PSK: c, Device: d})
	}
	res, err := enroll(t1, lifecycle.DeviceRequest{Name: "gw", ExtData: map[string]string{"k": "v"}})
	e.must(err, "EnrollDevice")
	id, key := res.Device.ID, res.Key
	count := func(tenant string) int {
		page, err := m.ListDevices(e.ctx, lifecycle.ListDevicesRequest{Tenant: tenant})
		e.must(err, "ListDevices")
		return len(page.Devices)
	}

	cases := []struct {
		name string
		psk  lifecycle.PSKCredentials
		d    lifecycle.DeviceRequest
		want lifecycle.Code
	}{
		{"name taken (1702)", t1, lifecycle.DeviceRequest{Name: "gw"}, lifecycle.CodeDeviceNameExists},
		{"id with another name (1701)", t1, lifecycle.DeviceRequest{ID: id, Name: "other", ExtData: map[string]string{"k": "changed"}}, lifecycle.CodeDeviceMismatch},
		{"wrong device key (1703)", t1, lifecycle.DeviceRequest{ID: id, Key: key + "x", ExtData: map[string]string{"k": "changed"}}, lifecycle.CodeDeviceKeyMismatch},
		{"unknown id (1706)", t1, lifecycle.DeviceRequest{ID: "nosuchdevice"}, lifecycle.CodeDeviceNotFound},
		{"another tenant's device is absent (1706)", t2, lifecycle.DeviceRequest{ID: id, Name: "gw", Key: key}, lifecycle.CodeDeviceNotFound},
		{"bad IP (1103)", t1, lifecycle.DeviceRequest{Name: "n", IPAddress: "300.1.1.1"}, lifecycle.CodeMalformed},
		{"IP with zone (1103)", t1, lifecycle.DeviceRequest{Name: "n", IPAddress: "fe80::1%eth0"}, lifecycle.CodeMalformed},
		{"bad MAC (1103)", t1, lifecycle.DeviceRequest{Name: "n", MACAddress: "12:34:56:78:90"}, lifecycle.CodeMalformed},
		{"mixed MAC separators (1103)", t1, lifecycle.DeviceRequest{Name: "n", MACAddress: "12:34-56:78:90:12"}, lifecycle.CodeMalformed},
		{"name over 256 bytes (1104)", t1, lifecycle.DeviceRequest{Name: strings.Repeat("é", 129)}, lifecycle.CodeOutOfRange},
		{"ext_data name over 128 bytes (1104)", t1, lifecycle.DeviceRequest{Name: "n", ExtData: map[string]string{strings.Repeat("k", 129): "v"}}, lifecycle.CodeOutOfRange},
		{"ext_data value over 256 bytes (1104)", t1, lifecycle.DeviceRequest{Name: "n", ExtData: map[string]string{"k": strings.Repeat("v", 257)}}, lifecycle.CodeOutOfRange},
		{"registration without a name (1102)", t1, lifecycle.DeviceRequest{}, lifecycle.CodeMissing},
		{"bad PSK before the device (1201)", lifecycle.PSKCredentials{KeyID: t1.KeyID, Password: "wrong"}, lifecycle.DeviceRequest{ID: "nosuchdevice"}, lifecycle.CodePasswordMismatch},
		{"format before PSK (1103)", lifecycle.PSKCredentials{KeyID: t1.KeyID, Password: "wrong"}, lifecycle.DeviceRequest{Name: "n", IPAddress: "x"}, lifecycle.CodeMalformed},
	}
	for _, tc := range cases {
		_, err := enroll(tc.psk, tc.d)
		e.wantCode(err, tc.want, tc.name)
	}
	if n := count("t1"); n != 1 {
		e.t.Fatalf("refused requests must register nothing: t1 has %d devices", n)
	}
	got, _ := m.GetDevice(e.ctx, "t1", id)
	if got.ExtData["k"] != "v" {
		e.t.Fatal("a refused request must not update the device")
	}
	_, err = m.GetDevice(e.ctx, "t2", id)
	e.wantCode(err, lifecycle.CodeDeviceNotFound, "GetDevice of another tenant's device")
	_, err = enroll(t2, lifecycle.DeviceRequest{Name: "gw"})
	e.must(err, "the same name in another tenant")

	e.must(m.SetDeviceStatus(e.ctx, "t1", id, lifecycle.DeviceDisabled), "SetDeviceStatus")
	_, err = enroll(t1, lifecycle.DeviceRequest{ID: id, Key: key})
	e.wantCode(err, lifecycle.CodeDeviceNotActive, "a disabled device")
	e.must(m.SetDeviceStatus(e.ctx, "t1", id, lifecycle.DeviceActive), "SetDeviceStatus")
	e.wantCode(m.SetDeviceStatus(e.ctx, "t2", id, lifecycle.DeviceDisabled), lifecycle.CodeDeviceNotFound, "SetDeviceStatus of another tenant's device")

	c.advance(24 * time.Hour)
	_, err = enroll(t1, lifecycle.DeviceRequest{ID: id, Key: key})
	e.wantCode(err, lifecycle.CodeDeviceExpired, "an expired device")
	c.now = t0

	strict := e.engine(s, c, &lifecycle.Options{RequireDeviceKey: true})
	_, err = strict.EnrollDevice(e.ctx, lifecycle.EnrollDeviceRequest{PSK: t1, Device: lifecycle.DeviceRequest{ID: id}})
	e.wantCode(err, lifecycle.CodeMissing, "a device key required by the server")
	_, err = strict.EnrollDevice(e.ctx, lifecycle.EnrollDeviceRequest{PSK: t1, Device: lifecycle.DeviceRequest{ID: id, Key: key}})
	e.must(err, "a device with its key")
}

func testEngineReseal(e *env) {
	s := e.store()
	c := &clock{now: t0}
	old := e.engine(s, c, &lifecycle.Options{Keys: testKeys(e, 1, 1)})
	var creds []lifecycle.PSKCredentials
	for i := range 5 {
		p, err := old.IssuePSK(e.ctx, lifecycle.IssuePSKRequest{Tenant: "t", Alias: fmt.Sprint(i)})
		e.must(err, "IssuePSK")
		creds = append(creds, lifecycle.PSKCredentials{KeyID: p.KeyID, Password: p.Password})
	}
	rotating := e.engine(s, c, &lifecycle.Options{Keys: testKeys(e, 2, 1, 2), PageSize: 2})
	st, err := rotating.Reseal(e.ctx)
	e.must(err, "Reseal")
	if st.Resealed != 5 || st.Examined != 5 {
		e.t.Fatalf("Reseal must move every value to the new KEK: %+v", st)
	}
	st, err = rotating.Reseal(e.ctx)
	e.must(err, "Reseal again")
	if st.Resealed != 0 {
		e.t.Fatalf("a second Reseal has nothing to do: %+v", st)
	}
	onlyNew := e.engine(s, c, &lifecycle.Options{Keys: testKeys(e, 2, 2)})
	for _, cr := range creds {
		_, err := onlyNew.AuthenticatePSK(e.ctx, cr)
		e.must(err, "a resealed PSK must open with the new KEK alone")
	}
	_, err = old.AuthenticatePSK(e.ctx, creds[0])
	e.wantCode(err, lifecycle.CodeDecrypt, "a value resealed under KEK 2 must not open without it")
}

func testEngineConcurrentIssue(e *env) {
	a, b := e.store(), e.store()
	c := &clock{now: t0}
	engines := []*lifecycle.Engine{e.engine(a, c, nil), e.engine(b, c, nil)}
	const workers, each = 6, 8
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		ids  = map[string]bool{}
		errs []error
	)
	for w := range workers {
		m := engines[w%2]
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				p, err := m.IssuePSK(e.ctx, lifecycle.IssuePSKRequest{Tenant: "t", Alias: "a"})
				if err == nil {
					_, err = m.EnrollDevice(e.ctx, lifecycle.EnrollDeviceRequest{
						PSK:    lifecycle.PSKCredentials{KeyID: p.KeyID, Password: p.Password},
						Device: lifecycle.DeviceRequest{Name: fmt.Sprint("w", w, "-", i)},
					})
				}
				mu.Lock()
				if err != nil {
					errs = append(errs, err)
				} else {
					ids[p.KeyID] = true
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(errs) > 0 {
		e.t.Fatalf("concurrent issuance from two engines must not fail: %d errors, first %v", len(errs), errs[0])
	}
	if len(ids) != workers*each {
		e.t.Fatalf("every PSK must get its own keyid: %d distinct of %d", len(ids), workers*each)
	}
}
