package bmcsim

import (
	"bytes"
	"encoding/binary"
	"net"
	"time"

	"github.com/solgate/solgate/ipmilan/internal/wire"
)

// minPriv is the privilege each in-session command needs (IPMI spec
// appendix G). Commands not listed need USER and are answered 0xC1.
var minPriv = map[Command]Privilege{
	CmdGetDeviceID:            PrivUser,
	CmdGetSystemGUID:          PrivUser,
	CmdGetChannelAuthCaps:     PrivCallback,
	CmdGetChannelCipherSuites: PrivCallback,
	CmdActivateSession:        PrivCallback,
	CmdSetSessionPrivilege:    PrivUser,
	CmdCloseSession:           PrivCallback,
	CmdGetSessionInfo:         PrivUser,
	CmdGetChassisStatus:       PrivUser,
	CmdChassisControl:         PrivOperator,
	CmdChassisIdentify:        PrivOperator,
	CmdSetBootOptions:         PrivOperator,
	CmdGetBootOptions:         PrivOperator,
	CmdSetSOLConfig:           PrivAdmin,
	CmdGetSOLConfig:           PrivUser,
}

// stateChanging commands are not executed twice when a client
// retransmits them (same rqSeq, command and data): the first response is
// replayed.
var stateChanging = map[Command]bool{CmdChassisControl: true, CmdSetBootOptions: true, CmdChassisIdentify: true}

func respond(req wire.Request, code wire.CompletionCode, data []byte) wire.Response {
	return wire.Response{
		RqAddr: req.RqAddr, NetFn: req.NetFn | 1, RqLUN: req.RqLUN, RsAddr: req.RsAddr,
		RqSeq: req.RqSeq, RsLUN: req.RsLUN, Cmd: req.Cmd, Code: code, Data: data,
	}
}

func commandOf(req wire.Request) Command { return Command{uint8(req.NetFn), req.Cmd} }

// preSessionLocked answers the commands allowed outside a session. ok is
// false for anything else (which is answered 0xD5 by the caller).
func (b *BMC) preSessionLocked(req wire.Request) wire.Response {
	c := commandOf(req)
	if a, ok := b.faults.Load().wrongAnswer(c); ok {
		return respond(req, wire.CompletionCode(a.Code), a.Data)
	}
	switch c {
	case CmdGetChannelAuthCaps:
		return b.authCaps(req)
	case CmdGetChannelCipherSuites:
		return b.cipherSuites(req)
	case CmdGetSystemGUID:
		return respond(req, wire.CCOK, b.cfg.GUID[:])
	case CmdGetSessionChallenge:
		if !b.cfg.Allow15 {
			return respond(req, wire.CCInvalidCommand, nil)
		}
		return b.sessionChallengeLocked(req)
	}
	return respond(req, wire.CCNotSupportedState, nil)
}

func (b *BMC) authTypes15() uint8 {
	if !b.cfg.Allow15 {
		return 0
	}
	t := uint8(1<<wire.AuthMD5 | 1<<wire.AuthPassword)
	if b.cfg.AllowAuthNone {
		t |= 1 << wire.AuthNone
	}
	return t
}

func (b *BMC) authCaps(req wire.Request) wire.Response {
	r, err := wire.ParseAuthCapsRequest(req.Data)
	if err != nil {
		return respond(req, wire.CCBadLength, nil)
	}
	if r.Channel != wire.ChannelThis && r.Channel != channelLAN {
		return respond(req, wire.CCInvalidField, nil)
	}
	if r.MaxPriv == 0 || r.MaxPriv > wire.PrivOEM {
		return respond(req, wire.CCInvalidField, nil)
	}
	if r.Extended && b.cfg.Quirks.NoExtendedAuthCaps {
		return respond(req, wire.CCInvalidField, nil)
	}
	caps := wire.AuthCaps{Channel: channelLAN, AuthTypes: b.authTypes15(), Extended: r.Extended,
		KGSet: b.kg != nil, OEMIANA: b.cfg.ManufacturerID & 0xFFFFFF}
	caps.PerMsgAuthOff, caps.UserAuthOff = b.conf.chanV.PerMsgAuthOff, b.conf.chanV.UserAuthOff
	for _, u := range b.conf.users {
		if !u.usable() {
			continue
		}
		switch {
		case u.Name != "":
			caps.NonNullUsers = true
		case u.Password == "":
			caps.Anonymous = true
		default:
			caps.NullUsers = true
		}
	}
	if r.Extended {
		caps.IPMI15, caps.IPMI20 = b.cfg.Allow15, true
	}
	return respond(req, wire.CCOK, caps.Append(nil))
}

