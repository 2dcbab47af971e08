package main

import (
	"os"
	"strings"
	"testing"
)

// TestREADMESample: the README's library sample is this program, and it
// runs twice in a row on the same database (its master key is kept).
func TestREADMESample(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	prog, err := os.ReadFile("main.go")
	if err != nil {
		t.Fatal(err)
	}
	body := string(prog[strings.Index(string(prog), "package main"):])
	if !strings.Contains(string(readme), "```go\n"+body+"```\n") {
		t.Fatal("the README's library sample must be examples/quickstart/main.go from its package clause on")
	}
	t.Chdir(t.TempDir())
	main()
	main()
	for _, f := range []string{"clm.db", "clm.masterkey"} {
		if _, err := os.Stat(f); err != nil {
			t.Fatal(err)
		}
	}
}
