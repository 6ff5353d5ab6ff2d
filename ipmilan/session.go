package ipmilan

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/solgate/solgate/ipmilan/internal/wire"
)

// Session is an authenticated IPMI session with one BMC.
type Session struct {
	cfg  Config
	conn datagramConn
	log  *slog.Logger

	// Set during setup, read-only once Dial returns.
	v2       bool
	suite    wire.CipherSuite
	keys     *wire.Keys // v2.0
	authType wire.AuthType
	pw16     [16]byte

	// mu guards the fields below it.
	mu     sync.Mutex
	phase  phase
	sid    uint32 // the BMC's session ID (v2.0: SIDc; v1.5: the one ID)
	sidm   uint32 // our session ID (v2.0 only)
	outSeq uint32
	rqSeq  uint8
	calls  map[uint8]*call
	// The receive windows: RMCP+ numbers authenticated and
	// unauthenticated packets separately (spec 13.28.x; OpenIPMI and
	// bmcsim do too); IPMI 1.5 uses inAuth alone.
	inAuth   window
	inUnauth window
	refused  bool // ICMP port unreachable seen since the last request began

	setup chan setupMsg // v2.0 session-setup payloads from the reader
	// payloads receives non-IPMI payloads of the established session
	// (SOL); nil drops them.
	payloads atomic.Pointer[func(wire.PayloadType, []byte)]

	lastRecv atomic.Int64 // unix nanos of the last valid packet
	// lastIPMI is when the last IPMI response arrived. Keepalives go by
	// it, not by lastRecv: some BMCs (ipmi_sim, phosphor) time sessions
	// out on IPMI traffic alone, however much SOL flows.
	lastIPMI atomic.Int64
	// keepaliveFn replaces the default keepalive command (SOL checks
	// that it still owns the payload). Its ctx has no deadline: it must
	// be bounded by the session's retries, as every Session command is.
	keepaliveFn atomic.Pointer[func(context.Context) error]
	// kaMu guards kaTimer and kaStopped. The keepalive is no goroutine of
	// its own but a timer armed for when it is due (see keepAliveDue);
	// while it is armed or running it holds one count of wg.
	kaMu      sync.Mutex
	kaTimer   *time.Timer
	kaStopped bool   // no further keepalive: the session ended
	rxPlain   []byte // the reader's decryption buffer, reused per packet
	// closeSocket, when set, ends the socket's reader and then closes the
	// socket: a session read by a shared poller (reader_linux.go), which
	// must stop reading the descriptor before it is closed and its number
	// reused. Nil: closing the socket ends readLoop. Set before the reader
	// starts, read-only after (as conn).
	closeSocket func()
	done        chan struct{}
	closeOnce   sync.Once
	wipeOnce    sync.Once
	errMu       sync.Mutex
	err         error // why the session ended
	wg          sync.WaitGroup
}

// datagramConn is the Session's socket: a UDP socket connected to the BMC
// (the kernel then drops datagrams from anyone else and reports ICMP port
// unreachable), or a net.PacketConn injected through Config.packetConn.
type datagramConn interface {
	Read(b []byte) (int, error)
	Write(b []byte) (int, error)
	Close() error
}

// packetConn adapts an injected net.PacketConn to datagramConn: it sends
// to the BMC's address and drops datagrams from any other.
type packetConn struct {
	pc net.PacketConn
	to net.Addr
}

func (c packetConn) Read(b []byte) (int, error) {
	for {
		n, from, err := c.pc.ReadFrom(b)
		if err != nil || from.String() == c.to.String() {
			return n, err
		}
	}
}

func (c packetConn) Write(b []byte) (int, error) { return c.pc.WriteTo(b, c.to) }
func (c packetConn) Close() error                { return c.pc.Close() }

type phase uint8

const (
	phasePre      phase = iota // no session: auth type none, IDs 0
	phaseActivate              // v1.5 Activate Session in flight
	phaseActive                // session established
	phasePreRMCPP              // pre-session IPMI request in RMCP+ format
	phaseClosed
)

type call struct {
	netFn wire.NetFn
	cmd   uint8
	ch    chan wire.Response
}

type setupMsg struct {
	typ     wire.PayloadType
	payload []byte
}

