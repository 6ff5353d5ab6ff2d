package logstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"testing/synctest"
	"time"
)

// fakeClock is a settable clock for record times and rotation.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *fakeClock { return &fakeClock{t: t0} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func openTest(t testing.TB, dir string, opt Options) *Store {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	s, err := Open(dir, opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func mustWriter(t testing.TB, s *Store, console string) *Writer {
	t.Helper()
	w, err := s.Writer(console)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// readRaw returns the console bytes of a log and its events.
func readRaw(t testing.TB, s *Store, console string) (raw []byte, events []string) {
	t.Helper()
	for r, err := range s.Records(context.Background(), console, Query{}) {
		if err != nil {
			t.Fatalf("read %s: %v", console, err)
		}
		if r.Event != "" {
			events = append(events, string(r.Event)+" "+string(r.Data))
			continue
		}
		raw = append(raw, r.Data...)
	}
	return raw, events
}

// trickyStream is console output with everything that must survive.
func trickyStream(n int, rng *rand.Rand) []byte {
	pieces := []string{
		"[    0.000000] Linux version 6.1.0-13-amd64\r\n",
		"\x1b[0;32m  OK  \x1b[0m] Started \x1b[0;1;39mJournal Service\x1b[0m.\r\n",
		"login: ", "\r\n", "\n", "\r", "progress 10%\rprogress 20%\r",
		"\x00\x00\xff\xfe invalid", "Grüße ✓ 日本\r\n", `C:\Windows\System32` + "\r\n",
		"\x1b]0;root@node42\x07", "\x1b[2J\x1b[H", "\t tabbed\r\n", "\u009b1m",
		strings.Repeat("x", 5000), "\n\r", "\b\b ok\a\n",
	}
	var b []byte
	for len(b) < n {
		b = append(b, pieces[rng.IntN(len(pieces))]...)
	}
	return b
}

func TestWriteRoundTrip(t *testing.T) {
	for seed := range uint64(4) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 1))
			clk := newClock()
			s := openTest(t, "", Options{Now: clk.Now, FrameBytes: 2048})
			w := mustWriter(t, s, "node42")
			raw := trickyStream(60000, rng)
			var events []string
			for p := raw; len(p) > 0; {
				n := min(len(p), 1+rng.IntN(300))
				if k, err := w.Write(p[:n]); k != n || err != nil {
					t.Fatalf("Write = %d, %v", k, err)
				}
				p = p[n:]
				clk.Advance(time.Duration(rng.IntN(50)) * time.Millisecond)
				switch rng.IntN(20) {
				case 0:
					if err := w.Flush(); err != nil {
						t.Fatal(err)
					}
				case 1:
					e := fmt.Sprintf("event %d\x1b\n", len(events))
					events = append(events, "note "+e)
					w.Event(EventNote, e)
				}
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			got, gotEv := readRaw(t, s, "node42")
			if !bytes.Equal(got, raw) {
				i := 0
				for i < min(len(got), len(raw)) && got[i] == raw[i] {
					i++
				}
				t.Fatalf("raw differs at byte %d of %d (got %d bytes)", i, len(raw), len(got))
			}
			if fmt.Sprint(gotEv) != fmt.Sprint(events) {
				t.Fatalf("events = %q, want %q", gotEv, events)
			}
			if st := w.Stats(); st.Bytes != int64(len(raw)) || st.Written != int64(len(raw)) || st.Dropped != 0 {
				t.Fatalf("stats = %+v, want %d bytes written", st, len(raw))
			}
		})
	}
}

func segmentsOf(t testing.TB, s *Store, console string) []segment {
	t.Helper()
	segs, err := listSegments(filepath.Join(s.Dir(), console))
	if err != nil {
		t.Fatal(err)
	}
	return segs
}

// TestFlushTimer checks with a fake clock that output reaches the disk one
// flush interval after its first byte, not before, without any Flush call.
func TestFlushTimer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, err := Open(t.TempDir(), Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		w := mustWriter(t, s, "n1")
		w.Write([]byte("first\r\n"))
		time.Sleep(600 * time.Millisecond)
		w.Write([]byte("second\r\n")) // does not restart the timer
		time.Sleep(399 * time.Millisecond)
		synctest.Wait()
		if segs := segmentsOf(t, s, "n1"); len(segs) != 0 {
			t.Fatalf("segment written after 999 ms: %v", segs)
		}
		time.Sleep(2 * time.Millisecond)
		synctest.Wait()
		raw, _ := readRaw(t, s, "n1")
		if string(raw) != "first\r\nsecond\r\n" {
			t.Fatalf("after 1 s on disk: %q", raw)
		}
		// A partial line is flushed too (a prompt must not wait for "\n").
		w.Write([]byte("login: "))
		time.Sleep(time.Second + time.Millisecond)
		synctest.Wait()
		raw, _ = readRaw(t, s, "n1")
		if !strings.HasSuffix(string(raw), "login: ") {
			t.Fatalf("prompt not flushed: %q", raw)
		}
		if st := w.Stats(); st.Frames != 2 {
			t.Fatalf("frames = %d, want 2", st.Frames)
		}
	})
}

