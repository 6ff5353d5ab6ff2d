package ipmilan

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/solgate/solgate/ipmilan/internal/wire"
)

// SOLOptions configure a Serial-over-LAN console.
type SOLOptions struct {
	// Steal deactivates the payload when another session holds it, then
	// activates it for us. Without it such a BMC gives a *SOLActiveError
	// (errors.Is ErrSOLActive) naming the holder.
	Steal bool
	// PowerEvery, when positive, makes every PowerEvery-th keepalive ask
	// Get Chassis Status instead of Get Payload Instance Info, and reports
	// a change of the power state since the last look as a SOLPowerOn or
	// SOLPowerOff event: a power change nobody made through this console
	// (the power button, another tool) costs no extra request. Short
	// changes between two looks (a quick power cycle) are not seen.
	PowerEvery int
	// StealFrom, when not zero, is a BMC session ID the caller knows to be
	// its own stale session (a previous process killed before it could
	// deactivate): a payload held by that session is taken even without
	// Steal, instead of waiting for the BMC to time the session out.
	StealFrom uint32
	// Instance is the SOL payload instance (default 1).
	Instance uint8
	// RetryInterval and Retries govern retransmission of our input
	// (defaults 500ms and 16, as FreeIPMI).
	RetryInterval time.Duration
	Retries       int
	// BufferSize bounds console output held for Read (default 1 MiB; it
	// may be exceeded by less than one packet, 255 bytes). When full, the
	// BMC is paused: the packet that does not fit waits for Read to make
	// room, and is answered "0 characters accepted" (so the BMC sends it
	// again later) within half a second, costing about two packets each
	// way per half second, however long the reader stalls. Nothing is
	// lost on our side.
	BufferSize int
	// IgnoreAltPort keeps using the session's port when the BMC names
	// another one for SOL (as QuirkSOLPort).
	IgnoreAltPort bool
	// AckPace paces acknowledgements while the console prints and nobody
	// types: the ACK of a packet that comes less than AckPace after the
	// last one waits until AckPace has passed (default 20 ms, at most
	// 100 ms; negative: every packet is acknowledged at once). A BMC sends
	// its next packet only after that ACK, so a busy console arrives in
	// fewer, fuller packets (at 115200 baud about 230 characters each
	// instead of however few came since the last ACK), and each packet
	// costs both sides a datagram each way. The characters are never held
	// back: they are readable as soon as their packet arrives. For a
	// second after typed input every packet is acknowledged at once, so
	// echo is not slowed.
	AckPace time.Duration
}

// SOL is an active Serial-over-LAN console. Read returns the console's
// output, Write sends input; both are safe to call from one goroutine
// each at the same time as Events is drained by a third.
type SOL struct {
	s       *Session
	eng     *solEngine
	ownSess bool // Close closes the session too (DialSOL)
	inst    uint8

	// Used by the keepalive only (one at a time): PowerEvery's count and
	// the power state last seen (-1 unknown, 0 off, 1 on).
	powerEvery int
	keepalives int
	power      int8
}

// Format prints the console as its session (see Session.Format).
func (c *SOL) Format(f fmt.State, verb rune) {
	fmt.Fprintf(f, "ipmilan.SOL(%s, id %#x)", c.s.cfg.Addr, c.s.ID())
}

// AltPortError says the BMC wants SOL on another UDP port.
type AltPortError struct{ Port uint16 }

func (e *AltPortError) Error() string {
	return fmt.Sprintf("BMC moved SOL to UDP port %d", e.Port)
}

