package power_test

import (
	"context"
	"errors"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/solgate/solgate/conserver/power"
	"github.com/solgate/solgate/ipmilan"
	"github.com/solgate/solgate/ipmilan/bmcsim"
)

func fleet(t *testing.T, n int, cfg bmcsim.Config) *bmcsim.Fleet {
	t.Helper()
	cfg.Users = []bmcsim.User{{Name: "admin", Password: "secret"}}
	f, err := bmcsim.StartFleet(context.Background(), bmcsim.FleetConfig{N: n, Listen: "127.0.0.1:0", Config: cfg})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func run(t *testing.T, targets []power.Target, a power.Action, o power.Options) map[string]power.Result {
	t.Helper()
	ch := make(chan power.Result, len(targets))
	power.Run(context.Background(), targets, a, o, ch)
	close(ch)
	out := map[string]power.Result{}
	for r := range ch {
		out[r.Name] = r
	}
	if len(out) != len(targets) {
		t.Fatalf("%d results for %d targets", len(out), len(targets))
	}
	return out
}

func targetsFor(f *bmcsim.Fleet, password string) []power.Target {
	var ts []power.Target
	for i, a := range f.Addrs() {
		ts = append(ts, power.Target{Name: "node" + string(rune('a'+i)), Config: ipmilan.Config{
			Addr: a, User: "admin", Password: ipmilan.Secret(password), Timeout: 100 * time.Millisecond}})
	}
	return ts
}

func TestRunActions(t *testing.T) {
	f := fleet(t, 6, bmcsim.Config{})
	ts := targetsFor(f, "secret")
	f.BMC(0).SetPower(true)
	res := run(t, ts, power.Status, power.Options{Fanout: 2})
	if res["nodea"].State != "on" || res["nodeb"].State != "off" {
		t.Fatalf("status: %+v", res)
	}
	// Cycle powers on the nodes that are off and cycles the one that is on.
	res = run(t, ts, power.Cycle, power.Options{Fanout: 3, Wait: true, PollEvery: 20 * time.Millisecond})
	for name, r := range res {
		if r.Err != nil || r.State != "on" {
			t.Fatalf("%s: cycle --wait: %+v", name, r)
		}
	}
	for i := range f.Len() {
		if !f.BMC(i).Power() {
			t.Fatalf("BMC %d off after cycle", i)
		}
	}
	res = run(t, ts, power.Soft, power.Options{Wait: true, PollEvery: 20 * time.Millisecond})
	for name, r := range res {
		if r.Err != nil || r.State != "off" {
			t.Fatalf("%s: soft --wait: %+v", name, r)
		}
	}
	res = run(t, ts[:1], power.PXE, power.Options{})
	if res["nodea"].State != "next boot pxe" || f.BMC(0).Boot().Device != bmcsim.BootPXE {
		t.Fatalf("pxe: %+v, BMC boot %+v", res["nodea"], f.BMC(0).Boot())
	}
}

func TestRunErrors(t *testing.T) {
	f := fleet(t, 3, bmcsim.Config{})
	ts := targetsFor(f, "wrong")
	f.BMC(2).SetFaults(bmcsim.Faults{Freeze: true})
	res := run(t, ts, power.Off, power.Options{})
	var msgs []string
	for _, r := range res {
		if r.Err == nil {
			t.Fatalf("%s succeeded with a wrong password", r.Name)
		}
		msgs = append(msgs, power.Describe(r.Err, r.BMC))
	}
	sort.Strings(msgs)
	want := []string{"authentication failed (wrong password or user)", "authentication failed (wrong password or user)", "no answer after 3 tries"}
	if strings.Join(msgs, "|") != strings.Join(want, "|") {
		t.Fatalf("messages %q, want %q", msgs, want)
	}
	if !errors.Is(res["nodea"].Err, ipmilan.ErrAuth) {
		t.Fatalf("error chain lost: %v", res["nodea"].Err)
	}
}

func TestParseAction(t *testing.T) {
	for _, a := range power.Actions {
		if got, err := power.ParseAction(strings.ToUpper(string(a.Action))); err != nil || got != a.Action {
			t.Errorf("ParseAction(%q) = %q, %v", a.Action, got, err)
		}
	}
	if _, err := power.ParseAction("explode"); err == nil || !strings.Contains(err.Error(), "status on off") {
		t.Errorf("unknown action error: %v", err)
	}
}

// TestRunInterrupted: an interrupt during cycle --wait stops the waiting
// and the starting of new targets, and every result says which happened,
// consistently with the BMCs' power: cycled ones are off (in their cycle),
// the others untouched.
func TestRunInterrupted(t *testing.T) {
	f := fleet(t, 6, bmcsim.Config{PowerOn: true, CycleDelay: time.Hour})
	ts := targetsFor(f, "secret")
	ctx, cancel := context.WithCancel(context.Background())
	ch := make(chan power.Result, len(ts))
	done := make(chan struct{})
	go func() {
		power.Run(ctx, ts, power.Cycle, power.Options{Fanout: 2, Wait: true, WaitTimeout: time.Hour, PollEvery: 20 * time.Millisecond}, ch)
		close(done)
	}()
	deadline := time.Now().Add(20 * time.Second)
	for f.BMC(0).Power() || f.BMC(1).Power() {
		if time.Now().After(deadline) {
			t.Fatal("the first two BMCs were not cycled within 20s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("Run did not return within 20s of the interrupt")
	}
	close(ch)
	res := map[string]power.Result{}
	for r := range ch {
		res[r.Name] = r
	}
	if len(res) != len(ts) {
		t.Fatalf("%d results for %d targets", len(res), len(ts))
	}
	for i, tg := range ts {
		r := res[tg.Name]
		msg := "ok: " + r.State
		if r.Err != nil {
			msg = power.Describe(r.Err, r.BMC)
		}
		on := f.BMC(i).Power()
		switch {
		case i < 2:
			if !errors.Is(r.Err, power.ErrInterrupted) || msg != "interrupted while waiting: cycle sent, power not yet seen on" || on {
				t.Errorf("%s (cycled): %q, power on %v", tg.Name, msg, on)
			}
		default:
			if !errors.Is(r.Err, power.ErrInterrupted) || msg != "interrupted: not started" || !on {
				t.Errorf("%s (not started): %q, power on %v", tg.Name, msg, on)
			}
		}
		if strings.Contains(msg, "still not") || strings.Contains(msg, "context canceled") {
			t.Errorf("%s: %q", tg.Name, msg)
		}
	}
}

// TestRunReportsCipherSuite: the suite a session used is in the result.
func TestRunReportsCipherSuite(t *testing.T) {
	f := fleet(t, 2, bmcsim.Config{CipherSuites: []uint8{3}})
	ts := targetsFor(f, "secret")
	for _, r := range run(t, ts, power.Status, power.Options{}) {
		if r.Err != nil || !r.Session || r.CipherSuite != 3 {
			t.Errorf("%s: %+v", r.Name, r)
		}
	}
}
