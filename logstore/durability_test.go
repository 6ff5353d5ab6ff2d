package logstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// The shared decoder and sealing encoder are made on first use; made
// inside a synctest bubble, they could not be used outside it.
func init() {
	decoder()
	sealEncoder()
}

// checkSegmentNames checks that no segment's name claims a later start
// than its first record, and that a range query ending just after a
// segment's first record finds it.
func checkSegmentNames(t *testing.T, s *Store, console string) {
	t.Helper()
	for _, sg := range segmentsOf(t, s, console) {
		h, err := openSeg(sg)
		if err != nil {
			t.Fatal(err)
		}
		var text []byte
		for _, c := range h.plan.chunks {
			if text, _ = decodeChunk(h.f, sg.path, c, nil); len(text) > 0 {
				break
			}
		}
		h.f.Close()
		recs := splitRecords(text, nil, nil)
		if len(recs) == 0 {
			continue
		}
		first := msTime(recs[0].ms)
		if sg.start.After(first) {
			t.Fatalf("segment %s claims a later start than its first record at %s", sg.name, FormatTime(first))
		}
		found := false
		for r, err := range s.Records(context.Background(), console, Query{Since: first, Until: first.Add(time.Millisecond)}) {
			if err != nil {
				t.Fatal(err)
			}
			found = found || r.Time.Equal(first)
		}
		if !found {
			t.Fatalf("a range query for %s misses the first record of %s", FormatTime(first), sg.name)
		}
	}
}

// TestSegmentNameNotAfterFirstRecord: a segment is named after its first
// record, not after the flush that created it, so output buffered before
// the flush (or a rotation) is found by a range query.
func TestSegmentNameNotAfterFirstRecord(t *testing.T) {
	t.Run("first segment", func(t *testing.T) {
		clk := newClock() // t0 is 10:01:02.123
		s := openTest(t, "", Options{Now: clk.Now})
		w := mustWriter(t, s, "n")
		clk.Advance(500 * time.Millisecond)
		w.Write([]byte("buffered\r\n"))
		clk.Advance(1100 * time.Millisecond) // the flush runs in the next second
		w.Flush()
		checkSegmentNames(t, s, "n")
	})
	t.Run("rotation with buffered output", func(t *testing.T) {
		clk := newClock()
		s := openTest(t, "", Options{Now: clk.Now, SegmentAge: time.Hour})
		w := mustWriter(t, s, "n")
		for i := range 130 {
			fmt.Fprintf(w, "minute %d\r\n", i)
			clk.Advance(time.Minute + 700*time.Millisecond) // flushes land in another second
			if i%7 == 0 {
				w.Flush()
			}
		}
		w.Close()
		if n := len(segmentsOf(t, s, "n")); n < 3 {
			t.Fatalf("%d segments, want rotations", n)
		}
		checkSegmentNames(t, s, "n")
	})
	t.Run("several rotations a second", func(t *testing.T) {
		clk := newClock()
		s := openTest(t, "", Options{Now: clk.Now, SegmentBytes: 300})
		w := mustWriter(t, s, "n")
		for i := range 60 {
			fmt.Fprintf(w, "line %d %s\r\n", i, strings.Repeat("x", 80))
			w.Flush()
			clk.Advance(150 * time.Millisecond)
		}
		w.Close()
		segs := segmentsOf(t, s, "n")
		if len(segs) < 5 {
			t.Fatalf("%d segments, want rotations", len(segs))
		}
		checkSegmentNames(t, s, "n")
		raw, _ := readRaw(t, s, "n")
		if n := bytes.Count(raw, []byte("\r\n")); n != 60 {
			t.Fatalf("%d lines read back, want 60", n)
		}
	})
}

