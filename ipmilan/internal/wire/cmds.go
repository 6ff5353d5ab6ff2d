package wire

import (
	"encoding/binary"
	"fmt"
)

// ChannelThis is the channel number meaning "the channel this request
// came in on".
const ChannelThis = 0x0E

// AuthCapsRequest is the Get Channel Authentication Capabilities request
// (spec 22.13).
type AuthCapsRequest struct {
	Channel  uint8
	Extended bool // ask for IPMI 2.0 extended data (bit 7)
	MaxPriv  Privilege
}

// Append encodes the request data.
func (r AuthCapsRequest) Append(b []byte) []byte {
	c := r.Channel & 0x0F
	if r.Extended {
		c |= 0x80
	}
	return append(b, c, uint8(r.MaxPriv)&0x0F)
}

// ParseAuthCapsRequest decodes the request data.
func ParseAuthCapsRequest(b []byte) (AuthCapsRequest, error) {
	if len(b) < 2 {
		return AuthCapsRequest{}, shortErr("Get Channel Auth Caps request", 2, len(b))
	}
	return AuthCapsRequest{Channel: b[0] & 0x0F, Extended: b[0]&0x80 != 0, MaxPriv: Privilege(b[1] & 0x0F)}, nil
}

// AuthCaps is the Get Channel Authentication Capabilities response data.
type AuthCaps struct {
	Channel uint8
	// AuthTypes is the bitmap of supported v1.5 auth types: bit n set
	// means AuthType(n) is supported (bit 7: extended data present).
	AuthTypes     uint8
	Anonymous     bool // null user + null password enabled
	NullUsers     bool
	NonNullUsers  bool
	UserAuthOff   bool // user-level authentication disabled
	PerMsgAuthOff bool // per-message authentication disabled
	KGSet         bool // K_g is non-zero (two-key login)
	IPMI15        bool // from extended data
	IPMI20        bool // from extended data
	Extended      bool
	OEMIANA       uint32
	OEMAux        uint8
}

// Supports reports whether the BMC lists the v1.5 auth type.
func (c AuthCaps) Supports(t AuthType) bool { return t < 6 && c.AuthTypes&(1<<t) != 0 }

// Append encodes the response data (after the completion code).
func (c AuthCaps) Append(b []byte) []byte {
	t := c.AuthTypes & 0x3F
	if c.Extended {
		t |= 0x80
	}
	var s uint8
	for i, f := range []bool{c.Anonymous, c.NullUsers, c.NonNullUsers, c.UserAuthOff, c.PerMsgAuthOff, c.KGSet} {
		if f {
			s |= 1 << i
		}
	}
	var e uint8
	if c.IPMI15 {
		e |= 1
	}
	if c.IPMI20 {
		e |= 2
	}
	b = append(b, c.Channel, t, s, e)
	b = append(b, uint8(c.OEMIANA), uint8(c.OEMIANA>>8), uint8(c.OEMIANA>>16))
	return append(b, c.OEMAux)
}

// ParseAuthCaps decodes the response data.
func ParseAuthCaps(b []byte) (AuthCaps, error) {
	if len(b) < 8 {
		return AuthCaps{}, shortErr("Get Channel Auth Caps response", 8, len(b))
	}
	c := AuthCaps{
		Channel: b[0], AuthTypes: b[1] & 0x3F, Extended: b[1]&0x80 != 0,
		Anonymous: b[2]&1 != 0, NullUsers: b[2]&2 != 0, NonNullUsers: b[2]&4 != 0,
		UserAuthOff: b[2]&8 != 0, PerMsgAuthOff: b[2]&0x10 != 0, KGSet: b[2]&0x20 != 0,
		OEMIANA: uint32(b[4]) | uint32(b[5])<<8 | uint32(b[6])<<16, OEMAux: b[7],
	}
	if c.Extended {
		c.IPMI15, c.IPMI20 = b[3]&1 != 0, b[3]&2 != 0
	} else {
		c.IPMI15 = true
	}
	return c, nil
}