// Dial opens and authenticates a session to the BMC in cfg. The context
// bounds the whole setup; each message is retried per cfg.Timeout and
// cfg.Retries.
func Dial(ctx context.Context, cfg Config) (*Session, error) {
	c, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	raddr, err := net.ResolveUDPAddr("udp", c.Addr)
	if err != nil {
		return nil, fmt.Errorf("ipmilan: %s: %w", c.Addr, err)
	}
	s := &Session{
		cfg: c, log: c.Logger.With("bmc", c.Addr),
		calls: make(map[uint8]*call), setup: make(chan setupMsg, 4), done: make(chan struct{}),
		rqSeq: randByte() & 0x3F, pw16: wire.Password16(c.Password),
	}
	s.lastRecv.Store(time.Now().UnixNano())
	s.wg.Add(1) // released when the reader is done with the session
	switch {
	case c.packetConn != nil:
		s.conn = packetConn{pc: c.packetConn, to: raddr}
		go s.readLoop()
	case s.dialPolled(raddr):
	default:
		udp, err := net.DialUDP("udp", nil, raddr)
		if err != nil {
			return nil, fmt.Errorf("ipmilan: %s: %w", c.Addr, err)
		}
		s.conn = udp
		go s.readLoop()
	}
	if c.Interface == LAN {
		err = s.open15(ctx)
	} else {
		err = s.open20(ctx)
	}
	if err == nil {
		err = s.setPrivilege(ctx)
	}
	if err != nil {
		s.closeAtBMC()
		s.shutdown(err)
		return nil, fmt.Errorf("ipmilan: %s: %w", c.Addr, err)
	}
	if c.KeepAlive > 0 {
		s.startKeepAlive()
	}
	s.log.Debug("session open", "interface", c.Interface, "suite", s.suite.ID, "priv", c.Privilege)
	return s, nil
}

// Format prints the session as its BMC address and ID, whatever the verb:
// its fields hold the password and the session keys.
func (s *Session) Format(f fmt.State, verb rune) {
	fmt.Fprintf(f, "ipmilan.Session(%s, id %#x)", s.cfg.Addr, s.ID())
}

// Addr is the BMC address the session talks to.
func (s *Session) Addr() string { return s.cfg.Addr }

// ID is the session's ID as the BMC numbers it (RMCP+: the managed system
// session ID; IPMI 1.5: the session ID). Get Payload Instance Info names a
// payload's owner by this ID.
func (s *Session) ID() uint32 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sid
}

// CipherSuite is the negotiated RMCP+ suite (0 for IPMI 1.5 sessions).
func (s *Session) CipherSuite() int { return int(s.suite.ID) }

// Done is closed when the session has ended: Close, a keepalive that
// found the BMC gone, a socket error, or an internal error while handling
// the BMC's packets. Err then says why.
func (s *Session) Done() <-chan struct{} { return s.done }

// Err returns why the session ended, or nil while it is open.
func (s *Session) Err() error {
	s.errMu.Lock()
	defer s.errMu.Unlock()
	return s.err
}

// Close ends the session at the BMC (best effort, bounded by the
// per-attempt timeout) and releases its socket and goroutines.
func (s *Session) Close() error {
	s.closeAtBMC()
	s.shutdown(ErrClosed)
	return nil
}

// closeAtBMC sends Close Session if the session is established, so that
// it does not hold one of the BMC's few slots until it times out.
func (s *Session) closeAtBMC() {
	s.mu.Lock()
	active := s.phase == phaseActive
	s.mu.Unlock()
	if !active {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.Timeout)
	defer cancel()
	var id [4]byte
	binary.LittleEndian.PutUint32(id[:], s.ID())
	if _, err := s.doOnce(ctx, wire.NetFnApp, wire.CmdCloseSession, id[:], 0); err != nil {
		s.log.Debug("close session", "err", err)
	}
}

// fail ends the session with cause without waiting for its goroutines,
// so any of them may call it: Done closes, the socket closes (which ends
// the reader), and every waiting call returns ErrClosed. The first cause
// wins.
func (s *Session) fail(cause error) {
	s.closeOnce.Do(func() {
		s.errMu.Lock()
		s.err = cause
		s.errMu.Unlock()
		s.mu.Lock()
		s.phase = phaseClosed
		s.mu.Unlock()
		close(s.done)
		if s.closeSocket != nil {
			s.closeSocket()
		} else {
			s.conn.Close()
		}
		s.stopKeepAlive()
	})
}

