package scale

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/solgate/solgate/test/internal/testkit"
)

// mountTmpfs mounts a tmpfs of size bytes for the test (root only).
func mountTmpfs(t *testing.T, size int) string {
	t.Helper()
	mnt, err := testkit.MountTmpfs(t, "solgate-scale", strconv.Itoa(size))
	if err != nil {
		skipOrFail(t, "%v", err)
	}
	return mnt
}

// fillUp writes path until the file system has no room left.
func fillUp(t *testing.T, path string) int64 {
	t.Helper()
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_EXCL, 0o600)
	must(t, err)
	defer f.Close()
	var total int64
	for _, chunk := range []int{1 << 20, 4 << 10, 512} {
		b := make([]byte, chunk)
		for {
			n, err := f.Write(b)
			total += int64(n)
			if errors.Is(err, syscall.ENOSPC) {
				break
			}
			must(t, err)
		}
	}
	return total
}

var gapCount = regexp.MustCompile(`^(\d+) bytes lost until \S+: (.*)$`)

// TestFullDisk: the file system of the log directory fills up while every
// console prints, stays full for longer than the consoles' buffers last,
// then is freed. Every byte not logged must be counted by a gap event
// (the counts must add up to what the stream misses), no segment may be
// damaged (zstd -t), and logging must resume by itself.
func TestFullDisk(t *testing.T) {
	scenario(t)
	zstd := requireTool(t, "zstd")
	// Each console buffers 256 KiB while the disk refuses writes, then
	// drops: the sizes make that happen (and the store-wide budget, 256
	// MiB, be reached at full size).
	n := knob("DISK_CONSOLES", 6, 1000)
	rate := knob("DISK_RATE", 60000, 2000)
	hold := knobDuration("DISK_FULL_SECONDS", 3*time.Second, time.Minute)
	run := knobDuration("DISK_RUN_SECONDS", 2*time.Second, 30*time.Second)
	rp := newReport(t, "full disk", "solgate", fmt.Sprintf("%s consoles at %s B/s, log file system full for %v", comma(n), comma(rate), hold),
		"losses counted and marked; no segment damaged; resumes by itself")
	mnt := mountTmpfs(t, knob("DISK_TMPFS_MIB", 16, 256)<<20)
	f := newFleet(t, n, knob("PER_PROCESS", 20, 500), "--no-boot-text", "--stream", strconv.Itoa(rate))
	cfg := newServeConfig(t, f, "")
	cfg.logDir = filepath.Join(mnt, "log")
	p := startServe(t, cfg.write(t), filepath.Join(cfg.dir, "serve.log"))
	p.waitUp(n, 3*time.Minute)
	time.Sleep(run)
	filler := filepath.Join(mnt, "filler")
	s := startSampler(p.pid(), time.Second)
	fillUp(t, filler)
	fullAt := time.Now()
	time.Sleep(hold)
	must(t, os.Remove(filler))
	freedAt := time.Now()
	time.Sleep(run)
	if !p.running() {
		t.Fatal("solgate serve exited")
	}
	p.log.update()
	lost := p.log.count("conserver: SOL session lost")
	_, last, peak := s.stop()
	if _, err := f.stop(); err != nil {
		t.Error(err)
	}
	if err := p.stop(time.Minute); err != nil {
		t.Error(err)
	}
	lt := solgateTotals(t, cfg.logDir, f.names)
	var counted, resumed int
	for name, r := range lt.results {
		c := 0
		for _, m := range r.Markers {
			if g := gapCount.FindStringSubmatch(m); g != nil {
				k, _ := strconv.Atoi(g[1])
				c += k
				if !strings.Contains(g[2], "no space left on device") && !strings.Contains(g[2], "disk too slow") {
					t.Errorf("%s: gap event %q", name, m)
				}
			}
		}
		counted += c
		if c != r.Lost || len(r.Unmarked) > 0 || r.Damaged > 0 || r.Dup > 0 || r.Restarts > 0 {
			t.Errorf("%s: gap events count %d bytes lost, the stream misses %d (jumps %v, unmarked %v, %d damaged, %d doubled)", name, c, r.Lost, r.Jumps, r.Unmarked, r.Damaged, r.Dup)
		}
		if r.Last.After(freedAt.Add(run / 2)) {
			resumed++
		}
	}
	rp.add("%s bytes dropped while full, all counted by gap events (%d consoles)", comma(counted), lt.lostConsoles)
	rp.add("%d of %d consoles logging again after the space was freed", resumed, n)
	rp.add("daemon RSS peak %s (%s after)", mib(peak.rssKiB), mib(last.rssKiB))
	if lt.lost == 0 {
		t.Errorf("nothing was lost: the disk never filled up (full for %v from %s)", hold, fullAt.Format("15:04:05"))
	}
	if resumed != n {
		t.Errorf("%d of %d consoles logged again after the disk was freed", resumed, n)
	}
	if lost > 0 {
		t.Errorf("%d SOL sessions lost: the full disk reached the consoles", lost)
	}
	segs, _ := filepath.Glob(filepath.Join(cfg.logDir, "*", "*.zst"))
	bad := 0
	for _, s := range segs {
		if out, err := exec.Command(zstd, "-tq", s).CombinedOutput(); err != nil {
			bad++
			if bad <= 3 {
				t.Errorf("zstd -t %s: %v: %s", s, err, bytes.TrimSpace(out))
			}
		}
	}
	rp.add("zstd -t: %d of %d segments damaged", bad, len(segs))
	checkDaemonLog(t, p)
}