// SessionChallengeRequest is the v1.5 Get Session Challenge request.
type SessionChallengeRequest struct {
	AuthType AuthType
	User     [16]byte
}

// Append encodes the request data.
func (r SessionChallengeRequest) Append(b []byte) []byte {
	return append(append(b, uint8(r.AuthType)&0x0F), r.User[:]...)
}

// ParseSessionChallengeRequest decodes the request data.
func ParseSessionChallengeRequest(b []byte) (SessionChallengeRequest, error) {
	if len(b) < 17 {
		return SessionChallengeRequest{}, shortErr("Get Session Challenge request", 17, len(b))
	}
	r := SessionChallengeRequest{AuthType: AuthType(b[0] & 0x0F)}
	copy(r.User[:], b[1:17])
	return r, nil
}

// SessionChallenge is the Get Session Challenge response data.
type SessionChallenge struct {
	TempSessionID uint32
	Challenge     [16]byte
}

// Append encodes the response data.
func (c SessionChallenge) Append(b []byte) []byte {
	return append(binary.LittleEndian.AppendUint32(b, c.TempSessionID), c.Challenge[:]...)
}

// ParseSessionChallenge decodes the response data.
func ParseSessionChallenge(b []byte) (SessionChallenge, error) {
	if len(b) < 20 {
		return SessionChallenge{}, shortErr("Get Session Challenge response", 20, len(b))
	}
	c := SessionChallenge{TempSessionID: binary.LittleEndian.Uint32(b)}
	copy(c.Challenge[:], b[4:20])
	return c, nil
}

// ActivateSessionRequest is the v1.5 Activate Session request data.
type ActivateSessionRequest struct {
	AuthType  AuthType
	MaxPriv   Privilege
	Challenge [16]byte
	OutSeq    uint32 // initial outbound sequence number: the BMC numbers its packets from here
}

// Append encodes the request data.
func (r ActivateSessionRequest) Append(b []byte) []byte {
	b = append(b, uint8(r.AuthType)&0x0F, uint8(r.MaxPriv)&0x0F)
	b = append(b, r.Challenge[:]...)
	return binary.LittleEndian.AppendUint32(b, r.OutSeq)
}

// ParseActivateSessionRequest decodes the request data.
func ParseActivateSessionRequest(b []byte) (ActivateSessionRequest, error) {
	if len(b) < 22 {
		return ActivateSessionRequest{}, shortErr("Activate Session request", 22, len(b))
	}
	r := ActivateSessionRequest{AuthType: AuthType(b[0] & 0x0F), MaxPriv: Privilege(b[1] & 0x0F)}
	copy(r.Challenge[:], b[2:18])
	r.OutSeq = binary.LittleEndian.Uint32(b[18:])
	return r, nil
}

// ActivateSessionResponse is the v1.5 Activate Session response data.
type ActivateSessionResponse struct {
	AuthType  AuthType // for the rest of the session
	SessionID uint32
	InSeq     uint32 // initial inbound sequence number: the console numbers its packets from here
	MaxPriv   Privilege
}

// Append encodes the response data.
func (r ActivateSessionResponse) Append(b []byte) []byte {
	b = append(b, uint8(r.AuthType)&0x0F)
	b = binary.LittleEndian.AppendUint32(b, r.SessionID)
	b = binary.LittleEndian.AppendUint32(b, r.InSeq)
	return append(b, uint8(r.MaxPriv)&0x0F)
}

// ParseActivateSessionResponse decodes the response data.
func ParseActivateSessionResponse(b []byte) (ActivateSessionResponse, error) {
	if len(b) < 10 {
		return ActivateSessionResponse{}, shortErr("Activate Session response", 10, len(b))
	}
	return ActivateSessionResponse{
		AuthType: AuthType(b[0] & 0x0F), SessionID: binary.LittleEndian.Uint32(b[1:]),
		InSeq: binary.LittleEndian.Uint32(b[5:]), MaxPriv: Privilege(b[9] & 0x0F),
	}, nil
}