// shutdown is fail, then waits for the session's goroutines and wipes the
// keys. It must not be called from those goroutines.
func (s *Session) shutdown(cause error) {
	s.fail(cause)
	s.wg.Wait()
	s.wipeOnce.Do(func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.keys != nil {
			clear(s.keys.K1)
			clear(s.keys.K2)
			clear(s.keys.Password)
		}
		clear(s.pw16[:])
	})
}

// recoverPanic, deferred at the top of every goroutine that handles the
// BMC's packets, turns a panic (a bug that some packet reached) into the
// end of this one session, with an error that names the panic and where
// it happened, instead of the end of the process and of every other
// session in it. It logs no stack: its frames' arguments may hold key
// material.
func (s *Session) recoverPanic(goroutine string) {
	r := recover()
	if r == nil {
		return
	}
	err := newPanicError(goroutine, r)
	s.log.Error("internal error handling the BMC's packets; session ended", "err", err)
	s.fail(err)
}

// panicError is why a session or console ended after an internal error
// (a recovered panic) in one of its goroutines.
type panicError struct {
	goroutine string // "reader", "keepalive" or "SOL engine"
	value     any    // what was passed to panic
	site      string // function and file:line that panicked
}

func (e *panicError) Error() string {
	return fmt.Sprintf("internal error in the %s goroutine: panic: %v (at %s)", e.goroutine, e.value, e.site)
}

// newPanicError describes a recovered panic; it must be called from the
// deferred function that recovered it.
func newPanicError(goroutine string, v any) *panicError {
	site := "unknown"
	pcs := make([]uintptr, 32)
	frames := runtime.CallersFrames(pcs[:runtime.Callers(3, pcs)])
	afterPanic := false
	for {
		f, more := frames.Next()
		if afterPanic && !strings.HasPrefix(f.Function, "runtime.") {
			site = fmt.Sprintf("%s %s:%d", f.Function, f.File, f.Line)
			break
		}
		if f.Function == "runtime.gopanic" || strings.HasPrefix(f.Function, "runtime.panic") {
			afterPanic = true
		}
		if !more {
			break
		}
	}
	return &panicError{goroutine: goroutine, value: v, site: site}
}

// setPayloadHandler routes the established session's non-IPMI payloads
// (SOL) to h, which runs on the reader goroutine and must not block.
func (s *Session) setPayloadHandler(h func(wire.PayloadType, []byte)) {
	if h == nil {
		s.payloads.Store(nil)
		return
	}
	s.payloads.Store(&h)
}

// readLoop is the socket's one reader where no poller reads it (an
// injected net.PacketConn, other systems than Linux, or a poller that
// could not be had). It ends when the socket is closed or fails.
func (s *Session) readLoop() {
	defer s.wg.Done()
	defer s.recoverPanic("reader")
	buf := make([]byte, 2048)
	for {
		n, err := s.conn.Read(buf)
		if err != nil {
			if s.readFailed(err) {
				return
			}
			continue
		}
		s.handle(buf[:n])
	}
}

// readFailed deals with a socket read error, for readLoop and the
// pollers alike, and reports whether the session is over. A timeout (a
// non-blocking socket with nothing queued is one) or an ICMP report (port
// or host unreachable: like a lost packet, retransmission deals with it)
// is not the end; any other read error ends the session with that cause,
// so that waiting calls and SOL readers learn of it at once.
func (s *Session) readFailed(err error) bool {
	select {
	case <-s.done:
		return true
	default:
	}
	if errors.Is(err, syscall.ECONNREFUSED) {
		s.mu.Lock()
		s.refused = true
		s.mu.Unlock()
		return false
	}
	if ne, ok := err.(net.Error); (ok && ne.Timeout()) || errors.Is(err, syscall.EHOSTUNREACH) || errors.Is(err, syscall.ENETUNREACH) {
		return false
	}
	s.log.Warn("socket read failed, session ended", "err", err)
	s.fail(fmt.Errorf("read: %w", err))
	return true
}

