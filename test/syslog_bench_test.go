package test

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/solgate/solgate/logstore"
	"github.com/solgate/solgate/logstore/syslog"
)

func benchGate(t *testing.T) {
	if os.Getenv("SOLGATE_BENCH") == "" {
		t.Skip("set SOLGATE_BENCH=1 (make bench)")
	}
}

func envInt(t testing.TB, name string, def int) int {
	if v := os.Getenv(name); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			t.Fatalf("%s=%q: %v", name, v, err)
		}
		return n
	}
	return def
}

// fillStore writes lines per console into a fresh store (as a backlog).
func fillStore(t testing.TB, dir string, consoles, lines int) *logstore.Store {
	t.Helper()
	store := openStore(t, dir)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for c := range consoles {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			w, err := store.Writer(fmt.Sprintf("node%04d", c))
			if err != nil {
				t.Error(err)
				return
			}
			buf := make([]byte, 0, 64<<10)
			for i := range lines {
				buf = fmt.Appendf(buf, "[%8d.%06d] node%04d kernel: some typical console output line number %d\r\n", i/100, i%100*1000, c, i)
				if len(buf) > 60<<10 {
					w.Write(buf)
					w.Flush()
					buf = buf[:0]
				}
			}
			w.Write(buf)
			w.Close()
		}()
	}
	wg.Wait()
	return store
}

// TestBenchSyslogDrain ships a backlog (1,000 consoles x 20 lines/s x 10
// min = 12 M lines at full size; SOLGATE_SYSLOG_CONSOLES and
// SOLGATE_SYSLOG_LINES scale it, default 200 x 1,000) to rsyslog over TCP
// and over RELP, and reports lines/s, CPU per 10,000 lines/s and the
// process's peak memory.
func TestBenchSyslogDrain(t *testing.T) {
	benchGate(t)
	consoles := envInt(t, "SOLGATE_SYSLOG_CONSOLES", 200)
	lines := envInt(t, "SOLGATE_SYSLOG_LINES", 1000)
	rs := newRsyslog(t)
	store := fillStore(t, t.TempDir(), consoles, lines)
	total := consoles * lines
	for _, network := range []string{"tcp", "relp"} {
		addr := map[string]string{"tcp": rs.tcp, "relp": rs.relp}[network]
		sh := syslog.NewShipper(store, t.TempDir(), nil)
		runtime.GC()
		var ms runtime.MemStats
		peak := uint64(0)
		stopMem := make(chan struct{})
		memDone := make(chan struct{})
		go func() {
			defer close(memDone)
			for {
				runtime.ReadMemStats(&ms)
				peak = max(peak, ms.HeapInuse+ms.StackInuse)
				select {
				case <-stopMem:
					return
				case <-time.After(100 * time.Millisecond):
				}
			}
		}()
		// A target that is older than the logs ships them from the start:
		// Apply before the logs exist is not possible here, so name the
		// consoles' start explicitly by a fresh target created in the past.
		cpu0, t0 := cpuTime(), time.Now()
		if err := sh.Apply([]syslog.Target{{Network: network, Address: addr, Facility: 16, Backfill: true}}); err != nil {
			t.Fatal(err)
		}
		for {
			st := sh.Stats()[0]
			if st.Sent >= int64(total) {
				break
			}
			if time.Since(t0) > 30*time.Minute {
				t.Fatalf("%s: only %d of %d lines after 30 min", network, st.Sent, total)
			}
			time.Sleep(20 * time.Millisecond)
		}
		el, cpu := time.Since(t0), cpuTime()-cpu0
		close(stopMem)
		<-memDone
		sh.Close()
		rate := float64(total) / el.Seconds()
		t.Logf("drain %s: %d lines from %d consoles in %v: %.0f lines/s; CPU %.2f s per 10,000 lines/s (whole test process, rsyslog excluded); peak heap+stack %.1f MiB (machine shared and loaded)",
			network, total, consoles, el.Round(time.Millisecond), rate, cpu.Seconds()/(rate/10000)/el.Seconds(), float64(peak)/(1<<20))
	}
}
