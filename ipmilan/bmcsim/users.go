package bmcsim

import (
	"bytes"
	"crypto/subtle"
	"time"

	"github.com/solgate/solgate/ipmilan/internal/wire"
)

// User management (spec 22.26-22.30, 24.6, 24.7) and the dispatch of
// every configuration command.

// Configuration commands, for Faults.WrongAnswers.
var (
	CmdSetChannelAccess     = Command{0x06, wire.CmdSetChannelAccess}
	CmdGetChannelAccess     = Command{0x06, wire.CmdGetChannelAccess}
	CmdGetChannelInfo       = Command{0x06, wire.CmdGetChannelInfo}
	CmdSetUserAccess        = Command{0x06, wire.CmdSetUserAccess}
	CmdGetUserAccess        = Command{0x06, wire.CmdGetUserAccess}
	CmdSetUserName          = Command{0x06, wire.CmdSetUserName}
	CmdGetUserName          = Command{0x06, wire.CmdGetUserName}
	CmdSetUserPassword      = Command{0x06, wire.CmdSetUserPassword}
	CmdSetUserPayloadAccess = Command{0x06, wire.CmdSetUserPayloadAccess}
	CmdGetUserPayloadAccess = Command{0x06, wire.CmdGetUserPayloadAccess}
	CmdSetLANConfig         = Command{0x0C, wire.CmdSetLANConfigParam}
	CmdGetLANConfig         = Command{0x0C, wire.CmdGetLANConfigParam}
)

func init() {
	// Privileges from the spec's command table (appendix G).
	for c, p := range map[Command]Privilege{
		CmdGetChannelInfo: PrivUser, CmdGetChannelAccess: PrivUser, CmdSetChannelAccess: PrivAdmin,
		CmdGetUserAccess: PrivOperator, CmdSetUserAccess: PrivAdmin, CmdGetUserName: PrivOperator,
		CmdSetUserName: PrivAdmin, CmdSetUserPassword: PrivAdmin, CmdGetUserPayloadAccess: PrivOperator,
		CmdSetUserPayloadAccess: PrivAdmin, CmdGetLANConfig: PrivOperator, CmdSetLANConfig: PrivAdmin,
	} {
		minPriv[c] = p
	}
}

// configCommandLocked answers the configuration commands; ok is false
// for any other command. Every change that succeeds is written to the
// state file.
func (b *BMC) configCommandLocked(s *session, req wire.Request, now time.Time) (resp wire.Response, ok bool) {
	var changed bool
	switch commandOf(req) {
	case CmdGetChannelInfo:
		resp = b.channelInfoLocked(s, req)
	case CmdGetChannelAccess:
		resp = b.getChannelAccessLocked(s, req)
	case CmdSetChannelAccess:
		resp, changed = b.setChannelAccessLocked(s, req)
	case CmdGetUserAccess:
		resp = b.getUserAccessLocked(s, req)
	case CmdSetUserAccess:
		resp, changed = b.setUserAccessLocked(s, req)
	case CmdGetUserName:
		resp = b.getUserNameLocked(req)
	case CmdSetUserName:
		resp, changed = b.setUserNameLocked(req)
	case CmdSetUserPassword:
		resp, changed = b.setUserPasswordLocked(req)
	case CmdGetUserPayloadAccess:
		resp = b.getUserPayloadLocked(s, req)
	case CmdSetUserPayloadAccess:
		resp, changed = b.setUserPayloadLocked(s, req)
	case CmdGetLANConfig:
		resp = b.getLANParamLocked(s, req)
	case CmdSetLANConfig:
		resp, changed = b.setLANParamLocked(s, req)
	case CmdGetSOLConfig:
		resp = b.solConfigCommandLocked(s, req, now)
		// Force authentication (parameter 2 bit 6) is kept here.
		if resp.Code == wire.CCOK && len(req.Data) >= 2 && req.Data[0]&0x80 == 0 && req.Data[1] == solParamAuth && len(resp.Data) >= 2 && b.conf.solForceAuth {
			resp.Data = append([]byte(nil), resp.Data...)
			resp.Data[1] |= 0x40
		}
	case CmdSetSOLConfig:
		resp = b.solConfigCommandLocked(s, req, now)
		if resp.Code == wire.CCOK && len(req.Data) >= 3 && req.Data[1] == solParamAuth {
			b.conf.solForceAuth = req.Data[2]&0x40 != 0
		}
		changed = resp.Code == wire.CCOK && len(req.Data) >= 2 && req.Data[1] != solParamSetInProgress
	default:
		return wire.Response{}, false
	}
	if changed && resp.Code == wire.CCOK {
		b.saveStateLocked()
	}
	return resp, true
}

// lanChannelLocked checks the channel byte of a request: it must name the
// LAN channel (or ChannelThis from a LAN session).
func (b *BMC) lanChannelLocked(s *session, ch uint8) bool {
	return b.channelLocked(s, ch) == channelLAN
}

// userLocked returns the entry of user ID id, or nil.
func (b *BMC) userLocked(id uint8) *userEntry {
	id &= 0x3F
	if id < 1 || int(id) > len(b.conf.users) {
		return nil
	}
	return &b.conf.users[id-1]
}

