package ipmilan

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"sync"
	"sync/atomic"
	"time"

	"github.com/solgate/solgate/ipmilan/internal/wire"
)

// SOLEventKind says what happened to a SOL console.
type SOLEventKind uint8

const (
	SOLActive        SOLEventKind = iota + 1 // payload activated, output flows
	SOLDeactivated                           // the BMC deactivated SOL (disabled, or taken by another client)
	SOLStolen                                // another session owns the payload now
	SOLSessionLost                           // the IPMI session died (BMC unreachable, rebooted, timed out)
	SOLOverrun                               // the BMC reported dropped characters
	SOLGap                                   // output packets went missing: the BMC gave up resending them
	SOLInputDropped                          // typed input the BMC never accepted was discarded
	SOLBreakDetected                         // the host's serial port saw a break
	SOLPowerOn                               // the chassis was seen powered on after being off (SOLOptions.PowerEvery)
	SOLPowerOff                              // the chassis was seen powered off after being on
)

func (k SOLEventKind) String() string {
	switch k {
	case SOLActive:
		return "active"
	case SOLDeactivated:
		return "deactivated by BMC"
	case SOLStolen:
		return "stolen"
	case SOLSessionLost:
		return "session lost"
	case SOLOverrun:
		return "BMC overrun"
	case SOLGap:
		return "data gap"
	case SOLInputDropped:
		return "input dropped"
	case SOLBreakDetected:
		return "break detected"
	case SOLPowerOn:
		return "power on seen"
	case SOLPowerOff:
		return "power off seen"
	}
	return fmt.Sprintf("SOLEventKind(%d)", uint8(k))
}

// SOLEvent is a status change of a SOL console.
type SOLEvent struct {
	Kind   SOLEventKind
	Time   time.Time
	Detail string
	Err    error // the cause, for the events that end the console
}

// SOLStats are counters of one SOL console. All are cumulative.
type SOLStats struct {
	BytesIn       uint64 // console output delivered to Read
	BytesOut      uint64 // typed input the BMC accepted
	PacketsIn     uint64
	PacketsOut    uint64
	Retransmits   uint64 // our input packets sent again
	Duplicates    uint64 // BMC retransmissions we had already delivered
	Gaps          uint64 // BMC packets skipped
	Overruns      uint64 // BMC overrun reports
	NACKs         uint64
	InputDropped  uint64 // bytes of input given up on
	EventsDropped uint64 // events the consumer did not take in time
	// Pauses counts output packets answered "0 characters accepted"
	// because the read buffer stayed full (flow control; the BMC sends
	// them again).
	Pauses uint64
}

// Errors that end a SOL console.
var (
	ErrSOLDeactivated = errors.New("SOL deactivated by the BMC")
	ErrSOLStolen      = errors.New("SOL payload taken by another session")
)

const (
	solMaxPending    = 64 << 10 // typed input queued before Write blocks
	solDefaultBuffer = 1 << 20  // console output buffered before we flow-control the BMC
	solMaxChars      = 255      // characters per packet: the accepted count is one byte
	solMaxBreaks     = 4        // breaks queued before Break fails
	// solRevive: a copy of a packet answered "0 accepted" that still
	// comes this long after, with no other packet since, is taken (see
	// the rules in the solEngine comment).
	solRevive = 5 * time.Second
	// solPauseHold is how long an output packet that does not fit the
	// read buffer waits for room before it is answered "0 accepted". It
	// must stay below BMCs' retransmission interval (ipmi_sim: 1 s), so
	// that their retransmission counters never run out (ipmi_sim then
	// throws its buffer away and may never read its serial port again);
	// a BMC that retransmits sooner is answered at its first resend.
	solPauseHold = 500 * time.Millisecond
	// solDefaultAckPace is the default SOLOptions.AckPace. At 115200
	// baud a BMC gathers about 230 characters in 20 ms, within one
	// packet's 255; BMCs retransmit after 50 ms or more (ipmi_sim about
	// 1.25 s, OpenBMC 100 ms), and one that resends sooner is answered at
	// once (its copy counts as a lost ACK).
	solDefaultAckPace = 20 * time.Millisecond
	// solInteractive: for this long after typed input went out, every
	// packet is acknowledged at once, so echo is never slowed.
	solInteractive = time.Second
	// solCeilingRun: this many packets in a row, each answered after a
	// wait and each of the session's largest size, suggest a BMC that
	// sends no more per packet (see solEngine.paceMax).
	solCeilingRun    = 4
	solCeilingRunMax = 256
)

