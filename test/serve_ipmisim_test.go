package test

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/solgate/solgate/conserver"
	"github.com/solgate/solgate/conserver/config"
	"github.com/solgate/solgate/ipmilan/bmcsim"
	"github.com/solgate/solgate/logstore"
)

// ipmiSimConfig writes a config for consoles on ipmi_sim BMCs (suite 3:
// ipmi_sim has no HMAC-SHA256 suites).
func ipmiSimConfig(t testing.TB, dir string, consoles []servedConsole) string {
	t.Helper()
	cfg := writeServeConfig(t, dir, `reconnect_min = "500ms"
reconnect_max = "5s"`, consoles)
	must(t, os.WriteFile(filepath.Join(dir, "bmc.pass"), []byte("secret\n"), 0o600))
	b, err := os.ReadFile(cfg)
	must(t, err)
	must(t, os.WriteFile(cfg, []byte(strings.Replace(string(b), "cipher_suite = 17", "cipher_suite = 3", 1)+ownershipAccess), 0o640))
	return cfg
}

// TestServeIPMISimConsolesComplete: three consoles on OpenIPMI ipmi_sim
// BMCs logged for 65 s (more than twice ipmi_sim's 30 s session timeout,
// which SOL traffic does not refresh) without losing a byte.
func TestServeIPMISimConsolesComplete(t *testing.T) {
	if testing.Short() {
		t.Skip("takes 65 s")
	}
	t.Parallel()
	needTool(t, "ipmi_sim")
	type node struct {
		name   string
		sim    *ipmiSim
		serial net.Conn
	}
	var nodes []node
	var consoles []servedConsole
	for i := 1; i <= 3; i++ {
		sim, serial := startIPMISimSOL(t)
		n := node{fmt.Sprintf("sim%d", i), sim, serial}
		nodes = append(nodes, n)
		consoles = append(consoles, servedConsole{name: n.name, bmc: sim.Addr})
	}
	dir := t.TempDir()
	e := startManager(t, ipmiSimConfig(t, dir, consoles))
	for _, n := range nodes {
		waitConsole(t, e.m.Console(n.name), conserver.Up, 30*time.Second)
	}
	const rate, dur = 2000, 65 * time.Second // bytes per second each
	total := rate * int(dur/time.Second)
	var wg sync.WaitGroup
	for _, n := range nodes {
		wg.Go(func() {
			start := time.Now()
			for off := 0; off < total; {
				due := int(float64(rate) * time.Since(start).Seconds())
				if due > off {
					k := min(due, total) - off
					if _, err := n.serial.Write(bmcsim.AppendStreamText(nil, off, k)); err != nil {
						t.Errorf("%s: serial write: %v", n.name, err)
						return
					}
					off += k
				}
				time.Sleep(50 * time.Millisecond)
			}
		})
	}
	wg.Wait()
	for _, n := range nodes {
		c := e.m.Console(n.name)
		deadline := time.Now().Add(20 * time.Second)
		for c.Status().BytesIn < uint64(total) && time.Now().Before(deadline) {
			time.Sleep(100 * time.Millisecond)
		}
		// Everything written by now is in the log (Tail includes unflushed).
		lines, err := e.store.Tail(n.name, 1<<20)
		must(t, err)
		var got []byte
		established := 0
		for _, l := range lines {
			if l.Event == "" {
				got = append(got, l.Text...)
			} else if l.Event == logstore.EventReconnect && strings.Contains(string(l.Text), "SOL session established") {
				established++
			}
		}
		want := bmcsim.AppendStreamText(nil, 0, total)
		if string(got) != string(want) {
			t.Errorf("%s: the log holds %d bytes, want the %d written, in order (first difference at %d)", n.name, len(got), total, firstDiffBytes(got, want))
		}
		if established != 1 {
			t.Errorf("%s: %d SOL sessions, want one for the whole run", n.name, established)
		}
		st := c.Status()
		t.Logf("%s: %d bytes in, SOL %+v", n.name, st.BytesIn, st.SOL)
	}
}

