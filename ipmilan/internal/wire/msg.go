package wire

import "fmt"

// NetFn is an IPMI network function code (even = request).
type NetFn uint8

const (
	NetFnChassis   NetFn = 0x00
	NetFnBridge    NetFn = 0x02
	NetFnSensor    NetFn = 0x04
	NetFnApp       NetFn = 0x06
	NetFnFirmware  NetFn = 0x08
	NetFnStorage   NetFn = 0x0A
	NetFnTransport NetFn = 0x0C
	NetFnGroup     NetFn = 0x2C
	NetFnOEMGroup  NetFn = 0x2E
)

func (n NetFn) String() string {
	names := map[NetFn]string{NetFnChassis: "Chassis", NetFnBridge: "Bridge", NetFnSensor: "Sensor/Event",
		NetFnApp: "App", NetFnFirmware: "Firmware", NetFnStorage: "Storage", NetFnTransport: "Transport",
		NetFnGroup: "Group", NetFnOEMGroup: "OEM/Group"}
	if s, ok := names[n&^1]; ok {
		if n&1 != 0 {
			return s + " response"
		}
		return s
	}
	return fmt.Sprintf("NetFn(%#02x)", uint8(n))
}

// Addresses used on the LAN channel.
const (
	BMCSlaveAddr   = 0x20
	RemoteSWID     = 0x81
	msgHeaderLen   = 6 // rsAddr netFn/LUN chk1 rqAddr rqSeq/LUN cmd
	minResponseLen = 8 // header + completion code + chk2
)

// Command numbers used by ipmilan (App netFn unless noted).
const (
	CmdGetDeviceID            = 0x01
	CmdGetSystemGUID          = 0x37
	CmdGetChannelAuthCaps     = 0x38
	CmdGetSessionChallenge    = 0x39
	CmdActivateSession        = 0x3A
	CmdSetSessionPrivilege    = 0x3B
	CmdCloseSession           = 0x3C
	CmdGetSessionInfo         = 0x3D
	CmdActivatePayload        = 0x48
	CmdDeactivatePayload      = 0x49
	CmdGetPayloadActivation   = 0x4A
	CmdGetPayloadInstanceInfo = 0x4B
	CmdGetChannelPayloadSupp  = 0x4E
	CmdGetChannelPayloadVer   = 0x4F
	CmdGetChannelCipherSuites = 0x54

	CmdGetChassisStatus  = 0x01 // Chassis
	CmdChassisControl    = 0x02 // Chassis
	CmdSetBootOptions    = 0x08 // Chassis
	CmdGetBootOptions    = 0x09 // Chassis
	CmdSetSOLConfigParam = 0x21 // Transport
	CmdGetSOLConfigParam = 0x22 // Transport
)

// CompletionCode is the first byte of every IPMI response (spec 5.2).
type CompletionCode uint8

const (
	CCOK                 CompletionCode = 0x00
	CCNodeBusy           CompletionCode = 0xC0
	CCInvalidCommand     CompletionCode = 0xC1
	CCInvalidForLUN      CompletionCode = 0xC2
	CCTimeout            CompletionCode = 0xC3
	CCOutOfSpace         CompletionCode = 0xC4
	CCReservationCancel  CompletionCode = 0xC5
	CCDataTruncated      CompletionCode = 0xC6
	CCBadLength          CompletionCode = 0xC7
	CCLengthExceeded     CompletionCode = 0xC8
	CCParamOutOfRange    CompletionCode = 0xC9
	CCCannotReturnBytes  CompletionCode = 0xCA
	CCNotPresent         CompletionCode = 0xCB
	CCInvalidField       CompletionCode = 0xCC
	CCIllegalCommand     CompletionCode = 0xCD
	CCNoResponse         CompletionCode = 0xCE
	CCDuplicateRequest   CompletionCode = 0xCF
	CCSDRUpdating        CompletionCode = 0xD0
	CCFirmwareUpdating   CompletionCode = 0xD1
	CCBMCInitializing    CompletionCode = 0xD2
	CCDestUnavailable    CompletionCode = 0xD3
	CCInsufficientPriv   CompletionCode = 0xD4
	CCNotSupportedState  CompletionCode = 0xD5
	CCSubFuncDisabled    CompletionCode = 0xD6
	CCUnspecified        CompletionCode = 0xFF
	CCPayloadActive      CompletionCode = 0x80 // Activate Payload: already active on another session
	CCPayloadDisabled    CompletionCode = 0x81 // Activate Payload: payload type disabled
	CCPayloadLimit       CompletionCode = 0x82 // Activate Payload: activation limit reached
	CCPayloadNeedsNoEnc  CompletionCode = 0x83 // Activate Payload: cannot activate with encryption
	CCPayloadNeedsEnc    CompletionCode = 0x84 // Activate Payload: cannot activate without encryption
	CCSessionInvalidUser CompletionCode = 0x81 // Get Session Challenge: invalid user name
)

var ccText = map[CompletionCode]string{
	CCOK: "ok", CCNodeBusy: "node busy", CCInvalidCommand: "invalid command",
	CCInvalidForLUN: "command invalid for LUN", CCTimeout: "timeout while processing",
	CCOutOfSpace: "out of space", CCReservationCancel: "reservation cancelled",
	CCDataTruncated: "request data truncated", CCBadLength: "request data length invalid",
	CCLengthExceeded: "request data field length limit exceeded", CCParamOutOfRange: "parameter out of range",
	CCCannotReturnBytes: "cannot return number of requested bytes", CCNotPresent: "requested sensor, data or record not present",
	CCInvalidField: "invalid data field in request", CCIllegalCommand: "command illegal for sensor or record type",
	CCNoResponse: "response could not be provided", CCDuplicateRequest: "cannot execute duplicated request",
	CCSDRUpdating: "SDR repository in update mode", CCFirmwareUpdating: "device in firmware update mode",
	CCBMCInitializing: "BMC initialization in progress", CCDestUnavailable: "destination unavailable",
	CCInsufficientPriv: "insufficient privilege level", CCNotSupportedState: "not supported in present state",
	CCSubFuncDisabled: "sub-function disabled or unavailable", CCUnspecified: "unspecified error",
}

