package conserver

import (
	"container/list"
	"context"
	"sync"
)

// limiter bounds concurrent IPMI session setups across the manager, so
// that start-up and mass reconnects (a switch reboots, 2,000 BMCs come
// back at once) neither flood the BMCs nor the cores. Waiters are served
// in order. The limit can change on reload.
type limiter struct {
	mu    sync.Mutex // guards the fields below
	limit int
	busy  int
	q     list.List // of chan struct{}: waiters, oldest first
}

func newLimiter(n int) *limiter {
	return &limiter{limit: max(n, 1)}
}

// acquire waits for a slot or for ctx to end.
func (l *limiter) acquire(ctx context.Context) error {
	l.mu.Lock()
	if l.busy < l.limit && l.q.Len() == 0 {
		l.busy++
		l.mu.Unlock()
		return nil
	}
	ch := make(chan struct{})
	e := l.q.PushBack(ch)
	l.mu.Unlock()
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
	}
	l.mu.Lock()
	select {
	case <-ch: // granted while we gave up: hand it on
		l.busy--
		l.grantLocked()
	default:
		l.q.Remove(e)
	}
	l.mu.Unlock()
	return context.Cause(ctx)
}

func (l *limiter) release() {
	l.mu.Lock()
	l.busy--
	l.grantLocked()
	l.mu.Unlock()
}

// size is the limit.
func (l *limiter) size() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.limit
}

func (l *limiter) setLimit(n int) {
	l.mu.Lock()
	l.limit = max(n, 1)
	l.grantLocked()
	l.mu.Unlock()
}

func (l *limiter) grantLocked() {
	for l.busy < l.limit && l.q.Len() > 0 {
		e := l.q.Front()
		l.q.Remove(e)
		close(e.Value.(chan struct{}))
		l.busy++
	}
}
