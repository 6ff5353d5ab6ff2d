package bmcsim

import (
	"bytes"
	"crypto/hmac"
	"net"
	"time"

	"github.com/solgate/solgate/ipmilan/internal/wire"
)

// handle20Locked handles an RMCP+ packet (after the RMCP header) and
// returns the whole answer datagram, or nil.
func (b *BMC) handle20Locked(p []byte, from net.Addr, now time.Time) []byte {
	pk, err := wire.ParsePacket20(p)
	if err != nil {
		return nil
	}
	switch pk.Type {
	case wire.PayloadOpenSessionReq:
		if pk.SessionID != 0 {
			return nil
		}
		return b.openSessionLocked(pk.Payload, from, now)
	case wire.PayloadRAKP1:
		if pk.SessionID != 0 {
			return nil
		}
		return b.rakp1Locked(pk.Payload, now)
	case wire.PayloadRAKP3:
		if pk.SessionID != 0 {
			return nil
		}
		return b.rakp3Locked(pk.Payload, from, now)
	case wire.PayloadIPMI, wire.PayloadSOL:
	default:
		return nil
	}
	if pk.SessionID == 0 {
		if pk.Type != wire.PayloadIPMI || pk.Encrypted {
			return nil
		}
		req, err := wire.ParseRequest(pk.Payload)
		if err != nil {
			return nil
		}
		return b.seal20Locked(nil, wire.PayloadIPMI, b.encodeResponseLocked(b.preSessionLocked(req), b.garbage))
	}
	s := b.activeSessionLocked(pk.SessionID, now)
	if s == nil || !s.v20 || s.state != stateActive {
		return nil
	}
	plain, err := s.keys.Open(p[:packetLen(pk)], pk)
	if err != nil {
		return nil
	}
	w := &s.inUnauth
	if pk.Authenticated {
		w = &s.inAuth
	}
	if !w.accept(pk.Seq) {
		b.stats.replays.Add(1)
		return nil
	}
	s.lastActive, s.remote = now, from
	if b.curSink != nil {
		s.link = b.curSink
	}
	if pk.Type == wire.PayloadSOL {
		b.solHandled = true
		b.handleSOLLocked(s, plain, now)
		return nil
	}
	req, err := wire.ParseRequest(plain)
	if err != nil {
		return nil
	}
	resp, closeAfter := b.commandLocked(s, req, from, now)
	out := b.seal20Locked(s, wire.PayloadIPMI, b.encodeResponseLocked(resp, b.garbage))
	if closeAfter != nil {
		b.closeSessionLocked(closeAfter, "close session")
	}
	return out
}

// packetLen is the length of the RMCP+ packet pk was parsed from (the
// datagram may carry trailing bytes beyond it only without a trailer).
func packetLen(pk wire.Packet20) int {
	n := 12 + len(pk.Payload) + len(pk.Trailer)
	if pk.Type == wire.PayloadOEMExplicit {
		n += 6
	}
	return n
}

// seal20Locked wraps a payload for session s (nil: outside a session)
// into an answer datagram.
func (b *BMC) seal20Locked(s *session, t wire.PayloadType, payload []byte) []byte {
	pk := wire.Packet20{Type: t}
	keys := &wire.Keys{}
	if s != nil {
		keys = s.keys
		pk.SessionID = s.sidm
		if s.suite.Integrity != wire.IntegrityNone {
			pk.Seq = nextSeq(&s.outAuth)
		} else {
			pk.Seq = nextSeq(&s.outUnauth)
		}
	}
	// Room for the RMCP and session headers, the AES IV and padding and
	// the integrity trailer: Seal need not grow the buffer.
	out, err := keys.Seal(rmcpIPMISized(len(payload)+96), pk, payload)
	if err != nil {
		return nil
	}
	return out
}

// setupAnswer wraps a session-setup payload (always outside a session).
func setupAnswer(t wire.PayloadType, payload []byte) []byte {
	return wire.Packet20{Type: t, Payload: payload}.Append(rmcpIPMI())
}

// findSuite returns the offered suite with exactly these algorithms, or
// the RMCP+ status explaining why there is none.
func (b *BMC) findSuite(a wire.AuthAlg, i wire.IntegrityAlg, c wire.ConfAlg) (wire.CipherSuite, wire.RMCPPlusStatus) {
	var authOK, integOK, confOK bool
	for _, s := range b.suites {
		if !b.suiteEnabledLocked(s.ID) {
			continue
		}
		if s.Auth == a && s.Integrity == i && s.Conf == c {
			return s, wire.StatusOK
		}
		authOK = authOK || s.Auth == a
		integOK = integOK || s.Integrity == i
		confOK = confOK || s.Conf == c
	}
	switch {
	case !authOK:
		return wire.CipherSuite{}, wire.StatusInvalidAuthAlg
	case !integOK:
		return wire.CipherSuite{}, wire.StatusInvalidIntegAlg
	case !confOK:
		return wire.CipherSuite{}, wire.StatusInvalidConfAlg
	}
	return wire.CipherSuite{}, wire.StatusNoCipherSuiteMatch
}

