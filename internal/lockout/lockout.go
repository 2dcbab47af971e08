// Package lockout counts failed authentications per key (a client
// address) in a window and locks a key whose failures reach a limit, in
// memory, per process (Limiter); and remembers locks learned from a store
// that several processes share (Locks).
package lockout

import (
	"sync"
	"time"
)

// Limiter counts failures per key and locks a key for a window when its
// failures within a window reach the limit. A nil *Limiter never locks. It
// is safe for concurrent use.
type Limiter struct {
	max    int
	window time.Duration

	mu sync.Mutex
	m  map[any]*failures
}

type failures struct {
	n           int
	since       time.Time // start of the counting window
	lockedUntil time.Time
}

// New returns a Limiter of max failures per window, or nil (no limit) when
// max is not positive.
func New(max int, window time.Duration) *Limiter {
	if max <= 0 {
		return nil
	}
	return &Limiter{max: max, window: window, m: make(map[any]*failures)}
}

// Locked reports whether key is locked at now.
func (l *Limiter) Locked(key any, now time.Time) bool {
	if l == nil {
		return false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	f := l.m[key]
	return f != nil && now.Before(f.lockedUntil)
}

// Fail counts a failure of key at now, locking it for a window when the
// count within the window reaches the limit.
func (l *Limiter) Fail(key any, now time.Time) {
	if l == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	f := l.m[key]
	if f == nil || now.Sub(f.since) >= l.window {
		if len(l.m) >= 100000 {
			l.sweep(now)
		}
		f = &failures{since: now}
		l.m[key] = f
	}
	f.n++
	if f.n >= l.max {
		f.lockedUntil = now.Add(l.window)
		f.n, f.since = 0, now.Add(l.window)
	}
}

// Succeed forgets the failures of key.
func (l *Limiter) Succeed(key any) {
	if l == nil {
		return
	}
	l.mu.Lock()
	delete(l.m, key)
	l.mu.Unlock()
}

// sweep drops entries whose window and lock are over; l.mu is held.
func (l *Limiter) sweep(now time.Time) {
	for k, f := range l.m {
		if now.Sub(f.since) >= l.window && !now.Before(f.lockedUntil) {
			delete(l.m, k)
		}
	}
}

// Locks remembers keys locked until a time, as learned from a store that
// several processes share, so that this process refuses a locked key
// without asking the store again. It is safe for concurrent use.
type Locks struct {
	mu sync.Mutex
	m  map[any]time.Time
}

// Locked reports whether key is locked at now.
func (l *Locks) Locked(key any, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	until, ok := l.m[key]
	return ok && now.Before(until)
}

// Lock records, at now, that key is locked until then. Past 100,000 keys
// the locks that have ended are dropped.
func (l *Locks) Lock(key any, until, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.m == nil {
		l.m = make(map[any]time.Time)
	}
	if len(l.m) >= 100000 {
		for k, u := range l.m {
			if !now.Before(u) {
				delete(l.m, k)
			}
		}
	}
	l.m[key] = until
}
