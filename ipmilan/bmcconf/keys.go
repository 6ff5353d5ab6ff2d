package bmcconf

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/solgate/solgate/ipmilan"
)

// A key is one settable (or, with set nil, read-only) value: how to read
// it from a Snapshot, how to put a new value into a desired Snapshot, and
// the group: the BMC parameter a writer sends for it.
type key struct {
	name, help string
	group      string
	get        func(s *Snapshot) (string, error)
	set        func(s *Snapshot, v string) error // nil: read-only
}

// ErrNotReported: the BMC does not say (IPMI v2.0 before errata 3 leaves
// a user's enable status unspecified, for example). A value with it is
// shown as unknown, and a change to it cannot be read back.
var ErrNotReported = errors.New("not reported by the BMC")

// KeyInfo describes a key for help texts.
type KeyInfo struct {
	Name, Help string
	ReadOnly   bool
}

// Keys lists the keys of `solgate bmc set` and `show`, in display order.
// Per cipher suite and per user keys are patterns: lan.cipher.N and
// user.N.FIELD.
func Keys() []KeyInfo {
	var out []KeyInfo
	for _, k := range staticKeys {
		out = append(out, KeyInfo{Name: k.name, Help: k.help, ReadOnly: k.set == nil})
	}
	out = append(out, KeyInfo{Name: "lan.cipher.N", Help: "maximum privilege of cipher suite N, or unused to disable it"})
	for _, f := range userFields {
		out = append(out, KeyInfo{Name: "user.N." + f.field, Help: f.help})
	}
	return out
}

func onOff(v bool) string {
	if v {
		return "on"
	}
	return "off"
}

func parseOnOff(v string) (bool, error) {
	switch strings.ToLower(v) {
	case "on", "true", "yes", "1", "enable", "enabled":
		return true, nil
	case "off", "false", "no", "0", "disable", "disabled":
		return false, nil
	}
	return false, fmt.Errorf("%q: want on or off", v)
}

func privName(p ipmilan.Privilege) string {
	switch {
	case p == ipmilan.PrivNoAccess:
		return "none"
	case p == 0:
		return "unused"
	case p > ipmilan.PrivOEM:
		return fmt.Sprintf("reserved(%d)", uint8(p))
	}
	return p.String()
}

func parsePriv(v string, allowNone bool) (ipmilan.Privilege, error) {
	p, err := ipmilan.ParsePrivilegeLimit(strings.ToLower(v))
	if err != nil || p == ipmilan.PrivNoAccess && !allowNone {
		return 0, fmt.Errorf("%q: want callback, user, operator, admin or oem", v)
	}
	return p, nil
}

func errUnsupported(what string) error {
	return fmt.Errorf("%s: %w", what, ipmilan.ErrUnsupported)
}

// lanGet reads a LAN parameter's value when the BMC has it.
func lanGet(p ipmilan.LANParam, f func(l *ipmilan.LANConfig) string) func(*Snapshot) (string, error) {
	return func(s *Snapshot) (string, error) {
		if s.LAN == nil || !s.LAN.Supports(p) {
			return "", errUnsupported("LAN parameter " + p.String())
		}
		return f(s.LAN), nil
	}
}

func solGet(p ipmilan.SOLParam, f func(o *ipmilan.SOLConfig) string) func(*Snapshot) (string, error) {
	return func(s *Snapshot) (string, error) {
		if s.SOL == nil || !s.SOL.Supports(p) {
			return "", errUnsupported("SOL parameter " + p.String())
		}
		return f(s.SOL), nil
	}
}

func chanGet(f func(a *ipmilan.ChannelAccess) string) func(*Snapshot) (string, error) {
	return func(s *Snapshot) (string, error) {
		if s.AccessErr != nil {
			return "", s.AccessErr
		}
		return f(&s.Access), nil
	}
}

func addrKey(name, help string, p ipmilan.LANParam, field func(l *ipmilan.LANConfig) *netip.Addr) key {
	return key{name: name, help: help, group: "lan." + strconv.Itoa(int(p)),
		get: lanGet(p, func(l *ipmilan.LANConfig) string { return field(l).String() }),
		set: func(s *Snapshot, v string) error {
			a, err := netip.ParseAddr(v)
			if err != nil || !a.Is4() {
				return fmt.Errorf("%q: want an IPv4 address", v)
			}
			*field(s.LAN) = a
			return nil
		}}
}

