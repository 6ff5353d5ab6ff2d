package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/solgate/solgate/ipmilan/bmcsim"
)

func TestExpandValue(t *testing.T) {
	hosts := []string{"node007", "node008", "gpu"}
	cases := []struct {
		v    string
		want []string
		err  string
	}{
		{"10.1.0.{n}", nil, `host "gpu" does not end in a number`},
		{"{name}-bmc", []string{"node007-bmc", "node008-bmc", "gpu-bmc"}, ""},
		{"10.1.0.{i}", []string{"10.1.0.1", "10.1.0.2", "10.1.0.3"}, ""},
		{"10.1.0.[5-7]", []string{"10.1.0.5", "10.1.0.6", "10.1.0.7"}, ""},
		{"10.1.0.[5-6]", nil, "gives 2 values for 3 hosts"},
		{"10.1.0.[9]", []string{"10.1.0.9", "10.1.0.9", "10.1.0.9"}, ""},
		{"md5,password", []string{"md5,password", "md5,password", "md5,password"}, ""},
		{"{host}", nil, "unknown template"},
	}
	for _, tc := range cases {
		got, err := expandValue(tc.v, hosts)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%q: %v, want error %q", tc.v, err, tc.err)
			}
			continue
		}
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("%q: %q %v, want %q", tc.v, got, err, tc.want)
		}
	}
	if got, _ := expandValue("10.1.0.{n}", []string{"node007", "n10"}); !slices.Equal(got, []string{"10.1.0.7", "10.1.0.10"}) {
		t.Errorf("{n}: %q (leading zeros are dropped)", got)
	}
}

func TestFixCommand(t *testing.T) {
	got := fixCommand([]string{"-c", "/etc/solgate/my conf.toml"}, []string{"set", "\x00HOST", "sol.enable=on"}, "node01", false)
	if want := `solgate bmc set -c '/etc/solgate/my conf.toml' node01 sol.enable=on`; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
	got = fixCommand([]string{"--inband"}, []string{"user", "\x00HOST", "sol", "it's", "on"}, "local", true)
	if want := `solgate bmc user --inband sol 'it'\''s' on`; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
}

func runBMCCmd(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	err := run(context.Background(), append([]string{"bmc"}, args...), &out, &errb)
	code := exitCode(err, &errb) // what main prints and exits with
	return out.String(), errb.String(), code
}

func TestBMCUsage(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{nil, 2, "Usage: solgate bmc"},
		{[]string{"bogus"}, 2, `unknown command "bogus"`},
		{[]string{"set", "node1"}, 2, "want HOSTS KEY=VALUE"},
		{[]string{"set", "127.0.0.1:1", "sol.enable"}, 2, "want KEY=VALUE"},
		{[]string{"set", "127.0.0.1:1", "user.2.password=x"}, 2, "never given on the command line"},
		{[]string{"set", "node[1-2]", "lan.ip=10.0.0.[1-3]"}, 2, "gives 3 values for 2 hosts"},
		// A mistyped key is refused before any BMC is asked (nothing
		// listens at 127.0.0.1:1: asking would fail otherwise).
		{[]string{"set", "127.0.0.1:1", "sol.enabel=on"}, 2, `unknown key "sol.enabel": did you mean "sol.enable"?`},
		{[]string{"set", "127.0.0.1:1", "sol.bitrate=115200", "frobnicate=1"}, 2, `unknown key "frobnicate" (solgate bmc set --help`},
		{[]string{"user", "127.0.0.1:1", "fly", "alice"}, 2, `unknown action "fly"`},
		{[]string{"user", "127.0.0.1:1", "add"}, 2, "want HOSTS ACTION NAME"},
		{[]string{"doctor", "127.0.0.1:1", "--baud", "300"}, 2, "--baud"},
		{[]string{"show", "node[1-"}, 2, "hostlist"},
		{[]string{"show", "--channel", "99", "x"}, 2, "--channel"},
		{[]string{"show", "--inband", "--device", "/nonexistent/ipmi0"}, 1, "ipmi_devintf"},
	} {
		out, errb, code := runBMCCmd(t, tc.args...)
		if code != tc.code || !strings.Contains(out+errb, tc.want) {
			t.Errorf("bmc %q: exit %d, want %d; output %q, want it to contain %q", tc.args, code, tc.code, out+errb, tc.want)
		}
	}
	for _, sub := range []string{"show", "set", "user", "doctor"} {
		out, errb, code := runBMCCmd(t, sub, "--help")
		if code != 0 || !strings.Contains(out+errb, "Examples:") || !strings.Contains(out+errb, "solgate bmc "+sub) {
			t.Errorf("bmc %s --help: exit %d\n%s%s", sub, code, out, errb)
		}
	}
}

