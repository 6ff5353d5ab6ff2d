package migrate

import (
	"fmt"
	"path/filepath"
	"strings"
)

// DefaultSecretDir is where the placeholder secret files are put unless
// Options.SecretDir says otherwise.
const DefaultSecretDir = "/etc/solgate"

// maxIncludeDepth is conserver's limit on nested #include files.
const maxIncludeDepth = 10

// maxInput bounds one input file; a conserver.cf for 100,000 consoles is
// about 10 MB.
const maxInput = 64 << 20

// Options changes how a file is imported.
type Options struct {
	// SecretDir is the directory the password_file and kg_file
	// placeholders name; "" means DefaultSecretDir.
	SecretDir string
	// ReadFile reads the files a conserver.cf #includes; nil means
	// os.ReadFile. Relative names are relative to the including file's
	// directory.
	ReadFile func(name string) ([]byte, error)
}

func (o Options) secretDir() string {
	if o.SecretDir == "" {
		return DefaultSecretDir
	}
	return o.SecretDir
}

// Error is a syntax error in the imported file.
type Error struct {
	File string
	Line int // 1-based
	Msg  string
}

func (e *Error) Error() string {
	return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
}

// Note is a remark about one place in the imported file.
type Note struct {
	File string
	Line int
	Text string
}

func (n Note) String() string {
	if n.Line > 0 {
		return fmt.Sprintf("%s:%d: %s", filepath.Base(n.File), n.Line, n.Text)
	}
	return filepath.Base(n.File) + ": " + n.Text
}

// Result is one translated configuration.
type Result struct {
	Format string // "conserver" or "conman"
	Source string // the file imported, as named

	Consoles []Console // IPMI consoles, in the order the source defines them
	Skipped  []Skipped // consoles left out, in source order
	Notes    []Note    // settings without a solgate equivalent, each once
	Warnings []Note    // problems in the input
	Secrets  []Secret  // placeholder files the configuration names
	Groups   []Group   // conserver user groups, for the access comments

	// Listen, when set, is the [server] listen address to write
	// (ConMan's loopback=on becomes 127.0.0.1:2222).
	Listen     string
	ListenNote string
	// EscapeNote says how the source's escape keys relate to solgate's.
	EscapeNote string
}

// Console is one IPMI console with its settings in solgate's terms.
type Console struct {
	Name string
	BMC  string // host or host:port

	User        string
	HasUser     bool   // the source names a user; "" is the null user
	Password    string // placeholder password file, an existing one (ipmitool -f), or ""
	KG          string // placeholder K_g file, or ""
	Interface   string // "lan" (IPMI 1.5); "" is lanplus, the [defaults]
	CipherSuite int    // 0: automatic
	Privilege   string // user, operator or admin
	Quirks      []string
	RotateSize  int64 // log_rotate_size; 0 keeps solgate's default

	// Notes are this console's settings that solgate does without.
	Notes []string
	// Access is who the source let use the console (conserver only).
	Access Access

	File string
	Line int
}

// Access is a console's users in solgate's principal syntax: user names,
// @group, @all.
type Access struct {
	Read, Write, Deny []string
}

func (a Access) empty() bool { return len(a.Read)+len(a.Write)+len(a.Deny) == 0 }

func (a Access) key() string {
	return strings.Join(a.Read, ",") + "|" + strings.Join(a.Write, ",") + "|" + strings.Join(a.Deny, ",")
}

// Skipped is a console that was not imported.
type Skipped struct {
	Name string
	Why  string // e.g. `type exec "ssh localhost"`
	File string
	Line int
}

// Secret is a placeholder file that must be created by hand.
type Secret struct {
	Path     string
	Kind     string // "password" or "K_g"
	File     string // where the value is first set
	Line     int
	Consoles int  // how many imported consoles use it
	Binary   bool // the value has bytes that need the 0x hex form
}

// Group is a conserver user group.
type Group struct {
	Name    string
	Members []string
	File    string
	Line    int
}

// pending is a console being imported, with its secrets still in hand.
type pending struct {
	c        Console
	password string // "" for none
	kg       string
	pwAt     Note // where the password was set
	kgAt     Note
}

// builder collects what an importer finds; both importers share it.
type builder struct {
	r       *Result
	opts    Options
	cons    []*pending
	secrets map[string]int // kind + "\x00" + value -> index in r.Secrets
	notes   map[string]bool
}

func newBuilder(format, source string, opts Options) *builder {
	return &builder{
		r:       &Result{Format: format, Source: source},
		opts:    opts,
		secrets: map[string]int{},
		notes:   map[string]bool{},
	}
}

func (b *builder) warnf(file string, line int, format string, args ...any) {
	b.r.Warnings = append(b.r.Warnings, Note{File: file, Line: line, Text: fmt.Sprintf(format, args...)})
}

// notef records a setting without an equivalent, once per text.
func (b *builder) notef(file string, line int, format string, args ...any) {
	t := fmt.Sprintf(format, args...)
	if b.notes[t] {
		return
	}
	b.notes[t] = true
	b.r.Notes = append(b.r.Notes, Note{File: file, Line: line, Text: t})
}

func (b *builder) skip(name, why, file string, line int) {
	b.r.Skipped = append(b.r.Skipped, Skipped{Name: name, Why: why, File: file, Line: line})
}

// finish assigns the placeholder secret files, in the order consoles use
// them, and returns the result. The secret values are dropped here.
func (b *builder) finish() *Result {
	for _, p := range b.cons {
		if p.password != "" {
			p.c.Password = b.secret("password", p.password, p.pwAt)
		}
		if p.kg != "" {
			p.c.KG = b.secret("K_g", p.kg, p.kgAt)
		}
		b.r.Consoles = append(b.r.Consoles, p.c)
	}
	b.cons = nil
	b.secrets = nil
	return b.r
}

// secret returns the placeholder file for a secret value: the same file for
// the same value.
func (b *builder) secret(kind, value string, at Note) string {
	k := kind + "\x00" + value
	if i, ok := b.secrets[k]; ok {
		b.r.Secrets[i].Consoles++
		return b.r.Secrets[i].Path
	}
	ext := ".pass"
	if kind == "K_g" {
		ext = ".kg"
	}
	n := 1
	for _, s := range b.r.Secrets {
		if s.Kind == kind {
			n++
		}
	}
	name := "bmc" + ext
	if n > 1 {
		name = fmt.Sprintf("bmc-%d%s", n, ext)
	}
	binary := false
	for i := 0; i < len(value); i++ {
		if value[i] < 0x20 || value[i] >= 0x7f {
			binary = true
		}
	}
	b.secrets[k] = len(b.r.Secrets)
	b.r.Secrets = append(b.r.Secrets, Secret{
		Path: filepath.Join(b.opts.secretDir(), name), Kind: kind,
		File: at.File, Line: at.Line, Consoles: 1, Binary: binary,
	})
	return b.r.Secrets[len(b.r.Secrets)-1].Path
}
