package migrate

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func importConMan(t *testing.T, text string) *Result {
	t.Helper()
	r, err := ConMan("/etc/conman.conf", []byte(text), Options{SecretDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestConManIPMIOpts: GLOBAL ipmiopts apply to the consoles after them and
// merge with earlier GLOBAL lines; a console's ipmiopts merge over them; X:
// with no value restores the default; W flags by name and by number, W:none
// and W:default; hex keys; the old positional form.
func TestConManIPMIOpts(t *testing.T) {
	t.Parallel()
	r := importConMan(t, `
console name="before" dev="ipmi:before-bmc"
GLOBAL ipmiopts="U:admin,P:pw1,C:3"
global IPMIOPTS="L:user,W:intel20"
console name="a" dev="ipmi:a-bmc"
console name="b" dev="ipmi:b-bmc" ipmiopts="U:root,C:,W:solport"
console name="c" dev="ipmi:c-bmc" ipmiopts="W:none,P:0x70773100,K:0x0102ff"
console name="d" dev="ipmi:d-bmc" ipmiopts="W:0x0C000000,L:2,C:17"
console name="e" dev="ipmi:e-bmc" ipmiopts="W:default,P:,L:op"
console name="f" dev="ipmi:f-bmc" ipmiopts="olduser,oldpw,-,sun20"
console name="g" dev="ipmi:g-bmc" ipmiopts="C:1"
`)
	for _, tc := range []struct {
		name, user, priv string
		suite            int
		quirks           []string
		password, kg     bool
	}{
		{"before", "", "admin", 0, nil, false, false},
		{"a", "admin", "user", 3, []string{"intel20"}, true, false},
		{"b", "root", "user", 0, []string{"intel20", "solport"}, true, false},
		{"c", "admin", "user", 3, nil, true, true},
		{"d", "admin", "admin", 17, []string{"intel20", "solstatus", "solchannelsupport"}, true, false}, // added to the global intel20
		{"e", "admin", "operator", 3, nil, false, false},
		{"f", "olduser", "user", 3, []string{"intel20", "sun20"}, true, false},
		{"g", "admin", "user", 0, []string{"intel20"}, true, false},
	} {
		c := console(t, r, tc.name)
		if c.User != tc.user || c.Privilege != tc.priv || c.CipherSuite != tc.suite || !slices.Equal(c.Quirks, tc.quirks) || (c.Password != "") != tc.password || (c.KG != "") != tc.kg {
			t.Errorf("%s: %+v\nwant %+v", tc.name, c, tc)
		}
	}
	// pw1 for a, b, d, g; "pw1" hex-coded for c is the same value; oldpw
	// for f.
	if len(r.Secrets) != 3 || r.Secrets[0].Consoles != 5 || r.Secrets[0].Line != 3 || r.Secrets[1].Kind != "K_g" || !r.Secrets[1].Binary {
		t.Errorf("secrets: %+v", r.Secrets)
	}
	if g := console(t, r, "g"); !strings.Contains(strings.Join(g.Notes, "\n"), "C:1 (a cipher suite without both integrity and encryption) left out") {
		t.Errorf("g notes: %q", g.Notes)
	}
	load(t, r)
}

func TestConManDevAndLogs(t *testing.T) {
	t.Parallel()
	r := importConMan(t, `
server logdir="/var/log/conman/"
global log="cons/%N.log"
global logopts="timestamp,sanitize"
console name="n1" dev="ipmi:%N-bmc"
console name="n2" dev="'ipmi:%N-bmc'" log="/abs/%N"
console name="n3" dev="ipmi:10.0.0.3:6230" log="" logopts="notimestamp"
CONSOLE NAME="n4" DEV="IPMI:n4.mgmt" LOGOPTS="nosanitize,notimestamp"
console name="t1" dev="ipmi:623"
console name="t2" dev="ts1:7001"
console name="s1" dev="/dev/ttyS1"
console name="u1" dev="unix:/run/u1"
console name="p1" dev="/usr/bin/ssh -p 22 host"
console name="x1" dev="ipmi:x1-bmc extra"
console name="n1" dev="ipmi:again"
`)
	if c := console(t, r, "n1"); c.BMC != "n1-bmc" || !slices.Contains(c.Notes, `ConMan logged to "/var/log/conman/cons/%N.log" (%N is the console name); solgate writes LOG_DIR/NAME/*.zst, see [server] log_dir; old logs stay where they are`) ||
		!slices.Contains(c.Notes, "logopts timestamp: solgate stamps every log line with the time") || !slices.Contains(c.Notes, "logopts sanitize: solgate keeps the exact bytes; solgate log --plain strips escape sequences") {
		t.Errorf("n1: %+v", c)
	}
	// Single quotes inside dev keep %N as it is: not a usable BMC.
	if c := console(t, r, "n3"); c.BMC != "10.0.0.3:6230" || !slices.Contains(c.Notes, "ConMan kept no log for this console; solgate logs every console") || len(c.Notes) != 1 {
		t.Errorf("n3: %+v", c)
	}
	if c := console(t, r, "n4"); c.BMC != "n4.mgmt" || len(c.Notes) != 1 {
		t.Errorf("n4: %+v", c)
	}
	var got []string
	for _, s := range r.Skipped {
		got = append(got, s.Name+": "+s.Why)
	}
	want := []string{
		`n2: BMC "%N-bmc" is not an address solgate can use`,
		`t1: dev "ipmi:623" is a terminal server over telnet`,
		`t2: dev "ts1:7001" is a terminal server over telnet`,
		`s1: dev "/dev/ttyS1" is a serial port`,
		`u1: dev "unix:/run/u1" is a Unix socket`,
		`p1: dev "/usr/bin/ssh" with 3 arguments (not shown) is a program`,
		`x1: an ipmi: dev with arguments`,
	}
	if !slices.Equal(got, want) {
		t.Errorf("skipped:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if w := notesText(r.Warnings); !strings.Contains(w, `conman.conf:15: console "n1" is defined again (first at line 5); ConMan keeps the first`) {
		t.Errorf("warnings: %s", w)
	}
	load(t, r)
}

// TestConManServer: SERVER settings become notes, loopback=on a loopback
// listen address; continuation lines and comments.
func TestConManServer(t *testing.T) {
	t.Parallel()
	r := importConMan(t, `# comment
server keepalive=on \
  loopback=on port=7890   # trailing comment
server resetcmd="ipmipower -r %N" timestamp=5 m
SERVER syslog="local0" logfile="/var/log/conmand.log,info" pidfile="/run/conmand.pid"
console name="a" dev="ipmi:a"
`)
	if r.Listen != "127.0.0.1:2222" {
		t.Errorf("listen %q", r.Listen)
	}
	n := notesText(r.Notes)
	for _, want := range []string{
		"conman.conf:2: server keepalive=on: no solgate equivalent",
		"conman.conf:3: server port=7890: ConMan's client port",
		`conman.conf:4: server resetcmd="ipmipower -r %N": ConMan ran it on &R`,
		"conman.conf:4: server timestamp=5m: solgate stamps every log line",
		`conman.conf:5: server syslog="local0"`,
		`conman.conf:5: server pidfile="/run/conmand.pid": no solgate equivalent`,
	} {
		if !strings.Contains(n, want) {
			t.Errorf("notes lack %q:\n%s", want, n)
		}
	}
	cfg := load(t, r)
	if cfg.Server.Listen != "127.0.0.1:2222" {
		t.Errorf("loaded listen %q", cfg.Server.Listen)
	}
}

// TestConManWarnings: input conmand would reject in part is reported and
// the console left out.
func TestConManWarnings(t *testing.T) {
	t.Parallel()
	r := importConMan(t, `
global log="no-placeholder.log"
global ipmiopts="X:1"
console name="a" dev="ipmi:a" ipmiopts="W:bogus"
console name="b" dev="ipmi:b" ipmiopts="C:5"
console name="c" dev="ipmi:c" ipmiopts="U:abcdefghijklmnopq"
console name="d" dev="ipmi:d" ipmiopts="P:012345678901234567890"
console name="bad name" dev="ipmi:e"
console name="f" dev="ipmi:f" logopts="bogus"
console name="g" dev="ipmi:g"
`)
	w := notesText(r.Warnings)
	for _, want := range []string{
		`conman.conf:2: global log="no-placeholder.log" has neither %N nor %D; ConMan ignores it`,
		`conman.conf:3: global ipmiopts: "X:1" is not X:VALUE`,
		`conman.conf:4: console "a": ipmiopts: W:"bogus" is not a workaround flag`,
		`conman.conf:5: console "b": ipmiopts: C:"5" is not a cipher suite ID`,
		`conman.conf:6: console "c": ipmiopts: IPMI user "abcdefghijklmnopq" is longer than 16 bytes`,
		`conman.conf:7: console "d": ipmiopts: a password or K_g is at most 20 bytes`,
		`conman.conf:8: console "bad name": bad console name "bad name": contains ' '`,
		`conman.conf:9: console f: logopts: unknown option "bogus"`,
	} {
		if !strings.Contains(w, want) {
			t.Errorf("warnings lack %q:\n%s", want, w)
		}
	}
	if len(r.Consoles) != 1 || r.Consoles[0].Name != "g" || strings.Contains(strings.Join(r.Consoles[0].Notes, "\n"), "no-placeholder") {
		t.Errorf("consoles: %+v", r.Consoles)
	}
	load(t, r)
}

func TestConManErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want string }{
		{`console name="a" dev="ipmi:a`, "c.conf:1: unterminated quote"},
		{"\nconsole name=\"a\"\n", "c.conf:2: incomplete CONSOLE directive: it needs name= and dev="},
		{`console name "a" dev="x"`, `c.conf:1: want '=' after name, not string "a"`},
		{`console bogus="a"`, `c.conf:1: unexpected string "bogus" in CONSOLE directive`},
		{`console log="a" seropts="x" port="1"`, "c.conf:1: port is not a CONSOLE keyword"},
		{"\n\nfrobnicate", `c.conf:3: unexpected string "frobnicate": a directive starts with SERVER, GLOBAL or CONSOLE`},
		{`server port="x"`, `c.conf:1: server port wants an integer, not string "x"`},
		{`server loopback=maybe`, `c.conf:1: server loopback wants on or off, not string "maybe"`},
		{`global dev="x"`, "c.conf:1: dev is not a GLOBAL keyword"},
		{`server name="x"`, "c.conf:1: name is not a SERVER keyword"},
		{`console name="" dev="ipmi:x"`, "c.conf:1: name is empty"},
		{`console name=1 dev="ipmi:x"`, "c.conf:1: name wants a string, not integer 1"},
		{"console name=\"a\" \\\n dev=\"ipmi:x\" =", `c.conf:2: unexpected "=" in CONSOLE directive`},
	} {
		_, err := ConMan("c.conf", []byte(tc.in), Options{})
		var e *Error
		if !errors.As(err, &e) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want %q", tc.in, err, tc.want)
		}
	}
}

// TestConManScripts imports consoles that run ConMan's ipmitool.exp and
// ipmiconsole.exp, which are IPMI SOL consoles.
func TestConManScripts(t *testing.T) {
	t.Parallel()
	r := importConMan(t, `
console name="s1" dev="/usr/lib/conman/exec/ipmitool.exp s1-bmc admin pw1"
console name="s2" dev="ipmiconsole.exp s2-bmc admin"
console name="s3" dev="/usr/lib/conman/exec/ipmiconsole.exp s3-bmc admin pw1 kg1"
`)
	s1, s2, s3 := console(t, r, "s1"), console(t, r, "s2"), console(t, r, "s3")
	if s1.BMC != "s1-bmc" || s1.User != "admin" || s1.Password == "" || s1.Password != s3.Password || s3.KG == "" || s2.Password != "" {
		t.Errorf("s1 %+v\ns2 %+v\ns3 %+v", s1, s2, s3)
	}
	if !strings.Contains(strings.Join(s2.Notes, "\n"), "/etc/conman.pswd") {
		t.Errorf("s2 notes: %q", s2.Notes)
	}
	if out := string(r.TOML()); strings.Contains(out, "pw1") || strings.Contains(out, "kg1") {
		t.Error("a script's password is in the output")
	}
	load(t, r)
}
