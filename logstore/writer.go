package logstore

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"math/bits"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// maxIndexSpan bounds the decompressed bytes one index entry of a live
// segment covers, so a reader never has to decompress much more than it
// needs even when a console is very busy.
const maxIndexSpan = 4 << 20

// maxLine caps the raw bytes of one record: a console that never sends a
// line feed (a BIOS screen) still yields readable, bounded records.
const maxLine = 4096

// Writer records one console's output. Write and Event only copy into a
// small buffer and never wait for the disk; a pool of flush workers
// shared by the Store compresses and appends the buffer as one zstd frame
// at least every FlushInterval. Disk errors never reach the caller: the
// lost bytes are counted (Stats) and a gap event is written once writing
// works again. A Writer is safe for concurrent use.
type Writer struct {
	s       *Store
	console string
	dir     string

	// ioMu serialises disk work: flushes, rotation, Close. Lock order:
	// ioMu, then syncMu, then mu, then Store.mu.
	ioMu sync.Mutex
	// syncMu is held while a sync of the live segment runs without ioMu
	// (Writer.syncData), so Close can wait for it.
	syncMu sync.Mutex
	// Guarded by ioMu:
	locked     bool // holds the console's lock (Store.lockConsole)
	released   bool // Close has run: no more disk work
	dirty      bool // frames written to f since its last sync
	syncDir    bool // a segment was created in dir since the last sync
	syncParent bool // and dir itself was created: sync the log directory too
	newDir     bool // dir was created by open: its name is not synced yet

	inDirty bool // guarded by Store.mu: in Store.dirty

	// Guarded by ioMu:
	seg       string     // live segment's name, "" when there is none
	f         segFile    // the live segment, nil when none or closed while idle
	lastWrite time.Time  // monotonic time of the last frame written
	segStart  time.Time  // its start (from the name)
	size      int64      // end of its last complete frame
	idx       indexEntry // data frames since the last index frame; idx.End == 0 when none
	lastIndex time.Time  // when the last index frame was written
	lastName  time.Time  // start of the newest segment name in dir
	lost      gapInfo    // console bytes lost to disk errors, not yet reported
	segGone   string     // the live segment, found deleted while open: the next flush leaves it

	mu sync.Mutex // guards the fields below
	// pend holds complete records not yet written; line the raw bytes of
	// the current line, which becomes a record at its line feed, at
	// maxLine, before an event, or at a flush.
	pend      []byte
	pendRaw   int   // console bytes represented by pend
	pendFirst int64 // earliest record time in pend, Unix ms
	pendLast  int64 // latest
	pendRecs  int
	// lastPend is the size of the last flushed pend: a busy console's
	// next pend starts with room for about that much instead of growing
	// from a small buffer (and copying) every flush.
	lastPend int
	// held is what the Writer counts in Store.pending for its buffers:
	// the capacity of pend and line, which is what they reserve, not
	// just the bytes in use (accountLocked).
	held      int64
	firstPend time.Time // monotonic time the first pending byte arrived
	line      []byte
	lineTime  time.Time
	stamp     stamper // formats the records' timestamps
	overflow  gapInfo // bytes dropped because pend was full
	timer     *time.Timer
	queued    bool // in the Store's flush queue or being flushed
	rotate    bool // rotate at the next flush even without data
	closed    bool
	liveName  string // copy of seg for the maintainer
	stats     WriterStats

	lim atomic.Pointer[Limits] // SetLimits; nil: the Store's Options
}

// WriterStats are a Writer's counters since it was opened.
type WriterStats struct {
	Bytes   int64 // console bytes accepted by Write
	Written int64 // console bytes written to disk
	Dropped int64 // console bytes lost: buffer overflow or disk errors
	// BudgetDropped is the part of Dropped lost because the Store's
	// Writers together buffered MaxPendingTotal bytes.
	BudgetDropped int64
	Frames        int64 // data frames written
	WriteErrors   int64 // failed writes: frames, new segments
	Failing       bool  // the last write failed
	Gaps          int64 // gap events written
}

// gapInfo accumulates lost bytes until a gap event reports them.
type gapInfo struct {
	bytes        int64
	since, until time.Time
	reason       string
}

func (g *gapInfo) add(n int64, t time.Time, reason string) {
	if g.bytes == 0 {
		g.since = t
	}
	g.bytes += n
	g.until = t
	g.reason = reason
}

func (g *gapInfo) text() string {
	return fmt.Sprintf("%d bytes lost until %s: %s", g.bytes, FormatTime(g.until), g.reason)
}

func newWriter(s *Store, console string) *Writer {
	return &Writer{s: s, console: console, dir: filepath.Join(s.dir, console)}
}

// Console returns the console's name.
func (w *Writer) Console() string { return w.console }

