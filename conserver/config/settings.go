// Building the Config from parsed files: [defaults] and per-console overrides: inherited settings and secrets.

package config

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

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
			b.errs.addf(f.name, e.lineOf("bmc"), "", "[defaults] bmc %s must be a template containing {name}, such as \"{name}-bmc\"", quote(tmpl))
		} else if err := CheckTemplate(tmpl); err != nil {
			b.errs.addf(f.name, e.lineOf("bmc"), "", "[defaults] %v", err)
		}
	}
	return s, tmpl
}

// CheckTemplate validates a BMC address template such as "{name}-bmc":
// {name} is its only placeholder, so "{nam}" or a stray brace is an error
// here rather than a host name looked up for every console.
func CheckTemplate(t string) error {
	rest := strings.ReplaceAll(t, "{name}", "")
	if i := strings.IndexAny(rest, "{}"); i >= 0 {
		if j := strings.IndexByte(rest[i:], '}'); rest[i] == '{' && j > 0 {
			return fmt.Errorf("bmc template %s: unknown placeholder %s ({name} is the only one)", quote(t), quote(rest[i:i+j+1]))
		}
		return fmt.Errorf("bmc template %s: {name} is the only placeholder, and braces are allowed only in it", quote(t))
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
			bad(key, "%s is not one of %s", quote(*v), strings.Join(valid, ", "))
			return
		}
		*dst = *v
	}
	if sh.User != nil {
		if len(*sh.User) > maxIPMIUser {
			bad("user", "%s is longer than %d bytes (the IPMI limit)", quote(*sh.User), maxIPMIUser)
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
		weak, isWeak := weakSuites[cs]
		switch {
		case cs == 0 && !sh.InsecureCipherSuiteZero:
			bad("cipher_suite", "suite 0 has no authentication and no encryption; it needs insecure_cipher_suite_zero = true (leave cipher_suite out for the automatic choice)")
		case cs != 0 && !slices.Contains(ValidCipherSuites, cs):
			bad("cipher_suite", "%d is not one of %s", cs, joinInts(ValidCipherSuites))
		case isWeak && !sh.InsecureCipherSuite:
			bad("cipher_suite", "suite %d has %s: what is typed on the console, root passwords included, travels in clear; it needs insecure_cipher_suite = true (or use 3 or 17, or leave cipher_suite out for the automatic choice)", cs, weak)
		}
		s.CipherSuite, s.CipherSuiteZero, s.InsecureCipherSuite = cs, cs == 0, isWeak && sh.InsecureCipherSuite
	}
	if sh.InsecureCipherSuiteZero && (sh.CipherSuite == nil || *sh.CipherSuite != 0) {
		bad("insecure_cipher_suite_zero", "is set but cipher_suite is not 0 in the same table")
	}
	if sh.InsecureCipherSuite {
		if _, isWeak := weakSuites[deref(sh.CipherSuite, -1)]; !isWeak {
			bad("insecure_cipher_suite", "is set but cipher_suite in the same table is not one without integrity or encryption (%s)", joinInts(weakSuiteIDs()))
		}
	}
	if sh.AuthType != nil {
		switch *sh.AuthType {
		case "md5":
		case "md2":
			bad("auth_type", "\"md2\" is not supported (MD2 is broken, and solgate does not speak it); use \"md5\"")
		case "password":
			if !sh.InsecureAuthPassword {
				bad("auth_type", "\"password\" sends the BMC password in clear text in every message; it needs insecure_auth_password = true (prefer \"md5\")")
			}
		case "none":
			if !sh.InsecureAuthNone {
				bad("auth_type", "\"none\" sends no password at all; it needs insecure_auth_none = true")
			}
		default:
			bad("auth_type", "%s is not one of md5, password, none", quote(*sh.AuthType))
		}
		s.AuthType = *sh.AuthType
	}
	if sh.InsecureAuthNone && (sh.AuthType == nil || *sh.AuthType != "none") {
		bad("insecure_auth_none", "is set but auth_type is not \"none\" in the same table")
	}
	if sh.InsecureAuthPassword && (sh.AuthType == nil || *sh.AuthType != "password") {
		bad("insecure_auth_password", "is set but auth_type is not \"password\" in the same table")
	}
	str("privilege", sh.Privilege, &s.Privilege, "user", "operator", "admin")
	if sh.Quirks != nil {
		q := make([]string, 0, len(*sh.Quirks))
		for i, name := range *sh.Quirks {
			if !slices.Contains(ValidQuirks, name) {
				b.errs.addf(f.name, e.elemLine("quirks", i), label, "%squirks: unknown quirk %s (known: %s)", table, quote(name), strings.Join(ValidQuirks, " "))
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

// weakSuites are the RMCP+ suites without integrity or confidentiality,
// with what they lack: an explicit choice of one needs
// insecure_cipher_suite (and maps to ipmilan.Config.Insecure).
var weakSuites = map[int]string{
	1: "no integrity and no encryption", 6: "no integrity and no encryption", 15: "no integrity and no encryption",
	2: "no encryption", 7: "no encryption", 11: "no encryption", 16: "no encryption",
}

func weakSuiteIDs() []int {
	ids := make([]int, 0, len(weakSuites))
	for id := range weakSuites {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

func deref(p *int, def int) int {
	if p == nil {
		return def
	}
	return *p
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
	data, st, err := ReadFileLimit(path, MaxSecretFile)
	if err != nil {
		b.errs.addf(f.name, line, label, "%s %s: %v", what, path, err)
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
		b.errs.addf(f.name, line, label, "%s: %s is not an environment variable name", what, quote(name))
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
