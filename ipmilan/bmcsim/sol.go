package bmcsim

import (
	"encoding/binary"
	"fmt"
	"math/bits"
	"time"

	"github.com/solgate/solgate/ipmilan/internal/wire"
)

// This file holds the Serial-over-LAN configuration and the payload
// commands (Activate/Deactivate Payload, Get Payload Activation Status,
// Get Payload Instance Info, Get Channel Payload Support/Version, Get/Set
// SOL Configuration Parameters). The SOL packet protocol is in
// solstream.go, the simulated host behind the serial port in console.go.

// SOLConfig configures a BMC's Serial-over-LAN payload and the simulated
// host on its serial port. The zero value is a working SOL: one instance,
// 255 characters per packet each way, output retransmitted every 100 ms
// up to 32 times, an 8 KiB output buffer, a realistic boot text on power
// on and reset, and an echoing host.
type SOLConfig struct {
	// Disabled makes Activate Payload answer 0x81 (payload disabled), as
	// "sol set enabled false" does; Set SOL Configuration Parameter 1 can
	// change it at run time.
	Disabled bool
	// Instances is the payload instance capacity (default 1, at most 15).
	// Every active instance gets a copy of the host's output, and input
	// from any of them reaches the host.
	Instances int
	// InboundSize and OutboundSize are the payload sizes reported by
	// Activate Payload, SOL header included (default 259: 255
	// characters). The BMC accepts at most InboundSize-4 characters of a
	// console packet (the rest is partially acknowledged) and sends at
	// most OutboundSize-4 per packet. Legal values are 5-259.
	InboundSize, OutboundSize uint16
	// Port, if not 0, is an alternate UDP port for SOL: Activate Payload
	// reports it and Serve also answers there (on the same IP address;
	// the whole protocol, so a client can redo its session there).
	Port uint16
	// RetryInterval is how long the BMC waits for the acknowledgement of
	// an output packet before sending it again with the same SOL sequence
	// number (default 100 ms); Retries is how many times it resends
	// before it drops the packet and moves on (default 32; 0 means the
	// default, a negative value means no retransmission).
	RetryInterval time.Duration
	Retries       int
	// BufferSize bounds the host output the BMC holds (default 8 KiB).
	// While no console is active, the newest BufferSize bytes are kept
	// (older ones dropped, reported as an overrun with the first packet
	// of the next activation); while one is active, output that does not
	// fit is dropped and the next packet carries the overrun status bit.
	BufferSize int
	// AccumulateInterval and Threshold are SOL parameter 3: output is
	// sent once Threshold characters are waiting or the oldest waiting
	// one is AccumulateInterval old (defaults 1 character and 100 ms;
	// with threshold 1 every character goes out at once).
	AccumulateInterval time.Duration
	Threshold          int
	// InputBuffer is the size of the host's serial input FIFO (default
	// 1024). The host reads it at once unless PauseInput holds it; a full
	// FIFO makes the BMC partially acknowledge, then NACK, typed input.
	InputBuffer int
	// NoEcho stops the host from echoing typed input; NoBootText from
	// printing a boot on power on and reset.
	NoEcho     bool
	NoBootText bool
	// Hostname appears in the boot text and login prompt (default
	// "node").
	Hostname string
	// MinPriv is the privilege needed to activate or deactivate SOL (SOL
	// parameter 2; default PrivUser). ForceEncryption refuses activation
	// (CC 0x84) in sessions without confidentiality. Otherwise SOL
	// packets are protected as the session's cipher suite says, whatever
	// the encryption/authentication bits of Activate Payload ask (pyghmi
	// asks for both in any suite).
	MinPriv         Privilege
	ForceEncryption bool
	// BogusSizes reports the payload sizes byte-swapped (as several
	// firmwares do); the BMC still works with the real ones. SwapPort
	// reports the SOL port byte-swapped (Supermicro X8DTH-iF: 623 becomes
	// 0x6F02).
	BogusSizes bool
	SwapPort   bool
	// SilentTakeover: when a session deactivates an instance another
	// session holds (a steal), the old owner is not told: no "SOL
	// deactivating" packet, and its SOL packets are ignored from then on,
	// as ipmi_sim and many BMCs do. Only Get Payload Instance Info shows
	// the new owner (which a client's keepalive can check).
	SilentTakeover bool
}

const (
	defaultSOLSize        = 259
	defaultSOLRetry       = 100 * time.Millisecond
	defaultSOLRetries     = 32
	defaultSOLBuffer      = 8 << 10
	defaultSOLAccumulate  = 100 * time.Millisecond
	defaultSOLInputBuffer = 1024
	maxSOLInstances       = 15
)