// TestSyncInterval observes through the seam that frames are fdatasynced
// within SyncInterval of being written, by the syncer and not by Write,
// that a new segment's folder (and a new console's folder's parent) is
// synced with it, and that a quiet console costs no syncs.
func TestSyncInterval(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, err := Open(t.TempDir(), Options{SyncInterval: 3 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		d := &disk{}
		d.install(s)
		w := mustWriter(t, s, "n")
		start := time.Now()
		var written []time.Time // when frames reached the file
		for i := range 20 {
			w.Write(fmt.Appendf(nil, "line %d\r\n", i))
			before := w.Stats().Frames
			time.Sleep(time.Second + 10*time.Millisecond) // the flush timer writes it
			synctest.Wait()
			if w.Stats().Frames == before {
				t.Fatalf("line %d not flushed", i)
			}
			written = append(written, time.Now())
		}
		time.Sleep(10 * time.Second) // quiet: one last round, then none
		synctest.Wait()
		calls := d.calls()
		var datasyncs []time.Time
		seg := filepath.Join(s.Dir(), "n", segmentsOf(t, s, "n")[0].name)
		dirs := map[string]bool{}
		for _, c := range calls {
			switch c.op {
			case "fdatasync":
				if c.path != seg {
					t.Fatalf("fdatasync of %s, want %s", c.path, seg)
				}
				datasyncs = append(datasyncs, c.at)
			case "dir":
				dirs[c.path] = true
			case "fsync", "fs":
				t.Fatalf("unexpected %s of %s", c.op, c.path)
			}
		}
		if !dirs[filepath.Join(s.Dir(), "n")] || !dirs[s.Dir()] {
			t.Fatalf("folder syncs %v: want the console's folder (new segment) and the log directory (new folder)", dirs)
		}
		// Every frame is synced within SyncInterval of being written.
		for _, wt := range written {
			k := slices.IndexFunc(datasyncs, func(at time.Time) bool { return !at.Before(wt) })
			if k < 0 || datasyncs[k].Sub(wt) > 3*time.Second {
				t.Fatalf("frame written at +%v not synced within 3 s (syncs at %v)", wt.Sub(start), datasyncs)
			}
		}
		// One sync per round with data, none while quiet.
		if n := len(datasyncs); n < 6 || n > 9 {
			t.Fatalf("%d fdatasyncs for 20 s of output with a 3 s interval", n)
		}
		if last := datasyncs[len(datasyncs)-1]; last.After(written[len(written)-1].Add(3 * time.Second)) {
			t.Fatalf("a sync at +%v, after the console went quiet", last.Sub(start))
		}
		if n := s.Stats().Syncs; n != int64(len(datasyncs)) {
			t.Fatalf("the store counts %d syncs, the seam %d", n, len(datasyncs))
		}
	})
}

// TestSyncRoundManyWriters: a round with more dirty segments than
// syncFSWriters syncs the file system once instead of each segment.
func TestSyncRoundManyWriters(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, err := Open(t.TempDir(), Options{SyncInterval: 3 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		d := &disk{}
		d.install(s)
		var ws []*Writer
		for i := range syncFSWriters + 1 {
			ws = append(ws, mustWriter(t, s, fmt.Sprintf("c%d", i)))
		}
		for round := range 2 {
			for _, w := range ws {
				w.Write([]byte("tick\r\n"))
			}
			time.Sleep(3 * time.Second)
			synctest.Wait()
			ops := map[string]int{}
			for _, c := range d.calls() {
				ops[c.op]++
			}
			if ops["fs"] != round+1 || ops["fdatasync"] != 0 || ops["dir"] != 0 {
				t.Fatalf("round %d: %v, want one syncfs a round and nothing else", round, ops)
			}
		}
		if st := s.Stats(); st.FSSyncs != 2 || st.Syncs != 0 {
			t.Fatalf("stats %+v", st)
		}
		// Quiet now: no more rounds with work.
		time.Sleep(10 * time.Second)
		synctest.Wait()
		if st := s.Stats(); st.FSSyncs != 2 {
			t.Fatalf("syncs while quiet: %+v", st)
		}
	})
}

// stuckSyncs makes every fdatasync block until release is closed.
type stuckSyncs struct {
	*faultFile
	release chan struct{}
}

func (f stuckSyncs) Datasync() error {
	<-f.release
	return f.faultFile.Datasync()
}