// Stats returns the Writer's counters.
func (w *Writer) Stats() WriterStats {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.stats
}

// Write records console output p. It always accepts all of p (n == len(p))
// and returns an error only after Close.
func (w *Writer) Write(p []byte) (int, error) {
	n := len(p)
	if n == 0 {
		return 0, nil
	}
	now := w.s.now()
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return 0, ErrClosed
	}
	w.stats.Bytes += int64(n)
	full := len(w.pend)+len(w.line)+n > w.s.opt.MaxPending
	// Room for the first record (and the gap event before it) must fit
	// in the budget, or all of p is dropped.
	first := recordMax(len(w.line) + min(n, maxLine))
	if w.overflow.bytes > 0 {
		first += gapRoom
	}
	if full || !w.roomLocked(first) {
		w.dropLocked(n, now, !full)
		kick := w.kickLocked()
		w.mu.Unlock()
		if kick {
			w.s.enqueue(w)
		}
		return n, nil
	}
	wasIdle := !w.pendingLocked()
	if w.overflow.bytes > 0 {
		w.closeLineLocked()
		w.appendEventLocked(w.overflow.since, EventGap, w.overflow.text())
		w.stats.Gaps++
		w.overflow = gapInfo{}
	}
	dropped := false
records:
	for len(p) > 0 {
		chunk := p
		i := bytes.IndexByte(p, '\n')
		if i >= 0 {
			chunk = p[:i+1]
		}
		p = p[len(chunk):]
		if len(w.line) == 0 && i >= 0 && len(chunk) <= maxLine {
			if !w.roomLocked(recordMax(len(chunk))) {
				w.dropLocked(len(chunk)+len(p), now, true)
				dropped = true
				break
			}
			w.appendOutputLocked(now, chunk) // the common case: no copy
			continue
		}
		for len(chunk) > 0 {
			take := min(maxLine-len(w.line), len(chunk))
			if !w.roomLocked(recordMax(len(w.line) + take)) {
				w.dropLocked(len(chunk)+len(p), now, true)
				dropped = true
				break records
			}
			if len(w.line) == 0 {
				w.lineTime = now
			}
			w.line = append(w.line, chunk[:take]...)
			chunk = chunk[take:]
			if w.line[len(w.line)-1] == '\n' || len(w.line) >= maxLine {
				w.closeLineLocked()
			}
		}
	}
	kick := false
	if wasIdle && w.pendingLocked() {
		w.armLocked()
	}
	if dropped || len(w.pend) >= w.s.opt.FrameBytes {
		kick = w.kickLocked()
	}
	w.accountLocked()
	w.mu.Unlock()
	if kick {
		w.s.enqueue(w)
	}
	return n, nil
}

// Event records an event line. An invalid kind is recorded as "note" with
// the kind in front of the text. Events after Close are ignored.
func (w *Writer) Event(kind EventKind, text string) {
	if !kind.Valid() {
		text = fmt.Sprintf("%q %s", string(kind), text)
		kind = EventNote
	}
	now := w.s.now()
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return
	}
	wasIdle := !w.pendingLocked()
	w.closeLineLocked() // an event ends a partial line so it sorts in time
	w.appendEventLocked(now, kind, text)
	if wasIdle {
		w.armLocked()
	}
	w.accountLocked()
	w.mu.Unlock()
}

func (w *Writer) pendingLocked() bool { return len(w.pend) > 0 || len(w.line) > 0 }

func (w *Writer) noteTimeLocked(t time.Time) {
	ms := timeMs(t)
	if w.pendRecs == 0 {
		w.pendFirst, w.pendLast = ms, ms
	} else {
		w.pendFirst, w.pendLast = min(w.pendFirst, ms), max(w.pendLast, ms)
	}
	w.pendRecs++
}

// accountLocked brings what w counts in Store.pending in line with the
// capacity its buffers hold: an atomic add only when a buffer was
// allocated, grown or released, not for every Write.
func (w *Writer) accountLocked() {
	if c := int64(cap(w.pend) + cap(w.line)); c != w.held {
		w.s.pending.Add(c - w.held)
		w.held = c
	}
}

// dropLocked counts n console bytes of a Write as lost: the console's
// own buffer is full, or (budget) the Store's MaxPendingTotal is.
func (w *Writer) dropLocked(n int, now time.Time, budget bool) {
	if budget {
		w.overflow.add(int64(n), now, "output buffers of all consoles full (MaxPendingTotal): disk too slow")
		w.stats.BudgetDropped += int64(n)
		w.s.budgetDropped.Add(int64(n))
	} else {
		w.overflow.add(int64(n), now, "console output buffer full: disk too slow")
	}
	w.stats.Dropped += int64(n)
}