func (c *SOLConfig) validate() error {
	if c.Instances < 0 || c.Instances > maxSOLInstances {
		return fmt.Errorf("bmcsim: SOL instances %d: want 1-%d", c.Instances, maxSOLInstances)
	}
	for name, v := range map[string]uint16{"inbound": c.InboundSize, "outbound": c.OutboundSize} {
		if v != 0 && (v < 5 || v > 259) {
			return fmt.Errorf("bmcsim: SOL %s payload size %d: want 5-259 (header included)", name, v)
		}
	}
	if c.RetryInterval < 0 || c.AccumulateInterval < 0 {
		return fmt.Errorf("bmcsim: negative SOL interval")
	}
	if c.BufferSize < 0 || c.Threshold < 0 || c.InputBuffer < 0 {
		return fmt.Errorf("bmcsim: negative SOL buffer size or threshold")
	}
	if c.Threshold > 255 {
		return fmt.Errorf("bmcsim: SOL threshold %d: want 1-255", c.Threshold)
	}
	if c.MinPriv > PrivOEM {
		return fmt.Errorf("bmcsim: SOL privilege %d: want 1-5", c.MinPriv)
	}
	return nil
}

func (c SOLConfig) withDefaults() SOLConfig {
	if c.Instances == 0 {
		c.Instances = 1
	}
	if c.InboundSize == 0 {
		c.InboundSize = defaultSOLSize
	}
	if c.OutboundSize == 0 {
		c.OutboundSize = defaultSOLSize
	}
	if c.RetryInterval == 0 {
		c.RetryInterval = defaultSOLRetry
	}
	if c.Retries == 0 {
		c.Retries = defaultSOLRetries
	} else if c.Retries < 0 {
		c.Retries = 0
	}
	if c.BufferSize == 0 {
		c.BufferSize = defaultSOLBuffer
	}
	if c.AccumulateInterval == 0 {
		c.AccumulateInterval = defaultSOLAccumulate
	}
	if c.Threshold == 0 {
		c.Threshold = 1
	}
	if c.InputBuffer == 0 {
		c.InputBuffer = defaultSOLInputBuffer
	}
	if c.Hostname == "" {
		c.Hostname = "node"
	}
	if c.MinPriv == 0 {
		c.MinPriv = PrivUser
	}
	return c
}

// Payload commands, for Faults.WrongAnswers.
var (
	CmdActivatePayload        = Command{0x06, wire.CmdActivatePayload}
	CmdDeactivatePayload      = Command{0x06, wire.CmdDeactivatePayload}
	CmdGetPayloadActivation   = Command{0x06, wire.CmdGetPayloadActivation}
	CmdGetPayloadInstanceInfo = Command{0x06, wire.CmdGetPayloadInstanceInfo}
	CmdGetChannelPayloadSupp  = Command{0x06, wire.CmdGetChannelPayloadSupp}
	CmdGetChannelPayloadVer   = Command{0x06, wire.CmdGetChannelPayloadVer}
	CmdSetSOLConfig           = Command{0x0C, wire.CmdSetSOLConfigParam}
	CmdGetSOLConfig           = Command{0x0C, wire.CmdGetSOLConfigParam}
)

// Completion codes of the payload commands (spec 24.1, 24.2).
const (
	ccPayloadActive    wire.CompletionCode = 0x80 // Activate: already active; Deactivate: already inactive
	ccPayloadDisabled  wire.CompletionCode = 0x81
	ccPayloadLimit     wire.CompletionCode = 0x82
	ccPayloadNeedsEnc  wire.CompletionCode = 0x84
	ccParamUnsupported wire.CompletionCode = 0x80
	ccParamReadOnly    wire.CompletionCode = 0x82
)

func swap16(v uint16) uint16 { return bits.ReverseBytes16(v) }