// String names the generic completion codes; command-specific codes
// (0x80-0xBE) are printed as numbers because their meaning depends on the
// command.
func (c CompletionCode) String() string {
	if s, ok := ccText[c]; ok {
		return s
	}
	return fmt.Sprintf("completion code %#02x", uint8(c))
}

// Privilege is an IPMI privilege level (4 bits wherever it appears).
type Privilege uint8

const (
	PrivHighest  Privilege = 0 // Open Session: highest level matching the proposed algorithms
	PrivCallback Privilege = 1
	PrivUser     Privilege = 2
	PrivOperator Privilege = 3
	PrivAdmin    Privilege = 4
	PrivOEM      Privilege = 5
	PrivNoAccess Privilege = 0x0F
)

func (p Privilege) String() string {
	switch p {
	case PrivHighest:
		return "highest"
	case PrivCallback:
		return "callback"
	case PrivUser:
		return "user"
	case PrivOperator:
		return "operator"
	case PrivAdmin:
		return "admin"
	case PrivOEM:
		return "oem"
	case PrivNoAccess:
		return "no-access"
	}
	return fmt.Sprintf("Privilege(%d)", uint8(p))
}

// Request is an IPMI LAN request message (spec 13.8).
type Request struct {
	RsAddr uint8 // BMCSlaveAddr for the BMC itself
	NetFn  NetFn
	RsLUN  uint8
	RqAddr uint8
	RqSeq  uint8 // 6 bits
	RqLUN  uint8
	Cmd    uint8
	Data   []byte
}

// Len is the encoded length of the message.
func (r Request) Len() int { return msgHeaderLen + len(r.Data) + 1 }

// Append encodes the request with both checksums.
func (r Request) Append(b []byte) []byte {
	start := len(b)
	b = append(b, r.RsAddr, uint8(r.NetFn)<<2|r.RsLUN&3)
	b = append(b, checksum(b[start:]))
	mid := len(b)
	b = append(b, r.RqAddr, r.RqSeq<<2|r.RqLUN&3, r.Cmd)
	b = append(b, r.Data...)
	return append(b, checksum(b[mid:]))
}

// ParseRequest decodes a request, verifying both checksums.
func ParseRequest(b []byte) (Request, error) {
	if len(b) < msgHeaderLen+1 {
		return Request{}, shortErr("IPMI request", msgHeaderLen+1, len(b))
	}
	if err := verifyChecksums(b); err != nil {
		return Request{}, err
	}
	return Request{
		RsAddr: b[0], NetFn: NetFn(b[1] >> 2), RsLUN: b[1] & 3,
		RqAddr: b[3], RqSeq: b[4] >> 2, RqLUN: b[4] & 3, Cmd: b[5],
		Data: b[6 : len(b)-1],
	}, nil
}

// Response is an IPMI LAN response message.
type Response struct {
	RqAddr uint8
	NetFn  NetFn // odd: request netFn + 1
	RqLUN  uint8
	RsAddr uint8
	RqSeq  uint8
	RsLUN  uint8
	Cmd    uint8
	Code   CompletionCode
	Data   []byte
}

// Append encodes the response with both checksums.
func (r Response) Append(b []byte) []byte {
	start := len(b)
	b = append(b, r.RqAddr, uint8(r.NetFn)<<2|r.RqLUN&3)
	b = append(b, checksum(b[start:]))
	mid := len(b)
	b = append(b, r.RsAddr, r.RqSeq<<2|r.RsLUN&3, r.Cmd, uint8(r.Code))
	b = append(b, r.Data...)
	return append(b, checksum(b[mid:]))
}

// ParseResponse decodes a response. With verify false bad checksums are
// accepted (Supermicro X9 boards send them; the nochecksumcheck quirk).
func ParseResponse(b []byte, verify bool) (Response, error) {
	if len(b) < minResponseLen {
		return Response{}, shortErr("IPMI response", minResponseLen, len(b))
	}
	if verify {
		if err := verifyChecksums(b); err != nil {
			return Response{}, err
		}
	}
	return Response{
		RqAddr: b[0], NetFn: NetFn(b[1] >> 2), RqLUN: b[1] & 3,
		RsAddr: b[3], RqSeq: b[4] >> 2, RsLUN: b[4] & 3, Cmd: b[5],
		Code: CompletionCode(b[6]), Data: b[7 : len(b)-1],
	}, nil
}

func checksum(b []byte) uint8 {
	var s uint8
	for _, c := range b {
		s += c
	}
	return -s
}

func verifyChecksums(b []byte) error {
	if checksum(b[:2]) != b[2] {
		return fmt.Errorf("wire: IPMI header checksum: want %#02x, got %#02x", checksum(b[:2]), b[2])
	}
	if c := checksum(b[3 : len(b)-1]); c != b[len(b)-1] {
		return fmt.Errorf("wire: IPMI data checksum: want %#02x, got %#02x", c, b[len(b)-1])
	}
	return nil
}