// handle checks and dispatches one datagram. Anything malformed, forged,
// replayed or unexpected is dropped: a BMC answering garbage must never
// break the session.
func (s *Session) handle(b []byte) {
	h, rest, err := wire.ParseRMCP(b)
	if err != nil || h.Class != wire.ClassIPMI || len(rest) == 0 {
		return
	}
	if wire.AuthType(rest[0]) == wire.AuthRMCPPlus {
		s.handle20(rest)
	} else {
		s.handle15(rest)
	}
}

func (s *Session) handle20(raw []byte) {
	p, err := wire.ParsePacket20(raw)
	if err != nil {
		s.log.Debug("drop packet", "err", err)
		return
	}
	if p.SessionID == 0 {
		switch p.Type {
		case wire.PayloadOpenSessionResp, wire.PayloadRAKP2, wire.PayloadRAKP4:
			if p.Encrypted || p.Authenticated {
				return
			}
			select {
			case s.setup <- setupMsg{p.Type, append([]byte(nil), p.Payload...)}:
			default:
			}
		case wire.PayloadIPMI:
			s.mu.Lock()
			pre := s.phase == phasePreRMCPP || s.phase == phasePre
			s.mu.Unlock()
			if pre && !p.Encrypted && !p.Authenticated {
				s.deliver(p.Payload)
			}
		}
		return
	}
	s.mu.Lock()
	ok := s.phase == phaseActive && s.v2 && p.SessionID == s.sidm
	s.mu.Unlock()
	if !ok {
		return
	}
	payload, err := s.keys.OpenTo(s.rxPlain, raw, p)
	if err != nil {
		s.log.Debug("drop packet", "err", err)
		return
	}
	if cap(payload) > cap(s.rxPlain) {
		s.rxPlain = payload[:0] // grown: keep it for the next packet
	}
	// Only now, with the packet's integrity verified, may it move the
	// window (4.7: a forged number must not make genuine packets look old).
	s.mu.Lock()
	w := &s.inUnauth
	if p.Authenticated {
		w = &s.inAuth
	}
	fresh := w.accept(p.Seq)
	s.mu.Unlock()
	if !fresh {
		s.log.Debug("drop packet", "err", "sequence number replayed or outside the window", "seq", p.Seq)
		return
	}
	s.lastRecv.Store(time.Now().UnixNano())
	if p.Type == wire.PayloadIPMI {
		s.deliver(payload)
		return
	}
	if h := s.payloads.Load(); h != nil {
		(*h)(p.Type, payload)
	}
}

func (s *Session) handle15(raw []byte) {
	p, err := wire.ParseSession15(raw)
	if err != nil {
		return
	}
	s.mu.Lock()
	ph, sid, at := s.phase, s.sid, s.authType
	s.mu.Unlock()
	switch ph {
	case phasePre:
		// Answers outside a session are unauthenticated by design; they
		// only start the login, which the BMC must then prove.
		if p.SessionID != 0 || p.AuthType != wire.AuthNone {
			return
		}
	case phaseActivate:
		// Only an Activate Session answer authenticated with the type we
		// asked for, under the temporary session ID, counts: anyone can
		// forge an unauthenticated one, for instance to switch the
		// session to auth type none.
		if p.AuthType != at || p.SessionID != sid || !s.authentic15(p) {
			s.log.Debug("drop packet", "err", "IPMI 1.5 activation answer not authenticated as asked", "auth", p.AuthType)
			return
		}
	case phaseActive:
		if s.v2 || (p.SessionID != sid && !(p.SessionID == 0 && s.cfg.Quirks.Has(QuirkIDZero))) {
			return
		}
		if p.AuthType == wire.AuthNone && at != wire.AuthNone {
			return // downgrade: the session authenticates every message
		}
		if !s.authentic15(p) {
			return
		}
		seq := p.Seq
		if s.cfg.Quirks.Has(QuirkEndianSeq) {
			seq = swap32(seq)
		}
		s.mu.Lock()
		fresh := s.inAuth.accept(seq)
		s.mu.Unlock()
		if !fresh {
			s.log.Debug("drop packet", "err", "sequence number replayed or outside the window", "seq", seq)
			return
		}
	default:
		return
	}
	s.lastRecv.Store(time.Now().UnixNano())
	s.deliver(p.Message)
}