// solEngine is the SOL protocol state machine of one console: in-order,
// duplicate-free delivery of the BMC's output with acknowledgements and
// flow control, and reliable delivery of our input (one packet in flight,
// retransmitted with the same SOL sequence number, partial acceptance
// resent as a new packet). It knows nothing of sockets: send puts a SOL
// payload on the wire and received packets arrive through deliver, so the
// timing logic runs under testing/synctest with a fake BMC.
//
// Receiving follows these rules (IPMI 2.0 section 15.9, and what
// FreeIPMI, ipmitool and pyghmi rely on BMCs to do):
//
//   - A new packet is accepted whole or not at all: all its characters go
//     to the read buffer and are acknowledged, or, when they do not fit,
//     none. (A buffer that is empty takes any packet, so the buffer may
//     exceed BufferSize by less than one packet.)
//   - Flow control: a packet that does not fit is held unanswered until
//     Read makes room, and then accepted and acknowledged at once; at the
//     latest after solPauseHold (or when the BMC sends it again, but not
//     within a fifth of that) it is answered "0 characters accepted" and
//     forgotten: the BMC sends those characters again, in a new packet (a
//     spec BMC after its retry interval, ipmi_sim at once). A full buffer
//     thus costs about two packets each way per solPauseHold, and the
//     BMC's retransmissions never run out (ipmi_sim drops its buffer after
//     four, and may never read its serial port again).
//   - A packet repeating the number of the last one accepted, with the
//     same characters (possibly cut short, possibly with more appended),
//     is a retransmission (our acknowledgement was lost): it is
//     acknowledged again, and only appended characters are delivered, if
//     they fit; if not, the count covers what was accepted and a spec BMC
//     sends the rest in a new packet.
//   - A copy of a packet answered "0" crossed our answer or the answer
//     was lost: it is answered 0 again, at most once per solPauseHold,
//     and not taken, since a BMC that got the answer sends those
//     characters in a new packet, which taking this copy would duplicate.
//     Only if copies still come solRevive after the pause, with no other
//     packet meanwhile, is one taken: the BMC then saw none of our
//     answers, or it resends under the old number (against the spec).
//   - A packet under the last number whose characters differ from that
//     packet's cannot be a retransmission: it is new output (a BMC that
//     resends only the remainder of a partly acknowledged packet under the
//     old number, or restarted its numbering) and is taken like a new
//     packet. The one case this reading gets wrong: a BMC that resends a
//     remainder under the old number when that remainder begins with the
//     same characters as the part accepted, after a retransmission
//     brought appended characters that did not fit (the only partial
//     acknowledgement other than 0 the engine gives). Those characters are
//     then lost.
//   - A packet one to seven numbers behind whose characters match what
//     that number delivered is a late copy (reordered or duplicated on
//     the way) and is dropped; any other jump is a gap: the BMC gave up
//     on packets (SOLGap), and the new packet is taken.
//   - Pacing (SOLOptions.AckPace): an accepted packet that comes sooner
//     than the pace after our last ACK, while nobody types, is answered
//     only when the pace has passed, unless it is the second full one in
//     a row (paceMax: its BMC has a backlog, so waiting would only slow
//     it; a single full one is usually a pace that gathered a little
//     more); its
//     characters are readable at once. A copy of it that comes meanwhile
//     is a lost ACK (above) and is answered at once.
//
// So no character is lost or delivered twice under any loss or
// duplication, provided no packet takes longer than the BMC's
// retransmission interval to arrive (no SOL client can do better: a copy
// delayed beyond that is indistinguishable from new output).
//
// Goroutines: a received packet is handled on the goroutine that calls
// deliver (the session's reader), acknowledgement included, so console
// output costs no hand-off to another goroutine (a paced acknowledgement
// goes out from the ackPacer's goroutine, which serves all engines); run, the engine's own
// goroutine, wakes only for typed input, breaks, a reader that made room
// for a held packet, the hold and retransmission timers, and the end. mu
// serialises the two over the protocol state.
type solEngine struct {
	send          func(payload []byte) error
	maxIn         int // characters per packet we send
	retryInterval time.Duration
	retries       int
	pauseHold     time.Duration
	bumpSeq       bool        // QuirkSOLPacketSeq
	onPanic       func(error) // called after a recovered panic ended the engine

	kick    chan struct{} // input or a break is waiting
	drained chan struct{} // capacity 1: Read made room while a packet was held
	stop    chan struct{} // closed by close()
	ended   chan struct{} // closed when the engine has stopped
	events  chan SOLEvent

	// outMu guards the output buffer and the end state.
	outMu    sync.Mutex
	out      bytes.Buffer
	outMax   int
	readable chan struct{} // capacity 1: data or end arrived, or an event
	// evWake is set when a power event was queued: a Read waiting for output
	// returns (0, nil) once, so the reader can take events at once even
	// from a console that prints nothing (a power change seen by the
	// keepalive).
	evWake atomic.Bool
	endErr error

	// inMu guards the typed input queue and break requests.
	inMu     sync.Mutex
	pending  []byte
	writable chan struct{} // capacity 1: room in pending
	breaks   []chan error

	// mu guards the protocol state below it: deliver (the session's
	// reader) and run take it for each thing they handle. Lock order:
	// mu, then outMu, inMu or evMu.
	mu        sync.Mutex
	finished  bool         // the engine has ended: packets are ignored
	inFlight  *outstanding // our input packet in flight, nil if none
	outSeq    uint8        // the last SOL sequence number we used
	timer     *time.Timer  // retransmission of inFlight
	last      lastPacket
	held      *heldPacket // nil, or heldBuf
	heldBuf   heldPacket
	holding   atomic.Bool // held != nil, or about to be: Read then signals drained
	ackBuf    [wire.SOLHeaderLen]byte
	txBuf     [wire.SOLHeaderLen + solMaxChars]byte
	delivered [16]deliveredPacket // per SOL sequence number: what its latest packet delivered
	holdTimer *time.Timer
	holdArmed bool // holdTimer is set (stopping it per packet would cost a runtime lock)
	// Acknowledgement pacing (ackPace > 0): while output streams and
	// nobody types, the ACKs of accepted packets go out at most once per
	// ackPace; one due sooner waits (ackSeq, ackN) until ackDue, when
	// pacer sends it. A BMC sends its next packet only after our ACK, so
	// it gathers more characters per packet: fewer, fuller packets for
	// the same output, and each packet costs both sides a datagram each
	// way.
	ackPace time.Duration
	pacer   *ackPacer
	// paceMax is the most characters the BMC sends per packet; 0 turns
	// pacing off. A full packet (within 1/32 of it) that follows a full
	// one is answered at once: its BMC has more waiting, and waiting
	// would only slow it.
	// ActivateSOL sets it from the BMC's outbound payload size. A BMC
	// that sends less per packet than it says shows it by sending packets
	// of one size, its largest, again and again however long it waited
	// (ceilRun counts them); one such packet is then answered at once
	// (probing), and if the next is of that size again the BMC had a
	// backlog: paceMax comes down to it, so pacing never limits its
	// throughput. An overrun report turns pacing off for the session.
	paceMax    int
	pacedLen   int // size of the last packet whose answer waited; 0: it did not
	maxSeen    int // the largest packet this session
	ceilRun    int
	ceilNeed   int // ceilRun that starts a probe: solCeilingRun, doubled after each probe that found none
	probing    bool
	fullLast   bool      // the last accepted packet was full
	lastAck    time.Time // when the last ACK of accepted characters went out
	lastInput  time.Time // when typed input last went out
	ackWaiting bool      // an ACK waits for pacer
	ackSeq     uint8
	ackN       int
	ackDue     time.Time
	// closing: the console is being closed (see settle): output is no
	// longer taken.
	closing bool

	// sink, once set (SetOutput), takes the output instead of Read: the
	// session's reader hands it each packet's characters as they are
	// taken (drainSink). sinkMu keeps the hand-overs in order and holds
	// sinkOut, the characters being handed over: it and out trade places
	// at each hand-over, so the characters are not copied once more.
	sink    atomic.Pointer[func([]byte)]
	sinkMu  sync.Mutex
	sinkOut bytes.Buffer

	st        solCounters
	evMu      sync.Mutex
	evClosed  bool
	closeOnce sync.Once
}

