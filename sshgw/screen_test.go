package sshgw

import (
	"bytes"
	"strings"
	"testing"
	"unicode/utf8"
)

// biosScreen is a BIOS setup screen drawn the way firmware draws it over
// serial: clear, absolute moves, colours, an overwrite in place, and line
// drawing in code page 437.
var biosScreen = "\x1b[0m\x1b[2J\x1b[1;1H\x1b[44;37m Aptio Setup Utility \x1b[0m" +
	"\x1b[3;3HMain  Advanced  Boot" +
	"\x1b[5;5HSystem Date         [Tue 11/23/2026]" +
	"\x1b[5;26HW" + // overwrite T with W
	"\x1b[7;5H\xda\xc4\xc4\xbf" + // CP437 box corner, lines, corner
	"\x1b[8;5H\x1b[1mBold\x1b[0m \x1b[7mRev\x1b[0m" +
	"\x1b[20;40H"

func TestScreenRendersBIOS(t *testing.T) {
	s, err := newScreen(ScreenSize{}, []byte(biosScreen))
	if err != nil {
		t.Fatal(err)
	}
	text, err := s.Text()
	if err != nil {
		t.Fatal(err)
	}
	want := " Aptio Setup Utility\n\n  Main  Advanced  Boot\n\n    System Date         [Wue 11/23/2026]\n\n    ┌──┐\n    Bold Rev\n"
	if string(text) != want {
		t.Errorf("screen text:\n%s\nwant:\n%s", text, want)
	}
	// The repaint, drawn on a fresh terminal, shows the same screen,
	// attributes and cursor included.
	paint, err := s.Repaint()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(paint, []byte("\x1b[0m\x1b[H\x1b[2J")) || bytes.Contains(paint, []byte("\n")) {
		t.Errorf("repaint does not clear first, or uses line feeds: %q", paint)
	}
	if !utf8.Valid(paint) {
		t.Errorf("repaint is not UTF-8: %q", paint)
	}
	again, err := newScreen(ScreenSize{}, paint)
	if err != nil {
		t.Fatal(err)
	}
	sameScreen(t, s, again)
	if c := again.term.Cursor(); c.X != 39 || c.Y != 19 {
		t.Errorf("cursor at %d,%d after repaint, want 39,19", c.X, c.Y)
	}
}

// sameScreen compares every cell's character and attributes, and the
// colours of every non-blank cell (vt10x stores a reverse-video cell's
// colours swapped when a character is drawn, unswapped when a clear fills
// it, so a blank's colours are ambiguous).
func sameScreen(t *testing.T, a, b *screen) {
	t.Helper()
	for y := 0; y < a.rows; y++ {
		for x := 0; x < a.cols; x++ {
			ga, gb := a.term.Cell(x, y), b.term.Cell(x, y)
			blank := cellRune(ga.Char) == ' '
			if cellRune(ga.Char) != cellRune(gb.Char) || ga.Mode&vtAttrs != gb.Mode&vtAttrs || !blank && (ga.FG != gb.FG || ga.BG != gb.BG) {
				t.Fatalf("cell %d,%d: %q mode %x fg %d bg %d, repainted %q mode %x fg %d bg %d",
					x, y, ga.Char, ga.Mode&vtAttrs, ga.FG, ga.BG, gb.Char, gb.Mode&vtAttrs, gb.FG, gb.BG)
			}
		}
	}
}

func TestFullScreenDetection(t *testing.T) {
	boot := strings.Repeat("[    1.234] kernel: something happened\r\n", 40)
	for _, c := range []struct {
		name string
		out  string
		want bool
	}{
		{"boot log", boot, false},
		{"boot log with colours", "\x1b[0;32m[  OK  ]\x1b[0m Started OpenSSH.\r\n\x1b[K", false},
		{"bios", biosScreen, true},
		{"bios then kernel", biosScreen + boot, false},
		{"clear and prompt", boot + "\x1b[H\x1b[2Jlogin: ", true},
		{"alternate screen", boot + "\x1b[?1049h\x1b[1;1Hmenu" + boot, true},
		{"alternate screen left", "\x1b[?1049h\x1b[1;1Hmenu\x1b[?1049l" + "$ ", false},
		{"reset", biosScreen + "\x1bc" + "hello\r\n", false},
		{"cut sequence", "text\x1b[", false},
		{"empty", "", false},
	} {
		if got := fullScreen([]byte(c.out), 24); got != c.want {
			t.Errorf("%s: fullScreen = %v, want %v", c.name, got, c.want)
		}
	}
}

