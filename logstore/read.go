package logstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"iter"
	"math"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"
)

// Query selects what a reader returns from one console's log.
type Query struct {
	// Since and Until bound record times: Since <= t < Until. Zero values
	// leave that side open.
	Since, Until time.Time
	// Last, when positive, starts at the last Last lines of the selected
	// range instead of its beginning (like tail -n). An event counts as a
	// line.
	Last int
	// Follow keeps reading records as they are written, across rotations,
	// until ctx ends (like tail -f). Until should be zero.
	Follow bool
	// Poll is how often Follow looks for new data. Default 250 ms.
	Poll time.Duration
	// MaxLineBytes, when positive, bounds the text of a joined line: a
	// longer one keeps its last MaxLineBytes bytes and says in
	// Line.Dropped how many it left out, so that a console that prints for
	// hours without a line feed (a progress bar redrawn with CR) costs a
	// reader that much memory, not the whole line. Zero keeps every byte
	// (solgate log reproduces the output exactly).
	MaxLineBytes int
}

func (q Query) bounds() (since, until int64) {
	since, until = math.MinInt64, math.MaxInt64
	if !q.Since.IsZero() {
		since = timeMs(q.Since)
	}
	if !q.Until.IsZero() {
		until = timeMs(q.Until)
	}
	return since, until
}

// Line is a console line assembled from records: the output records of one
// line joined (a partial record and its continuations), or one event.
type Line struct {
	Time  time.Time // the time of the line's first byte
	Event EventKind // "" for console output
	// Partial is set on a line that Follow yields before its end arrived;
	// the rest comes as the next Line.
	Partial bool
	// Text is the raw console bytes with the line ending, if the line has
	// one; for an event its text.
	Text []byte
	// Dropped is how many bytes of the line's beginning were left out
	// (Query.MaxLineBytes, Store.Tail); Text is the rest.
	Dropped int64
}

// keepLast bounds l's text to its last max bytes (max > 0), counting what
// it leaves out. It lets the text grow to twice max before it moves the
// tail down, so that joining a long line costs linear time.
func (l *Line) keepLast(max int) {
	if max > 0 && len(l.Text) > 2*max {
		l.trim(max)
	}
}

// trim finishes keepLast: the text is at most max bytes.
func (l *Line) trim(max int) {
	if max <= 0 || len(l.Text) <= max {
		return
	}
	drop := len(l.Text) - max
	n := copy(l.Text, l.Text[drop:])
	l.Text = l.Text[:n]
	l.Dropped += int64(drop)
}

// segHandle is an open segment and its plan, shared by the passes of one
// read so they see the same file even if it is sealed meanwhile.
type segHandle struct {
	seg     segment
	f       *os.File
	size    int64
	modTime time.Time
	plan    segPlan
}

func openSeg(sg segment) (*segHandle, error) {
	f, err := os.Open(sg.path)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	h := &segHandle{seg: sg, f: f, size: st.Size(), modTime: st.ModTime()}
	h.plan = planSegment(f, h.size, sg.path)
	return h, nil
}

// unreadable reports a segment that cannot be opened or read (its mode,
// an I/O error): readers go on with the others.
func unreadable(path string, err error) *CorruptError {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	return &CorruptError{Path: path, Offset: 0, Err: fmt.Errorf("cannot read the segment: %w", err)}
}

// tornGrace is how long the newest segment of a console with a live
// Writer may end in a frame being written. One write(2) of a frame never
// takes that long: a tail torn for longer belongs to a Writer that died or
// gave up on the file.
const tornGrace = time.Minute

