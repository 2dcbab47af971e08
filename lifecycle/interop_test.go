package lifecycle_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/credlife/clm/lifecycle"
)

// TestPKCS12Interop: the PFX files clm writes open in Java keytool (as a
// PrivateKeyEntry), GnuTLS certtool and NSS pk12util, for every key type;
// each refuses a wrong passphrase.
func TestPKCS12Interop(t *testing.T) {
	for _, tool := range []string{"keytool", "certtool", "pk12util", "certutil"} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("%s is required in CI (.ci/run installs it)", tool)
			}
			t.Skipf("no %s", tool)
		}
	}
	f := newCertFixture(t, nil)
	nss := filepath.Join(f.dir, "nss")
	os.Mkdir(nss, 0o700)
	if out, err := exec.Command("certutil", "-N", "-d", "sql:"+nss, "--empty-password").CombinedOutput(); err != nil {
		t.Fatalf("certutil: %v %s", err, out)
	}
	run := func(name string, args ...string) (string, bool) {
		out, err := exec.Command(name, args...).CombinedOutput()
		return string(out), err == nil
	}
	for _, kt := range []lifecycle.CertKeyType{lifecycle.KeyECP256, lifecycle.KeyECP384, lifecycle.KeyRSA2048, lifecycle.KeyEd25519} {
		t.Run(string(kt), func(t *testing.T) {
			r := f.issue(lifecycle.IssueCertificateRequest{Subject: "/CN=interop", KeyType: string(kt), Format: lifecycle.FormatP12, Passphrase: "pfx-pass"})
			p12 := f.write(string(kt)+".p12", r.Certificate.Data)
			for _, pass := range []string{"pfx-pass", "wrong"} {
				good := pass == "pfx-pass"
				out, ok := run("keytool", "-list", "-keystore", p12, "-storetype", "PKCS12", "-storepass", pass)
				if good && (!ok || !strings.Contains(out, "PrivateKeyEntry")) {
					t.Fatalf("keytool must list a PrivateKeyEntry: %s", out)
				}
				if !good && ok {
					t.Fatal("keytool must refuse a wrong passphrase")
				}
				if out, ok := run("certtool", "--p12-info", "--inder", "--infile", p12, "--password", pass); ok != good {
					t.Fatalf("certtool with %s: %v %s", pass, ok, out)
				}
				if out, ok := run("pk12util", "-l", p12, "-W", pass, "-d", "sql:"+nss); ok != good {
					t.Fatalf("pk12util with %s: %v %s", pass, ok, out)
				}
			}
		})
	}
}
