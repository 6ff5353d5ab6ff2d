// Building the Config from parsed files: the builder and its driver (build);
// each section has its own file (server.go, settings.go, consoles.go,
// users.go, rules.go, syslog.go).

package config

import (
	"fmt"
	"os"
	"slices"
	"time"
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
)

// MaxConsoles is the most consoles one configuration may define, in all
// files together: ten times the 10,000 a daemon is built and measured for
// (each console costs a socket and a log file against a descriptor limit
// of about 20,000). Hostlists are expanded against what is left of it, so
// an entry of a million names is refused before any name is produced.
const MaxConsoles = 100_000

// maxConsoles is MaxConsoles under the name the builder has always used.
const maxConsoles = MaxConsoles

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
	// InsecureCipherSuite: the explicit CipherSuite lacks integrity or
	// confidentiality and insecure_cipher_suite allowed it.
	InsecureCipherSuite bool
	AuthType            string
	Privilege           string
	Quirks              []string
	Steal               string
	Escape              string
	Log                 LogSettings
}

type builder struct {
	cfg      *Config
	errs     ErrorList
	opts     Options
	files    []*parsedFile
	secrets  map[string]secretResult // by kind and path, so a shared file is read once
	owner    map[string]loc          // console name -> where it was defined
	bmcOwner map[string]string       // BMC address -> console, to warn about sharing
	// lowerOwner maps a lower-cased console name to the console, to refuse
	// names that differ only in case.
	lowerOwner map[string]string
	userLoc    map[string]loc
	keyOwner   map[string]string // authorized key -> user name
	limit      int               // most consoles (and names in any hostlist)

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

		lowerOwner: map[string]string{},
		userLoc:    map[string]loc{},
		keyOwner:   map[string]string{},
		limit:      maxConsoles,
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
		b.cfg.Warnings = append(b.cfg.Warnings, cutMessage(fmt.Sprintf(format, args...), maxMessage))
	}
}
