package main

import (
	"fmt"
	"io"
	"sync"
	"time"
)

// termBuffer bounds console output waiting for a slow terminal.
const termBuffer = 1 << 20

// termWriter passes console output to a terminal or pipe through a bounded
// buffer, so that one that stops reading cannot stall what feeds it (the
// log store, and through SOL flow control the BMC). Write never blocks:
// output that does not fit is dropped, and once the terminal has taken
// what came before, a notice in the stream says how much is missing. One
// goroutine, owned by the termWriter, writes to the terminal.
type termWriter struct {
	w   io.Writer
	nl  string
	max int

	mu      sync.Mutex
	buf     []byte // guarded by mu: output not yet written
	dropped int64  // guarded by mu: bytes dropped after buf; nothing is taken until the notice is out
	closed  bool   // guarded by mu

	kick chan struct{} // capacity 1: buf or closed changed
	done chan struct{} // closed when the writer goroutine has ended
}

func newTermWriter(w io.Writer, max int, nl string) *termWriter {
	t := &termWriter{w: w, nl: nl, max: max, kick: make(chan struct{}, 1), done: make(chan struct{})}
	go t.loop()
	return t
}

// Write queues p, or drops what does not fit; it always reports success.
func (t *termWriter) Write(p []byte) (int, error) {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return len(p), nil
	}
	if t.dropped > 0 {
		// A gap is pending: keep the order by dropping until the notice
		// that reports it has been written.
		t.dropped += int64(len(p))
	} else {
		n := min(t.max-len(t.buf), len(p))
		t.buf = append(t.buf, p[:n]...)
		t.dropped += int64(len(p) - n)
	}
	t.mu.Unlock()
	notify(t.kick)
	return len(p), nil
}

func (t *termWriter) loop() {
	defer close(t.done)
	var spare []byte
	failed := false
	for {
		t.mu.Lock()
		out, dropped, closed := t.buf, t.dropped, t.closed
		t.buf, t.dropped = spare[:0], 0
		t.mu.Unlock()
		if !failed && len(out) > 0 {
			_, err := t.w.Write(out)
			failed = err != nil // a closed terminal: the log still gets everything
		}
		if !failed && dropped > 0 {
			fmt.Fprintf(t.w, "%s[solgate: %d bytes of console output not shown: the terminal did not keep up (the log has them)]%s", t.nl, dropped, t.nl)
		}
		spare = out
		if closed && len(out) == 0 && dropped == 0 {
			return
		}
		if len(out) == 0 && dropped == 0 {
			<-t.kick
		}
	}
}

// Close writes out what is buffered, waiting at most timeout for a
// terminal that does not read (whose output is then abandoned).
func (t *termWriter) Close(timeout time.Duration) {
	t.mu.Lock()
	t.closed = true
	t.mu.Unlock()
	notify(t.kick)
	select {
	case <-t.done:
	case <-time.After(timeout):
	}
}
