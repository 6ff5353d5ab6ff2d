package syslog_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/solgate/solgate/logstore/syslog"
)

// readFrame reads one octet-counted message (RFC 6587 3.4.1).
func readFrame(r *bufio.Reader) ([]byte, error) {
	n, err := r.ReadString(' ')
	if err != nil {
		return nil, err
	}
	size, err := strconv.Atoi(n[:len(n)-1])
	if err != nil || size <= 0 || size > 1<<20 {
		return nil, fmt.Errorf("bad frame length %q", n)
	}
	msg := make([]byte, size)
	_, err = io.ReadFull(r, msg)
	return msg, err
}

var seqRE = regexp.MustCompile(`seq="(\d+)"`)

// TestTCPResetLosesNothing: a receiver that stops reading, so that its
// kernel acknowledges bytes the program never reads, and then closes (the
// kernel resets the connection and throws those bytes away, as rsyslog
// does when it is stopped) loses no line: what it had not read is sent
// again on the next connection. Lines it did read may come twice, with
// their first sequence number.
func TestTCPResetLosesNothing(t *testing.T) {
	const lines = 3000
	store := openStore(t, t.TempDir())
	w := mustWriter(t, store, "n1")
	for i := range lines {
		fmt.Fprintf(w, "line %05d of a console that prints quite a lot of text so the receive buffer fills\r\n", i)
	}
	w.Flush()

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	got := map[int]int{}
	done := make(chan error, 1)
	go func() {
		// First connection: read 200 messages, stop reading while the
		// shipper keeps sending (the kernel acknowledges into the
		// receive buffer), then close with those bytes unread.
		c, err := ln.Accept()
		if err != nil {
			done <- err
			return
		}
		r := bufio.NewReaderSize(c, 512)
		for range 200 {
			msg, err := readFrame(r)
			if err != nil {
				done <- fmt.Errorf("first connection: %v", err)
				return
			}
			m := seqRE.FindSubmatch(msg)
			n, _ := strconv.Atoi(string(m[1]))
			got[n]++
		}
		time.Sleep(1500 * time.Millisecond) // the shipper looks at what is acknowledged meanwhile
		c.Close()                           // unread bytes: the kernel sends a reset
		// Second connection: read everything.
		c, err = ln.Accept()
		if err != nil {
			done <- err
			return
		}
		defer c.Close()
		c.SetReadDeadline(time.Now().Add(30 * time.Second))
		r = bufio.NewReader(c)
		for len(got) < lines {
			msg, err := readFrame(r)
			if err != nil {
				done <- fmt.Errorf("second connection, %d of %d lines: %v", len(got), lines, err)
				return
			}
			m := seqRE.FindSubmatch(msg)
			n, _ := strconv.Atoi(string(m[1]))
			got[n]++
		}
		done <- nil
	}()

	startShipper(t, store, t.TempDir(), syslog.Target{Network: "tcp", Address: ln.Addr().String(), Facility: 16, Backfill: true})
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= lines; i++ {
		if got[i] == 0 {
			t.Fatalf("line with seq %d never arrived (%d distinct of %d)", i, len(got), lines)
		}
	}
}

// TestLongOpenLineDoesNotStopTarget: a console printing far more than a
// window of message parts without a line end (a BIOS screen, binary
// junk) must not stop the target: the other consoles' lines still
// arrive. (The parts carry no position, so the window once waited for a
// save that never came.)
func TestLongOpenLineDoesNotStopTarget(t *testing.T) {
	store := openStore(t, t.TempDir())
	w1 := mustWriter(t, store, "n1")
	junk := make([]byte, 200<<10)
	for i := range junk {
		junk[i] = 'a' + byte(i%26)
	}
	w1.Write(junk) // no line end
	w1.Flush()
	pc := udpReceiver(t)
	startShipper(t, store, t.TempDir(), syslog.Target{Network: "udp", Address: pc.LocalAddr().String(), Facility: 16, Backfill: true, Window: 8})
	time.Sleep(200 * time.Millisecond)
	w2 := mustWriter(t, store, "n2")
	fmt.Fprintf(w2, "the other console's line\r\n")
	w2.Flush()
	buf := make([]byte, 64<<10)
	deadline := time.Now().Add(10 * time.Second)
	parts := 0
	for time.Now().Before(deadline) {
		pc.SetReadDeadline(deadline)
		n, _, err := pc.ReadFrom(buf)
		if err != nil {
			break
		}
		if regexp.MustCompile(`the other console's line`).Match(buf[:n]) {
			if parts < 8 {
				t.Fatalf("n2's line came after only %d of n1's parts", parts)
			}
			return
		}
		parts++
	}
	t.Fatalf("n2's line never arrived (%d of n1's parts did)", parts)
}
