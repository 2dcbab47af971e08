package storetest

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"strings"
	"sync"
	"time"

	"github.com/credlife/clm/lifecycle"
	"github.com/credlife/clm/lifecycle/driver"
)

func allCases() []testCase {
	return []testCase{
		{"PSK/CreateGet", testPSKCreateGet},
		{"PSK/CreateExisting", testPSKCreateExisting},
		{"PSK/GetMissing", testPSKGetMissing},
		{"PSK/SetStatus", testPSKSetStatus},
		{"PSK/Delete", testPSKDelete},
		{"PSK/ListPaging", testPSKListPaging},
		{"Device/CreateGet", testDeviceCreateGet},
		{"Device/UniqueNamePerTenant", testDeviceUniqueName},
		{"Device/OtherTenantIsAbsent", testDeviceOtherTenant},
		{"Identity/ExactTenant", testExactTenant},
		{"Identity/ExactDeviceName", testExactDeviceName},
		{"Device/Update", testDeviceUpdate},
		{"Device/ListPaging", testDeviceListPaging},
		{"Device/ListHonoursLimit", testDeviceListLimit},
		{"Records/NoAliasing", testNoAliasing},
		{"Credential/CreateGet", testCredentialCreateGet},
		{"Credential/UniqueKeyNumber", testCredentialUniqueKeyNumber},
		{"Credential/UniqueCASerial", testCredentialUniqueSerial},
		{"Credential/GetBySerial", testCredentialGetBySerial},
		{"Credential/ListPaging", testCredentialList},
		{"Credential/Transition", testCredentialTransition},
		{"Credential/Stats", testCredentialStats},
		{"Credential/QueryByDeviceAndExpiry", testCredentialQueryFilters},
		{"Credential/Delete", testCredentialDelete},
		{"Notice/OnceAcrossHandles", testNoticeOnce},
		{"Credential/ConcurrentTransitions", testCredentialConcurrentTransitions},
		{"Binding/PutList", testBindingCreateList},
		{"Sequence/StartsAtOneAndIncrements", testSequenceBasic},
		{"Sequence/ConcurrentGoroutines", testSequenceGoroutines},
		{"Sequence/TwoHandles", testSequenceTwoHandles},
		{"Sequence/Blocks", testSequenceBlocks},
		{"Sequence/LocksInsideAtomic", testSequenceLocksInsideAtomic},
		{"CA/ConcurrentOpen", testConcurrentCAOpen},
		{"Atomic/CommitAndRollback", testAtomic},
		{"Atomic/ConcurrentReadModifyWrite", testAtomicConcurrent},
		{"Time/RoundTrip", testTimeRoundTrip},
		{"Binary/RoundTrip", testBinaryRoundTrip},
		{"Context/Cancelled", testContextCancelled},
		{"Errors/WrapSentinels", testErrorsWrap},
		{"Sealed/ListReplace", testSealed},
		{"AuthFailures/CountLockClear", testAuthFailures},
		{"AuthFailures/ConcurrentHandles", testAuthFailuresConcurrent},
		{"Reopen", testReopen},
		{"Ping", testPing},
		{"Engine/PSKFlow", testEnginePSKFlow},
		{"Engine/PSKSealedAtRest", testEnginePSKSealed},
		{"Engine/DeviceFlow", testEngineDeviceFlow},
		{"Engine/DeviceChecks", testEngineDeviceChecks},
		{"Engine/Reseal", testEngineReseal},
		{"Engine/ResealConvertsLegacy", testResealConvertsLegacy},
		{"Engine/DeviceKeysSurviveRotation", testDeviceKeysSurviveRotation},
		{"Engine/SealedBindsTenant", testSealedBindsTenant},
		{"Engine/ConcurrentIssue", testEngineConcurrentIssue},
		{"Engine/KeyFlow", testEngineKeyFlow},
		{"Engine/KeyChecks", testEngineKeyChecks},
		{"Engine/KeySealedAtRest", testEngineKeySealed},
		{"Engine/ConcurrentKeyRotation", testEngineConcurrentKeyRotation},
		{"Engine/CertFlow", testEngineCertFlow},
		{"Engine/CertChecks", testEngineCertChecks},
		{"Engine/CertSealedAtRest", testEngineCertSealed},
		{"Engine/ConcurrentCertTransitions", testEngineConcurrentCertTransitions},
	}
}

// t0 is a time with milliseconds, the precision every Store keeps.
var t0 = time.Date(2026, 3, 14, 15, 9, 26, 535_000_000, time.UTC)

func psk(id int64, tenant string) *driver.PSKRecord {
	return &driver.PSKRecord{
		KeyID:     id,
		Tenant:    tenant,
		Alias:     fmt.Sprintf("alias-%d", id),
		Password:  []byte{0, 1, 2, 0xff, byte(id)},
		Status:    lifecycle.PSKActive,
		CreatedAt: t0,
		ExpiresAt: t0.AddDate(10, 0, 0),
	}
}

func sameTime(a, b time.Time) bool {
	return a.Truncate(time.Millisecond).Equal(b.Truncate(time.Millisecond))
}

func (e *env) checkPSK(got, want *driver.PSKRecord) {
	e.t.Helper()
	if got.KeyID != want.KeyID || got.Tenant != want.Tenant || got.Alias != want.Alias ||
		!bytes.Equal(got.Password, want.Password) || got.Status != want.Status ||
		!sameTime(got.CreatedAt, want.CreatedAt) || !sameTime(got.ExpiresAt, want.ExpiresAt) {
		e.t.Fatalf("a PSK must read back as written:\n got %+v\nwant %+v", *got, *want)
	}
}

func (e *env) wantErr(err, target error, contract string) {
	e.t.Helper()
	if !errors.Is(err, target) {
		e.t.Fatalf("%s: got %v, want an error wrapping %v", contract, err, target)
	}
}

