package config

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

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

// checkIdent validates user and group names: [A-Za-z0-9_][A-Za-z0-9_.-]*.
func checkIdent(kind, name string) error {
	if name == "" {
		return fmt.Errorf("empty %s name", kind)
	}
	if len(name) > 64 {
		return fmt.Errorf("%s name %.20q... is longer than 64 bytes", kind, name)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(isAlnum(c) || c == '_' || (i > 0 && (c == '.' || c == '-'))) {
			return fmt.Errorf("%s name %q contains %q (allowed: letters, digits, '_', and '.', '-' after the first)", kind, name, c)
		}
	}
	return nil
}

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// checkBMC validates a BMC address: a host name, an IPv4 address, or an
// IPv6 address in brackets, optionally followed by :port.
func checkBMC(addr string) error {
	if addr == "" {
		return fmt.Errorf("empty BMC address")
	}
	host, port := addr, ""
	if strings.HasPrefix(addr, "[") || strings.Count(addr, ":") == 1 {
		h, p, err := net.SplitHostPort(addr)
		if err != nil {
			if !strings.HasPrefix(addr, "[") || !strings.HasSuffix(addr, "]") {
				return fmt.Errorf("BMC address %q: want HOST or HOST:PORT", addr)
			}
			h = addr[1 : len(addr)-1]
		}
		host, port = h, p
		if strings.HasPrefix(addr, "[") {
			if _, err := netip.ParseAddr(host); err != nil || !strings.Contains(host, ":") {
				return fmt.Errorf("BMC address %q: %q in brackets is not an IPv6 address", addr, host)
			}
		}
	} else if strings.Contains(addr, ":") {
		if a, err := netip.ParseAddr(addr); err != nil || !a.Is6() {
			return fmt.Errorf("BMC address %q: want HOST, HOST:PORT or [IPv6]:PORT", addr)
		}
		return nil
	}
	if port != "" || strings.HasSuffix(addr, ":") {
		n, err := strconv.Atoi(port)
		if err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("BMC address %q: port %q is not a number from 1 to 65535", addr, port)
		}
	}
	if strings.Contains(host, ":") {
		return nil // IPv6, checked above
	}
	if len(host) > 253 {
		return fmt.Errorf("BMC address %.20q...: host name longer than 253 bytes", addr)
	}
	for _, label := range strings.Split(host, ".") {
		if label == "" || len(label) > 63 {
			return fmt.Errorf("BMC address %q: bad host name", addr)
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(isAlnum(c) || c == '-' || c == '_') {
				return fmt.Errorf("BMC address %q: host name contains %q", addr, c)
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
		return 0, 0, fmt.Errorf("escape %q: want ^X followed by one character, as in ^Ec", s)
	}
	c := s[1]
	if c >= 'a' && c <= 'z' {
		c -= 'a' - 'A'
	}
	if c < '@' || c > '_' {
		return 0, 0, fmt.Errorf("escape %q: ^%c is not a control character", s, s[1])
	}
	if s[2] < '!' || s[2] > '~' {
		return 0, 0, fmt.Errorf("escape %q: the second character must be printable", s)
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
		return 0, fmt.Errorf("size %q: want a number with an optional unit (KiB, MiB, GiB, TiB, KB, MB, GB, TB)", s)
	}
	n, err := strconv.ParseInt(t[:i], 10, 64)
	unit, ok := sizeUnits[strings.ToLower(strings.TrimSpace(t[i:]))]
	if err != nil || !ok {
		return 0, fmt.Errorf("size %q: want a number with an optional unit (KiB, MiB, GiB, TiB, KB, MB, GB, TB)", s)
	}
	if n > (1<<62)/unit {
		return 0, fmt.Errorf("size %q is too large", s)
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
			return 0, fmt.Errorf("duration %q: want e.g. 30s, 15m, 24h, 90d, 2w", s)
		}
		n, err := strconv.ParseInt(rest[:i], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("duration %q is too large", s)
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
			return 0, fmt.Errorf("duration %q: unknown unit %q (want ms, s, m, h, d, w)", s, rest[i:j])
		}
		if n > int64((1<<62)/unit) || total > (1<<62)-time.Duration(n)*unit {
			return 0, fmt.Errorf("duration %q is too large", s)
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
