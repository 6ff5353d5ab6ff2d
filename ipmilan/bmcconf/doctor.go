package bmcconf

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/solgate/solgate/ipmilan"
)

// Expect is what solgate needs from a BMC.
type Expect struct {
	// BitRate is the console speed of the node's serial port (default
	// 115200).
	BitRate ipmilan.BitRate
	// User is the user solgate logs in with; its SOL access, privilege
	// and enable state are checked. Empty: the user of the snapshot's
	// session, if known.
	User string
	// Privilege is the session privilege solgate uses (default admin).
	Privilege ipmilan.Privilege
	// CipherSuite is the configured suite; 0 means automatic (17 or 3
	// must be offered).
	CipherSuite int
}

// Problem is one failed check.
type Problem struct {
	Check    string // the check's name, e.g. "sol.enable"
	Insecure bool   // a security problem (else SOL does not work)
	Message  string // one line saying what is wrong
	// Fix is the command that repairs it, as arguments after "solgate
	// bmc" with HOST standing for the host: {"set", HOST, "sol.enable=on"}.
	// Empty when no command can (the Message then says what to do).
	Fix []string
}

// HOST is the placeholder for the host in Problem.Fix.
const HOST = "\x00HOST"

// Checks lists every check Diagnose runs, for help texts and to report a
// clean BMC.
var Checks = []struct{ Name, Help string }{
	{"sol.supported", "the BMC has SOL configuration parameters"},
	{"sol.enable", "SOL is enabled"},
	{"sol.bitrate", "the SOL bit rate is set, in both copies, to the console speed (--baud)"},
	{"user", "the login user exists, is enabled, has IPMI messaging and the session privilege"},
	{"sol.privilege", "the privilege SOL needs is within the user's and the channel's limit"},
	{"user.sol", "the login user has SOL payload access"},
	{"channel.access", "IPMI messaging on the LAN channel is always available, with the session privilege"},
	{"channel.auth", "per-message and user-level authentication are on"},
	{"cipher.zero", "cipher suite 0 (no authentication at all) is not usable"},
	{"cipher.offered", "the configured cipher suite (or 17 or 3) is offered"},
	{"auth.none", "IPMI 1.5 authentication type none is disabled at every level"},
	{"auth.password", "IPMI 1.5 straight (clear-text) password authentication is disabled"},
	{"user.null", "no enabled user has an empty name (null or anonymous login)"},
	{"user.anonymous", "no enabled user is called anonymous, and the BMC reports no anonymous login"},
}

