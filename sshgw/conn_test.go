package sshgw

import (
	"bufio"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	gossh "golang.org/x/crypto/ssh"
)

// rawDial opens a TCP connection from the given loopback address.
func rawDial(t *testing.T, addr, from string) net.Conn {
	t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second}
	if from != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(from)}
	}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// closedByServer waits until the server closes c (a read returns EOF or
// an error), and returns what was read before.
func closedByServer(t *testing.T, c net.Conn) string {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(15 * time.Second))
	b, err := io.ReadAll(c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("server did not close the connection (read %q)", b)
	}
	return string(b)
}

func TestHandshakeTimeout(t *testing.T) {
	h := start(t, func(o *Options) { o.HandshakeTimeout = 300 * time.Millisecond })
	// Sends nothing at all.
	c := rawDial(t, h.addr, "")
	got := closedByServer(t, c)
	if !strings.HasPrefix(got, "SSH-2.0-solgate") {
		t.Errorf("server sent %q before closing, want its version line", got)
	}
	// Sends its version, then stalls in the key exchange.
	c2 := rawDial(t, h.addr, "")
	io.WriteString(c2, "SSH-2.0-stalled\r\n")
	closedByServer(t, c2)
	waitUntil(t, "no connection left", func() bool { st := h.srv.Stats(); return st.Conns == 0 && st.Unauthenticated == 0 })
	// The server still serves.
	if out, _, code := h.run("alice", "node1", "power status"); code != 0 || out != "node1: on\n" {
		t.Errorf("after timeouts: %q %d", out, code)
	}
}

func TestMaxUnauthenticated(t *testing.T) {
	h := start(t, func(o *Options) { o.MaxUnauthenticated = 3 })
	var held []net.Conn
	for i := 0; i < 3; i++ {
		c := rawDial(t, h.addr, "")
		r := bufio.NewReader(c)
		line, err := r.ReadString('\n')
		if err != nil || !strings.HasPrefix(line, "SSH-2.0-") {
			t.Fatalf("connection %d: %q %v", i, line, err)
		}
		held = append(held, c)
	}
	waitUntil(t, "3 unauthenticated", func() bool { return h.srv.Stats().Unauthenticated == 3 })
	over := rawDial(t, h.addr, "")
	if got := closedByServer(t, over); got != "" {
		t.Errorf("connection over the cap got %q, want an immediate close", got)
	}
	held[0].Close()
	waitUntil(t, "a slot frees", func() bool { return h.srv.Stats().Unauthenticated == 2 })
	if out, _, code := h.run("alice", "node1", "power status"); code != 0 {
		t.Errorf("after a slot freed: %q %d", out, code)
	}
}

// At the unauthenticated cap, a host holding fewer slots than the
// busiest one gets in by closing that host's oldest stalled connection;
// the busiest host itself, and a crowd of hosts holding one each, are
// refused as before.
func TestMaxUnauthenticatedFairShare(t *testing.T) {
	h := start(t, func(o *Options) { o.MaxUnauthenticated = 3 })
	hold := func(from string) net.Conn {
		t.Helper()
		c := rawDial(t, h.addr, from)
		if line, err := bufio.NewReader(c).ReadString('\n'); err != nil || !strings.HasPrefix(line, "SSH-2.0-") {
			t.Fatalf("from %s: %q %v", from, line, err)
		}
		return c
	}
	// One host takes every slot.
	var flood []net.Conn
	for range 3 {
		flood = append(flood, hold("127.0.0.2"))
		time.Sleep(10 * time.Millisecond) // distinct accept times: the oldest is flood[0]
	}
	waitUntil(t, "3 unauthenticated", func() bool { return h.srv.Stats().Unauthenticated == 3 })
	// That host's next connection is refused: it holds the most already.
	if got := closedByServer(t, rawDial(t, h.addr, "127.0.0.2")); got != "" {
		t.Errorf("the busiest host's connection over the cap got %q, want an immediate close", got)
	}
	// Another host gets in, and logs in, in place of the flood's oldest.
	if out, _, code := h.run("alice", "node1", "power status"); code != 0 || out != "node1: on\n" {
		t.Errorf("another host at the cap: %q %d, want it let in", out, code)
	}
	closedByServer(t, flood[0])
	for _, c := range flood[1:] {
		c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		if _, err := c.Read(make([]byte, 1)); !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Errorf("a newer connection of the flood was closed too (%v), want only the oldest", err)
		}
	}
	// Three hosts holding one slot each: a fourth is refused (taking one
	// would leave it as busy as they are).
	for _, c := range flood {
		c.Close()
	}
	waitUntil(t, "the flood gone", func() bool { return h.srv.Stats().Unauthenticated == 0 })
	var crowd []net.Conn
	for _, from := range []string{"127.0.0.3", "127.0.0.4", "127.0.0.5"} {
		crowd = append(crowd, hold(from))
	}
	waitUntil(t, "3 unauthenticated", func() bool { return h.srv.Stats().Unauthenticated == 3 })
	if got := closedByServer(t, rawDial(t, h.addr, "127.0.0.6")); got != "" {
		t.Errorf("a fourth host against three holding one each got %q, want an immediate close", got)
	}
	for _, c := range crowd {
		c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		if _, err := c.Read(make([]byte, 1)); !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Errorf("a crowd connection was closed (%v)", err)
		}
	}
	if st := h.srv.Stats(); st.Unauthenticated != 3 || st.RefusedCap != 2 || st.ClosedForRoom != 1 || st.RefusedBackoff != 0 {
		t.Errorf("Stats %+v, want 3 unauthenticated, 2 refused at the cap, 1 closed for room", st)
	}
}

