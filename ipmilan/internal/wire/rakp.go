package wire

import (
	"encoding/binary"
	"fmt"
)

// CipherSuite is one of the standard RMCP+ cipher suites (spec 22.15.2).
type CipherSuite struct {
	ID        uint8
	Auth      AuthAlg
	Integrity IntegrityAlg
	Conf      ConfAlg
}

// suites lists the standard suites ipmilan can speak (no xRC4).
var suites = map[uint8]CipherSuite{
	0:  {0, AuthRAKPNone, IntegrityNone, ConfNone},
	1:  {1, AuthRAKPHMACSHA1, IntegrityNone, ConfNone},
	2:  {2, AuthRAKPHMACSHA1, IntegrityHMACSHA1_96, ConfNone},
	3:  {3, AuthRAKPHMACSHA1, IntegrityHMACSHA1_96, ConfAESCBC128},
	6:  {6, AuthRAKPHMACMD5, IntegrityNone, ConfNone},
	7:  {7, AuthRAKPHMACMD5, IntegrityHMACMD5_128, ConfNone},
	8:  {8, AuthRAKPHMACMD5, IntegrityHMACMD5_128, ConfAESCBC128},
	11: {11, AuthRAKPHMACMD5, IntegrityMD5_128, ConfNone},
	12: {12, AuthRAKPHMACMD5, IntegrityMD5_128, ConfAESCBC128},
	15: {15, AuthRAKPHMACSHA256, IntegrityNone, ConfNone},
	16: {16, AuthRAKPHMACSHA256, IntegrityHMACSHA256128, ConfNone},
	17: {17, AuthRAKPHMACSHA256, IntegrityHMACSHA256128, ConfAESCBC128},
}

// LookupCipherSuite returns the algorithms of a standard suite ID.
func LookupCipherSuite(id uint8) (CipherSuite, bool) {
	s, ok := suites[id]
	return s, ok
}

// SuiteFor returns the standard suite with exactly these algorithms.
func SuiteFor(a AuthAlg, i IntegrityAlg, c ConfAlg) (CipherSuite, bool) {
	for _, s := range suites {
		if s.Auth == a && s.Integrity == i && s.Conf == c {
			return s, true
		}
	}
	return CipherSuite{}, false
}

// RMCPPlusStatus is the status code of the RMCP+ session-setup messages
// (spec 13.24).
type RMCPPlusStatus uint8

var statusText = [...]string{
	"no errors", "insufficient resources to create a session", "invalid session ID",
	"invalid payload type", "invalid authentication algorithm", "invalid integrity algorithm",
	"no matching authentication payload", "no matching integrity payload", "inactive session ID",
	"invalid role", "unauthorized role or privilege level requested", "insufficient resources to create a session at the requested role",
	"invalid name length", "unauthorized name", "unauthorized GUID", "invalid integrity check value",
	"invalid confidentiality algorithm", "no cipher suite match with proposed security algorithms",
	"illegal or unrecognized parameter",
}

func (s RMCPPlusStatus) String() string {
	if int(s) < len(statusText) {
		return statusText[s]
	}
	return fmt.Sprintf("RMCP+ status %#02x", uint8(s))
}

// RMCP+ status codes callers branch on.
const (
	StatusOK                 RMCPPlusStatus = 0x00
	StatusNoResources        RMCPPlusStatus = 0x01
	StatusInvalidSessionID   RMCPPlusStatus = 0x02
	StatusInvalidAuthAlg     RMCPPlusStatus = 0x04
	StatusInvalidIntegAlg    RMCPPlusStatus = 0x05
	StatusInvalidRole        RMCPPlusStatus = 0x09
	StatusUnauthorizedRole   RMCPPlusStatus = 0x0A
	StatusInvalidNameLength  RMCPPlusStatus = 0x0C
	StatusUnauthorizedName   RMCPPlusStatus = 0x0D
	StatusInvalidICV         RMCPPlusStatus = 0x0F
	StatusInvalidConfAlg     RMCPPlusStatus = 0x10
	StatusNoCipherSuiteMatch RMCPPlusStatus = 0x11
	StatusIllegalParameter   RMCPPlusStatus = 0x12
)

// OpenSessionRequest is the RMCP+ Open Session Request (payload 0x10).
type OpenSessionRequest struct {
	Tag       uint8
	MaxPriv   Privilege
	SIDm      uint32 // remote console session ID
	Auth      AuthAlg
	Integrity IntegrityAlg
	Conf      ConfAlg
}

