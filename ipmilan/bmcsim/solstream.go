package bmcsim

import (
	"net"
	"time"

	"github.com/solgate/solgate/ipmilan/internal/wire"
)

// The SOL packet protocol, BMC side (IPMI 2.0 section 15.9 and the rules
// working implementations follow, see doc.go):
//
//   - Output is stop-and-wait: one data packet in flight per instance,
//     resent with the same SOL sequence number every RetryInterval until
//     acknowledged, dropped after Retries resends. A partial ACK puts the
//     rest back at the head of the queue (it goes in a new packet); an ACK
//     of zero characters or a NACK holds the data for one interval.
//   - Input: a packet with the sequence number of the last one is a
//     retransmission and is re-acknowledged without delivering it again;
//     one up to 7 behind is a late copy and is ignored; anything else is
//     new. The host's FIFO takes what fits (partial ACK) or nothing
//     (NACK); with the host off the NACK says "character transfer
//     unavailable".
//
// No goroutine is dedicated to this: the work due at a given time runs
// from one time.AfterFunc timer per BMC (solTimer), armed only while
// something is pending, and from the packet handler. Datagrams are
// collected in b.outbox while b.mu is held and sent after it is released
// (unlockAndFlush), through the socket the session last used, with the
// fault injection in effect.

// packetSink is where unsolicited datagrams for a session go: the sender
// of the socket it last arrived on.
type packetSink interface {
	send(f *faultState, b []byte, to net.Addr)
	localPort() uint16
}

func (s *sender) localPort() uint16 {
	if a, ok := s.pc.LocalAddr().(*net.UDPAddr); ok {
		return uint16(a.Port)
	}
	return 0
}

type outDatagram struct {
	sink packetSink
	to   net.Addr
	b    []byte
}

// solState is a BMC's SOL payload and serial console. Guarded by BMC.mu.
type solState struct {
	inst    []*solInstance // index = instance-1; nil when inactive
	notices []*solNotice   // deactivation notices still unacknowledged

	// Run-time SOL parameters (Set SOL Configuration Parameters).
	disabled        bool
	minPriv         Privilege
	forceEncryption bool
	accumulate      time.Duration
	threshold       int
	retries         int
	retryInterval   time.Duration
	bitRate         [2]uint8
	setInProgress   uint8

	inChars, outChars int // characters per packet each way

	con console

	timer   *time.Timer
	armedAt time.Time // zero when the timer is not armed

	scratch []byte // SOL payload being sealed (sendSOLLocked)
}

// solInstance is one active SOL payload instance.
type solInstance struct {
	num   int
	owner *session

	// BMC -> console.
	queue    []byte    // waiting to be sent
	queuedAt time.Time // when queue last became non-empty
	outSeq   uint8     // sequence number of the packet in flight (or last sent)
	inFlight []byte    // data of the packet in flight, nil if none
	flying   bool      // a packet is in flight (it may carry no data)
	flyOp    uint8     // status bits of the packet in flight
	tries    int       // resends of the packet in flight
	due      time.Time // resend time of the packet in flight
	holdTill time.Time // the console asked us to wait (ACK of 0 / NACK)
	status   uint8     // status bits for the next packet (overrun, break)

	// Console -> BMC.
	lastSeq      uint8 // last new packet's sequence number, 0 before any
	lastAccepted uint8
	lastNacked   bool
}

// solNotice is a "SOL deactivating" packet sent to a session that lost
// its instance, resent until acknowledged.
type solNotice struct {
	to    *session
	seq   uint8
	tries int
	due   time.Time
}

func (b *BMC) initSOL() {
	c := b.cfg.SOL
	b.sol = solState{
		inst: make([]*solInstance, c.Instances), disabled: c.Disabled, minPriv: c.MinPriv,
		forceEncryption: c.ForceEncryption, accumulate: c.AccumulateInterval, threshold: c.Threshold,
		retries: c.Retries, retryInterval: c.RetryInterval, bitRate: [2]uint8{0x0A, 0x0A},
		inChars: min(255, int(c.InboundSize)-wire.SOLHeaderLen), outChars: min(255, int(c.OutboundSize)-wire.SOLHeaderLen),
	}
	b.sol.con.init(b)
}

func (sol *solState) instanceOf(s *session) *solInstance {
	for _, in := range sol.inst {
		if in != nil && in.owner == s {
			return in
		}
	}
	return nil
}

