package conserver

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/solgate/solgate/ipmilan/bmcsim"
)

// TestSlowAttachmentNeverStalls: one attachment never reads. The console
// streams at full speed all the same: the log and another attachment get
// every byte, the slow one is marked lagging, told what it missed once it
// reads again, and dropped past MaxMissed.
func TestSlowAttachmentNeverStalls(t *testing.T) {
	t.Parallel()
	s := startSim(t, bmcsim.Config{PowerOn: true, SOL: bmcsim.SOLConfig{NoBootText: true}})
	e := newEnv(t, "", []consoleSpec{{name: "node1", bmc: s.Addr}}, Options{AttachBuffer: 64 << 10, MaxMissed: 256 << 10})
	c := e.m.Console("node1")
	waitState(t, c, Up, 10*time.Second)

	stuck, err := c.Attach(Identity{User: "carol", Via: "test"}, AttachOptions{})
	must(t, err)
	lagger, err := c.Attach(Identity{User: "bob", Via: "test"}, AttachOptions{})
	must(t, err)
	fast, err := c.Attach(Identity{User: "alice", Via: "test"}, AttachOptions{})
	must(t, err)
	rf := readAll(fast)

	// 200 kB/s: 17 times a 115200 baud line, and slow enough for a
	// reading attachment on a loaded machine to keep up with.
	const total, rate = 1 << 20, 200_000
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	start := time.Now()
	must(t, s.Stream(ctx, rate, total))
	want := string(bmcsim.AppendStreamText(nil, 0, total))
	rf.wait(t, want[len(want)-300:], 30*time.Second)
	took := time.Since(start)
	t.Logf("%d bytes in %v (%.0f kB/s) with a stuck and a lagging attachment", total, took.Round(time.Millisecond), total/took.Seconds()/1000)
	if got := stripNotices(rf.text()); !strings.Contains(got, want) {
		i := strings.Index(got, want[:100])
		if i < 0 {
			t.Fatalf("the reading attachment lacks the stream's start: %q", tailStr(got[:min(len(got), 2000)], 1000))
		}
		got = got[i:]
		j := firstDiff(got, want)
		t.Fatalf("the reading attachment's stream differs at byte %d: %q vs %q", j, got[max(0, j-100):min(len(got), j+100)], want[max(0, j-100):min(len(want), j+100)])
	}
	if strings.Contains(rf.text(), "you missed") {
		t.Fatal("the reading attachment lagged")
	}
	waitFor(t, "stream in the log", 10*time.Second, func() bool { return strings.Contains(logRaw(t, e.store, "node1"), want) })

	// The stuck one was dropped with its reason; its buffer stayed bounded.
	select {
	case <-stuck.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the stuck attachment was not dropped")
	}
	if err := stuck.Cause(); !errors.Is(err, ErrTooSlow) || !strings.Contains(err.Error(), "missed") {
		t.Fatalf("cause %v, want too slow", err)
	}
	stuck.mu.Lock()
	held := len(stuck.buf)
	stuck.mu.Unlock()
	if held > 64<<10+noticeSlack {
		t.Fatalf("the stuck attachment holds %d bytes, over its bound", held)
	}

	// The second one was dropped too. Attach another that pauses
	// briefly, then reads: it is told how much it missed.
	if lagger.Cause() == nil {
		t.Fatal("lagger not dropped")
	}
	pauser, err := c.Attach(Identity{User: "bob", Via: "test"}, AttachOptions{})
	must(t, err)
	must(t, s.Stream(ctx, 0, 64<<10))
	waitFor(t, "lagging", 10*time.Second, func() bool {
		for _, w := range c.Who() {
			if w.User == "bob" && w.Missed > 0 {
				return true
			}
		}
		return false
	})
	rp := readAll(pauser)
	s.HostWrite([]byte("after the pause\r\n"))
	rp.wait(t, "after the pause", 10*time.Second)
	m := regexp.MustCompile(`you missed (\d+) bytes of output`).FindStringSubmatch(rp.text())
	if m == nil {
		t.Fatalf("no missed-bytes notice: %q", tailStr(rp.text(), 300))
	}
	n, _ := strconv.Atoi(m[1])
	if got := len(rp.text()); n <= 0 || n+got < 64<<10 {
		t.Fatalf("missed %d + read %d < the %d bytes printed", n, got, 64<<10)
	}
	if log := logText(t, e.store, "node1"); !strings.Contains(log, fmt.Sprintf("! detach carol via test (ro) #%d: node1: dropped: too slow: missed", stuck.seq)) {
		t.Fatalf("no detach event for the stuck attachment")
	}
	fast.Close()
	pauser.Close()
}

var noticeRE = regexp.MustCompile(`\r\n\[[^\]\r\n]*\]\r\n`)

// stripNotices removes solgate's notices from what an attachment read.
func stripNotices(s string) string { return noticeRE.ReplaceAllString(s, "") }

func firstDiff(a, b string) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}
