// Package softhsm makes SoftHSM2 tokens for tests: a PKCS#11 token in a
// temporary directory. Without SoftHSM2 the test is skipped, except under
// CI=true, where it fails (.ci/run installs softhsm2).
package softhsm

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// Module is where Debian's softhsm2 package puts the PKCS#11 module.
const Module = "/usr/lib/softhsm/libsofthsm2.so"

// Token makes a token labelled "clm" (user PIN 1234) in a temporary
// directory, points SOFTHSM2_CONF at it for the rest of the test, and
// returns the go.step.sm/crypto/kms URI that opens it.
func Token(t testing.TB) string {
	t.Helper()
	_, err := os.Stat(Module)
	if _, err2 := exec.LookPath("softhsm2-util"); err != nil || err2 != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("SoftHSM2 is required in CI (.ci/run installs softhsm2)")
		}
		t.Skip("no SoftHSM2")
	}
	dir := t.TempDir()
	conf := filepath.Join(dir, "softhsm2.conf")
	if err := os.MkdirAll(filepath.Join(dir, "tokens"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(conf, []byte("directories.tokendir = "+filepath.Join(dir, "tokens")+"\nobjectstore.backend = file\nlog.level = ERROR\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SOFTHSM2_CONF", conf)
	out, err := exec.Command("softhsm2-util", "--init-token", "--free", "--label", "clm", "--pin", "1234", "--so-pin", "5678").CombinedOutput()
	if err != nil {
		t.Fatalf("softhsm2-util: %v %s", err, out)
	}
	return "pkcs11:module-path=" + Module + ";token=clm?pin-value=1234"
}
