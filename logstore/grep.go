package logstore

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"regexp"
	"regexp/syntax"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// Match is a line Grep found.
type Match struct {
	Time  time.Time
	Event EventKind // "" for console output
	// Text is the plain text of the line (see AppendPlain); for an event,
	// its text.
	Text []byte
}

// GrepOptions tune Grep. The zero value is fine.
type GrepOptions struct {
	// Workers decode and match chunks in parallel. Default GOMAXPROCS.
	Workers int
}

// Grep calls fn, in log order and from one goroutine at a time, for each
// line of console within q.Since and q.Until whose plain text re matches
// (an event matches as "kind text"). q.Last and q.Follow are ignored.
// Chunks of the log are decompressed and searched in parallel. fn's
// error stops the search and is returned. Damage does not stop it: it is
// returned at the end, joined, after every intact line was searched. A
// Match's Text is only valid during fn. A line that spans many chunks (a
// console that printed for long without a line feed) is searched as it
// is read and held only by its last MiB, which its Match reports.
func (s *Store) Grep(ctx context.Context, console string, re *regexp.Regexp, q Query, fn func(Match) error, opts ...GrepOptions) error {
	if err := CheckConsoleName(console); err != nil {
		return err
	}
	var o GrepOptions
	if len(opts) > 0 {
		o = opts[0]
	}
	if o.Workers <= 0 {
		o.Workers = runtime.GOMAXPROCS(0)
	}
	g := &grep{re: re, pf: buildPrefilter(re)}
	g.since, g.until = q.bounds()
	dir := filepath.Join(s.dir, console)
	segs, err := s.segments(dir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("%w: %s", ErrNoSuchLog, console)
		}
		return fmt.Errorf("logstore: %w", err)
	}
	newest := ""
	if len(segs) > 0 {
		newest = segs[len(segs)-1].name
	}
	segs = selectSegments(dir, segs, g.since, g.until)

	parent := ctx
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var errs []error
	var handles []*segHandle
	defer func() {
		for _, h := range handles {
			h.f.Close()
		}
	}()

	// Plan every chunk first (cheap: index reads), then search them.
	type job struct {
		h    *segHandle
		c    chunk
		done chan struct{}
		res  grepResult
	}
	var jobs []*job
	for _, sg := range segs {
		h, err := openSeg(sg)
		if err != nil {
			if !errors.Is(err, fs.ErrNotExist) {
				errs = append(errs, unreadable(sg.path, err))
			}
			continue
		}
		handles = append(handles, h)
		h.plan.damage = append(h.plan.damage, s.tailDamage(h, console, sg.name == newest, true)...)
		for _, e := range h.plan.damage {
			errs = append(errs, e)
		}
		for _, c := range h.plan.chunks {
			if !c.Indexed || c.Last >= g.since && c.First < g.until {
				jobs = append(jobs, &job{h: h, c: c, done: make(chan struct{})})
			}
		}
	}

	window := make(chan struct{}, 2*o.Workers) // bounds decoded chunks held in memory
	work := make(chan *job)
	var wg sync.WaitGroup
	for range o.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var sc scratch
			for j := range work {
				j.res = g.searchChunk(j.h, j.c, &sc)
				close(j.done)
			}
		}()
	}
	order := make(chan *job, 2*o.Workers)
	go func() {
		defer close(order)
		defer close(work)
		for _, j := range jobs {
			select {
			case window <- struct{}{}:
			case <-ctx.Done():
				return
			}
			select {
			case work <- j:
			case <-ctx.Done():
				<-window
				return
			}
			order <- j
		}
	}()

	var carry line
	var ferr error
	emit := func(m Match) bool {
		if ferr != nil {
			return false
		}
		if ferr = fn(m); ferr != nil {
			cancel()
			return false
		}
		return true
	}
	finish := func() bool {
		if !carry.active {
			return true
		}
		carry.active = false
		if t := AppendPlain(nil, carry.raw); carry.matched || g.re.Match(t) {
			return emit(Match{Time: msTime(carry.ms), Text: t})
		}
		return true
	}
	// A line carried across many chunks (a console that printed for long
	// without a line feed) is searched as it grows, and only its last
	// grepLineBytes are kept: matched in what it drops (with the start of
	// what it keeps, for a match across the cut), it is reported with its
	// end.
	bound := func() {
		if len(carry.raw) <= 2*grepLineBytes {
			return
		}
		drop := len(carry.raw) - grepLineBytes
		if !carry.matched && g.re.Match(AppendPlain(nil, carry.raw[:drop+min(grepOverlap, grepLineBytes)])) {
			carry.matched = true
		}
		n := copy(carry.raw, carry.raw[drop:])
		carry.raw = carry.raw[:n]
	}
	for j := range order {
		<-j.done
		<-window
		if ferr != nil || ctx.Err() != nil {
			continue
		}
		r := &j.res
		errs = append(errs, r.errs...)
		if r.lead.active {
			if carry.active {
				carry.raw = append(carry.raw, r.lead.raw...)
				bound()
			} else {
				carry = line{ms: r.lead.ms, raw: append(carry.raw[:0], r.lead.raw...), active: true}
			}
		}
		if r.leadEnds && !finish() {
			continue
		}
		for _, m := range r.body {
			if !emit(m) {
				break
			}
		}
		if r.trail.active {
			finish()
			carry = line{ms: r.trail.ms, raw: append(carry.raw[:0], r.trail.raw...), active: true}
		}
	}
	if ferr == nil && ctx.Err() == nil {
		finish()
	}
	cancel()
	wg.Wait()
	if ferr != nil {
		return ferr
	}
	if err := parent.Err(); err != nil {
		return err
	}
	return errors.Join(errs...)
}

