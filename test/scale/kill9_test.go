package scale

import (
	"fmt"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// relpTarget is the [[syslog]] entry for a private rsyslog over RELP,
// the history included (a console's first lines may be written before
// the shipper starts).
func relpTarget(r *rsyslogPeer) string {
	return fmt.Sprintf("[[syslog]]\naddress = \"relp://%s\"\nformat = \"rfc5424\"\nbackfill = true\n\n", r.relp)
}

// syslogMissing compares the stream lines each console's log holds with
// what rsyslog received: the lines it lacks (a few named), and the lines
// it got more than once.
func syslogMissing(lt logTotals, got map[string]map[int]int) (missing int, examples []string, twice int) {
	for name, r := range lt.results {
		g := got[name]
		for _, off := range r.Lines {
			switch c := g[off]; {
			case c == 0:
				missing++
				if len(examples) < 5 {
					examples = append(examples, fmt.Sprintf("%s line %d", name, off))
				}
			case c > 1:
				twice++
			}
		}
	}
	return missing, examples, twice
}

// waitSyslog waits until rsyslog holds every stream line of the logs (read
// again each time: the daemon still runs) or d passes; it returns how long
// that took and the last comparison.
func waitSyslog(t *testing.T, r *rsyslogPeer, logDir string, names []string, d time.Duration) (took time.Duration, missing int, examples []string, twice int) {
	t.Helper()
	start := time.Now()
	for {
		lt := solgateTotals(t, logDir, names)
		got, _ := r.received()
		missing, examples, twice = syslogMissing(lt, got)
		if missing == 0 || time.Since(start) > d {
			return time.Since(start), missing, examples, twice
		}
		time.Sleep(2 * time.Second)
	}
}

// TestKill9: solgate serve is killed with SIGKILL while every console
// prints (and ships to rsyslog over RELP), then started again. Per
// console the log may lose at most the last second before the kill (the
// store flushes every second), behind a gap event; rsyslog must get every
// line the logs hold; and the time until every console is back is
// measured.
func TestKill9(t *testing.T) {
	scenario(t)
	n := knob("KILL_CONSOLES", 24, 1000)
	rate := knob("KILL_RATE", 1000, 1000)
	run := knobDuration("KILL_SECONDS", 2*time.Second, 30*time.Second)
	rp := newReport(t, "kill -9", "solgate", fmt.Sprintf("%s consoles at %s B/s, shipping to rsyslog over RELP", comma(n), comma(rate)),
		"at most 1 s of log lost per console; 0 syslog lines lost")
	rs := newRsyslog(t)
	f := newFleet(t, n, knob("PER_PROCESS", 20, 500), "--no-boot-text", "--stream", strconv.Itoa(rate))
	cfg := newServeConfig(t, f, "")
	cfg.syslog = relpTarget(rs)
	path := cfg.write(t)
	p := startServe(t, path, filepath.Join(cfg.dir, "serve.log"))
	p.waitUp(n, 3*time.Minute)
	time.Sleep(run)
	p.kill()
	p2 := startServe(t, path, filepath.Join(cfg.dir, "serve2.log"))
	back := p2.waitUp(n, 5*time.Minute)
	rp.add("every console back %v after the restart", back.Round(100*time.Millisecond))
	p2.log.update()
	reclaimed := p2.log.count("conserver: took the SOL payload")
	time.Sleep(run)
	// The BMCs stop printing; the shipper catches up.
	if _, err := f.stop(); err != nil {
		t.Error(err)
	}
	took, missing, examples, twice := waitSyslog(t, rs, cfg.logDir, f.names, time.Minute)
	if err := p2.stop(time.Minute); err != nil {
		t.Error(err)
	}
	lt := solgateTotals(t, cfg.logDir, f.names)
	worst := 0
	for name, r := range lt.results {
		if len(r.Unmarked) > 0 || r.Damaged > 0 || r.Restarts > 0 || len(r.Jumps) > 1 {
			t.Errorf("%s: jumps %v (unmarked %v), %d damaged", name, r.Jumps, r.Unmarked, r.Damaged)
		}
		worst = max(worst, r.Lost)
	}
	rp.add("log lost per console: at most %s bytes (%.2f s of output), %d consoles lost any; %d bytes doubled", comma(worst), float64(worst)/float64(rate), lt.lostConsoles, lt.dup)
	rp.add("%d payloads taken back from the killed daemon's sessions", reclaimed)
	rp.add("syslog: %d lines lost, %d received twice (the RELP window after the kill); all there %v after the BMCs stopped", missing, twice, took.Round(100*time.Millisecond))
	if worst > rate+255 {
		t.Errorf("a console lost %d bytes at the kill, more than a second's worth (%d)", worst, rate)
	}
	if missing > 0 {
		t.Errorf("rsyslog lacks %d lines the logs hold, e.g. %v", missing, examples)
		keepEvidence(t, cfg.dir, rs.dir)
	}
	checkDaemonLog(t, p2)
}

// TestKill9Conman: conmand killed with SIGKILL under the same load and
// started again.
func TestKill9Conman(t *testing.T) {
	scenario(t)
	requireTool(t, "conmand")
	n := knob("KILL_CONSOLES", 24, 1000)
	rate := knob("KILL_RATE", 1000, 1000)
	run := knobDuration("KILL_SECONDS", 2*time.Second, 30*time.Second)
	rp := newReport(t, "kill -9", "conman", fmt.Sprintf("%s consoles at %s B/s", comma(n), comma(rate)),
		"at most 1 s of log lost per console")
	f := newFleet(t, n, knob("PER_PROCESS", 20, 500), "--no-boot-text", "--stream", strconv.Itoa(rate))
	c := startConman(t, f)
	if up := c.waitConnected(n, 3*time.Minute); up < n {
		t.Fatalf("conmand: %d of %d consoles connected", up, n)
	}
	time.Sleep(run)
	c.kill()
	restart := time.Now()
	c.start()
	if up := c.waitConnected(2*n, 5*time.Minute); up < 2*n {
		rp.add("%d of %d consoles back after %v", up-n, n, time.Since(restart).Round(time.Second))
	} else {
		rp.add("every console back %v after the restart", time.Since(restart).Round(100*time.Millisecond))
	}
	time.Sleep(run)
	c.stop()
	if _, err := f.stop(); err != nil {
		t.Error(err)
	}
	lt := conmanTotals(t, c, f.names)
	worst := 0
	for _, r := range lt.results {
		worst = max(worst, r.Lost)
	}
	rp.add("log lost per console: at most %s bytes (%.2f s of output), %d consoles lost any; %s bytes doubled, %d damaged", comma(worst), float64(worst)/float64(rate), lt.lostConsoles, comma(lt.dup), lt.damaged)
}
