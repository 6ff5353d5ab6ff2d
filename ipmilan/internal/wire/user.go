package wire

import (
	"bytes"
	"fmt"
)

// UserEnableStatus is bits 7:6 of byte 2 of Get User Access (IPMI v2.0
// errata 3 and later; older BMCs say "unspecified").
type UserEnableStatus uint8

const (
	UserStatusUnspecified UserEnableStatus = 0
	UserStatusEnabled     UserEnableStatus = 1 // enabled with Set User Password
	UserStatusDisabled    UserEnableStatus = 2 // disabled with Set User Password
)

func (s UserEnableStatus) String() string {
	switch s {
	case UserStatusUnspecified:
		return "unknown"
	case UserStatusEnabled:
		return "enabled"
	case UserStatusDisabled:
		return "disabled"
	}
	return fmt.Sprintf("UserEnableStatus(%d)", uint8(s))
}

// UserAccess is the Get User Access response data (spec 22.27): the
// channel's user counts and one user's access on that channel.
type UserAccess struct {
	MaxIDs        uint8 // bits 5:0: user IDs the channel has
	EnabledIDs    uint8 // bits 5:0: user IDs enabled
	FixedNames    uint8 // bits 5:0: user IDs with fixed names (user 1 included)
	Status        UserEnableStatus
	CallbackOnly  bool // restricted to callback (bit 6)
	LinkAuth      bool // link authentication enabled (bit 5)
	IPMIMessaging bool // IPMI messaging enabled (bit 4)
	PrivLimit     Privilege
}

func userAccessBits(callback, link, msg bool) uint8 {
	var v uint8
	if callback {
		v |= 0x40
	}
	if link {
		v |= 0x20
	}
	if msg {
		v |= 0x10
	}
	return v
}

// Append encodes the response data (4 bytes).
func (u UserAccess) Append(b []byte) []byte {
	return append(b, u.MaxIDs&0x3F, u.EnabledIDs&0x3F|uint8(u.Status&3)<<6, u.FixedNames&0x3F,
		userAccessBits(u.CallbackOnly, u.LinkAuth, u.IPMIMessaging)|uint8(u.PrivLimit)&0x0F)
}

// ParseUserAccess decodes the response data.
func ParseUserAccess(b []byte) (UserAccess, error) {
	if len(b) < 4 {
		return UserAccess{}, shortErr("Get User Access response", 4, len(b))
	}
	return UserAccess{
		MaxIDs: b[0] & 0x3F, EnabledIDs: b[1] & 0x3F, Status: UserEnableStatus(b[1] >> 6), FixedNames: b[2] & 0x3F,
		CallbackOnly: b[3]&0x40 != 0, LinkAuth: b[3]&0x20 != 0, IPMIMessaging: b[3]&0x10 != 0,
		PrivLimit: Privilege(b[3] & 0x0F),
	}, nil
}

// UserChannelRequest is the request of Get User Access and Get User
// Payload Access: a channel and a user ID.
type UserChannelRequest struct {
	Channel uint8 // bits 3:0
	UserID  uint8 // bits 5:0
}

// Append encodes the request data (2 bytes).
func (r UserChannelRequest) Append(b []byte) []byte { return append(b, r.Channel&0x0F, r.UserID&0x3F) }

// ParseUserChannelRequest decodes the request data.
func ParseUserChannelRequest(b []byte) (UserChannelRequest, error) {
	if len(b) < 2 {
		return UserChannelRequest{}, shortErr("user and channel request", 2, len(b))
	}
	return UserChannelRequest{Channel: b[0] & 0x0F, UserID: b[1] & 0x3F}, nil
}

// SetUserAccessRequest is the Set User Access request (spec 22.26).
type SetUserAccessRequest struct {
	Channel uint8
	UserID  uint8
	// ChangeBits (byte 1 bit 7) says whether CallbackOnly, LinkAuth and
	// IPMIMessaging are to be written; the privilege limit always is.
	ChangeBits    bool
	CallbackOnly  bool
	LinkAuth      bool
	IPMIMessaging bool
	PrivLimit     Privilege // PrivNoAccess removes the user's access to the channel
	// SessionLimit (byte 4, optional) limits the user's simultaneous
	// sessions; 0 means none or not sent.
	SessionLimit uint8
}

