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

	"github.com/solgate/solgate/logstore"
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
		Daemon:         defaultDaemon(),
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
	b.daemon(f, &sh.daemonShape, e)
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

// Daemon holds the [server] settings of the console manager (solgate
// serve): daemon log format, reconnect backoff, handshake concurrency,
// shutdown bound, SOL ownership limits and boot banners. They apply on
// reload without reconnecting any console.
type Daemon struct {
	LogFormat string // daemon log: "text" (default) or "json"

	// Reconnect backoff: the first retry after ReconnectMin, doubling (with
	// jitter) up to ReconnectMax; a session that stayed up ReconnectStable
	// starts over at ReconnectMin.
	ReconnectMin    time.Duration
	ReconnectMax    time.Duration
	ReconnectStable time.Duration

	// MaxHandshakes bounds concurrent IPMI session setups (start-up and
	// mass reconnects), so no BMC and no core is flooded.
	MaxHandshakes int

	// ShutdownTimeout bounds deactivating every payload and closing every
	// session on SIGTERM.
	ShutdownTimeout time.Duration

	// IPMITimeout is the per-attempt timeout of IPMI requests; KeepAlive the
	// idle interval between keepalives. A session the BMC has not answered
	// for twice KeepAlive (plus one request's retries) is lost.
	IPMITimeout time.Duration
	KeepAlive   time.Duration

	// StealGrace: with steal = "when-idle", how long another client may
	// hold a console's SOL payload before solgate takes it.
	StealGrace time.Duration
	// StealLimit takeovers within StealWindow make a console "contested":
	// solgate stops taking the payload until a user reopens it or the
	// configuration changes.
	StealLimit  int
	StealWindow time.Duration

	// BootFirmware and BootKernel are substrings that mark the start of a
	// boot in console output: firmware (BIOS/UEFI POST) banners and the
	// kernel's first line. A leading "^" anchors one at the line start.
	BootFirmware []string
	BootKernel   []string

	// SSH gateway limits (read at start; a change needs a restart):
	// sessions open in all and per person, connections that have not yet
	// authenticated, the time a client has to authenticate, and how long
	// an authenticated connection without a session stays open.
	SSHMaxSessions        int
	SSHMaxSessionsPerUser int
	SSHMaxUnauthenticated int
	SSHHandshakeTimeout   time.Duration
	SSHIdleTimeout        time.Duration
}

// daemonShape is the [server] keys of Daemon.
type daemonShape struct {
	LogFormat       *string   `toml:"log_format"`
	ReconnectMin    *string   `toml:"reconnect_min"`
	ReconnectMax    *string   `toml:"reconnect_max"`
	ReconnectStable *string   `toml:"reconnect_stable"`
	MaxHandshakes   *int      `toml:"max_handshakes"`
	ShutdownTimeout *string   `toml:"shutdown_timeout"`
	IPMITimeout     *string   `toml:"ipmi_timeout"`
	KeepAlive       *string   `toml:"ipmi_keepalive"`
	StealGrace      *string   `toml:"steal_grace"`
	StealLimit      *int      `toml:"steal_limit"`
	StealWindow     *string   `toml:"steal_window"`
	BootFirmware    *[]string `toml:"boot_firmware"`
	BootKernel      *[]string `toml:"boot_kernel"`

	SSHMaxSessions        *int    `toml:"ssh_max_sessions"`
	SSHMaxSessionsPerUser *int    `toml:"ssh_max_sessions_per_user"`
	SSHMaxUnauthenticated *int    `toml:"ssh_max_unauthenticated"`
	SSHHandshakeTimeout   *string `toml:"ssh_handshake_timeout"`
	SSHIdleTimeout        *string `toml:"ssh_idle_timeout"`
}

// Default boot banners. Firmware: AMI's POST banner, the setup prompt most
// firmware prints, and EDK II (OVMF) starting a boot entry. Kernel: the
// first line Linux prints, "[    0.000000] Linux version ...".
var (
	DefaultBootFirmware = []string{"American Megatrends", "to enter setup", "to enter SETUP", "to enter Setup", "to run Setup", "BdsDxe: loading Boot"}
	DefaultBootKernel   = []string{"] Linux version "}
)

