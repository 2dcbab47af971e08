package lifecycle_test

import (
	"testing"

	"github.com/credlife/clm/lifecycle"
)

func TestParseKeyID(t *testing.T) {
	tests := []struct {
		in      string
		want    int64
		wantErr bool
	}{
		{"0000000001", 1, false},
		{"1", 1, false},
		{"9999999999", 9999999999, false},
		{"0000000000", 0, true},
		{"", 0, true},
		{"12345678901", 0, true},
		{"-1", 0, true},
		{"1e3", 0, true},
		{" 1", 0, true},
		{"１", 0, true}, // a full-width digit
	}
	for _, tc := range tests {
		got, err := lifecycle.ParseKeyID(tc.in)
		if (err != nil) != tc.wantErr || got != tc.want {
			t.Errorf("ParseKeyID(%q) = %d, %v; want %d, error %v", tc.in, got, err, tc.want, tc.wantErr)
		}
	}
	if s := lifecycle.FormatKeyID(42); s != "0000000042" {
		t.Errorf("FormatKeyID(42) = %q", s)
	}
}

func TestParseMACAddress(t *testing.T) {
	tests := []struct{ in, want string }{
		{"12:34:56:78:90:12", "12:34:56:78:90:12"},
		{"12-34-56-78-90-AB", "12:34:56:78:90:ab"},
		{"1234567890aB", "12:34:56:78:90:ab"},
		{"12:34:56:78:90", ""},
		{"12:34-56:78:90:12", ""},
		{"12.34.56.78.90.12", ""},
		{"1234567890ag", ""},
		{"12:34:56:78:90:12:34", ""},
		{"", ""},
	}
	for _, tc := range tests {
		got, err := lifecycle.ParseMACAddress(tc.in)
		if (err != nil) != (tc.want == "") || got != tc.want {
			t.Errorf("ParseMACAddress(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

func TestParseIPAddress(t *testing.T) {
	tests := []struct{ in, want string }{
		{"192.168.0.1", "192.168.0.1"},
		{"2001:DB8:0::1", "2001:db8::1"},
		{"::ffff:192.0.2.1", "::ffff:192.0.2.1"},
		{"192.168.000.001", ""},
		{"256.1.1.1", ""},
		{"fe80::1%eth0", ""},
		{"example.com", ""},
		{"", ""},
	}
	for _, tc := range tests {
		got, err := lifecycle.ParseIPAddress(tc.in)
		if (err != nil) != (tc.want == "") || got != tc.want {
			t.Errorf("ParseIPAddress(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}