// DeviceID is the Get Device ID response data (spec 20.1).
type DeviceID struct {
	DeviceID       uint8
	DeviceRevision uint8 // bits 3:0; bit 7 = provides device SDRs
	FirmwareMajor  uint8 // bits 6:0
	Busy           bool  // firmware rev 1 bit 7: update or self-init in progress
	FirmwareMinor  uint8 // BCD
	IPMIVersion    uint8 // BCD, 0x51 = 1.5, 0x02 = 2.0
	AdditionalSupp uint8
	ManufacturerID uint32 // 20 bits
	ProductID      uint16
	AuxFirmware    [4]byte
	HasAuxFirmware bool
}

// Append encodes the response data.
func (d DeviceID) Append(b []byte) []byte {
	fw := d.FirmwareMajor & 0x7F
	if d.Busy {
		fw |= 0x80
	}
	b = append(b, d.DeviceID, d.DeviceRevision, fw, d.FirmwareMinor, d.IPMIVersion, d.AdditionalSupp)
	b = append(b, uint8(d.ManufacturerID), uint8(d.ManufacturerID>>8), uint8(d.ManufacturerID>>16)&0x0F)
	b = binary.LittleEndian.AppendUint16(b, d.ProductID)
	if d.HasAuxFirmware {
		b = append(b, d.AuxFirmware[:]...)
	}
	return b
}

// ParseDeviceID decodes the response data.
func ParseDeviceID(b []byte) (DeviceID, error) {
	if len(b) < 11 {
		return DeviceID{}, shortErr("Get Device ID response", 11, len(b))
	}
	d := DeviceID{
		DeviceID: b[0], DeviceRevision: b[1], FirmwareMajor: b[2] & 0x7F, Busy: b[2]&0x80 != 0,
		FirmwareMinor: b[3], IPMIVersion: b[4], AdditionalSupp: b[5],
		ManufacturerID: (uint32(b[6]) | uint32(b[7])<<8 | uint32(b[8])<<16) & 0xFFFFF,
		ProductID:      binary.LittleEndian.Uint16(b[9:]),
	}
	if len(b) >= 15 {
		d.HasAuxFirmware = true
		copy(d.AuxFirmware[:], b[11:15])
	}
	return d, nil
}

// ChassisStatus is the Get Chassis Status response data (spec 28.2).
type ChassisStatus struct {
	PowerState     uint8 // byte 0: bit 0 power on, 1 overload, 2 interlock, 3 fault, 4 control fault, 6:5 restore policy
	LastPowerEvent uint8
	Misc           uint8
	FrontPanel     uint8
	HasFrontPanel  bool
}

// PowerOn reports whether system power is on.
func (c ChassisStatus) PowerOn() bool { return c.PowerState&1 != 0 }

// Append encodes the response data.
func (c ChassisStatus) Append(b []byte) []byte {
	b = append(b, c.PowerState, c.LastPowerEvent, c.Misc)
	if c.HasFrontPanel {
		b = append(b, c.FrontPanel)
	}
	return b
}

// ParseChassisStatus decodes the response data.
func ParseChassisStatus(b []byte) (ChassisStatus, error) {
	if len(b) < 3 {
		return ChassisStatus{}, shortErr("Get Chassis Status response", 3, len(b))
	}
	c := ChassisStatus{PowerState: b[0], LastPowerEvent: b[1], Misc: b[2]}
	if len(b) >= 4 {
		c.FrontPanel, c.HasFrontPanel = b[3], true
	}
	return c, nil
}

// ChassisControl is the Chassis Control request byte (spec 28.3).
type ChassisControl uint8

