package testkit

import (
	"bytes"
	"strings"
	"sync"
)

// LockedBuffer is a bytes.Buffer safe for concurrent use: a child
// process's stdout and stderr (written by os/exec's copying goroutines)
// read by the test while the process runs.
type LockedBuffer struct {
	mu sync.Mutex // guards b
	b  bytes.Buffer
}

func (l *LockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// String returns a copy of what was written so far.
func (l *LockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// Contains reports whether what was written so far contains s.
func (l *LockedBuffer) Contains(s string) bool { return strings.Contains(l.String(), s) }

// Tail returns the last n bytes of s, marked with a leading "..." when
// it cut something: a failure message shows the end of a long output.
func Tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}
