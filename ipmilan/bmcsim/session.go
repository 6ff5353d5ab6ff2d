package bmcsim

import (
	"encoding/binary"
	"io"
	"net"
	"time"

	"github.com/solgate/solgate/ipmilan/internal/wire"
)

// seqWindow is an anti-replay window over 32-bit session sequence
// numbers: it accepts numbers up to `ahead` beyond the highest accepted
// one and up to `behind` below it that were not seen yet.
type seqWindow struct {
	high   uint32
	seen   uint64 // bit i: high-i was accepted
	ahead  uint32
	behind uint32 // at most 63
}

// newSeqWindow expects next as the first sequence number.
func newSeqWindow(next uint32, ahead, behind uint32) seqWindow {
	return seqWindow{high: next - 1, seen: 1, ahead: ahead, behind: behind}
}

// accept checks seq and, if acceptable, records it. Call it only after
// the packet's integrity has been verified.
func (w *seqWindow) accept(seq uint32) bool {
	d := seq - w.high
	if d != 0 && d <= w.ahead {
		if d >= 64 {
			w.seen = 1
		} else {
			w.seen = w.seen<<d | 1
		}
		w.high = seq
		return true
	}
	back := w.high - seq
	if back >= w.behind || back >= 64 || w.seen&(1<<back) != 0 {
		return false
	}
	w.seen |= 1 << back
	return true
}

type sessionState uint8

const (
	stateOpened sessionState = iota // Open Session Response sent
	stateRAKP2                      // RAKP2 sent, waiting for RAKP3
	stateActive                     // established
)

// session is one entry of the BMC's session table: an IPMI v1.5 session
// or an RMCP+ session (established or half open). Guarded by BMC.mu.
type session struct {
	id         uint32 // BMC's session ID (1.5 session ID, RMCP+ SIDc)
	handle     uint8
	v20        bool
	state      sessionState
	remote     net.Addr
	link       packetSink // the socket remote last reached us on (nil in tests without one)
	lastActive time.Time
	userIdx    int // index into cfg.Users, -1 before RAKP1
	priv       Privilege
	maxPriv    Privilege

	// RMCP+.
	sidm          uint32
	suite         wire.CipherSuite
	reqPriv       Privilege // Open Session request
	hs            wire.Handshake
	keys          *wire.Keys
	inAuth        seqWindow // integrity-protected packets
	inUnauth      seqWindow
	outAuth       uint32
	outUnauth     uint32
	setupReq      []byte           // last session-setup request and the answer
	setupResp     []byte           // payload, replayed when the request is
	setupRespType wire.PayloadType // retransmitted

	// IPMI v1.5.
	authType  wire.AuthType
	perMsgOff bool // Quirks.PerMessageAuthOff: auth type none after activation
	pw16      [16]byte
	in15      seqWindow
	in15Start uint32
	out15     uint32

	// Last state-changing request and its response, so a retransmission
	// (same rqSeq, command and data) is answered without acting twice.
	dupReq  []byte
	dupResp wire.Response
	dupAt   time.Time
}

// nextOut returns the next outbound sequence number of the counter.
func nextSeq(c *uint32) uint32 {
	*c++
	if *c == 0 {
		*c = 1
	}
	return *c
}

// challenge is a pending v1.5 Get Session Challenge. After a successful
// Activate Session it stays until it expires, so that a retransmitted
// Activate Session (the answer was lost) gets the same answer.
type challenge struct {
	userIdx   int
	authType  wire.AuthType
	challenge [16]byte
	expires   time.Time
	activated *session
	actReq    []byte // Activate Session request data
	actResp   []byte // and the response data
}

const (
	maxChallenges    = 64
	challengeTimeout = 30 * time.Second
	setupTimeout     = 10 * time.Second
	dupWindow        = 5 * time.Second
	window20Ahead    = 16
	window20Behind   = 16
	window15         = 8
)

// randomID returns a random non-zero 32-bit value from r that is not a
// key of used.
func randomID[V any](r io.Reader, used map[uint32]V) uint32 {
	var b [4]byte
	for {
		randomBytes(r, b[:])
		id := binary.LittleEndian.Uint32(b[:])
		if _, dup := used[id]; id != 0 && !dup {
			return id
		}
	}
}

// randomBytes fills b from r (crypto/rand outside tests, which never
// fails on Linux; a failure is a broken system, not bad input).
func randomBytes(r io.Reader, b []byte) {
	if _, err := io.ReadFull(r, b); err != nil {
		panic("bmcsim: random source failed: " + err.Error())
	}
}

// freeHandle returns an unused session handle (1-63), 0 if none.
func (b *BMC) freeHandleLocked() uint8 {
	used := make(map[uint8]bool, len(b.sessions))
	for _, s := range b.sessions {
		used[s.handle] = true
	}
	for h := uint8(1); h <= maxSessionsLimit; h++ {
		if !used[h] {
			return h
		}
	}
	return 0
}

// newSessionLocked allocates a session slot, or returns nil when the
// table is full.
func (b *BMC) newSessionLocked(now time.Time, remote net.Addr, v20 bool) *session {
	b.sweepLocked(now, true)
	if len(b.sessions) >= b.cfg.MaxSessions {
		b.stats.sessionsRefused.Add(1)
		return nil
	}
	s := &session{
		id:         randomID(b.rand, b.sessions),
		handle:     b.freeHandleLocked(),
		v20:        v20,
		remote:     remote,
		lastActive: now,
		userIdx:    -1,
	}
	b.sessions[s.id] = s
	return s
}

// closeSessionLocked removes s from the table and wipes its keys.
func (b *BMC) closeSessionLocked(s *session, why string) {
	if _, ok := b.sessions[s.id]; !ok {
		return
	}
	delete(b.sessions, s.id)
	b.solSessionClosedLocked(s)
	if s.keys != nil {
		clear(s.keys.K1)
		clear(s.keys.K2)
		clear(s.keys.Password)
	}
	clear(s.pw16[:])
	b.log.Debug("session closed", "session", s.id, "why", why)
	if s.state == stateActive {
		b.stats.sessionsClosed.Add(1)
	}
}

// sweepLocked expires idle sessions and stale challenges. Unless force
// is set it runs at most once a second.
func (b *BMC) sweepLocked(now time.Time, force bool) {
	if !force && now.Sub(b.lastSweep) < time.Second {
		return
	}
	b.lastSweep = now
	for _, s := range b.sessions {
		if b.idleLocked(s, now) {
			if s.state == stateActive {
				b.stats.sessionsTimedOut.Add(1)
			}
			b.closeSessionLocked(s, "timeout")
		}
	}
	for id, c := range b.challenges {
		if now.After(c.expires) {
			delete(b.challenges, id)
		}
	}
}

// idleLocked reports whether s has been idle too long: SessionTimeout for
// established sessions, at most setupTimeout for half-open ones (a client
// that gave up on a handshake must not hold a slot for a minute).
func (b *BMC) idleLocked(s *session, now time.Time) bool {
	limit := b.cfg.SessionTimeout
	if s.state != stateActive {
		limit = min(limit, setupTimeout)
	}
	return now.Sub(s.lastActive) >= limit
}

// activeSessionLocked returns the established session with BMC-side ID
// id, expiring it first if it is idle.
func (b *BMC) activeSessionLocked(id uint32, now time.Time) *session {
	s := b.sessions[id]
	if s == nil {
		return nil
	}
	if b.idleLocked(s, now) {
		if s.state == stateActive {
			b.stats.sessionsTimedOut.Add(1)
		}
		b.closeSessionLocked(s, "timeout")
		return nil
	}
	return s
}
