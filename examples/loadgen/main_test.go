package main

import "testing"

func TestLoopbackOnly(t *testing.T) {
	for _, u := range []string{"http://127.0.0.1:8080", "https://localhost:8443", "http://[::1]:80", "http://127.3.4.5"} {
		if err := loopbackOnly(u); err != nil {
			t.Errorf("%s must be allowed: %v", u, err)
		}
	}
	for _, u := range []string{"http://10.0.0.1:8080", "http://192.168.1.2", "http://example.com", "127.0.0.1:8080", ""} {
		if err := loopbackOnly(u); err == nil {
			t.Errorf("%s must be refused: load goes to loopback only", u)
		}
	}
}

func TestParseMix(t *testing.T) {
	m, err := parseMix("psk-auth=4,cert-issue")
	if err != nil || len(m) != 2 || m[0].weight != 4 || m[1].weight != 1 {
		t.Fatalf("parseMix: %v %v", m, err)
	}
	for _, bad := range []string{"nope=1", "psk-auth=x", "psk-auth=-1"} {
		if _, err := parseMix(bad); err == nil {
			t.Errorf("parseMix(%q) must fail", bad)
		}
	}
}