// recordMax is the most bytes an output record of n console bytes takes:
// the prefix, every byte escaped as \xNN, the line feed.
func recordMax(n int) int { return prefixLen + 4*n + 1 }

// gapRoom is about what the gap event for an overflow takes.
const gapRoom = 256

// roomLocked makes room in pend for n more bytes and reports whether it
// could. A pend that has the room costs the budget nothing more;
// otherwise the buffer it would allocate or grow to must fit in
// MaxPendingTotal with what all Writers hold: a busy console's next pend
// is sized after its last flush, or just for these bytes when the budget
// has no room for that. Records appended beyond a reservation (events,
// the line a flush ends) grow pend as append does, and are counted after
// (accountLocked).
func (w *Writer) roomLocked(n int) bool {
	need := len(w.pend) + n
	if need <= cap(w.pend) {
		return true
	}
	target := need
	if w.pend == nil {
		if w.lastPend > smallBuf {
			// What flushed last time, with an eighth for a busier second.
			target = max(target, min(w.lastPend+w.lastPend/8, w.s.opt.FrameBytes+maxLine+1024))
		}
	} else {
		target = max(target, cap(w.pend)+cap(w.pend)/4) // amortised growth
	}
	free := w.s.opt.MaxPendingTotal - w.s.pending.Load()
	size := bufSize(target)
	if int64(size-cap(w.pend)) > free {
		size = bufSize(need)
		if int64(size-cap(w.pend)) > free {
			return false
		}
	}
	b := getBufFor(size)
	if w.pend != nil {
		b = append(b, w.pend...)
		putBuf(w.pend)
	}
	w.pend = b
	w.accountLocked()
	return true
}

func (w *Writer) appendOutputLocked(t time.Time, raw []byte) {
	if w.pend == nil {
		w.pend = getBuf()
	}
	w.pend = w.stamp.appendOutput(w.pend, t, raw)
	w.pendRaw += len(raw)
	w.noteTimeLocked(t)
}

func (w *Writer) appendEventLocked(t time.Time, kind EventKind, text string) {
	if w.pend == nil {
		w.pend = getBuf()
	}
	w.pend = w.stamp.appendEvent(w.pend, t, kind, text)
	w.noteTimeLocked(t)
}

// closeLineLocked turns the current line into a record.
func (w *Writer) closeLineLocked() {
	if len(w.line) == 0 {
		return
	}
	w.appendOutputLocked(w.lineTime, w.line)
	w.line = w.line[:0]
	if cap(w.line) > maxLine {
		w.line = nil
	}
}

// armLocked starts the flush timer when the first byte becomes pending.
func (w *Writer) armLocked() {
	w.firstPend = time.Now()
	d := w.s.opt.FlushInterval
	if w.timer == nil {
		w.timer = time.AfterFunc(d, w.onTimer)
	} else {
		w.timer.Reset(d)
	}
}

// kickLocked marks w queued and reports whether the caller must enqueue
// it (after unlocking).
func (w *Writer) kickLocked() bool {
	if w.queued || w.closed {
		return false
	}
	w.queued = true
	return true
}

func (w *Writer) onTimer() {
	w.mu.Lock()
	kick := w.pendingLocked() && w.kickLocked()
	w.mu.Unlock()
	if kick {
		w.s.enqueue(w)
	}
}

// dueLocked reports whether a flush should run now.
func (w *Writer) dueLocked() bool {
	if w.rotate || len(w.pend) >= w.s.opt.FrameBytes {
		return true
	}
	return w.pendingLocked() && time.Since(w.firstPend) >= w.s.opt.FlushInterval
}

// runQueued is called by a flush worker.
func (w *Writer) runQueued() {
	w.ioMu.Lock()
	w.flushIO(false)
	w.ioMu.Unlock()
	w.mu.Lock()
	again := !w.closed && w.dueLocked()
	w.queued = again
	w.mu.Unlock()
	if again {
		w.s.enqueue(w)
	}
}

// checkAge asks for a rotation of a live segment that has aged while the
// console was idle, so it gets sealed.
func (w *Writer) checkAge(now time.Time) {
	if !w.ioMu.TryLock() {
		return // busy (maybe stuck on a slow disk); try at the next tick
	}
	old := w.seg != "" && now.Sub(w.segStart) >= w.limits().SegmentAge
	w.ioMu.Unlock()
	if !old {
		return
	}
	w.mu.Lock()
	w.rotate = true
	kick := w.kickLocked()
	w.mu.Unlock()
	if kick {
		w.s.enqueue(w)
	}
}

// Flush writes everything pending now and returns the write error, if
// any (the bytes are then counted as dropped, as always).
func (w *Writer) Flush() error {
	w.ioMu.Lock()
	defer w.ioMu.Unlock()
	return w.flushIO(false)
}

