package wire

import (
	"fmt"
	"strings"
)

// Channel medium types (spec table 6-3) of Get Channel Info.
const (
	MediumIPMB            = 0x01
	MediumLAN             = 0x04 // 802.3 LAN
	MediumSerial          = 0x05
	MediumOtherLAN        = 0x06
	MediumSystemInterface = 0x0C
)

// ChannelInfo is the Get Channel Info response data (spec 22.24).
type ChannelInfo struct {
	Channel        uint8 // actual channel number (bits 3:0)
	Medium         uint8 // bits 6:0
	Protocol       uint8 // bits 4:0
	SessionSupport uint8 // bits 7:6 of byte 4: 0 session-less, 1 single, 2 multi, 3 session-based
	ActiveSessions uint8 // bits 5:0
	VendorIANA     uint32
	Aux            [2]byte
}

// Append encodes the response data (9 bytes).
func (c ChannelInfo) Append(b []byte) []byte {
	b = append(b, c.Channel&0x0F, c.Medium&0x7F, c.Protocol&0x1F, c.SessionSupport<<6|c.ActiveSessions&0x3F)
	b = append(b, uint8(c.VendorIANA), uint8(c.VendorIANA>>8), uint8(c.VendorIANA>>16))
	return append(b, c.Aux[:]...)
}

// ParseChannelInfo decodes the response data.
func ParseChannelInfo(b []byte) (ChannelInfo, error) {
	if len(b) < 9 {
		return ChannelInfo{}, shortErr("Get Channel Info response", 9, len(b))
	}
	return ChannelInfo{
		Channel: b[0] & 0x0F, Medium: b[1] & 0x7F, Protocol: b[2] & 0x1F,
		SessionSupport: b[3] >> 6, ActiveSessions: b[3] & 0x3F,
		VendorIANA: uint32(b[4]) | uint32(b[5])<<8 | uint32(b[6])<<16, Aux: [2]byte{b[7], b[8]},
	}, nil
}

// AccessMode is a channel's IPMI messaging access mode (bits 2:0).
type AccessMode uint8

const (
	AccessDisabled AccessMode = 0
	AccessPreBoot  AccessMode = 1 // available only while the system is in pre-boot
	AccessAlways   AccessMode = 2
	AccessShared   AccessMode = 3
)

var accessModeNames = [...]string{"disabled", "preboot", "always", "shared"}

func (m AccessMode) String() string {
	if int(m) < len(accessModeNames) {
		return accessModeNames[m]
	}
	return fmt.Sprintf("AccessMode(%d)", uint8(m))
}

// ParseAccessModeName maps a name String prints back to an AccessMode.
func ParseAccessModeName(s string) (AccessMode, bool) {
	for i, n := range accessModeNames {
		if strings.EqualFold(s, n) {
			return AccessMode(i), true
		}
	}
	return 0, false
}

// ChannelAccess is a channel's access settings (Get Channel Access
// response, spec 22.23). The spec's bits say "disabled"; these fields are
// named for what they disable.
type ChannelAccess struct {
	Mode          AccessMode
	UserAuthOff   bool // user-level authentication disabled (bit 3)
	PerMsgAuthOff bool // per-message authentication disabled (bit 4)
	AlertingOff   bool // PEF alerting disabled (bit 5)
	PrivLimit     Privilege
}

func (a ChannelAccess) byte1() uint8 {
	v := uint8(a.Mode) & 0x07
	if a.UserAuthOff {
		v |= 0x08
	}
	if a.PerMsgAuthOff {
		v |= 0x10
	}
	if a.AlertingOff {
		v |= 0x20
	}
	return v
}

func channelAccessOf(b0, b1 uint8) ChannelAccess {
	return ChannelAccess{Mode: AccessMode(b0 & 0x07), UserAuthOff: b0&0x08 != 0,
		PerMsgAuthOff: b0&0x10 != 0, AlertingOff: b0&0x20 != 0, PrivLimit: Privilege(b1 & 0x0F)}
}

// Append encodes the Get Channel Access response data (2 bytes).
func (a ChannelAccess) Append(b []byte) []byte {
	return append(b, a.byte1(), uint8(a.PrivLimit)&0x0F)
}

// ParseChannelAccess decodes the Get Channel Access response data.
func ParseChannelAccess(b []byte) (ChannelAccess, error) {
	if len(b) < 2 {
		return ChannelAccess{}, shortErr("Get Channel Access response", 2, len(b))
	}
	return channelAccessOf(b[0], b[1]), nil
}

// AccessTarget selects which copy of a channel's settings a Set Channel
// Access writes (bits 7:6) and a Get Channel Access reads.
type AccessTarget uint8

