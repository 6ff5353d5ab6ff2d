package logstore

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 11, 23, 10, 1, 2, 123_456_789, time.UTC)

func TestOutputRecord(t *testing.T) {
	tests := []struct {
		name string
		raw  string
		want string
	}{
		{"crlf line", "Booting Linux\r\n", "2026-11-23T10:01:02.123Z | Booting Linux\n"},
		{"lf line", "plain\n", "2026-11-23T10:01:02.123Z : plain\n"},
		{"partial", "login: ", "2026-11-23T10:01:02.123Z ~ login: \n"},
		{"empty crlf", "\r\n", "2026-11-23T10:01:02.123Z | \n"},
		{"bare cr partial", "progress 10%\r", "2026-11-23T10:01:02.123Z ~ progress 10%\\r\n"},
		{"escapes", "\x1b[0;32mOK\x1b[0m\r\n", "2026-11-23T10:01:02.123Z | \\e[0;32mOK\\e[0m\n"},
		{"controls", "a\x00b\x07c\x08d\x7fe\x01\n", "2026-11-23T10:01:02.123Z : a\\0b\\ac\\bd\\x7fe\\x01\n"},
		{"backslash", `C:\path` + "\r\n", "2026-11-23T10:01:02.123Z | C:\\\\path\n"},
		{"tab kept", "a\tb\n", "2026-11-23T10:01:02.123Z : a\tb\n"},
		{"utf-8 kept", "Grüße ✓\r\n", "2026-11-23T10:01:02.123Z | Grüße ✓\n"},
		{"invalid utf-8", "\xff\xc3(\n", "2026-11-23T10:01:02.123Z : \\xff\\xc3(\n"},
		{"c1 control escaped", "\u009b1m\n", "2026-11-23T10:01:02.123Z : \\xc2\\x9b1m\n"},
		{"replacement char kept", "\uFFFD\n", "2026-11-23T10:01:02.123Z : \uFFFD\n"},
		{"cr before crlf", "x\r\r\n", "2026-11-23T10:01:02.123Z | x\\r\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := string(appendOutputRecord(nil, t0, []byte(tt.raw)))
			if got != tt.want {
				t.Fatalf("record = %q, want %q", got, tt.want)
			}
			r, err := ParseRecord([]byte(got), nil)
			if err != nil {
				t.Fatalf("ParseRecord: %v", err)
			}
			if string(r.Data) != tt.raw || r.Event != "" || !r.Time.Equal(t0.Truncate(time.Millisecond)) {
				t.Fatalf("ParseRecord = %+v, want data %q", r, tt.raw)
			}
			if r.Partial != !strings.HasSuffix(tt.raw, "\n") {
				t.Fatalf("Partial = %v for %q", r.Partial, tt.raw)
			}
		})
	}
}

func TestEventRecord(t *testing.T) {
	got := string(appendEventRecord(nil, t0, EventPower, "cycle by alice\n\x1b: ok"))
	want := "2026-11-23T10:01:02.123Z ! power cycle by alice\\n\\e: ok\n"
	if got != want {
		t.Fatalf("event = %q, want %q", got, want)
	}
	r, err := ParseRecord([]byte(got), nil)
	if err != nil || r.Event != EventPower || string(r.Data) != "cycle by alice\n\x1b: ok" {
		t.Fatalf("ParseRecord = %+v, %v", r, err)
	}
	r, err = ParseRecord([]byte("2026-11-23T10:01:02.123Z ! detach\n"), nil)
	if err != nil || r.Event != EventDetach || len(r.Data) != 0 {
		t.Fatalf("event without text: %+v, %v", r, err)
	}
}

func TestParseRecordErrors(t *testing.T) {
	tests := []struct{ name, line, want string }{
		{"short", "2026-11-23", "shorter than"},
		{"bad timestamp", "2026-13-23T10:01:02.123Z | x", "malformed timestamp"},
		{"letters in time", "2026-11-23T1a:01:02.123Z | x", "malformed timestamp"},
		{"no spaces", "2026-11-23T10:01:02.123Z|x", "spaces around the marker"},
		{"unknown marker", "2026-11-23T10:01:02.123Z ? x", "unknown marker"},
		{"lone backslash", "2026-11-23T10:01:02.123Z | x\\", "lone backslash"},
		{"bad escape", "2026-11-23T10:01:02.123Z | \\q", "unknown escape"},
		{"bad hex", "2026-11-23T10:01:02.123Z | \\xzz", "bad \\x escape"},
		{"short hex", "2026-11-23T10:01:02.123Z | \\x1", "truncated \\x escape"},
		{"bad event kind", "2026-11-23T10:01:02.123Z ! Power on", "invalid event kind"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseRecord([]byte(tt.line), nil)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("ParseRecord(%q) error = %v, want it to mention %q", tt.line, err, tt.want)
			}
		})
	}
}

