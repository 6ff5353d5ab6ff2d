package test

import (
	"bufio"
	"fmt"
	"net"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/leodido/go-syslog/v4/rfc5424"

	"github.com/solgate/solgate/logstore"
	"github.com/solgate/solgate/logstore/syslog"
)

// consoleScript is what the test consoles print: raw bytes, and what
// syslog must receive for them (msgid, severity, text).
type shipped struct {
	msgid string
	sev   int
	text  string
}

func printScript(w *logstore.Writer, console string, from, n int) []shipped {
	var want []shipped
	for i := from; i < from+n; i++ {
		switch i % 10 {
		case 3:
			fmt.Fprintf(w, "\x1b[1;31m[%6d.000] Kernel panic - not syncing: test %s %d\x1b[0m\r\n", i, console, i)
			want = append(want, shipped{"console", 2, fmt.Sprintf("[%6d.000] Kernel panic - not syncing: test %s %d", i, console, i)})
		case 5:
			w.Write([]byte(fmt.Sprintf("%s login: ", console)))
			w.Write([]byte(fmt.Sprintf("user%d\r\n", i)))
			want = append(want, shipped{"console", 6, fmt.Sprintf("%s login: user%d", console, i)})
		case 7:
			w.Event(logstore.EventPower, fmt.Sprintf("cycle %d by alice: ok", i))
			want = append(want, shipped{"power", 5, fmt.Sprintf("cycle %d by alice: ok", i)})
		case 9:
			// The store writes gap events itself (disk full, crash); one
			// written here takes the same path to syslog.
			w.Event(logstore.EventGap, fmt.Sprintf("%d bytes lost until 2026-11-23T10:01:09.400Z: no space left on device", i))
			want = append(want, shipped{"gap", 4, fmt.Sprintf("%d bytes lost until 2026-11-23T10:01:09.400Z: no space left on device", i)})
		default:
			fmt.Fprintf(w, "\x1b[0;32m  OK  \x1b[0m] line %d of %s with ünïcode\r\n", i, console)
			want = append(want, shipped{"console", 6, fmt.Sprintf("  OK  ] line %d of %s with ünïcode", i, console)})
		}
	}
	return want
}