// Append encodes the request data: 3 bytes, or 4 with a session limit.
func (r SetUserAccessRequest) Append(b []byte) []byte {
	c := r.Channel&0x0F | userAccessBits(r.CallbackOnly, r.LinkAuth, r.IPMIMessaging)
	if r.ChangeBits {
		c |= 0x80
	}
	b = append(b, c, r.UserID&0x3F, uint8(r.PrivLimit)&0x0F)
	if r.SessionLimit != 0 {
		b = append(b, r.SessionLimit&0x0F)
	}
	return b
}

// ParseSetUserAccessRequest decodes the request data.
func ParseSetUserAccessRequest(b []byte) (SetUserAccessRequest, error) {
	if len(b) < 3 {
		return SetUserAccessRequest{}, shortErr("Set User Access request", 3, len(b))
	}
	r := SetUserAccessRequest{Channel: b[0] & 0x0F, ChangeBits: b[0]&0x80 != 0, CallbackOnly: b[0]&0x40 != 0,
		LinkAuth: b[0]&0x20 != 0, IPMIMessaging: b[0]&0x10 != 0, UserID: b[1] & 0x3F, PrivLimit: Privilege(b[2] & 0x0F)}
	if len(b) >= 4 {
		r.SessionLimit = b[3] & 0x0F
	}
	return r, nil
}

// UserName is a user name as Get/Set User Name carry it: 16 bytes, padded
// with NULs.
type UserName [UserNameLen]byte

// UserNameOf pads name; ok is false when it is longer than 16 bytes or
// holds a NUL.
func UserNameOf(name string) (UserName, bool) {
	var n UserName
	if len(name) > UserNameLen || bytes.IndexByte([]byte(name), 0) >= 0 {
		return n, false
	}
	copy(n[:], name)
	return n, true
}

// String is the name without its padding.
func (n UserName) String() string {
	if i := bytes.IndexByte(n[:], 0); i >= 0 {
		return string(n[:i])
	}
	return string(n[:])
}

// Append encodes the name (16 bytes).
func (n UserName) Append(b []byte) []byte { return append(b, n[:]...) }

// ParseUserName decodes the Get User Name response data.
func ParseUserName(b []byte) (UserName, error) {
	if len(b) < UserNameLen {
		return UserName{}, shortErr("Get User Name response", UserNameLen, len(b))
	}
	return UserName(b[:UserNameLen]), nil
}

// SetUserNameRequest is the Set User Name request (spec 22.28).
type SetUserNameRequest struct {
	UserID uint8
	Name   UserName
}

// Append encodes the request data (17 bytes).
func (r SetUserNameRequest) Append(b []byte) []byte { return r.Name.Append(append(b, r.UserID&0x3F)) }

// ParseSetUserNameRequest decodes the request data.
func ParseSetUserNameRequest(b []byte) (SetUserNameRequest, error) {
	if len(b) < 1+UserNameLen {
		return SetUserNameRequest{}, shortErr("Set User Name request", 1+UserNameLen, len(b))
	}
	return SetUserNameRequest{UserID: b[0] & 0x3F, Name: UserName(b[1 : 1+UserNameLen])}, nil
}

// PasswordOp is the operation of Set User Password (byte 2 bits 1:0).
type PasswordOp uint8

const (
	PasswordDisableUser PasswordOp = 0
	PasswordEnableUser  PasswordOp = 1
	PasswordSet         PasswordOp = 2
	PasswordTest        PasswordOp = 3
)

func (o PasswordOp) String() string {
	return [...]string{"disable user", "enable user", "set password", "test password"}[o&3]
}

// SetUserPasswordRequest is the Set User Password request (spec 22.30).
type SetUserPasswordRequest struct {
	UserID uint8
	Op     PasswordOp
	// Size20 stores (or tests) the password in the 20-byte form of IPMI
	// v2.0 (byte 1 bit 7); else the 16-byte form, usable by IPMI v1.5 too.
	Size20 bool
	// Password is sent NUL-padded to 16 or 20 bytes for PasswordSet and
	// PasswordTest and not at all for the other operations. Callers
	// check its length; longer passwords are cut.
	Password []byte
}

