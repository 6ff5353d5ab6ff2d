//go:build linux

package ipmilan

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/solgate/solgate/ipmilan/bmcsim"
	"github.com/solgate/solgate/ipmilan/internal/wire"
	"golang.org/x/sys/unix"
)

// The shared pollers (reader_linux.go), over real loopback UDP against
// bmcsim in this process.

// udpBMC serves one simulated BMC on a loopback UDP port for the test;
// stop closes its socket (later packets to it get ICMP port unreachable).
func udpBMC(t *testing.T, cfg bmcsim.Config) (b *bmcsim.BMC, addr string, stop func()) {
	t.Helper()
	if cfg.Users == nil {
		cfg.Users = []bmcsim.User{{Name: "admin", Password: "secret"}}
	}
	b = bmcsim.New(cfg)
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); b.Serve(ctx, pc) }()
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); pc.Close(); <-done }) }
	t.Cleanup(stop)
	return b, pc.LocalAddr().String(), stop
}

func udpSOL(t *testing.T, addr string, cfg Config) *SOL {
	t.Helper()
	cfg.Addr, cfg.User, cfg.Password = addr, "admin", Secret("secret")
	if cfg.KeepAlive == 0 {
		cfg.KeepAlive = -1
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := DialSOL(ctx, cfg, SOLOptions{})
	if err != nil {
		t.Fatalf("SOL %s: %v", addr, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// pollerOf returns the poller and registration reading s, or nil.
func pollerOf(s *Session) (*poller, *pollReg) {
	thePollers.mu.Lock()
	ps := append([]*poller(nil), thePollers.pollers...)
	thePollers.mu.Unlock()
	for _, p := range ps {
		p.mu.Lock()
		for _, r := range p.regs {
			if r.s == s {
				p.mu.Unlock()
				return p, r
			}
		}
		p.mu.Unlock()
	}
	return nil, nil
}

// goroutinesIn counts the goroutines with fn in their stacks.
func goroutinesIn(fn string) int {
	buf := make([]byte, 8<<20)
	n := runtime.Stack(buf, true)
	k := 0
	for _, g := range strings.Split(string(buf[:n]), "\n\n") {
		if strings.Contains(g, fn) {
			k++
		}
	}
	return k
}

// waitNoPollers waits until every poller has ended (its sessions closed).
func waitNoPollers(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for goroutinesIn("ipmilan.(*poller).run") > 0 {
		if time.Now().After(deadline) {
			thePollers.mu.Lock()
			n := len(thePollers.pollers)
			thePollers.mu.Unlock()
			t.Fatalf("poller goroutines still running 10s after their sessions closed (%d in the pool)", n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// readStream reads n bytes of a bmcsim Stream from c and checks them.
func readStream(c *SOL, n int) error {
	got := make([]byte, 0, n)
	buf := make([]byte, 4096)
	for len(got) < n {
		k, err := c.Read(buf)
		got = append(got, buf[:k]...)
		if err != nil {
			return fmt.Errorf("after %d bytes of %d: %w", len(got), n, err)
		}
	}
	if want := bmcsim.AppendStreamText(nil, 0, n); !bytes.Equal(got, want) {
		i := 0
		for i < len(got) && got[i] == want[i] {
			i++
		}
		return fmt.Errorf("stream differs from byte %d of %d: %q", i, n, got[i:min(len(got), i+40)])
	}
	return nil
}

// TestPollerSharedStreams: many consoles over real UDP, each printing a
// numbered stream, share one poller (no goroutine of their own reads a
// socket), and every stream arrives whole; once they are closed the
// poller ends and no goroutine is left.
func TestPollerSharedStreams(t *testing.T) {
	const consoles, total = 48, 40_000
	before := runtime.NumGoroutine()
	var bmcs []*bmcsim.BMC
	var sols []*SOL
	for range consoles {
		b, addr, _ := udpBMC(t, bmcsim.Config{SOL: bmcsim.SOLConfig{NoBootText: true}})
		bmcs = append(bmcs, b)
		sols = append(sols, udpSOL(t, addr, Config{}))
	}
	if n := goroutinesIn("ipmilan.(*Session).readLoop"); n != 0 {
		t.Fatalf("%d sessions read their sockets on a goroutine of their own", n)
	}
	first, _ := pollerOf(sols[0].Session())
	for i, c := range sols {
		if p, _ := pollerOf(c.Session()); p == nil || p != first {
			t.Fatalf("console %d: poller %p, want the first console's %p (%d consoles fit one)", i, p, first, pollerSessions)
		}
	}
	if n := goroutinesIn("ipmilan.(*poller).run"); n != 1 {
		t.Fatalf("%d poller goroutines for %d consoles, want 1", n, consoles)
	}
	errs := make(chan error, 2*consoles)
	for i := range sols {
		go func() { errs <- bmcs[i].Stream(context.Background(), 0, total) }()
		go func() {
			if err := readStream(sols[i], total); err != nil {
				errs <- fmt.Errorf("console %d: %w", i, err)
				return
			}
			errs <- nil
		}()
	}
	for range 2 * consoles {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	for i, c := range sols {
		if st := c.Stats(); st.Gaps != 0 {
			t.Errorf("console %d: %d gaps", i, st.Gaps)
		}
		c.Close()
	}
	waitNoPollers(t)
	for deadline := time.Now().Add(10 * time.Second); goroutinesIn("solgate/ipmilan.(*") > 0; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("goroutines left in ipmilan after the consoles closed (%d before they opened):\n%s", before, buf[:runtime.Stack(buf, true)])
		}
	}
}

// serveHook installs testHookServe for the test.
func serveHook(t *testing.T, f func(*Session)) {
	testHookServe.Store(&f)
	t.Cleanup(func() { testHookServe.Store(nil) })
}

// TestPollerCloseWhileFlowing: a session closed while its output flows,
// with the poller in the middle of one of its packets: Close waits for
// that packet's handling, and after Close returns no packet of the session
// is handled; the other session on the poller keeps its stream whole.
func TestPollerCloseWhileFlowing(t *testing.T) {
	const total = 200_000
	bv, addrV, _ := udpBMC(t, bmcsim.Config{SOL: bmcsim.SOLConfig{NoBootText: true}})
	bo, addrO, _ := udpBMC(t, bmcsim.Config{SOL: bmcsim.SOLConfig{NoBootText: true}})
	victim := udpSOL(t, addrV, Config{Timeout: 200 * time.Millisecond})
	other := udpSOL(t, addrO, Config{})
	vs := victim.Session()
	var armed, closed atomic.Bool
	var late atomic.Int64
	inHandle, release := make(chan struct{}), make(chan struct{})
	serveHook(t, func(s *Session) {
		if s != vs {
			return
		}
		if closed.Load() {
			late.Add(1)
		}
		if armed.CompareAndSwap(true, false) {
			close(inHandle)
			<-release
		}
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go bv.Stream(ctx, 0, 1<<30)
	go io.Copy(io.Discard, victim)
	errs := make(chan error, 2)
	go func() { errs <- bo.Stream(context.Background(), 0, total) }()
	go func() { errs <- readStream(other, total) }()
	time.Sleep(50 * time.Millisecond) // the victim's output flows
	armed.Store(true)
	<-inHandle
	closeDone := make(chan struct{})
	go func() { vs.Close(); closed.Store(true); close(closeDone) }()
	select {
	case <-closeDone:
		t.Fatal("Close returned while the poller was handling one of the session's packets")
	case <-time.After(300 * time.Millisecond):
	}
	close(release)
	select {
	case <-closeDone:
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not return after the packet's handling ended")
	}
	if _, r := pollerOf(vs); r != nil {
		t.Fatal("the closed session is still registered")
	}
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatalf("other console: %v", err)
		}
	}
	if n := late.Load(); n != 0 {
		t.Fatalf("%d packets of the session handled after Close returned", n)
	}
}

// TestPollerEndFromHandle: a session that ends from inside its own packet
// handling on the poller (s.fail there, a panic there) ends alone: no
// deadlock, its Close returns, the poller and the other session go on.
func TestPollerEndFromHandle(t *testing.T) {
	for _, how := range []string{"fail", "panic"} {
		t.Run(how, func(t *testing.T) {
			const total = 100_000
			bv, addrV, _ := udpBMC(t, bmcsim.Config{SOL: bmcsim.SOLConfig{NoBootText: true}})
			bo, addrO, _ := udpBMC(t, bmcsim.Config{SOL: bmcsim.SOLConfig{NoBootText: true}})
			victim := udpSOL(t, addrV, Config{})
			other := udpSOL(t, addrO, Config{})
			if p, _ := pollerOf(victim.Session()); p == nil {
				t.Fatal("victim not on a poller")
			} else if q, _ := pollerOf(other.Session()); q != p {
				t.Fatal("the two sessions are not on the same poller")
			}
			injected := errors.New("injected end from inside handle")
			var packets atomic.Int64
			vs := victim.Session()
			h := *vs.payloads.Load()
			vs.setPayloadHandler(func(pt wire.PayloadType, b []byte) {
				if packets.Add(1) == 5 {
					if how == "panic" {
						panic("injected handler panic")
					}
					vs.fail(injected)
					return
				}
				h(pt, b)
			})
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			go bv.Stream(ctx, 0, 1<<30)
			errs := make(chan error, 2)
			go func() { errs <- bo.Stream(context.Background(), 0, total) }()
			go func() { errs <- readStream(other, total) }()
			select {
			case <-vs.Done():
			case <-time.After(10 * time.Second):
				t.Fatal("the session did not end")
			}
			switch err := vs.Err(); how {
			case "fail":
				if !errors.Is(err, injected) {
					t.Fatalf("session ended with %v", err)
				}
			case "panic":
				var pe *panicError
				if !errors.As(err, &pe) || pe.goroutine != "reader" {
					t.Fatalf("session ended with %v, want the reader's panic", err)
				}
			}
			closed := make(chan struct{})
			go func() { victim.Close(); close(closed) }()
			select {
			case <-closed:
			case <-time.After(10 * time.Second):
				t.Fatal("Close of the ended session hangs")
			}
			for range 2 {
				if err := <-errs; err != nil {
					t.Fatalf("other console: %v", err)
				}
			}
			if other.Err() != nil || other.Session().Err() != nil {
				t.Fatalf("other console ended: %v / %v", other.Err(), other.Session().Err())
			}
		})
	}
}

// TestPollerRefused: the BMC's port closes under an established session:
// ICMP port unreachable reaches the poller's read (or the next write) and
// the command's error says so, as with readLoop; the session is not ended
// by it.
func TestPollerRefused(t *testing.T) {
	_, addr, stop := udpBMC(t, bmcsim.Config{})
	cfg := Config{Addr: addr, User: "admin", Password: Secret("secret"), KeepAlive: -1, Timeout: 100 * time.Millisecond, Retries: 2}
	s, err := Dial(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if p, _ := pollerOf(s); p == nil {
		t.Fatal("session not on a poller")
	}
	stop()
	_, err = s.DeviceID(context.Background())
	if !errors.Is(err, ErrNoAnswer) || !strings.Contains(err.Error(), "unreachable") {
		t.Fatalf("got %v, want no answer, port unreachable", err)
	}
	if s.Err() != nil {
		t.Fatalf("port unreachable ended the session: %v", s.Err())
	}
}

// rawStream is a hand-made established RMCP+ session (suite 17) on a
// polled socket, fed by a stand-in BMC socket that sends sealed SOL
// packets, so that a test controls exactly which datagram is queued when.
type rawStream struct {
	bmc  *net.UDPConn
	to   *net.UDPAddr
	s    *Session
	eng  *solEngine
	c    *rawUDP
	keys *wire.Keys
	seq  uint32
	got  chan []byte
}

func newRawStream(t *testing.T) *rawStream {
	t.Helper()
	bmc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bmc.Close() })
	st, err := openRawStream(bmc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.close)
	return st
}

// openRawStream opens a rawStream fed from bmc (which the caller closes;
// st.close ends the session).
func openRawStream(bmc *net.UDPConn) (*rawStream, error) {
	suite, _ := wire.LookupCipherSuite(17)
	sik := make([]byte, 32)
	raddr := bmc.LocalAddr().(*net.UDPAddr)
	c, err := dialRawUDP(raddr)
	if err != nil {
		return nil, err
	}
	sa, err := unix.Getsockname(c.fd)
	if err != nil {
		c.Close()
		return nil, err
	}
	s := &Session{cfg: Config{Addr: raddr.String()}, conn: c, v2: true, suite: suite, keys: wire.SessionKeys(suite, sik, nil),
		phase: phaseActive, sid: 1, sidm: 2, outSeq: 1, calls: map[uint8]*call{}, done: make(chan struct{})}
	s.log = discardLogger()
	s.inAuth.reset(1)
	st := &rawStream{bmc: bmc, to: &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: sa.(*unix.SockaddrInet4).Port}, s: s, c: c,
		keys: wire.SessionKeys(suite, sik, nil), seq: 1, got: make(chan []byte, 64)}
	st.eng = newSOLEngine(func(p []byte) error { return s.sendPayload(wire.PayloadSOL, p) }, 32, 0, time.Second, 16)
	st.eng.ackPace = 0
	st.eng.setSink(func(p []byte) { st.got <- append([]byte(nil), p...) })
	s.setPayloadHandler(func(_ wire.PayloadType, p []byte) { st.eng.deliver(p); st.eng.drainSink() })
	s.wg.Add(1)
	if err := thePollers.register(s, c, c.fd); err != nil {
		c.Close()
		return nil, err
	}
	go st.eng.run(s.done, s.Err)
	return st, nil
}

// send queues one SOL packet with data in the session's socket (loopback
// delivers before sendto returns).
func (st *rawStream) send(solSeq uint8, data string) error {
	sol := wire.SOLPacket{Seq: solSeq, Data: []byte(data)}.Append(nil)
	p, err := st.keys.Seal(wire.RMCPHeader{Seq: wire.RMCPSeqNoACK, Class: wire.ClassIPMI}.Append(nil),
		wire.Packet20{Type: wire.PayloadSOL, SessionID: 2, Seq: st.seq}, sol)
	if err != nil {
		return err
	}
	st.seq++
	_, err = st.bmc.WriteToUDP(p, st.to)
	return err
}

func (st *rawStream) close() {
	st.eng.close()
	st.s.shutdown(ErrClosed)
}

// TestPollerDescriptorReuse: a session ends while an epoll event of its
// socket is in the poller's batch, and a new session's socket gets the
// same descriptor number, with a packet queued: the old registration's
// event is dropped (it must not read the new socket), and the packet goes
// to the new session only.
func TestPollerDescriptorReuse(t *testing.T) {
	keeper := newRawStream(t) // keeps the poller running when a ends
	a := newRawStream(t)
	if err := a.send(1, "first for a"); err != nil {
		t.Fatal(err)
	}
	if got := string(<-a.got); got != "first for a" {
		t.Fatalf("a got %q", got)
	}
	pa, ra := pollerOf(a.s)
	if pk, _ := pollerOf(keeper.s); ra == nil || pk != pa {
		t.Fatal("a and keeper not on one poller")
	}
	bmcB, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer bmcB.Close()
	var handledA, closedA atomic.Bool
	serveHook(t, func(s *Session) {
		if s == a.s && closedA.Load() {
			handledA.Store(true)
		}
	})
	var b *rawStream
	hookErr := make(chan error, 1)
	var fired atomic.Bool // the hook runs on every poller, some maybe left by other tests
	// Runs on the poller: a's packet is queued and its event is in this
	// batch. a ends; b's socket takes a's descriptor number and gets a
	// packet queued; then the poller goes on with the batch.
	hook := func(ids []uint64) {
		if !slices.Contains(ids, ra.id) || !fired.CompareAndSwap(false, true) {
			return
		}
		hookErr <- func() error {
			fdA := a.c.fd
			a.close()
			closedA.Store(true)
			var spare []int // lower free numbers, taken until b has its socket
			defer func() {
				for _, fd := range spare {
					unix.Close(fd)
				}
			}()
			for {
				fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
				if err != nil {
					return err
				}
				if fd == fdA {
					unix.Close(fd)
					break
				}
				spare = append(spare, fd)
				if fd > fdA {
					return fmt.Errorf("descriptor %d taken again before b could have it", fdA)
				}
			}
			var err error
			if b, err = openRawStream(bmcB); err != nil {
				return err
			}
			if b.c.fd != fdA {
				return fmt.Errorf("b's socket is descriptor %d, a's was %d", b.c.fd, fdA)
			}
			return b.send(1, "only for b")
		}()
	}
	testHookPollerBatch.Store(&hook)
	t.Cleanup(func() { testHookPollerBatch.Store(nil) })
	if err := a.send(2, "second for a"); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-hookErr:
		if b != nil {
			t.Cleanup(b.close)
		}
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a's event never came")
	}
	select {
	case got := <-b.got:
		if string(got) != "only for b" {
			t.Fatalf("b got %q", got)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("b's packet was not delivered to b")
	}
	if handledA.Load() {
		t.Fatal("a packet was handled for a after a ended")
	}
	select {
	case got := <-a.got:
		t.Fatalf("a got %q after it ended", got)
	default:
	}
}

// TestPollerIPv6: a polled session to a BMC on ::1 (the raw socket's IPv6
// path), if the machine has IPv6 loopback.
func TestPollerIPv6(t *testing.T) {
	pc, err := net.ListenPacket("udp", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	b := bmcsim.New(bmcsim.Config{Users: []bmcsim.User{{Name: "admin", Password: "secret"}}})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); b.Serve(ctx, pc) }()
	defer func() { cancel(); pc.Close(); <-done }()
	s, err := Dial(context.Background(), Config{Addr: pc.LocalAddr().String(), User: "admin", Password: Secret("secret"), KeepAlive: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if p, _ := pollerOf(s); p == nil {
		t.Fatal("session not on a poller")
	}
	if _, err := s.DeviceID(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// BenchmarkSOLStreamPolled is BenchmarkSOLStream with the sockets read by
// the shared pollers, as Dial has them on Linux.
func BenchmarkSOLStreamPolled(b *testing.B) {
	benchSOLStream(b, func(b *testing.B, s *Session, bmc *net.UDPAddr) *net.UDPAddr {
		c, err := dialRawUDP(bmc)
		if err != nil {
			b.Fatal(err)
		}
		sa, err := unix.Getsockname(c.fd)
		if err != nil {
			b.Fatal(err)
		}
		s.conn = c
		s.wg.Add(1)
		if err := thePollers.register(s, c, c.fd); err != nil {
			b.Fatal(err)
		}
		return &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: sa.(*unix.SockaddrInet4).Port}
	})
}

// TestPollerSpread: past pollerSessions a second poller starts (when
// GOMAXPROCS allows one), the next session goes to the poller with fewest,
// and every poller ends with its last session.
func TestPollerSpread(t *testing.T) {
	var ss []*rawStream
	for range pollerSessions + 2 {
		ss = append(ss, newRawStream(t))
	}
	count := map[*poller]int{}
	for _, st := range ss {
		p, _ := pollerOf(st.s)
		if p == nil {
			t.Fatal("a session not on a poller")
		}
		count[p]++
	}
	first, _ := pollerOf(ss[0].s)
	want := map[int]int{pollerSessions: 1, 2: 1} // sessions per poller: how many pollers
	if maxPollers() == 1 {
		want = map[int]int{pollerSessions + 2: 1}
	}
	got := map[int]int{}
	for _, n := range count {
		got[n]++
	}
	if fmt.Sprint(got) != fmt.Sprint(want) || (maxPollers() > 1 && count[first] != pollerSessions) {
		t.Fatalf("sessions per poller: %v, want %v (GOMAXPROCS %d)", got, want, maxPollers())
	}
	for _, st := range ss {
		if err := st.send(1, "x"); err != nil {
			t.Fatal(err)
		}
	}
	for i, st := range ss {
		select {
		case got := <-st.got:
			if string(got) != "x" {
				t.Fatalf("session %d got %q", i, got)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("session %d got nothing", i)
		}
	}
	for _, st := range ss {
		st.close()
	}
	waitNoPollers(t)
}
