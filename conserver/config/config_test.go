package config

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestLoadBasics(t *testing.T) {
	t.Parallel()
	c := mustLoad(t, map[string]string{
		"bmc.pass": "s3cret\n",
		"kg.kg":    "0x0102030405\n",
		"solgate.toml": `
[server]
log_dir = "/srv/consoles"
reload_interval = "1m"

[defaults]
user = "ADMIN"
password_file = "bmc.pass"
cipher_suite = 17

[[console]]
name = "node[01-03]"
bmc = "node[01-03]-bmc.mgmt"

[[console]]
name = "gpu1,gpu2"
bmc = "10.1.0.[7-8]:6230"
kg_file = "kg.kg"
interface = "lan"
auth_type = "md5"
privilege = "operator"
quirks = ["intel20", "solpayloadsize", "intel20"]
steal = "never"
escape = "^Ax"
log_rotate_size = "16MiB"
log_retain_age = "2w"
`,
		"conf.d/rack9.toml": `
[[console]]
name = "r9n[1-2]"
bmc = "{name}.bmc"
cipher_suite = 3
`,
	})
	if got := len(c.Consoles); got != 7 {
		t.Fatalf("%d consoles, want 7", got)
	}
	var names []string
	for _, x := range c.Consoles {
		names = append(names, x.Name)
	}
	if want := "node01 node02 node03 gpu1 gpu2 r9n1 r9n2"; strings.Join(names, " ") != want {
		t.Errorf("names %q, want %q (file order)", names, want)
	}
	if c.Server.LogDir != "/srv/consoles" || c.Server.ReloadInterval != time.Minute || c.Server.Listen != ":2222" {
		t.Errorf("server = %+v", c.Server)
	}
	n2, ok := c.Console("node02")
	if !ok {
		t.Fatal("node02 missing")
	}
	if n2.BMC != "node02-bmc.mgmt" || n2.User != "ADMIN" || string(n2.Password.Reveal()) != "s3cret" ||
		n2.CipherSuite != 17 || n2.Interface != "lanplus" || n2.Privilege != "admin" || n2.Steal != "when-idle" ||
		n2.Escape != "^Ec" || n2.KG.IsSet() || n2.Log.RotateSize != 64<<20 {
		t.Errorf("node02 = %+v", n2)
	}
	if n2.BMCAddr() != "node02-bmc.mgmt:623" {
		t.Errorf("BMCAddr = %q", n2.BMCAddr())
	}
	g, _ := c.Console("gpu2")
	if g.BMC != "10.1.0.8:6230" || g.BMCAddr() != "10.1.0.8:6230" || g.Interface != "lan" || g.AuthType != "md5" ||
		g.Privilege != "operator" || !slices.Equal(g.Quirks, []string{"intel20", "solpayloadsize"}) ||
		g.Steal != "never" || g.Escape != "^Ax" || g.Log.RotateSize != 16<<20 || g.Log.RetainAge != 14*24*time.Hour ||
		string(g.KG.Reveal()) != "\x01\x02\x03\x04\x05" {
		t.Errorf("gpu2 = %+v", g)
	}
	r, _ := c.Console("r9n2")
	if r.BMC != "r9n2.bmc" || r.CipherSuite != 3 || !strings.HasSuffix(r.File, "conf.d/rack9.toml") || r.Line != 2 {
		t.Errorf("r9n2 = %+v", r)
	}
	if _, ok := c.Console("node04"); ok {
		t.Error("node04 should not exist")
	}
	if len(c.Files) != 2 {
		t.Errorf("files = %q", c.Files)
	}
}

