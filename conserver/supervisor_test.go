package conserver

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/solgate/solgate/ipmilan"
)

// The supervisor's timing (backoff, jitter, stable reset, waiting and
// contested detection) against an in-memory BMC, under testing/synctest:
// virtual time, no sleeps.

func fakeEnv(t *testing.T, f *fakeBMC, server, extra string, o Options) (*testEnv, *Console) {
	t.Helper()
	e := newEnv(t, server, []consoleSpec{{name: "node1", bmc: "127.0.0.1:623", extra: extra}}, o, func(m *Manager) { m.open = f.open })
	return e, e.m.Console("node1")
}

func gaps(ts []time.Time) []time.Duration {
	var out []time.Duration
	for i := 1; i < len(ts); i++ {
		out = append(out, ts[i].Sub(ts[i-1]))
	}
	return out
}

func TestBackoffDoublesToMax(t *testing.T) {
	for _, tc := range []struct {
		name string
		rnd  func(int64) int64
		want []time.Duration // delays before jitter's draw; nil: check bounds only
	}{
		{"top", func(n int64) int64 { return n - 1 }, []time.Duration{1, 2, 4, 8, 8, 8, 8}},
		{"bottom", func(n int64) int64 { return 0 }, []time.Duration{1, 2, 4, 8, 8, 8, 8}},
		{"random", nil, []time.Duration{1, 2, 4, 8, 8, 8, 8}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				f := &fakeBMC{fail: fmt.Errorf("fake: %w after 3 tries", ipmilan.ErrNoAnswer)}
				_, c := fakeEnv(t, f, "reconnect_min = \"1s\"\nreconnect_max = \"8s\"\nreconnect_stable = \"1m\"", "", Options{Rand: tc.rnd})
				time.Sleep(60 * time.Second)
				synctest.Wait()
				if st := c.Status(); st.State != Retrying || !strings.Contains(st.Reason, "BMC unreachable") || st.NextTry.IsZero() {
					t.Fatalf("status %+v: want retrying, BMC unreachable, a next try", st)
				}
				g := gaps(f.dialTimes())
				if len(g) < len(tc.want) {
					t.Fatalf("only %d attempts in 60 s: %v", len(g)+1, g)
				}
				distinct := map[time.Duration]bool{}
				for i, d := range g[:len(tc.want)] {
					full := tc.want[i] * time.Second
					lo, hi := full/2, full
					switch tc.name {
					case "top":
						lo = full
					case "bottom":
						hi = full / 2
					}
					if d < lo || d > hi {
						t.Fatalf("attempt %d came %v after the previous, want %v to %v (all: %v)", i+2, d, lo, hi, g)
					}
					if tc.want[i] == 8 {
						distinct[d] = true
					}
				}
				if tc.name == "random" && len(distinct) < 2 {
					t.Fatalf("no jitter: every capped delay is the same: %v", g)
				}
			})
		})
	}
}

// TestNotConnectedLogsRetryIn: each failed attempt's daemon log line
// says when the next one comes (an operator, and the scale suite, check
// recovery against it).
func TestNotConnectedLogsRetryIn(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeBMC{fail: fmt.Errorf("fake: %w", ipmilan.ErrNoAnswer)}
		top := func(n int64) int64 { return n - 1 }
		e, _ := fakeEnv(t, f, "reconnect_min = \"1s\"\nreconnect_max = \"8s\"", "", Options{Rand: top})
		time.Sleep(20 * time.Second)
		synctest.Wait()
		var got []string
		for _, l := range strings.Split(e.logBuf.String(), "\n") {
			if strings.Contains(l, "SOL not connected") {
				_, v, _ := strings.Cut(l, "retry_in=")
				v, _, _ = strings.Cut(v, " ")
				got = append(got, v)
			}
		}
		want := []string{"1s", "2s", "4s", "8s"}
		if len(got) < len(want) || !slices.Equal(got[:len(want)], want) {
			t.Fatalf("retry_in of the failed attempts: %q, want %q first", got, want)
		}
	})
}

