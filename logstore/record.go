package logstore

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"time"
	"unicode/utf8"
)

// Marker is the character after the timestamp of a record; it says what
// the record is and how its console bytes end (see doc.go).
type Marker byte

const (
	MarkCRLF    Marker = '|' // output whose raw bytes end with "\r\n"
	MarkLF      Marker = ':' // output whose raw bytes end with "\n"
	MarkPartial Marker = '~' // output without a line ending; the line continues in the next output record
	MarkEvent   Marker = '!' // an event: kind, then text
)

// tsLen is the length of a record timestamp, 2026-11-23T10:01:02.123Z.
const tsLen = 24

// prefixLen is the fixed length of everything before the payload:
// timestamp, space, marker, space.
const prefixLen = tsLen + 3

// EventKind names an event record: a lowercase word such as "attach".
// Any kind matching [a-z][a-z0-9-]{0,31} may be written; these are the
// ones solgate itself writes.
type EventKind string

const (
	EventAttach    EventKind = "attach"    // a user attached to the console
	EventDetach    EventKind = "detach"    // a user detached
	EventPower     EventKind = "power"     // a power action: who, what, result
	EventReconnect EventKind = "reconnect" // the SOL session was (re)established or lost
	EventStolen    EventKind = "stolen"    // another client took the SOL payload
	EventGap       EventKind = "gap"       // console bytes were lost (disk full, crash, overflow)
	EventForce     EventKind = "force"     // a user forced write access
	EventReopen    EventKind = "reopen"    // a user reopened the SOL session
	EventNote      EventKind = "note"      // anything else worth recording
	EventBoot      EventKind = "boot"      // a boot starts here: how (power cycle by alice, firmware banner seen); see Boots
)