// Limits of the boot patterns: cheap to match on every line.
const (
	maxBootPatterns   = 32
	minBootPatternLen = 4
	maxBootPatternLen = 128
)

func defaultDaemon() Daemon {
	return Daemon{
		LogFormat:       "text",
		ReconnectMin:    time.Second,
		ReconnectMax:    5 * time.Minute,
		ReconnectStable: time.Minute,
		MaxHandshakes:   64,
		ShutdownTimeout: 5 * time.Second,
		IPMITimeout:     time.Second,
		KeepAlive:       15 * time.Second,
		StealGrace:      10 * time.Minute,
		StealLimit:      3,
		StealWindow:     time.Hour,
		BootFirmware:    slices.Clone(DefaultBootFirmware),
		BootKernel:      slices.Clone(DefaultBootKernel),

		SSHMaxSessions:        2048,
		SSHMaxSessionsPerUser: 256,
		SSHMaxUnauthenticated: 64,
		SSHHandshakeTimeout:   30 * time.Second,
		SSHIdleTimeout:        10 * time.Minute,
	}
}

func (b *builder) daemon(f *parsedFile, sh *daemonShape, e *entryPos) {
	d := &b.cfg.Server.Daemon
	bad := func(key, format string, args ...any) {
		b.errs.addf(f.name, e.lineOf(key), "", "[server] "+key+": "+format, args...)
	}
	if sh.LogFormat != nil {
		d.LogFormat = *sh.LogFormat
		if d.LogFormat != "text" && d.LogFormat != "json" {
			bad("log_format", "%q is not one of text, json", d.LogFormat)
		}
	}
	dur := func(key string, v *string, dst *time.Duration, lo, hi time.Duration) {
		if v == nil {
			return
		}
		x, err := ParseDuration(*v)
		switch {
		case err != nil:
			bad(key, "%v", err)
		case x < lo || x > hi:
			bad(key, "%s is outside %s to %s", *v, formatDuration(lo), formatDuration(hi))
		default:
			*dst = x
		}
	}
	dur("reconnect_min", sh.ReconnectMin, &d.ReconnectMin, 10*time.Millisecond, time.Hour)
	dur("reconnect_max", sh.ReconnectMax, &d.ReconnectMax, 10*time.Millisecond, 24*time.Hour)
	dur("reconnect_stable", sh.ReconnectStable, &d.ReconnectStable, time.Second, 24*time.Hour)
	dur("shutdown_timeout", sh.ShutdownTimeout, &d.ShutdownTimeout, 100*time.Millisecond, 10*time.Minute)
	dur("ipmi_timeout", sh.IPMITimeout, &d.IPMITimeout, 50*time.Millisecond, time.Minute)
	dur("ipmi_keepalive", sh.KeepAlive, &d.KeepAlive, 500*time.Millisecond, 10*time.Minute)
	dur("steal_grace", sh.StealGrace, &d.StealGrace, 0, 7*24*time.Hour)
	dur("steal_window", sh.StealWindow, &d.StealWindow, time.Second, 7*24*time.Hour)
	dur("ssh_handshake_timeout", sh.SSHHandshakeTimeout, &d.SSHHandshakeTimeout, time.Second, 10*time.Minute)
	dur("ssh_idle_timeout", sh.SSHIdleTimeout, &d.SSHIdleTimeout, time.Second, 7*24*time.Hour)
	if d.ReconnectMax < d.ReconnectMin && sh.ReconnectMin != nil && sh.ReconnectMax == nil {
		bad("reconnect_min", "%s is longer than reconnect_max (%s)", *sh.ReconnectMin, formatDuration(d.ReconnectMax))
	} else if d.ReconnectMax < d.ReconnectMin {
		bad("reconnect_max", "%s is shorter than reconnect_min (%s)", formatDuration(d.ReconnectMax), formatDuration(d.ReconnectMin))
	}
	num := func(key string, v *int, dst *int, lo, hi int) {
		if v == nil {
			return
		}
		if *v < lo || *v > hi {
			bad(key, "%d is outside %d to %d", *v, lo, hi)
			return
		}
		*dst = *v
	}
	num("max_handshakes", sh.MaxHandshakes, &d.MaxHandshakes, 1, 4096)
	num("steal_limit", sh.StealLimit, &d.StealLimit, 1, 1000)
	num("ssh_max_sessions", sh.SSHMaxSessions, &d.SSHMaxSessions, 1, 100000)
	num("ssh_max_sessions_per_user", sh.SSHMaxSessionsPerUser, &d.SSHMaxSessionsPerUser, 1, 100000)
	num("ssh_max_unauthenticated", sh.SSHMaxUnauthenticated, &d.SSHMaxUnauthenticated, 1, 10000)
	pats := func(key string, v *[]string, dst *[]string) {
		if v == nil {
			return
		}
		if len(*v) > maxBootPatterns {
			bad(key, "%d patterns; at most %d", len(*v), maxBootPatterns)
			return
		}
		for i, p := range *v {
			lit := strings.TrimPrefix(p, "^")
			if len(lit) < minBootPatternLen || len(lit) > maxBootPatternLen {
				b.errs.addf(f.name, e.elemLine(key, i), "", "[server] %s[%d]: %s: want %d to %d bytes (a literal piece of the banner line; a leading ^ anchors it at the line start)",
					key, i, logstore.QuoteShort(p), minBootPatternLen, maxBootPatternLen)
			}
		}
		*dst = slices.Clone(*v)
	}
	pats("boot_firmware", sh.BootFirmware, &d.BootFirmware)
	pats("boot_kernel", sh.BootKernel, &d.BootKernel)
}

