package syslog

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// conn is one connection to a receiver. The messages written on it are
// numbered from 0 in order; taken says how many of them, counted from the
// first, the receiver has taken:
//
//   - udp, unix datagram: sent (a datagram the network or receiver drops
//     is lost);
//   - tcp, tls: acknowledged by the peer's TCP (TCP_INFO bytes_acked);
//   - unix stream: read by the peer (SIOCOUTQ);
//   - relp: acknowledged by the receiver with "200 OK".
//
// A conn is used by one goroutine (its target's), except that relp and the
// stream conns run a reader goroutine that close waits for.
type conn interface {
	// write queues one message (framing is the conn's).
	write(msg []byte) error
	// flush sends what write queued.
	flush() error
	// taken returns how many messages the receiver has taken, or the error
	// that broke the connection.
	taken() (int, error)
	// wake is ready when taken may have grown (relp) or the connection
	// broke; nil if the caller must poll.
	wake() <-chan struct{}
	// stopping bounds every write, the one blocked now included, by the
	// time given (the earliest given wins): the target is stopping, and a
	// receiver whose window stays closed must not hold it for writeTimeout.
	// Safe to call from any goroutine.
	stopping(by time.Time)
	// suspect says, once the connection broke, how many of the last
	// messages counted as taken the receiver may never have had: for tcp
	// and tls, a receiver that closes with bytes its kernel acknowledged
	// but it never read resets the connection and those bytes are thrown
	// away (rsyslog does this when it is stopped). 0 for the others.
	suspect() int
	close()
}

// writeTimeout is how long a write may block (the receiver's TCP window
// closed) before the connection counts as dead.
const writeTimeout = 30 * time.Second

// dialTimeout bounds connecting and the TLS and RELP handshakes.
const dialTimeout = 10 * time.Second

// writeDeadline sets a conn's write deadline before each write:
// writeTimeout from now, but never past the stop deadline once stopping
// set one.
type writeDeadline struct {
	mu sync.Mutex // guards by; held while setting the deadline, so that a write never sets one past by
	by time.Time  // zero until the target stops
}

func (d *writeDeadline) arm(c net.Conn) {
	d.mu.Lock()
	dl := time.Now().Add(writeTimeout)
	if !d.by.IsZero() && d.by.Before(dl) {
		dl = d.by
	}
	c.SetWriteDeadline(dl)
	d.mu.Unlock()
}

func (d *writeDeadline) stop(c net.Conn, by time.Time) {
	d.mu.Lock()
	if d.by.IsZero() || by.Before(d.by) {
		d.by = by
	}
	c.SetWriteDeadline(d.by)
	d.mu.Unlock()
}

// tlsFiles are the PEM files of a tls target, read at each dial (so a
// renewed certificate is picked up at the next reconnect).
type tlsFiles struct {
	caFile, serverName, certFile, keyFile string
}

func (f tlsFiles) config(host string) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: f.serverName}
	if cfg.ServerName == "" {
		cfg.ServerName = host
	}
	if f.caFile != "" {
		pem, err := os.ReadFile(f.caFile)
		if err != nil {
			return nil, fmt.Errorf("tls CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tls CA file %s: no PEM certificate in it", f.caFile)
		}
		cfg.RootCAs = pool
	}
	if f.certFile != "" || f.keyFile != "" {
		c, err := tls.LoadX509KeyPair(f.certFile, f.keyFile)
		if err != nil {
			return nil, fmt.Errorf("tls client certificate: %w", err)
		}
		cfg.Certificates = []tls.Certificate{c}
	}
	return cfg, nil
}

// dial connects to a target's receiver.
func dial(ctx context.Context, network, address string, tf tlsFiles) (conn, error) {
	ctx, cancel := context.WithTimeout(ctx, dialTimeout)
	defer cancel()
	var d net.Dialer
	switch network {
	case "udp":
		c, err := d.DialContext(ctx, "udp", address)
		if err != nil {
			return nil, err
		}
		return &dgramConn{c: c}, nil
	case "unix":
		c, err := d.DialContext(ctx, "unixgram", address)
		if err == nil {
			return &dgramConn{c: c}, nil
		}
		if !errors.Is(err, syscall.EPROTOTYPE) {
			return nil, err
		}
		c, err = d.DialContext(ctx, "unix", address)
		if err != nil {
			return nil, err
		}
		return newStreamConn(c, c, false), nil
	case "tcp", "tls", "relp":
		c, err := d.DialContext(ctx, "tcp", address)
		if err != nil {
			return nil, err
		}
		if network == "relp" {
			return newRELPConn(ctx, c)
		}
		if network == "tcp" {
			return newStreamConn(c, c, true), nil
		}
		host, _, _ := net.SplitHostPort(address)
		cfg, err := tf.config(host)
		if err != nil {
			c.Close()
			return nil, err
		}
		cc := &countConn{Conn: c}
		tc := tls.Client(cc, cfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			c.Close()
			return nil, fmt.Errorf("tls handshake: %w", err)
		}
		return newStreamConn(tc, cc, true), nil
	}
	return nil, fmt.Errorf("unknown network %q", network)
}