func TestTimestamps(t *testing.T) {
	for _, tm := range []time.Time{
		time.Unix(0, 0), t0, time.Date(1999, 12, 31, 23, 59, 59, 999e6, time.UTC),
		time.Date(2000, 2, 29, 0, 0, 0, 0, time.UTC), time.Date(2400, 3, 1, 12, 0, 0, 5e6, time.UTC),
		time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(9999, 12, 31, 23, 59, 59, 999e6, time.UTC),
		t0.In(time.FixedZone("CET", 3600)),
	} {
		b := appendTimestamp(nil, tm)
		if len(b) != tsLen {
			t.Fatalf("%v: %q has %d bytes", tm, b, len(b))
		}
		ms, err := parseTimestampMs(b)
		if err != nil {
			t.Fatalf("%v: parse %q: %v", tm, b, err)
		}
		if ms != tm.UnixMilli() {
			t.Fatalf("%v: %q parses to %d, want %d", tm, b, ms, tm.UnixMilli())
		}
		if want := tm.UTC().Format("2006-01-02T15:04:05.000Z"); string(b) != want {
			t.Fatalf("%v: %q, want %q", tm, b, want)
		}
	}
	if got := FormatTime(time.Date(12000, 1, 1, 0, 0, 0, 0, time.UTC)); got != "9999-12-31T23:59:59.999Z" {
		t.Fatalf("far future = %q", got)
	}
}

func TestAppendRecord(t *testing.T) {
	for _, r := range []Record{
		{Time: t0, Data: []byte("x\r\n")},
		{Time: t0, Data: []byte("x"), Partial: true},
		{Time: t0, Event: EventNote, Data: []byte("hi")},
	} {
		b, err := AppendRecord(nil, r)
		if err != nil {
			t.Fatalf("AppendRecord(%+v): %v", r, err)
		}
		got, err := ParseRecord(b, nil)
		if err != nil || !bytes.Equal(got.Data, r.Data) || got.Partial != r.Partial || got.Event != r.Event {
			t.Fatalf("round trip %+v -> %q -> %+v, %v", r, b, got, err)
		}
	}
	for _, r := range []Record{
		{Time: t0, Data: []byte("a\nb\n")},
		{Time: t0, Data: []byte("x\n"), Partial: true},
		{Time: t0, Data: []byte("x")},
		{Time: t0, Event: "Bad Kind"},
	} {
		if _, err := AppendRecord(nil, r); err == nil {
			t.Fatalf("AppendRecord(%+v) accepted an invalid record", r)
		}
	}
}

// splitLikeWriter cuts raw bytes into records the way a Writer does,
// with an extra cut at each position in cuts.
func splitLikeWriter(raw []byte, cuts []int) []byte {
	var text []byte
	start := 0
	cut := func(end int) {
		for start < end {
			j := min(end, start+maxLine)
			if i := bytes.IndexByte(raw[start:j], '\n'); i >= 0 {
				j = start + i + 1
			}
			text = appendOutputRecord(text, t0, raw[start:j])
			start = j
		}
	}
	for _, c := range cuts {
		if c > start && c <= len(raw) {
			cut(c)
		}
	}
	cut(len(raw))
	return text
}