// tailDamage reports the damage at the end of a segment: a header that
// is missing or cut, a last frame cut short, a sealed segment without its
// closing index. The newest segment of a console whose Writer is alive may
// end in a frame being written: that is not damage (Follow reads the frame
// once it is complete). With salvageTail, a chunk for the records that can
// be salvaged from a frame cut short is added to the plan.
func (s *Store) tailDamage(h *segHandle, console string, newest, salvageTail bool) []*CorruptError {
	p := &h.plan
	path := h.seg.path
	inProgress := func() bool { return newest && !p.hdr.Sealed && s.writerAlive(console, h.modTime) }
	var errs []*CorruptError
	if p.hdrErr != nil {
		if inProgress() {
			return nil // being created
		}
		errs = append(errs, &CorruptError{Path: path, Offset: 0, Err: fmt.Errorf("no intact segment header (the file was truncated, or its writer died while creating it): %w", p.hdrErr)})
		if p.end == 0 {
			return errs
		}
	}
	switch {
	case p.torn:
		if inProgress() {
			return errs
		}
		cut := h.size - p.end
		what := fmt.Sprintf("the last %d bytes are a frame cut short (the file was truncated, or its writer died)", cut)
		if salvageTail {
			c := chunk{Off: p.end, End: h.size, Salvage: true}
			n := 0
			if cut <= maxChunkBytes {
				tail := make([]byte, cut)
				if k, _ := h.f.ReadAt(tail, p.end); int64(k) == cut {
					_, _, n = recordStats(salvage(tail))
				}
			}
			if n > 0 {
				p.chunks = append(p.chunks, c)
			}
			what += fmt.Sprintf("; %d records recovered from it", n)
		}
		errs = append(errs, &CorruptError{Path: path, Offset: p.end, Err: fmt.Errorf("%w: %s", ErrTruncated, what)})
	case p.hdr.Sealed && !p.sealed && len(p.damage) == 0:
		errs = append(errs, &CorruptError{Path: path, Offset: h.size, Err: fmt.Errorf("%w: the segment is sealed but does not end with its complete index", ErrTruncated)})
	}
	return errs
}

// writerAlive reports whether console may have a Writer appending to its
// newest segment, last modified at mod: one in this Store, or one in
// another process that holds the console's lock.
func (s *Store) writerAlive(console string, mod time.Time) bool {
	if !mod.IsZero() && time.Since(mod) > tornGrace {
		return false
	}
	s.mu.Lock()
	_, ok := s.writers[console]
	s.mu.Unlock()
	if ok {
		return true
	}
	shard, off := lockSpot(console)
	f, err := os.Open(lockPath(s.dir, shard))
	if errors.Is(err, fs.ErrNotExist) {
		return false // no Writer ever ran here
	}
	if err != nil {
		return true // cannot tell
	}
	defer f.Close()
	lk := unix.Flock_t{Type: unix.F_WRLCK, Whence: io.SeekStart, Start: off, Len: 1}
	if err := unix.FcntlFlock(f.Fd(), unix.F_OFD_GETLK, &lk); err != nil {
		return true
	}
	return lk.Type != unix.F_UNLCK
}

// selectSegments returns the segments of the console folder dir that may
// hold records in [since, until), trusting that a segment's records lie
// between its name and the next segment's name, unless the folder has
// the mark a Writer leaves when the clock went back behind the newest
// name (clockBehindMark): records are then earlier than their segment's
// name, and every segment is read (the chunks' indexes still skip what
// is out of range).
func selectSegments(dir string, segs []segment, since, until int64) []segment {
	if since == math.MinInt64 && until == math.MaxInt64 {
		return segs
	}
	if _, err := os.Lstat(filepath.Join(dir, clockBehindMark)); err == nil {
		return segs
	}
	var out []segment
	for i, sg := range segs {
		if sg.start.UnixMilli() >= until && i > 0 {
			break
		}
		if i+1 < len(segs) && segs[i+1].start.UnixMilli() <= since {
			continue
		}
		out = append(out, sg)
	}
	return out
}

// rec is a record in chunk text, still encoded.
type recRef struct {
	ms   int64
	mark Marker
	line []byte // the record line without its line feed
}

// splitRecords lists the record lines of decoded chunk text. Lines that
// do not parse are reported through bad (with their offset in text).
func splitRecords(text []byte, out []recRef, bad func(off int, err error)) []recRef {
	for off := 0; off < len(text); {
		i := bytes.IndexByte(text[off:], '\n')
		line := text[off:]
		next := len(text)
		if i >= 0 {
			line, next = text[off:off+i], off+i+1
		}
		ms, m, _, err := splitRecord(line)
		if err == nil && m != MarkCRLF && m != MarkLF && m != MarkPartial && m != MarkEvent {
			err = fmt.Errorf("record: unknown marker %q", byte(m))
		}
		if err != nil {
			if bad != nil {
				bad(off, err)
			}
		} else {
			out = append(out, recRef{ms: ms, mark: m, line: line})
		}
		off = next
	}
	return out
}

// pos is a place in a console's log: a segment, a chunk of it, and a
// record of that chunk.
type pos struct{ seg, chunk, rec int }

// Records iterates over a console's records selected by q, oldest first.
// Damage is reported as a *CorruptError and iteration goes on after it; a
// missing log is ErrNoSuchLog. Record.Data is only valid until the next
// iteration.
func (s *Store) Records(ctx context.Context, console string, q Query) iter.Seq2[Record, error] {
	return s.records(ctx, console, q, nil)
}

