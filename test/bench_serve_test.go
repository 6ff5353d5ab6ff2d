package test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/solgate/solgate/logstore"
	"github.com/solgate/solgate/test/internal/testkit"
)

// The daemon at scale (make bench; SOLGATE_BENCH=1): solgate serve against
// fleets of simulated BMCs in other processes (several solgate bmcsim
// processes on consecutive loopback ports). Sizes: SOLGATE_BENCH_CONSOLES
// (default 10,000) idle consoles, SOLGATE_BENCH_BUSY (default 1,000)
// consoles at 115200 baud for SOLGATE_BENCH_SECONDS (default 30).

func benchEnvInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// fleetProcs are solgate bmcsim processes.
type fleetProcs struct {
	cmds    []*exec.Cmd
	logs    []string
	addrs   []string // every BMC's address, in order
	packets int      // datagrams the BMCs received, counted by stop
}

// bmcsimFleet starts n BMCs as solgate bmcsim processes of at most per
// BMCs each, on loopback ports the kernel picks (a fixed range would meet
// other tests' sockets on a shared machine), and returns when all listen.
func bmcsimFleet(t *testing.T, n, per int, extra ...string) *fleetProcs {
	t.Helper()
	dir := t.TempDir()
	f := &fleetProcs{}
	for i := 0; i*per < n; i++ {
		k := min(per, n-i*per)
		hosts := filepath.Join(dir, fmt.Sprintf("hosts%d", i))
		args := append([]string{"bmcsim", "-n", strconv.Itoa(k), "--listen", "127.0.0.1:0",
			"--hosts-file", hosts, "--no-boot-text"}, extra...)
		cmd := exec.Command(solgateBin(t), args...)
		cmd.Env = []string{"IPMI_PASSWORD=" + bmcsimPassword}
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		logf, err := os.Create(filepath.Join(dir, fmt.Sprintf("bmcsim%d.log", i)))
		must(t, err)
		cmd.Stdout, cmd.Stderr = logf, logf
		must(t, cmd.Start())
		f.cmds = append(f.cmds, cmd)
		f.logs = append(f.logs, logf.Name())
		t.Cleanup(func() {
			cmd.Process.Signal(syscall.SIGTERM)
			cmd.Wait()
			logf.Close()
		})
		deadline := time.Now().Add(60 * time.Second)
		for len(readHosts(hosts)) != k {
			if time.Now().After(deadline) {
				b, _ := os.ReadFile(logf.Name())
				t.Fatalf("bmcsim -n %d did not start:\n%s", k, b)
			}
			time.Sleep(50 * time.Millisecond)
		}
		f.addrs = append(f.addrs, readHosts(hosts)...)
	}
	return f
}

// consolesOn names one console per BMC: node1, node2, ...
func consolesOn(addrs []string) []servedConsole {
	out := make([]servedConsole, len(addrs))
	for i, a := range addrs {
		out[i] = servedConsole{name: fmt.Sprintf("node%d", i+1), bmc: a}
	}
	return out
}

// stop ends the simulators and returns how many sessions and SOL
// payloads they still had, and the console output they delivered.
func (f *fleetProcs) stop(t *testing.T) (open, active, delivered int) {
	t.Helper()
	for _, c := range f.cmds {
		c.Process.Signal(syscall.SIGTERM)
	}
	re := regexp.MustCompile(`(\d+) packets, .*\((\d+) still open\).*\((\d+) still active\), (\d+) bytes of console output delivered`)
	for i, c := range f.cmds {
		c.Wait()
		b, _ := os.ReadFile(f.logs[i])
		m := re.FindStringSubmatch(string(b))
		if m == nil {
			t.Fatalf("bmcsim %d: no final counts in its output:\n%s", i, testkit.Tail(string(b), 500))
		}
		p, _ := strconv.Atoi(m[1])
		o, _ := strconv.Atoi(m[2])
		a, _ := strconv.Atoi(m[3])
		d, _ := strconv.Atoi(m[4])
		f.packets += p
		open += o
		active += a
		delivered += d
	}
	return open, active, delivered
}

// procStat reads a process's resident memory (KiB), CPU time and open fds.
func procStat(t *testing.T, pid int) (rssKiB int, cpu time.Duration, fds int) {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	must(t, err)
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmRSS:" {
			rssKiB, _ = strconv.Atoi(f[1])
		}
	}
	b, err = os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	must(t, err)
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	ut, _ := strconv.Atoi(f[11])
	st, _ := strconv.Atoi(f[12])
	cpu = time.Duration(ut+st) * time.Second / 100 // USER_HZ
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	must(t, err)
	return rssKiB, cpu, len(ents)
}