// ActivateSOL activates the SOL payload in an IPMI 2.0 session and starts
// its protocol engine.
func (s *Session) ActivateSOL(ctx context.Context, o SOLOptions) (*SOL, error) {
	if !s.v2 {
		return nil, fmt.Errorf("ipmilan: %s: SOL needs an IPMI 2.0 (lanplus) session: %w", s.cfg.Addr, ErrUnsupported)
	}
	if o.Instance == 0 {
		o.Instance = 1
	}
	if o.RetryInterval <= 0 {
		o.RetryInterval = 500 * time.Millisecond
	}
	if o.Retries <= 0 {
		o.Retries = 16
	}
	q := s.cfg.Quirks
	if !q.Has(QuirkSOLStatus) {
		active, err := s.payloadActive(ctx, o.Instance)
		if err != nil {
			return nil, err
		}
		if active {
			owner := s.payloadOwner(ctx, o.Instance)
			if !o.Steal && (o.StealFrom == 0 || owner != o.StealFrom) {
				return nil, fmt.Errorf("ipmilan: %s: %w", s.cfg.Addr, &SOLActiveError{Owner: owner})
			}
			if err := s.deactivateSOL(ctx, o.Instance); err != nil {
				return nil, err
			}
		}
	}
	aux := uint8(0)
	if s.suite.Conf != wire.ConfNone {
		aux |= wire.SOLAuxEncrypt
	}
	if s.suite.Integrity != wire.IntegrityNone {
		aux |= wire.SOLAuxAuthenticate
	}
	if q.Has(QuirkSerialAlertsDeferred) {
		aux |= wire.SOLAuxAlertsDeferred
	}
	req := wire.ActivatePayloadRequest{Type: wire.PayloadSOL, Instance: o.Instance, Aux: [4]byte{aux}}
	var resp wire.ActivatePayloadResponse
	eng := newSOLEngine(func(p []byte) error { return s.sendPayload(wire.PayloadSOL, p) }, 32, o.BufferSize, o.RetryInterval, o.Retries)
	eng.bumpSeq = q.Has(QuirkSOLPacketSeq)
	if s.cfg.packetConn != nil {
		// A session on an injected network (tests, often in a synctest
		// bubble) gets a pacer of its own, which ends with it.
		p := newAckPacer()
		p.stopped = s.done
		eng.pacer = p
	}
	switch {
	case o.AckPace > 0:
		eng.ackPace = min(o.AckPace, solMaxAckPace)
	case o.AckPace == 0:
		eng.ackPace = solDefaultAckPace
	}
	eng.onPanic = s.fail // an engine that panicked leaves a session in an unknown state
	if testHookSOLEngine != nil {
		testHookSOLEngine(eng)
	}
	// The BMC may send output right after its Activate Payload answer,
	// even before that answer reaches us: route SOL packets to the engine
	// now (it takes them before its goroutine runs), or the first output
	// would wait for the BMC's retransmission, a second on many BMCs.
	s.setPayloadHandler(func(t wire.PayloadType, p []byte) {
		if t == wire.PayloadSOL {
			eng.deliver(p)
			eng.drainSink()
		}
	})
	activated := false
	defer func() {
		if !activated {
			s.setPayloadHandler(nil)
		}
	}()
	for try := 0; ; try++ {
		r, err := s.do(ctx, wire.NetFnApp, wire.CmdActivatePayload, req.Append(nil))
		var ce *CompletionError
		if errors.As(err, &ce) {
			switch ce.Code {
			case wire.CCPayloadActive:
				owner := s.payloadOwner(ctx, o.Instance)
				// Active on this very session: the BMC carried out an
				// earlier try, whose answer was lost, and executed the
				// retransmission again (many do not recognise one). Our
				// own payload: take it back rather than report a holder
				// that is ourselves. Races: a BMC can still say "active"
				// right after a deactivation; FreeIPMI loops a bounded
				// number of times.
				if (o.Steal || o.StealFrom != 0 || owner != 0 && owner == s.ID()) && try < 5 {
					if derr := s.deactivateSOL(ctx, o.Instance); derr != nil {
						return nil, derr
					}
					continue
				}
				return nil, fmt.Errorf("ipmilan: %s: %w", s.cfg.Addr, &SOLActiveError{Owner: owner})
			case wire.CCPayloadDisabled:
				return nil, fmt.Errorf("ipmilan: %s: activate SOL: SOL is disabled on the BMC or not permitted for user %q: %w", s.cfg.Addr, s.cfg.User, err)
			case wire.CCPayloadLimit:
				return nil, fmt.Errorf("ipmilan: %s: activate SOL: activation limit reached: %w", s.cfg.Addr, err)
			case wire.CCPayloadNeedsNoEnc, wire.CCPayloadNeedsEnc:
				return nil, fmt.Errorf("ipmilan: %s: activate SOL: BMC's SOL encryption setting does not match cipher suite %d: %w", s.cfg.Addr, s.suite.ID, err)
			}
		}
		if err != nil {
			return nil, fmt.Errorf("ipmilan: %s: activate SOL: %w", s.cfg.Addr, err)
		}
		resp, err = wire.ParseActivatePayloadResponse(r.Data)
		if err != nil {
			return nil, fmt.Errorf("ipmilan: %s: activate SOL: %w: %v", s.cfg.Addr, ErrProtocol, err)
		}
		break
	}
	if port := resp.Port; !o.IgnoreAltPort && !q.Has(QuirkSOLPort) && port != 0 && !s.samePort(port) {
		s.deactivateSOL(ctx, o.Instance)
		return nil, &AltPortError{Port: port}
	}
	eng.mu.Lock() // deliver may be running
	eng.maxIn = solChars(resp.InboundSize, q.Has(QuirkSOLPayloadSize))
	eng.paceMax = min(eng.paceMax, paceMax(resp.OutboundSz)) // 0 already if an overrun came first
	eng.mu.Unlock()
	c := &SOL{s: s, eng: eng, inst: o.Instance, powerEvery: o.PowerEvery, power: -1}
	activated = true
	keep := func(ctx context.Context) error { return c.checkOwner(ctx) }
	s.keepaliveFn.Store(&keep)
	go eng.run(s.done, s.Err) // owned by the SOL: close waits for it (eng.ended)
	eng.emit(SOLEvent{Kind: SOLActive, Detail: fmt.Sprintf("cipher suite %d, %d characters per packet", s.suite.ID, eng.maxIn)})
	return c, nil
}