// TestFrameBytesFlush checks that a burst is written once FrameBytes are
// pending, before the interval ends.
func TestFrameBytesFlush(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, err := Open(t.TempDir(), Options{FrameBytes: 1024})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		w := mustWriter(t, s, "n1")
		line := []byte(strings.Repeat("b", 99) + "\n")
		for range 15 {
			w.Write(line)
		}
		synctest.Wait()
		st := w.Stats()
		// FrameBytes of records (127 bytes each) are pending after the
		// ninth line: the flush worker takes at least that many.
		if st.Frames == 0 || st.Written < 900 {
			t.Fatalf("no early flush: %+v", st)
		}
		time.Sleep(time.Second)
		synctest.Wait()
		if st := w.Stats(); st.Written != 1500 {
			t.Fatalf("after the interval: %+v", st)
		}
	})
}

func TestRotationAndSealing(t *testing.T) {
	clk := newClock()
	s := openTest(t, "", Options{Now: clk.Now, SegmentAge: time.Hour, SealFrameBytes: 4096})
	w := mustWriter(t, s, "node1")
	var want []byte
	for i := range 200 {
		if i > 0 {
			clk.Advance(90 * time.Second)
		}
		line := fmt.Appendf(nil, "[%5d] message number %d with some text\r\n", i, i)
		want = append(want, line...)
		w.Write(line)
		if i%10 == 9 {
			w.Flush()
		}
	}
	w.Flush()
	s.quiesce()
	segs := segmentsOf(t, s, "node1")
	if len(segs) < 5 {
		t.Fatalf("%d segments after 5 hours, want at least 5", len(segs))
	}
	for i, sg := range segs {
		h, err := readHeader(sg.path)
		if err != nil {
			t.Fatal(err)
		}
		if live := i == len(segs)-1; h.Sealed == live {
			t.Fatalf("segment %s: sealed=%v, live=%v", sg.name, h.Sealed, live)
		}
		if fi, _ := os.Stat(sg.path); fi.Mode().Perm() != 0o640 {
			t.Fatalf("segment mode %v, want 0640", fi.Mode().Perm())
		}
		if !h.Sealed {
			continue
		}
		f, _ := os.Open(sg.path)
		fi, _ := f.Stat()
		p := planSegment(f, fi.Size(), sg.path)
		f.Close()
		if !p.sealed || len(p.damage) > 0 || len(p.chunks) == 0 {
			t.Fatalf("sealed segment %s plans as %+v", sg.name, p)
		}
	}
	if fi, _ := os.Stat(filepath.Join(s.Dir(), "node1")); fi.Mode().Perm() != 0o750 {
		t.Fatalf("folder mode %v, want 0750", fi.Mode().Perm())
	}
	got, _ := readRaw(t, s, "node1")
	if !bytes.Equal(got, want) {
		t.Fatalf("raw after sealing differs: %d bytes, want %d", len(got), len(want))
	}
	zstdTest(t, segs)
}

// zstdTest runs zstd -t on the segments when the zstd CLI is installed
// (test/ runs the full interop checks).
func zstdTest(t *testing.T, segs []segment) {
	t.Helper()
	if _, err := exec.LookPath("zstd"); err != nil {
		return
	}
	for _, sg := range segs {
		if out, err := exec.Command("zstd", "-tq", sg.path).CombinedOutput(); err != nil {
			t.Fatalf("zstd -t %s: %v\n%s", sg.name, err, out)
		}
	}
}

func TestSizeRotation(t *testing.T) {
	clk := newClock()
	s := openTest(t, "", Options{Now: clk.Now, SegmentBytes: 2000})
	w := mustWriter(t, s, "n")
	var want []byte
	rng := rand.New(rand.NewPCG(1, 2))
	for range 40 {
		b := trickyStream(400, rng)
		want = append(want, b...)
		w.Write(b)
		w.Flush()
		clk.Advance(300 * time.Millisecond) // several flushes a second: names must still be unique
	}
	w.Close()
	s.quiesce()
	segs := segmentsOf(t, s, "n")
	if len(segs) < 3 {
		t.Fatalf("%d segments, want several", len(segs))
	}
	for i := 1; i < len(segs); i++ {
		if !segs[i].start.After(segs[i-1].start) {
			t.Fatalf("segment names not increasing: %s, %s", segs[i-1].name, segs[i].name)
		}
	}
	checkSegmentNames(t, s, "n")
	got, _ := readRaw(t, s, "n")
	if !bytes.Equal(got, want) {
		t.Fatalf("raw differs: %d bytes, want %d", len(got), len(want))
	}
	zstdTest(t, segs)
}

func TestRetention(t *testing.T) {
	clk := newClock()
	s := openTest(t, "", Options{Now: clk.Now, SegmentAge: time.Hour, RetainBytes: 3000, RetainAge: 10 * time.Hour})
	w := mustWriter(t, s, "n")
	for i := range 30 {
		w.Write(fmt.Appendf(nil, "hour %d: %s\r\n", i, strings.Repeat("z", 500)))
		w.Flush()
		clk.Advance(time.Hour)
	}
	w.Flush()
	s.quiesce()
	segs := segmentsOf(t, s, "n")
	var total int64
	for _, sg := range segs[:len(segs)-1] {
		fi, _ := os.Stat(sg.path)
		total += fi.Size()
	}
	if total > 3000 {
		t.Fatalf("%d bytes in %d closed segments, RetainBytes is 3000", total, len(segs)-1)
	}
	if len(segs) < 2 {
		t.Fatalf("retention removed too much: %v", segs)
	}
	raw, _ := readRaw(t, s, "n")
	if !strings.HasSuffix(string(raw), "hour 29: "+strings.Repeat("z", 500)+"\r\n") {
		t.Fatalf("newest output lost: %q", raw[max(0, len(raw)-40):])
	}
	// Age: everything but the live segment is older than 10 hours by now.
	clk.Advance(24 * time.Hour)
	s.addMaint(maintJob{console: "n", w: w})
	s.quiesce()
	if segs := segmentsOf(t, s, "n"); len(segs) != 1 {
		t.Fatalf("after 24 h, %d segments remain, want only the live one", len(segs))
	}
}

