package scale

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// procSample is a process's resident memory, CPU time, open files and
// threads at one moment, from /proc.
type procSample struct {
	at      time.Time
	rssKiB  int
	cpu     time.Duration // user + system since the process started
	fds     int
	threads int
}

// readProc samples process pid; ok is false once it is gone.
func readProc(pid int) (s procSample, ok bool) {
	s.at = time.Now()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return s, false
	}
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) < 2 {
			continue
		}
		switch f[0] {
		case "VmRSS:":
			s.rssKiB, _ = strconv.Atoi(f[1])
		case "Threads:":
			s.threads, _ = strconv.Atoi(f[1])
		}
	}
	b, err = os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return s, false
	}
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 || i+2 > len(b) {
		return s, false
	}
	f := strings.Fields(string(b[i+2:]))
	if len(f) < 13 {
		return s, false
	}
	ut, _ := strconv.Atoi(f[11])
	st, _ := strconv.Atoi(f[12])
	s.cpu = time.Duration(ut+st) * time.Second / 100 // USER_HZ
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return s, false
	}
	s.fds = len(ents)
	return s, true
}

// cpuPct is the CPU used between two samples, in percent of one core.
func cpuPct(a, b procSample) float64 {
	d := b.at.Sub(a.at).Seconds()
	if d <= 0 {
		return 0
	}
	return 100 * (b.cpu - a.cpu).Seconds() / d
}

// sampler samples a process every interval until stopped, and keeps the
// peaks.
type sampler struct {
	pid   int
	stopc chan struct{}
	done  chan struct{}
	mu    sync.Mutex
	first procSample
	last  procSample
	peak  procSample // the largest rss, fds and threads seen (not one moment)
	n     int
}

func startSampler(pid int, interval time.Duration) *sampler {
	s := &sampler{pid: pid, stopc: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			s.sample()
			select {
			case <-s.stopc:
				s.sample()
				return
			case <-t.C:
			}
		}
	}()
	return s
}

func (s *sampler) sample() {
	p, ok := readProc(s.pid)
	if !ok {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.n == 0 {
		s.first = p
	}
	s.n++
	s.last = p
	s.peak.rssKiB = max(s.peak.rssKiB, p.rssKiB)
	s.peak.fds = max(s.peak.fds, p.fds)
	s.peak.threads = max(s.peak.threads, p.threads)
}

// stop ends the sampling and returns the first and last samples and the
// peaks.
func (s *sampler) stop() (first, last, peak procSample) {
	close(s.stopc)
	<-s.done
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.first, s.last, s.peak
}

// mib formats KiB as MiB.
func mib(kib int) string { return fmt.Sprintf("%.0f MiB", float64(kib)/1024) }
