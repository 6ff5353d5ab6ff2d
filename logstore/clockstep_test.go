package logstore

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"
)

// TestRangeReadsAfterClockWentBack: the clock steps back two hours (NTP
// correcting a management host that booted with a wrong clock) while a
// console writes, across several segments. The segments made afterwards
// are named after the newest one, later than their records, so picking
// segments by name for a time range missed every record after the step:
// a range read, grep, and so --boot, of that time found nothing. The
// Writer marks the folder, and range reads then read every segment.
func TestRangeReadsAfterClockWentBack(t *testing.T) {
	clk := newClock()
	s := openTest(t, "", Options{Now: clk.Now, IndexInterval: time.Second, SegmentBytes: 1500})
	w := mustWriter(t, s, "n")
	t0 := clk.Now()
	for i := range 200 {
		fmt.Fprintf(w, "before %03d %x\r\n", i, time.Now().UnixNano()*int64(i+7))
		if i%10 == 0 {
			w.Flush()
		}
		clk.Advance(time.Second)
	}
	clk.Advance(-2 * time.Hour) // NTP steps the clock back
	for i := range 200 {
		fmt.Fprintf(w, "after %03d %x\r\n", i, time.Now().UnixNano()*int64(i+11))
		if i%10 == 0 {
			w.Flush()
		}
		clk.Advance(time.Second)
	}
	w.Flush()
	s.quiesce()
	count := func(q Query) (int, int) {
		b, a := 0, 0
		for l, err := range s.Lines(context.Background(), "n", q) {
			if err != nil {
				t.Fatal(err)
			}
			if len(l.Text) > 5 && string(l.Text[:5]) == "after" {
				a++
			} else if len(l.Text) > 6 && string(l.Text[:6]) == "before" {
				b++
			}
		}
		return b, a
	}
	if n := len(segmentsOf(t, s, "n")); n < 3 {
		t.Fatalf("%d segments: the test needs the step to come after several", n)
	}
	for _, tc := range []struct {
		name          string
		q             Query
		before, after int
	}{
		{"everything", Query{}, 200, 200},
		{"the hour after the step", Query{Since: t0.Add(-2 * time.Hour), Until: t0.Add(-time.Hour)}, 0, 200},
		{"the hour before it", Query{Since: t0, Until: t0.Add(time.Hour)}, 200, 0},
		{"since the step", Query{Since: t0.Add(-2 * time.Hour)}, 200, 200},
		{"the last 5", Query{Last: 5}, 0, 5},
	} {
		if b, a := count(tc.q); b != tc.before || a != tc.after {
			t.Errorf("%s: %d lines from before the step, %d after; want %d, %d", tc.name, b, a, tc.before, tc.after)
		}
	}
	n := 0
	err := s.Grep(context.Background(), "n", regexp.MustCompile(`after 1`), Query{Since: t0.Add(-2 * time.Hour), Until: t0.Add(-time.Hour)}, func(Match) error { n++; return nil })
	if err != nil || n != 100 {
		t.Errorf("grep in the hour after the step: %d matches (%v), want 100", n, err)
	}
	fi, err := os.Stat(filepath.Join(s.Dir(), "n", clockBehindMark))
	if err != nil || fi.Mode().Perm() != 0o640 {
		t.Errorf("the folder's mark: %v %v, want a 0640 file", fi, err)
	}
}
