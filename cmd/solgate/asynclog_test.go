package main

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

// gateWriter blocks every Write until open is closed; entered is closed
// at the first Write.
type gateWriter struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	open    chan struct{}
	entered chan struct{}
	once    sync.Once
}

func newGateWriter() *gateWriter {
	return &gateWriter{open: make(chan struct{}), entered: make(chan struct{})}
}

func (w *gateWriter) Write(p []byte) (int, error) {
	w.once.Do(func() { close(w.entered) })
	<-w.open
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.Write(p)
}

func (w *gateWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// A daemon log whose output blocks never blocks the goroutines that log:
// what does not fit the queue is dropped and counted, and the count is
// written when the output takes records again; the rest comes in order.
func TestAsyncLogBlockedOutput(t *testing.T) {
	w := newGateWriter()
	const queue, extra = 16, 40
	l := newAsyncLog(slog.NewTextHandler(w, nil), queue)
	log := slog.New(l.Handler()).With("console", "node1")
	log.Info("first")
	<-w.entered // the writer holds "first" and blocks in Write
	logged := make(chan struct{})
	go func() {
		defer close(logged)
		for i := range queue + extra {
			log.Info("record", "i", i)
		}
	}()
	select {
	case <-logged:
	case <-time.After(30 * time.Second):
		t.Fatal("logging blocked on the blocked output")
	}
	close(w.open)
	if err := l.Close(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	if n := l.Dropped(); n != extra {
		t.Errorf("Dropped() = %d, want %d", n, extra)
	}
	lines := strings.Split(strings.TrimSpace(w.String()), "\n")
	if len(lines) != 1+1+queue {
		t.Fatalf("%d lines, want %d (first, the drop notice, %d queued):\n%s", len(lines), 2+queue, queue, w.String())
	}
	if !strings.Contains(lines[0], "msg=first console=node1") {
		t.Errorf("line 1: %s", lines[0])
	}
	if !strings.Contains(lines[1], "records dropped") || !strings.Contains(lines[1], fmt.Sprintf("dropped=%d", extra)) {
		t.Errorf("line 2 should count %d dropped records: %s", extra, lines[1])
	}
	for i, line := range lines[2:] {
		if want := fmt.Sprintf("msg=record console=node1 i=%d", i); !strings.Contains(line, want) {
			t.Errorf("line %d: %s, want %s", i+3, line, want)
		}
	}
	// Closed: records are written as they are logged.
	log.WithGroup("g").Warn("after", "k", "v")
	if out := w.String(); !strings.Contains(out, "msg=after console=node1 g.k=v") {
		t.Errorf("record logged after Close not written at once:\n%s", out)
	}
}

// Close gives up on an output that never takes its records, saying how
// many were left, instead of keeping the daemon from exiting.
func TestAsyncLogCloseBounded(t *testing.T) {
	w := newGateWriter()
	l := newAsyncLog(slog.NewTextHandler(w, nil), 8)
	log := slog.New(l.Handler())
	for range 3 {
		log.Info("stuck")
	}
	<-w.entered
	err := l.Close(50 * time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "3 records not written") {
		t.Fatalf("Close = %v, want 3 records not written", err)
	}
	close(w.open) // the writer ends (no goroutine left behind)
	<-l.done
	if n := strings.Count(w.String(), "msg=stuck"); n != 3 {
		t.Errorf("%d records written once the output moved, want 3", n)
	}
}

// Enabled follows the level of the handler underneath (the daemon's
// level changes on reload).
func TestAsyncLogLevel(t *testing.T) {
	var lv slog.LevelVar
	var buf bytes.Buffer
	l := newAsyncLog(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: &lv}), 8)
	log := slog.New(l.Handler())
	log.Debug("hidden")
	lv.Set(slog.LevelDebug)
	log.Debug("shown")
	if err := l.Close(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	if out := buf.String(); strings.Contains(out, "hidden") || !strings.Contains(out, "shown") {
		t.Errorf("output:\n%s", out)
	}
}

type brokenWriter struct{}

func (brokenWriter) Write([]byte) (int, error) { return 0, errors.New("write |1: broken pipe") }

// A record whose write fails (stderr closed) never reached the output:
// it counts in Dropped, as the metric says.
func TestAsyncLogWriteErrorsCount(t *testing.T) {
	l := newAsyncLog(slog.NewTextHandler(brokenWriter{}, nil), 8)
	log := slog.New(l.Handler())
	for range 5 {
		log.Info("lost")
	}
	if err := l.Close(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	if n := l.Dropped(); n != 5 {
		t.Errorf("Dropped() = %d after 5 failed writes, want 5", n)
	}
}