func (sol *solState) active() bool {
	for _, in := range sol.inst {
		if in != nil {
			return true
		}
	}
	return false
}

// activateLocked binds instance n to session s. The first activation
// after a quiet period takes over the output the BMC kept meanwhile.
func (b *BMC) activateLocked(s *session, n int, now time.Time) {
	in := &solInstance{num: n, owner: s}
	con := &b.sol.con
	if !b.sol.active() && len(con.backlog) > 0 {
		in.queue, in.queuedAt = con.backlog, now
		con.backlog = nil
	}
	if con.backlogOverrun {
		in.status |= wire.SOLStatusOverrun
		con.backlogOverrun = false
	}
	b.sol.inst[n-1] = in
	b.stats.solActivations.Add(1)
	b.log.Debug("SOL activated", "instance", n, "session", s.id)
}

// deactivateLocked ends an instance; notify sends the "SOL deactivating"
// status to its owner (stolen, disabled, or BMC-initiated).
func (b *BMC) deactivateLocked(in *solInstance, notify bool, now time.Time) {
	if b.sol.inst[in.num-1] != in {
		return
	}
	b.sol.inst[in.num-1] = nil
	b.stats.solDeactivations.Add(1)
	if !b.sol.active() {
		// Output not yet sent goes back to the BMC's buffer for the
		// next console, as a real BMC's FIFO would keep it.
		b.sol.con.keep(append(append([]byte(nil), in.inFlight...), in.queue...))
	}
	if notify {
		n := &solNotice{to: in.owner, seq: in.outSeq%15 + 1}
		b.sol.notices = append(b.sol.notices, n)
		b.sendNoticeLocked(n, now)
	}
	b.log.Debug("SOL deactivated", "instance", in.num, "session", in.owner.id, "notify", notify)
}

// solSessionClosedLocked is called when session s ends: its instance is
// deactivated (nobody is left to notify).
func (b *BMC) solSessionClosedLocked(s *session) {
	if in := b.sol.instanceOf(s); in != nil {
		b.deactivateLocked(in, false, b.now())
	}
	k := 0
	for _, n := range b.sol.notices {
		if n.to != s {
			b.sol.notices[k] = n
			k++
		}
	}
	clear(b.sol.notices[k:])
	b.sol.notices = b.sol.notices[:k]
}

// sendSOLLocked seals a SOL packet for session s into the outbox.
func (b *BMC) sendSOLLocked(s *session, p wire.SOLPacket) {
	// The payload is built in a scratch buffer (Seal copies it into the
	// datagram).
	b.sol.scratch = p.Append(b.sol.scratch[:0])
	d := b.seal20Locked(s, wire.PayloadSOL, b.sol.scratch)
	if d == nil || s.link == nil {
		return
	}
	b.stats.solPacketsOut.Add(1)
	b.outbox = append(b.outbox, outDatagram{sink: s.link, to: s.remote, b: d})
}

func (b *BMC) sendNoticeLocked(n *solNotice, now time.Time) {
	b.sendSOLLocked(n.to, wire.SOLPacket{Seq: n.seq, Op: wire.SOLStatusDeactivated})
	n.due = now.Add(b.sol.retryInterval)
}

