package wire

import "fmt"

// This file holds the request and response layouts shared by the BMC
// configuration commands: Get/Set LAN Configuration Parameters (spec 23.1,
// 23.2) and Get/Set SOL Configuration Parameters (26.2, 26.3) have the same
// shape, and the command numbers of the channel and user commands.

// Command numbers of the configuration commands (App netFn unless noted).
const (
	CmdSetChannelAccess      = 0x40
	CmdGetChannelAccess      = 0x41
	CmdGetChannelInfo        = 0x42
	CmdSetUserAccess         = 0x43
	CmdGetUserAccess         = 0x44
	CmdSetUserName           = 0x45
	CmdGetUserName           = 0x46
	CmdSetUserPassword       = 0x47
	CmdSetUserPayloadAccess  = 0x4C
	CmdGetUserPayloadAccess  = 0x4D
	CmdSetLANConfigParam     = 0x01 // Transport
	CmdGetLANConfigParam     = 0x02 // Transport
	ConfigParamRevision      = 0x11 // present revision 1, oldest compatible 1
	ChannelSystemInterface   = 0x0F // the channel of the system interface (in-band)
	MaxUserID                = 63
	UserNameLen              = 16
	CCParamNotSupported      = CompletionCode(0x80) // Get/Set LAN or SOL Configuration Parameters
	CCParamSetInProgress     = CompletionCode(0x81) // Set: set in progress already claimed
	CCParamReadOnly          = CompletionCode(0x82) // Set: the parameter is read-only
	CCParamWriteOnly         = CompletionCode(0x83) // Get: the parameter is write-only
	CCPasswordTestFailed     = CompletionCode(0x80) // Set User Password, test: wrong password
	CCPasswordWrongSize      = CompletionCode(0x81) // Set User Password, test: wrong password size
	CCPayloadTypeUnavailable = CompletionCode(0x80) // Get Channel Payload Version
)

// GetParamRequest is the request of Get LAN Configuration Parameters and
// of Get SOL Configuration Parameters.
type GetParamRequest struct {
	Channel      uint8 // bits 3:0
	RevisionOnly bool  // bit 7: answer the parameter revision only
	Param        uint8
	Set, Block   uint8 // set and block selectors (0 for all parameters used here)
}

// Append encodes the request data (4 bytes).
func (r GetParamRequest) Append(b []byte) []byte {
	c := r.Channel & 0x0F
	if r.RevisionOnly {
		c |= 0x80
	}
	return append(b, c, r.Param, r.Set, r.Block)
}

// ParseGetParamRequest decodes the request data. The set and block
// selectors may be missing (some clients send only the first two bytes).
func ParseGetParamRequest(b []byte) (GetParamRequest, error) {
	if len(b) < 2 {
		return GetParamRequest{}, shortErr("Get Configuration Parameters request", 2, len(b))
	}
	r := GetParamRequest{Channel: b[0] & 0x0F, RevisionOnly: b[0]&0x80 != 0, Param: b[1]}
	if len(b) >= 3 {
		r.Set = b[2]
	}
	if len(b) >= 4 {
		r.Block = b[3]
	}
	return r, nil
}

// ParamResponse is the response data of a Get Configuration Parameters
// command: the parameter revision and the parameter's data.
type ParamResponse struct {
	Revision uint8
	Data     []byte
}

// Append encodes the response data.
func (r ParamResponse) Append(b []byte) []byte { return append(append(b, r.Revision), r.Data...) }

// ParseParamResponse decodes the response data.
func ParseParamResponse(b []byte) (ParamResponse, error) {
	if len(b) < 1 {
		return ParamResponse{}, shortErr("Get Configuration Parameters response", 1, len(b))
	}
	return ParamResponse{Revision: b[0], Data: b[1:]}, nil
}

// SetParamRequest is the request of Set LAN Configuration Parameters and of
// Set SOL Configuration Parameters.
type SetParamRequest struct {
	Channel uint8 // bits 3:0
	Param   uint8
	Data    []byte
}

// Append encodes the request data.
func (r SetParamRequest) Append(b []byte) []byte {
	return append(append(b, r.Channel&0x0F, r.Param), r.Data...)
}

// ParseSetParamRequest decodes the request data; the parameter data must
// not be empty.
func ParseSetParamRequest(b []byte) (SetParamRequest, error) {
	if len(b) < 3 {
		return SetParamRequest{}, shortErr("Set Configuration Parameters request", 3, len(b))
	}
	return SetParamRequest{Channel: b[0] & 0x0F, Param: b[1], Data: b[2:]}, nil
}

// SetInProgress is parameter 0 of the LAN and SOL configurations: bits 1:0.
type SetInProgress uint8

const (
	SetComplete   SetInProgress = 0
	SetStarted    SetInProgress = 1
	SetCommitting SetInProgress = 2 // commit write (optional)
)

func (s SetInProgress) String() string {
	switch s {
	case SetComplete:
		return "set complete"
	case SetStarted:
		return "set in progress"
	case SetCommitting:
		return "commit write"
	}
	return fmt.Sprintf("SetInProgress(%d)", uint8(s))
}

// ParseSetInProgress decodes parameter 0.
func ParseSetInProgress(b []byte) (SetInProgress, error) {
	if len(b) < 1 {
		return 0, shortErr("set in progress", 1, len(b))
	}
	return SetInProgress(b[0] & 0x03), nil
}

// Append encodes parameter 0.
func (s SetInProgress) Append(b []byte) []byte { return append(b, uint8(s)&0x03) }

// ParsePrivilegeName maps the names Privilege.String prints (and
// "administrator", "no-access"/"none") back to a Privilege.
func ParsePrivilegeName(s string) (Privilege, bool) {
	switch s {
	case "callback":
		return PrivCallback, true
	case "user":
		return PrivUser, true
	case "operator":
		return PrivOperator, true
	case "admin", "administrator":
		return PrivAdmin, true
	case "oem":
		return PrivOEM, true
	case "no-access", "none", "noaccess":
		return PrivNoAccess, true
	}
	return 0, false
}
