package config

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"time"

	toml "github.com/pelletier/go-toml/v2"
	"github.com/pelletier/go-toml/v2/unstable"
)

// maxFileSize bounds one config file; 10,000 consoles written out one by
// one take about 1 MB.
const maxFileSize = 64 << 20

// Options changes how Load reads the configuration.
type Options struct {
	// SkipSecrets validates where secrets and other referenced files come
	// from (password_file, kg_file, tls_ca_file, trusted_user_ca_files)
	// without reading them, for checking a config on a machine that does
	// not hold the secrets. Secrets in the result are set but empty, and
	// trusted CA files contribute no keys.
	SkipSecrets bool
	// LookupEnv reads password_env and kg_env; nil means os.LookupEnv.
	LookupEnv func(string) (string, bool)
	// Now is the clock for certificate validity; nil means time.Now.
	Now func() time.Time

	maxConsoles int // tests: a lower limit than maxConsoles
}

// Load reads the main file at path and every conf.d/*.toml beside it,
// validates them together and reads the secrets they name. The error, if
// any, is an *ErrorList naming file, line and console for every problem.
func Load(path string) (*Config, error) {
	return LoadWith(path, Options{})
}

// LoadWith is Load with options.
func LoadWith(path string, opts Options) (*Config, error) {
	srcs, err := readSources(path)
	if err != nil {
		return nil, err
	}
	return build(path, srcs, opts)
}

// source is the raw text of one config file.
type source struct {
	name string
	data []byte
	main bool
}

// ConfDir returns the conf.d directory that belongs to the main file path.
func ConfDir(path string) string {
	return filepath.Join(filepath.Dir(path), "conf.d")
}

// readSources reads the main file and the conf.d files, in the order they
// are applied.
func readSources(path string) ([]source, error) {
	var errs ErrorList
	data, err := readFile(path)
	if err != nil {
		errs.addf(path, 0, "", "%v", err)
		return nil, &errs
	}
	srcs := []source{{name: path, data: data, main: true}}
	names, err := confFiles(ConfDir(path))
	if err != nil {
		errs.addf(ConfDir(path), 0, "", "%v", err)
		return nil, &errs
	}
	for _, n := range names {
		data, err := readFile(n)
		if errors.Is(err, fs.ErrNotExist) {
			if _, lerr := os.Lstat(n); errors.Is(lerr, fs.ErrNotExist) {
				continue // renamed or removed since the listing
			}
		}
		if err != nil {
			errs.addf(n, 0, "", "%v", err)
			continue
		}
		srcs = append(srcs, source{name: n, data: data})
	}
	return srcs, errs.err()
}

func readFile(name string) ([]byte, error) {
	data, _, err := ReadFileLimit(name, maxFileSize)
	return data, err
}

// unwrapPath drops the path from a *PathError: the caller names the file.
func unwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// confFiles lists dir/*.toml in name order, skipping editor droppings. A
// missing directory is no error. Every entry with a config name is listed,
// whatever it is: readFile then reports a dangling symbolic link, a link
// loop or a directory named *.toml rather than skipping it silently. Only
// an entry that vanished between listing and reading (an editor's rename)
// is skipped, by readSources.
func confFiles(dir string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list: %w", unwrapPath(err))
	}
	var out []string
	for _, e := range ents {
		if isConfName(e.Name()) {
			out = append(out, filepath.Join(dir, e.Name()))
		}
	}
	slices.Sort(out)
	return out, nil
}

// isConfName reports whether a conf.d entry is a config file rather than an
// editor's temporary, backup or swap file.
func isConfName(n string) bool {
	return strings.HasSuffix(n, ".toml") && !strings.HasPrefix(n, ".") &&
		!strings.HasPrefix(n, "#") && n != "4913"
}