func TestLoadSecretSources(t *testing.T) {
	t.Parallel()
	env := map[string]string{"IPMI_PASSWORD": "fromenv", "KG": "0xaabb"}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	dir := writeTree(t, map[string]string{"solgate.toml": `
[defaults]
bmc = "{name}-bmc"
password_env = "IPMI_PASSWORD"
kg_env = "KG"

[[console]]
name = "a"

[[console]]
name = "b"
password = "inline!"
insecure_inline_password = true

[[console]]
name = "c"
cipher_suite = 0
insecure_cipher_suite_zero = true
`})
	c, err := LoadWith(filepath.Join(dir, "solgate.toml"), Options{LookupEnv: lookup})
	if err != nil {
		t.Fatal(err)
	}
	a, _ := c.Console("a")
	b, _ := c.Console("b")
	cc, _ := c.Console("c")
	if string(a.Password.Reveal()) != "fromenv" || a.Password.Source() != "env IPMI_PASSWORD" || string(a.KG.Reveal()) != "\xaa\xbb" {
		t.Errorf("a: password %q from %q", a.Password.Reveal(), a.Password.Source())
	}
	if string(b.Password.Reveal()) != "inline!" || b.Password.Source() != "inline" {
		t.Errorf("b: password from %q", b.Password.Source())
	}
	if cc.CipherSuite != 0 || !cc.CipherSuiteZero || a.CipherSuiteZero {
		t.Errorf("suite zero: c %v a %v", cc.CipherSuiteZero, a.CipherSuiteZero)
	}
}

func TestLoadSkipSecrets(t *testing.T) {
	t.Parallel()
	_, err := loadTree(t, map[string]string{"solgate.toml": `
[defaults]
bmc = "{name}-bmc"
password_file = "/nonexistent/bmc.pass"
password_env = "X"
[[console]]
name = "a"
password_file = "/nonexistent/other.pass"
`}, Options{SkipSecrets: true})
	if err == nil {
		t.Fatal("two password sources in [defaults] accepted")
	}
	c, err := loadTree(t, map[string]string{"solgate.toml": `
[defaults]
bmc = "{name}-bmc"
password_file = "/nonexistent/bmc.pass"
[[console]]
name = "a"
`}, Options{SkipSecrets: true})
	if err != nil {
		t.Fatal(err)
	}
	a, _ := c.Console("a")
	if !a.Password.IsSet() || a.Password.Source() != "file /nonexistent/bmc.pass" || len(a.Password.Reveal()) != 0 {
		t.Errorf("skipped secret: set %v source %q", a.Password.IsSet(), a.Password.Source())
	}
}