func testPSKCreateGet(e *env) {
	s := e.store()
	want := psk(7, "tenant-a")
	e.must(s.CreatePSK(e.ctx, want), "CreatePSK")
	got, err := s.GetPSK(e.ctx, 7)
	e.must(err, "GetPSK of a created PSK")
	e.checkPSK(got, want)
	// the record passed in is not retained
	want.Alias = "changed"
	got, _ = s.GetPSK(e.ctx, 7)
	if got.Alias == "changed" {
		e.t.Fatal("a Store must not keep the record passed to CreatePSK")
	}
}

func testPSKCreateExisting(e *env) {
	s := e.store()
	e.must(s.CreatePSK(e.ctx, psk(1, "t")), "CreatePSK")
	e.wantErr(s.CreatePSK(e.ctx, psk(1, "u")), driver.ErrExists, "CreatePSK of a taken keyid")
	got, _ := s.GetPSK(e.ctx, 1)
	if got.Tenant != "t" {
		e.t.Fatal("a refused CreatePSK must not change the existing PSK")
	}
}

func testPSKGetMissing(e *env) {
	s := e.store()
	_, err := s.GetPSK(e.ctx, 42)
	e.wantErr(err, driver.ErrNotFound, "GetPSK of a missing keyid")
}

func testPSKSetStatus(e *env) {
	s := e.store()
	e.must(s.CreatePSK(e.ctx, psk(3, "t")), "CreatePSK")
	e.must(s.SetPSKStatus(e.ctx, 3, lifecycle.PSKDisabled), "SetPSKStatus")
	got, _ := s.GetPSK(e.ctx, 3)
	if got.Status != lifecycle.PSKDisabled {
		e.t.Fatalf("SetPSKStatus must be stored: got %v", got.Status)
	}
	e.must(s.SetPSKStatus(e.ctx, 3, lifecycle.PSKDisabled), "SetPSKStatus to the status it has must succeed")
	e.wantErr(s.SetPSKStatus(e.ctx, 4, lifecycle.PSKDisabled), driver.ErrNotFound, "SetPSKStatus of a missing keyid")
}

func testPSKDelete(e *env) {
	s := e.store()
	e.must(s.CreatePSK(e.ctx, psk(5, "t")), "CreatePSK")
	e.must(s.DeletePSK(e.ctx, 5), "DeletePSK")
	_, err := s.GetPSK(e.ctx, 5)
	e.wantErr(err, driver.ErrNotFound, "GetPSK after DeletePSK")
	e.wantErr(s.DeletePSK(e.ctx, 5), driver.ErrNotFound, "DeletePSK of a deleted keyid")
}

func testPSKListPaging(e *env) {
	s := e.store()
	for i := int64(1); i <= 25; i++ {
		id := (i*7)%25 + 1 // every keyid of 1…25, inserted out of order
		tenant := "even"
		if id%2 == 1 {
			tenant = "odd"
		}
		e.must(s.CreatePSK(e.ctx, psk(id, tenant)), "CreatePSK")
	}
	var all []int64
	after := int64(0)
	for {
		page, err := s.ListPSKs(e.ctx, driver.PSKQuery{After: after, Limit: 4})
		e.must(err, "ListPSKs")
		if len(page) > 4 {
			e.t.Fatalf("ListPSKs must return at most Limit records, got %d", len(page))
		}
		if len(page) == 0 {
			break
		}
		for _, p := range page {
			all = append(all, p.KeyID)
		}
		after = page[len(page)-1].KeyID
	}
	if len(all) != 25 {
		e.t.Fatalf("paging through every PSK must see each once: got %d of 25: %v", len(all), all)
	}
	for i := range all {
		if all[i] != int64(i+1) {
			e.t.Fatalf("ListPSKs must return ascending keyids: %v", all)
		}
	}
	odd, err := s.ListPSKs(e.ctx, driver.PSKQuery{Tenant: "odd", After: 10, Limit: 100})
	e.must(err, "ListPSKs with a tenant")
	for _, p := range odd {
		if p.Tenant != "odd" || p.KeyID <= 10 {
			e.t.Fatalf("ListPSKs must honour Tenant and After: got keyid %d of %q", p.KeyID, p.Tenant)
		}
	}
	if len(odd) != 8 { // 11, 13, …, 25
		e.t.Fatalf("ListPSKs(odd, after 10): got %d records, want 8", len(odd))
	}
	none, err := s.ListPSKs(e.ctx, driver.PSKQuery{Tenant: "nobody", Limit: 10})
	e.must(err, "ListPSKs of an empty tenant must not fail")
	if len(none) != 0 {
		e.t.Fatalf("ListPSKs of an empty tenant: got %d records", len(none))
	}
}

func device(tenant, id, name string) *driver.DeviceRecord {
	return &driver.DeviceRecord{
		Tenant:     tenant,
		ID:         id,
		Name:       name,
		SealedKey:  []byte("hash-" + id),
		Status:     lifecycle.DeviceActive,
		IPAddress:  "192.0.2.1",
		MACAddress: "aa:bb:cc:dd:ee:ff",
		ExtData:    map[string]string{"osname": "Linux", "名前": "値"},
		CreatedAt:  t0,
		UpdatedAt:  t0,
	}
}

func (e *env) checkDevice(got, want *driver.DeviceRecord) {
	e.t.Helper()
	if got.Tenant != want.Tenant || got.ID != want.ID || got.Name != want.Name ||
		!bytes.Equal(got.SealedKey, want.SealedKey) || got.Status != want.Status ||
		got.IPAddress != want.IPAddress || got.MACAddress != want.MACAddress ||
		!maps.Equal(got.ExtData, want.ExtData) || !sameTime(got.CreatedAt, want.CreatedAt) ||
		!sameTime(got.UpdatedAt, want.UpdatedAt) || !sameTime(got.ExpiresAt, want.ExpiresAt) ||
		got.ExpiresAt.IsZero() != want.ExpiresAt.IsZero() {
		e.t.Fatalf("a device must read back as written:\n got %+v\nwant %+v", *got, *want)
	}
}