// TestSyncNeverBlocksWrite: with fdatasync stuck (a disk that takes
// forever to flush), Write returns at once and frames are still written:
// neither the caller nor the flush workers wait for a sync.
func TestSyncNeverBlocksWrite(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, err := Open(t.TempDir(), Options{SyncInterval: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		d := &disk{}
		release := make(chan struct{})
		s.wrapFile = func(f *os.File) segFile { return stuckSyncs{&faultFile{File: f, d: d}, release} }
		w := mustWriter(t, s, "n")
		for i := range 10 {
			w.Write(fmt.Appendf(nil, "line %d\r\n", i))
			time.Sleep(1500 * time.Millisecond)
			synctest.Wait() // every goroutine idle or blocked: none is a Write
		}
		if st := w.Stats(); st.Frames < 9 || st.Dropped != 0 {
			t.Fatalf("with syncs stuck: %+v", st)
		}
		close(release)
		w.Close()
		s.Close()
		raw, _ := readRaw(t, s, "n")
		if n := bytes.Count(raw, []byte("\r\n")); n != 10 {
			t.Fatalf("%d lines, want 10", n)
		}
	})
}

// TestDirSyncs: the folder is fsynced after a segment is renamed by
// sealing and after retention removes one, and Close syncs the file
// system once rather than every file.
func TestDirSyncs(t *testing.T) {
	clk := newClock()
	s := openTest(t, "", Options{Now: clk.Now, SegmentAge: time.Hour, RetainBytes: 1})
	d := &disk{}
	d.install(s)
	dir := filepath.Join(s.Dir(), "n")
	var mu sync.Mutex
	var snaps [][]string // the folder's entries at each of its syncs
	s.syncDirFn = func(p string) error {
		d.record("dir", p)
		if p == dir {
			var names []string
			segs, _ := listSegments(dir)
			for _, sg := range segs {
				h, _ := readHeader(sg.path)
				names = append(names, fmt.Sprintf("%s sealed=%v", sg.name, h.Sealed))
			}
			ents, _ := os.ReadDir(dir)
			for _, e := range ents {
				if strings.HasSuffix(e.Name(), ".tmp") {
					names = append(names, e.Name())
				}
			}
			mu.Lock()
			snaps = append(snaps, names)
			mu.Unlock()
		}
		return syncDirOS(p)
	}
	w := mustWriter(t, s, "n")
	w.Write([]byte("first hour\r\n"))
	w.Flush()
	first := segmentsOf(t, s, "n")[0].name
	clk.Advance(61 * time.Minute)
	w.Write([]byte("second hour\r\n"))
	w.Flush() // rotates: the first segment is sealed, then removed (RetainBytes)
	s.quiesce()
	mu.Lock()
	got := slices.Clone(snaps)
	mu.Unlock()
	sealedSeen, removedSeen := false, false
	for _, snap := range got {
		j := strings.Join(snap, " ")
		sealedSeen = sealedSeen || strings.Contains(j, first+" sealed=true") && !strings.Contains(j, ".tmp")
		removedSeen = removedSeen || sealedSeen && !strings.Contains(j, first)
	}
	if !sealedSeen || !removedSeen {
		t.Fatalf("folder syncs saw %q: want one after the rename that sealed %s, one after its removal", got, first)
	}
	w.Close()
	for _, c := range d.calls() {
		if c.op == "fs" {
			t.Fatalf("Writer.Close alone synced the file system")
		}
	}
	s.Close()
	// Store.Close: a few Writers sync their segments, many leave it to
	// one syncfs.
	for _, n := range []int{1, closeFSWriters + 1} {
		s2 := openTest(t, s.Dir(), Options{Now: clk.Now})
		d2 := &disk{}
		d2.install(s2)
		for i := range n {
			w2 := mustWriter(t, s2, fmt.Sprintf("c%d", i))
			w2.Write([]byte("more\r\n"))
			w2.Flush()
		}
		s2.Close()
		ops := map[string]int{}
		for _, c := range d2.calls() {
			ops[c.op]++
		}
		want := map[string]int{"fdatasync": 1, "dir": 2} // the new folder and its parent
		if n > closeFSWriters {
			want = map[string]int{"fs": 1}
		}
		if fmt.Sprint(ops) != fmt.Sprint(want) {
			t.Fatalf("Store.Close with %d Writers made %v, want %v", n, ops, want)
		}
	}
}