// handleSOLLocked handles an inbound SOL payload of session s (after the
// session's integrity, decryption and sequence-window checks). Answers go
// to the outbox.
func (b *BMC) handleSOLLocked(s *session, payload []byte, now time.Time) {
	p, err := wire.ParseSOL(payload)
	if err != nil {
		b.stats.ignored.Add(1)
		return
	}
	b.stats.solPacketsIn.Add(1)
	in := b.sol.instanceOf(s)
	if in == nil {
		// Not (or no longer) ours: the acknowledgement of a
		// deactivation notice, or data a console sends after losing
		// the payload, which is refused with the notice's status.
		if p.AckSeq != 0 {
			for i, n := range b.sol.notices {
				if n.to == s && n.seq == p.AckSeq {
					b.sol.notices = append(b.sol.notices[:i], b.sol.notices[i+1:]...)
					break
				}
			}
		}
		if p.Seq != 0 && !b.cfg.SOL.SilentTakeover {
			b.sendSOLLocked(s, wire.SOLPacket{AckSeq: p.Seq, Op: wire.SOLNack | wire.SOLStatusDeactivated})
		}
		return
	}
	// The acknowledgement part (possibly piggy-backed on data).
	if p.AckSeq != 0 && in.flying && p.AckSeq == in.outSeq {
		if p.Op&wire.SOLNack != 0 {
			// The console cannot take it now: same packet, later.
			in.due, in.tries = now.Add(b.sol.retryInterval), 0
		} else {
			n := min(int(p.Accepted), len(in.inFlight))
			b.stats.solBytesSent.Add(uint64(n))
			if rest := in.inFlight[n:]; len(rest) > 0 {
				in.queue = append(append([]byte(nil), rest...), in.queue...)
				in.queuedAt = now
				if n == 0 {
					in.holdTill = now.Add(b.sol.retryInterval)
				}
			}
			in.inFlight, in.flying, in.flyOp, in.tries = nil, false, 0, 0
		}
	}
	if p.Seq == 0 {
		return
	}
	behind := (int(in.lastSeq) - int(p.Seq) + 15) % 15
	switch {
	case in.lastSeq != 0 && behind == 0 && !in.lastNacked:
		// A retransmission (our ACK was lost): acknowledge again, do
		// not deliver again.
		b.stats.solDuplicates.Add(1)
		b.sendSOLLocked(s, wire.SOLPacket{AckSeq: p.Seq, Accepted: in.lastAccepted})
		return
	case in.lastSeq != 0 && behind >= 1 && behind <= 7:
		// A late copy of an older packet (duplicated or reordered on
		// the way): not new, and its ACK went long ago.
		b.stats.solDuplicates.Add(1)
		return
	}
	in.lastSeq = p.Seq
	con := &b.sol.con
	if !b.chassis.on {
		in.lastNacked, in.lastAccepted = true, 0
		b.stats.solNACKs.Add(1)
		b.sendSOLLocked(s, wire.SOLPacket{AckSeq: p.Seq, Op: wire.SOLNack | wire.SOLStatusUnavailable})
		return
	}
	data := p.Data[:min(len(p.Data), b.sol.inChars)]
	n := con.input(data, now)
	if len(p.Data) > 0 && n == 0 {
		in.lastNacked, in.lastAccepted = true, 0
		b.stats.solNACKs.Add(1)
		b.sendSOLLocked(s, wire.SOLPacket{AckSeq: p.Seq, Op: wire.SOLNack})
		return
	}
	if p.Op&wire.SOLOpBreak != 0 {
		b.stats.solBreaks.Add(1)
		con.breakReceived(now)
	}
	in.lastNacked, in.lastAccepted = false, uint8(n)
	b.stats.solBytesReceived.Add(uint64(n))
	b.sendSOLLocked(s, wire.SOLPacket{AckSeq: p.Seq, Accepted: uint8(n)})
}

// hostOutputLocked hands what the host printed to the active instances,
// or to the BMC's buffer when none is active. It returns how many bytes
// were taken (less than len(p) only with wait, when Stream must wait
// for room).
func (b *BMC) hostOutputLocked(p []byte, wait bool, now time.Time) int {
	if len(p) == 0 {
		return 0
	}
	sol := &b.sol
	n := len(p)
	if wait {
		n = min(n, b.outputRoomLocked())
	}
	if !sol.active() {
		sol.con.keep(p[:n])
		return n
	}
	limit := b.cfg.SOL.BufferSize
	for _, in := range sol.inst {
		if in == nil {
			continue
		}
		k := min(n, max(0, limit-len(in.queue)-len(in.inFlight)))
		if k < n {
			in.status |= wire.SOLStatusOverrun
			b.stats.solOverruns.Add(uint64(n - k))
		}
		if k > 0 {
			if len(in.queue) == 0 {
				in.queuedAt = now
			}
			in.queue = append(in.queue, p[:k]...)
		}
	}
	return n
}

// outputRoomLocked is how much host output fits now without an overrun:
// in the BMC's buffer while no instance is active, else in the fullest
// active instance's queue.
func (b *BMC) outputRoomLocked() int {
	sol := &b.sol
	if !sol.active() {
		return sol.con.room()
	}
	limit := b.cfg.SOL.BufferSize
	n := limit
	for _, in := range sol.inst {
		if in != nil {
			n = min(n, limit-len(in.queue)-len(in.inFlight))
		}
	}
	return max(n, 0)
}