func authKey(level int) key {
	name := ipmilan.AuthEnableLevels[level].String()
	return key{name: "lan.auth." + name, help: "IPMI 1.5 authentication types allowed at " + name + " level: md5,password,md2,none,oem or off",
		group: "lan.2",
		get:   lanGet(ipmilan.LANAuthTypeEnables, func(l *ipmilan.LANConfig) string { return l.AuthEnables[level].String() }),
		set: func(s *Snapshot, v string) error {
			m, err := ipmilan.ParseAuthTypes(v)
			if err != nil {
				return err
			}
			s.LAN.AuthEnables[level] = m
			return nil
		}}
}

func durKey(d time.Duration) string { return d.String() }

var staticKeys = []key{
	{name: "lan.channel", help: "the LAN channel number (read-only)", get: func(s *Snapshot) (string, error) { return strconv.Itoa(int(s.Channel)), nil }},
	{name: "lan.ipsrc", help: "IP address source: static, dhcp, bios, other", group: "lan.4",
		get: lanGet(ipmilan.LANIPSource, func(l *ipmilan.LANConfig) string { return l.IPSource.String() }),
		set: func(s *Snapshot, v string) error {
			src, err := ipmilan.ParseIPSource(strings.ToLower(v))
			if err != nil {
				return err
			}
			s.LAN.IPSource = src
			return nil
		}},
	addrKey("lan.ip", "the BMC's IPv4 address", ipmilan.LANIPAddress, func(l *ipmilan.LANConfig) *netip.Addr { return &l.IP }),
	addrKey("lan.netmask", "subnet mask", ipmilan.LANSubnetMask, func(l *ipmilan.LANConfig) *netip.Addr { return &l.Netmask }),
	addrKey("lan.gateway", "default gateway address", ipmilan.LANDefaultGateway, func(l *ipmilan.LANConfig) *netip.Addr { return &l.Gateway }),
	{name: "lan.mac", help: "MAC address (read-only on many BMCs)", group: "lan.5",
		get: lanGet(ipmilan.LANMACAddress, func(l *ipmilan.LANConfig) string { return l.MAC.String() }),
		set: func(s *Snapshot, v string) error {
			hw, err := parseMAC(v)
			if err != nil {
				return err
			}
			s.LAN.MAC = hw
			return nil
		}},
	{name: "lan.vlan", help: "802.1q VLAN ID 1-4094, or off", group: "lan.20",
		get: lanGet(ipmilan.LANVLANID, func(l *ipmilan.LANConfig) string { return l.VLAN.String() }),
		set: func(s *Snapshot, v string) error {
			if b, err := parseOnOff(v); err == nil && !b {
				s.LAN.VLAN = ipmilan.VLAN{}
				return nil
			}
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > 4094 {
				return fmt.Errorf("%q: want a VLAN ID 1-4094 or off", v)
			}
			s.LAN.VLAN = ipmilan.VLAN{ID: uint16(n), Enabled: true}
			return nil
		}},
	{name: "lan.auth.support", help: "IPMI 1.5 authentication types the BMC implements (read-only)",
		get: lanGet(ipmilan.LANAuthTypeSupport, func(l *ipmilan.LANConfig) string { return l.AuthSupport.String() })},
	{name: "lan.auth", help: "lan.auth.LEVEL for callback, user, operator and admin at once; reads \"mixed\" when they differ", group: "lan.2",
		get: lanGet(ipmilan.LANAuthTypeEnables, func(l *ipmilan.LANConfig) string {
			for _, m := range l.AuthEnables[1:4] {
				if m != l.AuthEnables[0] {
					return "mixed"
				}
			}
			return l.AuthEnables[0].String()
		}),
		set: func(s *Snapshot, v string) error {
			m, err := ipmilan.ParseAuthTypes(v)
			if err != nil {
				return err
			}
			for i := range 4 {
				s.LAN.AuthEnables[i] = m
			}
			return nil
		}},
	authKey(0), authKey(1), authKey(2), authKey(3), authKey(4),
	{name: "lan.ciphers", help: "cipher suites the BMC offers (Get Channel Cipher Suites; read-only)",
		get: func(s *Snapshot) (string, error) {
			if s.CiphersErr != nil {
				return "", s.CiphersErr
			}
			var ids []string
			for _, id := range s.Ciphers {
				ids = append(ids, strconv.Itoa(int(id)))
			}
			if len(ids) == 0 {
				return "none", nil
			}
			return strings.Join(ids, ","), nil
		}},
	{name: "channel.access", help: "IPMI messaging on the LAN channel: always, shared, preboot or disabled (channel.* keys write the active and the stored settings)", group: "channel",
		get: chanGet(func(a *ipmilan.ChannelAccess) string { return a.Mode.String() }),
		set: func(s *Snapshot, v string) error {
			m, err := ipmilan.ParseAccessMode(strings.ToLower(v))
			if err != nil {
				return err
			}
			s.Access.Mode = m
			return nil
		}},
	{name: "channel.privilege", help: "highest privilege on the LAN channel: user, operator, admin", group: "channel",
		get: chanGet(func(a *ipmilan.ChannelAccess) string { return privName(a.PrivLimit) }),
		set: func(s *Snapshot, v string) error {
			p, err := parsePriv(v, false)
			s.Access.PrivLimit = p
			return err
		}},
	{name: "channel.per-msg-auth", help: "per-message authentication (off is insecure)", group: "channel",
		get: chanGet(func(a *ipmilan.ChannelAccess) string { return onOff(!a.PerMsgAuthOff) }),
		set: func(s *Snapshot, v string) error {
			b, err := parseOnOff(v)
			s.Access.PerMsgAuthOff = !b
			return err
		}},
	{name: "channel.user-auth", help: "user-level authentication (off is insecure)", group: "channel",
		get: chanGet(func(a *ipmilan.ChannelAccess) string { return onOff(!a.UserAuthOff) }),
		set: func(s *Snapshot, v string) error {
			b, err := parseOnOff(v)
			s.Access.UserAuthOff = !b
			return err
		}},
	{name: "channel.alerting", help: "PEF alerting", group: "channel",
		get: chanGet(func(a *ipmilan.ChannelAccess) string { return onOff(!a.AlertingOff) }),
		set: func(s *Snapshot, v string) error {
			b, err := parseOnOff(v)
			s.Access.AlertingOff = !b
			return err
		}},
	{name: "sol.enable", help: "Serial-over-LAN on or off", group: "sol.1",
		get: solGet(ipmilan.SOLEnable, func(o *ipmilan.SOLConfig) string { return onOff(o.Enabled) }),
		set: func(s *Snapshot, v string) error {
			b, err := parseOnOff(v)
			s.SOL.Enabled = b
			return err
		}},
	{name: "sol.privilege", help: "privilege needed to activate SOL: user, operator, admin", group: "sol.2",
		get: solGet(ipmilan.SOLAuthParam, func(o *ipmilan.SOLConfig) string { return privName(o.Auth.Priv) }),
		set: func(s *Snapshot, v string) error {
			p, err := parsePriv(v, false)
			if err == nil && p < ipmilan.PrivUser {
				err = fmt.Errorf("%q: SOL needs at least user privilege", v)
			}
			s.SOL.Auth.Priv = p
			return err
		}},
	{name: "sol.encryption", help: "force SOL encryption", group: "sol.2",
		get: solGet(ipmilan.SOLAuthParam, func(o *ipmilan.SOLConfig) string { return onOff(o.Auth.ForceEncryption) }),
		set: func(s *Snapshot, v string) error {
			b, err := parseOnOff(v)
			s.SOL.Auth.ForceEncryption = b
			return err
		}},
	{name: "sol.authentication", help: "force SOL authentication", group: "sol.2",
		get: solGet(ipmilan.SOLAuthParam, func(o *ipmilan.SOLConfig) string { return onOff(o.Auth.ForceAuthentication) }),
		set: func(s *Snapshot, v string) error {
			b, err := parseOnOff(v)
			s.SOL.Auth.ForceAuthentication = b
			return err
		}},
	{name: "sol.accumulate", help: "character accumulate interval, 5ms to 1.275s in 5 ms steps", group: "sol.3",
		get: solGet(ipmilan.SOLAccumulate, func(o *ipmilan.SOLConfig) string { return durKey(o.Accumulate.IntervalDuration()) }),
		set: func(s *Snapshot, v string) error {
			d, err := time.ParseDuration(v)
			n := (d + ipmilan.SOLAccumulateUnit/2) / ipmilan.SOLAccumulateUnit
			if err != nil || n < 1 || n > 255 {
				return fmt.Errorf("%q: want a duration from 5ms to 1.275s", v)
			}
			s.SOL.Accumulate.Interval = uint8(n)
			return nil
		}},
	{name: "sol.threshold", help: "characters that make the BMC send at once, 1-255", group: "sol.3",
		get: solGet(ipmilan.SOLAccumulate, func(o *ipmilan.SOLConfig) string { return strconv.Itoa(int(o.Accumulate.Threshold)) }),
		set: func(s *Snapshot, v string) error {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > 255 {
				return fmt.Errorf("%q: want 1-255", v)
			}
			s.SOL.Accumulate.Threshold = uint8(n)
			return nil
		}},
	{name: "sol.retry.count", help: "resends of an unacknowledged SOL packet, 0-7", group: "sol.4",
		get: solGet(ipmilan.SOLRetry, func(o *ipmilan.SOLConfig) string { return strconv.Itoa(int(o.Retry.Count)) }),
		set: func(s *Snapshot, v string) error {
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 || n > 7 {
				return fmt.Errorf("%q: want 0-7", v)
			}
			s.SOL.Retry.Count = uint8(n)
			return nil
		}},
	{name: "sol.retry.interval", help: "wait between resends, 0 to 2.55s in 10 ms steps", group: "sol.4",
		get: solGet(ipmilan.SOLRetry, func(o *ipmilan.SOLConfig) string { return durKey(o.Retry.IntervalDuration()) }),
		set: func(s *Snapshot, v string) error {
			d, err := time.ParseDuration(v)
			n := (d + ipmilan.SOLRetryUnit/2) / ipmilan.SOLRetryUnit
			if err != nil || n < 0 || n > 255 {
				return fmt.Errorf("%q: want a duration from 0 to 2.55s", v)
			}
			s.SOL.Retry.Interval = uint8(n)
			return nil
		}},
	{name: "sol.bitrate", help: "serial speed while SOL is active (both copies): 9600, 19200, 38400, 57600, 115200; reads \"mixed\" when they differ", group: "sol.5+6",
		get: func(s *Snapshot) (string, error) {
			if s.SOL == nil || !s.SOL.Supports(ipmilan.SOLVBitRate) && !s.SOL.Supports(ipmilan.SOLNVBitRate) {
				return "", errUnsupported("SOL bit rate parameters")
			}
			switch {
			case !s.SOL.Supports(ipmilan.SOLVBitRate):
				return s.SOL.NVBitRate.String(), nil
			case !s.SOL.Supports(ipmilan.SOLNVBitRate), s.SOL.VBitRate == s.SOL.NVBitRate:
				return s.SOL.VBitRate.String(), nil
			}
			return "mixed", nil
		},
		set: func(s *Snapshot, v string) error {
			r, err := ipmilan.ParseBitRate(v)
			s.SOL.VBitRate, s.SOL.NVBitRate = r, r
			return err
		}},
	{name: "sol.bitrate.volatile", help: "the active serial speed only", group: "sol.6",
		get: solGet(ipmilan.SOLVBitRate, func(o *ipmilan.SOLConfig) string { return o.VBitRate.String() }),
		set: func(s *Snapshot, v string) error {
			r, err := ipmilan.ParseBitRate(v)
			s.SOL.VBitRate = r
			return err
		}},
	{name: "sol.bitrate.nv", help: "the stored serial speed only", group: "sol.5",
		get: solGet(ipmilan.SOLNVBitRate, func(o *ipmilan.SOLConfig) string { return o.NVBitRate.String() }),
		set: func(s *Snapshot, v string) error {
			r, err := ipmilan.ParseBitRate(v)
			s.SOL.NVBitRate = r
			return err
		}},
	{name: "sol.channel", help: "the channel SOL runs on (read-only)",
		get: solGet(ipmilan.SOLPayloadChan, func(o *ipmilan.SOLConfig) string { return strconv.Itoa(int(o.PayloadChan)) })},
	{name: "sol.port", help: "UDP port of the SOL payload (read-only on many BMCs)", group: "sol.8",
		get: solGet(ipmilan.SOLPayloadPort, func(o *ipmilan.SOLConfig) string { return strconv.Itoa(int(o.Port)) }),
		set: func(s *Snapshot, v string) error {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > 65535 {
				return fmt.Errorf("%q: want a UDP port", v)
			}
			s.SOL.Port = uint16(n)
			return nil
		}},
}

