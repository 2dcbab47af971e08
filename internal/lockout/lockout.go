// Package lockout counts failed authentications per key (a client
// address) in a window and locks a key whose failures reach a limit, in
// memory, per process (Limiter); and remembers locks learned from a store
// that several processes share (Locks).
package lockout

import (
	"sync"
	"sync/atomic"
	"time"
)

// Limiter counts failures per key and locks a key for a window when its
// failures within a window reach the limit. A nil *Limiter never locks. It
// is safe for concurrent use.
type Limiter struct {
	max    int
	window time.Duration

	mu      sync.Mutex
	m       map[any]*failures
	entries atomic.Int64 // len(m): Locked answers without the mutex when 0
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
	if l == nil || l.entries.Load() == 0 {
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
		l.entries.Store(int64(len(l.m)))
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
	if l.entries.Load() == 0 {
		return
	}
	l.mu.Lock()
	delete(l.m, key)
	l.entries.Store(int64(len(l.m)))
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
	mu      sync.Mutex
	m       map[any]time.Time
	entries atomic.Int64 // len(m)
}

// Any reports whether any lock is known, ended or not: while none is, a
// caller need not even make the keys it would ask Locked about.
func (l *Locks) Any() bool { return l.entries.Load() > 0 }

// Locked reports whether key is locked at now.
func (l *Locks) Locked(key any, now time.Time) bool {
	if !l.Any() {
		return false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	until, ok := l.m[key]
	if ok && !now.Before(until) { // ended: forget it, so that Any turns false again
		delete(l.m, key)
		l.entries.Store(int64(len(l.m)))
		return false
	}
	return ok
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
	l.entries.Store(int64(len(l.m)))
}
