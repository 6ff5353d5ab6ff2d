package scale

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/solgate/solgate/logstore"
	"github.com/solgate/solgate/test/internal/testkit"
)

// bootCopies checks a console's output against its boot text, which the
// host prints at every power on and which ends at its login prompt: out
// must be the boot text exactly n times over (n is returned). Each BMC
// starts with one boot in its buffer (the host booted before the
// simulator started), so the first copy is the reference the others must
// equal byte for byte.
func bootCopies(out []byte, host string) (n int, err error) {
	prompt := []byte(host + " login: ")
	parts := bytes.SplitAfter(out, prompt)
	if len(parts[len(parts)-1]) == 0 {
		parts = parts[:len(parts)-1]
	}
	for i, p := range parts {
		if !bytes.HasSuffix(p, prompt) {
			return i, fmt.Errorf("boot %d is cut short after %d bytes: ...%q", i+1, len(p), testkit.Tail(string(p), 80))
		}
		if !bytes.Contains(p, []byte("Hostname set to <"+host+">")) || !bytes.HasPrefix(p, []byte("\x1b[0m\x1b[2J")) {
			return i, fmt.Errorf("boot %d (%d bytes) is not this host's whole boot text", i+1, len(p))
		}
		if i > 0 && !bytes.Equal(p, parts[0]) {
			return i, fmt.Errorf("boot %d (%d bytes) differs from boot 1 (%d bytes)", i+1, len(p), len(parts[0]))
		}
	}
	return len(parts), nil
}

// solgateOutput is a console's output in a solgate log, events left out.
func solgateOutput(s *logstore.Store, console string) ([]byte, error) {
	var out []byte
	for rec, err := range s.Records(context.Background(), console, logstore.Query{}) {
		if err != nil {
			return out, err
		}
		if rec.Event == "" {
			out = append(out, rec.Data...)
		}
	}
	return out, nil
}

// conmanOutput is a console's output in a conmand log, notices left out.
func conmanOutput(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	return conmanNotice.ReplaceAll(b, nil), err
}

