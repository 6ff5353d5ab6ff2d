package ansi

import "io"

// MaxString is the longest OSC, DCS, SOS, PM or APC string a Stripper
// swallows before it gives up on the string and treats what follows as
// text.
const MaxString = 4096

type state uint8

const (
	ground state = iota
	escape
	escInter // ESC, then intermediates 0x20-0x2F
	csi      // ESC [ parameters and intermediates
	osc      // ESC ] ... BEL or ST
	strCtl   // ESC P, X, ^ or _ ... ST
)

// Stripper removes control sequences from a stream; the zero value is
// ready to use.
type Stripper struct {
	st state
	n  int // bytes swallowed in the current string control
}

// Reset returns s to its initial state.
func (s *Stripper) Reset() { *s = Stripper{} }

// InSequence reports whether s is inside a control sequence, waiting for
// more bytes to finish it.
func (s *Stripper) InSequence() bool { return s.st != ground }

// keep reports whether a C0 control is passed through.
func keep(c byte) bool { return c == '\t' || c == '\n' || c == '\r' || c == '\b' }

// Strip appends src without its control sequences to dst and returns the
// extended slice.
func (s *Stripper) Strip(dst, src []byte) []byte {
	st, n := s.st, s.n
	for i := 0; i < len(src); i++ {
		c := src[i]
		if st == ground {
			if c >= 0x20 && c != 0x7f {
				// Copy a run of text at once.
				j := i + 1
				for j < len(src) && src[j] >= 0x20 && src[j] != 0x7f {
					j++
				}
				dst = append(dst, src[i:j]...)
				i = j - 1
				continue
			}
			switch {
			case c == 0x1b:
				st = escape
			case keep(c):
				dst = append(dst, c)
			}
			continue
		}
		// Inside a sequence. These apply in every state.
		switch c {
		case 0x18, 0x1a: // CAN, SUB: abort
			st = ground
			continue
		case 0x1b:
			st = escape // in a string this starts ST (ESC \)
			continue
		}
		switch st {
		case escape:
			switch {
			case c < 0x20:
				if keep(c) {
					dst = append(dst, c) // C0 controls act inside sequences
				}
			case c <= 0x2f:
				st = escInter
			case c == '[':
				st = csi
			case c == ']':
				st, n = osc, 0
			case c == 'P' || c == 'X' || c == '^' || c == '_':
				st, n = strCtl, 0
			case c < 0x7f:
				st = ground // final byte
			case c == 0x7f:
				// ignored
			default:
				st = ground
				i-- // not part of a sequence: text again
			}
		case escInter:
			switch {
			case c < 0x20:
				if keep(c) {
					dst = append(dst, c)
				}
			case c <= 0x2f:
			case c < 0x7f:
				st = ground
			case c == 0x7f:
			default:
				st = ground
				i--
			}
		case csi:
			switch {
			case c < 0x20:
				if keep(c) {
					dst = append(dst, c)
				}
			case c <= 0x3f: // parameters and intermediates
			case c < 0x7f:
				st = ground // final byte
			case c == 0x7f:
			default:
				st = ground
				i--
			}
		case osc, strCtl:
			if st == osc && c == 0x07 { // BEL ends an OSC (xterm)
				st = ground
				continue
			}
			n++
			if n > MaxString {
				st = ground
				i-- // give up: this byte is text again
			}
		}
	}
	s.st, s.n = st, n
	return dst
}

// Strip returns b without its control sequences (as if the stream ended
// after b).
func Strip(b []byte) []byte {
	var s Stripper
	return s.Strip(make([]byte, 0, len(b)), b)
}

// Writer strips what is written to it and writes the rest to the
// underlying writer.
type Writer struct {
	w   io.Writer
	s   Stripper
	buf []byte
}

// NewWriter returns a Writer that writes to w.
func NewWriter(w io.Writer) *Writer { return &Writer{w: w} }

// Write strips p and writes the result. It returns len(p) on success.
func (w *Writer) Write(p []byte) (int, error) {
	w.buf = w.s.Strip(w.buf[:0], p)
	if len(w.buf) > 0 {
		if _, err := w.w.Write(w.buf); err != nil {
			return 0, err
		}
	}
	return len(p), nil
}