func testDeviceCreateGet(e *env) {
	s := e.store()
	d := device("t1", "dev1", "Sensor-1")
	e.must(s.CreateDevice(e.ctx, d), "CreateDevice")
	got, err := s.GetDevice(e.ctx, "t1", "dev1")
	e.must(err, "GetDevice")
	e.checkDevice(got, d)
	got, err = s.GetDeviceByName(e.ctx, "t1", "Sensor-1")
	e.must(err, "GetDeviceByName")
	e.checkDevice(got, d)
	_, err = s.GetDeviceByName(e.ctx, "t1", "sensor-1")
	e.wantErr(err, driver.ErrNotFound, "device names must compare case-sensitively")
	bare := &driver.DeviceRecord{Tenant: "t1", ID: "dev2", Name: "bare", SealedKey: []byte{1}, Status: lifecycle.DeviceActive, CreatedAt: t0, UpdatedAt: t0}
	e.must(s.CreateDevice(e.ctx, bare), "CreateDevice without optional fields")
	got, err = s.GetDevice(e.ctx, "t1", "dev2")
	e.must(err, "GetDevice")
	e.checkDevice(got, bare)
	if len(got.ExtData) != 0 || !got.ExpiresAt.IsZero() {
		e.t.Fatal("an empty ExtData and a zero ExpiresAt must read back empty and zero")
	}
	_, err = s.GetDevice(e.ctx, "t1", "DEV1")
	e.wantErr(err, driver.ErrNotFound, "device ids must compare case-sensitively")
}

func testDeviceUniqueName(e *env) {
	s := e.store()
	e.must(s.CreateDevice(e.ctx, device("t1", "a", "gw")), "CreateDevice")
	e.wantErr(s.CreateDevice(e.ctx, device("t1", "b", "gw")), driver.ErrExists, "a name taken in the tenant")
	e.wantErr(s.CreateDevice(e.ctx, device("t1", "a", "other")), driver.ErrExists, "an id taken in the tenant")
	e.must(s.CreateDevice(e.ctx, device("t2", "c", "gw")), "the same name in another tenant must be allowed")
	e.must(s.CreateDevice(e.ctx, device("t1", "d", "GW")), "names differing in case are different names")
	_, err := s.GetDevice(e.ctx, "t1", "b")
	e.wantErr(err, driver.ErrNotFound, "a refused CreateDevice must create nothing")
}

func testDeviceOtherTenant(e *env) {
	s := e.store()
	e.must(s.CreateDevice(e.ctx, device("t1", "a", "gw")), "CreateDevice")
	_, err := s.GetDevice(e.ctx, "t2", "a")
	e.wantErr(err, driver.ErrNotFound, "a device of another tenant must answer as absent")
	_, err = s.GetDeviceByName(e.ctx, "t2", "gw")
	e.wantErr(err, driver.ErrNotFound, "a device of another tenant must answer as absent (by name)")
	d := device("t2", "a", "gw")
	e.wantErr(s.UpdateDevice(e.ctx, d), driver.ErrNotFound, "UpdateDevice must not reach another tenant's device")
	got, _ := s.GetDevice(e.ctx, "t1", "a")
	if got.Tenant != "t1" {
		e.t.Fatal("another tenant's update must change nothing")
	}
}

func testDeviceUpdate(e *env) {
	s := e.store()
	d := device("t1", "a", "gw")
	e.must(s.CreateDevice(e.ctx, d), "CreateDevice")
	u := *d
	u.Name = "renamed"                 // fixed at creation: must not change
	u.SealedKey = []byte("other-hash") // fixed at creation
	u.Status = lifecycle.DeviceDisabled
	u.IPAddress = "2001:db8::1"
	u.MACAddress = "00:11:22:33:44:55"
	u.ExtData = map[string]string{"hostname": "h"}
	u.UpdatedAt = t0.Add(time.Hour)
	u.ExpiresAt = t0.AddDate(1, 0, 0)
	e.must(s.UpdateDevice(e.ctx, &u), "UpdateDevice")
	got, _ := s.GetDevice(e.ctx, "t1", "a")
	want := u
	want.Name, want.SealedKey = d.Name, d.SealedKey
	e.checkDevice(got, &want)
	e.must(s.UpdateDevice(e.ctx, &u), "an UpdateDevice that changes nothing must still succeed")
	e.wantErr(s.UpdateDevice(e.ctx, device("t1", "zz", "x")), driver.ErrNotFound, "UpdateDevice of a missing device")
}

func testDeviceListPaging(e *env) {
	s := e.store()
	ids := []string{"k3", "a1", "z9", "b2", "m5", "c0", "y7"}
	for i, id := range ids {
		e.must(s.CreateDevice(e.ctx, device("t1", id, fmt.Sprint("n", i))), "CreateDevice")
	}
	e.must(s.CreateDevice(e.ctx, device("t2", "b3", "x")), "CreateDevice")
	var got []string
	after := ""
	for {
		page, err := s.ListDevices(e.ctx, driver.DeviceQuery{Tenant: "t1", After: after, Limit: 3})
		e.must(err, "ListDevices")
		if len(page) == 0 {
			break
		}
		for _, d := range page {
			if d.Tenant != "t1" {
				e.t.Fatal("ListDevices must list only its tenant")
			}
			got = append(got, d.ID)
		}
		after = page[len(page)-1].ID
	}
	if strings.Join(got, ",") != "a1,b2,c0,k3,m5,y7,z9" {
		e.t.Fatalf("ListDevices must page through ids in ascending order: got %v", got)
	}
}

