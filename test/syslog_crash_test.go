package test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/solgate/solgate/logstore"
	"github.com/solgate/solgate/logstore/syslog"
)

// crashWindow is the shipper window in the kill -9 test: the bound on
// lines sent twice per target.
const crashWindow = 500

// TestSyslogHelperProcess is not a test: TestSyslogKill9 runs the test
// binary as a stand-in for the daemon (solgate serve is not there yet):
// consoles writing to the log store and a shipper to rsyslog over TCP and
// RELP.
func TestSyslogHelperProcess(t *testing.T) {
	if os.Getenv("SOLGATE_SYSLOG_HELPER") == "" {
		t.Skip("helper process of TestSyslogKill9")
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	store, err := logstore.Open(os.Getenv("LOG_DIR"), logstore.Options{FlushInterval: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	var ws []*logstore.Writer
	for _, c := range []string{"crash-a", "crash-b"} {
		w, err := store.Writer(c) // repairs what the kill tore
		if err != nil {
			t.Fatal(err)
		}
		ws = append(ws, w)
	}
	sh := syslog.NewShipper(store, os.Getenv("STATE_DIR"), nil)
	if err := sh.Apply([]syslog.Target{
		{Network: "tcp", Address: os.Getenv("TCP_ADDR"), Facility: 16, Window: crashWindow},
		{Network: "relp", Address: os.Getenv("RELP_ADDR"), Facility: 16, Window: crashWindow},
	}); err != nil {
		t.Fatal(err)
	}
	fmt.Println("ready")
	if os.Getenv("WRITE") != "" {
		for i := 0; ctx.Err() == nil; i++ {
			for k, w := range ws {
				fmt.Fprintf(w, "\x1b[36mcrash-%c line %d\x1b[0m\r\n", 'a'+k, i)
			}
			if i%20 == 19 {
				time.Sleep(10 * time.Millisecond) // about 2,000 lines/s per console
			}
		}
	}
	<-ctx.Done()
	if err := sh.Close(); err != nil {
		t.Error(err)
	}
	store.Close()
}

func startHelper(t *testing.T, env ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestSyslogHelperProcess$", "-test.count=1")
	cmd.Env = append(append(os.Environ(), "SOLGATE_SYSLOG_HELPER=1"), env...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	ready := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(out)
		ok := false
		for sc.Scan() {
			if sc.Text() == "ready" && !ok {
				ok = true
				ready <- true
			}
		}
		if !ok {
			ready <- false
		}
	}()
	select {
	case ok := <-ready:
		if !ok {
			t.Fatal("helper exited before it was ready")
		}
	case <-time.After(60 * time.Second):
		t.Fatal("helper not ready")
	}
	return cmd
}

// TestSyslogKill9 kills a process that writes console lines and ships
// them, mid-shipping, and starts it again: rsyslog gets every line the log
// store holds (including the store's gap event for the torn frame), over
// TCP and RELP, each line at most twice and at most crashWindow lines
// twice per console and transport, a resent line with the sequence number
// it had the first time.
func TestSyslogKill9(t *testing.T) {
	rs := newRsyslog(t)
	dir := t.TempDir()
	env := []string{"LOG_DIR=" + dir + "/log", "STATE_DIR=" + dir + "/state", "TCP_ADDR=" + rs.tcp, "RELP_ADDR=" + rs.relp}
	t0 := time.Now()
	first := startHelper(t, append(env, "WRITE=1")...)
	rs.waitLines(60*time.Second, func(ls []rsyslogLine) bool { return countInput(ls, "relp") > 3000 && countInput(ls, "tcp") > 3000 })
	if err := first.Process.Kill(); err != nil { // SIGKILL
		t.Fatal(err)
	}
	first.Wait()
	before := rs.lines()
	t.Logf("killed after %v", time.Since(t0))
	second := startHelper(t, env...)
	// What the store holds now (the second run repaired the torn frame).
	store, err := logstore.Open(dir+"/log", logstore.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	want := map[string][]shipped{}
	for _, c := range []string{"crash-a", "crash-b"} {
		for l, err := range store.Lines(context.Background(), c, logstore.Query{}) {
			if err != nil {
				t.Fatal(err)
			}
			if l.Event != "" {
				want[c] = append(want[c], shipped{string(l.Event), 0, string(logstore.AppendPlain(nil, l.Text))})
				continue
			}
			want[c] = append(want[c], shipped{"console", 0, string(logstore.AppendPlain(nil, l.Text))})
		}
	}
	gaps := 0
	for _, ws := range want {
		for _, w := range ws {
			if w.msgid == "gap" {
				gaps++
			}
		}
	}
	if gaps == 0 {
		t.Log("the kill tore no frame: no gap event this time")
	}
	done := func(ls []rsyslogLine) bool {
		for _, in := range []string{"tcp", "relp"} {
			seen := map[string]map[string]bool{}
			for _, l := range ls {
				if l.Input == in {
					if seen[l.Host] == nil {
						seen[l.Host] = map[string]bool{}
					}
					seen[l.Host][sdParam(l.SD, "seq")] = true
				}
			}
			for c, ws := range want {
				if len(seen[c]) < len(ws) {
					return false
				}
			}
		}
		return true
	}
	got := rs.waitLines(120*time.Second, done)
	t.Logf("all received after %v", time.Since(t0))
	second.Process.Signal(syscall.SIGTERM)
	second.Wait()
	for _, in := range []string{"tcp", "relp"} {
		for c, ws := range want {
			var ls []rsyslogLine
			for _, l := range got {
				if l.Input == in && l.Host == c {
					ls = append(ls, l)
				}
			}
			// Each sequence number names one line; duplicates repeat it.
			bySeq := map[int]string{}
			dups := 0
			for _, l := range ls {
				seq, err := strconv.Atoi(sdParam(l.SD, "seq"))
				if err != nil {
					t.Fatalf("%s %s: no seq in %q", in, c, l.SD)
				}
				if prev, ok := bySeq[seq]; ok {
					dups++
					if prev != l.Msg {
						t.Fatalf("%s %s: seq %d carried %q and %q", in, c, seq, prev, l.Msg)
					}
				}
				bySeq[seq] = l.Msg
			}
			for i, w := range ws {
				if bySeq[i+1] != w.text {
					t.Fatalf("%s %s: seq %d is %q, want %q (line %d of %d in the store)", in, c, i+1, bySeq[i+1], w.text, i+1, len(ws))
				}
			}
			if len(bySeq) != len(ws) {
				t.Fatalf("%s %s: %d distinct messages, the store holds %d lines", in, c, len(bySeq), len(ws))
			}
			if dups > crashWindow {
				t.Fatalf("%s %s: %d lines sent twice, bound is the window %d", in, c, dups, crashWindow)
			}
			t.Logf("%s %s: %d lines, %d sent twice after kill -9 (%d received before the kill)", in, c, len(ws), dups, countHost(before, in, c))
		}
	}
}

func countHost(ls []rsyslogLine, input, host string) int {
	n := 0
	for _, l := range ls {
		if l.Input == input && l.Host == host {
			n++
		}
	}
	return n
}
