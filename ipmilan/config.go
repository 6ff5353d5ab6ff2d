package ipmilan

import (
	"fmt"
	"log/slog"
	"net"
	"sort"
	"strings"
	"time"

	"github.com/solgate/solgate/ipmilan/internal/wire"
)

// Types shared with the wire codecs.
type (
	Privilege      = wire.Privilege
	CompletionCode = wire.CompletionCode
	DeviceID       = wire.DeviceID
	ChassisStatus  = wire.ChassisStatus
	ChassisControl = wire.ChassisControl
	SessionInfo    = wire.SessionInfo
	NetFn          = wire.NetFn
	AuthType       = wire.AuthType
)

// Privilege levels and chassis controls, re-exported for callers.
const (
	PrivUser     = wire.PrivUser
	PrivOperator = wire.PrivOperator
	PrivAdmin    = wire.PrivAdmin

	PowerOff      = wire.ControlPowerDown
	PowerOn       = wire.ControlPowerUp
	PowerCycle    = wire.ControlPowerCycle
	HardReset     = wire.ControlHardReset
	DiagInterrupt = wire.ControlDiagInterrupt
	SoftShutdown  = wire.ControlSoftShutdown

	AuthMD5      = wire.AuthMD5
	AuthPassword = wire.AuthPassword
	AuthNone     = wire.AuthNone
)

// ParsePrivilege maps "user", "operator" and "admin" (any case, also
// "administrator") to a Privilege.
func ParsePrivilege(s string) (Privilege, error) {
	switch strings.ToLower(s) {
	case "user":
		return PrivUser, nil
	case "operator":
		return PrivOperator, nil
	case "admin", "administrator", "":
		return PrivAdmin, nil
	}
	return 0, fmt.Errorf("ipmilan: privilege %q: want user, operator or admin", s)
}

// Secret holds a password or key. It never prints its content: with
// every fmt verb (Format), in slog records (LogValue), in JSON, XML or
// text encodings (MarshalText, MarshalJSON), it is "[redacted]". Use
// []byte(s) where the bytes are really needed.
type Secret []byte

const redacted = "[redacted]"

func (s Secret) String() string               { return redacted }
func (s Secret) GoString() string             { return `ipmilan.Secret("[redacted]")` }
func (s Secret) LogValue() slog.Value         { return slog.StringValue(redacted) }
func (s Secret) MarshalText() ([]byte, error) { return []byte(redacted), nil }
func (s Secret) MarshalJSON() ([]byte, error) { return []byte(`"` + redacted + `"`), nil }

// Format prints "[redacted]" whatever the verb and flags: without it,
// %d, %x, %o or %c would print the bytes, as fmt does for any []byte.
func (s Secret) Format(f fmt.State, verb rune) {
	switch {
	case verb == 'v' && f.Flag('#'):
		fmt.Fprint(f, s.GoString())
	case verb == 'q':
		fmt.Fprintf(f, "%q", redacted)
	default:
		fmt.Fprint(f, redacted)
	}
}

// Interface selects the IPMI version of the session.
type Interface uint8

const (
	LANPlus Interface = iota // IPMI v2.0 RMCP+ (default)
	LAN                      // IPMI v1.5
)

func (i Interface) String() string {
	if i == LAN {
		return "lan"
	}
	return "lanplus"
}

// ParseInterface accepts the ipmitool names "lanplus" and "lan".
func ParseInterface(s string) (Interface, error) {
	switch strings.ToLower(s) {
	case "lanplus", "", "2.0", "lan_2_0":
		return LANPlus, nil
	case "lan", "1.5", "lan_1_5":
		return LAN, nil
	}
	return 0, fmt.Errorf("ipmilan: interface %q: want lanplus (IPMI 2.0) or lan (IPMI 1.5)", s)
}

// Quirks are workarounds for BMC firmware bugs, named as FreeIPMI's -W
// workaround flags so that sysadmins can carry their knowledge over.
type Quirks uint32

