package config

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/solgate/solgate/logstore"
)

// ValidQuirks are the BMC workaround names a console may list, as FreeIPMI
// names them (see ipmiconsole(8) --workaround-flags).
var ValidQuirks = []string{
	"opensesspriv", "intel20", "supermicro20", "sun20", "nochecksumcheck", "authcap",
	"idzero", "unexpectedauth", "forcepermsg", "endianseq", "noauthcodecheck",
	"integritycheckvalue", "solpayloadsize", "solport", "solstatus",
	"solchannelsupport", "serialalertsdeferred", "solpacketseq",
}

// ValidCipherSuites are the RMCP+ suites a console may name (0 needs
// insecure_cipher_suite_zero).
var ValidCipherSuites = []int{1, 2, 3, 6, 7, 8, 11, 12, 15, 16, 17}

var facilities = map[string]int{
	"kern": 0, "user": 1, "mail": 2, "daemon": 3, "auth": 4, "syslog": 5, "lpr": 6,
	"news": 7, "uucp": 8, "cron": 9, "authpriv": 10, "ftp": 11,
	"local0": 16, "local1": 17, "local2": 18, "local3": 19,
	"local4": 20, "local5": 21, "local6": 22, "local7": 23,
}

// checkConsoleName reports why name is not a usable console name: the
// log store's rule (logstore.CheckConsoleName), the one rule for both,
// and not the gateway's reserved ListName.
func checkConsoleName(name string) error {
	if name == ListName {
		return fmt.Errorf("console name %q is reserved: ssh %s@HOST lists a person's consoles", name, ListName)
	}
	return logstore.CheckConsoleName(name)
}

// quote quotes a value from the configuration for a message: cut when
// long, non-ASCII shown as characters (logstore.QuoteShort, the one rule).
func quote(s string) string { return logstore.QuoteShort(s) }

// describeChar names the character at the start of s for a message: the
// character itself, or the byte when s is not valid UTF-8 there.
func describeChar(s string) string {
	r, size := utf8.DecodeRuneInString(s)
	if r == utf8.RuneError && size <= 1 {
		return fmt.Sprintf("byte %#02x", s[0])
	}
	return strconv.QuoteRune(r)
}

// checkIdent validates user and group names: [A-Za-z0-9_][A-Za-z0-9_.-]*.
func checkIdent(kind, name string) error {
	if name == "" {
		return fmt.Errorf("empty %s name", kind)
	}
	if len(name) > 64 {
		return fmt.Errorf("%s name %s is longer than 64 bytes", kind, quote(name))
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(isAlnum(c) || c == '_' || (i > 0 && (c == '.' || c == '-'))) {
			return fmt.Errorf("%s name %s contains %s (allowed: letters, digits, '_', and '.', '-' after the first)", kind, quote(name), describeChar(name[i:]))
		}
	}
	return nil
}

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// CheckBMC validates a BMC address as the configuration and the command
// line take it: a host name, an IPv4 address, or an IPv6 address (in
// brackets when a port follows), optionally followed by :port with a port
// from 1 to 65535. It resolves nothing.
func CheckBMC(addr string) error {
	if addr == "" {
		return fmt.Errorf("empty BMC address")
	}
	host, port, hasPort := addr, "", false
	switch {
	case strings.HasPrefix(addr, "["):
		end := strings.IndexByte(addr, ']')
		if end < 0 {
			return fmt.Errorf("BMC address %s: missing ']' after the IPv6 address", quote(addr))
		}
		host = addr[1:end]
		switch rest := addr[end+1:]; {
		case rest == "":
		case rest[0] == ':':
			port, hasPort = rest[1:], true
		default:
			return fmt.Errorf("BMC address %s: want [IPv6]:PORT", quote(addr))
		}
		if a, err := netip.ParseAddr(host); err != nil || !a.Is6() {
			return fmt.Errorf("BMC address %s: %s in brackets is not an IPv6 address", quote(addr), quote(host))
		}
	case strings.Count(addr, ":") > 1:
		if a, err := netip.ParseAddr(addr); err != nil || !a.Is6() {
			return fmt.Errorf("BMC address %s: want HOST, HOST:PORT or [IPv6]:PORT", quote(addr))
		}
		return nil
	case strings.Contains(addr, ":"):
		host, port, _ = strings.Cut(addr, ":")
		hasPort = true
	}
	if hasPort {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 || port[0] == '+' {
			return fmt.Errorf("BMC address %s: invalid port %s (want a number from 1 to 65535)", quote(addr), quote(port))
		}
	}
	if strings.HasPrefix(addr, "[") {
		return nil // IPv6, checked above
	}
	if host == "" {
		return fmt.Errorf("BMC address %s: no host before the port", quote(addr))
	}
	if len(host) > 253 {
		return fmt.Errorf("BMC address %s: host name longer than 253 bytes", quote(addr))
	}
	for _, label := range strings.Split(host, ".") {
		if label == "" || len(label) > 63 {
			return fmt.Errorf("BMC address %s: bad host name (an empty or over-long part between dots)", quote(addr))
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(isAlnum(c) || c == '-' || c == '_') {
				return fmt.Errorf("BMC address %s: host name contains %s", quote(addr), describeChar(label[i:]))
			}
		}
	}
	return nil
}

