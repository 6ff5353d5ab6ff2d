package sshgw

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"

	gliderssh "github.com/gliderlabs/ssh"
	gossh "golang.org/x/crypto/ssh"
)

// DefaultListName is the SSH user name that lists a person's consoles
// instead of attaching to one; configuration validation refuses a console
// of that name.
const DefaultListName = "list"

// Options configure a Server. Zero values mean the defaults given.
type Options struct {
	Backend  Backend
	HostKeys []gossh.Signer // at least one; see LoadHostKey
	Logger   *slog.Logger   // nil discards

	// ListName is the user name that lists consoles; default
	// DefaultListName.
	ListName string

	// HandshakeTimeout bounds the time from TCP accept to authenticated;
	// default 30s.
	HandshakeTimeout time.Duration
	// MaxUnauthenticated caps connections not yet authenticated. At the
	// cap a new connection is closed at once, unless its source (IPv4
	// address or IPv6 /64), counting the new one, would still hold fewer
	// of them than the source that holds most: then that source's oldest
	// unauthenticated connection is closed to make room. So one host
	// holding every slot (a scanner, a flood of stalled handshakes)
	// cannot lock the others out. Default 64.
	MaxUnauthenticated int
	// MaxSessions caps open sessions in total, MaxSessionsPerUser per
	// person. Defaults 2048 and 256. MaxSessions also caps authenticated
	// connections: one that authenticates beyond it is closed at once
	// (each costs a descriptor, and connections that hold no session, a
	// script's ssh -fN or ControlPersist masters, would otherwise only
	// end at IdleTimeout: enough of them would take the descriptors the
	// consoles' sockets need).
	MaxSessions        int
	MaxSessionsPerUser int
	// KeepaliveInterval is how often the server sends a
	// keepalive@openssh.com request on an authenticated connection; a
	// connection that leaves KeepaliveCountMax of them unanswered is
	// closed. Defaults 30s and 3; a negative interval disables them.
	KeepaliveInterval time.Duration
	KeepaliveCountMax int
	// IdleTimeout closes an authenticated connection that has had no
	// session open for this long (a multiplexing master kept by
	// ControlPersist, a client that never opens a session). Default 10m;
	// negative disables it. Attached sessions are never idle: watching a
	// console is what they are for.
	IdleTimeout time.Duration
	// BackoffAfter connections in a row from one source (IPv4 address or
	// IPv6 /64) that ended without authenticating after a key or method
	// was refused make it wait BackoffBase before it may connect again,
	// doubling with each further failure up to BackoffMax; a success
	// resets it. Handshake timeouts do not count (a crowd of clients can
	// cause them). Defaults 5, 1s, 5m.
	BackoffAfter int
	BackoffBase  time.Duration
	BackoffMax   time.Duration

	// Replay is how many lines of recent output an interactive attach
	// replays; default 24, negative for none.
	Replay int
	// Screen is the console geometry assumed for repaints; default 80x24.
	Screen ScreenSize
	// RecentBytes is how much recent raw output feeds the terminal
	// emulator; default 64 KiB.
	RecentBytes int
	// Escape is shown in banners when a console's Status has none;
	// default "^Ec".
	Escape string
	// StreamNotices says the backend's attachment streams carry their own
	// banner at the start (state, mode, who writes, help) and the reason
	// at the end: the gateway then writes neither (only its own reasons,
	// such as a revoked key), and writes a repaint after the stream's
	// first chunk, the banner.
	StreamNotices bool
}

func (o *Options) defaults() {
	if o.ListName == "" {
		o.ListName = DefaultListName
	}
	if o.HandshakeTimeout <= 0 {
		o.HandshakeTimeout = 30 * time.Second
	}
	if o.MaxUnauthenticated <= 0 {
		o.MaxUnauthenticated = 64
	}
	if o.MaxSessions <= 0 {
		o.MaxSessions = 2048
	}
	if o.MaxSessionsPerUser <= 0 {
		o.MaxSessionsPerUser = 256
	}
	if o.KeepaliveInterval == 0 {
		o.KeepaliveInterval = 30 * time.Second
	}
	if o.KeepaliveCountMax <= 0 {
		o.KeepaliveCountMax = 3
	}
	if o.IdleTimeout == 0 {
		o.IdleTimeout = 10 * time.Minute
	}
	if o.Replay == 0 {
		o.Replay = 24
	}
	if o.RecentBytes <= 0 {
		o.RecentBytes = 64 << 10
	}
	if o.Escape == "" {
		o.Escape = "^Ec"
	}
	o.Screen = o.Screen.orDefault()
}

