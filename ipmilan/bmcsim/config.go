package bmcsim

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/solgate/solgate/ipmilan/internal/wire"
)

// Privilege is an IPMI privilege level; the same type as the client's.
type Privilege = wire.Privilege

// Privilege levels a User may be limited to.
const (
	PrivCallback = wire.PrivCallback
	PrivUser     = wire.PrivUser
	PrivOperator = wire.PrivOperator
	PrivAdmin    = wire.PrivAdmin
	PrivOEM      = wire.PrivOEM
)

// User is an account on the simulated BMC. Name may be empty (the null
// user); Password is at most 20 bytes (16 for IPMI v1.5 logins).
type User struct {
	Name     string
	Password string
	// MaxPriv is the highest privilege the user may reach; zero means
	// PrivAdmin.
	MaxPriv Privilege
}

// LogValue keeps the password out of logs.
func (u User) LogValue() slog.Value {
	return slog.GroupValue(slog.String("name", u.Name), slog.String("max_priv", u.MaxPriv.String()))
}

// Lockout locks a user out after repeated failed logins (wrong password in
// RAKP3 or Activate Session). The zero value disables it.
type Lockout struct {
	// Failures is the number of consecutive failures that locks the user.
	Failures int
	// Duration is how long the lock lasts (default 1 minute).
	Duration time.Duration
}

// Quirks make the simulator misbehave like known BMC firmware, so that
// clients' workarounds can be tested. The zero value is a spec-conforming
// BMC.
type Quirks struct {
	// OpenSessionPrivZero echoes the requested maximum privilege in the
	// Open Session Response (0 when the console asked for "highest")
	// instead of the level granted, like OpenIPMI's ipmi_sim; FreeIPMI
	// needs -W opensesspriv against it.
	OpenSessionPrivZero bool
	// RAKP2ExtraByte appends one byte to the RAKP2 key exchange auth code
	// (Supermicro H8QME, FreeIPMI -W supermicro20).
	RAKP2ExtraByte bool
	// BadChecksum corrupts the second checksum of every IPMI response
	// (Supermicro X9, FreeIPMI -W nochecksumcheck).
	BadChecksum bool
	// NoExtendedAuthCaps answers Get Channel Auth Caps with the 2.0 bit
	// (0x8E) with completion code 0xCC, as 1.5-only BMCs do; clients must
	// retry with 0x0E. RMCP+ sessions still work.
	NoExtendedAuthCaps bool
	// NoCipherSuiteList answers Get Channel Cipher Suites with 0xC1
	// (iLO and others where the command fails).
	NoCipherSuiteList bool
	// CorruptRAKP2 flips a bit of the RAKP2 key exchange auth code, as a
	// BMC that does not know the password (an impostor) would send: a
	// client must then not send RAKP3 (Stats.RAKP3s counts them).
	CorruptRAKP2 bool
	// PerMessageAuthOff answers IPMI 1.5 Activate Session with auth type
	// none, the BMC's way of saying per-message authentication is
	// disabled: the rest of the session goes unauthenticated both ways
	// (a downgrade clients must refuse unless told otherwise).
	PerMessageAuthOff bool
	// UnauthenticatedActivate sends the IPMI 1.5 Activate Session answer
	// with auth type none and no auth code in its session header, as
	// anyone on the path could forge it; clients must not trust it.
	UnauthenticatedActivate bool
}