// cipherSuiteData is the record data Get Channel Cipher Suites pages
// through: list-by-suite records, or the list of supported algorithms.
func (b *BMC) cipherSuiteData(bySuite bool) []byte {
	var out []byte
	if bySuite {
		for _, id := range b.cfg.CipherSuites {
			if !b.suiteEnabledLocked(id) {
				continue
			}
			out = wire.AppendCipherSuiteRecord(out, b.suites[id])
		}
		return out
	}
	seen := map[byte]bool{}
	for _, id := range b.cfg.CipherSuites {
		if !b.suiteEnabledLocked(id) {
			continue
		}
		s := b.suites[id]
		for _, a := range []byte{uint8(s.Auth), 0x40 | uint8(s.Integrity), 0x80 | uint8(s.Conf)} {
			if !seen[a] {
				seen[a] = true
				out = append(out, a)
			}
		}
	}
	return out
}

func (b *BMC) cipherSuites(req wire.Request) wire.Response {
	if b.cfg.Quirks.NoCipherSuiteList {
		return respond(req, wire.CCInvalidCommand, nil)
	}
	d := req.Data
	if len(d) < 3 {
		return respond(req, wire.CCBadLength, nil)
	}
	if ch := d[0] & 0x0F; ch != wire.ChannelThis && ch != channelLAN {
		return respond(req, wire.CCInvalidField, nil)
	}
	if pt := wire.PayloadType(d[1] & 0x3F); pt != wire.PayloadIPMI && pt != wire.PayloadSOL {
		return respond(req, wire.CCInvalidField, nil)
	}
	all := b.cipherSuiteData(d[2]&0x80 != 0)
	start := int(d[2]&0x3F) * 16
	out := []byte{channelLAN}
	if start < len(all) {
		out = append(out, all[start:min(start+16, len(all))]...)
	}
	return respond(req, wire.CCOK, out)
}

// commandLocked executes an in-session request. closeAfter asks the
// caller to close the session once the response is sealed (Close
// Session answers inside the session it ends).
func (b *BMC) commandLocked(s *session, req wire.Request, from net.Addr, now time.Time) (resp wire.Response, closeAfter *session) {
	b.stats.commands.Add(1)
	c := commandOf(req)
	need, known := minPriv[c]
	if !known {
		need = PrivUser
	}
	if s.priv < need {
		return respond(req, wire.CCInsufficientPriv, nil), nil
	}
	if a, ok := b.faults.Load().wrongAnswer(c); ok {
		return respond(req, wire.CompletionCode(a.Code), a.Data), nil
	}
	if stateChanging[c] {
		key := append([]byte{req.RqSeq, uint8(req.NetFn), req.Cmd}, req.Data...)
		if bytes.Equal(key, s.dupReq) && now.Sub(s.dupAt) < dupWindow {
			return s.dupResp, nil
		}
		defer func() {
			s.dupReq, s.dupResp, s.dupAt = key, resp, now
		}()
	}
	b.chassis.advance(now)
	switch c {
	case CmdGetDeviceID:
		return respond(req, wire.CCOK, b.deviceID().Append(nil)), nil
	case CmdGetSystemGUID:
		return respond(req, wire.CCOK, b.cfg.GUID[:]), nil
	case CmdGetChannelAuthCaps:
		return b.authCaps(req), nil
	case CmdGetChannelCipherSuites:
		return b.cipherSuites(req), nil
	case CmdActivateSession:
		// A retransmitted Activate Session inside the new session:
		// answer as the first time (ipmi_sim does the same).
		if s.v20 || len(req.Data) < 22 {
			return respond(req, wire.CCNotSupportedState, nil), nil
		}
		a := wire.ActivateSessionResponse{AuthType: s.authType, SessionID: s.id, InSeq: s.in15Start, MaxPriv: wire.Privilege(s.maxPriv)}
		return respond(req, wire.CCOK, a.Append(nil)), nil
	case CmdSetSessionPrivilege:
		return b.setPrivilege(s, req), nil
	case CmdCloseSession:
		return b.closeSessionCmdLocked(s, req)
	case CmdGetSessionInfo:
		return b.sessionInfoLocked(s, req, from), nil
	case CmdGetChassisStatus:
		return respond(req, wire.CCOK, b.chassis.status().Append(nil)), nil
	case CmdChassisControl:
		if len(req.Data) < 1 {
			return respond(req, wire.CCBadLength, nil), nil
		}
		op := wire.ChassisControl(req.Data[0] & 0x0F)
		cc := b.chassis.control(op, now, &b.cfg)
		b.log.Debug("chassis control", "op", op.String(), "code", uint8(cc), "power", b.chassis.on)
		return respond(req, cc, nil), nil
	case CmdChassisIdentify:
		b.chassis.identify = len(req.Data) >= 2 && req.Data[1]&1 != 0 || len(req.Data) >= 1 && req.Data[0] != 0
		return respond(req, wire.CCOK, nil), nil
	case CmdSetBootOptions:
		return respond(req, b.chassis.setBootOption(req.Data), nil), nil
	case CmdGetBootOptions:
		cc, d := b.chassis.getBootOption(req.Data)
		return respond(req, cc, d), nil
	}
	if r, ok := b.configCommandLocked(s, req, now); ok {
		return r, nil
	}
	if req.NetFn == wire.NetFnApp && req.Cmd >= wire.CmdActivatePayload && req.Cmd <= wire.CmdGetChannelPayloadVer {
		return b.payloadCommandLocked(s, req, now), nil
	}
	return respond(req, wire.CCInvalidCommand, nil), nil
}

