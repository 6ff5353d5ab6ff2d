package test

import (
	"context"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/solgate/solgate/ipmilan"
)

// BenchmarkSOLIdleSessions holds 1,000 SOL sessions open against bmcsim
// (1,000 BMCs in another process) and reports resident memory per session
// and the CPU the keepalives cost over a minute (targets: under 64 KiB per
// session, under 5% of one core).
func BenchmarkSOLIdleSessions(b *testing.B) {
	const n = 1000
	window := 60 * time.Second
	if s := os.Getenv("SOLGATE_IDLE_WINDOW"); s != "" {
		if d, err := time.ParseDuration(s); err == nil {
			window = d
		}
	}
	addrs := bmcsimProcess(b, n)
	runtime.GC()
	rss0 := rssKiB(b)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	sols := make([]*ipmilan.SOL, n)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	sem := make(chan struct{}, 64)
	start := time.Now()
	for i, a := range addrs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			c, err := ipmilan.DialSOL(ctx, ipmilan.Config{Addr: a, User: "admin", Password: ipmilan.Secret(bmcsimPassword)}, ipmilan.SOLOptions{})
			if err != nil {
				errs <- err
				return
			}
			sols[i] = c
			go func() { // a consumer, as the console manager has one
				buf := make([]byte, 4096)
				for {
					if _, err := c.Read(buf); err != nil {
						return
					}
				}
			}()
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	setup := time.Since(start)
	defer func() {
		for _, c := range sols {
			c.Close()
		}
	}()
	runtime.GC()
	rss1 := rssKiB(b)
	cpu0 := cpuTime()
	time.Sleep(window)
	cpu := cpuTime() - cpu0
	for i, c := range sols {
		if c.Err() != nil {
			b.Fatalf("session %d ended while idle: %v", i, c.Err())
		}
	}
	perSession := float64(rss1-rss0) / n
	pct := 100 * cpu.Seconds() / window.Seconds()
	b.Logf("%d idle SOL sessions: opened in %v; RSS +%d KiB (%.1f KiB per session); keepalive CPU %.2f%% of one core over %v",
		n, setup.Round(time.Millisecond), rss1-rss0, perSession, pct, window)
	b.ReportMetric(perSession, "KiB/session")
	b.ReportMetric(pct, "cpu-%")
}

// rssKiB is this process's resident set size.
func rssKiB(tb testing.TB) int {
	b, err := os.ReadFile("/proc/self/status")
	must(tb, err)
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmRSS:" {
			v, _ := strconv.Atoi(f[1])
			return v
		}
	}
	tb.Fatal("no VmRSS in /proc/self/status")
	return 0
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