func TestBackoffResetsAfterStableSession(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeBMC{fail: fmt.Errorf("fake: %w", ipmilan.ErrNoAnswer)}
		top := func(n int64) int64 { return n - 1 }
		_, c := fakeEnv(t, f, "reconnect_min = \"1s\"\nreconnect_max = \"16s\"\nreconnect_stable = \"1m\"", "", Options{Rand: top})
		// Failures at 0, 1, 3, 7 s: the next delay is 8 s.
		time.Sleep(7*time.Second + time.Millisecond)
		synctest.Wait()
		f.mu.Lock()
		f.fail = nil
		f.mu.Unlock()
		time.Sleep(8 * time.Second) // connects at 15 s
		synctest.Wait()
		if st := c.Status(); st.State != Up {
			t.Fatalf("state %v, want up (dials %v)", st.State, gaps(f.dialTimes()))
		}
		// A short session (10 s < stable): the schedule goes on, 16 s.
		time.Sleep(10 * time.Second)
		f.drop()
		synctest.Wait()
		n := len(f.dialTimes())
		time.Sleep(16*time.Second - time.Millisecond)
		synctest.Wait()
		if len(f.dialTimes()) != n {
			t.Fatalf("reconnected sooner than 16 s after a short session: %v", gaps(f.dialTimes()))
		}
		time.Sleep(time.Millisecond)
		synctest.Wait()
		waitUp(t, c)
		// A stable session (2 min): the next delay is the minimum again.
		time.Sleep(2 * time.Minute)
		f.drop()
		synctest.Wait()
		lost := time.Now()
		time.Sleep(1100 * time.Millisecond)
		synctest.Wait()
		ds := f.dialTimes()
		if d := ds[len(ds)-1].Sub(lost); d != time.Second {
			t.Fatalf("after a stable session the reconnect came %v later, want 1s", d)
		}
		waitUp(t, c)
		if st := c.Status(); st.Reconnects != 2 {
			t.Fatalf("reconnects %d, want 2", st.Reconnects)
		}
	})
}

func waitUp(t *testing.T, c *Console) {
	t.Helper()
	synctest.Wait()
	if st := c.Status(); st.State != Up {
		t.Fatalf("state %v (%s), want up", st.State, st.Reason)
	}
}

// TestReclaimFromOwnLostActivation: the BMC activated the payload for a
// try whose answers were all lost; the next try finds it held by that
// session, which is this daemon's own, and reclaims it at once instead of
// waiting out the when-idle grace (10 minutes) for a "foreign" holder.
// Under steal = "always" too, and the reclaim counts as no takeover
// (solgate's own payload: it must not bring the console nearer to
// contested).
func TestReclaimFromOwnLostActivation(t *testing.T) {
	for _, policy := range []string{"when-idle", "always"} {
		t.Run(policy, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				f := &fakeBMC{lose: 1}
				e, c := fakeEnv(t, f, "reconnect_min = \"1s\"\nreconnect_max = \"5m\"", "steal = \""+policy+"\"", Options{})
				time.Sleep(5 * time.Second)
				waitUp(t, c)
				f.mu.Lock()
				reclaimed, steals := f.reclaim, f.steals
				f.mu.Unlock()
				if reclaimed != 1 || steals != 0 {
					t.Errorf("%d reclaims, %d steals; want 1, 0", reclaimed, steals)
				}
				c.mu.Lock()
				takeovers := len(c.own.takeovers)
				c.mu.Unlock()
				if takeovers != 0 {
					t.Errorf("%d takeovers counted for reclaiming solgate's own payload, want 0", takeovers)
				}
				if l := logText(t, e.store, "node1"); !strings.Contains(l, "reclaimed the SOL payload from this daemon's earlier try") {
					t.Errorf("node1's log:\n%s", tailStr(l, 800))
				}
			})
		})
	}
}

