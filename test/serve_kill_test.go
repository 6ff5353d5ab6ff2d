package test

import (
	"context"
	"errors"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/solgate/solgate/ipmilan/bmcsim"
	"github.com/solgate/solgate/test/internal/testkit"
)

// TestServeKill9ReclaimsItsPayload: solgate serve is killed with SIGKILL
// while a console streams, leaving its SOL payload active on the BMC
// (whose session timeout is 60 s). Started again, it recognises its own
// session from state_dir and takes the payload back at once, and the log
// lost at most the last second before the kill.
func TestServeKill9ReclaimsItsPayload(t *testing.T) {
	t.Parallel()
	sim := startSimBMC(t, bmcsim.Config{PowerOn: true, SessionTimeout: 60 * time.Second, SOL: bmcsim.SOLConfig{NoBootText: true}})
	dir := t.TempDir()
	cfg := writeServeConfig(t, dir, `reconnect_min = "200ms"
reconnect_max = "2s"`, []servedConsole{{name: "node1", bmc: sim.Addr, extra: `steal = "never"`}})
	p := startServe(t, cfg)
	p.waitLog(`"msg":"conserver: SOL up"`, 20*time.Second)

	const rate = 20000
	ctx, cancel := context.WithCancel(context.Background())
	streamDone := make(chan error, 1)
	go func() { streamDone <- sim.Stream(ctx, rate, 1<<30) }()
	time.Sleep(3 * time.Second) // streaming, and the session recorded
	p.kill()
	killed := time.Now()
	acked := int(sim.Stats().SOLBytesSent) // what the dead daemon had received
	if st := sim.Stats(); st.SOLActive != 1 {
		t.Fatalf("after kill -9 the BMC has %d SOL payloads active, want the stale one", st.SOLActive)
	}

	p2 := startServe(t, cfg)
	p2.waitLog(`"msg":"conserver: SOL up"`, 20*time.Second)
	took := time.Since(killed)
	if !strings.Contains(p2.stderr.String(), "reclaimed the SOL payload from this daemon's previous session") {
		t.Fatal("the new daemon did not say it reclaimed its payload")
	}
	if took > 10*time.Second {
		t.Fatalf("reconnected %v after the kill: it waited for the BMC instead of reclaiming", took)
	}
	if st := sim.Stats(); st.SOLSteals != 1 || st.SOLActive != 1 {
		t.Fatalf("BMC stats %+v: want one takeover of the stale payload", st)
	}
	t.Logf("payload reclaimed %v after the kill (steal = never: only its own)", took.Round(time.Millisecond))
	time.Sleep(2 * time.Second)
	cancel()
	<-streamDone
	if _, err := p2.stop(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	res := checkStream(t, dir+"/log", "node1")
	switch len(res.offsets) {
	case 0:
		// Everything the killed daemon received had reached the log
		// (its last flush came after its last byte): nothing lost.
		t.Logf("no jump: the killed daemon had logged all it received (%d bytes)", acked)
		if res.next <= acked {
			t.Fatal("nothing logged after the restart")
		}
		return
	case 1:
	default:
		t.Fatalf("jumps %v, want at most one, at the restart", res.offsets)
	}
	j := res.offsets[0]
	lost := acked - j.from
	t.Logf("the killed daemon had received %d bytes and logged %d: %d lost (%.2f s of output); the new one resumed at %d",
		acked, j.from, lost, float64(lost)/rate, j.to)
	if lost < 0 || lost > rate+4096 {
		t.Fatalf("%d bytes lost at the kill, want at most a second's worth (%d)", lost, rate)
	}
	if res.next <= j.to {
		t.Fatal("nothing logged after the restart")
	}
}

// TestServeSecondSignalExitsNow: a SIGTERM while solgate serve waits for a
// BMC that no longer answers to deactivate its payload ends the daemon at
// once, with a daemon log line saying why and exit status 143, instead of
// the signal's default action killing it without a word.
func TestServeSecondSignalExitsNow(t *testing.T) {
	t.Parallel()
	sim := startSimBMC(t, bmcsim.Config{PowerOn: true, SOL: bmcsim.SOLConfig{NoBootText: true}})
	dir := t.TempDir()
	cfg := writeServeConfig(t, dir, `shutdown_timeout = "30s"`, []servedConsole{{name: "node1", bmc: sim.Addr}})
	p := startServe(t, cfg)
	p.waitLog(`"msg":"conserver: SOL up"`, 20*time.Second)
	must(t, sim.SetFaults(bmcsim.Faults{Freeze: true})) // the deactivation gets no answer: the stop waits
	must(t, p.cmd.Process.Signal(syscall.SIGTERM))
	p.waitLog(`"msg":"serve: stopping"`, 10*time.Second)
	time.Sleep(300 * time.Millisecond)
	start := time.Now()
	must(t, p.cmd.Process.Signal(syscall.SIGTERM))
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		t.Fatal("solgate serve still running 10 s after a second SIGTERM")
	}
	var ee *exec.ExitError
	if !errors.As(p.err, &ee) || ee.ExitCode() != 143 {
		t.Errorf("exit: %v, want status 143", p.err)
	}
	if !strings.Contains(p.stderr.String(), `"msg":"serve: second signal while stopping: exiting now; SOL payloads still active are reclaimed at the next start"`) {
		t.Errorf("no log line for the second signal:\n%s", testkit.Tail(p.stderr.String(), 1500))
	}
	t.Logf("exited %v after the second SIGTERM", time.Since(start).Round(time.Millisecond))
}
