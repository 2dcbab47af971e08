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

// keyEnv is an engine with a PSK and a device that holds one AES key.
type keyEnv struct {
	*env
	s     driver.Store
	c     *clock
	m     *lifecycle.Engine
	creds lifecycle.PSKCredentials
	dev   lifecycle.DeviceRequest
	key   *lifecycle.KeyResult
}

func (e *env) keyEnv() *keyEnv {
	k := &keyEnv{env: e, s: e.store(), c: &clock{now: t0}}
	k.m = e.engine(k.s, k.c, &lifecycle.Options{KeyValidity: 30 * 24 * time.Hour})
	k.creds = k.issuePSK("tenant01")
	res, err := k.m.CreateKey(e.ctx, lifecycle.CreateKeyRequest{
		PSK: k.creds, Device: lifecycle.DeviceRequest{Name: "gw-1"}, Alias: "cmkey", KeyType: "AES",
		KeyPath: "/tmp/key", Path: "/etc/keys/aes.key",
	})
	e.must(err, "CreateKey")
	k.key = res
	k.dev = lifecycle.DeviceRequest{ID: res.Device.Device.ID, Name: "gw-1", Key: res.Device.Key}
	return k
}

func (k *keyEnv) issuePSK(tenant string) lifecycle.PSKCredentials {
	p, err := k.m.IssuePSK(k.ctx, lifecycle.IssuePSKRequest{Tenant: tenant, Alias: "a"})
	k.must(err, "IssuePSK")
	return lifecycle.PSKCredentials{KeyID: p.KeyID, Password: p.Password}
}

func (k *keyEnv) get(kn int64, path string) (*lifecycle.KeyResult, error) {
	return k.m.GetKey(k.ctx, lifecycle.GetKeyRequest{PSK: k.creds, Device: k.dev, KeyNumber: kn, Path: path})
}