// Close flushes, writes a final index frame, closes the live segment
// (it stays live: a later Writer appends to it) and releases the console.
func (w *Writer) Close() error {
	w.ioMu.Lock()
	defer w.ioMu.Unlock()
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return ErrClosed
	}
	w.closed = true
	if w.timer != nil {
		w.timer.Stop()
	}
	w.mu.Unlock()
	err := w.flushIO(true)
	w.s.mu.Lock()
	byStore := w.s.closeFS
	w.s.mu.Unlock()
	if !byStore { // Store.Close syncs every file at once instead
		w.syncCloseIO()
	}
	w.closeFiles()
	w.released = true
	w.s.removeWriter(w)
	return err
}

// syncData is a sync round's work on w: fdatasync the live segment if
// frames were written to it since the last sync, and fsync the folders
// that got new segments. The sync runs without ioMu, so flushes go on
// meanwhile (a concurrent Close waits for it on syncMu).
func (w *Writer) syncData() {
	w.ioMu.Lock()
	w.checkDeletedIO()
	f, dirty, dir, parent := w.f, w.dirty, w.syncDir, w.syncParent
	w.dirty, w.syncDir, w.syncParent = false, false, false
	if f == nil && dirty && w.seg != "" {
		// Closed for the open-file budget (fdbudget.go) since written:
		// fdatasync works through any descriptor of the file.
		if of, err := os.Open(filepath.Join(w.dir, w.seg)); err == nil {
			f = w.s.wrap(of)
			defer f.Close()
		}
	}
	if f == nil {
		dirty = false
	}
	w.syncMu.Lock()
	defer w.syncMu.Unlock()
	w.ioMu.Unlock()
	if dirty {
		w.datasync(f)
	}
	w.syncDirsOf(dir, parent)
}

// checkDeletedIO looks whether the live segment was deleted while open
// (someone removed the console's folder or the file: output written to it
// from then on would go to a file nobody can read) and, if so, has the
// next flush that has records start a new segment, recreating the
// folder, with a gap event saying so. A sync round calls it for each Writer that wrote since the
// last one, so the cost is one fstat per busy console every SyncInterval.
// Caller holds ioMu.
func (w *Writer) checkDeletedIO() {
	if w.f == nil || w.seg == "" || w.segGone != "" || !w.dirty {
		return
	}
	st, ok := w.f.(interface{ Stat() (os.FileInfo, error) })
	if !ok {
		return
	}
	fi, err := st.Stat()
	if err != nil {
		return
	}
	if sys, ok := fi.Sys().(*syscall.Stat_t); ok && sys.Nlink == 0 {
		w.segGone = w.seg
	}
}

// syncDirsOf fsyncs the console's folder (dir) and the log directory
// (parent), as asked.
func (w *Writer) syncDirsOf(dir, parent bool) {
	if dir {
		w.s.syncDir(w.dir)
	}
	if parent {
		w.s.syncDir(w.s.dir)
	}
}

// syncCloseIO makes what w wrote durable before its file is closed.
// Caller holds ioMu.
func (w *Writer) syncCloseIO() {
	w.syncMu.Lock() // wait for a sync running without ioMu
	defer w.syncMu.Unlock()
	if w.dirty && w.f != nil && w.s.opt.SyncInterval > 0 {
		w.datasync(w.f)
	}
	w.syncDirsOf(w.syncDir, w.syncParent)
	w.dirty, w.syncDir, w.syncParent = false, false, false
}

func (w *Writer) datasync(f segFile) {
	err := f.Datasync()
	if errors.Is(err, os.ErrClosed) {
		return // closed meanwhile by rotation (which fsyncs) or Close
	}
	w.s.syncs.Add(1)
	if err != nil {
		w.s.syncErrors.Add(1)
		w.s.log.Warn("logstore: fdatasync live segment: output of the last seconds may not survive a power loss", "console", w.console, "err", err)
	}
}

// closeFiles closes the segment and the folder lock. Caller holds ioMu
// or owns w exclusively.
func (w *Writer) closeFiles() {
	w.closeFileIO()
	if w.locked {
		w.s.unlockConsole(w.console)
		w.locked = false
	}
}

// liveSegment returns the name of the live segment, "" if none.
func (w *Writer) liveSegment() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.liveName
}

func (w *Writer) setLive(name string) {
	w.mu.Lock()
	w.liveName = name
	w.mu.Unlock()
}