func cert(n int64, tenant, ca, serial string) *driver.CredentialRecord {
	return &driver.CredentialRecord{
		KeyNumber:   n,
		Tenant:      tenant,
		Kind:        driver.KindCertificate,
		State:       driver.StateValid,
		CA:          ca,
		Serial:      serial,
		Subject:     "/C=JP/O=Example/CN=device-" + fmt.Sprint(n),
		KeyType:     "EC-P256",
		KeyLength:   256,
		Certificate: []byte{0x30, 0x82, 0, byte(n)},
		Secret:      []byte{9, 8, 7, 0, byte(n)},
		NotBefore:   t0,
		NotAfter:    t0.AddDate(1, 0, 0),
		CreatedAt:   t0,
	}
}

func key(n int64, tenant string) *driver.CredentialRecord {
	return &driver.CredentialRecord{
		KeyNumber: n,
		Tenant:    tenant,
		Kind:      driver.KindSymmetricKey,
		State:     driver.StateValid,
		Alias:     "key",
		KeyType:   "AES",
		KeyLength: 128,
		Secret:    []byte{1, 2, 3, byte(n)},
		NotBefore: t0,
		NotAfter:  t0.AddDate(1, 0, 0),
		CreatedAt: t0,
	}
}

func (e *env) checkCredential(got, want *driver.CredentialRecord) {
	e.t.Helper()
	if got.KeyNumber != want.KeyNumber || got.Tenant != want.Tenant || got.Kind != want.Kind ||
		got.State != want.State || got.CA != want.CA || got.Serial != want.Serial ||
		got.Subject != want.Subject || got.Alias != want.Alias || got.KeyType != want.KeyType ||
		got.KeyLength != want.KeyLength || !bytes.Equal(got.Certificate, want.Certificate) ||
		!bytes.Equal(got.Secret, want.Secret) || !sameTime(got.NotBefore, want.NotBefore) ||
		!sameTime(got.NotAfter, want.NotAfter) || !sameTime(got.CreatedAt, want.CreatedAt) ||
		!sameTime(got.StateChangedAt, want.StateChangedAt) || got.Reason != want.Reason ||
		got.ReplacedBy != want.ReplacedBy {
		e.t.Fatalf("a credential must read back as written:\n got %+v\nwant %+v", *got, *want)
	}
}

func testCredentialCreateGet(e *env) {
	s := e.store()
	c := cert(1, "t1", "ca1", "863542E528A7233F")
	e.must(s.CreateCredential(e.ctx, c), "CreateCredential")
	got, err := s.GetCredential(e.ctx, 1)
	e.must(err, "GetCredential")
	e.checkCredential(got, c)
	k := key(2, "t1")
	e.must(s.CreateCredential(e.ctx, k), "CreateCredential of a key")
	got, err = s.GetCredential(e.ctx, 2)
	e.must(err, "GetCredential of a key")
	e.checkCredential(got, k)
	_, err = s.GetCredential(e.ctx, 3)
	e.wantErr(err, driver.ErrNotFound, "GetCredential of a missing keynumber")
}

func testCredentialUniqueKeyNumber(e *env) {
	s := e.store()
	e.must(s.CreateCredential(e.ctx, key(1, "t1")), "CreateCredential")
	e.wantErr(s.CreateCredential(e.ctx, cert(1, "t2", "ca1", "01")), driver.ErrExists, "a taken keynumber")
}

func testCredentialUniqueSerial(e *env) {
	s := e.store()
	e.must(s.CreateCredential(e.ctx, cert(1, "t1", "ca1", "ABCDEF")), "CreateCredential")
	e.wantErr(s.CreateCredential(e.ctx, cert(2, "t2", "ca1", "ABCDEF")), driver.ErrExists, "a serial taken in the CA")
	e.must(s.CreateCredential(e.ctx, cert(3, "t1", "ca2", "ABCDEF")), "the same serial in another CA must be allowed")
	e.must(s.CreateCredential(e.ctx, key(4, "t1")), "keys have no serial")
	e.must(s.CreateCredential(e.ctx, key(5, "t1")), "many credentials without a serial must be allowed")
	_, err := s.GetCredential(e.ctx, 2)
	e.wantErr(err, driver.ErrNotFound, "a refused CreateCredential must create nothing")
}

func testCredentialGetBySerial(e *env) {
	s := e.store()
	e.must(s.CreateCredential(e.ctx, cert(1, "t1", "ca1", "0A1B")), "CreateCredential")
	e.must(s.CreateCredential(e.ctx, cert(2, "t1", "ca2", "0A1B")), "CreateCredential")
	got, err := s.GetCredentialBySerial(e.ctx, "ca2", "0A1B")
	e.must(err, "GetCredentialBySerial")
	if got.KeyNumber != 2 {
		e.t.Fatalf("GetCredentialBySerial must look in the named CA: got keynumber %d", got.KeyNumber)
	}
	_, err = s.GetCredentialBySerial(e.ctx, "ca1", "0a1b")
	e.wantErr(err, driver.ErrNotFound, "serials are stored normalised by the engine and compared exactly")
	_, err = s.GetCredentialBySerial(e.ctx, "ca3", "0A1B")
	e.wantErr(err, driver.ErrNotFound, "GetCredentialBySerial in a CA without it")
}

