package hostlist

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"unicode/utf8"
)

// DefaultLimit is the number of names Expand accepts before it gives up.
const DefaultLimit = 1_000_000

// maxDigits keeps every number and every range size inside a uint64.
const maxDigits = 18

// bytesPerName is the average name length the byte budget allows for; a list
// of DefaultLimit names may use 128 MiB.
const bytesPerName = 128

// ErrTooLarge is wrapped by the error for a list that expands past its limit.
var ErrTooLarge = errors.New("too many names")

// Error describes a malformed or oversized host list.
type Error struct {
	Input  string // the host list as given
	Offset int    // byte offset of the problem in Input, or -1
	Msg    string // what is wrong
	Err    error  // ErrTooLarge, or nil
}

func (e *Error) Error() string {
	if e.Offset < 0 {
		return fmt.Sprintf("hostlist: %s: %s", quoteShort(e.Input, 60), e.Msg)
	}
	return fmt.Sprintf("hostlist: %s: %s at offset %d", quoteShort(e.Input, 60), e.Msg, e.Offset)
}

// quoteShort quotes s for a message: cut to keep characters (on a
// character boundary, with the total length said), non-ASCII shown as
// characters, not bytes.
func quoteShort(s string, keep int) string {
	n := 0
	for i := range s {
		if n == keep {
			return strconv.Quote(s[:i]) + fmt.Sprintf("... (%d bytes)", len(s))
		}
		n++
	}
	return strconv.Quote(s)
}

// describeChar names the character at the start of s for a message: the
// character itself, or the byte when s is not valid UTF-8 there.
func describeChar(s string) string {
	r, size := utf8.DecodeRuneInString(s)
	if r == utf8.RuneError && size <= 1 {
		return fmt.Sprintf("byte %#02x", s[0])
	}
	return strconv.QuoteRune(r)
}

func (e *Error) Unwrap() error { return e.Err }

// rng is lo-hi inclusive, printed zero-padded to width digits.
type rng struct {
	lo, hi uint64
	width  int
}

// part is a literal (grp == nil) or a bracket group of n numbers.
type part struct {
	lit string
	grp []rng
	n   uint64
}

type term struct {
	parts []part
	n     uint64 // names in the cartesian product
	size  uint64 // upper bound of the bytes of one name
}

// Expand returns the names s denotes, in input order, without duplicates. It
// allows at most DefaultLimit names. An empty list expands to no names.
func Expand(s string) ([]string, error) {
	return ExpandLimit(s, DefaultLimit)
}

// ExpandLimit is Expand with a limit on the number of names (before removing
// duplicates). A limit below 1 means DefaultLimit. The limit is checked
// before any name is produced, so an oversized list costs nothing.
func ExpandLimit(s string, limit int) ([]string, error) {
	return expand(s, limit, nil)
}

// maxDups bounds the repeated names ExpandDups reports.
const maxDups = 100

// ExpandDups is ExpandLimit that also returns the names s lists more than
// once (each name once, in the order of its first repetition, at most 100
// of them), so that a caller can warn about node[1-3,2].
func ExpandDups(s string, limit int) (names, dups []string, err error) {
	dups = []string{}
	names, err = expand(s, limit, &dups)
	return names, dups, err
}

