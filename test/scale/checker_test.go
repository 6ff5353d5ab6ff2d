package scale

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/solgate/solgate/ipmilan/bmcsim"
)

// TestStreamCheck: the checker that every scenario relies on finds what
// a log lost, doubled, damaged or restarted, and whether a marker came
// before each jump, wherever the records are cut.
func TestStreamCheck(t *testing.T) {
	t.Parallel()
	text := func(off, n int) []byte { return bmcsim.AppendStreamText(nil, off, n) }
	type step struct {
		marker string
		data   []byte
	}
	cat := func(parts ...[]byte) []byte {
		var out []byte
		for _, p := range parts {
			out = append(out, p...)
		}
		return out
	}
	cases := []struct {
		name            string
		steps           []step
		want            streamResult // Bytes, Start, End, Lost, Dup, Restarts, Damaged; len(Jumps), len(Unmarked) compared
		jumps, unmarked int
	}{
		{"whole", []step{{data: text(0, 1000)}}, streamResult{Bytes: 1000, End: 1000}, 0, 0},
		{"cut anywhere", []step{{data: text(0, 7)}, {data: text(7, 3)}, {data: text(10, 500)}, {data: text(510, 1)}},
			streamResult{Bytes: 511, End: 511}, 0, 0},
		{"starts mid-line", []step{{data: text(100, 400)}}, streamResult{Bytes: 400, Start: 100, End: 500}, 0, 0},
		{"marked loss", []step{{data: text(0, 300)}, {marker: "gap"}, {data: text(900, 300)}},
			streamResult{Bytes: 600, End: 1200, Lost: 600}, 1, 0},
		{"unmarked loss mid-record", []step{{data: cat(text(0, 300), text(1000, 200))}},
			streamResult{Bytes: 500, End: 1200, Lost: 700}, 1, 1},
		{"loss landing mid-line", []step{{data: text(0, 150)}, {marker: "gap"}, {data: text(1010, 300)}},
			streamResult{Bytes: 450, End: 1310, Lost: 860}, 1, 0},
		{"stale marker", []step{{marker: "gap"}, {data: text(0, 100)}, {data: text(100, 100)}, {data: text(200, 100)}, {data: text(600, 75)}},
			streamResult{Bytes: 375, End: 675, Lost: 300}, 1, 1},
		{"doubled", []step{{data: text(0, 600)}, {marker: "gap"}, {data: text(450, 300)}},
			streamResult{Bytes: 900, End: 750, Dup: 150}, 1, 0},
		{"restarted", []step{{data: text(0, 600)}, {marker: "gap"}, {data: text(0, 300)}},
			streamResult{Bytes: 900, End: 300, Restarts: 1}, 1, 0},
		{"damaged", []step{{data: text(0, 150)}, {data: []byte("garbage!")}, {data: text(150, 150)}},
			streamResult{Bytes: 300, End: 300, Damaged: 8}, 0, 0},
		{"damaged long", []step{{data: text(0, 150)}, {data: make([]byte, 1000)}, {data: text(150, 150)}},
			streamResult{Bytes: 300, End: 300, Damaged: 1000}, 0, 0},
		{"damaged at the end", []step{{data: text(0, 150)}, {data: []byte("xyz!!")}},
			streamResult{Bytes: 150, End: 150, Damaged: 5}, 0, 0},
		{"a jump whose first digits match", []step{{data: text(0, 750)}, {marker: "gap"}, {data: text(7500, 150)}},
			streamResult{Bytes: 900, End: 7650, Lost: 6750}, 1, 0},
	}
	for _, tc := range cases {
		c := newStreamCheck()
		for _, s := range tc.steps {
			if s.marker != "" {
				c.marker(s.marker)
			} else {
				c.data(s.data, time.Time{})
			}
		}
		got := c.finish()
		g := streamResult{Bytes: got.Bytes, Start: got.Start, End: got.End, Lost: got.Lost, Dup: got.Dup, Restarts: got.Restarts, Damaged: got.Damaged}
		if g.Bytes != tc.want.Bytes || g.Start != tc.want.Start || g.End != tc.want.End || g.Lost != tc.want.Lost ||
			g.Dup != tc.want.Dup || g.Restarts != tc.want.Restarts || g.Damaged != tc.want.Damaged ||
			len(got.Jumps) != tc.jumps || len(got.Unmarked) != tc.unmarked {
			t.Errorf("%s: got %+v (jumps %v, unmarked %d), want %+v, %d jumps, %d unmarked", tc.name, g, got.Jumps, len(got.Unmarked), tc.want, tc.jumps, tc.unmarked)
		}
	}
}

// TestConmanLogCheck: conmand's notices are taken out, wherever they cut
// the stream, and what is left is checked.
func TestConmanLogCheck(t *testing.T) {
	t.Parallel()
	text := func(off, n int) string { return string(bmcsim.AppendStreamText(nil, off, n)) }
	log := "\r\n<ConMan> Console [node1] log opened at 2026-12-01 11:01:19 UTC.\r\n" +
		"\r\n<ConMan> Console [node1] connected to <127.83.0.1:16623> at 12-01 11:01.\r\n" +
		text(0, 100) + "\r\n<ConMan> Console [node1] disconnected from <127.83.0.1:16623> at 12-01 11:02.\r\n" +
		text(100, 50) + text(450, 150)
	path := filepath.Join(t.TempDir(), "node1.log")
	must(t, os.WriteFile(path, []byte(log), 0o600))
	res, notices, err := checkConmanLog(path)
	must(t, err)
	if !slices.Equal(res.Lines, []int{0, 75, 450, 525}) {
		t.Errorf("line numbers logged: %v", res.Lines)
	}
	if notices != 3 || res.Bytes != 300 || res.Lost != 300 || len(res.Jumps) != 1 || res.End != 600 || res.Damaged != 0 {
		t.Fatalf("notices %d, result %+v", notices, res)
	}
}

func TestStreamHeaders(t *testing.T) {
	for _, tc := range []struct {
		msg  string
		want string
	}{
		{"0000034575 ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789", "[34575]"},
		{"0000033825cdefghijklmnopqrstuvwxyz0123456789", "[33825]"},
		{"0000033900 ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz01234560000034125 ABCDEFG", "[33900 34125]"},
		{"9000034350 ABCDEFGHIJKLMNOPQRSTUVWXYZ", "[]"},
		{"000000000034425 ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789", "[0 34425]"},
		// From a kill -9 run: line 30450 cut after its number, joined to
		// the next output after the restart, 000030825 (its first digit
		// lost).
		{"0000030450000030825 ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789", "[30450 30825]"},
		{"0000000000", "[0]"},
		{"00000342750000034800 ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789", "[34275 34800]"},
		{"reclaimed the SOL payload from session 0x2bb59cde", "[]"},
	} {
		if got := fmt.Sprint(streamHeaders(tc.msg)); got != tc.want && !(got == "[]" && tc.want == "[]") {
			t.Errorf("streamHeaders(%q) = %s, want %s", tc.msg, got, tc.want)
		}
	}
}