// authentic15 checks an IPMI 1.5 packet's auth code (none has none; the
// noauthcodecheck quirk trusts any).
func (s *Session) authentic15(p wire.Session15) bool {
	if p.AuthType == wire.AuthNone || s.cfg.Quirks.Has(QuirkNoAuthCodeCheck) {
		return true
	}
	if p.AuthType != wire.AuthMD5 && p.AuthType != wire.AuthPassword {
		return false
	}
	want, err := wire.AuthCode15(p.AuthType, s.pw16, p.SessionID, p.Message, p.Seq)
	if err != nil || !constantTimeEqual(want[:], p.AuthCode[:]) {
		s.log.Debug("drop packet", "err", "IPMI 1.5 auth code mismatch")
		return false
	}
	return true
}

func (s *Session) deliver(msg []byte) {
	r, err := wire.ParseResponse(msg, !s.cfg.Quirks.Has(QuirkNoChecksumCheck))
	if err != nil {
		s.log.Debug("drop response", "err", err)
		return
	}
	if r.Code == wire.CCDuplicateRequest {
		return // answer to an older copy of a retransmitted request
	}
	s.mu.Lock()
	c := s.calls[r.RqSeq]
	s.mu.Unlock()
	if c == nil || r.NetFn != c.netFn+1 || r.Cmd != c.cmd {
		return
	}
	r.Data = append([]byte(nil), r.Data...)
	s.lastIPMI.Store(time.Now().UnixNano())
	select {
	case c.ch <- r:
	default:
	}
}

// Do sends a raw IPMI request and returns the response data after the
// completion code. A non-zero completion code is a *CompletionError.
func (s *Session) Do(ctx context.Context, netFn NetFn, cmd uint8, data []byte) ([]byte, error) {
	r, err := s.do(ctx, netFn, cmd, data)
	if err != nil {
		return nil, err
	}
	return r.Data, nil
}

func (s *Session) do(ctx context.Context, netFn wire.NetFn, cmd uint8, data []byte) (wire.Response, error) {
	r, err := s.doOnce(ctx, netFn, cmd, data, s.cfg.Retries)
	if err != nil {
		return r, err
	}
	if r.Code != wire.CCOK {
		return r, &CompletionError{NetFn: netFn, Cmd: cmd, Code: r.Code}
	}
	return r, nil
}

// doOnce sends a request with up to retries retransmissions and returns
// the response whatever its completion code.
func (s *Session) doOnce(ctx context.Context, netFn wire.NetFn, cmd uint8, data []byte, retries int) (wire.Response, error) {
	c := &call{netFn: netFn, cmd: cmd, ch: make(chan wire.Response, 1)}
	s.mu.Lock()
	if s.phase == phaseClosed {
		s.mu.Unlock()
		return wire.Response{}, ErrClosed
	}
	seq, ok := s.allocSeq(c)
	s.refused = false
	s.mu.Unlock()
	if !ok {
		return wire.Response{}, fmt.Errorf("%w: 64 requests in flight", ErrProtocol)
	}
	defer func() {
		s.mu.Lock()
		delete(s.calls, seq)
		s.mu.Unlock()
	}()
	msg := wire.Request{RsAddr: wire.BMCSlaveAddr, NetFn: netFn, RqAddr: wire.RemoteSWID, RqSeq: seq, Cmd: cmd, Data: data}.Append(nil)
	timer := time.NewTimer(s.cfg.Timeout)
	defer timer.Stop()
	for try := 0; try <= retries; try++ {
		pkt, err := s.wrap(msg)
		if err != nil {
			return wire.Response{}, err
		}
		if _, err := s.conn.Write(pkt); errors.Is(err, syscall.ECONNREFUSED) {
			// The ICMP report of an earlier try, taken by this write
			// before the reader saw it.
			s.mu.Lock()
			s.refused = true
			s.mu.Unlock()
		} else if err != nil {
			if s.Err() != nil {
				return wire.Response{}, ErrClosed
			}
			return wire.Response{}, err
		}
		timer.Reset(s.cfg.Timeout)
		select {
		case r := <-c.ch:
			return r, nil
		case <-timer.C:
		case <-ctx.Done():
			return wire.Response{}, fmt.Errorf("%v: %w", wire.NetFn(netFn), ctx.Err())
		case <-s.done:
			return wire.Response{}, ErrClosed
		}
	}
	s.mu.Lock()
	refused := s.refused
	s.mu.Unlock()
	if refused {
		return wire.Response{}, fmt.Errorf("%w after %d tries (port unreachable: nothing listens there)", ErrNoAnswer, retries+1)
	}
	return wire.Response{}, fmt.Errorf("%w after %d tries", ErrNoAnswer, retries+1)
}