func TestConsoleNames(t *testing.T) {
	for _, ok := range []string{"node42", "rack1-node001", "n.example.com", "node_1", "N", "a-b.c_d"} {
		if err := CheckConsoleName(ok); err != nil {
			t.Errorf("CheckConsoleName(%q) = %v", ok, err)
		}
	}
	s := openTest(t, "", Options{})
	for _, bad := range []string{"", ".", "..", "../etc", "a/b", ".hidden", "-rf", "a b", "a\x00b", "ä", strings.Repeat("x", 129), "a\\b", "a+b", "bmc@x", "x:1", "n\xff"} {
		if err := CheckConsoleName(bad); !errors.Is(err, ErrBadConsole) {
			t.Errorf("CheckConsoleName(%q) = %v, want ErrBadConsole", bad, err)
		}
		if _, err := s.Writer(bad); !errors.Is(err, ErrBadConsole) {
			t.Errorf("Writer(%q) = %v", bad, err)
		}
	}
}

// TestConsoleLocksSharded: many consoles' locks spread over several
// lock files (never more than lockShards), each console's lock still
// conflicts across Stores and is released by its Writer's Close.
func TestConsoleLocksSharded(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir, Options{})
	s2 := openTest(t, dir, Options{}) // stands for another process
	const n = 400
	var ws []*Writer
	for i := range n {
		ws = append(ws, mustWriter(t, s, fmt.Sprintf("node%03d", i)))
	}
	files, err := filepath.Glob(filepath.Join(dir, lockPrefix+"*"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 2 || len(files) > lockShards {
		t.Fatalf("%d lock files for %d consoles, want 2 to %d", len(files), n, lockShards)
	}
	for i := 0; i < n; i += 37 {
		name := fmt.Sprintf("node%03d", i)
		if _, err := s2.Writer(name); !errors.Is(err, ErrInUse) {
			t.Fatalf("%s in another Store = %v, want ErrInUse", name, err)
		}
		if !s2.writerAlive(name, time.Time{}) {
			t.Fatalf("%s: another Store does not see its Writer", name)
		}
	}
	ws[74].Close()
	w := mustWriter(t, s2, "node074")
	w.Close()
	if s2.writerAlive("node075", time.Time{}) != true || s2.writerAlive("node074", time.Time{}) {
		t.Fatal("writerAlive wrong after Close")
	}
}

// BenchmarkConsoleLocks10000 takes and releases 10,000 consoles' locks
// (the kernel walks a file's lock list on every lock taken).
func BenchmarkConsoleLocks10000(b *testing.B) {
	s := openTest(b, b.TempDir(), Options{})
	names := make([]string, 10000)
	for i := range names {
		names[i] = fmt.Sprintf("node%05d", i)
	}
	for b.Loop() {
		for _, name := range names {
			if err := s.lockConsole(name); err != nil {
				b.Fatal(err)
			}
		}
		for _, name := range names {
			s.unlockConsole(name)
		}
	}
}

func TestWriterInUse(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir, Options{})
	w := mustWriter(t, s, "n")
	if _, err := s.Writer("n"); !errors.Is(err, ErrInUse) {
		t.Fatalf("second Writer = %v, want ErrInUse", err)
	}
	s2 := openTest(t, dir, Options{}) // stands for another process
	if _, err := s2.Writer("n"); !errors.Is(err, ErrInUse) {
		t.Fatalf("Writer in another Store = %v, want ErrInUse", err)
	}
	w.Close()
	if _, err := w.Write([]byte("x")); !errors.Is(err, ErrClosed) {
		t.Fatalf("Write after Close = %v", err)
	}
	w2 := mustWriter(t, s2, "n")
	w2.Close()
	ro, err := Open(dir, Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ro.Writer("n"); !errors.Is(err, ErrReadOnly) {
		t.Fatalf("read-only Writer = %v", err)
	}
	if _, err := Open(filepath.Join(dir, "missing"), Options{ReadOnly: true}); err == nil {
		t.Fatal("read-only Open of a missing folder succeeded")
	}
}

func TestEvents(t *testing.T) {
	s := openTest(t, "", Options{Now: newClock().Now})
	w := mustWriter(t, s, "n")
	w.Write([]byte("Password: "))
	w.Event(EventAttach, "alice (rw)")
	w.Write([]byte("\r\n"))
	w.Event("Bad Kind!", "text")
	w.Close()
	w.Event(EventDetach, "after close: ignored")
	var lines []string
	for l, err := range s.Lines(context.Background(), "n", Query{}) {
		if err != nil {
			t.Fatal(err)
		}
		lines = append(lines, fmt.Sprintf("%s|%q", l.Event, l.Text))
	}
	want := []string{`|"Password: "`, `attach|"alice (rw)"`, `|"\r\n"`, `note|"\"Bad Kind!\" text"`}
	if fmt.Sprint(lines) != fmt.Sprint(want) {
		t.Fatalf("lines = %q, want %q", lines, want)
	}
}

// crash abandons a Writer as a killed process would: no final flush, no
// index frame, files closed, lock released.
func crash(s *Store, w *Writer) {
	w.ioMu.Lock()
	w.mu.Lock()
	w.closed = true
	if w.timer != nil {
		w.timer.Stop()
	}
	w.mu.Unlock()
	w.closeFiles()
	w.ioMu.Unlock()
	s.removeWriter(w)
}

func TestRepairTornSegment(t *testing.T) {
	// Build a live segment of ten frames without index frames.
	dir := t.TempDir()
	s := openTest(t, dir, Options{Now: newClock().Now, IndexInterval: 1000 * time.Hour})
	w := mustWriter(t, s, "n")
	var want []string
	for i := range 10 {
		l := fmt.Sprintf("frame %d line \x1b[1mbold\x1b[0m %s\r\n", i, strings.Repeat("w", i*30))
		want = append(want, l)
		w.Write([]byte(l))
		if i < 9 {
			w.Flush()
		}
	}
	w.Write([]byte("last partial"))
	w.Flush()
	crash(s, w)
	segs := segmentsOf(t, s, "n")
	path := segs[0].path
	clean, _ := os.ReadFile(path)
	f, _ := os.Open(path)
	p := walkPlan(f, int64(len(clean)), path, 0, segPlan{})
	f.Close()
	last := p.chunks[len(p.chunks)-1]
	prevEnd := p.chunks[len(p.chunks)-2].End

	for _, cut := range []int64{last.End - 1, last.Off + (last.End-last.Off)/2, last.Off + 20, last.Off + 2, last.Off} {
		t.Run(fmt.Sprint(cut-last.Off), func(t *testing.T) {
			if err := os.WriteFile(path, clean[:cut], 0o640); err != nil {
				t.Fatal(err)
			}
			s2, err := Open(dir, Options{Now: newClock().Now})
			if err != nil {
				t.Fatal(err)
			}
			w2 := mustWriter(t, s2, "n")
			crash(s2, w2) // repaired on open; nothing more written
			defer s2.Close()
			fixed, _ := os.ReadFile(path)
			if _, _, _, ok := trailingIndex(bytes.NewReader(fixed), int64(len(fixed))); !ok {
				t.Fatal("repaired segment does not end with an index frame")
			}
			if !bytes.Equal(fixed[:prevEnd], clean[:prevEnd]) {
				t.Fatal("repair changed the intact frames")
			}
			p := walkPlan(bytes.NewReader(fixed), int64(len(fixed)), path, 0, segPlan{})
			if len(p.damage) > 0 || p.torn {
				t.Fatalf("repaired segment still damaged: %v torn=%v", p.damage, p.torn)
			}
			raw, events := readRaw(t, s2, "n")
			if !strings.HasPrefix(string(raw), strings.Join(want[:9], "")) {
				t.Fatalf("intact frames not all read back: %q", raw)
			}
			if cut > last.Off {
				if len(events) != 1 || !strings.HasPrefix(events[0], "gap the writer stopped in the middle of a frame") {
					t.Fatalf("events = %q, want one gap", events)
				}
			}
			if cut == last.End-1 && !strings.Contains(string(raw), "frame 9 line") {
				t.Fatalf("salvage lost the decodable part of the torn frame: %q", raw[len(raw)-60:])
			}
			zstdTest(t, []segment{{name: "repaired", path: path}})
			// A second open finds nothing to repair.
			before, _ := os.ReadFile(path)
			w3 := mustWriter(t, s2, "n")
			crash(s2, w3)
			after, _ := os.ReadFile(path)
			if !bytes.Equal(before, after) {
				t.Fatal("second open changed a repaired segment")
			}
		})
	}
	t.Run("empty file", func(t *testing.T) {
		empty := filepath.Join(dir, "n", "29991231T000000Z.zst")
		os.WriteFile(empty, nil, 0o640)
		s2 := openTest(t, dir, Options{})
		w2 := mustWriter(t, s2, "n")
		defer w2.Close()
		if _, err := os.Stat(empty); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("empty segment not removed: %v", err)
		}
	})
}