// flushIO takes what is pending and appends it as one frame. Caller holds
// ioMu. final also writes an index frame for every unindexed frame.
func (w *Writer) flushIO(final bool) error {
	if w.released {
		return nil
	}
	w.mu.Lock()
	w.closeLineLocked()
	w.accountLocked()
	// What is taken stays counted against MaxPendingTotal until written.
	inflight := w.held
	w.held = 0
	w.line = nil // a quiet console keeps no line buffer
	text, raw := w.pend, w.pendRaw
	first, last, recs := w.pendFirst, w.pendLast, w.pendRecs
	w.pend, w.pendRaw, w.pendRecs = nil, 0, 0
	w.lastPend = len(text)
	rotate := w.rotate
	w.rotate = false
	if final && w.overflow.bytes > 0 {
		// Report an overflow even if no byte followed it.
		text = appendEventRecord(text, w.overflow.since, EventGap, w.overflow.text())
		first, last = min(first, timeMs(w.overflow.since)), max(last, timeMs(w.overflow.since))
		if recs == 0 {
			first, last = timeMs(w.overflow.since), timeMs(w.overflow.since)
		}
		recs++
		w.stats.Gaps++
		w.overflow = gapInfo{}
	}
	w.mu.Unlock()
	defer putBuf(text)
	if inflight != 0 {
		defer w.s.pending.Add(-int64(inflight))
	}

	now := w.s.now()
	// start is the earliest record time of what is to be written: a new
	// segment is named after it (never later than its first record).
	start := timeMs(now)
	if recs > 0 {
		start = first
	}
	if w.lost.bytes > 0 {
		start = min(start, timeMs(w.lost.since))
	}
	gone := ""
	if w.segGone != w.seg {
		w.segGone = "" // left meanwhile (rotated, closed)
	} else if w.segGone != "" && (len(text) > 0 || w.lost.bytes > 0) {
		// Deleted while open (checkDeletedIO): what went to it since is
		// not on disk any more, and must not keep going there. The new
		// segment starts with a gap event saying so.
		gone = w.seg
		w.s.log.Warn("logstore: live segment deleted while in use; starting a new one", "console", w.console, "segment", gone)
		w.rotateIO()
		w.segGone = ""
		if _, err := os.Stat(w.dir); errors.Is(err, fs.ErrNotExist) {
			w.newDir = true // the folder goes too: its name is synced with the new segment
		}
	}
	if lim := w.limits(); w.seg != "" && (rotate || w.size >= lim.SegmentBytes || now.Sub(w.segStart) >= lim.SegmentAge) {
		// Rotate only when what comes next starts in a later second
		// than the live segment: two segments cannot start in the same
		// second, and bumping the new name a second on would make it
		// claim a later start than its first record. Until then the
		// records go to the live segment (a second's worth at most,
		// unless the clock went back).
		if secondOf(start).After(w.segStart) ||
			msTime(start).Before(w.segStart) && w.size >= 2*lim.SegmentBytes { // the clock went back: bound the segment anyway
			w.rotateIO()
		}
	}
	if len(text) == 0 && w.lost.bytes == 0 {
		if final && w.seg != "" && w.idx.End != 0 {
			if err := w.reopenIO(); err != nil {
				return err
			}
			return w.writeIO(nil, now, true)
		}
		return nil
	}
	if w.seg != "" {
		if err := w.reopenIO(); err != nil {
			w.s.log.Warn("logstore: reopen live segment; starting a new one", "console", w.console, "segment", w.seg, "err", err)
			w.seg, w.idx = "", indexEntry{}
			w.setLive("")
		}
	}
	if w.seg == "" {
		if err := w.createSegmentIO(start, now); err != nil {
			w.failedIO()
			w.loseIO(int64(raw), now, err)
			return err
		}
	}
	// prependGap puts a gap event at ms before the records of text.
	var owned [][]byte
	defer func() {
		for _, b := range owned {
			putBuf(b)
		}
	}()
	prependGap := func(ms int64, why string) {
		if recs == 0 {
			first, last = ms, ms
		}
		first, last = min(first, ms), max(last, ms)
		recs++
		text = append(appendEventRecord(getBuf(), msTime(ms), EventGap, why), text...)
		owned = append(owned, text)
	}
	if w.lost.bytes > 0 {
		prependGap(timeMs(w.lost.since), w.lost.text())
	}
	if gone != "" {
		ms := timeMs(now)
		if recs > 0 {
			ms = first // before the records it is written with
		}
		prependGap(ms, fmt.Sprintf("log segment %s was deleted while in use: output written to it after its deletion (at most the last %v) is gone",
			gone, (w.s.opt.SyncInterval+w.s.opt.FlushInterval).Round(time.Second)))
		w.mu.Lock()
		w.stats.Gaps++
		w.mu.Unlock()
	}
	prev := w.idx
	if w.idx.End == 0 {
		w.idx = indexEntry{Off: w.size, First: first, Last: last}
	}
	w.idx.First, w.idx.Last = min(w.idx.First, first), max(w.idx.Last, last)
	w.idx.Size += uint32(len(text))
	w.idx.Records += uint32(recs)
	frame := w.s.encoder().EncodeAll(text, getBufFor(len(text)/2))
	w.idx.End = w.size + int64(len(frame))
	err := w.writeIO(frame, now, final)
	putBuf(frame)
	if err != nil {
		w.idx = prev
		if w.seg == "" {
			w.idx = indexEntry{}
		}
		w.loseIO(int64(raw), now, err)
		return err
	}
	w.s.subs.notify(w.console)
	w.mu.Lock()
	w.stats.Written += int64(raw)
	w.stats.Frames++
	w.stats.Failing = false
	if w.lost.bytes > 0 {
		w.stats.Gaps++
	}
	w.mu.Unlock()
	w.lost = gapInfo{}
	w.releaseOverBudgetIO()
	return nil
}

