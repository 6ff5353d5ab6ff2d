package test

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/solgate/solgate/conserver"
	"github.com/solgate/solgate/conserver/config"
	"github.com/solgate/solgate/ipmilan/bmcsim"
	"github.com/solgate/solgate/logstore"
	"github.com/solgate/solgate/test/internal/testkit"
)

// managerEnv is a console manager in this process, for tests that attach.
type managerEnv struct {
	m     *conserver.Manager
	store *logstore.Store
	log   *testkit.LockedBuffer
}

func startManager(t testing.TB, cfgPath string) *managerEnv {
	t.Helper()
	cfg, err := config.Load(cfgPath)
	must(t, err)
	store, err := logstore.Open(cfg.Server.LogDir, logstore.Options{})
	must(t, err)
	must(t, ensureTestDir(cfg.Server.StateDir))
	e := &managerEnv{store: store, log: &testkit.LockedBuffer{}}
	m, err := conserver.NewManager(conserver.Options{Store: store, StateDir: cfg.Server.StateDir,
		Logger: slog.New(slog.NewTextHandler(e.log, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	must(t, err)
	e.m = m
	_, err = m.Apply(context.Background(), cfg)
	must(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := m.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		store.Close()
		if t.Failed() {
			t.Logf("daemon log:\n%s", testkit.Tail(e.log.String(), 6000))
		}
	})
	return e
}

// attached is an attachment whose output is collected.
type attached struct {
	a  *conserver.Attachment
	mu sync.Mutex
	b  []byte
}

func attachAs(t testing.TB, c *conserver.Console, user string) *attached {
	t.Helper()
	a, err := c.Attach(conserver.Identity{User: user, Via: "test"}, conserver.AttachOptions{})
	must(t, err)
	at := &attached{a: a}
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := a.Read(buf)
			at.mu.Lock()
			at.b = append(at.b, buf[:n]...)
			at.mu.Unlock()
			if err == io.EOF {
				return
			}
		}
	}()
	t.Cleanup(func() { a.Close() })
	return at
}

func (at *attached) text() string {
	at.mu.Lock()
	defer at.mu.Unlock()
	return string(at.b)
}

func (at *attached) wait(t testing.TB, s string, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !strings.Contains(at.text(), s) {
		if time.Now().After(deadline) {
			t.Fatalf("attached user did not see %q within %v; saw %q", s, d, testkit.Tail(at.text(), 600))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func waitConsole(t testing.TB, c *conserver.Console, st conserver.State, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for c.Status().State != st {
		if time.Now().After(deadline) {
			s := c.Status()
			t.Fatalf("%s: state %v (%s), want %v after %v", c.Name(), s.State, s.Reason, st, d)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

const ownershipAccess = `
[[user]]
name = "alice"

[[access]]
consoles = "*"
read = ["alice"]
write = ["alice"]
power = ["alice"]
`

// ipmitoolTakes makes ipmitool take the SOL payload from whoever holds it
// (ipmitool sol deactivate, then sol activate on a pty, as an operator
// would) and returns the running ipmitool.
func ipmitoolTakes(t *testing.T, bin string, sim *simBMC) *simConsole {
	t.Helper()
	if out, err := bmcsimRun(t, peerTimeout, bin, ipmitoolSOLArgs(sim, sim.Port, "3", "sol", "deactivate")...); err != nil {
		t.Fatalf("ipmitool sol deactivate: %v\n%s", err, out)
	}
	c := startSimConsole(t, bin, ipmitoolSOLArgs(sim, sim.Port, "3", "sol", "activate")...)
	c.waitText("[SOL Session operational", 10*time.Second)
	return c
}

// TestOwnershipNeverWaitsForIpmitool: with steal = "never", an operator's
// ipmitool takes node1's payload; solgate waits (the attached user is
// told who holds it) and reconnects only once ipmitool has left.
func TestOwnershipNeverWaitsForIpmitool(t *testing.T) {
	t.Parallel()
	bin := needTool(t, "ipmitool")
	sim := startSimBMCLow(t, bmcsim.Config{PowerOn: true, SOL: bmcsim.SOLConfig{NoBootText: true}})
	dir := t.TempDir()
	cfg := writeServeConfig(t, dir, `reconnect_min = "2s"
reconnect_max = "2s"`, []servedConsole{{name: "node1", bmc: sim.Addr, extra: `steal = "never"`}})
	appendFile(t, cfg, ownershipAccess)
	e := startManager(t, cfg)
	c := e.m.Console("node1")
	waitConsole(t, c, conserver.Up, 10*time.Second)
	u := attachAs(t, c, "alice")
	u.wait(t, "node1: connected since", 5*time.Second)

	tool := ipmitoolTakes(t, bin, sim)
	waitConsole(t, c, conserver.Waiting, 15*time.Second)
	u.wait(t, "SOL held by another client (BMC session 0x", 5*time.Second)
	u.wait(t, "steal = never: waiting for it to be released", 5*time.Second)
	sim.HostWrite([]byte("for the operator only\r\n"))
	tool.waitText("for the operator only", 5*time.Second)
	// Several re-checks later, solgate still leaves it alone.
	time.Sleep(5 * time.Second)
	if st := c.Status(); st.State != conserver.Waiting || !strings.HasPrefix(st.Owner, "BMC session 0x") {
		t.Fatalf("status %+v: want waiting, naming the holder", st)
	}
	if strings.Contains(u.text(), "for the operator only") {
		t.Fatal("solgate received output while ipmitool held the payload")
	}
	tool.typeText("\r~.")
	if _, ok := tool.wait(10 * time.Second); !ok {
		t.Fatal("ipmitool did not leave")
	}
	waitConsole(t, c, conserver.Up, 15*time.Second)
	u.wait(t, "node1: connected", 5*time.Second)
	sim.HostWrite([]byte("back with solgate\r\n"))
	u.wait(t, "back with solgate", 5*time.Second)
	if n := strings.Count(logTextOf(t, e.store, "node1"), "took the SOL payload"); n != 0 {
		t.Fatalf("solgate took the payload %d times with steal = never", n)
	}
}

// TestOwnershipAlwaysStopsFighting: with steal = "always" solgate takes
// the payload back from ipmitool at once, steal_limit times, then stops
// (contested) instead of fighting; the attached user is told each time.
func TestOwnershipAlwaysStopsFighting(t *testing.T) {
	t.Parallel()
	bin := needTool(t, "ipmitool")
	sim := startSimBMCLow(t, bmcsim.Config{PowerOn: true, SOL: bmcsim.SOLConfig{NoBootText: true}})
	dir := t.TempDir()
	cfg := writeServeConfig(t, dir, `reconnect_min = "2s"
reconnect_max = "2s"
steal_limit = 2
steal_window = "1h"`, []servedConsole{{name: "node1", bmc: sim.Addr, extra: `steal = "always"`}})
	appendFile(t, cfg, ownershipAccess)
	e := startManager(t, cfg)
	c := e.m.Console("node1")
	waitConsole(t, c, conserver.Up, 10*time.Second)
	u := attachAs(t, c, "alice")
	u.wait(t, "node1: connected since", 5*time.Second)

	for round := 1; round <= 2; round++ {
		tool := ipmitoolTakes(t, bin, sim)
		// solgate takes it back from ipmitool.
		deadline := time.Now().Add(15 * time.Second)
		for strings.Count(logTextOf(t, e.store, "node1"), "took the SOL payload from BMC session") < round {
			if time.Now().After(deadline) {
				t.Fatalf("round %d: solgate did not take the payload back", round)
			}
			time.Sleep(50 * time.Millisecond)
		}
		waitConsole(t, c, conserver.Up, 10*time.Second)
		u.wait(t, "takeover "+string(rune('0'+round))+" of 2 allowed", 5*time.Second)
		sim.HostWrite([]byte("solgate again\r\n"))
		u.wait(t, "solgate again", 5*time.Second)
		tool.cmd.Process.Kill()
	}
	// The third time, solgate stops: contested.
	tool := ipmitoolTakes(t, bin, sim)
	waitConsole(t, c, conserver.Contested, 15*time.Second)
	u.wait(t, "contested: the SOL payload was taken back from solgate after 2 takeovers", 5*time.Second)
	time.Sleep(5 * time.Second)
	if st := c.Status(); st.State != conserver.Contested {
		t.Fatalf("status %+v: want contested", st)
	}
	sim.HostWrite([]byte("the operator keeps it\r\n"))
	tool.waitText("the operator keeps it", 5*time.Second)
	if n := strings.Count(logTextOf(t, e.store, "node1"), "took the SOL payload from BMC session"); n != 2 {
		t.Fatalf("solgate took the payload %d times, want 2 (steal_limit)", n)
	}
	// A user with write access takes it now.
	must(t, c.Reopen(conserver.Identity{User: "alice", Via: "test"}))
	waitConsole(t, c, conserver.Up, 10*time.Second)
	if log := logTextOf(t, e.store, "node1"); !strings.Contains(log, "(reopen by alice)") {
		t.Fatalf("no takeover by alice in the log:\n%s", log)
	}
}

func logTextOf(t testing.TB, store *logstore.Store, console string) string {
	t.Helper()
	lines, err := store.Tail(console, 1<<20)
	must(t, err)
	var b strings.Builder
	for _, l := range lines {
		if l.Event != "" {
			b.WriteString("! " + string(l.Event) + " ")
		}
		b.Write(l.Text)
		b.WriteByte('\n')
	}
	return b.String()
}
