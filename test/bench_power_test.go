package test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/solgate/solgate/test/internal/testkit"
)

// bmcsimProcess runs `solgate bmcsim -n N` as its own process (so its CPU
// is not counted against the client) and returns the BMC addresses.
func bmcsimProcess(tb testing.TB, n int, extra ...string) []string {
	tb.Helper()
	dir := tb.TempDir()
	hosts := filepath.Join(dir, "hosts")
	args := append([]string{"bmcsim", "-n", fmt.Sprint(n), "--listen", "127.0.0.1:0", "--hosts-file", hosts}, extra...)
	cmd := exec.Command(solgateBin(tb), args...)
	cmd.Env = []string{"IPMI_PASSWORD=" + bmcsimPassword}
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	log, err := os.Create(filepath.Join(dir, "bmcsim.log"))
	must(tb, err)
	cmd.Stdout, cmd.Stderr = log, log
	must(tb, cmd.Start())
	tb.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
		log.Close()
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		if addrs := readHosts(hosts); len(addrs) == n {
			return addrs
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(log.Name())
			tb.Fatalf("bmcsim -n %d did not start in 30s:\n%s", n, b)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func readHosts(path string) []string {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if fields := strings.Fields(sc.Text()); len(fields) == 2 {
			out = append(out, fields[1])
		}
	}
	return out
}

// timed runs a command and returns its wall time, CPU time (user+system
// of the process and its children) and combined output.
func timed(tb testing.TB, env []string, name string, args ...string) (wall, cpu time.Duration, out string, err error) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append([]string{"PATH=/usr/bin:/bin:/usr/sbin:/sbin"}, env...)
	start := time.Now()
	b, err := cmd.CombinedOutput()
	wall = time.Since(start)
	if cmd.ProcessState != nil {
		cpu = cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	}
	return wall, cpu, string(b), err
}

// BenchmarkPowerStatusFleet: `solgate power HOSTS status` over 1,000
// simulated BMCs in another process, against FreeIPMI ipmipower --stat
// over the same BMCs in the same run: wall time and CPU for both.
func BenchmarkPowerStatusFleet(b *testing.B) {
	const n = 1000
	addrs := bmcsimProcess(b, n)
	hostlist := strings.Join(addrs, ",")
	env := []string{"IPMI_PASSWORD=" + bmcsimPassword}
	sg := solgateBin(b)
	// Warm up the simulator (first handshakes allocate its sessions).
	timed(b, env, sg, "power", "-u", "admin", hostlist, "status")

	check := func(tool, out string, err error, want string) {
		if err != nil {
			b.Fatalf("%s: %v\n%s", tool, err, tail(out))
		}
		if c := strings.Count(out, want); c != n {
			b.Fatalf("%s: %d of %d hosts answered %q\n%s", tool, c, n, want, tail(out))
		}
	}
	type row struct {
		name      string
		wall, cpu time.Duration
	}
	var rows []row
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"solgate (auto suite: 17)", []string{"power", "-u", "admin", hostlist, "status"}},
		{"solgate -C 3", []string{"power", "-u", "admin", "-C", "3", hostlist, "status"}},
		{"solgate -C 3 --fanout 256", []string{"power", "-u", "admin", "-C", "3", "--fanout", "256", hostlist, "status"}},
	} {
		wall, cpu, out, err := timed(b, env, sg, tc.args...)
		check(tc.name, out, err, ": on\n")
		rows = append(rows, row{tc.name, wall, cpu})
	}
	if p := testkit.FindTool("ipmipower"); p != "" {
		for _, tc := range []struct {
			name string
			args []string
		}{
			{"ipmipower 2.0 (suite 3)", []string{"-D", "LAN_2_0", "-h", hostlist, "-u", "admin", "-p", bmcsimPassword, "--stat"}},
			{"ipmipower 2.0 -F 256", []string{"-D", "LAN_2_0", "-F", "256", "-h", hostlist, "-u", "admin", "-p", bmcsimPassword, "--stat"}},
		} {
			wall, cpu, out, err := timed(b, nil, p, tc.args...)
			check(tc.name, out, err, ": on\n")
			rows = append(rows, row{tc.name, wall, cpu})
		}
	} else if os.Getenv("SOLGATE_REQUIRE_INTEROP") != "" {
		b.Fatal("ipmipower not installed")
	}
	for _, r := range rows {
		b.Logf("%-28s %4d BMCs: wall %7.1f ms, CPU %7.1f ms", r.name, n, msec(r.wall), msec(r.cpu))
	}
	b.ReportMetric(msec(rows[0].wall), "solgate-wall-ms")
	b.ReportMetric(msec(rows[0].cpu), "solgate-cpu-ms")
	if len(rows) > 3 {
		b.ReportMetric(msec(rows[3].wall), "ipmipower-wall-ms")
		b.ReportMetric(msec(rows[3].cpu), "ipmipower-cpu-ms")
	}
}

// BenchmarkPowerStatusOne: one status against one BMC, solgate against
// ipmitool and ipmipower (median of 15 runs each).
func BenchmarkPowerStatusOne(b *testing.B) {
	addr := bmcsimProcess(b, 1)[0]
	host, port, _ := strings.Cut(addr, ":")
	env := []string{"IPMI_PASSWORD=" + bmcsimPassword}
	tools := []struct {
		name string
		bin  string
		env  []string
		args []string
	}{
		{"solgate power", solgateBin(b), env, []string{"power", "-u", "admin", "-C", "3", addr, "status"}},
		{"ipmitool -C 3", "ipmitool", nil, []string{"-I", "lanplus", "-C", "3", "-H", host, "-p", port, "-U", "admin", "-P", bmcsimPassword, "chassis", "power", "status"}},
		{"ipmipower 2.0", "ipmipower", nil, []string{"-D", "LAN_2_0", "-h", addr, "-u", "admin", "-p", bmcsimPassword, "--stat"}},
	}
	for _, tl := range tools {
		bin := tl.bin
		if !strings.HasPrefix(bin, "/") {
			if bin = testkit.FindTool(bin); bin == "" {
				b.Logf("%s not installed: skipped", tl.bin)
				continue
			}
		}
		var walls []time.Duration
		for range 15 {
			wall, _, out, err := timed(b, tl.env, bin, tl.args...)
			if err != nil || !strings.Contains(strings.ToLower(out), "on") {
				b.Fatalf("%s: %v\n%s", tl.name, err, out)
			}
			walls = append(walls, wall)
		}
		slices.Sort(walls)
		med := walls[len(walls)/2]
		b.Logf("%-14s one BMC: median %.1f ms (min %.1f, max %.1f)", tl.name, msec(med), msec(walls[0]), msec(walls[len(walls)-1]))
		b.ReportMetric(msec(med), strings.Fields(tl.name)[0]+"-ms")
	}
}

func msec(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func tail(s string) string {
	if len(s) > 2000 {
		return "..." + s[len(s)-2000:]
	}
	return s
}