// disk injects errors into every live segment file of a Store, and
// records the syncs (the seam a power loss would test, if one could be
// staged).
type disk struct {
	mu    sync.Mutex
	fail  bool          // WriteAt writes half, then fails with ENOSPC
	noCut bool          // Truncate fails too
	full  bool          // a write that would grow a file fails with ENOSPC; overwrites work
	block chan struct{} // WriteAt waits for this to be closed, if set
	syncs []syncCall
}

// syncCall is one durability call: "fdatasync" or "fsync" of a segment,
// "dir" of a folder, "fs" of the file system.
type syncCall struct {
	op, path string
	at       time.Time
}

func (d *disk) record(op, path string) {
	d.mu.Lock()
	d.syncs = append(d.syncs, syncCall{op, path, time.Now()})
	d.mu.Unlock()
}

func (d *disk) calls() []syncCall {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]syncCall(nil), d.syncs...)
}

// install puts d under every segment file and folder sync of s.
func (d *disk) install(s *Store) {
	s.wrapFile = d.wrap
	s.syncDirFn = func(dir string) error { d.record("dir", dir); return syncDirOS(dir) }
	s.syncFSFn = func(dir string) error { d.record("fs", dir); return nil }
}

func (d *disk) set(fn func(*disk)) {
	d.mu.Lock()
	fn(d)
	d.mu.Unlock()
}

func (d *disk) wrap(f *os.File) segFile { return &faultFile{File: f, d: d} }

type faultFile struct {
	*os.File
	d *disk
}

