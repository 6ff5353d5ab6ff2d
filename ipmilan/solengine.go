package ipmilan

import (
	"bytes"
	"errors"
	"fmt"
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
}

// Errors that end a SOL console.
var (
	ErrSOLDeactivated = errors.New("SOL deactivated by the BMC")
	ErrSOLStolen      = errors.New("SOL payload taken by another session")
)

const (
	solMaxPending    = 64 << 10 // typed input queued before Write blocks
	solDefaultBuffer = 1 << 20  // console output buffered before we flow-control the BMC
)

// solEngine is the SOL protocol state machine of one console: in-order,
// duplicate-free delivery of the BMC's output with acknowledgements and
// flow control, and reliable delivery of our input (one packet in flight,
// retransmitted with the same SOL sequence number, partial acceptance
// resent as a new packet). It knows nothing of sockets: send puts a SOL
// payload on the wire and received packets arrive through deliver, so the
// timing logic runs under testing/synctest with a fake BMC.
type solEngine struct {
	send          func(payload []byte) error
	maxIn         int // characters per packet we send
	retryInterval time.Duration
	retries       int
	bumpSeq       bool // QuirkSOLPacketSeq

	in     chan wire.SOLPacket // from deliver; bounded, overflow is dropped (the BMC resends)
	kick   chan struct{}       // input or a break is waiting
	stop   chan struct{}       // closed by close()
	ended  chan struct{}       // closed when the engine has stopped
	events chan SOLEvent

	// outMu guards the output buffer and the end state.
	outMu    sync.Mutex
	out      bytes.Buffer
	outMax   int
	readable chan struct{} // capacity 1: data or end arrived
	endErr   error

	// inMu guards the typed input queue and break requests.
	inMu     sync.Mutex
	pending  []byte
	writable chan struct{} // capacity 1: room in pending
	breaks   []chan error

	st        solCounters
	evMu      sync.Mutex
	evClosed  bool
	closeOnce sync.Once
}

type solCounters struct {
	bytesIn, bytesOut, packetsIn, packetsOut, retransmits, duplicates, gaps, overruns, nacks, inputDropped, eventsDropped atomic.Uint64
}

func newSOLEngine(send func([]byte) error, maxIn int, outMax int, retryInterval time.Duration, retries int) *solEngine {
	if outMax <= 0 {
		outMax = solDefaultBuffer
	}
	return &solEngine{
		send: send, maxIn: maxIn, retryInterval: retryInterval, retries: retries, outMax: outMax,
		in: make(chan wire.SOLPacket, 64), kick: make(chan struct{}, 1), stop: make(chan struct{}),
		ended: make(chan struct{}), events: make(chan SOLEvent, 64),
		readable: make(chan struct{}, 1), writable: make(chan struct{}, 1),
	}
}

// deliver hands a received SOL payload to the engine. It never blocks: if
// the engine is behind, the packet is dropped and the BMC resends it.
func (e *solEngine) deliver(payload []byte) {
	p, err := wire.ParseSOL(payload)
	if err != nil {
		return
	}
	p.Data = append([]byte(nil), p.Data...)
	select {
	case e.in <- p:
	default:
	}
}

// outstanding is our one input packet in flight.
type outstanding struct {
	seq   uint8
	data  []byte
	op    uint8
	tries int
	brk   chan error // set for a break packet
}

