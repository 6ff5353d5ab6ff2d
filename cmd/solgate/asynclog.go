package main

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// asyncLog decouples the daemon log from its output. Records are logged
// from everywhere, the goroutines that read the consoles' sockets
// included (a dropped packet at debug level, a session that ended), and a
// stderr that blocks (journald busy, a pipe nobody reads, a full disk
// under a redirect) must not stall them: records go into a bounded
// queue, one goroutine writes them in order, and a record that finds the
// queue full is dropped and counted. The count is written, as its own
// record, before the next record that gets through, and at Close. A
// record whose write fails (stderr closed: EPIPE) counts in Dropped too,
// as it never reached the output either.
type asyncLog struct {
	base    slog.Handler // for the drop notices
	q       chan queuedRecord
	dropped atomic.Int64  // since the last notice
	total   atomic.Uint64 // since the start, and the writes that failed (metrics)
	done    chan struct{}

	mu     sync.RWMutex // write: Close; read: a record being queued
	closed bool         // records go straight to their handler
}

type queuedRecord struct {
	h slog.Handler
	r slog.Record
}

// asyncLogQueue is how many records may wait: a burst of every console
// reconnecting at once (10,000 records) mostly fits, and a record
// weighs a few hundred bytes.
const asyncLogQueue = 8192

// newAsyncLog starts the writer of h's records; Close stops it.
func newAsyncLog(h slog.Handler, queue int) *asyncLog {
	l := &asyncLog{base: h, q: make(chan queuedRecord, queue), done: make(chan struct{})}
	go l.write()
	return l
}

// Dropped is how many records never reached the output since the
// start: dropped from the full queue, or their write failed.
func (l *asyncLog) Dropped() uint64 { return l.total.Load() }

// Handler is the handler to log through.
func (l *asyncLog) Handler() slog.Handler { return asyncHandler{l: l, h: l.base} }

func (l *asyncLog) write() {
	defer close(l.done)
	for q := range l.q {
		l.noteDropped()
		if q.h.Handle(context.Background(), q.r) != nil {
			l.total.Add(1)
		}
	}
	l.noteDropped()
}

// noteDropped writes how many records were dropped since it last did.
func (l *asyncLog) noteDropped() {
	if n := l.dropped.Swap(0); n > 0 {
		r := slog.NewRecord(time.Now(), slog.LevelWarn, "daemon log: records dropped: the log's output did not take them fast enough", 0)
		r.AddAttrs(slog.Int64("dropped", n))
		_ = l.base.Handle(context.Background(), r)
	}
}

// Close writes what is queued, waiting at most timeout for the output,
// and from then on records are written as they are logged. It returns
// an error when records were still queued at the timeout.
func (l *asyncLog) Close(timeout time.Duration) error {
	l.mu.Lock()
	if !l.closed {
		l.closed = true
		close(l.q)
	}
	l.mu.Unlock()
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-l.done:
		return nil
	case <-t.C:
		return fmt.Errorf("daemon log: %d records not written in %v: the output blocks", len(l.q)+1, timeout)
	}
}

// asyncHandler is one handler (the base, or one with attributes or a
// group) whose records go through l.
type asyncHandler struct {
	l *asyncLog
	h slog.Handler
}

func (a asyncHandler) Enabled(ctx context.Context, level slog.Level) bool {
	return a.h.Enabled(ctx, level)
}

func (a asyncHandler) Handle(ctx context.Context, r slog.Record) error {
	a.l.mu.RLock()
	defer a.l.mu.RUnlock()
	if a.l.closed {
		return a.h.Handle(ctx, r)
	}
	select {
	case a.l.q <- queuedRecord{h: a.h, r: r.Clone()}:
	default:
		a.l.dropped.Add(1)
		a.l.total.Add(1)
	}
	return nil
}

func (a asyncHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return asyncHandler{l: a.l, h: a.h.WithAttrs(attrs)}
}

func (a asyncHandler) WithGroup(name string) slog.Handler {
	return asyncHandler{l: a.l, h: a.h.WithGroup(name)}
}
