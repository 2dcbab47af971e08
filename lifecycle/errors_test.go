package lifecycle_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/credlife/clm/lifecycle"
)

func TestErrorIsCode(t *testing.T) {
	cause := errors.New("driver detail")
	err := fmt.Errorf("wrapped: %w", &lifecycle.Error{Code: lifecycle.CodePSKNotFound, Op: "GetPSK", Err: cause})
	tests := []struct {
		name   string
		target error
		want   bool
	}{
		{"its code", lifecycle.CodePSKNotFound, true},
		{"another code", lifecycle.CodePasswordMismatch, false},
		{"its cause", cause, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := errors.Is(err, tc.target); got != tc.want {
				t.Fatalf("errors.Is(%v, %v) = %v, want %v", err, tc.target, got, tc.want)
			}
		})
	}
	var e *lifecycle.Error
	if !errors.As(err, &e) || e.Op != "GetPSK" {
		t.Fatal("errors.As must find the *Error")
	}
}

func TestCodeOf(t *testing.T) {
	tests := []struct {
		err  error
		want lifecycle.Code
	}{
		{nil, lifecycle.CodeOK},
		{&lifecycle.Error{Code: lifecycle.CodeDeviceNotFound}, lifecycle.CodeDeviceNotFound},
		{fmt.Errorf("x: %w", lifecycle.CodeLockTimeout), lifecycle.CodeLockTimeout},
		{errors.New("anything else"), lifecycle.CodeSystem},
	}
	for _, tc := range tests {
		if got := lifecycle.CodeOf(tc.err); got != tc.want {
			t.Errorf("CodeOf(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

func TestCodesCoverTheSpecTable(t *testing.T) {
	codes := lifecycle.Codes()
	if len(codes) != 48 {
		t.Fatalf("the spec's table has 48 codes, Codes() has %d", len(codes))
	}
	for i, c := range codes {
		if i > 0 && codes[i-1] >= c {
			t.Fatal("Codes() must be ascending")
		}
		if c.String() == fmt.Sprint(int(c)) {
			t.Errorf("code %d has no meaning", int(c))
		}
	}
	if s := lifecycle.CodePSKNotFound.String(); s != "1204 PSK not found" {
		t.Errorf("String() = %q", s)
	}
}