// TestClosingLeavesSyncsToClose: after Store.Closing, Writers closed one
// by one (a daemon stopping its consoles) sync nothing themselves and
// Close syncs the file system once; with few Writers Closing changes
// nothing.
func TestClosingLeavesSyncsToClose(t *testing.T) {
	clk := newClock()
	for _, n := range []int{2, closeFSWriters + 1} {
		s := openTest(t, t.TempDir(), Options{Now: clk.Now})
		d := &disk{}
		d.install(s)
		var ws []*Writer
		for i := range n {
			w := mustWriter(t, s, fmt.Sprintf("c%d", i))
			w.Write([]byte("line\r\n"))
			w.Flush()
			ws = append(ws, w)
		}
		s.Closing()
		for _, w := range ws {
			w.Close()
		}
		closed := map[string]int{}
		for _, c := range d.calls() {
			closed[c.op]++
		}
		s.Close()
		all := map[string]int{}
		for _, c := range d.calls() {
			all[c.op]++
		}
		if n > closeFSWriters {
			if closed["fdatasync"] != 0 || all["fs"] != 1 || all["fdatasync"] != 0 {
				t.Fatalf("%d Writers: closing them made %v, then Close %v; want no fdatasync and one syncfs", n, closed, all)
			}
		} else if closed["fdatasync"] != n || all["fs"] != 0 {
			t.Fatalf("%d Writers: closing them made %v, then Close %v; want a fdatasync each and no syncfs", n, closed, all)
		}
	}
}

// tornSegment writes a live segment of ten frames, the last one cut
// short, and returns its path, its bytes and where its intact frames end.
func tornSegment(t *testing.T, dir string) (path string, torn []byte) {
	t.Helper()
	s := openTest(t, dir, Options{Now: newClock().Now, IndexInterval: 1000 * time.Hour})
	w := mustWriter(t, s, "n")
	for i := range 10 {
		fmt.Fprintf(w, "frame %d line %s\r\n", i, strings.Repeat("w", 200+i*30))
		if i < 9 {
			w.Flush()
		}
	}
	w.Write([]byte("last partial"))
	w.Flush()
	crash(s, w)
	s.Close()
	path = segmentsOf(t, s, "n")[0].path
	clean, _ := os.ReadFile(path)
	f, _ := os.Open(path)
	p := walkPlan(f, int64(len(clean)), path, 0, segPlan{})
	f.Close()
	last := p.chunks[len(p.chunks)-1]
	torn = clean[:last.End-1] // only the checksum is missing: every record can be salvaged
	if err := os.WriteFile(path, torn, 0o640); err != nil {
		t.Fatal(err)
	}
	return path, torn
}