const (
	ControlPowerDown     ChassisControl = 0
	ControlPowerUp       ChassisControl = 1
	ControlPowerCycle    ChassisControl = 2
	ControlHardReset     ChassisControl = 3
	ControlDiagInterrupt ChassisControl = 4 // pulse diagnostic interrupt (NMI)
	ControlSoftShutdown  ChassisControl = 5 // ACPI soft shutdown
)

func (c ChassisControl) String() string {
	if c > 5 {
		return fmt.Sprintf("ChassisControl(%d)", uint8(c))
	}
	return [...]string{"power down", "power up", "power cycle", "hard reset", "diagnostic interrupt", "soft shutdown"}[c]
}

// BootDevice is the device selector of boot option parameter 5 (boot
// flags), data 2 bits 5:2 (spec table 28-14).
type BootDevice uint8

const (
	BootDeviceNone   BootDevice = 0x0
	BootDevicePXE    BootDevice = 0x1
	BootDeviceDisk   BootDevice = 0x2
	BootDeviceSafe   BootDevice = 0x3
	BootDeviceDiag   BootDevice = 0x4
	BootDeviceCDROM  BootDevice = 0x5
	BootDeviceBIOS   BootDevice = 0x6 // force boot into BIOS setup
	BootDeviceFloppy BootDevice = 0xF
)

func (d BootDevice) String() string {
	switch d {
	case BootDeviceNone:
		return "none"
	case BootDevicePXE:
		return "pxe"
	case BootDeviceDisk:
		return "disk"
	case BootDeviceSafe:
		return "safe"
	case BootDeviceDiag:
		return "diag"
	case BootDeviceCDROM:
		return "cdrom"
	case BootDeviceBIOS:
		return "bios"
	case BootDeviceFloppy:
		return "floppy"
	}
	return fmt.Sprintf("BootDevice(%d)", uint8(d))
}

const (
	BootParamFlags    = 5
	bootFlagsValid    = 0x80
	bootFlagsPersist  = 0x40
	bootFlagsEFI      = 0x20
	BootFlagsDataSize = 5
)

// BootFlags is System Boot Options parameter 5.
type BootFlags struct {
	Valid      bool
	Persistent bool
	EFI        bool
	Device     BootDevice
}

// Append encodes the parameter data (5 bytes).
func (f BootFlags) Append(b []byte) []byte {
	var d1 uint8
	if f.Valid {
		d1 |= bootFlagsValid
	}
	if f.Persistent {
		d1 |= bootFlagsPersist
	}
	if f.EFI {
		d1 |= bootFlagsEFI
	}
	return append(b, d1, uint8(f.Device&0x0F)<<2, 0, 0, 0)
}

// ParseBootFlags decodes the parameter data.
func ParseBootFlags(b []byte) (BootFlags, error) {
	if len(b) < 2 {
		return BootFlags{}, shortErr("boot flags", 2, len(b))
	}
	return BootFlags{Valid: b[0]&bootFlagsValid != 0, Persistent: b[0]&bootFlagsPersist != 0,
		EFI: b[0]&bootFlagsEFI != 0, Device: BootDevice(b[1]>>2) & 0x0F}, nil
}

// SessionInfo is the Get Session Info response data (spec 22.20), as far
// as it is common to all channel types.
type SessionInfo struct {
	Handle      uint8
	MaxSessions uint8 // bits 5:0
	Active      uint8 // bits 5:0
	UserID      uint8 // bits 5:0
	Privilege   Privilege
	IPMI20      bool  // session type, byte 5 bits 7:4 (0 = 1.5, 1 = 2.0)
	Channel     uint8 // bits 3:0
	Extra       []byte
}

// Append encodes the response data.
func (s SessionInfo) Append(b []byte) []byte {
	var t uint8
	if s.IPMI20 {
		t = 0x10
	}
	b = append(b, s.Handle, s.MaxSessions&0x3F, s.Active&0x3F, s.UserID&0x3F, uint8(s.Privilege)&0x0F, t|s.Channel&0x0F)
	return append(b, s.Extra...)
}