// line is an output line being assembled from records.
type line struct {
	ms      int64
	raw     []byte
	active  bool
	matched bool // a part Grep dropped from raw matched (grepLineBytes)
}

// grepLineBytes bounds the part of a long line Grep holds, and reports
// when the line matches; grepOverlap is how much of the kept part a
// dropped part is searched with.
const (
	grepLineBytes = 1 << 20
	grepOverlap   = 4 << 10
)

// grepResult is what one chunk contributes. A chunk may start in the
// middle of a line (lead: its output records up to the first line end)
// and end in one (trail: partial records at its end); Grep joins those
// with the neighbouring chunks in order.
type grepResult struct {
	errs     []error
	lead     line
	leadEnds bool // lead (with any carried line) is a complete line
	body     []Match
	trail    line
}

type grep struct {
	re           *regexp.Regexp
	pf           prefilter
	since, until int64
}

// scratch is a search worker's reusable memory.
type scratch struct {
	buf, low []byte
	nonASCII []int
	line     []byte // a lower-cased line
}

// match reports whether re matches a line's plain text, asking the
// prefilter first: the regexp costs far more than a substring search.
func (g *grep) match(plain []byte, sc *scratch) bool {
	if len(g.pf.lits) > 0 && !g.pf.mayMatch(plain, sc) {
		return false
	}
	return g.re.Match(plain)
}

// mayMatch reports whether b contains one of the literals.
func (pf *prefilter) mayMatch(b []byte, sc *scratch) bool {
	if pf.fold {
		if pf.nonASCII {
			for _, c := range b {
				if c >= utf8.RuneSelf {
					return true
				}
			}
		}
		sc.line = lowerASCII(sc.line, b, false, nil)
		b = sc.line
	}
	for _, l := range pf.lits {
		if bytes.Contains(b, l) {
			return true
		}
	}
	return false
}

var (
	patPartial = []byte("Z ~ ")
	patEvent   = []byte("Z ! ")
)

