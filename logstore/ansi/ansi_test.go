package ansi

import (
	"bytes"
	"fmt"
	"os"
	"strings"
	"testing"
)

func TestStrip(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"plain text", "hello, world\r\n", "hello, world\r\n"},
		{"utf-8 kept", "Grüße ✓ 日本\n", "Grüße ✓ 日本\n"},
		{"sgr colour", "\x1b[0;32m  OK  \x1b[0m] Started", "  OK  ] Started"},
		{"cursor and erase", "\x1b[2J\x1b[1;1HBIOS Setup\x1b[K", "BIOS Setup"},
		{"private mode", "\x1b[?25l\x1b[?1049hx", "x"},
		{"csi with intermediate", "a\x1b[1 qb", "ab"},
		{"charset designation", "\x1b(B\x1b)0text", "text"},
		{"two-byte escapes", "\x1b7\x1b8\x1b=\x1b>\x1bMx", "x"},
		{"osc title bel", "\x1b]0;root@node42: ~\x07$ ", "$ "},
		{"osc title st", "\x1b]2;title\x1b\\after", "after"},
		{"osc hyperlink", "\x1b]8;;http://x\x1b\\link\x1b]8;;\x1b\\", "link"},
		{"dcs string", "\x1bPq#0;2;0;0;0#1~~@@\x1b\\done", "done"},
		{"apc pm sos", "\x1b_apc\x1b\\\x1b^pm\x1b\\\x1bXsos\x1b\\z", "z"},
		{"c0 controls dropped", "a\x00b\x07c\x0ed\x7fe", "abcde"},
		{"tab lf cr bs kept", "a\tb\rc\bd\n", "a\tb\rc\bd\n"},
		{"lf inside csi is executed", "\x1b[1\n;2mX", "\nX"},
		{"can aborts", "\x1b[12\x18abc", "abc"},
		{"sub aborts", "\x1b]0;ti\x1atle", "tle"},
		{"esc restarts", "\x1b[1;\x1b[0mok", "ok"},
		{"utf-8 aborts csi", "\x1b[1;é", "é"},
		{"utf-8 aborts escape", "\x1bé", "é"},
		{"lone esc at end", "abc\x1b", "abc"},
		{"8-bit c1 is text", "a\x9bb", "a\x9bb"},
		{"del inside csi ignored", "\x1b[1\x7fmx", "x"},
		{"unterminated osc gives up", "\x1b]" + strings.Repeat("t", MaxString) + "tail", "tail"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := string(Strip([]byte(tt.in))); got != tt.want {
				t.Errorf("Strip(%q) = %q, want %q", tt.in, got, tt.want)
			}
			// Byte at a time gives the same.
			var s Stripper
			var got []byte
			for i := 0; i < len(tt.in); i++ {
				got = s.Strip(got, []byte{tt.in[i]})
			}
			if string(got) != tt.want {
				t.Errorf("byte-wise Strip(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestInSequence(t *testing.T) {
	var s Stripper
	s.Strip(nil, []byte("x\x1b[1;3"))
	if !s.InSequence() {
		t.Fatal("InSequence = false inside a CSI")
	}
	s.Strip(nil, []byte("1m"))
	if s.InSequence() {
		t.Fatal("InSequence = true after the final byte")
	}
	s.Strip(nil, []byte("\x1b]"))
	s.Reset()
	if s.InSequence() {
		t.Fatal("InSequence = true after Reset")
	}
}

func TestWriter(t *testing.T) {
	var b bytes.Buffer
	w := NewWriter(&b)
	for _, p := range []string{"\x1b[3", "1mred\x1b", "[0m \x1b]0;t", "\x07ok\n"} {
		if n, err := w.Write([]byte(p)); n != len(p) || err != nil {
			t.Fatalf("Write(%q) = %d, %v", p, n, err)
		}
	}
	if b.String() != "red ok\n" {
		t.Fatalf("got %q", b.String())
	}
}

// FuzzStrip checks the properties that make the Stripper a streaming
// decoder: splitting the input anywhere changes nothing, the output holds
// no ESC and no C0 control but TAB, LF, CR and BS, and stripping is
// idempotent.
func FuzzStrip(f *testing.F) {
	for _, s := range []string{
		"\x1b[0;32mOK\x1b[0m\r\n", "\x1b]0;title\x07x", "\x1bP1$r\x1b\\", "a\x1b", "\x1b[\x18b",
		"\x1b[1;é", "\x1b]" + strings.Repeat("x", MaxString+2), "\x1b(0lqk\x1b(B",
	} {
		f.Add([]byte(s), uint16(1), uint16(3))
	}
	f.Fuzz(func(t *testing.T, in []byte, a, b uint16) {
		whole := Strip(in)
		i, j := int(a)%(len(in)+1), int(b)%(len(in)+1)
		if i > j {
			i, j = j, i
		}
		var s Stripper
		var parts []byte
		parts = s.Strip(parts, in[:i])
		parts = s.Strip(parts, in[i:j])
		parts = s.Strip(parts, in[j:])
		if !bytes.Equal(whole, parts) {
			t.Fatalf("split at %d,%d: %q, whole: %q", i, j, parts, whole)
		}
		for k, c := range whole {
			if c == 0x1b || c == 0x7f || c < 0x20 && c != '\t' && c != '\n' && c != '\r' && c != '\b' {
				t.Fatalf("output byte %d is control %#x: %q", k, c, whole)
			}
		}
		if again := Strip(whole); !bytes.Equal(again, whole) {
			t.Fatalf("not idempotent: %q -> %q", whole, again)
		}
		if len(whole) > len(in) {
			t.Fatalf("output longer than input")
		}
	})
}

func BenchmarkStrip(b *testing.B) {
	line := []byte("[\x1b[0;32m  OK  \x1b[0m] Started \x1b[0;1;39mJournal Service\x1b[0m.\r\n[    3.141592] systemd[1]: Reached target basic.target - Basic System.\r\n")
	in := bytes.Repeat(line, 1000)
	b.SetBytes(int64(len(in)))
	var s Stripper
	var out []byte
	for b.Loop() {
		out = s.Strip(out[:0], in)
	}
}

func ExampleStrip() {
	fmt.Printf("%q\n", Strip([]byte("\x1b]0;node42\x07[\x1b[0;32m  OK  \x1b[0m] Started sshd.\r\n")))
	// Output: "[  OK  ] Started sshd.\r\n"
}

func ExampleWriter() {
	w := NewWriter(os.Stdout)
	w.Write([]byte("\x1b[1mbo"))
	w.Write([]byte("ld\x1b[0m text\n"))
	// Output: bold text
}