// dgramConn sends one message per datagram.
type dgramConn struct {
	c    net.Conn
	sent int
	dl   writeDeadline
}

func (d *dgramConn) write(msg []byte) error {
	d.dl.arm(d.c)
	if _, err := d.c.Write(msg); err != nil {
		return err
	}
	d.sent++
	return nil
}
func (d *dgramConn) flush() error          { return nil }
func (d *dgramConn) taken() (int, error)   { return d.sent, nil }
func (d *dgramConn) wake() <-chan struct{} { return nil }
func (d *dgramConn) suspect() int          { return 0 }
func (d *dgramConn) close()                { d.c.Close() }

func (d *dgramConn) stopping(by time.Time) { d.dl.stop(d.c, by) }

// countConn counts the bytes written to the socket under TLS.
type countConn struct {
	net.Conn
	// Atomic: written by the target's goroutine (tls.Conn.Write) and by
	// the reader's, whose tls.Conn.Read answers a KeyUpdate or sends an
	// alert (tls.Conn serializes the writes, not the target's reads of n).
	n atomic.Int64
}

func (c *countConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.n.Add(int64(n))
	return n, err
}

// streamConn frames messages on a byte stream: octet counting (RFC 6587
// 3.4.1, RFC 5425) for tcp and tls, a line feed for a unix stream socket
// (what local stream receivers expect; messages never hold one).
type streamConn struct {
	c      net.Conn // what messages are written to (a tls.Conn for tls)
	sock   net.Conn // the socket itself, for what the peer took
	cc     *countConn
	octet  bool
	w      *bufio.Writer
	queued int     // messages written since the last flush
	ends   []int64 // socket bytes that must be acknowledged for each untaken message
	done   int     // messages taken
	raw    int64   // socket bytes written (without TLS: what we wrote)
	dl     writeDeadline

	// For tcp and tls, the messages taken lately (a ring, oldest first):
	// where each ends in the byte stream and when it was taken, so that a
	// reset can tell which may be lost (suspect).
	recent  []takenMsg
	maxWnd  int64 // the largest receive window the peer advertised
	isTCP   bool
	lastAck int64

	rdone chan struct{} // closed when the reader ends: the peer closed or reset
	mu    sync.Mutex    // guards rerr
	rerr  error
}

type takenMsg struct {
	end int64
	at  time.Time
}

// After a reset, the messages taken within resetKeep, or whose bytes lie
// within twice the largest receive window (plus resetSlack) of the end of
// what was acknowledged, are sent again: the peer's unread buffer can hold
// no more than its window, and a receiver stopping stops reading only
// moments before it closes. recentMax bounds what is remembered.
const (
	resetKeep  = 2 * time.Second
	resetSlack = 64 << 10
	recentMax  = 1 << 16
)

// streamBuffer holds the largest message with its framing (frameSlack
// is the most framing a message gets): a message that does not fit in
// what is left flushes the buffer first (needsFlush), so the buffer never
// writes to the socket by itself.
const (
	streamBuffer = maxMessage + frameSlack
	frameSlack   = 64
)

// needsFlush says whether msg must wait for a flush of what w holds:
// written now, it would not fit, and w would write to the socket by
// itself (uncounted, under a stale write deadline).
func needsFlush(w *bufio.Writer, msg []byte) bool {
	return w.Available() < len(msg)+frameSlack && w.Buffered() > 0
}

func newStreamConn(c, sock net.Conn, octet bool) *streamConn {
	s := &streamConn{c: c, sock: sock, octet: octet, w: bufio.NewWriterSize(c, streamBuffer), rdone: make(chan struct{})}
	if cc, ok := sock.(*countConn); ok {
		s.cc = cc
	}
	raw := sock
	if cc, ok := raw.(*countConn); ok {
		raw = cc.Conn
	}
	_, s.isTCP = raw.(*net.TCPConn)
	go s.reader()
	return s
}

// reader notices the peer closing: syslog receivers never send on these
// connections, so anything that ends a read means the connection is gone.
func (s *streamConn) reader() {
	defer close(s.rdone)
	_, err := io.Copy(io.Discard, s.c)
	if err == nil {
		err = io.EOF
	}
	s.mu.Lock()
	s.rerr = fmt.Errorf("receiver closed the connection: %w", err)
	s.mu.Unlock()
}

