package lifecycle

import (
	"crypto"
	"sync"
)

// keyPool keeps up to size pre-generated keys of one type in memory, made
// by a background goroutine, so that an issuance of a slow key type (RSA)
// takes a ready key instead of waiting for its generation. The keys never
// leave memory until one is issued (and then sealed like any other).
type keyPool struct {
	kt    CertKeyType
	keys  chan crypto.Signer
	stop  chan struct{}
	done  sync.WaitGroup
	close sync.Once
}

func newKeyPool(kt CertKeyType, size, workers int) *keyPool {
	p := &keyPool{kt: kt, keys: make(chan crypto.Signer, size), stop: make(chan struct{})}
	for range max(1, workers) {
		p.done.Add(1)
		go p.fill()
	}
	return p
}

func (p *keyPool) fill() {
	defer p.done.Done()
	for {
		k, err := GenerateCertKey(p.kt)
		if err != nil {
			return
		}
		select {
		case p.keys <- k:
		case <-p.stop:
			return
		}
	}
}

// take returns a ready key, or generates one when the pool is empty.
func (p *keyPool) take() (crypto.Signer, error) {
	select {
	case k := <-p.keys:
		return k, nil
	default:
		return GenerateCertKey(p.kt)
	}
}

// ready is the number of keys in hand.
func (p *keyPool) ready() int { return len(p.keys) }

func (p *keyPool) shutdown() {
	p.close.Do(func() {
		close(p.stop)
		p.done.Wait()
		for range len(p.keys) {
			<-p.keys
		}
	})
}