// records is Records with a hook that Follow calls each time it has read
// everything there is and is about to wait; idle returning false stops.
func (s *Store) records(ctx context.Context, console string, q Query, idle func() bool) iter.Seq2[Record, error] {
	return func(yield func(Record, error) bool) {
		if err := CheckConsoleName(console); err != nil {
			yield(Record{}, err)
			return
		}
		r := &reader{s: s, console: console, dir: filepath.Join(s.dir, console), q: q, idle: idle}
		r.since, r.until = q.bounds()
		r.run(ctx, yield)
	}
}

type reader struct {
	s            *Store
	console      string
	dir          string
	q            Query
	idle         func() bool
	since, until int64
	newest       string // the name of the console's newest segment
	handles      map[string]*segHandle
	skipped      map[int]error // segments findLast could not open, by index
	buf          []byte
	recs         []recRef
	data         []byte
}

func (r *reader) handle(sg segment) (*segHandle, error) {
	if h, ok := r.handles[sg.name]; ok {
		return h, nil
	}
	h, err := openSeg(sg)
	if err != nil {
		return nil, err
	}
	newest := sg.name == r.newest
	// Follow does not salvage the newest segment's torn tail: a Writer
	// that starts later repairs it, and its salvage is then read.
	h.plan.damage = append(h.plan.damage, r.s.tailDamage(h, r.console, newest, !(newest && r.q.Follow))...)
	if r.handles == nil {
		r.handles = map[string]*segHandle{}
	}
	r.handles[sg.name] = h
	return h, nil
}

func (r *reader) closeAll() {
	for _, h := range r.handles {
		h.f.Close()
	}
	r.handles = nil
}

// wanted reports whether an indexed chunk can hold records in range.
func (r *reader) wanted(c chunk) bool {
	return !c.Indexed || c.Last >= r.since && c.First < r.until
}

func (r *reader) run(ctx context.Context, yield func(Record, error) bool) {
	defer r.closeAll()
	segs, err := r.s.segments(r.dir)
	if errors.Is(err, fs.ErrNotExist) && !r.q.Follow {
		yield(Record{}, fmt.Errorf("%w: %s", ErrNoSuchLog, filepath.Base(r.dir)))
		return
	}
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		yield(Record{}, fmt.Errorf("logstore: %w", err))
		return
	}
	if len(segs) > 0 {
		r.newest = segs[len(segs)-1].name
	}
	segs = selectSegments(r.dir, segs, r.since, r.until)
	start := pos{}
	if r.q.Last > 0 {
		start, err = r.findLast(ctx, segs, r.q.Last)
		if err != nil {
			yield(Record{}, err)
			return
		}
		for i := range start.seg { // looked through to find the start
			if err, ok := r.skipped[i]; ok && !yield(Record{}, unreadable(segs[i].path, err)) {
				return
			}
		}
	}
	var last *segHandle
	for i := start.seg; i < len(segs); i++ {
		if ctx.Err() != nil {
			return
		}
		h, err := r.handle(segs[i])
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				continue // removed by retention meanwhile
			}
			if !yield(Record{}, unreadable(segs[i].path, err)) {
				return
			}
			continue
		}
		if !r.reportPlan(h, yield) {
			return
		}
		from := pos{}
		if i == start.seg {
			from = start
		}
		for j := from.chunk; j < len(h.plan.chunks); j++ {
			c := h.plan.chunks[j]
			if !r.wanted(c) {
				continue
			}
			skip := 0
			if i == start.seg && j == from.chunk {
				skip = from.rec
			}
			if !r.emitChunk(h, c, skip, yield) {
				return
			}
		}
		last = h
	}
	if r.q.Follow {
		after := ""
		if len(segs) > 0 {
			after = segs[len(segs)-1].name
		}
		r.follow(ctx, last, after, yield)
	}
}

// reportPlan yields the damage found while planning a segment and
// looking at its end.
func (r *reader) reportPlan(h *segHandle, yield func(Record, error) bool) bool {
	for _, e := range h.plan.damage {
		if !yield(Record{}, e) {
			return false
		}
	}
	return true
}

// decode decompresses a chunk into r.buf and splits it into r.recs.
func (r *reader) decode(h *segHandle, c chunk, yield func(Record, error) bool) bool {
	var errs []*CorruptError
	r.buf, errs = decodeChunk(h.f, h.seg.path, c, r.buf[:0])
	for _, e := range errs {
		if !yield(Record{}, e) {
			return false
		}
	}
	ok := true
	r.recs = splitRecords(r.buf, r.recs[:0], func(off int, err error) {
		if ok {
			ok = yield(Record{}, &CorruptError{Path: h.seg.path, Offset: c.Off, Err: fmt.Errorf("record at byte %d of the chunk: %w", off, err)})
		}
	})
	return ok
}

