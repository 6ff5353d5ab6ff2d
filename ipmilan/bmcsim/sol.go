package bmcsim

import (
	"time"

	"github.com/solgate/solgate/ipmilan/internal/wire"
)

// This file is the seam for Serial-over-LAN. The session layer already
// routes everything SOL needs here:
//
//   - handleSOLLocked gets the plaintext of every SOL payload (type 0x01)
//     that arrived in an established RMCP+ session and passed the
//     integrity, decryption and sequence-window checks; what it returns
//     is sent back to the packet's source.
//   - payloadCommandLocked gets the payload commands (Activate/Deactivate
//     Payload, Get Payload Activation Status / Instance Info, Get Channel
//     Payload Support / Version) after the privilege check.
//   - solSessionClosedLocked runs whenever a session ends (Close Session,
//     timeout, failed handshake), so an active SOL payload can be
//     deactivated with its session.
//   - seal20Locked(s, wire.PayloadSOL, payload) wraps BMC->console SOL
//     packets in the session's keys and outbound sequence numbers;
//     unsolicited output can be written with a sender to s.remote.
//
// Until simulated serial consoles exist, SOL payloads are ignored and the
// payload commands report SOL as not supported by the channel.

// handleSOLLocked handles an inbound SOL payload of session s.
func (b *BMC) handleSOLLocked(s *session, payload []byte, now time.Time) []byte {
	_, _, _ = s, payload, now
	return nil
}

// payloadCommandLocked answers the payload commands (App 0x48-0x4F).
func (b *BMC) payloadCommandLocked(s *session, req wire.Request, now time.Time) wire.Response {
	_, _ = s, now
	switch req.Cmd {
	case wire.CmdGetChannelPayloadSupp:
		// IPMI payload and the session-setup payloads only; no SOL yet.
		return respond(req, wire.CCOK, []byte{0x01, 0x00, 0x3F, 0x00, 0, 0, 0, 0})
	case wire.CmdActivatePayload:
		return respond(req, wire.CCPayloadDisabled, nil)
	case wire.CmdDeactivatePayload:
		return respond(req, 0x80, nil) // already deactivated
	}
	return respond(req, wire.CCInvalidCommand, nil)
}

// solSessionClosedLocked is called when session s ends.
func (b *BMC) solSessionClosedLocked(s *session) { _ = s }
