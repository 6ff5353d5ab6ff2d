package test

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/solgate/solgate/logstore"
)

// The logstore scale benchmarks run with make bench (SOLGATE_BENCH=1) and
// print their figures with t.Logf; they never run in make test.

func needBench(t *testing.T) {
	t.Helper()
	if os.Getenv("SOLGATE_BENCH") == "" {
		t.Skip("benchmark; run with SOLGATE_BENCH=1 (make bench)")
	}
}

// consoleText generates realistic console output: a kernel boot, systemd
// starting units (with colours), getty, and the steady chatter of a
// cluster node (sshd, slurmd, kernel warnings, MCEs, OOM kills).
type consoleText struct {
	rng  *rand.Rand
	node int
	t    float64 // kernel timestamp
}

func newConsoleText(seed uint64, node int) *consoleText {
	return &consoleText{rng: rand.New(rand.NewPCG(seed, uint64(node))), node: node}
}

var units = []string{"systemd-journald", "systemd-udevd", "networking", "ssh", "slurmd", "munge", "chrony",
	"nvidia-persistenced", "lustre-client", "rdma-ndd", "cron", "rsyslog", "getty@tty1", "serial-getty@ttyS0", "node-exporter"}

var kernelMsgs = []string{
	"ACPI: PCI Root Bridge [PC%02d] (domain 0000 [bus %02x-ff])",
	"pci 0000:%02x:00.0: [15b3:1017] type 00 class 0x020000",
	"mlx5_core 0000:%02x:00.0: firmware version: 16.35.%d",
	"ata%d: SATA link up 6.0 Gbps (SStatus 133 SControl 300)",
	"sd %d:0:0:0: [sda] 3750748848 512-byte logical blocks: (1.92 TB/1.75 TiB)",
	"EXT4-fs (nvme0n1p%d): mounted filesystem with ordered data mode. Quota mode: none.",
	"igb 0000:%02x:00.0 eno1: igb: eno1 NIC Link is Up 1000 Mbps Full Duplex, Flow Control: RX/TX",
	"EDAC MC%d: Giving out device to module skx_edac controller Skylake Socket#0 IMC#0",
	"perf: interrupt took too long (%d > 2500), lowering kernel.perf_event_max_sample_rate to 79000",
	"nfs: server storage%02d not responding, still trying",
	"nfs: server storage%02d OK",
	"mce: [Hardware Error]: Machine check events logged (bank %d)",
	"Out of memory: Killed process %d (python3) total-vm:81234567kB, anon-rss:61234567kB",
	"INFO: task kworker/%d:1:123 blocked for more than 120 seconds.",
}

func (c *consoleText) kernel(b []byte) []byte {
	c.t += c.rng.Float64() * 0.3
	m := kernelMsgs[c.rng.IntN(len(kernelMsgs))]
	return fmt.Appendf(b, "[%8.6f] "+m+"\r\n", c.t, c.rng.IntN(64))
}

func (c *consoleText) boot(b []byte) []byte {
	c.t = 0
	b = fmt.Appendf(b, "\x1b[2J\x1b[HBooting `Debian GNU/Linux'\r\n\r\n")
	b = fmt.Appendf(b, "[    0.000000] Linux version 6.1.0-13-amd64 (debian-kernel@lists.debian.org) (gcc-12 (Debian 12.2.0-14) 12.2.0) #1 SMP PREEMPT_DYNAMIC Debian 6.1.55-1 (2023-09-29)\r\n")
	b = fmt.Appendf(b, "[    0.000000] Command line: BOOT_IMAGE=/vmlinuz-6.1.0-13-amd64 root=UUID=%08x-%04x-4%03x-a%03x-%012x ro console=tty0 console=ttyS1,115200n8\r\n",
		c.rng.Uint32(), c.rng.IntN(65536), c.rng.IntN(4096), c.rng.IntN(4096), c.rng.Uint64()&0xffffffffffff)
	for range 150 + c.rng.IntN(100) {
		b = c.kernel(b)
	}
	for _, u := range units {
		b = fmt.Appendf(b, "[\x1b[0;32m  OK  \x1b[0m] Started \x1b[0;1;39m%s.service\x1b[0m.\r\n", u)
	}
	return fmt.Appendf(b, "\r\nDebian GNU/Linux 12 node%04d ttyS1\r\n\r\nnode%04d login: ", c.node, c.node)
}