func appendAlgPayload(b []byte, typ, alg uint8) []byte {
	return append(b, typ, 0, 0, 8, alg&0x3F, 0, 0, 0)
}

// Append encodes the request (32 bytes).
func (r OpenSessionRequest) Append(b []byte) []byte {
	b = append(b, r.Tag, uint8(r.MaxPriv)&0x0F, 0, 0)
	b = binary.LittleEndian.AppendUint32(b, r.SIDm)
	b = appendAlgPayload(b, 0, uint8(r.Auth))
	b = appendAlgPayload(b, 1, uint8(r.Integrity))
	return appendAlgPayload(b, 2, uint8(r.Conf))
}

func parseAlgPayload(b []byte, typ uint8) (uint8, error) {
	names := [...]string{"authentication", "integrity", "confidentiality"}
	if b[0] != typ {
		return 0, fmt.Errorf("wire: %s payload type: want %d, got %d", names[typ], typ, b[0])
	}
	if b[3] != 8 {
		return 0, fmt.Errorf("wire: %s payload length: want 8, got %d", names[typ], b[3])
	}
	return b[4] & 0x3F, nil
}

// ParseOpenSessionRequest decodes an Open Session Request.
func ParseOpenSessionRequest(b []byte) (OpenSessionRequest, error) {
	if len(b) < 32 {
		return OpenSessionRequest{}, shortErr("Open Session Request", 32, len(b))
	}
	r := OpenSessionRequest{Tag: b[0], MaxPriv: Privilege(b[1] & 0x0F), SIDm: binary.LittleEndian.Uint32(b[4:])}
	a, err := parseAlgPayload(b[8:], 0)
	if err != nil {
		return r, err
	}
	i, err := parseAlgPayload(b[16:], 1)
	if err != nil {
		return r, err
	}
	c, err := parseAlgPayload(b[24:], 2)
	if err != nil {
		return r, err
	}
	r.Auth, r.Integrity, r.Conf = AuthAlg(a), IntegrityAlg(i), ConfAlg(c)
	return r, nil
}

// OpenSessionResponse is the RMCP+ Open Session Response (payload 0x11).
type OpenSessionResponse struct {
	Tag       uint8
	Status    RMCPPlusStatus
	MaxPriv   Privilege
	SIDm      uint32
	SIDc      uint32 // managed system session ID
	Auth      AuthAlg
	Integrity IntegrityAlg
	Conf      ConfAlg
}

// Append encodes the response: 36 bytes on success, 8 on error.
func (r OpenSessionResponse) Append(b []byte) []byte {
	b = append(b, r.Tag, uint8(r.Status), uint8(r.MaxPriv)&0x0F, 0)
	b = binary.LittleEndian.AppendUint32(b, r.SIDm)
	if r.Status != StatusOK {
		return b
	}
	b = binary.LittleEndian.AppendUint32(b, r.SIDc)
	b = appendAlgPayload(b, 0, uint8(r.Auth))
	b = appendAlgPayload(b, 1, uint8(r.Integrity))
	return appendAlgPayload(b, 2, uint8(r.Conf))
}

// ParseOpenSessionResponse decodes an Open Session Response. Error
// responses may be as short as the tag and status (Supermicro sends one
// status byte after the tag); they parse without error and callers check
// Status first.
func ParseOpenSessionResponse(b []byte) (OpenSessionResponse, error) {
	if len(b) < 2 {
		return OpenSessionResponse{}, shortErr("Open Session Response", 2, len(b))
	}
	r := OpenSessionResponse{Tag: b[0], Status: RMCPPlusStatus(b[1])}
	if r.Status != StatusOK {
		if len(b) >= 8 {
			r.SIDm = binary.LittleEndian.Uint32(b[4:])
		}
		return r, nil
	}
	if len(b) < 36 {
		return r, shortErr("Open Session Response", 36, len(b))
	}
	r.MaxPriv = Privilege(b[2] & 0x0F)
	r.SIDm = binary.LittleEndian.Uint32(b[4:])
	r.SIDc = binary.LittleEndian.Uint32(b[8:])
	a, err := parseAlgPayload(b[12:], 0)
	if err != nil {
		return r, err
	}
	i, err := parseAlgPayload(b[20:], 1)
	if err != nil {
		return r, err
	}
	c, err := parseAlgPayload(b[28:], 2)
	if err != nil {
		return r, err
	}
	r.Auth, r.Integrity, r.Conf = AuthAlg(a), IntegrityAlg(i), ConfAlg(c)
	return r, nil
}

