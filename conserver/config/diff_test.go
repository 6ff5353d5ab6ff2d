package config

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestCompare(t *testing.T) {
	t.Parallel()
	base := map[string]string{
		"a.pass": "pw-a\n",
		"b.pass": "pw-b\n",
		"solgate.toml": `
[defaults]
bmc = "{name}-bmc"
password_file = "a.pass"

[[console]]
name = "n[1-4]"

[[user]]
name = "u1"
groups = ["g"]

[[access]]
consoles = "n[1-2]"
read = ["@g"]
`,
	}
	old := mustLoad(t, base)
	tests := []struct {
		name    string
		replace [2]string // in solgate.toml
		want    string
	}{
		{"nothing", [2]string{"", ""}, ""},
		{"comment and blank lines", [2]string{"[defaults]", "# hello\n\n[defaults]"}, ""},
		{"add console", [2]string{"n[1-4]", "n[1-5]"}, "added n5"},
		{"remove console", [2]string{"n[1-4]", "n[2-4]"}, "removed n1"},
		{"password", [2]string{`"a.pass"`, `"b.pass"`}, "changed n1:credentials n2:credentials n3:credentials n4:credentials"},
		{"password and user", [2]string{`password_file = "a.pass"`, "password_file = \"b.pass\"\nuser = \"other\""}, "changed n1:connection+credentials n2:connection+credentials n3:connection+credentials n4:connection+credentials"},
		{"same password elsewhere", [2]string{`password_file = "a.pass"`, `password_file = "a2.pass"`}, ""},
		{"log", [2]string{`name = "n[1-4]"`, "name = \"n[1-4]\"\nlog_retain_age = \"1d\""}, "changed n1:log n2:log n3:log n4:log"},
		{"escape", [2]string{`name = "n[1-4]"`, "name = \"n[1-4]\"\nescape = \"^]c\""}, "changed n1:escape n2:escape n3:escape n4:escape"},
		{"access", [2]string{`consoles = "n[1-2]"`, `consoles = "n[2-3]"`}, "changed n1:access n3:access rules"},
		{"user groups", [2]string{`groups = ["g"]`, `groups = ["g", "h"]`}, "users u1"},
		{"server", [2]string{"[defaults]", "[server]\nlisten = \":2200\"\n[defaults]"}, "server"},
		{"syslog", [2]string{"[defaults]", "[[syslog]]\naddress = \"udp://127.0.0.1\"\n[defaults]"}, "syslog"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			files := map[string]string{}
			for k, v := range base {
				files[k] = v
			}
			files["a2.pass"] = "pw-a\n"
			files["solgate.toml"] = strings.Replace(base["solgate.toml"], tt.replace[0], tt.replace[1], 1)
			new := mustLoad(t, files)
			d := Compare(old, new)
			if got := diffString(d); got != tt.want {
				t.Errorf("diff = %q, want %q", got, tt.want)
			}
			if (tt.want == "") != old.Equal(new) {
				t.Errorf("Equal = %v with diff %q", old.Equal(new), tt.want)
			}
			if d.Empty() != (tt.want == "") {
				t.Errorf("Empty = %v", d.Empty())
			}
		})
	}
	if d := Compare(nil, old); len(d.Added) != 4 || len(d.Users) != 1 || !d.Rules {
		t.Errorf("Compare(nil, cfg) = %+v", d)
	}
}

func diffString(d Diff) string {
	var parts []string
	if len(d.Added) > 0 {
		parts = append(parts, "added "+strings.Join(d.Added, ","))
	}
	if len(d.Removed) > 0 {
		parts = append(parts, "removed "+strings.Join(d.Removed, ","))
	}
	if len(d.Changed) > 0 {
		var c []string
		for _, x := range d.Changed {
			c = append(c, x.Name+":"+x.What.String())
		}
		parts = append(parts, "changed "+strings.Join(c, " "))
	}
	if len(d.Users) > 0 {
		parts = append(parts, "users "+strings.Join(d.Users, ","))
	}
	if d.Rules {
		parts = append(parts, "rules")
	}
	if d.Syslog {
		parts = append(parts, "syslog")
	}
	if d.Server {
		parts = append(parts, "server")
	}
	return strings.Join(parts, " ")
}

