package logstore

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"regexp"
	"runtime"
	"syscall"
	"testing"
	"time"
)

// benchText is console-like text: kernel, systemd (with colours) and
// application lines.
func benchText(n int, seed uint64) []byte {
	rng := rand.New(rand.NewPCG(seed, 9))
	var b []byte
	for i := 0; len(b) < n; i++ {
		switch rng.IntN(4) {
		case 0:
			b = fmt.Appendf(b, "[%5d.%06d] ata%d: SATA link up 6.0 Gbps (SStatus 133 SControl 300)\r\n", i/100, rng.IntN(1e6), rng.IntN(8))
		case 1:
			b = fmt.Appendf(b, "[\x1b[0;32m  OK  \x1b[0m] Started \x1b[0;1;39mslurmd-%d.service\x1b[0m - Slurm node daemon.\r\n", rng.IntN(100))
		case 2:
			b = fmt.Appendf(b, "sshd[%d]: Accepted publickey for user%d from 10.%d.%d.%d port %d ssh2: ED25519 SHA256:%x\r\n",
				rng.IntN(65536), rng.IntN(500), rng.IntN(256), rng.IntN(256), rng.IntN(256), rng.IntN(65536), rng.Uint64())
		default:
			b = fmt.Appendf(b, "node%03d kernel: mce: [Hardware Error]: CPU %d: Machine Check: 0 Bank %d: %016x\r\n", rng.IntN(999), rng.IntN(64), rng.IntN(30), rng.Uint64())
		}
	}
	return b
}

// BenchmarkWrite is the cost of Write for 100-byte lines (what the console
// goroutine pays), flushes included.
func BenchmarkWrite(b *testing.B) {
	s, _ := Open(b.TempDir(), Options{})
	defer s.Close()
	w, _ := s.Writer("n")
	text := benchText(1<<20, 1)
	b.SetBytes(100)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if i+100 > len(text) {
			i = 0
		}
		w.Write(text[i : i+100])
		i += 100
	}
}

// BenchmarkWriteBusy is many consoles printing at once, as in a boot
// storm: 242-byte packets of output (what a BMC sends at 115200 baud)
// round-robin over 256 Writers whose pending records are flushed by the
// interval timer, not by size. B/op and allocs/op are what buffering a
// packet costs.
func BenchmarkWriteBusy(b *testing.B) {
	s, _ := Open(b.TempDir(), Options{FlushInterval: 20 * time.Millisecond})
	defer s.Close()
	ws := make([]*Writer, 256)
	for i := range ws {
		ws[i], _ = s.Writer(fmt.Sprintf("node%03d", i))
	}
	text := benchText(1<<20, 1)
	b.SetBytes(242)
	b.ReportAllocs()
	i, k := 0, 0
	cpu := cpuTime()
	for b.Loop() {
		if i+242 > len(text) {
			i = 0
		}
		ws[k%len(ws)].Write(text[i : i+242])
		i += 242
		k++
	}
	reportCPU(b, cpu)
}

// cpuTime is the CPU time (user and system) the process has used: the
// flush workers' share of a Write, and a figure less thrown by other
// programs on a shared machine than the wall time of ns/op.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportCPU reports the process's CPU time per op since start.
func reportCPU(b *testing.B, start time.Duration) {
	b.ReportMetric(float64(cpuTime()-start)/float64(b.N), "cpu-ns/op")
}

// BenchmarkWriterMemory reports the heap a Writer costs while it buffers
// one line (before its first flush).
func BenchmarkWriterMemory(b *testing.B) {
	const n = 4000
	for b.Loop() {
		s, _ := Open(b.TempDir(), Options{FlushInterval: time.Hour})
		var m0, m1 runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&m0)
		ws := make([]*Writer, n)
		for i := range ws {
			ws[i], _ = s.Writer(fmt.Sprintf("node%05d", i))
			ws[i].Write([]byte("[    0.000000] Linux version 6.1.0-13-amd64 (debian-kernel@lists.debian.org)\r\n"))
		}
		runtime.GC()
		runtime.ReadMemStats(&m1)
		b.ReportMetric(float64(m1.HeapAlloc-m0.HeapAlloc)/n, "heapB/writer")
		runtime.KeepAlive(ws)
		s.Close()
	}
}

// BenchmarkGrep searches sealed segments for a rare literal and for a
// pattern without one.
func BenchmarkGrep(b *testing.B) {
	clk := &fakeClock{t: t0}
	s, _ := Open(b.TempDir(), Options{Now: clk.Now, SegmentAge: time.Hour, FrameBytes: 1 << 20, MaxPending: 2 << 20})
	defer s.Close()
	w, _ := s.Writer("n")
	text := benchText(64<<20, 2)
	for i := 0; i < len(text); i += 64 << 10 {
		w.Write(text[i:min(len(text), i+64<<10)])
		w.Flush()
		clk.Advance(time.Minute)
	}
	w.Write([]byte("Kernel panic - not syncing\r\n"))
	clk.Advance(2 * time.Hour)
	w.Close()
	w, _ = s.Writer("n") // seals the last segment
	w.Close()
	s.quiesce()
	for _, pat := range []string{"Kernel panic", `(?i)kernel PANIC - not syncing`, `(?i)accepted publickey for user4[0-9]{2}`} {
		re := regexp.MustCompile(pat)
		b.Run(pat, func(b *testing.B) {
			b.SetBytes(int64(len(text)))
			for b.Loop() {
				n := 0
				if err := s.Grep(context.Background(), "n", re, Query{}, func(Match) error { n++; return nil }); err != nil || n == 0 {
					b.Fatalf("%d matches, %v", n, err)
				}
			}
		})
	}
}

// BenchmarkSeal is the background cost of sealing: recompressing a closed
// segment into large frames.
func BenchmarkSeal(b *testing.B) {
	text := benchText(32<<20, 3)
	for b.Loop() {
		b.StopTimer()
		clk := &fakeClock{t: t0}
		s, _ := Open(b.TempDir(), Options{Now: clk.Now})
		w, _ := s.Writer("n")
		for i := 0; i < len(text); i += 4 << 10 {
			w.Write(text[i:min(len(text), i+4<<10)])
			w.Flush()
		}
		w.Close()
		segs, _ := listSegments(s.Dir() + "/n")
		b.StartTimer()
		if err := s.sealSegment(context.Background(), s.Dir()+"/n", segs[0].name); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		s.Close()
		b.StartTimer()
	}
	b.SetBytes(int64(len(text)))
}

// BenchmarkAppendPackets is the record formatting Write does for each
// console packet (242 bytes, as in BenchmarkWriteBusy), without the
// Writer's locking, buffering and flushing: timestamps and escaping.
func BenchmarkAppendPackets(b *testing.B) {
	text := benchText(1<<20, 1)
	var st stamper
	buf := make([]byte, 0, 64<<10)
	now := time.Date(2026, 11, 23, 10, 1, 2, 0, time.UTC)
	b.SetBytes(242)
	i := 0
	cpu := cpuTime()
	for b.Loop() {
		if i+242 > len(text) {
			i = 0
		}
		if len(buf) > 60<<10 {
			buf = buf[:0]
		}
		p := text[i : i+242]
		for len(p) > 0 {
			j := bytes.IndexByte(p, '\n') + 1
			if j == 0 {
				j = len(p)
			}
			buf = st.appendOutput(buf, now, p[:j])
			p = p[j:]
		}
		i += 242
		now = now.Add(17 * time.Millisecond)
	}
	reportCPU(b, cpu)
}
