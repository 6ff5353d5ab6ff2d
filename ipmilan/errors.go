package ipmilan

import (
	"errors"
	"fmt"

	"github.com/solgate/solgate/ipmilan/internal/wire"
)

// Sentinel errors callers branch on. Errors returned by this package wrap
// them with context (BMC address, stage).
var (
	// ErrAuth: the BMC rejected the user name or password (or proved it
	// does not know the password we hold).
	ErrAuth = errors.New("authentication failed (wrong password or user)")
	// ErrKG: the session integrity key did not match: the BMC key K_g
	// is wrong (RAKP4 check value mismatch).
	ErrKG = errors.New("authentication failed (wrong K_g BMC key)")
	// ErrNoAnswer: every attempt timed out.
	ErrNoAnswer = errors.New("no answer")
	// ErrClosed: the session was closed.
	ErrClosed = errors.New("session closed")
	// ErrInsecure: the only way in would use cipher suite 0, auth type
	// none or a clear-text password, and Config.Insecure does not allow it.
	ErrInsecure = errors.New("refusing insecure authentication (enable explicitly to allow)")
	// ErrUnsupported: the BMC and this client share no usable algorithm,
	// IPMI version or command.
	ErrUnsupported = errors.New("not supported by the BMC")
	// ErrProtocol: the BMC answered something that breaks the protocol.
	ErrProtocol = errors.New("BMC protocol error")
	// ErrSOLActive: the SOL payload is active on another session.
	ErrSOLActive = errors.New("SOL payload already active on another session")
)

// CompletionError is a non-zero IPMI completion code. Callers branch on
// Code (for example wire.CCInsufficientPriv is 0xD4).
type CompletionError struct {
	NetFn wire.NetFn
	Cmd   uint8
	Code  CompletionCode
}

func (e *CompletionError) Error() string {
	return fmt.Sprintf("%s command %#02x: %v (%#02x)", e.NetFn, e.Cmd, e.Code, uint8(e.Code))
}

// SetupError is a non-zero RMCP+ status in session setup.
type SetupError struct {
	Stage  string // "open session", "RAKP2", "RAKP4"
	Status wire.RMCPPlusStatus
}

func (e *SetupError) Error() string {
	msg := fmt.Sprintf("%s: %v (status %#02x)", e.Stage, e.Status, uint8(e.Status))
	if u := e.Unwrap(); u != nil {
		msg += ": " + u.Error()
	}
	return msg
}

// Unwrap maps statuses that mean bad credentials onto ErrAuth and
// algorithm rejections onto ErrUnsupported, so errors.Is works.
func (e *SetupError) Unwrap() error {
	switch e.Status {
	case wire.StatusUnauthorizedName, wire.StatusInvalidNameLength:
		return ErrAuth
	case wire.StatusInvalidAuthAlg, wire.StatusInvalidIntegAlg, wire.StatusInvalidConfAlg, wire.StatusNoCipherSuiteMatch:
		return ErrUnsupported
	}
	return nil
}

// SOLActiveError says the SOL payload is held by another session. Owner is
// that session's BMC session ID (0 when the BMC does not say); compare it
// with Session.ID of an earlier session to recognise one's own.
type SOLActiveError struct {
	Owner uint32
}

func (e *SOLActiveError) Error() string {
	if e.Owner == 0 {
		return ErrSOLActive.Error()
	}
	return fmt.Sprintf("%v (BMC session %#x)", ErrSOLActive, e.Owner)
}

func (e *SOLActiveError) Is(target error) bool { return target == ErrSOLActive }