func parseMAC(v string) (ipmilan.MAC, error) {
	var m ipmilan.MAC
	parts := strings.FieldsFunc(v, func(r rune) bool { return r == ':' || r == '-' })
	if len(parts) != 6 {
		return m, fmt.Errorf("%q: want a MAC address like 02:00:00:00:00:01", v)
	}
	for i, p := range parts {
		b, err := strconv.ParseUint(p, 16, 8)
		if err != nil {
			return m, fmt.Errorf("%q: want a MAC address like 02:00:00:00:00:01", v)
		}
		m[i] = uint8(b)
	}
	return m, nil
}

// cipherKey is lan.cipher.N for a suite that has a cipher suite entry.
func cipherKey(id uint8) key {
	idx := func(l *ipmilan.LANConfig) int {
		for i, s := range l.CipherSuites {
			if s == id {
				return i
			}
		}
		return -1
	}
	return key{name: fmt.Sprintf("lan.cipher.%d", id), group: "lan.24",
		get: func(s *Snapshot) (string, error) {
			if s.LAN == nil || !s.LAN.Supports(ipmilan.LANCipherSuitePrivs) || !s.LAN.Supports(ipmilan.LANCipherSuiteEntries) {
				return "", errUnsupported("LAN parameters 23 and 24 (cipher suite privileges)")
			}
			i := idx(s.LAN)
			if i < 0 || i >= len(s.LAN.CipherPrivs) {
				return "", fmt.Errorf("cipher suite %d has no entry on this BMC: %w", id, ipmilan.ErrUnsupported)
			}
			return privName(s.LAN.CipherPrivs[i]), nil
		},
		set: func(s *Snapshot, v string) error {
			i := idx(s.LAN)
			if i < 0 || i >= len(s.LAN.CipherPrivs) {
				return fmt.Errorf("cipher suite %d has no entry on this BMC (it has %v)", id, s.LAN.CipherSuites)
			}
			p := ipmilan.Privilege(0)
			if strings.ToLower(v) != "unused" && strings.ToLower(v) != "off" {
				var err error
				if p, err = parsePriv(v, false); err != nil {
					return fmt.Errorf("%q: want callback, user, operator, admin, oem or unused", v)
				}
			}
			s.LAN.CipherPrivs[i] = p
			return nil
		}}
}