func testCredentialList(e *env) {
	s := e.store()
	for n := int64(1); n <= 12; n++ {
		var c *driver.CredentialRecord
		switch n % 3 {
		case 0:
			c = key(n, "t1")
		case 1:
			c = cert(n, "t1", "ca1", fmt.Sprintf("%X", n))
		default:
			c = cert(n, "t2", "ca1", fmt.Sprintf("%X", n))
		}
		e.must(s.CreateCredential(e.ctx, c), "CreateCredential")
	}
	e.must(s.TransitionCredential(e.ctx, driver.Transition{KeyNumber: 4, From: driver.StateValid, To: driver.StateRevoked, At: t0, Reason: 1}), "TransitionCredential")
	list := func(q driver.CredentialQuery) []int64 {
		var out []int64
		for {
			page, err := s.ListCredentials(e.ctx, q)
			e.must(err, "ListCredentials")
			if len(page) == 0 {
				return out
			}
			for _, c := range page {
				out = append(out, c.KeyNumber)
			}
			q.After = page[len(page)-1].KeyNumber
		}
	}
	check := func(q driver.CredentialQuery, want string) {
		e.t.Helper()
		if got := fmt.Sprint(list(q)); got != want {
			e.t.Fatalf("ListCredentials(%+v) = %s, want %s (ascending keynumbers matching every filter)", q, got, want)
		}
	}
	check(driver.CredentialQuery{Limit: 5}, "[1 2 3 4 5 6 7 8 9 10 11 12]")
	check(driver.CredentialQuery{Tenant: "t1", Limit: 2}, "[1 3 4 6 7 9 10 12]")
	check(driver.CredentialQuery{Kind: driver.KindSymmetricKey, Limit: 3}, "[3 6 9 12]")
	check(driver.CredentialQuery{CA: "ca1", States: []driver.CredentialState{driver.StateRevoked}, Limit: 3}, "[4]")
	check(driver.CredentialQuery{CA: "ca1", States: []driver.CredentialState{driver.StateValid}, Limit: 3}, "[1 2 5 7 8 10 11]")
}

func testCredentialTransition(e *env) {
	s := e.store()
	e.must(s.CreateCredential(e.ctx, cert(1, "t1", "ca1", "01")), "CreateCredential")
	at := t0.Add(time.Hour)
	tr := driver.Transition{KeyNumber: 1, From: driver.StateValid, To: driver.StateSuperseded, At: at, Reason: 4, ReplacedBy: 9}
	e.must(s.TransitionCredential(e.ctx, tr), "TransitionCredential from the stored state")
	got, _ := s.GetCredential(e.ctx, 1)
	if got.State != driver.StateSuperseded || !sameTime(got.StateChangedAt, at) || got.Reason != 4 || got.ReplacedBy != 9 {
		e.t.Fatalf("a transition must store the state, time, reason and successor: got %+v", *got)
	}
	tr.To = driver.StateRevoked
	e.wantErr(s.TransitionCredential(e.ctx, tr), driver.ErrConflict, "a transition from a state the credential is no longer in")
	got, _ = s.GetCredential(e.ctx, 1)
	if got.State != driver.StateSuperseded {
		e.t.Fatal("a failed compare-and-swap must change nothing")
	}
	tr.KeyNumber = 2
	e.wantErr(s.TransitionCredential(e.ctx, tr), driver.ErrNotFound, "a transition of a missing credential")
}

func testCredentialStats(e *env) {
	s := e.store()
	revoked := driver.CredentialQuery{CA: "ca1", Kind: driver.KindCertificate,
		States: []driver.CredentialState{driver.StateRevoked, driver.StateSuperseded}}
	st, err := s.CredentialStats(e.ctx, revoked)
	e.must(err, "CredentialStats")
	if st.Count != 0 || !st.LastStateChange.IsZero() {
		e.t.Fatalf("CredentialStats of nothing must be zero, got %+v", st)
	}
	for n := int64(1); n <= 4; n++ {
		e.must(s.CreateCredential(e.ctx, cert(n, "t1", "ca1", fmt.Sprintf("%X", n))), "CreateCredential")
	}
	e.must(s.CreateCredential(e.ctx, cert(5, "t1", "ca2", "5")), "CreateCredential")
	at := t0.Add(time.Hour)
	e.must(s.TransitionCredential(e.ctx, driver.Transition{KeyNumber: 1, From: driver.StateValid, To: driver.StateRevoked, At: at}), "TransitionCredential")
	e.must(s.TransitionCredential(e.ctx, driver.Transition{KeyNumber: 2, From: driver.StateValid, To: driver.StateSuperseded, At: at.Add(time.Minute)}), "TransitionCredential")
	e.must(s.TransitionCredential(e.ctx, driver.Transition{KeyNumber: 5, From: driver.StateValid, To: driver.StateRevoked, At: at.Add(time.Hour)}), "TransitionCredential")
	st, err = s.CredentialStats(e.ctx, revoked)
	e.must(err, "CredentialStats")
	if st.Count != 2 || !sameTime(st.LastStateChange, at.Add(time.Minute)) {
		e.t.Fatalf("CredentialStats must count what the query selects (2 in ca1) and give its latest state change (%v), got %+v", at.Add(time.Minute), st)
	}
	all, err := s.CredentialStats(e.ctx, driver.CredentialQuery{Tenant: "t1", After: 3, Limit: 1})
	e.must(err, "CredentialStats")
	if all.Count != 5 {
		e.t.Fatalf("CredentialStats must ignore After and Limit: got %d of 5", all.Count)
	}
}