func TestContestedStopsTakingThePayload(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeBMC{}
		e, c := fakeEnv(t, f, "reconnect_min = \"1s\"\nreconnect_max = \"4s\"\nsteal_limit = 3\nsteal_window = \"1h\"", "steal = \"always\"", Options{})
		synctest.Wait()
		waitUp(t, c)
		a, err := c.Attach(Identity{User: "carol", Via: "test"}, AttachOptions{})
		must(t, err)
		r := readAll(a)
		// A foreign client keeps taking the payload; solgate takes it
		// back steal_limit times, then stops.
		for i := 1; i <= 5; i++ {
			f.takeForeign(0xf00 + uint32(i))
			time.Sleep(10 * time.Second)
			synctest.Wait()
		}
		steals, _, active := f.counts()
		if steals != 3 {
			t.Fatalf("solgate took the payload %d times, want 3 (the limit)", steals)
		}
		if active {
			t.Fatal("solgate holds the payload after the limit")
		}
		st := c.Status()
		if st.State != Contested || !strings.Contains(st.Reason, "contested") || st.Owner == "" {
			t.Fatalf("status %+v: want contested, naming the holder", st)
		}
		// It stays so: no dialling for hours.
		n := len(f.dialTimes())
		time.Sleep(3 * time.Hour)
		synctest.Wait()
		if len(f.dialTimes()) != n {
			t.Fatalf("contested console dialled %d more times", len(f.dialTimes())-n)
		}
		if !strings.Contains(r.text(), "contested") {
			t.Fatalf("the attached user was not told: %q", tailStr(r.text(), 300))
		}
		// A user with write access reopens: solgate takes it now.
		if err := c.Reopen(Identity{User: "carol"}); err == nil {
			t.Fatal("carol (read-only) could reopen")
		}
		must(t, c.Reopen(Identity{User: "alice", Via: "test"}))
		synctest.Wait()
		waitUp(t, c)
		if steals, _, _ := f.counts(); steals != 4 {
			t.Fatalf("steals %d after reopen, want 4", steals)
		}
		log := logText(t, e.store, "node1")
		for _, want := range []string{"! steal took the SOL payload from BMC session 0xf01 (steal = always; takeover 1 of 3", "! stolen contested:", "! reopen reopen by alice", "(reopen by alice)"} {
			if !strings.Contains(log, want) {
				t.Errorf("log lacks %q:\n%s", want, log)
			}
		}
		a.Close()
	})
}

func TestNeverWaitsForTheOtherClient(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeBMC{foreign: 0xabc}
		_, c := fakeEnv(t, f, "reconnect_min = \"1s\"\nreconnect_max = \"5m\"", "steal = \"never\"", Options{})
		time.Sleep(30 * time.Minute)
		synctest.Wait()
		st := c.Status()
		if st.State != Waiting || st.Owner != "BMC session 0xabc" || !strings.Contains(st.Reason, "waiting for it to be released") {
			t.Fatalf("status %+v: want waiting for BMC session 0xabc", st)
		}
		if steals, _, _ := f.counts(); steals != 0 {
			t.Fatal("never took the payload")
		}
		// Re-checks are capped at a minute: about 30 of them, not 10.
		if n := len(f.dialTimes()); n < 25 || n > 45 {
			t.Fatalf("%d checks in 30 min, want about 30 (capped backoff)", n)
		}
		f.releaseForeign()
		time.Sleep(61 * time.Second)
		synctest.Wait()
		waitUp(t, c)
	})
}

func TestWhenIdleTakesAfterGrace(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeBMC{foreign: 0xabc}
		_, c := fakeEnv(t, f, "reconnect_min = \"1s\"\nreconnect_max = \"5m\"\nsteal_grace = \"10m\"", "", Options{})
		synctest.Wait()
		start := time.Now()
		time.Sleep(10*time.Minute - 5*time.Second)
		synctest.Wait()
		if st := c.Status(); st.State != Waiting || !strings.Contains(st.Reason, "solgate takes it at") {
			t.Fatalf("before the grace: %+v", st)
		}
		time.Sleep(10 * time.Second)
		synctest.Wait()
		waitUp(t, c)
		steals, _, _ := f.counts()
		ds := f.dialTimes()
		if took := ds[len(ds)-1].Sub(start); steals != 1 || took < 10*time.Minute || took > 10*time.Minute+2*time.Second {
			t.Fatalf("took it %v after first seeing it held (steals %d), want right after 10m", took, steals)
		}
	})
}

