package syslog

import (
	"bytes"
	"regexp"
	"strings"
	"time"

	"github.com/solgate/solgate/logstore"
	"github.com/solgate/solgate/logstore/ansi"
)

// Pattern raises the severity of the console lines its regular
// expression matches (on the plain text: escape sequences stripped).
type Pattern struct {
	Re       *regexp.Regexp
	Severity Severity
	// lits, when set, are literals one of which the line must contain:
	// the same test as Re, much faster than an alternation in regexp.
	lits []string
}

func (p *Pattern) match(text []byte) bool {
	if p.lits == nil {
		return p.Re.Match(text)
	}
	for _, l := range p.lits {
		if bytes.Contains(text, []byte(l)) {
			return true
		}
	}
	return false
}

// literals makes a Pattern matching any of lits.
func literals(sev Severity, lits ...string) Pattern {
	q := make([]string, len(lits))
	for i, l := range lits {
		q[i] = regexp.QuoteMeta(l)
	}
	return Pattern{Re: regexp.MustCompile(strings.Join(q, "|")), Severity: sev, lits: lits}
}

// DefaultPatterns are the patterns a target uses after its own: kernel
// panics, Oopses, BUGs, general protection faults and machine checks are
// crit; the OOM killer err; lockups, stalls, hung tasks and call traces
// warning. The first pattern that matches wins.
func DefaultPatterns() []Pattern {
	return []Pattern{
		literals(Crit, "Kernel panic", "Oops: ", "BUG: ", "general protection fault", "Machine check", "machine check",
			"MACHINE CHECK", "[Hardware Error]"),
		literals(Err, "Out of memory", "invoked oom-killer", "oom-kill:", "Memory cgroup out of memory"),
		literals(Warning, "soft lockup", "hard LOCKUP", "blocked for more than", "detected stall", "Call Trace:"),
	}
}

// eventSeverity is the severity of an event record: losses and stolen
// sessions are warnings, the rest notices.
func eventSeverity(kind logstore.EventKind) Severity {
	switch kind {
	case logstore.EventGap, logstore.EventStolen:
		return Warning
	}
	return Notice
}

// maxLineBytes is how much stripped text of a line without an end a
// shipper holds: beyond it the line is shipped in parts at the next record
// boundary (so its position can advance) and the rest follows as further
// parts.
const maxLineBytes = 16 << 10

// lineState assembles one console's records into lines.
type lineState struct {
	strip ansi.Stripper
	buf   []byte // stripped bytes of the open line
	open  bool
	start time.Time
	parts int      // parts of the open line already shipped
	sev   Severity // highest severity seen in the open line's parts
}

func (l *lineState) reset() {
	l.strip.Reset()
	l.buf = l.buf[:0]
	if cap(l.buf) > 4096 {
		l.buf = nil // a quiet console keeps no large buffer
	}
	l.open, l.parts = false, 0
}

// sink receives the messages of a console.
type sink interface {
	// message is called for each message; last says it completes a line or
	// an event, so the console's position may advance past the records
	// fed so far.
	message(m *message, last bool)
	// blank is called for a complete line with no text to ship (empty
	// once escape sequences are stripped): the position may advance.
	blank()
}

// feed processes one record. feedSkip strips without shipping (replaying
// up to a saved position).
func (l *lineState) feedSkip(rec logstore.Record) {
	if rec.Event != "" {
		return
	}
	l.buf = l.strip.Strip(l.buf[:0], rec.Data)
	l.buf = l.buf[:0]
}

// lineEmitter turns lines into messages for one console: it knows the
// target's formatting and severity rules.
type lineEmitter struct {
	f        *formatter
	base     Severity
	patterns []Pattern
	scratch  []byte
	plain    []byte
	hdr      []byte
}

func (e *lineEmitter) severity(text []byte) Severity {
	for i := range e.patterns {
		if p := &e.patterns[i]; p.match(text) {
			return p.Severity
		}
	}
	return e.base
}

