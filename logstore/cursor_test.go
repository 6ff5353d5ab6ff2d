package logstore

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// readAll drains a cursor, returning the raw bytes of its output records
// and the events, and the errors it met.
func drainCursor(t *testing.T, c *Cursor, max int) (raw []byte, events []string, errs []error) {
	t.Helper()
	for range 10000 {
		n := 0
		err := c.Read(max, func(r Record, next Position) bool {
			n++
			if r.Event != "" {
				events = append(events, string(r.Event)+" "+string(r.Data))
			} else {
				raw = append(raw, r.Data...)
			}
			return true
		})
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if n == 0 {
			return raw, events, errs
		}
	}
	t.Fatal("cursor never caught up")
	return
}

func TestCursorAcrossRotationAndSealing(t *testing.T) {
	clk := newClock()
	s := openTest(t, "", Options{Now: clk.Now, SegmentAge: time.Hour, SealFrameBytes: 4096})
	w := mustWriter(t, s, "node1")
	c, err := s.Cursor("node1", Position{})
	if err != nil {
		t.Fatal(err)
	}
	var want, got []byte
	var saved []Position
	for i := range 300 {
		line := fmt.Appendf(nil, "[%5d] message number %d with some text\r\n", i, i)
		want = append(want, line...)
		w.Write(line)
		if i%10 == 9 {
			w.Flush()
			// Read a little at a time, refusing the third record each time.
			k := 0
			err := c.Read(0, func(r Record, next Position) bool {
				k++
				if k == 3 {
					return false
				}
				got = append(got, r.Data...)
				saved = append(saved, next)
				return true
			})
			if err != nil {
				t.Fatal(err)
			}
		}
		clk.Advance(90 * time.Second)
	}
	w.Flush()
	s.quiesce() // every closed segment is sealed now: frames moved
	rest, _, errs := drainCursor(t, c, 7)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	got = append(got, rest...)
	if !bytes.Equal(got, want) {
		t.Fatalf("cursor read %d bytes, want %d\n%q", len(got), len(want), got[:min(200, len(got))])
	}
	// A position saved before sealing still means the same record.
	if len(segmentsOf(t, s, "node1")) < 5 {
		t.Fatal("want several segments")
	}
	for _, p := range []Position{saved[3], saved[len(saved)/2], saved[len(saved)-1]} {
		c2, _ := s.Cursor("node1", p)
		var first []byte
		c2.Read(1, func(r Record, _ Position) bool { first = bytes.Clone(r.Data); return false })
		// Find the record after p by reading from the start.
		c3, _ := s.Cursor("node1", Position{})
		var expect []byte
		c3.Read(0, func(r Record, next Position) bool {
			if next.Compare(p) > 0 {
				expect = bytes.Clone(r.Data)
				return false
			}
			return true
		})
		if !bytes.Equal(first, expect) {
			t.Fatalf("after sealing, %s reads %q, want %q", p, first, expect)
		}
		q, err := ParsePosition(p.String())
		if err != nil || q != p {
			t.Fatalf("ParsePosition(%q) = %v, %v", p.String(), q, err)
		}
	}
	end, err := s.End("node1")
	if err != nil {
		t.Fatal(err)
	}
	if end != c.Position() {
		t.Fatalf("End = %s, cursor at the end is at %s", end, c.Position())
	}
}

func TestCursorSkipsDeletedSegments(t *testing.T) {
	clk := newClock()
	s := openTest(t, "", Options{Now: clk.Now, SegmentAge: time.Hour})
	w := mustWriter(t, s, "n")
	for i := range 5 {
		fmt.Fprintf(w, "hour %d\n", i)
		w.Flush()
		clk.Advance(time.Hour)
	}
	w.Flush()
	s.quiesce()
	segs := segmentsOf(t, s, "n")
	c, _ := s.Cursor("n", Position{Segment: segs[0].name})
	os.Remove(segs[0].path)
	os.Remove(segs[1].path)
	raw, _, errs := drainCursor(t, c, 0)
	var skip *SkipError
	if len(errs) != 1 || !errors.As(errs[0], &skip) || skip.To.Segment != segs[2].name {
		t.Fatalf("errors %v, want one SkipError to %s", errs, segs[2].name)
	}
	if string(raw) != "hour 2\nhour 3\nhour 4\n" {
		t.Fatalf("read %q after the skip", raw)
	}
}