func testEngineKeyFlow(e *env) {
	k := e.keyEnv()
	r := k.key
	if r.Device.Key == "" || len(r.Key) != 16 || r.KeyType != "AES" || r.KeyLength != 128 || r.Alias != "cmkey" {
		t := r
		e.t.Fatalf("CreateKey must give a new device its key and a 128-bit AES key by default: %+v", *t)
	}
	if !r.ExpiresAt.Equal(t0.Add(30 * 24 * time.Hour)) {
		e.t.Fatalf("a key expires after the configured validity: %v", r.ExpiresAt)
	}
	// TWINE keys of both lengths, for the known device (no new device key).
	for _, bits := range []int{80, 128} {
		tw, err := k.m.CreateKey(e.ctx, lifecycle.CreateKeyRequest{PSK: k.creds, Device: k.dev, Alias: "tw", KeyType: "TWINE",
			KeyLength: bits, KeyPath: "/tmp/key", Path: "/etc/keys/twine.key"})
		e.must(err, "CreateKey TWINE-%d", bits)
		if len(tw.Key) != bits/8 || tw.Device.Key != "" || tw.KeyNumber <= r.KeyNumber {
			e.t.Fatalf("TWINE-%d: %d bytes, new number %d after %d", bits, len(tw.Key), tw.KeyNumber, r.KeyNumber)
		}
	}
	// Get from another device binds it there.
	other, err := k.m.CreateKey(e.ctx, lifecycle.CreateKeyRequest{PSK: k.creds, Device: lifecycle.DeviceRequest{Name: "gw-2"},
		Alias: "x", KeyType: "AES", KeyLength: 256, KeyPath: "/tmp/key", Path: "/k"})
	e.must(err, "CreateKey for a second device")
	dev2 := lifecycle.DeviceRequest{ID: other.Device.Device.ID, Key: other.Device.Key}
	got, err := k.m.GetKey(e.ctx, lifecycle.GetKeyRequest{PSK: k.creds, Device: dev2, KeyNumber: r.KeyNumber, Path: "/shared.key"})
	e.must(err, "GetKey of the tenant's key by another device")
	if !bytes.Equal(got.Key, r.Key) || got.KeyNumber != r.KeyNumber || !got.ExpiresAt.Equal(r.ExpiresAt) {
		e.t.Fatal("GetKey must return the stored key")
	}
	// Rotation with a new length and alias.
	rot, err := k.m.RotateKey(e.ctx, lifecycle.RotateKeyRequest{PSK: k.creds, Device: k.dev, KeyNumber: r.KeyNumber,
		KeyLength: 256, Alias: "rotated", Path: "/etc/keys/aes.key", NewPath: "/etc/keys/aes2.key"})
	e.must(err, "RotateKey")
	if len(rot.Key) != 32 || rot.Alias != "rotated" || rot.KeyNumber == r.KeyNumber || bytes.Equal(rot.Key, r.Key) {
		e.t.Fatalf("a rotation must give a new key of the new length: %d bytes, %q, %d", len(rot.Key), rot.Alias, rot.KeyNumber)
	}
	_, err = k.get(r.KeyNumber, "/etc/keys/aes.key")
	e.wantCode(err, lifecycle.CodeKeyUpdated, "GetKey of a rotated key")
	raw, _ := k.s.GetCredential(e.ctx, r.KeyNumber)
	if raw.State != driver.StateSuperseded || raw.ReplacedBy != rot.KeyNumber {
		e.t.Fatalf("the old key must be superseded by the new: %v, %d", raw.State, raw.ReplacedBy)
	}
	// The old key keeps its binding: update/delete naming it answer 1504.
	_, err = k.m.RotateKey(e.ctx, lifecycle.RotateKeyRequest{PSK: k.creds, Device: k.dev, KeyNumber: r.KeyNumber, Path: "/etc/keys/aes.key"})
	e.wantCode(err, lifecycle.CodeKeyUpdated, "rotating a rotated key")
	_, err = k.m.DeleteKey(e.ctx, lifecycle.DeleteKeyRequest{PSK: k.creds, Device: k.dev, KeyNumber: r.KeyNumber, Key: r.Key, Path: "/etc/keys/aes.key"})
	e.wantCode(err, lifecycle.CodeKeyUpdated, "deleting a rotated key")
	// Rotation keeps alias and length by default, and newfilepath defaults to filepath.
	rot2, err := k.m.RotateKey(e.ctx, lifecycle.RotateKeyRequest{PSK: k.creds, Device: k.dev, KeyNumber: rot.KeyNumber, Path: "/etc/keys/aes2.key"})
	e.must(err, "RotateKey with defaults")
	if rot2.Alias != "rotated" || rot2.KeyLength != 256 {
		e.t.Fatalf("a rotation keeps alias and length by default: %q %d", rot2.Alias, rot2.KeyLength)
	}
	// Adoption of an existing key of the same type.
	adopt, err := k.m.CreateKey(e.ctx, lifecycle.CreateKeyRequest{PSK: k.creds, Device: k.dev, Alias: "spare", KeyType: "AES",
		KeyPath: "/tmp/key", Path: "/spare"})
	e.must(err, "CreateKey")
	ad, err := k.m.RotateKey(e.ctx, lifecycle.RotateKeyRequest{PSK: k.creds, Device: k.dev, KeyNumber: rot2.KeyNumber,
		NewKeyNumber: adopt.KeyNumber, Path: "/etc/keys/aes2.key", NewPath: "/etc/keys/aes3.key"})
	e.must(err, "RotateKey adopting a key")
	if ad.KeyNumber != adopt.KeyNumber || !bytes.Equal(ad.Key, adopt.Key) || ad.Alias != "spare" {
		e.t.Fatal("an adoption must answer with the adopted key")
	}
	// Delete with the right key; afterwards the key is absent.
	_, err = k.m.DeleteKey(e.ctx, lifecycle.DeleteKeyRequest{PSK: k.creds, Device: k.dev, KeyNumber: ad.KeyNumber, Key: ad.Key, Path: "/etc/keys/aes3.key"})
	e.must(err, "DeleteKey")
	_, err = k.get(ad.KeyNumber, "/etc/keys/aes3.key")
	e.wantCode(err, lifecycle.CodeKeyNotFound, "GetKey of a deleted key")
	raw, _ = k.s.GetCredential(e.ctx, ad.KeyNumber)
	if raw.State != driver.StateDeleted || len(raw.Secret) != 0 {
		e.t.Fatalf("a deleted key must be marked deleted and its sealed value erased: %v, %d bytes", raw.State, len(raw.Secret))
	}
}