func (g *grep) searchChunk(h *segHandle, c chunk, sc *scratch) (res grepResult) {
	var cerrs []*CorruptError
	sc.buf, cerrs = decodeChunk(h.f, h.seg.path, c, sc.buf[:0])
	for _, e := range cerrs {
		res.errs = append(res.errs, e)
	}
	text := sc.buf
	// Whole chunk in range: no need to look at each record's time.
	inRange := c.Indexed && c.First >= g.since && c.Last < g.until
	next := func(p int) (rec []byte, end int) {
		i := bytes.IndexByte(text[p:], '\n')
		if i < 0 {
			return text[p:], len(text)
		}
		return text[p : p+i], p + i + 1
	}
	ok := func(rec []byte) (int64, Marker, bool) {
		ms, m, _, err := splitRecord(rec)
		if err != nil {
			return 0, 0, false
		}
		if !inRange && (ms < g.since || ms >= g.until) {
			return ms, m, false
		}
		return ms, m, true
	}
	bad := func(p int, err error) {
		res.errs = append(res.errs, &CorruptError{Path: h.seg.path, Offset: c.Off, Err: fmt.Errorf("record at byte %d of the chunk: %w", p, err)})
	}

	// Lead: output records until the first line end.
	p := 0
	for p < len(text) {
		rec, end := next(p)
		ms, m, in := ok(rec)
		if !in {
			if _, _, _, err := splitRecord(rec); err != nil {
				bad(p, err)
			}
			p = end
			continue
		}
		if m == MarkEvent {
			res.leadEnds = true // an event ends a carried line
			break
		}
		if !res.lead.active {
			res.lead = line{ms: ms, active: true}
		}
		var err error
		if res.lead.raw, err = appendRecordData(res.lead.raw, rec, m); err != nil {
			bad(p, err)
		}
		p = end
		if m != MarkPartial {
			res.leadEnds = true
			break
		}
	}
	// Trail: partial records at the end, after the body.
	q := len(text)
	for q > p {
		start := bytes.LastIndexByte(text[p:q-1], '\n') + 1 + p
		rec := bytes.TrimSuffix(text[start:q], []byte("\n"))
		_, m, in := ok(rec)
		if !in || m != MarkPartial {
			break
		}
		q = start
	}
	for t := q; t < len(text); {
		rec, end := next(t)
		ms, m, in := ok(rec)
		if in && m == MarkPartial {
			if !res.trail.active {
				res.trail = line{ms: ms, active: true}
			}
			var err error
			if res.trail.raw, err = appendRecordData(res.trail.raw, rec, m); err != nil {
				bad(t, err)
			}
		}
		t = end
	}

	// Body: complete lines. With a prefilter, jump from one place that may
	// match to the next: an occurrence of a required literal, an escaped
	// byte, a partial record, an event (and, for some case-insensitive
	// literals, a non-ASCII byte). Any other line is a single clean record
	// whose plain text is its payload, which lacks every literal.
	body := text[:q]
	usePF := len(g.pf.lits) > 0 && inRange
	hay := body
	sc.nonASCII = sc.nonASCII[:0]
	if usePF && g.pf.fold {
		sc.low = lowerASCII(sc.low, body, g.pf.nonASCII, &sc.nonASCII)
		hay = sc.low
	}
	// find caches in cur the next match of f in b (body, or hay for the
	// literals) at or after from.
	find := func(cur *int, b []byte, from int, f func([]byte) int) int {
		if *cur >= from {
			return *cur
		}
		i := f(b[from:])
		if i < 0 {
			*cur = len(body)
		} else {
			*cur = from + i
		}
		return *cur
	}
	nLit := make([]int, len(g.pf.lits))
	for i := range nLit {
		nLit[i] = -1
	}
	nBS, nPart, nEv, nNA := -1, -1, -1, 0
	var plain []byte
	var cur line
	for p < len(body) {
		if usePF && !cur.active { // inside a line, every record counts
			cand := min(
				find(&nBS, body, p, func(b []byte) int { return bytes.IndexByte(b, '\\') }),
				find(&nPart, body, p, func(b []byte) int { return bytes.Index(b, patPartial) }),
				find(&nEv, body, p, func(b []byte) int { return bytes.Index(b, patEvent) }))
			for i, l := range g.pf.lits {
				cand = min(cand, find(&nLit[i], hay, p, func(b []byte) int { return bytes.Index(b, l) }))
			}
			for nNA < len(sc.nonASCII) && sc.nonASCII[nNA] < p {
				nNA++
			}
			if nNA < len(sc.nonASCII) {
				cand = min(cand, sc.nonASCII[nNA])
			}
			if cand >= len(body) {
				break
			}
			p = bytes.LastIndexByte(body[p:cand], '\n') + 1 + p
		}
		rec, end := next(p)
		ms, m, in := ok(rec)
		if !in {
			if _, _, _, err := splitRecord(rec); err != nil {
				bad(p, err)
			}
			p = end
			continue
		}
		switch {
		case m == MarkEvent:
			if cur.active {
				g.matchLine(&res, &cur, &plain, sc)
			}
			r, err := ParseRecord(rec, nil)
			if err != nil {
				bad(p, err)
				break
			}
			plain = append(append(append(plain[:0], r.Event...), ' '), AppendPlain(nil, r.Data)...)
			if g.match(plain, sc) {
				res.body = append(res.body, Match{Time: r.Time, Event: r.Event, Text: bytes.Clone(plain[len(r.Event)+1:])})
			}
		case !cur.active && m != MarkPartial && bytes.IndexByte(rec, '\\') < 0:
			// A clean single-record line: its payload is its plain text.
			payload := rec[min(prefixLen, len(rec)):]
			if g.match(payload, sc) {
				res.body = append(res.body, Match{Time: msTime(ms), Text: bytes.Clone(payload)})
			}
		default:
			if !cur.active {
				cur = line{ms: ms, raw: cur.raw[:0], active: true}
			}
			var err error
			if cur.raw, err = appendRecordData(cur.raw, rec, m); err != nil {
				bad(p, err)
			}
			if m != MarkPartial {
				g.matchLine(&res, &cur, &plain, sc)
			}
		}
		p = end
	}
	if cur.active {
		g.matchLine(&res, &cur, &plain, sc)
	}
	return res
}

