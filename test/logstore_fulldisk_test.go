package test

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/solgate/solgate/logstore"
)

// skipOrFail skips a test that needs something this machine lacks, or
// fails it when SOLGATE_REQUIRE_INTEROP is set.
func skipOrFail(t *testing.T, format string, a ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, a...)
	if os.Getenv("SOLGATE_REQUIRE_INTEROP") != "" {
		t.Fatalf("%s, and SOLGATE_REQUIRE_INTEROP is set", msg)
	}
	t.Skipf("%s; skipping (set SOLGATE_REQUIRE_INTEROP=1 to fail instead)", msg)
}

// TestLogstoreFullDisk fills a small tmpfs while a console writes to it,
// then frees space: writes never fail or block, the lost bytes are counted
// and reported by gap events, nothing is left torn, and logging resumes.
func TestLogstoreFullDisk(t *testing.T) {
	zstdBin := needTool(t, "zstd")
	if os.Geteuid() != 0 {
		skipOrFail(t, "mounting a tmpfs needs root")
	}
	mnt := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=1m,mode=0750", "solgate-test", mnt).CombinedOutput(); err != nil {
		skipOrFail(t, "mount -t tmpfs: %v: %s", err, bytes.TrimSpace(out))
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", mnt).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", mnt, err, out)
			exec.Command("umount", "-l", mnt).Run()
		}
	})
	filler := filepath.Join(mnt, "filler")
	if err := os.WriteFile(filler, bytes.Repeat([]byte{'f'}, 700<<10), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := logstore.Open(filepath.Join(mnt, "logs"), logstore.Options{SegmentBytes: 96 << 10})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	w, err := s.Writer("node1")
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(5, 5))
	lineRe := regexp.MustCompile(`^line (\d+) [0-9a-f]+\r\n$`)
	var slowest time.Duration
	var flushErrs int
	for i := 0; i < 12000; i++ {
		// Random hex compresses to about half: 1 MiB fills fast.
		line := fmt.Appendf(nil, "line %d %x\r\n", i, rng.Uint64()^uint64(i)<<20)
		for range 4 {
			line = fmt.Appendf(line[:len(line)-2], "%x\r\n", rng.Uint64())
		}
		start := time.Now()
		if n, err := w.Write(line); n != len(line) || err != nil {
			t.Fatalf("Write on a full disk = %d, %v", n, err)
		}
		slowest = max(slowest, time.Since(start))
		if i%40 == 39 {
			if w.Flush() != nil {
				flushErrs++
			}
		}
	}
	st := w.Stats()
	t.Logf("full disk: %+v, %d failed flushes, slowest Write %v", st, flushErrs, slowest)
	if st.Dropped == 0 || st.WriteErrors == 0 || !st.Failing {
		t.Fatalf("the disk never filled up: %+v", st)
	}
	if slowest > time.Second {
		t.Errorf("a Write took %v on a full disk", slowest)
	}
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	w.Write([]byte("after the disk was freed\r\n"))
	if err := w.Flush(); err != nil {
		t.Fatalf("Flush after freeing space: %v", err)
	}
	w.Close()
	st = w.Stats()
	if st.Failing || st.Gaps == 0 {
		t.Fatalf("stats after recovery: %+v", st)
	}

	// What is on disk: whole lines in order, the gap events accounting
	// for every dropped byte, and the line written after recovery.
	gapRe := regexp.MustCompile(`^(\d+) bytes lost until \S+: (.*)$`)
	var lost int64
	var raw []byte
	last := -1
	for l, err := range s.Lines(context.Background(), "node1", logstore.Query{}) {
		if err != nil {
			t.Fatal(err)
		}
		if l.Event == logstore.EventGap {
			m := gapRe.FindSubmatch(l.Text)
			if m == nil {
				t.Fatalf("gap event %q", l.Text)
			}
			n, _ := strconv.ParseInt(string(m[1]), 10, 64)
			lost += n
			if !strings.Contains(string(m[2]), "no space left on device") && !strings.Contains(string(m[2]), "disk too slow") {
				t.Errorf("gap reason %q", m[2])
			}
			continue
		}
		raw = append(raw, l.Text...)
		if m := lineRe.FindSubmatch(l.Text); m != nil {
			n, _ := strconv.Atoi(string(m[1]))
			if n <= last {
				t.Fatalf("line %d after line %d", n, last)
			}
			last = n
		} else if string(l.Text) != "after the disk was freed\r\n" {
			t.Fatalf("torn or unexpected line %q", l.Text)
		}
	}
	if lost != st.Dropped {
		t.Errorf("gap events report %d bytes lost, the counter %d", lost, st.Dropped)
	}
	if int64(len(raw)) != st.Bytes-st.Dropped {
		t.Errorf("%d bytes on disk, want accepted %d - dropped %d", len(raw), st.Bytes, st.Dropped)
	}
	if !bytes.HasSuffix(raw, []byte("after the disk was freed\r\n")) {
		t.Errorf("the output after recovery is missing")
	}
	segs, _ := filepath.Glob(filepath.Join(mnt, "logs", "node1", "*.zst"))
	for _, p := range segs {
		if out, err := exec.Command(zstdBin, "-tq", p).CombinedOutput(); err != nil {
			t.Errorf("zstd -t %s: %v\n%s", filepath.Base(p), err, out)
		}
	}
}
