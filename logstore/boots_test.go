package logstore

import (
	"context"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

func TestSetLimitsRotatesAndRetains(t *testing.T) {
	t.Parallel()
	clk := newClock()
	s := openTest(t, "", Options{Now: clk.Now})
	w := mustWriter(t, s, "n")
	w.SetLimits(Limits{SegmentBytes: 1500})
	rng := rand.New(rand.NewPCG(3, 4))
	for range 30 {
		w.Write(trickyStream(400, rng)) // compresses little
		w.Flush()
		clk.Advance(time.Second)
	}
	s.quiesce()
	if n := len(segmentsOf(t, s, "n")); n < 4 {
		t.Fatalf("%d segments with a 1500-byte limit, want several", n)
	}
	// Retention by size, set on the writer alone.
	w.SetLimits(Limits{SegmentBytes: 1500, RetainBytes: 2000})
	s.retain(maintJob{console: "n", w: w})
	if n := len(segmentsOf(t, s, "n")); n > 3 {
		t.Fatalf("%d segments after retention to 2000 bytes", n)
	}
}

func TestBoots(t *testing.T) {
	t.Parallel()
	clk := newClock()
	s := openTest(t, "", Options{Now: clk.Now})
	w := mustWriter(t, s, "node42")
	step := func(text string) {
		w.Write([]byte(text))
		clk.Advance(time.Second)
	}
	step("before any boot\r\n")
	w.Event(EventBoot, "power cycle by alice")
	step("BIOS\r\n")
	step("[    0.000000] Linu")
	// The kernel's first line revealed by its end: the event goes in
	// front of the line, with the line's time.
	w.EventBeforeLine(EventBoot, "kernel banner seen")
	step("x version 6.1\r\nlogin: ")
	w.Flush()
	boots, err := s.Boots(context.Background(), "node42")
	if err != nil {
		t.Fatal(err)
	}
	if len(boots) != 3 || boots[0].How != "" || boots[1].How != "power cycle by alice" || boots[2].How != "kernel banner seen" {
		t.Fatalf("boots %+v", boots)
	}
	if !boots[0].End.Equal(boots[1].Start) || !boots[1].End.Equal(boots[2].Start) || !boots[2].End.IsZero() {
		t.Fatalf("boundaries %+v", boots)
	}
	var lines []string
	for l, err := range s.Lines(context.Background(), "node42", Query{Since: boots[2].Start}) {
		if err != nil {
			t.Fatal(err)
		}
		lines = append(lines, string(l.Event)+":"+string(l.Text))
	}
	if got := strings.Join(lines, "|"); got != "boot:kernel banner seen|:[    0.000000] Linux version 6.1\r\n|:login: " {
		t.Fatalf("the last boot reads %q", got)
	}
	for _, tc := range []struct {
		n    int
		want string
		ok   bool
	}{{0, "kernel banner seen", true}, {-1, "power cycle by alice", true}, {-2, "", true}, {-3, "", false}, {1, "", true}, {3, "kernel banner seen", true}, {4, "", false}} {
		b, err := BootAt(boots, tc.n)
		if (err == nil) != tc.ok || tc.ok && b.How != tc.want {
			t.Errorf("BootAt(%d) = %+v, %v", tc.n, b, err)
		}
	}
}

// Events before the first boot event (the daemon's first connection,
// an attach) are no boot of their own; output is.
func TestBootsEventsBeforeFirstBoot(t *testing.T) {
	t.Parallel()
	clk := newClock()
	s := openTest(t, "", Options{Now: clk.Now})
	w := mustWriter(t, s, "node42")
	w.Event(EventGap, "first SOL session of this solgate serve")
	clk.Advance(time.Millisecond)
	w.Event(EventAttach, "root via ssh")
	clk.Advance(time.Millisecond)
	w.Event(EventBoot, `firmware banner seen: "to enter setup"`)
	w.Write([]byte("Press F2 to enter setup\r\n"))
	clk.Advance(time.Second)
	w.Event(EventBoot, "power cycle by root")
	w.Flush()
	boots, err := s.Boots(context.Background(), "node42")
	if err != nil {
		t.Fatal(err)
	}
	if len(boots) != 2 || boots[0].How != `firmware banner seen: "to enter setup"` || boots[1].How != "power cycle by root" {
		t.Fatalf("boots %+v, want the banner's and the power cycle's only", boots)
	}
	// A log of events only, without boots, is still one boot.
	w2 := mustWriter(t, s, "node43")
	w2.Event(EventGap, "first SOL session")
	w2.Flush()
	if boots, err := s.Boots(context.Background(), "node43"); err != nil || len(boots) != 1 {
		t.Fatalf("events only: %+v %v, want one boot", boots, err)
	}
}

// A boot seen on screen (the firmware's banner, some lines into the
// screen it drew) starts where that screen does; a power action's boot
// starts at the action, even right after a clear screen; a clear screen
// older than screenLead, or before the previous boot, is not the boot's.
func TestBootsStartWithTheirScreen(t *testing.T) {
	t.Parallel()
	clk := newClock()
	s := openTest(t, "", Options{Now: clk.Now})
	w := mustWriter(t, s, "n")
	at := map[string]time.Time{}
	step := func(name, text string) {
		at[name] = clk.Now().Truncate(time.Millisecond) // records keep milliseconds
		w.Write([]byte(text))
		w.Flush()
		clk.Advance(time.Second)
	}
	banner := func(name string) {
		w.EventBeforeLine(EventBoot, `firmware banner seen: "to enter setup"`)
		step(name, "Press F2 to enter setup\r\n")
	}
	w.Event(EventGap, "first SOL session of this solgate serve")
	step("post1", "\x1b[0m\x1b[2J\x1b[HSimulated BIOS\r\n")
	step("mem1", "Memory Test: OK\r\n")
	banner("banner1")
	step("login", "login: ")
	// The node crashes and reboots by itself.
	step("panic", "Kernel panic - not syncing\r\n")
	step("post2", "\x1bcBIOS again\r\n")
	banner("banner2")
	// Someone clears the screen and power cycles from the console.
	step("clear", "\x1b[H\x1b[J$ ")
	at["cycle"] = clk.Now().Truncate(time.Millisecond)
	w.Event(EventBoot, "power cycle by alice")
	clk.Advance(time.Second)
	banner("banner3") // within the power cycle's boot: a new one here, as the manager would not write
	// A screen cleared long before its banner is not the boot's.
	step("old", "\x1b[2J")
	clk.Advance(2 * screenLead)
	banner("banner4")
	seen := func(how string) bool { return strings.Contains(how, " banner seen: ") }
	boots, err := s.Boots(context.Background(), "n", BootOptions{SeenOnScreen: seen})
	if err != nil {
		t.Fatal(err)
	}
	want := []time.Time{at["post1"], at["post2"], at["cycle"], at["banner3"], at["banner4"]}
	if len(boots) != len(want) {
		t.Fatalf("%d boots, want %d (no boot before the first screen): %+v", len(boots), len(want), boots)
	}
	for i, b := range boots {
		if !b.Start.Equal(want[i]) {
			t.Errorf("boot %d (%s) starts at %v, want %v", i, b.How, b.Start, want[i])
		}
	}
	// The crash is at the end of the boot it happened in, not the next.
	var lines []string
	for l, err := range s.Lines(context.Background(), "n", Query{Since: boots[0].Start, Until: boots[0].End}) {
		if err != nil {
			t.Fatal(err)
		}
		lines = append(lines, string(l.Text))
	}
	if got := strings.Join(lines, "|"); !strings.HasSuffix(got, "Kernel panic - not syncing\r\n") || !strings.Contains(got, "Simulated BIOS") {
		t.Errorf("the first boot reads %q", got)
	}
	// Without the option, boots start at their events, as before.
	plain, err := s.Boots(context.Background(), "n")
	if err != nil {
		t.Fatal(err)
	}
	if len(plain) != 6 || !plain[1].Start.Equal(at["banner1"]) {
		t.Errorf("without SeenOnScreen: %+v", plain)
	}
}

func TestOpenFileBudget(t *testing.T) {
	t.Parallel()
	s := openTest(t, "", Options{MaxOpenFiles: 2})
	var ws []*Writer
	for i := range 6 {
		ws = append(ws, mustWriter(t, s, "n"+string(rune('a'+i))))
	}
	for round := range 3 {
		for _, w := range ws {
			w.Write([]byte("line\r\n"))
			if err := w.Flush(); err != nil {
				t.Fatal(err)
			}
			if n := s.OpenFiles(); n > 2 {
				t.Fatalf("round %d: %d live segments open, budget 2", round, n)
			}
		}
	}
	// Raised while running (the daemon's reload): more stay open; lowered
	// again, the next writes close them down to it.
	s.SetMaxOpenFiles(5)
	peak := 0
	for _, w := range ws {
		w.Write([]byte("line\r\n"))
		if err := w.Flush(); err != nil {
			t.Fatal(err)
		}
		peak = max(peak, s.OpenFiles())
	}
	if peak != 5 {
		t.Errorf("budget raised to 5: at most %d open, want 5", peak)
	}
	s.SetMaxOpenFiles(1)
	for _, w := range ws {
		w.Write([]byte("line\r\n"))
		if err := w.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	if n := s.OpenFiles(); n > 1 {
		t.Errorf("budget lowered to 1: %d open after a write to each", n)
	}
	for _, w := range ws {
		lines, err := s.Tail(w.Console(), 10)
		if err != nil || len(lines) != 5 {
			t.Fatalf("%s: %d lines (%v), want 5", w.Console(), len(lines), err)
		}
		w.Close()
	}
	if n := s.OpenFiles(); n != 0 {
		t.Fatalf("%d files open after closing every writer", n)
	}
}