func firstDiffBytes(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// TestServeIPMISimPowerCycleFromEscape: a user attached to a console on
// ipmi_sim power-cycles the node from the escape menu. The sim's chassis
// program sees power go off and on; the log then has one boot marker (by
// the user) and the new boot's output after it, where --boot 0 finds it.
func TestServeIPMISimPowerCycleFromEscape(t *testing.T) {
	t.Parallel()
	needTool(t, "ipmi_sim")
	sim, serial := startIPMISimSOL(t)
	// A chassis program that also records its calls.
	calls := filepath.Join(sim.dir, "calls")
	script := fmt.Sprintf(`#!/bin/sh
echo "$@" >> %q
st=%q
op=$1; shift
case $op in
get) for p in "$@"; do case $p in power) v=0; [ -f "$st" ] && read v < "$st"; echo "power:$v";; boot) echo "boot:default";; esac; done;;
set) while [ $# -ge 2 ]; do case $1 in power) echo "$2" > "$st";; esac; shift 2; done;;
*) exit 1;;
esac
`, calls, filepath.Join(sim.dir, "power"))
	must(t, os.WriteFile(filepath.Join(sim.dir, "chassis.new"), []byte(script), 0o700))
	must(t, os.Rename(filepath.Join(sim.dir, "chassis.new"), filepath.Join(sim.dir, "chassis")))

	dir := t.TempDir()
	e := startManager(t, ipmiSimConfig(t, dir, []servedConsole{{name: "node42", bmc: sim.Addr}}))
	c := e.m.Console("node42")
	waitConsole(t, c, conserver.Up, 30*time.Second)
	u := attachAs(t, c, "alice")
	u.wait(t, "node42: connected since", 5*time.Second)
	serial.Write([]byte("old kernel running\r\nnode42 login: "))
	u.wait(t, "node42 login: ", 10*time.Second)

	u.a.Write([]byte("\x05c!c"))
	u.wait(t, "node42: power cycle? [y/N]", 5*time.Second)
	u.a.Write([]byte("y"))
	u.wait(t, "node42: power cycle: ok", 20*time.Second)
	// ipmi_sim powers back on a moment later.
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, err := os.ReadFile(calls)
		must(t, err)
		s := string(b)
		if off := strings.Index(s, "set power 0\n"); off >= 0 && strings.Contains(s[off:], "set power 1\n") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the chassis program saw:\n%s\nwant power off, then on", s)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !sim.Power(t) {
		t.Fatal("the node is off after the cycle")
	}
	// The node boots again: what its serial port prints now.
	newBoot := "\r\n[    0.000000] Linux version 6.1.0-18-amd64 (test)\r\n[    0.120000] Command line: console=ttyS0\r\nnode42 login: "
	serial.Write([]byte(newBoot))
	u.wait(t, "Command line: console=ttyS0", 10*time.Second)

	// From disk, as solgate log --boot 0 reads it.
	var cur string
	deadline = time.Now().Add(10 * time.Second)
	for {
		boots, err := e.store.Boots(context.Background(), "node42")
		must(t, err)
		b, _ := logstore.BootAt(boots, 0)
		var sb strings.Builder
		nboot := 0
		for l, err := range e.store.Lines(context.Background(), "node42", logstore.Query{Since: b.Start}) {
			must(t, err)
			if l.Event == logstore.EventBoot {
				nboot++
			}
			fmt.Fprintf(&sb, "%s|%s\n", l.Event, l.Text)
		}
		cur = sb.String()
		if strings.Contains(cur, "node42 login: ") && strings.Contains(cur, "Linux version") {
			if b.How != "power cycle by alice" || nboot != 1 {
				t.Fatalf("boot 0 started %q with %d boot markers:\n%s", b.How, nboot, cur)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the new boot is not on disk:\n%s", cur)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if strings.Contains(cur, "old kernel running") {
		t.Fatalf("boot 0 holds the old boot's output:\n%s", cur)
	}
	if log := logTextOf(t, e.store, "node42"); !strings.Contains(log, "! power power cycle by alice: ok") {
		t.Fatalf("no power event:\n%s", log)
	}
}

// ipmiSimConsoleUp runs a console manager with one console, sim1, on an
// ipmi_sim BMC, and waits until it is up; it returns the manager, the
// configuration's folder and file.
func ipmiSimConsoleUp(t *testing.T) (*managerEnv, string, string) {
	t.Helper()
	needTool(t, "ipmi_sim")
	sim, _ := startIPMISimSOL(t)
	dir := t.TempDir()
	cfgPath := ipmiSimConfig(t, dir, []servedConsole{{name: "sim1", bmc: sim.Addr}})
	e := startManager(t, cfgPath)
	waitConsole(t, e.m.Console("sim1"), conserver.Up, 30*time.Second)
	return e, dir, cfgPath
}

// TestServeIPMISimNewPassword: a new BMC password saved while a console
// on OpenIPMI's ipmi_sim is up keeps its SOL session, and the check with
// a short-lived session reports what ipmi_sim says of it: refused, then,
// with the right one back, taken.
func TestServeIPMISimNewPassword(t *testing.T) {
	t.Parallel()
	e, dir, cfgPath := ipmiSimConsoleUp(t)
	c := e.m.Console("sim1")
	upSince := c.Status().UpSince
	apply := func(pw string) {
		t.Helper()
		must(t, os.WriteFile(filepath.Join(dir, "bmc.pass"), []byte(pw+"\n"), 0o600))
		cfg, err := config.Load(cfgPath)
		must(t, err)
		res, err := e.m.Apply(context.Background(), cfg)
		must(t, err)
		if len(res.Reconnects) != 0 || len(res.Credentials) != 1 {
			t.Fatalf("apply: %+v, want sim1's credentials changed and no reconnect", res)
		}
	}
	apply("not-the-password")
	waitFor(t, "the check's verdict in the console log", 20*time.Second, func() bool {
		return strings.Contains(logTextOf(t, e.store, "sim1"), "BMC credentials changed, but a short-lived session with them failed: authentication failed")
	})
	apply("secret")
	waitFor(t, "the second check's verdict", 20*time.Second, func() bool {
		return strings.Contains(logTextOf(t, e.store, "sim1"), "checked with a short-lived session: the BMC takes them")
	})
	if st := c.Status(); st.State != conserver.Up || !st.UpSince.Equal(upSince) {
		t.Fatalf("sim1: %v up since %v, want its session of %v kept", st.State, st.UpSince, upSince)
	}
}

// TestSolBesideDaemonIPMISim: solgate sol -c on a console that the
// daemon holds on OpenIPMI's ipmi_sim names the holder as the daemon's
// own session: ipmi_sim's answer names the owning session, which the
// daemon's state_dir records.
func TestSolBesideDaemonIPMISim(t *testing.T) {
	t.Parallel()
	e, _, cfgPath := ipmiSimConsoleUp(t)
	cfg, err := config.Load(cfgPath)
	must(t, err)
	waitFor(t, "the session record", 5*time.Second, func() bool {
		b, _ := os.ReadFile(filepath.Join(cfg.Server.StateDir, "sol-sessions"))
		return strings.Contains(string(b), "sim1 ")
	})
	_, errs, code := runSolgate(t, nil, "sol", "-c", cfgPath, "--no-reconnect", "sim1")
	if code != 1 || !strings.Contains(errs, "solgate serve's own session for this console") {
		t.Errorf("solgate sol sim1 while the daemon holds it on ipmi_sim: exit %d: %s", code, errs)
	}
	if st := e.m.Console("sim1").Status(); st.State != conserver.Up || st.Reconnects != 0 {
		t.Errorf("sim1 after solgate sol tried it: %v, %d reconnects; want the daemon's session untouched", st.State, st.Reconnects)
	}
}
