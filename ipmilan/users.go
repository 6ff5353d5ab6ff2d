package ipmilan

import (
	"context"
	"errors"
	"fmt"

	"github.com/solgate/solgate/ipmilan/internal/wire"
)

// User account types (spec 22.26-22.30, 24.6-24.7).
type (
	UserAccess       = wire.UserAccess
	UserEnableStatus = wire.UserEnableStatus
	PayloadAccess    = wire.PayloadAccess
)

// User enable states, the SOL payload bit and PrivNoAccess.
const (
	UserStatusUnspecified = wire.UserStatusUnspecified
	UserStatusEnabled     = wire.UserStatusEnabled
	UserStatusDisabled    = wire.UserStatusDisabled
	PayloadSOLBit         = wire.PayloadSOLBit
	PrivCallback          = wire.PrivCallback
	PrivOEM               = wire.PrivOEM
	PrivNoAccess          = wire.PrivNoAccess
	MaxUserID             = wire.MaxUserID
	MaxUserNameLen        = wire.UserNameLen
	MaxPassword20         = 20
	MaxPassword16         = 16
)

// ParsePrivilegeLimit is ParsePrivilege for limits: it also accepts
// "callback", "oem" and "none" (no access).
func ParsePrivilegeLimit(s string) (Privilege, error) {
	if p, ok := wire.ParsePrivilegeName(s); ok {
		return p, nil
	}
	return 0, fmt.Errorf("ipmilan: privilege %q: want callback, user, operator, admin, oem or none", s)
}

func checkUserID(id uint8) error {
	if id < 1 || id > wire.MaxUserID {
		return fmt.Errorf("ipmilan: user ID %d: want 1-%d", id, wire.MaxUserID)
	}
	return nil
}

// GetUserAccess runs Get User Access for user id on channel ch.
func GetUserAccess(ctx context.Context, c Commander, ch, id uint8) (UserAccess, error) {
	if err := checkUserID(id); err != nil {
		return UserAccess{}, err
	}
	req := wire.UserChannelRequest{Channel: ch, UserID: id}.Append(nil)
	r, err := do(ctx, c, wire.NetFnApp, wire.CmdGetUserAccess, req, fmt.Sprintf("get user %d access", id), false, true)
	if err != nil {
		return UserAccess{}, err
	}
	a, err := wire.ParseUserAccess(r)
	if err != nil {
		return a, protoErr("get user access", err)
	}
	return a, nil
}

// SetUserAccess runs Set User Access: the privilege limit of user id on
// channel ch, and the callback, link-authentication and IPMI-messaging
// bits of a (all written together).
func SetUserAccess(ctx context.Context, c Commander, ch, id uint8, a UserAccess) error {
	if err := checkUserID(id); err != nil {
		return err
	}
	req := wire.SetUserAccessRequest{Channel: ch, UserID: id, ChangeBits: true, CallbackOnly: a.CallbackOnly,
		LinkAuth: a.LinkAuth, IPMIMessaging: a.IPMIMessaging, PrivLimit: a.PrivLimit}.Append(nil)
	_, err := do(ctx, c, wire.NetFnApp, wire.CmdSetUserAccess, req, fmt.Sprintf("set user %d access", id), false, false)
	return err
}

// GetUserName runs Get User Name. An unused user ID that the BMC answers
// with "invalid data field" (as some do) reads as the empty name.
func GetUserName(ctx context.Context, c Commander, id uint8) (string, error) {
	if err := checkUserID(id); err != nil {
		return "", err
	}
	r, err := do(ctx, c, wire.NetFnApp, wire.CmdGetUserName, []byte{id}, fmt.Sprintf("get user %d name", id), false, true)
	if err != nil {
		var ce *CompletionError
		if errors.As(err, &ce) && ce.Code == wire.CCInvalidField {
			return "", nil
		}
		return "", err
	}
	n, err := wire.ParseUserName(r)
	if err != nil {
		return "", protoErr("get user name", err)
	}
	return n.String(), nil
}

