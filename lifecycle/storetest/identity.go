package storetest

import (
	"github.com/credlife/clm/lifecycle/driver"
)

// Identifiers compare byte for byte. A database whose collation pads (as
// MariaDB's utf8mb4_bin does: 'tenantB' = 'tenantB ') would let a PSK
// issued for "tenantB " reach tenantB's devices; these cases make sure no
// Store does.

func testExactTenant(e *env) {
	s := e.store()
	e.must(s.CreateDevice(e.ctx, device("t", "d1", "dev")), "CreateDevice")
	e.must(s.CreateDevice(e.ctx, device("t ", "d1", "dev")), `"t" and "t " are different tenants: each may have device d1 named dev`)
	got, err := s.GetDevice(e.ctx, "t ", "d1")
	e.must(err, "GetDevice")
	if got.Tenant != "t " {
		e.t.Fatalf(`GetDevice("t ", "d1") must return tenant "t "'s device, got tenant %q`, got.Tenant)
	}
	_, err = s.GetDevice(e.ctx, "t  ", "d1")
	e.wantErr(err, driver.ErrNotFound, `tenant "t  " (two spaces) has no device: tenants compare byte for byte`)
	_, err = s.GetDeviceByName(e.ctx, "t\t", "dev")
	e.wantErr(err, driver.ErrNotFound, `tenant "t\t" has no device: tenants compare byte for byte`)
	u := *device("t ", "d1", "dev")
	u.IPAddress = "198.51.100.66"
	e.must(s.UpdateDevice(e.ctx, &u), "UpdateDevice")
	orig, err := s.GetDevice(e.ctx, "t", "d1")
	e.must(err, "GetDevice")
	if orig.IPAddress != "192.0.2.1" {
		e.t.Fatalf(`an update of tenant "t "'s device must not reach tenant "t"'s: its address became %s`, orig.IPAddress)
	}

	ds, err := s.ListDevices(e.ctx, driver.DeviceQuery{Tenant: "t", Limit: 10})
	e.must(err, "ListDevices")
	if len(ds) != 1 || ds[0].Tenant != "t" {
		e.t.Fatalf(`ListDevices of tenant "t" must list only its own device, got %d`, len(ds))
	}

	e.must(s.CreatePSK(e.ctx, psk(1, "t")), "CreatePSK")
	e.must(s.CreatePSK(e.ctx, psk(2, "t ")), "CreatePSK")
	ps, err := s.ListPSKs(e.ctx, driver.PSKQuery{Tenant: "t", Limit: 10})
	e.must(err, "ListPSKs")
	if len(ps) != 1 || ps[0].KeyID != 1 {
		e.t.Fatalf(`ListPSKs of tenant "t" must list only keyid 1, got %d PSKs`, len(ps))
	}

	e.must(s.CreateCredential(e.ctx, cert(1, "t", "ca1", "AB")), "CreateCredential")
	e.must(s.CreateCredential(e.ctx, cert(2, "t ", "ca1", "CD")), "CreateCredential")
	cs, err := s.ListCredentials(e.ctx, driver.CredentialQuery{Tenant: "t", Limit: 10})
	e.must(err, "ListCredentials")
	if len(cs) != 1 || cs[0].KeyNumber != 1 {
		e.t.Fatalf(`ListCredentials of tenant "t" must list only keynumber 1, got %d`, len(cs))
	}

	e.must(s.PutBinding(e.ctx, &driver.BindingRecord{Tenant: "t ", DeviceID: "d1", KeyNumber: 2, Path: "/p", CreatedAt: t0}), "PutBinding")
	bs, err := s.ListBindings(e.ctx, "t", "d1", 2)
	e.must(err, "ListBindings")
	if len(bs) != 0 {
		e.t.Fatal(`a binding of tenant "t " must not be listed for tenant "t"`)
	}
	bs, err = s.BindingsAt(e.ctx, "t", "d1", "/p", 10)
	e.must(err, "BindingsAt")
	if len(bs) != 0 {
		e.t.Fatal(`a binding of tenant "t " must not be found at a path of tenant "t"`)
	}
}

func testExactDeviceName(e *env) {
	s := e.store()
	e.must(s.CreateDevice(e.ctx, device("t", "d1", "dev")), "CreateDevice")
	e.must(s.CreateDevice(e.ctx, device("t", "d2", "dev ")), `"dev" and "dev " are different device names in one tenant`)
	got, err := s.GetDeviceByName(e.ctx, "t", "dev ")
	e.must(err, "GetDeviceByName")
	if got.ID != "d2" {
		e.t.Fatalf(`GetDeviceByName("t", "dev ") must find d2, got %s`, got.ID)
	}
	got, err = s.GetDeviceByName(e.ctx, "t", "dev")
	e.must(err, "GetDeviceByName")
	if got.ID != "d1" {
		e.t.Fatalf(`GetDeviceByName("t", "dev") must find d1, got %s`, got.ID)
	}
	_, err = s.GetDevice(e.ctx, "t", "d1 ")
	e.wantErr(err, driver.ErrNotFound, `device id "d1 " is not "d1": ids compare byte for byte`)
	e.wantErr(s.CreateDevice(e.ctx, device("t", "d3", "dev ")), driver.ErrExists, `"dev " is taken in tenant t`)

	e.must(s.CreateCredential(e.ctx, cert(1, "t", "ca1", "AB")), "CreateCredential")
	_, err = s.GetCredentialBySerial(e.ctx, "ca1 ", "AB")
	e.wantErr(err, driver.ErrNotFound, `CA "ca1 " is not "ca1": CA names compare byte for byte`)
	e.must(s.CreateCredential(e.ctx, cert(2, "t", "ca1 ", "AB")), `serial AB of CA "ca1 " is not serial AB of CA "ca1"`)
}