func testEngineKeyChecks(e *env) {
	k := e.keyEnv()
	kn, path := k.key.KeyNumber, "/etc/keys/aes.key"
	t2 := k.issuePSK("tenant02")
	create := func(mod func(*lifecycle.CreateKeyRequest)) error {
		req := lifecycle.CreateKeyRequest{PSK: k.creds, Device: k.dev, Alias: "a", KeyType: "AES", KeyPath: "/tmp/key", Path: "/p"}
		mod(&req)
		_, err := k.m.CreateKey(e.ctx, req)
		return err
	}
	rotate := func(mod func(*lifecycle.RotateKeyRequest)) error {
		req := lifecycle.RotateKeyRequest{PSK: k.creds, Device: k.dev, KeyNumber: kn, Path: path}
		mod(&req)
		_, err := k.m.RotateKey(e.ctx, req)
		return err
	}
	del := func(mod func(*lifecycle.DeleteKeyRequest)) error {
		req := lifecycle.DeleteKeyRequest{PSK: k.creds, Device: k.dev, KeyNumber: kn, Key: k.key.Key, Path: path}
		mod(&req)
		_, err := k.m.DeleteKey(e.ctx, req)
		return err
	}
	get := func(mod func(*lifecycle.GetKeyRequest)) error {
		req := lifecycle.GetKeyRequest{PSK: k.creds, Device: k.dev, KeyNumber: kn, Path: path}
		mod(&req)
		_, err := k.m.GetKey(e.ctx, req)
		return err
	}
	// Keys to adopt: one superseded, one expired soon, one TWINE.
	mk := func(kt string, bits int) *lifecycle.KeyResult {
		r, err := k.m.CreateKey(e.ctx, lifecycle.CreateKeyRequest{PSK: k.creds, Device: k.dev, Alias: "x", KeyType: kt, KeyLength: bits, KeyPath: "/tmp/key", Path: "/x"})
		e.must(err, "CreateKey")
		return r
	}
	superseded := mk("AES", 128)
	_, err := k.m.RotateKey(e.ctx, lifecycle.RotateKeyRequest{PSK: k.creds, Device: k.dev, KeyNumber: superseded.KeyNumber, Path: "/x"})
	e.must(err, "RotateKey")
	tw := mk("TWINE", 80)
	foreign, err := k.m.CreateKey(e.ctx, lifecycle.CreateKeyRequest{PSK: t2, Device: lifecycle.DeviceRequest{Name: "f"}, Alias: "f", KeyType: "AES", KeyPath: "/tmp/key", Path: "/f"})
	e.must(err, "CreateKey in another tenant")

	cases := []struct {
		name string
		err  error
		want lifecycle.Code
	}{
		{"create: alias missing", create(func(r *lifecycle.CreateKeyRequest) { r.Alias = "" }), lifecycle.CodeMissing},
		{"create: unknown keytype", create(func(r *lifecycle.CreateKeyRequest) { r.KeyType = "DES" }), lifecycle.CodeMalformed},
		{"create: alias over 64 bytes", create(func(r *lifecycle.CreateKeyRequest) { r.Alias = strings.Repeat("a", 65) }), lifecycle.CodeOutOfRange},
		{"create: TWINE-256", create(func(r *lifecycle.CreateKeyRequest) { r.KeyType, r.KeyLength = "TWINE", 256 }), lifecycle.CodeOutOfRange},
		{"create: AES-80", create(func(r *lifecycle.CreateKeyRequest) { r.KeyLength = 80 }), lifecycle.CodeOutOfRange},
		{"create: path over 1024 bytes", create(func(r *lifecycle.CreateKeyRequest) { r.Path = "/" + strings.Repeat("p", 1024) }), lifecycle.CodeOutOfRange},
		{"create: wrong PSK", create(func(r *lifecycle.CreateKeyRequest) { r.PSK.Password = "x" }), lifecycle.CodePasswordMismatch},
		{"create: name taken", create(func(r *lifecycle.CreateKeyRequest) { r.Device = lifecycle.DeviceRequest{Name: "gw-1"} }), lifecycle.CodeDeviceNameExists},
		{"get: deviceid missing", get(func(r *lifecycle.GetKeyRequest) { r.Device.ID = "" }), lifecycle.CodeMissing},
		{"get: keynumber missing", get(func(r *lifecycle.GetKeyRequest) { r.KeyNumber = 0 }), lifecycle.CodeMissing},
		{"get: no such key", get(func(r *lifecycle.GetKeyRequest) { r.KeyNumber = 9999 }), lifecycle.CodeKeyNotFound},
		{"get: another tenant's key", get(func(r *lifecycle.GetKeyRequest) { r.KeyNumber = foreign.KeyNumber }), lifecycle.CodeKeyNotFound},
		{"get: updated key", get(func(r *lifecycle.GetKeyRequest) { r.KeyNumber = superseded.KeyNumber }), lifecycle.CodeKeyUpdated},
		{"get: unknown device first", get(func(r *lifecycle.GetKeyRequest) { r.Device.ID, r.KeyNumber = "nosuch", 9999 }), lifecycle.CodeDeviceNotFound},
		{"rotate: no such key", rotate(func(r *lifecycle.RotateKeyRequest) { r.KeyNumber = 9999 }), lifecycle.CodeKeyNotFound},
		{"rotate: another tenant's key", rotate(func(r *lifecycle.RotateKeyRequest) { r.KeyNumber = foreign.KeyNumber }), lifecycle.CodeKeyNotFound},
		{"rotate: wrong filepath", rotate(func(r *lifecycle.RotateKeyRequest) { r.Path = "/elsewhere" }), lifecycle.CodeKeyNotBound},
		{"rotate: not bound to this device", rotate(func(r *lifecycle.RotateKeyRequest) { r.KeyNumber, r.Path = tw.KeyNumber, path }), lifecycle.CodeKeyNotBound},
		{"rotate: no such new key", rotate(func(r *lifecycle.RotateKeyRequest) { r.NewKeyNumber = 9999 }), lifecycle.CodeNewKeyNotFound},
		{"rotate: new key not active", rotate(func(r *lifecycle.RotateKeyRequest) { r.NewKeyNumber = superseded.KeyNumber }), lifecycle.CodeNewKeyNotActive},
		{"rotate: new key of another type", rotate(func(r *lifecycle.RotateKeyRequest) { r.NewKeyNumber = tw.KeyNumber }), lifecycle.CodeNewKeyTypeMismatch},
		{"rotate: new key is the key", rotate(func(r *lifecycle.RotateKeyRequest) { r.NewKeyNumber = kn }), lifecycle.CodeMalformed},
		{"rotate: AES to 80 bits", rotate(func(r *lifecycle.RotateKeyRequest) { r.KeyLength = 80 }), lifecycle.CodeOutOfRange},
		{"rotate: 100 bits", rotate(func(r *lifecycle.RotateKeyRequest) { r.KeyLength = 100 }), lifecycle.CodeOutOfRange},
		{"delete: commonkey missing", del(func(r *lifecycle.DeleteKeyRequest) { r.Key = nil }), lifecycle.CodeMissing},
		{"delete: commonkey mismatch", del(func(r *lifecycle.DeleteKeyRequest) { r.Key = append(bytes.Clone(r.Key[:15]), r.Key[15]^1) }), lifecycle.CodeCommonKeyMismatch},
		{"delete: wrong filepath", del(func(r *lifecycle.DeleteKeyRequest) { r.Path = "/elsewhere" }), lifecycle.CodeKeyNotBound},
		{"delete: no such key", del(func(r *lifecycle.DeleteKeyRequest) { r.KeyNumber = 9999 }), lifecycle.CodeKeyNotFound},
	}
	for _, tc := range cases {
		e.wantCode(tc.err, tc.want, tc.name)
	}
	// Expired new key: let the spare expire.
	spare := mk("AES", 128)
	k.c.advance(31 * 24 * time.Hour)
	fresh := mk("AES", 128) // created now, valid
	_ = fresh
	err = rotate(func(r *lifecycle.RotateKeyRequest) { r.NewKeyNumber = spare.KeyNumber })
	e.wantCode(err, lifecycle.CodeNewKeyExpired, "rotate: new key expired")
	// Nothing above changed the key.
	got, err := k.get(kn, path)
	e.must(err, "GetKey after refused requests")
	if !bytes.Equal(got.Key, k.key.Key) {
		e.t.Fatal("refused requests must not change the key")
	}
	raw, _ := k.s.GetCredential(e.ctx, kn)
	if raw.State != driver.StateValid {
		e.t.Fatal("refused requests must not change the key's state")
	}
}

