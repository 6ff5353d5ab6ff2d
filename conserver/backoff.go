package conserver

import (
	"math/rand/v2"
	"time"
)

// Backoff is a reconnect schedule: the first retry after Min, each later
// one twice as long up to Max, every delay jittered to a random point in
// its upper half (so consoles that failed together spread out); a session
// that stayed up for Stable starts the schedule over.
type Backoff struct {
	Min, Max, Stable time.Duration
}

// backoff is one console's position in its schedule. Owned by the
// console's supervisor goroutine.
type backoff struct {
	next time.Duration // the delay before jitter of the next retry; 0: Min
}

// fail returns how long to wait before the next attempt and advances the
// schedule. rnd returns a uniform number in [0, n).
func (b *backoff) fail(p Backoff, rnd func(n int64) int64) time.Duration {
	d := max(b.next, p.Min)
	if d > p.Max {
		d = p.Max
	}
	b.next = min(2*d, p.Max)
	return jitter(d, rnd)
}

// slowest returns a jittered Max: the pace for failures that retrying
// soon cannot fix (a wrong password must not lock the BMC account).
func (b *backoff) slowest(p Backoff, rnd func(n int64) int64) time.Duration {
	b.next = p.Max
	return jitter(p.Max, rnd)
}

// connected tells the schedule a session ended after being up for upFor:
// a stable one resets it.
func (b *backoff) connected(p Backoff, upFor time.Duration) {
	if upFor >= p.Stable {
		b.next = 0
	}
}

// jitter returns a uniform duration in [d/2, d].
func jitter(d time.Duration, rnd func(n int64) int64) time.Duration {
	if d <= 1 {
		return d
	}
	half := d / 2
	return d - half + time.Duration(rnd(int64(half)+1))
}

func defaultRand(n int64) int64 { return rand.Int64N(n) }