// Config configures one simulated BMC. The zero value (plus at least one
// User) is a sensible IPMI v2.0 BMC: cipher suites 1, 2, 3 and 17, no
// IPMI v1.5, 16 session slots, 60 s session timeout.
type Config struct {
	Users []User
	// KG is the BMC key for two-key logins (at most 20 bytes); empty or
	// all zero means the user's password keys the session.
	KG []byte
	// CipherSuites lists the RMCP+ suites offered, in the order Get
	// Channel Cipher Suites reports them; nil means 1, 2, 3, 17. Suites
	// 6-8, 11, 12, 15 and 16 work too; suite 0 also needs AllowCipherZero.
	CipherSuites []uint8
	// AllowCipherZero allows suite 0 (no authentication at all: any
	// password is accepted).
	AllowCipherZero bool
	// Allow15 enables IPMI v1.5 sessions (MD5 and straight password).
	Allow15 bool
	// AllowAuthNone additionally enables v1.5 authentication type none.
	AllowAuthNone bool
	// GUID is the system GUID used in RAKP; zero means random.
	GUID [16]byte
	// ManufacturerID (20 bits, IANA) and ProductID for Get Device ID.
	ManufacturerID uint32
	ProductID      uint16
	// SessionTimeout ends sessions idle this long (default 60 s).
	SessionTimeout time.Duration
	// MaxSessions is the number of session slots (default 16, at most 63).
	MaxSessions int
	// SoftOffDelay is how long the "host" takes to shut down after a soft
	// shutdown request (default 100 ms); CycleDelay how long power stays
	// off in a power cycle (default 100 ms).
	SoftOffDelay time.Duration
	CycleDelay   time.Duration
	// PowerOn is the initial power state.
	PowerOn bool
	Lockout Lockout
	Quirks  Quirks
	// Faults are the initial fault injection settings (see SetFaults).
	Faults Faults
	// SOL configures Serial-over-LAN and the simulated serial console.
	SOL SOLConfig
	// MaxUsers is the number of user IDs (default 16, or one more than
	// len(Users); at most 63). Users take IDs 2 and up; ID 1 is the null
	// user, disabled.
	MaxUsers int
	// StateFile, if set, keeps the configuration clients change (users,
	// LAN, channel access, SOL settings) across restarts: loaded by New
	// when it exists, rewritten after every change (see State).
	StateFile string
	// Misconfigured starts the BMC with what `solgate bmc doctor` warns
	// about: SOL disabled at 9600 bit/s, no user with SOL payload access,
	// the anonymous user enabled, per-message authentication off and
	// cipher suite 0 offered at admin privilege.
	Misconfigured bool
	// Logger receives debug records of rejected logins and packets; nil
	// discards them.
	Logger *slog.Logger
}

const (
	defaultSessionTimeout = 60 * time.Second
	defaultMaxSessions    = 16
	maxSessionsLimit      = 63
	defaultPowerDelay     = 100 * time.Millisecond
	defaultLockDuration   = time.Minute
	channelLAN            = 1
)

var defaultSuites = []uint8{1, 2, 3, 17}

// Validate reports the first problem with the configuration.
func (c *Config) Validate() error {
	for i, u := range c.Users {
		if len(u.Name) > 16 {
			return fmt.Errorf("bmcsim: user %d: name %q longer than 16 bytes", i, u.Name)
		}
		if len(u.Password) > 20 {
			return fmt.Errorf("bmcsim: user %q: password longer than 20 bytes", u.Name)
		}
		if u.MaxPriv > PrivOEM {
			return fmt.Errorf("bmcsim: user %q: invalid privilege %d", u.Name, u.MaxPriv)
		}
	}
	if len(c.Users) > 62 {
		return fmt.Errorf("bmcsim: %d users: at most 62", len(c.Users))
	}
	if len(c.KG) > 20 {
		return fmt.Errorf("bmcsim: K_g longer than 20 bytes")
	}
	for _, id := range c.CipherSuites {
		if _, ok := suiteByID(id); !ok {
			return fmt.Errorf("bmcsim: cipher suite %d not supported (want 0-3, 6-8, 11, 12, 15-17)", id)
		}
		if id == 0 && !c.AllowCipherZero {
			return fmt.Errorf("bmcsim: cipher suite 0 listed without AllowCipherZero")
		}
	}
	if c.MaxSessions < 0 || c.MaxSessions > maxSessionsLimit {
		return fmt.Errorf("bmcsim: MaxSessions %d: want 1-%d", c.MaxSessions, maxSessionsLimit)
	}
	if err := c.SOL.validate(); err != nil {
		return err
	}
	if err := validateConf(c); err != nil {
		return err
	}
	return c.Faults.validate()
}

// withDefaults returns a copy with zero fields replaced by defaults.
func (c Config) withDefaults() Config {
	if c.CipherSuites == nil {
		c.CipherSuites = defaultSuites
		if c.AllowCipherZero {
			c.CipherSuites = append([]uint8{0}, defaultSuites...)
		}
	}
	c.CipherSuites = append([]uint8(nil), c.CipherSuites...)
	c.Users = append([]User(nil), c.Users...)
	for i := range c.Users {
		if c.Users[i].MaxPriv == 0 {
			c.Users[i].MaxPriv = PrivAdmin
		}
	}
	c.KG = append([]byte(nil), c.KG...)
	if c.SessionTimeout <= 0 {
		c.SessionTimeout = defaultSessionTimeout
	}
	if c.MaxSessions == 0 {
		c.MaxSessions = defaultMaxSessions
	}
	if c.SoftOffDelay <= 0 {
		c.SoftOffDelay = defaultPowerDelay
	}
	if c.CycleDelay <= 0 {
		c.CycleDelay = defaultPowerDelay
	}
	if c.Lockout.Failures > 0 && c.Lockout.Duration <= 0 {
		c.Lockout.Duration = defaultLockDuration
	}
	c.SOL = c.SOL.withDefaults()
	return c
}