func (f *faultFile) WriteAt(p []byte, off int64) (int, error) {
	f.d.mu.Lock()
	fail, full, block := f.d.fail, f.d.full, f.d.block
	f.d.mu.Unlock()
	if block != nil {
		<-block
	}
	if fail {
		n, _ := f.File.WriteAt(p[:len(p)/2], off)
		return n, &os.PathError{Op: "write", Path: f.Name(), Err: syscall.ENOSPC}
	}
	if full {
		st, err := f.Stat()
		if err != nil {
			return 0, err
		}
		if room := st.Size() - off; room < int64(len(p)) {
			n, _ := f.File.WriteAt(p[:max(room, 0)], off)
			return n, &os.PathError{Op: "write", Path: f.Name(), Err: syscall.ENOSPC}
		}
	}
	return f.File.WriteAt(p, off)
}

func (f *faultFile) Sync() error {
	f.d.record("fsync", f.Name())
	return f.File.Sync()
}

func (f *faultFile) Datasync() error {
	f.d.record("fdatasync", f.Name())
	return osFile{f.File}.Datasync()
}

func (f *faultFile) Truncate(n int64) error {
	f.d.mu.Lock()
	noCut := f.d.noCut
	f.d.mu.Unlock()
	if noCut {
		return syscall.EIO
	}
	return f.File.Truncate(n)
}

func TestDiskErrors(t *testing.T) {
	for _, noCut := range []bool{false, true} {
		t.Run(fmt.Sprintf("noCut=%v", noCut), func(t *testing.T) {
			s := openTest(t, "", Options{Now: newClock().Now})
			d := &disk{}
			s.wrapFile = d.wrap
			w := mustWriter(t, s, "n")
			w.Write([]byte("before\r\n"))
			if err := w.Flush(); err != nil {
				t.Fatal(err)
			}
			d.set(func(d *disk) { d.fail, d.noCut = true, noCut })
			for i := range 5 {
				if n, err := w.Write(fmt.Appendf(nil, "lost %d\r\n", i)); n != 8 || err != nil {
					t.Fatalf("Write during disk error = %d, %v", n, err)
				}
				if err := w.Flush(); !errors.Is(err, syscall.ENOSPC) {
					t.Fatalf("Flush = %v, want ENOSPC", err)
				}
			}
			st := w.Stats()
			if st.Dropped != 40 || !st.Failing || st.WriteErrors == 0 {
				t.Fatalf("stats while failing: %+v", st)
			}
			s.quiesce() // sealing the abandoned segment, if any, fails too
			d.set(func(d *disk) { d.fail, d.noCut = false, false })
			w.Write([]byte("after\r\n"))
			if err := w.Flush(); err != nil {
				t.Fatal(err)
			}
			w.Close()
			st = w.Stats()
			if st.Failing || st.Gaps != 1 || st.Written != int64(len("before\r\nafter\r\n")) {
				t.Fatalf("stats after recovery: %+v", st)
			}
			s.quiesce()
			var raw []byte
			var events []string
			var corrupt []error
			for r, err := range s.Records(context.Background(), "n", Query{}) {
				if err != nil {
					corrupt = append(corrupt, err)
					continue
				}
				if r.Event != "" {
					events = append(events, string(r.Data))
				} else {
					raw = append(raw, r.Data...)
				}
			}
			if string(raw) != "before\r\nafter\r\n" {
				t.Fatalf("raw = %q", raw)
			}
			if len(events) != 1 || !strings.HasPrefix(events[0], "40 bytes lost until") || !strings.HasSuffix(events[0], "no space left on device") {
				t.Fatalf("gap events = %q", events)
			}
			segs := segmentsOf(t, s, "n")
			if !noCut {
				if len(corrupt) > 0 || len(segs) != 1 {
					t.Fatalf("failed writes left damage: %v, %d segments", corrupt, len(segs))
				}
				zstdTest(t, segs)
			} else if len(segs) != 2 {
				// The segment that could not be cut back is abandoned.
				t.Fatalf("%d segments, want the torn one and a new one", len(segs))
			} else if len(corrupt) != 1 || !errors.Is(corrupt[0], ErrTruncated) || !strings.Contains(corrupt[0].Error(), segs[0].name) {
				// Its sealing (which salvages) failed on the failing disk;
				// until a retry succeeds, readers report its torn tail.
				t.Fatalf("reading with the abandoned segment: %v", corrupt)
			}
		})
	}
}

// TestSegmentCreationFails: on a full disk the first write to fail can be
// the header of the segment a rotation starts. That is a write error like
// any other: counted, and the Writer reported as failing until a frame
// is written again.
func TestSegmentCreationFails(t *testing.T) {
	s := openTest(t, "", Options{Now: newClock().Now})
	d := &disk{}
	s.wrapFile = d.wrap
	w := mustWriter(t, s, "n")
	d.set(func(d *disk) { d.full = true }) // no segment yet: the first flush creates one
	w.Write([]byte("lost\r\n"))
	if err := w.Flush(); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("Flush = %v, want ENOSPC", err)
	}
	if st := w.Stats(); st.Dropped != 6 || st.WriteErrors != 1 || !st.Failing {
		t.Fatalf("stats after a failed segment creation: %+v", st)
	}
	if segs := segmentsOf(t, s, "n"); len(segs) != 0 {
		t.Fatalf("%d segments left by the failed creation", len(segs))
	}
	d.set(func(d *disk) { d.full = false })
	w.Write([]byte("after\r\n"))
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if st := w.Stats(); st.Failing || st.Gaps != 1 || st.Written != 7 {
		t.Fatalf("stats after recovery: %+v", st)
	}
	w.Close()
}