func (d *Daemon) dump(p func(format string, args ...any)) {
	q := strconv.Quote
	p("log_format = %s\n", q(d.LogFormat))
	p("reconnect_min = %s\n", q(formatDuration(d.ReconnectMin)))
	p("reconnect_max = %s\n", q(formatDuration(d.ReconnectMax)))
	p("reconnect_stable = %s\n", q(formatDuration(d.ReconnectStable)))
	p("max_handshakes = %d\n", d.MaxHandshakes)
	p("shutdown_timeout = %s\n", q(formatDuration(d.ShutdownTimeout)))
	p("ipmi_timeout = %s\n", q(formatDuration(d.IPMITimeout)))
	p("ipmi_keepalive = %s\n", q(formatDuration(d.KeepAlive)))
	p("steal_grace = %s\n", q(formatDuration(d.StealGrace)))
	p("steal_limit = %d\n", d.StealLimit)
	p("steal_window = %s\n", q(formatDuration(d.StealWindow)))
	p("boot_firmware = %s\n", quoteList(d.BootFirmware))
	p("boot_kernel = %s\n", quoteList(d.BootKernel))
	p("ssh_max_sessions = %d\n", d.SSHMaxSessions)
	p("ssh_max_sessions_per_user = %d\n", d.SSHMaxSessionsPerUser)
	p("ssh_max_unauthenticated = %d\n", d.SSHMaxUnauthenticated)
	p("ssh_handshake_timeout = %s\n", q(formatDuration(d.SSHHandshakeTimeout)))
	p("ssh_idle_timeout = %s\n", q(formatDuration(d.SSHIdleTimeout)))
}

func (d *Daemon) hash(w hashWriter) {
	w.str(d.LogFormat)
	w.num(int64(d.ReconnectMin))
	w.num(int64(d.ReconnectMax))
	w.num(int64(d.ReconnectStable))
	w.num(int64(d.MaxHandshakes))
	w.num(int64(d.ShutdownTimeout))
	w.num(int64(d.IPMITimeout))
	w.num(int64(d.KeepAlive))
	w.num(int64(d.StealGrace))
	w.num(int64(d.StealLimit))
	w.num(int64(d.StealWindow))
	w.strs(d.BootFirmware)
	w.strs(d.BootKernel)
	w.num(int64(d.SSHMaxSessions))
	w.num(int64(d.SSHMaxSessionsPerUser))
	w.num(int64(d.SSHMaxUnauthenticated))
	w.num(int64(d.SSHHandshakeTimeout))
	w.num(int64(d.SSHIdleTimeout))
}
