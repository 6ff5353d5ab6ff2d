package test

import (
	"bytes"
	"context"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/solgate/solgate/logstore"
)

// lsClock is a settable clock for writing logs quickly.
type lsClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *lsClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *lsClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// consoleBytes is console output with everything a log must keep exactly:
// escape sequences (to be split across writes), CR, bare LF, NUL, invalid
// UTF-8, long lines and a last line without a line end.
func consoleBytes(rng *rand.Rand, n int) []byte {
	pieces := []string{
		"[    1.234567] ACPI: PCI Root Bridge [PCI0] (domain 0000 [bus 00-ff])\r\n",
		"[\x1b[0;32m  OK  \x1b[0m] Started \x1b[0;1;39mOpenBSD Secure Shell server\x1b[0m.\r\n",
		"\x1b[2J\x1b[1;1H\x1b[37;44m BIOS Setup Utility \x1b[0m", "\x1b]0;root@node42:~\x07",
		"login: ", "Password: ", "\r\n", "\n", "\r", "progress 42%\r", "\x00\x00\x00",
		"\xff\xfe\xc3", "Grüße, 世界 ✓\r\n", `C:\> dir` + "\r\n", "\b \b", "\a",
		strings.Repeat("#", 4500),
	}
	var b []byte
	for len(b) < n {
		b = append(b, pieces[rng.IntN(len(pieces))]...)
	}
	return append(b, "node42 login: "...) // no line end at the very end
}

// decodeSegment returns what any zstd decoder outputs for a segment.
func decodeSegment(t *testing.T, path string) []byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	d, err := zstd.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	var b bytes.Buffer
	if _, err := d.WriteTo(&b); err != nil {
		t.Fatalf("decode %s: %v", path, err)
	}
	return b.Bytes()
}

// TestLogstoreZstdCLI checks that the zstd command-line tools read every
// segment, live ones included, and that solgate log --raw reproduces the
// console's bytes exactly.
func TestLogstoreZstdCLI(t *testing.T) {
	zstdBin := needTool(t, "zstd")
	zstdgrep := needTool(t, "zstdgrep")
	dir := t.TempDir()
	clk := &lsClock{t: time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)}
	s, err := logstore.Open(dir, logstore.Options{Now: clk.Now, SegmentBytes: 16 << 10, SegmentAge: 5 * time.Minute, SealFrameBytes: 128 << 10})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	w, err := s.Writer("node42")
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(42, 42))
	raw := consoleBytes(rng, 1<<20)
	// Write in pieces of random size, so escape sequences, CRLFs and UTF-8
	// characters are split between writes and between frames.
	for p := raw; len(p) > 0; {
		n := min(len(p), 1+rng.IntN(700))
		w.Write(p[:n])
		p = p[n:]
		if rng.IntN(4) == 0 {
			w.Flush()
		}
		if rng.IntN(50) == 0 {
			w.Event(logstore.EventReconnect, "SOL session re-established after 3 s")
		}
		clk.Add(time.Duration(rng.IntN(400)) * time.Millisecond)
	}
	w.Event(logstore.EventNote, "NEEDLE in the live segment")
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	// The writer is still open: the newest segment is live.
	deadline := time.Now().Add(30 * time.Second)
	var segs []string
	for {
		segs, _ = filepath.Glob(filepath.Join(dir, "node42", "*.zst"))
		sealed := 0
		for _, p := range segs[:len(segs)-1] {
			if bytes.Contains(headOf(p, 200), []byte(`"sealed":true`)) {
				sealed++
			}
		}
		if len(segs) >= 3 && sealed == len(segs)-1 || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if len(segs) < 3 {
		t.Fatalf("%d segments, want rotation to have happened", len(segs))
	}
	live := segs[len(segs)-1]
	if bytes.Contains(headOf(live, 200), []byte(`"sealed":true`)) {
		t.Fatal("newest segment is sealed while its writer is open")
	}
	for _, p := range segs {
		if out, err := exec.Command(zstdBin, "-t", p).CombinedOutput(); err != nil {
			t.Fatalf("zstd -t %s: %v\n%s", filepath.Base(p), err, out)
		}
		out, err := exec.Command(zstdBin, "-dc", p).Output()
		if err != nil {
			t.Fatalf("zstd -dc %s: %v", filepath.Base(p), err)
		}
		if want := decodeSegment(t, p); !bytes.Equal(out, want) {
			t.Fatalf("zstd -dc %s: %d bytes, Go decoder %d", filepath.Base(p), len(out), len(want))
		}
		// Every line zstdcat prints is a record: time, marker, text.
		for i, l := range strings.Split(strings.TrimSuffix(string(out), "\n"), "\n") {
			if _, err := logstore.ParseRecord([]byte(l), nil); err != nil {
				t.Fatalf("%s line %d %q: %v", filepath.Base(p), i+1, l, err)
			}
			if strings.ContainsAny(l, "\x1b\r\x00") {
				t.Fatalf("%s line %d has raw control bytes: %q", filepath.Base(p), i+1, l)
			}
		}
	}
	if out, err := exec.Command(zstdBin, "-lv", live).CombinedOutput(); err != nil || !bytes.Contains(out, []byte("Skippable Frames")) {
		t.Fatalf("zstd -lv %s: %v\n%s", live, err, out)
	}
	out, err := exec.Command(zstdgrep, "NEEDLE", live).CombinedOutput()
	if err != nil || !bytes.Contains(out, []byte("! note NEEDLE in the live segment")) {
		t.Fatalf("zstdgrep on the live segment: %v\n%s", err, out)
	}
	out, err = exec.Command(zstdgrep, "-c", "OpenBSD Secure Shell", segs[0]).CombinedOutput()
	if err != nil || bytes.Equal(bytes.TrimSpace(out), []byte("0")) {
		t.Fatalf("zstdgrep on a sealed segment: %v\n%s", err, out)
	}

	// solgate log --raw, from another process, while the writer is open.
	bin := solgateBin(t)
	cmd := exec.Command(bin, "log", "--raw", "--log-dir", dir, "node42")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	got, err := cmd.Output()
	if err != nil {
		t.Fatalf("solgate log --raw: %v\n%s", err, stderr.String())
	}
	if !bytes.Equal(got, raw) {
		i := 0
		for i < min(len(got), len(raw)) && got[i] == raw[i] {
			i++
		}
		t.Fatalf("solgate log --raw differs at byte %d of %d (got %d bytes): %q vs %q", i, len(raw), len(got),
			got[i:min(len(got), i+40)], raw[i:min(len(raw), i+40)])
	}
	// The same bytes through the library, and a last check after Close.
	w.Close()
	var lib []byte
	for r, err := range s.Records(context.Background(), "node42", logstore.Query{}) {
		if err != nil {
			t.Fatal(err)
		}
		if r.Event == "" {
			lib = append(lib, r.Data...)
		}
	}
	if !bytes.Equal(lib, raw) {
		t.Fatalf("library read: %d bytes, want %d", len(lib), len(raw))
	}
	segs, _ = filepath.Glob(filepath.Join(dir, "node42", "*.zst"))
	for _, p := range segs {
		if out, err := exec.Command(zstdBin, "-t", p).CombinedOutput(); err != nil {
			t.Fatalf("after Close, zstd -t %s: %v\n%s", filepath.Base(p), err, out)
		}
	}
}

// headOf returns the first n bytes of a file.
func headOf(path string, n int) []byte {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	b := make([]byte, n)
	k, _ := f.Read(b)
	return b[:k]
}