func TestOwnStalePayloadReclaimed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeBMC{stale: 0x5151}
		dir := t.TempDir()
		_ = dir
		e := newEnv(t, "", []consoleSpec{{name: "node1", bmc: "127.0.0.1:623", extra: "steal = \"never\""}}, Options{}, func(m *Manager) {
			m.open = f.open
			m.sess.set("node1", "127.0.0.1:623", 0x5151)
		})
		synctest.Wait()
		waitUp(t, e.m.Console("node1"))
		if _, reclaims, _ := f.counts(); reclaims != 1 {
			t.Fatalf("reclaims %d, want 1", reclaims)
		}
		if len(f.dialTimes()) != 1 {
			t.Fatalf("%d dials, want 1: reclaimed at once", len(f.dialTimes()))
		}
		if log := logText(t, e.store, "node1"); !strings.Contains(log, "reclaimed the SOL payload from this daemon's previous session 0x5151") {
			t.Fatalf("log:\n%s", log)
		}
	})
}

// TestHandshakesBounded: start-up dials at most max_handshakes consoles
// at once, and every console gets connected.
func TestHandshakesBounded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeBMC{}
		var mu sync.Mutex
		busy, peak := 0, 0
		slow := func(ctx context.Context, cfg ipmilan.Config) (bmcSession, error) {
			mu.Lock()
			busy++
			peak = max(peak, busy)
			mu.Unlock()
			time.Sleep(100 * time.Millisecond) // a handshake takes a while
			mu.Lock()
			busy--
			mu.Unlock()
			return &fakeSession{f: f, id: 1}, nil
		}
		var consoles []consoleSpec
		for i := range 20 {
			consoles = append(consoles, consoleSpec{name: fmt.Sprintf("n%02d", i), bmc: fmt.Sprintf("127.0.0.1:%d", 1000+i)})
		}
		// Every console on its own fake payload.
		e := newEnv(t, "max_handshakes = 3", consoles, Options{}, func(m *Manager) {
			m.open = func(ctx context.Context, cfg ipmilan.Config) (bmcSession, error) {
				s, err := slow(ctx, cfg)
				if err != nil {
					return nil, err
				}
				return &fakeSession{f: &fakeBMC{}, id: s.ID()}, nil
			}
		})
		time.Sleep(time.Second)
		synctest.Wait()
		if peak != 3 {
			t.Fatalf("peak of %d concurrent handshakes, want 3", peak)
		}
		for _, c := range e.m.Consoles() {
			if c.Status().State != Up {
				t.Fatalf("%s: %v", c.Name(), c.Status().State)
			}
		}
	})
}

// TestWrongPasswordIsDown: an authentication failure is not hammered: the
// console is down (with the reason) and retried at the slowest pace.
func TestWrongPasswordIsDown(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeBMC{fail: fmt.Errorf("ipmilan: 127.0.0.1:623: RAKP2: %w", ipmilan.ErrAuth)}
		_, c := fakeEnv(t, f, "reconnect_min = \"1s\"\nreconnect_max = \"10m\"", "", Options{})
		time.Sleep(time.Hour)
		synctest.Wait()
		st := c.Status()
		if st.State != Down || !strings.Contains(st.Reason, "authentication failed") {
			t.Fatalf("status %+v: want down, authentication failed", st)
		}
		g := gaps(f.dialTimes())
		for _, d := range g {
			if d < 5*time.Minute {
				t.Fatalf("retried after %v: a wrong password must not be hammered (%v)", d, g)
			}
		}
		if len(g) < 5 || len(g) > 12 {
			t.Fatalf("%d retries in an hour at a 10 min pace", len(g))
		}
	})
}