// Server is the SSH gateway. Its scopes nest by lifetime: the server, each
// TCP connection (conn), each SSH session on it (session), each
// attachment of a session. Each ends through its context with a cause,
// which becomes the one line the person reads.
type Server struct {
	opts    Options
	log     *slog.Logger
	ssh     *gliderssh.Server
	backoff *backoff

	ctx    context.Context // server scope; canceled by Shutdown and Close
	cancel context.CancelCauseFunc

	mu         sync.Mutex // guards the fields below; never held while calling the backend or doing I/O
	closed     bool
	listeners  map[net.Listener]struct{}
	conns      map[string]*conn // by connID
	sessions   map[*session]struct{}
	perUser    map[string]int       // open sessions per person
	unauth     int                  // connections not yet authenticated
	unauthBy   map[netip.Prefix]int // of those, per source (those with one)
	capEvicted int                  // unauthenticated connections closed to make room since capWarned
	watching   bool                 // the reload watcher runs
	capRefused int                  // connections refused by the unauthenticated cap since capWarned
	capWarned  time.Time            // when that was last logged
	authFails  uint64               // connections that ended unauthenticated after a refused key (Stats)
	// Since the start, for Stats: refused at the cap, refused in
	// back-off, closed to make room.
	refusedCap, refusedBackoff, closedForRoom uint64

	// The cap on authenticated connections (MaxSessions): those are
	// len(conns) - unauth.
	connsRefused int       // closed at the cap since connsWarned
	connsWarned  time.Time // when that was last logged
	refusedConns uint64    // closed at the cap since the start, for Stats

	wg sync.WaitGroup // every goroutine of ours: conn watchers, sessions, the reload watcher
}

// userError is a cause to show the person as it is.
type userError string

func (e userError) Error() string { return string(e) }

var (
	errShutdown    = userError("the gateway is shutting down")
	errKeyRevoked  = userError("your key is no longer accepted")
	errIdle        = userError("idle connection closed")
	errNoResponse  = userError("client stopped answering keepalives")
	errClientGone  = userError("client closed the session")
	errHandshake   = userError("handshake timed out")
	errCrowded     = userError("closed to make room: too many unauthenticated connections from this source")
	errTooMany     = userError("too many connections open")
	errConnClosed  = userError("connection closed")
	errDeadSession = userError("session ended")
)

// New returns a server; Serve starts it.
func New(opts Options) (*Server, error) {
	opts.defaults()
	if opts.Backend == nil {
		return nil, errors.New("sshgw: no backend")
	}
	if len(opts.HostKeys) == 0 {
		return nil, errors.New("sshgw: no host key")
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{
		opts:      opts,
		log:       log,
		backoff:   newBackoff(opts.BackoffAfter, opts.BackoffBase, opts.BackoffMax),
		listeners: map[net.Listener]struct{}{},
		conns:     map[string]*conn{},
		unauthBy:  map[netip.Prefix]int{},
		sessions:  map[*session]struct{}{},
		perUser:   map[string]int{},
	}
	s.ctx, s.cancel = context.WithCancelCause(context.Background())
	s.ssh = &gliderssh.Server{
		Version:          "solgate",
		HostSigners:      nil,
		PublicKeyHandler: s.offeredKey,
		ConnCallback:     s.accepted,
		ServerConfigCallback: func(gliderssh.Context) *gossh.ServerConfig {
			return &gossh.ServerConfig{
				MaxAuthTries:              6,
				VerifiedPublicKeyCallback: s.verifiedKey,
				AuthLogCallback:           s.authLog,
			}
		},
		ConnectionFailedCallback: func(nc net.Conn, err error) {
			s.log.Debug("ssh handshake failed", "remote", nc.RemoteAddr().String(), "err", err)
		},
		// Only sessions: no direct-tcpip, no forwarded channels, no
		// global requests (tcpip-forward) are handled, so no port
		// forwarding; agent and X11 requests are refused in the session.
		ChannelHandlers: map[string]gliderssh.ChannelHandler{"session": s.sessionChannel},
		RequestHandlers: map[string]gliderssh.RequestHandler{},
	}
	for _, k := range opts.HostKeys {
		s.ssh.AddHostKey(k)
	}
	return s, nil
}

// Serve accepts connections on l until Shutdown or Close, then returns
// ErrServerClosed.
func (s *Server) Serve(l net.Listener) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		l.Close()
		return ErrServerClosed
	}
	s.listeners[l] = struct{}{}
	if !s.watching {
		s.watching = true
		s.wg.Add(1)
		go s.watchReloads()
	}
	s.mu.Unlock()
	err := s.ssh.Serve(l)
	s.mu.Lock()
	delete(s.listeners, l)
	closed := s.closed
	s.mu.Unlock()
	if closed {
		return ErrServerClosed
	}
	return fmt.Errorf("sshgw: serve: %w", err)
}