// matchLine matches an assembled line and clears it.
func (g *grep) matchLine(res *grepResult, cur *line, plain *[]byte, sc *scratch) {
	cur.active = false
	*plain = AppendPlain((*plain)[:0], cur.raw)
	if g.match(*plain, sc) {
		res.body = append(res.body, Match{Time: msTime(cur.ms), Text: bytes.Clone(*plain)})
	}
}

// appendRecordData appends the raw bytes an output record stands for.
func appendRecordData(dst, rec []byte, m Marker) ([]byte, error) {
	var payload []byte
	if len(rec) > prefixLen {
		payload = rec[prefixLen:]
	}
	dst, err := appendUnescaped(dst, payload)
	switch m {
	case MarkCRLF:
		dst = append(dst, '\r', '\n')
	case MarkLF:
		dst = append(dst, '\n')
	}
	return dst, err
}

// prefilter lists literals one of which every match of a regexp contains,
// so lines without any of them need not be matched.
type prefilter struct {
	lits [][]byte // lower-case when fold
	fold bool     // ASCII case-insensitive: search lower-cased text
	// nonASCII: some literal has k or s, which also fold to U+212A and
	// U+017F; lines with non-ASCII bytes must be matched too.
	nonASCII bool
}

// buildPrefilter finds the literals of re's prefilter, if it has one.
func buildPrefilter(re *regexp.Regexp) prefilter {
	t, err := syntax.Parse(re.String(), syntax.Perl)
	if err != nil {
		return prefilter{}
	}
	set, fold, ok := reqLits(t.Simplify())
	if !ok || len(set) == 0 || len(set) > 16 {
		return prefilter{}
	}
	pf := prefilter{fold: fold}
	for _, l := range set {
		if l == "" {
			return prefilter{}
		}
		if fold {
			for i := 0; i < len(l); i++ {
				if l[i] >= utf8.RuneSelf {
					return prefilter{} // non-ASCII case folding: not handled here
				}
			}
			l = string(lowerASCII(nil, []byte(l), false, nil))
			pf.nonASCII = pf.nonASCII || strings.ContainsAny(l, "ks")
		}
		pf.lits = append(pf.lits, []byte(l))
	}
	return pf
}