func (r *reader) emitChunk(h *segHandle, c chunk, skip int, yield func(Record, error) bool) bool {
	if !r.decode(h, c, yield) {
		return false
	}
	for k := skip; k < len(r.recs); k++ {
		rr := r.recs[k]
		if rr.ms < r.since || rr.ms >= r.until {
			continue
		}
		rec, err := ParseRecord(rr.line, r.data)
		if err != nil {
			if !yield(Record{}, &CorruptError{Path: h.seg.path, Offset: c.Off, Err: err}) {
				return false
			}
			continue
		}
		r.data = rec.Data[:0]
		if !yield(rec, nil) {
			return false
		}
	}
	return true
}

// findLast walks back from the end of the range until it has seen n line
// ends, and returns where the first of those n lines starts.
func (r *reader) findLast(ctx context.Context, segs []segment, n int) (pos, error) {
	ends := 0
	nextBreak := true // the record after the current one is an event, or there is none
	for i := len(segs) - 1; i >= 0; i-- {
		if err := ctx.Err(); err != nil {
			return pos{}, err
		}
		h, err := r.handle(segs[i])
		if err != nil {
			if !errors.Is(err, fs.ErrNotExist) {
				if r.skipped == nil {
					r.skipped = map[int]error{}
				}
				r.skipped[i] = err
			}
			continue
		}
		for j := len(h.plan.chunks) - 1; j >= 0; j-- {
			c := h.plan.chunks[j]
			if !r.wanted(c) {
				continue
			}
			r.buf, _ = decodeChunk(h.f, h.seg.path, c, r.buf[:0])
			r.recs = splitRecords(r.buf, r.recs[:0], nil)
			for k := len(r.recs) - 1; k >= 0; k-- {
				rr := r.recs[k]
				if rr.ms < r.since || rr.ms >= r.until {
					continue
				}
				end := rr.mark != MarkPartial || nextBreak
				nextBreak = rr.mark == MarkEvent
				if end {
					ends++
					if ends > n {
						return pos{seg: i, chunk: j, rec: k + 1}, nil
					}
				}
			}
		}
	}
	return pos{}, nil
}

