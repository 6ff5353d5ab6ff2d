package ipmilan

import "testing"

func TestWindow(t *testing.T) {
	var w window
	steps := []struct {
		seq  uint32
		want bool
	}{
		{0xFFFFFFF0, true},  // first packet: anything
		{0xFFFFFFF0, false}, // replay
		{0xFFFFFFF2, true},  // ahead, one missing
		{0xFFFFFFF1, true},  // the late one, not seen before
		{0xFFFFFFF1, false}, // and now a replay
		{0x00000005, true},  // across the 32-bit wrap
		{0xFFFFFFF3, true},  // behind but within 32 and unseen
		{0xFFFFFFF3, false},
		{0xFFFFFF00, false}, // far behind
		{0x80000006, false}, // more than half the space ahead reads as behind
		{0x00000006, true},
	}
	for i, s := range steps {
		if got := w.accept(s.seq); got != s.want {
			t.Fatalf("step %d: accept(%#x) = %v, want %v", i, s.seq, got, s.want)
		}
	}
}

// FuzzWindow compares the window with a simple model: a sequence number
// is accepted at most once, and never when more than 31 behind the highest.
func FuzzWindow(f *testing.F) {
	f.Add([]byte{1, 2, 3, 2, 200, 1})
	f.Fuzz(func(t *testing.T, deltas []byte) {
		var w window
		seen := map[uint32]bool{}
		seq := uint32(0xFFFFFF80)
		var hi uint32
		for i, d := range deltas {
			seq += uint32(int8(d)) // steps back and forth, across the wrap
			ok := w.accept(seq)
			if ok && seen[seq] {
				t.Fatalf("step %d: %#x accepted twice", i, seq)
			}
			if i > 0 && ok && hi-seq < 1<<31 && hi-seq >= 32 {
				t.Fatalf("step %d: %#x accepted %d behind the highest", i, seq, hi-seq)
			}
			if ok {
				seen[seq] = true
				if i == 0 || seq-hi < 1<<31 {
					hi = seq
				}
			}
		}
	})
}