// userFields are the per-user keys user.N.FIELD.
var userFields = []struct {
	field, help, group string
	get                func(u *ipmilan.User) (string, error)
	set                func(u *ipmilan.User, v string) error
}{
	{"name", "user name, at most 16 bytes (user 1 has none)", "name",
		func(u *ipmilan.User) (string, error) { return u.Name, nil },
		func(u *ipmilan.User, v string) error {
			if len(v) > ipmilan.MaxUserNameLen || strings.ContainsRune(v, 0) {
				return fmt.Errorf("%q: want at most 16 bytes", v)
			}
			if u.ID == 1 && v != "" {
				return fmt.Errorf("user 1 is the null user: it has no name")
			}
			u.Name = v
			return nil
		}},
	{"enabled", "whether the user may log in", "enable",
		func(u *ipmilan.User) (string, error) {
			switch u.Access.Status {
			case ipmilan.UserStatusEnabled:
				return "on", nil
			case ipmilan.UserStatusDisabled:
				return "off", nil
			}
			return "", ErrNotReported
		},
		func(u *ipmilan.User, v string) error {
			b, err := parseOnOff(v)
			u.Access.Status = ipmilan.UserStatusDisabled
			if b {
				u.Access.Status = ipmilan.UserStatusEnabled
			}
			return err
		}},
	{"privilege", "privilege limit on the LAN channel: user, operator, admin, callback, oem or none", "access",
		func(u *ipmilan.User) (string, error) {
			if u.Access.PrivLimit == 0 {
				return "none", nil // reserved: ipmi_sim's unused user IDs
			}
			return privName(u.Access.PrivLimit), nil
		},
		func(u *ipmilan.User, v string) error {
			p, err := parsePriv(v, true)
			u.Access.PrivLimit = p
			return err
		}},
	{"messaging", "IPMI messaging (needed for LAN sessions)", "access",
		func(u *ipmilan.User) (string, error) { return onOff(u.Access.IPMIMessaging), nil },
		func(u *ipmilan.User, v string) error {
			b, err := parseOnOff(v)
			u.Access.IPMIMessaging = b
			return err
		}},
	{"link-auth", "link authentication", "access",
		func(u *ipmilan.User) (string, error) { return onOff(u.Access.LinkAuth), nil },
		func(u *ipmilan.User, v string) error {
			b, err := parseOnOff(v)
			u.Access.LinkAuth = b
			return err
		}},
	{"callback-only", "restricted to callback", "access",
		func(u *ipmilan.User) (string, error) { return onOff(u.Access.CallbackOnly), nil },
		func(u *ipmilan.User, v string) error {
			b, err := parseOnOff(v)
			u.Access.CallbackOnly = b
			return err
		}},
	{"sol", "SOL payload access", "payload",
		func(u *ipmilan.User) (string, error) {
			if u.PayloadErr != nil {
				return "", u.PayloadErr
			}
			return onOff(u.Payload.SOL()), nil
		},
		func(u *ipmilan.User, v string) error {
			b, err := parseOnOff(v)
			if b {
				u.Payload.Standard |= ipmilan.PayloadSOLBit
			} else {
				u.Payload.Standard &^= ipmilan.PayloadSOLBit
			}
			return err
		}},
}

