package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/credlife/clm/backends/gormstore"
	"github.com/credlife/clm/backends/mysqlstore"
	"github.com/credlife/clm/backends/postgresstore"
	"github.com/credlife/clm/httpadapter/client"
	"github.com/credlife/clm/internal/testdb"
	"github.com/credlife/clm/lifecycle"
	"github.com/credlife/clm/lifecycle/driver"
)

const raceMasterKey = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="

// buildServer builds the clmserver binary once per test run.
func buildServer(t testing.TB) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "clmserver")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// startProcess starts a clmserver process on store (with extra flags) and
// returns its URL; the test's cleanup stops it with SIGINT.
func startProcess(t testing.TB, bin, store string, extra ...string) string {
	t.Helper()
	url, cmd := launchProcess(t, bin, append([]string{"-store", store, "-license", "race-license-0123456789", "-data-dir", t.TempDir()}, extra...)...)
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			cmd.Process.Kill()
			t.Error("a server process did not stop on SIGINT")
		}
	})
	return url
}

// launchProcess starts a clmserver process on a free loopback port with
// args and the test master key, and returns its URL and the process once
// it serves; stopping it is the caller's.
func launchProcess(t testing.TB, bin string, args ...string) (string, *exec.Cmd) {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"-addr", "127.0.0.1:0", "-log-level", "error"}, args...)...)
	cmd.Env = append(os.Environ(), "CLM_MASTER_KEY="+raceMasterKey)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := bufio.NewScanner(out)
	for lines.Scan() {
		if rest, ok := strings.CutPrefix(lines.Text(), "clmserver: serving the CLM v10 protocol at "); ok {
			go func() {
				for lines.Scan() {
				}
			}()
			return strings.TrimSuffix(strings.Fields(rest)[0], "/SWCLM/v10/"), cmd
		}
	}
	cmd.Process.Kill()
	cmd.Wait()
	t.Fatal("a server process did not start")
	return "", nil
}

// ack is a success a client saw, with the state it was told.
type ack struct {
	keyNumber int64
	state     driver.CredentialState
	what      string
}

// TestMultiProcessRaces runs two clmserver processes on one MariaDB or
// PostgreSQL database, drives them from many clients for a bounded time
// with every lifecycle operation, including renewals racing revocations and
// rotations racing deletions of one credential across the two processes,
// then audits the database.
func TestMultiProcessRaces(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	bin := buildServer(t)
	for _, db := range []struct {
		name string
		dsn  func(testing.TB) string
		open func(context.Context, string, *gormstore.Options) (*gormstore.Store, error)
	}{
		{"mysql", testdb.MySQL, mysqlstore.Open},
		{"postgres", testdb.Postgres, postgresstore.Open},
	} {
		t.Run(db.name, func(t *testing.T) {
			dsn := db.dsn(t)
			a := startProcess(t, bin, db.name+":"+dsn)
			b := startProcess(t, bin, db.name+":"+dsn)
			raceAndAudit(t, db.name, []*client.Client{client.New(a, "race-license-0123456789", nil), client.New(b, "race-license-0123456789", nil)},
				func(ctx context.Context) (*gormstore.Store, error) { return db.open(ctx, dsn, nil) })
		})
	}
}