// TestRepairFullDisk: a torn segment found on a full disk is left exactly
// as it is (cutting it first would lose what can be salvaged from it), and
// once there is room the salvage is written: nothing readable is lost.
func TestRepairFullDisk(t *testing.T) {
	dir := t.TempDir()
	path, torn := tornSegment(t, dir)
	clk := newClock()
	s := openTest(t, dir, Options{Now: clk.Now})
	d := &disk{full: true}
	d.install(s)
	w := mustWriter(t, s, "n") // repairs, or tries to
	s.quiesce()                // and sealing, which salvages into a copy, fails too
	if got, _ := os.ReadFile(path); !bytes.Equal(got, torn) {
		t.Fatalf("repair on a full disk changed the torn segment: %d bytes, was %d", len(got), len(torn))
	}
	w.Write([]byte("while full\r\n"))
	if err := w.Flush(); err == nil {
		t.Fatal("Flush on a full disk succeeded")
	}
	d.set(func(d *disk) { d.full = false })
	clk.Advance(5 * time.Second)
	w.Write([]byte("after\r\n"))
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	s.addMaint(maintJob{console: "n", w: w}) // the hourly retention pass retries the seal
	s.quiesce()
	w.Close()
	raw, events := readRaw(t, s, "n")
	for i := range 10 {
		if !bytes.Contains(raw, fmt.Appendf(nil, "frame %d line ", i)) {
			t.Fatalf("frame %d lost; read %q", i, raw)
		}
	}
	if !bytes.HasSuffix(raw, []byte("after\r\n")) {
		t.Fatalf("output after the disk was freed missing: %q", raw[max(0, len(raw)-80):])
	}
	var torns, losts int
	for _, e := range events {
		torns += strings.Count(e, "frame cut short")
		losts += strings.Count(e, "no space left on device")
	}
	if torns != 1 || losts != 1 {
		t.Fatalf("events %q: want one gap for the torn frame, one for the bytes lost while full", events)
	}
	h, err := readHeader(path)
	if err != nil || !h.Sealed {
		t.Fatalf("torn segment not sealed once there was room: %+v, %v", h, err)
	}
	zstdTest(t, segmentsOf(t, s, "n"))
}

// TestRepairKeepsTornBytesUntilSalvageWritten: when the repair can write
// the salvage, it goes after the torn bytes, which become a skippable
// frame; a second open finds nothing to do; zstd accepts the file.
func TestRepairKeepsTornBytesUntilSalvageWritten(t *testing.T) {
	dir := t.TempDir()
	path, torn := tornSegment(t, dir)
	s := openTest(t, dir, Options{Now: newClock().Now})
	d := &disk{}
	d.install(s)
	w := mustWriter(t, s, "n")
	w.Close()
	fixed, _ := os.ReadFile(path)
	p := walkPlan(bytes.NewReader(torn), int64(len(torn)), path, 0, segPlan{})
	if !p.torn {
		t.Fatal("the test segment is not torn")
	}
	if !bytes.Equal(fixed[:p.end], torn[:p.end]) || !bytes.Equal(fixed[p.end+8:len(torn)], torn[p.end+8:]) {
		t.Fatal("repair changed the intact frames or the torn bytes beyond the skippable frame's header")
	}
	p = walkPlan(bytes.NewReader(fixed), int64(len(fixed)), path, 0, segPlan{})
	if len(p.damage) > 0 || p.torn {
		t.Fatalf("repaired segment still damaged: %v torn=%v", p.damage, p.torn)
	}
	raw, events := readRaw(t, s, "n")
	if !bytes.Contains(raw, []byte("frame 9 line ")) || len(events) != 1 {
		t.Fatalf("salvage missing: events %q, raw ends %q", events, raw[max(0, len(raw)-60):])
	}
	zstdTest(t, []segment{{name: "repaired", path: path}})
	w2 := mustWriter(t, s, "n")
	w2.Close()
	if again, _ := os.ReadFile(path); !bytes.Equal(again, fixed) {
		t.Fatal("a second open changed the repaired segment")
	}
}

// TestMaxPendingTotal: with the disk stalled, all Writers together
// buffer at most MaxPendingTotal; what is dropped beyond it is counted per
// Writer and for the Store and reported by gap events.
func TestMaxPendingTotal(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const budget = 20000
		s, err := Open(t.TempDir(), Options{MaxPending: 8192, FrameBytes: 1024, MaxPendingTotal: budget})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		d := &disk{}
		s.wrapFile = d.wrap
		block := make(chan struct{})
		var ws []*Writer
		for i := range 8 {
			ws = append(ws, mustWriter(t, s, fmt.Sprintf("n%d", i)))
		}
		d.set(func(d *disk) { d.block = block })
		line := []byte(strings.Repeat("o", 99) + "\n")
		peak := int64(0)
		for range 60 { // 8 x 6 KB against a stalled disk: within each MaxPending, not within the budget
			for _, w := range ws {
				w.Write(line)
				peak = max(peak, s.Stats().Pending)
			}
		}
		synctest.Wait()
		if peak > budget+2*int64(len(line)+prefixLen) {
			t.Fatalf("%d bytes pending, budget %d", peak, budget)
		}
		checkBudgetDrops(t, s, ws)
		d.set(func(d *disk) { d.block = nil })
		close(block)
		for _, w := range ws {
			w.Write([]byte("end\r\n"))
		}
		time.Sleep(2 * time.Second)
		synctest.Wait()
		if p := s.Stats().Pending; p != 0 {
			t.Fatalf("%d bytes still counted pending after every flush", p)
		}
		closeAndCheckBudgetGaps(t, s, ws)
	})
}