// TestMaxConnections: authenticated connections are capped at
// MaxSessions too: connections that hold no session (ssh -fN, multiplexing
// masters) would otherwise only end at the idle timeout, each holding a
// descriptor the consoles may need. One beyond the cap is closed as it
// authenticates; once one closes, the next gets in.
func TestMaxConnections(t *testing.T) {
	h := start(t, func(o *Options) { o.MaxSessions = 2 })
	first := h.dial("alice", "node1") // no session: only the connection
	h.dial("bob", "node1")
	cfg := h.config("carol")
	cfg.User = "node1"
	if c, err := gossh.Dial("tcp", h.addr, cfg); err == nil {
		// Closed right after authenticating: the client may have seen
		// the handshake finish; nothing works on it.
		_, err = c.NewSession()
		c.Close()
		if err == nil {
			t.Fatal("a third authenticated connection with a cap of 2 opened a session")
		}
	}
	waitUntil(t, "one refused", func() bool { return h.srv.Stats().RefusedConns == 1 })
	first.Close()
	waitUntil(t, "a connection closed", func() bool { return h.srv.Stats().Conns == 1 })
	if out, _, code := h.run("carol", "node1", "who"); code != 0 || out != "nobody is attached\n" {
		t.Errorf("after one closed: %q %d, want carol let in", out, code)
	}
	if st := h.srv.Stats(); st.RefusedConns != 1 || st.RefusedCap != 0 {
		t.Errorf("Stats %+v, want 1 connection refused at the connection cap", st)
	}
}

func TestBackoffAfterFailures(t *testing.T) {
	h := start(t, func(o *Options) { o.BackoffAfter = 3; o.BackoffBase = time.Hour; o.BackoffMax = time.Hour })
	stranger := newSigner(t)
	fail := func(from string) error {
		cfg := h.config("alice")
		cfg.Auth = []gossh.AuthMethod{gossh.PublicKeys(stranger)}
		nc := rawDial(t, h.addr, from)
		c, _, _, err := gossh.NewClientConn(nc, h.addr, cfg)
		if err == nil {
			c.Close()
			t.Fatal("stranger authenticated")
		}
		return err
	}
	for i := 0; i < 3; i++ {
		fail("127.0.0.2")
	}
	waitUntil(t, "the failures counted", func() bool { return h.srv.Stats().BackoffSources == 1 && h.srv.Stats().Conns == 0 })
	if n := h.srv.Stats().AuthFailures; n != 3 {
		t.Errorf("Stats().AuthFailures = %d after 3 refused keys, want 3", n)
	}
	// 127.0.0.2 is refused at once, even with a good key.
	c := rawDial(t, h.addr, "127.0.0.2")
	if got := closedByServer(t, c); got != "" {
		t.Errorf("source in back-off got %q", got)
	}
	if st := h.srv.Stats(); st.RefusedBackoff != 1 || st.RefusedCap != 0 {
		t.Errorf("Stats %+v, want 1 refused in back-off", st)
	}
	// Others are not affected.
	if _, _, code := h.run("alice", "node1", "power status"); code != 0 {
		t.Errorf("127.0.0.1 refused too")
	}
}