// allocSeq picks a free 6-bit request sequence number. s.mu is held.
func (s *Session) allocSeq(c *call) (uint8, bool) {
	for i := range uint8(64) {
		seq := (s.rqSeq + i) & 0x3F
		if s.calls[seq] == nil {
			s.calls[seq] = c
			s.rqSeq = seq + 1
			return seq, true
		}
	}
	return 0, false
}

// wrap puts an IPMI message into the packet the current phase needs,
// consuming a session sequence number: every retransmission gets its own.
func (s *Session) wrap(msg []byte) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := wire.RMCPHeader{Seq: wire.RMCPSeqNoACK, Class: wire.ClassIPMI}.Append(make([]byte, 0, 96+len(msg)))
	switch s.phase {
	case phasePre:
		return wire.Session15{AuthType: wire.AuthNone, Message: msg}.Append(b), nil
	case phasePreRMCPP:
		return wire.Packet20{Type: wire.PayloadIPMI, Payload: msg}.Append(b), nil
	case phaseActivate:
		code, err := wire.AuthCode15(s.authType, s.pw16, s.sid, msg, 0)
		if err != nil {
			return nil, err
		}
		return wire.Session15{AuthType: s.authType, SessionID: s.sid, AuthCode: code, Message: msg}.Append(b), nil
	case phaseActive:
		seq := s.outSeq
		s.outSeq++
		if s.v2 {
			if s.outSeq == 0 {
				s.outSeq = 1
			}
			return s.keys.Seal(b, wire.Packet20{Type: wire.PayloadIPMI, SessionID: s.sid, Seq: seq}, msg)
		}
		if s.cfg.Quirks.Has(QuirkEndianSeq) {
			seq = swap32(seq)
		}
		p := wire.Session15{AuthType: s.authType, Seq: seq, SessionID: s.sid, Message: msg}
		if s.authType != wire.AuthNone {
			code, err := wire.AuthCode15(s.authType, s.pw16, s.sid, msg, seq)
			if err != nil {
				return nil, err
			}
			p.AuthCode = code
		}
		return p.Append(b), nil
	}
	return nil, ErrClosed
}

// sendPayload sends a non-IPMI payload (SOL) in the established v2.0
// session.
func (s *Session) sendPayload(t wire.PayloadType, payload []byte) error {
	s.mu.Lock()
	if s.phase != phaseActive || !s.v2 {
		s.mu.Unlock()
		return ErrClosed
	}
	seq := s.outSeq
	s.outSeq++
	if s.outSeq == 0 {
		s.outSeq = 1
	}
	bp := sendBufs.Get().(*[]byte)
	b := wire.RMCPHeader{Seq: wire.RMCPSeqNoACK, Class: wire.ClassIPMI}.Append((*bp)[:0])
	pkt, err := s.keys.Seal(b, wire.Packet20{Type: t, SessionID: s.sid, Seq: seq}, payload)
	s.mu.Unlock()
	if err == nil {
		_, err = s.conn.Write(pkt)
		*bp = pkt[:0]
	}
	sendBufs.Put(bp)
	if errors.Is(err, syscall.ECONNREFUSED) {
		err = nil // like a lost packet: retransmission deals with it
	}
	return err
}

// sendBufs are packet buffers for sendPayload: a SOL packet with its
// session wrapping is at most about 330 bytes.
var sendBufs = sync.Pool{New: func() any {
	b := make([]byte, 0, 512)
	return &b
}}

func (s *Session) setPhase(p phase) {
	s.mu.Lock()
	if s.phase != phaseClosed {
		s.phase = p
	}
	s.mu.Unlock()
}