// lastPacket is the last BMC packet answered.
type lastPacket struct {
	seq        uint8 // 0: none yet
	full       bool  // all its characters were accepted (else it was answered 0: a pause)
	pausedAt   time.Time
	answeredAt time.Time // last "0" answer to it or a copy
	n          int
	data       [solMaxChars]byte
}

// startsLike reports whether b is a copy of a (possibly cut short, or with
// more appended).
func startsLike(a, b []byte) bool {
	n := min(len(a), len(b))
	return bytes.Equal(a[:n], b[:n])
}

// heldPacket is a BMC packet waiting, unanswered, for room in the output
// buffer.
type heldPacket struct {
	seq   uint8
	n     int
	data  [solMaxChars]byte
	since time.Time
}

type solCounters struct {
	bytesIn, bytesOut, packetsIn, packetsOut, retransmits, duplicates, gaps, overruns, nacks, inputDropped, eventsDropped, pauses atomic.Uint64
}

// solEventQueue is how many events wait for the consumer (the console
// manager drains them after every Read) before further ones are dropped
// and counted. Events are rare: a few per connection, and at most a few
// per packet in a loss storm.
const solEventQueue = 16

func newSOLEngine(send func([]byte) error, maxIn int, outMax int, retryInterval time.Duration, retries int) *solEngine {
	if outMax <= 0 {
		outMax = solDefaultBuffer
	}
	e := &solEngine{
		send: send, maxIn: maxIn, retryInterval: retryInterval, retries: retries, outMax: outMax, pauseHold: solPauseHold,
		kick: make(chan struct{}, 1), drained: make(chan struct{}, 1), stop: make(chan struct{}),
		ended: make(chan struct{}), events: make(chan SOLEvent, solEventQueue),
		readable: make(chan struct{}, 1), writable: make(chan struct{}, 1),
		// outSeq starts at a random point: some BMCs keep SOL sequence
		// state across sessions and would drop our first packet as a
		// duplicate of the last one a previous client sent (ipmi_sim
		// does).
		outSeq:    randByte() % 15,
		timer:     time.NewTimer(time.Hour),
		holdTimer: time.NewTimer(time.Hour),
		pacer:     defaultAckPacer,
		paceMax:   solMaxChars,
	}
	e.timer.Stop()
	e.holdTimer.Stop()
	return e
}

// deliver handles a received SOL payload on the caller's goroutine (the
// session's reader): the BMC's output goes to the read buffer and is
// acknowledged, or is held (flow control); an acknowledgement of our input
// sends the next. payload is not kept after deliver returns. A panic in
// here ends the console and its session, not the caller.
func (e *solEngine) deliver(payload []byte) {
	p, err := wire.ParseSOL(payload)
	if err != nil {
		return
	}
	defer e.recoverPanic()
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.finished {
		return
	}
	e.handle(p)
}

// recoverPanic, deferred by deliver and run, turns a panic in the engine
// (a bug some packet reached) into the end of this console, with an
// error naming it, and of its session (onPanic), not of the process.
func (e *solEngine) recoverPanic() {
	r := recover()
	if r == nil {
		return
	}
	err := newPanicError("SOL engine", r)
	e.mu.Lock()
	e.finished = true
	e.mu.Unlock()
	e.end(err)
	e.closeOnce.Do(func() { close(e.stop) })
	if e.onPanic != nil {
		e.onPanic(err)
	}
}

// outstanding is our one input packet in flight.
type outstanding struct {
	seq    uint8
	data   []byte
	op     uint8
	tries  int
	sentAt time.Time  // its last transmission
	brk    chan error // set for a break packet
}

