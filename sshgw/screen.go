package sshgw

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/hinshun/vt10x"
)

// A screen is a terminal emulator fed with a console's recent output, made
// when someone attaches to a console or asks for its screen and dropped
// right after: nothing is kept per console. hinshun/vt10x is the
// emulator: it has no dependencies, renders BIOS-style screens (absolute
// cursor moves, overwrites, DEC line drawing) correctly, and lets us read
// every cell with its attributes.
type screen struct {
	term       vt10x.Terminal
	cols, rows int
}

// ScreenSize is the geometry the emulator assumes for a console: serial
// consoles do not tell their size, and BIOS setup screens and the Linux
// serial console default to 80 columns and 24 or 25 rows.
type ScreenSize struct{ Cols, Rows int }

func (s ScreenSize) orDefault() ScreenSize {
	if s.Cols <= 0 || s.Cols > 1000 {
		s.Cols = 80
	}
	if s.Rows <= 0 || s.Rows > 1000 {
		s.Rows = 24
	}
	return s
}

var errEmulator = errors.New("terminal emulator failed on the console's output")

// newScreen returns an emulator that has processed out.
func newScreen(size ScreenSize, out []byte) (s *screen, err error) {
	size = size.orDefault()
	s = &screen{term: vt10x.New(vt10x.WithSize(size.Cols, size.Rows)), cols: size.Cols, rows: size.Rows}
	defer func() {
		// vt10x trusts its input more than a console deserves (negative
		// CSI arguments index out of range): a panic loses the repaint,
		// never the session.
		if recover() != nil {
			s, err = nil, errEmulator
		}
	}()
	if _, err := s.term.Write(toUTF8(out)); err != nil {
		return nil, fmt.Errorf("%w: %v", errEmulator, err)
	}
	return s, nil
}

// toUTF8 returns out with every byte that is not part of valid UTF-8 read
// as code page 437, the character set of PC BIOS screens, so the emulator
// advances the cursor for it instead of skipping it.
func toUTF8(out []byte) []byte {
	if utf8.Valid(out) {
		return out
	}
	b := make([]byte, 0, len(out)+len(out)/4)
	for len(out) > 0 {
		r, n := utf8.DecodeRune(out)
		if r == utf8.RuneError && n <= 1 {
			b = utf8.AppendRune(b, cp437[out[0]&0x7f])
			out = out[1:]
			continue
		}
		b = append(b, out[:n]...)
		out = out[n:]
	}
	return b
}

// cp437 maps the bytes 0x80-0xff of code page 437 to Unicode.
var cp437 = [128]rune([]rune(
	"ÇüéâäàåçêëèïîìÄÅ" +
		"ÉæÆôöòûùÿÖÜ¢£¥₧ƒ" +
		"áíóúñÑªº¿⌐¬½¼¡«»" +
		"░▒▓│┤╡╢╖╕╣║╗╝╜╛┐" +
		"└┴┬├─┼╞╟╚╔╩╦╠═╬╧" +
		"╨╤╥╙╘╒╓╫╪┘┌█▄▌▐▀" +
		"αßΓπΣσµτΦΘΩδ∞φε∩" +
		"≡±≥≤⌠⌡÷≈°∙·√ⁿ²■\u00a0"))

// Text returns the screen as lines of text, trailing blanks cut, trailing
// empty lines dropped, each line ended by "\n".
func (s *screen) Text() (text []byte, err error) {
	defer func() {
		if recover() != nil {
			text, err = nil, errEmulator
		}
	}()
	s.term.Lock()
	defer s.term.Unlock()
	var b bytes.Buffer
	blank := 0
	for y := 0; y < s.rows; y++ {
		var line []rune
		for x := 0; x < s.cols; x++ {
			line = append(line, cellRune(s.term.Cell(x, y).Char))
		}
		l := strings.TrimRight(string(line), " ")
		if l == "" {
			blank++
			continue
		}
		for ; blank > 0; blank-- {
			b.WriteByte('\n')
		}
		b.WriteString(l)
		b.WriteByte('\n')
	}
	return b.Bytes(), nil
}

func cellRune(r rune) rune {
	if r < ' ' || r == 0x7f {
		return ' '
	}
	return r
}

// Glyph attribute bits of vt10x (its attrReverse, attrUnderline, ... are
// unexported; the module is pinned, and the render test would catch a
// change).
const (
	vtReverse   = 1 << 0
	vtUnderline = 1 << 1
	vtBold      = 1 << 2
	vtItalic    = 1 << 4
	vtBlink     = 1 << 5
	vtAttrs     = vtReverse | vtUnderline | vtBold | vtItalic | vtBlink
)

