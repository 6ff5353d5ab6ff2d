package migrate

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/solgate/solgate/conserver/config"
)

// want is what a generated console must become.
type want struct {
	bmc, user, password string // password: the secret's value in the source
	suite               int
	priv                string
	quirks              []string
}

// genConserver writes a conserver.cf for about n racked IPMI consoles: racks
// with gaps in their numbering, BMCs named after the node, BMCs numbered by
// IP address (crossing an octet), per-rack users, passwords and
// workarounds, odd consoles with their own settings, and consoles of other
// types in between.
func genConserver(n int) (string, map[string]want, []string) {
	var b strings.Builder
	w := map[string]want{}
	var skipped []string
	b.WriteString(`# generated
default full { rw *; }
default * { logfile /var/consoles/&; timestamp 1hab; include full; master localhost; type ipmi; }
default rackA { username ADMIN; password "pwA with spaces"; ipmiworkaround intel-session; }
default rackB { username root; password "pw;B"; ipmiciphersuite 3; ipmiprivlevel operator; }
default rackC { username root; password "pwC"; ipmikg "\001\002kg"; }
`)
	racked := n * 6 / 10
	for i := 1; i <= racked; i++ {
		if i%37 == 0 || i%100 == 51 {
			continue // gaps
		}
		name := fmt.Sprintf("node%04d", i)
		fmt.Fprintf(&b, "console %s { include rackA; host %s-ipmi.mgmt; }\n", name, name)
		w[name] = want{bmc: name + "-ipmi.mgmt", user: "ADMIN", password: "pwA with spaces", priv: "admin", quirks: []string{"intel20"}}
		if i%50 == 0 {
			fmt.Fprintf(&b, "console ts%d { type host; host ts%d; port %d; }\n", i, i/50, i%50+1)
			skipped = append(skipped, fmt.Sprintf("ts%d", i))
		}
	}
	gpus := n * 3 / 10
	for i := 1; i <= gpus; i++ {
		if i%29 == 0 {
			continue
		}
		name := fmt.Sprintf("gpu%03d", i)
		bmc := fmt.Sprintf("10.1.%d.%d", i/200, i%200+1)
		fmt.Fprintf(&b, "console %s {\n\tinclude rackB;\n\thost %s;\n}\n", name, bmc)
		w[name] = want{bmc: bmc, user: "root", password: "pw;B", suite: 3, priv: "operator"}
	}
	for i := 1; i <= n-racked-gpus; i++ {
		name := fmt.Sprintf("big%d", i)
		bmc := fmt.Sprintf("10.2.%d.%d:%d", 1+(250+i)/256, (250+i)%256, 623)
		fmt.Fprintf(&b, "console %s { include rackC; host %s; }\n", name, bmc)
		w[name] = want{bmc: bmc, user: "root", password: "pwC", priv: "admin"}
	}
	b.WriteString(`console odd1 { include rackA; host odd1.mgmt; username other; motd "be careful"; break 4; }
console odd2 { include rackA; host 10.9.9.9; ipmiworkaround ""; logfilemax 16m; }
console shell { type exec; exec /bin/bash; }
console ttyS0 { type device; device /dev/ttyS0; baud 115200; parity none; }
default sol { type exec; exec "exec /usr/bin/ipmitool -I lanplus -H X -U ADMIN -P 'pw\"D' -C 3 -L Operator sol activate"; execsubst X=hs; }
`)
	// type exec consoles running an IPMI SOL client, the BMC put into the
	// command by execsubst.
	for i := 1; i <= 3+n/100; i++ {
		name := fmt.Sprintf("sol%02d", i)
		fmt.Fprintf(&b, "console %s { include sol; host %s-sp; }\n", name, name)
		w[name] = want{bmc: name + "-sp", user: "ADMIN", password: `pw"D`, suite: 3, priv: "operator"}
	}
	b.WriteString(`console fipmi { type exec; exec "ipmiconsole --hostname=10.8.0.1 -u root -ppwE -W intel20,solpayloadsize"; }
console notsol { type exec; exec "ipmitool -I lanplus -H x -U r -P pwF chassis power status"; }
`)
	w["fipmi"] = want{bmc: "10.8.0.1", user: "root", password: "pwE", priv: "admin", quirks: []string{"intel20", "solpayloadsize"}}

	w["odd1"] = want{bmc: "odd1.mgmt", user: "other", password: "pwA with spaces", priv: "admin", quirks: []string{"intel20"}}
	w["odd2"] = want{bmc: "10.9.9.9", user: "ADMIN", password: "pwA with spaces", priv: "admin"}
	skipped = append(skipped, "shell", "ttyS0", "notsol")
	return b.String(), w, skipped
}

