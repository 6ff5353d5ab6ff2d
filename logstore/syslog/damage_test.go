package syslog_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/solgate/solgate/logstore"
	"github.com/solgate/solgate/logstore/syslog"
)

// TestDamagedLiveFrameSendsOneGap: a live frame whose content is damaged
// (its header does not say how much text it holds) is reported to the
// receiver with one gap event, not with a gap event after every read as
// fast as the window allows; the cursor steps over it to the console's
// next frame, and the target goes on shipping the other consoles.
func TestDamagedLiveFrameSendsOneGap(t *testing.T) {
	dir := t.TempDir()
	store := openStore(t, dir)
	w1 := mustWriter(t, store, "n1")
	fmt.Fprintf(w1, "the damaged line\r\n")
	w1.Flush()
	fmt.Fprintf(w1, "the line after it\r\n")
	w1.Flush()
	damageLine(t, dir, "n1", "the damaged line")
	cur, err := store.Cursor("n1", logstore.Position{})
	if err != nil {
		t.Fatal(err)
	}
	var bad *logstore.CorruptError
	if err := cur.Read(0, func(logstore.Record, logstore.Position) bool { return true }); !errors.As(err, &bad) || cur.Position().Offset != 0 {
		t.Fatalf("the damage is not of the kind planned: Read = %v, cursor at %v", err, cur.Position())
	}
	// The cursor steps over the damaged frame: the next Read has the
	// line after it.
	var after []string
	if err := cur.Read(0, func(r logstore.Record, _ logstore.Position) bool { after = append(after, string(r.Data)); return true }); err != nil || len(after) != 1 || after[0] != "the line after it\r\n" {
		t.Fatalf("after the damaged frame: Read = %v, records %q", err, after)
	}

	pc := udpReceiver(t)
	sh := startShipper(t, store, t.TempDir(), syslog.Target{Network: "udp", Address: pc.LocalAddr().String(), Facility: 16, Backfill: true})
	w2 := mustWriter(t, store, "n2")
	buf := make([]byte, 64<<10)
	gaps, other, next := 0, false, false
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		// Once n2's line is in, any further gap would come within a
		// moment (the loop sent them back to back).
		if other && next && gaps > 0 {
			pc.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
		} else {
			pc.SetReadDeadline(deadline)
		}
		n, _, err := pc.ReadFrom(buf)
		if err != nil {
			break
		}
		msg := string(buf[:n])
		switch {
		case strings.Contains(msg, "syslog shipper:"):
			if gaps++; gaps == 1 {
				fmt.Fprintf(w2, "the other console's line\r\n")
				w2.Flush()
			}
		case strings.Contains(msg, "the other console's line"):
			other = true
		case strings.Contains(msg, "the line after it"):
			next = true
		}
	}
	if !other {
		t.Errorf("n2's line never arrived")
	}
	if !next {
		t.Errorf("n1's line after the damaged frame never arrived")
	}
	if gaps != 1 {
		t.Errorf("%d gap events for one damaged frame, want 1", gaps)
	}
	if st := sh.Stats(); len(st) != 1 || st[0].Skipped != 1 {
		t.Errorf("stats %+v, want one skip", st)
	}
}

// TestDamageAfterSavedPositionDoesNotHoldConsole: a shipper restarted at
// a saved position where a damaged live frame starts reports it (one gap
// event) and ships the console's next frame at once, not at the next
// periodic look at every console (30 s) when nothing else is written.
func TestDamageAfterSavedPositionDoesNotHoldConsole(t *testing.T) {
	dir := t.TempDir()
	store := openStore(t, dir)
	w := mustWriter(t, store, "n1")
	fmt.Fprintf(w, "the first line\r\n")
	w.Flush()
	pc := udpReceiver(t)
	target := syslog.Target{Network: "udp", Address: pc.LocalAddr().String(), Facility: 16, Backfill: true}
	stateDir := t.TempDir()
	sh := startShipper(t, store, stateDir, target)
	buf := make([]byte, 64<<10)
	wait := func(want string) (gaps int) {
		t.Helper()
		pc.SetReadDeadline(time.Now().Add(10 * time.Second))
		for {
			n, _, err := pc.ReadFrom(buf)
			if err != nil {
				t.Fatalf("waiting for %q: %v (%d gap events)", want, err, gaps)
			}
			switch msg := string(buf[:n]); {
			case strings.Contains(msg, want):
				return gaps
			case strings.Contains(msg, "syslog shipper:"):
				gaps++
			}
		}
	}
	wait("the first line")
	if err := sh.Close(); err != nil { // saves the position after the first line
		t.Fatal(err)
	}
	fmt.Fprintf(w, "the damaged line\r\n")
	w.Flush()
	fmt.Fprintf(w, "the line after it\r\n")
	w.Flush()
	damageLine(t, dir, "n1", "the damaged line")
	startShipper(t, store, stateDir, target)
	if gaps := wait("the line after it"); gaps != 1 {
		t.Errorf("%d gap events before the line after the damaged frame, want 1", gaps)
	}
}