// Shutdown stops accepting connections, ends every session with a notice
// ("the gateway is shutting down") and its exit status, then closes every
// connection. It returns when all of the server's goroutines have ended,
// or ctx's error if ctx ends first (connections are then closed at once).
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closed = true
	for l := range s.listeners {
		l.Close()
	}
	s.mu.Unlock()
	s.cancel(errShutdown)
	sessionsEnded := make(chan struct{})
	go func() {
		for {
			s.mu.Lock()
			n := len(s.sessions)
			s.mu.Unlock()
			if n == 0 {
				close(sessionsEnded)
				return
			}
			select {
			case <-ctx.Done():
				close(sessionsEnded)
				return
			case <-time.After(10 * time.Millisecond):
			}
		}
	}()
	<-sessionsEnded
	s.closeConns()
	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close closes every listener and connection at once.
func (s *Server) Close() error {
	s.mu.Lock()
	s.closed = true
	for l := range s.listeners {
		l.Close()
	}
	s.mu.Unlock()
	s.cancel(errShutdown)
	s.closeConns()
	s.wg.Wait()
	return nil
}

func (s *Server) closeConns() {
	s.mu.Lock()
	conns := make([]*conn, 0, len(s.conns))
	for _, c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		c.close(errShutdown)
	}
	s.ssh.Close()
}

// Stats are counts for metrics and tests.
type Stats struct {
	Conns, Unauthenticated, Sessions int
	BackoffSources                   int
	// AuthFailures counts connections that ended without authenticating
	// after a key or certificate was refused, since the server started.
	AuthFailures uint64
	// Since the server started: connections closed at once because the
	// unauthenticated cap was reached (RefusedCap) or their source was in
	// back-off (RefusedBackoff), and unauthenticated connections closed
	// to make room for another source's (ClosedForRoom); authenticated
	// connections closed because MaxSessions of them were open
	// (RefusedConns).
	RefusedCap, RefusedBackoff, ClosedForRoom, RefusedConns uint64
}

// Stats returns the current counts.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return Stats{Conns: len(s.conns), Unauthenticated: s.unauth, Sessions: len(s.sessions), BackoffSources: s.backoff.len(),
		AuthFailures: s.authFails, RefusedCap: s.refusedCap, RefusedBackoff: s.refusedBackoff, ClosedForRoom: s.closedForRoom,
		RefusedConns: s.refusedConns}
}

// watchReloads re-checks every live session whenever the backend's
// configuration changes. It takes the next change's channel before
// re-checking, so that a change during a re-check is not missed.
func (s *Server) watchReloads() {
	defer s.wg.Done()
	ch := s.opts.Backend.Changed()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-ch:
			ch = s.opts.Backend.Changed()
			s.recheck()
		}
	}
}

// recheck ends the sessions whose key no longer identifies the same
// person, and those whose console the person may no longer read (the
// manager downgrades writers who lost write itself).
func (s *Server) recheck() {
	s.mu.Lock()
	list := make([]*session, 0, len(s.sessions))
	for ss := range s.sessions {
		list = append(list, ss)
	}
	s.mu.Unlock()
	ended := 0
	for _, ss := range list {
		if cause := ss.recheck(); cause != nil {
			ss.cancel(cause)
			ended++
			s.log.Info("session ended by reload", "user", ss.id.Person, "console", ss.target, "remote", ss.id.Remote, "err", cause)
		}
	}
	s.log.Debug("sessions re-checked after reload", "sessions", len(list), "ended", ended)
}

