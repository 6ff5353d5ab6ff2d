package bmcsim

import (
	"fmt"
	"math/rand/v2"
	"net"
	"sync"
	"time"
)

// Command names an IPMI command by network function and command number,
// for Faults.WrongAnswers.
type Command struct {
	NetFn uint8 // request netFn (even)
	Cmd   uint8
}

// Commands the simulator implements.
var (
	CmdGetDeviceID            = Command{0x06, 0x01}
	CmdGetSystemGUID          = Command{0x06, 0x37}
	CmdGetChannelAuthCaps     = Command{0x06, 0x38}
	CmdGetSessionChallenge    = Command{0x06, 0x39}
	CmdActivateSession        = Command{0x06, 0x3A}
	CmdSetSessionPrivilege    = Command{0x06, 0x3B}
	CmdCloseSession           = Command{0x06, 0x3C}
	CmdGetSessionInfo         = Command{0x06, 0x3D}
	CmdGetChannelCipherSuites = Command{0x06, 0x54}
	CmdGetChassisStatus       = Command{0x00, 0x01}
	CmdChassisControl         = Command{0x00, 0x02}
	CmdChassisIdentify        = Command{0x00, 0x04}
	CmdSetBootOptions         = Command{0x00, 0x08}
	CmdGetBootOptions         = Command{0x00, 0x09}
)

func (c Command) String() string { return fmt.Sprintf("netfn %#02x cmd %#02x", c.NetFn, c.Cmd) }

// Answer is a canned response: completion code and data.
type Answer struct {
	Code uint8
	Data []byte
}

// GarbageKind selects how Faults.Garbage corrupts answers.
type GarbageKind uint8

const (
	GarbageNone GarbageKind = iota
	// GarbageRandom replaces the whole datagram with random bytes.
	GarbageRandom
	// GarbageWrongSeq answers IPMI requests with another rqSeq.
	GarbageWrongSeq
	// GarbageBadChecksum corrupts the IPMI message's second checksum
	// (inside a valid session wrapper, so integrity still verifies).
	GarbageBadChecksum
	// GarbageTruncated cuts the datagram short.
	GarbageTruncated
)

func (g GarbageKind) String() string {
	switch g {
	case GarbageNone:
		return "none"
	case GarbageRandom:
		return "random"
	case GarbageWrongSeq:
		return "wrong-seq"
	case GarbageBadChecksum:
		return "bad-checksum"
	case GarbageTruncated:
		return "truncated"
	}
	return fmt.Sprintf("GarbageKind(%d)", uint8(g))
}

// ParseGarbageKind is the inverse of GarbageKind.String.
func ParseGarbageKind(s string) (GarbageKind, error) {
	for g := GarbageNone; g <= GarbageTruncated; g++ {
		if g.String() == s {
			return g, nil
		}
	}
	return 0, fmt.Errorf("bmcsim: unknown garbage kind %q (want none, random, wrong-seq, bad-checksum or truncated)", s)
}

// Faults are the misbehaviours injected into one BMC's traffic. All
// probabilities are per datagram in [0, 1]; the random decisions come
// from a generator seeded with Seed, so a given seed and packet sequence
// always produce the same faults (delays run on timers, so their exact
// interleaving with later packets still depends on the scheduler).
type Faults struct {
	Seed int64
	// DropRequests drops incoming datagrams before they are processed.
	DropRequests float64
	// Drop drops answers (after the request took effect).
	Drop float64
	// Duplicate sends an answer twice.
	Duplicate float64
	// Reorder holds an answer back and sends it after the next one (or
	// after ReorderHold, default 20 ms, if no other answer comes).
	Reorder     float64
	ReorderHold time.Duration
	// Delay delays every answer by Delay plus a uniform random part of
	// up to DelayJitter.
	Delay       time.Duration
	DelayJitter time.Duration
	// Freeze makes the BMC ignore everything, like a hung BMC.
	Freeze bool
	// Garbage corrupts answers; GarbageProb is the probability per
	// answer (0 means every answer).
	Garbage     GarbageKind
	GarbageProb float64
	// WrongAnswers answers the given commands with a fixed completion
	// code and data instead of executing them (e.g. ChassisControl ->
	// 0xC0 node busy). The map must not be modified after SetFaults.
	WrongAnswers map[Command]Answer
}

func (f Faults) validate() error {
	for name, p := range map[string]float64{"drop-requests": f.DropRequests, "drop": f.Drop,
		"duplicate": f.Duplicate, "reorder": f.Reorder, "garbage probability": f.GarbageProb} {
		if p < 0 || p > 1 || p != p {
			return fmt.Errorf("bmcsim: fault %s probability %v: want 0-1", name, p)
		}
	}
	if f.Delay < 0 || f.DelayJitter < 0 || f.ReorderHold < 0 {
		return fmt.Errorf("bmcsim: negative fault delay")
	}
	if f.Garbage > GarbageTruncated {
		return fmt.Errorf("bmcsim: invalid garbage kind %d", f.Garbage)
	}
	return nil
}

// faultState is a Faults with its random generator. Its methods are
// called with faultState.mu held by the sender or the handler.
type faultState struct {
	Faults
	mu  sync.Mutex
	rng *rand.Rand
}

func newFaultState(f Faults) *faultState {
	seed := uint64(f.Seed)
	return &faultState{Faults: f, rng: rand.New(rand.NewPCG(seed, seed^0x9E3779B97F4A7C15))}
}

// roll reports true with probability p. mu must be held.
func (f *faultState) roll(p float64) bool {
	return p > 0 && f.rng.Float64() < p
}

