package main

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/credlife/clm/backends/gormstore"
	"github.com/credlife/clm/backends/mysqlstore"
	"github.com/credlife/clm/httpadapter/client"
	"github.com/credlife/clm/internal/galera"
	"github.com/credlife/clm/lifecycle"
)

// ServerFailoverBound is the longest a clmserver whose database node died
// takes to answer again (from the next node of its DSN): Galera's suspect
// timeout (5 s) and a reconnection.
const ServerFailoverBound = 15 * time.Second

// TestGaleraServers: a 3-node Galera cluster, two clmserver processes on
// different nodes (each DSN lists its own node first). The multi-process
// race workload across them (no duplicates, one winner per race, no lost
// acknowledgement); then a node killed with SIGKILL under load: the other
// server keeps answering, the server whose node died answers 1601 and then
// again within ServerFailoverBound, and every acknowledged PSK is on the
// surviving nodes; the node rejoins. Last, a server started while its only
// node is down waits for it (-store-wait).
func TestGaleraServers(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	c := galera.Start(t, 3)
	require.NoError(t, c.CreateDatabase("clm"))
	bin := buildServer(t)
	a := startProcess(t, bin, "mysql:"+c.DSN("clm", 0, 1, 2))
	b := startProcess(t, bin, "mysql:"+c.DSN("clm", 1, 2, 0))
	ca, cb := client.New(a, "race-license-0123456789", nil), client.New(b, "race-license-0123456789", nil)
	raceAndAudit(t, "galera", []*client.Client{ca, cb}, func(ctx context.Context) (*gormstore.Store, error) {
		return mysqlstore.Open(ctx, c.Nodes[2].DSN("clm"), nil)
	})

	// Load on both servers; node 0 (A's) dies.
	ctx := context.Background()
	var (
		mu       sync.Mutex
		acked    = map[string]bool{}
		lastFail [2]atomic.Int64
		stop     = make(chan struct{})
		wg       sync.WaitGroup
		bad      []string
	)
	for w := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			srv, cl := w%2, []*client.Client{ca, cb}[w%2]
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				cctx, cancel := context.WithTimeout(ctx, 20*time.Second)
				p, err := cl.IssuePSK(cctx, lifecycle.IssuePSKRequest{Tenant: fmt.Sprint("g", w), Alias: fmt.Sprint(i)})
				cancel()
				if err != nil {
					code := lifecycle.CodeOf(err)
					if code != lifecycle.CodeDBConnection && code != lifecycle.CodeDBAccess && code != lifecycle.CodeLockTimeout {
						mu.Lock()
						bad = append(bad, err.Error())
						mu.Unlock()
					}
					lastFail[srv].Store(time.Now().UnixNano())
					time.Sleep(50 * time.Millisecond)
					continue
				}
				mu.Lock()
				acked[p.KeyID] = true
				mu.Unlock()
			}
		}()
	}
	time.Sleep(2 * time.Second)
	killed := time.Now()
	c.Nodes[0].Kill()
	// Both servers answer again: B at once (its node lives), A after
	// failing over.
	var recovered [2]time.Duration
	for recovered[0] == 0 || recovered[1] == 0 {
		if time.Since(killed) > ServerFailoverBound {
			break
		}
		time.Sleep(100 * time.Millisecond)
		for s := range 2 {
			if recovered[s] == 0 {
				cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
				_, err := []*client.Client{ca, cb}[s].ListPSKs(cctx, lifecycle.ListPSKsRequest{Limit: 1})
				cancel()
				if err == nil && time.Since(time.Unix(0, lastFail[s].Load())) > 500*time.Millisecond {
					recovered[s] = time.Since(killed)
				}
			}
		}
	}
	time.Sleep(time.Second)
	close(stop)
	wg.Wait()
	require.NotZero(t, recovered[0], "the server whose node died answers again within %v", ServerFailoverBound)
	require.NotZero(t, recovered[1], "the other server answers within %v", ServerFailoverBound)
	t.Logf("after the SIGKILL of node 0: server A (its node) answered again after %v, server B after %v; %d PSKs acknowledged",
		recovered[0].Round(10*time.Millisecond), recovered[1].Round(10*time.Millisecond), len(acked))
	assert.Empty(t, bad, "failures other than unavailability")

	for _, n := range []*galera.Node{c.Nodes[1], c.Nodes[2]} {
		s, err := mysqlstore.Open(ctx, n.DSN("clm"), nil)
		require.NoError(t, err)
		for id := range acked {
			kid, _ := lifecycle.ParseKeyID(id)
			if _, err := s.GetPSK(ctx, kid); err != nil {
				s.Close()
				t.Fatalf("node %d lacks acknowledged PSK %s: %v", n.Index, id, err)
			}
		}
		s.Close()
	}
	require.NoError(t, c.Nodes[0].Restart(90*time.Second), "the killed node rejoins")

	// A server started while its only node is down waits for it.
	c.Nodes[2].Kill()
	started := make(chan string, 1)
	go func() { started <- startProcess(t, bin, "mysql:"+c.Nodes[2].DSN("clm"), "-store-wait", "120s") }()
	time.Sleep(2 * time.Second)
	require.NoError(t, c.Nodes[2].Restart(90*time.Second))
	select {
	case url := <-started:
		resp, err := http.Get(url + "/SWCLM/v10/SystemStatus")
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, 200, resp.StatusCode)
	case <-time.After(60 * time.Second):
		t.Fatal("the server did not start once its database answered")
	}
}