// testCredentialQueryFilters: DeviceID selects what is bound to a device
// of the tenant (at any path, once), ExpiresBefore and ExpiresAfter select
// by NotAfter on each side of the boundary, in ListCredentials and
// CredentialStats alike.
func testCredentialQueryFilters(e *env) {
	s := e.store()
	for n := int64(1); n <= 6; n++ {
		c := cert(n, "t1", "ca1", fmt.Sprintf("%X", n))
		c.NotAfter = t0.Add(time.Duration(n) * 24 * time.Hour) // day n
		if n == 6 {
			c.Tenant = "t2"
		}
		e.must(s.CreateCredential(e.ctx, c), "CreateCredential")
	}
	b := func(tenant, dev string, n int64, path string) *driver.BindingRecord {
		return &driver.BindingRecord{Tenant: tenant, DeviceID: dev, KeyNumber: n, Path: path, CreatedAt: t0}
	}
	e.must(s.PutBinding(e.ctx, b("t1", "d1", 1, "/a"), b("t1", "d1", 1, "/b"), b("t1", "d1", 3, "/a"), b("t1", "d2", 2, "/a"), b("t2", "d1", 6, "/a")), "PutBinding")
	numbers := func(q driver.CredentialQuery) []int64 {
		e.t.Helper()
		q.Limit = 100
		page, err := s.ListCredentials(e.ctx, q)
		e.must(err, "ListCredentials")
		st, err := s.CredentialStats(e.ctx, q)
		e.must(err, "CredentialStats")
		var out []int64
		for _, r := range page {
			out = append(out, r.KeyNumber)
		}
		if q.After == 0 && st.Count != int64(len(out)) { // Stats ignores the cursor
			e.t.Fatalf("CredentialStats counts %d where ListCredentials lists %d (%+v)", st.Count, len(out), q)
		}
		return out
	}
	for _, c := range []struct {
		q    driver.CredentialQuery
		want []int64
	}{
		{driver.CredentialQuery{Tenant: "t1", DeviceID: "d1"}, []int64{1, 3}},
		{driver.CredentialQuery{Tenant: "t1", DeviceID: "d2"}, []int64{2}},
		{driver.CredentialQuery{Tenant: "t2", DeviceID: "d1"}, []int64{6}},
		{driver.CredentialQuery{Tenant: "t1", DeviceID: "none"}, nil},
		{driver.CredentialQuery{Tenant: "t1", ExpiresBefore: t0.Add(3 * 24 * time.Hour)}, []int64{1, 2}},
		{driver.CredentialQuery{Tenant: "t1", ExpiresAfter: t0.Add(3 * 24 * time.Hour)}, []int64{3, 4, 5}},
		{driver.CredentialQuery{ExpiresAfter: t0.Add(2 * 24 * time.Hour), ExpiresBefore: t0.Add(4 * 24 * time.Hour)}, []int64{2, 3}},
		{driver.CredentialQuery{Tenant: "t1", DeviceID: "d1", ExpiresBefore: t0.Add(2 * 24 * time.Hour), After: 0}, []int64{1}},
		{driver.CredentialQuery{Tenant: "t1", DeviceID: "d1", After: 1}, []int64{3}},
	} {
		if got := numbers(c.q); fmt.Sprint(got) != fmt.Sprint(c.want) {
			e.t.Fatalf("%+v selects %v, want %v", c.q, got, c.want)
		}
	}
	e.must(s.PutBinding(e.ctx, b("t1", "d2", 1, "/c")), "PutBinding")
	of, err := s.BindingsOf(e.ctx, 1)
	e.must(err, "BindingsOf")
	var got []string
	for _, x := range of {
		got = append(got, x.DeviceID+x.Path)
	}
	if fmt.Sprint(got) != "[d1/a d1/b d2/c]" {
		e.t.Fatalf("BindingsOf(1) must return every binding of the credential, oldest first: %v", got)
	}
	if of, err := s.BindingsOf(e.ctx, 99); err != nil || len(of) != 0 {
		e.t.Fatalf("BindingsOf of an unbound credential: %v (%v)", of, err)
	}
}

// testCredentialDelete: DeleteCredential removes the record, its bindings
// and its notices, frees its serial, leaves the others, rolls back inside
// Atomic, and answers ErrNotFound for what is absent.
func testCredentialDelete(e *env) {
	s := e.store()
	e.must(s.CreateCredential(e.ctx, cert(1, "t1", "ca1", "0A")), "CreateCredential")
	e.must(s.CreateCredential(e.ctx, cert(2, "t1", "ca1", "0B")), "CreateCredential")
	b := func(n int64) *driver.BindingRecord {
		return &driver.BindingRecord{Tenant: "t1", DeviceID: "d1", KeyNumber: n, Path: "/p", CreatedAt: t0}
	}
	e.must(s.PutBinding(e.ctx, b(1), b(2)), "PutBinding")
	_, err := s.PutNotice(e.ctx, &driver.NoticeRecord{KeyNumber: 1, Kind: "expired", At: t0})
	e.must(err, "PutNotice")

	rollback := errors.New("roll back")
	err = s.Atomic(e.ctx, func(tx driver.Tx) error {
		if err := tx.DeleteCredential(e.ctx, 1); err != nil {
			return err
		}
		return rollback
	})
	e.wantErr(err, rollback, "Atomic returns fn's error")
	if _, err := s.GetCredential(e.ctx, 1); err != nil {
		e.t.Fatalf("a DeleteCredential rolled back must leave the record: %v", err)
	}

	e.must(s.DeleteCredential(e.ctx, 1), "DeleteCredential")
	_, err = s.GetCredential(e.ctx, 1)
	e.wantErr(err, driver.ErrNotFound, "a deleted credential is absent")
	_, err = s.GetCredentialBySerial(e.ctx, "ca1", "0A")
	e.wantErr(err, driver.ErrNotFound, "and so is its serial")
	e.wantErr(s.DeleteCredential(e.ctx, 1), driver.ErrNotFound, "DeleteCredential of an absent credential")
	if bs, err := s.ListBindings(e.ctx, "t1", "d1", 1); err != nil || len(bs) != 0 {
		e.t.Fatalf("DeleteCredential must remove its bindings: %d left (%v)", len(bs), err)
	}
	if bs, err := s.ListBindings(e.ctx, "t1", "d1", 2); err != nil || len(bs) != 1 {
		e.t.Fatalf("DeleteCredential must leave the other credentials' bindings: %d (%v)", len(bs), err)
	}
	if isNew, err := s.PutNotice(e.ctx, &driver.NoticeRecord{KeyNumber: 1, Kind: "expired", At: t0}); err != nil || !isNew {
		e.t.Fatalf("DeleteCredential must remove its notices: PutNotice again reports %v (%v)", isNew, err)
	}
	e.must(s.CreateCredential(e.ctx, cert(3, "t1", "ca1", "0A")), "a deleted credential's serial may be taken again")
}