func (b *BMC) openSessionLocked(payload []byte, from net.Addr, now time.Time) []byte {
	if len(payload) < 8 {
		return nil
	}
	// A retransmitted request gets the same answer, not a second session.
	for _, s := range b.sessions {
		if s.v20 && s.state == stateOpened && sameSetup(s.setupReq, payload) {
			s.lastActive = now
			return s.replaySetup(payload[0])
		}
	}
	r, err := wire.ParseOpenSessionRequest(payload)
	fail := func(st wire.RMCPPlusStatus) []byte {
		return setupAnswer(wire.PayloadOpenSessionResp,
			wire.OpenSessionResponse{Tag: payload[0], Status: st, SIDm: r.SIDm}.Append(nil))
	}
	r.SIDm = uint32(payload[4]) | uint32(payload[5])<<8 | uint32(payload[6])<<16 | uint32(payload[7])<<24
	if err != nil {
		return fail(wire.StatusIllegalParameter)
	}
	if r.SIDm == 0 {
		return fail(wire.StatusInvalidSessionID)
	}
	if payload[1]&0x0F > uint8(PrivOEM) {
		return fail(wire.StatusInvalidRole)
	}
	suite, st := b.findSuite(r.Auth, r.Integrity, r.Conf)
	if st != wire.StatusOK {
		return fail(st)
	}
	s := b.newSessionLocked(now, from, true)
	if s == nil {
		return fail(wire.StatusNoResources)
	}
	s.sidm, s.suite, s.reqPriv = r.SIDm, suite, Privilege(r.MaxPriv)
	s.inAuth = newSeqWindow(1, window20Ahead, window20Behind)
	s.inUnauth = newSeqWindow(1, window20Ahead, window20Behind)
	granted := s.reqPriv
	if granted == 0 && !b.cfg.Quirks.OpenSessionPrivZero {
		granted = PrivAdmin // the channel limit: "highest matching"
	}
	resp := wire.OpenSessionResponse{Tag: r.Tag, Status: wire.StatusOK, MaxPriv: wire.Privilege(granted),
		SIDm: r.SIDm, SIDc: s.id, Auth: suite.Auth, Integrity: suite.Integrity, Conf: suite.Conf}
	return s.cacheSetup(payload, wire.PayloadOpenSessionResp, resp.Append(nil))
}

// findUser20 looks the RAKP1 user up: by name only, or by name and
// privilege (the user's limit must equal the requested role). Trailing
// NULs (Intel's padded names) are ignored.
func (b *BMC) findUser20(name []byte, nameOnly bool, priv Privilege) int {
	n := string(bytes.TrimRight(name, "\x00"))
	for i, u := range b.conf.users {
		if u.usable() && u.Name == n && (nameOnly || u.MaxPriv == priv) {
			return i
		}
	}
	return -1
}

func (b *BMC) rakp1Locked(payload []byte, now time.Time) []byte {
	if len(payload) < 8 {
		return nil
	}
	sidc := uint32(payload[4]) | uint32(payload[5])<<8 | uint32(payload[6])<<16 | uint32(payload[7])<<24
	s := b.activeSessionLocked(sidc, now)
	if s == nil || !s.v20 || s.state == stateActive {
		return nil
	}
	if s.state == stateRAKP2 && sameSetup(s.setupReq, payload) {
		s.lastActive = now
		return s.replaySetup(payload[0])
	}
	fail := func(st wire.RMCPPlusStatus) []byte {
		b.closeSessionLocked(s, "RAKP1: "+st.String())
		return setupAnswer(wire.PayloadRAKP2, wire.RAKP2{Tag: payload[0], Status: st, SIDm: s.sidm}.Append(nil))
	}
	r, err := wire.ParseRAKP1(payload)
	if err != nil {
		if len(payload) >= 28 && payload[27] > wire.MaxUserLen {
			return fail(wire.StatusInvalidNameLength)
		}
		return fail(wire.StatusIllegalParameter)
	}
	priv := Privilege(r.Role & 0x0F)
	if r.Role&0xE0 != 0 || priv == 0 || priv > PrivOEM {
		return fail(wire.StatusInvalidRole)
	}
	if s.reqPriv != 0 && priv > s.reqPriv {
		return fail(wire.StatusUnauthorizedRole)
	}
	idx := b.findUser20(r.User, r.Role&wire.RoleNameOnly != 0, priv)
	if idx < 0 {
		b.stats.authFailures.Add(1)
		b.log.Debug("RAKP1: unknown user", "user", string(r.User), "session", s.id)
		return fail(wire.StatusUnauthorizedName)
	}
	if b.lockedLocked(idx, now) {
		return fail(wire.StatusUnauthorizedName)
	}
	u := b.conf.users[idx]
	if priv > b.userLimitLocked(idx) || priv > b.suitePrivLocked(s.suite.ID) {
		return fail(wire.StatusUnauthorizedRole)
	}
	s.userIdx, s.maxPriv = idx, priv
	s.hs = wire.Handshake{SIDm: s.sidm, SIDc: s.id, Rm: r.Rm, GUID: b.cfg.GUID, Role: r.Role,
		User: append([]byte(nil), r.User...)}
	randomBytes(b.rand, s.hs.Rc[:])
	code := s.hs.RAKP2Code(s.suite.Auth, []byte(u.Password))
	if b.cfg.Quirks.RAKP2ExtraByte && len(code) > 0 {
		code = append(code, 0)
	}
	if b.cfg.Quirks.CorruptRAKP2 && len(code) > 0 {
		code[len(code)/2] ^= 0x10
	}
	s.state = stateRAKP2
	s.lastActive = now
	return s.cacheSetup(payload, wire.PayloadRAKP2, wire.RAKP2{Tag: r.Tag, Status: wire.StatusOK, SIDm: s.sidm,
		Rc: s.hs.Rc, GUID: s.hs.GUID, AuthCode: code}.Append(nil))
}

