package bmcsim

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/solgate/solgate/ipmilan/internal/wire"
)

// BMC is one simulated baseboard management controller. Its methods are
// safe for concurrent use.
type BMC struct {
	cfg    Config // with defaults; read-only after New
	log    *slog.Logger
	suites map[uint8]wire.CipherSuite
	kg     []byte // nil when unset or all zero
	faults atomic.Pointer[faultState]
	stats  counters
	now    func() time.Time
	rand   io.Reader // crypto/rand; tests substitute a deterministic source

	mu         sync.Mutex // guards the fields below
	sessions   map[uint32]*session
	challenges map[uint32]*challenge
	chassis    chassis
	failures   map[int]*loginFailures // by user index
	lastSweep  time.Time
	garbage    GarbageKind // corruption chosen for the datagram being answered
	sol        solState    // SOL payload and the simulated serial console
	conf       confState   // users, LAN, channel and SOL settings clients change (confstate.go)
	outbox     []outDatagram
	curSink    packetSink // socket of the datagram being handled
	solHandled bool       // the datagram being handled was a SOL packet

	downUntil atomic.Int64 // Reboot: unix ns until which nothing is answered

	altMu      sync.Mutex     // guards the fields below
	altServing bool           // a Serve answers on SOLConfig.Port
	altConn    net.PacketConn // pre-bound SOL port socket (StartFleet)
}

type loginFailures struct {
	count       int
	lockedUntil time.Time
}

// counters are the statistics, updated atomically.
type counters struct {
	packetsIn, packetsOut, ignored, faultDrops                  atomic.Uint64
	sessionsOpened, sessionsClosed, sessionsTimedOut            atomic.Uint64
	sessionsRefused, authFailures, lockedOut, replays, commands atomic.Uint64
	rakp3s                                                      atomic.Uint64

	solActivations, solDeactivations, solSteals, solBytesSent, solBytesReceived atomic.Uint64
	solPacketsIn, solPacketsOut, solRetransmits, solDuplicates, solOverruns     atomic.Uint64
	solGaveUp, solNACKs, solBreaks, reboots                                     atomic.Uint64
}

// Stats is a snapshot of a BMC's counters.
type Stats struct {
	PacketsIn  uint64 // datagrams received
	PacketsOut uint64 // datagrams sent
	Ignored    uint64 // datagrams dropped as malformed, unauthenticated or stale
	FaultDrops uint64 // datagrams dropped by fault injection (both directions)
	Replays    uint64 // datagrams dropped by the sequence-number window

	SessionsActive   int    // established sessions now
	SessionsOpened   uint64 // sessions established (RAKP4 or Activate Session)
	SessionsClosed   uint64 // established sessions closed (Close Session or timeout)
	SessionsTimedOut uint64 // established sessions ended by the inactivity timeout
	SessionsRefused  uint64 // session requests refused because all slots were taken
	AuthFailures     uint64 // wrong password, user or K_g
	LockedOut        uint64 // logins refused because the user was locked out
	Commands         uint64 // IPMI commands answered inside sessions
	RAKP3s           uint64 // RAKP3 messages received (a client's proof of the password)

	PowerOns, PowerOffs, Resets, Diags uint64 // power transitions and events
	Reboots                            uint64 // Reboot calls

	// Serial-over-LAN.
	SOLActive        int    // payload instances active now
	SOLActivations   uint64 // successful Activate Payload (SOL)
	SOLDeactivations uint64 // instances ended (by any cause)
	SOLSteals        uint64 // instances deactivated by another session
	SOLBytesSent     uint64 // host output bytes acknowledged by consoles
	SOLBytesReceived uint64 // typed bytes accepted from consoles
	SOLPacketsIn     uint64 // SOL packets received in sessions
	SOLPacketsOut    uint64 // SOL packets sent (ACKs, data, resends)
	SOLRetransmits   uint64 // output packets sent again (no ACK in time)
	SOLDuplicates    uint64 // console packets re-acknowledged or ignored as late copies
	SOLOverruns      uint64 // host output bytes the BMC dropped (buffer full)
	SOLGaveUp        uint64 // output bytes dropped after Retries resends
	SOLNACKs         uint64 // console packets NACKed (host off, input FIFO full)
	SOLBreaks        uint64 // serial breaks received
}

