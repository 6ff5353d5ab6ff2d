// Building the Config from parsed files: [server]: daemon-wide settings, trusted user CAs.

package config

import (
	"fmt"
	"net"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"
)

func (b *builder) server(f *parsedFile) {
	s := &b.cfg.Server
	*s = Server{
		Listen:         defaultListen,
		LogDir:         defaultLogDir,
		StateDir:       defaultStateDir,
		Metrics:        defaultMetrics,
		LogLevel:       "info",
		ReloadInterval: defaultReloadInterval,
	}
	sh := f.shape.Server
	if sh == nil {
		s.HostKeys = []string{filepath.Join(s.StateDir, "ssh_host_ed25519_key")}
		return
	}
	e := f.pos.table("server")
	bad := func(key, format string, args ...any) {
		b.errs.addf(f.name, e.lineOf(key), "", "[server] "+key+": "+format, args...)
	}
	if sh.Listen != nil {
		s.Listen = *sh.Listen
		if err := checkListen(s.Listen); err != nil {
			bad("listen", "%v", err)
		}
	}
	if sh.Metrics != nil {
		s.Metrics = *sh.Metrics
		if s.Metrics != "" {
			if err := checkListen(s.Metrics); err != nil {
				bad("metrics", "%v (use \"\" to turn metrics off)", err)
			}
		}
	}
	for _, d := range []struct {
		key string
		v   *string
		dst *string
	}{{"log_dir", sh.LogDir, &s.LogDir}, {"state_dir", sh.StateDir, &s.StateDir}} {
		if d.v == nil {
			continue
		}
		*d.dst = *d.v
		if !filepath.IsAbs(*d.v) {
			bad(d.key, "%s is not an absolute path", quote(*d.v))
		}
	}
	if sh.LogLevel != nil {
		s.LogLevel = *sh.LogLevel
		switch s.LogLevel {
		case "debug", "info", "warn", "error":
		default:
			bad("log_level", "%s is not one of debug, info, warn, error", quote(s.LogLevel))
		}
	}
	if sh.HostKeys != nil {
		for i, p := range sh.HostKeys {
			if !filepath.IsAbs(p) {
				b.errs.addf(f.name, e.elemLine("host_keys", i), "", "[server] host_keys: %s is not an absolute path", quote(p))
			}
		}
		s.HostKeys = slices.Clone(sh.HostKeys)
	} else {
		s.HostKeys = []string{filepath.Join(s.StateDir, "ssh_host_ed25519_key")}
	}
	if sh.ReloadInterval != nil {
		d, err := ParseDuration(*sh.ReloadInterval)
		switch {
		case err != nil:
			bad("reload_interval", "%v", err)
		case d != 0 && d < time.Second:
			bad("reload_interval", "%s is shorter than 1s (use \"0\" to turn periodic checks off)", *sh.ReloadInterval)
		}
		s.ReloadInterval = d
	}
	b.cfg.cas = map[string]bool{}
	b.caConfigured = len(sh.TrustedUserCAKeys)+len(sh.TrustedUserCAFiles) > 0
	for i, line := range sh.TrustedUserCAKeys {
		k, err := parseCAKey(line)
		if err != nil {
			b.errs.addf(f.name, e.elemLine("trusted_user_ca_keys", i), "", "[server] trusted_user_ca_keys[%d]: %v", i, err)
			continue
		}
		b.addCA(k)
	}
	for i, p := range sh.TrustedUserCAFiles {
		line := e.elemLine("trusted_user_ca_files", i)
		p = b.relPath(f, p)
		b.addRef(p)
		if b.opts.SkipSecrets {
			continue
		}
		data, _, err := ReadFileLimit(p, maxCAKeysFile)
		if err != nil {
			b.errs.addf(f.name, line, "", "[server] trusted_user_ca_files: %s: %v", p, err)
			continue
		}
		n := 0
		for j, l := range strings.Split(string(data), "\n") {
			l = strings.TrimSpace(l)
			if l == "" || strings.HasPrefix(l, "#") {
				continue
			}
			k, err := parseCAKey(l)
			if err != nil {
				b.errs.addf(f.name, line, "", "[server] trusted_user_ca_files: %s:%d: %v", p, j+1, err)
				continue
			}
			b.addCA(k)
			n++
		}
		if n == 0 {
			b.errs.addf(f.name, line, "", "[server] trusted_user_ca_files: %s holds no keys", p)
		}
	}
}

func (b *builder) addCA(k ssh.PublicKey) {
	m := string(k.Marshal())
	if !b.cfg.cas[m] {
		b.cfg.cas[m] = true
		b.cfg.Server.TrustedUserCAs = append(b.cfg.Server.TrustedUserCAs, k)
	}
}

// parseCAKey parses one authorized_keys line naming a CA key; the only
// option allowed is cert-authority, which says just that.
func parseCAKey(line string) (ssh.PublicKey, error) {
	k, _, opts, _, err := ssh.ParseAuthorizedKey([]byte(line))
	if err != nil {
		return nil, fmt.Errorf("not an SSH public key in authorized_keys format: %v", err)
	}
	for _, o := range opts {
		if o != "cert-authority" {
			return nil, fmt.Errorf("key option %s is not supported", quote(o))
		}
	}
	if _, ok := k.(*ssh.Certificate); ok {
		return nil, fmt.Errorf("a certificate cannot be a CA key")
	}
	return k, nil
}

func checkListen(addr string) error {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%s: want HOST:PORT or :PORT", quote(addr))
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("%s: invalid port (want a number from 0 to 65535)", quote(addr))
	}
	return nil
}