// run is the engine's goroutine. lost is closed when the session under it
// dies; lostErr then says why.
func (e *solEngine) run(lost <-chan struct{}, lostErr func() error) {
	defer close(e.ended)
	defer func() {
		e.mu.Lock()
		e.finished = true
		f := e.inFlight
		e.inFlight = nil
		e.timer.Stop()
		e.holdTimer.Stop()
		e.mu.Unlock()
		if f != nil && f.brk != nil {
			f.brk <- e.Err() // a break in flight fails with the console
		}
	}()
	defer e.recoverPanic()
	for {
		select {
		case <-e.stop:
			e.finish(ErrClosed)
			return
		case <-lost:
			err := lostErr()
			e.emit(SOLEvent{Kind: SOLSessionLost, Err: err, Detail: errString(err)})
			e.finish(fmt.Errorf("%w: %w", ErrClosed, err))
			return
		case <-e.kick:
			e.locked((*solEngine).startNext)
		case <-e.drained:
			e.locked(func(e *solEngine) { e.retryHeld() })
			e.drainSink()
		case <-e.holdTimer.C:
			e.locked(func(e *solEngine) { e.holdArmed = false; e.holdExpired() })
		case <-e.timer.C:
			e.locked((*solEngine).retransmit)
		}
	}
}

// locked runs f under mu unless the engine has finished.
func (e *solEngine) locked(f func(*solEngine)) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.finished {
		f(e)
	}
}

// finish marks the engine ended with err (unless it ended already: the
// first cause stays).
func (e *solEngine) finish(err error) {
	e.mu.Lock()
	e.finished = true
	e.mu.Unlock()
	e.end(err)
}

// nextSeq advances our SOL sequence number (1..15). mu is held.
func (e *solEngine) nextSeq() uint8 {
	e.outSeq = e.outSeq%15 + 1
	return e.outSeq
}

// transmit sends (or resends) the packet in flight. mu is held.
func (e *solEngine) transmit(o *outstanding) {
	p := wire.SOLPacket{Seq: o.seq, Op: o.op, Data: o.data}
	if err := e.send(p.Append(e.txBuf[:0])); err == nil {
		e.st.packetsOut.Add(1)
	}
	o.sentAt = time.Now()
	e.timer.Reset(e.retryInterval)
}

// startNext sends the next packet of typed input, or a break once the
// input typed before it has gone. mu is held.
func (e *solEngine) startNext() {
	if e.inFlight != nil {
		return
	}
	e.inMu.Lock()
	if n := min(len(e.pending), e.maxIn); n > 0 {
		e.inFlight = &outstanding{seq: e.nextSeq(), data: append([]byte(nil), e.pending[:n]...)}
	} else if len(e.breaks) > 0 {
		e.inFlight = &outstanding{seq: e.nextSeq(), op: wire.SOLOpBreak, brk: e.breaks[0]}
		e.breaks = e.breaks[1:]
	}
	e.inMu.Unlock()
	if e.inFlight != nil {
		if e.ackWaiting {
			e.ack(e.ackSeq, e.ackN) // someone types: no more waiting
		}
		if e.ackPace > 0 {
			e.lastInput = time.Now()
		}
		e.transmit(e.inFlight)
	}
}

// consume removes n accepted bytes from the head of the input queue.
func (e *solEngine) consume(n int) {
	e.inMu.Lock()
	e.pending = e.pending[n:]
	if len(e.pending) == 0 {
		e.pending = nil
	}
	e.inMu.Unlock()
	select {
	case e.writable <- struct{}{}:
	default:
	}
}

// retransmit runs when the retransmission timer fires: the packet in
// flight goes again, or is given up after the retries. mu is held.
func (e *solEngine) retransmit() {
	f := e.inFlight
	if f == nil {
		return
	}
	if wait := e.retryInterval - time.Since(f.sentAt); wait > 0 {
		// The timer fired for a packet answered meanwhile (deliver
		// took mu first) and this is the next one: not due yet.
		e.timer.Reset(wait)
		return
	}
	f.tries++
	if f.tries > e.retries {
		n := len(f.data)
		e.st.inputDropped.Add(uint64(n))
		if f.brk != nil {
			f.brk <- fmt.Errorf("break: %w after %d tries", ErrNoAnswer, e.retries+1)
		} else {
			e.consume(n)
			e.emit(SOLEvent{Kind: SOLInputDropped, Detail: fmt.Sprintf("%d bytes of input not acknowledged after %d tries", n, e.retries+1)})
		}
		e.inFlight = nil
		if e.bumpSeq {
			e.nextSeq() // some BMCs get stuck on one sequence number
		}
		e.startNext()
		return
	}
	e.st.retransmits.Add(1)
	e.transmit(f)
}

// holdExpired runs when the hold timer fires: the held packet is answered
// "0 accepted" once it has waited pauseHold. mu is held.
func (e *solEngine) holdExpired() {
	h := e.held
	if h == nil {
		return
	}
	if wait := e.pauseHold - time.Since(h.since); wait > 0 {
		e.armHold(wait) // fired for a packet taken meanwhile; this one came later
		return
	}
	e.pause()
}

// handle is one BMC packet. mu is held.
func (e *solEngine) handle(p wire.SOLPacket) {
	e.st.packetsIn.Add(1)
	if p.Seq == 0 {
		e.status(p.Op) // an ACK or NACK may carry status too
	}
	// Acknowledgement of our packet in flight.
	if f := e.inFlight; p.AckSeq != 0 && f != nil && p.AckSeq == f.seq {
		if p.Op&wire.SOLNack != 0 {
			// Not accepted now (host off, BMC buffer full): keep it and
			// try again after the interval.
			e.st.nacks.Add(1)
		} else {
			n := min(int(p.Accepted), len(f.data))
			if f.brk != nil {
				f.brk <- nil
			} else {
				e.st.bytesOut.Add(uint64(n))
				e.consume(n)
			}
			e.inFlight = nil
			e.timer.Stop()
			e.startNext() // a partial ACK leaves the rest queued: it goes in a new packet
		}
	}
	if p.Seq != 0 && !e.closing {
		// Closing: output is no longer taken (see settle).
		e.receive(p)
	}
	if p.Op&wire.SOLStatusDeactivated != 0 {
		// The BMC's last words are delivered even into a full buffer:
		// nobody will send them again.
		if h := e.held; h != nil {
			e.held = nil
			e.holding.Store(false)
			e.force(h.data[:h.n])
		}
		e.finished = true
		e.emit(SOLEvent{Kind: SOLDeactivated, Err: ErrSOLDeactivated})
		e.end(ErrSOLDeactivated)
		e.closeOnce.Do(func() { close(e.stop) })
	}
}