func (b *BMC) rakp3Locked(payload []byte, from net.Addr, now time.Time) []byte {
	b.stats.rakp3s.Add(1)
	r, err := wire.ParseRAKP3(payload)
	if err != nil {
		return nil
	}
	s := b.activeSessionLocked(r.SIDc, now)
	if s == nil || !s.v20 || s.state == stateOpened {
		return nil
	}
	if s.state == stateActive {
		// Only a retransmission of the RAKP3 that established it.
		if sameSetup(s.setupReq, payload) {
			return s.replaySetup(payload[0])
		}
		return nil
	}
	if r.Status != wire.StatusOK {
		b.closeSessionLocked(s, "console aborted: "+r.Status.String())
		return nil
	}
	u := b.conf.users[s.userIdx]
	want := s.hs.RAKP3Code(s.suite.Auth, []byte(u.Password))
	if !hmac.Equal(want, r.AuthCode) {
		b.recordFailureLocked(s.userIdx, now)
		b.log.Debug("RAKP3: bad auth code", "user", u.Name, "session", s.id, "remote", from.String())
		b.closeSessionLocked(s, "RAKP3: bad auth code")
		return setupAnswer(wire.PayloadRAKP4, wire.RAKP4{Tag: r.Tag, Status: wire.StatusInvalidICV, SIDm: s.sidm}.Append(nil))
	}
	key := b.kg
	if key == nil {
		key = []byte(u.Password)
	}
	sik := s.hs.SIK(s.suite.Auth, key)
	s.keys = wire.SessionKeys(s.suite, sik, []byte(u.Password))
	icv := s.hs.RAKP4ICV(s.suite.Auth, sik)
	clear(sik)
	s.state = stateActive
	s.priv = min(PrivUser, s.maxPriv)
	s.lastActive, s.remote = now, from
	if b.curSink != nil {
		s.link = b.curSink
	}
	b.loginSucceededLocked(s.userIdx)
	b.log.Debug("RMCP+ session established", "user", u.Name, "session", s.id, "suite", s.suite.ID, "remote", from.String())
	return s.cacheSetup(payload, wire.PayloadRAKP4, wire.RAKP4{Tag: r.Tag, Status: wire.StatusOK, SIDm: s.sidm, ICV: icv}.Append(nil))
}

// Clients retransmit session-setup messages, some with a new message tag
// (FreeIPMI); a retransmission gets the first answer again, with its tag,
// instead of a second session or new nonces.

// sameSetup reports whether payload repeats the cached request, tag
// aside.
func sameSetup(cached, payload []byte) bool {
	return len(cached) > 0 && len(cached) == len(payload) && bytes.Equal(cached[1:], payload[1:])
}

// cacheSetup remembers a setup request and its answer payload and returns
// the answer datagram.
func (s *session) cacheSetup(req []byte, t wire.PayloadType, resp []byte) []byte {
	s.setupReq = append([]byte(nil), req...)
	s.setupResp, s.setupRespType = resp, t
	return setupAnswer(t, resp)
}

// replaySetup returns the cached answer with the retransmission's tag.
func (s *session) replaySetup(tag uint8) []byte {
	p := append([]byte(nil), s.setupResp...)
	p[0] = tag
	return setupAnswer(s.setupRespType, p)
}