// waitBoots polls until every console's output holds want whole boots,
// and returns how long that took, or fails with the first console that
// does not.
func waitBoots(t *testing.T, names []string, want int, d time.Duration, output func(string) ([]byte, error)) time.Duration {
	t.Helper()
	start := time.Now()
	done := map[string]bool{}
	for {
		var firstErr error
		for _, n := range names {
			if done[n] {
				continue
			}
			out, err := output(n)
			if err == nil {
				var k int
				k, err = bootCopies(out, n)
				if err == nil && k == want {
					done[n] = true
					continue
				}
				if err == nil {
					err = fmt.Errorf("%d whole boots, want %d", k, want)
				}
			}
			if firstErr == nil {
				firstErr = fmt.Errorf("%s: %w", n, err)
			}
		}
		if len(done) == len(names) {
			return time.Since(start)
		}
		if time.Since(start) > d {
			t.Fatalf("%d of %d consoles hold %d whole boots after %v; %v", len(done), len(names), want, d, firstErr)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// powerCycle runs solgate power -c cfg HOSTS cycle for every console at
// once and checks that each host answered ok.
func powerCycle(t *testing.T, cfgPath string, names []string) time.Duration {
	t.Helper()
	hosts := fmt.Sprintf("node[1-%d]", len(names))
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, solgateBin(t), "power", "-c", cfgPath, "--fanout", fmt.Sprint(min(len(names), 4096)), "--json", hosts, "cycle")
	out, err := cmd.Output()
	took := time.Since(start)
	if err != nil {
		t.Fatalf("solgate power cycle: %v\n%s", err, testkit.Tail(string(out), 2000))
	}
	var res []struct {
		Host  string `json:"host"`
		OK    bool   `json:"ok"`
		Error string `json:"error"`
	}
	must(t, json.Unmarshal(out, &res))
	ok := 0
	for _, r := range res {
		if r.OK {
			ok++
		} else {
			t.Errorf("power cycle %s: %s", r.Host, r.Error)
		}
	}
	if ok != len(names) {
		t.Fatalf("power cycle: %d of %d hosts ok", ok, len(names))
	}
	return took
}

// TestBootStorm: solgate power cycles every node at once (1,000 at full
// size) while solgate serve logs their consoles: every console's log
// must hold its whole boot, twice (the one before and the new one), byte
// for byte.
func TestBootStorm(t *testing.T) {
	scenario(t)
	n := knob("BOOT_CONSOLES", 24, 1000)
	rp := newReport(t, "boot storm", "solgate", fmt.Sprintf("%s nodes power cycled at once", comma(n)), "every boot log complete")
	f := newFleet(t, n, knob("PER_PROCESS", 20, 500))
	cfg := newServeConfig(t, f, "")
	path := cfg.write(t)
	p := startServe(t, path, filepath.Join(cfg.dir, "serve.log"))
	p.waitUp(n, 2*time.Minute)
	output := func(name string) ([]byte, error) {
		s, err := logstore.Open(cfg.logDir, logstore.Options{ReadOnly: true})
		if err != nil {
			return nil, err
		}
		defer s.Close()
		return solgateOutput(s, name)
	}
	waitBoots(t, f.names, 1, time.Minute, output)
	s := startSampler(p.pid(), time.Second)
	took := powerCycle(t, path, f.names)
	rp.add("solgate power cycle: %v for all", took.Round(10*time.Millisecond))
	complete := waitBoots(t, f.names, 2, 2*time.Minute, output)
	first, last, peak := s.stop()
	rp.add("every boot log complete %v after the command started", (took + complete).Round(100*time.Millisecond))
	rp.add("daemon CPU %.0f%% of one core, RSS peak %s", cpuPct(first, last), mib(peak.rssKiB))
	p.log.update()
	if r := p.log.count("conserver: SOL session lost"); r > 0 {
		t.Errorf("%d SOL sessions lost during the boot storm", r)
	}
	if err := p.stop(time.Minute); err != nil {
		t.Error(err)
	}
	// After the stop, from the files: still whole, and the daemon saw
	// each boot (its boot markers: solgate log --list-boots).
	s2, err := logstore.Open(cfg.logDir, logstore.Options{ReadOnly: true})
	must(t, err)
	defer s2.Close()
	marked := 0
	for _, name := range f.names {
		out, err := solgateOutput(s2, name)
		must(t, err)
		if k, err := bootCopies(out, name); err != nil || k != 2 {
			t.Errorf("%s after SIGTERM: %d boots, %v", name, k, err)
		}
		bs, err := s2.Boots(context.Background(), name)
		must(t, err)
		k := 0
		for _, b := range bs {
			if b.How != "" { // not the part of the log before the first boot mark
				k++
			}
		}
		if k == 2 {
			marked++
		} else if marked == 0 {
			t.Logf("%s: boots %+v", name, bs)
		}
	}
	rp.add("%s of %s logs mark both boots", comma(marked), comma(n))
	if marked != n {
		t.Errorf("%d of %d consoles' logs mark 2 boots", marked, n)
	}
	checkDaemonLog(t, p)
}

// TestBootStormConman: the same storm, logged by conmand.
func TestBootStormConman(t *testing.T) {
	scenario(t)
	requireTool(t, "conmand")
	n := knob("BOOT_CONSOLES", 24, 1000)
	rp := newReport(t, "boot storm", "conman", fmt.Sprintf("%s nodes power cycled at once", comma(n)), "every boot log complete")
	f := newFleet(t, n, knob("PER_PROCESS", 20, 500))
	c := startConman(t, f)
	if up := c.waitConnected(n, 2*time.Minute); up < n {
		t.Fatalf("conmand: %d of %d consoles connected", up, n)
	}
	output := func(name string) ([]byte, error) { return conmanOutput(c.logFile(name)) }
	waitBoots(t, f.names, 1, time.Minute, output)
	cfg := newServeConfig(t, f, "") // for solgate power: BMCs and credentials
	path := cfg.write(t)
	s := startSampler(c.pid(), time.Second)
	took := powerCycle(t, path, f.names)
	complete := waitBoots(t, f.names, 2, 2*time.Minute, output)
	first, last, peak := s.stop()
	rp.add("every boot log complete %v after the command started", (took + complete).Round(100*time.Millisecond))
	rp.add("conmand CPU %.0f%% of one core, RSS peak %s", cpuPct(first, last), mib(peak.rssKiB))
	if d := c.count("] disconnected from <"); d > 0 {
		rp.add("%d disconnects", d)
	}
	c.stop()
}