// The back-off arithmetic, in a synctest bubble so time.Now is the fake
// clock.
func TestBackoffSchedule(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBackoff(3, time.Second, 8*time.Second)
		src := netip.MustParsePrefix("192.0.2.7/32")
		other := netip.MustParsePrefix("192.0.2.8/32")
		want := []time.Duration{0, 0, time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 8 * time.Second}
		for i, w := range want {
			if got := b.failed(src, time.Now()); got != w {
				t.Errorf("failure %d: wait %v, want %v", i+1, got, w)
			}
		}
		if got := b.wait(src, time.Now()); got != 8*time.Second {
			t.Errorf("wait right after: %v", got)
		}
		if got := b.wait(other, time.Now()); got != 0 {
			t.Errorf("another source waits %v", got)
		}
		time.Sleep(5 * time.Second)
		if got := b.wait(src, time.Now()); got != 3*time.Second {
			t.Errorf("wait 5s later: %v, want 3s", got)
		}
		time.Sleep(3 * time.Second)
		if got := b.wait(src, time.Now()); got != 0 {
			t.Errorf("wait after the delay: %v", got)
		}
		// A success forgets the source.
		b.succeeded(src)
		if got := b.failed(src, time.Now()); got != 0 {
			t.Errorf("first failure after success: %v", got)
		}
		// A source idle past forget starts over.
		b.failed(src, time.Now())
		b.failed(src, time.Now())
		time.Sleep(b.forget + time.Second)
		if got := b.failed(src, time.Now()); got != 0 {
			t.Errorf("after forget: %v", got)
		}
		// The table is bounded.
		b.maxEntries = 10
		for i := 0; i < 50; i++ {
			b.failed(netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 0, 0, byte(i)}), 32), time.Now())
		}
		if n := b.len(); n > 10 {
			t.Errorf("%d sources tracked, limit 10", n)
		}
	})
}

func TestSourceKey(t *testing.T) {
	for _, c := range []struct {
		addr net.Addr
		want string
	}{
		{&net.TCPAddr{IP: net.ParseIP("127.0.0.5"), Port: 1}, "127.0.0.5/32"},
		{&net.TCPAddr{IP: net.ParseIP("::ffff:10.1.2.3"), Port: 1}, "10.1.2.3/32"},
		{&net.TCPAddr{IP: net.ParseIP("2001:db8:1:2:3:4:5:6"), Port: 1}, "2001:db8:1:2::/64"},
	} {
		p, ok := sourceKey(c.addr)
		if !ok || p.String() != c.want {
			t.Errorf("sourceKey(%v) = %v %v, want %s", c.addr, p, ok, c.want)
		}
	}
	if _, ok := sourceKey(&net.UnixAddr{Name: "x"}); ok {
		t.Error("a unix address has a source key")
	}
}

// freezer is a TCP proxy whose forwarding can be stopped, to make a client
// look dead to the server.
type freezer struct {
	l       net.Listener
	frozen  atomic.Bool
	stopped atomic.Bool
	mu      sync.Mutex
	conns   []net.Conn
}

func newFreezer(t *testing.T, target string) *freezer {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &freezer{l: l}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			f.mu.Lock()
			f.conns = append(f.conns, c, s)
			f.mu.Unlock()
			go f.pipe(c, s)
			go f.pipe(s, c)
		}
	}()
	t.Cleanup(func() {
		f.stopped.Store(true)
		l.Close()
		f.mu.Lock()
		for _, c := range f.conns {
			c.Close()
		}
		f.mu.Unlock()
	})
	return f
}

func (f *freezer) pipe(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		for f.frozen.Load() {
			if f.stopped.Load() {
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			dst.Close()
			return
		}
	}
}