// genConMan writes a conman.conf in the same spirit: GLOBAL ipmiopts that
// change between racks, per-console ipmiopts merged over them, %N in dev
// and log, logdir, continuation lines, keywords in any case, and consoles
// that are not IPMI.
func genConMan(n int) (string, map[string]want, []string) {
	var b strings.Builder
	w := map[string]want{}
	var skipped []string
	b.WriteString(`# generated
SERVER logdir="/var/log/conman" loopback=on
server timestamp=1h
global log="%N.log"
GLOBAL ipmiopts="U:ADMIN,P:pwA,W:solpayloadsize"
`)
	racked := n * 6 / 10
	for i := 1; i <= racked; i++ {
		if i%41 == 0 {
			continue
		}
		name := fmt.Sprintf("n%03d", i)
		if i%2 == 0 {
			fmt.Fprintf(&b, "console name=\"%s\" \\\n  dev=\"ipmi:%%N-bmc\"\n", name)
		} else {
			fmt.Fprintf(&b, "CONSOLE NAME='%s' DEV='ipmi:%s-bmc'\n", name, name)
		}
		w[name] = want{bmc: name + "-bmc", user: "ADMIN", password: "pwA", priv: "admin", quirks: []string{"solpayloadsize"}}
		if i%60 == 0 {
			fmt.Fprintf(&b, "console name=\"ts%d\" dev=\"ts-a:%d\"\n", i, 7000+i)
			skipped = append(skipped, fmt.Sprintf("ts%d", i))
		}
	}
	b.WriteString("global ipmiopts=\"U:root,P:0x707742,C:3,L:op,W:default\"\n")
	for i := 1; i <= n-racked; i++ {
		if i%23 == 0 {
			continue
		}
		name := fmt.Sprintf("gpu%02d", i)
		bmc := fmt.Sprintf("10.3.%d.%d", i/250, i%250)
		opts := ""
		wk := []string(nil)
		if i > 40 && i <= 60 {
			opts = ` ipmiopts="W:0x08000000,W:intel20"`
			wk = []string{"intel20", "solchannelsupport"}
		}
		fmt.Fprintf(&b, "console name=\"%s\" dev=\"ipmi:%s\"%s\n", name, bmc, opts)
		w[name] = want{bmc: bmc, user: "root", password: "pwB", suite: 3, priv: "operator", quirks: wk}
	}
	b.WriteString(`console name="serial0" dev="/dev/ttyS0" seropts="115200,8n1"
console name="script" dev="/usr/lib/conman/exec/ipmitool.exp 10.0.0.1 root pwScript"
console name="ssh1" dev="/usr/lib/conman/exec/ssh.exp host1 root pwSSH"
console name="sock" dev="unix:/run/x.sock"
console name="odd" dev="ipmi:odd-bmc:6230" ipmiopts="U:,P:pwOdd,C:17" log=""
`)
	w["odd"] = want{bmc: "odd-bmc:6230", user: "", password: "pwOdd", suite: 17, priv: "operator"}
	w["script"] = want{bmc: "10.0.0.1", user: "root", password: "pwScript", priv: "admin"}
	skipped = append(skipped, "serial0", "ssh1", "sock")
	return b.String(), w, skipped
}

func TestGeneratedConserver(t *testing.T) {
	t.Parallel()
	for _, n := range []int{10, 300, 2000} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			t.Parallel()
			text, w, skipped := genConserver(n)
			r, err := Conserver("gen.cf", []byte(text), Options{SecretDir: t.TempDir()})
			if err != nil {
				t.Fatal(err)
			}
			checkGenerated(t, r, w, skipped, []string{"pwA with spaces", "pw;B", "pwC", "\x01\x02kg", `pw"D`, "pwE", "pwF"})
		})
	}
}

