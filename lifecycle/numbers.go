package lifecycle

import (
	"context"
	"sync"

	"github.com/credlife/clm/lifecycle/driver"
)

// numberBlock hands out numbers of a sequence from a block reserved in the
// store, so that most credentials and PSKs cost no transaction of their
// own for their number. Numbers stay unique across every engine on the
// database; a block left unused when the process ends is a gap.
type numberBlock struct {
	mu         sync.Mutex
	next, last int64 // next ≤ last: numbers still in hand
}

// nextNumber returns the next number of seq: from the engine's block for
// keyids and keynumbers, straight from the store for the others (CRL
// numbers must grow across processes).
func (e *Engine) nextNumber(ctx context.Context, seq driver.Sequence) (int64, error) {
	b := e.blocks[seq]
	if b == nil || e.blockSize <= 1 {
		return e.store.NextNumber(ctx, seq)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.next == 0 || b.next > b.last {
		first, err := e.store.NextNumbers(ctx, seq, e.blockSize)
		if err != nil {
			return 0, err
		}
		b.next, b.last = first, first+int64(e.blockSize)-1
	}
	n := b.next
	b.next++
	return n, nil
}