func TestKeepaliveNoticesDeadClient(t *testing.T) {
	h := start(t, func(o *Options) { o.KeepaliveInterval = 100 * time.Millisecond; o.KeepaliveCountMax = 2 })
	con := h.b.consoles["node1"]
	f := newFreezer(t, h.addr)
	cfg := h.config("alice")
	c, err := gossh.Dial("tcp", f.l.Addr().String(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	tm := attachTerm(t, c, true)
	tm.waitFor("read-write")
	// (That a live client is never dropped is TestWatcherTimers' job,
	// with a fake clock.)
	f.frozen.Store(true)
	waitUntil(t, "the dead client's session to end", func() bool { return h.srv.Stats().Sessions == 0 && con.attachedCount() == 0 })
}

func TestIdleTimeout(t *testing.T) {
	h := start(t, func(o *Options) { o.IdleTimeout = 300 * time.Millisecond; o.KeepaliveInterval = 50 * time.Millisecond })
	c := h.dial("alice", "node1")
	tm := attachTerm(t, c, true)
	tm.waitFor("read-write")
	tm.in.Write([]byte("\x05c."))
	tm.exit()
	// Without sessions, the connection goes after the idle timeout (that
	// sessions hold it off is TestWatcherTimers' job, with a fake clock).
	waitUntil(t, "idle connection closed", func() bool { return h.srv.Stats().Conns == 0 })
	if _, err := c.NewSession(); err == nil {
		t.Error("idle connection still open")
	}
}

// Garbage, half-open connections and a crowd of clients never take the
// server down, and leave nothing behind.
func TestHostileClients(t *testing.T) {
	// A handshake timeout long enough for a crowd on a loaded machine, so
	// that the clients let in do get served.
	h := start(t, func(o *Options) { o.HandshakeTimeout = 30 * time.Second; o.MaxUnauthenticated = 32 })
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 20; i++ {
		c := rawDial(t, h.addr, "")
		junk := make([]byte, rng.IntN(4096)+1)
		for j := range junk {
			junk[j] = byte(rng.Uint32())
		}
		if i%2 == 0 {
			junk = append([]byte("SSH-2.0-junk\r\n"), junk...)
		}
		c.Write(junk)
		if i%3 == 0 {
			c.(*net.TCPConn).CloseWrite() // half-open
		} else {
			c.Close()
		}
	}
	// 500 concurrent connection attempts: each is served or refused.
	const n = 500
	var wg sync.WaitGroup
	var served, refused atomic.Int32
	var firstErr atomic.Value
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			cfg := h.config("alice")
			cfg.Timeout = 30 * time.Second
			c, err := gossh.Dial("tcp", h.addr, cfg)
			if err != nil {
				firstErr.CompareAndSwap(nil, err.Error())
				refused.Add(1)
				return
			}
			defer c.Close()
			s, err := c.NewSession()
			if err != nil {
				refused.Add(1)
				return
			}
			defer s.Close()
			if out, err := s.Output("power status"); err == nil && string(out) == "node1: on\n" {
				served.Add(1)
			} else {
				refused.Add(1)
			}
		}(i)
	}
	wg.Wait()
	t.Logf("%d served, %d refused (first error: %v)", served.Load(), refused.Load(), firstErr.Load())
	if served.Load()+refused.Load() != n || served.Load() == 0 {
		t.Errorf("served %d + refused %d != %d", served.Load(), refused.Load(), n)
	}
	waitUntil(t, "connections gone", func() bool { st := h.srv.Stats(); return st.Conns == 0 && st.Sessions == 0 })
	if out, _, code := h.run("alice", "node1", "power status"); code != 0 || out != "node1: on\n" {
		t.Errorf("after the storm: %q %d", out, code)
	}
}

func TestHostKeyPersists(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "state", "ssh_host_ed25519_key")
	k1, err := LoadHostKey(path, true)
	if err != nil {
		t.Fatal(err)
	}
	if k1.PublicKey().Type() != gossh.KeyAlgoED25519 {
		t.Errorf("host key type %s", k1.PublicKey().Type())
	}
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v %v, want 0600", st.Mode(), err)
	}
	if st, _ := os.Stat(filepath.Dir(path)); st.Mode().Perm() != 0o700 {
		t.Errorf("state dir mode %v, want 0700", st.Mode().Perm())
	}
	k2, err := LoadHostKey(path, true)
	if err != nil {
		t.Fatal(err)
	}
	if string(k1.PublicKey().Marshal()) != string(k2.PublicKey().Marshal()) {
		t.Error("host key changed on the second load")
	}
	if _, err := LoadHostKey(filepath.Join(dir, "missing"), false); err == nil {
		t.Error("a missing configured key was created or accepted")
	}
	os.Chmod(path, 0o644)
	if _, err := LoadHostKey(path, false); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Errorf("world-readable key: %v", err)
	}
	os.Chmod(path, 0o600)
	os.WriteFile(path, []byte("not a key"), 0o600)
	if _, err := LoadHostKey(path, false); err == nil {
		t.Error("garbage accepted as a key")
	}
	left, _ := filepath.Glob(filepath.Join(dir, "state", ".hostkey-*"))
	if len(left) != 0 {
		t.Errorf("temporary files left: %v", left)
	}
}
