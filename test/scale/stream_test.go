package scale

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/solgate/solgate/ipmilan/bmcsim"
	"github.com/solgate/solgate/logstore"
)

// The numbered stream (solgate bmcsim --stream RATE) is lines of
// bmcsim.StreamLineLen bytes, each starting with its byte offset: a log
// that lost, doubled or damaged anything shows it. streamCheck follows a
// console's log through it.

// jump is a discontinuity in a logged stream.
type jump struct {
	From, To int    // stream offsets: where it should have gone on, where it did
	Cause    string // the marker before it ("" if none)
	At       time.Time
}

// streamResult is what a console's log held.
type streamResult struct {
	Bytes    int // stream bytes logged
	Start    int // offset of the first logged byte
	End      int // offset after the last one
	Lost     int // bytes skipped by forward jumps
	Dup      int // bytes logged twice (backward jumps)
	Restarts int // jumps back to offset 0: the host's stream began again (its simulator restarted)
	Damaged  int // bytes that are not stream text
	Jumps    []jump
	Unmarked []jump // jumps with no marker (gap event) just before them
	First    time.Time
	Last     time.Time // of the last stream record
	// Markers are the markers' texts (gap events), in order.
	Markers []string
	// Lines are the offsets of the lines whose number was logged (a
	// syslog message begins with it), but for an unfinished last one.
	Lines []int
}

// streamCheck consumes a log: data records and markers (gap events for
// solgate, ConMan's notices for conmand).
type streamCheck struct {
	res   streamResult
	pos   int    // the offset the next byte should have; -1 before any
	pend  []byte // bytes not placed yet
	cause string // the last marker, valid for the next two data records
	armed int
	buf   []byte
	at    time.Time
	run   int // where the current contiguous run began
}

func newStreamCheck() *streamCheck { return &streamCheck{pos: -1} }

// closeRun records the line numbers of the run that ends at c.pos.
func (c *streamCheck) closeRun(final bool) {
	if c.pos < 0 {
		return
	}
	const l = bmcsim.StreamLineLen
	for off := (c.run + l - 1) / l * l; off+10 <= c.pos; off += l {
		if final && off+l > c.pos {
			break // not finished: no syslog message yet
		}
		c.res.Lines = append(c.res.Lines, off)
	}
}

func (c *streamCheck) marker(cause string) {
	c.cause, c.armed = cause, 2
	c.res.Markers = append(c.res.Markers, cause)
}

// data places one record's bytes.
func (c *streamCheck) data(p []byte, at time.Time) {
	if c.res.First.IsZero() {
		c.res.First = at
	}
	c.res.Last, c.at = at, at
	// The fast path: the record goes on where the last one ended.
	if c.pos >= 0 && len(c.pend) == 0 {
		c.buf = bmcsim.AppendStreamText(c.buf[:0], c.pos, len(p))
		if bytes.Equal(c.buf, p) {
			c.pos += len(p)
			c.res.Bytes += len(p)
			c.endRecord()
			return
		}
	}
	c.pend = append(c.pend, p...)
	c.place(false)
	c.endRecord()
}

func (c *streamCheck) endRecord() {
	if c.armed > 0 {
		c.armed--
	}
}

// place consumes c.pend as far as it can be placed; at the end (final)
// what cannot be placed is damage.
func (c *streamCheck) place(final bool) {
	for len(c.pend) > 0 {
		if c.pos >= 0 {
			// What continues the stream, cut back to a line boundary
			// unless it is all there is: a jump's first bytes may
			// happen to match.
			c.buf = bmcsim.AppendStreamText(c.buf[:0], c.pos, len(c.pend))
			k := 0
			for k < len(c.pend) && c.pend[k] == c.buf[k] {
				k++
			}
			if k < len(c.pend) {
				k -= (c.pos + k) % bmcsim.StreamLineLen
			}
			if k > 0 {
				c.pos += k
				c.res.Bytes += k
				c.pend = c.pend[k:]
				continue
			}
		}
		start, skip, ok := locate(c.pend)
		if !ok {
			if final || len(c.pend) > 3*bmcsim.StreamLineLen {
				// No line of the stream in sight: damage, up to the last
				// line start (a line may begin there).
				cut := len(c.pend)
				if !final {
					cut = max(1, bytes.LastIndexByte(c.pend[:len(c.pend)-1], '\n')+1)
				}
				c.res.Damaged += cut
				c.pend = c.pend[cut:]
				continue
			}
			return // wait for more
		}
		c.res.Damaged += skip
		c.pend = c.pend[skip:]
		if c.pos < 0 {
			c.res.Start, c.run = start, start
		} else if start != c.pos {
			c.closeRun(false)
			c.run = start
			j := jump{From: c.pos, To: start, At: c.at}
			if c.armed > 0 {
				j.Cause = c.cause
			}
			c.res.Jumps = append(c.res.Jumps, j)
			if j.Cause == "" {
				c.res.Unmarked = append(c.res.Unmarked, j)
			}
			switch {
			case start == 0:
				c.res.Restarts++
			case start > c.pos:
				c.res.Lost += start - c.pos
			default:
				c.res.Dup += c.pos - start
			}
			c.armed = 0
		}
		c.pos = start
	}
}