// FuzzRecord checks that any byte stream, cut anywhere into records,
// comes back exactly, and that any line either fails to parse or parses
// to a record that encodes and parses back the same.
func FuzzRecord(f *testing.F) {
	f.Add([]byte("hello\r\nworld\x1b[0m partial\x00\xff\\"), []byte("2026-11-23T10:01:02.123Z | x\\e"), uint16(7))
	f.Add([]byte("\r\n\r\n\n\r"), []byte("2026-11-23T10:01:02.123Z ! gap 12 bytes"), uint16(1))
	f.Add([]byte(strings.Repeat("x", 5000)+"\n"), []byte("0000-01-01T00:00:00.000Z ~ "), uint16(4097))
	f.Fuzz(func(t *testing.T, raw, line []byte, cut uint16) {
		text := splitLikeWriter(raw, []int{int(cut)})
		var got []byte
		for _, l := range bytes.SplitAfter(text, []byte("\n")) {
			if len(l) == 0 {
				continue
			}
			if bytes.Count(l, []byte("\n")) != 1 || l[len(l)-1] != '\n' {
				t.Fatalf("record is not one line: %q", l)
			}
			r, err := ParseRecord(l, nil)
			if err != nil {
				t.Fatalf("ParseRecord(%q): %v", l, err)
			}
			got = append(got, r.Data...)
		}
		if !bytes.Equal(got, raw) {
			t.Fatalf("round trip:\n got %q\nwant %q", got, raw)
		}
		// Arbitrary line: no panic; what parses is stable.
		r, err := ParseRecord(line, nil)
		if err != nil {
			return
		}
		b, err := AppendRecord(nil, r)
		if err != nil {
			if r.Event == "" && bytes.Contains(r.Data[:max(0, len(r.Data)-1)], []byte("\n")) {
				return // an escaped \n inside output: valid text, not a Writer record
			}
			t.Fatalf("AppendRecord(ParseRecord(%q)): %v", line, err)
		}
		r2, err := ParseRecord(b, nil)
		if err != nil || !bytes.Equal(r2.Data, r.Data) || r2.Event != r.Event || r2.Partial != r.Partial || !r2.Time.Equal(r.Time) {
			t.Fatalf("unstable: %q -> %+v -> %q -> %+v, %v", line, r, b, r2, err)
		}
	})
}

// TestPlainLen checks the word-at-a-time scan of appendEscaped against
// the byte rule: every byte value at every position of a plain run, so a
// lane test that misses a byte (or flags a plain one) fails.
func TestPlainLen(t *testing.T) {
	for _, base := range []string{"The quick brown ~ fox jumps", "a\tb"} {
		for n := range 27 {
			for pos := range n {
				for c := range 256 {
					p := bytes.Repeat([]byte(base), 27)[:n]
					p[pos] = byte(c)
					want := 0
					for want < len(p) && plainByte(p[want]) {
						want++
					}
					if got := plainLen(p); got != want {
						t.Fatalf("plainLen(%q) = %d, want %d", p, got, want)
					}
				}
			}
		}
	}
}

// TestStamper: the cached timestamps are the bytes appendTimestamp makes,
// within a second, across seconds (forward and back), before 1970, at and
// beyond the range a record holds, and in another zone.
func TestStamper(t *testing.T) {
	var s stamper
	cet := time.FixedZone("CET", 3600)
	times := []time.Time{
		t0, t0.Add(time.Millisecond), t0.Add(876 * time.Millisecond), t0.Add(877 * time.Millisecond),
		t0.Add(-time.Millisecond), t0.Add(-124 * time.Millisecond), t0.In(cet), t0.Add(time.Hour).In(cet),
		time.Unix(-1, 999e6), time.Unix(-1, 0), time.Unix(0, 0), time.Unix(0, 1e6),
		time.Date(0, 1, 1, 0, 0, 0, 5e6, time.UTC), time.Date(-1, 12, 31, 23, 59, 59, 5e6, time.UTC),
		time.Date(0, 1, 1, 0, 0, 0, 6e6, time.UTC),
		time.Date(9999, 12, 31, 23, 59, 59, 5e6, time.UTC), time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(9999, 12, 31, 23, 59, 59, 6e6, time.UTC), time.Date(10000, 1, 1, 0, 0, 0, 7e6, time.UTC),
	}
	for i := range 3000 { // 3 s in steps of 1 ms, crossing seconds
		times = append(times, t0.Add(time.Duration(i)*time.Millisecond+time.Duration(i%7)*time.Microsecond))
	}
	for _, tm := range times {
		got, want := s.appendTime([]byte("x"), tm), appendTimestamp([]byte("x"), tm)
		if !bytes.Equal(got, want) {
			t.Fatalf("%v: %q, want %q", tm, got, want)
		}
	}
}