// SetUserName runs Set User Name (at most 16 bytes, no NUL).
func SetUserName(ctx context.Context, c Commander, id uint8, name string) error {
	if err := checkUserID(id); err != nil {
		return err
	}
	n, ok := wire.UserNameOf(name)
	if !ok {
		return fmt.Errorf("ipmilan: user name %q: want at most %d bytes and no NUL", name, wire.UserNameLen)
	}
	req := wire.SetUserNameRequest{UserID: id, Name: n}.Append(nil)
	_, err := do(ctx, c, wire.NetFnApp, wire.CmdSetUserName, req, fmt.Sprintf("set user %d name", id), false, false)
	return err
}

// PasswordSize selects the stored form of a password: 16 bytes (usable by
// IPMI v1.5 and v2.0) or 20 bytes (IPMI v2.0 only).
type PasswordSize int

const (
	PasswordAuto PasswordSize = 0 // 20 if the password is longer than 16 bytes, else 16
	Password16   PasswordSize = 16
	Password20   PasswordSize = 20
)

// Check reports whether pw fits the size, and whether it would be stored
// in the 20-byte form.
func (s PasswordSize) Check(pw Secret) (size20 bool, err error) {
	switch s {
	case PasswordAuto:
		if len(pw) > MaxPassword20 {
			return false, fmt.Errorf("ipmilan: password longer than %d bytes", MaxPassword20)
		}
		return len(pw) > MaxPassword16, nil
	case Password16:
		if len(pw) > MaxPassword16 {
			return false, fmt.Errorf("ipmilan: password longer than 16 bytes for the 16-byte form")
		}
		return false, nil
	case Password20:
		if len(pw) > MaxPassword20 {
			return false, fmt.Errorf("ipmilan: password longer than %d bytes", MaxPassword20)
		}
		return true, nil
	}
	return false, fmt.Errorf("ipmilan: password size %d: want 16 or 20", int(s))
}

func setPassword(ctx context.Context, c Commander, id uint8, op wire.PasswordOp, pw Secret, size PasswordSize) ([]byte, error) {
	if err := checkUserID(id); err != nil {
		return nil, err
	}
	s20, err := size.Check(pw)
	if err != nil {
		return nil, err
	}
	req := wire.SetUserPasswordRequest{UserID: id, Op: op, Size20: s20, Password: pw}.Append(nil)
	defer clear(req)
	return c.Do(ctx, wire.NetFnApp, wire.CmdSetUserPassword, req)
}

// SetUserPassword stores user id's password in the 16- or 20-byte form.
func SetUserPassword(ctx context.Context, c Commander, id uint8, pw Secret, size PasswordSize) error {
	if _, err := setPassword(ctx, c, id, wire.PasswordSet, pw, size); err != nil {
		return wrapCmdErr(err, fmt.Sprintf("set user %d password", id))
	}
	return nil
}

// TestUserPassword asks the BMC whether pw is user id's password, in the
// given stored form. A wrong password is (false, nil).
func TestUserPassword(ctx context.Context, c Commander, id uint8, pw Secret, size PasswordSize) (bool, error) {
	_, err := setPassword(ctx, c, id, wire.PasswordTest, pw, size)
	if err == nil {
		return true, nil
	}
	var ce *CompletionError
	if errors.As(err, &ce) && (ce.Code == wire.CCPasswordTestFailed || ce.Code == wire.CCPasswordWrongSize) {
		return false, nil
	}
	return false, wrapCmdErr(err, fmt.Sprintf("test user %d password", id))
}

// EnableUser enables or disables user id (Set User Password's enable and
// disable operations).
func EnableUser(ctx context.Context, c Commander, id uint8, enable bool) error {
	op, what := wire.PasswordDisableUser, "disable"
	if enable {
		op, what = wire.PasswordEnableUser, "enable"
	}
	if err := checkUserID(id); err != nil {
		return err
	}
	req := wire.SetUserPasswordRequest{UserID: id, Op: op}.Append(nil)
	_, err := do(ctx, c, wire.NetFnApp, wire.CmdSetUserPassword, req, fmt.Sprintf("%s user %d", what, id), false, false)
	return err
}

