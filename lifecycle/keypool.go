package lifecycle

import (
	"crypto"
	"sync"
)

// keyPool keeps up to size pre-generated keys of one type in memory, made
// by a background goroutine, so that an issuance of a slow key type (RSA)
// takes a ready key instead of waiting for its generation. The keys never
// leave memory until one is issued (and then sealed like any other).
//
// The pool refills in bursts: once full, its generator rests until half
// the keys are taken, so that issuances from a full pool do not share the
// CPU with a generator running beside them.
type keyPool struct {
	kt    CertKeyType
	keys  chan crypto.Signer
	low   chan struct{} // wakes the generator: half the keys are gone
	stop  chan struct{}
	done  sync.WaitGroup
	close sync.Once
}

func newKeyPool(kt CertKeyType, size int) *keyPool {
	p := &keyPool{kt: kt, keys: make(chan crypto.Signer, size), low: make(chan struct{}, 1), stop: make(chan struct{})}
	p.done.Add(1)
	go p.fill()
	return p
}

func (p *keyPool) fill() {
	defer p.done.Done()
	for {
		for len(p.keys) < cap(p.keys) {
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
		select {
		case <-p.low:
		case <-p.stop:
			return
		}
	}
}

// take returns a ready key, or generates one when the pool is empty.
func (p *keyPool) take() (crypto.Signer, error) {
	select {
	case k := <-p.keys:
		if len(p.keys) <= cap(p.keys)/2 {
			p.wake()
		}
		return k, nil
	default:
		p.wake()
		return GenerateCertKey(p.kt)
	}
}

// wake asks the generator to fill the pool (a no-op while it does).
func (p *keyPool) wake() {
	select {
	case p.low <- struct{}{}:
	default:
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