// logTimes returns the time of every daemon log line (JSON) whose msg is
// msg.
func logTimes(t *testing.T, log, msg string) []time.Time {
	var out []time.Time
	sc := bufio.NewScanner(strings.NewReader(log))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		l := sc.Bytes()
		if !strings.Contains(string(l), `"msg":"`+msg+`"`) {
			continue
		}
		var rec struct {
			Time time.Time `json:"time"`
		}
		if json.Unmarshal(l, &rec) == nil {
			out = append(out, rec.Time)
		}
	}
	return out
}

// TestBenchServeIdle: N idle consoles (default 10,000) held by solgate
// serve: time from start to all connected, resident memory, fds and
// keepalive CPU per console; then a reload with one console changed; then
// SIGTERM, timed, with every BMC session closed.
func TestBenchServeIdle(t *testing.T) {
	needBench(t)
	n := benchEnvInt("SOLGATE_BENCH_CONSOLES", 10000)
	idle := time.Duration(benchEnvInt("SOLGATE_BENCH_IDLE_SECONDS", 60)) * time.Second
	fleet := bmcsimFleet(t, n+1, 2500) // one spare BMC for the reload
	dir := t.TempDir()
	server := ""
	if ka := os.Getenv("SOLGATE_BENCH_KEEPALIVE"); ka != "" { // e.g. 30s: BMCs with a 60 s session timeout
		server = fmt.Sprintf("ipmi_keepalive = %q", ka)
	}
	cfg := writeServeConfig(t, dir, server, consolesOn(fleet.addrs[:n]))
	// Only what the benchmark counts: info is one line per console event.
	b, _ := os.ReadFile(cfg)
	must(t, os.WriteFile(cfg, []byte(strings.Replace(string(b), `log_level = "debug"`, `log_level = "info"`, 1)), 0o640))
	start := time.Now()
	p := startServe(t, cfg)
	pid := p.cmd.Process.Pid
	deadline := time.Now().Add(5 * time.Minute)
	for p.countLog(`"msg":"conserver: SOL up"`) < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d consoles connected after 5 min", p.countLog(`"msg":"conserver: SOL up"`), n)
		}
		time.Sleep(200 * time.Millisecond)
	}
	ups := logTimes(t, p.stderr.String(), "conserver: SOL up")
	last := ups[len(ups)-1]
	connected := last.Sub(start)
	time.Sleep(5 * time.Second) // settle: the first frames written, idle files closed later
	rss, cpu0, fds := procStat(t, pid)
	time.Sleep(idle)
	rss2, cpu1, fds2 := procStat(t, pid)
	cpuPct := 100 * (cpu1 - cpu0).Seconds() / idle.Seconds()
	t.Logf("%d idle consoles (%s): all connected %v after start; RSS %d MiB (%.1f KiB per console), %d fds (%.2f per console); "+
		"idle CPU %.2f%% of one core over %v; RSS after %d MiB, %d fds",
		n, cmpOr(server, "default keepalive"), connected.Round(100*time.Millisecond), rss>>10, float64(rss)/float64(n), fds, float64(fds)/float64(n),
		cpuPct, idle, rss2>>10, fds2)
	if lost := p.countLog(`"msg":"conserver: SOL session lost"`); lost > 0 {
		t.Errorf("%d sessions lost while idle", lost)
	}

	// Reload: one console moves to the spare BMC.
	b, _ = os.ReadFile(cfg)
	text := string(b) + fmt.Sprintf("\n[[console]]\nname = \"spare\"\nbmc = %q\n", fleet.addrs[n])
	saved := time.Now()
	tmp := cfg + ".tmp"
	must(t, os.WriteFile(tmp, []byte(text), 0o640))
	must(t, os.Rename(tmp, cfg))
	p.waitLog(`"msg":"serve: configuration applied"`, 30*time.Second)
	applied := logTimes(t, p.stderr.String(), "serve: configuration applied")
	p.waitLog(`"msg":"conserver: SOL up","console":"spare"`, 30*time.Second)
	time.Sleep(2 * time.Second)
	ups2 := p.countLog(`"msg":"conserver: SOL up"`)
	t.Logf("reload of %d consoles with one added: applied %v after the save; SOL sessions opened since: %d",
		n+1, applied[0].Sub(saved).Round(time.Millisecond), ups2-n)
	if ups2 != n+1 {
		t.Errorf("%d SOL sessions opened in all, want %d: the reload reconnected others", ups2, n+1)
	}

	took, err := p.stop(60 * time.Second)
	if err != nil {
		t.Fatalf("serve after SIGTERM: %v", err)
	}
	m := regexp.MustCompile(`"msg":"conserver: all consoles stopped","consoles":(\d+),"took":(\d+)`).FindStringSubmatch(p.stderr.String())
	if m == nil {
		t.Fatal("no \"all consoles stopped\" in the daemon log")
	}
	ns, _ := strconv.ParseInt(m[2], 10, 64)
	t.Logf("SIGTERM with %d connected consoles: every payload deactivated and session closed in %v; the process exited after %v",
		n+1, time.Duration(ns), took.Round(time.Millisecond))
	if strings.Contains(p.stderr.String(), "did not finish in time") {
		t.Errorf("shutdown: some consoles did not finish within shutdown_timeout")
	}
	if open, active, _ := fleet.stop(t); open != 0 || active != 0 {
		t.Errorf("after SIGTERM the BMCs still had %d sessions open and %d SOL payloads active", open, active)
	} else {
		t.Logf("after SIGTERM no BMC had a session open or a SOL payload active")
	}
}