// TestOverflow stalls the disk and checks that Write never waits, drops
// beyond MaxPending, and reports the gap where it happened.
func TestOverflow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, err := Open(t.TempDir(), Options{MaxPending: 4096, FrameBytes: 1024})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		block := make(chan struct{})
		d := &disk{}
		s.wrapFile = d.wrap
		w := mustWriter(t, s, "n")
		w.Write([]byte("start\r\n"))
		w.Flush()
		d.set(func(d *disk) { d.block = block })
		line := []byte(strings.Repeat("o", 99) + "\n")
		for range 200 { // 20 KB against a stalled disk
			w.Write(line)
		}
		synctest.Wait()
		st := w.Stats()
		if st.Dropped == 0 || st.Bytes != 7+20000 {
			t.Fatalf("stats with a stalled disk: %+v", st)
		}
		d.set(func(d *disk) { d.block = nil })
		close(block)
		w.Write([]byte("end\r\n"))
		time.Sleep(2 * time.Second)
		synctest.Wait()
		w.Close()
		raw, events := readRaw(t, s, "n")
		// One gap event per run of drops (the flush worker may take the
		// buffer in the middle of the burst and so split it in two runs).
		var lost int64
		for _, e := range events {
			var n int64
			if _, err := fmt.Sscanf(e, "gap %d bytes lost", &n); err != nil || !strings.HasSuffix(e, "disk too slow") {
				t.Fatalf("event %q", e)
			}
			lost += n
		}
		if len(events) == 0 || lost != st.Dropped {
			t.Fatalf("events = %q, dropped %d", events, st.Dropped)
		}
		if int64(len(raw)) != 7+20000+5-st.Dropped || !strings.HasSuffix(string(raw), "end\r\n") {
			t.Fatalf("read %d bytes, want %d", len(raw), 7+20000+5-st.Dropped)
		}
	})
}

func TestTailIncludesPending(t *testing.T) {
	s := openTest(t, "", Options{Now: newClock().Now, FlushInterval: time.Hour})
	w := mustWriter(t, s, "n")
	for i := range 30 {
		fmt.Fprintf(w, "line %d\r\n", i)
	}
	w.Write([]byte("half a "))
	w.Flush()
	w.Write([]byte("line\r\nprompt> "))
	lines, err := s.Tail("n", 3)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, l := range lines {
		got = append(got, string(l.Text))
	}
	want := []string{"line 29\r\n", "half a line\r\n", "prompt> "}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("Tail = %q, want %q", got, want)
	}
	if l, err := s.Tail("nobody", 5); err != nil || len(l) != 0 {
		t.Fatalf("Tail of an unknown console = %v, %v", l, err)
	}
}

// TestTailBoundsLongLines: a console that prints for long without a
// line feed (a progress bar redrawn with CR) makes one long line; Tail
// returns its last TailLineBytes with the count of what it left out, on
// disk and continued in the writer's pending output, and Lines bounds a
// line only when asked (MaxLineBytes), keeping every byte otherwise.
func TestTailBoundsLongLines(t *testing.T) {
	s := openTest(t, "", Options{Now: newClock().Now, FlushInterval: time.Hour})
	w := mustWriter(t, s, "n")
	w.Write([]byte("before\r\n"))
	var long bytes.Buffer
	for i := 0; long.Len() < 3*TailLineBytes; i++ {
		fmt.Fprintf(&long, "\r%7d%% done", i)
	}
	half := long.Len() / 2
	w.Write(long.Bytes()[:half])
	w.Flush() // the first half on disk, in many records
	w.Write(long.Bytes()[half:])
	w.Write([]byte("\r\nafter\r\n")) // pending
	lines, err := s.Tail("n", 3)
	if err != nil {
		t.Fatal(err)
	}
	if len(lines) != 3 || string(lines[0].Text) != "before\r\n" || string(lines[2].Text) != "after\r\n" || lines[0].Dropped != 0 {
		t.Fatalf("Tail = %d lines: %q ... %q", len(lines), lines[0].Text, lines[len(lines)-1].Text)
	}
	full := append(long.Bytes(), "\r\n"...)
	l := lines[1]
	if len(l.Text) != TailLineBytes || int(l.Dropped) != len(full)-TailLineBytes || !bytes.Equal(l.Text, full[len(full)-TailLineBytes:]) {
		t.Fatalf("the long line: %d bytes, %d dropped; want its last %d of %d", len(l.Text), l.Dropped, TailLineBytes, len(full))
	}
	w.Flush()
	for _, max := range []int{0, 1000} {
		var got []byte
		var dropped int64
		for l, err := range s.Lines(context.Background(), "n", Query{MaxLineBytes: max}) {
			if err != nil {
				t.Fatal(err)
			}
			if len(l.Text) > len("before\r\n") && !bytes.Equal(l.Text, []byte("after\r\n")) {
				got, dropped = bytes.Clone(l.Text), l.Dropped
			}
			if max > 0 && len(l.Text) > max {
				t.Errorf("MaxLineBytes %d: a line of %d bytes", max, len(l.Text))
			}
		}
		want, wantDropped := full, int64(0)
		if max > 0 {
			want, wantDropped = full[len(full)-max:], int64(len(full)-max)
		}
		if !bytes.Equal(got, want) || dropped != wantDropped {
			t.Errorf("MaxLineBytes %d: the long line is %d bytes, %d dropped; want %d, %d", max, len(got), dropped, len(want), wantDropped)
		}
	}
}