func (s *Session) setPrivilege(ctx context.Context) error {
	if s.cfg.Privilege <= PrivUser {
		return nil
	}
	r, err := s.do(ctx, wire.NetFnApp, wire.CmdSetSessionPrivilege, []byte{uint8(s.cfg.Privilege)})
	if err != nil {
		var ce *CompletionError
		if errors.As(err, &ce) && (ce.Code == 0x80 || ce.Code == 0x81) {
			return fmt.Errorf("privilege %v not available to user %q: %w", s.cfg.Privilege, s.cfg.User, err)
		}
		return fmt.Errorf("set session privilege: %w", err)
	}
	if len(r.Data) >= 1 && wire.Privilege(r.Data[0]&0x0F) < s.cfg.Privilege {
		return fmt.Errorf("set session privilege: BMC granted %v, want %v: %w", wire.Privilege(r.Data[0]&0x0F), s.cfg.Privilege, ErrProtocol)
	}
	return nil
}

// The keepalive sends a cheap command when no IPMI answer came for
// KeepAlive, so the BMC does not time the session out; if the BMC stops
// answering, the session ends with the cause in Err.
//
// It is a timer, not a goroutine: armed for the moment the session will
// have been without IPMI answers for KeepAlive (so IPMI traffic in
// between costs no wakeup; the timer then moves on), its callback runs
// the keepalive and arms it again. Due times are rounded up to a grid of
// keepAliveGrid, the same for every session in the process, so that the
// keepalives of thousands of idle sessions fall due together, a few
// wakeups a second instead of one per session and keepalive.

// startKeepAlive arms the first keepalive, unless the session has ended.
func (s *Session) startKeepAlive() {
	if s.lastIPMI.Load() == 0 {
		s.lastIPMI.Store(time.Now().UnixNano()) // the login just ended
	}
	s.kaMu.Lock()
	defer s.kaMu.Unlock()
	if s.kaStopped {
		return
	}
	s.wg.Add(1) // released by stopKeepAlive or by the callback that finds the session ended
	s.kaTimer = time.AfterFunc(s.keepAliveDelay(time.Now()), s.keepAliveDue)
}

// stopKeepAlive ends the keepalive: a timer still armed is stopped and
// its wg count released here; a callback already running releases it when
// it finds kaStopped.
func (s *Session) stopKeepAlive() {
	s.kaMu.Lock()
	release := false
	if !s.kaStopped {
		s.kaStopped = true
		release = s.kaTimer != nil && s.kaTimer.Stop()
	}
	s.kaMu.Unlock()
	if release {
		s.wg.Done()
	}
}

// keepAliveDue is the keepalive timer's callback.
func (s *Session) keepAliveDue() {
	next, ok := s.keepAliveRun()
	s.kaMu.Lock()
	if !ok || s.kaStopped {
		s.kaStopped = true
		s.kaMu.Unlock()
		s.wg.Done()
		return
	}
	s.kaTimer.Reset(next)
	s.kaMu.Unlock()
}

// keepAliveRun sends a keepalive if one is due and returns how long to
// wait before the next check, or false when the session has ended (a
// panic in here ends it too).
func (s *Session) keepAliveRun() (next time.Duration, ok bool) {
	defer s.recoverPanic("keepalive")
	select {
	case <-s.done:
		return 0, false
	default:
	}
	started := time.Now()
	if started.Sub(time.Unix(0, s.lastIPMI.Load())) < s.cfg.KeepAlive {
		return s.keepAliveDelay(started), true // IPMI traffic since: not due yet
	}
	growStack()
	// No deadline of its own: the command's retries bound it (and Close
	// ends it), as they bound keepaliveFn's.
	ctx := context.Background()
	var err error
	if fn := s.keepaliveFn.Load(); fn != nil {
		err = (*fn)(ctx)
	} else {
		_, err = s.do(ctx, wire.NetFnApp, wire.CmdGetDeviceID, nil)
	}
	now := time.Now()
	if err == nil || errors.As(err, new(*CompletionError)) {
		if s.lastIPMI.Load() < started.UnixNano() {
			// Answered without an IPMI response (a keepaliveFn that
			// needed none): the next one is due a whole interval on.
			return gridDelay(now, now.Add(s.cfg.KeepAlive), keepAliveGrid(s.cfg.KeepAlive)), true
		}
		return s.keepAliveDelay(now), true
	}
	// One unanswered keepalive is not a dead session (a busy BMC, a
	// lost burst): only silence for DeadAfter is.
	if silent := now.Sub(time.Unix(0, s.lastRecv.Load())); silent >= s.cfg.DeadAfter {
		// Debug: the session's error says the same, and its owner logs
		// that (solgate serve: one line per console, not two).
		s.log.Debug("BMC silent, session lost", "silent", silent.Round(time.Millisecond), "err", err)
		s.fail(fmt.Errorf("keepalive: %w (nothing from the BMC for %v)", err, silent.Round(time.Second)))
		return 0, false
	}
	s.log.Debug("keepalive unanswered", "err", err)
	select {
	case <-s.done:
		return 0, false
	default:
	}
	// Try again a quarter of the interval later.
	return gridDelay(now, now.Add(max(s.cfg.KeepAlive/4, 10*time.Millisecond)), keepAliveGrid(s.cfg.KeepAlive)), true
}