// payloadCommandLocked answers the payload commands (App 0x48-0x4F).
func (b *BMC) payloadCommandLocked(s *session, req wire.Request, now time.Time) wire.Response {
	d := req.Data
	sol := &b.sol
	switch req.Cmd {
	case wire.CmdGetChannelPayloadSupp:
		if len(d) < 1 {
			return respond(req, wire.CCBadLength, nil)
		}
		if ch := d[0] & 0x0F; ch != wire.ChannelThis && ch != channelLAN {
			return respond(req, wire.CCInvalidField, nil)
		}
		// IPMI and SOL; the session-setup payloads 0x10-0x15.
		return respond(req, wire.CCOK, []byte{0x03, 0x00, 0x3F, 0x00, 0, 0, 0, 0})
	case wire.CmdGetChannelPayloadVer:
		if len(d) < 2 {
			return respond(req, wire.CCBadLength, nil)
		}
		if ch := d[0] & 0x0F; ch != wire.ChannelThis && ch != channelLAN {
			return respond(req, wire.CCInvalidField, nil)
		}
		if t := wire.PayloadType(d[1] & 0x3F); t != wire.PayloadIPMI && t != wire.PayloadSOL {
			return respond(req, 0x80, nil) // payload type not available
		}
		return respond(req, wire.CCOK, []byte{0x10}) // version 1.0
	case wire.CmdGetPayloadActivation:
		if len(d) < 1 {
			return respond(req, wire.CCBadLength, nil)
		}
		if wire.PayloadType(d[0]&0x3F) != wire.PayloadSOL {
			return respond(req, wire.CCInvalidField, nil)
		}
		var bitmap uint16
		for i, in := range sol.inst {
			if in != nil {
				bitmap |= 1 << i
			}
		}
		out := []byte{uint8(len(sol.inst))}
		return respond(req, wire.CCOK, binary.LittleEndian.AppendUint16(out, bitmap))
	case wire.CmdGetPayloadInstanceInfo:
		if len(d) < 2 {
			return respond(req, wire.CCBadLength, nil)
		}
		n := int(d[1] & 0x0F)
		if wire.PayloadType(d[0]&0x3F) != wire.PayloadSOL || n < 1 || n > len(sol.inst) {
			return respond(req, wire.CCInvalidField, nil)
		}
		out := make([]byte, 12)
		if in := sol.inst[n-1]; in != nil {
			binary.LittleEndian.PutUint32(out, in.owner.id)
			out[4] = 1 // serial port 1
		}
		return respond(req, wire.CCOK, out)
	case wire.CmdActivatePayload:
		return b.activatePayloadLocked(s, req, now)
	case wire.CmdDeactivatePayload:
		if len(d) < 2 {
			return respond(req, wire.CCBadLength, nil)
		}
		n := int(d[1] & 0x0F)
		if wire.PayloadType(d[0]&0x3F) != wire.PayloadSOL || n < 1 || n > len(sol.inst) {
			return respond(req, wire.CCInvalidField, nil)
		}
		if s.priv < sol.minPriv {
			return respond(req, wire.CCInsufficientPriv, nil)
		}
		in := sol.inst[n-1]
		if in == nil {
			return respond(req, ccPayloadActive, nil) // already deactivated
		}
		if in.owner != s {
			b.stats.solSteals.Add(1)
			b.log.Debug("SOL payload taken over", "instance", n, "from", in.owner.id, "by", s.id)
			b.deactivateLocked(in, !b.cfg.SOL.SilentTakeover, now)
		} else {
			b.deactivateLocked(in, false, now)
		}
		return respond(req, wire.CCOK, nil)
	}
	return respond(req, wire.CCInvalidCommand, nil)
}

func (b *BMC) activatePayloadLocked(s *session, req wire.Request, now time.Time) wire.Response {
	r, err := wire.ParseActivatePayloadRequest(req.Data)
	if err != nil {
		return respond(req, wire.CCBadLength, nil)
	}
	sol := &b.sol
	n := int(r.Instance)
	switch {
	case r.Type != wire.PayloadSOL:
		return respond(req, ccPayloadDisabled, nil)
	case n < 1 || n > len(sol.inst):
		return respond(req, wire.CCInvalidField, nil)
	case sol.disabled, !b.solAllowedLocked(s):
		return respond(req, ccPayloadDisabled, nil)
	case s.priv < sol.minPriv:
		return respond(req, wire.CCInsufficientPriv, nil)
	case sol.inst[n-1] != nil:
		return respond(req, ccPayloadActive, nil)
	case sol.instanceOf(s) != nil:
		return respond(req, ccPayloadLimit, nil) // one instance per session: SOL packets name none
	case sol.forceEncryption && s.suite.Conf == wire.ConfNone:
		return respond(req, ccPayloadNeedsEnc, nil)
	}
	b.activateLocked(s, n, now)
	resp := wire.ActivatePayloadResponse{InboundSize: b.cfg.SOL.InboundSize, OutboundSz: b.cfg.SOL.OutboundSize, VLAN: 0xFFFF}
	if b.cfg.SOL.BogusSizes {
		resp.InboundSize, resp.OutboundSz = swap16(resp.InboundSize), swap16(resp.OutboundSz)
	}
	resp.Port = b.cfg.SOL.Port
	if resp.Port == 0 {
		resp.Port = 623
		if s.link != nil {
			resp.Port = s.link.localPort()
		}
	}
	if b.cfg.SOL.SwapPort {
		resp.Port = swap16(resp.Port)
	}
	return respond(req, wire.CCOK, resp.Append(nil))
}

