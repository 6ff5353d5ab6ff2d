package conserver

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/solgate/solgate/conserver/config"
	"github.com/solgate/solgate/ipmilan"
	"github.com/solgate/solgate/ipmilan/bmcsim"
	"github.com/solgate/solgate/logstore"
)

// established counts the SOL sessions a console's log says were opened.
func established(t testing.TB, e *testEnv, console string) int {
	return strings.Count(logText(t, e.store, console), "! reconnect SOL session established")
}

// TestReloadWithLiveSessions: edits saved to the configuration files while
// consoles are connected and users attached, picked up by the watcher:
// one console's BMC changed, one added, one removed, one user's access
// revoked. Exactly the expected consoles reconnect, the revoked and the
// removed console's users are detached with their reason, the rest is
// untouched; an invalid save changes nothing.
func TestReloadWithLiveSessions(t *testing.T) {
	t.Parallel()
	sims := map[string]*sim{}
	for _, n := range []string{"s1", "s1b", "s2", "s3", "s4"} {
		sims[n] = startSim(t, bmcsim.Config{PowerOn: true, SOL: bmcsim.SOLConfig{NoBootText: true}})
	}
	access := func(read, write string) string {
		return "[[access]]\nconsoles = \"*\"\nread = [" + read + "]\nwrite = [" + write + "]\npower = [\"alice\"]\n"
	}
	before := []consoleSpec{{name: "node1", bmc: sims["s1"].Addr}, {name: "node2", bmc: sims["s2"].Addr}, {name: "node3", bmc: sims["s3"].Addr}}
	e := newEnv(t, "", before, Options{})
	e.write(testConfig(e.dir, "", before, access(`"alice", "bob", "carol"`, `"alice", "bob"`)))
	e.reload()
	for _, n := range []string{"node1", "node2", "node3"} {
		waitState(t, e.m.Console(n), Up, 10*time.Second)
	}
	w, err := config.NewWatcher(e.path, config.WatchOptions{Debounce: 50 * time.Millisecond, Interval: -1})
	must(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	watchDone := make(chan error, 1)
	go func() { watchDone <- w.Run(ctx) }()
	applied := make(chan ApplyResult, 4)
	rejected := make(chan error, 4)
	go func() {
		for ev := range w.Events() {
			if ev.Err != nil {
				rejected <- ev.Err
				continue
			}
			res, err := e.m.Apply(context.Background(), ev.Config)
			if err != nil {
				rejected <- err
				continue
			}
			applied <- res
		}
	}()
	t.Cleanup(func() { cancel(); <-watchDone })

	attach := func(console, user string) (*Attachment, *reader) {
		a, err := e.m.Console(console).Attach(Identity{User: user, Via: "test"}, AttachOptions{})
		must(t, err)
		return a, readAll(a)
	}
	a1, r1 := attach("node1", "alice")
	b2, r2 := attach("node2", "bob")
	a2, ra2 := attach("node2", "alice")
	c3, r3 := attach("node3", "carol")
	for _, r := range []*reader{r1, r2, ra2, r3} {
		r.wait(t, "connected since", 5*time.Second)
	}
	node2 := e.m.Console("node2")
	sessBefore := sims["s2"].Stats().SessionsOpened

	// An invalid save: nothing changes.
	e.write(testConfig(e.dir, "bogus_key = 1\n", before, access(`"alice", "carol"`, `"alice"`)))
	select {
	case err := <-rejected:
		if !strings.Contains(err.Error(), "solgate.toml:") || !strings.Contains(err.Error(), "bogus_key") {
			t.Fatalf("rejection %v: want file:line naming bogus_key", err)
		}
	case res := <-applied:
		t.Fatalf("an invalid config was applied: %+v", res)
	case <-time.After(10 * time.Second):
		t.Fatal("the invalid save was not noticed")
	}
	if b2.Cause() != nil || len(e.m.sortedNames()) != 3 {
		t.Fatal("the invalid save changed something")
	}

	// The real edit.
	after := []consoleSpec{{name: "node1", bmc: sims["s1b"].Addr}, {name: "node2", bmc: sims["s2"].Addr, extra: "log_rotate_size = \"32MiB\""}, {name: "node4", bmc: sims["s4"].Addr}}
	e.write(testConfig(e.dir, "", after, access(`"alice", "carol"`, `"alice"`)))
	var res ApplyResult
	select {
	case res = <-applied:
	case err := <-rejected:
		t.Fatalf("rejected: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("the edit was not applied")
	}
	if strings.Join(res.Started, ",") != "node4" || strings.Join(res.Stopped, ",") != "node3" ||
		strings.Join(res.Reconnects, ",") != "node1" || strings.Join(res.Updated, ",") != "node2" || res.Detached != 1 {
		t.Fatalf("apply result %+v", res)
	}
	if e.m.Console("node2") != node2 {
		t.Fatal("node2 was replaced")
	}
	waitState(t, e.m.Console("node4"), Up, 10*time.Second)
	waitFor(t, "node1 on its new BMC", 10*time.Second, func() bool {
		return e.m.Console("node1").Status().State == Up && sims["s1b"].Stats().SOLActive == 1
	})
	// The revoked user is detached with the reason; alice on node2 stays.
	<-r2.done
	if err := b2.Cause(); !errors.Is(err, ErrDenied) || !strings.Contains(err.Error(), "access revoked by a configuration change") {
		t.Fatalf("bob's cause: %v", err)
	}
	if !strings.Contains(r2.text(), "node2: access revoked by a configuration change") {
		t.Fatalf("bob was not told: %q", tailStr(r2.text(), 300))
	}
	if a2.Cause() != nil || a1.Cause() != nil {
		t.Fatalf("alice was detached: %v / %v", a2.Cause(), a1.Cause())
	}
	// The removed console's user is told, its payload and session are gone.
	<-r3.done
	if err := c3.Cause(); !errors.Is(err, ErrClosed) || !strings.Contains(r3.text(), "console removed from the configuration") {
		t.Fatalf("carol on node3: %v; %q", err, tailStr(r3.text(), 200))
	}
	waitFor(t, "node3's payload deactivated and session closed", 5*time.Second, func() bool {
		st := sims["s3"].Stats()
		return st.SOLActive == 0 && st.SessionsActive == 0
	})
	if e.m.Console("node3") != nil {
		t.Fatal("node3 still managed")
	}
	if log := logText(t, e.store, "node3"); !strings.Contains(log, "! reconnect console stopped: console removed from the configuration") {
		t.Fatalf("node3's log:\n%s", log)
	}
	// Exactly the expected reconnects.
	r1.wait(t, "reconnecting: configuration changed", 5*time.Second)
	for console, want := range map[string]int{"node1": 2, "node2": 1, "node4": 1} {
		if got := established(t, e, console); got != want {
			t.Errorf("%s: %d sessions established, want %d", console, got, want)
		}
	}
	if !strings.Contains(logText(t, e.store, "node2"), "! note log rotation and retention settings changed") {
		t.Error("node2's log settings change is not in its log")
	}
	if st := sims["s2"].Stats(); st.SessionsOpened != sessBefore || st.SOLActivations != 1 {
		t.Errorf("node2's BMC saw new sessions: %+v", st)
	}
	if st := sims["s1"].Stats(); st.SOLActive != 0 || st.SessionsActive != 0 {
		t.Errorf("node1's old BMC still holds a session: %+v", st)
	}
	// The same content saved again: no event, nothing done.
	e.write(testConfig(e.dir, "", after, access(`"alice", "carol"`, `"alice"`)) + "\n# a comment\n")
	select {
	case res := <-applied:
		t.Fatalf("an identical config was applied: %+v", res)
	case <-time.After(500 * time.Millisecond):
	}
	for _, a := range []*Attachment{a1, a2} {
		a.Close()
	}
}

// TestFailedStartRetried: a console whose log cannot be opened (here:
// another process holds it) is reported as failed and started by the next
// Apply, even of the same configuration.
func TestFailedStartRetried(t *testing.T) {
	f1, f2 := &fakeBMC{}, &fakeBMC{}
	var other *logstore.Writer
	e := newEnv(t, "", []consoleSpec{{name: "node1", bmc: "127.0.0.1:623"}, {name: "node2", bmc: "127.0.0.1:624"}}, Options{}, func(m *Manager) {
		m.open = func(ctx context.Context, cfg ipmilan.Config) (bmcSession, error) {
			if strings.HasSuffix(cfg.Addr, ":624") {
				return f2.open(ctx, cfg)
			}
			return f1.open(ctx, cfg)
		}
		s2, err := logstore.Open(m.store.Dir(), logstore.Options{}) // stands for another process
		must(t, err)
		t.Cleanup(func() { s2.Close() })
		other, err = s2.Writer("node2")
		must(t, err)
	})
	if e.m.Console("node2") != nil || e.m.Console("node1") == nil {
		t.Fatal("node2 started although its log is held elsewhere, or node1 did not")
	}
	if got := e.m.NotStarted(); len(got) != 1 || got[0] != "node2" {
		t.Fatalf("NotStarted = %v", got)
	}
	res := e.reload() // the same files
	if len(res.Failed) != 1 || res.Unchanged {
		t.Fatalf("reload while still held: %+v", res)
	}
	other.Close()
	res = e.reload()
	if len(res.Started) != 1 || res.Started[0] != "node2" || len(res.Failed) != 0 || len(res.Reconnects) != 0 {
		t.Fatalf("reload after the log was freed: %+v", res)
	}
	waitState(t, e.m.Console("node2"), Up, 5*time.Second)
	if res := e.reload(); !res.Unchanged {
		t.Fatalf("reload with everything running: %+v", res)
	}
}

// TestReloadCredentials: a new BMC password saved while a console is up
// keeps its SOL session (a wrong one, or one saved before the BMCs have
// it, must not take every console down), is checked with a short-lived
// session at once (the console log says whether the BMC takes it) and is
// used by its next connection; a console down for a wrong password tries
// the fixed one at once, not at the end of its backoff.
func TestReloadCredentials(t *testing.T) {
	t.Parallel()
	s1 := startSim(t, bmcsim.Config{PowerOn: true, SOL: bmcsim.SOLConfig{NoBootText: true}})
	s2 := startSim(t, bmcsim.Config{PowerOn: true, SOL: bmcsim.SOLConfig{NoBootText: true}})
	server := "reconnect_min = \"50ms\"\nreconnect_max = \"10m\"\nreconnect_stable = \"2s\"\n"
	consoles := []consoleSpec{{name: "node1", bmc: s1.Addr}, {name: "node2", bmc: s2.Addr, extra: `password_file = "node2.pass"`}}
	e := newEnv(t, server, consoles[:1], Options{})
	pass := func(file, pw string) { must(t, os.WriteFile(filepath.Join(e.dir, file), []byte(pw+"\n"), 0o600)) }
	pass("node2.pass", "not-the-password")
	e.write(testConfig(e.dir, server, consoles, ""))
	e.reload()
	n1, n2 := e.m.Console("node1"), e.m.Console("node2")
	waitState(t, n1, Up, 10*time.Second)
	waitState(t, n2, Down, 10*time.Second)
	logHas := func(console, text string) {
		t.Helper()
		waitFor(t, console+"'s log: "+text, 10*time.Second, func() bool { return strings.Contains(logText(t, e.store, console), text) })
	}

	// node1's password file now says something its BMC does not know;
	// node2's is fixed.
	pass("bmc.pass", "rotated-password")
	pass("node2.pass", simPassword)
	res := e.reload()
	if len(res.Reconnects) != 0 || strings.Join(res.Credentials, ",") != "node1,node2" {
		t.Fatalf("apply: %+v, want no reconnects and node1,node2 with new credentials", res)
	}
	waitState(t, n2, Up, 5*time.Second) // its backoff was minutes: the fix was tried at once
	logHas("node1", "BMC credentials changed, but a short-lived session with them failed: authentication failed")
	// The daemon log sums the checks up in one line.
	waitFor(t, "the daemon log's line on the check", 5*time.Second, func() bool {
		return strings.Contains(e.logBuf.String(), "new BMC credentials do not work")
	})
	if l := e.logBuf.String(); strings.Count(l, "new BMC credentials do not work") != 1 || !strings.Contains(l, "failed=node1 count=1 of=1") {
		t.Errorf("daemon log on the check:\n%s", l)
	}
	// Back to the BMC's password: the check says it works.
	pass("bmc.pass", simPassword)
	e.reload()
	logHas("node1", "BMC credentials changed and checked with a short-lived session: the BMC takes them")
	waitFor(t, "the daemon log's line on the second check", 5*time.Second, func() bool {
		return strings.Contains(e.logBuf.String(), "new BMC credentials checked: the BMCs take them")
	})
	if n1.Status().State != Up || established(t, e, "node1") != 1 {
		t.Fatalf("node1: %v after %d sessions, want its one session kept", n1.Status().State, established(t, e, "node1"))
	}
	// Its next connection uses the credentials of the file.
	pass("bmc.pass", "rotated-password")
	e.reload()
	must(t, n1.ReopenAdmin(Identity{User: "root", Via: "ctl", Remote: "pid 1"}))
	waitState(t, n1, Down, 10*time.Second)
	if st := n1.Status(); !strings.Contains(st.Reason, "authentication") {
		t.Errorf("node1 after reopen: %v %q, want down for authentication", st.State, st.Reason)
	}
}
