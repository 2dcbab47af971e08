package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// TestCompareSmall runs the seeding and the comparison on small stores:
// the loader's rows are accepted by the schema and the engine works on
// top of them.
func TestCompareSmall(t *testing.T) {
	var out bytes.Buffer
	if err := compare(context.Background(), 50, 500, 5, &out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"seeded 50", "authenticate", "get", "issue", "heap in use"} {
		if !strings.Contains(out.String(), want) {
			t.Fatalf("want %q in:\n%s", want, out.String())
		}
	}
}