// offeredKey answers whether a key may authenticate. x/crypto calls it for
// every key a client offers, before the client proves it holds the key:
// it has no side effects.
func (s *Server) offeredKey(ctx gliderssh.Context, key gliderssh.PublicKey) bool {
	_, err := s.opts.Backend.Identify(key, ctx.RemoteAddr())
	if err != nil {
		// Clients offer every key they hold: refusals are routine.
		s.log.Debug("key refused", "remote", ctx.RemoteAddr().String(), "key", gossh.FingerprintSHA256(key), "err", err)
	}
	return err == nil
}

// verifiedKeyTag keys the authenticated key in the connection's
// Permissions.ExtraData.
type verifiedKeyTag struct{}

// verifiedKey runs once the client has proven it holds the key. It
// returns fresh Permissions (gliderlabs hands every callback one shared
// object) that carry the key, the only thing sessions decide from, and
// the certificate's source-address for x/crypto to enforce as well.
func (s *Server) verifiedKey(cm gossh.ConnMetadata, key gossh.PublicKey, _ *gossh.Permissions, _ string) (*gossh.Permissions, error) {
	if _, err := s.opts.Backend.Identify(key, cm.RemoteAddr()); err != nil {
		return nil, err
	}
	p := &gossh.Permissions{ExtraData: map[any]any{verifiedKeyTag{}: key}}
	if cert, ok := key.(*gossh.Certificate); ok {
		if sa, ok := cert.CriticalOptions["source-address"]; ok {
			p.CriticalOptions = map[string]string{"source-address": sa}
		}
	}
	return p, nil
}

// connKey keys a connection's *conn in its gliderlabs context.
type connKey struct{}