// TestStrayFiles: files in a console's folder that are not segments are
// reported once each through Options.Warn, not silently skipped; the
// store's own dot files are not.
func TestStrayFiles(t *testing.T) {
	dir := t.TempDir()
	var mu sync.Mutex
	var warned []string
	warn := func(err error) {
		var se *StrayFileError
		if !errors.As(err, &se) {
			t.Errorf("warning %v is not a *StrayFileError", err)
			return
		}
		mu.Lock()
		warned = append(warned, filepath.Base(se.Path))
		mu.Unlock()
	}
	s := openTest(t, dir, Options{Now: newClock().Now})
	w := mustWriter(t, s, "n")
	w.Write([]byte("hello\r\n"))
	w.Close()
	cdir := filepath.Join(dir, "n")
	for _, name := range []string{"20261123T100102Z.zst.bak", "notes.txt", "20261123T100102.zst", ".hidden"} {
		os.WriteFile(filepath.Join(cdir, name), []byte("x"), 0o640)
	}
	os.Mkdir(filepath.Join(cdir, "29990101T000000Z.zst"), 0o750)
	r := openTest(t, dir, Options{ReadOnly: true, Warn: warn})
	for range 3 {
		raw, _ := readRaw(t, r, "n")
		if string(raw) != "hello\r\n" {
			t.Fatalf("raw %q", raw)
		}
		r.Grep(context.Background(), "n", regexp.MustCompile("hello"), Query{}, func(Match) error { return nil })
	}
	slices.Sort(warned)
	want := []string{"20261123T100102.zst", "20261123T100102Z.zst.bak", "29990101T000000Z.zst", "notes.txt"}
	if !slices.Equal(warned, want) {
		t.Fatalf("warned about %q, want each of %q once", warned, want)
	}
}

// readLog returns a log's console bytes and the errors met reading it.
func readLog(t *testing.T, s *Store, console string) (raw []byte, errs []error) {
	t.Helper()
	for r, err := range s.Records(context.Background(), console, Query{}) {
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if r.Event == "" {
			raw = append(raw, r.Data...)
		}
	}
	return raw, errs
}

