package syslog

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	gosyslog "github.com/leodido/go-syslog/v4"
	"github.com/leodido/go-syslog/v4/rfc3164"
	"github.com/leodido/go-syslog/v4/rfc5424"

	"github.com/solgate/solgate/logstore"
)

// collect is a sink that formats messages the way a target does.
type collect struct {
	f    *formatter
	seq  uint64
	msgs [][]byte
	last []bool
	n    int // blank lines
}

func (c *collect) message(m *message, last bool) {
	c.seq++
	m.seq = c.seq
	b := c.f.appendHeader(nil, m)
	c.msgs = append(c.msgs, append(b, m.text...))
	c.last = append(c.last, last)
}
func (c *collect) blank() { c.n++ }

var t0 = time.Date(2026, 11, 23, 10, 1, 2, 123e6, time.UTC)

func feedAll(f *formatter, recs []logstore.Record) *collect {
	c := &collect{f: f}
	e := &lineEmitter{f: f, base: Info, patterns: DefaultPatterns()}
	var l lineState
	for _, r := range recs {
		e.feed(&l, "node42", r, c)
	}
	return c
}

func out(s string) logstore.Record {
	return logstore.Record{Time: t0, Data: []byte(s), Partial: !strings.HasSuffix(s, "\n")}
}

func TestRFC5424Messages(t *testing.T) {
	f := newFormatter(RFC5424, 19, "", 8192)
	c := feedAll(&f, []logstore.Record{
		out("\x1b[0;32m  OK  \x1b[0m] Started Journal Service.\r\n"),
		out("[   12.5] Kernel panic - not syncing: VFS\r\n"),
		out("login: "), out("root\r\n"),
		{Time: t0, Event: logstore.EventPower, Data: []byte("cycle by alice: ok")},
		out("\x1b[2J\x1b[H\r\n"), // blank once stripped
		out("bad \xff utf8 \x07 and \xc2\x85 C1\n"),
	})
	want := []string{
		`<158>1 2026-11-23T10:01:02.123Z node42 solgate - console [solgate@32473 console="node42" seq="1"]   OK  ] Started Journal Service.`,
		`<154>1 2026-11-23T10:01:02.123Z node42 solgate - console [solgate@32473 console="node42" seq="2"] [   12.5] Kernel panic - not syncing: VFS`,
		`<158>1 2026-11-23T10:01:02.123Z node42 solgate - console [solgate@32473 console="node42" seq="3"] login: root`,
		`<157>1 2026-11-23T10:01:02.123Z node42 solgate - power [solgate@32473 console="node42" seq="4"] cycle by alice: ok`,
		"<158>1 2026-11-23T10:01:02.123Z node42 solgate - console [solgate@32473 console=\"node42\" seq=\"5\"] bad \uFFFD utf8  and \uFFFD C1",
	}
	if len(c.msgs) != len(want) || c.n != 1 {
		t.Fatalf("%d messages, %d blank; want %d and 1:\n%s", len(c.msgs), c.n, len(want), bytes.Join(c.msgs, []byte("\n")))
	}
	p := rfc5424.NewParser()
	for i, m := range c.msgs {
		if string(m) != want[i] {
			t.Errorf("message %d:\n got %s\nwant %s", i, m, want[i])
		}
		if _, err := p.Parse(m); err != nil {
			t.Errorf("go-syslog rejects %q: %v", m, err)
		}
	}
}

func TestSplitLongLines(t *testing.T) {
	for _, format := range []Format{RFC5424, RFC3164} {
		f := newFormatter(format, 16, "", 480)
		long := strings.Repeat("0123456789ü", 300) // 3600 bytes, multi-byte runes
		c := feedAll(&f, []logstore.Record{out(long + "\r\n"), out(strings.Repeat("x", 20000)), out("y\n")})
		var text strings.Builder
		var parts [][]byte
		for i, m := range c.msgs {
			if len(m) > 480 {
				t.Fatalf("%v: message %d is %d bytes, limit 480", format, i, len(m))
			}
			if !utf8.Valid(m) {
				t.Fatalf("%v: message %d is not UTF-8", format, i)
			}
			parts = append(parts, m)
		}
		// Reassemble the first line from its parts and check nothing was cut.
		for _, m := range parts {
			body := string(m[bytes.Index(m, []byte(map[Format]string{RFC5424: "\"] ", RFC3164: "solgate: "}[format]))+map[Format]int{RFC5424: 3, RFC3164: 9}[format]:])
			body = strings.TrimPrefix(body, contLead)
			cont := strings.HasSuffix(body, contMark)
			body = strings.TrimSuffix(body, contMark)
			text.WriteString(body)
			if !cont {
				text.WriteString("\n")
			}
		}
		want := long + "\n" + strings.Repeat("x", 20000) + "y\n"
		if text.String() != want {
			t.Fatalf("%v: reassembled %d bytes, want %d", format, text.Len(), len(want))
		}
		if format == RFC5424 && !bytes.Contains(parts[1], []byte(`part="2"`)) {
			t.Fatalf("second part lacks part=2: %s", parts[1])
		}
	}
}