// pumpLocked sends what is due: new output packets, retransmissions,
// deactivation notices and the boot text; then it arms the timer for the
// next thing due.
func (b *BMC) pumpLocked(now time.Time) {
	sol := &b.sol
	b.chassis.advance(now)
	sol.con.advance(now)
	var next time.Time
	soonest := func(t time.Time) {
		if !t.IsZero() && (next.IsZero() || t.Before(next)) {
			next = t
		}
	}
	soonest(b.streamFillLocked(now))
	for _, in := range sol.inst {
		if in == nil {
			continue
		}
		if in.flying && !now.Before(in.due) {
			if in.tries >= sol.retries {
				b.stats.solGaveUp.Add(uint64(len(in.inFlight)))
				b.log.Debug("SOL output dropped after retries", "instance", in.num, "bytes", len(in.inFlight))
				in.inFlight, in.flying, in.flyOp, in.tries = nil, false, 0, 0
			} else {
				in.tries++
				b.stats.solRetransmits.Add(1)
				b.sendSOLLocked(in.owner, wire.SOLPacket{Seq: in.outSeq, Op: in.flyOp, Data: in.inFlight})
				in.due = now.Add(sol.retryInterval)
			}
		}
		if !in.flying && (len(in.queue) > 0 || in.status != 0) && !now.Before(in.holdTill) {
			ready := in.status != 0 || len(in.queue) >= sol.threshold || len(in.queue) >= sol.outChars ||
				!now.Before(in.queuedAt.Add(sol.accumulate))
			if ready {
				n := min(len(in.queue), sol.outChars)
				in.outSeq = in.outSeq%15 + 1
				in.inFlight = append([]byte(nil), in.queue[:n]...)
				in.queue = in.queue[n:]
				if len(in.queue) == 0 {
					in.queue = nil
				}
				in.flying, in.flyOp, in.tries = true, in.status, 0
				in.status = 0
				in.due = now.Add(sol.retryInterval)
				b.sendSOLLocked(in.owner, wire.SOLPacket{Seq: in.outSeq, Op: in.flyOp, Data: in.inFlight})
			} else {
				soonest(in.queuedAt.Add(sol.accumulate))
			}
		}
		if in.flying {
			soonest(in.due)
		} else if len(in.queue) > 0 {
			soonest(in.holdTill)
		}
		// The owner's inactivity timeout ends the instance on time.
		soonest(in.owner.lastActive.Add(b.cfg.SessionTimeout))
	}
	k := 0
	for _, n := range sol.notices {
		if !now.Before(n.due) {
			if n.tries >= min(sol.retries, 8) {
				continue
			}
			n.tries++
			b.sendNoticeLocked(n, now)
		}
		sol.notices[k] = n
		k++
		soonest(n.due)
	}
	clear(sol.notices[k:])
	sol.notices = sol.notices[:k]
	soonest(sol.con.nextAt())
	if b.chassis.pending != pendingNone {
		soonest(b.chassis.pendingAt)
	}
	b.armLocked(now, next)
}

// armLocked (re)arms the BMC's SOL timer for time t (zero: stop it).
func (b *BMC) armLocked(now, t time.Time) {
	sol := &b.sol
	if t.Equal(sol.armedAt) {
		return
	}
	sol.armedAt = t
	if t.IsZero() {
		if sol.timer != nil {
			sol.timer.Stop()
		}
		return
	}
	d := max(t.Sub(now), 0)
	if sol.timer == nil {
		sol.timer = time.AfterFunc(d, b.solTick)
	} else {
		sol.timer.Reset(d)
	}
}

// solTick is the SOL timer's callback.
func (b *BMC) solTick() {
	b.mu.Lock()
	now := b.now()
	b.sol.armedAt = time.Time{}
	b.sweepLocked(now, false)
	b.unlockAndFlush(now)
}

// unlockAndFlush does the SOL work due, sends the datagrams collected
// meanwhile and releases b.mu. Sending under the lock keeps datagrams in
// the order they were made (a resend overtaken by newer packets would
// look like old data to the console); UDP writes do not block, and the
// sender never takes b.mu (lock order: BMC.mu, then sender.mu).
func (b *BMC) unlockAndFlush(now time.Time) {
	b.pumpLocked(now)
	out := b.outbox
	b.outbox = b.outbox[:0]
	if len(out) > 0 {
		f := b.faults.Load()
		if !f.Freeze && !b.isDown(now) {
			for i, d := range out {
				d.sink.send(f, d.b, d.to)
				out[i] = outDatagram{}
			}
		}
	}
	b.mu.Unlock()
}
