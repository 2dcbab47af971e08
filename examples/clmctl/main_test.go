package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/credlife/clm/backends/gormstore"
	"github.com/credlife/clm/backends/mysqlstore"
	"github.com/credlife/clm/backends/postgresstore"
	"github.com/credlife/clm/backends/sqlitestore"
	"github.com/credlife/clm/ca"
	"github.com/credlife/clm/httpadapter/admin"
	"github.com/credlife/clm/internal/testdb"
	"github.com/credlife/clm/lifecycle"
)

const token = "the-admin-token-of-the-tests"

// fleet is a server with the admin API on a store, a tenant "acme" with
// devices, and clmctl pointed at it.
type fleet struct {
	t       *testing.T
	m       *lifecycle.Engine
	url     string
	creds   lifecycle.PSKCredentials
	devices map[string]*lifecycle.CertificateResult
	fail    map[string]bool // device ids whose decommission the server refuses (503)
}

func newFleet(t *testing.T, store *gormstore.Store, names ...string) *fleet {
	t.Helper()
	ctx := context.Background()
	keys, _ := lifecycle.NewStaticKeys(1, map[uint32][]byte{1: bytes.Repeat([]byte{6}, 32)})
	ca1, err := ca.Open(ctx, store, keys, nil)
	require.NoError(t, err)
	m, err := lifecycle.New(store, &lifecycle.Options{Keys: keys, CAs: []lifecycle.CA{ca1}})
	require.NoError(t, err)
	f := &fleet{t: t, m: m, devices: map[string]*lifecycle.CertificateResult{}, fail: map[string]bool{}}
	h := admin.New(m, &admin.Options{Token: token})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for id := range f.fail {
			if strings.Contains(r.URL.Path, "/"+id+"/") {
				http.Error(w, `{"code":1601,"error":"injected failure"}`, http.StatusServiceUnavailable)
				return
			}
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	f.url = srv.URL
	p, err := m.IssuePSK(ctx, lifecycle.IssuePSKRequest{Tenant: "acme", Alias: "a"})
	require.NoError(t, err)
	f.creds = lifecycle.PSKCredentials{KeyID: p.KeyID, Password: p.Password}
	for _, n := range names {
		res, err := m.IssueCertificate(ctx, lifecycle.IssueCertificateRequest{PSK: f.creds, Device: lifecycle.DeviceRequest{Name: n}, Subject: "/CN=" + n})
		require.NoError(t, err)
		_, err = m.CreateKey(ctx, lifecycle.CreateKeyRequest{PSK: f.creds, Device: lifecycle.DeviceRequest{ID: res.Device.Device.ID, Key: res.Device.Key}, Alias: "k"})
		require.NoError(t, err)
		f.devices[n] = res
	}
	return f
}

// run runs clmctl with args and returns what it printed and its error.
func (f *fleet) run(ctx context.Context, args ...string) (string, error) {
	var out, errOut bytes.Buffer
	root := newRoot(&out, &errOut)
	root.SetArgs(append([]string{"--server", f.url}, args...))
	err := root.ExecuteContext(ctx)
	return out.String(), err
}

func onEachStore(t *testing.T, fn func(t *testing.T, store *gormstore.Store)) {
	t.Setenv("CLM_ADMIN_TOKEN", token)
	ctx := context.Background()
	t.Run("SQLite", func(t *testing.T) {
		s, err := sqlitestore.Open(ctx, filepath.Join(t.TempDir(), "clm.db"), nil)
		require.NoError(t, err)
		defer s.Close()
		fn(t, s)
	})
	t.Run("MariaDB", func(t *testing.T) {
		s, err := mysqlstore.Open(ctx, testdb.MySQL(t), nil)
		require.NoError(t, err)
		defer s.Close()
		fn(t, s)
	})
	t.Run("PostgreSQL", func(t *testing.T) {
		s, err := postgresstore.Open(ctx, testdb.Postgres(t), nil)
		require.NoError(t, err)
		defer s.Close()
		fn(t, s)
	})
}

// TestDecommissionWithClmctl: one device, then every device of a file,
// with a failure in the middle; the run resumes and the summary says what
// happened; a second run changes nothing.
func TestDecommissionWithClmctl(t *testing.T) {
	onEachStore(t, func(t *testing.T, store *gormstore.Store) {
		ctx := context.Background()
		f := newFleet(t, store, "d1", "d2", "d3", "d4")
		id := func(n string) string { return f.devices[n].Device.Device.ID }

		out, err := f.run(ctx, "devices", "decommission", "acme", id("d1"), "--reason", "keyCompromise")
		require.NoError(t, err)
		assert.Contains(t, out, id("d1")+": 1 certificates revoked, 1 keys deleted")
		info, err := f.m.GetCredential(ctx, lifecycle.GetCredentialRequest{Tenant: "acme", Ref: lifecycle.CertificateRef{KeyNumber: f.devices["d1"].Certificate.KeyNumber}})
		require.NoError(t, err)
		assert.Equal(t, lifecycle.StateRevoked, info.State)
		assert.Equal(t, 1, info.Reason)
		out, err = f.run(ctx, "devices", "decommission", "acme", id("d1"))
		require.NoError(t, err)
		assert.Contains(t, out, "already decommissioned", "a second call changes nothing")

		list := filepath.Join(t.TempDir(), "stolen.txt")
		require.NoError(t, os.WriteFile(list, []byte("# stolen on Monday\n"+id("d2")+"\n"+id("d3")+"\n\n"+id("d4")+"\n"), 0o600))
		f.fail[id("d3")] = true
		out, err = f.run(ctx, "devices", "decommission", "acme", "--from-file", list)
		require.Error(t, err, "a failure fails the command")
		assert.Contains(t, out, "summary: 2 of 3 done (0 done before), 1 failed, 0 left")
		assert.Contains(t, out, "failed "+id("d3"))
		done, err := os.ReadFile(list + ".done")
		require.NoError(t, err)
		assert.Equal(t, id("d2")+"\n"+id("d4")+"\n", string(done))

		delete(f.fail, id("d3")) // the server is back: resume
		out, err = f.run(ctx, "devices", "decommission", "acme", "--from-file", list)
		require.NoError(t, err)
		assert.Contains(t, out, "summary: 1 of 3 done (2 done before), 0 failed, 0 left")
		for _, n := range []string{"d2", "d3", "d4"} {
			d, err := f.m.GetDevice(ctx, "acme", id(n))
			require.NoError(t, err)
			assert.Equal(t, lifecycle.DeviceDisabled, d.Status, n)
		}

		// An interrupted run: cancelled before it starts, it does nothing
		// and says how to resume.
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		require.NoError(t, os.Remove(list+".done"))
		out, err = f.run(cctx, "devices", "decommission", "acme", "--from-file", list)
		require.ErrorContains(t, err, "interrupted")
		assert.Contains(t, out, "0 of 3 done")
	})
}

func TestInventoryAndRevocationWithClmctl(t *testing.T) {
	ctx := context.Background()
	t.Setenv("CLM_ADMIN_TOKEN", token)
	s, err := sqlitestore.Open(ctx, filepath.Join(t.TempDir(), "clm.db"), nil)
	require.NoError(t, err)
	defer s.Close()
	f := newFleet(t, s, "a", "b", "c")

	out, err := f.run(ctx, "credentials", "list", "--tenant", "acme", "--kind", "certificate", "--expiring-within", "8800h")
	require.NoError(t, err)
	assert.Equal(t, 4, strings.Count(out, "\n"), "a header and three certificates:\n%s", out)
	out, err = f.run(ctx, "credentials", "list", "--tenant", "acme", "--expiring-within", "1h")
	require.NoError(t, err)
	assert.Equal(t, 1, strings.Count(out, "\n"), "nothing expires within an hour:\n%s", out)
	out, err = f.run(ctx, "-o", "json", "credentials", "list", "--tenant", "acme", "--kind", "symmetric-key")
	require.NoError(t, err)
	var keys []map[string]any
	require.NoError(t, json.Unmarshal([]byte(out), &keys))
	assert.Len(t, keys, 3)

	serials := filepath.Join(t.TempDir(), "serials.txt")
	require.NoError(t, os.WriteFile(serials, []byte(strings.ToLower(f.devices["a"].Certificate.Serial)+"\n"+f.devices["b"].Certificate.Serial+"\nFFFF\n"), 0o600))
	out, err = f.run(ctx, "credentials", "revoke", "acme", "--serials-file", serials, "--reason", "superseded")
	require.Error(t, err)
	assert.Contains(t, out, "summary: 2 of 3 done (0 done before), 1 failed, 0 left")
	assert.Contains(t, out, "failed FFFF")
	out, err = f.run(ctx, "credentials", "list", "--tenant", "acme", "--state", "revoked")
	require.NoError(t, err)
	assert.Equal(t, 3, strings.Count(out, "\n"), out)

	out, err = f.run(ctx, "psks", "list")
	require.NoError(t, err)
	assert.Contains(t, out, f.creds.KeyID)
	assert.NotContains(t, out, f.creds.Password.Reveal())
	out, err = f.run(ctx, "cas", "chain", "ca1")
	require.NoError(t, err)
	assert.Contains(t, out, "BEGIN CERTIFICATE")
	out, err = f.run(ctx, "tenants", "list")
	require.NoError(t, err)
	assert.Contains(t, out, "acme")

	t.Setenv("CLM_ADMIN_TOKEN", "a-wrong-token-of-the-tests")
	_, err = f.run(ctx, "tenants", "list")
	require.ErrorContains(t, err, "HTTP 401")

	var comp bytes.Buffer
	root := newRoot(&comp, &comp)
	root.SetArgs([]string{"completion", "bash"})
	require.NoError(t, root.Execute())
	assert.Contains(t, comp.String(), "__start_clmctl", "shell completion")
}
