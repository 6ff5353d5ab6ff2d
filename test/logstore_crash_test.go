package test

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/solgate/solgate/logstore"
)

const crashEnv = "SOLGATE_LOGSTORE_CRASH_DIR"

var crashConsoles = []string{"c0", "c1", "c2", "c3"}

// TestLogstoreCrashHelper is the writer process TestLogstoreKill9 kills. It
// writes numbered lines to three consoles as fast as it can and to a
// fourth slowly (so only the flush timer writes its frames), and reports on
// stdout, every 10 ms, the last line each console's Write accepted.
func TestLogstoreCrashHelper(t *testing.T) {
	dir := os.Getenv(crashEnv)
	if dir == "" {
		return // only runs as the helper process
	}
	s, err := logstore.Open(dir, logstore.Options{SegmentBytes: 64 << 10, SealFrameBytes: 256 << 10})
	if err != nil {
		fmt.Println("ERR", err)
		os.Exit(1)
	}
	var seqs [4]atomic.Int64
	for i, c := range crashConsoles {
		w, err := s.Writer(c)
		if err != nil {
			fmt.Println("ERR", err)
			os.Exit(1)
		}
		seqs[i].Store(-1)
		go func() {
			rng := rand.New(rand.NewPCG(uint64(i), 7))
			var pend []byte
			for n := int64(0); ; n++ {
				pend = fmt.Appendf(pend, "%s seq=%d %s\r\n", c, n, strings.Repeat("x", rng.IntN(150)))
				// Cut the stream at random places so lines span writes.
				k := rng.IntN(len(pend) + 1)
				if rng.IntN(3) == 0 {
					k = len(pend)
				}
				w.Write(pend[:k])
				pend = append(pend[:0], pend[k:]...)
				if len(pend) == 0 {
					seqs[i].Store(n)
				}
				// About 1 MB/s (a hundred serial consoles' worth) for the
				// busy ones; faster would only measure overflow drops.
				switch {
				case c == "c3":
					time.Sleep(20 * time.Millisecond)
				case n%10 == 0:
					time.Sleep(time.Millisecond)
				}
			}
		}()
	}
	out := bufio.NewWriter(os.Stdout)
	for {
		now := time.Now().UnixNano()
		for i, c := range crashConsoles {
			fmt.Fprintf(out, "P %s %d %d\n", c, seqs[i].Load(), now)
		}
		out.Flush()
		time.Sleep(10 * time.Millisecond)
	}
}

type progress struct {
	seq int64
	at  time.Time
}

// TestLogstoreKill9 kills a process that writes logs heavily with SIGKILL,
// then checks the logs: every segment passes zstd -t after the restart
// repairs the torn ones, no line is missing in the middle, and at most
// about the last flush interval (1 s) before the kill is lost.
func TestLogstoreKill9(t *testing.T) {
	zstdBin := needTool(t, "zstd")
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestLogstoreCrashHelper$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashEnv+"="+dir)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	reports := map[string][]progress{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			if len(f) != 4 || f[0] != "P" {
				t.Errorf("helper: %s", sc.Text())
				continue
			}
			seq, _ := strconv.ParseInt(f[2], 10, 64)
			ns, _ := strconv.ParseInt(f[3], 10, 64)
			mu.Lock()
			reports[f[1]] = append(reports[f[1]], progress{seq, time.Unix(0, ns)})
			mu.Unlock()
		}
	}()
	time.Sleep(2500 * time.Millisecond) // long enough for rotations and sealing
	// On a loaded machine the writer may need longer to rotate: wait (a
	// bounded time) until every console but c3 has a closed segment.
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		rotated := true
		for _, c := range crashConsoles {
			if segs, _ := filepath.Glob(filepath.Join(dir, c, "*.zst")); len(segs) < 2 && c != "c3" {
				rotated = false
			}
		}
		if rotated {
			break
		}
	}
	killedAt := time.Now()
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	<-done

	// Segments other than each console's newest were closed properly.
	for _, c := range crashConsoles {
		segs, _ := filepath.Glob(filepath.Join(dir, c, "*.zst"))
		if len(segs) < 2 && c != "c3" {
			t.Fatalf("%s: %d segments; the writer was not busy enough to rotate", c, len(segs))
		}
		for _, p := range segs[:len(segs)-1] {
			if out, err := exec.Command(zstdBin, "-tq", p).CombinedOutput(); err != nil {
				t.Errorf("before repair, closed segment %s: %v\n%s", p, err, out)
			}
		}
	}

	// Restart: opening the writers repairs what the kill tore.
	s, err := logstore.Open(dir, logstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range crashConsoles {
		w, err := s.Writer(c)
		if err != nil {
			t.Fatal(err)
		}
		w.Close()
	}
	s.Close() // stops the sealing of what the kill left unsealed
	seqRe := regexp.MustCompile(`^(c\d) seq=(\d+) x*\r\n$`)
	var worst time.Duration
	for _, c := range crashConsoles {
		segs, _ := filepath.Glob(filepath.Join(dir, c, "*"))
		for _, p := range segs {
			if !strings.HasSuffix(p, ".zst") {
				t.Errorf("left behind after restart: %s", p)
				continue
			}
			if out, err := exec.Command(zstdBin, "-tq", p).CombinedOutput(); err != nil {
				t.Errorf("after repair, %s: %v\n%s", p, err, out)
			}
		}
		next := int64(0)
		var gaps []string
		for l, err := range s.Lines(context.Background(), c, logstore.Query{}) {
			if err != nil {
				t.Fatalf("%s: %v", c, err)
			}
			if l.Event != "" {
				if l.Event != logstore.EventGap {
					t.Errorf("%s: unexpected event %s %s", c, l.Event, l.Text)
				}
				gaps = append(gaps, string(l.Text))
				continue
			}
			m := seqRe.FindSubmatch(l.Text)
			if m == nil {
				if !strings.HasSuffix(string(l.Text), "\n") {
					continue // the cut last line a salvage kept
				}
				t.Fatalf("%s: malformed line %q", c, l.Text)
			}
			n, _ := strconv.ParseInt(string(m[2]), 10, 64)
			if string(m[1]) != c || n != next {
				t.Fatalf("%s: line %q after seq %d: a line is missing or out of place (gap events so far: %q)", c, l.Text, next-1, gaps)
			}
			next++
		}
		recovered := next - 1
		// When was the first lost line accepted? That is how much was lost.
		mu.Lock()
		rs := reports[c]
		mu.Unlock()
		lostSince := killedAt
		for _, r := range rs {
			if r.seq > recovered {
				lostSince = r.at
				break
			}
		}
		loss := killedAt.Sub(lostSince)
		worst = max(worst, loss)
		t.Logf("%s: %d lines recovered; lost the output of the last %v before the kill", c, recovered+1, loss.Round(time.Millisecond))
		// At most the flush interval, plus scheduling slack (CI, -race).
		if loss > 1500*time.Millisecond {
			t.Errorf("%s: lost %v of output, more than the last second", c, loss)
		}
	}
	t.Logf("worst loss %v", worst.Round(time.Millisecond))
}