// growStack makes the calling goroutine's stack large enough for a
// keepalive at once. The keepalive runs on a fresh goroutine (the timer's),
// whose stack starts small (about the average of the process's
// goroutines: in a console server, mostly readers parked in a read) and
// would otherwise be grown and copied two or three times, frame by frame,
// on the way down to the socket write: that was a sixth of the CPU idle
// consoles cost. Growing it here copies only two frames.
//
//go:noinline
func growStack() {
	var pad [8 << 10]byte
	stackSink(pad[:])
}

//go:noinline
func stackSink(b []byte) { _ = b[len(b)-1] }

// keepAliveDelay is how long from now until the session will have had no
// IPMI answer for KeepAlive, rounded up to the keepalive grid.
func (s *Session) keepAliveDelay(now time.Time) time.Duration {
	due := time.Unix(0, s.lastIPMI.Load()).Add(s.cfg.KeepAlive)
	return gridDelay(now, due, keepAliveGrid(s.cfg.KeepAlive))
}

// keepAliveGrid is the rounding of keepalive due times: a sixteenth of the
// interval, at most a second (so a keepalive is late by at most that).
func keepAliveGrid(interval time.Duration) time.Duration {
	return max(min(interval/16, time.Second), time.Millisecond)
}

// gridDelay is the time from now until due rounded up to a multiple of
// grid (counted from the Unix epoch, so alike for every session), and at
// least one grid step when due has passed.
func gridDelay(now, due time.Time, grid time.Duration) time.Duration {
	t := due.UnixNano()
	if r := t % int64(grid); r != 0 {
		t += int64(grid) - r
	}
	if d := time.Duration(t - now.UnixNano()); d > 0 {
		return d
	}
	return grid
}

// windowSize is how far the receive windows reach each way (IPMI 2.0
// uses a window of 32; FreeIPMI accepts 8, OpenIPMI 16).
const windowSize = 32

// window is a receive sequence-number window: it accepts numbers up to
// windowSize ahead of the highest seen and, up to windowSize behind it,
// ones not seen yet. A number further ahead is refused: were it
// accepted, one forged or stray packet far ahead would make every
// genuine packet after it look old.
type window struct {
	hi   uint32
	seen uint32 // bit i: hi-i was received
}

// reset expects next as the first sequence number.
func (w *window) reset(next uint32) {
	w.hi, w.seen = next-1, 1
}

func (w *window) accept(seq uint32) bool {
	d := seq - w.hi
	switch {
	case d == 0:
		return false
	case d <= windowSize: // ahead, within reach
		if d >= 32 {
			w.seen = 1
		} else {
			w.seen = w.seen<<d | 1
		}
		w.hi = seq
		return true
	case d < 1<<31: // too far ahead
		return false
	}
	back := w.hi - seq
	if back >= windowSize || w.seen&(1<<back) != 0 {
		return false
	}
	w.seen |= 1 << back
	return true
}

func randBytes(b []byte) {
	if _, err := rand.Read(b); err != nil {
		panic("ipmilan: crypto/rand: " + err.Error()) // never happens on Linux
	}
}

func randByte() uint8 {
	var b [1]byte
	randBytes(b[:])
	return b[0]
}

func randUint32NonZero() uint32 {
	for {
		var b [4]byte
		randBytes(b[:])
		if v := binary.LittleEndian.Uint32(b[:]); v != 0 {
			return v
		}
	}
}

func swap32(v uint32) uint32 {
	return v>>24 | v>>8&0xFF00 | v<<8&0xFF0000 | v<<24
}
