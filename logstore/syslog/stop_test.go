package syslog_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/solgate/solgate/logstore/syslog"
)

// TestStopWithReceiverWindowClosed: removing a target whose receiver
// accepted the connection but never reads (its TCP window closes, so a
// write blocks) returns within a few seconds, not after the 30 s write
// timeout (Apply holds the Shipper's lock meanwhile, so a reload waited
// for it).
func TestStopWithReceiverWindowClosed(t *testing.T) {
	store := openStore(t, t.TempDir())
	w := mustWriter(t, store, "n1")
	// Far more than the socket buffers hold (at most 4 MiB to send, the
	// receiver's window of a connection never read is small).
	line := strings.Repeat("x", 180)
	for i := range 60000 {
		fmt.Fprintf(w, "%05d %s\r\n", i, line)
		if i%1000 == 999 {
			w.Flush()
		}
	}
	w.Flush()

	sh := startShipper(t, store, t.TempDir(), syslog.Target{Network: "tcp", Address: silentReceiver(t, 0), Facility: 16, Backfill: true, Window: 1 << 20})
	// Wait until the receiver's TCP takes nothing more: the target's
	// goroutine is then blocked writing.
	if last := waitTakesNothing(t, sh, func(st syslog.TargetStats) bool { return st.Sent > 0 }); last >= 60000 {
		t.Fatalf("all %d messages were taken: the window never closed", last)
	}
	start := time.Now()
	if err := sh.Apply(nil); err != nil {
		t.Fatal(err)
	}
	t.Logf("removing the target took %v", time.Since(start).Round(time.Millisecond))
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("removing the target took %v (the write timeout is 30 s)", d.Round(time.Millisecond))
	}
}
