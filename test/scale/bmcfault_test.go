package scale

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"
)

// The BMC fault scenario: the fleet's first simulator process is killed
// (SIGKILL: its BMCs vanish, and come back after a while with no
// sessions and their hosts' streams starting over), the second is frozen
// (SIGSTOP: its BMCs answer nothing, then SIGCONT), the others are left
// alone. Every console of the first two must come back within its
// backoff, and nothing may disturb the others.

type bmcFaultPlan struct {
	n, per, rate   int
	down, freeze   time.Duration
	server, size   string
	killed, frozen []string // console names
	others         []string
}

func newBMCFaultPlan() bmcFaultPlan {
	p := bmcFaultPlan{
		n:      knob("BMC_CONSOLES", 24, 1000),
		per:    knob("BMC_PER_PROCESS", 6, 100),
		rate:   knob("BMC_RATE", 500, 500),
		down:   knobDuration("BMC_KILL_SECONDS", 3*time.Second, 30*time.Second),
		freeze: knobDuration("BMC_FREEZE_SECONDS", 4*time.Second, 2*time.Minute),
	}
	if !full {
		// The same story in seconds: a BMC silent for 2 s is lost, and
		// retries come at most every 2 s.
		p.server = "ipmi_keepalive = \"1s\"\nipmi_timeout = \"300ms\"\nreconnect_max = \"2s\""
	}
	p.size = fmt.Sprintf("%s consoles at %d B/s in processes of %d: one process killed for %v, one frozen for %v", comma(p.n), p.rate, p.per, p.down, p.freeze)
	return p
}

func (p *bmcFaultPlan) split(f *fleet) {
	for i, name := range f.names {
		switch f.proc[i] {
		case 0:
			p.killed = append(p.killed, name)
		case 1:
			p.frozen = append(p.frozen, name)
		default:
			p.others = append(p.others, name)
		}
	}
}

// inject kills process 0 and freezes process 1, brings the first back
// after down and thaws the second after freeze; it returns when each came
// back.
func (p *bmcFaultPlan) inject(t *testing.T, f *fleet) (killedBack, thawed time.Time) {
	return p.injectThen(t, f, func() {}, func() {})
}

// injectThen is inject, calling beforeBack just before process 0 comes
// back and beforeThaw just before process 1 is thawed.
func (p *bmcFaultPlan) injectThen(t *testing.T, f *fleet, beforeBack, beforeThaw func()) (killedBack, thawed time.Time) {
	t.Helper()
	start := time.Now()
	f.procs[0].kill()
	f.procs[1].freeze()
	time.Sleep(p.down)
	beforeBack()
	must(t, f.procs[0].start())
	killedBack = time.Now()
	time.Sleep(time.Until(start.Add(p.freeze)))
	beforeThaw()
	f.procs[1].thaw()
	thawed = time.Now()
	return killedBack, thawed
}