// Repaint returns the bytes that draw the screen on a client terminal of
// any size at least as large: reset attributes, clear, every non-blank
// cell with its colours and attributes, then the cursor where the
// console's cursor is. Lines end in "\r\n" never: rows are addressed.
func (s *screen) Repaint() (out []byte, err error) {
	defer func() {
		if recover() != nil {
			out, err = nil, errEmulator
		}
	}()
	s.term.Lock()
	defer s.term.Unlock()
	b := []byte("\x1b[0m\x1b[H\x1b[2J")
	type attr struct {
		mode   int16
		fg, bg vt10x.Color
	}
	none := attr{0, vt10x.DefaultFG, vt10x.DefaultBG}
	cur := none
	for y := 0; y < s.rows; y++ {
		// Cut trailing cells that are blank with default attributes.
		last := -1
		for x := 0; x < s.cols; x++ {
			g := s.term.Cell(x, y)
			if cellRune(g.Char) != ' ' || (attr{g.Mode & vtAttrs, g.FG, g.BG}) != none {
				last = x
			}
		}
		if last < 0 {
			continue
		}
		b = append(b, "\x1b["...)
		b = strconv.AppendInt(b, int64(y+1), 10)
		b = append(b, ";1H"...)
		for x := 0; x <= last; x++ {
			g := s.term.Cell(x, y)
			a := attr{g.Mode & vtAttrs, g.FG, g.BG}
			if a != cur {
				b = appendSGR(b, a.mode, a.fg, a.bg)
				cur = a
			}
			b = utf8.AppendRune(b, cellRune(g.Char))
		}
	}
	b = append(b, "\x1b[0m"...)
	c := s.term.Cursor()
	b = append(b, "\x1b["...)
	b = strconv.AppendInt(b, int64(min(max(c.Y, 0), s.rows-1)+1), 10)
	b = append(b, ';')
	b = strconv.AppendInt(b, int64(min(max(c.X, 0), s.cols-1)+1), 10)
	b = append(b, 'H')
	if !s.term.CursorVisible() {
		b = append(b, "\x1b[?25l"...)
	}
	return b, nil
}

// appendSGR appends the Select Graphic Rendition sequence that sets
// exactly these attributes.
func appendSGR(b []byte, mode int16, fg, bg vt10x.Color) []byte {
	b = append(b, "\x1b[0"...)
	for _, m := range []struct {
		bit  int16
		code string
	}{{vtBold, ";1"}, {vtItalic, ";3"}, {vtUnderline, ";4"}, {vtBlink, ";5"}, {vtReverse, ";7"}} {
		if mode&m.bit != 0 {
			b = append(b, m.code...)
		}
	}
	b = appendColor(b, fg, 30, 90, 38, vt10x.DefaultFG)
	b = appendColor(b, bg, 40, 100, 48, vt10x.DefaultBG)
	return append(b, 'm')
}

func appendColor(b []byte, c vt10x.Color, base, bright, ext int, def vt10x.Color) []byte {
	switch {
	case c == def || c >= 1<<24:
		return b
	case c < 8:
		b = append(b, ';')
		return strconv.AppendInt(b, int64(base)+int64(c), 10)
	case c < 16:
		b = append(b, ';')
		return strconv.AppendInt(b, int64(bright)+int64(c-8), 10)
	case c < 256:
		b = append(b, ';')
		b = strconv.AppendInt(b, int64(ext), 10)
		b = append(b, ";5;"...)
		return strconv.AppendInt(b, int64(c), 10)
	default:
		b = append(b, ';')
		b = strconv.AppendInt(b, int64(ext), 10)
		b = append(b, ";2;"...)
		b = strconv.AppendInt(b, int64(c>>16&0xff), 10)
		b = append(b, ';')
		b = strconv.AppendInt(b, int64(c>>8&0xff), 10)
		b = append(b, ';')
		return strconv.AppendInt(b, int64(c&0xff), 10)
	}
}

// fullScreen reports whether out, a console's most recent output, leaves
// a full-screen program on the screen (BIOS setup, a curses menu): it
// switched to the alternate screen and did not leave it, or it cleared the
// screen or moved the cursor to an absolute position and printed fewer
// line feeds than the screen has rows since. Line-oriented output (a boot
// log, a shell) is better replayed as lines, which keeps the client's
// scroll-back.
func fullScreen(out []byte, rows int) bool {
	if rows <= 0 {
		rows = 24
	}
	last := -1 // end of the last screen-drawing sequence
	alt := false
	for i := 0; i < len(out); i++ {
		if out[i] != 0x1b || i+1 >= len(out) {
			continue
		}
		if out[i+1] == 'c' { // RIS: full reset
			last, alt = -1, false
			continue
		}
		if out[i+1] != '[' {
			continue
		}
		// A CSI sequence: parameters, intermediates, one final byte.
		j := i + 2
		for j < len(out) && out[j] >= 0x20 && out[j] <= 0x3f {
			j++
		}
		if j >= len(out) {
			break
		}
		params, final := out[i+2:j], out[j]
		switch {
		case final == 'J' && (bytes.Equal(params, []byte("2")) || bytes.Equal(params, []byte("3"))):
			last = j
		case final == 'H' || final == 'f':
			last = j
		case (final == 'h' || final == 'l') && isAltScreen(params):
			alt = final == 'h'
			if alt {
				last = j
			} else {
				last = -1
			}
		}
		i = j
	}
	if alt {
		return true
	}
	if last < 0 {
		return false
	}
	return bytes.Count(out[last:], []byte{'\n'}) < rows
}

func isAltScreen(params []byte) bool {
	for _, p := range bytes.Split(bytes.TrimPrefix(params, []byte("?")), []byte(";")) {
		switch string(p) {
		case "47", "1047", "1049":
			return len(params) > 0 && params[0] == '?'
		}
	}
	return false
}
