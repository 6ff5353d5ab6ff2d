package test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"github.com/solgate/solgate/ipmilan/bmcsim"
	"github.com/solgate/solgate/test/internal/testkit"
)

// Benchmarks of the SSH gateway. The machine is shared and loaded: the
// figures are for comparing within one run, not absolute.

// BenchmarkGatewayEcho: keystroke echo through OpenSSH -> gateway ->
// console manager -> SOL -> ipmi_sim, against solgate sol straight to a
// sim in the same run; each keystroke is typed after the previous one's
// echo. The gateway's cost is the difference of the medians.
func BenchmarkGatewayEcho(b *testing.B) {
	needTool(b, "ipmi_sim")
	needTool(b, "ssh")
	var direct, gateway []time.Duration
	b.Run("solgate-sol", func(b *testing.B) {
		direct, _ = solAttempts(b, "solgate", func() ([]time.Duration, error) { return solEchoOnce(b, "solgate") })
		reportEcho(b, "solgate sol", direct)
	})
	b.Run("ssh-gateway", func(b *testing.B) {
		gateway, _ = solAttempts(b, "solgate", func() ([]time.Duration, error) { return gatewayEchoOnce(b) })
		reportEcho(b, "ssh gateway", gateway)
	})
	if len(direct) > 0 && len(gateway) > 0 {
		d := percentile(gateway, 0.5) - percentile(direct, 0.5)
		b.Logf("the gateway adds %.2f ms to the median keystroke echo (machine shared and loaded)", ms(d))
	}
}

func reportEcho(b *testing.B, name string, rtts []time.Duration) {
	slices.Sort(rtts)
	p50, p99 := percentile(rtts, 0.50), percentile(rtts, 0.99)
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(ms(p50), "echo-p50-ms")
	b.ReportMetric(ms(p99), "echo-p99-ms")
	b.Logf("%-12s echo median %.2f ms  p99 %.2f ms  (min %.2f, max %.2f, %d keystrokes)",
		name, ms(p50), ms(p99), ms(rtts[0]), ms(rtts[len(rtts)-1]), len(rtts))
}

// gatewayEchoOnce is solEchoOnce with the client being OpenSSH attached
// through solgate serve.
func gatewayEchoOnce(b *testing.B) ([]time.Duration, error) {
	sim, serial := startIPMISimSOL(b)
	defer killBenchSim(sim)
	defer serial.Close()
	go echoNode(serial)
	g := startGateway(b, gwOptions{external: map[string]string{"node1": sim.Addr}, password: "secret", cipherSuite: 3})
	defer g.stop()
	cmd := exec.Command(needTool(b, "ssh"), g.sshArgs("alice", "-t", "node1@127.0.0.1")...)
	p := launchSOLClient(b, "ssh-gateway", cmd, true)
	defer p.stop()
	if err := awaitConsole(p, serial, "\r\n@@ready@@\r\n"); err != nil {
		return nil, err
	}
	return echoRTTs(p)
}

// TestBenchGatewayAttach: the time from starting ssh to the first
// replayed byte on its stdout (the handshake, the attach, the replay read
// from the log), over 20 rounds.
func TestBenchGatewayAttach(t *testing.T) {
	needBench(t)
	ssh := needTool(t, "ssh")
	g := startGateway(t, gwOptions{})
	var first, replay []time.Duration
	for round := range 20 {
		// A fresh line to find in the replay (the attach and detach
		// events of the rounds before are replayed too).
		marker := fmt.Sprintf("replayed-marker-%d", round)
		g.bmcs["node1"].HostWrite([]byte(marker + "\r\n"))
		waitFor(t, "the marker in the log", 20*time.Second, func() bool {
			out, _, _ := g.run("alice", "node1", "tail -n 5")
			return strings.Contains(out, marker)
		})
		cmd := exec.Command(ssh, g.sshArgs("carol", "-tt", "node1@127.0.0.1")...)
		out := &consoleOut{notify: make(chan struct{}, 1)}
		pr, pw, err := os.Pipe()
		must(t, err)
		cmd.Stdout = pw
		stdin, _ := cmd.StdinPipe()
		t0 := time.Now()
		must(t, cmd.Start())
		pw.Close()
		go out.fill(pr)
		tFirst, ok := out.wait(30*time.Second, func(d []byte) bool { return len(d) > 0 })
		if !ok {
			t.Fatal("no output from ssh")
		}
		tReplay, ok := out.wait(30*time.Second, func(d []byte) bool { return bytes.Contains(d, []byte(marker)) })
		if !ok {
			t.Fatalf("no replay: %q", out.bytesFrom(0))
		}
		first = append(first, tFirst.Sub(t0))
		replay = append(replay, tReplay.Sub(t0))
		stdin.Close()
		cmd.Process.Kill()
		cmd.Wait()
		pr.Close()
	}
	slices.Sort(first)
	slices.Sort(replay)
	t.Logf("attach: ssh start to first byte median %.1f ms (max %.1f); to the first replayed line median %.1f ms (max %.1f); 20 rounds (machine shared and loaded)",
		ms(percentile(first, 0.5)), ms(first[len(first)-1]), ms(percentile(replay, 0.5)), ms(replay[len(replay)-1]))
}