// New returns a BMC with configuration cfg; it panics if cfg does not
// Validate (configurations are written by programmers; the command line
// validates first).
func New(cfg Config) *BMC {
	if err := cfg.Validate(); err != nil {
		panic(err)
	}
	cfg = cfg.withDefaults()
	b := &BMC{
		cfg:        cfg,
		log:        cfg.Logger,
		suites:     map[uint8]wire.CipherSuite{},
		sessions:   map[uint32]*session{},
		challenges: map[uint32]*challenge{},
		failures:   map[int]*loginFailures{},
		now:        time.Now,
		rand:       rand.Reader,
	}
	if b.log == nil {
		b.log = slog.New(slog.DiscardHandler)
	}
	for _, id := range cfg.CipherSuites {
		s, _ := suiteByID(id)
		b.suites[id] = s
	}
	for _, c := range cfg.KG {
		if c != 0 {
			b.kg = cfg.KG
			break
		}
	}
	if b.cfg.GUID == [16]byte{} {
		randomBytes(b.rand, b.cfg.GUID[:])
	}
	b.chassis.on = cfg.PowerOn
	b.chassis.onBoot = func() { b.sol.con.boot(b.now()) }
	b.chassis.onOff = func() { b.sol.con.powerOff() }
	b.faults.Store(newFaultState(cfg.Faults))
	b.initSOL()
	b.initConf()
	if err := b.loadStateLocked(); err != nil {
		panic(err) // Validate applied the state file already
	}
	return b
}

// suiteByID returns the algorithms of a cipher suite the simulator
// implements.
func suiteByID(id uint8) (wire.CipherSuite, bool) {
	return wire.LookupCipherSuite(id)
}

// SetFaults replaces the fault injection settings (and restarts the
// random sequence from f.Seed).
func (b *BMC) SetFaults(f Faults) error {
	if err := f.validate(); err != nil {
		return err
	}
	b.faults.Store(newFaultState(f))
	return nil
}

// Faults returns the current fault injection settings.
func (b *BMC) Faults() Faults { return b.faults.Load().Faults }

// GUID returns the system GUID.
func (b *BMC) GUID() [16]byte { return b.cfg.GUID }

// Stats returns a snapshot of the counters.
func (b *BMC) Stats() Stats {
	b.mu.Lock()
	now := b.now()
	b.sweepLocked(now, true)
	active := 0
	for _, s := range b.sessions {
		if s.state == stateActive {
			active++
		}
	}
	c := b.chassis.snapshot()
	solActive := 0
	for _, in := range b.sol.inst {
		if in != nil {
			solActive++
		}
	}
	b.mu.Unlock()
	st := &b.stats
	return Stats{
		PacketsIn: st.packetsIn.Load(), PacketsOut: st.packetsOut.Load(), Ignored: st.ignored.Load(),
		FaultDrops: st.faultDrops.Load(), Replays: st.replays.Load(),
		SessionsActive: active, SessionsOpened: st.sessionsOpened.Load(), SessionsClosed: st.sessionsClosed.Load(),
		SessionsTimedOut: st.sessionsTimedOut.Load(), SessionsRefused: st.sessionsRefused.Load(),
		AuthFailures: st.authFailures.Load(), LockedOut: st.lockedOut.Load(), Commands: st.commands.Load(), RAKP3s: st.rakp3s.Load(),
		PowerOns: c.powerOns, PowerOffs: c.powerOffs, Resets: c.resets, Diags: c.diags, Reboots: st.reboots.Load(),
		SOLActive: solActive, SOLActivations: st.solActivations.Load(), SOLDeactivations: st.solDeactivations.Load(),
		SOLSteals: st.solSteals.Load(), SOLBytesSent: st.solBytesSent.Load(), SOLBytesReceived: st.solBytesReceived.Load(),
		SOLPacketsIn: st.solPacketsIn.Load(), SOLPacketsOut: st.solPacketsOut.Load(), SOLRetransmits: st.solRetransmits.Load(),
		SOLDuplicates: st.solDuplicates.Load(), SOLOverruns: st.solOverruns.Load(), SOLGaveUp: st.solGaveUp.Load(),
		SOLNACKs: st.solNACKs.Load(), SOLBreaks: st.solBreaks.Load(),
	}
}

