// Building the Config from parsed files: [defaults] and per-console overrides: inherited settings and secrets.

package config

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"os"
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
