package bmcsim

import (
	"bytes"
	"crypto/subtle"
	"net"
	"time"

	"github.com/solgate/solgate/ipmilan/internal/wire"
)

// handle15Locked handles an IPMI v1.5-format packet (after the RMCP
// header) and returns the whole answer datagram, or nil.
func (b *BMC) handle15Locked(p []byte, from net.Addr, now time.Time) []byte {
	pkt, err := wire.ParseSession15(p)
	if err != nil {
		return nil
	}
	req, err := wire.ParseRequest(pkt.Message)
	if err != nil {
		return nil
	}
	if pkt.SessionID == 0 {
		if pkt.AuthType != wire.AuthNone || pkt.Seq != 0 {
			return nil
		}
		resp := b.preSessionLocked(req)
		return b.seal15Locked(wire.AuthNone, 0, 0, nil, resp)
	}
	if !b.cfg.Allow15 {
		return nil
	}
	if c, ok := b.challenges[pkt.SessionID]; ok {
		return b.activateSessionLocked(pkt, req, c, from, now)
	}
	s := b.activeSessionLocked(pkt.SessionID, now)
	if s == nil || s.v20 || s.state != stateActive || pkt.AuthType != s.authType {
		return nil
	}
	if !(pkt.AuthType == wire.AuthNone && s.perMsgOff) && !b.verify15(pkt, s.pw16) {
		return nil
	}
	if !s.in15.accept(pkt.Seq) {
		b.stats.replays.Add(1)
		return nil
	}
	s.lastActive, s.remote = now, from
	resp, closeAfter := b.commandLocked(s, req, from, now)
	out := b.seal15Locked(s.authType, nextSeq(&s.out15), s.id, &s.pw16, resp)
	if closeAfter != nil {
		b.closeSessionLocked(closeAfter, "close session")
	}
	return out
}

// verify15 checks the auth code of an incoming v1.5 packet.
func (b *BMC) verify15(pkt wire.Session15, pw [16]byte) bool {
	if pkt.AuthType == wire.AuthNone {
		return b.cfg.AllowAuthNone
	}
	want, err := wire.AuthCode15(pkt.AuthType, pw, pkt.SessionID, pkt.Message, pkt.Seq)
	return err == nil && subtle.ConstantTimeCompare(want[:], pkt.AuthCode[:]) == 1
}

// seal15Locked encodes a v1.5 answer datagram; pw is nil for auth type
// none.
func (b *BMC) seal15Locked(t wire.AuthType, seq, sid uint32, pw *[16]byte, resp wire.Response) []byte {
	s := wire.Session15{AuthType: t, Seq: seq, SessionID: sid, Message: b.encodeResponseLocked(resp, b.garbage)}
	if t != wire.AuthNone && pw != nil {
		code, err := wire.AuthCode15(t, *pw, sid, s.Message, seq)
		if err != nil {
			return nil
		}
		s.AuthCode = code
	}
	return s.Append(rmcpIPMI())
}

// findUser15 looks a user up by the 16-byte NUL-padded name of Get
// Session Challenge.
func (b *BMC) findUser15(name [16]byte) int {
	n := bytes.TrimRight(name[:], "\x00")
	for i, u := range b.conf.users {
		if u.usable() && u.Name == string(n) {
			return i
		}
	}
	return -1
}

func (b *BMC) authType15Allowed(t wire.AuthType) bool {
	switch t {
	case wire.AuthMD5, wire.AuthPassword:
	case wire.AuthNone:
		if !b.cfg.AllowAuthNone {
			return false
		}
	default:
		return false
	}
	for _, m := range b.conf.lan.authEnables { // LAN parameter 2
		if m.Has(t) {
			return true
		}
	}
	return false
}

func (b *BMC) sessionChallengeLocked(req wire.Request) wire.Response {
	r, err := wire.ParseSessionChallengeRequest(req.Data)
	if err != nil {
		return respond(req, wire.CCBadLength, nil)
	}
	if !b.authType15Allowed(r.AuthType) {
		return respond(req, wire.CCInvalidField, nil)
	}
	idx := b.findUser15(r.User)
	if idx < 0 {
		if r.User == [16]byte{} {
			return respond(req, 0x82, nil) // null user name not enabled
		}
		return respond(req, 0x81, nil) // invalid user name
	}
	if len(b.challenges) >= maxChallenges {
		// Forget the oldest pending challenge.
		var oldest uint32
		for id, c := range b.challenges {
			if oldest == 0 || c.expires.Before(b.challenges[oldest].expires) {
				oldest = id
			}
		}
		delete(b.challenges, oldest)
	}
	c := &challenge{userIdx: idx, authType: r.AuthType, expires: b.now().Add(challengeTimeout)}
	randomBytes(b.rand, c.challenge[:])
	id := randomID(b.rand, b.challenges)
	for b.sessions[id] != nil {
		id = randomID(b.rand, b.challenges)
	}
	b.challenges[id] = c
	return respond(req, wire.CCOK, wire.SessionChallenge{TempSessionID: id, Challenge: c.challenge}.Append(nil))
}