// SOL configuration parameters (spec 26.2, table 26-5).
const (
	solParamSetInProgress = 0
	solParamEnable        = 1
	solParamAuth          = 2
	solParamAccumulate    = 3
	solParamRetry         = 4
	solParamNVBitRate     = 5
	solParamVBitRate      = 6
	solParamChannel       = 7
	solParamPort          = 8
	solParamRevision      = 0x11
)

// solConfigCommandLocked answers Get/Set SOL Configuration Parameters.
func (b *BMC) solConfigCommandLocked(s *session, req wire.Request, now time.Time) wire.Response {
	d := req.Data
	sol := &b.sol
	if req.Cmd == wire.CmdGetSOLConfigParam {
		if len(d) < 4 {
			return respond(req, wire.CCBadLength, nil)
		}
		if ch := d[0] & 0x0F; ch != wire.ChannelThis && ch != channelLAN {
			return respond(req, wire.CCInvalidField, nil)
		}
		out := []byte{solParamRevision}
		if d[0]&0x80 != 0 {
			return respond(req, wire.CCOK, out) // revision only
		}
		switch d[1] {
		case solParamSetInProgress:
			out = append(out, sol.setInProgress)
		case solParamEnable:
			out = append(out, boolBit(!sol.disabled))
		case solParamAuth:
			v := uint8(sol.minPriv)
			if sol.forceEncryption {
				v |= 0x80
			}
			out = append(out, v)
		case solParamAccumulate:
			out = append(out, uint8(min(255, max(1, sol.accumulate/(5*time.Millisecond)))), uint8(sol.threshold))
		case solParamRetry:
			out = append(out, uint8(min(7, sol.retries)), uint8(min(255, sol.retryInterval/(10*time.Millisecond))))
		case solParamNVBitRate, solParamVBitRate:
			out = append(out, sol.bitRate[d[1]-solParamNVBitRate])
		case solParamChannel:
			out = append(out, channelLAN)
		case solParamPort:
			p := b.cfg.SOL.Port
			if p == 0 {
				p = 623
			}
			out = binary.LittleEndian.AppendUint16(out, p)
		default:
			return respond(req, ccParamUnsupported, nil)
		}
		return respond(req, wire.CCOK, out)
	}
	// Set.
	if len(d) < 3 {
		return respond(req, wire.CCBadLength, nil)
	}
	if ch := d[0] & 0x0F; ch != wire.ChannelThis && ch != channelLAN {
		return respond(req, wire.CCInvalidField, nil)
	}
	v := d[2:]
	switch d[1] {
	case solParamSetInProgress:
		if v[0]&3 == 3 {
			return respond(req, wire.CCInvalidField, nil)
		}
		sol.setInProgress = v[0] & 3
	case solParamEnable:
		sol.disabled = v[0]&1 == 0
		if sol.disabled {
			for _, in := range sol.inst {
				if in != nil {
					b.deactivateLocked(in, true, now)
				}
			}
		}
	case solParamAuth:
		p := Privilege(v[0] & 0x0F)
		if p < PrivUser || p > PrivOEM {
			return respond(req, wire.CCInvalidField, nil)
		}
		sol.minPriv, sol.forceEncryption = p, v[0]&0x80 != 0
	case solParamAccumulate:
		if len(v) < 2 {
			return respond(req, wire.CCBadLength, nil)
		}
		if v[0] == 0 {
			return respond(req, wire.CCInvalidField, nil)
		}
		sol.accumulate = time.Duration(v[0]) * 5 * time.Millisecond
		sol.threshold = max(1, int(v[1]))
	case solParamRetry:
		if len(v) < 2 {
			return respond(req, wire.CCBadLength, nil)
		}
		sol.retries = int(v[0] & 7)
		sol.retryInterval = max(10*time.Millisecond, time.Duration(v[1])*10*time.Millisecond)
	case solParamNVBitRate, solParamVBitRate:
		if r := v[0] & 0x0F; r != 0 && (r < 6 || r > 0x0A) {
			return respond(req, wire.CCInvalidField, nil)
		}
		sol.bitRate[d[1]-solParamNVBitRate] = v[0] & 0x0F
	case solParamChannel, solParamPort:
		return respond(req, ccParamReadOnly, nil)
	default:
		return respond(req, ccParamUnsupported, nil)
	}
	return respond(req, wire.CCOK, nil)
}

func boolBit(v bool) uint8 {
	if v {
		return 1
	}
	return 0
}