func raceAndAudit(t *testing.T, dbName string, servers []*client.Client, open func(context.Context) (*gormstore.Store, error)) {
	ctx := context.Background()
	const workers = 8
	deadline := time.Now().Add(6 * time.Second)
	var (
		served, races, oneWinner atomic.Int64
		mu                       sync.Mutex
		acks                     []ack
		failures                 []string
	)
	record := func(a ack) { mu.Lock(); acks = append(acks, a); mu.Unlock() }
	fail := func(format string, args ...any) {
		mu.Lock()
		failures = append(failures, fmt.Sprintf(format, args...))
		mu.Unlock()
	}
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 7))
			A, B := servers[w%2], servers[(w+1)%2]
			psk, err := A.IssuePSK(ctx, lifecycle.IssuePSKRequest{Tenant: fmt.Sprint("tenant", w%3), Alias: "race"})
			if err != nil {
				fail("IssuePSK: %v", err)
				return
			}
			served.Add(1)
			creds := lifecycle.PSKCredentials{KeyID: psk.KeyID, Password: psk.Password}
			first, err := A.CreateKey(ctx, lifecycle.CreateKeyRequest{PSK: creds, Device: lifecycle.DeviceRequest{Name: fmt.Sprint("dev", w)}, Alias: "k", KeyType: "AES", KeyPath: "/k", Path: "/k0"})
			if err != nil {
				fail("CreateKey: %v", err)
				return
			}
			served.Add(1)
			record(ack{first.KeyNumber, driver.StateValid, "created"})
			dev := lifecycle.DeviceRequest{ID: first.Device.Device.ID, Name: fmt.Sprint("dev", w), Key: first.Device.Key}
			for i := 0; time.Now().Before(deadline); i++ {
				path := fmt.Sprintf("/w%d/%d", w, i)
				switch rng.IntN(4) {
				case 0: // a renewal racing a revocation, on two processes
					c, err := A.IssueCertificate(ctx, lifecycle.IssueCertificateRequest{PSK: creds, Device: dev, CA: "ca1", Subject: "/CN=race", KeyPath: "/k", Path: path, CAPath: "/ca"})
					served.Add(1)
					if err != nil {
						fail("IssueCertificate: %v", err)
						continue
					}
					record(ack{c.Certificate.KeyNumber, driver.StateValid, "issued"})
					ref := lifecycle.CertificateRef{KeyNumber: c.Certificate.KeyNumber}
					var renewed *lifecycle.CertificateResult
					var errRenew, errRevoke error
					var rw sync.WaitGroup
					rw.Add(2)
					go func() {
						defer rw.Done()
						renewed, errRenew = A.RenewCertificate(ctx, lifecycle.RenewCertificateRequest{PSK: creds, Device: dev, CA: "ca1", Ref: ref, Passphrase: "p", Path: path})
					}()
					go func() {
						defer rw.Done()
						_, errRevoke = B.RevokeCertificate(ctx, lifecycle.RevokeCertificateRequest{PSK: creds, Device: dev, CA: "ca1", Ref: ref})
					}()
					rw.Wait()
					served.Add(2)
					races.Add(1)
					switch {
					case errRenew == nil && errors.Is(errRevoke, lifecycle.CodeCertRevoked):
						oneWinner.Add(1)
						record(ack{c.Certificate.KeyNumber, driver.StateSuperseded, "renewed away"})
						record(ack{renewed.Certificate.KeyNumber, driver.StateValid, "renewal"})
					case errRevoke == nil && errors.Is(errRenew, lifecycle.CodeCertRevoked):
						oneWinner.Add(1)
						record(ack{c.Certificate.KeyNumber, driver.StateRevoked, "revoked"})
					default:
						fail("renew/revoke race: renew %v, revoke %v", errRenew, errRevoke)
					}
				case 1: // a rotation racing a deletion
					k, err := A.CreateKey(ctx, lifecycle.CreateKeyRequest{PSK: creds, Device: dev, Alias: "r", KeyType: "TWINE", KeyLength: 80, KeyPath: "/k", Path: path})
					served.Add(1)
					if err != nil {
						fail("CreateKey: %v", err)
						continue
					}
					record(ack{k.KeyNumber, driver.StateValid, "created"})
					var rotated *lifecycle.KeyResult
					var errRot, errDel error
					var rw sync.WaitGroup
					rw.Add(2)
					go func() {
						defer rw.Done()
						rotated, errRot = B.RotateKey(ctx, lifecycle.RotateKeyRequest{PSK: creds, Device: dev, KeyNumber: k.KeyNumber, Path: path})
					}()
					go func() {
						defer rw.Done()
						_, errDel = A.DeleteKey(ctx, lifecycle.DeleteKeyRequest{PSK: creds, Device: dev, KeyNumber: k.KeyNumber, Key: k.Key, Path: path})
					}()
					rw.Wait()
					served.Add(2)
					races.Add(1)
					switch {
					case errRot == nil && errors.Is(errDel, lifecycle.CodeKeyUpdated):
						oneWinner.Add(1)
						record(ack{k.KeyNumber, driver.StateSuperseded, "rotated away"})
						record(ack{rotated.KeyNumber, driver.StateValid, "rotation"})
					case errDel == nil && errors.Is(errRot, lifecycle.CodeKeyNotFound):
						oneWinner.Add(1)
						record(ack{k.KeyNumber, driver.StateDeleted, "deleted"})
					default:
						fail("rotate/delete race: rotate %v, delete %v", errRot, errDel)
					}
				case 2: // reads and authentications on either process
					if _, err := B.AuthenticatePSK(ctx, creds); err != nil {
						fail("AuthenticatePSK: %v", err)
					}
					if _, err := B.GetKey(ctx, lifecycle.GetKeyRequest{PSK: creds, Device: dev, KeyNumber: first.KeyNumber, Path: "/k0"}); err != nil {
						fail("GetKey: %v", err)
					}
					ca, err := A.CACertificate(ctx, lifecycle.CACertificateRequest{PSK: creds, Device: dev, CA: "CA", Path: "/ca.pem", KeyPath: "/k"})
					if err != nil {
						fail("CACertificate: %v", err)
					} else if _, err := B.GetCertificate(ctx, lifecycle.GetCertificateRequest{PSK: creds, Device: dev, CA: "CA",
						Ref: lifecycle.CertificateRef{KeyNumber: ca.CA.KeyNumber}, Path: "/ca.pem"}); err != nil {
						fail("GetCertificate: %v", err)
					}
					if _, err := A.CRL(ctx, "ca1"); err != nil {
						fail("CRL: %v", err)
					}
					served.Add(5)
				default: // new PSKs from both processes, and deletions
					p, err := B.IssuePSK(ctx, lifecycle.IssuePSKRequest{Tenant: "tenant-x", Alias: "x"})
					served.Add(1)
					if err != nil || len(p.KeyID) != 10 {
						fail("IssuePSK: %v", err)
						continue
					}
					if err := A.DeletePSK(ctx, lifecycle.PSKCredentials{KeyID: p.KeyID, Password: p.Password}); err != nil {
						fail("DeletePSK: %v", err)
					}
					served.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	for _, f := range failures {
		t.Error(f)
	}

	// The audit, on the database itself.
	st, err := open(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	db := st.DB()
	var dup int64
	for _, q := range []string{
		"SELECT COUNT(*) FROM (SELECT key_id FROM clm_psks GROUP BY key_id HAVING COUNT(*) > 1) d",
		"SELECT COUNT(*) FROM (SELECT key_number FROM clm_credentials GROUP BY key_number HAVING COUNT(*) > 1) d",
		"SELECT COUNT(*) FROM (SELECT ca, serial FROM clm_credentials WHERE serial IS NOT NULL GROUP BY ca, serial HAVING COUNT(*) > 1) d",
	} {
		var n int64
		if err := db.Raw(q).Scan(&n).Error; err != nil {
			t.Fatal(err)
		}
		dup += n
	}
	lost := 0
	for _, a := range acks {
		r, err := st.GetCredential(ctx, a.keyNumber)
		if err != nil {
			t.Errorf("acknowledged %s keynumber %d is missing: %v", a.what, a.keyNumber, err)
			lost++
			continue
		}
		// A credential acknowledged valid may have been changed since by a
		// later acknowledged transition; those are checked on their own.
		if a.state != driver.StateValid && r.State != a.state {
			t.Errorf("acknowledged %s keynumber %d is %v in the store", a.what, a.keyNumber, r.State)
			lost++
		}
		if r.State == driver.StateSuperseded && r.ReplacedBy == 0 {
			t.Errorf("superseded keynumber %d names no successor", a.keyNumber)
		}
	}
	// No valid successor of a revoked certificate: a renewal after a
	// revocation would have one.
	var lineage int64
	db.Raw("SELECT COUNT(*) FROM clm_credentials o JOIN clm_credentials n ON n.key_number = o.replaced_by WHERE o.state = ?", int(driver.StateRevoked)).Scan(&lineage)
	t.Logf("FIGURE races (%s): %d requests served by 2 processes, %d races run (%d with exactly one winner), duplicates %d, lost acknowledgements %d, successors of revoked certificates %d",
		dbName, served.Load(), races.Load(), oneWinner.Load(), dup, lost, lineage)
	if dup != 0 || lost != 0 || lineage != 0 || oneWinner.Load() != races.Load() || races.Load() == 0 {
		t.Fatal("the audit failed")
	}
}
