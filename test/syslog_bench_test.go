package test

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
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
	rs := newRsyslogQueued(t)
	store := fillStore(t, t.TempDir(), consoles, lines)
	total := consoles * lines
	out := &lineCounter{path: rs.out}
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
		// What rsyslog wrote: every line, from this transport's input.
		for out.count(network) < total {
			if time.Since(t0) > 40*time.Minute {
				t.Fatalf("%s: rsyslog wrote %d of %d lines", network, out.count(network), total)
			}
			time.Sleep(100 * time.Millisecond)
		}
		written := time.Since(t0)
		rate := float64(total) / el.Seconds()
		t.Logf("drain %s: %d lines from %d consoles in %v: %.0f lines/s (all in rsyslog's file after %v: %.0f lines/s); CPU %.2f cores per 10,000 lines/s (whole test process, rsyslog excluded); peak heap+stack %.1f MiB (machine shared and loaded)",
			network, total, consoles, el.Round(time.Millisecond), rate, written.Round(time.Millisecond), float64(total)/written.Seconds(), cpu.Seconds()/(rate/10000)/el.Seconds(), float64(peak)/(1<<20))
	}
}

// lineCounter counts the lines of rsyslog's compact output file per
// input name, reading what was appended since the last call.
type lineCounter struct {
	path    string
	off     int64
	partial []byte
	n       map[string]int
}

func (c *lineCounter) count(input string) int {
	if c.n == nil {
		c.n = map[string]int{}
	}
	f, err := os.Open(c.path)
	if err != nil {
		return 0
	}
	defer f.Close()
	f.Seek(c.off, io.SeekStart)
	buf := make([]byte, 1<<20)
	for {
		k, err := f.Read(buf)
		c.off += int64(k)
		data := append(c.partial, buf[:k]...)
		for {
			i := bytes.IndexByte(data, '\n')
			if i < 0 {
				break
			}
			if sp := bytes.IndexByte(data[:i], ' '); sp > 0 {
				c.n[string(data[:sp])]++
			}
			data = data[i+1:]
		}
		c.partial = append(c.partial[:0], data...)
		if err != nil || k == 0 {
			return c.n[input]
		}
	}
}

// TestBenchSyslogLag measures the lag from a console byte to rsyslog's
// output file over TCP: one line every 100 ms for 10 s, with the store's
// flush interval at its default (1 s) and at 250 ms
// (SOLGATE_SYSLOG_LAG_LINES sets how many lines).
func TestBenchSyslogLag(t *testing.T) {
	benchGate(t)
	n := envInt(t, "SOLGATE_SYSLOG_LAG_LINES", 100)
	rs := newRsyslog(t)
	for _, flush := range []time.Duration{time.Second, 250 * time.Millisecond} {
		store, err := logstore.Open(t.TempDir(), logstore.Options{FlushInterval: flush})
		if err != nil {
			t.Fatal(err)
		}
		console := fmt.Sprintf("lag%d", flush.Milliseconds())
		w, err := store.Writer(console)
		if err != nil {
			t.Fatal(err)
		}
		sh := syslog.NewShipper(store, t.TempDir(), nil)
		if err := sh.Apply([]syslog.Target{{Network: "tcp", Address: rs.tcp, Facility: 16}}); err != nil {
			t.Fatal(err)
		}
		sent := make([]time.Time, n)
		seen := make([]time.Time, n)
		done := make(chan struct{})
		go func() {
			defer close(done)
			f, err := os.Open(rs.out)
			for err != nil {
				time.Sleep(5 * time.Millisecond)
				f, err = os.Open(rs.out)
			}
			defer f.Close()
			buf := make([]byte, 0, 1<<20)
			got := 0
			deadline := time.Now().Add(time.Duration(n)*100*time.Millisecond + 30*time.Second)
			for got < n && time.Now().Before(deadline) {
				chunk := make([]byte, 64<<10)
				k, _ := f.Read(chunk)
				if k == 0 {
					time.Sleep(2 * time.Millisecond)
					continue
				}
				now := time.Now()
				buf = append(buf, chunk[:k]...)
				for {
					i := indexByte(buf, '\n')
					if i < 0 {
						break
					}
					line := string(buf[:i])
					buf = buf[i+1:]
					var id int
					if j := lastIndex(line, console+" lag probe "); j >= 0 {
						fmt.Sscanf(line[j+len(console)+11:], "%d", &id)
						if id >= 0 && id < n && seen[id].IsZero() {
							seen[id] = now
							got++
						}
					}
				}
			}
		}()
		time.Sleep(300 * time.Millisecond)
		for i := range n {
			sent[i] = time.Now()
			fmt.Fprintf(w, "%s lag probe %d\r\n", console, i)
			time.Sleep(100 * time.Millisecond)
		}
		<-done
		var lags []time.Duration
		for i := range n {
			if !seen[i].IsZero() {
				lags = append(lags, seen[i].Sub(sent[i]))
			}
		}
		sh.Close()
		store.Close()
		if len(lags) < n {
			t.Fatalf("flush %v: only %d of %d probes arrived", flush, len(lags), n)
		}
		slicesSort(lags)
		t.Logf("lag console byte -> rsyslog file, store flush interval %v: median %v, p99 %v, max %v over %d lines (machine shared and loaded)",
			flush, lags[len(lags)/2].Round(time.Millisecond), lags[len(lags)*99/100].Round(time.Millisecond), lags[len(lags)-1].Round(time.Millisecond), len(lags))
	}
}

func indexByte(b []byte, c byte) int {
	for i, x := range b {
		if x == c {
			return i
		}
	}
	return -1
}

func lastIndex(s, sub string) int { return strings.LastIndex(s, sub) }

func slicesSort(d []time.Duration) { slices.Sort(d) }
