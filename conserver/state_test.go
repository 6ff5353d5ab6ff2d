package conserver

import (
	"bytes"
	"maps"
	"slices"
	"strings"
	"testing"
)

// The SOL session record after a crash may be cut short or damaged: what
// can be read is used, each bad line is reported by number, and a line
// of any length does not hide the ones after it.
func TestParseSessions(t *testing.T) {
	data := "# header\n" +
		"node1 10.0.0.1:623 0000abcd\n" +
		"\n" +
		"node2 10.0.0.2:623\n" + // cut short
		strings.Repeat("\x00", 100000) + "\n" + // a block of zeros
		"node3 10.0.0.3:623 zz\n" +
		"node4 [::1]:623 ffffffff\n" +
		"node5 10.0.0.5:623 1234" // no final newline: a crash mid-write
	m, bad := parseSessions([]byte(data))
	want := map[string]ownedSession{
		"node1": {BMC: "10.0.0.1:623", ID: 0xabcd},
		"node4": {BMC: "[::1]:623", ID: 0xffffffff},
		"node5": {BMC: "10.0.0.5:623", ID: 0x1234},
	}
	if !maps.Equal(m, want) {
		t.Errorf("sessions %v, want %v", m, want)
	}
	if !slices.Equal(bad, []int{4, 5, 6}) {
		t.Errorf("bad lines %v, want [4 5 6]", bad)
	}
}

// FuzzParseSessions: any file content parses without panicking, every
// line is either a session, ignorable or reported bad, and what was read
// is written back and read again unchanged.
func FuzzParseSessions(f *testing.F) {
	f.Add([]byte("# x\nnode1 10.0.0.1:623 0000abcd\n"))
	f.Add([]byte("a b c\nd e\n\x00\x00\nf g 1\r\n"))
	f.Add(formatSessions(map[string]ownedSession{"n1": {BMC: "127.0.0.1:623", ID: 7}, "n2": {BMC: "[::1]:623", ID: 0xffffffff}}))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, bad := parseSessions(data)
		lines := bytes.Count(data, []byte{'\n'}) + 1
		if len(bad) > lines || len(m) > lines {
			t.Fatalf("%d sessions and %d bad lines from %d lines", len(m), len(bad), lines)
		}
		for i, n := range bad {
			if n < 1 || n > lines || i > 0 && n <= bad[i-1] {
				t.Fatalf("bad line numbers %v out of order or range (%d lines)", bad, lines)
			}
		}
		again, bad2 := parseSessions(formatSessions(m))
		if !maps.Equal(m, again) || len(bad2) != 0 {
			t.Fatalf("round trip: %v -> %v (bad %v)", m, again, bad2)
		}
	})
}
