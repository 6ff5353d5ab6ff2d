package scale

import (
	"fmt"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// TestReloadStorm: the configuration is saved every second for a while
// as every console prints, each save switching a few consoles' cipher
// suite (17 <-> 3), which needs a new session. Exactly the changed
// consoles must reconnect, once per change; no console may lose output;
// and the daemon's open files, threads and memory must come back to where
// they were.
func TestReloadStorm(t *testing.T) {
	scenario(t)
	n := knob("RELOAD_CONSOLES", 24, 1000)
	rate := knob("RELOAD_RATE", 500, 500)
	d := knobDuration("RELOAD_SECONDS", 4*time.Second, 2*time.Minute)
	k := knob("RELOAD_CHANGED", 2, 5)
	rp := newReport(t, "reload storm", "solgate", fmt.Sprintf("%s consoles at %d B/s, a reload every second for %v changing %d consoles each", comma(n), rate, d, k),
		"no loss, no leak, only the changed consoles reconnect")
	f := newFleet(t, n, knob("PER_PROCESS", 20, 500), "--no-boot-text", "--stream", strconv.Itoa(rate))
	cfg := newServeConfig(t, f, "")
	path := cfg.write(t)
	trace := time.Second
	if full {
		trace = 10 * time.Second
	}
	p := startServeTraced(t, path, filepath.Join(cfg.dir, "serve.log"), trace)
	p.waitUp(n, 3*time.Minute)
	time.Sleep(pause())
	before, _ := readProc(p.pid())
	g0 := p.goroutinesAfter(time.Now(), 3*trace)
	changes := map[string]int{}
	suite3 := map[string]bool{}
	next := 0
	saves := 0
	start := time.Now()
	for i := 0; time.Since(start) < d; i++ {
		time.Sleep(time.Until(start.Add(time.Duration(i) * time.Second)))
		for range k {
			name := f.names[next%n]
			next++
			suite3[name] = !suite3[name]
			changes[name]++
			if suite3[name] {
				cfg.extra[name] = "cipher_suite = 3\n"
			} else {
				delete(cfg.extra, name)
			}
		}
		cfg.write(t)
		saves++
	}
	// Every change applied and reconnected.
	deadline := time.Now().Add(2 * time.Minute)
	for {
		p.log.update()
		up := p.log.perConsole("conserver: SOL up")
		short := 0
		for name, c := range changes {
			if up[name] < 1+c {
				short++
			}
		}
		if short == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d changed consoles not reconnected 2 minutes after the last save", short)
		}
		time.Sleep(200 * time.Millisecond)
	}
	time.Sleep(pause() + time.Second) // settle: closed sessions' goroutines and files gone
	after, _ := readProc(p.pid())
	g1 := p.goroutinesAfter(time.Now(), 3*trace)
	p.log.update()
	applied := p.log.count("serve: configuration applied")
	up := p.log.perConsole("conserver: SOL up")
	lost := p.log.perConsole("conserver: SOL session lost")
	if _, err := f.stop(); err != nil {
		t.Error(err)
	}
	if err := p.stop(time.Minute); err != nil {
		t.Error(err)
	}
	wrong := 0
	for _, name := range f.names {
		if up[name] != 1+changes[name] || lost[name] > 0 {
			wrong++
			if wrong <= 5 {
				t.Errorf("%s: changed %d times, %d SOL sessions opened (want %d), %d lost", name, changes[name], up[name], 1+changes[name], lost[name])
			}
		}
	}
	lt := solgateTotals(t, cfg.logDir, f.names)
	rp.add("%d saves, %d applied; %d consoles changed %d times in all, %d reconnects; %d consoles reconnected other than their changes", saves, applied, len(changes), sum(changes), p.log.count("conserver: SOL up")-n, wrong)
	rp.add("%d bytes lost, %d doubled, %d damaged", lt.lost, lt.dup, lt.damaged)
	rp.add("daemon before/after: %s/%s goroutines, %d/%d fds, %d/%d threads, RSS %s/%s", comma(g0), comma(g1), before.fds, after.fds, before.threads, after.threads, mib(before.rssKiB), mib(after.rssKiB))
	// A reconnect solgate makes itself takes nothing the BMC keeps for
	// the next session, so nothing is printed twice either.
	if lt.lost > 0 || lt.dup > 0 || lt.damaged > 0 || lt.unmarkedN > 0 {
		t.Errorf("%d bytes lost, %d doubled, %d damaged, %d unmarked jumps (%v)", lt.lost, lt.dup, lt.damaged, lt.unmarkedN, lt.unmarked)
		keepEvidence(t, cfg.dir)
	}
	if applied < saves/2 {
		t.Errorf("%d of %d saves applied", applied, saves)
	}
	if g1 > g0+5 {
		t.Errorf("goroutines grew from %d to %d over the reloads", g0, g1)
	}
	if after.fds > before.fds+2 {
		t.Errorf("open files grew from %d to %d over the reloads", before.fds, after.fds)
	}
	checkDaemonLog(t, p)
}

func sum(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}
