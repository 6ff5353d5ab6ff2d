package scale

import (
	"fmt"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/solgate/solgate/test/internal/testkit"
)

// comma writes n with thousands separators.
func comma(n int) string {
	s := strconv.Itoa(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// perConsole formats a total divided among n consoles.
func perKiB(kib, n int) string { return fmt.Sprintf("%.1f KiB", float64(kib)/float64(max(n, 1))) }

// TestHold: N idle consoles (10,000 at full size) held for a while: the
// time until every one is connected, resident memory, CPU, open files
// and threads, and reconnects, which must be none. Then SIGTERM: every
// session closed and payload deactivated on the BMCs.
func TestHold(t *testing.T) {
	scenario(t)
	n := knob("HOLD_CONSOLES", 40, 10000)
	hold := knobDuration("HOLD_SECONDS", 2*time.Second, 10*time.Minute)
	rp := newReport(t, "hold", "solgate", fmt.Sprintf("%s idle consoles, %v", comma(n), hold), "0 reconnects")
	f := newFleet(t, n, knob("PER_PROCESS", 20, 2500), "--no-boot-text")
	cfg := newServeConfig(t, f, "")
	p := startServe(t, cfg.write(t), filepath.Join(cfg.dir, "serve.log"))
	took := p.waitUp(n, 5*time.Minute)
	rp.add("all connected %v after start", took.Round(100*time.Millisecond))
	time.Sleep(settle())
	s := startSampler(p.pid(), 5*time.Second)
	time.Sleep(hold)
	first, last, peak := s.stop()
	p.log.update()
	lost := p.log.count("conserver: SOL session lost")
	reconnects := p.log.count("conserver: SOL up") - n
	rp.add("RSS %s (%s per console; %s at the start of the hold, peak %s)", mib(last.rssKiB), perKiB(last.rssKiB, n), mib(first.rssKiB), mib(peak.rssKiB))
	rp.add("CPU %.1f%% of one core", cpuPct(first, last))
	rp.add("%s fds (%.2f per console), %d threads", comma(last.fds), float64(last.fds)/float64(n), last.threads)
	rp.add("%d reconnects", reconnects)
	if lost > 0 || reconnects > 0 {
		t.Errorf("%d sessions lost, %d reconnects while idle (want none)", lost, reconnects)
	}
	stopStart := time.Now()
	if err := p.stop(time.Minute); err != nil {
		t.Errorf("SIGTERM: %v", err)
	}
	rp.add("SIGTERM: exited after %v", time.Since(stopStart).Round(100*time.Millisecond))
	st, err := f.stop()
	must(t, err)
	if st.open != 0 || st.active != 0 {
		t.Errorf("after SIGTERM the BMCs still had %d sessions open and %d SOL payloads active", st.open, st.active)
	}
	checkDaemonLog(t, p)
}

// TestHoldConman: the same for conmand, at the largest size it manages
// here (3,000 at full size): it needs about 6 descriptors a console, and
// it raises its open-file limit only to the hard limit, 20,000 here; at
// 4,000 it connects about 3,300 consoles, then fails the rest with
// "internal error" and exits ("Unable to close object ...: Bad file
// descriptor").
func TestHoldConman(t *testing.T) {
	scenario(t)
	requireTool(t, "conmand")
	n := knob("HOLD_CONMAN_CONSOLES", 40, 3000)
	hold := knobDuration("HOLD_SECONDS", 2*time.Second, 10*time.Minute)
	rp := newReport(t, "hold", "conman", fmt.Sprintf("%s idle consoles, %v", comma(n), hold), "0 reconnects")
	f := newFleet(t, n, knob("PER_PROCESS", 20, 2500), "--no-boot-text")
	start := time.Now()
	c := startConman(t, f)
	wait := 5 * time.Minute
	if !full {
		wait = 30 * time.Second
	}
	up := c.waitConnected(n, wait)
	if up < n {
		rp.add("%s of %s connected after %v", comma(up), comma(n), time.Since(start).Round(time.Second))
	} else {
		rp.add("all connected %v after start", time.Since(start).Round(100*time.Millisecond))
	}
	if !c.running() {
		t.Fatalf("conmand exited")
	}
	time.Sleep(settle())
	s := startSampler(c.pid(), 5*time.Second)
	time.Sleep(hold)
	first, last, peak := s.stop()
	lost := c.count("] disconnected from <")
	reconnects := c.connected() - up
	rp.add("RSS %s (%s per console; peak %s)", mib(last.rssKiB), perKiB(last.rssKiB, n), mib(peak.rssKiB))
	rp.add("CPU %.1f%% of one core", cpuPct(first, last))
	rp.add("%s fds, %d threads", comma(last.fds), last.threads)
	rp.add("%d disconnects, %d reconnects", lost, reconnects)
	c.stop()
	if _, err := f.stop(); err != nil {
		t.Error(err)
	}
	if up == 0 {
		t.Fatal("conmand connected no console")
	}
}

// pause is a scenario's few seconds of ordinary operation before and
// after a fault.
func pause() time.Duration {
	if full {
		return 10 * time.Second
	}
	return 2 * time.Second
}

// settle is the pause after every console connected, before measuring.
func settle() time.Duration {
	if full {
		return 10 * time.Second
	}
	return time.Second
}

// checkDaemonLog fails the test on daemon log lines that are not JSON (a
// panic, a race report) or are errors.
func checkDaemonLog(t *testing.T, p *serveProc) {
	t.Helper()
	p.log.update()
	if bad := p.log.notJSON(); len(bad) > 0 {
		t.Errorf("%d daemon log lines are not JSON (a panic or race report?), the first: %s", len(bad), testkit.Tail(bad[0], 2000))
	}
	p.log.mu.Lock()
	errs := append([]string(nil), p.log.errors...)
	p.log.mu.Unlock()
	if len(errs) > 0 {
		t.Errorf("%d ERROR lines in the daemon log, the first: %s", len(errs), errs[0])
	}
}