// procTimes returns a process's CPU time and resident memory.
func procTimes(t testing.TB, pid int) (cpu time.Duration, rss int64) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	must(t, err)
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+2:]))
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	cpu = time.Duration(ut+st) * (time.Second / 100) // USER_HZ
	s, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	must(t, err)
	for _, l := range strings.Split(string(s), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			rss = kb << 10
		}
	}
	return cpu, rss
}

// spySession is one read-only stream collecting what it receives.
type spySession struct {
	s   *gossh.Session
	out testkit.LockedBuffer
}

func openSpies(t *testing.T, g *gwDaemon, consoles []string, parallel int) []*spySession {
	t.Helper()
	spies := make([]*spySession, len(consoles))
	var wg sync.WaitGroup
	sem := make(chan struct{}, parallel)
	var failed atomic.Value
	for i, name := range consoles {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			// Spread over four people: the gateway caps sessions per
			// person (256 by default).
			person := []string{"alice", "bob", "carol", "erin"}[i%4]
			c, err := g.client(name, gossh.PublicKeys(g.keys[person]), "")
			if err != nil {
				failed.CompareAndSwap(nil, err)
				return
			}
			s, err := c.NewSession()
			if err != nil {
				failed.CompareAndSwap(nil, err)
				return
			}
			sp := &spySession{s: s}
			s.Stdout = &sp.out
			if err := s.Start("spy"); err != nil {
				failed.CompareAndSwap(nil, err)
				return
			}
			spies[i] = sp
			t.Cleanup(func() { s.Close(); c.Close() })
		}()
	}
	wg.Wait()
	if err, _ := failed.Load().(error); err != nil {
		t.Fatalf("opening %d sessions: %v", len(consoles), err)
	}
	return spies
}

// TestBenchGatewayFanout: 100 sessions on one console printing at 115200
// baud (11.5 KB/s) for 10 s: every session receives every byte, in
// order; the daemon's CPU while it streams.
func TestBenchGatewayFanout(t *testing.T) {
	needBench(t)
	const sessions, rate, seconds = 100, 11520, 10
	g := startGateway(t, gwOptions{sol: bmcsim.SOLConfig{NoBootText: true, NoEcho: true}})
	names := make([]string, sessions)
	for i := range names {
		names[i] = "node1"
	}
	spies := openSpies(t, g, names, 16)
	waitFor(t, "every session attached", 60*time.Second, func() bool {
		out, _, _ := g.run("alice", "node1", "info --json")
		return strings.Contains(out, fmt.Sprintf(`"attached": %d`, sessions))
	})
	const mark = "@@stream@@\r\n"
	g.bmcs["node1"].HostWrite([]byte(mark))
	want := bmcsim.AppendStreamText(nil, 0, rate*seconds)
	cpu0, _ := procTimes(t, g.cmd.Process.Pid)
	t0 := time.Now()
	must(t, g.bmcs["node1"].Stream(context.Background(), rate, len(want)))
	complete := func(sp *spySession) bool {
		s := sp.out.String()
		i := strings.Index(s, mark)
		return i >= 0 && len(s)-i-len(mark) >= len(want)
	}
	waitFor(t, "every session to receive the stream", 60*time.Second, func() bool {
		for _, sp := range spies {
			if !complete(sp) {
				return false
			}
		}
		return true
	})
	elapsed := time.Since(t0)
	cpu1, rss := procTimes(t, g.cmd.Process.Pid)
	for i, sp := range spies {
		s := sp.out.String()
		got := s[strings.Index(s, mark)+len(mark):]
		if got[:len(want)] != string(want) {
			t.Fatalf("session %d: the stream differs: %s", i, streamDiff([]byte(got[:len(want)]), want))
		}
	}
	t.Logf("fan-out: %d sessions on one console at %d B/s for %v: every session got all %d bytes in order; daemon CPU %v (%.0f%% of a core), RSS %d MiB (machine shared and loaded; the %d clients run on the same 2 cores)",
		sessions, rate, elapsed.Round(time.Millisecond), len(want), (cpu1 - cpu0).Round(time.Millisecond),
		100*(cpu1-cpu0).Seconds()/elapsed.Seconds(), rss>>20, sessions)
}

// TestBenchGatewayScale: 1,000 consoles, one session on each: the
// daemon's resident memory per session.
func TestBenchGatewayScale(t *testing.T) {
	needBench(t)
	const n = 1000
	g := startGateway(t, gwOptions{consoles: n, sol: bmcsim.SOLConfig{NoBootText: true}})
	time.Sleep(2 * time.Second) // let start-up garbage be collected
	_, rss0 := procTimes(t, g.cmd.Process.Pid)
	t0 := time.Now()
	spies := openSpies(t, g, g.names, 16)
	took := time.Since(t0)
	waitFor(t, "every banner", 120*time.Second, func() bool {
		for _, sp := range spies {
			if !strings.Contains(sp.out.String(), "you are ro") {
				return false
			}
		}
		return true
	})
	time.Sleep(2 * time.Second)
	_, rss1 := procTimes(t, g.cmd.Process.Pid)
	t.Logf("scale: %d consoles, RSS %d MiB before the sessions, %d MiB with one session on each: %.1f KiB per session; %d sessions opened in %v, 16 at a time (machine shared and loaded)",
		n, rss0>>20, rss1>>20, float64(rss1-rss0)/n/1024, n, took.Round(time.Millisecond))
}
