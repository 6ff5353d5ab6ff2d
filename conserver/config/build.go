package config

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/solgate/solgate/conserver/hostlist"
	"golang.org/x/crypto/ssh"
)

// Built-in defaults, applied before [defaults].
const (
	defaultListen         = ":2222"
	defaultLogDir         = "/var/log/solgate"
	defaultStateDir       = "/var/lib/solgate"
	defaultMetrics        = "127.0.0.1:9623"
	defaultReloadInterval = 30 * time.Second
	defaultEscape         = "^Ec"
	maxIPMIUser           = 16 // bytes, IPMI user name field
	maxPassword20         = 20 // IPMI 2.0 password
	maxPassword15         = 16 // IPMI 1.5 password
	maxKG                 = 20 // K_g
	maxConsoles           = hostlist.DefaultLimit
)

func builtinSettings() settings {
	return settings{
		Interface: "lanplus",
		Privilege: "admin",
		Steal:     "when-idle",
		Escape:    defaultEscape,
		Log: LogSettings{
			RotateSize:  64 << 20,
			RotateAge:   24 * time.Hour,
			RetainAge:   90 * 24 * time.Hour,
			RetainBytes: 1 << 30,
		},
	}
}

// settings is what a console inherits: Console without name and BMC.
type settings struct {
	User            string
	Password, KG    Secret
	Interface       string
	CipherSuite     int
	CipherSuiteZero bool
	AuthType        string
	Privilege       string
	Quirks          []string
	Steal           string
	Escape          string
	Log             LogSettings
}

type builder struct {
	cfg      *Config
	errs     ErrorList
	opts     Options
	files    []*parsedFile
	secrets  map[string]secretResult // by kind and path, so a shared file is read once
	owner    map[string]loc          // console name -> where it was defined
	bmcOwner map[string]string       // BMC address -> console, to warn about sharing
	userLoc  map[string]loc
	keyOwner map[string]string // authorized key -> user name
	limit    int               // most consoles (and names in any hostlist)

	caConfigured bool // some trusted_user_ca_* is set (read or not)
}

type loc struct {
	file string
	line int
}

func (l loc) String() string {
	if l.line > 0 {
		return fmt.Sprintf("%s:%d", l.file, l.line)
	}
	return l.file
}

type secretResult struct {
	s  Secret
	ok bool
}

