package config

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestSyslogOptions(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	c := mustLoad(t, map[string]string{"solgate.toml": `[[syslog]]
address = "relp://127.0.0.1"
severity = "notice"
patterns = ["crit:segfault at", "err:I/O error"]
default_patterns = false
max_message = 4096
backfill = true
`})
	if len(c.Syslog) != 1 {
		t.Fatalf("%d targets", len(c.Syslog))
	}
	s := c.Syslog[0]
	if s.Network != "relp" || s.Address != "127.0.0.1:2514" || s.Severity != "notice" || !s.NoDefaultPatterns ||
		s.MaxMessage != 4096 || !s.Backfill || len(s.Patterns) != 2 || s.Patterns[1].Severity != "err" || s.Patterns[1].Re.String() != "I/O error" {
		t.Fatalf("target %+v", s)
	}
	var b strings.Builder
	if err := c.Dump(&b); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`severity = "notice"`, `patterns = ["crit:segfault at", "err:I/O error"]`, "default_patterns = false", "max_message = 4096", "backfill = true"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("dump lacks %s:\n%s", want, b.String())
		}
	}
	_ = dir
}

func TestSyslogOptionErrors(t *testing.T) {
	t.Parallel()
	_, err := loadTree(t, map[string]string{"solgate.toml": `[[syslog]]
address = "tcp://127.0.0.1"
severity = "loud"
patterns = ["crit:ok", "nocolon", "bogus:x", "err:(unclosed"]
tls_server_name = "x"
max_message = 100
[[syslog]]
address = "tls://127.0.0.1"
tls_cert_file = "/nonexistent/cert.pem"
`}, Options{LookupEnv: func(string) (string, bool) { return "", false }})
	if err == nil {
		t.Fatal("no error")
	}
	got := errorLines(t, err)
	for i := range got {
		got[i] = got[i][strings.LastIndex(got[i], string(filepath.Separator)+"solgate.toml")+1:]
	}
	want := []string{
		`solgate.toml:3: syslog severity: "loud" is not a severity (emerg, alert, crit, err, warning, notice, info, debug)`,
		`solgate.toml:4: syslog patterns: "nocolon": want "SEVERITY:REGEXP", e.g. "crit:segfault at"`,
		`solgate.toml:4: syslog patterns: "bogus" is not a severity (emerg, alert, crit, err, warning, notice, info, debug)`,
		"solgate.toml:4: syslog patterns: \"(unclosed\": error parsing regexp: missing closing ): `(unclosed`",
		`solgate.toml:5: syslog tls_server_name: only applies to tls:// addresses`,
		`solgate.toml:6: syslog max_message: 100 is not from 480 to 65536 bytes`,
		`solgate.toml:9: syslog tls_cert_file: /nonexistent/cert.pem: no such file or directory`,
		`solgate.toml:9: syslog tls_cert_file: needs tls_key_file too (and the other way round)`,
	}
	if !slices.Equal(got, want) {
		t.Errorf("errors:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}