// Role byte bits of RAKP1.
const (
	RoleNameOnly = 0x10 // look the user up by name only
)

// MaxUserLen and MaxPasswordLen are the RMCP+ limits.
const (
	MaxUserLen     = 16
	MaxPasswordLen = 20
	MaxKGLen       = 20
)

// RAKP1 is RAKP Message 1 (payload 0x12).
type RAKP1 struct {
	Tag  uint8
	SIDc uint32
	Rm   [16]byte
	Role uint8 // privilege in bits 3:0, RoleNameOnly in bit 4
	User []byte
}

// Append encodes the message.
func (r RAKP1) Append(b []byte) []byte {
	b = append(b, r.Tag, 0, 0, 0)
	b = binary.LittleEndian.AppendUint32(b, r.SIDc)
	b = append(b, r.Rm[:]...)
	b = append(b, r.Role, 0, 0, uint8(len(r.User)))
	return append(b, r.User...)
}

// ParseRAKP1 decodes RAKP Message 1.
func ParseRAKP1(b []byte) (RAKP1, error) {
	if len(b) < 28 {
		return RAKP1{}, shortErr("RAKP1", 28, len(b))
	}
	r := RAKP1{Tag: b[0], SIDc: binary.LittleEndian.Uint32(b[4:]), Role: b[24]}
	copy(r.Rm[:], b[8:24])
	n := int(b[27])
	if n > MaxUserLen {
		return r, fmt.Errorf("wire: RAKP1 user name length: want at most %d, got %d", MaxUserLen, n)
	}
	if len(b) < 28+n {
		return r, shortErr("RAKP1 user name", 28+n, len(b))
	}
	r.User = b[28 : 28+n]
	return r, nil
}

// RAKP2 is RAKP Message 2 (payload 0x13).
type RAKP2 struct {
	Tag      uint8
	Status   RMCPPlusStatus
	SIDm     uint32
	Rc       [16]byte
	GUID     [16]byte
	AuthCode []byte // key exchange authentication code
}

// Append encodes the message (8 bytes on error).
func (r RAKP2) Append(b []byte) []byte {
	b = append(b, r.Tag, uint8(r.Status), 0, 0)
	b = binary.LittleEndian.AppendUint32(b, r.SIDm)
	if r.Status != StatusOK {
		return b
	}
	b = append(b, r.Rc[:]...)
	b = append(b, r.GUID[:]...)
	return append(b, r.AuthCode...)
}

// ParseRAKP2 decodes RAKP Message 2. The auth code is whatever follows
// the GUID; callers check its length (the supermicro20 and sun20 quirks
// send one byte too many).
func ParseRAKP2(b []byte) (RAKP2, error) {
	if len(b) < 2 {
		return RAKP2{}, shortErr("RAKP2", 2, len(b))
	}
	r := RAKP2{Tag: b[0], Status: RMCPPlusStatus(b[1])}
	if r.Status != StatusOK {
		if len(b) >= 8 {
			r.SIDm = binary.LittleEndian.Uint32(b[4:])
		}
		return r, nil
	}
	if len(b) < 40 {
		return r, shortErr("RAKP2", 40, len(b))
	}
	r.SIDm = binary.LittleEndian.Uint32(b[4:])
	copy(r.Rc[:], b[8:24])
	copy(r.GUID[:], b[24:40])
	r.AuthCode = b[40:]
	return r, nil
}

// RAKP3 is RAKP Message 3 (payload 0x14).
type RAKP3 struct {
	Tag      uint8
	Status   RMCPPlusStatus
	SIDc     uint32
	AuthCode []byte
}

// Append encodes the message.
func (r RAKP3) Append(b []byte) []byte {
	b = append(b, r.Tag, uint8(r.Status), 0, 0)
	b = binary.LittleEndian.AppendUint32(b, r.SIDc)
	return append(b, r.AuthCode...)
}