func TestLast(t *testing.T) {
	clk := newClock()
	s := openTest(t, "", Options{Now: clk.Now, SegmentBytes: 600})
	w := mustWriter(t, s, "n")
	for i := range 100 {
		fmt.Fprintf(w, "l%d-", i)
		if i%7 == 0 {
			w.Flush() // partial records across frames and segments
		}
		fmt.Fprintf(w, "end\r\n")
		if i%10 == 0 {
			w.Event(EventNote, fmt.Sprint(i))
		}
		clk.Advance(time.Second)
	}
	w.Close()
	var got []string
	for l, err := range s.Lines(context.Background(), "n", Query{Last: 5}) {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, string(l.Event)+string(l.Text))
	}
	want := []string{"l95-end\r\n", "l96-end\r\n", "l97-end\r\n", "l98-end\r\n", "l99-end\r\n"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("Last 5 = %q, want %q", got, want)
	}
	got = nil
	for l := range s.Lines(context.Background(), "n", Query{Last: 3, Until: t0.Add(91 * time.Second)}) {
		got = append(got, string(l.Event)+string(l.Text))
	}
	want = []string{"l89-end\r\n", "l90-end\r\n", "note90"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("Last 3 until 91 s = %q, want %q", got, want)
	}
}

func TestFollow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, err := Open(t.TempDir(), Options{SegmentBytes: 400})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		w := mustWriter(t, s, "n")
		fmt.Fprintf(w, "old 1\r\nold 2\r\n")
		w.Flush()
		ctx, cancel := context.WithCancel(context.Background())
		got := make(chan string, 100)
		done := make(chan struct{})
		go func() {
			defer close(done)
			for l, err := range s.Lines(ctx, "n", Query{Last: 1, Follow: true, Poll: 100 * time.Millisecond}) {
				if err != nil {
					got <- "error: " + err.Error()
					continue
				}
				got <- string(l.Text)
			}
		}()
		var want []string
		want = append(want, "old 2\r\n")
		for i := range 30 { // several rotations
			l := fmt.Sprintf("new %d %s\r\n", i, strings.Repeat("-", 40))
			want = append(want, l)
			w.Write([]byte(l))
			time.Sleep(1100 * time.Millisecond)
		}
		// A prompt shows before its line ends; the rest follows as a line.
		w.Write([]byte("prompt> "))
		time.Sleep(1500 * time.Millisecond)
		w.Write([]byte("answer\r\n"))
		want = append(want, "prompt> ", "answer\r\n")
		time.Sleep(2 * time.Second)
		synctest.Wait()
		cancel()
		<-done
		close(got)
		var lines []string
		for l := range got {
			lines = append(lines, l)
		}
		if fmt.Sprint(lines) != fmt.Sprint(want) {
			t.Fatalf("followed:\n%q\nwant\n%q", lines, want)
		}
		if n := len(segmentsOf(t, s, "n")); n < 3 {
			t.Fatalf("only %d segments: no rotation was followed", n)
		}
	})
}

func TestRangeQueryUsesIndex(t *testing.T) {
	clk := newClock()
	s := openTest(t, "", Options{Now: clk.Now, SegmentAge: 6 * time.Hour, SealFrameBytes: 8 << 10})
	w := mustWriter(t, s, "n")
	start := clk.Now()
	for i := range 48 * 60 { // two days, a line a minute
		fmt.Fprintf(w, "minute %d\r\n", i)
		if i%5 == 4 {
			w.Flush()
		}
		clk.Advance(time.Minute)
	}
	w.Flush()
	s.quiesce()
	since, until := start.Add(30*time.Hour).Truncate(time.Millisecond), start.Add(31*time.Hour).Truncate(time.Millisecond)
	before := chunksDecoded.Load()
	var got []string
	for r, err := range s.Records(context.Background(), "n", Query{Since: since, Until: until}) {
		if err != nil {
			t.Fatal(err)
		}
		if r.Time.Before(since) || !r.Time.Before(until) {
			t.Fatalf("record at %v outside the range", r.Time)
		}
		got = append(got, string(r.Data))
	}
	decoded := chunksDecoded.Load() - before
	if len(got) != 60 || got[0] != "minute 1800\r\n" || got[59] != "minute 1859\r\n" {
		t.Fatalf("got %d records %q...", len(got), got[:min(2, len(got))])
	}
	if decoded > 4 {
		t.Fatalf("decoded %d chunks for one hour of two days", decoded)
	}
}

func TestOpenErrors(t *testing.T) {
	if _, err := Open("", Options{}); err == nil {
		t.Fatal("Open(\"\") succeeded")
	}
	file := filepath.Join(t.TempDir(), "file")
	os.WriteFile(file, nil, 0o600)
	if _, err := Open(file, Options{}); err == nil {
		t.Fatal("Open of a regular file succeeded")
	}
	s := openTest(t, "", Options{})
	s.Close()
	if _, err := s.Writer("n"); !errors.Is(err, ErrClosed) {
		t.Fatalf("Writer after Close = %v", err)
	}
	for _, err := range s.Records(context.Background(), "nobody", Query{}) {
		if !errors.Is(err, ErrNoSuchLog) {
			t.Fatalf("Records of a missing console: %v", err)
		}
	}
}

