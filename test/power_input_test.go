package test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/solgate/solgate/test/internal/testkit"
)

// parsePowerLines maps "HOST: answer" lines to answers, failing on a
// host reported twice.
func parsePowerLines(t *testing.T, out string) map[string]string {
	t.Helper()
	m := map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if l == "" {
			continue
		}
		// HOST is 127.0.0.1:PORT: cut at the ": " after it.
		host, answer, ok := strings.Cut(l, ": ")
		if !ok {
			t.Fatalf("line %q: want HOST: ANSWER", l)
		}
		if _, dup := m[host]; dup {
			t.Fatalf("%s reported twice", host)
		}
		m[host] = answer
	}
	return m
}

// TestPowerInterruptDuringCycleWait: Ctrl-C (and SIGTERM) during `power
// cycle --wait` over a few hundred BMCs in another process: exit 130
// (143), one line per host, each saying truthfully what happened, which a
// status query afterwards confirms: hosts whose cycle was sent are off
// (the BMCs keep power off for ten minutes in a cycle), the others were
// never touched and are on.
func TestPowerInterruptDuringCycleWait(t *testing.T) {
	addrs := bmcsimProcess(t, 300, "--cycle-delay", "10m", "--power", "on")
	env := []string{"IPMI_PASSWORD=" + bmcsimPassword}
	for round, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
		hosts := addrs[round*150 : (round+1)*150]
		ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, solgateBin(t), "power", "-u", "admin", "--fanout", "40",
			strings.Join(hosts, ","), "cycle", "--wait")
		cmd.Env = env
		var out, errb testkit.LockedBuffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		must(t, cmd.Start())
		// The first host is started first: once it is off, cycles are
		// under way and most hosts are not started yet.
		waitFor(t, "the first host to be cycled", 60*time.Second, func() bool {
			o, _, _ := runSolgate(t, env, "power", "-u", "admin", hosts[0], "status")
			return strings.TrimSpace(o) == hosts[0]+": off"
		})
		sent := time.Now()
		must(t, cmd.Process.Signal(sig))
		err := cmd.Wait()
		if ctx.Err() != nil {
			t.Fatalf("%v: power still running after 120s", sig)
		}
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 128+int(sig) {
			t.Fatalf("%v: exit %v, want %d\nstderr: %s", sig, err, 128+int(sig), errb.String())
		}
		t.Logf("%v: exited %v after the signal", sig, time.Since(sent).Round(time.Millisecond))
		if !strings.Contains(errb.String(), "interrupted (") {
			t.Errorf("%v: stderr %q does not say it was interrupted", sig, errb.String())
		}
		lines := parsePowerLines(t, out.String())
		if len(lines) != len(hosts) {
			t.Fatalf("%v: %d lines for %d hosts:\n%s", sig, len(lines), len(hosts), out.String())
		}
		status, _, _ := runSolgate(t, env, "power", "-u", "admin", "--timeout", "500ms", strings.Join(hosts, ","), "status")
		states := parsePowerLines(t, status)
		counts := map[string]int{}
		for _, h := range hosts {
			answer, st := lines[h], states[h]
			counts[answer]++
			switch answer {
			case "interrupted while waiting: cycle sent, power not yet seen on":
				if st != "off" {
					t.Errorf("%v: %s: %q but its power is %q", sig, h, answer, st)
				}
			case "interrupted: not started", "interrupted before any command was sent":
				if st != "on" {
					t.Errorf("%v: %s: %q but its power is %q", sig, h, answer, st)
				}
			default:
				t.Errorf("%v: %s: unexpected answer %q (power %q)", sig, h, answer, st)
			}
		}
		if lines[hosts[0]] != "interrupted while waiting: cycle sent, power not yet seen on" || counts["interrupted: not started"] < len(hosts)-40 {
			t.Errorf("%v: answers %v; want the first host cycled and at least %d not started", sig, counts, len(hosts)-40)
		}
	}
}