// activateSessionLocked handles Activate Session, the packet that carries
// the temporary session ID of a challenge. Nothing is answered before the
// auth code verifies: an error answer would need an auth code keyed with
// the password, which would hand out a crackable hash.
func (b *BMC) activateSessionLocked(pkt wire.Session15, req wire.Request, c *challenge, from net.Addr, now time.Time) []byte {
	if commandOf(req) != CmdActivateSession || pkt.AuthType != c.authType {
		return nil
	}
	r, err := wire.ParseActivateSessionRequest(req.Data)
	if err != nil || r.AuthType != c.authType ||
		subtle.ConstantTimeCompare(r.Challenge[:], c.challenge[:]) != 1 {
		return nil
	}
	u := b.conf.users[c.userIdx]
	pw := wire.Password16([]byte(u.Password))
	if c.activated == nil && b.lockedLocked(c.userIdx, now) {
		return nil
	}
	if !b.verify15(pkt, pw) {
		b.recordFailureLocked(c.userIdx, now)
		b.log.Debug("v1.5 activate session: bad auth code", "user", u.Name, "remote", from.String())
		delete(b.challenges, pkt.SessionID)
		return nil
	}
	answer := func(code wire.CompletionCode, data []byte) []byte {
		if b.cfg.Quirks.UnauthenticatedActivate {
			return b.seal15Locked(wire.AuthNone, r.OutSeq, pkt.SessionID, nil, respond(req, code, data))
		}
		return b.seal15Locked(pkt.AuthType, r.OutSeq, pkt.SessionID, &pw, respond(req, code, data))
	}
	if c.activated != nil {
		if b.sessions[c.activated.id] != c.activated || !bytes.Equal(c.actReq, req.Data) {
			return nil
		}
		return answer(wire.CCOK, c.actResp)
	}
	delete(b.challenges, pkt.SessionID)
	if a, ok := b.faults.Load().wrongAnswer(CmdActivateSession); ok {
		return answer(wire.CompletionCode(a.Code), a.Data)
	}
	if r.OutSeq == 0 {
		return answer(0x84, nil) // sequence number out of range
	}
	priv := Privilege(r.MaxPriv)
	if priv == 0 || priv > b.userLimitLocked(c.userIdx) || priv > PrivOEM {
		return answer(0x86, nil) // requested privilege exceeds limit
	}
	s := b.newSessionLocked(now, from, false)
	if s == nil {
		return answer(0x81, nil) // no session slot
	}
	var in [4]byte
	randomBytes(b.rand, in[:])
	inSeq := uint32(in[0]) | uint32(in[1])<<8 | uint32(in[2])<<16 | uint32(in[3]&0x7F)<<24
	if inSeq == 0 {
		inSeq = 1
	}
	s.state = stateActive
	s.userIdx = c.userIdx
	s.authType = r.AuthType
	s.pw16 = pw
	s.in15 = newSeqWindow(inSeq, window15, window15)
	s.in15Start = inSeq
	s.out15 = r.OutSeq // the answer below uses OutSeq itself
	s.maxPriv = priv
	s.priv = min(PrivUser, priv)
	b.loginSucceededLocked(c.userIdx)
	b.log.Debug("v1.5 session activated", "user", u.Name, "session", s.id, "remote", from.String())
	if b.cfg.Quirks.PerMessageAuthOff {
		s.authType, s.perMsgOff = wire.AuthNone, true
	}
	data := wire.ActivateSessionResponse{AuthType: s.authType, SessionID: s.id, InSeq: inSeq, MaxPriv: wire.Privilege(priv)}.Append(nil)
	c.activated, c.actReq, c.actResp = s, append([]byte(nil), req.Data...), data
	b.challenges[pkt.SessionID] = c
	return answer(wire.CCOK, data)
}