// status reports the status bits of a BMC packet seen for the first time.
func (e *solEngine) status(op uint8) {
	if op&wire.SOLStatusOverrun != 0 {
		e.paceMax = 0 // its buffer overflowed: answer every packet at once from now on
		e.st.overruns.Add(1)
		e.emit(SOLEvent{Kind: SOLOverrun, Detail: "BMC dropped characters (transmit overrun)"})
	}
	if op&wire.SOLStatusBreak != 0 {
		e.emit(SOLEvent{Kind: SOLBreakDetected})
	}
}

// receive handles a BMC packet that carries a sequence number (data, or
// status the BMC wants acknowledged), by the rules in the solEngine
// comment.
func (e *solEngine) receive(p wire.SOLPacket) {
	data := p.Data[:min(len(p.Data), solMaxChars)]
	now := time.Now()
	if h := e.held; h != nil && p.Seq == h.seq {
		// The BMC sent the packet we hold again (possibly with more):
		// its retransmission timer is shorter than our hold. Take the
		// newest copy, and answer "0" now unless it came very soon (the
		// BMC's pace must not become ours).
		e.st.duplicates.Add(1)
		h.n = copy(h.data[:], data)
		if !e.retryHeld() && now.Sub(h.since) >= e.pauseHold/5 {
			e.pause()
		}
		return
	}
	if l := &e.last; l.seq != 0 && p.Seq == l.seq && startsLike(l.data[:l.n], data) {
		if l.full {
			// A retransmission of the packet accepted last: our ACK was
			// lost. Characters appended since are taken if they fit.
			e.st.duplicates.Add(1)
			if len(data) > l.n && e.tryWrite(data[l.n:]) {
				l.n = copy(l.data[:], data)
				e.delivered[p.Seq] = remember(data)
			}
			e.ack(p.Seq, min(l.n, len(data)))
			return
		}
		if e.held != nil || now.Sub(l.pausedAt) < solRevive {
			// A copy of a packet answered "0": it crossed our answer or
			// the answer was lost. Answer 0 again (at most once per
			// hold): taking it could duplicate the new packet in which a
			// BMC that did get the answer sends those characters.
			e.st.duplicates.Add(1)
			if now.Sub(l.answeredAt) >= e.pauseHold {
				l.answeredAt = now
				e.ack(p.Seq, 0)
			}
			return
		}
		// Copies still coming solRevive after the pause, and no other
		// packet: the BMC saw none of our answers, or it resends under
		// the old number. Either way this copy is current: take it.
	}
	if l := &e.last; l.seq != 0 && p.Seq != l.seq {
		behind := (int(l.seq) - int(p.Seq) + 15) % 15
		if behind >= 1 && behind <= 7 && e.delivered[p.Seq].copyOf(data) {
			// A late copy of a packet already answered: the network
			// reordered or duplicated it, or the BMC resent it before our
			// ACK arrived. Drop it.
			e.st.duplicates.Add(1)
			return
		}
		if p.Seq != l.seq%15+1 {
			e.st.gaps.Add(1)
			e.emit(SOLEvent{Kind: SOLGap, Detail: fmt.Sprintf("SOL packet sequence jumped from %d to %d", l.seq, p.Seq)})
		}
	} else if e.held != nil && e.last.seq == 0 {
		e.st.gaps.Add(1) // the BMC gave up on the packet we held
		e.emit(SOLEvent{Kind: SOLGap, Detail: fmt.Sprintf("SOL packet sequence jumped from %d to %d", e.held.seq, p.Seq)})
	}
	// New output (or new output under an old number: see the rules).
	e.status(p.Op)
	if e.held == nil && e.tryWrite(data) {
		// Room: taken straight from the packet, not copied to be held.
		e.accepted(p.Seq, data, true, now)
		return
	}
	h := &e.heldBuf
	h.seq, h.since, h.n = p.Seq, now, copy(h.data[:], data)
	e.held = h
	// Before trying the buffer: a Read that empties it after this try
	// then sees holding and signals drained.
	e.holding.Store(true)
	if !e.retryHeld() {
		e.armHold(e.pauseHold)
	}
}

// retryHeld accepts the held packet if it fits now, and reports whether
// it did (or nothing was held).
func (e *solEngine) retryHeld() bool {
	h := e.held
	if h == nil {
		return true
	}
	if e.closing || !e.tryWrite(h.data[:h.n]) {
		return false
	}
	e.held = nil
	e.holding.Store(false)
	e.stopHold()
	e.accepted(h.seq, h.data[:h.n], true, time.Now())
	return true
}

func (e *solEngine) armHold(d time.Duration) {
	e.holdTimer.Reset(d)
	e.holdArmed = true
}

func (e *solEngine) stopHold() {
	if e.holdArmed {
		e.holdTimer.Stop()
		e.holdArmed = false
	}
}