func testEngineKeySealed(e *env) {
	k := e.keyEnv()
	raw, err := k.s.GetCredential(e.ctx, k.key.KeyNumber)
	e.must(err, "GetCredential")
	if bytes.Contains(raw.Secret, k.key.Key) || len(raw.Secret) == 0 {
		e.t.Fatal("a stored key must be sealed, not in plain text")
	}
	other, err := k.m.CreateKey(e.ctx, lifecycle.CreateKeyRequest{PSK: k.creds, Device: k.dev, Alias: "b", KeyType: "AES", KeyPath: "/tmp/key", Path: "/b"})
	e.must(err, "CreateKey")
	rawB, _ := k.s.GetCredential(e.ctx, other.KeyNumber)
	e.must(k.s.ReplaceSealed(e.ctx, driver.SealedValue{Kind: driver.SealedCredentialSecret, ID: raw.KeyNumber, Value: raw.Secret}, rawB.Secret), "ReplaceSealed")
	_, err = k.get(k.key.KeyNumber, "/etc/keys/aes.key")
	e.wantCode(err, lifecycle.CodeDecrypt, "a key's sealed value copied into another key's row")
}

func testEngineConcurrentKeyRotation(e *env) {
	k := e.keyEnv()
	m2 := e.engine(e.store(), k.c, nil)
	for round := range 5 {
		key, err := k.m.CreateKey(e.ctx, lifecycle.CreateKeyRequest{PSK: k.creds, Device: k.dev, Alias: "r", KeyType: "TWINE", KeyPath: "/tmp/key", Path: fmt.Sprint("/race/", round)})
		e.must(err, "CreateKey")
		var wg sync.WaitGroup
		results := make([]error, 2)
		start := make(chan struct{})
		for i, m := range []*lifecycle.Engine{k.m, m2} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				_, results[i] = m.RotateKey(e.ctx, lifecycle.RotateKeyRequest{PSK: k.creds, Device: k.dev, KeyNumber: key.KeyNumber, Path: fmt.Sprint("/race/", round)})
			}()
		}
		close(start)
		wg.Wait()
		ok, lost := 0, 0
		for _, err := range results {
			switch {
			case err == nil:
				ok++
			case errors.Is(err, lifecycle.CodeKeyUpdated):
				lost++
			default:
				e.t.Fatalf("round %d: a losing rotation must answer 1504, got %v", round, err)
			}
		}
		if ok != 1 || lost != 1 {
			e.t.Fatalf("round %d: two concurrent rotations must give one success and one 1504: %d and %d", round, ok, lost)
		}
		all, err := k.s.ListCredentials(e.ctx, driver.CredentialQuery{Kind: driver.KindSymmetricKey, Limit: 1000})
		e.must(err, "ListCredentials")
		total, valid := 0, 0
		for _, c := range all {
			if c.Alias == "r" {
				total++
				if c.State == driver.StateValid {
					valid++
				}
			}
		}
		// Each round leaves its original superseded and one successor.
		if total != 2*(round+1) || valid != round+1 {
			e.t.Fatalf("round %d: the losing rotation must leave no key behind: %d keys, %d valid", round, total, valid)
		}
	}
}