// fileShape is what one TOML file may hold. Pointers tell "absent" from
// "zero".
type fileShape struct {
	Server   *serverShape   `toml:"server"`
	Defaults *defaultsShape `toml:"defaults"`
	Console  []consoleShape `toml:"console"`
	User     []userShape    `toml:"user"`
	Access   []accessShape  `toml:"access"`
	Syslog   []syslogShape  `toml:"syslog"`
}

type serverShape struct {
	Listen             *string  `toml:"listen"`
	LogDir             *string  `toml:"log_dir"`
	StateDir           *string  `toml:"state_dir"`
	Metrics            *string  `toml:"metrics"`
	LogLevel           *string  `toml:"log_level"`
	HostKeys           []string `toml:"host_keys"`
	TrustedUserCAKeys  []string `toml:"trusted_user_ca_keys"`
	TrustedUserCAFiles []string `toml:"trusted_user_ca_files"`
	ReloadInterval     *string  `toml:"reload_interval"`
	daemonShape
}

// settingsShape is what [defaults] and [[console]] share.
type settingsShape struct {
	User                    *string   `toml:"user"`
	PasswordFile            *string   `toml:"password_file"`
	PasswordEnv             *string   `toml:"password_env"`
	Password                *string   `toml:"password"`
	InsecureInlinePassword  bool      `toml:"insecure_inline_password"`
	KGFile                  *string   `toml:"kg_file"`
	KGEnv                   *string   `toml:"kg_env"`
	Interface               *string   `toml:"interface"`
	CipherSuite             *int      `toml:"cipher_suite"`
	InsecureCipherSuiteZero bool      `toml:"insecure_cipher_suite_zero"`
	InsecureCipherSuite     bool      `toml:"insecure_cipher_suite"`
	AuthType                *string   `toml:"auth_type"`
	InsecureAuthNone        bool      `toml:"insecure_auth_none"`
	InsecureAuthPassword    bool      `toml:"insecure_auth_password"`
	Privilege               *string   `toml:"privilege"`
	Quirks                  *[]string `toml:"quirks"`
	Steal                   *string   `toml:"steal"`
	Escape                  *string   `toml:"escape"`
	LogRotateSize           *string   `toml:"log_rotate_size"`
	LogRotateAge            *string   `toml:"log_rotate_age"`
	LogRetainAge            *string   `toml:"log_retain_age"`
	LogRetainSize           *string   `toml:"log_retain_size"`
}

type defaultsShape struct {
	BMC *string `toml:"bmc"`
	settingsShape
}

type consoleShape struct {
	Name string  `toml:"name"`
	BMC  *string `toml:"bmc"`
	settingsShape
}

type userShape struct {
	Name   string   `toml:"name"`
	Keys   []string `toml:"keys"`
	Groups []string `toml:"groups"`
}

type accessShape struct {
	Consoles string   `toml:"consoles"`
	Read     []string `toml:"read"`
	Write    []string `toml:"write"`
	Power    []string `toml:"power"`
	Deny     []string `toml:"deny"`
}

type syslogShape struct {
	Address   string  `toml:"address"`
	Format    *string `toml:"format"`
	Facility  *string `toml:"facility"`
	Consoles  *string `toml:"consoles"`
	TLSCAFile *string `toml:"tls_ca_file"`
	// Keys of syslog.go's second part.
	TLSServerName   *string   `toml:"tls_server_name"`
	TLSCertFile     *string   `toml:"tls_cert_file"`
	TLSKeyFile      *string   `toml:"tls_key_file"`
	Severity        *string   `toml:"severity"`
	Patterns        *[]string `toml:"patterns"`
	DefaultPatterns *bool     `toml:"default_patterns"`
	MaxMessage      *int      `toml:"max_message"`
	Backfill        *bool     `toml:"backfill"`
}

// parsedFile is one decoded file with the lines of its tables and keys.
type parsedFile struct {
	name  string
	main  bool
	shape fileShape
	pos   filePos
}

var typeMismatch = regexp.MustCompile(`cannot decode TOML (\S+) into struct field \S+ of type (\S+)`)