func TestCursorEmptyAndBadPositions(t *testing.T) {
	s := openTest(t, "", Options{})
	c, err := s.Cursor("none", Position{})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Read(0, func(Record, Position) bool { t.Fatal("record from an empty log"); return false }); err != nil {
		t.Fatal(err)
	}
	if p, err := s.End("none"); err != nil || p != (Position{}) {
		t.Fatalf("End of no log = %v, %v", p, err)
	}
	if _, err := s.Cursor("../x", Position{}); err == nil {
		t.Fatal("bad console name accepted")
	}
	for _, bad := range []string{"", "x+1", "20261123T100000Z.zst", "20261123T100000Z.zst+-1", "20261123T100000Z.zst+a"} {
		if _, err := ParsePosition(bad); err == nil {
			t.Fatalf("ParsePosition(%q) accepted", bad)
		}
	}
}

func TestChangesNotifiesFlushes(t *testing.T) {
	s := openTest(t, "", Options{FlushInterval: time.Hour})
	ch := s.Changes()
	defer ch.Close()
	a, b := mustWriter(t, s, "a"), mustWriter(t, s, "b")
	a.Write([]byte("x\n"))
	b.Write([]byte("y\n"))
	select {
	case <-ch.C():
		t.Fatal("notified before any flush")
	default:
	}
	a.Flush()
	b.Flush()
	<-ch.C()
	got := ch.Take(nil)
	if len(got) != 2 {
		t.Fatalf("Take = %v, want a and b", got)
	}
	if got := ch.Take(nil); len(got) != 0 {
		t.Fatalf("second Take = %v, want nothing", got)
	}
}

// TestCursorDamagedLiveFrameReportedOnce: a damaged live frame (its
// header does not say how much text it holds) is reported by the Read
// that meets it, and the cursor goes on with the next frame; a cursor
// opened afresh at a position saved after it (a shipper restarting, or
// rolling back after a reconnect) does not report it again.
func TestCursorDamagedLiveFrameReportedOnce(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir, Options{})
	w := mustWriter(t, s, "node1")
	for _, line := range []string{"before\r\n", "the damaged line\r\n", "after one\r\n", "after two\r\n"} {
		w.Write([]byte(line))
		w.Flush()
	}
	segs, err := listSegments(filepath.Join(dir, "node1"))
	if err != nil || len(segs) != 1 {
		t.Fatalf("segments: %v %v", segs, err)
	}
	b, err := os.ReadFile(segs[0].path)
	if err != nil {
		t.Fatal(err)
	}
	at := bytes.Index(b, []byte("the damaged line"))
	if at < 0 {
		t.Fatal("the line is not stored raw: cannot damage it as planned")
	}
	b[at] ^= 0x20
	if err := os.WriteFile(segs[0].path, b, 0o640); err != nil {
		t.Fatal(err)
	}

	c, err := s.Cursor("node1", Position{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	var saved []Position
	for range 10 {
		err := c.Read(0, func(r Record, next Position) bool {
			got = append(got, string(r.Data))
			saved = append(saved, next)
			return true
		})
		var bad *CorruptError
		if err != nil && !errors.As(err, &bad) {
			t.Fatal(err)
		}
		if err == nil && len(got) == 3 {
			break
		}
	}
	if fmt.Sprint(got) != fmt.Sprint([]string{"before\r\n", "after one\r\n", "after two\r\n"}) {
		t.Fatalf("records %q", got)
	}
	// Fresh cursors at the position after "after one" and at the end.
	for i, p := range saved[1:] {
		fresh, err := s.Cursor("node1", p)
		if err != nil {
			t.Fatal(err)
		}
		var rest []string
		if err := fresh.Read(0, func(r Record, _ Position) bool { rest = append(rest, string(r.Data)); return true }); err != nil {
			t.Fatalf("fresh cursor at %v (after %q): %v", p, got[i+1], err)
		}
		if want := got[i+2:]; fmt.Sprint(rest) != fmt.Sprint(want) {
			t.Fatalf("fresh cursor at %v read %q, want %q", p, rest, want)
		}
	}
}