// TestBenchServeBusy: SOLGATE_BENCH_BUSY consoles (default 1,000) printing
// at 115200 baud (11,520 bytes/s each) at once for SOLGATE_BENCH_SECONDS
// (default 30): daemon CPU, and every byte in the logs.
func TestBenchServeBusy(t *testing.T) {
	needBench(t)
	n := benchEnvInt("SOLGATE_BENCH_BUSY", 1000)
	secs := benchEnvInt("SOLGATE_BENCH_SECONDS", 30)
	const rate = 11520
	fleet := bmcsimFleet(t, n, 500, "--stream", strconv.Itoa(rate))
	dir := t.TempDir()
	cfg := writeServeConfig(t, dir, "", consolesOn(fleet.addrs))
	b, _ := os.ReadFile(cfg)
	must(t, os.WriteFile(cfg, []byte(strings.Replace(string(b), `log_level = "debug"`, `log_level = "info"`, 1)), 0o640))
	p := startServe(t, cfg)
	pid := p.cmd.Process.Pid
	deadline := time.Now().Add(2 * time.Minute)
	for p.countLog(`"msg":"conserver: SOL up"`) < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d consoles connected", p.countLog(`"msg":"conserver: SOL up"`), n)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// Every simulated host streams from its start, waiting while no
	// console is connected (it loses nothing before solgate is there).
	_, cpu0, _ := procStat(t, pid)
	t0 := time.Now()
	time.Sleep(time.Duration(secs) * time.Second)
	rss, cpu1, fds := procStat(t, pid)
	t1 := time.Now()
	cpuPct := 100 * (cpu1 - cpu0).Seconds() / t1.Sub(t0).Seconds()
	if _, err := p.stop(60 * time.Second); err != nil {
		t.Fatalf("serve after SIGTERM: %v", err)
	}
	_, _, delivered := fleet.stop(t)
	var total, jumps, window int
	for i := range n {
		name := fmt.Sprintf("node%d", i+1)
		res := checkStream(t, filepath.Join(dir, "log"), name)
		total += res.bytes
		jumps += res.jumps
		if res.jumps != 0 {
			t.Errorf("node%d: %d jumps in the stream: %v", i+1, res.jumps, res.offsets)
		}
		window += loggedBetween(t, filepath.Join(dir, "log"), name, t0, t1)
	}
	mbps := float64(window) / t1.Sub(t0).Seconds() / 1e6
	t.Logf("%d consoles at 115200 baud for %d s: %d bytes delivered by the BMCs in %d packets received (%.0f bytes per packet), %d logged, %d jumps; "+
		"while measured: %.2f MB/s (%.1f kB/s per console), daemon CPU %.0f%% of one core (%.1f%% of one core per MB/s, %.1f µs per BMC packet), RSS %d MiB, %d fds",
		n, secs, delivered, fleet.packets, float64(delivered)/float64(fleet.packets), total, jumps,
		mbps, mbps*1000/float64(n), cpuPct, cpuPct/mbps, cpuPct/100*1e6/(mbps*1e6*float64(fleet.packets)/float64(delivered)), rss>>10, fds)
	// The BMCs count what they saw acknowledged: at SIGTERM a console's
	// last packet may be logged without its acknowledgement counted.
	if total < delivered || total > delivered+n*255 {
		t.Errorf("%d bytes delivered, %d logged", delivered, total)
	}
}

// loggedBetween counts the console output bytes logged for console with
// record times in [since, until).
func loggedBetween(t *testing.T, logDir, console string, since, until time.Time) int {
	t.Helper()
	s, err := logstore.Open(logDir, logstore.Options{ReadOnly: true})
	must(t, err)
	defer s.Close()
	n := 0
	for rec, err := range s.Records(context.Background(), console, logstore.Query{Since: since, Until: until}) {
		if err != nil {
			t.Fatalf("%s: read log: %v", console, err)
		}
		if rec.Event == "" {
			n += len(rec.Data)
		}
	}
	return n
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
