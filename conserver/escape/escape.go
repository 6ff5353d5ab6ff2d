// Package escape recognises console escape sequences in a stream of typed
// bytes, as conserver does: the escape (default Ctrl-E then c) followed by
// a command key. Everything else passes through untouched.
//
// A Parser is a state machine fed with whatever chunks the terminal
// delivers; a sequence split across chunks is recognised all the same.
// Not safe for concurrent use: one Parser per attached user.
package escape

import (
	"fmt"
	"strings"
)

// Default is conserver's escape: Ctrl-E, then c.
const Default = "^Ec"

// Parse reads an escape specification: two characters, each either a
// plain character or ^X for a control character ("^Ec", "^]c", "&.").
func Parse(spec string) ([2]byte, error) {
	var out [2]byte
	n := 0
	for i := 0; i < len(spec); i++ {
		if n == 2 {
			return out, fmt.Errorf("escape %q: want two characters such as ^Ec", spec)
		}
		c := spec[i]
		if c == '^' && i+1 < len(spec) {
			i++
			u := spec[i]
			if u >= 'a' && u <= 'z' {
				u -= 'a' - 'A'
			}
			if u < '@' || u > '_' {
				if u != '?' {
					return out, fmt.Errorf("escape %q: ^%c is not a control character", spec, spec[i])
				}
				c = 0x7F
			} else {
				c = u - '@'
			}
		}
		out[n] = c
		n++
	}
	if n != 2 {
		return out, fmt.Errorf("escape %q: want two characters such as ^Ec", spec)
	}
	return out, nil
}

// Format renders an escape for help texts ("^Ec").
func Format(e [2]byte) string {
	var b strings.Builder
	for _, c := range e {
		switch {
		case c < 0x20:
			b.WriteByte('^')
			b.WriteByte(c + '@')
		case c == 0x7F:
			b.WriteString("^?")
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// Item is one piece of parsed input: either Data to pass to the console
// or a Command (the keys typed after the escape, e.g. "." or "l0" or
// "!c").
type Item struct {
	Data    []byte
	Command string
}

// Parser splits typed input into data and commands.
type Parser struct {
	esc [2]byte
	// twoKey lists the command keys that take a second key (l0, !c).
	twoKey string
	state  int // 0 normal, 1 saw esc[0], 2 saw esc, 3 saw a two-key command's first key
	first  byte
}

// New returns a parser for the escape esc. Keys in twoKey take one more
// key after them (for example "l!" makes "l0" and "!c" commands).
func New(esc [2]byte, twoKey string) *Parser {
	return &Parser{esc: esc, twoKey: twoKey}
}

// Pending reports whether the parser is in the middle of an escape.
func (p *Parser) Pending() bool { return p.state != 0 }

// Feed parses a chunk of input and returns its items in order. Data
// slices alias b except for an escape's first byte restored when the
// second did not follow.
func (p *Parser) Feed(b []byte) []Item {
	var items []Item
	start := 0
	flush := func(end int) {
		if end > start {
			items = append(items, Item{Data: b[start:end]})
		}
	}
	for i := 0; i < len(b); i++ {
		c := b[i]
		switch p.state {
		case 0:
			if c != p.esc[0] {
				continue
			}
			flush(i)
			p.state = 1
		case 1:
			switch {
			case c == p.esc[1]:
				p.state = 2
			case c == p.esc[0]:
				// The first escape byte typed twice: send one, stay armed.
				items = append(items, Item{Data: []byte{p.esc[0]}})
			default:
				items = append(items, Item{Data: []byte{p.esc[0]}})
				p.state = 0
				start = i
				continue
			}
		case 2:
			switch {
			case c == p.esc[0] && p.esc[0] != p.esc[1]:
				// ^Ec^E: send the escape's first byte literally (as
				// conserver does for "escape escape").
				items = append(items, Item{Data: []byte{p.esc[0]}})
				p.state = 0
			case strings.IndexByte(p.twoKey, c) >= 0:
				p.first, p.state = c, 3
			default:
				items = append(items, Item{Command: string(c)})
				p.state = 0
			}
		case 3:
			items = append(items, Item{Command: string([]byte{p.first, c})})
			p.state = 0
		}
		start = i + 1
	}
	if p.state == 0 {
		flush(len(b))
	}
	return items
}