// reqLits returns literals one of which every match of t contains, and
// whether any of them is case-insensitive; ok is false if there are none.
func reqLits(t *syntax.Regexp) (set []string, fold, ok bool) {
	switch t.Op {
	case syntax.OpLiteral:
		return []string{string(t.Rune)}, t.Flags&syntax.FoldCase != 0, true
	case syntax.OpCapture, syntax.OpPlus:
		return reqLits(t.Sub[0])
	case syntax.OpRepeat:
		if t.Min >= 1 {
			return reqLits(t.Sub[0])
		}
	case syntax.OpAlternate:
		for _, s := range t.Sub {
			l, f, ok := reqLits(s)
			if !ok {
				return nil, false, false
			}
			set = append(set, l...)
			fold = fold || f
		}
		return set, fold, true
	case syntax.OpConcat:
		better := func(s []string, f bool) {
			if len(s) == 0 {
				return
			}
			if !ok || litScore(s) > litScore(set) {
				set, fold, ok = s, f, true
			}
		}
		run, runFold := "", false
		for _, s := range t.Sub {
			if s.Op == syntax.OpLiteral {
				f := s.Flags&syntax.FoldCase != 0
				if run != "" && f != runFold {
					run = ""
				}
				run, runFold = run+string(s.Rune), f
				better([]string{run}, runFold)
				continue
			}
			run = ""
			if l, f, k := reqLits(s); k {
				better(l, f)
			}
		}
		return set, fold, ok
	}
	return nil, false, false
}

// litScore ranks literal sets: longer shortest literal first, then fewer.
func litScore(s []string) int {
	short := 1 << 20
	for _, l := range s {
		short = min(short, len(l))
	}
	return short*64 - len(s)
}

var lowerTable = func() (t [256]byte) {
	for i := range t {
		t[i] = byte(i)
		if i >= 'A' && i <= 'Z' {
			t[i] += 'a' - 'A'
		}
	}
	return t
}()

// lowerASCII writes src with ASCII letters lower-cased into dst (same
// offsets); with track, it also lists where non-ASCII bytes are. It works
// on eight bytes at a time.
func lowerASCII(dst, src []byte, track bool, nonASCII *[]int) []byte {
	dst = slices.Grow(dst[:0], len(src))[:len(src)]
	const (
		ones = 0x0101010101010101
		high = 0x8080808080808080
	)
	i := 0
	for ; i+8 <= len(src); i += 8 {
		x := binary.LittleEndian.Uint64(src[i:])
		if x&high != 0 {
			for j := i; j < i+8; j++ {
				c := src[j]
				dst[j] = lowerTable[c]
				if track && c >= utf8.RuneSelf {
					*nonASCII = append(*nonASCII, j)
				}
			}
			continue
		}
		// Bytes in 'A'..'Z' get bit 0x20 (all bytes are below 0x80 here).
		ge := (x + (0x80-'A')*ones) & high
		gt := (x + (0x80-'Z'-1)*ones) & high
		binary.LittleEndian.PutUint64(dst[i:], x|(ge&^gt)>>2)
	}
	for ; i < len(src); i++ {
		c := src[i]
		dst[i] = lowerTable[c]
		if track && c >= utf8.RuneSelf {
			*nonASCII = append(*nonASCII, i)
		}
	}
	return dst
}
