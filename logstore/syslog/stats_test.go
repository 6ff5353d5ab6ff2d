package syslog_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/solgate/solgate/logstore/syslog"
)

// TestStatsWhileReceiverTakesNothing: a receiver that keeps the
// connection but reads nothing fills the target's window, and the target
// waits there for as long as that lasts; its backlog figures (what the
// metrics and their alerts read) must go on showing the backlog growing
// older, not stay what they were when the receiver stopped taking.
func TestStatsWhileReceiverTakesNothing(t *testing.T) {
	store := openStore(t, t.TempDir())
	w := mustWriter(t, store, "n1")
	line := strings.Repeat("y", 100)
	for i := range 5000 {
		fmt.Fprintf(w, "%05d %s\r\n", i, line)
	}
	w.Flush()
	// A small receive buffer: a few kilobytes fill the receiver's window,
	// while a window of 40 messages still fits in the sender's socket
	// buffer, so the target waits for acknowledgements rather than in a
	// write.
	addr := silentReceiver(t, 2048)
	sh := startShipper(t, store, t.TempDir(), syslog.Target{Network: "tcp", Address: addr, Facility: 16, Backfill: true, Window: 40})
	if last := waitTakesNothing(t, sh, func(st syslog.TargetStats) bool { return st.InFlight > 0 }); last >= 5000 {
		t.Fatalf("all %d messages were taken: the window never closed", last)
	}
	time.Sleep(1500 * time.Millisecond) // a refresh after the window filled
	before := sh.Stats()[0]
	time.Sleep(3 * time.Second)
	after := sh.Stats()[0]
	t.Logf("sent %d; in flight %d, backlog %d lines on %d consoles, %v old; 3 s later %v old", after.Sent, after.InFlight, after.BacklogLines, after.BacklogConsoles, before.BacklogAge.Round(time.Millisecond), after.BacklogAge.Round(time.Millisecond))
	if !after.Connected || after.InFlight == 0 || after.BacklogConsoles != 1 {
		t.Errorf("stats %+v: want connected, messages in flight, one console behind", after)
	}
	if grew := after.BacklogAge - before.BacklogAge; grew < 2*time.Second {
		t.Errorf("the backlog's age went from %v to %v in 3 s: the figures are not refreshed while the window is full", before.BacklogAge, after.BacklogAge)
	}
}