func TestRFC3164Messages(t *testing.T) {
	f := newFormatter(RFC3164, 16, "", 1024)
	c := feedAll(&f, []logstore.Record{
		out("Out of memory: Killed process 123\r\n"),
		{Time: t0, Event: logstore.EventGap, Data: []byte("12 bytes lost")},
	})
	want := []string{
		"<131>Nov 23 10:01:02 node42 solgate: Out of memory: Killed process 123",
		"<132>Nov 23 10:01:02 node42 solgate: ! gap 12 bytes lost",
	}
	p := rfc3164.NewParser(rfc3164.WithYear(rfc3164.CurrentYear{}))
	for i, m := range c.msgs {
		if string(m) != want[i] {
			t.Errorf("message %d:\n got %s\nwant %s", i, m, want[i])
		}
		msg, err := p.Parse(m)
		if err != nil {
			t.Errorf("go-syslog rejects %q: %v", m, err)
			continue
		}
		if h := msg.(*rfc3164.SyslogMessage).Hostname; h == nil || *h != "node42" {
			t.Errorf("hostname %v", h)
		}
	}
}

func TestHeaderSanitising(t *testing.T) {
	f := newFormatter(RFC5424, 16, "bad id=\"x\"]", 8192)
	m := &message{time: t0, hostname: strings.Repeat("h", 300), msgID: "a b" + strings.Repeat("m", 40), severity: Info, seq: 1}
	b := f.appendHeader(nil, m)
	if _, err := rfc5424.NewParser().Parse(append(b, "text"...)); err != nil {
		t.Fatalf("go-syslog rejects %q: %v", b, err)
	}
	fields := strings.Fields(string(b))
	if len(fields[2]) != 255 || len(fields[5]) != 32 || fields[5][1] != '_' {
		t.Fatalf("hostname %d bytes, msgid %q", len(fields[2]), fields[5])
	}
}

// FuzzFormatter feeds arbitrary console bytes, cut into records anywhere,
// through the formatter: every message parses, is valid UTF-8, within the
// limit, and the text survives (modulo stripping) without being cut.
func FuzzFormatter(f *testing.F) {
	f.Add([]byte("plain line\r\n\x1b[31mred\x1b[0m\r\nprompt$ "), uint16(3), false)
	f.Add([]byte("\x1b]0;title\x07\xff\xfe\x00\x85\u2028 x"), uint16(1), true)
	f.Fuzz(func(t *testing.T, data []byte, cut uint16, legacy bool) {
		format := RFC5424
		if legacy {
			format = RFC3164
		}
		fm := newFormatter(format, 16, "", 480)
		var recs []logstore.Record
		step := int(cut%64) + 1
		for len(data) > 0 {
			i := bytes.IndexByte(data, '\n')
			n := min(step, len(data))
			if i >= 0 && i < n {
				n = i + 1
			}
			recs = append(recs, out(string(data[:n])))
			data = data[n:]
		}
		c := feedAll(&fm, recs)
		var p gosyslog.Machine = rfc5424.NewParser()
		if legacy {
			p = rfc3164.NewParser()
		}
		for _, m := range c.msgs {
			if len(m) > 480 || !utf8.Valid(m) {
				t.Fatalf("message of %d bytes, valid UTF-8 %v: %q", len(m), utf8.Valid(m), m)
			}
			if bytes.ContainsAny(m, "\n\r\x00\x1b") {
				t.Fatalf("control byte in %q", m)
			}
			if _, err := p.Parse(m); err != nil {
				t.Fatalf("go-syslog rejects %q: %v", m, err)
			}
		}
	})
}

// TestEventInsideLine: an event that lost nothing (a reconnect, an
// attach) arriving in the middle of a line is shipped on its own and the
// line stays one message, without moving the position past the line's
// start; so does a gap event (it may only say that output was perhaps
// lost, and the bytes around it are what the console showed).
func TestEventInsideLine(t *testing.T) {
	f := newFormatter(RFC5424, 19, "", 8192)
	c := feedAll(&f, []logstore.Record{
		out("0000034575 AB"),
		{Time: t0, Event: logstore.EventReconnect, Data: []byte("SOL session established")},
		out("CD\r\n"),
		out("0000034650 EF"),
		{Time: t0, Event: logstore.EventGap, Data: []byte("12 bytes lost")},
		out("XY\r\n"),
		out("0000034725 GH\r"), // cut after its CR
		{Time: t0, Event: logstore.EventGap, Data: []byte("lost")},
		out("9\r\n"),
	})
	var got []string
	for _, m := range c.msgs {
		_, text, _ := bytes.Cut(m, []byte("] "))
		got = append(got, string(text))
	}
	want := []string{"SOL session established", "0000034575 ABCD", "12 bytes lost", "0000034650 EFXY", "lost", "0000034725 GH9"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("messages %q, want %q", got, want)
	}
	if wantLast := []bool{false, true, false, true, false, true}; fmt.Sprint(c.last) != fmt.Sprint(wantLast) {
		t.Fatalf("positions after each message %v, want %v (none inside an open line)", c.last, wantLast)
	}
}
