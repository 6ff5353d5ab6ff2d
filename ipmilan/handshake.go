package ipmilan

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/solgate/solgate/ipmilan/internal/wire"
)

// defaultSuites is the automatic choice, strongest first: only suites
// with both integrity and confidentiality. Anything else must be asked
// for by number, and with Config.Insecure (weakSuite).
var defaultSuites = []uint8{17, 3}

// weakSuite reports whether a suite leaves packets without integrity
// protection or without encryption (0, 1, 2, 6, 7, 11, 15, 16): typed
// root passwords would cross the network readable, or forgeable.
func weakSuite(c wire.CipherSuite) bool {
	return c.Integrity == wire.IntegrityNone || c.Conf == wire.ConfNone
}

func constantTimeEqual(a, b []byte) bool { return subtle.ConstantTimeCompare(a, b) == 1 }

// authCaps runs Get Channel Authentication Capabilities in v1.5 format,
// asking for IPMI 2.0 data first and retrying without for old BMCs that
// reject the extended bit.
func (s *Session) authCaps(ctx context.Context) (wire.AuthCaps, error) {
	req := wire.AuthCapsRequest{Channel: wire.ChannelThis, Extended: true, MaxPriv: s.cfg.Privilege}
	r, err := s.do(ctx, wire.NetFnApp, wire.CmdGetChannelAuthCaps, req.Append(nil))
	var ce *CompletionError
	if errors.As(err, &ce) {
		req.Extended = false
		r, err = s.do(ctx, wire.NetFnApp, wire.CmdGetChannelAuthCaps, req.Append(nil))
	}
	if err != nil {
		return wire.AuthCaps{}, fmt.Errorf("get channel auth caps: %w", err)
	}
	caps, err := wire.ParseAuthCaps(r.Data)
	if err != nil {
		return caps, fmt.Errorf("%w: %v", ErrProtocol, err)
	}
	return caps, nil
}

func (s *Session) open15(ctx context.Context) error {
	caps, err := s.authCaps(ctx)
	if err != nil {
		return err
	}
	t := s.cfg.AuthType
	if (t == wire.AuthNone || t == wire.AuthPassword) && !s.cfg.Insecure {
		return fmt.Errorf("IPMI 1.5 auth type %v: %w", t, ErrInsecure)
	}
	if t == wire.AuthNone || t == wire.AuthPassword {
		s.log.Warn("insecure IPMI 1.5 authentication in use (allowed by insecure)", "auth", t.String())
	}
	if t != wire.AuthMD5 && t != wire.AuthPassword && t != wire.AuthNone {
		return fmt.Errorf("IPMI 1.5 auth type %v: %w (this client speaks md5, password and none)", t, ErrUnsupported)
	}
	if !caps.Supports(t) && !s.cfg.Quirks.Has(QuirkAuthCap) {
		return fmt.Errorf("IPMI 1.5 auth type %v not offered by the BMC (offers %s): %w", t, authTypeList(caps), ErrUnsupported)
	}
	var user [16]byte
	copy(user[:], s.cfg.User)
	r, err := s.do(ctx, wire.NetFnApp, wire.CmdGetSessionChallenge, wire.SessionChallengeRequest{AuthType: t, User: user}.Append(nil))
	if err != nil {
		var ce *CompletionError
		if errors.As(err, &ce) && (ce.Code == 0x81 || ce.Code == 0x82) {
			return fmt.Errorf("get session challenge: %w (BMC: %s)", ErrAuth, map[CompletionCode]string{0x81: "invalid user name", 0x82: "null user name not enabled"}[ce.Code])
		}
		return fmt.Errorf("get session challenge: %w", err)
	}
	ch, err := wire.ParseSessionChallenge(r.Data)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrProtocol, err)
	}
	inStart := randUint32NonZero()
	s.mu.Lock()
	s.sid, s.authType, s.phase = ch.TempSessionID, t, phaseActivate
	s.inAuth.reset(inStart) // the BMC numbers its packets from here
	s.mu.Unlock()
	req := wire.ActivateSessionRequest{AuthType: t, MaxPriv: s.cfg.Privilege, Challenge: ch.Challenge, OutSeq: inStart}
	r, err = s.do(ctx, wire.NetFnApp, wire.CmdActivateSession, req.Append(nil))
	if err != nil {
		if errors.Is(err, ErrNoAnswer) && t != wire.AuthNone {
			return fmt.Errorf("activate session: %w (IPMI 1.5 BMCs drop packets with a wrong password: check the password)", err)
		}
		return fmt.Errorf("activate session: %w", err)
	}
	act, err := wire.ParseActivateSessionResponse(r.Data)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrProtocol, err)
	}
	if act.SessionID == 0 {
		return fmt.Errorf("activate session: %w: session ID 0", ErrProtocol)
	}
	s.mu.Lock()
	s.sid, s.outSeq, s.phase = act.SessionID, act.InSeq, phaseActive
	if s.outSeq == 0 {
		s.outSeq = 1
	}
	s.mu.Unlock()
	switch {
	case act.AuthType == t:
	case act.AuthType == wire.AuthNone && s.cfg.Quirks.Has(QuirkForcePerMsg):
		// The BMC claims per-message authentication is off but wants it
		// anyway (IBM eServer 325): keep authenticating both ways.
	case act.AuthType == wire.AuthNone:
		// Per-message authentication disabled by the BMC: every later
		// packet, both ways, would go without an auth code, so anyone on
		// the path could forge power commands. Only with Insecure.
		if !s.cfg.Insecure {
			// Close the session the BMC's way (it now ignores
			// authenticated packets), so it does not hold a slot.
			s.mu.Lock()
			s.authType = wire.AuthNone
			s.mu.Unlock()
			return fmt.Errorf("activate session: the BMC switched the session to auth type none (per-message authentication disabled): %w", ErrInsecure)
		}
		s.log.Warn("BMC disabled per-message authentication: session continues unauthenticated (allowed by insecure)", "auth", t.String())
		s.mu.Lock()
		s.authType = wire.AuthNone
		s.mu.Unlock()
	default:
		return fmt.Errorf("activate session: BMC answered auth type %v, we asked for %v: %w", act.AuthType, t, ErrProtocol)
	}
	return nil
}