// goTypeNames turns the Go types in decoder messages into TOML words.
var goTypeNames = map[string]string{
	"string": "a string", "*string": "a string", "int": "an integer", "*int": "an integer",
	"bool": "a boolean", "[]string": "an array of strings", "*[]string": "an array of strings",
}

// parseFile decodes one file strictly. A syntax or type error stops the
// file (ok is false); unknown keys are reported and the rest is used.
func parseFile(src source, errs *ErrorList) (pf *parsedFile, ok bool) {
	pf = &parsedFile{name: src.name, main: src.main}
	dec := toml.NewDecoder(bytes.NewReader(src.data)).DisallowUnknownFields()
	err := dec.Decode(&pf.shape)
	var sm *toml.StrictMissingError
	var de *toml.DecodeError
	switch {
	case err == nil:
	case errors.As(err, &sm):
		for i := range sm.Errors {
			e := &sm.Errors[i]
			line, _ := e.Position()
			errs.addf(src.name, line, "", "%s", unknownKey(e.Key()))
		}
	case errors.As(err, &de):
		line, _ := de.Position()
		msg := strings.TrimPrefix(de.Error(), "toml: ")
		if m := typeMismatch.FindStringSubmatch(msg); m != nil {
			want := goTypeNames[m[2]]
			if want == "" {
				want = m[2]
			}
			msg = fmt.Sprintf("%s must be %s, not a TOML %s", keyString(de.Key()), want, m[1])
		} else if k := keyString(de.Key()); k != "" {
			msg = k + ": " + msg
		}
		errs.addf(src.name, line, "", "%s", msg)
		return nil, false
	default:
		errs.addf(src.name, 0, "", "%v", err)
		return nil, false
	}
	pf.pos = scanPositions(src.data)
	return pf, true
}

// unknownKey describes an unknown key and suggests the known key it most
// likely misspells.
func unknownKey(k toml.Key) string {
	if len(k) == 0 {
		return "unknown key"
	}
	last := k[len(k)-1]
	table := strings.Join(k[:len(k)-1], ".")
	var known []string
	where := ""
	switch table {
	case "":
		known = tomlKeys(reflect.TypeFor[fileShape]())
		where = " at the top level"
	case "server":
		known, where = tomlKeys(reflect.TypeFor[serverShape]()), " in [server]"
	case "defaults":
		known, where = tomlKeys(reflect.TypeFor[defaultsShape]()), " in [defaults]"
	case "console":
		known, where = tomlKeys(reflect.TypeFor[consoleShape]()), " in [[console]]"
	case "user":
		known, where = tomlKeys(reflect.TypeFor[userShape]()), " in [[user]]"
	case "access":
		known, where = tomlKeys(reflect.TypeFor[accessShape]()), " in [[access]]"
	case "syslog":
		known, where = tomlKeys(reflect.TypeFor[syslogShape]()), " in [[syslog]]"
	default:
		where = " in " + table
	}
	msg := fmt.Sprintf("unknown key %s%s", quote(last), where)
	if table == "" {
		// A setting written before any table header, or a header forgotten.
		for _, t := range []struct {
			name string
			typ  reflect.Type
		}{{"[server]", reflect.TypeFor[serverShape]()}, {"[defaults]", reflect.TypeFor[defaultsShape]()}} {
			if slices.Contains(tomlKeys(t.typ), last) {
				return msg + " (it belongs under " + t.name + ")"
			}
		}
	}
	best, bestD := "", 3
	for _, c := range known {
		if d := editDistance(last, c); d < bestD {
			best, bestD = c, d
		}
	}
	if best != "" {
		msg += fmt.Sprintf(" (did you mean %s?)", quote(best))
	}
	return msg
}

// tomlKeys lists the keys a shape struct accepts, embedded structs included.
func tomlKeys(t reflect.Type) []string {
	var out []string
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if f.Anonymous {
			out = append(out, tomlKeys(f.Type)...)
			continue
		}
		if tag, _, _ := strings.Cut(f.Tag.Get("toml"), ","); tag != "" {
			out = append(out, tag)
		}
	}
	return out
}