// TestBMCKillFreeze runs the scenario against solgate serve. Recovery is
// checked against each console's own schedule: the daemon logs, at every
// failed attempt, when the next one comes (retry_in); the first attempt
// due after the BMC came back must succeed, within a few seconds of its
// time.
func TestBMCKillFreeze(t *testing.T) {
	scenario(t)
	pl := newBMCFaultPlan()
	rp := newReport(t, "BMC kill and freeze", "solgate", pl.size, "each console back within its backoff; the others undisturbed")
	f := newFleet(t, pl.n, pl.per, "--no-boot-text", "--stream", strconv.Itoa(pl.rate))
	if len(f.procs) < 3 {
		t.Fatalf("%d processes: the scenario needs 3 (BMC_CONSOLES / BMC_PER_PROCESS)", len(f.procs))
	}
	pl.split(f)
	cfg := newServeConfig(t, f, pl.server)
	cfg.logLevel = "debug" // every failed attempt's retry_in
	p := startServe(t, cfg.write(t), filepath.Join(cfg.dir, "serve.log"))
	p.waitUp(pl.n, 3*time.Minute)
	time.Sleep(2 * time.Second)
	faultAt := time.Now()
	killedBack, thawed := pl.inject(t, f)

	// Every console of the two processes up again.
	slack := 3 * time.Second
	if full {
		slack = 10 * time.Second
	}
	wait := knobDuration("BMC_WAIT_SECONDS", 30*time.Second, 10*time.Minute)
	recovery := func(names []string, back time.Time) (worst time.Duration, late []string) {
		deadline := time.Now().Add(wait)
		for _, name := range names {
			for {
				p.log.update()
				// The failures since the fault, each saying when the
				// next attempt is due, then the success.
				var due, up time.Time
				failedAfter := 0 // attempts due after back that failed
				for _, e := range p.log.eventsOf(name) {
					if e.at.Before(back.Add(-time.Hour)) {
						continue
					}
					switch e.msg {
					case "conserver: SOL not connected", "conserver: SOL session lost":
						if !due.IsZero() && !due.Before(back) {
							failedAfter++
						}
						due = e.at.Add(e.retryIn)
					case "conserver: SOL up":
						if !due.IsZero() && e.at.After(back) {
							up = e.at
						}
					}
					if !up.IsZero() {
						break
					}
				}
				if !up.IsZero() {
					worst = max(worst, up.Sub(back))
					if from := maxTime(due, back); up.After(from.Add(slack)) || failedAfter > 0 {
						late = append(late, fmt.Sprintf("%s: up %v after its attempt due at %s (%d attempts after the BMC was back failed)",
							name, up.Sub(from).Round(100*time.Millisecond), due.Format("15:04:05.000"), failedAfter))
					}
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("%s: not up again %v after its BMC came back at %s; its events: %v", name, wait, back.Format("15:04:05.000"), p.log.eventsOf(name))
				}
				time.Sleep(200 * time.Millisecond)
			}
		}
		return worst, late
	}
	wk, lk := recovery(pl.killed, killedBack)
	wf, lf := recovery(pl.frozen, thawed)
	// How long a silent BMC takes to be noticed: the first "session
	// lost" after the fault, per console.
	noticed := func(names []string) (worst time.Duration) {
		for _, name := range names {
			for _, e := range p.log.eventsOf(name) {
				if e.msg == "conserver: SOL session lost" && e.at.After(faultAt) {
					worst = max(worst, e.at.Sub(faultAt))
					break
				}
			}
		}
		return worst
	}
	rp.add("killed BMCs noticed within %v (restarted after %v), all back %v after the restart", noticed(pl.killed).Round(100*time.Millisecond), pl.down, wk.Round(100*time.Millisecond))
	rp.add("frozen BMCs noticed within %v, all back %v after the thaw", noticed(pl.frozen).Round(100*time.Millisecond), wf.Round(100*time.Millisecond))
	rp.add("every console back at most %v after its first attempt due once its BMC was back", slack)
	for _, l := range [][]string{lk, lf} {
		if len(l) > 0 {
			t.Errorf("%d consoles came back later than their backoff allowed: %v", len(l), l[:min(5, len(l))])
		}
	}
	time.Sleep(2 * time.Second) // the streams go on
	p.log.update()
	lostPer := p.log.perConsole("conserver: SOL session lost")
	upPer := p.log.perConsole("conserver: SOL up")
	if err := p.stop(time.Minute); err != nil {
		t.Error(err)
	}
	sims, err := f.stopEach()
	if err != nil {
		t.Error(err)
	}
	lt := solgateTotals(t, cfg.logDir, f.names)
	disturbed := 0
	for _, name := range pl.others {
		r := lt.results[name]
		if lostPer[name] > 0 || upPer[name] != 1 || len(r.Jumps) > 0 || r.Damaged > 0 || r.Start != 0 {
			disturbed++
			if disturbed <= 5 {
				t.Errorf("%s (undisturbed BMC): %d sessions lost, %d up, jumps %v, %d damaged", name, lostPer[name], upPer[name], r.Jumps, r.Damaged)
			}
		}
	}
	rp.add("%d of %d other consoles disturbed", disturbed, len(pl.others))
	var lostF, dupF int
	for _, name := range slices.Concat(pl.killed, pl.frozen) {
		r := lt.results[name]
		if len(r.Unmarked) > 0 || r.Damaged > 0 {
			t.Errorf("%s: unmarked jumps %v, %d damaged", name, r.Unmarked, r.Damaged)
		}
		if slices.Contains(pl.killed, name) {
			if r.Restarts != 1 {
				t.Errorf("%s: the log shows %d restarts of the stream, want 1 (the BMC restarted once): %v", name, r.Restarts, r.Jumps)
			}
		} else {
			lostF += r.Lost
			dupF += r.Dup
			if r.Lost > 0 {
				t.Logf("%s (frozen): jumps %+v", name, r.Jumps)
			}
			if r.Restarts != 0 {
				t.Errorf("%s: the frozen BMC's stream restarted: %v", name, r.Jumps)
			}
		}
	}
	// What a frozen BMC had in flight it resends to the session it
	// knew for 32 x 100 ms after the thaw, then drops: solgate's next
	// attempt may come later (its backoff), and then that is the loss,
	// behind the gap event of the reconnect. Nothing else may be lost.
	rp.add("frozen consoles: %d bytes lost behind gap events (the BMCs dropped %d after their last resend to the old session), %d doubled; killed: each log marks the gap and the stream's restart",
		lostF, sims[1].dropped, dupF)
	if len(sims) > 1 && lostF > sims[1].dropped {
		t.Errorf("the frozen BMCs' consoles lost %d bytes, the BMCs dropped only %d", lostF, sims[1].dropped)
	}
	checkDaemonLog(t, p)
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// TestBMCKillFreezeConman: the same faults against conmand; recovery is
// timed from conmand's "connected" notices (polled).
func TestBMCKillFreezeConman(t *testing.T) {
	scenario(t)
	requireTool(t, "conmand")
	pl := newBMCFaultPlan()
	rp := newReport(t, "BMC kill and freeze", "conman", pl.size, "each console back within its backoff; the others undisturbed")
	f := newFleet(t, pl.n, pl.per, "--no-boot-text", "--stream", strconv.Itoa(pl.rate))
	if len(f.procs) < 3 {
		t.Fatalf("%d processes: the scenario needs 3", len(f.procs))
	}
	pl.split(f)
	c := startConman(t, f)
	if up := c.waitConnected(pl.n, 3*time.Minute); up < pl.n {
		t.Fatalf("conmand: %d of %d consoles connected", up, pl.n)
	}
	time.Sleep(2 * time.Second)
	sizes := map[string]int64{}
	logSizes := func(names []string) {
		for _, name := range names {
			if fi, err := os.Stat(c.logFile(name)); err == nil {
				sizes[name] = fi.Size()
			}
		}
	}
	killedBack, thawed := pl.injectThen(t, f, func() { logSizes(pl.killed) }, func() { logSizes(pl.frozen) })
	// Back: the console's log grows again after its BMC came back
	// (conmand may not have noticed the BMC was gone: its sessions time
	// out after 60 s).
	back := map[string]time.Time{}
	wait := knobDuration("BMC_CONMAN_WAIT_SECONDS", 4*time.Second, 10*time.Minute)
	deadline := time.Now().Add(wait)
	want := slices.Concat(pl.killed, pl.frozen)
	for len(back) < len(want) && time.Now().Before(deadline) {
		now := time.Now()
		for _, name := range want {
			if _, ok := back[name]; ok {
				continue
			}
			if fi, err := os.Stat(c.logFile(name)); err == nil && fi.Size() > sizes[name] {
				back[name] = now
			}
		}
		time.Sleep(500 * time.Millisecond)
	}
	worst := func(names []string, from time.Time) string {
		var w time.Duration
		n := 0
		for _, name := range names {
			if b, ok := back[name]; ok {
				w = max(w, b.Sub(from))
				n++
			}
		}
		if n < len(names) {
			return fmt.Sprintf("%d of %d logging again within %v of", n, len(names), wait)
		}
		return fmt.Sprintf("all logging again %v after", w.Round(time.Second))
	}
	rp.add("killed: %s their BMCs", worst(pl.killed, killedBack))
	rp.add("frozen: %s the thaw", worst(pl.frozen, thawed))
	rp.add("%d disconnects", c.count("] disconnected from <"))
	time.Sleep(2 * time.Second)
	per := c.connectedPer()
	c.stop()
	if _, err := f.stop(); err != nil {
		t.Error(err)
	}
	lt := conmanTotals(t, c, f.names)
	disturbed := 0
	for _, name := range pl.others {
		if r := lt.results[name]; per[name] != 1 || len(r.Jumps) > 0 || r.Damaged > 0 {
			disturbed++
		}
	}
	rp.add("%d of %d other consoles disturbed", disturbed, len(pl.others))
	var lostF, dupF int
	for _, name := range pl.frozen {
		lostF += lt.results[name].Lost
		dupF += lt.results[name].Dup
	}
	rp.add("frozen consoles: %d bytes lost, %d doubled", lostF, dupF)
	if os.Getenv("SOLGATE_SCALE_KEEP") != "" {
		b, _ := os.ReadFile(c.out)
		t.Logf("conmand output:\n%s", b)
	}
}