// testHookSOLEngine, if set (tests only), sees each engine before it runs.
var testHookSOLEngine func(*solEngine)

// solChars is how many characters one of our packets may carry: the
// BMC's inbound payload size minus the SOL header, within 1..255. Many
// BMCs report nonsense; then 32 is safe (FreeIPMI's solpayloadsize rule).
func solChars(inbound uint16, ignore bool) int {
	if ignore || inbound < 5 || inbound > 259 {
		return 32
	}
	return int(inbound) - wire.SOLHeaderLen
}

// paceMax is how many characters the BMC says it sends per packet (its
// outbound payload size less the SOL header), for the ACK pacing: at most
// 255, as one packet's accepted count cannot say more (ipmi_sim reports
// 16384); a size with no room for a character turns pacing off (0). A BMC
// that sends less per packet than this is caught by the ceiling probe.
func paceMax(outbound uint16) int {
	if outbound <= wire.SOLHeaderLen {
		return 0
	}
	return min(int(outbound)-wire.SOLHeaderLen, solMaxChars)
}

// samePort reports whether port is the session's own (or 623 byte-swapped,
// a known firmware bug).
func (s *Session) samePort(port uint16) bool {
	_, p, _ := net.SplitHostPort(s.cfg.Addr)
	n, _ := strconv.Atoi(p)
	return int(port) == n || (port == 0x6F02 && n == 623)
}

func (s *Session) payloadActive(ctx context.Context, inst uint8) (bool, error) {
	r, err := s.do(ctx, wire.NetFnApp, wire.CmdGetPayloadActivation, []byte{uint8(wire.PayloadSOL)})
	if err != nil {
		var ce *CompletionError
		if errors.As(err, &ce) {
			return false, nil // not supported: activation will tell
		}
		return false, fmt.Errorf("ipmilan: %s: get payload activation status: %w", s.cfg.Addr, err)
	}
	if len(r.Data) < 3 {
		return false, nil
	}
	bits := binary.LittleEndian.Uint16(r.Data[1:])
	return bits&(1<<(inst-1)) != 0, nil
}