func openStore(t testing.TB, dir string) *logstore.Store {
	t.Helper()
	s, err := logstore.Open(dir, logstore.Options{FlushInterval: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// checkReceived checks what one input got for each console: exactly want,
// in order, with HOSTNAME, MSGID, severity and consecutive sequence
// numbers.
func checkReceived(t *testing.T, got []rsyslogLine, input string, want map[string][]shipped, facility int) {
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
			t.Errorf("%s: %s: %d messages, want %d", input, console, len(ls), len(ws))
			continue
		}
		for i, w := range ws {
			l := ls[i]
			pri, _ := strconv.Atoi(l.Pri)
			if l.Msg != w.text || l.MsgID != w.msgid || pri != facility*8+w.sev || l.App != "solgate" {
				t.Errorf("%s: %s message %d: got pri=%s msgid=%s app=%s %q, want pri=%d msgid=%s %q",
					input, console, i, l.Pri, l.MsgID, l.App, l.Msg, facility*8+w.sev, w.msgid, w.text)
				break
			}
			if seq := sdParam(l.SD, "seq"); seq != strconv.Itoa(i+1) || sdParam(l.SD, "console") != console {
				t.Errorf("%s: %s message %d: structured data %s, want seq=%d", input, console, i, l.SD, i+1)
				break
			}
		}
	}
}

func countInput(ls []rsyslogLine, input string) int {
	n := 0
	for _, l := range ls {
		if l.Input == input {
			n++
		}
	}
	return n
}

// TestSyslogRsyslogTransports ships two consoles to a real rsyslog over
// UDP, TCP, TLS (certificate checked against the test's CA) and RELP,
// RFC 5424, and over UDP as RFC 3164, and checks that rsyslog got exactly
// the lines the log store holds, stripped.
func TestSyslogRsyslogTransports(t *testing.T) {
	rs := newRsyslog(t)
	store := openStore(t, t.TempDir())
	consoles := []string{"node01", "node02"}
	writers := map[string]*logstore.Writer{}
	for _, c := range consoles {
		w, err := store.Writer(c)
		if err != nil {
			t.Fatal(err)
		}
		writers[c] = w
	}
	sh := syslog.NewShipper(store, t.TempDir(), nil)
	defer sh.Close()
	const fac = 19 // local3
	targets := []syslog.Target{
		{Network: "udp", Address: rs.udp, Facility: fac},
		{Network: "tcp", Address: rs.tcp, Facility: fac},
		{Network: "tls", Address: rs.tls, Facility: fac, CAFile: rs.caFile},
		{Network: "relp", Address: rs.relp, Facility: fac},
		{Name: "legacy", Network: "udp", Address: rs.udp, Facility: 16, Format: syslog.RFC3164, Ships: func(c string) bool { return c == "node01" }, Consoles: "node01"},
	}
	if err := sh.Apply(targets); err != nil {
		t.Fatal(err)
	}
	want := map[string][]shipped{}
	for _, c := range consoles {
		want[c] = printScript(writers[c], c, 0, 40)
	}
	total := 0
	for _, ws := range want {
		total += len(ws)
	}
	// UDP twice (5424 for both consoles, 3164 for node01).
	all := rs.waitLines(60*time.Second, func(ls []rsyslogLine) bool {
		return countInput(ls, "tcp") >= total && countInput(ls, "tls") >= total && countInput(ls, "relp") >= total &&
			countInput(ls, "udp") >= total+len(want["node01"])
	})
	var u5424, u3164 []rsyslogLine
	for _, l := range all {
		if l.Input == "udp" && l.Ver == "1" {
			u5424 = append(u5424, l)
		} else if l.Input == "udp" {
			u3164 = append(u3164, l)
		}
	}
	for _, in := range []string{"tcp", "tls", "relp"} {
		checkReceived(t, all, in, want, fac)
	}
	checkReceived(t, u5424, "udp", want, fac)
	// RFC 3164: no MSGID or structured data; events read "! kind text".
	if len(u3164) != len(want["node01"]) {
		t.Fatalf("rfc3164: %d messages, want %d", len(u3164), len(want["node01"]))
	}
	for i, w := range want["node01"] {
		l := u3164[i]
		text := w.text
		if w.msgid != "console" {
			text = "! " + w.msgid + " " + text
		}
		pri, _ := strconv.Atoi(l.Pri)
		if l.Host != "node01" || l.App != "solgate" || strings.TrimPrefix(l.Msg, " ") != text || pri != 16*8+w.sev {
			t.Fatalf("rfc3164 message %d: %+v, want %q pri %d", i, l, text, 16*8+w.sev)
		}
	}
	st := sh.Stats()
	for _, s := range st {
		if s.Sent == 0 || !s.Connected {
			t.Errorf("stats %+v: nothing sent or not connected", s)
		}
	}
}

// TestSyslogLocalSocket ships to a unix datagram socket and a unix
// stream socket the test listens on, checked with go-syslog's parser.
func TestSyslogLocalSocket(t *testing.T) {
	dir := t.TempDir()
	store := openStore(t, filepath.Join(dir, "log"))
	w, err := store.Writer("node07")
	if err != nil {
		t.Fatal(err)
	}
	dgram, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: filepath.Join(dir, "dgram.sock"), Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer dgram.Close()
	stream, err := net.Listen("unix", filepath.Join(dir, "stream.sock"))
	if err != nil {
		t.Fatal(err)
	}
	defer stream.Close()
	var mu sync.Mutex
	got := map[string][]string{}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		buf := make([]byte, 65536)
		for {
			n, err := dgram.Read(buf)
			if err != nil {
				return
			}
			mu.Lock()
			got["dgram"] = append(got["dgram"], string(buf[:n]))
			mu.Unlock()
		}
	}()
	go func() {
		defer wg.Done()
		c, err := stream.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		sc := bufio.NewScanner(c)
		for sc.Scan() {
			mu.Lock()
			got["stream"] = append(got["stream"], sc.Text())
			mu.Unlock()
		}
	}()
	sh := syslog.NewShipper(store, filepath.Join(dir, "state"), nil)
	if err := sh.Apply([]syslog.Target{
		{Network: "unix", Address: filepath.Join(dir, "dgram.sock"), Facility: 1},
		{Network: "unix", Address: filepath.Join(dir, "stream.sock"), Facility: 1},
	}); err != nil {
		t.Fatal(err)
	}
	want := printScript(w, "node07", 0, 20)
	deadline := time.Now().Add(30 * time.Second)
	for {
		mu.Lock()
		done := len(got["dgram"]) >= len(want) && len(got["stream"]) >= len(want)
		mu.Unlock()
		if done || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	sh.Close()
	dgram.Close()
	stream.Close()
	wg.Wait()
	p := rfc5424.NewParser()
	for _, kind := range []string{"dgram", "stream"} {
		if len(got[kind]) != len(want) {
			t.Fatalf("%s: %d messages, want %d", kind, len(got[kind]), len(want))
		}
		for i, m := range got[kind] {
			msg, err := p.Parse([]byte(m))
			if err != nil {
				t.Fatalf("%s: go-syslog rejects %q: %v", kind, m, err)
			}
			sm := msg.(*rfc5424.SyslogMessage)
			if *sm.Hostname != "node07" || *sm.MsgID != want[i].msgid || *sm.Message != want[i].text || int(*sm.Severity) != want[i].sev {
				t.Fatalf("%s message %d: %q, want %+v", kind, i, m, want[i])
			}
		}
	}
	if !slices.Equal(got["dgram"], got["stream"]) {
		t.Fatal("datagram and stream sockets got different messages")
	}
}
