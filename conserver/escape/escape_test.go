package escape

import (
	"bytes"
	"reflect"
	"testing"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want [2]byte
		err  bool
	}{
		{"^Ec", [2]byte{5, 'c'}, false},
		{"^ec", [2]byte{5, 'c'}, false},
		{"^]c", [2]byte{0x1d, 'c'}, false},
		{"&.", [2]byte{'&', '.'}, false},
		{"^E", [2]byte{}, true},
		{"^Ecx", [2]byte{}, true},
		{"^1c", [2]byte{}, true},
	} {
		got, err := Parse(tc.in)
		if (err != nil) != tc.err || (!tc.err && got != tc.want) {
			t.Errorf("Parse(%q) = %v, %v", tc.in, got, err)
		}
		if !tc.err && Format(got) != map[string]string{"^ec": "^Ec"}[tc.in] && Format(got) != tc.in {
			t.Errorf("Format(Parse(%q)) = %q", tc.in, Format(got))
		}
	}
}

func feedAll(p *Parser, chunks ...string) []Item {
	var out []Item
	for _, c := range chunks {
		for _, it := range p.Feed([]byte(c)) {
			// Copy: Data aliases the chunk.
			out = append(out, Item{Data: append([]byte(nil), it.Data...), Command: it.Command})
		}
	}
	return merge(out)
}

// merge joins adjacent data items so results do not depend on chunking.
func merge(items []Item) []Item {
	var out []Item
	for _, it := range items {
		if it.Command == "" && len(out) > 0 && out[len(out)-1].Command == "" {
			out[len(out)-1].Data = append(out[len(out)-1].Data, it.Data...)
			continue
		}
		if it.Command == "" && len(it.Data) == 0 {
			continue
		}
		out = append(out, it)
	}
	return out
}

func TestFeed(t *testing.T) {
	esc := [2]byte{5, 'c'}
	d := func(s string) Item { return Item{Data: []byte(s)} }
	c := func(s string) Item { return Item{Command: s} }
	for _, tc := range []struct {
		name   string
		chunks []string
		want   []Item
	}{
		{"plain", []string{"ls -l\r"}, []Item{d("ls -l\r")}},
		{"detach", []string{"abc\x05c.def"}, []Item{d("abc"), c("."), d("def")}},
		{"split across chunks", []string{"ab\x05", "c", ".x"}, []Item{d("ab"), c("."), d("x")}},
		{"break two keys", []string{"\x05cl", "0"}, []Item{c("l0")}},
		{"power menu", []string{"\x05c!c"}, []Item{c("!c")}},
		{"not an escape", []string{"\x05x"}, []Item{d("\x05x")}},
		{"escape twice", []string{"\x05\x05c?"}, []Item{d("\x05"), c("?")}},
		{"literal escape char", []string{"\x05c\x05"}, []Item{d("\x05")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := feedAll(New(esc, "l!"), tc.chunks...)
			if !reflect.DeepEqual(got, merge(tc.want)) {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
}

// FuzzFeed: never panics; chunking does not change the result; input
// without the escape byte passes through unchanged.
func FuzzFeed(f *testing.F) {
	f.Add([]byte("abc\x05c.def"), uint8(3))
	f.Add([]byte("\x05\x05cl0"), uint8(1))
	f.Fuzz(func(t *testing.T, b []byte, split uint8) {
		esc := [2]byte{5, 'c'}
		whole := feedAll(New(esc, "l!"), string(b))
		var chunks []string
		step := int(split%7) + 1
		for i := 0; i < len(b); i += step {
			chunks = append(chunks, string(b[i:min(len(b), i+step)]))
		}
		parts := feedAll(New(esc, "l!"), chunks...)
		if !reflect.DeepEqual(whole, parts) {
			t.Fatalf("chunking changed the result:\n whole %q\n parts %q", whole, parts)
		}
		if bytes.IndexByte(b, 5) < 0 {
			if len(b) > 0 && (len(whole) != 1 || !bytes.Equal(whole[0].Data, b)) {
				t.Fatalf("escape-free input altered: %q", whole)
			}
		}
	})
}