// Append encodes the request data: 2 bytes, then 16 or 20 of password
// for set and test.
func (r SetUserPasswordRequest) Append(b []byte) []byte {
	id := r.UserID & 0x3F
	if r.Size20 {
		id |= 0x80
	}
	b = append(b, id, uint8(r.Op&3))
	if r.Op == PasswordSet || r.Op == PasswordTest {
		n := 16
		if r.Size20 {
			n = 20
		}
		var pw [20]byte
		copy(pw[:n], r.Password)
		b = append(b, pw[:n]...)
		clear(pw[:])
	}
	return b
}

// ParseSetUserPasswordRequest decodes the request data. For set and test
// the password must be 16 or 20 bytes as the size bit says (IPMI v1.5
// BMCs never set the bit); its padding is kept.
func ParseSetUserPasswordRequest(b []byte) (SetUserPasswordRequest, error) {
	if len(b) < 2 {
		return SetUserPasswordRequest{}, shortErr("Set User Password request", 2, len(b))
	}
	r := SetUserPasswordRequest{UserID: b[0] & 0x3F, Size20: b[0]&0x80 != 0, Op: PasswordOp(b[1] & 3)}
	if r.Op == PasswordSet || r.Op == PasswordTest {
		n := 16
		if r.Size20 {
			n = 20
		}
		if len(b) != 2+n {
			return SetUserPasswordRequest{}, fmt.Errorf("wire: Set User Password request: password of %d bytes, want %d", len(b)-2, n)
		}
		r.Password = b[2:]
	}
	return r, nil
}

// PayloadAccess is a user's payload enables (Get User Payload Access
// response, spec 24.7): Standard bit n enables payload type n (bit 1 is
// SOL; bit 0 is reserved), OEM bit n enables OEM payload 0x20+n.
type PayloadAccess struct {
	Standard uint8
	OEM      uint8
}

// PayloadSOLBit is the bit of the SOL payload in PayloadAccess.Standard.
const PayloadSOLBit = 1 << PayloadSOL

// SOL reports whether the SOL payload is enabled.
func (p PayloadAccess) SOL() bool { return p.Standard&PayloadSOLBit != 0 }

// Append encodes the response data (4 bytes).
func (p PayloadAccess) Append(b []byte) []byte { return append(b, p.Standard&0xFE, 0, p.OEM, 0) }

// ParsePayloadAccess decodes the response data.
func ParsePayloadAccess(b []byte) (PayloadAccess, error) {
	if len(b) < 4 {
		return PayloadAccess{}, shortErr("Get User Payload Access response", 4, len(b))
	}
	return PayloadAccess{Standard: b[0] & 0xFE, OEM: b[2]}, nil
}

// SetUserPayloadAccessRequest is the Set User Payload Access request (spec
// 24.6): enable or disable the payloads whose bits are set, leaving the
// others as they are.
type SetUserPayloadAccessRequest struct {
	Channel  uint8
	UserID   uint8
	Disable  bool // operation (byte 2 bits 7:6): 0 enable, 1 disable
	Payloads PayloadAccess
}

// Append encodes the request data (6 bytes).
func (r SetUserPayloadAccessRequest) Append(b []byte) []byte {
	u := r.UserID & 0x3F
	if r.Disable {
		u |= 0x40
	}
	return append(b, r.Channel&0x0F, u, r.Payloads.Standard&0xFE, 0, r.Payloads.OEM, 0)
}

// ParseSetUserPayloadAccessRequest decodes the request data.
func ParseSetUserPayloadAccessRequest(b []byte) (SetUserPayloadAccessRequest, error) {
	if len(b) < 6 {
		return SetUserPayloadAccessRequest{}, shortErr("Set User Payload Access request", 6, len(b))
	}
	if op := b[1] >> 6; op > 1 {
		return SetUserPayloadAccessRequest{}, fmt.Errorf("wire: Set User Payload Access request: operation %d, want 0 (enable) or 1 (disable)", op)
	}
	return SetUserPayloadAccessRequest{Channel: b[0] & 0x0F, UserID: b[1] & 0x3F, Disable: b[1]&0x40 != 0,
		Payloads: PayloadAccess{Standard: b[2] & 0xFE, OEM: b[4]}}, nil
}