const (
	// QuirkOpenSessionPriv sends the real privilege in Open Session
	// (BMCs that derive keys from it or reject 0).
	QuirkOpenSessionPriv Quirks = 1 << iota
	// QuirkIntel20: Intel 2.0 BMCs: NUL-padded user names, RAKP3 role
	// without name-only lookup, implies OpenSessionPriv.
	QuirkIntel20
	// QuirkSupermicro20: RAKP2 auth code one byte too long.
	QuirkSupermicro20
	// QuirkSun20: Sun ILOM: over-long RAKP2 codes, implies OpenSessionPriv.
	QuirkSun20
	// QuirkNoChecksumCheck ignores bad IPMI message checksums.
	QuirkNoChecksumCheck
	// QuirkAuthCap ignores what Get Channel Auth Caps claims.
	QuirkAuthCap
	// QuirkIDZero accepts session ID 0 in responses.
	QuirkIDZero
	// QuirkUnexpectedAuth accepts auth codes the BMC should not send.
	QuirkUnexpectedAuth
	// QuirkForcePerMsg authenticates every 1.5 message even if the BMC
	// says per-message authentication is disabled.
	QuirkForcePerMsg
	// QuirkEndianSeq: 1.5 sequence numbers byte-swapped.
	QuirkEndianSeq
	// QuirkNoAuthCodeCheck does not verify 1.5 response auth codes.
	QuirkNoAuthCodeCheck
	// QuirkIntegrityCheckValue accepts a non-empty RAKP4 value with suite 0.
	QuirkIntegrityCheckValue
	// QuirkSOLPayloadSize ignores the SOL payload sizes the BMC reports.
	QuirkSOLPayloadSize
	// QuirkSOLPort ignores an alternate SOL port.
	QuirkSOLPort
	// QuirkSOLStatus skips Get Payload Activation Status.
	QuirkSOLStatus
	// QuirkSOLChannelSupport skips Get Channel Payload Support.
	QuirkSOLChannelSupport
	// QuirkSerialAlertsDeferred asks for deferred serial alerts.
	QuirkSerialAlertsDeferred
	// QuirkSOLPacketSeq bumps the SOL sequence number once when
	// retransmissions run out.
	QuirkSOLPacketSeq
)

var quirkNames = map[string]Quirks{
	"opensesspriv": QuirkOpenSessionPriv, "intel20": QuirkIntel20, "supermicro20": QuirkSupermicro20,
	"sun20": QuirkSun20, "nochecksumcheck": QuirkNoChecksumCheck, "authcap": QuirkAuthCap,
	"idzero": QuirkIDZero, "unexpectedauth": QuirkUnexpectedAuth, "forcepermsg": QuirkForcePerMsg,
	"endianseq": QuirkEndianSeq, "noauthcodecheck": QuirkNoAuthCodeCheck,
	"integritycheckvalue": QuirkIntegrityCheckValue, "solpayloadsize": QuirkSOLPayloadSize,
	"solport": QuirkSOLPort, "solstatus": QuirkSOLStatus, "solchannelsupport": QuirkSOLChannelSupport,
	"serialalertsdeferred": QuirkSerialAlertsDeferred, "solpacketseq": QuirkSOLPacketSeq,
}