// writeIO appends frame (maybe nil) to the live segment, followed by an
// index frame when one is due, in one write. On error it cuts the file
// back to its last complete frame.
func (w *Writer) writeIO(frame []byte, now time.Time, final bool) error {
	withIndex := w.idx.End != 0 && (final || now.Sub(w.lastIndex) >= w.s.opt.IndexInterval || now.Before(w.lastIndex) ||
		w.idx.Size >= maxIndexSpan)
	if withIndex {
		frame = appendIndexFrame(frame, []indexEntry{w.idx}, false)
	}
	if len(frame) == 0 {
		return nil
	}
	_, err := w.f.WriteAt(frame, w.size)
	if err != nil {
		if terr := w.f.Truncate(w.size); terr != nil {
			// The segment may now end in a torn frame; leave it (readers
			// skip it; the next start repairs only the newest segment) and
			// start a new one once writing works again.
			w.s.log.Warn("logstore: cannot cut back a failed write", "console", w.console, "segment", w.seg, "err", terr)
			w.closeFileIO()
			// Sealing salvages it, once the disk works again.
			w.s.addMaint(maintJob{console: w.console, w: w, seg: w.seg})
			w.seg = ""
			w.idx = indexEntry{}
			w.setLive("")
		}
		w.failedIO()
		return fmt.Errorf("logstore: write %s: %w", filepath.Join(w.dir, w.seg), err)
	}
	w.size += int64(len(frame))
	w.lastWrite = time.Now()
	if !w.dirty && w.s.opt.SyncInterval > 0 {
		w.dirty = true
		w.s.markDirty(w)
	}
	if withIndex {
		w.idx = indexEntry{}
		w.lastIndex = now
	}
	return nil
}

// failedIO counts a failed write: of a frame, or of the header of a new
// segment (on a full disk the segment that rotation starts is the first
// write to fail).
func (w *Writer) failedIO() {
	w.mu.Lock()
	w.stats.WriteErrors++
	w.stats.Failing = true
	w.mu.Unlock()
}

// reopenIO opens the live segment again after closeIdle closed it.
func (w *Writer) reopenIO() error {
	if w.f != nil {
		return nil
	}
	f, err := os.OpenFile(filepath.Join(w.dir, w.seg), os.O_RDWR, 0)
	if err != nil {
		return err
	}
	w.setFileIO(w.s.wrap(f))
	return nil
}

// idleClose is how long a live segment stays open without output; closing
// it spares a file descriptor per quiet console.
const idleClose = 2 * time.Minute

// closeIdle closes the live segment of a console that has been quiet for
// idleClose, after writing the index frame it is owed.
func (w *Writer) closeIdle() {
	if !w.ioMu.TryLock() {
		return
	}
	defer w.ioMu.Unlock()
	if w.f == nil || time.Since(w.lastWrite) < idleClose {
		return
	}
	if w.idx.End != 0 {
		if err := w.writeIO(nil, w.s.now(), true); err != nil {
			return
		}
	}
	w.syncCloseIO()
	w.closeFileIO()
}

// loseIO counts console bytes lost to a disk error.
func (w *Writer) loseIO(raw int64, now time.Time, err error) {
	reason := err.Error()
	var errno syscall.Errno
	if errors.As(err, &errno) {
		reason = errno.Error()
	}
	if w.lost.bytes == 0 {
		w.s.log.Warn("logstore: console output lost, will retry", "console", w.console, "err", err)
	}
	w.lost.add(raw, now, reason)
	if w.lost.bytes == 0 {
		// Nothing but index or gap records failed: still report the failure.
		w.lost.since, w.lost.until = now, now
	}
	w.mu.Lock()
	w.stats.Dropped += raw
	w.mu.Unlock()
}

// secondOf is the segment name time for a record time in Unix ms.
func secondOf(ms int64) time.Time { return msTime(ms).Truncate(time.Second) }