// expand implements ExpandLimit; when dups is not nil it collects repeated
// names.
func expand(s string, limit int, dups *[]string) ([]string, error) {
	if limit < 1 {
		limit = DefaultLimit
	}
	limit = min(limit, 1<<40) // keeps the sums below from overflowing
	terms, err := parse(s)
	if err != nil {
		return nil, err
	}
	var total, bytes uint64
	maxBytes := uint64(limit) * bytesPerName
	for _, t := range terms {
		total += t.n // t.n <= limit+1 and the sum is checked each step: no overflow
		if total > uint64(limit) {
			return nil, &Error{Input: s, Offset: -1, Err: ErrTooLarge,
				Msg: fmt.Sprintf("expands to more than %d names (the limit)", limit)}
		}
		if t.size > 0 && t.n > (maxBytes-bytes)/t.size {
			return nil, &Error{Input: s, Offset: -1, Err: ErrTooLarge,
				Msg: fmt.Sprintf("expands to more than %d bytes of names (the limit)", maxBytes)}
		}
		bytes += t.n * t.size
	}
	out := make([]string, 0, total)
	var seen map[string]bool // name -> reported as a duplicate
	if total > 1 {
		seen = make(map[string]bool, total)
	}
	buf := make([]byte, 0, 64)
	for _, t := range terms {
		idx := make([]int, len(t.parts))    // which range of each group
		cur := make([]uint64, len(t.parts)) // current number of each group
		for i, p := range t.parts {
			if p.grp != nil {
				cur[i] = p.grp[0].lo
			}
		}
		for {
			buf = buf[:0]
			for i, p := range t.parts {
				if p.grp == nil {
					buf = append(buf, p.lit...)
					continue
				}
				buf = appendPadded(buf, cur[i], p.grp[idx[i]].width)
			}
			if seen == nil {
				out = append(out, string(buf))
			} else if again, dup := seen[string(buf)]; !dup {
				name := string(buf)
				seen[name] = false
				out = append(out, name)
			} else if dups != nil && !again && len(*dups) < maxDups {
				seen[string(buf)] = true
				*dups = append(*dups, string(buf))
			}
			// Advance the odometer, rightmost group fastest.
			i := len(t.parts) - 1
			for ; i >= 0; i-- {
				p := t.parts[i]
				if p.grp == nil {
					continue
				}
				if cur[i] < p.grp[idx[i]].hi {
					cur[i]++
					break
				}
				if idx[i]+1 < len(p.grp) {
					idx[i]++
					cur[i] = p.grp[idx[i]].lo
					break
				}
				idx[i] = 0
				cur[i] = p.grp[0].lo
			}
			if i < 0 {
				break
			}
		}
	}
	return out, nil
}

// ExpandParallel expands two lists that name the same things in the same
// order, such as console names and their BMC addresses, and pairs them up. It
// fails when the lists differ in length.
func ExpandParallel(a, b string) ([][2]string, error) {
	as, err := Expand(a)
	if err != nil {
		return nil, err
	}
	bs, err := Expand(b)
	if err != nil {
		return nil, err
	}
	if len(as) != len(bs) {
		return nil, fmt.Errorf("hostlist: %q has %d names but %q has %d", a, len(as), b, len(bs))
	}
	out := make([][2]string, len(as))
	for i := range as {
		out[i] = [2]string{as[i], bs[i]}
	}
	return out, nil
}

func appendPadded(b []byte, v uint64, width int) []byte {
	var tmp [20]byte
	d := strconv.AppendUint(tmp[:0], v, 10)
	for n := len(d); n < width; n++ {
		b = append(b, '0')
	}
	return append(b, d...)
}

func isSep(c byte) bool {
	return c == ',' || c == ' ' || c == '\t' || c == '\n' || c == '\r'
}