// maxDatagram bounds what the simulator reads; IPMI packets are far
// smaller.
const maxDatagram = 2048

// Serve answers IPMI traffic on pc until ctx is done, then returns nil;
// it returns a socket error otherwise. One goroutine (the caller's) reads
// the socket and handles each datagram in turn; answers delayed by fault
// injection run on timers that are stopped before Serve returns. Serve
// does not close pc. Several Serve calls (on several sockets) may share
// one BMC.
func (b *BMC) Serve(ctx context.Context, pc net.PacketConn) error {
	snd := newSender(pc, &b.stats)
	defer snd.stop()
	if stop, err := b.serveSOLPort(ctx, pc); err != nil {
		return err
	} else if stop != nil {
		defer stop()
	}
	// Cancellation interrupts ReadFrom with a deadline in the past.
	pc.SetReadDeadline(time.Time{})
	stop := context.AfterFunc(ctx, func() { pc.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()
	buf := make([]byte, maxDatagram)
	for {
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				// A deadline set by someone else: clear it and keep
				// serving, unless cancellation raced with the clearing.
				pc.SetReadDeadline(time.Time{})
				if ctx.Err() != nil {
					return nil
				}
				continue
			}
			return fmt.Errorf("bmcsim: serve %v: %w", pc.LocalAddr(), err)
		}
		b.serveDatagram(buf[:n], from, snd)
	}
}

// serveDatagram handles one datagram read from snd's socket, with the
// receive-side fault injection, and sends the answers.
func (b *BMC) serveDatagram(pkt []byte, from net.Addr, snd *sender) {
	b.stats.packetsIn.Add(1)
	f := b.faults.Load()
	if f.Freeze {
		return
	}
	if f.DropRequests > 0 && f.dropRequest() {
		b.stats.faultDrops.Add(1)
		return
	}
	for _, out := range b.handleVia(pkt, from, snd) {
		snd.send(f, out, from)
	}
}

// ListenAndServe listens on the UDP address addr and serves it until ctx
// is done.
func (b *BMC) ListenAndServe(ctx context.Context, addr string) error {
	pc, err := net.ListenPacket("udp", addr)
	if err != nil {
		return fmt.Errorf("bmcsim: %w", err)
	}
	defer pc.Close()
	return b.Serve(ctx, pc)
}

// handle is handleVia without a socket: unsolicited SOL output is lost.
func (b *BMC) handle(pkt []byte, from net.Addr) [][]byte { return b.handleVia(pkt, from, nil) }