// TestValidationErrors checks that each mistake gives one precise error
// naming file, line and console, and that many are reported at once.
func TestValidationErrors(t *testing.T) {
	t.Parallel()
	const users = `
[[user]]
name = "alice"
groups = ["admins"]
`
	tests := []struct {
		name  string
		files map[string]string
		want  []string
	}{
		{"unknown key with suggestion", map[string]string{"solgate.toml": "[[console]]\nname = \"a\"\nbmc = \"b\"\ncipher_sute = 3\n"},
			[]string{`solgate.toml:4: unknown key "cipher_sute" in [[console]] (did you mean "cipher_suite"?)`}},
		{"setting outside its table", map[string]string{"solgate.toml": "log_dir = \"/x\"\n"},
			[]string{`solgate.toml:1: unknown key "log_dir" at the top level (it belongs under [server])`}},
		{"unknown table", map[string]string{"solgate.toml": "[consoles]\nname = 1\n"},
			[]string{`solgate.toml:1: unknown key "consoles" at the top level (did you mean "console"?)`}},
		{"syntax error", map[string]string{"solgate.toml": "[[console]]\nname = \"a\n"},
			[]string{`solgate.toml:2: basic strings cannot have new lines`}},
		{"wrong type", map[string]string{"solgate.toml": "[[console]]\nname = \"a\"\ncipher_suite = \"17\"\n"},
			[]string{`solgate.toml:3: console.cipher_suite must be an integer, not a TOML string`}},
		{"bad hostlist", map[string]string{"solgate.toml": "[[console]]\nname = \"node[1-\"\nbmc = \"x\"\n"},
			[]string{`solgate.toml:2: name: hostlist: "node[1-": missing ']' for '[' at offset 4`}},
		{"length mismatch", map[string]string{"solgate.toml": "[[console]]\nname = \"n[1-4]\"\nbmc = \"b[1-3]\"\n"},
			[]string{`solgate.toml:3: console n[1-4]: bmc "b[1-3]" has 3 addresses but name "n[1-4]" has 4 names`}},
		{"single bmc for many", map[string]string{"solgate.toml": "[[console]]\nname = \"n[1-2]\"\nbmc = \"b\"\n"},
			[]string{`solgate.toml:3: console n[1-2]: bmc "b" has 1 addresses but name "n[1-2]" has 2 names (for one BMC per name use a template such as "{name}-bmc")`}},
		{"bmc list with a repeat", map[string]string{"solgate.toml": "[[console]]\nname = \"n[1-4]\"\nbmc = \"b[1-3,2]\"\n"},
			[]string{`solgate.toml:3: console n[1-4]: bmc "b[1-3,2]" has 3 addresses but name "n[1-4]" has 4 names (it lists b2 more than once; each counts once)`}},
		{"no bmc", map[string]string{"solgate.toml": "\n[[console]]\nname = \"n1\"\n"},
			[]string{`solgate.toml:2: console n1: no bmc: give a hostlist as long as name, or a template such as "{name}-bmc" (here or in [defaults])`}},
		{"unsafe names", map[string]string{"solgate.toml": "[[console]]\nname = \"..x,ok,a/b\"\nbmc = \"{name}\"\n"},
			[]string{`solgate.toml:2: bad console name "..x": starts with '.' (and 1 more bad names: a/b)`}},
		{"name with control char", map[string]string{"solgate.toml": "[[console]]\nname = \"a\\u0007b\"\nbmc = \"x\"\n"},
			[]string{`solgate.toml:2: bad console name "a\ab": contains '\a' (allowed: letters, digits, '.', '_', '-')`}},
		{"duplicate across files", map[string]string{
			"solgate.toml":      "[defaults]\nbmc = \"{name}-bmc\"\n[[console]]\nname = \"node[1-4]\"\n",
			"conf.d/a.toml":     "\n\n[[console]]\nname = \"node[3-6]\"\n",
			"conf.d/b.toml.swp": "garbage [[[",
		}, []string{`conf.d/a.toml:4: console node[3-4]: defined twice; first at SOLGATE:3`}},
		{"bad bmc address", map[string]string{"solgate.toml": "[[console]]\nname = \"a\"\nbmc = \"x:99999\"\n"},
			[]string{`solgate.toml:3: console a: BMC address "x:99999": invalid port "99999" (want a number from 1 to 65535)`}},
		{"bad template", map[string]string{"solgate.toml": "[defaults]\nbmc = \"{host}-bmc\"\n"},
			[]string{`solgate.toml:2: [defaults] bmc "{host}-bmc" must be a template containing {name}, such as "{name}-bmc"`}},
		{"unreadable password file", map[string]string{"solgate.toml": "[defaults]\nbmc = \"{name}\"\npassword_file = \"missing.pass\"\n[[console]]\nname = \"a\"\n"},
			[]string{`solgate.toml:3: [defaults] password_file DIR/missing.pass: no such file or directory`}},
		{"empty password file", map[string]string{"solgate.toml": "[[console]]\nname = \"a\"\nbmc = \"x\"\npassword_file = \"e.pass\"\n", "e.pass": "\n"},
			[]string{`solgate.toml:4: console a: password_file DIR/e.pass: is empty`}},
		{"inline password without insisting", map[string]string{"solgate.toml": "[[console]]\nname = \"a\"\nbmc = \"x\"\npassword = \"p\"\n"},
			[]string{`solgate.toml:4: console a: password in a config file needs insecure_inline_password = true; prefer password_file or password_env`}},
		{"password too long for lan", map[string]string{"solgate.toml": "[[console]]\nname = \"a\"\nbmc = \"x\"\ninterface = \"lan\"\npassword = \"12345678901234567\"\ninsecure_inline_password = true\n"},
			[]string{`solgate.toml:1: console a: interface "lan" (IPMI 1.5) allows passwords of at most 16 bytes; this one has 17`}},
		{"unset env", map[string]string{"solgate.toml": "[[console]]\nname = \"a\"\nbmc = \"x\"\npassword_env = \"SOLGATE_TEST_UNSET_VAR\"\n"},
			[]string{`solgate.toml:4: console a: password_env: SOLGATE_TEST_UNSET_VAR is not set in solgate's environment`}},
		{"suite 0 without insisting", map[string]string{"solgate.toml": "[[console]]\nname = \"a\"\nbmc = \"x\"\ncipher_suite = 0\n"},
			[]string{`solgate.toml:4: console a: cipher_suite: suite 0 has no authentication and no encryption; it needs insecure_cipher_suite_zero = true (leave cipher_suite out for the automatic choice)`}},
		{"bad enum values", map[string]string{"solgate.toml": "[[console]]\nname = \"a\"\nbmc = \"x\"\ncipher_suite = 5\ninterface = \"serial\"\nprivilege = \"root\"\nsteal = \"sometimes\"\nescape = \"~.\"\nquirks = [\"intel20\", \"bogus\"]\nlog_rotate_size = \"lots\"\nlog_retain_age = \"3 fortnights\"\n"},
			[]string{
				`solgate.toml:4: console a: cipher_suite: 5 is not one of 1, 2, 3, 6, 7, 8, 11, 12, 15, 16, 17`,
				`solgate.toml:5: console a: interface: "serial" is not one of lanplus, lan`,
				`solgate.toml:6: console a: privilege: "root" is not one of user, operator, admin`,
				`solgate.toml:7: console a: steal: "sometimes" is not one of never, when-idle, always`,
				`solgate.toml:8: console a: escape: escape "~.": want ^X followed by one character, as in ^Ec`,
				`solgate.toml:9: console a: quirks: unknown quirk "bogus" (known: opensesspriv intel20 supermicro20 sun20 nochecksumcheck authcap idzero unexpectedauth forcepermsg endianseq noauthcodecheck integritycheckvalue solpayloadsize solport solstatus solchannelsupport serialalertsdeferred solpacketseq)`,
				`solgate.toml:10: console a: log_rotate_size: size "lots": want a number with an optional unit (KiB, MiB, GiB, TiB, KB, MB, GB, TB)`,
				`solgate.toml:11: console a: log_retain_age: duration "3 fortnights": unknown unit " fortnights" (want ms, s, m, h, d, w)`,
			}},
		{"server in conf.d", map[string]string{"solgate.toml": "", "conf.d/x.toml": "[server]\nlisten = \":22\"\n"},
			[]string{`conf.d/x.toml:1: [server] belongs in the main file SOLGATE`}},
		{"server values", map[string]string{"solgate.toml": "[server]\nlisten = \"2222\"\nlog_dir = \"logs\"\nreload_interval = \"10ms\"\nlog_level = \"loud\"\n"},
			[]string{
				`solgate.toml:2: [server] listen: "2222": want HOST:PORT or :PORT`,
				`solgate.toml:3: [server] log_dir: "logs" is not an absolute path`,
				`solgate.toml:4: [server] reload_interval: 10ms is shorter than 1s (use "0" to turn periodic checks off)`,
				`solgate.toml:5: [server] log_level: "loud" is not one of debug, info, warn, error`,
			}},
		{"bad key", map[string]string{"solgate.toml": "[[user]]\nname = \"bob\"\nkeys = [\n  \"ssh-ed25519 AAAAnotbase64 bob\",\n]\n"},
			[]string{`solgate.toml:4: user bob: keys[0]: not an SSH public key in authorized_keys format (ssh: no key found; last parsing error for ignored line: illegal base64 data at input byte 0)`}},
		{"key options", map[string]string{"solgate.toml": "[[user]]\nname = \"bob\"\nkeys = [\"from=\\\"10.0.0.1\\\" ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAkfw7tsJbszF/t3sW8YMSRQtTjt4BrqIRe8r5ZAO/UY bob@x\"]\n"},
			[]string{`solgate.toml:3: user bob: keys[0]: key options (from="10.0.0.1") are not supported`}},
		{"duplicate user and reserved group", map[string]string{"solgate.toml": users + "\n[[user]]\nname = \"alice\"\n[[user]]\nname = \"carol\"\ngroups = [\"all\", \"bad group\"]\n"},
			[]string{
				`solgate.toml:7: user alice: defined twice; first at SOLGATE:2`,
				`solgate.toml:10: user carol: group "all" is built in (every user is in it)`,
				`solgate.toml:10: user carol: group name "bad group" contains ' ' (allowed: letters, digits, '_', and '.', '-' after the first)`,
			}},
		{"unknown group and user in rule", map[string]string{"solgate.toml": users + "[[access]]\nconsoles = \"*\"\nread = [\"@all\", \"@staff\"]\nwrite = [\"bob\", \"@admins\"]\n"},
			[]string{
				`solgate.toml:7: access read: unknown group "@staff" (no [[user]] lists it in groups)`,
				`solgate.toml:8: access write: unknown user "bob" (groups start with @)`,
			}},
		{"rule without consoles or grants", map[string]string{"solgate.toml": users + "[[access]]\nread = [\"alice\"]\n[[access]]\nconsoles = \"n[1-\"\n[[access]]\nconsoles = \"*\"\n"},
			[]string{
				`solgate.toml:5: [[access]] has no consoles (a hostlist, or "*" for all)`,
				`solgate.toml:7: [[access]] for "n[1-" grants and denies nothing (set read, write, power or deny)`,
				`solgate.toml:8: access consoles: hostlist: "n[1-": missing ']' for '[' at offset 1`,
				`solgate.toml:9: [[access]] for "*" grants and denies nothing (set read, write, power or deny)`,
			}},
		{"conflicting rules", map[string]string{"solgate.toml": users + `
[defaults]
bmc = "{name}"
[[console]]
name = "n[1-8]"
[[access]]
consoles = "n[1-4]"
write = ["@admins"]
[[access]]
consoles = "n[3-8]"
deny = ["@admins"]
`},
			[]string{`solgate.toml:13: console n[3-4]: access rule denies @admins, whom the rule at SOLGATE:10 grants write; remove one of them`}},
		// Issue 9 item 3: config mistakes named.
		{"name with a space", map[string]string{"solgate.toml": "[[console]]\nname = \"node 1\"\nbmc = \"{name}-bmc\"\n"},
			[]string{`solgate.toml:2: name "node 1": "node 1" holds white space, which would split it into several names; separate names with commas`}},
		{"bmc list with a space", map[string]string{"solgate.toml": "[[console]]\nname = \"n[1-2]\"\nbmc = \"b 1, b2\"\n"},
			[]string{`solgate.toml:3: console n[1-2]: bmc "b 1, b2": "b 1" holds white space, which would split it into several names; separate names with commas`}},
		{"names differing only in case", map[string]string{"solgate.toml": "[defaults]\nbmc = \"{name}-bmc\"\n[[console]]\nname = \"node1\"\n[[console]]\nname = \"NODE1,Node2,node2\"\n"},
			[]string{
				`solgate.toml:6: console NODE1: differs from console node1 (SOLGATE:3) only in letter case; console names must differ by more than case`,
				`solgate.toml:6: console node2: differs from console Node2 (SOLGATE:5) only in letter case; console names must differ by more than case`,
			}},
		{"stepped range", map[string]string{"solgate.toml": "[[console]]\nname = \"node[1-3:2]\"\nbmc = \"{name}-bmc\"\n"},
			[]string{`solgate.toml:2: name: hostlist: "node[1-3:2]": unexpected ':' in '[]': steps such as [1-9:2] are not supported (list the numbers, as in [1,3,5]) at offset 8`}},
		// Issue 9 item 4: characters, not bytes; "invalid port".
		{"non-ASCII user, group and BMC", map[string]string{"solgate.toml": "[[user]]\nname = \"bö\"\n[[user]]\nname = \"al\"\ngroups = [\"ädmins\"]\n[[console]]\nname = \"n1\"\nbmc = \"bmc-ö.mgmt\"\n"},
			[]string{
				`solgate.toml:2: [[user]] user name "bö" contains 'ö' (allowed: letters, digits, '_', and '.', '-' after the first)`,
				`solgate.toml:5: user al: group name "ädmins" contains 'ä' (allowed: letters, digits, '_', and '.', '-' after the first)`,
				`solgate.toml:8: console n1: BMC address "bmc-ö.mgmt": host name contains 'ö'`,
			}},
		{"empty and zero ports", map[string]string{"solgate.toml": "[[console]]\nname = \"a,b\"\nbmc = \"127.0.0.1:,:0\"\n[[console]]\nname = \"c\"\nbmc = \":623\"\n"},
			[]string{
				`solgate.toml:3: console a: BMC address "127.0.0.1:": invalid port "" (want a number from 1 to 65535)`,
				`solgate.toml:3: console b: BMC address ":0": invalid port "0" (want a number from 1 to 65535)`,
				`solgate.toml:6: console c: BMC address ":623": no host before the port`,
			}},
		{"unknown placeholder", map[string]string{"solgate.toml": "[[console]]\nname = \"a\"\nbmc = \"{nam}-bmc.{name}\"\n"},
			[]string{`solgate.toml:3: console a: bmc template "{nam}-bmc.{name}": unknown placeholder "{nam}" ({name} is the only one)`}},
		// Issue 8 item 5: security keys.
		{"insecure auth types and suites", map[string]string{"solgate.toml": "[defaults]\nbmc = \"{name}\"\n" +
			"[[console]]\nname = \"a\"\ninterface = \"lan\"\nauth_type = \"password\"\n" +
			"[[console]]\nname = \"b\"\ninterface = \"lan\"\nauth_type = \"md2\"\n" +
			"[[console]]\nname = \"c\"\ncipher_suite = 2\n" +
			"[[console]]\nname = \"d\"\ncipher_suite = 15\n" +
			"[[console]]\nname = \"e\"\ncipher_suite = 3\ninsecure_cipher_suite = true\n" +
			"[[console]]\nname = \"f\"\ninsecure_auth_password = true\n"},
			[]string{
				`solgate.toml:6: console a: auth_type: "password" sends the BMC password in clear text in every message; it needs insecure_auth_password = true (prefer "md5")`,
				`solgate.toml:10: console b: auth_type: "md2" is not supported (MD2 is broken, and solgate does not speak it); use "md5"`,
				`solgate.toml:13: console c: cipher_suite: suite 2 has no encryption: what is typed on the console, root passwords included, travels in clear; it needs insecure_cipher_suite = true (or use 3 or 17, or leave cipher_suite out for the automatic choice)`,
				`solgate.toml:16: console d: cipher_suite: suite 15 has no integrity and no encryption: what is typed on the console, root passwords included, travels in clear; it needs insecure_cipher_suite = true (or use 3 or 17, or leave cipher_suite out for the automatic choice)`,
				`solgate.toml:20: console e: insecure_cipher_suite: is set but cipher_suite in the same table is not one without integrity or encryption (1, 2, 6, 7, 11, 15, 16)`,
				`solgate.toml:23: console f: insecure_auth_password: is set but auth_type is not "password" in the same table`,
			}},
		{"syslog", map[string]string{"solgate.toml": "[[syslog]]\naddress = \"http://x\"\n[[syslog]]\naddress = \"udp://h:514\"\nformat = \"json\"\nfacility = \"local9\"\ntls_ca_file = \"/etc/ca.pem\"\n[[syslog]]\naddress = \"unix://dev/log\"\n"},
			[]string{
				`solgate.toml:2: syslog address: "http://x": scheme must be udp, tcp, tls, relp or unix`,
				`solgate.toml:5: syslog format: "json" is not rfc5424 or rfc3164`,
				`solgate.toml:6: syslog facility: "local9" is not a syslog facility (kern, user, daemon, auth, local0 ... local7, ...)`,
				`solgate.toml:7: syslog tls_ca_file: only applies to tls:// addresses`,
				`solgate.toml:9: syslog address: "unix://dev/log": want unix:///absolute/path`,
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := writeTree(t, tt.files)
			_, err := LoadWith(filepath.Join(dir, "solgate.toml"), Options{LookupEnv: func(string) (string, bool) { return "", false }})
			if err == nil {
				t.Fatal("no error")
			}
			got := errorLines(t, err)
			for i := range got {
				got[i] = strings.ReplaceAll(got[i], filepath.Join(dir, "solgate.toml"), "SOLGATE")
				got[i] = strings.ReplaceAll(got[i], dir, "DIR")
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("errors:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(tt.want, "\n  "))
			}
		})
	}
}

func TestErrorListCap(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	for i := range 150 {
		b.WriteString("[[console]]\nname = \"n" + string(rune('a'+i%26)) + "\"\nbmc = \"x\"\nsteal = \"no\"\n")
	}
	_, err := loadTree(t, map[string]string{"solgate.toml": b.String()}, Options{})
	var el *ErrorList
	if !errors.As(err, &el) {
		t.Fatalf("err = %v", err)
	}
	if len(el.Errors) != maxErrors || el.Len() <= maxErrors || !strings.HasSuffix(err.Error(), "more errors") {
		t.Errorf("%d errors kept, %d in all", len(el.Errors), el.Len())
	}
}

func TestWarnings(t *testing.T) {
	t.Parallel()
	dir := writeTree(t, map[string]string{
		"solgate.toml": `
[defaults]
bmc = "shared-bmc"
password_file = "open.pass"
[[console]]
name = "a"
bmc = "same"
[[console]]
name = "b"
bmc = "same"
[[user]]
name = "u"
[[access]]
consoles = "zz[1-2]"
read = ["u"]
`})
	must(t, os.WriteFile(filepath.Join(dir, "open.pass"), []byte("pw"), 0o644))
	_, err := Load(filepath.Join(dir, "solgate.toml"))
	if err == nil {
		t.Fatal("a non-template bmc in [defaults] was accepted")
	}
	must(t, os.WriteFile(filepath.Join(dir, "solgate.toml"), []byte(strings.Replace(`
[defaults]
password_file = "open.pass"
[[console]]
name = "a"
bmc = "same"
[[console]]
name = "b"
bmc = "same"
[[user]]
name = "u"
[[access]]
consoles = "zz[1-2]"
read = ["u"]
`, "X", "", 1)), 0o640))
	c, err := Load(filepath.Join(dir, "solgate.toml"))
	if err != nil {
		t.Fatal(err)
	}
	w := strings.Join(c.Warnings, "\n")
	for _, want := range []string{"is readable by every user", "consoles a and b share BMC same", "matches no console", "user u has no keys"} {
		if !strings.Contains(w, want) {
			t.Errorf("warnings lack %q:\n%s", want, w)
		}
	}
}

func TestParseHelpers(t *testing.T) {
	t.Parallel()
	sizes := map[string]int64{"4096": 4096, "64MiB": 64 << 20, "100M": 100 << 20, "1GB": 1e9, "2 GiB": 2 << 30, "1k": 1024}
	for in, want := range sizes {
		if got, err := parseSize(in); err != nil || got != want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "MiB", "-1", "1.5G", "1PB", "99999999999999999999", "9999999999TiB"} {
		if _, err := parseSize(bad); err == nil {
			t.Errorf("parseSize(%q) accepted", bad)
		}
	}
	durs := map[string]time.Duration{"0": 0, "30s": 30 * time.Second, "90d": 90 * 24 * time.Hour, "1d12h": 36 * time.Hour, "2w": 14 * 24 * time.Hour, "500ms": 500 * time.Millisecond}
	for in, want := range durs {
		if got, err := ParseDuration(in); err != nil || got != want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "d", "10", "1y", "-1h", "1.5h", "99999999999999999w"} {
		if _, err := ParseDuration(bad); err == nil {
			t.Errorf("ParseDuration(%q) accepted", bad)
		}
	}
	for in, want := range map[string][2]byte{"^Ec": {5, 'c'}, "^ec": {5, 'c'}, "^@x": {0, 'x'}, "^]q": {0x1d, 'q'}} {
		c, k, err := ParseEscape(in)
		if err != nil || c != want[0] || k != want[1] {
			t.Errorf("ParseEscape(%q) = %d %q %v", in, c, k, err)
		}
	}
	for _, bad := range []string{"", "^E", "~.", "^Ecc", "^1c", "^E "} {
		if _, _, err := ParseEscape(bad); err == nil {
			t.Errorf("ParseEscape(%q) accepted", bad)
		}
	}
	for _, ok := range []string{"node1-bmc", "10.0.0.1", "10.0.0.1:623", "[fd00::1]", "[fd00::1]:623", "fd00::1", "bmc.example.org:6230"} {
		if err := CheckBMC(ok); err != nil {
			t.Errorf("CheckBMC(%q): %v", ok, err)
		}
	}
	for _, bad := range []string{"", "a b", "x:", "x:0", "x:y", "[not-v6]:623", "a..b", "-", "h:1:2:zz", "[::1", ":623", "[::1]x", "x:+5"} {
		if err := CheckBMC(bad); err == nil && bad != "-" {
			t.Errorf("CheckBMC(%q) accepted", bad)
		}
	}
}

func TestFormatRoundTrip(t *testing.T) {
	t.Parallel()
	for _, d := range []time.Duration{0, time.Millisecond, 1500 * time.Millisecond, 90 * time.Minute, 36 * time.Hour, 90 * 24 * time.Hour} {
		back, err := ParseDuration(formatDuration(d))
		if err != nil || back != d {
			t.Errorf("%v -> %q -> %v, %v", d, formatDuration(d), back, err)
		}
	}
	for _, n := range []int64{0, 1, 4096, 64 << 20, 1 << 30, 1500} {
		back, err := parseSize(formatSize(n))
		if err != nil || back != n {
			t.Errorf("%d -> %q -> %d, %v", n, formatSize(n), back, err)
		}
	}
}