// TestStateSinceSpansRetries: Status.Since is when the state began, not
// when its last attempt ended: a console retried for a minute is
// "retrying since" the first failure, "down since" it turned down, and
// "up since" it connected.
func TestStateSinceSpansRetries(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		t0 := time.Now()
		f := &fakeBMC{fail: fmt.Errorf("fake: %w", ipmilan.ErrNoAnswer)}
		_, c := fakeEnv(t, f, "reconnect_min = \"1s\"\nreconnect_max = \"4s\"", "", Options{})
		check := func(what string, state State, since time.Time) {
			t.Helper()
			st := c.Status()
			if st.State != state || st.Since.Sub(since).Abs() > 100*time.Millisecond {
				t.Fatalf("%s: %v since %v after the start, want %v since %v after the start (%d attempts)",
					what, st.State, st.Since.Sub(t0), state, since.Sub(t0), len(f.dialTimes()))
			}
		}
		// then makes the fake answer with err from its next dial on, waits
		// d for at least min attempts, and returns the first one's time.
		then := func(err error, d time.Duration, min int) time.Time {
			f.mu.Lock()
			f.fail = err
			n := len(f.dials)
			f.mu.Unlock()
			time.Sleep(d)
			synctest.Wait()
			dials := f.dialTimes()
			if len(dials) < n+min {
				t.Fatalf("%d attempts in %v", len(dials)-n, d)
			}
			return dials[n]
		}
		time.Sleep(time.Minute)
		synctest.Wait()
		if n := len(f.dialTimes()); n < 10 {
			t.Fatalf("%d attempts in a minute", n)
		}
		check("unreachable for a minute", Retrying, t0)
		downAt := then(fmt.Errorf("ipmilan: 127.0.0.1:623: RAKP2: %w", ipmilan.ErrAuth), time.Hour, 3)
		check("a wrong password for an hour", Down, downAt)
		upAt := then(nil, 10*time.Second, 1)
		check("connected", Up, upAt)
	})
}

// TestReloadWithoutConnectionChangeKeepsBackoff: reloads that change only
// access rules neither make a console that is down for a wrong password
// log in again nor cut its backoff short.
func TestReloadWithoutConnectionChangeKeepsBackoff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeBMC{fail: fmt.Errorf("ipmilan: 127.0.0.1:623: RAKP2: %w", ipmilan.ErrAuth)}
		e, c := fakeEnv(t, f, "reconnect_min = \"1s\"\nreconnect_max = \"10m\"", "", Options{})
		time.Sleep(time.Minute)
		synctest.Wait()
		if st := c.Status(); st.State != Down {
			t.Fatalf("status %+v: want down", st)
		}
		before := len(f.dialTimes())
		cfgText, err := os.ReadFile(e.path)
		must(t, err)
		for i := range 5 {
			e.write(string(cfgText) + fmt.Sprintf("\n[[access]]\nconsoles = \"node1\"\nread = [\"carol\"]\n# %d\n", i))
			if res := e.reload(); len(res.Reconnects) != 0 {
				t.Fatalf("reload %d: reconnects %v", i, res.Reconnects)
			}
			time.Sleep(time.Second)
			synctest.Wait()
		}
		if got := len(f.dialTimes()) - before; got != 0 {
			t.Fatalf("%d logins during 5 reloads that changed only access rules (the backoff is minutes)", got)
		}
	})
}

// TestConfigChangeDuringHandshake: a BMC change saved while the console
// is still connecting to the old BMC takes effect right after.
func TestConfigChangeDuringHandshake(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		var addrs []string
		f := &fakeBMC{}
		e := newEnv(t, "", []consoleSpec{{name: "node1", bmc: "127.0.0.1:1001"}}, Options{}, func(m *Manager) {
			m.open = func(ctx context.Context, cfg ipmilan.Config) (bmcSession, error) {
				mu.Lock()
				addrs = append(addrs, cfg.Addr)
				mu.Unlock()
				time.Sleep(time.Second) // a slow handshake
				return f.open(ctx, cfg)
			}
		})
		time.Sleep(100 * time.Millisecond) // connecting to :1001
		e.write(testConfig(e.dir, "", []consoleSpec{{name: "node1", bmc: "127.0.0.1:1002"}}, ""))
		e.reload()
		time.Sleep(5 * time.Second)
		synctest.Wait()
		mu.Lock()
		got := strings.Join(addrs, " ")
		mu.Unlock()
		if got != "127.0.0.1:1001 127.0.0.1:1002" {
			t.Fatalf("dialled %s, want the old BMC then the new one", got)
		}
		waitUp(t, e.m.Console("node1"))
	})
}