// createSegmentIO starts a new live segment named after firstMs, the
// earliest record time it is created for, so that a range query that
// selects segments by name finds that record. Names must also be unique
// and sorted: when firstMs is not after the newest existing name (the
// clock went back, or a segment was abandoned within the second), the
// name is one second after that one instead.
func (w *Writer) createSegmentIO(firstMs int64, now time.Time) error {
	newDir := w.newDir
	if err := os.MkdirAll(w.dir, 0o750); err != nil {
		return fmt.Errorf("logstore: create %s: %w", w.dir, err)
	}
	start := secondOf(firstMs)
	if !start.After(w.lastName) {
		w.s.log.Warn("logstore: new segment named after the newest one: the clock is behind it, so the name claims a later start than its first record",
			"console", w.console, "first_record", FormatTime(msTime(firstMs)), "newest", segmentName(w.lastName))
		if start.Before(w.lastName) {
			// Readers must no longer pick segments by name for a time
			// range (selectSegments).
			if f, err := os.OpenFile(filepath.Join(w.dir, clockBehindMark), os.O_CREATE|os.O_WRONLY, 0o640); err == nil {
				f.Close()
			} else {
				w.s.log.Warn("logstore: cannot mark the log as out of time order: time-range reads may miss records after the clock went back", "console", w.console, "err", err)
			}
		}
		start = w.lastName.Add(time.Second)
	}
	for try := 0; ; try++ {
		name := segmentName(start)
		path := filepath.Join(w.dir, name)
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o640)
		if errors.Is(err, os.ErrExist) && try < 100 {
			start = start.Add(time.Second)
			continue
		}
		if err != nil {
			return fmt.Errorf("logstore: create segment: %w", err)
		}
		sf := w.s.wrap(f)
		hdr := appendHeaderFrame(nil, segHeader{Format: formatName, Console: w.console, Start: FormatTime(start)})
		if _, err := sf.WriteAt(hdr, 0); err != nil {
			sf.Close()
			os.Remove(path)
			return fmt.Errorf("logstore: create segment %s: %w", path, err)
		}
		w.setFileIO(sf)
		w.seg, w.segStart, w.size = name, start, int64(len(hdr))
		w.lastWrite = time.Now()
		w.lastName, w.lastIndex = start, now
		w.idx = indexEntry{}
		w.setLive(name)
		if w.s.opt.SyncInterval > 0 {
			// The new name is synced with the segment's first data, by
			// the syncer: the file is not durable before that anyway.
			w.syncDir = true
			w.syncParent = w.syncParent || newDir
			w.newDir = false
			w.s.markDirty(w)
		}
		return nil
	}
}

// rotateIO closes the live segment and queues it for sealing.
func (w *Writer) rotateIO() {
	if w.idx.End != 0 && w.reopenIO() == nil {
		if err := w.writeIO(nil, w.s.now(), true); err != nil {
			w.s.log.Warn("logstore: final index frame", "console", w.console, "segment", w.seg, "err", err)
		}
	}
	if w.seg == "" {
		return
	}
	if w.f != nil {
		w.syncMu.Lock() // wait for a sync running without ioMu
		if err := w.f.Sync(); err != nil {
			w.s.syncErrors.Add(1)
			w.s.log.Warn("logstore: sync segment", "console", w.console, "segment", w.seg, "err", err)
		}
		w.dirty = false
		w.syncMu.Unlock()
		w.closeFileIO()
	}
	seg := w.seg
	w.seg = ""
	w.idx = indexEntry{}
	w.setLive("")
	w.s.addMaint(maintJob{console: w.console, w: w, seg: seg})
	w.s.addMaint(maintJob{console: w.console, w: w})
}

