package mysqlstore_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/credlife/clm/backends/mysqlstore"
	"github.com/credlife/clm/internal/galera"
	"github.com/credlife/clm/lifecycle/driver"
	"github.com/credlife/clm/lifecycle/storetest"
)

func freshDB(t *testing.T, c *galera.Cluster) string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	name := "clm_" + hex.EncodeToString(b)
	require.NoError(t, c.CreateDatabase(name))
	return name
}

// TestGaleraConformance runs the Store conformance suite on a 3-node
// Galera cluster through a multi-node DSN: certification conflicts (which
// Galera reports as deadlocks at commit) are retried, numbers never
// collide, compare-and-swaps have one winner.
func TestGaleraConformance(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	c := galera.Start(t, 3)
	storetest.Run(t, func(ctx context.Context, t *testing.T) (storetest.Harness, error) {
		return harness{dsn: c.DSN(freshDB(t, c), 0, 1, 2)}, nil
	})
}

// FailoverBound is the longest a Store on a multi-node DSN takes to serve
// again after its node is killed: in-flight requests fail (1601), new ones
// go to the next ready node.
const FailoverBound = 10 * time.Second

// TestGaleraFailover: writers on a Store whose first node is killed with
// SIGKILL go on within FailoverBound on the next node; every write
// acknowledged before, during and after is on the surviving nodes; the
// killed node rejoins and serves again.
func TestGaleraFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	ctx := context.Background()
	c := galera.Start(t, 3)
	db := freshDB(t, c)
	s, err := mysqlstore.Open(ctx, c.DSN(db, 0, 1, 2), nil)
	require.NoError(t, err)
	defer s.Close()

	var (
		mu       sync.Mutex
		acked    []int64
		failures atomic.Int64
		lastFail atomic.Int64 // unix nanos of the last failed write
		stop     = make(chan struct{})
		wg       sync.WaitGroup
	)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				var id int64
				err := s.Atomic(ctx, func(tx driver.Tx) error {
					var err error
					if id, err = tx.NextNumber(ctx, driver.SeqKeyID); err != nil {
						return err
					}
					return tx.CreatePSK(ctx, &driver.PSKRecord{KeyID: id, Tenant: "t", Alias: "a", Password: []byte{1}, Status: driver.PSKActive,
						CreatedAt: time.Now().UTC(), ExpiresAt: time.Now().Add(time.Hour).UTC()})
				})
				if err != nil {
					assert.True(t, errors.Is(err, driver.ErrUnavailable) || errors.Is(err, driver.ErrLockTimeout), "a failure during failover is unavailability, not %v", err)
					failures.Add(1)
					lastFail.Store(time.Now().UnixNano())
					time.Sleep(50 * time.Millisecond)
					continue
				}
				mu.Lock()
				acked = append(acked, id)
				mu.Unlock()
			}
		}()
	}
	time.Sleep(2 * time.Second)
	mu.Lock()
	before := len(acked)
	mu.Unlock()
	require.Positive(t, before, "writes go through before the failure")
	killedAt := time.Now()
	c.Nodes[0].Kill()
	// Wait until writes succeed again, for at most the bound.
	var recovered time.Duration
	for {
		time.Sleep(100 * time.Millisecond)
		mu.Lock()
		n := len(acked)
		mu.Unlock()
		if n > before && time.Since(time.Unix(0, lastFail.Load())) > 500*time.Millisecond {
			recovered = time.Since(killedAt)
			break
		}
		if time.Since(killedAt) > FailoverBound {
			break
		}
	}
	time.Sleep(time.Second)
	close(stop)
	wg.Wait()
	require.NotZero(t, recovered, "writes resumed within %v of the node's death", FailoverBound)
	t.Logf("writes resumed %v after the node was killed (%d failed meanwhile); %d acknowledged", recovered.Round(10*time.Millisecond), failures.Load(), len(acked))

	// Every acknowledged write is on the surviving nodes, each once.
	for _, n := range []*galera.Node{c.Nodes[1], c.Nodes[2]} {
		direct, err := mysqlstore.Open(ctx, n.DSN(db), nil)
		require.NoError(t, err)
		seen := map[int64]bool{}
		q := driver.PSKQuery{Limit: 1000}
		for {
			page, err := direct.ListPSKs(ctx, q)
			require.NoError(t, err)
			for _, p := range page {
				seen[p.KeyID] = true
			}
			if len(page) < q.Limit {
				break
			}
			q.After = page[len(page)-1].KeyID
		}
		direct.Close()
		for _, id := range acked {
			if !seen[id] {
				t.Fatalf("node %d lacks acknowledged keyid %d", n.Index, id)
			}
		}
	}

	// The node rejoins (IST) and serves the Store again.
	require.NoError(t, c.Nodes[0].Restart(90*time.Second))
	again, err := mysqlstore.Open(ctx, c.Nodes[0].DSN(db), nil)
	require.NoError(t, err)
	defer again.Close()
	for _, id := range acked {
		_, err := again.GetPSK(ctx, id)
		require.NoError(t, err, "the rejoined node has keyid %d", id)
	}
}
