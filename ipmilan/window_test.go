package ipmilan

import "testing"

func TestWindow(t *testing.T) {
	var w window
	w.reset(0xFFFFFFF0)
	steps := []struct {
		seq  uint32
		want bool
	}{
		{0xFFFFFFF0, true},  // the first expected number
		{0xFFFFFFF0, false}, // replay
		{0xFFFFFFF2, true},  // ahead, one missing
		{0xFFFFFFF1, true},  // the late one, not seen before
		{0xFFFFFFF1, false}, // and now a replay
		{0x00000005, true},  // across the 32-bit wrap
		{0xFFFFFFF3, true},  // behind but within 32 and unseen
		{0xFFFFFFF3, false},
		{0xFFFFFF00, false}, // far behind
		{0x80000006, false}, // more than half the space ahead reads as behind
		{0x00100000, false}, // far ahead: refused, and the window stays
		{0x00000006, true},  // so genuine packets after it still pass
		{0x00000006 + 32, true},
		{0x00000006 + 32 + 33, false}, // 33 ahead: one too far
	}
	for i, s := range steps {
		if got := w.accept(s.seq); got != s.want {
			t.Fatalf("step %d: accept(%#x) = %v, want %v", i, s.seq, got, s.want)
		}
	}
}

// FuzzWindow compares the window with a simple model: a sequence number
// is accepted at most once, never when 32 or more behind the highest
// accepted, never when more than 32 ahead of it, and always when new and
// within those bounds.
func FuzzWindow(f *testing.F) {
	f.Add(uint32(1), []byte{1, 2, 3, 2, 200, 1})
	f.Add(uint32(0xFFFFFFF0), []byte{40, 1, 0x80, 33, 32})
	f.Fuzz(func(t *testing.T, start uint32, deltas []byte) {
		var w window
		w.reset(start)
		seen := map[uint32]bool{start - 1: true}
		hi := start - 1
		seq := hi
		for i, d := range deltas {
			seq += uint32(int8(d)) // steps back and forth, across the wrap
			ahead, back := seq-hi, hi-seq
			want := !seen[seq] && ((ahead >= 1 && ahead <= windowSize) || back < windowSize)
			if got := w.accept(seq); got != want {
				t.Fatalf("step %d: accept(%#x) = %v, want %v (highest %#x)", i, seq, got, want, hi)
			}
			if want {
				seen[seq] = true
				if ahead >= 1 && ahead <= windowSize {
					hi = seq
				}
			}
		}
	})
}
