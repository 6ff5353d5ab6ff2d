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
	if _, err := s.term.Write(toUTF8(clampCSI(out))); err != nil {
		return nil, fmt.Errorf("%w: %v", errEmulator, err)
	}
	return s, nil
}

// maxCSIParam bounds CSI parameters fed to the emulator: vt10x repeats
// tab moves (CHT, CBT) as many times as asked, so ESC[999999999I from a
// console would keep an attach busy for seconds or forever. No screen
// needs a larger number.
const maxCSIParam = 9999

// clampCSI returns out with every CSI parameter larger than maxCSIParam
// replaced by it, and minus signs dropped from CSI parameters (vt10x
// reads them as negative counts). Everything else is kept.
func clampCSI(out []byte) []byte {
	var b []byte // nil until something changes
	start := 0
	for i := 0; i+1 < len(out); i++ {
		if out[i] != 0x1b || out[i+1] != '[' {
			continue
		}
		j := i + 2
		for j < len(out) && out[j] >= 0x20 && out[j] <= 0x3f {
			j++
		}
		params := out[i+2 : j]
		if !needsClamp(params) {
			i = j - 1
			continue
		}
		if b == nil {
			b = make([]byte, 0, len(out))
		}
		b = append(b, out[start:i+2]...)
		for k := 0; k < len(params); k++ {
			c := params[k]
			switch {
			case c == '-':
			case c >= '0' && c <= '9':
				n := 0
				for ; k < len(params) && params[k] >= '0' && params[k] <= '9'; k++ {
					n = min(n*10+int(params[k]-'0'), maxCSIParam)
				}
				k--
				b = strconv.AppendInt(b, int64(n), 10)
			default:
				b = append(b, c)
			}
		}
		start = j
		i = j - 1
	}
	if b == nil {
		return out
	}
	return append(b, out[start:]...)
}

// needsClamp reports whether CSI parameters hold a minus sign or a number
// above maxCSIParam.
func needsClamp(params []byte) bool {
	n := 0
	for _, c := range params {
		switch {
		case c == '-':
			return true
		case c >= '0' && c <= '9':
			n = n*10 + int(c-'0')
			if n > maxCSIParam {
				return true
			}
		default:
			n = 0
		}
	}
	return false
}

// toUTF8 returns out as UTF-8 for the emulator. Output that is valid
// UTF-8 is kept; anything else is read as code page 437, the character set
// of PC BIOS screens, byte by byte (a CP437 screen's line drawing can
// happen to form valid UTF-8 pairs, so the choice is made for the whole
// output, not per sequence), so the cursor advances for every byte
// instead of skipping it.
func toUTF8(out []byte) []byte {
	if utf8.Valid(out) {
		return out
	}
	b := make([]byte, 0, len(out)+len(out)/2)
	for _, c := range out {
		if c < 0x80 {
			b = append(b, c)
			continue
		}
		b = utf8.AppendRune(b, cp437[c-0x80])
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
	none := attr{0, vt10x.DefaultFG, vt10x.DefaultBG}
	cur := none
	for y := 0; y < s.rows; y++ {
		// Cut trailing cells that are blank with default attributes.
		last := -1
		for x := 0; x < s.cols; x++ {
			g := s.term.Cell(x, y)
			if cellRune(g.Char) != ' ' || cellAttr(g) != none {
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
			a := cellAttr(s.term.Cell(x, y))
			if a != cur {
				b = appendSGR(b, a.mode, a.fg, a.bg)
				cur = a
			}
			b = utf8.AppendRune(b, cellRune(s.term.Cell(x, y).Char))
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

// attr is what SGR sets for a cell.
type attr struct {
	mode   int16
	fg, bg vt10x.Color
}

// cellAttr returns the attributes that draw g: vt10x stores a reverse
// cell with its colours already swapped, so swap them back.
func cellAttr(g vt10x.Glyph) attr {
	a := attr{g.Mode & vtAttrs, g.FG, g.BG}
	if a.mode&vtReverse != 0 {
		a.fg, a.bg = a.bg, a.fg
	}
	return a
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
