// Building the Config from parsed files: [[syslog]]: receivers of console lines.

package config

import (
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/solgate/solgate/conserver/hostlist"
)

func (b *builder) syslog(f *parsedFile) {
	for i, ss := range f.shape.Syslog {
		e := f.pos.entry("syslog", i)
		t := SyslogTarget{URL: ss.Address, Format: "rfc5424", Facility: facilities["local0"], File: f.name, Line: e.lineOf("")}
		bad := func(key, format string, args ...any) {
			b.errs.addf(f.name, e.lineOf(key), "", "syslog "+key+": "+format, args...)
		}
		ok := true
		if ss.Address == "" {
			bad("address", "missing (e.g. \"udp://127.0.0.1:514\", \"tcp://loghost:514\", \"tls://loghost:6514\", \"relp://loghost:2514\", \"unix:///dev/log\")")
			continue
		}
		u, err := url.Parse(ss.Address)
		if err != nil {
			bad("address", "%s is not a URL", quote(ss.Address))
			continue
		}
		t.Network = u.Scheme
		switch u.Scheme {
		case "udp", "tcp", "tls", "relp":
			port := map[string]string{"udp": "514", "tcp": "514", "tls": "6514", "relp": "2514"}[u.Scheme]
			if u.Host == "" || (u.Path != "" && u.Path != "/") || u.User != nil || u.RawQuery != "" {
				bad("address", "%s: want %s://HOST[:PORT]", quote(ss.Address), u.Scheme)
				ok = false
				break
			}
			if u.Port() != "" {
				port = u.Port()
			}
			if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
				bad("address", "%s: invalid port %s (want a number from 1 to 65535)", quote(ss.Address), quote(port))
				ok = false
			}
			t.Address = net.JoinHostPort(u.Hostname(), port)
		case "unix":
			if u.Host != "" || !filepath.IsAbs(u.Path) {
				bad("address", "%s: want unix:///absolute/path", quote(ss.Address))
				ok = false
			}
			t.Address = u.Path
		default:
			bad("address", "%s: scheme must be udp, tcp, tls, relp or unix", quote(ss.Address))
			ok = false
		}
		if ss.Format != nil {
			switch *ss.Format {
			case "rfc5424", "rfc3164":
				t.Format = *ss.Format
			default:
				bad("format", "%s is not rfc5424 or rfc3164", quote(*ss.Format))
				ok = false
			}
		}
		if ss.Facility != nil {
			fac, known := facilities[*ss.Facility]
			if !known {
				bad("facility", "%s is not a syslog facility (kern, user, daemon, auth, local0 ... local7, ...)", quote(*ss.Facility))
				ok = false
			}
			t.Facility = fac
		}
		if ss.Consoles != nil {
			t.Consoles = *ss.Consoles
			names, err := hostlist.ExpandLimit(t.Consoles, b.limit)
			if serr := checkSpaces(t.Consoles); serr != nil {
				err = serr
			}
			if err != nil {
				bad("consoles", "%v", err)
				ok = false
			}
			t.names = make(map[string]bool, len(names))
			for _, n := range names {
				t.names[n] = true
			}
		}
		if ss.TLSCAFile != nil {
			t.CAFile = b.relPath(f, *ss.TLSCAFile)
			b.addRef(t.CAFile)
			if u.Scheme != "tls" {
				bad("tls_ca_file", "only applies to tls:// addresses")
				ok = false
			} else if !b.opts.SkipSecrets {
				if _, _, err := ReadFileLimit(t.CAFile, maxCABundle); err != nil {
					bad("tls_ca_file", "%s: %v", t.CAFile, err)
					ok = false
				}
			}
		}
		if !b.syslogOptions(f, ss, e, u.Scheme, &t.SyslogOptions) {
			ok = false
		}
		if ok {
			b.cfg.Syslog = append(b.cfg.Syslog, t)
		}
	}
}

// SyslogOptions are the [[syslog]] keys beyond address, format, facility,
// consoles and tls_ca_file.
type SyslogOptions struct {
	ServerName string // tls_server_name: the name the receiver's certificate must carry; "" is the address's host
	CertFile   string // tls_cert_file, tls_key_file: a client certificate for tls
	KeyFile    string
	Severity   string // severity of ordinary console lines; "" is info
	// Patterns raise the severity of the lines they match, tried in order
	// before the built-in ones (kernel panic, Oops, machine check, out of
	// memory, ...) unless NoDefaultPatterns.
	Patterns          []SyslogPattern
	NoDefaultPatterns bool
	MaxMessage        int  // bytes per message; 0 is the shipper's default
	Backfill          bool // consoles already logging when the target is added start at their oldest line
}

// SyslogPattern is one entry of patterns = ["SEVERITY:REGEXP", ...].
type SyslogPattern struct {
	Severity string
	Re       *regexp.Regexp
}