func (f *faultState) active() bool {
	return f.DropRequests > 0 || f.Drop > 0 || f.Duplicate > 0 || f.Reorder > 0 || f.Delay > 0 ||
		f.DelayJitter > 0 || f.Freeze || f.Garbage != GarbageNone || len(f.WrongAnswers) > 0
}

// dropRequest decides whether an incoming datagram is lost.
func (f *faultState) dropRequest() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.roll(f.DropRequests)
}

// wrongAnswer returns the canned answer for cmd, if any.
func (f *faultState) wrongAnswer(c Command) (Answer, bool) {
	a, ok := f.WrongAnswers[c]
	return a, ok
}

// garbageKind decides whether (and how) this answer is corrupted.
func (f *faultState) garbageKind() GarbageKind {
	if f.Garbage == GarbageNone {
		return GarbageNone
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.GarbageProb > 0 && !f.roll(f.GarbageProb) {
		return GarbageNone
	}
	return f.Garbage
}

// corruptDatagram applies the datagram-level garbage kinds.
func (f *faultState) corruptDatagram(g GarbageKind, b []byte) []byte {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch g {
	case GarbageRandom:
		n := 1 + f.rng.IntN(64)
		out := make([]byte, n)
		for i := range out {
			out[i] = uint8(f.rng.Uint32())
		}
		return out
	case GarbageTruncated:
		if len(b) <= 1 {
			return b
		}
		return b[:f.rng.IntN(len(b)-1)+1]
	}
	return b
}

// sendPlan is what the sender does with one answer.
type sendPlan struct {
	drop    bool
	copies  int // 1 or 2
	delay   time.Duration
	reorder bool
}

func (f *faultState) plan() sendPlan {
	f.mu.Lock()
	defer f.mu.Unlock()
	p := sendPlan{copies: 1}
	if f.roll(f.Drop) {
		p.drop = true
		return p
	}
	if f.roll(f.Duplicate) {
		p.copies = 2
	}
	p.delay = f.Delay
	if f.DelayJitter > 0 {
		p.delay += time.Duration(f.rng.Int64N(int64(f.DelayJitter) + 1))
	}
	p.reorder = f.roll(f.Reorder)
	return p
}

// sender writes answers to one socket, applying the send-side faults.
// Delayed and held-back datagrams run on timers that stop() cancels and
// waits for, so no goroutine outlives Serve.
type sender struct {
	pc    packetWriter
	stats *counters

	mu      sync.Mutex // guards the fields below
	held    *heldPacket
	timers  map[*time.Timer]struct{}
	stopped bool
	wg      sync.WaitGroup // running timer callbacks
}

type heldPacket struct {
	b     []byte
	to    net.Addr
	timer *time.Timer
}

// packetWriter is the part of a socket a sender uses: a net.PacketConn,
// or a fleet's polled socket (fleet_linux.go).
type packetWriter interface {
	WriteTo(b []byte, to net.Addr) (int, error)
	LocalAddr() net.Addr
}

func newSender(pc packetWriter, st *counters) *sender {
	return &sender{pc: pc, stats: st, timers: map[*time.Timer]struct{}{}}
}

func (s *sender) write(b []byte, to net.Addr) {
	if _, err := s.pc.WriteTo(b, to); err == nil {
		s.stats.packetsOut.Add(1)
	}
}

// send transmits b to `to` according to the fault state.
func (s *sender) send(f *faultState, b []byte, to net.Addr) {
	if f == nil || !f.active() {
		s.write(b, to)
		return
	}
	p := f.plan()
	if p.drop {
		s.stats.faultDrops.Add(1)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return
	}
	if p.reorder && s.held == nil {
		hold := f.ReorderHold
		if hold <= 0 {
			hold = 20 * time.Millisecond
		}
		h := &heldPacket{b: b, to: to}
		h.timer = s.afterLocked(hold+p.delay, func() {
			// Whoever clears s.held sends it: this timer, or the next
			// datagram (even if the timer fired already but has not run
			// yet; waiting for it would reorder far more than asked).
			s.mu.Lock()
			mine := s.held == h
			if mine {
				s.held = nil
			}
			s.mu.Unlock()
			if mine {
				s.write(h.b, h.to)
			}
		})
		s.held = h
		return
	}
	for range p.copies {
		if p.delay > 0 {
			s.afterLocked(p.delay, func() { s.write(b, to) })
		} else {
			s.write(b, to)
		}
	}
	if h := s.held; h != nil {
		s.cancelLocked(h.timer)
		s.held = nil
		if p.delay > 0 {
			s.afterLocked(p.delay, func() { s.write(h.b, h.to) })
		} else {
			s.write(h.b, h.to)
		}
	}
}

// afterLocked runs fn after d on a tracked timer. s.mu must be held.
func (s *sender) afterLocked(d time.Duration, fn func()) *time.Timer {
	var t *time.Timer
	s.wg.Add(1)
	t = time.AfterFunc(d, func() {
		defer s.wg.Done()
		s.mu.Lock()
		_, live := s.timers[t]
		delete(s.timers, t)
		s.mu.Unlock()
		if live {
			fn()
		}
	})
	s.timers[t] = struct{}{}
	return t
}

// cancelLocked stops a tracked timer; it reports false if the timer
// already fired. s.mu must be held.
func (s *sender) cancelLocked(t *time.Timer) bool {
	if _, ok := s.timers[t]; !ok || !t.Stop() {
		return false
	}
	delete(s.timers, t)
	s.wg.Done()
	return true
}

// stop cancels pending timers and waits for running ones.
func (s *sender) stop() {
	s.mu.Lock()
	s.stopped = true
	for t := range s.timers {
		s.cancelLocked(t)
		delete(s.timers, t) // a callback already running sees it is not live
	}
	s.held = nil
	s.mu.Unlock()
	s.wg.Wait()
}