// feed processes one record of console, calling s for each message.
func (e *lineEmitter) feed(l *lineState, console string, rec logstore.Record, s sink) {
	if rec.Event != "" {
		// An event is shipped on its own and an open line goes on, so a
		// console line stays one message, as a terminal shows it. Even
		// a gap: it may say output was perhaps lost (a first session
		// after a restart, when the BMC may well have kept it all), and
		// where output was lost the bytes around it are what the
		// console showed. But what came before a gap is kept as it
		// stands: a CR or BS after it cannot overwrite it (a line cut
		// after its CR would otherwise be overwritten by unrelated
		// text). While the line is open the position stays at its start
		// (the event is sent again with it after a crash).
		if l.open && rec.Event == logstore.EventGap {
			e.plain = logstore.AppendPlain(e.plain[:0], l.buf)
			l.buf = append(l.buf[:0], e.plain...)
		}
		e.plain = logstore.AppendPlain(e.plain[:0], rec.Data)
		e.emit(console, rec.Time, string(rec.Event), eventSeverity(rec.Event), e.plain, 0, false, s, !l.open)
		return
	}
	if !l.open {
		l.open, l.start, l.parts, l.sev = true, rec.Time, 0, Debug+1
	}
	l.buf = l.strip.Strip(l.buf, rec.Data)
	if !rec.Partial {
		e.flushLine(l, console, s, true)
		return
	}
	if len(l.buf) >= maxLineBytes {
		e.flushLine(l, console, s, false)
	}
}

// flushLine ships the open line (end: it is complete; else a part of it
// that goes on).
func (e *lineEmitter) flushLine(l *lineState, console string, s sink, end bool) {
	e.plain = logstore.AppendPlain(e.plain[:0], l.buf)
	if end && l.parts == 0 && isBlank(e.plain) {
		l.open = false
		l.buf = l.buf[:0]
		s.blank()
		return
	}
	sev := e.severity(e.plain)
	if sev > l.sev {
		sev = l.sev
	}
	l.sev = sev
	part := 0
	if l.parts > 0 || !end {
		part = l.parts + 1
	}
	n := e.emit(console, l.start, MsgIDConsole, sev, e.plain, part, !end, s, end)
	if end {
		l.open, l.parts = false, 0
		l.buf = l.buf[:0]
		if cap(l.buf) > 4096 {
			l.buf = nil
		}
		return
	}
	l.parts += n
	l.buf = l.buf[:0]
}

// emit formats text as one or more messages, split at the message limit
// with continuation markers; it returns how many. part is the first part
// number (0 for a line that fits one message); more says the text is
// continued by a later call.
func (e *lineEmitter) emit(console string, t time.Time, msgID string, sev Severity, text []byte, part int, more bool, s sink, last bool) int {
	clean := appendText(e.scratch[:0], text)
	e.scratch = clean
	m := message{time: t, hostname: console, msgID: msgID, severity: sev}
	n := 0
	lead := part > 1
	for {
		// The header length depends on the sequence number and the part;
		// the sink assigns the sequence, so budget for the longest.
		m.part = part
		e.hdr = e.f.appendHeader(e.hdr[:0], &message{time: t, hostname: console, msgID: msgID, severity: sev, seq: 1<<64 - 1, part: max(part, 1) + 1})
		hdr := len(e.hdr)
		budget := e.f.max - hdr
		if lead {
			budget -= len(contLead)
		}
		rest := clean
		fits := len(rest) <= budget
		if !fits {
			budget -= len(contMark)
		}
		k := cutText(rest, max(budget, 16))
		if fits {
			k = len(rest)
		}
		var body []byte
		if lead {
			body = append(body, contLead...)
		}
		body = append(body, rest[:k]...)
		clean = rest[k:]
		done := len(clean) == 0
		m.cont = !done || more
		if m.cont {
			if m.part == 0 {
				m.part = 1
				part = 1
			}
			body = append(body, contMark...)
		}
		m.text = body
		n++
		s.message(&m, done && last)
		if done {
			return n
		}
		part++
		lead = true
	}
}

// isBlank reports whether text is empty or only spaces and tabs.
func isBlank(text []byte) bool {
	for _, c := range text {
		if c != ' ' && c != '\t' {
			return false
		}
	}
	return true
}