// genConfig writes a config of n consoles (one [[console]] each, as a
// generator would), users users with a key each, and rules rules, and
// returns the main file's path.
func genConfig(t testing.TB, n, users, rules int) string {
	t.Helper()
	var b strings.Builder
	b.WriteString("[server]\nlog_dir = \"/var/log/solgate\"\n\n[defaults]\nuser = \"ADMIN\"\npassword_file = \"bmc.pass\"\n\n")
	for i := range n {
		fmt.Fprintf(&b, "[[console]]\nname = \"node%05d\"\nbmc = \"10.%d.%d.%d\"\n\n", i, 10+i/65536, i/256%256, i%256)
	}
	for i := range users {
		k, _ := newKey(t)
		fmt.Fprintf(&b, "[[user]]\nname = \"user%03d\"\nkeys = [%q]\ngroups = [\"g%d\"]\n\n", i, authorizedKey(k, "u"), i%10)
	}
	for i := range rules {
		lo := i * n / rules
		fmt.Fprintf(&b, "[[access]]\nconsoles = \"node[%05d-%05d]\"\nread = [\"@g%d\"]\nwrite = [\"user%03d\"]\n\n", lo, lo+n/rules-1, i%10, i%users)
	}
	dir := writeTree(t, map[string]string{"bmc.pass": "pw\n"})
	p := filepath.Join(dir, "solgate.toml")
	if err := os.WriteFile(p, []byte(b.String()), 0o640); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestOneLineChangeOneConsole: in a 10,000-console config, changing one
// line touches exactly one console in the diff.
func TestOneLineChangeOneConsole(t *testing.T) {
	t.Parallel()
	p := genConfig(t, 10_000, 100, 50)
	old, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(p)
	edited := strings.Replace(string(data), `bmc = "10.10.27.15"`, `bmc = "10.10.27.15:6230"`, 1)
	if edited == string(data) {
		t.Fatal("edit did not apply")
	}
	must(t, os.WriteFile(p, []byte(edited), 0o640))
	new, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	d := Compare(old, new)
	want := []ConsoleChange{{"node06927", ChangeConnection}}
	if !slices.Equal(d.Changed, want) || len(d.Added)+len(d.Removed)+len(d.Users) != 0 || d.Rules || d.Server || d.Syslog {
		t.Errorf("diff = %+v, want only %v", d, want)
	}
}

// BenchmarkLoadDiff10k parses, validates and diffs a generated config of
// 10,000 consoles, 100 users and 50 rules. Target: under 200 ms.
func BenchmarkLoadDiff10k(b *testing.B) {
	p := genConfig(b, 10_000, 100, 50)
	old, err := Load(p)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		new, err := Load(p)
		if err != nil {
			b.Fatal(err)
		}
		if d := Compare(old, new); !d.Empty() {
			b.Fatal("diff of identical configs is not empty")
		}
	}
}

func TestFingerprint(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	load := func() *Config {
		t.Helper()
		c, err := Load(filepath.Join(dir, "solgate.toml"))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	write("bmc.pass", "secret-one\n")
	write("solgate.toml", "[defaults]\nuser = \"admin\"\npassword_file = \"bmc.pass\"\n\n[[console]]\nname = \"node[1-2]\"\nbmc = \"{name}-bmc\"\n")
	a := load()
	if fp := a.Fingerprint(); len(fp) != 16 || strings.Trim(fp, "0123456789abcdef") != "" {
		t.Fatalf("Fingerprint() = %q, want 16 hex digits", fp)
	}
	// Moving lines is no change; another password is a change for Equal
	// but not for the fingerprint; another console is a change for both.
	write("solgate.toml", "\n\n[defaults]\npassword_file = \"bmc.pass\"\nuser = \"admin\"\n\n[[console]]\nbmc = \"{name}-bmc\"\nname = \"node[1-2]\"\n")
	if b := load(); b.Fingerprint() != a.Fingerprint() || !b.Equal(a) {
		t.Errorf("reordered lines: fingerprint %s -> %s, equal %v", a.Fingerprint(), b.Fingerprint(), b.Equal(a))
	}
	write("bmc.pass", "secret-two\n")
	if b := load(); b.Fingerprint() != a.Fingerprint() || b.Equal(a) {
		t.Errorf("new password: fingerprint %s -> %s (want unchanged), equal %v (want false)", a.Fingerprint(), b.Fingerprint(), b.Equal(a))
	}
	write("solgate.toml", "[defaults]\nuser = \"admin\"\npassword_file = \"bmc.pass\"\n\n[[console]]\nname = \"node[1-3]\"\nbmc = \"{name}-bmc\"\n")
	if b := load(); b.Fingerprint() == a.Fingerprint() {
		t.Errorf("a console added: fingerprint stayed %s", a.Fingerprint())
	}
}