// TestReadTruncatedSegment: a last segment that was cut short, sealed or
// live (with no Writer left), is reported as damaged, naming the file,
// after everything that can be read from it, salvage included; a live
// segment whose Writer is still appending is not.
func TestReadTruncatedSegment(t *testing.T) {
	wantTrunc := func(t *testing.T, errs []error, path, what string) {
		t.Helper()
		if len(errs) != 1 || !errors.Is(errs[0], ErrTruncated) || !strings.Contains(errs[0].Error(), path) || !strings.Contains(errs[0].Error(), what) {
			t.Fatalf("errors %v, want one ErrTruncated naming %s and saying %q", errs, path, what)
		}
	}
	t.Run("live, writer gone", func(t *testing.T) {
		dir := t.TempDir()
		path, _ := tornSegment(t, dir)
		r := openTest(t, dir, Options{ReadOnly: true})
		raw, errs := readLog(t, r, "n")
		wantTrunc(t, errs, path, "frame cut short")
		for i := range 10 {
			if !bytes.Contains(raw, fmt.Appendf(nil, "frame %d line ", i)) {
				t.Fatalf("frame %d not read (salvage included): %q", i, raw)
			}
		}
		if !strings.Contains(errs[0].Error(), "records recovered") {
			t.Fatalf("the error does not say what was recovered: %v", errs[0])
		}
		var got []string
		err := r.Grep(context.Background(), "n", regexp.MustCompile(`frame [89] line`), Query{}, func(m Match) error {
			got = append(got, string(m.Text[:12]))
			return nil
		})
		if !errors.Is(err, ErrTruncated) || len(got) != 2 {
			t.Fatalf("grep: %q, %v", got, err)
		}
	})
	sealedLog := func(t *testing.T) (dir, path string, size int64) {
		dir = t.TempDir()
		clk := newClock()
		s := openTest(t, dir, Options{Now: clk.Now, SegmentAge: time.Hour, SealFrameBytes: 2048})
		w := mustWriter(t, s, "n")
		for i := range 100 {
			fmt.Fprintf(w, "sealed line %d %s\r\n", i, strings.Repeat("s", 40))
			w.Flush()
		}
		clk.Advance(2 * time.Hour)
		w.Flush() // rotates: the segment is sealed and nothing is live
		s.quiesce()
		w.Close()
		segs := segmentsOf(t, s, "n")
		if h, _ := readHeader(segs[0].path); len(segs) != 1 || !h.Sealed {
			t.Fatalf("want one sealed segment, have %d (%+v)", len(segs), h)
		}
		st, _ := os.Stat(segs[0].path)
		return dir, segs[0].path, st.Size()
	}
	t.Run("sealed, cut in a frame", func(t *testing.T) {
		dir, path, size := sealedLog(t)
		os.Truncate(path, size-200)
		raw, errs := readLog(t, openTest(t, dir, Options{ReadOnly: true}), "n")
		wantTrunc(t, errs, path, "frame cut short")
		if !bytes.HasPrefix(raw, []byte("sealed line 0 ")) {
			t.Fatalf("nothing recovered: %q", raw)
		}
	})
	t.Run("sealed, cut between frames", func(t *testing.T) {
		dir, path, _ := sealedLog(t)
		f, _ := os.Open(path)
		st, _ := f.Stat()
		_, _, start, ok := trailingIndex(f, st.Size())
		f.Close()
		if !ok {
			t.Fatal("no trailing index")
		}
		os.Truncate(path, start) // the closing index is gone
		raw, errs := readLog(t, openTest(t, dir, Options{ReadOnly: true}), "n")
		wantTrunc(t, errs, path, "sealed but does not end with its complete index")
		if n := bytes.Count(raw, []byte("\r\n")); n != 100 {
			t.Fatalf("%d lines recovered, want all 100", n)
		}
	})
	t.Run("cut in the header", func(t *testing.T) {
		dir, path, _ := sealedLog(t)
		os.Truncate(path, 10)
		raw, errs := readLog(t, openTest(t, dir, Options{ReadOnly: true}), "n")
		if len(errs) != 1 || !strings.Contains(errs[0].Error(), "no intact segment header") || !strings.Contains(errs[0].Error(), path) || len(raw) != 0 {
			t.Fatalf("errors %v, raw %q", errs, raw)
		}
	})
	t.Run("writer still appending", func(t *testing.T) {
		dir := t.TempDir()
		s := openTest(t, dir, Options{Now: newClock().Now})
		w := mustWriter(t, s, "n")
		defer w.Close()
		w.Write([]byte(strings.Repeat("complete frame\r\n", 50)))
		w.Flush()
		path := segmentsOf(t, s, "n")[0].path
		frame := s.encoder().EncodeAll([]byte(strings.Repeat("2026-11-23T10:01:02.123Z | in flight\n", 40)), nil)
		f, _ := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
		f.Write(frame[:len(frame)/2]) // the writer's next frame, half written
		f.Close()
		r := openTest(t, dir, Options{ReadOnly: true}) // another Store: sees the lock
		for _, st := range []*Store{s, r} {
			raw, errs := readLog(t, st, "n")
			if len(errs) != 0 || bytes.Count(raw, []byte("\r\n")) != 50 {
				t.Fatalf("a frame being written reported as %v (%d bytes read)", errs, len(raw))
			}
		}
		// A tail torn for minutes is no write in progress.
		old := time.Now().Add(-2 * tornGrace)
		os.Chtimes(path, old, old)
		_, errs := readLog(t, r, "n")
		wantTrunc(t, errs, path, "frame cut short")
	})
}