// ParseRAKP3 decodes RAKP Message 3.
func ParseRAKP3(b []byte) (RAKP3, error) {
	if len(b) < 8 {
		return RAKP3{}, shortErr("RAKP3", 8, len(b))
	}
	return RAKP3{Tag: b[0], Status: RMCPPlusStatus(b[1]), SIDc: binary.LittleEndian.Uint32(b[4:]), AuthCode: b[8:]}, nil
}

// RAKP4 is RAKP Message 4 (payload 0x15).
type RAKP4 struct {
	Tag    uint8
	Status RMCPPlusStatus
	SIDm   uint32
	ICV    []byte // integrity check value
}

// Append encodes the message.
func (r RAKP4) Append(b []byte) []byte {
	b = append(b, r.Tag, uint8(r.Status), 0, 0)
	b = binary.LittleEndian.AppendUint32(b, r.SIDm)
	return append(b, r.ICV...)
}

// ParseRAKP4 decodes RAKP Message 4.
func ParseRAKP4(b []byte) (RAKP4, error) {
	if len(b) < 2 {
		return RAKP4{}, shortErr("RAKP4", 2, len(b))
	}
	r := RAKP4{Tag: b[0], Status: RMCPPlusStatus(b[1])}
	if len(b) >= 8 {
		r.SIDm = binary.LittleEndian.Uint32(b[4:])
		r.ICV = b[8:]
	} else if r.Status == StatusOK {
		return r, shortErr("RAKP4", 8, len(b))
	}
	return r, nil
}

// Handshake holds the values both sides of an RMCP+ session setup hash
// (spec 13.31, 13.32).
type Handshake struct {
	SIDm, SIDc uint32
	Rm, Rc     [16]byte
	GUID       [16]byte
	Role       uint8
	User       []byte
}

func le32(v uint32) []byte { return binary.LittleEndian.AppendUint32(nil, v) }

// RAKP2Code is the BMC's proof that it knows the password: HMAC_Kuid(SIDm,
// SIDc, Rm, Rc, GUIDc, role, ULEN, user).
func (h Handshake) RAKP2Code(alg AuthAlg, kuid []byte) []byte {
	return alg.HMAC(kuid, le32(h.SIDm), le32(h.SIDc), h.Rm[:], h.Rc[:], h.GUID[:],
		[]byte{h.Role, uint8(len(h.User))}, h.User)
}

// RAKP3Code is the console's proof: HMAC_Kuid(Rc, SIDm, role, ULEN, user).
func (h Handshake) RAKP3Code(alg AuthAlg, kuid []byte) []byte {
	return alg.HMAC(kuid, h.Rc[:], le32(h.SIDm), []byte{h.Role, uint8(len(h.User))}, h.User)
}

// SIK derives the session integrity key: HMAC_KG(Rm, Rc, role, ULEN,
// user), keyed by K_g when it is set and by the password otherwise.
func (h Handshake) SIK(alg AuthAlg, key []byte) []byte {
	return alg.HMAC(key, h.Rm[:], h.Rc[:], []byte{h.Role, uint8(len(h.User))}, h.User)
}

// RAKP4ICV is the BMC's proof that it derived the same SIK:
// HMAC_SIK(Rm, SIDc, GUIDc), truncated to the algorithm's ICV length.
func (h Handshake) RAKP4ICV(alg AuthAlg, sik []byte) []byte {
	code := alg.HMAC(sik, h.Rm[:], le32(h.SIDc), h.GUID[:])
	return code[:min(len(code), alg.ICVLen())]
}

// AdditionalKey derives K_n = HMAC_SIK(20 bytes of n) (spec 13.32): K1 for
// integrity, K2 for confidentiality. The constant is 20 bytes for every
// algorithm, SHA256 included.
func AdditionalKey(alg AuthAlg, sik []byte, n uint8) []byte {
	var c [20]byte
	for i := range c {
		c[i] = n
	}
	return alg.HMAC(sik, c[:])
}

// SessionKeys derives the Keys of an established session from the SIK.
func SessionKeys(s CipherSuite, sik, password []byte) *Keys {
	k := &Keys{Integrity: s.Integrity, Conf: s.Conf}
	if s.Auth != AuthRAKPNone {
		k.K1 = AdditionalKey(s.Auth, sik, 1)
		k.K2 = AdditionalKey(s.Auth, sik, 2)
	}
	if s.Integrity == IntegrityMD5_128 {
		k.Password = append([]byte(nil), password...)
	}
	return k
}