// build validates the parsed files and assembles a Config.
func build(path string, srcs []source, opts Options) (*Config, error) {
	if opts.LookupEnv == nil {
		opts.LookupEnv = os.LookupEnv
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	b := &builder{
		cfg:      &Config{Path: path, now: opts.Now},
		opts:     opts,
		secrets:  map[string]secretResult{},
		owner:    map[string]loc{},
		bmcOwner: map[string]string{},
		userLoc:  map[string]loc{},
		keyOwner: map[string]string{},
		limit:    maxConsoles,
	}
	if opts.maxConsoles > 0 {
		b.limit = opts.maxConsoles
	}
	for _, s := range srcs {
		b.cfg.Files = append(b.cfg.Files, s.name)
		if pf, ok := parseFile(s, &b.errs); ok {
			b.files = append(b.files, pf)
		}
	}
	if len(b.files) != len(srcs) || len(b.files) == 0 {
		// A file that does not parse would make every later check about
		// what it defines (users, consoles) misleading.
		if b.errs.Len() == 0 {
			b.errs.addf(path, 0, "", "no config files")
		}
		b.errs.sort(b.cfg.Files)
		return nil, &b.errs
	}
	main := b.files[0]
	b.server(main)
	base, defaultBMC := b.defaults(main)
	for _, f := range b.files[1:] {
		if f.shape.Server != nil {
			b.errs.addf(f.name, f.pos.table("server").lineOf(""), "", "[server] belongs in the main file %s", path)
		}
		if f.shape.Defaults != nil {
			b.errs.addf(f.name, f.pos.table("defaults").lineOf(""), "", "[defaults] belongs in the main file %s", path)
		}
	}
	for _, f := range b.files {
		b.users(f)
	}
	entries := 0
	for _, f := range b.files {
		entries += len(f.shape.Console)
	}
	b.cfg.consoles = make(map[string]int, entries)
	b.cfg.Consoles = make([]Console, 0, entries) // exact when generated one per node
	for _, f := range b.files {
		b.consoles(f, base, defaultBMC)
	}
	b.cfg.groups = map[string]bool{}
	for _, u := range b.cfg.Users {
		for _, g := range u.Groups {
			b.cfg.groups[g] = true
		}
	}
	for _, f := range b.files {
		b.rules(f)
	}
	for _, f := range b.files {
		b.syslog(f)
	}
	if b.errs.Len() == 0 {
		b.index()
	}
	if b.errs.Len() > 0 {
		b.errs.sort(b.cfg.Files)
		return nil, &b.errs
	}
	b.cfg.hash = b.cfg.canonicalHash()
	return b.cfg, nil
}

func (b *builder) addRef(p string) {
	if !slices.Contains(b.cfg.refs, p) {
		b.cfg.refs = append(b.cfg.refs, p)
	}
}

func (b *builder) warnf(format string, args ...any) {
	if len(b.cfg.Warnings) < maxErrors {
		b.cfg.Warnings = append(b.cfg.Warnings, fmt.Sprintf(format, args...))
	}
}

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
			bad(d.key, "%q is not an absolute path", *d.v)
		}
	}
	if sh.LogLevel != nil {
		s.LogLevel = *sh.LogLevel
		switch s.LogLevel {
		case "debug", "info", "warn", "error":
		default:
			bad("log_level", "%q is not one of debug, info, warn, error", s.LogLevel)
		}
	}
	if sh.HostKeys != nil {
		for i, p := range sh.HostKeys {
			if !filepath.IsAbs(p) {
				b.errs.addf(f.name, e.elemLine("host_keys", i), "", "[server] host_keys: %q is not an absolute path", p)
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
		data, err := os.ReadFile(p)
		if err != nil {
			b.errs.addf(f.name, line, "", "[server] trusted_user_ca_files: %s: %v", p, unwrapPath(err))
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
			return nil, fmt.Errorf("key option %q is not supported", o)
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
		return fmt.Errorf("%q: want HOST:PORT or :PORT", addr)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("%q: port is not a number from 0 to 65535", addr)
	}
	return nil
}

// relPath resolves a path named in file f relative to f's directory.
func (b *builder) relPath(f *parsedFile, p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(filepath.Dir(f.name), p)
}

func (b *builder) defaults(f *parsedFile) (settings, string) {
	s := builtinSettings()
	sh := f.shape.Defaults
	if sh == nil {
		return s, ""
	}
	e := f.pos.table("defaults")
	s = b.apply(s, &sh.settingsShape, f, e, "")
	tmpl := ""
	if sh.BMC != nil {
		tmpl = *sh.BMC
		if !strings.Contains(tmpl, "{name}") {
			b.errs.addf(f.name, e.lineOf("bmc"), "", "[defaults] bmc %q must be a template containing {name}, such as \"{name}-bmc\"", tmpl)
		} else if err := checkTemplate(tmpl); err != nil {
			b.errs.addf(f.name, e.lineOf("bmc"), "", "[defaults] %v", err)
		}
	}
	return s, tmpl
}

func checkTemplate(t string) error {
	rest := strings.ReplaceAll(t, "{name}", "")
	if strings.ContainsAny(rest, "{}") {
		return fmt.Errorf("bmc template %q: {name} is the only placeholder", t)
	}
	return nil
}

// apply overrides s with what the table sh sets. label names the console
// entry in errors ("" for [defaults]).
func (b *builder) apply(s settings, sh *settingsShape, f *parsedFile, e *entryPos, label string) settings {
	table := "[defaults] "
	if label != "" {
		table = ""
	}
	bad := func(key, format string, args ...any) {
		b.errs.addf(f.name, e.lineOf(key), label, table+key+": "+format, args...)
	}
	str := func(key string, v *string, dst *string, valid ...string) {
		if v == nil {
			return
		}
		if len(valid) > 0 && !slices.Contains(valid, *v) {
			bad(key, "%q is not one of %s", *v, strings.Join(valid, ", "))
			return
		}
		*dst = *v
	}
	if sh.User != nil {
		if len(*sh.User) > maxIPMIUser {
			bad("user", "%q is longer than %d bytes (the IPMI limit)", *sh.User, maxIPMIUser)
		}
		s.User = *sh.User
	}
	if pw, ok := b.password(sh, f, e, label, table); ok {
		s.Password = pw
	}
	if sh.KGFile != nil && sh.KGEnv != nil {
		bad("kg_file", "set only one of kg_file and kg_env")
	} else if sh.KGFile != nil {
		s.KG = b.fileSecret(f, e.lineOf("kg_file"), label, table+"kg_file", b.relPath(f, *sh.KGFile), true)
	} else if sh.KGEnv != nil {
		s.KG = b.envSecret(f, e.lineOf("kg_env"), label, table+"kg_env", *sh.KGEnv, true)
	}
	str("interface", sh.Interface, &s.Interface, "lanplus", "lan")
	if sh.CipherSuite != nil {
		cs := *sh.CipherSuite
		switch {
		case cs == 0 && !sh.InsecureCipherSuiteZero:
			bad("cipher_suite", "suite 0 has no authentication and no encryption; it needs insecure_cipher_suite_zero = true (leave cipher_suite out for the automatic choice)")
		case cs != 0 && !slices.Contains(ValidCipherSuites, cs):
			bad("cipher_suite", "%d is not one of %s", cs, joinInts(ValidCipherSuites))
		}
		s.CipherSuite, s.CipherSuiteZero = cs, cs == 0
	}
	if sh.InsecureCipherSuiteZero && (sh.CipherSuite == nil || *sh.CipherSuite != 0) {
		bad("insecure_cipher_suite_zero", "is set but cipher_suite is not 0 in the same table")
	}
	if sh.AuthType != nil {
		switch *sh.AuthType {
		case "md5", "md2", "password":
		case "none":
			if !sh.InsecureAuthNone {
				bad("auth_type", "\"none\" sends no password at all; it needs insecure_auth_none = true")
			}
		default:
			bad("auth_type", "%q is not one of md5, md2, password, none", *sh.AuthType)
		}
		s.AuthType = *sh.AuthType
	}
	if sh.InsecureAuthNone && (sh.AuthType == nil || *sh.AuthType != "none") {
		bad("insecure_auth_none", "is set but auth_type is not \"none\" in the same table")
	}
	str("privilege", sh.Privilege, &s.Privilege, "user", "operator", "admin")
	if sh.Quirks != nil {
		q := make([]string, 0, len(*sh.Quirks))
		for i, name := range *sh.Quirks {
			if !slices.Contains(ValidQuirks, name) {
				b.errs.addf(f.name, e.elemLine("quirks", i), label, "%squirks: unknown quirk %q (known: %s)", table, name, strings.Join(ValidQuirks, " "))
				continue
			}
			if !slices.Contains(q, name) {
				q = append(q, name)
			}
		}
		s.Quirks = q
	}
	str("steal", sh.Steal, &s.Steal, "never", "when-idle", "always")
	if sh.Escape != nil {
		if _, _, err := ParseEscape(*sh.Escape); err != nil {
			bad("escape", "%v", err)
		}
		s.Escape = *sh.Escape
	}
	for _, sz := range []struct {
		key string
		v   *string
		dst *int64
	}{{"log_rotate_size", sh.LogRotateSize, &s.Log.RotateSize}, {"log_retain_size", sh.LogRetainSize, &s.Log.RetainBytes}} {
		if sz.v == nil {
			continue
		}
		n, err := parseSize(*sz.v)
		if err != nil {
			bad(sz.key, "%v", err)
			continue
		}
		*sz.dst = n
	}
	for _, d := range []struct {
		key string
		v   *string
		dst *time.Duration
	}{{"log_rotate_age", sh.LogRotateAge, &s.Log.RotateAge}, {"log_retain_age", sh.LogRetainAge, &s.Log.RetainAge}} {
		if d.v == nil {
			continue
		}
		v, err := ParseDuration(*d.v)
		if err != nil {
			bad(d.key, "%v", err)
			continue
		}
		*d.dst = v
	}
	if sh.LogRotateSize != nil && s.Log.RotateSize < 4096 {
		bad("log_rotate_size", "%s is below 4KiB", *sh.LogRotateSize)
	}
	if sh.LogRotateAge != nil && s.Log.RotateAge != 0 && s.Log.RotateAge < time.Minute {
		bad("log_rotate_age", "%s is shorter than 1m", *sh.LogRotateAge)
	}
	return s
}

func joinInts(v []int) string {
	s := make([]string, len(v))
	for i, n := range v {
		s[i] = strconv.Itoa(n)
	}
	return strings.Join(s, ", ")
}

// password returns the password this table sets, if it sets one.
func (b *builder) password(sh *settingsShape, f *parsedFile, e *entryPos, label, table string) (Secret, bool) {
	n := 0
	for _, p := range []*string{sh.PasswordFile, sh.PasswordEnv, sh.Password} {
		if p != nil {
			n++
		}
	}
	if sh.InsecureInlinePassword && sh.Password == nil {
		b.errs.addf(f.name, e.lineOf("insecure_inline_password"), label, "%sinsecure_inline_password is set but password is not", table)
	}
	switch {
	case n == 0:
		return Secret{}, false
	case n > 1:
		b.errs.addf(f.name, e.lineOf("password_file"), label, "%sset only one of password_file, password_env and password", table)
		return Secret{}, false
	case sh.PasswordFile != nil:
		return b.fileSecret(f, e.lineOf("password_file"), label, table+"password_file", b.relPath(f, *sh.PasswordFile), false), true
	case sh.PasswordEnv != nil:
		return b.envSecret(f, e.lineOf("password_env"), label, table+"password_env", *sh.PasswordEnv, false), true
	}
	line := e.lineOf("password")
	if !sh.InsecureInlinePassword {
		b.errs.addf(f.name, line, label, "%spassword in a config file needs insecure_inline_password = true; prefer password_file or password_env", table)
		return Secret{}, false
	}
	v, err := secretValue([]byte(*sh.Password), false)
	if err != nil {
		b.errs.addf(f.name, line, label, "%spassword: %v", table, err)
		return Secret{}, false
	}
	return newSecret(v, "inline"), true
}

// fileSecret reads a password or K_g file once per Load.
func (b *builder) fileSecret(f *parsedFile, line int, label, what, path string, kg bool) Secret {
	src := "file " + path
	if path == "" {
		b.errs.addf(f.name, line, label, "%s: empty path", what)
		return Secret{}
	}
	b.addRef(path)
	if b.opts.SkipSecrets {
		return Secret{source: src, set: true}
	}
	key := what[strings.LastIndexByte(what, ' ')+1:] + "\x00" + path
	if r, seen := b.secrets[key]; seen {
		return r.s
	}
	st, err := os.Stat(path)
	var data []byte
	if err == nil {
		data, err = os.ReadFile(path)
	}
	if err != nil {
		b.errs.addf(f.name, line, label, "%s %s: %v", what, path, unwrapPath(err))
		b.secrets[key] = secretResult{}
		return Secret{}
	}
	if st.Mode().Perm()&0o004 != 0 {
		b.warnf("%s:%d: %s %s is readable by every user (chmod 0600 or 0640)", f.name, line, what, path)
	}
	data = trimNewline(data)
	v, err := secretValue(data, kg)
	if err != nil {
		b.errs.addf(f.name, line, label, "%s %s: %v", what, path, err)
		b.secrets[key] = secretResult{}
		return Secret{}
	}
	s := newSecret(v, src)
	b.secrets[key] = secretResult{s: s, ok: true}
	return s
}

func (b *builder) envSecret(f *parsedFile, line int, label, what, name string, kg bool) Secret {
	src := "env " + name
	if name == "" || strings.ContainsAny(name, "= \x00") {
		b.errs.addf(f.name, line, label, "%s: %q is not an environment variable name", what, name)
		return Secret{}
	}
	if b.opts.SkipSecrets {
		return Secret{source: src, set: true}
	}
	v, ok := b.opts.LookupEnv(name)
	if !ok {
		b.errs.addf(f.name, line, label, "%s: %s is not set in solgate's environment", what, name)
		return Secret{}
	}
	data, err := secretValue([]byte(v), kg)
	if err != nil {
		b.errs.addf(f.name, line, label, "%s: %s: %v", what, name, err)
		return Secret{}
	}
	return newSecret(data, src)
}

func trimNewline(b []byte) []byte {
	b = bytes.TrimSuffix(b, []byte("\n"))
	return bytes.TrimSuffix(b, []byte("\r"))
}

// secretValue checks a password, or decodes a K_g given as text or as hex
// with a 0x prefix (as ipmitool -y takes it).
func secretValue(v []byte, kg bool) ([]byte, error) {
	if len(v) == 0 {
		return nil, fmt.Errorf("is empty")
	}
	if kg {
		if bytes.HasPrefix(v, []byte("0x")) || bytes.HasPrefix(v, []byte("0X")) {
			d := make([]byte, hex.DecodedLen(len(v)-2))
			if _, err := hex.Decode(d, v[2:]); err != nil {
				return nil, fmt.Errorf("K_g after 0x is not hex")
			}
			v = d
		}
		if len(v) > maxKG {
			return nil, fmt.Errorf("K_g is %d bytes, more than %d", len(v), maxKG)
		}
		return v, nil
	}
	if len(v) > maxPassword20 {
		return nil, fmt.Errorf("password is %d bytes, more than the IPMI limit of %d", len(v), maxPassword20)
	}
	return v, nil
}

func (b *builder) consoles(f *parsedFile, base settings, defaultBMC string) {
	for i := range f.shape.Console {
		cs := &f.shape.Console[i]
		e := f.pos.entry("console", i)
		line := 0
		if e != nil {
			line = e.line
		}
		if cs.Name == "" {
			b.errs.addf(f.name, line, "", "[[console]] has no name")
			continue
		}
		label := cs.Name
		names, err := hostlist.ExpandLimit(cs.Name, b.limit)
		if err != nil {
			b.errs.addf(f.name, e.lineOf("name"), "", "name: %v", err)
			continue
		}
		if len(names) == 0 {
			b.errs.addf(f.name, e.lineOf("name"), "", "name %q names no console", cs.Name)
			continue
		}
		s := b.apply(base, &cs.settingsShape, f, e, label)
		if s.Interface == "lan" && len(s.Password.Reveal()) > maxPassword15 {
			b.errs.addf(f.name, line, label, "interface \"lan\" (IPMI 1.5) allows passwords of at most %d bytes; this one has %d", maxPassword15, len(s.Password.Reveal()))
		}

		bmcs := b.bmcs(f, e, cs, names, defaultBMC)
		if bmcs == nil {
			continue
		}
		var badNames []string
		var firstBad error
		var dups map[loc][]string // rare: allocated on the first duplicate
		for k, n := range names {
			if err := checkConsoleName(n); err != nil {
				if firstBad == nil {
					firstBad = err
				}
				badNames = append(badNames, n)
				continue
			}
			if prev, dup := b.owner[n]; dup {
				if dups == nil {
					dups = map[loc][]string{}
				}
				dups[prev] = append(dups[prev], n)
				continue
			}
			if err := checkBMC(bmcs[k]); err != nil {
				b.errs.addf(f.name, e.lineOf("bmc"), n, "%v", err)
				continue
			}
			b.owner[n] = loc{f.name, line}
			if other, shared := b.bmcOwner[bmcs[k]]; shared {
				b.warnf("%s:%d: consoles %s and %s share BMC %s", f.name, line, other, n, bmcs[k])
			} else {
				b.bmcOwner[bmcs[k]] = n
			}
			b.cfg.consoles[n] = len(b.cfg.Consoles)
			b.cfg.Consoles = append(b.cfg.Consoles, Console{
				Name: n, BMC: bmcs[k], User: s.User, Password: s.Password, KG: s.KG,
				Interface: s.Interface, CipherSuite: s.CipherSuite, CipherSuiteZero: s.CipherSuiteZero,
				AuthType: s.AuthType, Privilege: s.Privilege, Quirks: s.Quirks, Steal: s.Steal,
				Escape: s.Escape, Log: s.Log, File: f.name, Line: line,
			})
		}
		if firstBad != nil {
			more := ""
			if len(badNames) > 1 {
				more = fmt.Sprintf(" (and %d more bad names: %s)", len(badNames)-1, hostlist.Compress(badNames[1:]))
			}
			b.errs.addf(f.name, e.lineOf("name"), "", "%v%s", firstBad, more)
		}
		for prev, ns := range sortedDups(dups) {
			b.errs.addf(f.name, e.lineOf("name"), hostlist.Compress(ns), "defined twice; first at %s", prev)
		}
		if len(b.cfg.Consoles) > b.limit {
			b.errs.addf(f.name, line, "", "more than %d consoles in all", b.limit)
			return
		}
	}
}

// sortedDups yields duplicate groups in the order of their first definition.
func sortedDups(m map[loc][]string) func(func(loc, []string) bool) {
	return func(yield func(loc, []string) bool) {
		keys := make([]loc, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		slices.SortFunc(keys, func(a, b loc) int {
			if c := strings.Compare(a.file, b.file); c != 0 {
				return c
			}
			return a.line - b.line
		})
		for _, k := range keys {
			if !yield(k, m[k]) {
				return
			}
		}
	}
}

// bmcs returns the BMC address of each name, from a template or a parallel
// hostlist, or nil after reporting an error.
func (b *builder) bmcs(f *parsedFile, e *entryPos, cs *consoleShape, names []string, defaultBMC string) []string {
	spec := defaultBMC
	if cs.BMC != nil {
		spec = *cs.BMC
	}
	line := e.lineOf("bmc")
	if spec == "" {
		b.errs.addf(f.name, e.lineOf(""), cs.Name, "no bmc: give a hostlist as long as name, or a template such as \"{name}-bmc\" (here or in [defaults])")
		return nil
	}
	out := make([]string, len(names))
	if strings.Contains(spec, "{name}") {
		if err := checkTemplate(spec); err != nil {
			b.errs.addf(f.name, line, cs.Name, "%v", err)
			return nil
		}
		for i, n := range names {
			out[i] = strings.ReplaceAll(spec, "{name}", n)
		}
		return out
	}
	addrs, err := hostlist.ExpandLimit(spec, b.limit)
	if err != nil {
		b.errs.addf(f.name, line, cs.Name, "bmc: %v", err)
		return nil
	}
	if len(addrs) != len(names) {
		hint := ""
		if len(addrs) == 1 {
			hint = " (for one BMC per name use a template such as \"{name}-bmc\")"
		}
		b.errs.addf(f.name, line, cs.Name, "bmc %q has %d addresses but name %q has %d names%s", spec, len(addrs), cs.Name, len(names), hint)
		return nil
	}
	return addrs
}

func (b *builder) users(f *parsedFile) {
	for i, us := range f.shape.User {
		e := f.pos.entry("user", i)
		line := e.lineOf("")
		bad := func(l int, format string, args ...any) {
			b.errs.addf(f.name, l, "", "user "+us.Name+": "+format, args...)
		}
		if err := checkIdent("user", us.Name); err != nil {
			b.errs.addf(f.name, e.lineOf("name"), "", "[[user]] %v", err)
			continue
		}
		if prev, dup := b.userLoc[us.Name]; dup {
			bad(e.lineOf("name"), "defined twice; first at %s", prev)
			continue
		}
		b.userLoc[us.Name] = loc{f.name, line}
		u := User{Name: us.Name, File: f.name, Line: line}
		for j, text := range us.Keys {
			l := e.elemLine("keys", j)
			k, _, opts, rest, err := ssh.ParseAuthorizedKey([]byte(text))
			switch {
			case err != nil:
				bad(l, "keys[%d]: not an SSH public key in authorized_keys format (%v)", j, err)
				continue
			case len(opts) > 0:
				bad(l, "keys[%d]: key options (%s) are not supported", j, strings.Join(opts, ","))
				continue
			case len(bytes.TrimSpace(rest)) > 0:
				bad(l, "keys[%d]: holds more than one key; give one key per element", j)
				continue
			}
			if _, ok := k.(*ssh.Certificate); ok {
				bad(l, "keys[%d]: is a certificate; trust its CA with [server] trusted_user_ca_keys instead", j)
				continue
			}
			m := string(k.Marshal())
			if other, dup := b.keyOwner[m]; dup && other != us.Name {
				bad(l, "keys[%d]: the same key belongs to user %s; a key must identify one person", j, other)
				continue
			} else if dup {
				continue
			}
			b.keyOwner[m] = us.Name
			u.Keys = append(u.Keys, k)
		}
		for j, g := range us.Groups {
			if err := checkIdent("group", g); err != nil {
				bad(e.elemLine("groups", j), "%v", err)
				continue
			}
			if g == "all" {
				bad(e.elemLine("groups", j), "group \"all\" is built in (every user is in it)")
				continue
			}
			if !slices.Contains(u.Groups, g) {
				u.Groups = append(u.Groups, g)
			}
		}
		if b.cfg.users == nil {
			b.cfg.users = map[string]int{}
			b.cfg.keys = map[string]int{}
		}
		b.cfg.users[u.Name] = len(b.cfg.Users)
		for _, k := range u.Keys {
			b.cfg.keys[string(k.Marshal())] = len(b.cfg.Users)
		}
		if len(u.Keys) == 0 && !b.caConfigured {
			b.warnf("%s:%d: user %s has no keys and no trusted_user_ca_* is set: they cannot log in", f.name, line, u.Name)
		}
		b.cfg.Users = append(b.cfg.Users, u)
	}
}

func (b *builder) rules(f *parsedFile) {
	for i, as := range f.shape.Access {
		e := f.pos.entry("access", i)
		r := Rule{Consoles: as.Consoles, File: f.name, Line: e.lineOf("")}
		ok := true
		switch as.Consoles {
		case "":
			b.errs.addf(f.name, r.Line, "", "[[access]] has no consoles (a hostlist, or \"*\" for all)")
			ok = false
		case "*":
		default:
			names, err := hostlist.ExpandLimit(as.Consoles, b.limit)
			if err != nil {
				b.errs.addf(f.name, e.lineOf("consoles"), "", "access consoles: %v", err)
				ok = false
				break
			}
			r.names = make(map[string]bool, len(names))
			for _, n := range names {
				r.names[n] = true
			}
		}
		for _, l := range []struct {
			key string
			in  []string
			dst *[]string
		}{{"read", as.Read, &r.Read}, {"write", as.Write, &r.Write}, {"power", as.Power, &r.Power}, {"deny", as.Deny, &r.Deny}} {
			for j, p := range l.in {
				if err := b.checkPrincipal(p); err != nil {
					b.errs.addf(f.name, e.elemLine(l.key, j), "", "access %s: %v", l.key, err)
					ok = false
					continue
				}
				if !slices.Contains(*l.dst, p) {
					*l.dst = append(*l.dst, p)
				}
			}
		}
		if len(as.Read)+len(as.Write)+len(as.Power)+len(as.Deny) == 0 {
			b.errs.addf(f.name, r.Line, "", "[[access]] for %s grants and denies nothing (set read, write, power or deny)", as.Consoles)
			ok = false
		}
		if ok {
			b.cfg.Rules = append(b.cfg.Rules, r)
		}
	}
}

// checkPrincipal accepts a configured user name, "@group" for a group some
// user is in, or "@all".
func (b *builder) checkPrincipal(p string) error {
	if g, isGroup := strings.CutPrefix(p, "@"); isGroup {
		if g == "all" || b.cfg.groups[g] {
			return nil
		}
		return fmt.Errorf("unknown group %q (no [[user]] lists it in groups)", p)
	}
	if _, ok := b.userLoc[p]; ok {
		return nil
	}
	return fmt.Errorf("unknown user %q (groups start with @)", p)
}

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
			bad("address", "%q is not a URL", ss.Address)
			continue
		}
		t.Network = u.Scheme
		switch u.Scheme {
		case "udp", "tcp", "tls":
			port := map[string]string{"udp": "514", "tcp": "514", "tls": "6514"}[u.Scheme]
			if u.Host == "" || (u.Path != "" && u.Path != "/") || u.User != nil || u.RawQuery != "" {
				bad("address", "%q: want %s://HOST[:PORT]", ss.Address, u.Scheme)
				ok = false
				break
			}
			if u.Port() != "" {
				port = u.Port()
			}
			if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
				bad("address", "%q: port %q is not a number from 1 to 65535", ss.Address, port)
				ok = false
			}
			t.Address = net.JoinHostPort(u.Hostname(), port)
		case "unix":
			if u.Host != "" || !filepath.IsAbs(u.Path) {
				bad("address", "%q: want unix:///absolute/path", ss.Address)
				ok = false
			}
			t.Address = u.Path
		default:
			bad("address", "%q: scheme must be udp, tcp, tls or unix", ss.Address)
			ok = false
		}
		if ss.Format != nil {
			switch *ss.Format {
			case "rfc5424", "rfc3164":
				t.Format = *ss.Format
			default:
				bad("format", "%q is not rfc5424 or rfc3164", *ss.Format)
				ok = false
			}
		}
		if ss.Facility != nil {
			fac, known := facilities[*ss.Facility]
			if !known {
				bad("facility", "%q is not a syslog facility (kern, user, daemon, auth, local0 ... local7, ...)", *ss.Facility)
				ok = false
			}
			t.Facility = fac
		}
		if ss.Consoles != nil {
			t.Consoles = *ss.Consoles
			names, err := hostlist.ExpandLimit(t.Consoles, b.limit)
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
				if _, err := os.ReadFile(t.CAFile); err != nil {
					bad("tls_ca_file", "%s: %v", t.CAFile, unwrapPath(err))
					ok = false
				}
			}
		}
		if ok {
			b.cfg.Syslog = append(b.cfg.Syslog, t)
		}
	}
}
