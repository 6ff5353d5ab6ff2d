package conserver

import (
	"strings"
	"testing"
	"testing/synctest"
)

// TestReopenAdmin: the host's administrator (solgate ctl) reopens a
// console no access rule lets them write to; a plain Reopen by the same
// name is refused. The reopen is an event line naming them.
func TestReopenAdmin(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeBMC{}
		e, c := fakeEnv(t, f, "", "", Options{})
		waitUp(t, c)
		n := len(f.dialTimes())
		id := Identity{User: "root", Via: "ctl", Remote: "pid 42"}
		if err := c.Reopen(id); err == nil {
			t.Fatal("Reopen by a user the configuration does not know succeeded")
		}
		must(t, c.ReopenAdmin(id))
		synctest.Wait()
		waitUp(t, c)
		if got := len(f.dialTimes()); got != n+1 {
			t.Fatalf("dialled %d times after ReopenAdmin, want %d", got, n+1)
		}
		if st := c.Status(); st.Reconnects != 1 {
			t.Errorf("reconnects %d, want 1", st.Reconnects)
		}
		if log := logText(t, e.store, "node1"); !strings.Contains(log, "! reopen reopen by root") {
			t.Errorf("log lacks the reopen event:\n%s", log)
		}
	})
}