// parse splits s into terms and each term into literals and bracket groups.
func parse(s string) ([]term, error) {
	var terms []term
	var cur term
	lit := 0 // start of the pending literal
	flushLit := func(end int) {
		if end > lit {
			cur.parts = append(cur.parts, part{lit: s[lit:end]})
		}
	}
	endTerm := func() {
		if len(cur.parts) == 0 {
			return
		}
		cur.n, cur.size = 1, 0
		for _, p := range cur.parts {
			if p.grp == nil {
				cur.size += uint64(len(p.lit))
				continue
			}
			cur.size += maxDigits
			// Saturate instead of overflowing; the caller's limit is far below.
			if cur.n > (1<<62)/p.n {
				cur.n = 1 << 62
			} else {
				cur.n *= p.n
			}
		}
		terms = append(terms, cur)
		cur = term{}
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case isSep(c):
			flushLit(i)
			endTerm()
			lit = i + 1
		case c == ']':
			return nil, &Error{Input: s, Offset: i, Msg: "unexpected ']'"}
		case c == '[':
			flushLit(i)
			j := strings.IndexAny(s[i+1:], "[]")
			if j < 0 || s[i+1+j] == '[' {
				return nil, &Error{Input: s, Offset: i, Msg: "missing ']' for '['"}
			}
			body := s[i+1 : i+1+j]
			if isIPv6(body) {
				// An IPv6 address literal such as [fd00::1]:623.
				cur.parts = append(cur.parts, part{lit: s[i : i+2+j]})
			} else if c := strings.IndexByte(body, ':'); c >= 0 {
				if strings.Trim(body, "0123456789,-:") == "" {
					// Slurm-style steps (1-9:2).
					return nil, &Error{Input: s, Offset: i + 1 + c,
						Msg: "unexpected ':' in '[]': steps such as [1-9:2] are not supported (list the numbers, as in [1,3,5])"}
				}
				return nil, &Error{Input: s, Offset: i + 1,
					Msg: fmt.Sprintf("%s in '[]' is neither a range group nor an IPv6 address", quoteShort(body, 40))}
			} else {
				p, err := parseGroup(s, i+1, body)
				if err != nil {
					return nil, err
				}
				cur.parts = append(cur.parts, p)
			}
			i += 1 + j
			lit = i + 1
		}
	}
	flushLit(len(s))
	endTerm()
	return terms, nil
}

// isIPv6 reports whether the inside of brackets is an IPv6 address (with
// an optional zone), as in [fd00::1]:623, rather than a range group.
func isIPv6(body string) bool {
	if !strings.Contains(body, ":") {
		return false
	}
	a, err := netip.ParseAddr(body)
	return err == nil && a.Is6()
}

// parseGroup parses the inside of a bracket group that starts at off in s.
func parseGroup(s string, off int, body string) (part, error) {
	if body == "" {
		return part{}, &Error{Input: s, Offset: off - 1, Msg: "empty '[]'"}
	}
	var p part
	for _, item := range strings.Split(body, ",") {
		if item == "" {
			return part{}, &Error{Input: s, Offset: off, Msg: "empty range in '[]'"}
		}
		loS, hiS, isRange := strings.Cut(item, "-")
		lo, err := parseNum(s, off, loS)
		if err != nil {
			return part{}, err
		}
		hi := lo
		if isRange {
			if hi, err = parseNum(s, off+len(loS)+1, hiS); err != nil {
				return part{}, err
			}
			if hi < lo {
				return part{}, &Error{Input: s, Offset: off,
					Msg: fmt.Sprintf("range %s runs backwards", quoteShort(item, 40))}
			}
		}
		p.grp = append(p.grp, rng{lo: lo, hi: hi, width: len(loS)})
		p.n += hi - lo + 1 // at most 10^18 per range and 10^18 ranges can't fit in s
		if p.n > 1<<62 {
			p.n = 1 << 62
		}
		off += len(item) + 1
	}
	return p, nil
}

func parseNum(s string, off int, d string) (uint64, error) {
	if d == "" {
		return 0, &Error{Input: s, Offset: off, Msg: "missing number"}
	}
	for k := 0; k < len(d); k++ {
		if d[k] < '0' || d[k] > '9' {
			return 0, &Error{Input: s, Offset: off + k,
				Msg: fmt.Sprintf("unexpected %s in '[]' (want digits, ',' or '-')", describeChar(d[k:]))}
		}
	}
	if len(d) > maxDigits {
		return 0, &Error{Input: s, Offset: off,
			Msg: fmt.Sprintf("number %s has more than %d digits", quoteShort(d, 24), maxDigits)}
	}
	v, _ := strconv.ParseUint(d, 10, 64) // digits only and short: cannot fail
	return v, nil
}