func (c *consoleText) chatter(b []byte) []byte {
	switch c.rng.IntN(10) {
	case 0, 1, 2:
		return c.kernel(b)
	case 3, 4:
		return fmt.Appendf(b, "sshd[%d]: Accepted publickey for user%03d from 10.%d.%d.%d port %d ssh2: ED25519 SHA256:%x\r\n",
			c.rng.IntN(65536), c.rng.IntN(300), c.rng.IntN(4), c.rng.IntN(256), c.rng.IntN(256), 30000+c.rng.IntN(30000), c.rng.Uint64())
	case 5, 6:
		return fmt.Appendf(b, "slurmd[%d]: launch task StepId=%d.%d request from UID:%d GID:%d HOST:10.1.%d.%d PORT:%d\r\n",
			c.rng.IntN(9000), 1000000+c.rng.IntN(9000000), c.rng.IntN(4), 10000+c.rng.IntN(500), 10000+c.rng.IntN(500), c.rng.IntN(256), c.rng.IntN(256), c.rng.IntN(65536))
	case 7:
		return fmt.Appendf(b, "node%04d kernel: CPU%d: Core temperature above threshold, cpu clock throttled (total events = %d)\r\n", c.node, c.rng.IntN(64), c.rng.IntN(100000))
	case 8:
		return fmt.Appendf(b, "[\x1b[0;32m  OK  \x1b[0m] Finished \x1b[0;1;39mlogrotate.service\x1b[0m - Rotate log files.\r\n")
	}
	return fmt.Appendf(b, "systemd[1]: Started session-%d.scope - Session %d of User user%03d.\r\n", c.rng.IntN(90000), c.rng.IntN(90000), c.rng.IntN(300))
}

func rusageCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func rssBytes() int64 {
	b, _ := os.ReadFile("/proc/self/status")
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb << 10
		}
	}
	return 0
}

// TestBenchLogstoreScale: 10,000 consoles printing about 100 bytes/s each
// plus 100 consoles bursting boot logs at serial speed, for a while in real
// time; reports the memory per console writer and the CPU used.
func TestBenchLogstoreScale(t *testing.T) {
	needBench(t)
	slow, burst := 10000, 100
	// A busy console holds one file descriptor (its live segment).
	var lim syscall.Rlimit
	syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim)
	if need := uint64(slow + burst + 500); lim.Cur < need {
		nl := syscall.Rlimit{Cur: need, Max: max(lim.Max, need)}
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &nl); err != nil {
			slow = int(lim.Cur) - burst - 500
			t.Logf("cannot raise the file limit (%v): %d slow consoles instead", err, slow)
		}
	}
	secs := 30
	if s, err := strconv.Atoi(os.Getenv("SOLGATE_BENCH_SECONDS")); err == nil && s > 0 {
		secs = s
	}
	dir := t.TempDir()
	// Texts are made up front so the driver costs little while measuring.
	lines := make([][]byte, 4096)
	gen := newConsoleText(1, 1)
	for i := range lines {
		lines[i] = gen.chatter(nil)
	}
	var boots [][]byte
	for i := range 8 {
		boots = append(boots, newConsoleText(2, i).boot(nil))
	}

	debug.FreeOSMemory()
	var m0 runtime.MemStats
	runtime.ReadMemStats(&m0)
	rss0 := rssBytes()
	s, err := logstore.Open(dir, logstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	n := slow + burst
	ws := make([]*logstore.Writer, n)
	for i := range ws {
		if ws[i], err = s.Writer(fmt.Sprintf("node%05d", i)); err != nil {
			t.Fatal(err)
		}
	}
	// Driver: every 10 ms, a hundredth of the slow consoles print a line
	// (one line a second each) and every bursting console prints 115200
	// baud worth (115 bytes) of its boot log, over and over.
	var slowest atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		pos := make([]int, burst)
		for k := 0; ; k++ {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			for i := k % 100; i < slow; i += 100 {
				st := time.Now()
				ws[i].Write(lines[(i+k)%len(lines)])
				slowest.Store(max(slowest.Load(), int64(time.Since(st))))
			}
			for j := range burst {
				bt := boots[j%len(boots)]
				end := min(pos[j]+115, len(bt))
				st := time.Now()
				ws[slow+j].Write(bt[pos[j]:end])
				slowest.Store(max(slowest.Load(), int64(time.Since(st))))
				pos[j] = end % len(bt)
			}
		}
	}()
	time.Sleep(5 * time.Second) // warm up: every console has flushed
	cpu0, wall0 := rusageCPU(), time.Now()
	time.Sleep(time.Duration(secs) * time.Second)
	cpu, wall := rusageCPU()-cpu0, time.Since(wall0)
	var m1 runtime.MemStats
	debug.FreeOSMemory()
	runtime.ReadMemStats(&m1)
	rss1 := rssBytes()
	close(stop)
	wg.Wait()
	var bytesIn, written, dropped int64
	for _, w := range ws {
		st := w.Stats()
		bytesIn += st.Bytes
		written += st.Written
		dropped += st.Dropped
	}
	s.Close()
	var disk int64
	filepath.Walk(dir, func(_ string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() {
			disk += fi.Size()
		}
		return nil
	})
	heapPer := float64(int64(m1.HeapInuse)-int64(m0.HeapInuse)) / float64(n)
	rssPer := float64(rss1-rss0) / float64(n)
	cpuPct := 100 * cpu.Seconds() / wall.Seconds()
	t.Logf("logstore scale: %d consoles at ~100 B/s + %d bursting boot logs at 115200 baud, %v measured (2-core shared machine)", slow, burst, wall.Round(time.Second))
	t.Logf("  input %.2f MB/s, written %.1f MB, dropped %d bytes, on disk %.1f MB (live 1 s frames, not yet sealed)",
		float64(bytesIn)/1e6/(wall.Seconds()+5), float64(written)/1e6, dropped, float64(disk)/1e6)
	t.Logf("  memory per console writer: %.0f B heap in use, %.0f B resident (RSS delta / consoles; includes the shared encoder and pending buffers)", heapPer, rssPer)
	t.Logf("  CPU: %.1f%% of one core (whole process, driver included); slowest Write %v", cpuPct, time.Duration(slowest.Load()))
	if dropped != 0 {
		t.Errorf("%d bytes dropped", dropped)
	}
}

