package scale

import (
	"fmt"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// TestSyslogDown: the syslog receiver (rsyslog, RELP) is stopped for a
// while as every console prints and ships, then started again: the
// backlog must drain (every line logged before the receiver came back
// arrives, and the time that takes is measured), nothing may be lost, and
// the daemon must not grow meanwhile (the shipper reads the log store, it
// keeps no queue of its own).
func TestSyslogDown(t *testing.T) {
	scenario(t)
	n := knob("SYSLOG_CONSOLES", 24, 1000)
	rate := knob("SYSLOG_RATE", 1000, 200)
	down := knobDuration("SYSLOG_DOWN_SECONDS", 3*time.Second, 5*time.Minute)
	rp := newReport(t, "syslog down", "solgate", fmt.Sprintf("%s consoles at %s B/s (%s lines/s), RELP receiver down for %v", comma(n), comma(rate), comma(n*rate/75), down),
		"nothing lost; backlog drained")
	rs := newRsyslog(t)
	f := newFleet(t, n, knob("PER_PROCESS", 20, 500), "--no-boot-text", "--stream", strconv.Itoa(rate))
	cfg := newServeConfig(t, f, "")
	cfg.syslog = relpTarget(rs)
	p := startServe(t, cfg.write(t), filepath.Join(cfg.dir, "serve.log"))
	p.waitUp(n, 3*time.Minute)
	time.Sleep(pause())
	before, _ := readProc(p.pid())
	rs.stop()
	s := startSampler(p.pid(), time.Second)
	time.Sleep(down)
	_, during, peak := s.stop()
	// What must arrive: every line logged up to now.
	snap := solgateTotals(t, cfg.logDir, f.names)
	backlog := 0
	for _, r := range snap.results {
		backlog += len(r.Lines)
	}
	rs.start()
	back := time.Now()
	var drained time.Duration
	for {
		got, _ := rs.received()
		if m, _, _ := syslogMissing(snap, got); m == 0 {
			drained = time.Since(back)
			break
		}
		if time.Since(back) > 10*time.Minute {
			m, ex, _ := syslogMissing(snap, got)
			t.Fatalf("%d lines logged before the receiver came back still missing 10 minutes later, e.g. %v", m, ex)
		}
		time.Sleep(time.Second)
	}
	rp.add("backlog of %s lines (logged while down, and before) drained %v after the receiver came back", comma(backlog), drained.Round(100*time.Millisecond))
	time.Sleep(pause())
	if _, err := f.stop(); err != nil {
		t.Error(err)
	}
	took, missing, examples, twice := waitSyslog(t, rs, cfg.logDir, f.names, time.Minute)
	p.log.update()
	if err := p.stop(time.Minute); err != nil {
		t.Error(err)
	}
	rp.add("%d lines lost, %d received twice; all there %v after the BMCs stopped", missing, twice, took.Round(100*time.Millisecond))
	rp.add("daemon RSS %s before, %s peak while the receiver was down (%s at its end)", mib(before.rssKiB), mib(peak.rssKiB), mib(during.rssKiB))
	if missing > 0 {
		t.Errorf("rsyslog lacks %d lines the logs hold, e.g. %v", missing, examples)
	}
	lt := solgateTotals(t, cfg.logDir, f.names)
	if lt.lost > 0 || lt.jumps > 0 || lt.damaged > 0 {
		t.Errorf("console logs: %d bytes lost, %d jumps, %d damaged", lt.lost, lt.jumps, lt.damaged)
	}
	if r := p.log.count("conserver: SOL session lost"); r > 0 {
		t.Errorf("%d SOL sessions lost", r)
	}
	checkDaemonLog(t, p)
}
