package storetest

import (
	"context"
	"encoding/hex"
	"errors"
	"testing"
	"time"

	"github.com/credlife/clm/lifecycle"
	"github.com/credlife/clm/lifecycle/driver"
)

// Values sealed by clm before sealed values named their record's tenant
// and kind (format 1), under KEK version 1 of testKeys (32 bytes of 0x01):
// the password of PSK 7 of tenant "t", the AES-128 key of credential 9 of
// tenant "t", and the keyed hash of the key of device "legacydevice" of
// tenant "t". Made with the code of commit 1a59f9d.
var (
	legacyPassword  = "legacy-psk-password-0123"
	legacyPSK       = mustHex("01000000011a78e731a88aaaac564f72fb8452add644964ba0a3424ee1eb9d5b7f9463506a0d1d0a695bb3dca494f696d7132385ee66118f8f")
	legacyKey       = "0123456789abcdef"
	legacySecret    = mustHex("0100000001dc610bf2365a00d363481495da79c5585b335d926e3f8a376123614a48f329206c01ecee546872bde3f752ab")
	legacyDeviceKey = "legacy-device-key-0123456789abcd"
	legacyKeyHash   = mustHex("0200000001d4634c5736ee1bd11ddfbc733d51cce8354e291d8e645a53f4a6de343025fdcb")
)

func mustHex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

// seedLegacy writes the legacy records into s, with the key bound to the
// device at "/k".
func (e *env) seedLegacy(s driver.Store) {
	p := psk(7, "t")
	p.Password = legacyPSK
	e.must(s.CreatePSK(e.ctx, p), "CreatePSK")
	k := key(9, "t")
	k.Secret = legacySecret
	k.KeyLength = 128
	k.NotAfter = t0.AddDate(5, 0, 0)
	e.must(s.CreateCredential(e.ctx, k), "CreateCredential")
	d := device("t", "legacydevice", "old")
	d.SealedKey = legacyKeyHash
	e.must(s.CreateDevice(e.ctx, d), "CreateDevice")
	e.must(s.PutBinding(e.ctx, &driver.BindingRecord{Tenant: "t", DeviceID: "legacydevice", KeyNumber: 9, Path: "/k", CreatedAt: t0}), "PutBinding")
}

// testResealConvertsLegacy: values of an older store open, and Reseal
// converts them to the format that binds tenant and kind, also when the
// KEK does not change.
func testResealConvertsLegacy(e *env) {
	s := e.store()
	e.seedLegacy(s)
	c := &clock{now: t0}
	m := e.engine(s, c, nil)
	creds := lifecycle.PSKCredentials{KeyID: "7", Password: lifecycle.Secret(legacyPassword)}
	_, err := m.AuthenticatePSK(e.ctx, creds)
	e.must(err, "a legacy PSK password must open")
	st, err := m.Reseal(e.ctx)
	e.must(err, "Reseal")
	if st.Resealed != 2 || st.DeviceKeysPending != 1 {
		e.t.Fatalf("Reseal must convert the legacy password and key (2) and count the device key it cannot (1): %+v", st)
	}
	for _, kind := range []driver.SealedKind{driver.SealedPSKPassword, driver.SealedCredentialSecret} {
		vs, err := s.ListSealed(e.ctx, kind, driver.SealedValue{}, 10)
		e.must(err, "ListSealed")
		for _, v := range vs {
			if v.Legacy() {
				e.t.Fatalf("after Reseal no %v value may be in the old format", kind)
			}
		}
	}
	_, err = m.AuthenticatePSK(e.ctx, creds)
	e.must(err, "a converted PSK password must open")
	dev := lifecycle.DeviceRequest{ID: "legacydevice", Key: lifecycle.Secret(legacyDeviceKey)}
	got, err := m.GetKey(e.ctx, lifecycle.GetKeyRequest{PSK: creds, Device: dev, KeyNumber: 9, Path: "/k"})
	e.must(err, "a converted key must open")
	if string(got.Key) != legacyKey {
		e.t.Fatal("a converted key must keep its value")
	}
	// That request carried the device key: it is sealed now.
	st, err = m.Reseal(e.ctx)
	e.must(err, "Reseal")
	if st.DeviceKeysPending != 0 || st.Resealed != 0 {
		e.t.Fatalf("a device key verified once must be sealed, leaving Reseal nothing: %+v", st)
	}
	_, err = m.EnrollDevice(e.ctx, lifecycle.EnrollDeviceRequest{PSK: creds, Device: dev})
	e.must(err, "the device key, sealed, must still verify")
	dev.Key = "wrong"
	_, err = m.EnrollDevice(e.ctx, lifecycle.EnrollDeviceRequest{PSK: creds, Device: dev})
	e.wantCode(err, lifecycle.CodeDeviceKeyMismatch, "a wrong device key against a sealed one")
}