// run is the engine's goroutine. lost is closed when the session under it
// dies; lostErr then says why.
func (e *solEngine) run(lost <-chan struct{}, lostErr func() error) {
	defer close(e.ended)
	var (
		inFlight *outstanding
		// outSeq is the last SOL seq we used. It starts at a random
		// point: some BMCs keep SOL sequence state across sessions and
		// would drop our first packet as a duplicate of the last one
		// a previous client sent (ipmi_sim does).
		outSeq  = randByte() % 15
		lastSeq uint8 // last BMC packet seq accepted (0: none yet)
		lastLen int   // characters of it delivered
		// delivered remembers, per SOL sequence number, what the most
		// recent packet with that number delivered, to tell a late copy
		// of an old packet from new output.
		delivered [16]deliveredPacket
		timer     = time.NewTimer(time.Hour)
	)
	timer.Stop()
	nextSeq := func() uint8 {
		outSeq = outSeq%15 + 1
		return outSeq
	}
	transmit := func(o *outstanding) {
		p := wire.SOLPacket{Seq: o.seq, Op: o.op, Data: o.data}
		if err := e.send(p.Append(nil)); err == nil {
			e.st.packetsOut.Add(1)
		}
		timer.Reset(e.retryInterval)
	}
	// startNext sends the next packet of typed input, or a break once the
	// input typed before it has gone.
	startNext := func() {
		if inFlight != nil {
			return
		}
		e.inMu.Lock()
		if n := min(len(e.pending), e.maxIn); n > 0 {
			inFlight = &outstanding{seq: nextSeq(), data: append([]byte(nil), e.pending[:n]...)}
		} else if len(e.breaks) > 0 {
			inFlight = &outstanding{seq: nextSeq(), op: wire.SOLOpBreak, brk: e.breaks[0]}
			e.breaks = e.breaks[1:]
		}
		e.inMu.Unlock()
		if inFlight != nil {
			transmit(inFlight)
		}
	}
	// consume removes n accepted bytes from the head of the input queue.
	consume := func(n int) {
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
	for {
		select {
		case <-e.stop:
			e.end(ErrClosed)
			return
		case <-lost:
			err := lostErr()
			e.emit(SOLEvent{Kind: SOLSessionLost, Err: err, Detail: errString(err)})
			e.end(fmt.Errorf("%w: %v", ErrClosed, err))
			return
		case <-e.kick:
			startNext()
		case <-timer.C:
			if inFlight == nil {
				continue
			}
			inFlight.tries++
			if inFlight.tries > e.retries {
				n := len(inFlight.data)
				e.st.inputDropped.Add(uint64(n))
				if inFlight.brk != nil {
					inFlight.brk <- fmt.Errorf("break: %w after %d tries", ErrNoAnswer, e.retries+1)
				} else {
					consume(n)
					e.emit(SOLEvent{Kind: SOLInputDropped, Detail: fmt.Sprintf("%d bytes of input not acknowledged after %d tries", n, e.retries+1)})
				}
				inFlight = nil
				if e.bumpSeq {
					nextSeq() // some BMCs get stuck on one sequence number
				}
				startNext()
				continue
			}
			e.st.retransmits.Add(1)
			transmit(inFlight)
		case p := <-e.in:
			e.st.packetsIn.Add(1)
			if p.Op&wire.SOLStatusOverrun != 0 {
				e.st.overruns.Add(1)
				e.emit(SOLEvent{Kind: SOLOverrun, Detail: "BMC dropped characters (transmit overrun)"})
			}
			if p.Op&wire.SOLStatusBreak != 0 {
				e.emit(SOLEvent{Kind: SOLBreakDetected})
			}
			// Acknowledgement of our packet in flight.
			if p.AckSeq != 0 && inFlight != nil && p.AckSeq == inFlight.seq {
				if p.Op&wire.SOLNack != 0 {
					// Not accepted now (host off, BMC buffer full):
					// keep it and try again after the interval.
					e.st.nacks.Add(1)
				} else {
					n := min(int(p.Accepted), len(inFlight.data))
					if inFlight.brk != nil {
						inFlight.brk <- nil
					} else {
						e.st.bytesOut.Add(uint64(n))
						consume(n)
					}
					inFlight = nil
					timer.Stop()
					startNext() // a partial ACK leaves the rest queued: it goes in a new packet
				}
			}
			if p.Seq != 0 {
				accepted := 0
				behind := 0
				if lastSeq != 0 {
					behind = (int(lastSeq) - int(p.Seq) + 15) % 15
				}
				switch {
				case lastSeq != 0 && behind == 0:
					// A retransmission: our ACK was lost. It may carry
					// more than before; deliver only what is new.
					e.st.duplicates.Add(1)
					if len(p.Data) > lastLen {
						lastLen += e.write(p.Data[lastLen:])
					}
					delivered[p.Seq] = remember(p.Data[:lastLen])
					accepted = lastLen
				case behind >= 1 && behind <= 7 && delivered[p.Seq].copyOf(p.Data):
					// A late copy of a packet already delivered: the
					// network reordered or duplicated it, or the BMC resent
					// it before our ACK arrived. Drop it.
					e.st.duplicates.Add(1)
					continue
				default:
					if lastSeq != 0 && p.Seq != lastSeq%15+1 {
						e.st.gaps.Add(1)
						e.emit(SOLEvent{Kind: SOLGap, Detail: fmt.Sprintf("SOL packet sequence jumped from %d to %d", lastSeq, p.Seq)})
					}
					lastSeq, lastLen = p.Seq, e.write(p.Data)
					delivered[p.Seq] = remember(p.Data[:lastLen])
					accepted = lastLen
				}
				ack := wire.SOLPacket{AckSeq: p.Seq, Accepted: uint8(min(accepted, 255))}
				if err := e.send(ack.Append(nil)); err == nil {
					e.st.packetsOut.Add(1)
				}
			}
			if p.Op&wire.SOLStatusDeactivated != 0 {
				e.emit(SOLEvent{Kind: SOLDeactivated, Err: ErrSOLDeactivated})
				e.end(ErrSOLDeactivated)
				return
			}
		}
	}
}

// deliveredPacket identifies what one SOL packet delivered.
type deliveredPacket struct {
	valid bool
	n     int
	sum   uint64
}

func remember(b []byte) deliveredPacket {
	return deliveredPacket{valid: true, n: len(b), sum: fnv64(b)}
}

// copyOf reports whether data is a copy of the delivered packet (possibly
// with more appended, as a BMC may add characters when it resends).
func (d deliveredPacket) copyOf(data []byte) bool {
	return d.valid && len(data) >= d.n && fnv64(data[:d.n]) == d.sum
}

func fnv64(b []byte) uint64 {
	h := uint64(14695981039346656037)
	for _, c := range b {
		h ^= uint64(c)
		h *= 1099511628211
	}
	return h
}

// write appends console output to the read buffer, as much as fits, and
// returns how much that was: the rest is left to the BMC (flow control).
func (e *solEngine) write(b []byte) int {
	e.outMu.Lock()
	n := min(len(b), e.outMax-e.out.Len())
	if n > 0 {
		e.out.Write(b[:n])
	}
	e.outMu.Unlock()
	if n > 0 {
		e.st.bytesIn.Add(uint64(n))
		select {
		case e.readable <- struct{}{}:
		default:
		}
	}
	return n
}

// Read returns console output in order, blocking until some arrives. When
// the console has ended it returns what is buffered, then the cause.
func (e *solEngine) Read(p []byte) (int, error) {
	for {
		e.outMu.Lock()
		if e.out.Len() > 0 {
			n, _ := e.out.Read(p)
			e.outMu.Unlock()
			return n, nil
		}
		err := e.endErr
		e.outMu.Unlock()
		if err != nil {
			return 0, err
		}
		<-e.readable
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

// sendBreak queues a serial break after the input typed before it and
// returns a channel that reports whether the BMC accepted it.
func (e *solEngine) sendBreak() <-chan error {
	ch := make(chan error, 1)
	e.inMu.Lock()
	e.breaks = append(e.breaks, ch)
	e.inMu.Unlock()
	select {
	case e.kick <- struct{}{}:
	default:
	}
	return ch
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
		InputDropped: e.st.inputDropped.Load(), EventsDropped: e.st.eventsDropped.Load(),
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