func TestClampCSI(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"plain text", "plain text"},
		{"\x1b[1;31mred\x1b[0m", "\x1b[1;31mred\x1b[0m"},
		{"a\x1b[999999999Ib", "a\x1b[9999Ib"},
		{"\x1b[123456;7H\x1b[-5@x", "\x1b[9999;7H\x1b[5@x"},
		{"\x1b[?99999h", "\x1b[?9999h"},
		{"cut \x1b[99999", "cut \x1b[9999"},
	} {
		if got := string(clampCSI([]byte(c.in))); got != c.want {
			t.Errorf("clampCSI(%q) = %q, want %q", c.in, got, c.want)
		}
	}
	// The sequences that made vt10x loop for seconds now take no time
	// worth measuring; a hang would show as the test's timeout.
	for _, seq := range []string{"\x1b[999999999I", "\x1b[999999999Z", "\x1b[9223372036854775807I"} {
		if _, err := newScreen(ScreenSize{}, []byte(seq)); err != nil {
			t.Errorf("%q: %v", seq, err)
		}
	}
}

func TestCP437(t *testing.T) {
	if n := len(cp437); n != 128 {
		t.Fatalf("cp437 has %d entries", n)
	}
	if got := string(toUTF8([]byte("a\xc9\xcd\xbbb"))); got != "a╔═╗b" {
		t.Errorf("toUTF8 = %q", got)
	}
	if got := string(toUTF8([]byte("é€"))); got != "é€" {
		t.Errorf("valid UTF-8 changed: %q", got)
	}
}

func TestAttachRepaintsFullScreen(t *testing.T) {
	h := start(t, nil)
	con := h.b.consoles["node1"]
	con.emit([]byte("line before bios\r\n" + biosScreen))
	tm := attachTerm(t, h.dial("alice", "node1"), true)
	tm.waitFor("read-write")
	tm.waitFor("\x1b[5;1H    System Date         [Wue 11/23/2026]")
	if strings.Contains(tm.stdout(), "line before bios") {
		t.Errorf("full-screen console replayed lines instead of repainting: %q", tm.stdout())
	}
	out, _, code := h.run("carol", "node1", "screen")
	if code != 0 || !strings.Contains(out, "    System Date         [Wue 11/23/2026]\n") {
		t.Errorf("screen: %d %q", code, out)
	}
}

// With a backend that writes its own banner and last line, the gateway
// writes neither, puts the repaint after the banner, and still says its
// own reasons.
func TestStreamNotices(t *testing.T) {
	h := start(t, func(o *Options) { o.StreamNotices = true })
	h.b.notices = true
	con := h.b.consoles["node1"]
	con.emit([]byte(biosScreen))
	tm := attachTerm(t, h.dial("alice", "node1"), true)
	tm.waitFor("[node1: up; you are rw]\r\n\x1b[0m\x1b[H\x1b[2J")
	tm.waitFor("[Wue 11/23/2026]")
	if strings.Contains(tm.stdout(), "[solgate:") {
		t.Errorf("gateway banner with StreamNotices: %q", tm.stdout())
	}
	tm.in.Write([]byte("\x05c."))
	tm.waitFor("[detached (escape command)]\r\n")
	if code := tm.exit(); code != 0 {
		t.Errorf("exit %d", code)
	}
	if strings.Contains(tm.stdout(), "[solgate:") {
		t.Errorf("gateway's own detach line with StreamNotices: %q", tm.stdout())
	}
	// A reason of the gateway's own is still told.
	tm2 := attachTerm(t, h.dial("carol", "node1"), true)
	tm2.waitFor("you are ro]")
	h.b.removeKey(h.keys["carol"].PublicKey())
	h.b.reload()
	tm2.waitFor("[solgate: your key is no longer accepted]\r\n")
	tm2.exit()
}

// FuzzScreen: any console output never panics the emulator wrapper, and
// what it repaints shows the same screen again.
func FuzzScreen(f *testing.F) {
	f.Add([]byte(biosScreen))
	f.Add([]byte("\x1b[-5@\x1b[99999999999999999999H\x1b[?1049h\x1b[0;38;2;1;2;3mX"))
	f.Add([]byte("plain\r\ntext\n\ttab\bback"))
	f.Add([]byte("\x1b[31;42;1;4;7mcolour\x1b[38;5;200m256\x1b[48;2;9;8;7mrgb"))
	f.Fuzz(func(t *testing.T, out []byte) {
		s, err := newScreen(ScreenSize{Cols: 40, Rows: 12}, out)
		if err != nil {
			return // the emulator failed; the gateway falls back to replay
		}
		if _, err := s.Text(); err != nil {
			return
		}
		paint, err := s.Repaint()
		if err != nil {
			return
		}
		again, err := newScreen(ScreenSize{Cols: 40, Rows: 12}, paint)
		if err != nil {
			t.Fatalf("repaint %q broke the emulator", paint)
		}
		sameScreen(t, s, again)
		fullScreen(out, 12)
	})
}