func authTypeList(c wire.AuthCaps) string {
	var out []string
	for _, t := range []wire.AuthType{wire.AuthNone, wire.AuthMD2, wire.AuthMD5, wire.AuthPassword, wire.AuthOEM} {
		if c.Supports(t) {
			out = append(out, t.String())
		}
	}
	if len(out) == 0 {
		return "nothing"
	}
	return strings.Join(out, ", ")
}

func (s *Session) open20(ctx context.Context) error {
	caps, err := s.authCaps(ctx)
	if err != nil {
		return err
	}
	if !caps.IPMI20 && !s.cfg.Quirks.Has(QuirkAuthCap) {
		return fmt.Errorf("BMC does not offer IPMI 2.0 (try --interface lan): %w", ErrUnsupported)
	}
	var candidates, listed []uint8
	switch {
	case s.cfg.CipherSuite == 0 && s.cfg.ForceSuiteZero:
		if !s.cfg.Insecure {
			return fmt.Errorf("cipher suite 0: %w", ErrInsecure)
		}
		candidates = []uint8{0}
	case s.cfg.CipherSuite != 0:
		suite, ok := wire.LookupCipherSuite(uint8(s.cfg.CipherSuite))
		if !ok || s.cfg.CipherSuite < 0 || s.cfg.CipherSuite > 255 {
			return fmt.Errorf("cipher suite %d: %w (this client speaks 1-3, 6-8, 11, 12, 15-17)", s.cfg.CipherSuite, ErrUnsupported)
		}
		if weakSuite(suite) && !s.cfg.Insecure {
			return fmt.Errorf("cipher suite %d (integrity %v, confidentiality %v): %w", suite.ID, suite.Integrity, suite.Conf, ErrInsecure)
		}
		candidates = []uint8{suite.ID}
	default:
		candidates, listed = s.listedSuites(ctx)
	}
	var lastErr error
	for _, id := range candidates {
		suite, _ := wire.LookupCipherSuite(id)
		err := s.rakp(ctx, suite)
		if err == nil {
			if weakSuite(suite) {
				s.log.Warn("cipher suite without integrity or encryption in use (allowed by insecure)",
					"suite", suite.ID, "integrity", suite.Integrity.String(), "confidentiality", suite.Conf.String())
			}
			return nil
		}
		lastErr = fmt.Errorf("cipher suite %d: %w", id, err)
		if !errors.Is(err, ErrUnsupported) || len(candidates) == 1 {
			break
		}
		s.log.Debug("cipher suite refused, trying the next", "suite", id, "err", err)
	}
	if errors.Is(lastErr, ErrUnsupported) && s.cfg.CipherSuite == 0 && len(listed) > 0 {
		return fmt.Errorf("%w (the BMC lists suites %s; automatic choice takes only 17 and 3, which have integrity and encryption: name a weaker suite explicitly and allow it as insecure)", lastErr, suiteList(listed))
	}
	return lastErr
}