// follow waits for new frames in the newest segment (cur) and for
// segments newer than after, and yields their records, until ctx ends.
func (r *reader) follow(ctx context.Context, cur *segHandle, after string, yield func(Record, error) bool) {
	poll := r.q.Poll
	if poll <= 0 {
		poll = 250 * time.Millisecond
	}
	t := time.NewTimer(poll)
	defer t.Stop()
	for {
		// Drain the current segment, then look for a newer one.
		if cur != nil && !r.drain(cur, false, yield) {
			return
		}
		all, _ := r.s.segments(r.dir)
		var next *segment
		for k := range all {
			if all[k].name > after {
				next = &all[k]
				break
			}
		}
		if next != nil {
			// Anything written before the rotation; what cur lacks now,
			// it lacks for good.
			if cur != nil && !r.drain(cur, true, yield) {
				return
			}
			r.newest = all[len(all)-1].name
			after = next.name
			h, err := r.handle(*next)
			if err != nil {
				if !errors.Is(err, fs.ErrNotExist) && !yield(Record{}, unreadable(next.path, err)) {
					return
				}
			} else {
				if cur != nil {
					cur.f.Close()
					delete(r.handles, cur.seg.name)
				}
				cur = h
				if !r.reportPlan(h, yield) {
					return
				}
				for _, c := range h.plan.chunks {
					if r.wanted(c) && !r.emitChunk(h, c, 0, yield) {
						return
					}
				}
			}
			continue
		}
		if r.idle != nil && !r.idle() {
			return
		}
		t.Reset(poll)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// drain reads the frames appended to h since it was last read. final
// says no more will be: a torn tail is then reported.
func (r *reader) drain(h *segHandle, final bool, yield func(Record, error) bool) bool {
	st, err := h.f.Stat()
	if err != nil || st.Size() <= h.plan.end {
		return true
	}
	h.size = st.Size()
	p := walkPlan(h.f, h.size, h.seg.path, h.plan.end, segPlan{end: h.plan.end})
	h.plan.end = p.end
	if final && p.torn {
		p.damage = append(p.damage, &CorruptError{Path: h.seg.path, Offset: p.end,
			Err: fmt.Errorf("%w: the last %d bytes are a frame cut short (the file was truncated, or its writer died)", ErrTruncated, h.size-p.end)})
	}
	for _, e := range p.damage {
		if !yield(Record{}, e) {
			return false
		}
	}
	for _, c := range p.chunks {
		if r.wanted(c) && !r.emitChunk(h, c, 0, yield) {
			return false
		}
	}
	return true
}

// Lines iterates over a console's lines selected by q: output records
// joined into lines, and events. With Follow, a partial line (a prompt)
// is yielded as it stands, with Partial set, once everything written so
// far has been read; its continuation comes later as a new Line.
// Line.Text is only valid until the next iteration.
func (s *Store) Lines(ctx context.Context, console string, q Query) iter.Seq2[Line, error] {
	return func(yield func(Line, error) bool) {
		var cur Line
		open := false
		stop := false
		flush := func() bool {
			if !open {
				return true
			}
			open = false
			cur.trim(q.MaxLineBytes)
			return yield(cur, nil)
		}
		var idle func() bool
		if q.Follow {
			// Show a partial line (a prompt) while waiting for more.
			idle = func() bool {
				if !open {
					return true
				}
				cur.Partial = true
				return flush()
			}
		}
		for rec, err := range s.records(ctx, console, q, idle) {
			if err != nil {
				if !yield(Line{}, err) {
					stop = true
					break
				}
				continue
			}
			if rec.Event != "" {
				if !flush() || !yield(Line{Time: rec.Time, Event: rec.Event, Text: rec.Data}, nil) {
					stop = true
					break
				}
				continue
			}
			if !open {
				cur = Line{Time: rec.Time, Text: cur.Text[:0]}
				open = true
			}
			cur.Text = append(cur.Text, rec.Data...)
			cur.keepLast(q.MaxLineBytes)
			if !rec.Partial && !flush() {
				stop = true
				break
			}
		}
		if !stop {
			flush()
		}
	}
}

// TailLineBytes bounds each line Tail returns (Query.MaxLineBytes).
const TailLineBytes = 64 << 10

// Tail returns the last n lines of a console (events count as lines),
// including output its Writer in this process has not written yet: what
// to replay to a user who attaches. The lines are copies, each at most
// TailLineBytes (its end; Line.Dropped counts the rest).
func (s *Store) Tail(console string, n int) ([]Line, error) {
	if n <= 0 {
		return nil, nil
	}
	if err := CheckConsoleName(console); err != nil {
		return nil, err
	}
	s.mu.Lock()
	w := s.writers[console]
	s.mu.Unlock()
	var pending []byte
	if w != nil {
		// Hold off flushes so no record is both on disk and pending, or neither.
		w.ioMu.Lock()
		defer w.ioMu.Unlock()
		w.mu.Lock()
		pending = append(pending, w.pend...)
		if len(w.line) > 0 {
			pending = appendOutputRecord(pending, w.lineTime, w.line)
		}
		w.mu.Unlock()
	}
	var lines []Line
	var firstErr error
	for l, err := range s.Lines(context.Background(), console, Query{Last: n, MaxLineBytes: TailLineBytes}) {
		if err != nil {
			if firstErr == nil && !errors.Is(err, ErrNoSuchLog) {
				firstErr = err
			}
			continue
		}
		lines = append(lines, Line{Time: l.Time, Event: l.Event, Text: bytes.Clone(l.Text), Dropped: l.Dropped})
	}
	if len(pending) > 0 {
		// Continue a partial line from disk with pending output.
		open := len(lines) > 0 && lines[len(lines)-1].Event == "" && !bytes.HasSuffix(lines[len(lines)-1].Text, []byte("\n"))
		for _, rr := range splitRecords(pending, nil, nil) {
			rec, err := ParseRecord(rr.line, nil)
			if err != nil {
				continue
			}
			switch {
			case rec.Event != "":
				lines = append(lines, Line{Time: rec.Time, Event: rec.Event, Text: rec.Data})
				open = false
			case open:
				l := &lines[len(lines)-1]
				l.Text = append(l.Text, rec.Data...)
				l.keepLast(TailLineBytes)
				open = rec.Partial
			default:
				lines = append(lines, Line{Time: rec.Time, Text: rec.Data})
				open = rec.Partial
			}
		}
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	for i := range lines {
		if lines[i].Event == "" {
			lines[i].trim(TailLineBytes)
		}
	}
	if len(lines) == 0 && firstErr != nil {
		return nil, firstErr
	}
	return lines, nil
}