// handleVia processes one datagram that arrived through sink. Answers are
// sent through sink (in order with the SOL output they cause) when it is
// not nil, else returned. It never panics on any input, and everything it
// returns is a well-formed RMCP packet unless garbage was requested by
// Faults.
func (b *BMC) handleVia(pkt []byte, from net.Addr, sink packetSink) [][]byte {
	if b.isDown(b.now()) {
		return nil // rebooting
	}
	hdr, rest, err := wire.ParseRMCP(pkt)
	if err != nil || hdr.IsACK() {
		b.stats.ignored.Add(1)
		return nil
	}
	switch hdr.Class {
	case wire.ClassASF:
		return b.handleASF(hdr, rest)
	case wire.ClassIPMI:
		if len(rest) == 0 {
			break
		}
		f := b.faults.Load()
		g := f.garbageKind()
		b.mu.Lock()
		now := b.now()
		b.sweepLocked(now, false)
		b.garbage, b.curSink, b.solHandled = g, sink, false
		var out []byte
		if wire.AuthType(rest[0]) == wire.AuthRMCPPlus {
			out = b.handle20Locked(rest, from, now)
		} else if b.cfg.Allow15 || isPreSession15(rest) {
			out = b.handle15Locked(rest, from, now)
		}
		b.garbage, b.curSink = GarbageNone, nil
		sol := b.solHandled
		switch {
		case sol:
		case out == nil:
			b.stats.ignored.Add(1)
		default:
			if g == GarbageRandom || g == GarbageTruncated {
				out = f.corruptDatagram(g, out)
			}
			if sink != nil {
				// The answer goes before any SOL output it caused (an
				// Activate Payload answer must precede the first data:
				// ipmitool takes any packet it gets next for the answer).
				b.outbox = append(b.outbox, outDatagram{})
				copy(b.outbox[1:], b.outbox)
				b.outbox[0] = outDatagram{sink: sink, to: from, b: out}
				out = nil
			}
		}
		b.unlockAndFlush(now)
		if out == nil {
			return nil
		}
		return [][]byte{out}
	}
	b.stats.ignored.Add(1)
	return nil
}

// isPreSession15 reports whether a v1.5-format packet is outside a session
// (Get Channel Auth Caps is sent that way even by RMCP+ clients).
func isPreSession15(b []byte) bool {
	return len(b) >= 9 && b[0] == 0 && b[5]|b[6]|b[7]|b[8] == 0
}

// handleASF answers an ASF presence ping with a pong (and an RMCP ACK
// first when the ping asked for one).
func (b *BMC) handleASF(hdr wire.RMCPHeader, rest []byte) [][]byte {
	m, err := wire.ParseASF(rest)
	if err != nil || m.Type != wire.ASFTypePing {
		b.stats.ignored.Add(1)
		return nil
	}
	var out [][]byte
	if hdr.Seq != wire.RMCPSeqNoACK {
		out = append(out, wire.RMCPHeader{Seq: hdr.Seq, Class: wire.ClassASF | 0x80}.Append(nil))
	}
	pong := wire.RMCPHeader{Seq: hdr.Seq, Class: wire.ClassASF}.Append(nil)
	pong = wire.ASFMessage{Type: wire.ASFTypePong, Tag: m.Tag, Entities: 0x81, Interactions: 0}.Append(pong)
	return append(out, pong)
}

// rmcpIPMI returns a buffer holding the RMCP header of an IPMI packet.
func rmcpIPMI() []byte { return rmcpIPMISized(128) }

// rmcpIPMISized is rmcpIPMI with room for a packet of about n bytes.
func rmcpIPMISized(n int) []byte {
	return wire.RMCPHeader{Seq: wire.RMCPSeqNoACK, Class: wire.ClassIPMI}.Append(make([]byte, 0, n))
}

// recordFailureLocked counts a failed login of user idx and may lock it.
func (b *BMC) recordFailureLocked(idx int, now time.Time) {
	b.stats.authFailures.Add(1)
	if b.cfg.Lockout.Failures <= 0 || idx < 0 {
		return
	}
	f := b.failures[idx]
	if f == nil {
		f = &loginFailures{}
		b.failures[idx] = f
	}
	f.count++
	if f.count >= b.cfg.Lockout.Failures {
		f.lockedUntil = now.Add(b.cfg.Lockout.Duration)
		f.count = 0
		b.log.Info("user locked out", "user", b.conf.users[idx].Name, "until", f.lockedUntil)
	}
}

// lockedLocked reports whether user idx is locked out.
func (b *BMC) lockedLocked(idx int, now time.Time) bool {
	f := b.failures[idx]
	if f == nil || !now.Before(f.lockedUntil) {
		return false
	}
	b.stats.lockedOut.Add(1)
	return true
}

func (b *BMC) loginSucceededLocked(idx int) {
	delete(b.failures, idx)
	b.stats.sessionsOpened.Add(1)
}