// serveBMC serves a simulated BMC in the test process and returns its
// address and a password file for its admin user.
func serveBMC(t *testing.T, cfg bmcsim.Config) (*bmcsim.BMC, string, string) {
	t.Helper()
	if cfg.Users == nil {
		cfg.Users = []bmcsim.User{{Name: "admin", Password: "secret"}}
	}
	b := bmcsim.New(cfg)
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); b.Serve(ctx, pc) }()
	t.Cleanup(func() { cancel(); pc.Close(); <-done })
	pw := filepath.Join(t.TempDir(), "bmc.pass")
	if err := os.WriteFile(pw, []byte("secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return b, pc.LocalAddr().String(), pw
}

// TestBMCCommands drives show, set, user and doctor in-process against
// simulated BMCs; test/ does it with the binary and third-party peers.
func TestBMCCommands(t *testing.T) {
	t.Parallel()
	b1, a1, pw := serveBMC(t, bmcsim.Config{Misconfigured: true})
	b2, a2, _ := serveBMC(t, bmcsim.Config{})
	hosts := a1 + "," + a2
	conn := []string{"-u", "admin", "--password-file", pw, "--timeout", "300ms"}

	out, errb, code := runBMCCmd(t, append([]string{"doctor", hosts}, conn...)...)
	if code != 1 || !strings.Contains(out, a1+": sol.enable: SOL is disabled; fix: solgate bmc set -u admin --password-file "+pw+" --timeout 300ms "+a1+" sol.enable=on") ||
		!strings.Contains(out, a2+": ok\n") {
		t.Fatalf("doctor: exit %d\n%s%s", code, out, errb)
	}

	// Every fix the doctor printed, run as printed, makes it clean.
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		_, fix, ok := strings.Cut(line, "; fix: solgate bmc ")
		if !ok {
			continue
		}
		args := strings.Fields(fix)
		if o, e, c := runBMCCmd(t, args...); c != 0 {
			t.Fatalf("fix %q: exit %d\n%s%s", fix, c, o, e)
		}
	}
	if out, errb, code := runBMCCmd(t, append([]string{"doctor", hosts}, conn...)...); code != 0 {
		t.Fatalf("doctor after the fixes: exit %d\n%s%s", code, out, errb)
	}

	out, errb, code = runBMCCmd(t, append([]string{"set", hosts, "sol.bitrate=57600", "lan.ip=10.7.0.{i}", "--json"}, conn...)...)
	var sets []setJSON
	if err := json.Unmarshal([]byte(out), &sets); err != nil || code != 1 || len(sets) != 2 {
		t.Fatalf("set --json: exit %d %v\n%s%s", code, err, out, errb)
	}
	for _, s := range sets {
		st := map[string]string{}
		for _, c := range s.Changes {
			st[c.Key] = c.Status
		}
		if s.OK || st["sol.bitrate"] != "ok" || st["lan.ip"] != "refused" {
			t.Errorf("%s: %+v", s.Host, s)
		}
	}
	if b1.ConfigState().SOL.BitRate != 57600 || b2.ConfigState().LAN.IP.String() == "10.7.0.2" {
		t.Fatal("set did not do what it reported")
	}
	out, _, code = runBMCCmd(t, append([]string{"set", hosts, "lan.ip=10.7.0.{i}", "--allow-disconnect"}, conn...)...)
	if code != 0 || b2.ConfigState().LAN.IP.String() != "10.7.0.2" || !strings.Contains(out, a2+": lan.ip: ") {
		t.Fatalf("set --allow-disconnect: exit %d\n%s", code, out)
	}

	newpw := filepath.Join(t.TempDir(), "new.pass")
	os.WriteFile(newpw, []byte("bobs-password\n"), 0o600)
	out, errb, code = runBMCCmd(t, append([]string{"user", a2, "add", "bob", "operator", "--new-password-file", newpw, "--no-sol"}, conn...)...)
	if u := b2.ConfigState().Users[2]; code != 0 || u.Name != "bob" || u.Password != "bobs-password" || u.SOL || u.Privilege != "operator" || !u.Enabled {
		t.Fatalf("user add: exit %d %+v\n%s%s", code, u, out, errb)
	}
	out, _, code = runBMCCmd(t, append([]string{"show", a2, "--json"}, conn...)...)
	var shows []showJSON
	if err := json.Unmarshal([]byte(out), &shows); err != nil || code != 0 || len(shows) != 1 {
		t.Fatalf("show --json: exit %d %v\n%s", code, err, out)
	}
	sh := shows[0]
	if sh.Settings["lan.ip"] != "10.7.0.2" || sh.Settings["sol.bitrate"] != "57600" || len(sh.Users) != 2 || sh.Users[1].Name != "bob" ||
		sh.Users[1].SOL != "off" || sh.Users[1].Privilege != "operator" || len(sh.NotSupported) != 0 {
		t.Fatalf("show: %+v", sh)
	}
	out, _, code = runBMCCmd(t, append([]string{"show", a2}, conn...)...)
	if code != 0 || !strings.Contains(out, "sol.bitrate           57600\n") || !strings.Contains(out, "  3   bob    on       operator") {
		t.Fatalf("show: exit %d\n%s", code, out)
	}
	out, _, code = runBMCCmd(t, append([]string{"user", a2, "sol", "bob", "on", "--dry-run"}, conn...)...)
	if code != 0 || !strings.Contains(out, "user.3.sol: off -> on (dry run)") || b2.ConfigState().Users[2].SOL {
		t.Fatalf("dry run: exit %d\n%s", code, out)
	}
}

// FuzzExpandValue: no value makes expansion panic; one value per host
// comes back; a value without templates or ranges is left alone.
func FuzzExpandValue(f *testing.F) {
	for _, s := range []string{"10.1.0.{n}", "{name}-x", "a[1-3]", "md5,password", "{i}{n}{name}", "x[", "{", "[1-2]{n}"} {
		f.Add(s)
	}
	hosts := []string{"node1", "node2", "node3"}
	f.Fuzz(func(t *testing.T, v string) {
		out, err := expandValue(v, hosts)
		if err != nil {
			return
		}
		if len(out) != len(hosts) {
			t.Fatalf("%q: %d values for %d hosts", v, len(out), len(hosts))
		}
		if !strings.ContainsAny(v, "[{}") {
			for _, o := range out {
				if o != v {
					t.Fatalf("%q became %q", v, o)
				}
			}
		}
	})
}