// QuirkNames lists the accepted quirk names, sorted.
func QuirkNames() []string {
	var out []string
	for n := range quirkNames {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// ParseQuirks parses names separated by commas or spaces.
func ParseQuirks(names ...string) (Quirks, error) {
	var q Quirks
	for _, s := range names {
		for _, n := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' }) {
			v, ok := quirkNames[strings.ToLower(n)]
			if !ok {
				return 0, fmt.Errorf("ipmilan: unknown quirk %q (known: %s)", n, strings.Join(QuirkNames(), ", "))
			}
			q |= v
		}
	}
	return q, nil
}

func (q Quirks) String() string {
	var out []string
	for _, n := range QuirkNames() {
		if q&quirkNames[n] != 0 {
			out = append(out, n)
		}
	}
	return strings.Join(out, ",")
}

// Has reports whether every quirk in x is set.
func (q Quirks) Has(x Quirks) bool { return q&x == x }

// Config says how to reach and authenticate to one BMC.
type Config struct {
	// Addr is the BMC as host or host:port (default port 623).
	Addr     string
	User     string
	Password Secret
	// KG is the BMC key for two-key logins (IPMI 2.0); empty if unset.
	// It may be given raw or as "0x" followed by hex digits.
	KG        Secret
	Interface Interface
	// CipherSuite is the RMCP+ suite. 0 means automatic: 17, then 3 (the
	// suites with both integrity and AES encryption), preferring those
	// the BMC lists; no other suite is ever chosen automatically. A suite
	// without integrity or without encryption (1, 2, 6, 7, 11, 15, 16)
	// must be named here and needs Insecure, or Dial fails with
	// ErrInsecure; 8 and 12 need neither. Suite 0 (no authentication at
	// all) is used only with CipherSuite 0, ForceSuiteZero and Insecure.
	CipherSuite    int
	ForceSuiteZero bool
	// AuthType is the IPMI 1.5 authentication type: MD5 (also for the
	// zero value) or, with Insecure, AuthPassword. Auth type none, whose
	// value is the zero value, is used only with ForceAuthNone and
	// Insecure, so that Insecure alone never turns authentication off.
	AuthType      AuthType
	ForceAuthNone bool
	// Privilege is the session privilege (default admin).
	Privilege Privilege
	// Insecure allows what would expose passwords or commands on the
	// network: an explicitly named cipher suite without integrity or
	// encryption (see CipherSuite), cipher suite 0 (with
	// ForceSuiteZero), IPMI 1.5 auth type none (with ForceAuthNone) and
	// straight (clear-text) passwords, and an IPMI 1.5 BMC that turns per-message
	// authentication off in its Activate Session answer (without
	// Insecure that answer fails with ErrInsecure; QuirkForcePerMsg keeps
	// authenticating instead). Each such session logs a warning when it
	// opens. Insecure never makes the client trust unauthenticated
	// answers during login.
	Insecure bool
	// Timeout is the per-attempt timeout (default 1s). Retries is the
	// number of retransmissions after the first try: 0 means the default
	// (2), negative means none. The caller's ctx bounds the whole call.
	Timeout time.Duration
	Retries int
	// KeepAlive is the idle interval between keepalive commands (default
	// 15s; negative disables). A keepalive goes when no IPMI answer came
	// for KeepAlive, up to a sixteenth of it (at most 1 s) later: due
	// times are rounded to a grid shared by every session of the process.
	KeepAlive time.Duration
	// DeadAfter ends the session when a keepalive went unanswered and
	// nothing valid has come from the BMC for this long (default twice
	// KeepAlive plus one keepalive's retries).
	DeadAfter time.Duration
	Quirks    Quirks
	Logger    *slog.Logger

	// packetConn, when set, is the socket instead of a UDP socket of its
	// own (tests: an in-memory network under testing/synctest). The
	// Session owns and closes it.
	packetConn net.PacketConn
}

func (c *Config) withDefaults() (Config, error) {
	cfg := *c
	if cfg.Addr == "" {
		return cfg, fmt.Errorf("ipmilan: no BMC address")
	}
	if _, _, err := net.SplitHostPort(cfg.Addr); err != nil {
		cfg.Addr = net.JoinHostPort(strings.Trim(cfg.Addr, "[]"), "623")
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = time.Second
	}
	switch {
	case cfg.Retries < 0:
		cfg.Retries = 0
	case cfg.Retries == 0:
		cfg.Retries = 2
	}
	if cfg.KeepAlive == 0 {
		cfg.KeepAlive = 15 * time.Second
	}
	if cfg.DeadAfter <= 0 {
		cfg.DeadAfter = 2*max(cfg.KeepAlive, 0) + time.Duration(cfg.Retries+1)*cfg.Timeout
	}
	if cfg.Privilege == 0 {
		cfg.Privilege = PrivAdmin
	}
	if cfg.Interface == LAN && cfg.AuthType == AuthNone && !cfg.ForceAuthNone {
		cfg.AuthType = AuthMD5
	}
	if len(cfg.User) > wire.MaxUserLen {
		return cfg, fmt.Errorf("ipmilan: user name longer than %d bytes", wire.MaxUserLen)
	}
	maxPw := wire.MaxPasswordLen
	if cfg.Interface == LAN {
		maxPw = 16
	}
	if len(cfg.Password) > maxPw {
		return cfg, fmt.Errorf("ipmilan: password longer than %d bytes", maxPw)
	}
	kg, err := decodeKG(cfg.KG)
	if err != nil {
		return cfg, err
	}
	cfg.KG = kg
	if cfg.Quirks.Has(QuirkIntel20) || cfg.Quirks.Has(QuirkSun20) {
		cfg.Quirks |= QuirkOpenSessionPriv
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return cfg, nil
}

func decodeKG(k Secret) (Secret, error) {
	s := string(k)
	if strings.HasPrefix(s, "0x") || strings.HasPrefix(s, "0X") {
		h := s[2:]
		if len(h)%2 != 0 || len(h)/2 > wire.MaxKGLen {
			return nil, fmt.Errorf("ipmilan: K_g: want up to %d bytes of hex after 0x", wire.MaxKGLen)
		}
		out := make([]byte, len(h)/2)
		for i := range out {
			var v byte
			for _, c := range h[2*i : 2*i+2] {
				v <<= 4
				switch {
				case c >= '0' && c <= '9':
					v |= byte(c - '0')
				case c >= 'a' && c <= 'f':
					v |= byte(c-'a') + 10
				case c >= 'A' && c <= 'F':
					v |= byte(c-'A') + 10
				default:
					return nil, fmt.Errorf("ipmilan: K_g: %q is not a hex digit", c)
				}
			}
			out[i] = v
		}
		return out, nil
	}
	if len(k) > wire.MaxKGLen {
		return nil, fmt.Errorf("ipmilan: K_g longer than %d bytes", wire.MaxKGLen)
	}
	return k, nil
}
