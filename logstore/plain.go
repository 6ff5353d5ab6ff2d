package logstore

import (
	"bytes"
	"unicode/utf8"

	"github.com/solgate/solgate/logstore/ansi"
)

// AppendPlain appends the plain text of a console line to dst: its line
// ending removed, terminal escape sequences stripped, CR and BS applied
// the way a terminal shows the line (a progress counter redrawn with CR
// shows its last state), other control bytes dropped.
func AppendPlain(dst, line []byte) []byte {
	line = bytes.TrimSuffix(line, []byte("\n"))
	line = bytes.TrimRight(line, "\r")
	if !needsPlain(line) {
		return append(dst, line...)
	}
	var s ansi.Stripper
	base := len(dst)
	dst = s.Strip(dst, line)
	text := dst[base:]
	if bytes.IndexByte(text, '\n') >= 0 {
		// A line feed inside a line (an event's text, odd input) is a
		// control byte like the others here.
		text = bytes.ReplaceAll(text, []byte("\n"), nil)
		dst = append(dst[:base], text...)
		text = dst[base:]
	}
	if bytes.IndexByte(text, '\r') < 0 && bytes.IndexByte(text, '\b') < 0 {
		return dst
	}
	return append(dst[:base], overstrike(text)...)
}

// needsPlain reports whether line has any control byte to interpret.
func needsPlain(line []byte) bool {
	for _, c := range line {
		if c < 0x20 && c != '\t' || c == 0x7f {
			return true
		}
	}
	return false
}

// overstrike applies CR (back to column 0) and BS (one column back) to a
// line, overwriting characters as a terminal does.
func overstrike(text []byte) []byte {
	var cells [][]byte
	col := 0
	for i := 0; i < len(text); {
		c := text[i]
		switch c {
		case '\r':
			col = 0
			i++
			continue
		case '\b':
			col = max(0, col-1)
			i++
			continue
		}
		_, n := utf8.DecodeRune(text[i:])
		cell := text[i : i+n]
		if col < len(cells) {
			cells[col] = cell
		} else {
			cells = append(cells, cell)
		}
		col++
		i += n
	}
	out := make([]byte, 0, len(text))
	for _, c := range cells {
		out = append(out, c...)
	}
	return out
}