// TestReloadDoesNotWaitForOldBMCs: a reload that moves consoles to new
// BMCs (the old ones no longer answer, so deactivating their payloads
// takes the IPMI timeouts) returns at once; each console's supervisor
// closes its old session and then dials the new BMC.
func TestReloadDoesNotWaitForOldBMCs(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const delay = 10 * time.Second
		var mu sync.Mutex
		bmcs := map[string]*fakeBMC{}
		spec := func(port int) []consoleSpec {
			var cs []consoleSpec
			for i := range 3 {
				cs = append(cs, consoleSpec{name: fmt.Sprintf("node%d", i+1), bmc: fmt.Sprintf("127.0.0.1:%d", port+i)})
			}
			return cs
		}
		e := newEnv(t, "", spec(1001), Options{}, func(m *Manager) {
			m.open = func(ctx context.Context, cfg ipmilan.Config) (bmcSession, error) {
				mu.Lock()
				f := bmcs[cfg.Addr]
				if f == nil {
					f = &fakeBMC{}
					if strings.Contains(cfg.Addr, ":100") {
						f.closeDelay = delay // the old BMCs
					}
					bmcs[cfg.Addr] = f
				}
				mu.Unlock()
				return f.open(ctx, cfg)
			}
		})
		for _, c := range e.m.Consoles() {
			waitUp(t, c)
		}
		e.write(testConfig(e.dir, "", spec(2001), ""))
		t0 := time.Now()
		res := e.reload()
		if took := time.Since(t0); took >= delay {
			t.Errorf("Apply took %v: it waited for the old BMCs (%v each)", took, delay)
		}
		if len(res.Reconnects) != 3 {
			t.Fatalf("reload: %+v", res)
		}
		time.Sleep(delay + time.Second)
		for _, c := range e.m.Consoles() {
			waitUp(t, c)
			if st := c.Status(); !strings.Contains(st.BMC, ":200") {
				t.Errorf("%s: BMC %s, want the new one", st.Name, st.BMC)
			}
		}
		mu.Lock()
		defer mu.Unlock()
		for addr, f := range bmcs {
			if n := len(f.dialTimes()); n != 1 {
				t.Errorf("%s: dialled %d times, want 1", addr, n)
			}
		}
		if len(bmcs) != 6 {
			t.Errorf("%d BMCs dialled, want 6", len(bmcs))
		}
	})
}

// TestStealChangeWithoutReconnect: a new steal policy keeps a live session
// (it matters only when another client holds the payload), and a console
// waiting for the payload applies it at once, not at its next re-check.
func TestStealChangeWithoutReconnect(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		server := "reconnect_min = \"1s\"\nreconnect_max = \"5m\""
		setSteal := func(e *testEnv, from, to string) ApplyResult {
			t.Helper()
			text, err := os.ReadFile(e.path)
			must(t, err)
			e.write(strings.Replace(string(text), `steal = "`+from+`"`, `steal = "`+to+`"`, 1))
			return e.reload()
		}
		// Up: no reconnect, no new login.
		f := &fakeBMC{}
		e, c := fakeEnv(t, f, server, `steal = "never"`, Options{})
		waitUp(t, c)
		dials := len(f.dialTimes())
		if res := setSteal(e, "never", "always"); len(res.Reconnects) != 0 || len(res.Updated) != 1 {
			t.Fatalf("apply: %+v, want node1 updated, not reconnected", res)
		}
		time.Sleep(time.Minute)
		waitUp(t, c)
		if n := len(f.dialTimes()); n != dials {
			t.Fatalf("%d logins after the policy change, want none", n-dials)
		}

		// Waiting for another client: "always" takes the payload at once.
		f2 := &fakeBMC{foreign: 0xabc}
		e2, c2 := fakeEnv(t, f2, server, `steal = "never"`, Options{})
		time.Sleep(10 * time.Minute) // re-checks are a minute apart by now
		synctest.Wait()
		if st := c2.Status(); st.State != Waiting {
			t.Fatalf("status %+v: want waiting", st)
		}
		setSteal(e2, "never", "always")
		time.Sleep(time.Second)
		waitUp(t, c2)
		if steals, _, _ := f2.counts(); steals != 1 {
			t.Fatalf("%d steals, want 1", steals)
		}
	})
}