// TestPowerUsageErrors: mistakes that are the same for every host are one
// usage error (exit 2) before any BMC is contacted. The BMC addresses are
// loopback ports where nothing listens, so that contacting them would show
// as "no answer".
func TestPowerUsageErrors(t *testing.T) {
	t.Parallel()
	pwFile := filepath.Join(t.TempDir(), "pw")
	must(t, os.WriteFile(pwFile, []byte("123456789012345678901\n"), 0o600))
	kgFile := filepath.Join(t.TempDir(), "kg")
	must(t, os.WriteFile(kgFile, []byte("0x"+strings.Repeat("ab", 21)+"\n"), 0o600))
	env := []string{"IPMI_PASSWORD=x"}
	const bmcs = "127.0.0.1:[9,19,29]"
	cases := []struct {
		env  []string
		args []string
		want string
	}{
		{env, []string{"", "status"}, `HOSTS "" names no host`},
		{env, []string{" ", "status"}, `HOSTS " " names no host`},
		{env, []string{",", "status"}, `HOSTS "," names no host`},
		{env, []string{bmcs, "status", "-u", "12345678901234567"}, "is 17 bytes; IPMI allows at most 16"},
		{nil, []string{bmcs, "status", "--password-file", pwFile}, "the password is 21 bytes; IPMI 2.0 allows at most 20"},
		{env, []string{bmcs, "status", "--kg-file", kgFile}, "K_g is 21 bytes; IPMI allows at most 20"},
		// An unknown placeholder ({nam}) is tested in cmd/solgate without a
		// process: were it not caught, the name would go to the resolver.
		{env, []string{"node[1-3]", "status", "--bmc", "127.0.0.2"}, "has no {name}: all 3 hosts would be the same BMC"},
		{env, []string{bmcs, "status", "--fanout", "0"}, "--fanout 0: want 1 to 4096"},
		{env, []string{bmcs, "status", "--fanout", "100000"}, "--fanout 100000: want 1 to 4096"},
		{env, []string{bmcs, "status", "--timeout", "0s"}, "--timeout 0s: want 10ms to 1m0s"},
		{env, []string{bmcs, "status", "--timeout", "2h"}, "--timeout 2h0m0s: want 10ms to 1m0s"},
		{env, []string{bmcs, "status", "--retries", "-1"}, "--retries -1: want 0 to 20"},
		{env, []string{bmcs, "status", "--retries", "1000"}, "--retries 1000: want 0 to 20"},
		{env, []string{bmcs, "status", "-C", "5"}, "--cipher-suite 5: want 0 (automatic: 17, else 3) or one of 1, 2, 3, 6, 7, 8, 11, 12, 15, 16, 17"},
		{env, []string{bmcs, "status", "-C", "300"}, "--cipher-suite 300: want 0"},
		{env, []string{bmcs, "status", "-C", "1"}, "--cipher-suite 1 has no integrity or no encryption"},
		{env, []string{bmcs, "status", "-I", "lan", "--auth-type", "none"}, "--auth-type none sends the password in clear or not at all; add --insecure"},
		{env, []string{"127.0.0.1:", "status"}, `BMC address "127.0.0.1:": invalid port ""`},
		{env, []string{":0", "status"}, `BMC address ":0": invalid port "0"`},
		{nil, []string{bmcs, "status"}, "no BMC password: give --password-file, set IPMI_PASSWORD"},
	}
	for _, c := range cases {
		start := time.Now()
		out, errOut, code := runSolgate(t, c.env, append([]string{"power", "-u", "admin"}, c.args...)...)
		if code != 2 || !strings.Contains(errOut, c.want) || out != "" {
			t.Errorf("power %q: exit %d, stdout %q, stderr %q; want exit 2 and %q", c.args, code, out, errOut, c.want)
		}
		if strings.Contains(errOut, "no answer") || strings.Contains(errOut, "lookup") {
			t.Errorf("power %q contacted a BMC: %q (%v)", c.args, errOut, time.Since(start))
		}
	}
}

// TestPowerReportsCipherSuite: --json and -v say which suite each session
// used, so that a fallback is visible.
func TestPowerReportsCipherSuite(t *testing.T) {
	t.Parallel()
	addrs := bmcsimProcess(t, 2, "--cipher-suites", "3")
	env := []string{"IPMI_PASSWORD=" + bmcsimPassword}
	out, errOut, code := runSolgate(t, env, "power", "-u", "admin", strings.Join(addrs, ","), "status", "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var res []struct {
		Host        string
		CipherSuite *int `json:"cipher_suite"`
	}
	must(t, json.Unmarshal([]byte(out), &res))
	if len(res) != 2 || res[0].CipherSuite == nil || *res[0].CipherSuite != 3 || res[1].CipherSuite == nil || *res[1].CipherSuite != 3 {
		t.Errorf("json %s", out)
	}
	out, _, _ = runSolgate(t, env, "power", "-u", "admin", addrs[0], "status", "-v")
	if strings.TrimSpace(out) != addrs[0]+": on (cipher suite 3)" {
		t.Errorf("-v: %q", out)
	}
}