// pause answers the held packet "0 characters accepted" and forgets it:
// the BMC will send those characters again.
func (e *solEngine) pause() {
	h := e.held
	if h == nil {
		return
	}
	e.held = nil
	e.holding.Store(false)
	e.stopHold()
	e.st.pauses.Add(1)
	e.accepted(h.seq, h.data[:h.n], false, time.Now())
}

// accepted records the answer to packet seq (all of data, or none), at
// now, and sends it.
func (e *solEngine) accepted(seq uint8, data []byte, all bool, now time.Time) {
	l := &e.last
	l.seq, l.full, l.n = seq, all, copy(l.data[:], data)
	if !all {
		l.pausedAt = now
		l.answeredAt = l.pausedAt
	}
	n := 0
	if all {
		n = len(data)
	}
	e.delivered[seq] = remember(data[:n])
	if n > 0 && e.ackPace > 0 {
		since := now.Sub(e.lastAck)
		if since >= solInteractive {
			e.maxSeen, e.ceilRun, e.ceilNeed = 0, 0, 0 // a quiet spell: learn afresh
		}
		e.maxSeen = max(e.maxSeen, n)
		switch {
		case e.probing:
			// The last one was answered at once to see what follows.
			e.probing, e.ceilRun = false, 0
			if n == e.maxSeen {
				e.paceMax = n // a backlog at that size: its ceiling
			} else {
				e.ceilNeed = min(max(e.ceilNeed, solCeilingRun)*2, solCeilingRunMax) // a steady rate, not a ceiling
			}
		case e.pacedLen > 0 && n == e.pacedLen && n == e.maxSeen:
			e.ceilRun++
		case e.pacedLen > 0:
			e.ceilRun = 0
		}
		e.pacedLen = 0
		full := n >= e.paceMax-e.paceMax/32
		// A backlog shows as full packets in a row. One full packet after
		// a paced one is more often a pace that gathered a little more
		// than usual (at 115200 baud 20 ms gather 230 characters, and the
		// ACK's latency adds some): answered at once, it would make the
		// BMC send the few characters of the next millisecond, then
		// another short packet, two datagrams each way for nothing.
		backlog := full && e.fullLast || e.paceMax == 0 // 0: pacing is off
		e.fullLast = full
		if e.ceilRun >= max(e.ceilNeed, solCeilingRun) && !full {
			e.probing, e.ceilRun = true, 0
		} else if wait := e.ackPace - since; wait > 0 && !backlog && now.Sub(e.lastInput) >= solInteractive {
			// The characters are in the read buffer already; only the
			// BMC's next packet waits.
			e.ackWaiting, e.ackSeq, e.ackN, e.ackDue = true, seq, n, now.Add(wait)
			e.pacedLen = n
			e.pacer.add(e, e.ackDue)
			return
		}
	}
	e.ackAt(seq, n, now)
}

// ack answers BMC packet seq: n of its characters accepted. Any ACK
// sends replaces one still waiting for its pace: the BMC heeds only the
// answer to the packet it sends now.
func (e *solEngine) ack(seq uint8, n int) { e.ackAt(seq, n, time.Now()) }

// ackAt is ack at now (the time the caller read for the packet).
func (e *solEngine) ackAt(seq uint8, n int, now time.Time) {
	e.ackWaiting = false // the pacer's entry, if any, finds nothing to send
	if n > 0 && e.ackPace > 0 {
		e.lastAck = now
	}
	ack := wire.SOLPacket{AckSeq: seq, Accepted: uint8(n)}
	if err := e.send(ack.Append(e.ackBuf[:0])); err == nil {
		e.st.packetsOut.Add(1)
	}
}

// sendPacedAck is the pacer's call for e at now: the waiting ACK goes out
// if it is due. An entry made for an ACK that went out meanwhile (input
// came, a copy was answered) finds none waiting, or one waiting for a
// later time, which has its own entry.
func (e *solEngine) sendPacedAck(now time.Time) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.finished && e.ackWaiting && !now.Before(e.ackDue) {
		e.ack(e.ackSeq, e.ackN)
	}
}

// settle prepares the console for the payload's deactivation: a packet
// whose ACK waits for the pace is answered now (its characters were
// taken; a BMC never told so keeps them for the next session, which would
// print them a second time), and output that comes after is no longer
// taken nor answered. That ACK makes the BMC send its next packet, which
// would cross the deactivation: taken, it would be printed again by the
// next session too, as a BMC keeps what was not acknowledged when the
// payload goes (bmcsim does; what each vendor's BMC does is not known
// here), so it is left to that session. A BMC that drops it instead (ipmi_sim clears its
// buffer at activation, and drops what the node prints while no payload
// is active) loses it with what the node prints until the next session,
// which the console log marks as a gap at the reconnect: a doubled packet
// would be marked nowhere. Measured on the reload storm (24 consoles):
// taking that output doubled 30-80 bytes a run, leaving it 0.
func (e *solEngine) settle() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.closing = true
	if !e.finished && e.ackWaiting {
		e.ack(e.ackSeq, e.ackN)
	}
}

// ackPacer sends the paced ACKs of all engines: a timing wheel of
// millisecond slots, turned by one goroutine that runs only while some
// ACK waits. One wake-up per millisecond serves every console then,
// instead of a timer and a goroutine wake-up per ACK.
type ackPacer struct {
	mu      sync.Mutex
	epoch   time.Time // slot k covers epoch+k ms
	slots   [ackWheelSlots][]pacedEntry
	next    int64 // the next slot to turn
	waiting int   // entries in slots
	running bool
	stopped chan struct{} // nil for the shared pacer; closed: run ends
}

