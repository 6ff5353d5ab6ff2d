package logstore_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/solgate/solgate/logstore"
)

// A console's output as zstdcat shows the segment, then read back as lines.
func Example() {
	dir, _ := os.MkdirTemp("", "logstore-example")
	defer os.RemoveAll(dir)
	now := time.Date(2026, 11, 23, 10, 1, 2, 123e6, time.UTC)
	s, _ := logstore.Open(dir, logstore.Options{Now: func() time.Time { return now }})
	w, _ := s.Writer("node42")
	w.Write([]byte("[    0.000000] Linux version 6.1.0\r\n\x1b[0;32m  OK  \x1b[0m] Started sshd.\r\nlogin:"))
	w.Event(logstore.EventAttach, "alice (rw)")
	w.Write([]byte("root\r\n"))
	w.Close()

	// What zstdcat prints.
	segs, _ := filepath.Glob(filepath.Join(dir, "node42", "*.zst"))
	f, _ := os.Open(segs[0])
	d, _ := zstd.NewReader(f)
	d.WriteTo(os.Stdout)
	d.Close()
	f.Close()

	// The same log as lines, with the raw bytes of each.
	for l, err := range s.Lines(context.Background(), "node42", logstore.Query{}) {
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Printf("%s %q %q\n", logstore.FormatTime(l.Time), l.Event, l.Text)
	}
	s.Close()
	// Output:
	// 2026-11-23T10:01:02.123Z | [    0.000000] Linux version 6.1.0
	// 2026-11-23T10:01:02.123Z | \e[0;32m  OK  \e[0m] Started sshd.
	// 2026-11-23T10:01:02.123Z ~ login:
	// 2026-11-23T10:01:02.123Z ! attach alice (rw)
	// 2026-11-23T10:01:02.123Z | root
	// 2026-11-23T10:01:02.123Z "" "[    0.000000] Linux version 6.1.0\r\n"
	// 2026-11-23T10:01:02.123Z "" "\x1b[0;32m  OK  \x1b[0m] Started sshd.\r\n"
	// 2026-11-23T10:01:02.123Z "" "login:"
	// 2026-11-23T10:01:02.123Z "attach" "alice (rw)"
	// 2026-11-23T10:01:02.123Z "" "root\r\n"
}

func ExampleStore_Grep() {
	dir, _ := os.MkdirTemp("", "logstore-example")
	defer os.RemoveAll(dir)
	now := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	s, _ := logstore.Open(dir, logstore.Options{Now: func() time.Time { return now }})
	defer s.Close()
	w, _ := s.Writer("node7")
	w.Write([]byte("\x1b[1mKernel panic\x1b[0m - not syncing: Fatal exception\r\n"))
	now = now.Add(time.Minute)
	w.Write([]byte("Rebooting in 10 seconds..\r\n"))
	w.Close()

	re := regexp.MustCompile(`panic|Reboot`)
	s.Grep(context.Background(), "node7", re, logstore.Query{}, func(m logstore.Match) error {
		fmt.Printf("node7 %s %s\n", logstore.FormatTime(m.Time), m.Text)
		return nil
	})
	// Output:
	// node7 2026-11-23T10:00:00.000Z Kernel panic - not syncing: Fatal exception
	// node7 2026-11-23T10:01:00.000Z Rebooting in 10 seconds..
}

func ExampleStore_Tail() {
	dir, _ := os.MkdirTemp("", "logstore-example")
	defer os.RemoveAll(dir)
	s, _ := logstore.Open(dir, logstore.Options{})
	defer s.Close()
	w, _ := s.Writer("node1")
	for i := range 100 {
		fmt.Fprintf(w, "line %d\r\n", i)
	}
	w.Write([]byte("node1 login:"))
	// Replay for a user who attaches: the last lines, flushed or not.
	lines, _ := s.Tail("node1", 3)
	for _, l := range lines {
		fmt.Printf("%q\n", l.Text)
	}
	// Output:
	// "line 98\r\n"
	// "line 99\r\n"
	// "node1 login:"
}