func suiteList(ids []uint8) string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = fmt.Sprint(id)
	}
	return strings.Join(out, ", ")
}

// listedSuites asks the BMC which suites it offers and returns the
// default choices among them (in preference order), and all it listed.
// BMCs misreport (and ipmi_sim does not answer at all), so when the list
// fails or holds neither default, both defaults are tried in turn.
func (s *Session) listedSuites(ctx context.Context) (candidates, listed []uint8) {
	s.setPhase(phasePreRMCPP)
	defer s.setPhase(phasePre)
	var data []byte
	for idx := uint8(0); idx < 64; idx++ {
		r, err := s.doOnce(ctx, wire.NetFnApp, wire.CmdGetChannelCipherSuites, []byte{wire.ChannelThis, 0, 0x80 | idx}, 0)
		if err != nil || r.Code != wire.CCOK || len(r.Data) < 1 {
			if idx == 0 {
				return defaultSuites, nil
			}
			break
		}
		data = append(data, r.Data[1:]...)
		if len(r.Data)-1 < 16 {
			break
		}
	}
	recs, _ := wire.ParseCipherSuiteRecords(data)
	have := map[uint8]bool{}
	for _, r := range recs {
		if !r.OEM && !have[r.ID] {
			have[r.ID] = true
			listed = append(listed, r.ID)
		}
	}
	for _, id := range defaultSuites {
		if have[id] {
			candidates = append(candidates, id)
		}
	}
	if len(candidates) == 0 {
		return defaultSuites, listed
	}
	return candidates, listed
}

