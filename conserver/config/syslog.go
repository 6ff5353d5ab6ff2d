// Building the Config from parsed files: [[syslog]]: receivers of console lines.

package config

import (
	"net"
	"net/url"
	"path/filepath"
	"strconv"

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
			bad("address", "missing (e.g. \"udp://127.0.0.1:514\", \"tcp://loghost:514\", \"tls://loghost:6514\", \"unix:///dev/log\")")
			continue
		}
		u, err := url.Parse(ss.Address)
		if err != nil {
			bad("address", "%s is not a URL", quote(ss.Address))
			continue
		}
		t.Network = u.Scheme
		switch u.Scheme {
		case "udp", "tcp", "tls":
			port := map[string]string{"udp": "514", "tcp": "514", "tls": "6514"}[u.Scheme]
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
			bad("address", "%s: scheme must be udp, tcp, tls or unix", quote(ss.Address))
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
		if ok {
			b.cfg.Syslog = append(b.cfg.Syslog, t)
		}
	}
}