// ParseSessionInfo decodes the response data. A response of 3 bytes means
// no active session matched the index.
func ParseSessionInfo(b []byte) (SessionInfo, error) {
	if len(b) < 3 {
		return SessionInfo{}, shortErr("Get Session Info response", 3, len(b))
	}
	s := SessionInfo{Handle: b[0], MaxSessions: b[1] & 0x3F, Active: b[2] & 0x3F}
	if len(b) >= 6 {
		s.UserID, s.Privilege = b[3]&0x3F, Privilege(b[4]&0x0F)
		s.IPMI20, s.Channel = b[5]>>4 == 1, b[5]&0x0F
		s.Extra = b[6:]
	}
	return s, nil
}

// CipherSuiteRecord is one entry of Get Channel Cipher Suites.
type CipherSuiteRecord struct {
	ID        uint8
	OEM       bool
	OEMIANA   uint32
	Auth      []AuthAlg
	Integrity []IntegrityAlg
	Conf      []ConfAlg
}

// ParseCipherSuiteRecords decodes the concatenated record data of all
// Get Channel Cipher Suites responses (list-by-suite form).
func ParseCipherSuiteRecords(b []byte) ([]CipherSuiteRecord, error) {
	var out []CipherSuiteRecord
	for len(b) > 0 {
		var r CipherSuiteRecord
		switch b[0] {
		case 0xC0:
			if len(b) < 2 {
				return out, shortErr("cipher suite record", 2, len(b))
			}
			r.ID, b = b[1], b[2:]
		case 0xC1:
			if len(b) < 5 {
				return out, shortErr("OEM cipher suite record", 5, len(b))
			}
			r.ID, r.OEM, r.OEMIANA, b = b[1], true, uint32(b[2])|uint32(b[3])<<8|uint32(b[4])<<16, b[5:]
		default:
			return out, fmt.Errorf("wire: cipher suite record start byte %#02x, want 0xc0 or 0xc1", b[0])
		}
		for len(b) > 0 && b[0] < 0xC0 {
			v := b[0] & 0x3F
			switch b[0] >> 6 {
			case 0:
				r.Auth = append(r.Auth, AuthAlg(v))
			case 1:
				r.Integrity = append(r.Integrity, IntegrityAlg(v))
			case 2:
				r.Conf = append(r.Conf, ConfAlg(v))
			}
			b = b[1:]
		}
		out = append(out, r)
	}
	return out, nil
}

// AppendCipherSuiteRecord encodes a standard suite's record.
func AppendCipherSuiteRecord(b []byte, s CipherSuite) []byte {
	return append(b, 0xC0, s.ID, uint8(s.Auth), 0x40|uint8(s.Integrity), 0x80|uint8(s.Conf))
}

// ActivatePayloadRequest is the Activate Payload request (spec 24.1).
type ActivatePayloadRequest struct {
	Type     PayloadType
	Instance uint8
	Aux      [4]byte // SOL: byte 0 b7 encrypt, b6 authenticate, b3:2 alerts, b1 startup handshake
}

// SOL auxiliary data bits of Activate Payload.
const (
	SOLAuxEncrypt        = 0x80
	SOLAuxAuthenticate   = 0x40
	SOLAuxTestMode       = 0x20
	SOLAuxAlertsDeferred = 0x04
	SOLAuxAlertsSucceed  = 0x08
	SOLAuxNoHandshake    = 0x02 // keep CTS/DCD deasserted until the console asserts them
)

// Append encodes the request data.
func (r ActivatePayloadRequest) Append(b []byte) []byte {
	b = append(b, uint8(r.Type)&0x3F, r.Instance&0x0F)
	return append(b, r.Aux[:]...)
}

