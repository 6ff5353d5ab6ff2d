package test

import (
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/solgate/solgate/logstore"
	"github.com/solgate/solgate/logstore/syslog"
)

// checkExactly checks that an input got every line of every console once,
// in order: the text and the sequence numbers 1..n.
func checkExactly(t *testing.T, got []rsyslogLine, input string, want map[string][]string) {
	t.Helper()
	by := map[string][]rsyslogLine{}
	for _, l := range got {
		if l.Input == input {
			by[l.Host] = append(by[l.Host], l)
		}
	}
	for console, ws := range want {
		ls := by[console]
		if len(ls) != len(ws) {
			// Say what is missing or doubled.
			seen := map[string]int{}
			for _, l := range ls {
				seen[l.Msg]++
			}
			missing, dup := 0, 0
			for _, w := range ws {
				if seen[w] == 0 {
					missing++
				}
				if seen[w] > 1 {
					dup++
				}
			}
			t.Errorf("%s: %s: %d messages, want %d (%d missing, %d duplicated)", input, console, len(ls), len(ws), missing, dup)
			continue
		}
		for i, w := range ws {
			if ls[i].Msg != w || sdParam(ls[i].SD, "seq") != strconv.Itoa(i+1) {
				t.Errorf("%s: %s message %d: %q seq %s, want %q seq %d", input, console, i, ls[i].Msg, sdParam(ls[i].SD, "seq"), w, i+1)
				break
			}
		}
	}
}

// TestSyslogReceiverOutage stops rsyslog while consoles keep printing and
// starts it again: over TCP, TLS and RELP every line arrives, in order.
// Over RELP none comes twice. rsyslog, when stopped, can close a TCP
// connection with bytes its kernel acknowledged but it never read (the
// kernel then resets the connection and throws them away): after a reset
// the shipper sends the last lines again rather than lose them, so over
// TCP and TLS a line may come twice, with its first sequence number, but
// only right where the connection broke. The outage is 3 s rather than 30:
// long enough for the connections to break, for several reconnect attempts
// to fail with a growing backoff (0.1, 0.2, 0.4, 0.8, 1.6 s) and for a
// backlog to pile up on disk; a longer outage only adds attempts and
// backlog on the same path (SOLGATE_SYSLOG_OUTAGE sets another length; the
// scale suite runs five minutes).
func TestSyslogReceiverOutage(t *testing.T) {
	outage := 3 * time.Second
	if v := envDuration(t, "SOLGATE_SYSLOG_OUTAGE"); v > 0 {
		outage = v
	}
	rs := newRsyslog(t)
	store, sh := startShipping(t,
		syslog.Target{Network: "tcp", Address: rs.tcp, Facility: 16},
		syslog.Target{Network: "tls", Address: rs.tls, Facility: 16, CAFile: rs.caFile},
		syslog.Target{Network: "relp", Address: rs.relp, Facility: 16})
	p := startPrinting(t, store, "rack1-n1", "rack1-n2", "rack1-n3")
	time.Sleep(time.Second)
	rs.stop()
	time.Sleep(outage)
	rs.start()
	time.Sleep(time.Second)
	want, total := p.stop()
	rs.waitLines(60*time.Second, func(ls []rsyslogLine) bool {
		return countInput(ls, "tcp") >= total && countInput(ls, "tls") >= total && countInput(ls, "relp") >= total
	})
	time.Sleep(500 * time.Millisecond) // let duplicates, if any, arrive too
	got := rs.lines()
	checkExactly(t, got, "relp", want)
	for _, in := range []string{"tcp", "tls"} {
		checkResentAtBreaks(t, got, in, want)
	}
	for _, s := range sh.Stats() {
		if s.Reconnects < 1 || s.DialErrors < 2 {
			t.Errorf("%s: %d reconnects, %d failed dials: the outage did not exercise reconnecting", s.Key, s.Reconnects, s.DialErrors)
		}
		t.Logf("%s: sent %d, reconnects %d, failed dials %d, last error %s", s.Key, s.Sent, s.Reconnects, s.DialErrors, s.LastError)
	}
	_ = logstore.EventGap
}

// startShipping opens a store and a shipper to targets, closed at the
// test's end.
func startShipping(t *testing.T, targets ...syslog.Target) (*logstore.Store, *syslog.Shipper) {
	t.Helper()
	store := openStore(t, t.TempDir())
	sh := syslog.NewShipper(store, t.TempDir(), testLogger(t))
	t.Cleanup(func() { sh.Close() })
	if err := sh.Apply(targets); err != nil {
		t.Fatal(err)
	}
	return store, sh
}

// printing consoles write numbered lines into a store, 50 a second each.
type printing struct {
	mu      sync.Mutex
	want    map[string][]string // the lines written, by console, as syslog carries them
	writers []*logstore.Writer
	done    chan struct{}
	wg      sync.WaitGroup
}

func startPrinting(t *testing.T, store *logstore.Store, consoles ...string) *printing {
	t.Helper()
	p := &printing{want: map[string][]string{}, done: make(chan struct{})}
	for _, c := range consoles {
		w, err := store.Writer(c)
		if err != nil {
			t.Fatal(err)
		}
		p.writers = append(p.writers, w)
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			tick := time.NewTicker(20 * time.Millisecond)
			defer tick.Stop()
			for i := 0; ; i++ {
				select {
				case <-p.done:
					return
				case <-tick.C:
				}
				fmt.Fprintf(w, "\x1b[33m%s line %d\x1b[0m\r\n", c, i)
				p.mu.Lock()
				p.want[c] = append(p.want[c], fmt.Sprintf("%s line %d", c, i))
				p.mu.Unlock()
			}
		}()
	}
	return p
}