// TestPendingCountsReserved: the budget counts what the Writers' buffers
// reserve (their capacity), not just the bytes in them. Busy Writers
// whose next buffer is sized after their last flush must not reserve
// more than MaxPendingTotal between them while the budget says less;
// what does not fit is dropped and reported like any budget drop.
func TestPendingCountsReserved(t *testing.T) {
	synctest.Test(t, testPendingCountsReserved)
}

func testPendingCountsReserved(t *testing.T) {
	const budget = 512 << 10
	s, err := Open(t.TempDir(), Options{FlushInterval: time.Hour, FrameBytes: 256 << 10, MaxPending: 256 << 10, MaxPendingTotal: budget})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var ws []*Writer
	for i := range 32 {
		ws = append(ws, mustWriter(t, s, fmt.Sprintf("n%02d", i)))
	}
	text := benchText(4<<20, 4)
	off := 0
	packet := func(w *Writer) {
		w.Write(text[off : off+242])
		off += 242
	}
	for _, w := range ws { // one busy flush each: about 50 KB of records
		for range 160 {
			packet(w)
		}
		if err := w.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	reserved := func() int64 {
		var n int64
		for _, w := range ws {
			w.mu.Lock()
			n += int64(cap(w.pend) + cap(w.line))
			w.mu.Unlock()
		}
		return n
	}
	for round := range 200 {
		for _, w := range ws {
			packet(w)
		}
		synctest.Wait() // the flushes a drop asks for are done
		r, p := reserved(), s.Stats().Pending
		if p != r {
			t.Fatalf("round %d: the budget counts %d bytes, the buffers reserve %d", round, p, r)
		}
		if p > budget+int64(len(ws))*512 { // line buffers are counted once allocated
			t.Fatalf("round %d: %d bytes reserved, budget %d", round, p, budget)
		}
	}
	checkBudgetDrops(t, s, ws)
	closeAndCheckBudgetGaps(t, s, ws)
	if p := s.Stats().Pending; p != 0 {
		t.Fatalf("%d bytes still counted after every Writer closed", p)
	}
}

// checkBudgetDrops fails unless the Writers dropped bytes, all for the
// Store's budget, and the Store counts as many.
func checkBudgetDrops(t *testing.T, s *Store, ws []*Writer) {
	t.Helper()
	var dropped int64
	for _, w := range ws {
		st := w.Stats()
		if st.Dropped != st.BudgetDropped {
			t.Fatalf("drops not from the budget: %+v", st)
		}
		dropped += st.BudgetDropped
	}
	if dropped == 0 || dropped != s.Stats().BudgetDropped {
		t.Fatalf("writers dropped %d bytes, the store counts %d", dropped, s.Stats().BudgetDropped)
	}
}

// closeAndCheckBudgetGaps closes each Writer and fails unless its log
// reads back every byte it did not drop, and its gap events, all naming
// MaxPendingTotal, add up to what it dropped.
func closeAndCheckBudgetGaps(t *testing.T, s *Store, ws []*Writer) {
	t.Helper()
	for i, w := range ws {
		w.Close()
		st := w.Stats()
		raw, events := readRaw(t, s, w.Console())
		var lost int64
		for _, e := range events {
			var n int64
			if _, err := fmt.Sscanf(e, "gap %d bytes lost", &n); err != nil || !strings.Contains(e, "MaxPendingTotal") {
				t.Fatalf("console %d: event %q", i, e)
			}
			lost += n
		}
		if lost != st.Dropped || int64(len(raw)) != st.Bytes-st.Dropped {
			t.Fatalf("console %d: gaps report %d lost, dropped %d; read %d of %d bytes", i, lost, st.Dropped, len(raw), st.Bytes)
		}
	}
}
