package lifecycle_test

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/credlife/clm/backends/gormstore"
	"github.com/credlife/clm/backends/sqlitestore"
	"github.com/credlife/clm/lifecycle"
	"github.com/credlife/clm/lifecycle/driver"
)

func openStore(t testing.TB) *gormstore.Store {
	t.Helper()
	s, err := sqlitestore.Open(context.Background(), filepath.Join(t.TempDir(), "clm.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func newEngine(t testing.TB, s driver.Store, o *lifecycle.Options) *lifecycle.Engine {
	t.Helper()
	if o == nil {
		o = &lifecycle.Options{}
	}
	if o.Keys == nil {
		o.Keys = keys(t, 1, 1)
	}
	e, err := lifecycle.New(s, o)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func TestKeyIDExhausted(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	e := newEngine(t, s, nil)
	if err := s.RaiseSequence(ctx, driver.SeqKeyID, lifecycle.MaxKeyID-1); err != nil {
		t.Fatal(err)
	}
	p, err := e.IssuePSK(ctx, lifecycle.IssuePSKRequest{Tenant: "t", Alias: "last"})
	if err != nil || p.KeyID != "9999999999" {
		t.Fatalf("the last keyid must be 9999999999: %v, %v", p, err)
	}
	_, err = e.IssuePSK(ctx, lifecycle.IssuePSKRequest{Tenant: "t", Alias: "past"})
	if !errors.Is(err, lifecycle.CodeKeyIDExhausted) {
		t.Fatalf("past 9999999999 IssuePSK must answer 1205, got %v", err)
	}
	page, _ := e.ListPSKs(ctx, lifecycle.ListPSKsRequest{})
	if len(page.PSKs) != 1 {
		t.Fatalf("a refused issue must store nothing: %d PSKs", len(page.PSKs))
	}
}

func TestNewRefusesUnsafeOptions(t *testing.T) {
	s := openStore(t)
	tests := []struct {
		name string
		o    *lifecycle.Options
	}{
		{"no keys", nil},
		{"weak password policy", &lifecycle.Options{Keys: keys(t, 1, 1), Password: lifecycle.PasswordPolicy{Length: 8, Alphabet: "0123456789"}}},
		{"repeated alphabet", &lifecycle.Options{Keys: keys(t, 1, 1), Password: lifecycle.PasswordPolicy{Length: 64, Alphabet: "aab"}}},
		{"negative validity", &lifecycle.Options{Keys: keys(t, 1, 1), PSKValidity: -time.Hour}},
		{"page size above max", &lifecycle.Options{Keys: keys(t, 1, 1), PageSize: 10, MaxPageSize: 5}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := lifecycle.New(s, tc.o)
			if !errors.Is(err, lifecycle.CodeConfigInvalid) {
				t.Fatalf("New must refuse with 1001, got %v", err)
			}
		})
	}
}

func TestPasswordPolicy(t *testing.T) {
	ctx := context.Background()
	if bits := lifecycle.DefaultPasswordPolicy.Entropy(); bits < 128 {
		t.Fatalf("the default policy must give at least 128 bits, gives %.1f", bits)
	}
	policy := lifecycle.PasswordPolicy{Length: 40, Alphabet: "abcdefghijklmnopqrstuvwxyz"}
	e := newEngine(t, openStore(t), &lifecycle.Options{Password: policy})
	p, err := e.IssuePSK(ctx, lifecycle.IssuePSKRequest{Tenant: "t", Alias: "a"})
	if err != nil {
		t.Fatal(err)
	}
	pw := p.Password.Reveal()
	if len(pw) != 40 || strings.Trim(pw, policy.Alphabet) != "" {
		t.Fatalf("the password must follow the policy: %d characters", len(pw))
	}
}

// TestRandInjected: the same Rand gives the same password, so tests can be
// deterministic; nothing else is drawn from elsewhere.
func TestRandInjected(t *testing.T) {
	ctx := context.Background()
	issue := func() string {
		seed := bytes.Repeat([]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17}, 64)
		e := newEngine(t, openStore(t), &lifecycle.Options{Rand: bytes.NewReader(seed)})
		p, err := e.IssuePSK(ctx, lifecycle.IssuePSKRequest{Tenant: "t", Alias: "a"})
		if err != nil {
			t.Fatal(err)
		}
		return p.Password.Reveal()
	}
	if first, second := issue(), issue(); first != second {
		t.Fatal("an injected Rand must determine the password")
	}
}

func TestStatus(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	e := newEngine(t, s, nil)
	if err := e.Status(ctx); err != nil {
		t.Fatalf("Status of a working store: %v", err)
	}
	s.Close()
	if err := e.Status(ctx); !errors.Is(err, lifecycle.CodeDBConnection) {
		t.Fatalf("Status of a closed store must answer 1601, got %v", err)
	}
}

func TestCheckOrder(t *testing.T) {
	ctx := context.Background()
	e := newEngine(t, openStore(t), nil)
	p, _ := e.IssuePSK(ctx, lifecycle.IssuePSKRequest{Tenant: "t", Alias: "a"})
	good := lifecycle.PSKCredentials{KeyID: p.KeyID, Password: p.Password}
	bad := lifecycle.PSKCredentials{KeyID: p.KeyID, Password: "wrong"}
	tests := []struct {
		name string
		req  lifecycle.EnrollDeviceRequest
		want lifecycle.Code
	}{
		{"missing keyid first", lifecycle.EnrollDeviceRequest{Device: lifecycle.DeviceRequest{IPAddress: "x"}}, lifecycle.CodeMissing},
		{"format before limits", lifecycle.EnrollDeviceRequest{PSK: good, Device: lifecycle.DeviceRequest{Name: strings.Repeat("n", 300), MACAddress: "x"}}, lifecycle.CodeMalformed},
		{"limits before PSK", lifecycle.EnrollDeviceRequest{PSK: bad, Device: lifecycle.DeviceRequest{Name: strings.Repeat("n", 300)}}, lifecycle.CodeOutOfRange},
		{"PSK before device", lifecycle.EnrollDeviceRequest{PSK: bad, Device: lifecycle.DeviceRequest{ID: "unknown"}}, lifecycle.CodePasswordMismatch},
		{"device", lifecycle.EnrollDeviceRequest{PSK: good, Device: lifecycle.DeviceRequest{ID: "unknown"}}, lifecycle.CodeDeviceNotFound},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.EnrollDevice(ctx, tc.req)
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
}

func TestErrorsCarryNoSecret(t *testing.T) {
	ctx := context.Background()
	e := newEngine(t, openStore(t), nil)
	p, _ := e.IssuePSK(ctx, lifecycle.IssuePSKRequest{Tenant: "t", Alias: "a"})
	wrong := "wrong-" + p.Password.Reveal()
	_, err := e.AuthenticatePSK(ctx, lifecycle.PSKCredentials{KeyID: p.KeyID, Password: lifecycle.Secret(wrong)})
	if err == nil || strings.Contains(err.Error(), p.Password.Reveal()) {
		t.Fatalf("an error must not contain a password: %v", err)
	}
	res, _ := e.EnrollDevice(ctx, lifecycle.EnrollDeviceRequest{PSK: lifecycle.PSKCredentials{KeyID: p.KeyID, Password: p.Password}, Device: lifecycle.DeviceRequest{Name: "d"}})
	_, err = e.EnrollDevice(ctx, lifecycle.EnrollDeviceRequest{PSK: lifecycle.PSKCredentials{KeyID: p.KeyID, Password: p.Password},
		Device: lifecycle.DeviceRequest{ID: res.Device.ID, Key: res.Key + "x"}})
	if !errors.Is(err, lifecycle.CodeDeviceKeyMismatch) || strings.Contains(err.Error(), res.Key.Reveal()) {
		t.Fatalf("a device key error must not contain the key: %v", err)
	}
}