// locate finds where p's stream text begins: the first line holding its
// own offset and whole (or cut by the end of p). Bytes before it are the
// end of the previous line (then skip is 0 and start is before the line),
// or damage (skip).
func locate(p []byte) (start, skip int, ok bool) {
	var buf []byte
	for i := 0; i+10 <= len(p); i++ {
		// A line starts after a line end, or right after damage.
		if p[i] < '0' || p[i] > '9' {
			continue
		}
		n, err := strconv.Atoi(string(p[i : i+10]))
		if err != nil || n%bmcsim.StreamLineLen != 0 {
			continue
		}
		// The line must be whole and right, or p must end inside it.
		l := min(len(p)-i, bmcsim.StreamLineLen)
		buf = bmcsim.AppendStreamText(buf[:0], n, l)
		if !bytes.Equal(buf, p[i:i+l]) {
			continue
		}
		if i <= n {
			buf = bmcsim.AppendStreamText(buf[:0], n-i, i)
			if bytes.Equal(buf, p[:i]) {
				return n - i, 0, true
			}
		}
		return n, i, true
	}
	return 0, 0, false
}

// finish places what is left and returns the result.
func (c *streamCheck) finish() streamResult {
	c.place(true)
	c.closeRun(true)
	c.res.End = max(c.pos, 0)
	return c.res
}

// checkSolgateLog reads console's log from a solgate log store. Gap
// events are the markers; the other events are skipped.
func checkSolgateLog(s *logstore.Store, console string) (streamResult, error) {
	c := newStreamCheck()
	for rec, err := range s.Records(context.Background(), console, logstore.Query{}) {
		if err != nil {
			return c.finish(), fmt.Errorf("%s: read log: %w", console, err)
		}
		if rec.Event != "" {
			if rec.Event == logstore.EventGap {
				c.marker(string(rec.Data))
			}
			continue
		}
		c.data(rec.Data, rec.Time)
	}
	return c.finish(), nil
}

// logTotals sums the stream checks of a fleet's consoles.
type logTotals struct {
	consoles, bytes, lost, dup, restarts, damaged, jumps int
	lostConsoles                                         int // consoles that lost anything
	maxLost                                              int
	maxLostConsole                                       string
	unmarked                                             []string // "node3: 1500 -> 3000", the first few
	unmarkedN                                            int
	results                                              map[string]streamResult
}

func (lt *logTotals) add(name string, r streamResult) {
	lt.consoles++
	lt.bytes += r.Bytes
	lt.lost += r.Lost
	lt.dup += r.Dup
	lt.restarts += r.Restarts
	lt.damaged += r.Damaged
	lt.jumps += len(r.Jumps)
	if r.Lost > 0 {
		lt.lostConsoles++
	}
	if r.Lost > lt.maxLost {
		lt.maxLost, lt.maxLostConsole = r.Lost, name
	}
	for _, j := range r.Unmarked {
		lt.unmarkedN++
		if len(lt.unmarked) < 5 {
			lt.unmarked = append(lt.unmarked, fmt.Sprintf("%s: %d -> %d", name, j.From, j.To))
		}
	}
	lt.results[name] = r
}

// rate is the mean rate at which the consoles' output was logged, in
// bytes per second, from the times of each log's first and last records.
func (lt *logTotals) rate() float64 {
	var sum float64
	n := 0
	for _, r := range lt.results {
		if d := r.Last.Sub(r.First).Seconds(); d > 0 {
			sum += float64(r.Bytes) / d
			n++
		}
	}
	return sum / float64(max(n, 1))
}

// solgateTotals checks every console's log in a solgate log directory.
func solgateTotals(t testing.TB, logDir string, names []string) logTotals {
	t.Helper()
	s, err := logstore.Open(logDir, logstore.Options{ReadOnly: true})
	must(t, err)
	defer s.Close()
	lt := logTotals{results: map[string]streamResult{}}
	for _, n := range names {
		r, err := checkSolgateLog(s, n)
		if err != nil {
			t.Errorf("%v", err)
		}
		lt.add(n, r)
	}
	return lt
}

// conmanTotals checks every console's log file of conmand.
func conmanTotals(t testing.TB, c *conmanProc, names []string) logTotals {
	t.Helper()
	lt := logTotals{results: map[string]streamResult{}}
	for _, n := range names {
		r, _, err := checkConmanLog(c.logFile(n))
		if err != nil && !os.IsNotExist(err) {
			t.Errorf("%s: %v", n, err)
		}
		lt.add(n, r)
	}
	return lt
}

// conmanNotice is a line conmand writes into a console log: log opened,
// connected, disconnected, ... It begins a line of its own (conmand adds
// a CR LF before it when the console's line was not finished).
var conmanNotice = regexp.MustCompile(`\r\n<ConMan> [^\r\n]*\r\n`)

// checkConmanLog reads a conmand console log file: the notices are the
// markers. conmand writes no event for lost output, so every jump counts.
func checkConmanLog(path string) (streamResult, int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return streamResult{}, 0, err
	}
	c := newStreamCheck()
	last, notices := 0, 0
	for _, m := range conmanNotice.FindAllIndex(b, -1) {
		if m[0] > last {
			c.data(b[last:m[0]], time.Time{})
		}
		c.marker(string(bytes.TrimSpace(b[m[0]:m[1]])))
		notices++
		last = m[1]
	}
	if last < len(b) {
		c.data(b[last:], time.Time{})
	}
	return c.finish(), notices, nil
}