// testDeviceKeysSurviveRotation: after the master key is rotated, Reseal
// has run and the old version is retired, devices still authenticate with
// their device keys.
func testDeviceKeysSurviveRotation(e *env) {
	s := e.store()
	e.seedLegacy(s)
	c := &clock{now: t0}
	v1 := e.engine(s, c, &lifecycle.Options{Keys: testKeys(e, 1, 1)})
	creds := lifecycle.PSKCredentials{KeyID: "7", Password: lifecycle.Secret(legacyPassword)}
	fresh, err := v1.EnrollDevice(e.ctx, lifecycle.EnrollDeviceRequest{PSK: creds, Device: lifecycle.DeviceRequest{Name: "new"}})
	e.must(err, "EnrollDevice")
	// The legacy device comes back once while version 1 is still there.
	old := lifecycle.DeviceRequest{ID: "legacydevice", Key: lifecycle.Secret(legacyDeviceKey)}
	_, err = v1.EnrollDevice(e.ctx, lifecycle.EnrollDeviceRequest{PSK: creds, Device: old})
	e.must(err, "the legacy device's request")

	rotating := e.engine(s, c, &lifecycle.Options{Keys: testKeys(e, 2, 1, 2), PageSize: 1})
	st, err := rotating.Reseal(e.ctx)
	e.must(err, "Reseal")
	if st.DeviceKeysPending != 0 {
		e.t.Fatalf("no device key may be left behind: %+v", st)
	}
	v2 := e.engine(s, c, &lifecycle.Options{Keys: testKeys(e, 2, 2)}) // version 1 retired
	for _, d := range []lifecycle.DeviceRequest{{ID: fresh.Device.ID, Key: fresh.Key}, old} {
		_, err := v2.EnrollDevice(e.ctx, lifecycle.EnrollDeviceRequest{PSK: creds, Device: d})
		e.must(err, "a device must authenticate with its device key after the rotation, once version 1 is retired")
	}
}

// testSealedBindsTenant: a PSK row moved to another tenant by a database
// writer without the master key does not open there.
func testSealedBindsTenant(e *env) {
	s := e.store()
	c := &clock{now: t0}
	m := e.engine(s, c, nil)
	p, err := m.IssuePSK(e.ctx, lifecycle.IssuePSKRequest{Tenant: "victim", Alias: "a"})
	e.must(err, "IssuePSK")
	id, _ := lifecycle.ParseKeyID(p.KeyID)
	r, err := s.GetPSK(e.ctx, id)
	e.must(err, "GetPSK")
	e.must(s.DeletePSK(e.ctx, id), "DeletePSK")
	r.Tenant = "attacker"
	e.must(s.CreatePSK(e.ctx, r), "CreatePSK")
	_, err = m.AuthenticatePSK(e.ctx, lifecycle.PSKCredentials{KeyID: p.KeyID, Password: p.Password})
	e.wantCode(err, lifecycle.CodeDecrypt, "a PSK moved to another tenant must not open there")
}

// SealedMovedRecord checks, on a Store whose rows a test can rewrite behind
// its back, that a credential's sealed secret moved to another tenant (as
// a database writer without the master key could) does not open for that
// tenant: move must set the tenant of credential keyNumber, as SQL would.
func SealedMovedRecord(t *testing.T, s driver.Store, move func(ctx context.Context, keyNumber int64, tenant string) error) {
	ctx := context.Background()
	k, err := lifecycle.NewStaticKeys(1, map[uint32][]byte{1: make([]byte, 32)})
	if err != nil {
		t.Fatal(err)
	}
	m, err := lifecycle.New(s, &lifecycle.Options{Keys: k, Now: func() time.Time { return t0 }})
	if err != nil {
		t.Fatal(err)
	}
	enroll := func(tenant string) (lifecycle.PSKCredentials, lifecycle.DeviceRequest) {
		p, err := m.IssuePSK(ctx, lifecycle.IssuePSKRequest{Tenant: tenant, Alias: "a"})
		if err != nil {
			t.Fatal(err)
		}
		creds := lifecycle.PSKCredentials{KeyID: p.KeyID, Password: p.Password}
		d, err := m.EnrollDevice(ctx, lifecycle.EnrollDeviceRequest{PSK: creds, Device: lifecycle.DeviceRequest{Name: tenant + "-device"}})
		if err != nil {
			t.Fatal(err)
		}
		return creds, lifecycle.DeviceRequest{ID: d.Device.ID, Key: d.Key}
	}
	victim, vdev := enroll("victim")
	attacker, adev := enroll("attacker")
	key, err := m.CreateKey(ctx, lifecycle.CreateKeyRequest{PSK: victim, Device: vdev, Alias: "k", KeyType: "AES", KeyPath: "/k", Path: "/c"})
	if err != nil {
		t.Fatal(err)
	}
	if err := move(ctx, key.KeyNumber, "attacker"); err != nil {
		t.Fatal(err)
	}
	got, err := m.GetKey(ctx, lifecycle.GetKeyRequest{PSK: attacker, Device: adev, KeyNumber: key.KeyNumber, Path: "/stolen"})
	if !errors.Is(err, lifecycle.CodeDecrypt) {
		t.Fatalf("a key moved to another tenant's row must not open there: got %v (a key: %v), want %v", err, got != nil, lifecycle.CodeDecrypt)
	}
}