// testNoticeOnce: of concurrent PutNotice calls for one (keynumber, kind),
// on two handles and inside transactions, exactly one reports true; other
// kinds and credentials are their own.
func testNoticeOnce(e *env) {
	a, b := e.store(), e.store()
	const n = 12
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		wins  int
		fails []error
	)
	start := make(chan struct{})
	for i := range n {
		s := a
		if i%2 == 1 {
			s = b
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			var isNew bool
			var err error
			if i%3 == 0 {
				err = s.Atomic(e.ctx, func(tx driver.Tx) error {
					var err error
					isNew, err = tx.PutNotice(e.ctx, &driver.NoticeRecord{KeyNumber: 7, Kind: "expiring/168h0m0s", At: t0})
					return err
				})
			} else {
				isNew, err = s.PutNotice(e.ctx, &driver.NoticeRecord{KeyNumber: 7, Kind: "expiring/168h0m0s", At: t0})
			}
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				fails = append(fails, err)
			} else if isNew {
				wins++
			}
		}()
	}
	close(start)
	wg.Wait()
	if len(fails) > 0 || wins != 1 {
		e.t.Fatalf("of %d concurrent PutNotice calls exactly one must record it: %d did, errors %v", n, wins, fails)
	}
	for _, r := range []*driver.NoticeRecord{{KeyNumber: 7, Kind: "expired", At: t0}, {KeyNumber: 8, Kind: "expiring/168h0m0s", At: t0}} {
		if isNew, err := a.PutNotice(e.ctx, r); err != nil || !isNew {
			e.t.Fatalf("a notice of another kind or credential is new: %v (%v)", isNew, err)
		}
	}
	// A duplicate inside a transaction does not abort it.
	e.must(a.Atomic(e.ctx, func(tx driver.Tx) error {
		if isNew, err := tx.PutNotice(e.ctx, &driver.NoticeRecord{KeyNumber: 7, Kind: "expired", At: t0}); err != nil || isNew {
			return fmt.Errorf("a duplicate PutNotice: %v, %w", isNew, err)
		}
		return tx.CreateCredential(e.ctx, cert(9, "t1", "ca1", "09"))
	}), "a transaction with a duplicate notice commits")
	if _, err := a.GetCredential(e.ctx, 9); err != nil {
		e.t.Fatalf("the transaction's other writes must commit: %v", err)
	}
}

func testBindingCreateList(e *env) {
	s := e.store()
	long := "/" + strings.Repeat("p", lifecycle.MaxPathLen-1)
	b := func(dev string, n int64, path string) *driver.BindingRecord {
		return &driver.BindingRecord{Tenant: "t1", DeviceID: dev, KeyNumber: n, Path: path, CreatedAt: t0}
	}
	e.must(s.PutBinding(e.ctx, b("d1", 1, "/etc/a.pem")), "CreateBinding")
	e.must(s.PutBinding(e.ctx, b("d1", 1, long)), "CreateBinding with a 1024-byte path")
	e.must(s.PutBinding(e.ctx, b("d1", 2, "/etc/a.pem")), "the same path for another credential")
	e.must(s.PutBinding(e.ctx, b("d2", 1, "/etc/a.pem")), "the same credential on another device")
	e.must(s.PutBinding(e.ctx, b("d1", 1, "/etc/a.pem")), "putting an existing binding again is not an error")
	e.must(s.Atomic(e.ctx, func(tx driver.Tx) error {
		if err := tx.PutBinding(e.ctx, b("d1", 1, "/etc/a.pem")); err != nil {
			return err
		}
		// the transaction must still work after the no-op
		_, err := tx.ListBindings(e.ctx, "t1", "d1", 1)
		return err
	}), "an existing binding put again inside a transaction")
	e.must(s.PutBinding(e.ctx, b("d1", 1, "/etc/A.pem")), "paths compare case-sensitively")
	e.must(s.PutBinding(e.ctx, b("d3", 7, "/x"), b("d3", 8, "/y"), b("d1", 1, "/etc/a.pem")), "several bindings at once, one of them existing")
	if got, _ := s.ListBindings(e.ctx, "t1", "d3", 8); len(got) != 1 || got[0].Path != "/y" {
		e.t.Fatal("every binding of a PutBinding is recorded")
	}
	got, err := s.ListBindings(e.ctx, "t1", "d1", 1)
	e.must(err, "ListBindings")
	var paths []string
	for _, g := range got {
		if g.Tenant != "t1" || g.DeviceID != "d1" || g.KeyNumber != 1 || !sameTime(g.CreatedAt, t0) {
			e.t.Fatalf("ListBindings returned a foreign binding: %+v", *g)
		}
		paths = append(paths, g.Path)
	}
	if len(paths) != 3 || paths[0] != "/etc/a.pem" || paths[1] != long || paths[2] != "/etc/A.pem" {
		e.t.Fatalf("ListBindings must return the device's bindings of the credential, oldest first: got %d %q", len(paths), paths)
	}
	at, err := s.BindingsAt(e.ctx, "t1", "d1", "/etc/a.pem", 10)
	e.must(err, "BindingsAt")
	if len(at) != 2 || at[0].KeyNumber != 2 || at[1].KeyNumber != 1 {
		e.t.Fatalf("BindingsAt must return the device's bindings at the path, newest first: %d", len(at))
	}
	if at, _ := s.BindingsAt(e.ctx, "t1", "d1", "/etc/a.pem", 1); len(at) != 1 || at[0].KeyNumber != 2 {
		e.t.Fatal("BindingsAt must honour its limit")
	}
	var many []*driver.BindingRecord
	for kn := range int64(9) {
		many = append(many, b("d4", 20+kn, "/many"))
	}
	e.must(s.PutBinding(e.ctx, many...), "more bindings at once than one statement may take")
	if at, err := s.BindingsAt(e.ctx, "t1", "d4", "/many", 100); err != nil || len(at) != len(many) {
		e.t.Fatalf("PutBinding of %d bindings at once must record each: %d, %v", len(many), len(at), err)
	}
	none, err := s.ListBindings(e.ctx, "t2", "d1", 1)
	e.must(err, "ListBindings of another tenant")
	if len(none) != 0 {
		e.t.Fatal("ListBindings must not return another tenant's bindings")
	}
}

