package memstore_test

import (
	"context"
	"fmt"
	"log"

	"github.com/credlife/clm/backends/memstore"
	"github.com/credlife/clm/lifecycle"
)

// An engine on an in-memory store: a test double for code that embeds the
// lifecycle engine.
func Example() {
	ctx := context.Background()
	keys, err := lifecycle.NewStaticKeys(1, map[uint32][]byte{1: make([]byte, 32)})
	if err != nil {
		log.Fatal(err)
	}
	m, err := lifecycle.New(memstore.New(), &lifecycle.Options{Keys: keys})
	if err != nil {
		log.Fatal(err)
	}
	p, err := m.IssuePSK(ctx, lifecycle.IssuePSKRequest{Tenant: "tenant01", Alias: "gateways"})
	if err != nil {
		log.Fatal(err)
	}
	caller, err := m.AuthenticatePSK(ctx, lifecycle.PSKCredentials{KeyID: p.KeyID, Password: p.Password})
	fmt.Println(caller.KeyID, caller.Tenant, err)
	// Output: 0000000001 tenant01 <nil>
}