// stop ends the printing and returns the lines written and their number.
func (p *printing) stop() (map[string][]string, int) {
	close(p.done)
	p.wg.Wait()
	total := 0
	for _, ws := range p.want {
		total += len(ws)
	}
	return p.want, total
}

// TestSyslogReceiverStalls stops rsyslog with SIGSTOP, so that it is
// there but takes nothing (its connections stay open, its windows fill):
// the consoles' logs go on untouched, the RELP target's stats show the
// lines it waits on and their growing age, and once rsyslog runs again
// every line arrives, over RELP exactly once, and the backlog is gone.
func TestSyslogReceiverStalls(t *testing.T) {
	rs := newRsyslog(t)
	store, sh := startShipping(t,
		syslog.Target{Network: "relp", Address: rs.relp, Facility: 16},
		syslog.Target{Network: "tcp", Address: rs.tcp, Facility: 16})
	relp := func() syslog.TargetStats {
		for _, s := range sh.Stats() {
			if strings.HasPrefix(s.Key, "relp") {
				return s
			}
		}
		t.Fatalf("no RELP target in %+v", sh.Stats())
		return syslog.TargetStats{}
	}
	p := startPrinting(t, store, "rack2-n1", "rack2-n2")
	time.Sleep(time.Second)
	pid := rs.cmd.Process.Pid
	must(t, syscall.Kill(pid, syscall.SIGSTOP))
	defer syscall.Kill(pid, syscall.SIGCONT) // if the test ends early: rsyslog must be able to stop
	time.Sleep(time.Second)
	sent := relp().Sent
	time.Sleep(3 * time.Second)
	st := relp()
	t.Logf("RELP with rsyslog stopped: %+v", st)
	if st.Sent != sent || st.InFlight == 0 || st.BacklogLines == 0 || st.BacklogAge < 2*time.Second || st.BacklogConsoles != 2 || !st.Connected {
		t.Errorf("RELP stats while rsyslog takes nothing: %+v (sent %d a few seconds before): want no more taken, lines in flight, a backlog over 2 s old, both consoles behind, still connected", st, sent)
	}
	must(t, syscall.Kill(pid, syscall.SIGCONT))
	time.Sleep(time.Second)
	want, total := p.stop()
	for _, w := range p.writers {
		if ws := w.Stats(); ws.Dropped != 0 || ws.Written == 0 {
			t.Errorf("%s: log writer %+v: the stalled receiver cost console output", w.Console(), ws)
		}
	}
	rs.waitLines(60*time.Second, func(ls []rsyslogLine) bool {
		return countInput(ls, "relp") >= total && countInput(ls, "tcp") >= total
	})
	time.Sleep(500 * time.Millisecond) // let duplicates, if any, arrive too
	got := rs.lines()
	checkExactly(t, got, "relp", want)
	checkResentAtBreaks(t, got, "tcp", want)
	deadline := time.Now().Add(5 * time.Second)
	for st = relp(); st.BacklogAge != 0 || st.BacklogLines != 0 || st.InFlight != 0 || st.BacklogConsoles != 0; st = relp() {
		if time.Now().After(deadline) {
			t.Fatalf("RELP backlog after delivery: %+v", st)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func envDuration(t testing.TB, name string) time.Duration {
	v := os.Getenv(name)
	if v == "" {
		return 0
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		t.Fatalf("%s=%q: %v", name, v, err)
	}
	return d
}

// testLogger sends slog output to t.Log.
func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

// checkResentAtBreaks checks an input's messages per console: each carries
// the text of the line its sequence number names, every line arrives, and
// numbers increase by one except where the sender went back to resend
// after a broken connection (at most two such places here: one per
// connection the outage broke).
func checkResentAtBreaks(t *testing.T, got []rsyslogLine, input string, want map[string][]string) {
	t.Helper()
	for console, ws := range want {
		seen := make([]int, len(ws)+1)
		prev, back, dups := 0, 0, 0
		for _, l := range got {
			if l.Input != input || l.Host != console {
				continue
			}
			seq, err := strconv.Atoi(sdParam(l.SD, "seq"))
			if err != nil || seq < 1 || seq > len(ws) || ws[seq-1] != l.Msg {
				t.Errorf("%s: %s: seq %s carries %q", input, console, sdParam(l.SD, "seq"), l.Msg)
				return
			}
			switch {
			case seq == prev+1:
			case seq <= prev:
				back++
			default:
				t.Errorf("%s: %s: seq %d after %d: lines %d-%d missing", input, console, seq, prev, prev+1, seq-1)
				return
			}
			if seen[seq]++; seen[seq] > 1 {
				dups++
			}
			prev = seq
		}
		if prev != len(ws) {
			t.Errorf("%s: %s: last seq %d, want %d", input, console, prev, len(ws))
		}
		if back > 2 {
			t.Errorf("%s: %s: went back %d times; only a broken connection may resend", input, console, back)
		}
		if dups > 0 {
			t.Logf("%s: %s: %d lines sent again after a reset", input, console, dups)
		}
	}
}