// Diagnose checks s against e. It returns the problems found and the
// checks it could not run (with why: the BMC does not support what they
// read).
func Diagnose(s *Snapshot, e Expect) (problems []Problem, skipped []string) {
	if e.BitRate == 0 {
		e.BitRate = ipmilan.BitRate115200
	}
	if e.Privilege == 0 {
		e.Privilege = ipmilan.PrivAdmin
	}
	add := func(check string, insecure bool, fix []string, format string, args ...any) {
		problems = append(problems, Problem{Check: check, Insecure: insecure, Message: fmt.Sprintf(format, args...), Fix: fix})
	}
	skip := func(check string, err error) {
		skipped = append(skipped, fmt.Sprintf("%s: %v", check, err))
	}
	set := func(kv ...string) []string { return append([]string{"set", HOST}, kv...) }
	user := func(args ...string) []string { return append([]string{"user", HOST}, args...) }

	// The login user.
	var u *ipmilan.User
	switch {
	case s.UsersErr != nil:
		skip("user", s.UsersErr)
	case e.User != "":
		for i := range s.Users {
			if s.Users[i].Name == e.User {
				u = &s.Users[i]
			}
		}
		if u == nil {
			add("user", false, user("add", e.User, privName(e.Privilege), "--new-password-file", "FILE"), "user %q does not exist", e.User)
		}
	case s.Self.UserID != 0:
		u = s.User(s.Self.UserID)
	default:
		skip("user", fmt.Errorf("no login user known (give -u)"))
	}
	ref := func(u *ipmilan.User) string {
		if u.Name == "" {
			return strconv.Itoa(int(u.ID))
		}
		return u.Name
	}
	limit := ipmilan.Privilege(0)
	if u != nil {
		limit = s.UserLimit(u)
		switch {
		case u.Access.Status == ipmilan.UserStatusDisabled:
			add("user", false, user("enable", ref(u)), "user %q (ID %d) is disabled", u.Name, u.ID)
		case !u.Access.IPMIMessaging:
			add("user", false, user("privilege", ref(u), privName(e.Privilege)), "user %q has IPMI messaging off: it cannot open LAN sessions", u.Name)
		case u.Access.PrivLimit == ipmilan.PrivNoAccess || u.Access.PrivLimit == 0 || u.Access.PrivLimit < e.Privilege:
			add("user", false, user("privilege", ref(u), privName(e.Privilege)), "user %q is limited to %s, solgate uses %s", u.Name, privName(u.Access.PrivLimit), privName(e.Privilege))
		}
	}

	// SOL.
	sol := s.SOL
	if sol == nil || !sol.Supports(ipmilan.SOLEnable) {
		add("sol.supported", false, nil, "the BMC has no SOL configuration (Get SOL Configuration Parameters is not supported): SOL may be unavailable")
	} else {
		if !sol.Enabled {
			add("sol.enable", false, set("sol.enable=on"), "SOL is disabled")
		}
		want := e.BitRate.String()
		var bad []string
		for _, c := range []struct {
			p    ipmilan.SOLParam
			name string
			r    ipmilan.BitRate
		}{{ipmilan.SOLVBitRate, "volatile", sol.VBitRate}, {ipmilan.SOLNVBitRate, "non-volatile", sol.NVBitRate}} {
			if !sol.Supports(c.p) {
				continue
			}
			switch {
			case c.r == ipmilan.BitRateSerial:
				bad = append(bad, c.name+" not set (follows the serial channel)")
			case c.r != e.BitRate:
				bad = append(bad, c.name+" "+c.r.String())
			}
		}
		switch {
		case !sol.Supports(ipmilan.SOLVBitRate) && !sol.Supports(ipmilan.SOLNVBitRate):
			skip("sol.bitrate", fmt.Errorf("SOL bit rate parameters: %w", ipmilan.ErrUnsupported))
		case len(bad) > 0:
			add("sol.bitrate", false, set("sol.bitrate="+want), "SOL bit rate: %s, the console runs at %s", strings.Join(bad, ", "), want)
		}
		switch {
		case !sol.Supports(ipmilan.SOLAuthParam):
			skip("sol.privilege", fmt.Errorf("SOL authentication parameter: %w", ipmilan.ErrUnsupported))
		case u != nil && limit >= ipmilan.PrivUser && sol.Auth.Priv > limit:
			add("sol.privilege", false, set("sol.privilege="+privName(limit)), "SOL needs %s privilege, user %q has at most %s", privName(sol.Auth.Priv), u.Name, privName(limit))
		case sol.Auth.Priv > e.Privilege:
			add("sol.privilege", false, set("sol.privilege="+privName(e.Privilege)), "SOL needs %s privilege, solgate's sessions have %s", privName(sol.Auth.Priv), privName(e.Privilege))
		case s.AccessErr == nil && s.Access.PrivLimit != 0 && sol.Auth.Priv > s.Access.PrivLimit:
			add("sol.privilege", false, set("channel.privilege="+privName(e.Privilege)), "SOL needs %s privilege, the LAN channel allows at most %s", privName(sol.Auth.Priv), privName(s.Access.PrivLimit))
		}
	}
	if u != nil {
		switch {
		case u.PayloadErr != nil:
			skip("user.sol", u.PayloadErr)
		case !u.Payload.SOL():
			add("user.sol", false, user("sol", ref(u), "on"), "user %q has no SOL payload access", u.Name)
		}
	}

	// The channel.
	if s.AccessErr != nil {
		skip("channel.access", s.AccessErr)
		skip("channel.auth", s.AccessErr)
	} else {
		a := s.Access
		if a.Mode != ipmilan.AccessAlways && a.Mode != ipmilan.AccessShared {
			add("channel.access", false, set("channel.access=always"), "IPMI messaging on LAN channel %d is %s", s.Channel, a.Mode)
		}
		if a.PrivLimit < e.Privilege {
			add("channel.access", false, set("channel.privilege="+privName(e.Privilege)), "LAN channel %d allows at most %s privilege, solgate uses %s", s.Channel, privName(a.PrivLimit), privName(e.Privilege))
		}
		if a.PerMsgAuthOff {
			add("channel.auth", true, set("channel.per-msg-auth=on"), "per-message authentication is off: IPMI 1.5 messages after login are not authenticated")
		}
		if a.UserAuthOff {
			add("channel.auth", true, set("channel.user-auth=on"), "user-level authentication is off: user-level commands need no authentication")
		}
	}

	// Cipher suites.
	lan := s.LAN
	privsKnown := lan != nil && lan.Supports(ipmilan.LANCipherSuitePrivs) && lan.Supports(ipmilan.LANCipherSuiteEntries)
	// usable: listed by Get Channel Cipher Suites (when it answers) and,
	// when the suite has a parameter 24 entry, not set unused there.
	usable := func(id uint8) bool {
		listed := s.CiphersErr != nil || slices.Contains(s.Ciphers, id)
		if privsKnown {
			if p, ok := lan.CipherPriv(id); ok {
				return p != 0 && listed
			}
		}
		return s.CiphersErr == nil && listed
	}
	if s.CiphersErr != nil && !privsKnown {
		skip("cipher.zero", s.CiphersErr)
		skip("cipher.offered", s.CiphersErr)
	} else {
		if usable(0) {
			var fix []string
			if privsKnown {
				if _, has := lan.CipherPriv(0); has {
					fix = set("lan.cipher.0=unused")
				}
			}
			msg := "cipher suite 0 is enabled: anyone who knows a user name logs in without a password"
			if fix == nil {
				msg += " (disable it in the BMC's own configuration)"
			}
			add("cipher.zero", true, fix, "%s", msg)
		}
		wantSuites := []uint8{17, 3}
		if e.CipherSuite != 0 {
			wantSuites = []uint8{uint8(e.CipherSuite)}
		}
		found := false
		for _, id := range wantSuites {
			found = found || usable(id)
		}
		if !found {
			var fix []string
			for _, id := range wantSuites {
				if privsKnown {
					if _, has := lan.CipherPriv(id); has {
						fix = set(fmt.Sprintf("lan.cipher.%d=%s", id, privName(e.Privilege)))
						break
					}
				}
			}
			what := fmt.Sprintf("cipher suite %d", wantSuites[0])
			if len(wantSuites) > 1 {
				what = "neither cipher suite 17 nor 3"
			}
			verb := " is not offered"
			if len(wantSuites) > 1 {
				verb = " is offered"
			}
			msg := fmt.Sprintf("%s%s (it offers %s)", what, verb, joinIDs(s.Ciphers))
			if fix == nil {
				msg += ": configure a suite it offers"
			}
			add("cipher.offered", false, fix, "%s", msg)
		}
	}

	// IPMI 1.5 authentication types.
	if lan == nil || !lan.Supports(ipmilan.LANAuthTypeEnables) {
		skip("auth.none", errUnsupported("LAN parameter 2 (authentication type enables)"))
	} else {
		for _, bad := range []struct {
			check string
			t     ipmilan.AuthType
			what  string
		}{{"auth.none", ipmilan.AuthNone, "authentication type none (no password at all)"}, {"auth.password", ipmilan.AuthPassword, "straight password authentication (the password in clear text)"}} {
			for i, m := range lan.AuthEnables {
				if !m.Has(bad.t) {
					continue
				}
				level := ipmilan.AuthEnableLevels[i].String()
				add(bad.check, true, set(fmt.Sprintf("lan.auth.%s=%s", level, (m&^(1<<bad.t)).String())),
					"IPMI 1.5 %s is enabled for %s level", bad.what, level)
			}
		}
	}

	// Null and anonymous users.
	if s.UsersErr == nil {
		for _, x := range s.Users {
			switch {
			case x.Name == "" && x.Enabled():
				add("user.null", true, user("disable", strconv.Itoa(int(x.ID))), "user %d has no name and is enabled: null or anonymous login", x.ID)
			case strings.EqualFold(x.Name, "anonymous") && x.Enabled():
				add("user.anonymous", true, user("disable", strconv.Itoa(int(x.ID))), "user %d is called %q and is enabled", x.ID, x.Name)
			}
		}
	}
	if s.AuthCapsErr == nil {
		nullFound := false
		for _, p := range problems {
			nullFound = nullFound || p.Check == "user.null"
		}
		if (s.AuthCaps.Anonymous || s.AuthCaps.NullUsers) && !nullFound {
			add("user.anonymous", true, nil, "the BMC reports anonymous or null-user login enabled, but no such user could be found: check its users")
		}
	}
	return problems, skipped
}

func joinIDs(ids []uint8) string {
	if len(ids) == 0 {
		return "none"
	}
	var s []string
	for _, id := range ids {
		s = append(s, strconv.Itoa(int(id)))
	}
	return strings.Join(s, ",")
}