// userKey is user.N.FIELD.
func userKey(id uint8, field string) (key, bool) {
	for _, f := range userFields {
		if f.field != field {
			continue
		}
		return key{name: fmt.Sprintf("user.%d.%s", id, field), group: fmt.Sprintf("user.%d.%s", id, f.group),
			get: func(s *Snapshot) (string, error) {
				if s.UsersErr != nil {
					return "", s.UsersErr
				}
				u := s.User(id)
				if u == nil {
					return "", fmt.Errorf("no user ID %d", id)
				}
				return f.get(u)
			},
			set: func(s *Snapshot, v string) error {
				if s.UsersErr != nil {
					return s.UsersErr
				}
				u := s.User(id)
				if u == nil {
					return fmt.Errorf("no user ID %d (the BMC has %d)", id, len(s.Users))
				}
				return f.set(u, v)
			}}, true
	}
	return key{}, false
}

// lookupKey finds a key by name, the patterns included.
func lookupKey(s *Snapshot, name string) (key, error) {
	for _, k := range staticKeys {
		if k.name == name {
			return k, nil
		}
	}
	if rest, ok := strings.CutPrefix(name, "lan.cipher."); ok {
		n, err := strconv.Atoi(rest)
		if err == nil && n >= 0 && n <= 255 {
			return cipherKey(uint8(n)), nil
		}
	}
	if rest, ok := strings.CutPrefix(name, "user."); ok {
		id, field, _ := strings.Cut(rest, ".")
		n, err := strconv.Atoi(id)
		if err == nil && n >= 1 && n <= ipmilan.MaxUserID {
			if k, ok := userKey(uint8(n), field); ok {
				return k, nil
			}
		}
	}
	if near := nearestKey(name); near != "" {
		return key{}, fmt.Errorf("unknown key %q: did you mean %q? (solgate bmc set --help lists them)", name, near)
	}
	return key{}, fmt.Errorf("unknown key %q (solgate bmc set --help lists them)", name)
}

