package ipmilan

import (
	"context"
	"errors"
	"fmt"

	"github.com/solgate/solgate/ipmilan/internal/wire"
)

// Commander runs one IPMI request and returns the response data after the
// completion code; a non-zero completion code is a *CompletionError. A LAN
// *Session and an *Inband (the local BMC through the Linux IPMI driver)
// are Commanders, so every configuration command works over both.
type Commander interface {
	Do(ctx context.Context, netFn NetFn, cmd uint8, data []byte) ([]byte, error)
}

// Network functions of the configuration commands.
const (
	NetFnApp       = wire.NetFnApp
	NetFnTransport = wire.NetFnTransport
	NetFnChassis   = wire.NetFnChassis
)

// NotSupportedError says the BMC does not implement a command, or a LAN or
// SOL configuration parameter (completion code 0x80 to Get/Set
// Configuration Parameters, 0xC1 to anything). errors.Is(err,
// ErrUnsupported) holds, and errors.As finds the *CompletionError.
type NotSupportedError struct {
	What string // "LAN parameter 20 (802.1q VLAN ID)", "Get User Payload Access"
	Err  *CompletionError
}

func (e *NotSupportedError) Error() string {
	return fmt.Sprintf("%s: not supported by the BMC (%v, %#02x)", e.What, e.Err.Code, uint8(e.Err.Code))
}

func (e *NotSupportedError) Unwrap() []error { return []error{ErrUnsupported, e.Err} }

// IsNotSupported reports whether err says the BMC does not implement what
// was asked (see NotSupportedError).
func IsNotSupported(err error) bool { return errors.Is(err, ErrUnsupported) }

// Completion codes callers of the configuration commands branch on, with
// errors.As(err, &ce) and ce.Code.
const (
	CCParamNotSupported  = wire.CCParamNotSupported  // Get/Set LAN or SOL Configuration Parameters
	CCParamReadOnly      = wire.CCParamReadOnly      // Set: read-only parameter
	CCParamSetInProgress = wire.CCParamSetInProgress // Set: another client holds "set in progress"
	CCPasswordTestFailed = wire.CCPasswordTestFailed // Set User Password, test: wrong password
	CCInvalidField       = wire.CCInvalidField
	CCInvalidCommand     = wire.CCInvalidCommand
	CCInsufficientPriv   = wire.CCInsufficientPriv
)

// do runs one command on c. what names the command for errors; param is
// true for the configuration-parameter commands, whose 0x80 means "not
// supported" (and, for gets, 0xC9 and 0xCC too: ipmitool treats them so,
// as some BMCs answer unknown parameters with them).
func do(ctx context.Context, c Commander, netFn wire.NetFn, cmd uint8, data []byte, what string, param, get bool) ([]byte, error) {
	r, err := c.Do(ctx, netFn, cmd, data)
	if err == nil {
		return r, nil
	}
	var ce *CompletionError
	if errors.As(err, &ce) {
		switch {
		case ce.Code == wire.CCInvalidCommand,
			param && ce.Code == wire.CCParamNotSupported,
			param && get && (ce.Code == wire.CCParamOutOfRange || ce.Code == wire.CCInvalidField):
			return nil, fmt.Errorf("ipmilan: %w", &NotSupportedError{What: what, Err: ce})
		}
	}
	return nil, fmt.Errorf("ipmilan: %s: %w", what, err)
}

// protoErr wraps a malformed answer.
func protoErr(what string, err error) error {
	return fmt.Errorf("ipmilan: %s: %w: %v", what, ErrProtocol, err)
}
