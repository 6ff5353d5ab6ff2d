package logstore

import (
	"bytes"
	"context"
	"fmt"
	"time"
)

// EventBeforeLine records an event in front of the console line in
// progress (its first bytes written, its line feed not yet), stamped with
// that line's time; with no line in progress it is Event. The console
// manager marks a boot this way when a line reveals it (a firmware banner,
// the kernel's first line): the line then belongs to the boot it announces.
// A line already cut by a flush (at most FlushInterval old) cannot be
// reached; the event then follows its first part.
func (w *Writer) EventBeforeLine(kind EventKind, text string) {
	if !kind.Valid() {
		w.Event(kind, text)
		return
	}
	now := w.s.now()
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return
	}
	wasIdle := !w.pendingLocked()
	t := now
	if len(w.line) > 0 && w.lineTime.Before(now) {
		t = w.lineTime
	}
	w.appendEventLocked(t, kind, text)
	if wasIdle {
		w.armLocked()
	}
	w.accountLocked()
}

// Boot is one boot of a console's node as its log records it: from a boot
// event to the next one.
type Boot struct {
	// Start is the time of the boot event (or of the screen it was seen
	// on: BootOptions); for a log that begins before its first boot
	// event, the first record's time.
	Start time.Time
	// End is the next boot's Start; zero for the newest boot.
	End time.Time
	// How is the boot event's text ("power cycle by alice", "firmware
	// banner seen: ..."); "" for output logged before the first boot event.
	How string
}

// BootOptions refine Boots.
type BootOptions struct {
	// SeenOnScreen says a boot event was written where the console's
	// output revealed the boot (a firmware banner, some lines into the
	// screen the firmware drew), not where it happened (a power action).
	// Such a boot starts with its screen: at the last record that clears
	// the screen (ESC [2J, ESC [H ESC [J, ESC c) logged since the previous
	// boot and at most screenLead before the event, if there is one.
	// Without it, the first lines of every boot the node made by itself
	// went to the boot before (and, on a log's first boot, made a boot of
	// their own).
	SeenOnScreen func(how string) bool
}

// screenLead is how long before its banner a boot's screen may begin.
const screenLead = time.Minute

// clearsScreen says console output clears the terminal's screen.
func clearsScreen(p []byte) bool {
	return bytes.Contains(p, []byte("\x1b[2J")) || bytes.Contains(p, []byte("\x1b[H\x1b[J")) || bytes.Contains(p, []byte("\x1bc"))
}

// Boots lists a console's boots, oldest first, reading the whole log.
// Output logged before the first boot event counts as a boot of its own
// (How ""), starting at the log's first record; events alone before it
// do not (a daemon's first connection notes its gap, then the BIOS banner
// shows: that is one boot, not two). A log without any record has no
// boots.
func (s *Store) Boots(ctx context.Context, console string, opts ...BootOptions) ([]Boot, error) {
	var o BootOptions
	if len(opts) > 0 {
		o = opts[0]
	}
	var boots []Boot
	var first time.Time
	output := false      // console output before the first boot event
	var screen time.Time // the last record that cleared the screen since the last boot event
	outputBeforeScreen := false
	for rec, err := range s.Records(ctx, console, Query{}) {
		if err != nil {
			if _, ok := err.(*CorruptError); ok {
				continue // damage is skipped: the rest still says where boots are
			}
			return nil, err
		}
		if first.IsZero() {
			first = rec.Time
		}
		if rec.Event != EventBoot {
			if rec.Event == "" && o.SeenOnScreen != nil && clearsScreen(rec.Data) {
				screen, outputBeforeScreen = rec.Time, output
			}
			output = output || rec.Event == ""
			continue
		}
		start, how := rec.Time, string(rec.Data)
		if !screen.IsZero() && o.SeenOnScreen != nil && o.SeenOnScreen(how) && start.Sub(screen) <= screenLead {
			start, output = screen, outputBeforeScreen
		}
		screen = time.Time{}
		if len(boots) == 0 && output && start.After(first) {
			boots = append(boots, Boot{Start: first})
		}
		if len(boots) > 0 {
			boots[len(boots)-1].End = start
		}
		boots = append(boots, Boot{Start: start, How: how})
	}
	if len(boots) == 0 && !first.IsZero() {
		boots = append(boots, Boot{Start: first})
	}
	return boots, nil
}

// BootAt picks a boot as journalctl -b does: 0 is the newest, -1 the one
// before, and 1 the oldest, 2 the next.
func BootAt(boots []Boot, n int) (Boot, error) {
	i := n - 1
	if n <= 0 {
		i = len(boots) - 1 + n
	}
	if i < 0 || i >= len(boots) {
		return Boot{}, fmt.Errorf("logstore: no boot %d (the log has %d)", n, len(boots))
	}
	return boots[i], nil
}