// pacedEntry is one ACK waiting in the wheel: engine e at slot k (an
// entry stays in its place on the wheel until the wheel reaches k, however
// late the pacer's goroutine runs: a slot index stands for every k with
// that remainder).
type pacedEntry struct {
	e *solEngine
	k int64
}

// ackWheelSlots bounds the pace: an ACK waits less than this many
// milliseconds (SOLOptions.AckPace is capped below it).
const ackWheelSlots = 128

const solMaxAckPace = 100 * time.Millisecond

var defaultAckPacer = newAckPacer()

func newAckPacer() *ackPacer { return &ackPacer{epoch: time.Now()} }

// add asks for e.sendPacedAck at due (to the millisecond, never early).
// e.mu is held.
func (p *ackPacer) add(e *solEngine, due time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.running {
		// Slots restart from now: the wheel was empty.
		p.epoch, p.next = time.Now(), 0
	}
	k := int64((due.Sub(p.epoch) + time.Millisecond - 1) / time.Millisecond)
	k = max(k, p.next)
	p.slots[k%ackWheelSlots] = append(p.slots[k%ackWheelSlots], pacedEntry{e, k})
	p.waiting++
	if !p.running {
		p.running = true
		go p.run()
	}
}

func (p *ackPacer) run() {
	t := time.NewTicker(time.Millisecond)
	defer t.Stop()
	var batch []*solEngine
	for {
		select {
		case <-t.C:
		case <-p.stopped:
			p.mu.Lock()
			p.running = false
			p.mu.Unlock()
			return
		}
		p.mu.Lock()
		now := time.Now()
		batch = p.turnLocked(int64(now.Sub(p.epoch)/time.Millisecond), batch)
		p.waiting -= len(batch)
		if p.waiting == 0 {
			p.running = false
		}
		running := p.running
		p.mu.Unlock()
		for i, e := range batch {
			e.sendPacedAck(now)
			batch[i] = nil
		}
		batch = batch[:0]
		if !running {
			return
		}
	}
}

// turnLocked turns the wheel up to slot upTo and appends the engines due
// by then to batch. When the goroutine ran late a slot also holds entries
// for a later turn of the wheel: they stay. p.mu is held.
func (p *ackPacer) turnLocked(upTo int64, batch []*solEngine) []*solEngine {
	for last := min(upTo, p.next+ackWheelSlots-1); p.next <= last; p.next++ {
		slot := &p.slots[p.next%ackWheelSlots]
		keep := (*slot)[:0]
		for _, en := range *slot {
			if en.k <= upTo {
				batch = append(batch, en.e)
			} else {
				keep = append(keep, en)
			}
		}
		clear((*slot)[len(keep):])
		*slot = keep
	}
	p.next = max(p.next, upTo+1)
	return batch
}

// deliveredPacket identifies what one SOL packet delivered.
type deliveredPacket struct {
	valid bool
	n     int
	sum   uint64
}

func remember(b []byte) deliveredPacket {
	return deliveredPacket{valid: true, n: len(b), sum: packetSum(b)}
}

// copyOf reports whether data is a copy of the delivered packet (possibly
// with more appended, as a BMC may add characters when it resends).
func (d deliveredPacket) copyOf(data []byte) bool {
	return d.valid && len(data) >= d.n && packetSum(data[:d.n]) == d.sum
}

// deliveredSeed keys the packets' sums. maphash, not a byte-at-a-time
// hash: the sum is taken of every packet a console receives, and FNV's
// multiply per byte cost more than the rest of the engine's bookkeeping.
var deliveredSeed = maphash.MakeSeed()

func packetSum(b []byte) uint64 { return maphash.Bytes(deliveredSeed, b) }

// tryWrite appends b to the read buffer if it fits, or if the buffer is
// empty (a packet larger than the whole buffer must get through too: the
// buffer may exceed its bound by less than one packet), and reports
// whether it did.
func (e *solEngine) tryWrite(b []byte) bool {
	e.outMu.Lock()
	ok := len(b) <= e.outMax-e.out.Len() || e.out.Len() == 0
	if ok && len(b) > 0 {
		e.out.Write(b)
	}
	e.outMu.Unlock()
	if ok && len(b) > 0 {
		e.st.bytesIn.Add(uint64(len(b)))
		if e.sink.Load() == nil {
			e.wakeReader()
		}
	}
	return ok
}

// force appends b to the read buffer whatever its bound.
func (e *solEngine) force(b []byte) {
	e.outMu.Lock()
	e.out.Write(b)
	e.outMu.Unlock()
	e.st.bytesIn.Add(uint64(len(b)))
	if e.sink.Load() == nil {
		e.wakeReader()
	}
}

// setSink makes f the taker of the output from now on: what is buffered
// goes to f before setSink returns, then each packet's characters as the
// reader takes them (drainSink). A packet held for room is let in.
func (e *solEngine) setSink(f func([]byte)) {
	e.sinkMu.Lock()
	e.sink.Store(&f)
	e.sinkMu.Unlock()
	e.drainSink()
	if e.holding.Load() {
		select {
		case e.drained <- struct{}{}:
		default:
		}
	}
}

// drainSink hands what is buffered to the sink, if there is one. The
// session's reader calls it after each packet, the engine's goroutine
// after letting a held packet in, Read at the end.
func (e *solEngine) drainSink() {
	f := e.sink.Load()
	if f == nil {
		return
	}
	e.sinkMu.Lock()
	defer e.sinkMu.Unlock()
	e.outMu.Lock()
	e.out, e.sinkOut = e.sinkOut, e.out // sinkOut was left empty
	e.outMu.Unlock()
	if e.sinkOut.Len() > 0 {
		(*f)(e.sinkOut.Bytes())
	}
	e.sinkOut.Reset()
}