// payloadOwner returns the BMC session ID holding the payload instance,
// or 0 when unknown (not active, or the BMC does not say).
func (s *Session) payloadOwner(ctx context.Context, inst uint8) uint32 {
	r, err := s.do(ctx, wire.NetFnApp, wire.CmdGetPayloadInstanceInfo, []byte{uint8(wire.PayloadSOL), inst})
	if err != nil || len(r.Data) < 4 {
		return 0
	}
	return binary.LittleEndian.Uint32(r.Data)
}

func (s *Session) deactivateSOL(ctx context.Context, inst uint8) error {
	_, err := s.do(ctx, wire.NetFnApp, wire.CmdDeactivatePayload, []byte{uint8(wire.PayloadSOL), inst, 0, 0, 0, 0})
	var ce *CompletionError
	if errors.As(err, &ce) && ce.Code == 0x80 {
		return nil // already deactivated
	}
	if err != nil {
		return fmt.Errorf("ipmilan: %s: deactivate SOL: %w", s.cfg.Addr, err)
	}
	return nil
}

// checkOwner is the SOL keepalive: Get Payload Instance Info both keeps
// the session alive and tells whether another session took the payload.
func (c *SOL) checkOwner(ctx context.Context) error {
	if c.powerEvery > 0 {
		if c.keepalives++; c.keepalives%c.powerEvery == 0 {
			return c.checkPower(ctx)
		}
	}
	r, err := c.s.do(ctx, wire.NetFnApp, wire.CmdGetPayloadInstanceInfo, []byte{uint8(wire.PayloadSOL), c.inst})
	var ce *CompletionError
	if errors.As(err, &ce) {
		return nil // unsupported: the session answered, that is enough
	}
	if err != nil {
		return err
	}
	if len(r.Data) >= 4 {
		switch owner := binary.LittleEndian.Uint32(r.Data); {
		case owner == 0:
			c.eng.emit(SOLEvent{Kind: SOLDeactivated, Err: ErrSOLDeactivated, Detail: "payload no longer active"})
			c.eng.endAsync(ErrSOLDeactivated)
		case owner != c.s.ID():
			c.eng.emit(SOLEvent{Kind: SOLStolen, Err: ErrSOLStolen, Detail: fmt.Sprintf("now owned by session %#x", owner)})
			c.eng.endAsync(ErrSOLStolen)
		}
	}
	return nil
}

// checkPower is the keepalive that looks at the chassis power state.
func (c *SOL) checkPower(ctx context.Context) error {
	r, err := c.s.do(ctx, wire.NetFnChassis, wire.CmdGetChassisStatus, nil)
	var ce *CompletionError
	if errors.As(err, &ce) {
		return nil
	}
	if err != nil {
		return err
	}
	st, err := wire.ParseChassisStatus(r.Data)
	if err != nil {
		return nil // answered: the session is alive
	}
	now := int8(0)
	if st.PowerOn() {
		now = 1
	}
	switch {
	case c.power == 0 && now == 1:
		c.eng.emit(SOLEvent{Kind: SOLPowerOn, Detail: "chassis power is on (it was off at the previous look)"})
	case c.power == 1 && now == 0:
		c.eng.emit(SOLEvent{Kind: SOLPowerOff, Detail: "chassis power is off (it was on at the previous look)"})
	}
	c.power = now
	return nil
}

// Read returns console output in order, blocking until some arrives; once
// the console has ended, what is still buffered, then why it ended. Close
// unblocks it. When a power event (SOLOptions.PowerEvery) is queued
// while it waits it returns (0, nil) once, so the goroutine that reads can also take Events without a
// goroutine of its own. Call it from one goroutine at a time.
func (c *SOL) Read(p []byte) (int, error) { return c.eng.Read(p) }