func (o *SyslogOptions) equal(p *SyslogOptions) bool {
	return o.ServerName == p.ServerName && o.CertFile == p.CertFile && o.KeyFile == p.KeyFile &&
		o.Severity == p.Severity && o.NoDefaultPatterns == p.NoDefaultPatterns && o.MaxMessage == p.MaxMessage &&
		o.Backfill == p.Backfill && slices.EqualFunc(o.Patterns, p.Patterns, func(a, b SyslogPattern) bool {
		return a.Severity == b.Severity && a.Re.String() == b.Re.String()
	})
}

func (o *SyslogOptions) dump(kv func(k, v string), q func(string) string) {
	for _, f := range []struct{ k, v string }{{"tls_server_name", o.ServerName}, {"tls_cert_file", o.CertFile}, {"tls_key_file", o.KeyFile}, {"severity", o.Severity}} {
		if f.v != "" {
			kv(f.k, q(f.v))
		}
	}
	if len(o.Patterns) > 0 {
		l := make([]string, len(o.Patterns))
		for i, p := range o.Patterns {
			l[i] = q(p.Severity + ":" + p.Re.String())
		}
		kv("patterns", "["+strings.Join(l, ", ")+"]")
	}
	if o.NoDefaultPatterns {
		kv("default_patterns", "false")
	}
	if o.MaxMessage != 0 {
		kv("max_message", fmt.Sprint(o.MaxMessage))
	}
	if o.Backfill {
		kv("backfill", "true")
	}
}

// syslogSeverities are the names severity and patterns accept.
var syslogSeverities = []string{"emerg", "alert", "crit", "err", "warning", "notice", "info", "debug"}

// syslogOptions checks and sets the keys of SyslogOptions; it reports
// whether they are all valid.
func (b *builder) syslogOptions(f *parsedFile, ss syslogShape, e *entryPos, scheme string, o *SyslogOptions) bool {
	ok := true
	bad := func(line int, key, format string, args ...any) {
		b.errs.addf(f.name, line, "", "syslog "+key+": "+format, args...)
		ok = false
	}
	severity := func(line int, key, s string) bool {
		if !slices.Contains(syslogSeverities, s) {
			bad(line, key, "%q is not a severity (%s)", s, strings.Join(syslogSeverities, ", "))
			return false
		}
		return true
	}
	tlsFile := func(key string, v *string, dst *string) {
		if v == nil {
			return
		}
		*dst = b.relPath(f, *v)
		b.addRef(*dst)
		if scheme != "tls" {
			bad(e.lineOf(key), key, "only applies to tls:// addresses")
		} else if !b.opts.SkipSecrets {
			if _, _, err := ReadFileLimit(*dst, maxCABundle); err != nil {
				bad(e.lineOf(key), key, "%s: %v", *dst, unwrapPath(err))
			}
		}
	}
	if ss.TLSServerName != nil {
		o.ServerName = *ss.TLSServerName
		if scheme != "tls" {
			bad(e.lineOf("tls_server_name"), "tls_server_name", "only applies to tls:// addresses")
		}
	}
	tlsFile("tls_cert_file", ss.TLSCertFile, &o.CertFile)
	tlsFile("tls_key_file", ss.TLSKeyFile, &o.KeyFile)
	if (o.CertFile == "") != (o.KeyFile == "") {
		bad(e.lineOf("tls_cert_file"), "tls_cert_file", "needs tls_key_file too (and the other way round)")
	}
	if ss.Severity != nil && severity(e.lineOf("severity"), "severity", *ss.Severity) {
		o.Severity = *ss.Severity
	}
	if ss.Patterns != nil {
		for i, p := range *ss.Patterns {
			line := e.elemLine("patterns", i)
			sev, expr, found := strings.Cut(p, ":")
			if !found || expr == "" {
				bad(line, "patterns", "%q: want \"SEVERITY:REGEXP\", e.g. \"crit:segfault at\"", p)
				continue
			}
			if !severity(line, "patterns", sev) {
				continue
			}
			re, err := regexp.Compile(expr)
			if err != nil {
				bad(line, "patterns", "%q: %v", expr, err)
				continue
			}
			o.Patterns = append(o.Patterns, SyslogPattern{Severity: sev, Re: re})
		}
	}
	if ss.DefaultPatterns != nil {
		o.NoDefaultPatterns = !*ss.DefaultPatterns
	}
	if ss.MaxMessage != nil {
		if *ss.MaxMessage < 480 || *ss.MaxMessage > 65536 {
			bad(e.lineOf("max_message"), "max_message", "%d is not from 480 to 65536 bytes", *ss.MaxMessage)
		} else {
			o.MaxMessage = *ss.MaxMessage
		}
	}
	if ss.Backfill != nil {
		o.Backfill = *ss.Backfill
	}
	return ok
}
