package bmcconf

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/solgate/solgate/ipmilan"
)

// Snapshot is what Read found on one BMC. A part the BMC does not support
// has its *Err field set to an error for which ipmilan.IsNotSupported
// holds; other failures make Read fail.
type Snapshot struct {
	Channel uint8 // the LAN channel

	LAN *ipmilan.LANConfig // Unsupported lists parameters the BMC lacks

	Access, AccessNV ipmilan.ChannelAccess // active and stored copies
	AccessErr        error

	// Ciphers are the suites Get Channel Cipher Suites lists.
	Ciphers    []uint8
	CiphersErr error

	AuthCaps    ipmilan.AuthCaps // anonymous and null-user bits
	AuthCapsErr error

	SOL *ipmilan.SOLConfig // Unsupported lists parameters the BMC lacks

	Users       []ipmilan.User // every user ID, 1 first
	UserSummary ipmilan.UserAccess
	UsersErr    error

	// Self is the session the snapshot was read through; zero in-band.
	Self Self
}

// Self describes the LAN session a Commander holds, so that changes that
// would cut it off can be recognised.
type Self struct {
	LAN       bool // a LAN session (else in-band: nothing to cut off)
	UserID    uint8
	Privilege ipmilan.Privilege
	Suite     int // RMCP+ cipher suite; 0 for IPMI v1.5
}

// sessionInfoer is what a *ipmilan.Session has and an *ipmilan.Inband
// lacks.
type sessionInfoer interface {
	SessionInfo(ctx context.Context) (ipmilan.SessionInfo, error)
	CipherSuite() int
}

// Read takes a snapshot of the BMC behind c. ch is the LAN channel; 0
// finds it.
func Read(ctx context.Context, c ipmilan.Commander, ch uint8) (*Snapshot, error) {
	var err error
	if ch == 0 {
		if ch, err = ipmilan.FindLANChannel(ctx, c); err != nil {
			return nil, err
		}
	}
	s := &Snapshot{Channel: ch}
	if si, ok := c.(sessionInfoer); ok {
		s.Self = Self{LAN: true, Privilege: ipmilan.PrivAdmin, Suite: si.CipherSuite()}
		info, err := si.SessionInfo(ctx)
		switch ce := new(ipmilan.CompletionError); {
		case err == nil:
			s.Self.UserID, s.Self.Privilege = info.UserID, info.Privilege
		case errors.As(err, &ce):
			// No Get Session Info: assume the worst (admin), and let
			// the caller name the login user (SetLoginUser).
		default:
			return nil, err
		}
	}
	if s.LAN, err = ipmilan.ReadLANConfig(ctx, c, ch); err != nil {
		return nil, err
	}
	if s.Access, err = ipmilan.GetChannelAccess(ctx, c, ch, ipmilan.AccessVolatile); err == nil {
		s.AccessNV, err = ipmilan.GetChannelAccess(ctx, c, ch, ipmilan.AccessNonVolatile)
	}
	if s.AccessErr, err = split(err); err != nil {
		return nil, err
	}
	recs, err := ipmilan.GetChannelCipherSuites(ctx, c, ch)
	for _, r := range recs {
		if !r.OEM {
			s.Ciphers = append(s.Ciphers, r.ID)
		}
	}
	if s.CiphersErr, err = split(err); err != nil {
		return nil, err
	}
	// Auxiliary: some BMCs answer it only outside a session (ipmi_sim:
	// 0xD5), so any refusal is kept, not fatal.
	s.AuthCaps, err = ipmilan.GetChannelAuthCaps(ctx, c, ch, ipmilan.PrivAdmin)
	if ce := new(ipmilan.CompletionError); errors.As(err, &ce) {
		s.AuthCapsErr, err = err, nil
	}
	if s.AuthCapsErr, err = keepErr(s.AuthCapsErr, err); err != nil {
		return nil, err
	}
	if s.SOL, err = ipmilan.ReadSOLConfig(ctx, c, ch); err != nil {
		return nil, err
	}
	s.Users, s.UserSummary, err = ipmilan.ListUsers(ctx, c, ch)
	if s.UsersErr, err = split(err); err != nil {
		return nil, err
	}
	return s, nil
}

// keepErr merges a kept refusal with split's view of err.
func keepErr(kept, err error) (error, error) {
	if kept != nil {
		return kept, nil
	}
	return split(err)
}

// split separates "not supported" (kept in the snapshot) from real
// failures.
func split(err error) (unsupported, fail error) {
	if err == nil {
		return nil, nil
	}
	if ipmilan.IsNotSupported(err) {
		return err, nil
	}
	return nil, err
}

// Clone returns a deep copy, the starting point of a desired state.
func (s *Snapshot) Clone() *Snapshot {
	c := *s
	if s.LAN != nil {
		l := *s.LAN
		l.CipherSuites = slices.Clone(l.CipherSuites)
		l.CipherPrivs = slices.Clone(l.CipherPrivs)
		l.Unsupported = slices.Clone(l.Unsupported)
		c.LAN = &l
	}
	if s.SOL != nil {
		o := *s.SOL
		o.Unsupported = slices.Clone(o.Unsupported)
		c.SOL = &o
	}
	c.Ciphers = slices.Clone(s.Ciphers)
	c.Users = slices.Clone(s.Users)
	return &c
}

// SetLoginUser tells the snapshot which user the session logged in as,
// for BMCs whose Get Session Info did not say.
func (s *Snapshot) SetLoginUser(name string) {
	if !s.Self.LAN || s.Self.UserID != 0 || name == "" {
		return
	}
	for _, u := range s.Users {
		if u.Name == name {
			s.Self.UserID = u.ID
			return
		}
	}
}

// User returns the user with ID id, or nil.
func (s *Snapshot) User(id uint8) *ipmilan.User {
	for i := range s.Users {
		if s.Users[i].ID == id {
			return &s.Users[i]
		}
	}
	return nil
}

// FindUser returns the user a command line names: by name, or by ID when
// ref is all digits.
func (s *Snapshot) FindUser(ref string) (*ipmilan.User, error) {
	if s.UsersErr != nil {
		return nil, s.UsersErr
	}
	if id, ok := userIDRef(ref); ok {
		u := s.User(id)
		if u == nil {
			return nil, fmt.Errorf("no user ID %d (the BMC has %d)", id, len(s.Users))
		}
		return u, nil
	}
	for i := range s.Users {
		if s.Users[i].Name == ref && ref != "" {
			return &s.Users[i], nil
		}
	}
	return nil, fmt.Errorf("no user named %q", ref)
}

func userIDRef(ref string) (uint8, bool) {
	if ref == "" || len(ref) > 2 {
		return 0, false
	}
	n := 0
	for _, c := range ref {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return uint8(n), n >= 1 && n <= ipmilan.MaxUserID
}

// UserLimit is the highest privilege user u can have on the LAN channel:
// its own limit, capped by the channel's.
func (s *Snapshot) UserLimit(u *ipmilan.User) ipmilan.Privilege {
	p := u.Access.PrivLimit
	if p == ipmilan.PrivNoAccess || p == 0 {
		return 0
	}
	if s.AccessErr == nil && s.Access.PrivLimit != 0 && s.Access.PrivLimit < p {
		p = s.Access.PrivLimit
	}
	return p
}
