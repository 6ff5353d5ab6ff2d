package test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// runSolgate runs the solgate binary and returns stdout, stderr and the
// exit code.
func runSolgate(t testing.TB, env []string, args ...string) (string, string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, solgateBin(t), args...)
	cmd.Env = append([]string{"PATH=/usr/bin:/bin"}, env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("solgate %v: %v", args, err)
	}
	return out.String(), errb.String(), code
}

// TestPowerCommandIPMISim runs `solgate power` against OpenIPMI's
// ipmi_sim: power state changes must reach the simulated chassis, and the
// output and exit status must say what happened per host.
func TestPowerCommandIPMISim(t *testing.T) {
	sim := startIPMISim(t, defaultSimUsers)
	dead := "127.0.0.1:" + strconv.Itoa(freeUDPPort(t))
	env := []string{"IPMI_PASSWORD=secret"}
	common := []string{"-u", "admin", "-C", "3", "--timeout", "200ms"}

	out, errOut, code := runSolgate(t, env, append([]string{"power", sim.Addr, "off"}, common...)...)
	if code != 0 || strings.TrimSpace(out) != sim.Addr+": ok" {
		t.Fatalf("off: code %d, out %q, err %q", code, out, errOut)
	}
	if sim.Power(t) {
		t.Fatal("simulated chassis still on after solgate power off")
	}
	out, _, code = runSolgate(t, env, append([]string{"power", sim.Addr, "status"}, common...)...)
	if code != 0 || strings.TrimSpace(out) != sim.Addr+": off" {
		t.Fatalf("status: code %d, out %q", code, out)
	}
	out, _, code = runSolgate(t, env, append([]string{"power", sim.Addr, "cycle", "--wait"}, common...)...)
	if code != 0 || strings.TrimSpace(out) != sim.Addr+": on" || !sim.Power(t) {
		t.Fatalf("cycle of an off node: code %d, out %q, power %v", code, out, sim.Power(t))
	}

	// One good and one dead BMC: exit 1, both reported, JSON in input order.
	out, _, code = runSolgate(t, env, append([]string{"power", sim.Addr + "," + dead, "status", "--json", "--interface", "lanplus"}, common...)...)
	if code != 1 {
		t.Fatalf("partial failure: exit %d, want 1", code)
	}
	var res []struct {
		Host, State, Error string
		OK                 bool
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("json: %v\n%s", err, out)
	}
	if len(res) != 2 || res[0].Host != sim.Addr || !res[0].OK || res[0].State != "on" ||
		res[1].Host != dead || res[1].OK || !strings.Contains(res[1].Error, "no answer after 3 tries") {
		t.Fatalf("json results %+v", res)
	}

	out, _, code = runSolgate(t, []string{"IPMI_PASSWORD=wrong"}, append([]string{"power", sim.Addr, "off"}, common...)...)
	if code != 1 || strings.TrimSpace(out) != sim.Addr+": authentication failed (wrong password or user)" {
		t.Fatalf("wrong password: code %d out %q", code, out)
	}
	if !sim.Power(t) {
		t.Fatal("power went off with a wrong password")
	}

	_, errOut, code = runSolgate(t, env, "power", sim.Addr, "explode")
	if code != 2 || !strings.Contains(errOut, `unknown action "explode"`) {
		t.Fatalf("bad action: code %d err %q", code, errOut)
	}
	_, errOut, code = runSolgate(t, env, "power", "node[1-", "status")
	if code != 2 || !strings.Contains(errOut, "hostlist") {
		t.Fatalf("bad hostlist: code %d err %q", code, errOut)
	}
}

// TestPowerCommandConfig: with -c, console names resolve to BMCs and
// credentials from the solgate config file.
func TestPowerCommandConfig(t *testing.T) {
	sim := startIPMISim(t, defaultSimUsers)
	dir := t.TempDir()
	pw := dir + "/bmc.pass"
	must(t, os.WriteFile(pw, []byte("secret\n"), 0o600))
	conf := dir + "/solgate.toml"
	must(t, os.WriteFile(conf, []byte(`
[server]
log_dir = "`+dir+`/log"
state_dir = "`+dir+`/state"

[defaults]
user = "admin"
password_file = "`+pw+`"
cipher_suite = 3

[[console]]
name = "node[1-2]"
bmc = "`+sim.Addr+`,127.0.0.1:`+strconv.Itoa(freeUDPPort(t))+`"
`), 0o600))
	out, errOut, code := runSolgate(t, nil, "power", "-c", conf, "--timeout", "200ms", "node1", "off")
	if code != 0 || strings.TrimSpace(out) != "node1: ok" || sim.Power(t) {
		t.Fatalf("off via config: code %d out %q err %q power %v", code, out, errOut, sim.Power(t))
	}
	out, _, code = runSolgate(t, nil, "power", "-c", conf, "--timeout", "200ms", "node[1-2]", "status", "--consolidate")
	if code != 1 || !strings.Contains(out, "node1: off\n") || !strings.Contains(out, "node2: no answer after 3 tries") {
		t.Fatalf("consolidated status: code %d out %q", code, out)
	}
	_, errOut, code = runSolgate(t, nil, "power", "-c", conf, "node9", "status")
	if code != 2 || !strings.Contains(errOut, "no such console: node9") {
		t.Fatalf("unknown console: code %d err %q", code, errOut)
	}
}