// TestIdleClose checks that a quiet console's live segment is closed (one
// file descriptor fewer) and appended to again when output resumes.
func TestIdleClose(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, err := Open(t.TempDir(), Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		w := mustWriter(t, s, "n")
		w.Write([]byte("before\r\n"))
		time.Sleep(1500 * time.Millisecond)
		synctest.Wait()
		w.ioMu.Lock()
		open := w.f != nil
		w.ioMu.Unlock()
		if !open {
			t.Fatal("live segment closed right after a write")
		}
		time.Sleep(idleClose + 2*time.Minute)
		synctest.Wait()
		w.ioMu.Lock()
		open = w.f != nil
		w.ioMu.Unlock()
		if open {
			t.Fatal("live segment still open after being idle")
		}
		w.Write([]byte("after\r\n"))
		time.Sleep(1500 * time.Millisecond)
		synctest.Wait()
		if segs := segmentsOf(t, s, "n"); len(segs) != 1 {
			t.Fatalf("%d segments, want the one reopened", len(segs))
		}
		raw, _ := readRaw(t, s, "n")
		if string(raw) != "before\r\nafter\r\n" {
			t.Fatalf("raw = %q", raw)
		}
	})
}

func TestConsoleNameMessages(t *testing.T) {
	for _, c := range []struct{ name, want string }{
		{"nöde", `bad console name "nöde": contains 'ö'`},
		{"n\xffde", `contains byte 0xff`},
		{strings.Repeat("x", 50<<20), `... (52428800 bytes): longer than 128 bytes`},
	} {
		err := CheckConsoleName(c.name)
		if err == nil || !strings.Contains(err.Error(), c.want) || len(err.Error()) > 200 {
			t.Errorf("CheckConsoleName(%.20q) = %.300v, want it to contain %q (and be short)", c.name, err, c.want)
		}
	}
}

// TestBufClass: a buffer class is the smallest that holds the size asked
// for, and a buffer goes back to a class whose size it holds.
func TestBufClass(t *testing.T) {
	for n := 1; n <= 1<<20+1; n++ {
		k := bufClass(n)
		if k >= bufClasses {
			if n <= classSize(bufClasses-1) {
				t.Fatalf("bufClass(%d) = %d, beyond the classes", n, k)
			}
			continue
		}
		if size := classSize(k); size < n || k > 0 && classSize(k-1) >= n {
			t.Fatalf("bufClass(%d) = %d of size %d; the class below holds %d", n, k, size, classSize(max(k-1, 0)))
		}
		if bufSize(n) != classSize(k) {
			t.Fatalf("bufSize(%d) = %d, class %d holds %d", n, bufSize(n), k, classSize(k))
		}
	}
	for k := 1; k < bufClasses; k++ {
		if r := float64(classSize(k)) / float64(classSize(k-1)); r > 1.5 || r < 1.3 {
			t.Fatalf("class %d is %.2f times class %d", k, r, k-1)
		}
	}
	for _, n := range []int{1, 512, 513, 5000, 100 << 10, 1 << 20, 1<<20 + 1} {
		b := getBufFor(n)
		if cap(b) < n || len(b) != 0 {
			t.Fatalf("getBufFor(%d): len %d cap %d", n, len(b), cap(b))
		}
		putBuf(append(b, 'x'))
	}
	if classSize(bufClasses-1) != 1<<20 {
		t.Fatalf("largest class %d", classSize(bufClasses-1))
	}
}

// A console's folder deleted while its live segment is open (a clean-up
// script, an operator purging a node's logs): output must not keep going
// to the deleted file, where nobody can read it. The next sync round sees
// the segment gone, and the next flush starts a new one in a recreated
// folder, after a gap event that says what happened.
func TestLiveSegmentDeleted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dir := t.TempDir()
		s, err := Open(dir, Options{SyncInterval: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		w := mustWriter(t, s, "n1")
		step := func(text string) {
			if text != "" {
				w.Write([]byte(text))
			}
			time.Sleep(1100 * time.Millisecond) // a flush and a sync round
			synctest.Wait()
		}
		step("before\r\n")
		step("")
		if err := os.RemoveAll(filepath.Join(dir, "n1")); err != nil {
			t.Fatal(err)
		}
		step("into the deleted file\r\n") // flushed there; the sync round after it sees the file gone
		step("")
		step("after\r\n")
		raw, events := readRaw(t, s, "n1")
		if string(raw) != "after\r\n" {
			t.Errorf("console bytes in the recreated folder: %q, want %q", raw, "after\r\n")
		}
		if len(events) != 1 || !strings.HasPrefix(events[0], "gap log segment ") || !strings.Contains(events[0], "was deleted while in use") {
			t.Errorf("events %q, want one gap event for the deleted segment", events)
		}
		st, err := os.Stat(filepath.Join(dir, "n1"))
		if err != nil || st.Mode().Perm() != 0o750 {
			t.Errorf("recreated folder: %v, %v; want mode 0750", st, err)
		}
		if ws := w.Stats(); ws.Gaps != 1 {
			t.Errorf("Stats().Gaps = %d, want 1", ws.Gaps)
		}
	})
}

// TestRetainWithoutFolder: a console's folder deleted by hand is made
// again by the next flush; a retention pass that runs in between (the
// rotation that leaves the deleted segment queues one) has nothing to do,
// and is no reason for a warning.
func TestRetainWithoutFolder(t *testing.T) {
	dir := t.TempDir()
	var mu sync.Mutex
	var logged []string
	log := slog.New(slog.NewTextHandler(writerFunc(func(p []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		logged = append(logged, string(p))
		return len(p), nil
	}), nil))
	s := openTest(t, dir, Options{RetainAge: 24 * time.Hour, Logger: log})
	w := mustWriter(t, s, "n1")
	w.Write([]byte("line\r\n"))
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(dir, "n1")); err != nil {
		t.Fatal(err)
	}
	s.retain(maintJob{console: "n1", w: w})
	mu.Lock()
	defer mu.Unlock()
	if len(logged) > 0 {
		t.Errorf("retention of a deleted folder logged %q", logged)
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }
