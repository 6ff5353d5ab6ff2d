package migrate

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

func importConserver(t *testing.T, text string) *Result {
	t.Helper()
	r, err := Conserver("/etc/conserver.cf", []byte(text), Options{SecretDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func console(t *testing.T, r *Result, name string) *Console {
	t.Helper()
	for i := range r.Consoles {
		if r.Consoles[i].Name == name {
			return &r.Consoles[i]
		}
	}
	t.Fatalf("no console %s in %+v", name, r.Consoles)
	return nil
}

// TestConserverInheritance: the implicit default *, include applying a
// default's settings at the point of the include, a later default of the
// same name replacing the earlier for the blocks after it, "" unsetting,
// and rw lists accumulating.
func TestConserverInheritance(t *testing.T) {
	t.Parallel()
	r := importConserver(t, `
default full { rw *; }
default * { master localhost; type ipmi; username admin; include full; logfile /var/consoles/&; }
default rack { username root; password "s3cret"; ipmiprivlevel operator; }
console n1 { host n1-bmc; }
console n2 { include rack; host n2-bmc; }
console n3 { include rack; username ""; host n3-bmc; }
console n4 { username override; include rack; host n4-bmc; rw !bob; }
default rack { username other; }
console n5 { include rack; host n5-bmc; ro carol; }
default * { master localhost; type ipmi; }
console n6 { host n6-bmc; logfile ""; }
`)
	for _, tc := range []struct {
		name, user, priv string
		password         bool
		access           Access
	}{
		{"n1", "admin", "admin", false, Access{Read: []string{"@all"}, Write: []string{"@all"}}},
		{"n2", "root", "operator", true, Access{Read: []string{"@all"}, Write: []string{"@all"}}},
		{"n3", "", "operator", true, Access{Read: []string{"@all"}, Write: []string{"@all"}}},
		{"n4", "root", "operator", true, Access{Read: []string{"@all"}, Write: []string{"@all"}, Deny: []string{"bob"}}},
		{"n5", "other", "admin", false, Access{Read: []string{"@all", "carol"}, Write: []string{"@all"}}},
		{"n6", "", "admin", false, Access{}},
	} {
		c := console(t, r, tc.name)
		if c.User != tc.user || !c.HasUser || c.Privilege != tc.priv || (c.Password != "") != tc.password {
			t.Errorf("%s: user %q (%v), privilege %s, password %q; want %q, %s, password %v", tc.name, c.User, c.HasUser, c.Privilege, c.Password, tc.user, tc.priv, tc.password)
		}
		if c.Access.key() != tc.access.key() {
			t.Errorf("%s: access %+v, want %+v", tc.name, c.Access, tc.access)
		}
		if c.BMC != tc.name+"-bmc" {
			t.Errorf("%s: bmc %s", tc.name, c.BMC)
		}
	}
	if n := console(t, r, "n6").Notes; !slices.Contains(n, "conserver kept no log file for this console; solgate logs every console") {
		t.Errorf("n6 notes: %q", n)
	}
	if n := console(t, r, "n1").Notes; !strings.Contains(strings.Join(n, "\n"), `conserver logged to "/var/consoles/&"`) {
		t.Errorf("n1 notes: %q", n)
	}
	if len(r.Secrets) != 1 || r.Secrets[0].Consoles != 3 || r.Secrets[0].Line != 4 {
		t.Errorf("secrets: %+v", r.Secrets)
	}
	if strings.Contains(string(r.TOML()), "s3cret") {
		t.Error("the password is in the output")
	}
	load(t, r)
}

func TestConserverIPMISettings(t *testing.T) {
	t.Parallel()
	r := importConserver(t, `
default * { master localhost; type ipmi; }
console a { host 10.0.0.1; ipmiciphersuite 3; ipmiworkaround intel-session,checksum, auth-capabilites; ipmikg "\001\002k"; }
console b { host 10.0.0.2:6230; ipmiciphersuite -1; ipmiworkaround default,!default,sun-session; }
console c { host [fd00::3]:623; ipmiciphersuite 2; ipmiworkaround "intel-session,!intel-session"; ipmikg secretkg; }
console d { host d-bmc; ipmiciphersuite 0; logfilemax 8m; break 4; motd "hello there"; }
console e { host e-bmc; ipmiciphersuite 17; logfilemax 2k; ipmiprivlevel USER; aliases e1,e2; }
console f { host f-bmc; ipmiworkaround bogus; ipmiciphersuite 4; }
`)
	a := console(t, r, "a")
	if a.CipherSuite != 3 || !slices.Equal(a.Quirks, []string{"intel20", "nochecksumcheck", "authcap"}) || a.KG == "" {
		t.Errorf("a: %+v", a)
	}
	if s := r.Secrets[0]; s.Kind != "K_g" || !s.Binary {
		t.Errorf("a's K_g secret: %+v (octal escapes make it binary)", s)
	}
	b := console(t, r, "b")
	if b.BMC != "10.0.0.2:6230" || b.CipherSuite != 0 || !slices.Equal(b.Quirks, []string{"sun20"}) {
		t.Errorf("b: %+v", b)
	}
	c := console(t, r, "c")
	if c.BMC != "[fd00::3]:623" || c.CipherSuite != 0 || len(c.Quirks) != 0 || !strings.Contains(strings.Join(c.Notes, "\n"), "ipmiciphersuite 2") {
		t.Errorf("c: %+v", c)
	}
	if s := r.Secrets[1]; s.Kind != "K_g" || s.Binary || s.Path == r.Secrets[0].Path {
		t.Errorf("c's K_g secret: %+v", s)
	}
	d := console(t, r, "d")
	notes := strings.Join(d.Notes, "\n")
	if d.RotateSize != 8<<20 || !strings.Contains(notes, "ipmiciphersuite 0") || !strings.Contains(notes, `break 4 ("\\r\\d~\\d^b")`) || !strings.Contains(notes, `motd "hello there"`) {
		t.Errorf("d: %+v", d)
	}
	e := console(t, r, "e")
	if e.CipherSuite != 17 || e.RotateSize != 0 || e.Privilege != "user" || !strings.Contains(strings.Join(e.Notes, "\n"), `aliases "e1,e2"`) {
		t.Errorf("e: %+v", e)
	}
	f := console(t, r, "f")
	if len(f.Quirks) != 0 || f.CipherSuite != 0 {
		t.Errorf("f: %+v", f)
	}
	w := notesText(r.Warnings)
	for _, want := range []string{`conserver.cf:8: console f: ipmiworkaround "bogus" is not one conserver knows`, `conserver.cf:8: console f: ipmiciphersuite 4 is not a suite solgate supports`} {
		if !strings.Contains(w, want) {
			t.Errorf("warnings lack %q:\n%s", want, w)
		}
	}
	out := string(r.TOML())
	if strings.Contains(out, "secretkg") || strings.Contains(out, "\x01") {
		t.Error("a K_g is in the output")
	}
	load(t, r)
}

func notesText(ns []Note) string {
	var b strings.Builder
	for _, n := range ns {
		b.WriteString(n.String() + "\n")
	}
	return b.String()
}

// TestConserverSkipped: consoles that are not IPMI, or that conserver itself
// ignores, are listed with the reason, and redefinitions keep the later one.
func TestConserverSkipped(t *testing.T) {
	t.Parallel()
	r := importConserver(t, `
default * { master localhost; }
console sh { type exec; }
console ts { type host; host ts1; port 7; portbase 2000; portinc 100; }
console ser { type device; device /dev/ttyS0; baud 9600; parity none; }
console sock { type uds; uds /run/x.sock; }
console nop { type noop; }
console nohost { type ipmi; }
console "bad name" { type ipmi; host x; }
console badbmc { type ipmi; host "a b"; }
console notype { host x; }
console dup { type ipmi; host first; }
console DUP { type ipmi; host second; }
console longuser { type ipmi; host x; username abcdefghijklmnopq; }
console nomaster { type ipmi; host x; master ""; }
`)
	var got []string
	for _, s := range r.Skipped {
		got = append(got, s.Name+": "+s.Why)
	}
	want := []string{
		`sh: type exec "/bin/sh" with 1 argument (not shown): solgate runs no commands`,
		`ts: type host (terminal server) "ts1:2700"`,
		`ser: type device (serial port) "/dev/ttyS0"`,
		`sock: type uds (Unix socket) "/run/x.sock"`,
		`nop: type noop (a placeholder)`,
		`nohost: type ipmi without a host`,
		`bad name: not a solgate console name`,
		`badbmc: host "a b" is not an address solgate can use`,
		`notype: no type`,
		`longuser: IPMI user solgate cannot use`,
		`nomaster: no master: conserver does not serve it`,
	}
	if !slices.Equal(got, want) {
		t.Errorf("skipped:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if len(r.Consoles) != 1 || r.Consoles[0].Name != "DUP" || r.Consoles[0].BMC != "second" {
		t.Errorf("consoles: %+v", r.Consoles)
	}
	if !strings.Contains(notesText(r.Warnings), `conserver.cf:13: console "DUP" defined again (first at line 12)`) {
		t.Errorf("warnings: %s", notesText(r.Warnings))
	}
	load(t, r)
}

// TestConserverInclude reads #include files relative to the including file,
// with the parser state carried across, as conserver does.
func TestConserverInclude(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	files := map[string]string{
		"conserver.cf":  "default * { master localhost; type ipmi; }\n#include consoles.cf\nconsole last { host last-bmc; }\n",
		"consoles.cf":   "console a { host a-bmc; }\n#include  sub/more.cf  \n",
		"sub/more.cf":   "console b {\n host b-bmc;\n}\n",
		"loop.cf":       "#include loop.cf\n",
		"missing.cf":    "console a { host a-bmc; }\n#include nothere.cf\n",
		"notinclude.cf": "default * { master localhost; type ipmi; }\n  #include x.cf\n# include y.cf\nconsole a { host a; } #include z.cf\n",
		"midblock.cf":   "default * { master localhost; type ipmi; }\nconsole a {\n#include body.cf\n}\n",
		"body.cf":       "host a-bmc;\n",
	}
	for n, text := range files {
		p := filepath.Join(dir, n)
		if err := os.MkdirAll(filepath.Dir(p), 0o750); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	imp := func(name string) (*Result, error) {
		p := filepath.Join(dir, name)
		data, _ := os.ReadFile(p)
		return Conserver(p, data, Options{SecretDir: dir})
	}
	r, err := imp("conserver.cf")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, c := range r.Consoles {
		names = append(names, c.Name+"@"+filepath.Base(c.File)+":"+strconv.Itoa(c.Line))
	}
	if want := []string{"a@consoles.cf:1", "b@more.cf:1", "last@conserver.cf:3"}; !slices.Equal(names, want) {
		t.Errorf("consoles %v, want %v", names, want)
	}
	for _, tc := range []struct{ file, want string }{
		{"loop.cf", "loop.cf:1: #include \"loop.cf\": nested more than 10 deep"},
		{"missing.cf", "missing.cf:2: #include \"nothere.cf\": open "},
	} {
		_, err := imp(tc.file)
		var e *Error
		if !errors.As(err, &e) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one containing %q", tc.file, err, tc.want)
		}
	}
	// #include only counts in column 0 and spelled exactly so.
	r, err = imp("notinclude.cf")
	if err != nil || len(r.Consoles) != 1 {
		t.Errorf("notinclude.cf: %v, %+v", err, r)
	}
	r, err = imp("midblock.cf")
	if err != nil || len(r.Consoles) != 1 || r.Consoles[0].BMC != "a-bmc" {
		t.Errorf("midblock.cf: %v, %+v", err, r)
	}
}

// TestConserverSyntax checks conserver's quoting rules: whitespace kept
// inside names and values, backslashes, double quotes, comments swallowing
// their newline, and case-insensitive keywords.
func TestConserverSyntax(t *testing.T) {
	t.Parallel()
	r := importConserver(t, `
DEFAULT * { MASTER localhost; Type ipmi; }
console my\ node.1 { host "n1-bmc"; }   # a comment
console q"uot"ed { host q-bmc; motd "say \"hi\" \x"; }
console sp  { host  sp-bmc  ; motd two   words ; }
console multi { host m-bmc; motd line one
  line two; }
console c# comment
omment { host c-bmc; }
`)
	want := map[string]string{"my node.1": "", "quoted": `say "hi" \x`, "sp": "two   words", "multi": "line one\n  line two", "comment": ""}
	for _, s := range r.Skipped {
		if s.Name == "my node.1" {
			delete(want, s.Name)
		}
	}
	for _, c := range r.Consoles {
		m, ok := want[c.Name]
		if !ok {
			t.Errorf("unexpected console %q", c.Name)
			continue
		}
		delete(want, c.Name)
		if m != "" && !slices.Contains(c.Notes, "motd "+quote(m)+": solgate's banner shows the console's state, there is no per-console message") {
			t.Errorf("%s: notes %q, want motd %q", c.Name, c.Notes, m)
		}
	}
	if len(want) > 0 {
		t.Errorf("consoles not found: %v", want)
	}
	load(t, r)
}

// TestConserverErrors: every syntax error names the file and line.
func TestConserverErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want string }{
		{"console a { host x; ", "f.cf:1: end of file inside console block \"a\""},
		{"console a { host x }", "f.cf:1: want ';' after the value of host, not '}'"},
		{"\n\nconsole a { type ipmi; bogus 1; }", "f.cf:3: unknown keyword \"bogus\" in console block \"a\""},
		{"consoles a { }", "f.cf:1: unknown block type \"consoles\""},
		{"console { }", "f.cf:1: console block without a name before '{'"},
		{"console a host x; }", "f.cf:1: want '{' after console \"a host x\", not ';'"},
		{"console a {\n host \"x;\n}\n", "f.cf:2: unterminated double quote"},
		{"console a { host; }", "f.cf:1: keyword host has no value before ';'"},
		{"}", "f.cf:1: unexpected '}'"},
		{"break 1 { string x; }\nbreak 2 { str x; }", "f.cf:2: unknown keyword \"str\" in break block \"2\""},
	} {
		_, err := Conserver("f.cf", []byte(tc.in), Options{})
		var e *Error
		if !errors.As(err, &e) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want %q", tc.in, err, tc.want)
		}
	}
}

// TestConserverBreaksTasksGroups lists break sequences, tasks and groups.
func TestConserverBreaksTasksGroups(t *testing.T) {
	t.Parallel()
	r := importConserver(t, `
break 1 { string "\z"; }
break 2 { string "+++"; delay 100; }
task r { cmd "ipmitool power reset"; description "reset it"; confirm yes; }
group admins { users alice, bob; }
group admins { users carol; }
default * { master localhost; type ipmi; rw admins; ro @wheel; }
console a { host a-bmc; break 2; }
console b { host b-bmc; break 1; tasklist r; }
config * { primaryport 782; }
access * { trusted 127.0.0.1; }
`)
	notes := notesText(r.Notes)
	for _, want := range []string{
		`conserver.cf:3: break 2 ("+++"): conserver's ^Ecl2 sent this sequence`,
		`conserver.cf:4: task "r" ("reset it", "ipmitool" with 2 arguments (not shown)): conserver ran it on ^Ec!r`,
		`conserver.cf:10: config "*" (primaryport): conserver's daemon settings`,
		`conserver.cf:11: access "*" (trusted)`,
	} {
		if !strings.Contains(notes, want) {
			t.Errorf("notes lack %q:\n%s", want, notes)
		}
	}
	if a := console(t, r, "a"); !slices.Contains(a.Notes, `break 2 ("+++"): conserver's ^Ecl0 sent this sequence; solgate's ^Ecl0 sends a serial break`) {
		t.Errorf("a: %q", a.Notes)
	}
	b := console(t, r, "b")
	if strings.Contains(strings.Join(b.Notes, "\n"), "break") || !slices.Contains(b.Notes, `tasklist "r": solgate has no tasks`) {
		t.Errorf("b: %q", b.Notes)
	}
	if b.Access.key() != (Access{Read: []string{"@admins", "@wheel"}, Write: []string{"@admins"}}).key() {
		t.Errorf("b access: %+v", b.Access)
	}
	if len(r.Groups) != 1 || r.Groups[0].Name != "admins" || !slices.Equal(r.Groups[0].Members, []string{"carol"}) {
		t.Errorf("groups: %+v", r.Groups)
	}
	out := string(r.TOML())
	for _, want := range []string{"# [[access]]\n# consoles = \"*\"\n# read = [\"@admins\", \"@wheel\"]\n# write = [\"@admins\"]\n", "# group admins (conserver.cf:6): carol\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	load(t, r)
}

// TestConserverExec: type exec consoles whose command runs ipmitool sol
// activate or ipmiconsole become [[console]] entries when the command
// translates for certain, and are listed with the precise reason when not.
// No password from a command line reaches the output, and the output loads.
func TestConserverExec(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	pwFile := filepath.Join(dir, "ipmi.pw")
	if err := os.WriteFile(pwFile, []byte("filepw\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	type ok struct {
		bmc, user, priv, iface, pwFile string
		password, kg                   bool
		suite                          int
		quirks                         []string
		note                           string // a note the console must have
	}
	for _, tc := range []struct {
		name, body string // body: the console block's settings after type exec
		want       *ok    // nil: not imported
		why        string // the reason, for a console not imported
	}{
		// ipmitool
		{"it-plain", `exec "/usr/bin/ipmitool -I lanplus -H 10.0.0.2 -U root -P 'se cretQ9' -C 17 -L administrator sol activate"`,
			&ok{bmc: "10.0.0.2", user: "root", priv: "admin", password: true, suite: 17, note: "conserver ran ipmitool (type exec); solgate speaks IPMI itself"}, ""},
		{"it-attached", `exec "ipmitool -Ilanplus -Hit-attached-bmc -Uadmin -PSecretAtt -Luser -C3 sol activate usesolkeepalive instance=1"`,
			&ok{bmc: "it-attached-bmc", user: "admin", priv: "user", password: true, suite: 3, note: "ipmitool sol activate usesolkeepalive: solgate keeps the SOL session up itself"}, ""},
		{"it-exec", `exec "exec ipmitool -I lanplus -H fd00::5 -p 6230 -U \"us er\" -P 'dq\"pw' -y 0102ff -L OPERATOR -e '&' -N 3 -R 2 -v sol activate nokeepalive"`,
			&ok{bmc: "[fd00::5]:6230", user: "us er", priv: "operator", password: true, kg: true, note: `ipmitool -e "&": ipmitool's SOL escape character; solgate's escape is its own (escape)`}, ""},
		{"it-file", `exec "ipmitool -I lanplus -H it-file-bmc -U admin -f ` + pwFile + ` -p 623 sol activate"`,
			&ok{bmc: "it-file-bmc", user: "admin", priv: "admin", pwFile: pwFile, note: "password_file is ipmitool's -f file: solgate reads all of it less one final newline, where ipmitool read its first line up to a tab, at most 20 bytes; keep the password alone on one line, readable by the user solgate runs as"}, ""},
		{"it-env", `exec "ipmitool -I lanplus -H it-env-bmc -E -K sol activate"`,
			&ok{bmc: "it-env-bmc", priv: "admin", note: "ipmitool -E read the password from IPMI_PASSWORD (or IPMITOOL_PASSWORD) in conserver's environment: put it in a password_file and set password_file here"}, ""},
		{"it-lan", `exec "ipmitool -I lan -H it-lan-bmc -U admin -P lanpw16 -C 3 -k kgLan sol activate"`,
			&ok{bmc: "it-lan-bmc", user: "admin", priv: "admin", iface: "lan", password: true, note: "-C and -k left out: ipmitool uses them with -I lanplus only"}, ""},
		{"it-suite0", `exec "ipmitool -I lanplus -H it-suite0-bmc -P pwZero -C 0 sol activate"`,
			&ok{bmc: "it-suite0-bmc", priv: "admin", password: true, note: "ipmitool -C 0 (no authentication, no encryption) left out: solgate tries 17, then 3; set cipher_suite = 0 with insecure_cipher_suite_zero = true to keep it"}, ""},
		// execsubst: h and c, with a placeholder character used nowhere else.
		{"sub-hc", `host sub-hc-sp; exec "ipmitool -I lanplus -H Z -U Q-admin -P pwSub sol activate"; execsubst Z=hs,Q=cs`,
			&ok{bmc: "sub-hc-sp", user: "sub-hc-admin", priv: "admin", password: true}, ""},
		{"sub-pad", `host sub-pad-sp; exec "ipmitool -I lanplus -H Z -U Q -P pwSub sol activate"; execsubst Z=h3s,Q=r9s; replstring r1`,
			&ok{bmc: "sub-pad-sp", user: "r1", priv: "admin", password: true}, ""}, // padding adds blanks between words
		// ipmiconsole
		{"ic-short", `exec "ipmiconsole -h ic-short-bmc -u root -p icSecret -I 3 -l admin -W solpayloadsize -e '&'"`,
			&ok{bmc: "ic-short-bmc", user: "root", priv: "admin", password: true, suite: 3, quirks: []string{"solpayloadsize"}, note: "conserver ran ipmiconsole (type exec); solgate speaks IPMI itself"}, ""},
		{"ic-long", `exec "/usr/sbin/ipmiconsole --hostname=ic-long-bmc:6230 --username root --password=icLongPw --k-g=0x6b67 --cipher-suite-id=17 --privilege-level=OPERATOR --workaround-flags=intel20,authcap --serial-keepalive --sol-payload-instance=1 --session-timeout 20000 --dont-steal"`,
			&ok{bmc: "ic-long-bmc:6230", user: "root", priv: "operator", password: true, kg: true, suite: 17, quirks: []string{"intel20", "authcap"}, note: "ipmiconsole --dont-steal: see solgate's steal setting (when-idle unless set)"}, ""},
		{"ic-clustered", `exec "ipmiconsole -hic-clustered-bmc -uroot -W none"`,
			&ok{bmc: "ic-clustered-bmc", user: "root", priv: "admin"}, ""},
		// not translated
		{"no-shell", `exec "ipmitool -I lanplus -H x -U root -P pw$1 sol activate"`, nil, "the command uses shell features (a $ expansion)"},
		{"no-pipe", `exec "ipmitool -I lanplus -H x -P pwPipe sol activate | tee /tmp/log"`, nil, "the command uses shell features (a pipe or command list)"},
		{"no-redir", `exec "ipmitool -I lanplus -H x -P pwRedir sol activate 2>/dev/null"`, nil, "the command uses shell features (a redirection)"},
		{"no-glob", `exec "ipmitool -I lanplus -H x -f /etc/*.pw sol activate"`, nil, "the command uses shell features (a globbing pattern)"},
		{"no-env", `exec "IPMI_PASSWORD=pwEnvAssign ipmitool -I lanplus -H x -E sol activate"`, nil, "the command uses shell features (a variable assignment before the command)"},
		{"no-quote", `exec "ipmitool -I lanplus -H x -P 'pwUnterminated sol activate"`, nil, "does not parse as a shell command"},
		{"no-option", `exec "ipmitool -I lanplus -H x -P pwOpt -t 0x82 sol activate"`, nil, "option -t is not one this import knows"},
		{"no-long", `exec "ipmiconsole -h x --driver-type=LAN_2_0 -p pwLong"`, nil, "option --driver-type is not one this import knows"},
		{"no-open", `exec "ipmitool -I open sol activate"`, nil, `-I "open" is not an IPMI-over-LAN interface (lanplus or lan)`},
		{"no-iface", `exec "ipmitool -H x -P pwNoI sol activate"`, nil, "no -I: ipmitool's default interface depends on its version"},
		{"no-prompt", `exec "ipmitool -I lanplus -H x -a sol activate"`, nil, "-a: ipmitool prompts for the password"},
		{"no-pwopt", `exec "ipmitool -I lanplus -H x -U u sol activate"`, nil, "no -P, -f or -E: ipmitool prompts for the password"},
		{"no-cmd", `exec "ipmitool -I lanplus -H x -P pwCmd sol deactivate"`, nil, `ipmitool command "sol deactivate" is not sol activate`},
		{"no-instance", `exec "ipmitool -I lanplus -H x -P pwInst sol activate instance=2"`, nil, "sol activate instance=2: solgate always uses SOL payload instance 1"},
		{"no-priv", `exec "ipmitool -I lanplus -H x -P pwPriv -L CALLBACK sol activate"`, nil, `-L "CALLBACK": solgate's privilege is user, operator or admin`},
		{"no-icprompt", `exec "ipmiconsole -h x -u root -P"`, nil, "-P: ipmiconsole prompts for the password"},
		{"no-icconf", `exec "ipmiconsole -h x --config-file /etc/my.conf"`, nil, "--config-file: the settings in that file are not read by this import"},
		{"no-icinst", `exec "ipmiconsole -h x --sol-payload-instance=3"`, nil, "--sol-payload-instance=3: solgate always uses SOL payload instance 1"},
		{"no-port", `port 2; exec "ipmitool -I lanplus -H 10.0.0.P -P pwPort sol activate"; execsubst P=Pd`, nil, "execsubst puts a port number (P) into the command"},
		{"no-subst", `exec "ipmitool -I lanplus -H x -P pwSubst sol activate"; execsubst H=hx`, nil, `execsubst "H=hx" does not parse`},
		// H also replaces the H of -H: conserver runs "-no-H-sp no-H-sp".
		{"no-H", `host no-H-sp; exec "ipmitool -I lanplus -H H -U admin -P pwH sol activate"; execsubst H=hs`, nil,
			`option -n is not one this import knows (execsubst replaces every "H" in the exec value, option letters and paths included)`},
		{"no-via", `exec "/usr/bin/env ipmitool -I lanplus -H x -P pwVia sol activate"`, nil, `the command runs "env", not ipmitool or ipmiconsole itself`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			text := "console " + tc.name + " { master localhost; type exec; " + tc.body + "; }\n"
			r := importConserver(t, text)
			out := string(r.TOML())
			for _, secret := range []string{"cretQ9", "SecretAtt", `dq"pw`, "\xff", "filepw", "lanpw16", "kgLan", "pwZero", "pwSub", "icSecret", "icLongPw", "6b67", "pw$1", "pwPipe", "pwRedir", "pwEnvAssign", "pwUnterminated", "pwOpt", "pwLong", "pwNoI", "pwCmd", "pwInst", "pwPriv", "pwPort", "pwSubst", "pwH", "pwVia"} {
				if strings.Contains(out, secret) {
					t.Errorf("secret %q is in the output:\n%s", secret, out)
				}
			}
			if len(r.Warnings) > 0 {
				t.Errorf("warnings: %v", r.Warnings)
			}
			if tc.want == nil {
				if len(r.Consoles) != 0 || len(r.Skipped) != 1 {
					t.Fatalf("imported %+v, skipped %+v; want it not imported", r.Consoles, r.Skipped)
				}
				why := r.Skipped[0].Why
				if !strings.Contains(why, ": an IPMI client, not translated: "+tc.why) || !strings.HasSuffix(why, "; add the BMC as a [[console]] by hand") {
					t.Errorf("reason %q, want one with %q", why, tc.why)
				}
				return
			}
			if len(r.Consoles) != 1 {
				t.Fatalf("not imported: %+v", r.Skipped)
			}
			c := r.Consoles[0]
			w := tc.want
			if c.BMC != w.bmc || c.User != w.user || !c.HasUser || c.Privilege != w.priv || c.Interface != w.iface || c.CipherSuite != w.suite ||
				(c.Password != "" && c.Password != w.pwFile) != w.password || (w.pwFile != "" && c.Password != w.pwFile) || (c.KG != "") != w.kg || !slices.Equal(c.Quirks, w.quirks) {
				t.Errorf("console %+v\nwant %+v", c, *w)
			}
			if w.note != "" && !slices.Contains(c.Notes, w.note) {
				t.Errorf("notes lack %q: %q", w.note, c.Notes)
			}
			cfg := load(t, r)
			lc, _ := cfg.Console(tc.name)
			iface := w.iface
			if iface == "" {
				iface = "lanplus"
			}
			if lc.BMC != w.bmc || lc.Interface != iface || lc.Privilege != w.priv {
				t.Errorf("loads as bmc %s, interface %s, privilege %s", lc.BMC, lc.Interface, lc.Privilege)
			}
			if w.pwFile != "" && string(lc.Password.Reveal()) != "filepw" {
				t.Errorf("password read from -f: %q", lc.Password.Reveal())
			}
		})
	}
}

// TestConserverExecShared: exec consoles share the type ipmi path: access
// lists, the notes on settings solgate does without, logfilemax, folding
// into hostlists and one secret file per distinct password.
func TestConserverExecShared(t *testing.T) {
	t.Parallel()
	r := importConserver(t, `
default ipmi { type exec; exec "ipmitool -I lanplus -H X -U admin -P pwShared sol activate"; execsubst X=hs; }
default * { master localhost; rw ops; ro !eve; logfile /var/log/consoles/&; motd hi; logfilemax 1m; }
console node1 { include ipmi; host node1-ipmi; }
console node2 { include ipmi; host node2-ipmi; }
console node3 { include ipmi; host node3-ipmi; }
console other { type ipmi; host other-ipmi; username admin; password pwShared; }
`)
	if len(r.Consoles) != 4 || len(r.Secrets) != 1 || r.Secrets[0].Consoles != 4 {
		t.Fatalf("consoles %+v, secrets %+v", r.Consoles, r.Secrets)
	}
	n1 := console(t, r, "node1")
	for _, want := range []string{`conserver logged to "/var/log/consoles/&" (& is the console name); solgate writes LOG_DIR/NAME/*.zst, see [server] log_dir; old logs stay where they are`,
		`motd "hi": solgate's banner shows the console's state, there is no per-console message`} {
		if !slices.Contains(n1.Notes, want) {
			t.Errorf("node1 notes lack %q: %q", want, n1.Notes)
		}
	}
	if n1.RotateSize != 1<<20 || n1.Access.key() != (Access{Read: []string{"ops"}, Write: []string{"ops"}, Deny: []string{"eve"}}).key() {
		t.Errorf("node1: %+v", n1)
	}
	out := string(r.TOML())
	if strings.Contains(out, "pwShared") {
		t.Error("the password is in the output")
	}
	if !strings.Contains(out, "name = \"node[1-3]\"\n") || !strings.Contains(out, "bmc = \"{name}-ipmi\"\n") {
		t.Errorf("node1-3 are not folded:\n%s", out)
	}
	load(t, r)
}

// TestShellSplit: sh's word splitting of plain words.
func TestShellSplit(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		want []string
		err  string
	}{
		{"a  b\tc", []string{"a", "b", "c"}, ""},
		{`a 'b c' "d e" f\ g`, []string{"a", "b c", "d e", "f g"}, ""},
		{`'it'\''s' "q\"\\\$\x" ''`, []string{"it's", `q"\$\x`, ""}, ""},
		{"a\\\nb \"c\\\nd\"", []string{"ab", "cd"}, ""},
		{`a#b 'c#' x=y`, []string{"a#b", "c#", "x=y"}, ""},
		{"a # c", nil, "a comment"},
		{`"$HOME"`, nil, "a $ expansion"},
		{"a `b`", nil, "a ` command substitution"},
		{"a && b", nil, "a pipe or command list"},
		{"a\nb", nil, "a newline between commands"},
		{"a > b", nil, "a redirection"},
		{"(a)", nil, "a subshell"},
		{"a b?", nil, "a globbing pattern"},
		{"a ~/x", nil, "a ~ home directory"},
		{"a{b,c}", nil, "braces"},
		{`a 'b`, nil, "does not parse"},
		{`a "b`, nil, "does not parse"},
		{`a \`, nil, "does not parse"},
	} {
		got, err := shellSplit(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%q: %q, %v; want an error with %q", tc.in, got, err, tc.err)
			}
			continue
		}
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("%q: %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

// TestConserverExecBadSuite: a cipher suite option that is no number is
// read by the same rules as ipmiciphersuite: the console is imported with
// the automatic choice, and a warning names the option.
func TestConserverExecBadSuite(t *testing.T) {
	t.Parallel()
	r := importConserver(t, `console bad { master localhost; type exec; exec "ipmitool -I lanplus -H bad-bmc -P pwBad -C seventeen sol activate"; }
console ic { master localhost; type exec; exec "ipmiconsole -h ic-bmc -p pwIc -I +3"; }
`)
	if len(r.Consoles) != 2 || r.Consoles[0].CipherSuite != 0 || r.Consoles[1].CipherSuite != 0 {
		t.Fatalf("consoles %+v, skipped %+v", r.Consoles, r.Skipped)
	}
	for _, want := range []string{`console bad: ipmitool -C "seventeen" is not a number`, `console ic: ipmiconsole -I "+3" is not a number`} {
		if !slices.ContainsFunc(r.Warnings, func(w Note) bool { return strings.Contains(w.Text, want) }) {
			t.Errorf("warnings %+v lack %q", r.Warnings, want)
		}
	}
}