// rakp runs Open Session and RAKP 1-4 for one cipher suite.
func (s *Session) rakp(ctx context.Context, suite wire.CipherSuite) error {
	q := s.cfg.Quirks
	tag := randByte()
	sidm := randUint32NonZero()
	priv := wire.PrivHighest
	if q.Has(QuirkOpenSessionPriv) {
		priv = s.cfg.Privilege
	}
	osReq := wire.OpenSessionRequest{Tag: tag, MaxPriv: priv, SIDm: sidm, Auth: suite.Auth, Integrity: suite.Integrity, Conf: suite.Conf}
	var osResp wire.OpenSessionResponse
	err := s.exchange(ctx, wire.PayloadOpenSessionReq, osReq.Append(nil), wire.PayloadOpenSessionResp, func(b []byte) bool {
		r, err := wire.ParseOpenSessionResponse(b)
		if err != nil || r.Tag != tag || (r.Status == wire.StatusOK && r.SIDm != sidm) {
			return false
		}
		osResp = r
		return true
	})
	if err != nil {
		return fmt.Errorf("open session: %w", err)
	}
	if osResp.Status != wire.StatusOK {
		return &SetupError{Stage: "open session", Status: osResp.Status}
	}
	if osResp.Auth != suite.Auth || osResp.Integrity != suite.Integrity || osResp.Conf != suite.Conf {
		return fmt.Errorf("open session: BMC chose %v/%v/%v instead of the proposed algorithms (downgrade refused): %w",
			osResp.Auth, osResp.Integrity, osResp.Conf, ErrProtocol)
	}
	if osResp.SIDc == 0 {
		return fmt.Errorf("open session: BMC session ID 0: %w", ErrProtocol)
	}

	h := wire.Handshake{SIDm: sidm, SIDc: osResp.SIDc, Role: uint8(s.cfg.Privilege) | wire.RoleNameOnly, User: []byte(s.cfg.User)}
	if q.Has(QuirkIntel20) {
		h.Role &^= wire.RoleNameOnly
		padded := make([]byte, wire.MaxUserLen)
		copy(padded, s.cfg.User)
		h.User = padded
	}
	randBytes(h.Rm[:])
	tag++
	r1 := wire.RAKP1{Tag: tag, SIDc: osResp.SIDc, Rm: h.Rm, Role: h.Role, User: h.User}
	var r2 wire.RAKP2
	err = s.exchange(ctx, wire.PayloadRAKP1, r1.Append(nil), wire.PayloadRAKP2, func(b []byte) bool {
		r, err := wire.ParseRAKP2(b)
		if err != nil || r.Tag != tag || (r.Status == wire.StatusOK && r.SIDm != sidm) {
			return false
		}
		r2 = r
		return true
	})
	if err != nil {
		return fmt.Errorf("RAKP1: %w", err)
	}
	if r2.Status != wire.StatusOK {
		return &SetupError{Stage: "RAKP2", Status: r2.Status}
	}
	h.Rc, h.GUID = r2.Rc, r2.GUID
	kuid := []byte(s.cfg.Password)
	if q.Has(QuirkIntel20) && suite.Auth == wire.AuthRAKPHMACMD5 && len(kuid) > 16 {
		kuid = kuid[:16]
	}
	code, n := r2.AuthCode, suite.Auth.CodeLen()
	if len(code) == n+1 && (q.Has(QuirkSupermicro20) || q.Has(QuirkSun20)) {
		code = code[:n]
	}
	if len(code) != n {
		return fmt.Errorf("RAKP2: auth code of %d bytes, want %d for %v: %w", len(code), n, suite.Auth, ErrProtocol)
	}
	if !constantTimeEqual(h.RAKP2Code(suite.Auth, kuid), code) {
		// Never answer with a valid RAKP3: the peer did not prove it
		// knows the password, and our proof would help it guess.
		return fmt.Errorf("RAKP2: BMC's proof does not match our password: %w", ErrAuth)
	}
	kg := kuid
	if len(s.cfg.KG) > 0 {
		kg = s.cfg.KG
	}
	sik := h.SIK(suite.Auth, kg)
	tag++
	r3 := wire.RAKP3{Tag: tag, SIDc: osResp.SIDc, AuthCode: h.RAKP3Code(suite.Auth, kuid)}
	var r4 wire.RAKP4
	err = s.exchange(ctx, wire.PayloadRAKP3, r3.Append(nil), wire.PayloadRAKP4, func(b []byte) bool {
		r, err := wire.ParseRAKP4(b)
		if err != nil || r.Tag != tag || (r.Status == wire.StatusOK && r.SIDm != sidm) {
			return false
		}
		r4 = r
		return true
	})
	if err != nil {
		return fmt.Errorf("RAKP3: %w", err)
	}
	if r4.Status != wire.StatusOK {
		if r4.Status == wire.StatusInvalidICV {
			return fmt.Errorf("RAKP4: BMC rejected our proof: %w", ErrAuth)
		}
		return &SetupError{Stage: "RAKP4", Status: r4.Status}
	}
	want := h.RAKP4ICV(suite.Auth, sik)
	got := r4.ICV
	if suite.Auth == wire.AuthRAKPNone && q.Has(QuirkIntegrityCheckValue) {
		got = nil
	}
	if len(got) < len(want) || !constantTimeEqual(want, got[:len(want)]) {
		if len(s.cfg.KG) == 0 {
			return fmt.Errorf("RAKP4: integrity check value mismatch (does the BMC need a K_g key?): %w", ErrKG)
		}
		return fmt.Errorf("RAKP4: integrity check value mismatch: %w", ErrKG)
	}
	keys := wire.SessionKeys(suite, sik, []byte(s.cfg.Password))
	clear(sik)
	s.mu.Lock()
	s.v2, s.suite, s.keys = true, suite, keys
	s.sid, s.sidm, s.outSeq, s.phase = osResp.SIDc, sidm, 1, phaseActive
	s.inAuth.reset(1) // the BMC's first packet in the session is number 1
	s.inUnauth.reset(1)
	s.mu.Unlock()
	return nil
}

// exchange sends one session-setup payload and waits for the answer that
// match accepts, retransmitting the identical packet on timeout.
func (s *Session) exchange(ctx context.Context, t wire.PayloadType, payload []byte, want wire.PayloadType, match func([]byte) bool) error {
	pkt := wire.RMCPHeader{Seq: wire.RMCPSeqNoACK, Class: wire.ClassIPMI}.Append(nil)
	pkt = wire.Packet20{Type: t, Payload: payload}.Append(pkt)
	timer := time.NewTimer(s.cfg.Timeout)
	defer timer.Stop()
	for try := 0; try <= s.cfg.Retries; try++ {
		if _, err := s.conn.Write(pkt); err != nil && s.Err() != nil {
			return ErrClosed
		}
		timer.Reset(s.cfg.Timeout)
	wait:
		for {
			select {
			case m := <-s.setup:
				if m.typ == want && match(m.payload) {
					return nil
				}
			case <-timer.C:
				break wait
			case <-ctx.Done():
				return ctx.Err()
			case <-s.done:
				return ErrClosed
			}
		}
	}
	return fmt.Errorf("%w after %d tries", ErrNoAnswer, s.cfg.Retries+1)
}