func testSequenceBasic(e *env) {
	s := e.store()
	for _, seq := range []driver.Sequence{driver.SeqKeyID, driver.SeqKeyNumber, driver.SeqCRLNumber, "custom"} {
		for want := int64(1); want <= 3; want++ {
			n, err := s.NextNumber(e.ctx, seq)
			e.must(err, "NextNumber(%s)", seq)
			if n != want {
				e.t.Fatalf("sequence %s must start at 1 and increment by one: got %d, want %d", seq, n, want)
			}
		}
	}
}

func testTimeRoundTrip(e *env) {
	s := e.store()
	tokyo := time.FixedZone("JST", 9*3600)
	times := []time.Time{
		time.Date(2038, 1, 19, 3, 14, 8, 0, time.UTC),          // past the 32-bit rollover
		time.Date(2117, 3, 21, 1, 2, 3, 999_000_000, time.UTC), // the reference's far expirations
		time.Date(9999, 12, 31, 23, 59, 59, 999_000_000, time.UTC),
		time.Date(1970, 1, 1, 0, 0, 0, 1_000_000, time.UTC),
		time.Date(2026, 6, 1, 9, 0, 0, 123_456_789, tokyo), // not UTC, sub-millisecond
	}
	for i, tm := range times {
		r := psk(int64(i+1), "t")
		r.CreatedAt, r.ExpiresAt = tm, tm
		e.must(s.CreatePSK(e.ctx, r), "CreatePSK")
		got, err := s.GetPSK(e.ctx, int64(i+1))
		e.must(err, "GetPSK")
		if got.ExpiresAt.Location() != time.UTC {
			e.t.Fatalf("times must be returned in UTC, got %v", got.ExpiresAt.Location())
		}
		if !sameTime(got.ExpiresAt, tm) {
			e.t.Fatalf("times must round-trip to the millisecond: wrote %v, read %v", tm, got.ExpiresAt)
		}
	}
	d := device("t", "d", "n")
	d.ExpiresAt = time.Time{}
	e.must(s.CreateDevice(e.ctx, d), "CreateDevice")
	got, _ := s.GetDevice(e.ctx, "t", "d")
	if !got.ExpiresAt.IsZero() {
		e.t.Fatalf("a zero time must read back as zero, got %v", got.ExpiresAt)
	}
}

func testBinaryRoundTrip(e *env) {
	s := e.store()
	all := make([]byte, 256)
	for i := range all {
		all[i] = byte(i)
	}
	big := bytes.Repeat(all, 256) // 64 KiB, every byte value, NULs included
	c := cert(1, "t", "ca1", "01")
	c.Certificate, c.Secret = big, all
	e.must(s.CreateCredential(e.ctx, c), "CreateCredential with binary data")
	got, err := s.GetCredential(e.ctx, 1)
	e.must(err, "GetCredential")
	if !bytes.Equal(got.Certificate, big) || !bytes.Equal(got.Secret, all) {
		e.t.Fatal("binary data must round-trip byte for byte")
	}
	p := psk(1, "t")
	p.Password = []byte{0, 0, 0}
	e.must(s.CreatePSK(e.ctx, p), "CreatePSK")
	gp, _ := s.GetPSK(e.ctx, 1)
	if !bytes.Equal(gp.Password, p.Password) {
		e.t.Fatal("NUL bytes must round-trip")
	}
	// text with every plane of Unicode
	d := device("t", "d", "名前-😀-ÄÖ")
	d.ExtData = map[string]string{"k😀": strings.Repeat("é", 128)}
	e.must(s.CreateDevice(e.ctx, d), "CreateDevice with non-ASCII text")
	gd, err := s.GetDeviceByName(e.ctx, "t", "名前-😀-ÄÖ")
	e.must(err, "GetDeviceByName with non-ASCII text")
	e.checkDevice(gd, d)
}

func testErrorsWrap(e *env) {
	s := e.store()
	type check struct {
		name   string
		err    error
		target error
	}
	var checks []check
	_, err := s.GetPSK(e.ctx, 1)
	checks = append(checks, check{"GetPSK", err, driver.ErrNotFound})
	_, err = s.GetDevice(e.ctx, "t", "x")
	checks = append(checks, check{"GetDevice", err, driver.ErrNotFound})
	_, err = s.GetDeviceByName(e.ctx, "t", "x")
	checks = append(checks, check{"GetDeviceByName", err, driver.ErrNotFound})
	_, err = s.GetCredentialBySerial(e.ctx, "ca1", "01")
	checks = append(checks, check{"GetCredentialBySerial", err, driver.ErrNotFound})
	err = s.Atomic(e.ctx, func(tx driver.Tx) error {
		_, err := tx.GetPSK(e.ctx, 99)
		return err
	})
	checks = append(checks, check{"Atomic returning a Tx error", err, driver.ErrNotFound})
	e.must(s.CreatePSK(e.ctx, psk(1, "t")), "CreatePSK")
	err = s.Atomic(e.ctx, func(tx driver.Tx) error { return tx.CreatePSK(e.ctx, psk(1, "t")) })
	checks = append(checks, check{"Atomic returning ErrExists", err, driver.ErrExists})
	for _, c := range checks {
		if !errors.Is(c.err, c.target) {
			e.t.Errorf("%s: errors must wrap the sentinels: got %v, want %v", c.name, c.err, c.target)
		}
	}
}
