package wire

import (
	"crypto/md5"
	"encoding/binary"
	"fmt"
)

// AuthType is the IPMI v1.5 authentication type (spec 13.6). The value 6
// in the same header position marks an RMCP+ (v2.0) packet instead.
type AuthType uint8

const (
	AuthNone     AuthType = 0x00
	AuthMD2      AuthType = 0x01
	AuthMD5      AuthType = 0x02
	AuthPassword AuthType = 0x04 // straight password, sent in clear
	AuthOEM      AuthType = 0x05
	AuthRMCPPlus AuthType = 0x06
)

func (a AuthType) String() string {
	switch a {
	case AuthNone:
		return "none"
	case AuthMD2:
		return "md2"
	case AuthMD5:
		return "md5"
	case AuthPassword:
		return "password"
	case AuthOEM:
		return "oem"
	case AuthRMCPPlus:
		return "rmcp+"
	}
	return fmt.Sprintf("AuthType(%d)", uint8(a))
}

// Session15 is an IPMI v1.5 session header and the message it carries.
type Session15 struct {
	AuthType  AuthType
	Seq       uint32
	SessionID uint32
	AuthCode  [16]byte // present on the wire only when AuthType != AuthNone
	Message   []byte   // the IPMI LAN message, rsAddr .. chk2
}

// Append encodes the session header and message.
func (s Session15) Append(b []byte) []byte {
	b = append(b, uint8(s.AuthType))
	b = binary.LittleEndian.AppendUint32(b, s.Seq)
	b = binary.LittleEndian.AppendUint32(b, s.SessionID)
	if s.AuthType != AuthNone {
		b = append(b, s.AuthCode[:]...)
	}
	b = append(b, uint8(len(s.Message)))
	return append(b, s.Message...)
}

// ParseSession15 decodes a v1.5 session packet (after the RMCP header).
// Trailing bytes after the message (the legacy pad) are ignored.
func ParseSession15(b []byte) (Session15, error) {
	if len(b) < 10 {
		return Session15{}, shortErr("IPMI 1.5 session header", 10, len(b))
	}
	s := Session15{
		AuthType:  AuthType(b[0]),
		Seq:       binary.LittleEndian.Uint32(b[1:]),
		SessionID: binary.LittleEndian.Uint32(b[5:]),
	}
	if s.AuthType == AuthRMCPPlus {
		return Session15{}, fmt.Errorf("wire: IPMI 1.5 session header: auth type is RMCP+")
	}
	off := 9
	if s.AuthType != AuthNone {
		if len(b) < 26 {
			return Session15{}, shortErr("IPMI 1.5 session header with auth code", 26, len(b))
		}
		copy(s.AuthCode[:], b[9:25])
		off = 25
	}
	n := int(b[off])
	off++
	if len(b)-off < n {
		return Session15{}, fmt.Errorf("wire: IPMI 1.5 message length: header says %d, %d bytes left", n, len(b)-off)
	}
	s.Message = b[off : off+n]
	return s, nil
}

// Password16 returns a password zero-padded (or cut) to the 16 bytes of
// IPMI v1.5.
func Password16(pw []byte) [16]byte {
	var k [16]byte
	copy(k[:], pw)
	return k
}

// AuthCode15 computes the v1.5 per-message authentication code (spec
// 22.17.1) for AuthMD5 and AuthPassword. MD2 is not implemented (ipmitool
// lacks it too) and yields an error, as does AuthNone.
func AuthCode15(t AuthType, pw [16]byte, sessionID uint32, msg []byte, seq uint32) ([16]byte, error) {
	switch t {
	case AuthPassword:
		return pw, nil
	case AuthMD5:
		h := md5.New()
		var n [4]byte
		h.Write(pw[:])
		binary.LittleEndian.PutUint32(n[:], sessionID)
		h.Write(n[:])
		h.Write(msg)
		binary.LittleEndian.PutUint32(n[:], seq)
		h.Write(n[:])
		h.Write(pw[:])
		var out [16]byte
		h.Sum(out[:0])
		return out, nil
	}
	return [16]byte{}, fmt.Errorf("wire: auth type %v has no auth code", t)
}