// Valid reports whether k can be written as an event kind.
func (k EventKind) Valid() bool {
	if len(k) == 0 || len(k) > 32 || k[0] < 'a' || k[0] > 'z' {
		return false
	}
	for i := 1; i < len(k); i++ {
		c := k[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// Record is one decoded record (one text line of a segment).
type Record struct {
	Time time.Time // UTC, millisecond precision
	// Event is the kind of an event record, "" for console output.
	Event EventKind
	// Partial is set for output records without a line ending: the
	// console line continues in the next output record.
	Partial bool
	// Data is the raw console bytes including the line ending ("\r\n"
	// or "\n", none if Partial) for output; the event text for events.
	Data []byte
}

// stamper formats record timestamps, reusing the date and time of day
// of the previous call in the same second: a busy console's records
// differ in their milliseconds only. The zero value is ready; it is not
// safe for concurrent use (a Writer's is guarded by its mu).
type stamper struct {
	sec  int64 // the Unix second stamp holds, if ok
	ok   bool
	full [tsLen]byte // a timestamp in sec: its first 20 bytes are reused
}

// Unix seconds a record timestamp holds without clamping.
const (
	stampMinSec = -62167219200 // 0000-01-01T00:00:00Z
	stampMaxSec = 253402300799 // 9999-12-31T23:59:59Z
)

// appendTime appends t in the fixed 24-byte record form, the same bytes
// as appendTimestamp.
func (s *stamper) appendTime(dst []byte, t time.Time) []byte {
	sec := t.Unix()
	if !s.ok || sec != s.sec {
		if sec < stampMinSec || sec > stampMaxSec {
			return appendTimestamp(dst, t) // clamped: not cached
		}
		appendTimestamp(s.full[:0], t)
		s.sec, s.ok = sec, true
	}
	ms := t.Nanosecond() / 1e6
	dst = append(dst, s.full[:tsLen-4]...)
	return append(dst, byte('0'+ms/100), byte('0'+ms/10%10), byte('0'+ms%10), 'Z')
}

// appendTimestamp appends t in the fixed 24-byte record form.
func appendTimestamp(dst []byte, t time.Time) []byte {
	t = t.UTC()
	y, mo, d := t.Date()
	if y < 0 {
		y, mo, d = 0, 1, 1
		t = time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC)
	} else if y > 9999 {
		y, mo, d = 9999, 12, 31
		t = time.Date(9999, 12, 31, 23, 59, 59, 999e6, time.UTC)
	}
	h, mi, s := t.Clock()
	ms := t.Nanosecond() / 1e6
	dst = append4(dst, y)
	dst = append(dst, '-')
	dst = append2(dst, int(mo))
	dst = append(dst, '-')
	dst = append2(dst, d)
	dst = append(dst, 'T')
	dst = append2(dst, h)
	dst = append(dst, ':')
	dst = append2(dst, mi)
	dst = append(dst, ':')
	dst = append2(dst, s)
	dst = append(dst, '.', byte('0'+ms/100), byte('0'+ms/10%10), byte('0'+ms%10), 'Z')
	return dst
}

func append2(dst []byte, v int) []byte { return append(dst, byte('0'+v/10), byte('0'+v%10)) }
func append4(dst []byte, v int) []byte {
	return append(dst, byte('0'+v/1000), byte('0'+v/100%10), byte('0'+v/10%10), byte('0'+v%10))
}

// FormatTime formats t the way records carry it: UTC with milliseconds.
func FormatTime(t time.Time) string { return string(appendTimestamp(nil, t)) }

// errTimestamp is returned for a malformed record timestamp.
var errTimestamp = errors.New("malformed timestamp")

// parseTimestampMs parses a 24-byte record timestamp into Unix
// milliseconds without allocating.
func parseTimestampMs(b []byte) (int64, error) {
	if len(b) < tsLen || b[4] != '-' || b[7] != '-' || b[10] != 'T' || b[13] != ':' ||
		b[16] != ':' || b[19] != '.' || b[23] != 'Z' {
		return 0, errTimestamp
	}
	num := func(i, n int) int {
		v := 0
		for _, c := range b[i : i+n] {
			if c < '0' || c > '9' {
				return -1
			}
			v = v*10 + int(c-'0')
		}
		return v
	}
	y, mo, d := num(0, 4), num(5, 2), num(8, 2)
	h, mi, s, ms := num(11, 2), num(14, 2), num(17, 2), num(20, 3)
	if y < 0 || mo < 1 || mo > 12 || d < 1 || d > 31 || h < 0 || h > 23 || mi < 0 || mi > 59 ||
		s < 0 || s > 60 || ms < 0 {
		return 0, errTimestamp
	}
	days := daysFromCivil(y, mo, d)
	return ((days*24+int64(h))*60+int64(mi))*60000 + int64(s)*1000 + int64(ms), nil
}

// daysFromCivil returns the days since 1970-01-01 of a proleptic
// Gregorian date (Howard Hinnant's algorithm); d may overflow the month
// the way time.Date allows.
func daysFromCivil(y, m, d int) int64 {
	if m <= 2 {
		y--
	}
	era := y / 400
	if y < 0 && y%400 != 0 {
		era--
	}
	yoe := y - era*400
	mp := (m + 9) % 12
	doy := (153*mp+2)/5 + d - 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	return int64(era)*146097 + int64(doe) - 719468
}

func msTime(ms int64) time.Time { return time.UnixMilli(ms).UTC() }

// timeMs returns t in Unix milliseconds, clamped to what a record
// timestamp can hold, so comparisons with parsed timestamps agree.
func timeMs(t time.Time) int64 {
	ms := t.UnixMilli()
	const lo, hi = -62167219200000, 253402300799999 // 0000-01-01 .. 9999-12-31T23:59:59.999
	return min(max(ms, lo), hi)
}

// appendEscaped appends p to dst in the record payload form: printable
// UTF-8 and TAB as is, everything else escaped so that a record stays one
// line, carries no terminal control bytes and decodes back to p exactly.
func appendEscaped(dst, p []byte) []byte {
	for i := 0; i < len(p); {
		if j := i + plainLen(p[i:]); j > i {
			// Fast path for runs of plain ASCII.
			dst = append(dst, p[i:j]...)
			i = j
			continue
		}
		c := p[i]
		if c >= 0x80 {
			r, n := utf8.DecodeRune(p[i:])
			if r != utf8.RuneError && !(r >= 0x80 && r <= 0x9f) {
				dst = append(dst, p[i:i+n]...)
				i += n
				continue
			}
			if r == utf8.RuneError && n == 3 {
				// A literal U+FFFD is valid text.
				dst = append(dst, p[i:i+n]...)
				i += n
				continue
			}
			dst = appendHexEscape(dst, c)
			i++
			continue
		}
		switch c {
		case '\\':
			dst = append(dst, '\\', '\\')
		case 0x1b:
			dst = append(dst, '\\', 'e')
		case '\r':
			dst = append(dst, '\\', 'r')
		case '\n':
			dst = append(dst, '\\', 'n')
		case '\b':
			dst = append(dst, '\\', 'b')
		case '\a':
			dst = append(dst, '\\', 'a')
		case 0:
			dst = append(dst, '\\', '0')
		default:
			dst = appendHexEscape(dst, c)
		}
		i++
	}
	return dst
}

func plainByte(c byte) bool { return c >= 0x20 && c < 0x7f && c != '\\' || c == '\t' }

// Byte lanes of a uint64, for plainLen.
const (
	lanes1   = 0x0101010101010101
	lanesTop = 0x8080808080808080
)

// plainLen returns the length of the run of plain ASCII (plainByte) that
// p starts with. It looks at eight bytes at a time: a word holds no byte
// below 0x20, none above 0x7e and no backslash exactly when the three
// classic zero-byte tests below are all clear (a borrow or carry can only
// start at a byte that is itself flagged). A word with a TAB or anything
// to escape is looked at byte by byte.
func plainLen(p []byte) int {
	i := 0
	for {
		for ; i+8 <= len(p); i += 8 {
			x := binary.LittleEndian.Uint64(p[i:])
			bs := x ^ ('\\' * lanes1)
			if ((x-0x20*lanes1)&^x|(x+lanes1)|x|(bs-lanes1)&^bs)&lanesTop != 0 {
				break
			}
		}
		end := min(i+8, len(p))
		for i < end && plainByte(p[i]) {
			i++
		}
		if i < end || i == len(p) {
			return i
		}
	}
}

const hexDigits = "0123456789abcdef"

func appendHexEscape(dst []byte, c byte) []byte {
	return append(dst, '\\', 'x', hexDigits[c>>4], hexDigits[c&15])
}

// appendUnescaped decodes a record payload (without its line feed),
// appending the bytes it stands for to dst.
func appendUnescaped(dst, s []byte) ([]byte, error) {
	for i := 0; i < len(s); {
		c := s[i]
		if c != '\\' {
			j := i + 1
			for j < len(s) && s[j] != '\\' {
				j++
			}
			dst = append(dst, s[i:j]...)
			i = j
			continue
		}
		if i+1 >= len(s) {
			return dst, fmt.Errorf("payload ends in a lone backslash")
		}
		switch s[i+1] {
		case '\\':
			dst = append(dst, '\\')
		case 'e':
			dst = append(dst, 0x1b)
		case 'r':
			dst = append(dst, '\r')
		case 'n':
			dst = append(dst, '\n')
		case 'b':
			dst = append(dst, '\b')
		case 'a':
			dst = append(dst, '\a')
		case '0':
			dst = append(dst, 0)
		case 'x':
			if i+4 > len(s) {
				return dst, fmt.Errorf("truncated \\x escape at payload byte %d", i)
			}
			hi, lo := unhex(s[i+2]), unhex(s[i+3])
			if hi < 0 || lo < 0 {
				return dst, fmt.Errorf("bad \\x escape %q at payload byte %d", s[i:i+4], i)
			}
			dst = append(dst, byte(hi<<4|lo))
			i += 4
			continue
		default:
			return dst, fmt.Errorf("unknown escape %q at payload byte %d", s[i:i+2], i)
		}
		i += 2
	}
	return dst, nil
}

func unhex(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'a' && c <= 'f':
		return int(c-'a') + 10
	case c >= 'A' && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}

// appendOutputRecord appends one output record for the raw bytes p, which
// contain no line feed except possibly as their last byte.
func appendOutputRecord(dst []byte, t time.Time, p []byte) []byte {
	var s stamper
	return s.appendOutput(dst, t, p)
}

// appendOutput is appendOutputRecord with s's timestamps.
func (s *stamper) appendOutput(dst []byte, t time.Time, p []byte) []byte {
	m := MarkPartial
	if n := len(p); n > 0 && p[n-1] == '\n' {
		if n > 1 && p[n-2] == '\r' {
			m, p = MarkCRLF, p[:n-2]
		} else {
			m, p = MarkLF, p[:n-1]
		}
	}
	dst = s.appendTime(dst, t)
	dst = append(dst, ' ', byte(m), ' ')
	dst = appendEscaped(dst, p)
	return append(dst, '\n')
}

// appendEventRecord appends an event record. kind must be Valid.
func appendEventRecord(dst []byte, t time.Time, kind EventKind, text string) []byte {
	var s stamper
	return s.appendEvent(dst, t, kind, text)
}

// appendEvent is appendEventRecord with s's timestamps.
func (s *stamper) appendEvent(dst []byte, t time.Time, kind EventKind, text string) []byte {
	dst = s.appendTime(dst, t)
	dst = append(dst, ' ', byte(MarkEvent), ' ')
	dst = append(dst, kind...)
	if text != "" {
		dst = append(dst, ' ')
		dst = appendEscaped(dst, []byte(text))
	}
	return append(dst, '\n')
}

// AppendRecord appends r in its text form. Output records must hold at most
// one line feed, as their last byte, and it must agree with Partial;
// events need a valid kind.
func AppendRecord(dst []byte, r Record) ([]byte, error) {
	if r.Event != "" {
		if !r.Event.Valid() {
			return dst, fmt.Errorf("logstore: invalid event kind %q", r.Event)
		}
		return appendEventRecord(dst, r.Time, r.Event, string(r.Data)), nil
	}
	for i, c := range r.Data {
		if c == '\n' && i != len(r.Data)-1 {
			return dst, fmt.Errorf("logstore: output record has a line feed at byte %d of %d", i, len(r.Data))
		}
	}
	ends := len(r.Data) > 0 && r.Data[len(r.Data)-1] == '\n'
	if ends == r.Partial {
		return dst, fmt.Errorf("logstore: output record Partial=%v but line feed at end=%v", r.Partial, ends)
	}
	return appendOutputRecord(dst, r.Time, r.Data), nil
}

// ParseRecord decodes one record line (with or without its final line
// feed). Data of the result reuses the storage of buf (which may be nil),
// so a caller can decode many records into one buffer.
func ParseRecord(line, buf []byte) (Record, error) {
	ms, m, payload, err := splitRecord(line)
	if err != nil {
		return Record{}, err
	}
	r := Record{Time: msTime(ms)}
	switch m {
	case MarkEvent:
		k := payload
		rest := []byte(nil)
		for i, c := range payload {
			if c == ' ' {
				k, rest = payload[:i], payload[i+1:]
				break
			}
		}
		r.Event = EventKind(k)
		if !r.Event.Valid() {
			return Record{}, fmt.Errorf("record: invalid event kind %s", truncateForError(k))
		}
		d, err := appendUnescaped(buf[:0], rest)
		if err != nil {
			return Record{}, fmt.Errorf("record: event text: %w", err)
		}
		r.Data = d
		return r, nil
	case MarkCRLF, MarkLF, MarkPartial:
		d, err := appendUnescaped(buf[:0], payload)
		if err != nil {
			return Record{}, fmt.Errorf("record: %w", err)
		}
		switch m {
		case MarkCRLF:
			d = append(d, '\r', '\n')
		case MarkLF:
			d = append(d, '\n')
		default:
			r.Partial = true
		}
		r.Data = d
		return r, nil
	}
	return Record{}, fmt.Errorf("record: unknown marker %q", byte(m))
}

// splitRecord checks the fixed prefix of a record line and returns its
// timestamp, marker and still escaped payload.
func splitRecord(line []byte) (ms int64, m Marker, payload []byte, err error) {
	if n := len(line); n > 0 && line[n-1] == '\n' {
		line = line[:n-1]
	}
	if len(line) < prefixLen-1 {
		return 0, 0, nil, fmt.Errorf("record: %d bytes, shorter than the %d-byte prefix", len(line), prefixLen-1)
	}
	ms, err = parseTimestampMs(line)
	if err != nil {
		return 0, 0, nil, fmt.Errorf("record: %w %s", err, truncateForError(line[:tsLen]))
	}
	if line[tsLen] != ' ' || (len(line) > tsLen+2 && line[tsLen+2] != ' ') {
		return 0, 0, nil, fmt.Errorf("record: want spaces around the marker, got %s", truncateForError(line[tsLen:min(len(line), prefixLen)]))
	}
	m = Marker(line[tsLen+1])
	if len(line) > prefixLen {
		payload = line[prefixLen:]
	}
	return ms, m, payload, nil
}

func truncateForError(b []byte) string {
	if len(b) > 40 {
		return strconv.Quote(string(b[:40])) + "..."
	}
	return strconv.Quote(string(b))
}
