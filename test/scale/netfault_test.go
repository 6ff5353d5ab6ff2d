package scale

import (
	"fmt"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// netFaults are the faults every simulated BMC suffers in the network
// scenario: 10% of the requests and of the answers lost, 5% of the
// answers doubled and 5% held back behind the next (reordered); on top,
// each simulator process is frozen for 200 ms at random moments (every
// 2-8 s), which delays everything to and from its BMCs.
var netFaults = []string{"--drop", "0.1", "--drop-requests", "0.1", "--dup", "0.05", "--reorder", "0.05", "--seed", "15", "--fault-signals"}

// underFaults turns the faults on for d, with the delay bursts, and off
// again; it returns the number of bursts.
func underFaults(f *fleet, d time.Duration) int {
	f.setFaults(true)
	stop := make(chan struct{})
	bursts := f.delayBursts(stop, netBurst)
	time.Sleep(d)
	close(stop)
	n := bursts()
	f.setFaults(false)
	return n
}

// netAfter is how long the consoles print after the faults, before the
// logs are checked: what was held back arrives, and each console shows it
// recovered.
func netAfter() time.Duration {
	if full {
		return 30 * time.Second
	}
	return 2 * time.Second
}

const netBurst = 200 * time.Millisecond

// TestNetworkFaults: N consoles (1,000 at full size) print a numbered
// stream through the faults for a while: every byte the log is missing
// must be behind a gap event (the target is that none is missing at
// all), and reconnects are counted.
func TestNetworkFaults(t *testing.T) {
	scenario(t)
	n := knob("NET_CONSOLES", 24, 1000)
	d := knobDuration("NET_SECONDS", 4*time.Second, 5*time.Minute)
	rate := knob("NET_RATE", 1000, 1000)
	rp := newReport(t, "network faults", "solgate", fmt.Sprintf("%s consoles at %s B/s, %v of 10%% loss each way, 5%% duplication, 5%% reordering, 200 ms delay bursts", comma(n), comma(rate), d),
		"0 bytes lost outside marked gaps")
	f := newFleet(t, n, knob("PER_PROCESS", 20, 250), append([]string{"--no-boot-text", "--stream", strconv.Itoa(rate)}, netFaults...)...)
	cfg := newServeConfig(t, f, "")
	p := startServe(t, cfg.write(t), filepath.Join(cfg.dir, "serve.log"))
	rp.add("all connected %v after start", p.waitUp(n, 3*time.Minute).Round(100*time.Millisecond))
	s := startSampler(p.pid(), time.Second)
	nb := underFaults(f, d)
	first, last, _ := s.stop()
	time.Sleep(netAfter())
	p.log.update()
	lost, ups := p.log.count("conserver: SOL session lost"), p.log.count("conserver: SOL up")
	stopAt := time.Now()
	if err := p.stop(time.Minute); err != nil {
		t.Error(err)
	}
	st, err := f.stop()
	must(t, err)
	lt := solgateTotals(t, cfg.logDir, f.names)
	rp.add("%d delay bursts", nb)
	rp.add("%d bytes lost outside marked gaps, %d inside (%d consoles; the BMCs dropped %d after their last resend), %d doubled after a gap, %d damaged",
		unmarkedLoss(lt), lt.lost-unmarkedLoss(lt), lt.lostConsoles, st.dropped, lt.dup, lt.damaged)
	rp.add("%d sessions lost, %d reconnects", lost, ups-n)
	rp.add("BMC resends %s", comma(st.resends))
	rp.add("daemon CPU %.0f%% of one core", cpuPct(first, last))
	if lt.unmarkedN > 0 || lt.damaged > 0 {
		t.Errorf("%d jumps without a gap event (%v), %d bytes damaged", lt.unmarkedN, lt.unmarked, lt.damaged)
	}
	if lt.lost > st.dropped {
		// What the BMCs did not drop themselves (after their last
		// resend) reached solgate: losing it is solgate's doing.
		t.Errorf("%d bytes lost behind gap events in %d consoles (the most, %d, in %s), the BMCs dropped only %d", lt.lost, lt.lostConsoles, lt.maxLost, lt.maxLostConsole, st.dropped)
	}
	if unique := lt.bytes - lt.dup; unique < st.delivered || unique > st.delivered+2*255*n {
		t.Errorf("the BMCs delivered %d bytes, the logs hold %d (%d doubled)", st.delivered, lt.bytes, lt.dup)
	}
	checkRecovered(t, lt, stopAt)
	checkDaemonLog(t, p)
}

// checkRecovered fails the test if a console's log stopped growing well
// before stopAt: that console did not recover.
func checkRecovered(t *testing.T, lt logTotals, stopAt time.Time) {
	t.Helper()
	var late []string
	for name, r := range lt.results {
		if r.Last.Before(stopAt.Add(-3 * time.Second)) {
			late = append(late, fmt.Sprintf("%s (last output logged %v before the stop)", name, stopAt.Sub(r.Last).Round(100*time.Millisecond)))
		}
	}
	if len(late) > 0 {
		t.Errorf("%d consoles had not recovered: %v", len(late), late[:min(5, len(late))])
	}
}

// unmarkedLoss is the bytes lost at jumps no gap event announced.
func unmarkedLoss(lt logTotals) int {
	n := 0
	for _, r := range lt.results {
		for _, j := range r.Unmarked {
			if j.To > j.From {
				n += j.To - j.From
			}
		}
	}
	return n
}

// TestNetworkFaultsConman: the same faults against conmand.
func TestNetworkFaultsConman(t *testing.T) {
	scenario(t)
	requireTool(t, "conmand")
	n := knob("NET_CONSOLES", 24, 1000)
	d := knobDuration("NET_SECONDS", 4*time.Second, 5*time.Minute)
	rate := knob("NET_RATE", 1000, 1000)
	rp := newReport(t, "network faults", "conman", fmt.Sprintf("%s consoles at %s B/s, %v of 10%% loss each way, 5%% duplication, 5%% reordering, 200 ms delay bursts", comma(n), comma(rate), d),
		"0 bytes lost outside marked gaps")
	f := newFleet(t, n, knob("PER_PROCESS", 20, 250), append([]string{"--no-boot-text", "--stream", strconv.Itoa(rate)}, netFaults...)...)
	start := time.Now()
	c := startConman(t, f)
	up := c.waitConnected(n, 3*time.Minute)
	if up < n {
		rp.add("%d of %d connected at the start", up, n)
	} else {
		rp.add("all connected %v after start", time.Since(start).Round(100*time.Millisecond))
	}
	s := startSampler(c.pid(), time.Second)
	nb := underFaults(f, d)
	first, last, _ := s.stop()
	time.Sleep(netAfter())
	disc, conns := c.count("] disconnected from <"), c.connected()
	c.stop()
	st, err := f.stop()
	must(t, err)
	lt := conmanTotals(t, c, f.names)
	rp.add("%d delay bursts", nb)
	rp.add("%s bytes lost (%d consoles; conmand marks no gaps), %s doubled, %d damaged", comma(lt.lost), lt.lostConsoles, comma(lt.dup), lt.damaged)
	rp.add("%d disconnects, %d reconnects", disc, conns-up)
	rp.add("BMC resends %s", comma(st.resends))
	rp.add("conmand CPU %.0f%% of one core", cpuPct(first, last))
}