// ParseActivatePayloadRequest decodes the request data.
func ParseActivatePayloadRequest(b []byte) (ActivatePayloadRequest, error) {
	if len(b) < 6 {
		return ActivatePayloadRequest{}, shortErr("Activate Payload request", 6, len(b))
	}
	r := ActivatePayloadRequest{Type: PayloadType(b[0] & 0x3F), Instance: b[1] & 0x0F}
	copy(r.Aux[:], b[2:6])
	return r, nil
}

// ActivatePayloadResponse is the Activate Payload response data.
type ActivatePayloadResponse struct {
	Aux         [4]byte
	InboundSize uint16 // console -> BMC, SOL header included
	OutboundSz  uint16 // BMC -> console
	Port        uint16
	VLAN        uint16 // 0xFFFF: none
}

// Append encodes the response data (12 bytes).
func (r ActivatePayloadResponse) Append(b []byte) []byte {
	b = append(b, r.Aux[:]...)
	b = binary.LittleEndian.AppendUint16(b, r.InboundSize)
	b = binary.LittleEndian.AppendUint16(b, r.OutboundSz)
	b = binary.LittleEndian.AppendUint16(b, r.Port)
	return binary.LittleEndian.AppendUint16(b, r.VLAN)
}

// ParseActivatePayloadResponse decodes the response data.
func ParseActivatePayloadResponse(b []byte) (ActivatePayloadResponse, error) {
	if len(b) < 12 {
		return ActivatePayloadResponse{}, shortErr("Activate Payload response", 12, len(b))
	}
	var r ActivatePayloadResponse
	copy(r.Aux[:], b[:4])
	r.InboundSize = binary.LittleEndian.Uint16(b[4:])
	r.OutboundSz = binary.LittleEndian.Uint16(b[6:])
	r.Port = binary.LittleEndian.Uint16(b[8:])
	r.VLAN = binary.LittleEndian.Uint16(b[10:])
	return r, nil
}

// SOL packet bits (spec 15.9): Op is the operation byte console -> BMC
// and the status byte BMC -> console; both use bit 6 for NACK.
const (
	SOLOpFlushOutbound = 0x01
	SOLOpFlushInbound  = 0x02
	SOLOpDeassertDCD   = 0x04
	SOLOpDeassertCTS   = 0x08
	SOLOpBreak         = 0x10
	SOLOpRing          = 0x20
	SOLNack            = 0x40

	SOLStatusBreak       = 0x04 // break detected on the serial port
	SOLStatusOverrun     = 0x08 // BMC dropped characters
	SOLStatusDeactivated = 0x10 // SOL is being deactivated
	SOLStatusUnavailable = 0x20 // character transfer unavailable
	SOLHeaderLen         = 4
)

// SOLPacket is the SOL payload (spec 15.9).
type SOLPacket struct {
	Seq      uint8 // 1-15; 0 = ACK only, no data
	AckSeq   uint8 // 0 = not an ACK
	Accepted uint8 // characters accepted of the ACKed packet
	Op       uint8 // operation (to BMC) or status (from BMC)
	Data     []byte
}

// Append encodes the packet.
func (p SOLPacket) Append(b []byte) []byte {
	return append(append(b, p.Seq&0x0F, p.AckSeq&0x0F, p.Accepted, p.Op), p.Data...)
}

// ParseSOL decodes a SOL payload.
func ParseSOL(b []byte) (SOLPacket, error) {
	if len(b) < SOLHeaderLen {
		return SOLPacket{}, shortErr("SOL packet", SOLHeaderLen, len(b))
	}
	if b[0]&0xF0 != 0 || b[1]&0xF0 != 0 {
		return SOLPacket{}, fmt.Errorf("wire: SOL sequence bytes %#02x %#02x: reserved bits set", b[0], b[1])
	}
	return SOLPacket{Seq: b[0], AckSeq: b[1], Accepted: b[2], Op: b[3], Data: b[4:]}, nil
}
