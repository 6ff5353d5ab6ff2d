package logstore

import (
	"bytes"
	"errors"
	"fmt"
	"os"
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
