package config

import (
	"bufio"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/solgate/solgate/conserver/hostlist"
	"golang.org/x/crypto/ssh"
)

// Dump writes the effective configuration in TOML syntax: [server], then
// one [[console]] per console with every setting spelled out, then users
// (keys as fingerprints), access rules and syslog targets. Secrets appear
// as a placeholder and their source. The output is for people (solgate
// check --dump), not for reading back.
func (c *Config) Dump(w io.Writer) error {
	bw := bufio.NewWriter(w)
	p := func(format string, args ...any) { fmt.Fprintf(bw, format, args...) }
	q := strconv.Quote
	s := &c.Server
	p("# effective configuration from %s\n", strings.Join(c.Files, ", "))
	p("\n[server]\n")
	p("listen = %s\n", q(s.Listen))
	p("log_dir = %s\n", q(s.LogDir))
	p("state_dir = %s\n", q(s.StateDir))
	p("metrics = %s\n", q(s.Metrics))
	p("log_level = %s\n", q(s.LogLevel))
	p("host_keys = %s\n", quoteList(s.HostKeys))
	cas := make([]string, len(s.TrustedUserCAs))
	for i, k := range s.TrustedUserCAs {
		cas[i] = k.Type() + " " + ssh.FingerprintSHA256(k)
	}
	p("trusted_user_cas = %s\n", quoteList(cas))
	p("reload_interval = %s\n", q(formatDuration(s.ReloadInterval)))
	s.Daemon.dump(p)

	for i := range c.Consoles {
		c.dumpConsole(bw, i)
	}
	for i := range c.Users {
		u := &c.Users[i]
		p("\n[[user]] # %s:%d\n", u.File, u.Line)
		p("name = %s\n", q(u.Name))
		keys := make([]string, len(u.Keys))
		for j, k := range u.Keys {
			keys[j] = k.Type() + " " + ssh.FingerprintSHA256(k)
		}
		p("keys = %s\n", quoteList(keys))
		p("groups = %s\n", quoteList(u.Groups))
	}
	for i := range c.Rules {
		r := &c.Rules[i]
		p("\n[[access]] # %s:%d\n", r.File, r.Line)
		p("consoles = %s\n", q(r.Consoles))
		for _, l := range []struct {
			k string
			v []string
		}{{"read", r.Read}, {"write", r.Write}, {"power", r.Power}, {"deny", r.Deny}} {
			if len(l.v) > 0 {
				p("%s = %s\n", l.k, quoteList(l.v))
			}
		}
	}
	for _, t := range c.Syslog {
		p("\n[[syslog]] # %s:%d\n", t.File, t.Line)
		p("address = %s # %s %s\n", q(t.URL), t.Network, t.Address)
		p("format = %s\n", q(t.Format))
		p("facility = %s\n", q(facilityName(t.Facility)))
		if t.Consoles != "" {
			p("consoles = %s\n", q(t.Consoles))
		}
		if t.CAFile != "" {
			p("tls_ca_file = %s\n", q(t.CAFile))
		}
		t.SyslogOptions.dump(func(k, v string) { p("%s = %s\n", k, v) }, q)
	}
	return bw.Flush()
}

// DumpConsoles writes the effective settings of the named consoles only, in
// the format of Dump. Names that are not consoles are an error, after the
// others are written.
func (c *Config) DumpConsoles(w io.Writer, names []string) error {
	bw := bufio.NewWriter(w)
	var missing []string
	for _, n := range names {
		i, ok := c.consoles[n]
		if !ok {
			missing = append(missing, n)
			continue
		}
		c.dumpConsole(bw, i)
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	if len(missing) > 0 {
		return fmt.Errorf("config: no such console: %s", hostlist.Compress(missing))
	}
	return nil
}

func (c *Config) dumpConsole(bw *bufio.Writer, i int) {
	p := func(format string, args ...any) { fmt.Fprintf(bw, format, args...) }
	q := strconv.Quote
	x := &c.Consoles[i]
	p("\n[[console]] # %s:%d\n", x.File, x.Line)
	p("name = %s\n", q(x.Name))
	p("bmc = %s # %s\n", q(x.BMC), x.BMCAddr())
	p("user = %s\n", q(x.User))
	p("password = %s%s\n", q(x.Password.String()), sourceNote(x.Password))
	p("kg = %s%s\n", q(x.KG.String()), sourceNote(x.KG))
	p("interface = %s\n", q(x.Interface))
	switch {
	case x.Interface == "lan":
		switch x.AuthType {
		case "":
			p("auth_type = \"\" # md5\n")
		case "password":
			p("auth_type = \"password\" # INSECURE: clear-text password\n")
		case "none":
			p("auth_type = \"none\" # INSECURE: no password\n")
		default:
			p("auth_type = %s\n", q(x.AuthType))
		}
	case x.CipherSuiteZero:
		p("cipher_suite = 0 # INSECURE: no authentication, no encryption\n")
	case x.CipherSuite == 0:
		p("cipher_suite = 0 # automatic: 17, else 3\n")
	case x.InsecureCipherSuite:
		p("cipher_suite = %d # INSECURE: %s\n", x.CipherSuite, weakSuites[x.CipherSuite])
	default:
		p("cipher_suite = %d\n", x.CipherSuite)
	}
	p("privilege = %s\n", q(x.Privilege))
	p("quirks = %s\n", quoteList(x.Quirks))
	p("steal = %s\n", q(x.Steal))
	p("escape = %s\n", q(x.Escape))
	p("log_rotate_size = %s\n", q(formatSize(x.Log.RotateSize)))
	p("log_rotate_age = %s%s\n", q(formatDuration(x.Log.RotateAge)), noLimit(x.Log.RotateAge == 0))
	p("log_retain_age = %s%s\n", q(formatDuration(x.Log.RetainAge)), noLimit(x.Log.RetainAge == 0))
	p("log_retain_size = %s%s\n", q(formatSize(x.Log.RetainBytes)), noLimit(x.Log.RetainBytes == 0))
	var read, write, power, deny []string
	for _, ri := range c.access[i] {
		r := &c.Rules[ri]
		read, write, power, deny = union(read, r.Read), union(write, r.Write), union(power, r.Power), union(deny, r.Deny)
	}
	p("# access: read %s; write %s; power %s; deny %s\n", orNone(read), orNone(write), orNone(power), orNone(deny))
}

func noLimit(zero bool) string {
	if zero {
		return " # no limit"
	}
	return ""
}

func sourceNote(s Secret) string {
	if s.Source() == "" {
		return ""
	}
	return " # " + s.Source()
}

func quoteList(l []string) string {
	q := make([]string, len(l))
	for i, s := range l {
		q[i] = strconv.Quote(s)
	}
	return "[" + strings.Join(q, ", ") + "]"
}

func union(a, b []string) []string {
	for _, s := range b {
		if !slices.Contains(a, s) {
			a = append(a, s)
		}
	}
	return a
}

func orNone(l []string) string {
	if len(l) == 0 {
		return "-"
	}
	return strings.Join(l, ",")
}

func facilityName(f int) string {
	for n, v := range facilities {
		if v == f {
			return n
		}
	}
	return strconv.Itoa(f)
}
