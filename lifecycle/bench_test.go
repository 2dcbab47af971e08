package lifecycle_test

import (
	"context"
	"testing"

	"github.com/credlife/clm/lifecycle"
)

func BenchmarkIssuePSK(b *testing.B) {
	ctx := context.Background()
	e := newEngine(b, openStore(b), nil)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := e.IssuePSK(ctx, lifecycle.IssuePSKRequest{Tenant: "t", Alias: "a"}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAuthenticatePSK(b *testing.B) {
	ctx := context.Background()
	e := newEngine(b, openStore(b), nil)
	p, err := e.IssuePSK(ctx, lifecycle.IssuePSKRequest{Tenant: "t", Alias: "a"})
	if err != nil {
		b.Fatal(err)
	}
	creds := lifecycle.PSKCredentials{KeyID: p.KeyID, Password: p.Password}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := e.AuthenticatePSK(ctx, creds); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSealOpen(b *testing.B) {
	ctx := context.Background()
	s := lifecycle.NewSealer(keys(b, 1, 1), nil)
	pt := make([]byte, 64)
	ad := []byte("clm/psk/0000000001/password")
	b.ReportAllocs()
	for b.Loop() {
		sealed, err := s.Seal(ctx, pt, ad)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := s.Open(ctx, sealed, ad); err != nil {
			b.Fatal(err)
		}
	}
}

// keyBench is an engine with a PSK and a registered device.
func keyBench(b *testing.B) (*lifecycle.Engine, lifecycle.PSKCredentials, lifecycle.DeviceRequest) {
	ctx := context.Background()
	e := newEngine(b, openStore(b), nil)
	p, err := e.IssuePSK(ctx, lifecycle.IssuePSKRequest{Tenant: "t", Alias: "a"})
	if err != nil {
		b.Fatal(err)
	}
	creds := lifecycle.PSKCredentials{KeyID: p.KeyID, Password: p.Password}
	d, err := e.EnrollDevice(ctx, lifecycle.EnrollDeviceRequest{PSK: creds, Device: lifecycle.DeviceRequest{Name: "d"}})
	if err != nil {
		b.Fatal(err)
	}
	return e, creds, lifecycle.DeviceRequest{ID: d.Device.ID, Key: d.Key}
}

func BenchmarkCreateKey(b *testing.B) {
	ctx := context.Background()
	e, creds, dev := keyBench(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := e.CreateKey(ctx, lifecycle.CreateKeyRequest{PSK: creds, Device: dev, Alias: "k", KeyType: "AES", KeyPath: "/tmp/key", Path: "/k"}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkGetKey(b *testing.B) {
	ctx := context.Background()
	e, creds, dev := keyBench(b)
	k, err := e.CreateKey(ctx, lifecycle.CreateKeyRequest{PSK: creds, Device: dev, Alias: "k", KeyType: "AES", KeyPath: "/tmp/key", Path: "/k"})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := e.GetKey(ctx, lifecycle.GetKeyRequest{PSK: creds, Device: dev, KeyNumber: k.KeyNumber, Path: "/k"}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRotateKey(b *testing.B) {
	ctx := context.Background()
	e, creds, dev := keyBench(b)
	k, err := e.CreateKey(ctx, lifecycle.CreateKeyRequest{PSK: creds, Device: dev, Alias: "k", KeyType: "AES", KeyPath: "/tmp/key", Path: "/k"})
	if err != nil {
		b.Fatal(err)
	}
	kn := k.KeyNumber
	b.ReportAllocs()
	for b.Loop() {
		r, err := e.RotateKey(ctx, lifecycle.RotateKeyRequest{PSK: creds, Device: dev, KeyNumber: kn, Path: "/k"})
		if err != nil {
			b.Fatal(err)
		}
		kn = r.KeyNumber
	}
}

func BenchmarkDeleteKey(b *testing.B) {
	ctx := context.Background()
	e, creds, dev := keyBench(b)
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		k, err := e.CreateKey(ctx, lifecycle.CreateKeyRequest{PSK: creds, Device: dev, Alias: "k", KeyType: "AES", KeyPath: "/tmp/key", Path: "/k"})
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		if _, err := e.DeleteKey(ctx, lifecycle.DeleteKeyRequest{PSK: creds, Device: dev, KeyNumber: k.KeyNumber, Key: k.Key, Path: "/k"}); err != nil {
			b.Fatal(err)
		}
	}
}