func wrapCmdErr(err error, what string) error {
	var ce *CompletionError
	if errors.As(err, &ce) && ce.Code == wire.CCInvalidCommand {
		return fmt.Errorf("ipmilan: %w", &NotSupportedError{What: what, Err: ce})
	}
	return fmt.Errorf("ipmilan: %s: %w", what, err)
}

// GetUserPayloadAccess runs Get User Payload Access.
func GetUserPayloadAccess(ctx context.Context, c Commander, ch, id uint8) (PayloadAccess, error) {
	if err := checkUserID(id); err != nil {
		return PayloadAccess{}, err
	}
	req := wire.UserChannelRequest{Channel: ch, UserID: id}.Append(nil)
	r, err := do(ctx, c, wire.NetFnApp, wire.CmdGetUserPayloadAccess, req, fmt.Sprintf("get user %d payload access", id), false, true)
	if err != nil {
		return PayloadAccess{}, err
	}
	p, err := wire.ParsePayloadAccess(r)
	if err != nil {
		return p, protoErr("get user payload access", err)
	}
	return p, nil
}

// SetUserPayloadAccess enables (or, with disable, disables) the payloads
// whose bits p has for user id on channel ch; other payloads keep their
// setting.
func SetUserPayloadAccess(ctx context.Context, c Commander, ch, id uint8, p PayloadAccess, disable bool) error {
	if err := checkUserID(id); err != nil {
		return err
	}
	req := wire.SetUserPayloadAccessRequest{Channel: ch, UserID: id, Disable: disable, Payloads: p}.Append(nil)
	_, err := do(ctx, c, wire.NetFnApp, wire.CmdSetUserPayloadAccess, req, fmt.Sprintf("set user %d payload access", id), false, false)
	return err
}

// User is one user ID's account as ListUsers reads it.
type User struct {
	ID     uint8
	Name   string
	Access UserAccess
	// Payload is the user's payload access; PayloadErr says why it could
	// not be read (a *NotSupportedError on BMCs without the command).
	Payload    PayloadAccess
	PayloadErr error
}

// Enabled reports whether the user can log in, as far as the BMC says:
// its enable status, or, when the BMC leaves that unspecified (IPMI v2.0
// before errata 3), whether it has IPMI messaging and a privilege limit.
func (u User) Enabled() bool {
	switch u.Access.Status {
	case UserStatusEnabled:
		return true
	case UserStatusDisabled:
		return false
	}
	return u.Access.IPMIMessaging && u.Access.PrivLimit >= PrivCallback && u.Access.PrivLimit <= PrivOEM
}

// ListUsers reads every user ID of channel ch: name, access and payload
// access. It returns the Get User Access counts of user 1 too.
func ListUsers(ctx context.Context, c Commander, ch uint8) ([]User, UserAccess, error) {
	first, err := GetUserAccess(ctx, c, ch, 1)
	if err != nil {
		return nil, first, err
	}
	max := first.MaxIDs
	if max < 1 {
		return nil, first, protoErr("get user access", fmt.Errorf("channel %d has %d user IDs", ch, max))
	}
	users := make([]User, 0, max)
	payloadUnsupported := error(nil)
	for id := uint8(1); id <= max; id++ {
		u := User{ID: id, Access: first}
		if id > 1 {
			if u.Access, err = GetUserAccess(ctx, c, ch, id); err != nil {
				return users, first, err
			}
		}
		if u.Name, err = GetUserName(ctx, c, id); err != nil {
			return users, first, err
		}
		if payloadUnsupported != nil {
			u.PayloadErr = payloadUnsupported
		} else if u.Payload, err = GetUserPayloadAccess(ctx, c, ch, id); err != nil {
			if !IsNotSupported(err) {
				return users, first, err
			}
			u.PayloadErr, payloadUnsupported = err, err // not asked again for every user
		}
		users = append(users, u)
	}
	return users, first, nil
}
