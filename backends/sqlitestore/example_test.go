package sqlitestore_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/credlife/clm/backends/gormstore"
	"github.com/credlife/clm/backends/sqlitestore"
	"github.com/credlife/clm/lifecycle"
	"github.com/credlife/clm/lifecycle/driver"
)

// Group commit tuned: at most 16 concurrent write transactions share one
// commit, a group takes new members for at most 1ms, and every commit's
// size is observed (a Prometheus histogram in clmserver). A call with
// nobody queued behind it commits alone, at once.
func ExampleOpen_groupCommit() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "clm-example")
	defer os.RemoveAll(dir)
	store, err := sqlitestore.Open(ctx, filepath.Join(dir, "clm.db"), &gormstore.Options{
		GroupCommit: gormstore.GroupCommit{
			MaxSize:  16,
			MaxDelay: time.Millisecond,
			Observe:  func(size int) { fmt.Println("committed a group of", size) },
		},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer store.Close()
	now := time.Now().UTC()
	err = store.Atomic(ctx, func(tx driver.Tx) error {
		return tx.CreatePSK(ctx, &driver.PSKRecord{KeyID: 1, Tenant: "t", Password: []byte("sealed"), Status: lifecycle.PSKActive, CreatedAt: now, ExpiresAt: now.Add(time.Hour)})
	})
	fmt.Println("error:", err)
	fmt.Printf("%+v\n", store.GroupCommitStats())
	// Output:
	// committed a group of 1
	// error: <nil>
	// {Groups:1 Calls:1}
}