func (b *BMC) getUserAccessLocked(s *session, req wire.Request) wire.Response {
	r, err := wire.ParseUserChannelRequest(req.Data)
	if err != nil {
		return respond(req, wire.CCBadLength, nil)
	}
	u := b.userLocked(r.UserID)
	if !b.lanChannelLocked(s, r.Channel) || u == nil {
		return respond(req, wire.CCInvalidField, nil)
	}
	a := wire.UserAccess{MaxIDs: uint8(len(b.conf.users)), CallbackOnly: u.callbackOnly, LinkAuth: u.linkAuth,
		IPMIMessaging: u.ipmiMsg, PrivLimit: u.MaxPriv, FixedNames: 1, Status: wire.UserStatusDisabled}
	if u.enabled {
		a.Status = wire.UserStatusEnabled
	}
	for i := range b.conf.users {
		if b.conf.users[i].enabled {
			a.EnabledIDs++
		}
	}
	return respond(req, wire.CCOK, a.Append(nil))
}

func (b *BMC) setUserAccessLocked(s *session, req wire.Request) (wire.Response, bool) {
	r, err := wire.ParseSetUserAccessRequest(req.Data)
	if err != nil {
		return respond(req, wire.CCBadLength, nil), false
	}
	u := b.userLocked(r.UserID)
	if !b.lanChannelLocked(s, r.Channel) || u == nil {
		return respond(req, wire.CCInvalidField, nil), false
	}
	if p := r.PrivLimit; p != PrivNoAccess && (p < PrivCallback || p > PrivOEM) {
		return respond(req, wire.CCInvalidField, nil), false
	}
	if r.ChangeBits {
		u.callbackOnly, u.linkAuth, u.ipmiMsg = r.CallbackOnly, r.LinkAuth, r.IPMIMessaging
	}
	u.MaxPriv = r.PrivLimit
	return respond(req, wire.CCOK, nil), true
}

func (b *BMC) getUserNameLocked(req wire.Request) wire.Response {
	if len(req.Data) < 1 {
		return respond(req, wire.CCBadLength, nil)
	}
	u := b.userLocked(req.Data[0])
	if u == nil {
		return respond(req, wire.CCInvalidField, nil)
	}
	n, _ := wire.UserNameOf(u.Name)
	return respond(req, wire.CCOK, n.Append(nil))
}

func (b *BMC) setUserNameLocked(req wire.Request) (wire.Response, bool) {
	r, err := wire.ParseSetUserNameRequest(req.Data)
	if err != nil {
		return respond(req, wire.CCBadLength, nil), false
	}
	u := b.userLocked(r.UserID)
	if u == nil || r.UserID == 1 { // user 1 is the null user: its name is fixed
		return respond(req, wire.CCInvalidField, nil), false
	}
	name := r.Name.String()
	if len(bytes.Trim(r.Name[len(name):], "\x00")) != 0 {
		return respond(req, wire.CCInvalidField, nil), false // bytes after the NUL padding
	}
	for i := range b.conf.users {
		if o := &b.conf.users[i]; o != u && name != "" && o.Name == name {
			return respond(req, wire.CCInvalidField, nil), false // names are unique
		}
	}
	u.Name = name
	return respond(req, wire.CCOK, nil), true
}

func (b *BMC) setUserPasswordLocked(req wire.Request) (wire.Response, bool) {
	r, err := wire.ParseSetUserPasswordRequest(req.Data)
	if err != nil {
		return respond(req, wire.CCBadLength, nil), false
	}
	u := b.userLocked(r.UserID)
	if u == nil {
		return respond(req, wire.CCInvalidField, nil), false
	}
	switch r.Op {
	case wire.PasswordDisableUser:
		u.enabled = false
	case wire.PasswordEnableUser:
		u.enabled = true
	case wire.PasswordSet:
		u.Password = string(bytes.TrimRight(r.Password, "\x00"))
		u.pw20 = r.Size20
	case wire.PasswordTest:
		if u.pw20 != r.Size20 {
			return respond(req, wire.CCPasswordWrongSize, nil), false
		}
		var want [20]byte
		copy(want[:], u.Password)
		n := len(r.Password)
		if subtle.ConstantTimeCompare(want[:n], r.Password) != 1 {
			return respond(req, wire.CCPasswordTestFailed, nil), false
		}
		return respond(req, wire.CCOK, nil), false
	}
	return respond(req, wire.CCOK, nil), true
}

func (b *BMC) getUserPayloadLocked(s *session, req wire.Request) wire.Response {
	r, err := wire.ParseUserChannelRequest(req.Data)
	if err != nil {
		return respond(req, wire.CCBadLength, nil)
	}
	u := b.userLocked(r.UserID)
	if !b.lanChannelLocked(s, r.Channel) || u == nil {
		return respond(req, wire.CCInvalidField, nil)
	}
	p := wire.PayloadAccess{OEM: u.oemPayloads}
	if u.sol {
		p.Standard = wire.PayloadSOLBit
	}
	return respond(req, wire.CCOK, p.Append(nil))
}

func (b *BMC) setUserPayloadLocked(s *session, req wire.Request) (wire.Response, bool) {
	r, err := wire.ParseSetUserPayloadAccessRequest(req.Data)
	if err != nil {
		if len(req.Data) < 6 {
			return respond(req, wire.CCBadLength, nil), false
		}
		return respond(req, wire.CCInvalidField, nil), false
	}
	u := b.userLocked(r.UserID)
	if !b.lanChannelLocked(s, r.Channel) || u == nil || r.Payloads.Standard&^wire.PayloadSOLBit != 0 {
		return respond(req, wire.CCInvalidField, nil), false // only SOL and the OEM payloads are known
	}
	if r.Payloads.SOL() {
		u.sol = !r.Disable
	}
	if r.Disable {
		u.oemPayloads &^= r.Payloads.OEM
	} else {
		u.oemPayloads |= r.Payloads.OEM
	}
	return respond(req, wire.CCOK, nil), true
}