// accepted runs for every TCP connection before the SSH handshake: it
// refuses sources in back-off and connections beyond the unauthenticated
// cap, and starts the connection's watcher (handshake timeout,
// keepalives, idle timeout).
func (s *Server) accepted(ctx gliderssh.Context, nc net.Conn) net.Conn {
	remote := nc.RemoteAddr()
	src, hasSrc := sourceKey(remote)
	if hasSrc {
		if d := s.backoff.wait(src, time.Now()); d > 0 {
			// Debug: the Warn when the back-off began said it once.
			s.log.Debug("connection refused: source in back-off after failed authentications", "remote", remote.String(), "wait", d.Round(time.Second).String())
			s.mu.Lock()
			s.refusedBackoff++
			s.mu.Unlock()
			return nil
		}
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	var evict *conn
	var refused, evicted int // to warn of: at most every 10 s, so that a flood does not flood the log too
	if s.unauth >= s.opts.MaxUnauthenticated {
		if evict = s.crowdedOutLocked(src, hasSrc); evict == nil {
			s.capRefused++
			s.refusedCap++
		} else {
			s.capEvicted++
			s.closedForRoom++
		}
		if now := time.Now(); now.Sub(s.capWarned) >= 10*time.Second {
			refused, evicted, s.capRefused, s.capEvicted, s.capWarned = s.capRefused, s.capEvicted, 0, 0, now
		}
		if evict == nil {
			s.mu.Unlock()
			s.warnCrowd(remote, refused, evicted)
			return nil
		}
	}
	c := &conn{
		id:     connID(nc.LocalAddr(), remote),
		srv:    s,
		raw:    nc,
		remote: remote,
		src:    src,
		hasSrc: hasSrc,
		gctx:   ctx,
		authed: make(chan struct{}),
		done:   make(chan struct{}),
		kick:   make(chan struct{}, 1),
	}
	c.ctx, c.cancel = context.WithCancelCause(s.ctx)
	c.since = time.Now()
	c.preauth = true
	s.unauth++
	if hasSrc {
		s.unauthBy[src]++
	}
	s.conns[c.id] = c
	s.wg.Add(1)
	s.mu.Unlock()
	if evict != nil {
		s.warnCrowd(remote, refused, evicted)
		s.log.Debug("unauthenticated connection closed to make room for another source", "remote", evict.remote.String(),
			"for", remote.String(), "age", time.Since(evict.since).Round(time.Millisecond).String())
		evict.close(errCrowded)
	}
	ctx.SetValue(connKey{}, c)
	go c.watch()
	return &trackedConn{Conn: nc, c: c}
}

// authLog sees the outcome of every authentication attempt.
func (s *Server) authLog(cm gossh.ConnMetadata, method string, err error) {
	c := s.connFor(cm)
	if c == nil {
		return
	}
	if err != nil {
		if method != "none" {
			c.mu.Lock()
			c.authFailed = true
			c.mu.Unlock()
			s.log.Debug("authentication failed", "remote", cm.RemoteAddr().String(), "method", method, "err", err)
		}
		return
	}
	c.authenticated()
}

// connFor finds the conn of a connection by its addresses: the callbacks
// of x/crypto do not carry our context.
func (s *Server) connFor(cm gossh.ConnMetadata) *conn {
	id := connID(cm.LocalAddr(), cm.RemoteAddr())
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.conns[id]
}

// connID names a TCP connection by its two ends, unique while it is open.
func connID(local, remote net.Addr) string {
	return local.String() + "|" + remote.String()
}

// conn is the scope of one TCP connection.
type conn struct {
	id     string
	srv    *Server
	raw    net.Conn
	remote net.Addr
	src    netip.Prefix
	hasSrc bool
	gctx   gliderssh.Context

	ctx    context.Context // canceled when the connection closes, with why
	cancel context.CancelCauseFunc

	authed chan struct{} // closed once authenticated
	done   chan struct{} // closed when the connection is closed
	kick   chan struct{} // wakes the watcher: the session count changed

	since time.Time // accepted

	preauth bool // counted in srv.unauth (and unauthBy); guarded by srv.mu

	mu         sync.Mutex // guards the fields below
	authOnce   bool
	authFailed bool // a real authentication attempt failed
	closeOnce  bool
	sessions   int       // open sessions; guarded by srv.mu, not mu
	idleSince  time.Time // guarded by srv.mu
	keepMissed int
	ping       func() error // tests: replaces the keepalive request
}

func (c *conn) authenticated() {
	c.mu.Lock()
	if c.authOnce {
		c.mu.Unlock()
		return
	}
	c.authOnce = true
	c.mu.Unlock()
	close(c.authed)
	s := c.srv
	s.mu.Lock()
	s.leavePreauthLocked(c)
	c.idleSince = time.Now()
	// Authenticated connections open, c included (those closed at this
	// cap count until they are gone, a moment later).
	over := len(s.conns)-s.unauth > s.opts.MaxSessions
	refused := 0
	if over {
		s.connsRefused++
		s.refusedConns++
		if now := time.Now(); now.Sub(s.connsWarned) >= 10*time.Second {
			refused, s.connsRefused, s.connsWarned = s.connsRefused, 0, now
		}
	}
	s.mu.Unlock()
	if c.hasSrc {
		s.backoff.succeeded(c.src)
	}
	if over {
		if refused > 0 {
			s.log.Warn("too many connections: authenticated connection closed", "remote", c.remote.String(), "limit", s.opts.MaxSessions, "refused", refused)
		}
		c.close(errTooMany)
	}
}

// close closes the connection with a cause; safe to call more than once.
func (c *conn) close(cause error) {
	c.cancel(cause)
	c.raw.Close()
}

// closed runs once, when the connection's net.Conn is closed: the
// connection is over.
func (c *conn) closed() {
	c.mu.Lock()
	if c.closeOnce {
		c.mu.Unlock()
		return
	}
	c.closeOnce = true
	authed := c.authOnce
	// Only refused keys count: a handshake that times out may be the
	// server's fault (a crowd of clients at once), and the unauthenticated
	// cap already bounds stalled clients.
	failed := c.authFailed
	c.mu.Unlock()
	c.cancel(errConnClosed)
	close(c.done)
	s := c.srv
	s.mu.Lock()
	if s.conns[c.id] == c {
		delete(s.conns, c.id)
	}
	s.leavePreauthLocked(c)
	if !authed && failed {
		s.authFails++
	}
	s.mu.Unlock()
	if !authed && failed && c.hasSrc {
		if d := s.backoff.failed(c.src, time.Now()); d > 0 {
			s.log.Warn("source in back-off after failed authentications", "remote", c.remote.String(), "wait", d.String())
		}
	}
}

// warnCrowd says how many connections the unauthenticated cap refused,
// and how many it closed to make room for another source, if any.
func (s *Server) warnCrowd(remote net.Addr, refused, evicted int) {
	if refused+evicted > 0 {
		s.log.Warn("too many unauthenticated connections", "remote", remote.String(), "limit", s.opts.MaxUnauthenticated,
			"refused", refused, "closed_for_others", evicted)
	}
}

// leavePreauthLocked takes c out of the unauthenticated counts, once:
// when it authenticates, closes, or is chosen to make room.
func (s *Server) leavePreauthLocked(c *conn) {
	if !c.preauth {
		return
	}
	c.preauth = false
	s.unauth--
	if c.hasSrc {
		if s.unauthBy[c.src]--; s.unauthBy[c.src] <= 0 {
			delete(s.unauthBy, c.src)
		}
	}
}

// crowdedOutLocked is the cap's fair share: with every unauthenticated
// slot taken, a connection from src may have one if src holds fewer of
// them than the source holding most, counting the one it would take.
// It returns that source's oldest unauthenticated connection, already
// out of the counts, for the caller to close; nil if src must be refused
// (counting the new one it would hold as many as the busiest, or it has
// no source).
func (s *Server) crowdedOutLocked(src netip.Prefix, hasSrc bool) *conn {
	if !hasSrc {
		return nil
	}
	var top netip.Prefix
	most := 0
	for p, n := range s.unauthBy {
		if n > most {
			top, most = p, n
		}
	}
	if s.unauthBy[src]+1 >= most {
		return nil
	}
	var oldest *conn
	for _, c := range s.conns {
		if c.preauth && c.hasSrc && c.src == top && (oldest == nil || c.since.Before(oldest.since)) {
			oldest = c
		}
	}
	if oldest != nil {
		s.leavePreauthLocked(oldest)
	}
	return oldest
}

// watch owns the connection's timers: the handshake timeout until it
// authenticates, then keepalives and the idle timeout until it closes.
func (c *conn) watch() {
	s := c.srv
	defer s.wg.Done()
	hs := time.NewTimer(s.opts.HandshakeTimeout)
	select {
	case <-c.authed:
		hs.Stop()
	case <-c.done:
		hs.Stop()
		return
	case <-hs.C:
		s.log.Info("handshake timed out", "remote", c.remote.String(), "timeout", s.opts.HandshakeTimeout.String())
		c.close(errHandshake)
		<-c.done
		return
	}
	tick := s.opts.KeepaliveInterval
	if tick < 0 {
		tick = s.opts.IdleTimeout / 4
	}
	if tick <= 0 {
		// Neither keepalives nor the idle timeout: wait for the end.
		<-c.done
		return
	}
	t := time.NewTicker(tick)
	defer t.Stop()
	replies := make(chan error, 1)
	pending := false
	for {
		select {
		case <-c.done:
			return
		case err := <-replies:
			pending = false
			if err != nil {
				c.close(errConnClosed)
				continue
			}
			c.mu.Lock()
			c.keepMissed = 0
			c.mu.Unlock()
		case now := <-t.C:
			if s.opts.IdleTimeout > 0 {
				s.mu.Lock()
				idle := c.sessions == 0 && now.Sub(c.idleSince) >= s.opts.IdleTimeout
				s.mu.Unlock()
				if idle {
					s.log.Info("idle connection closed", "remote", c.remote.String(), "timeout", s.opts.IdleTimeout.String())
					c.close(errIdle)
					continue
				}
			}
			if s.opts.KeepaliveInterval < 0 {
				continue
			}
			if pending {
				c.mu.Lock()
				c.keepMissed++
				missed := c.keepMissed
				c.mu.Unlock()
				if missed >= s.opts.KeepaliveCountMax {
					s.log.Info("client stopped answering keepalives", "remote", c.remote.String(), "missed", missed)
					c.close(errNoResponse)
				}
				continue
			}
			ping := c.pinger()
			if ping == nil {
				continue
			}
			pending = true
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				replies <- ping()
			}()
		}
	}
}

// pinger returns the function that sends one keepalive and waits for its
// answer, or nil while the SSH connection is not set up yet.
func (c *conn) pinger() func() error {
	if c.ping != nil {
		return c.ping
	}
	sc, _ := c.gctx.Value(gliderssh.ContextKeyConn).(*gossh.ServerConn)
	if sc == nil {
		return nil
	}
	return func() error {
		// OpenSSH answers "failure" to a request it does not know: an
		// answer is all that counts.
		_, _, err := sc.SendRequest("keepalive@openssh.com", true, nil)
		return err
	}
}

// trackedConn tells its conn when it is closed.
type trackedConn struct {
	net.Conn
	c *conn
}

func (t *trackedConn) Close() error {
	err := t.Conn.Close()
	t.c.closed()
	return err
}