func (b *BMC) deviceID() wire.DeviceID {
	return wire.DeviceID{
		DeviceID: 0x20, DeviceRevision: 0x01, FirmwareMajor: 1, FirmwareMinor: 0x00,
		IPMIVersion: 0x02, AdditionalSupp: 0x80, // chassis device
		ManufacturerID: b.cfg.ManufacturerID & 0xFFFFF, ProductID: b.cfg.ProductID,
	}
}

func (b *BMC) setPrivilege(s *session, req wire.Request) wire.Response {
	if len(req.Data) < 1 {
		return respond(req, wire.CCBadLength, nil)
	}
	p := Privilege(req.Data[0] & 0x0F)
	switch {
	case p == 0:
		p = s.priv
	case p == PrivCallback:
		return respond(req, 0x80, nil) // not available: sessions stay at USER or above
	case p > PrivOEM:
		return respond(req, wire.CCInvalidField, nil)
	case p > s.maxPriv:
		return respond(req, 0x81, nil) // exceeds the user's or channel's limit
	}
	s.priv = p
	return respond(req, wire.CCOK, []byte{uint8(p)})
}

func (b *BMC) closeSessionCmdLocked(s *session, req wire.Request) (wire.Response, *session) {
	d := req.Data
	if len(d) < 4 {
		return respond(req, wire.CCBadLength, nil), nil
	}
	id := binary.LittleEndian.Uint32(d)
	var target *session
	if id == 0 {
		if len(d) < 5 {
			return respond(req, wire.CCBadLength, nil), nil
		}
		for _, o := range b.sessions {
			if o.handle == d[4] && o.state == stateActive {
				target = o
			}
		}
		if target == nil {
			return respond(req, 0x88, nil), nil // invalid session handle
		}
	} else {
		target = b.sessions[id]
		if target == nil || target.state != stateActive {
			return respond(req, 0x87, nil), nil // invalid session ID
		}
	}
	if target != s && s.priv < PrivAdmin {
		return respond(req, wire.CCInsufficientPriv, nil), nil
	}
	return respond(req, wire.CCOK, nil), target
}

func (b *BMC) sessionInfoLocked(s *session, req wire.Request, from net.Addr) wire.Response {
	d := req.Data
	if len(d) < 1 {
		return respond(req, wire.CCBadLength, nil)
	}
	var active []*session
	for _, o := range b.sessions {
		if o.state == stateActive {
			active = append(active, o)
		}
	}
	var target *session
	switch idx := d[0]; {
	case idx == 0:
		target = s
	case idx == 0xFF:
		if len(d) < 5 {
			return respond(req, wire.CCBadLength, nil)
		}
		if o := b.sessions[binary.LittleEndian.Uint32(d[1:])]; o != nil && o.state == stateActive {
			target = o
		}
	case idx == 0xFE:
		if len(d) < 2 {
			return respond(req, wire.CCBadLength, nil)
		}
		if d[1] == 0 || d[1] > maxSessionsLimit {
			return respond(req, wire.CCInvalidField, nil)
		}
		for _, o := range active {
			if o.handle == d[1] {
				target = o
			}
		}
	default:
		// The n-th active session, in handle order.
		n := 0
		for h := uint8(1); h <= maxSessionsLimit && target == nil; h++ {
			for _, o := range active {
				if o.handle == h {
					if n++; n == int(idx) {
						target = o
					}
				}
			}
		}
	}
	info := wire.SessionInfo{MaxSessions: uint8(b.cfg.MaxSessions), Active: uint8(len(active))}
	if target == nil {
		return respond(req, wire.CCOK, info.Append(nil)[:3])
	}
	info.Handle = target.handle
	info.UserID = uint8(target.userIdx + 1)
	info.Privilege = wire.Privilege(target.priv)
	info.IPMI20 = target.v20
	info.Channel = channelLAN
	// 802.3 LAN extra: remote IP (MS byte first), MAC, port (LS byte first).
	extra := make([]byte, 12)
	if ua, ok := target.remote.(*net.UDPAddr); ok {
		if ip4 := ua.IP.To4(); ip4 != nil {
			copy(extra, ip4)
		}
		binary.LittleEndian.PutUint16(extra[10:], uint16(ua.Port))
	}
	info.Extra = extra
	return respond(req, wire.CCOK, info.Append(nil))
}

// encodeResponseLocked encodes an IPMI response message, corrupting it if
// the quirks or the fault in effect for this answer ask for it.
func (b *BMC) encodeResponseLocked(resp wire.Response, g GarbageKind) []byte {
	if g == GarbageWrongSeq {
		resp.RqSeq = (resp.RqSeq + 1 + uint8(b.stats.packetsIn.Load()%62)) & 0x3F
	}
	m := resp.Append(nil)
	if b.cfg.Quirks.BadChecksum || g == GarbageBadChecksum {
		m[len(m)-1] ^= 0x5A
	}
	return m
}