func (e *solEngine) wakeReader() {
	select {
	case e.readable <- struct{}{}:
	default:
	}
}

// Read returns console output in order, blocking until some arrives. When
// the console has ended it returns what is buffered, then the cause.
func (e *solEngine) Read(p []byte) (int, error) { return e.ReadContext(context.Background(), p) }

// ReadContext is Read that gives up when ctx ends, with ctx's error.
func (e *solEngine) ReadContext(ctx context.Context, p []byte) (int, error) {
	for {
		e.outMu.Lock()
		if e.out.Len() > 0 && e.sink.Load() == nil {
			n, _ := e.out.Read(p)
			e.outMu.Unlock()
			// Room: a packet held for it may go now.
			if e.holding.Load() {
				select {
				case e.drained <- struct{}{}:
				default:
				}
			}
			return n, nil
		}
		err := e.endErr
		e.outMu.Unlock()
		if err != nil {
			// With a sink: once what the reader is handing over, and
			// anything left, has gone to it.
			e.drainSink()
			return 0, err
		}
		if e.evWake.Swap(false) {
			return 0, nil // events are waiting (see evWake)
		}
		if done := ctx.Done(); done == nil {
			// Read: end signals readable too, so a plain receive does
			// (cheaper than a select, once per packet on a busy console).
			<-e.readable
			continue
		}
		select {
		case <-e.readable:
		case <-e.ended:
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
}

// Write queues typed input for the console, blocking while the queue is
// full. It returns once all of p is queued, or the console has ended.
func (e *solEngine) Write(p []byte) (int, error) {
	written := 0
	for written < len(p) {
		e.inMu.Lock()
		room := solMaxPending - len(e.pending)
		n := min(room, len(p)-written)
		e.pending = append(e.pending, p[written:written+n]...)
		e.inMu.Unlock()
		written += n
		if n > 0 {
			select {
			case e.kick <- struct{}{}:
			default:
			}
		}
		if written < len(p) {
			select {
			case <-e.writable:
			case <-e.ended:
				return written, e.Err()
			}
		}
	}
	select {
	case <-e.ended:
		return written, e.Err()
	default:
	}
	return written, nil
}

// errBreakQueue: too many breaks are waiting already.
var errBreakQueue = fmt.Errorf("ipmilan: SOL break: %d breaks already waiting for the BMC", solMaxBreaks)

// sendBreak queues a serial break after the input typed before it and
// returns a channel that reports whether the BMC accepted it. At most
// solMaxBreaks wait; beyond that it fails.
func (e *solEngine) sendBreak() (<-chan error, error) {
	ch := make(chan error, 1)
	e.inMu.Lock()
	if len(e.breaks) >= solMaxBreaks {
		e.inMu.Unlock()
		return nil, errBreakQueue
	}
	e.breaks = append(e.breaks, ch)
	e.inMu.Unlock()
	select {
	case e.kick <- struct{}{}:
	default:
	}
	return ch, nil
}

// end records why the console stopped, wakes readers and closes Events.
func (e *solEngine) end(err error) {
	e.outMu.Lock()
	if e.endErr == nil {
		e.endErr = err
	}
	e.outMu.Unlock()
	select {
	case e.readable <- struct{}{}:
	default:
	}
	e.evMu.Lock()
	if !e.evClosed {
		e.evClosed = true
		close(e.events)
	}
	e.evMu.Unlock()
	e.inMu.Lock()
	for _, b := range e.breaks {
		b <- err
	}
	e.breaks = nil
	e.inMu.Unlock()
}

// Err is why the console ended, or nil while it runs.
func (e *solEngine) Err() error {
	e.outMu.Lock()
	defer e.outMu.Unlock()
	return e.endErr
}

// emit sends an event without ever blocking the engine; a consumer that
// does not keep up loses events (counted), never console output.
func (e *solEngine) emit(ev SOLEvent) {
	if ev.Time.IsZero() {
		ev.Time = time.Now()
	}
	e.evMu.Lock()
	defer e.evMu.Unlock()
	if e.evClosed {
		return
	}
	select {
	case e.events <- ev:
		if ev.Kind == SOLPowerOn || ev.Kind == SOLPowerOff { // the others come with output or end the console
			e.evWake.Store(true)
			select {
			case e.readable <- struct{}{}:
			default:
			}
		}
	default:
		e.st.eventsDropped.Add(1)
	}
}

func (e *solEngine) close() {
	e.closeOnce.Do(func() { close(e.stop) })
	<-e.ended
}

func (e *solEngine) stats() SOLStats {
	return SOLStats{
		BytesIn: e.st.bytesIn.Load(), BytesOut: e.st.bytesOut.Load(), PacketsIn: e.st.packetsIn.Load(),
		PacketsOut: e.st.packetsOut.Load(), Retransmits: e.st.retransmits.Load(), Duplicates: e.st.duplicates.Load(),
		Gaps: e.st.gaps.Load(), Overruns: e.st.overruns.Load(), NACKs: e.st.nacks.Load(),
		InputDropped: e.st.inputDropped.Load(), EventsDropped: e.st.eventsDropped.Load(), Pauses: e.st.pauses.Load(),
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// endAsync asks the engine to stop with err from another goroutine.
func (e *solEngine) endAsync(err error) {
	e.outMu.Lock()
	if e.endErr == nil {
		e.endErr = err
	}
	e.outMu.Unlock()
	e.closeOnce.Do(func() { close(e.stop) })
}
