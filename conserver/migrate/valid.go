package migrate

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/solgate/solgate/logstore"
)

// checkName reports why name cannot be a solgate console name.
func checkName(name string) error { return logstore.CheckConsoleName(name) }

// checkBMC accepts what solgate's config accepts as a BMC address: a host
// name or IPv4 address, or an IPv6 address (bare, or in brackets when a port
// follows), with an optional :port. It is deliberately no more lenient than
// the config package, so that every address it passes loads.
func checkBMC(addr string) error {
	if addr == "" {
		return fmt.Errorf("empty BMC address")
	}
	if a, err := netip.ParseAddr(addr); err == nil && a.Is6() && a.Zone() == "" {
		return nil
	}
	host, port := addr, ""
	if strings.HasPrefix(addr, "[") {
		end := strings.IndexByte(addr, ']')
		if end < 0 {
			return fmt.Errorf("BMC address %s: no closing ]", quote(addr))
		}
		host, port = addr[1:end], addr[end+1:]
		if a, err := netip.ParseAddr(host); err != nil || !a.Is6() || a.Zone() != "" {
			return fmt.Errorf("BMC address %s: not an IPv6 address in brackets", quote(addr))
		}
		if port == "" {
			return nil
		}
		if port[0] != ':' {
			return fmt.Errorf("BMC address %s: want [IPv6]:PORT", quote(addr))
		}
		return checkPort(addr, port[1:])
	}
	if i := strings.IndexByte(addr, ':'); i >= 0 {
		if strings.Count(addr, ":") > 1 {
			return fmt.Errorf("BMC address %s: an IPv6 address with a port needs brackets", quote(addr))
		}
		host, port = addr[:i], addr[i+1:]
		if err := checkPort(addr, port); err != nil {
			return err
		}
	}
	if len(host) > 253 {
		return fmt.Errorf("BMC address %s: host name longer than 253 bytes", quote(addr))
	}
	for _, label := range strings.Split(host, ".") {
		if label == "" || len(label) > 63 {
			return fmt.Errorf("BMC address %s: not a host name", quote(addr))
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(isAlnum(c) || c == '-' || c == '_') {
				return fmt.Errorf("BMC address %s: host name contains %q", quote(addr), c)
			}
		}
	}
	return nil
}

func checkPort(addr, port string) error {
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 || port[0] == '+' {
		return fmt.Errorf("BMC address %s: port %s is not a number from 1 to 65535", quote(addr), quote(port))
	}
	return nil
}

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// checkUser reports why an IPMI user name cannot be written to solgate.
func checkUser(u string) error {
	if len(u) > 16 {
		return fmt.Errorf("IPMI user %s is longer than 16 bytes", quote(u))
	}
	if !utf8.ValidString(u) {
		return fmt.Errorf("IPMI user %s is not UTF-8 text", quote(u))
	}
	return nil
}

// quote shows a value from the input in a message or comment: quoted, on
// one line, cut to 60 characters.
func quote(s string) string {
	const keep = 60
	n := 0
	for i := range s {
		if n == keep {
			return strconv.Quote(s[:i]) + "..."
		}
		n++
	}
	return strconv.Quote(s)
}

// tomlString writes s as a TOML basic string. The caller has checked that s
// is valid UTF-8.
func tomlString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"':
			b.WriteString(`\"`)
		case r == '\\':
			b.WriteString(`\\`)
		case r == '\t':
			b.WriteString(`\t`)
		case r == '\n':
			b.WriteString(`\n`)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\u%04X`, r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}