// CheckKey says whether name is a key Set knows, before any BMC is asked
// (a mistyped key across a rack is one error, not one per BMC).
func CheckKey(name string) error {
	_, err := lookupKey(nil, name)
	return err
}

// nearestKey is the static key within two edits of name (a typo, a
// swapped pair), or "".
func nearestKey(name string) string {
	best, bestD := "", 3
	for _, k := range staticKeys {
		if d := editDistance(name, k.name, bestD); d < bestD {
			best, bestD = k.name, d
		}
	}
	return best
}

// editDistance is the optimal string alignment distance of a and b (an
// adjacent swap counts as one edit), or max when it is max or more.
func editDistance(a, b string, max int) int {
	if d := len(a) - len(b); d >= max || -d >= max {
		return max
	}
	prev2 := make([]int, len(b)+1)
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		rowMin := cur[0]
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
			rowMin = min(rowMin, cur[j])
		}
		if rowMin >= max {
			return max
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return min(prev[len(b)], max)
}

// Value is one key's value as shown.
type Value struct {
	Key   string
	Value string // "" when Err is set
	Err   error  // ipmilan.IsNotSupported(Err): the BMC lacks it
}

// Values lists every key's value in display order, per cipher suite
// entry and per user (users with a name or enabled only) included.
func (s *Snapshot) Values() []Value {
	var out []Value
	add := func(k key) {
		v, err := k.get(s)
		out = append(out, Value{Key: k.name, Value: v, Err: err})
	}
	for _, k := range staticKeys {
		add(k)
		if k.name == "lan.ciphers" && s.LAN != nil && s.LAN.Supports(ipmilan.LANCipherSuitePrivs) {
			ids := append([]uint8(nil), s.LAN.CipherSuites...)
			sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
			for _, id := range ids {
				add(cipherKey(id))
			}
		}
	}
	return out
}