func TestGeneratedConMan(t *testing.T) {
	t.Parallel()
	for _, n := range []int{10, 300, 2000} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			t.Parallel()
			text, w, skipped := genConMan(n)
			r, err := ConMan("gen.conf", []byte(text), Options{SecretDir: t.TempDir()})
			if err != nil {
				t.Fatal(err)
			}
			checkGenerated(t, r, w, skipped, []string{"pwA", "pwB", "0x707742", "pwOdd", "pwScript", "pwSSH"})
			if r.Listen != "127.0.0.1:2222" {
				t.Errorf("loopback=on gave listen %q", r.Listen)
			}
			if c := console(t, r, "n002"); !slices.Contains(c.Notes, `ConMan logged to "/var/log/conman/%N.log" (%N is the console name); solgate writes LOG_DIR/NAME/*.zst, see [server] log_dir; old logs stay where they are`) {
				t.Errorf("n002 notes: %q", c.Notes)
			}
		})
	}
}

// checkGenerated loads the translation with config.Load and compares every
// console's effective settings with what the generator meant; consoles with
// the same password must read the same file, different ones different
// files. The output must be compact: a few entries per rack.
func checkGenerated(t *testing.T, r *Result, w map[string]want, skipped, secrets []string) {
	t.Helper()
	if len(r.Warnings) > 0 {
		t.Errorf("warnings: %v", r.Warnings)
	}
	out := string(r.TOML())
	for _, s := range secrets {
		if strings.Contains(out, s) {
			t.Errorf("secret %q is in the output", s)
		}
	}
	var got []string
	for _, s := range r.Skipped {
		got = append(got, s.Name)
	}
	if !slices.Equal(got, skipped) {
		t.Errorf("skipped %v, want %v", got, skipped)
	}
	cfg := load(t, r)
	if len(cfg.Consoles) != len(w) {
		t.Errorf("%d consoles loaded, want %d", len(cfg.Consoles), len(w))
	}
	fileOf := map[string]string{} // source password -> password file read
	for name, wc := range w {
		c, ok := cfg.Console(name)
		if !ok {
			t.Errorf("console %s missing", name)
			continue
		}
		q := slices.Clone(c.Quirks)
		slices.Sort(q)
		wq := slices.Clone(wc.quirks)
		slices.Sort(wq)
		if c.BMC != wc.bmc || c.User != wc.user || c.CipherSuite != wc.suite || c.Privilege != wc.priv || !slices.Equal(q, wq) || c.Interface != "lanplus" || c.Escape != "^Ec" {
			t.Errorf("%s: bmc %s user %q suite %d privilege %s quirks %v; want %+v", name, c.BMC, c.User, c.CipherSuite, c.Privilege, c.Quirks, wc)
		}
		f := string(c.Password.Reveal())
		if prev, seen := fileOf[wc.password]; seen && prev != f {
			t.Errorf("%s: password %q read from %s, another console's from %s", name, wc.password, f, prev)
		}
		fileOf[wc.password] = f
	}
	files := map[string]bool{}
	for _, f := range fileOf {
		if files[f] {
			t.Errorf("two different passwords share the file %s", f)
		}
		files[f] = true
	}
	// Racks fold: the entry count grows with the number of BMC address
	// blocks and odd consoles, not with the number of consoles.
	if e := entries(r); len(w) > 100 && e > 20 {
		t.Errorf("%d consoles in %d [[console]] entries; the folding does not work:\n%s", len(w), e, head(out, 80))
	}
	for _, e := range r.Secrets {
		if filepath.Dir(e.Path) == "" || e.Consoles == 0 {
			t.Errorf("secret %+v", e)
		}
	}
	_ = config.DefaultPath
}

func head(s string, n int) string {
	l := strings.SplitN(s, "\n", n+1)
	if len(l) > n {
		l = l[:n]
	}
	return strings.Join(l, "\n")
}
