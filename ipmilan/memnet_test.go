package ipmilan

import (
	"context"
	"errors"
	"net"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/solgate/solgate/ipmilan/bmcsim"
)

// memNet is an in-memory datagram network, so that sessions and
// simulated BMCs run under testing/synctest: its blocking is on channels
// and its deadlines on timers, both of which the bubble's clock drives.
type memNet struct {
	mu    sync.Mutex
	conns map[string]*memConn
	// tap, if set, sees every datagram before delivery and returns what
	// to deliver instead (nil drops it). It runs on the sender's
	// goroutine, without mu held.
	tap func(from, to string, b []byte) []byte
}

func newMemNet() *memNet { return &memNet{conns: map[string]*memConn{}} }

func (n *memNet) listen(addr string) *memConn {
	ua, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		panic(err)
	}
	c := &memConn{net: n, addr: ua, in: make(chan memDatagram, 256), closed: make(chan struct{}), wake: make(chan struct{})}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.conns[ua.String()] != nil {
		panic("memNet: address in use: " + addr)
	}
	n.conns[ua.String()] = c
	return c
}

// inject delivers b to addr as if from.
func (n *memNet) inject(from, to string, b []byte) {
	n.mu.Lock()
	c := n.conns[to]
	n.mu.Unlock()
	if c == nil {
		return
	}
	fa, _ := net.ResolveUDPAddr("udp", from)
	select {
	case c.in <- memDatagram{from: fa, b: append([]byte(nil), b...)}:
	default: // a full socket buffer drops, as UDP does
	}
}

type memDatagram struct {
	from net.Addr
	b    []byte
}

type memConn struct {
	net    *memNet
	addr   *net.UDPAddr
	in     chan memDatagram
	closed chan struct{}
	once   sync.Once

	mu       sync.Mutex
	deadline time.Time
	wake     chan struct{} // closed when the deadline changes
	// readErr, if set, is returned by the next ReadFrom (a failing socket).
	readErr error
}

func (c *memConn) ReadFrom(b []byte) (int, net.Addr, error) {
	for {
		c.mu.Lock()
		dl, wake, rerr := c.deadline, c.wake, c.readErr
		c.mu.Unlock()
		if rerr != nil {
			return 0, nil, rerr
		}
		var timeout <-chan time.Time
		if !dl.IsZero() {
			d := time.Until(dl)
			if d <= 0 {
				return 0, nil, os.ErrDeadlineExceeded
			}
			t := time.NewTimer(d)
			defer t.Stop()
			timeout = t.C
		}
		select {
		case d := <-c.in:
			return copy(b, d.b), d.from, nil
		case <-c.closed:
			return 0, nil, net.ErrClosed
		case <-timeout:
			return 0, nil, os.ErrDeadlineExceeded
		case <-wake:
		}
	}
}

func (c *memConn) WriteTo(b []byte, to net.Addr) (int, error) {
	select {
	case <-c.closed:
		return 0, net.ErrClosed
	default:
	}
	from := c.addr.String()
	out := append([]byte(nil), b...)
	if tap := c.net.tap; tap != nil {
		if out = tap(from, to.String(), out); out == nil {
			return len(b), nil
		}
	}
	c.net.inject(from, to.String(), out)
	return len(b), nil
}

// fail makes the next ReadFrom return err, as a broken socket would.
func (c *memConn) fail(err error) {
	c.mu.Lock()
	c.readErr = err
	close(c.wake)
	c.wake = make(chan struct{})
	c.mu.Unlock()
}

func (c *memConn) Close() error {
	c.once.Do(func() {
		close(c.closed)
		c.net.mu.Lock()
		delete(c.net.conns, c.addr.String())
		c.net.mu.Unlock()
	})
	return nil
}

func (c *memConn) LocalAddr() net.Addr { return c.addr }

func (c *memConn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	c.deadline = t
	close(c.wake)
	c.wake = make(chan struct{})
	c.mu.Unlock()
	return nil
}

func (c *memConn) SetDeadline(t time.Time) error    { return c.SetReadDeadline(t) }
func (c *memConn) SetWriteDeadline(time.Time) error { return nil }

// memBMC serves a simulated BMC at addr on n until the test ends.
func memBMC(t *testing.T, n *memNet, addr string, cfg bmcsim.Config) *bmcsim.BMC {
	t.Helper()
	if cfg.Users == nil {
		cfg.Users = []bmcsim.User{{Name: "admin", Password: "secret"}}
	}
	b := bmcsim.New(cfg)
	pc := n.listen(addr)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := b.Serve(ctx, pc); err != nil && !errors.Is(err, net.ErrClosed) {
			t.Errorf("bmcsim: %v", err)
		}
	}()
	t.Cleanup(func() { cancel(); <-done; pc.Close() })
	return b
}

var memClientPort atomic.Int32

// memConfig returns a Config for the BMC at addr whose socket is a new
// endpoint of n.
func memConfig(n *memNet, addr string, cfg Config) (Config, *memConn) {
	c := n.listen("127.0.0.2:" + strconv.Itoa(40000+int(memClientPort.Add(1))))
	cfg.Addr, cfg.packetConn = addr, c
	if cfg.User == "" {
		cfg.User = "admin"
	}
	if cfg.Password == nil {
		cfg.Password = Secret("secret")
	}
	return cfg, c
}