// UserValues lists user id's per-user keys and values.
func (s *Snapshot) UserValues(id uint8) []Value {
	var out []Value
	for _, f := range userFields {
		k, _ := userKey(id, f.field)
		v, err := k.get(s)
		out = append(out, Value{Key: k.name, Value: v, Err: err})
	}
	return out
}

// ShownUsers are the users worth listing: those with a name, and enabled
// ones (an enabled nameless user is the null user).
func (s *Snapshot) ShownUsers() []ipmilan.User {
	var out []ipmilan.User
	for _, u := range s.Users {
		if u.Name != "" || u.Enabled() {
			out = append(out, u)
		}
	}
	return out
}

// writers send a group's desired state to the BMC.
var writers = map[string]func(ctx context.Context, c ipmilan.Commander, ch uint8, want *Snapshot) error{
	"lan.2": func(ctx context.Context, c ipmilan.Commander, ch uint8, w *Snapshot) error {
		return ipmilan.SetLANAuthEnables(ctx, c, ch, w.LAN.AuthEnables)
	},
	"lan.3": func(ctx context.Context, c ipmilan.Commander, ch uint8, w *Snapshot) error {
		return ipmilan.SetLANAddr(ctx, c, ch, ipmilan.LANIPAddress, w.LAN.IP)
	},
	"lan.4": func(ctx context.Context, c ipmilan.Commander, ch uint8, w *Snapshot) error {
		return ipmilan.SetLANIPSource(ctx, c, ch, w.LAN.IPSource)
	},
	"lan.5": func(ctx context.Context, c ipmilan.Commander, ch uint8, w *Snapshot) error {
		return ipmilan.SetLANMAC(ctx, c, ch, w.LAN.MAC)
	},
	"lan.6": func(ctx context.Context, c ipmilan.Commander, ch uint8, w *Snapshot) error {
		return ipmilan.SetLANAddr(ctx, c, ch, ipmilan.LANSubnetMask, w.LAN.Netmask)
	},
	"lan.12": func(ctx context.Context, c ipmilan.Commander, ch uint8, w *Snapshot) error {
		return ipmilan.SetLANAddr(ctx, c, ch, ipmilan.LANDefaultGateway, w.LAN.Gateway)
	},
	"lan.20": func(ctx context.Context, c ipmilan.Commander, ch uint8, w *Snapshot) error {
		return ipmilan.SetLANVLAN(ctx, c, ch, w.LAN.VLAN)
	},
	"lan.24": func(ctx context.Context, c ipmilan.Commander, ch uint8, w *Snapshot) error {
		return ipmilan.SetLANCipherPrivs(ctx, c, ch, w.LAN.CipherPrivs)
	},
	"channel": func(ctx context.Context, c ipmilan.Commander, ch uint8, w *Snapshot) error {
		for _, t := range []ipmilan.AccessTarget{ipmilan.AccessNonVolatile, ipmilan.AccessVolatile} {
			if err := ipmilan.SetChannelAccess(ctx, c, ch, w.Access, t, t); err != nil {
				return err
			}
		}
		return nil
	},
	"sol.1": func(ctx context.Context, c ipmilan.Commander, ch uint8, w *Snapshot) error {
		return ipmilan.SetSOLEnabled(ctx, c, ch, w.SOL.Enabled)
	},
	"sol.2": func(ctx context.Context, c ipmilan.Commander, ch uint8, w *Snapshot) error {
		return ipmilan.SetSOLAuth(ctx, c, ch, w.SOL.Auth)
	},
	"sol.3": func(ctx context.Context, c ipmilan.Commander, ch uint8, w *Snapshot) error {
		return ipmilan.SetSOLAccumulate(ctx, c, ch, w.SOL.Accumulate.IntervalDuration(), int(w.SOL.Accumulate.Threshold))
	},
	"sol.4": func(ctx context.Context, c ipmilan.Commander, ch uint8, w *Snapshot) error {
		return ipmilan.SetSOLRetry(ctx, c, ch, int(w.SOL.Retry.Count), w.SOL.Retry.IntervalDuration())
	},
	"sol.5": func(ctx context.Context, c ipmilan.Commander, ch uint8, w *Snapshot) error {
		return ipmilan.SetSOLBitRate(ctx, c, ch, false, w.SOL.NVBitRate)
	},
	"sol.6": func(ctx context.Context, c ipmilan.Commander, ch uint8, w *Snapshot) error {
		return ipmilan.SetSOLBitRate(ctx, c, ch, true, w.SOL.VBitRate)
	},
	"sol.5+6": func(ctx context.Context, c ipmilan.Commander, ch uint8, w *Snapshot) error {
		var errs []error
		for _, v := range []bool{false, true} {
			p := ipmilan.SOLNVBitRate
			r := w.SOL.NVBitRate
			if v {
				p, r = ipmilan.SOLVBitRate, w.SOL.VBitRate
			}
			if !w.SOL.Supports(p) {
				continue
			}
			errs = append(errs, ipmilan.SetSOLBitRate(ctx, c, ch, v, r))
		}
		return errors.Join(errs...)
	},
	"sol.8": func(ctx context.Context, c ipmilan.Commander, ch uint8, w *Snapshot) error {
		return ipmilan.SetSOLPort(ctx, c, ch, w.SOL.Port)
	},
}

// userWriter sends one group of a user's desired state.
func userWriter(ctx context.Context, c ipmilan.Commander, ch uint8, w *Snapshot, id uint8, group string, pw *password) error {
	u := w.User(id)
	switch group {
	case "name":
		return ipmilan.SetUserName(ctx, c, id, u.Name)
	case "password":
		return ipmilan.SetUserPassword(ctx, c, id, pw.secret, pw.size)
	case "access":
		return ipmilan.SetUserAccess(ctx, c, ch, id, u.Access)
	case "payload":
		return ipmilan.SetUserPayloadAccess(ctx, c, ch, id, ipmilan.PayloadAccess{Standard: ipmilan.PayloadSOLBit}, !u.Payload.SOL())
	case "enable":
		return ipmilan.EnableUser(ctx, c, id, u.Access.Status == ipmilan.UserStatusEnabled)
	}
	return fmt.Errorf("bmcconf: no writer for user group %q", group)
}
