package logstore

import "sync"

// Changes tells a reader in the same process which consoles had frames
// written since it last asked, so it can read them at once instead of
// polling every console's files (Store.Changes). It is cheap for many
// consoles: a flush costs one map insert per subscriber and a
// non-blocking channel send; nothing is queued per frame.
type Changes struct {
	n  *notifier
	c  chan struct{} // capacity 1: something changed since the last Take
	mu sync.Mutex    // guards set
	// set holds the consoles with new frames since the last Take; it
	// grows to at most the number of consoles that have Writers.
	set map[string]struct{}
}

// notifier is a Store's list of Changes subscribers.
type notifier struct {
	mu   sync.Mutex // guards subs
	subs []*Changes
}

// Changes subscribes to the Store's frame writes. Close it when done.
func (s *Store) Changes() *Changes {
	c := &Changes{n: &s.subs, c: make(chan struct{}, 1), set: map[string]struct{}{}}
	s.subs.mu.Lock()
	s.subs.subs = append(s.subs.subs, c)
	s.subs.mu.Unlock()
	return c
}

// C is ready when some console had frames written since the last Take.
func (c *Changes) C() <-chan struct{} { return c.c }

// Take returns the consoles with frames written since the last Take,
// appended to dst, in no particular order, and forgets them.
func (c *Changes) Take(dst []string) []string {
	c.mu.Lock()
	for k := range c.set {
		dst = append(dst, k)
	}
	clear(c.set)
	c.mu.Unlock()
	return dst
}

// Close ends the subscription.
func (c *Changes) Close() {
	c.n.mu.Lock()
	defer c.n.mu.Unlock()
	for i, x := range c.n.subs {
		if x == c {
			c.n.subs = append(c.n.subs[:i], c.n.subs[i+1:]...)
			return
		}
	}
}

// notify records that console got a frame on disk. Lock order: a
// Writer's ioMu, then notifier.mu, then Changes.mu.
func (n *notifier) notify(console string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, c := range n.subs {
		c.mu.Lock()
		c.set[console] = struct{}{}
		c.mu.Unlock()
		select {
		case c.c <- struct{}{}:
		default:
		}
	}
}