// TestBenchLogstoreRatio compares the size of sealed segments with zstd -3
// of the same text (what zstdcat prints), for a quiet console whose live
// frames hold a second each, and a busy one.
func TestBenchLogstoreRatio(t *testing.T) {
	needBench(t)
	zstdBin := needTool(t, "zstd")
	for _, tc := range []struct {
		name    string
		perSec  int // lines per second
		seconds int
	}{{"quiet console, 1 line/s", 1, 6 * 3600}, {"busy console, 20 lines/s", 20, 3600}} {
		// The same seconds of output into a store that never rotates (its
		// segment stays live) and one that rotates hourly and seals.
		liveDir, dir := t.TempDir(), t.TempDir()
		clk := &lsClock{t: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)}
		ls, err := logstore.Open(liveDir, logstore.Options{Now: clk.Now, SegmentAge: 1000 * time.Hour, SegmentBytes: 1 << 40})
		if err != nil {
			t.Fatal(err)
		}
		s, err := logstore.Open(dir, logstore.Options{Now: clk.Now, SegmentAge: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		lw, _ := ls.Writer("node1")
		w, _ := s.Writer("node1")
		gen := newConsoleText(3, 1)
		var raw int
		for sec := range tc.seconds {
			var b []byte
			if sec%3600 == 0 {
				b = gen.boot(b)
			}
			for range tc.perSec {
				b = gen.chatter(b)
			}
			raw += len(b)
			for _, w := range []*logstore.Writer{lw, w} {
				w.Write(b)
				w.Flush() // one frame per second, as a live console gets
			}
			clk.Add(time.Second)
		}
		lw.Close()
		ls.Close()
		liveSize := dirSize(liveDir)
		w.Close()
		w, _ = s.Writer("node1") // reopening seals the aged live segment
		w.Close()
		// Wait for the sealer: every segment's header says sealed.
		deadline := time.Now().Add(2 * time.Minute)
		segs, _ := filepath.Glob(filepath.Join(dir, "node1", "*.zst"))
		for _, p := range segs {
			for !bytes.Contains(headOf(p, 200), []byte(`"sealed":true`)) && time.Now().Before(deadline) {
				time.Sleep(20 * time.Millisecond)
			}
		}
		s.Close()
		sealed := dirSize(dir)
		// zstd -3 of the same text, one file per segment as well.
		var text, z3 int64
		for _, p := range segs {
			out, err := exec.Command(zstdBin, "-dc", p).Output()
			if err != nil {
				t.Fatal(err)
			}
			text += int64(len(out))
			cmd := exec.Command(zstdBin, "-3", "-c")
			cmd.Stdin = bytes.NewReader(out)
			c, err := cmd.Output()
			if err != nil {
				t.Fatal(err)
			}
			z3 += int64(len(c))
		}
		ours, ref := float64(text)/float64(sealed), float64(text)/float64(z3)
		t.Logf("ratio, %s, %d h, %.1f MB raw, %.1f MB as records: live segments x%.2f, sealed x%.2f, zstd -3 x%.2f: sealed reaches %.0f%% of zstd -3",
			tc.name, tc.seconds/3600, float64(raw)/1e6, float64(text)/1e6, float64(text)/float64(liveSize), ours, ref, 100*ours/ref)
		if ours < 0.9*ref {
			t.Errorf("%s: sealed ratio x%.2f is below 90%% of zstd -3 (x%.2f)", tc.name, ours, ref)
		}
	}
}

func dirSize(dir string) int64 {
	var n int64
	filepath.Walk(dir, func(_ string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() {
			n += fi.Size()
		}
		return nil
	})
	return n
}

// TestBenchLogstoreGrep: 30 days, 1 GB of console text in one console;
// solgate grep against zstdgrep over the same segments, and solgate grep
// for one hour of the 30 days.
func TestBenchLogstoreGrep(t *testing.T) {
	needBench(t)
	zstdgrep := needTool(t, "zstdgrep")
	bin := solgateBin(t)
	total := 1 << 30
	if s, err := strconv.Atoi(os.Getenv("SOLGATE_BENCH_GREP_MB")); err == nil && s > 0 {
		total = s << 20
	}
	dir := t.TempDir()
	start := time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC)
	clk := &lsClock{t: start}
	s, err := logstore.Open(dir, logstore.Options{Now: clk.Now, SegmentAge: 24 * time.Hour, FrameBytes: 1 << 20, MaxPending: 4 << 20})
	if err != nil {
		t.Fatal(err)
	}
	w, _ := s.Writer("node1")
	gen := newConsoleText(4, 1)
	const days = 30
	perSec := float64(total) / (days * 86400)
	t0 := time.Now()
	var b []byte
	written := 0
	needles := 0
	for sec := 0; sec < days*86400; sec++ {
		for float64(written+len(b)) < perSec*float64(sec+1) {
			if gen.rng.IntN(20000) == 0 {
				b = fmt.Appendf(b, "[%8.6f] Kernel panic - not syncing: Fatal exception in interrupt\r\n", gen.t)
				needles++
			}
			b = gen.chatter(b)
		}
		if len(b) >= 256<<10 {
			written += len(b)
			w.Write(b)
			w.Flush()
			b = b[:0]
		}
		clk.Add(time.Second)
	}
	written += len(b)
	w.Write(b)
	w.Close()
	clk.Add(25 * time.Hour)
	w, _ = s.Writer("node1") // the last day has aged: reopening seals it
	w.Close()
	segs, _ := filepath.Glob(filepath.Join(dir, "node1", "*.zst"))
	deadline := time.Now().Add(10 * time.Minute)
	for _, p := range segs {
		for !bytes.Contains(headOf(p, 200), []byte(`"sealed":true`)) && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
	}
	s.Close()
	t.Logf("grep data: %d segments, %.0f MB of console text (%d needles), %.0f MB on disk, made in %v",
		len(segs), float64(written)/1e6, needles, float64(dirSize(dir))/1e6, time.Since(t0).Round(time.Second))

	timeIt := func(name string, args ...string) (time.Duration, []byte) {
		best := time.Duration(1 << 62)
		var out []byte
		for range 3 {
			cmd := exec.Command(name, args...)
			cmd.Env = append(os.Environ(), "LC_ALL=C")
			st := time.Now()
			o, err := cmd.Output()
			d := time.Since(st)
			if err != nil {
				if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
					t.Fatalf("%s %q: %v\n%s", filepath.Base(name), args, err, o)
				}
			}
			best, out = min(best, d), o
		}
		return best, out
	}
	for _, pat := range []string{"Kernel panic", "Out of memory: Killed process 4[0-9]", "(?i)machine check.*bank 1[0-9]"} {
		ours, out := timeIt(bin, "grep", "--log-dir", dir, pat, "node1")
		zpat := strings.TrimPrefix(pat, "(?i)")
		zargs := []string{"-E", zpat}
		if zpat != pat {
			zargs = []string{"-i", "-E", zpat}
		}
		theirs, zout := timeIt(zstdgrep, append(zargs, segs...)...)
		t.Logf("grep %q over %.0f MB: solgate grep %v (%d lines), zstdgrep %v (%d lines): %.1fx",
			pat, float64(written)/1e6, ours.Round(time.Millisecond), bytes.Count(out, []byte("\n")),
			theirs.Round(time.Millisecond), bytes.Count(zout, []byte("\n")), theirs.Seconds()/ours.Seconds())
		if bytes.Count(out, []byte("\n")) != bytes.Count(zout, []byte("\n")) {
			t.Errorf("%q: solgate grep found %d lines, zstdgrep %d", pat, bytes.Count(out, []byte("\n")), bytes.Count(zout, []byte("\n")))
		}
	}
	since := start.Add(17*24*time.Hour + 13*time.Hour)
	d, out := timeIt(bin, "grep", "--log-dir", dir, "--since", since.Format(time.RFC3339), "--until", since.Add(time.Hour).Format(time.RFC3339), "sshd", "node1")
	t.Logf("grep one hour of %d days (--since/--until): %v, %d lines (process start included)", days, d.Round(time.Millisecond), bytes.Count(out, []byte("\n")))
	dl, _ := timeIt(bin, "log", "--log-dir", dir, "--since", since.Format(time.RFC3339), "--until", since.Add(time.Hour).Format(time.RFC3339), "node1")
	t.Logf("log one hour of %d days: %v", days, dl.Round(time.Millisecond))
}