const (
	AccessNoChange    AccessTarget = 0 // Set: leave this part alone
	AccessNonVolatile AccessTarget = 1
	AccessVolatile    AccessTarget = 2 // the active settings
)

func (t AccessTarget) String() string {
	switch t {
	case AccessNoChange:
		return "no change"
	case AccessNonVolatile:
		return "non-volatile"
	case AccessVolatile:
		return "volatile"
	}
	return fmt.Sprintf("AccessTarget(%d)", uint8(t))
}

// GetChannelAccessRequest is the Get Channel Access request.
type GetChannelAccessRequest struct {
	Channel uint8
	Target  AccessTarget // AccessNonVolatile or AccessVolatile
}

// Append encodes the request data.
func (r GetChannelAccessRequest) Append(b []byte) []byte {
	return append(b, r.Channel&0x0F, uint8(r.Target&3)<<6)
}

// ParseGetChannelAccessRequest decodes the request data.
func ParseGetChannelAccessRequest(b []byte) (GetChannelAccessRequest, error) {
	if len(b) < 2 {
		return GetChannelAccessRequest{}, shortErr("Get Channel Access request", 2, len(b))
	}
	return GetChannelAccessRequest{Channel: b[0] & 0x0F, Target: AccessTarget(b[1] >> 6)}, nil
}

// SetChannelAccessRequest is the Set Channel Access request (spec 22.22):
// the access bits and the privilege limit, each written to the copies
// its target says.
type SetChannelAccessRequest struct {
	Channel   uint8
	Access    ChannelAccess
	AccessSet AccessTarget // where the mode and the three bits go
	PrivSet   AccessTarget // where the privilege limit goes
}

// Append encodes the request data (3 bytes).
func (r SetChannelAccessRequest) Append(b []byte) []byte {
	return append(b, r.Channel&0x0F, r.Access.byte1()|uint8(r.AccessSet&3)<<6,
		uint8(r.Access.PrivLimit)&0x0F|uint8(r.PrivSet&3)<<6)
}

// ParseSetChannelAccessRequest decodes the request data.
func ParseSetChannelAccessRequest(b []byte) (SetChannelAccessRequest, error) {
	if len(b) < 3 {
		return SetChannelAccessRequest{}, shortErr("Set Channel Access request", 3, len(b))
	}
	return SetChannelAccessRequest{Channel: b[0] & 0x0F, Access: channelAccessOf(b[1], b[2]),
		AccessSet: AccessTarget(b[1] >> 6), PrivSet: AccessTarget(b[2] >> 6)}, nil
}

// CipherSuitesRequest is the Get Channel Cipher Suites request (spec
// 22.15).
type CipherSuitesRequest struct {
	Channel     uint8
	PayloadType PayloadType
	Index       uint8 // list index (bits 5:0), 16 bytes of record data per index
	BySuite     bool  // bit 7: list algorithms by cipher suite (records), else supported algorithms
}

// Append encodes the request data.
func (r CipherSuitesRequest) Append(b []byte) []byte {
	i := r.Index & 0x3F
	if r.BySuite {
		i |= 0x80
	}
	return append(b, r.Channel&0x0F, uint8(r.PayloadType)&0x3F, i)
}

// ParseCipherSuitesRequest decodes the request data.
func ParseCipherSuitesRequest(b []byte) (CipherSuitesRequest, error) {
	if len(b) < 3 {
		return CipherSuitesRequest{}, shortErr("Get Channel Cipher Suites request", 3, len(b))
	}
	return CipherSuitesRequest{Channel: b[0] & 0x0F, PayloadType: PayloadType(b[1] & 0x3F),
		Index: b[2] & 0x3F, BySuite: b[2]&0x80 != 0}, nil
}

// AppendCipherSuiteRecords encodes records as Get Channel Cipher Suites
// lists them; ParseCipherSuiteRecords decodes them.
func AppendCipherSuiteRecords(b []byte, recs []CipherSuiteRecord) []byte {
	for _, r := range recs {
		if r.OEM {
			b = append(b, 0xC1, r.ID, uint8(r.OEMIANA), uint8(r.OEMIANA>>8), uint8(r.OEMIANA>>16))
		} else {
			b = append(b, 0xC0, r.ID)
		}
		for _, a := range r.Auth {
			b = append(b, uint8(a)&0x3F)
		}
		for _, a := range r.Integrity {
			b = append(b, 0x40|uint8(a)&0x3F)
		}
		for _, a := range r.Conf {
			b = append(b, 0x80|uint8(a)&0x3F)
		}
	}
	return b
}