// SetOutput makes f the taker of the console's output instead of Read,
// saving a goroutine wake-up per packet on a busy console: what is
// buffered goes to f before SetOutput returns, then each packet's
// characters, in order, on the session's reader goroutine as they are
// taken. f must not block (on Linux that goroutine is a poller shared by
// up to 512 sessions: a blocked f stalls them all), and must not call what
// waits for the BMC (Close, Break, the Session's commands): they need the
// goroutine f runs on. p is valid only during the call. Read then returns (0, nil) when
// events are queued (see Read) and, at the end, why the console ended,
// once everything before it has gone to f. Call it from the goroutine
// that reads, once.
func (c *SOL) SetOutput(f func(p []byte)) { c.eng.setSink(f) }

// ReadContext is Read that also returns, with ctx's error, when ctx ends
// first; no output is lost by that.
func (c *SOL) ReadContext(ctx context.Context, p []byte) (int, error) {
	return c.eng.ReadContext(ctx, p)
}

// Write queues input for the console; see solEngine.Write.
func (c *SOL) Write(p []byte) (int, error) { return c.eng.Write(p) }

// Break sends a serial break (on Linux, the start of a SysRq) after any
// input typed before it, and waits for the BMC to accept it.
func (c *SOL) Break(ctx context.Context) error {
	ch, err := c.eng.sendBreak()
	if err != nil {
		return err
	}
	select {
	case err := <-ch:
		return err
	case <-ctx.Done():
		return ctx.Err()
	case <-c.eng.ended:
		return c.eng.Err()
	}
}

// Events reports status changes. It is closed when the console ends.
// Events the consumer does not take in time are dropped and counted.
func (c *SOL) Events() <-chan SOLEvent { return c.eng.events }

// Stats returns the console's counters.
func (c *SOL) Stats() SOLStats { return c.eng.stats() }

// Done is closed when the console has ended; Err then says why.
func (c *SOL) Done() <-chan struct{} { return c.eng.ended }

// Err is why the console ended, or nil while it runs.
func (c *SOL) Err() error { return c.eng.Err() }

// Session is the IPMI session the console runs in (for power commands).
func (c *SOL) Session() *Session { return c.s }

// Close deactivates the payload (when we still own it), stops the engine
// and, for consoles from DialSOL, closes the session.
func (c *SOL) Close() error {
	if c.eng.Err() == nil && c.s.Err() == nil {
		// Before the payload goes: the BMC must know what we took.
		c.eng.settle()
		ctx, cancel := context.WithTimeout(context.Background(), c.s.cfg.Timeout)
		c.s.deactivateSOL(ctx, c.inst)
		cancel()
	}
	c.s.setPayloadHandler(nil)
	c.s.keepaliveFn.Store(nil)
	c.eng.close()
	if c.ownSess {
		return c.s.Close()
	}
	return nil
}

// DialSOL opens a session and activates SOL in it. When the BMC names
// another UDP port for SOL, the session is redone once on that port (as
// FreeIPMI does). Closing the returned console closes its session.
func DialSOL(ctx context.Context, cfg Config, o SOLOptions) (*SOL, error) {
	if cfg.Interface == LAN {
		return nil, fmt.Errorf("ipmilan: %s: SOL needs IPMI 2.0 (lanplus): %w", cfg.Addr, ErrUnsupported)
	}
	for moved := false; ; moved = true {
		s, err := Dial(ctx, cfg)
		if err != nil {
			return nil, err
		}
		c, err := s.ActivateSOL(ctx, o)
		var alt *AltPortError
		if errors.As(err, &alt) && !moved {
			s.Close()
			host, _, _ := net.SplitHostPort(s.cfg.Addr)
			cfg.Addr = net.JoinHostPort(host, strconv.Itoa(int(alt.Port)))
			s.log.Info("BMC moved SOL to another port", "port", alt.Port)
			continue
		}
		if err != nil {
			s.Close()
			return nil, err
		}
		c.ownSess = true
		return c, nil
	}
}