// open takes the console's lock and prepares its newest segment: a torn
// last frame is repaired and the segment reused if still young; older
// unsealed segments are queued for sealing.
func (w *Writer) open() error {
	if _, err := os.Stat(w.dir); errors.Is(err, os.ErrNotExist) {
		w.newDir = true // its name in the log directory is synced with its first segment
	}
	if err := os.MkdirAll(w.dir, 0o750); err != nil {
		return fmt.Errorf("logstore: create %s: %w", w.dir, err)
	}
	if err := w.s.lockConsole(w.console); err != nil {
		if errors.Is(err, ErrInUse) {
			return fmt.Errorf("%w: %s (another process)", ErrInUse, w.console)
		}
		return fmt.Errorf("logstore: %w", err)
	}
	w.locked = true
	removeTemps(w.dir)
	segs, err := w.s.segments(w.dir)
	if err != nil {
		w.closeFiles()
		return fmt.Errorf("logstore: %w", err)
	}
	if len(segs) == 0 {
		return nil
	}
	w.lastName = segs[len(segs)-1].start
	now := w.s.now()
	for i := len(segs) - 1; i >= 0; i-- {
		sg := segs[i]
		if i < len(segs)-1 {
			hdr, err := readHeader(sg.path)
			if err != nil {
				w.s.log.Warn("logstore: unreadable segment header", "console", w.console, "segment", sg.name, "err", err)
				continue
			}
			if hdr.Sealed {
				break
			}
			w.s.addMaint(maintJob{console: w.console, w: w, seg: sg.name})
			continue
		}
		f, size, sealed, note, err := w.s.repairSegment(sg.path)
		if err != nil {
			w.s.log.Warn("logstore: newest segment not reusable; starting a new one", "console", w.console, "segment", sg.name, "err", err)
			if errors.Is(err, errRepairDeferred) {
				// Sealing salvages the torn tail into a copy once there
				// is room (retried at each retention pass until then).
				w.s.addMaint(maintJob{console: w.console, w: w, seg: sg.name})
			}
			continue
		}
		if note != nil {
			// A gap event the repair had no room for.
			w.mu.Lock()
			if w.pend == nil {
				w.pend = getBuf()
			}
			w.pend = append(w.pend, note...)
			for _, rr := range splitRecords(note, nil, nil) {
				w.noteTimeLocked(msTime(rr.ms))
			}
			w.armLocked()
			w.accountLocked()
			w.mu.Unlock()
		}
		if sealed {
			f.Close()
			break
		}
		if lim := w.limits(); size >= lim.SegmentBytes || now.Sub(sg.start) >= lim.SegmentAge {
			f.Close()
			w.s.addMaint(maintJob{console: w.console, w: w, seg: sg.name})
			continue
		}
		w.setFileIO(f)
		w.seg, w.segStart, w.size, w.lastIndex = sg.name, sg.start, size, now
		w.lastWrite = time.Now()
		w.setLive(sg.name)
	}
	w.s.addMaint(maintJob{console: w.console, w: w})
	return nil
}

// segFile is what a Writer needs of a segment it appends to or repairs:
// the seam through which tests inject disk errors and observe syncs.
type segFile interface {
	ReadAt(p []byte, off int64) (int, error)
	WriteAt(p []byte, off int64) (int, error)
	Truncate(size int64) error
	Sync() error     // fsync(2)
	Datasync() error // fdatasync(2)
	Close() error
}

// osFile is a segment file on disk.
type osFile struct{ *os.File }

// Datasync flushes the file's data, and the metadata needed to read it
// back (its size), to the device.
func (f osFile) Datasync() error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		for {
			if serr = unix.Fdatasync(int(fd)); serr != unix.EINTR {
				return
			}
		}
	}); err != nil {
		return err
	}
	if serr != nil {
		return &os.PathError{Op: "fdatasync", Path: f.Name(), Err: serr}
	}
	return nil
}

// Buffers for pending records and frames are pooled by size class, so a
// quiet console does not hold on to a buffer a busy one grew, and a busy
// one gets about the size it asks for (its capacity counts against
// MaxPendingTotal). The classes go from 512 bytes to 1 MiB in steps of
// 1.5 and 4/3: 512, 768, 1024, 1536, 2048, ...
const (
	minBuf     = 512
	bufClasses = 23 // the last is 1 MiB
	smallBuf   = 4 << 10
)

var bufPools [bufClasses]sync.Pool

// bufClass returns the smallest class that holds n bytes (0 for n <= 512;
// bufClasses or more for n beyond 1 MiB).
func bufClass(n int) int {
	if n <= minBuf {
		return 0
	}
	b := bits.Len(uint(n - 1)) // 1<<(b-1) < n <= 1<<b
	if n <= 3<<(b-2) {
		return 2*(b-10) + 1
	}
	return 2 * (b - 9)
}

// classSize is the capacity of class k's buffers.
func classSize(k int) int { return (minBuf + k&1*minBuf/2) << (k / 2) }

// bufSize is the capacity getBufFor(n) returns, at least n.
func bufSize(n int) int {
	if k := bufClass(n); k < bufClasses {
		return classSize(k)
	}
	return n
}

func getBuf() []byte { return getBufFor(minBuf) }

// getBufFor returns an empty buffer of capacity bufSize(n).
func getBufFor(n int) []byte {
	k := bufClass(n)
	if k >= bufClasses {
		return make([]byte, 0, n)
	}
	if b, ok := bufPools[k].Get().(*[]byte); ok {
		return (*b)[:0]
	}
	return make([]byte, 0, classSize(k))
}

// putBuf pools b in the largest class its capacity holds (a buffer grown
// by append lands in the class below its capacity).
func putBuf(b []byte) {
	c := cap(b)
	if c < minBuf || c > classSize(bufClasses-1) {
		return
	}
	k := bufClass(c)
	if classSize(k) > c {
		k--
	}
	b = b[:0]
	bufPools[k].Put(&b)
}