// editDistance is the Levenshtein distance, for short keys.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

func keyString(k toml.Key) string {
	// Array-of-table keys read as "console.name"; say which table it was in.
	return strings.Join(k, ".")
}

// filePos records the lines of the tables and keys of one file, so that
// validation errors can point at them. Decoding into structs loses them.
type filePos struct {
	tables map[string]*entryPos   // [server], [defaults]
	arrays map[string][]*entryPos // [[console]] and friends, in order
}

type entryPos struct {
	line int
	keys []keyLine
}

type keyLine struct {
	key   string
	line  int
	elems []int // lines of array elements
}

// lineOf returns the line of key in the table, or the table's own line.
func (e *entryPos) lineOf(key string) int {
	if e == nil {
		return 0
	}
	for i := range e.keys {
		if e.keys[i].key == key {
			return e.keys[i].line
		}
	}
	return e.line
}

// elemLine returns the line of element i of the array at key.
func (e *entryPos) elemLine(key string, i int) int {
	if e == nil {
		return 0
	}
	for _, k := range e.keys {
		if k.key == key {
			if i < len(k.elems) {
				return k.elems[i]
			}
			return k.line
		}
	}
	return e.line
}

func (p *filePos) table(name string) *entryPos {
	return p.tables[name]
}

func (p *filePos) entry(array string, i int) *entryPos {
	if es := p.arrays[array]; i < len(es) {
		return es[i]
	}
	return nil
}

// scanPositions walks the document a second time with the go-toml parser
// and records where each table, array-of-tables entry and key starts. It
// only sees documents that already decoded, so it cannot fail; if it does,
// errors lose their line numbers, nothing else.
func scanPositions(data []byte) filePos {
	fp := filePos{tables: map[string]*entryPos{}, arrays: map[string][]*entryPos{}}
	var p unstable.Parser
	p.Reset(data)
	lc := lineCounter{data: data, line: 1}
	var cur *entryPos
	for p.NextExpression() {
		n := p.Expression()
		switch n.Kind {
		case unstable.Table, unstable.ArrayTable:
			it := n.Key()
			var parts []string
			off := -1
			for it.Next() {
				k := it.Node()
				if off < 0 {
					off = int(k.Raw.Offset)
				}
				parts = append(parts, string(k.Data))
			}
			name := strings.Join(parts, ".")
			cur = &entryPos{line: lc.at(off)}
			if n.Kind == unstable.Table {
				fp.tables[name] = cur
			} else {
				fp.arrays[name] = append(fp.arrays[name], cur)
			}
		case unstable.KeyValue:
			if cur == nil {
				cur = &entryPos{line: 1}
				fp.tables[""] = cur
			}
			it := n.Key()
			if !it.Next() {
				continue
			}
			k := it.Node()
			kl := keyLine{key: string(k.Data), line: lc.at(int(k.Raw.Offset))}
			if v := n.Value(); v != nil && v.Kind == unstable.Array {
				ai := v.Children()
				for ai.Next() {
					e := ai.Node()
					if e.Kind == unstable.Comment {
						continue
					}
					if e.Raw.Length > 0 {
						kl.elems = append(kl.elems, lc.at(int(e.Raw.Offset)))
					} else {
						kl.elems = append(kl.elems, kl.line)
					}
				}
			}
			cur.keys = append(cur.keys, kl)
		}
	}
	return fp
}

// lineCounter turns byte offsets into line numbers, cheaply for offsets
// that mostly increase.
type lineCounter struct {
	data []byte
	off  int
	line int
}

func (c *lineCounter) at(off int) int {
	if off < 0 || off > len(c.data) {
		return c.line
	}
	if off < c.off {
		c.off, c.line = 0, 1
	}
	c.line += bytes.Count(c.data[c.off:off], []byte{'\n'})
	c.off = off
	return c.line
}
