package config

import (
	"bufio"
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// The examples in etc/ name secrets under /etc/solgate, which a test machine
// does not have. TestEtcExamples validates them with SkipSecrets, as
// `solgate check --no-secrets` does; TestEtcExamplesWithSecrets copies etc/
// to a temporary directory, points the /etc/solgate paths there and creates
// every file they name, so the full load (secrets read) runs too.

const etcDir = "../../etc"

func TestEtcExamples(t *testing.T) {
	t.Parallel()
	c, err := LoadWith(filepath.Join(etcDir, "solgate.toml"), Options{SkipSecrets: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Files) < 3 || len(c.Consoles) < 40 || len(c.Users) == 0 || len(c.Rules) == 0 || len(c.Syslog) == 0 {
		t.Errorf("example too thin: %d files, %d consoles, %d users, %d rules, %d syslog",
			len(c.Files), len(c.Consoles), len(c.Users), len(c.Rules), len(c.Syslog))
	}
	if len(c.Warnings) > 0 {
		t.Errorf("the example has warnings:\n%s", strings.Join(c.Warnings, "\n"))
	}
	if !c.Allowed("bob", "node001", Write) || c.Allowed("carol", "mgmt1", Read) || !c.Allowed("alice", "gpu01", Power) {
		t.Error("the example's access rules do not say what its comments say")
	}
}

var etcPath = regexp.MustCompile(`/etc/solgate/[A-Za-z0-9._-]+`)

func TestEtcExamplesWithSecrets(t *testing.T) {
	t.Parallel()
	tmp := t.TempDir()
	err := filepath.WalkDir(etcDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".toml") {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		// Create each file the config names outside comments.
		for _, line := range strings.Split(string(data), "\n") {
			code, _, _ := strings.Cut(line, "#")
			for _, ref := range etcPath.FindAllString(code, -1) {
				if err := os.WriteFile(filepath.Join(tmp, filepath.Base(ref)), []byte("example-pw\n"), 0o600); err != nil {
					return err
				}
			}
		}
		rel, _ := filepath.Rel(etcDir, p)
		dst := filepath.Join(tmp, rel)
		if err := os.MkdirAll(filepath.Dir(dst), 0o750); err != nil {
			return err
		}
		return os.WriteFile(dst, bytes.ReplaceAll(data, []byte("/etc/solgate/"), []byte(tmp+"/")), 0o640)
	})
	if err != nil {
		t.Fatal(err)
	}
	c, err := Load(filepath.Join(tmp, "solgate.toml"))
	if err != nil {
		t.Fatal(err)
	}
	n, _ := c.Console("node001")
	if string(n.Password.Reveal()) != "example-pw" {
		t.Error("password not read")
	}
}

// TestEtcFilesParse checks every file under etc/: TOML strictly against the
// config schema, systemd units for unit-file syntax. Other kinds of file
// need a check here before they go into etc/.
func TestEtcFilesParse(t *testing.T) {
	t.Parallel()
	n := 0
	err := filepath.WalkDir(etcDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		n++
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		switch ext := filepath.Ext(p); {
		case ext == ".toml":
			var errs ErrorList
			if _, ok := parseFile(source{name: p, data: data, main: filepath.Base(p) == "solgate.toml"}, &errs); !ok || errs.Len() > 0 {
				t.Errorf("%v", &errs)
			}
		case strings.Contains(p, "sysusers.d/") || strings.Contains(p, "tmpfiles.d/"):
			if err := checkSnippetSyntax(data, strings.Contains(p, "sysusers.d/")); err != nil {
				t.Errorf("%s: %v", p, err)
			}
		case ext == ".service" || ext == ".socket" || ext == ".timer" || ext == ".conf" && strings.Contains(p, ".d/"):
			if err := checkUnitSyntax(data); err != nil {
				t.Errorf("%s: %v", p, err)
			}
		case ext == ".yml" || ext == ".yaml":
			// YAML syntax here; Prometheus rule files get their full check
			// (shape, metric names) in test/metrics_test.go TestAlertRules.
			var v any
			if err := yaml.Unmarshal(data, &v); err != nil || v == nil {
				t.Errorf("%s: not YAML: %v", p, err)
			}
		case ext == ".md" || strings.HasPrefix(filepath.Base(p), "README"):
		default:
			t.Errorf("%s: no syntax check for this kind of file; add one to %s", p, "conserver/config/etc_test.go")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n == 0 {
		t.Fatal("no files under etc/")
	}
}

var (
	unitSection = regexp.MustCompile(`^\[[A-Za-z][A-Za-z0-9-]*\]$`)
	unitKey     = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9]*\s*=`)
)

var (
	sysusersType = regexp.MustCompile(`^[ugmr]!?$`)
	tmpfilesType = regexp.MustCompile(`^[fFwdDevqQpLcbCxXrRzZtThHaAm][-+!=~^]*$`)
)

// checkSnippetSyntax checks sysusers.d(5) and tmpfiles.d(5) lines: a type,
// then white-space-separated fields (a sysusers GECOS may be quoted).
func checkSnippetSyntax(data []byte, sysusers bool) error {
	for i, l := range strings.Split(string(data), "\n") {
		l = strings.TrimSpace(l)
		if l == "" || l[0] == '#' {
			continue
		}
		f := strings.Fields(l)
		typ := tmpfilesType
		if sysusers {
			typ = sysusersType
		}
		if len(f) < 2 || !typ.MatchString(f[0]) || strings.Count(l, `"`)%2 != 0 {
			return fmt.Errorf("line %d: not a type followed by fields: %s", i+1, l)
		}
	}
	return nil
}

// checkUnitSyntax checks systemd unit file syntax (systemd.syntax(7)):
// comments, [Section] headers, Key=Value lines, backslash continuations.
func checkUnitSyntax(data []byte) error {
	sc := bufio.NewScanner(bytes.NewReader(data))
	line, section, cont := 0, false, false
	for sc.Scan() {
		line++
		l := strings.TrimSpace(sc.Text())
		wasCont := cont
		cont = strings.HasSuffix(l, "\\")
		switch {
		case wasCont, l == "", l[0] == '#', l[0] == ';':
		case unitSection.MatchString(l):
			section = true
		case unitKey.MatchString(l):
			if !section {
				return fmt.Errorf("line %d: key before any [Section]", line)
			}
		default:
			return fmt.Errorf("line %d: not a comment, [Section] or Key=Value: %s", line, l)
		}
	}
	return sc.Err()
}
