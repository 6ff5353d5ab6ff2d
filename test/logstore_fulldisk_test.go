package test

import (
	"bytes"
	"context"
	"encoding/binary"
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
	"github.com/solgate/solgate/test/internal/testkit"
)

// TestLogstoreFullDisk fills a small tmpfs while a console writes to it,
// then frees space: writes never fail or block, the lost bytes are counted
// and reported by gap events, nothing is left torn, and logging resumes.
func TestLogstoreFullDisk(t *testing.T) {
	zstdBin := needTool(t, "zstd")
	mnt, err := testkit.MountTmpfs(t, "solgate-test", "1m")
	if err != nil {
		skipOrFail(t, "%v", err)
	}
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

// tornLog writes console n's log into dir, cleanly closed, in two
// sessions: lines, then one frame of about 8 KB of random hex. It returns
// the segment, the lines, and where the last frame starts.
func tornLog(t *testing.T, dir string) (string, []string, int64) {
	t.Helper()
	rng := rand.New(rand.NewPCG(7, 7))
	var lines []string
	session := func(from, to int) {
		s, err := logstore.Open(dir, logstore.Options{})
		if err != nil {
			t.Fatal(err)
		}
		w, err := s.Writer("n")
		if err != nil {
			t.Fatal(err)
		}
		for i := from; i < to; i++ {
			l := fmt.Sprintf("line %d %x\r\n", i, rng.Uint64())
			if i == 39 {
				var b []byte
				for range 500 {
					b = fmt.Appendf(b, "%x", rng.Uint64())
				}
				l = fmt.Sprintf("line %d %s\r\n", i, b)
			}
			lines = append(lines, l)
			w.Write([]byte(l))
			if i%10 == 9 {
				w.Flush()
			}
		}
		w.Close()
		s.Close()
	}
	session(0, 39)
	segs, _ := filepath.Glob(filepath.Join(dir, "n", "*.zst"))
	if len(segs) != 1 {
		t.Fatalf("%d segments", len(segs))
	}
	st, _ := os.Stat(segs[0])
	session(39, 40) // appends one frame and an index frame
	return segs[0], lines, st.Size()
}

// TestLogstoreFullDiskRepair: a segment torn by a crash is found by the
// next Writer on a full disk. Cutting the torn frame first and writing
// the salvage in its place needs room the disk does not have: the repair
// must leave the file as it is, and once there is room, salvage it.
func TestLogstoreFullDiskRepair(t *testing.T) {
	zstdBin := needTool(t, "zstd")
	mnt, err := testkit.MountTmpfs(t, "solgate-test", "1m")
	if err != nil {
		skipOrFail(t, "%v", err)
	}
	dir := filepath.Join(mnt, "logs")
	seg, lines, lastOff := tornLog(t, dir)
	b, _ := os.ReadFile(seg)
	const index = 8 + 40 + 16 // the closing index frame: one entry
	if string(b[len(b)-4:]) != "SGIX" || b[len(b)-16] != 1 {
		t.Fatal("the segment does not end with one index entry")
	}
	// Tear the last frame one byte into its checksum (all its records can
	// be salvaged), and pad the file with a skippable frame before it so
	// that it ends on a page boundary: writing the salvage (plus a gap
	// event and an index frame) where the torn frame was then needs a
	// page more than the file has.
	last := b[lastOff : len(b)-index-1]
	pad := 4096 - (lastOff+int64(len(last)))%4096
	if pad < 8 {
		pad += 4096
	}
	torn := append([]byte(nil), b[:lastOff]...)
	torn = binary.LittleEndian.AppendUint32(torn, 0x184D2A51)
	torn = binary.LittleEndian.AppendUint32(torn, uint32(pad-8))
	torn = append(torn, make([]byte, pad-8)...)
	torn = append(torn, last...)
	if err := os.WriteFile(seg, torn, 0o640); err != nil {
		t.Fatal(err)
	}
	// Fill the disk to the last byte.
	filler, err := os.Create(filepath.Join(mnt, "filler"))
	if err != nil {
		t.Fatal(err)
	}
	page := make([]byte, 4096)
	for {
		if _, err := filler.Write(page); err != nil {
			break
		}
	}
	for {
		if _, err := filler.Write(page[:1]); err != nil {
			break
		}
	}
	filler.Close()

	s, err := logstore.Open(dir, logstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	w, err := s.Writer("n") // finds the torn segment and tries to repair it
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(seg); !bytes.Equal(got, torn) {
		t.Errorf("the torn segment was changed on a full disk: %d bytes, was %d (what can be salvaged from its last frame is lost if it was cut)", len(got), len(torn))
	}
	w.Close()
	s.Close()

	if err := os.Remove(filepath.Join(mnt, "filler")); err != nil {
		t.Fatal(err)
	}
	s, err = logstore.Open(dir, logstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	w, err = s.Writer("n") // room now: repairs it
	if err != nil {
		t.Fatal(err)
	}
	w.Close()
	var got []string
	var gaps []string
	for l, err := range s.Lines(context.Background(), "n", logstore.Query{}) {
		if err != nil {
			t.Fatal(err)
		}
		if l.Event == logstore.EventGap {
			gaps = append(gaps, string(l.Text))
			continue
		}
		got = append(got, string(l.Text))
	}
	if len(got) != len(lines) {
		t.Fatalf("%d lines read back, want %d (the last is the torn frame's salvage)", len(got), len(lines))
	}
	for i := range lines {
		if got[i] != lines[i] {
			t.Fatalf("line %d = %.40q, want %.40q", i, got[i], lines[i])
		}
	}
	if len(gaps) != 1 || !strings.Contains(gaps[0], "stopped in the middle of a frame") {
		t.Fatalf("gap events %q, want one for the torn frame", gaps)
	}
	segs, _ := filepath.Glob(filepath.Join(dir, "n", "*.zst"))
	for _, p := range segs {
		if out, err := exec.Command(zstdBin, "-tq", p).CombinedOutput(); err != nil {
			t.Errorf("zstd -t %s: %v\n%s", filepath.Base(p), err, out)
		}
	}
}
