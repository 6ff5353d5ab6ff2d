package sshgw

import (
	"net"
	"net/netip"
	"sync"
	"time"
)

// backoff tracks failed authentications per source and makes a source that
// keeps failing wait before it may connect again: after `after`
// consecutive failed connections, base, then twice as long for each
// further failure, up to max. A success from the source forgets it. It is
// keyed by IPv4 address or IPv6 /64 (one host usually holds a whole /64),
// holds at most maxEntries sources (forgetting the stalest first when
// full), and forgets a source that has not failed for `forget`.
type backoff struct {
	after      int
	base, max  time.Duration
	forget     time.Duration
	maxEntries int

	mu sync.Mutex // guards m
	m  map[netip.Prefix]*failures
}

type failures struct {
	n     int       // consecutive failed connections
	last  time.Time // the latest failure
	until time.Time // refuse connections before this
}

func newBackoff(after int, base, max time.Duration) *backoff {
	if after <= 0 {
		after = 5
	}
	if base <= 0 {
		base = time.Second
	}
	if max < base {
		max = base
	}
	return &backoff{after: after, base: base, max: max, forget: 4*max + time.Minute, maxEntries: 10000, m: map[netip.Prefix]*failures{}}
}

// sourceKey is what back-off counts per: the IPv4 address, or the IPv6 /64.
func sourceKey(addr net.Addr) (netip.Prefix, bool) {
	ta, ok := addr.(*net.TCPAddr)
	if !ok {
		return netip.Prefix{}, false
	}
	ip, ok := netip.AddrFromSlice(ta.IP)
	if !ok {
		return netip.Prefix{}, false
	}
	ip = ip.Unmap()
	bits := 32
	if ip.Is6() {
		bits = 64
	}
	p, err := ip.Prefix(bits)
	return p, err == nil
}

// wait returns how long src must still wait before it may connect; 0
// means it may connect now.
func (b *backoff) wait(src netip.Prefix, now time.Time) time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	f := b.m[src]
	if f == nil {
		return 0
	}
	if now.Sub(f.last) > b.forget {
		delete(b.m, src)
		return 0
	}
	if d := f.until.Sub(now); d > 0 {
		return d
	}
	return 0
}

// failed records a connection from src that ended without authenticating
// after trying to, and returns how long src must now wait.
func (b *backoff) failed(src netip.Prefix, now time.Time) time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	f := b.m[src]
	if f != nil && now.Sub(f.last) > b.forget {
		f = nil
	}
	if f == nil {
		if len(b.m) >= b.maxEntries {
			b.evict(now)
		}
		f = &failures{}
		b.m[src] = f
	}
	f.n++
	f.last = now
	if f.n < b.after {
		return 0
	}
	d := b.base
	for i := b.after; i < f.n && d < b.max; i++ {
		d *= 2
	}
	d = min(d, b.max)
	f.until = now.Add(d)
	return d
}

// succeeded forgets src's failures.
func (b *backoff) succeeded(src netip.Prefix) {
	b.mu.Lock()
	delete(b.m, src)
	b.mu.Unlock()
}

// evict drops forgotten sources, and if none was, the stalest one.
func (b *backoff) evict(now time.Time) {
	var oldest netip.Prefix
	var oldestT time.Time
	dropped := false
	for k, f := range b.m {
		if now.Sub(f.last) > b.forget {
			delete(b.m, k)
			dropped = true
			continue
		}
		if oldestT.IsZero() || f.last.Before(oldestT) {
			oldest, oldestT = k, f.last
		}
	}
	if !dropped && !oldestT.IsZero() {
		delete(b.m, oldest)
	}
}

// len returns how many sources are tracked.
func (b *backoff) len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.m)
}
