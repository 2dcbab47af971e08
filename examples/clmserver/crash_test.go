package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/credlife/clm/httpadapter/client"
	"github.com/credlife/clm/lifecycle"
)

// killableServer starts a clmserver on store and returns its URL and the
// process, for a test that kills it (the cleanup kills what is left).
func killableServer(t *testing.T, bin, store, dataDir string) (string, *exec.Cmd) {
	t.Helper()
	url, cmd := launchProcess(t, bin, "-store", store, "-license", "crash-license-0123456789", "-data-dir", dataDir)
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	return url, cmd
}

// groupCommits reads the server's clm_store_group_commit_size histogram:
// commits and the transactions they carried.
func groupCommits(t *testing.T, url string) (commits uint64, transactions float64) {
	t.Helper()
	resp, err := http.Get(url + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	require.NoError(t, err)
	f := fams["clm_store_group_commit_size"]
	require.NotNil(t, f, "no group commit histogram")
	h := f.GetMetric()[0].GetHistogram()
	return h.GetSampleCount(), h.GetSampleSum()
}

// TestKillUnderLoad kills a clmserver on SQLite with SIGKILL while 16
// clients issue symmetric keys, certificates and PSKs as fast as they can,
// with group commit sharing transactions between them. After a restart on
// the same file, every credential whose creation was acknowledged is there,
// with the key, the certificate and the password the client was given.
func TestKillUnderLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and kills a server")
	}
	bin := buildServer(t)
	dir := t.TempDir()
	store := "sqlite:" + filepath.Join(dir, "clm.db")
	url, cmd := killableServer(t, bin, store, dir)
	ctx := context.Background()
	cl := client.New(url, "crash-license-0123456789", nil)

	type keyAck struct {
		keyNumber int64
		key       []byte
		dev       lifecycle.DeviceRequest
		creds     lifecycle.PSKCredentials
	}
	type certAck struct {
		keyNumber int64
		serial    string
		dev       lifecycle.DeviceRequest
		creds     lifecycle.PSKCredentials
	}
	var (
		mu    sync.Mutex
		keys  []keyAck
		certs []certAck
		psks  []lifecycle.PSKCredentials
		sent  int
	)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for c := range 16 {
		p, err := cl.IssuePSK(ctx, lifecycle.IssuePSKRequest{Tenant: "crash", Alias: "c"})
		require.NoError(t, err)
		creds := lifecycle.PSKCredentials{KeyID: p.KeyID, Password: p.Password}
		first, err := cl.IssueCertificate(ctx, lifecycle.IssueCertificateRequest{PSK: creds, Device: lifecycle.DeviceRequest{Name: fmt.Sprintf("dev-%d", c)},
			CA: "ca1", Subject: "/CN=crash", KeyPath: "/k", Path: "/first", CAPath: "/ca"})
		require.NoError(t, err)
		dev := lifecycle.DeviceRequest{ID: first.Device.Device.ID, Name: fmt.Sprintf("dev-%d", c), Key: first.Device.Key}
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				path := fmt.Sprintf("/p/%d", i)
				mu.Lock()
				sent++
				mu.Unlock()
				switch i % 3 {
				case 0:
					k, err := cl.CreateKey(ctx, lifecycle.CreateKeyRequest{PSK: creds, Device: dev, Alias: "k", KeyType: "AES", KeyPath: "/k", Path: path})
					if err != nil {
						return // the server is gone
					}
					mu.Lock()
					keys = append(keys, keyAck{k.KeyNumber, k.Key, dev, creds})
					mu.Unlock()
				case 1:
					r, err := cl.IssueCertificate(ctx, lifecycle.IssueCertificateRequest{PSK: creds, Device: dev, CA: "ca1", Subject: "/CN=crash", KeyPath: "/k", Path: path, CAPath: "/ca"})
					if err != nil {
						return
					}
					mu.Lock()
					certs = append(certs, certAck{r.Certificate.KeyNumber, r.Certificate.Serial, dev, creds})
					mu.Unlock()
				case 2:
					p, err := cl.IssuePSK(ctx, lifecycle.IssuePSKRequest{Tenant: "crash", Alias: "p"})
					if err != nil {
						return
					}
					mu.Lock()
					psks = append(psks, lifecycle.PSKCredentials{KeyID: p.KeyID, Password: p.Password})
					mu.Unlock()
				}
			}
		})
	}
	time.Sleep(1500 * time.Millisecond)
	commits, transactions := groupCommits(t, url)
	require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
	killed := time.Now()
	close(stop)
	wg.Wait()
	cmd.Wait()
	t.Logf("FIGURE kill -9 under load (SQLite): %d requests sent, %d acknowledged (%d keys, %d certificates, %d PSKs) before the kill; up to then %d commits carried %.0f transactions (mean group %.2f)",
		sent, len(keys)+len(certs)+len(psks), len(keys), len(certs), len(psks), commits, transactions, transactions/float64(commits))
	require.Greater(t, transactions, float64(commits), "no transactions were grouped: the kill did not test group commit")
	require.NotEmpty(t, keys)
	require.NotEmpty(t, certs)
	require.NotEmpty(t, psks)

	url, _ = killableServer(t, bin, store, dir)
	t.Logf("restarted %v after the kill", time.Since(killed).Round(time.Millisecond))
	cl = client.New(url, "crash-license-0123456789", nil)
	for _, k := range keys {
		got, err := cl.GetKey(ctx, lifecycle.GetKeyRequest{PSK: k.creds, Device: k.dev, KeyNumber: k.keyNumber, Path: "/check"})
		if assert.NoError(t, err, "acknowledged key %d lost", k.keyNumber) {
			assert.True(t, bytes.Equal(k.key, got.Key), "key %d changed", k.keyNumber)
		}
	}
	for _, c := range certs {
		got, err := cl.GetCertificate(ctx, lifecycle.GetCertificateRequest{PSK: c.creds, Device: c.dev, CA: "ca1", Ref: lifecycle.CertificateRef{KeyNumber: c.keyNumber}, Path: "/check"})
		if assert.NoError(t, err, "acknowledged certificate %d lost", c.keyNumber) {
			assert.Equal(t, c.serial, got.Certificate.Serial)
		}
	}
	for _, p := range psks {
		_, err := cl.AuthenticatePSK(ctx, p)
		assert.NoError(t, err, "acknowledged PSK %s lost", p.KeyID)
	}
}