// TestCredentialCheckUnreachable: a check of new credentials that fails
// for another reason than authentication (no answer, no free session
// slot) says it could not check them, not that they are wrong.
// TestCredentialChecksBounded: a password file shared by many consoles
// that are up is checked by a few workers (half the handshake limit), not
// by a goroutine per console, and every console's check still happens and
// is summed up in one daemon log line.
func TestCredentialChecksBounded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const n, limit = 40, 8
		var (
			mu            sync.Mutex
			bmcs          = map[string]*fakeBMC{}
			checking      bool
			running, most int
			checks        int
		)
		open := func(ctx context.Context, cfg ipmilan.Config) (bmcSession, error) {
			mu.Lock()
			f := bmcs[cfg.Addr]
			if f == nil {
				f = &fakeBMC{}
				bmcs[cfg.Addr] = f
			}
			check := checking
			if check {
				checks++
				running++
				most = max(most, running)
			}
			mu.Unlock()
			if check {
				time.Sleep(time.Second) // a BMC across the network
				mu.Lock()
				running--
				mu.Unlock()
			}
			return f.open(ctx, cfg)
		}
		var specs []consoleSpec
		for i := range n {
			specs = append(specs, consoleSpec{name: fmt.Sprintf("node%02d", i), bmc: fmt.Sprintf("127.0.0.1:%d", 10000+i)})
		}
		e := newEnv(t, "", specs, Options{MaxHandshakes: limit}, func(m *Manager) { m.open = open })
		synctest.Wait()
		for _, s := range specs {
			if st := e.m.Console(s.name).Status(); st.State != Up {
				t.Fatalf("%s: %v (%s), want up", s.name, st.State, st.Reason)
			}
		}
		mu.Lock()
		checking = true
		mu.Unlock()
		must(t, os.WriteFile(filepath.Join(e.dir, "bmc.pass"), []byte("rotated\n"), 0o600))
		if res := e.reload(); len(res.Credentials) != n || len(res.Reconnects) != 0 {
			t.Fatalf("apply: %d credential changes, %d reconnects; want %d, 0", len(res.Credentials), len(res.Reconnects), n)
		}
		time.Sleep(500 * time.Millisecond) // the first checks are under way
		synctest.Wait()
		// Goroutines checking credentials, waiting for a slot or for
		// the BMC (stacks, not NumGoroutine: other tests' goroutines
		// come and go).
		buf := make([]byte, 8<<20)
		stacks := string(buf[:runtime.Stack(buf, true)])
		if k := strings.Count(stacks, "conserver.(*Console).checkCredentials("); k > limit/2 || k < 1 {
			t.Errorf("%d goroutines checking while %d consoles' credentials are checked; want 1 to %d workers", k, n, limit/2)
		}
		time.Sleep(time.Minute)
		synctest.Wait()
		mu.Lock()
		defer mu.Unlock()
		if checks != n || most > limit/2 || most < 1 {
			t.Errorf("%d checks, at most %d at once; want %d, at most %d", checks, most, n, limit/2)
		}
		for _, s := range specs {
			if l := logText(t, e.store, s.name); !strings.Contains(l, "the BMC takes them") {
				t.Errorf("%s's log:\n%s", s.name, tailStr(l, 400))
			}
		}
		if l := e.logBuf.String(); strings.Count(l, "the BMCs take them") != 1 {
			t.Errorf("daemon log, want one summary line:\n%s", tailStr(l, 2000))
		}
	})
}

func TestCredentialCheckUnreachable(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeBMC{}
		e, c := fakeEnv(t, f, "reconnect_min = \"1s\"\nreconnect_max = \"5m\"", "", Options{})
		waitUp(t, c)
		f.mu.Lock()
		f.fail = fmt.Errorf("ipmilan: 127.0.0.1:623: %w", ipmilan.ErrNoAnswer)
		f.mu.Unlock()
		must(t, os.WriteFile(filepath.Join(e.dir, "bmc.pass"), []byte("rotated\n"), 0o600))
		if res := e.reload(); len(res.Credentials) != 1 || len(res.Reconnects) != 0 {
			t.Fatalf("apply: %+v", res)
		}
		time.Sleep(time.Minute)
		synctest.Wait()
		waitUp(t, c)
		if l := logText(t, e.store, "node1"); !strings.Contains(l, "BMC credentials changed; checking them with a short-lived session failed (") {
			t.Errorf("node1's log:\n%s", tailStr(l, 600))
		}
		if l := e.logBuf.String(); !strings.Contains(l, "new BMC credentials could not be checked") || strings.Contains(l, "do not work") {
			t.Errorf("daemon log:\n%s", l)
		}
	})
}