func (s *streamConn) write(msg []byte) error {
	// Never let the buffer write to the socket by itself: flush arms the
	// write deadline (or one 30 s old would fail the write at once) and
	// counts what went out (or messages would count as acknowledged
	// before their bytes were).
	if needsFlush(s.w, msg) {
		if err := s.flush(); err != nil {
			return err
		}
	}
	if s.octet {
		var n [20]byte
		s.w.Write(strconv.AppendInt(n[:0], int64(len(msg)), 10))
		s.w.WriteByte(' ')
		s.w.Write(msg)
	} else {
		s.w.Write(msg)
		s.w.WriteByte('\n')
	}
	s.queued++
	if s.w.Buffered() >= 60<<10 {
		return s.flush()
	}
	return nil
}

func (s *streamConn) flush() error {
	if s.queued == 0 && s.w.Buffered() == 0 {
		return nil
	}
	s.dl.arm(s.c)
	n := s.w.Buffered()
	if err := s.w.Flush(); err != nil {
		return err
	}
	if s.cc != nil {
		s.raw = s.cc.n.Load()
	} else {
		s.raw += int64(n)
	}
	// Conservative: a message is taken once everything up to the end of the
	// write that carried it is acknowledged.
	for range s.queued {
		s.ends = append(s.ends, s.raw)
	}
	s.queued = 0
	return nil
}

func (s *streamConn) taken() (int, error) {
	select {
	case <-s.rdone:
		s.mu.Lock()
		err := s.rerr
		s.mu.Unlock()
		return s.done, err
	default:
	}
	if len(s.ends) == 0 {
		return s.done, nil
	}
	acked, wnd, err := ackedBytes(s.sock, s.raw)
	if err != nil {
		return s.done, err
	}
	s.maxWnd, s.lastAck = max(s.maxWnd, wnd), acked
	k := 0
	for k < len(s.ends) && s.ends[k] <= acked {
		k++
	}
	if k > 0 {
		if s.isTCP {
			now := time.Now()
			for _, end := range s.ends[:k] {
				if len(s.recent) == recentMax {
					s.recent = append(s.recent[:0], s.recent[recentMax/2:]...)
				}
				s.recent = append(s.recent, takenMsg{end, now})
			}
		}
		s.done += k
		s.ends = append(s.ends[:0], s.ends[k:]...)
	}
	return s.done, nil
}

func (s *streamConn) suspect() int {
	if !s.isTCP {
		return 0
	}
	s.mu.Lock()
	err := s.rerr
	s.mu.Unlock()
	if errors.Is(err, io.EOF) {
		// A clean close (FIN): the receiver had read everything its TCP
		// acknowledged, or the close would have been a reset.
		return 0
	}
	since := time.Now().Add(-resetKeep)
	from := s.lastAck - 2*s.maxWnd - resetSlack
	n := 0
	for i := len(s.recent) - 1; i >= 0 && (s.recent[i].end > from || s.recent[i].at.After(since)); i-- {
		n++
	}
	return n
}

func (s *streamConn) wake() <-chan struct{} { return s.rdone }

func (s *streamConn) stopping(by time.Time) { s.dl.stop(s.c, by) }

func (s *streamConn) close() {
	s.sock.Close()
	<-s.rdone
}

// ackedBytes returns how many bytes written to a socket the peer has
// taken: for TCP the bytes its TCP acknowledged (tcpi_bytes_acked, which
// unlike the send queue length is not reset when a reset purges the
// queue), and the receive window it advertised last (tcpi_snd_wnd); for a
// unix stream socket the bytes written less those the peer
// has not read yet (SIOCOUTQ), trusted only if the peer has not closed,
// since closing frees what it did not read.
func ackedBytes(c net.Conn, written int64) (acked, wnd int64, err error) {
	if cc, ok := c.(*countConn); ok {
		c = cc.Conn
	}
	sc, ok := c.(syscall.Conn)
	if !ok {
		return 0, 0, errors.New("no socket to query")
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return 0, 0, err
	}
	_, isTCP := c.(*net.TCPConn)
	var ierr error
	err = rc.Control(func(fd uintptr) {
		if isTCP {
			info, err := unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO)
			if err != nil {
				ierr = fmt.Errorf("TCP_INFO: %w", err)
				return
			}
			acked, wnd = int64(info.Bytes_acked), int64(info.Snd_wnd)
			return
		}
		q, err := unix.IoctlGetInt(int(fd), unix.SIOCOUTQ)
		if err != nil {
			ierr = fmt.Errorf("SIOCOUTQ: %w", err)
			return
		}
		var b [1]byte
		n, _, err := unix.Recvfrom(int(fd), b[:], unix.MSG_PEEK|unix.MSG_DONTWAIT)
		if n == 0 && err == nil {
			ierr = errors.New("receiver closed the connection")
			return
		}
		acked = written - int64(q)
	})
	if err != nil {
		return 0, 0, err
	}
	return acked, wnd, ierr
}