// ParseEscape parses an escape setting such as "^Ec": a control character
// written as ^ and a letter (or one of @[\]^_), then the command character.
// It returns the two bytes a user types.
func ParseEscape(s string) (ctrl, cmd byte, err error) {
	if len(s) != 3 || s[0] != '^' {
		return 0, 0, fmt.Errorf("escape %s: want ^X followed by one character, as in ^Ec", quote(s))
	}
	c := s[1]
	if c >= 'a' && c <= 'z' {
		c -= 'a' - 'A'
	}
	if c < '@' || c > '_' {
		return 0, 0, fmt.Errorf("escape %s: ^%c is not a control character", quote(s), s[1])
	}
	if s[2] < '!' || s[2] > '~' {
		return 0, 0, fmt.Errorf("escape %s: the second character must be printable", quote(s))
	}
	return c - '@', s[2], nil
}

var sizeUnits = map[string]int64{
	"": 1, "b": 1,
	"k": 1 << 10, "kib": 1 << 10, "kb": 1000,
	"m": 1 << 20, "mib": 1 << 20, "mb": 1000_000,
	"g": 1 << 30, "gib": 1 << 30, "gb": 1000_000_000,
	"t": 1 << 40, "tib": 1 << 40, "tb": 1000_000_000_000,
}

// parseSize parses "64MiB", "100M" (binary), "1GB" (decimal) or "4096".
func parseSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	i := 0
	for i < len(t) && t[i] >= '0' && t[i] <= '9' {
		i++
	}
	if i == 0 {
		return 0, fmt.Errorf("size %s: want a number with an optional unit (KiB, MiB, GiB, TiB, KB, MB, GB, TB)", quote(s))
	}
	n, err := strconv.ParseInt(t[:i], 10, 64)
	unit, ok := sizeUnits[strings.ToLower(strings.TrimSpace(t[i:]))]
	if err != nil || !ok {
		return 0, fmt.Errorf("size %s: want a number with an optional unit (KiB, MiB, GiB, TiB, KB, MB, GB, TB)", quote(s))
	}
	if n > (1<<62)/unit {
		return 0, fmt.Errorf("size %s is too large", quote(s))
	}
	return n * unit, nil
}

// formatSize prints a size the way parseSize reads it, in the largest
// binary unit that divides it.
func formatSize(n int64) string {
	for _, u := range []struct {
		name string
		v    int64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if n >= u.v && n%u.v == 0 {
			return strconv.FormatInt(n/u.v, 10) + u.name
		}
	}
	return strconv.FormatInt(n, 10)
}

// ParseDuration reads durations as sysadmins write them: a sequence of
// numbers with units ms, s, m, h, d (24 h) and w (7 d), e.g. "90d" or
// "1h30m"; "0" is zero.
func ParseDuration(s string) (time.Duration, error) {
	t := strings.TrimSpace(s)
	if t == "0" {
		return 0, nil
	}
	if t == "" {
		return 0, fmt.Errorf("empty duration: want e.g. 30s, 15m, 24h, 90d, 2w")
	}
	var total time.Duration
	rest := t
	for rest != "" {
		i := 0
		for i < len(rest) && rest[i] >= '0' && rest[i] <= '9' {
			i++
		}
		j := i
		for j < len(rest) && (rest[j] < '0' || rest[j] > '9') {
			j++
		}
		if i == 0 || j == i {
			return 0, fmt.Errorf("duration %s: want e.g. 30s, 15m, 24h, 90d, 2w", quote(s))
		}
		n, err := strconv.ParseInt(rest[:i], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("duration %s is too large", quote(s))
		}
		var unit time.Duration
		switch rest[i:j] {
		case "ms":
			unit = time.Millisecond
		case "s":
			unit = time.Second
		case "m":
			unit = time.Minute
		case "h":
			unit = time.Hour
		case "d":
			unit = 24 * time.Hour
		case "w":
			unit = 7 * 24 * time.Hour
		default:
			return 0, fmt.Errorf("duration %s: unknown unit %s (want ms, s, m, h, d, w)", quote(s), quote(rest[i:j]))
		}
		if n > int64((1<<62)/unit) || total > (1<<62)-time.Duration(n)*unit {
			return 0, fmt.Errorf("duration %s is too large", quote(s))
		}
		total += time.Duration(n) * unit
		rest = rest[j:]
	}
	return total, nil
}

// formatDuration prints a duration the way parseDuration reads it, in the
// largest units that fit: "90d", "1d12h", "1h30m", "500ms".
func formatDuration(d time.Duration) string {
	if d == 0 {
		return "0"
	}
	if d < 0 || d%time.Millisecond != 0 {
		return d.String()
	}
	var b strings.Builder
	for _, u := range []struct {
		name string
		v    time.Duration
	}{{"d", 24 * time.Hour}, {"h", time.Hour}, {"m", time.Minute}, {"s", time.Second}, {"ms", time.Millisecond}} {
		if d >= u.v {
			b.WriteString(strconv.FormatInt(int64(d/u.v), 10))
			b.WriteString(u.name)
			d %= u.v
		}
	}
	return b.String()
}
