package test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/solgate/solgate/ipmilan"
)

// TestIPMISimSOL: our SOL client against OpenIPMI's ipmi_sim SOL, bytes
// checked both ways (ipmi_sim's serial side is a TCP socket this test
// drives).
func TestIPMISimSOL(t *testing.T) {
	sim, serial := startIPMISimSOL(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c, err := ipmilan.DialSOL(ctx, ipmilan.Config{Addr: sim.Addr, User: "admin", Password: ipmilan.Secret("secret"), CipherSuite: 3}, ipmilan.SOLOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	// Node output -> client: a numbered stream well over one packet.
	var want bytes.Buffer
	for i := range 2000 {
		fmt.Fprintf(&want, "line %05d \x1b[1mbold\x1b[0m\r\n", i)
	}
	go func() { serial.Write(want.Bytes()) }()
	got := make([]byte, want.Len())
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatalf("read %d bytes: %v (stats %+v)", want.Len(), err, c.Stats())
	}
	if !bytes.Equal(got, want.Bytes()) {
		t.Fatalf("console output differs (stats %+v)", c.Stats())
	}

	// Client input -> node, larger than ipmi_sim's 32-byte inbound buffer.
	in := bytes.Repeat([]byte("typed input 0123456789 "), 40)
	if _, err := c.Write(in); err != nil {
		t.Fatal(err)
	}
	serial.SetReadDeadline(time.Now().Add(30 * time.Second))
	gotIn := make([]byte, len(in))
	if _, err := io.ReadFull(serial, gotIn); err != nil {
		t.Fatalf("node received %v (stats %+v)", err, c.Stats())
	}
	if !bytes.Equal(gotIn, in) {
		t.Fatalf("node input differs:\n got %q\nwant %q", gotIn, in)
	}
	// The last acknowledgement may still be on its way.
	st := c.Stats()
	for deadline := time.Now().Add(5 * time.Second); st.BytesOut < uint64(len(in)) && time.Now().Before(deadline); st = c.Stats() {
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("stats: %+v", st)
	if st.BytesIn != uint64(want.Len()) || st.BytesOut != uint64(len(in)) {
		t.Errorf("counters: in %d out %d, want %d and %d", st.BytesIn, st.BytesOut, want.Len(), len(in))
	}
}

// TestIPMISimSOLOutlivesSessionTimeout: ipmi_sim ends RMCP+ sessions 30 s
// after the last IPMI (not SOL) message, however much SOL flows; clients
// that only exchange SOL lose the console there (ConMan's logs just stop).
// Our keepalives go by the last IPMI answer, so 35 s of continuous output
// must arrive whole.
func TestIPMISimSOLOutlivesSessionTimeout(t *testing.T) {
	if testing.Short() {
		t.Skip("takes 35 s")
	}
	t.Parallel()
	sim, serial := startIPMISimSOL(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	c, err := ipmilan.DialSOL(ctx, ipmilan.Config{Addr: sim.Addr, User: "admin", Password: ipmilan.Secret("secret"), CipherSuite: 3}, ipmilan.SOLOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var want bytes.Buffer
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 700 { // 35 s at 20 lines a second
			line := fmt.Sprintf("t+%05dms line %04d\r\n", i*50, i)
			want.WriteString(line)
			serial.Write([]byte(line))
			time.Sleep(50 * time.Millisecond)
		}
	}()
	<-done
	// A console that died silently would block Read for ever: bound it.
	watchdog := time.AfterFunc(20*time.Second, func() { c.Close() })
	defer watchdog.Stop()
	got := make([]byte, want.Len())
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatalf("after %d bytes: %v (stats %+v)", want.Len(), err, c.Stats())
	}
	if !bytes.Equal(got, want.Bytes()) {
		t.Fatalf("35 s of output differs at byte %d", firstDifference(got, want.Bytes()))
	}
	if c.Err() != nil {
		t.Fatalf("console ended: %v", c.Err())
	}
}

func firstDifference(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// TestIPMISimSOLSlowReader: flow control against ipmi_sim with a 100-byte
// read buffer and a reader taking 100 bytes every 100 ms that stalls for
// 6 s midway. ipmi_sim resends the rest of a partly acknowledged packet at
// once in a new packet, and throws its buffer away after four unanswered
// resends a second apart, after which its console can stay dead (quirks 7
// and 8). Every byte must arrive, in order, and the pauses must cost a
// bounded number of packets per second: before, each full-buffer ACK of
// 0 characters drew the next packet at once (70,330 packets each way in
// 4.8 s for 3,600 bytes).
func TestIPMISimSOLSlowReader(t *testing.T) {
	t.Parallel()
	sim, serial := startIPMISimSOL(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c, err := ipmilan.DialSOL(ctx, ipmilan.Config{Addr: sim.Addr, User: "admin", Password: ipmilan.Secret("secret"), CipherSuite: 3},
		ipmilan.SOLOptions{BufferSize: 100})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var want bytes.Buffer
	for i := range 120 {
		fmt.Fprintf(&want, "slow reader line %04d ......\r\n", i) // 30 bytes
	}
	go func() { serial.Write(want.Bytes()) }()
	watchdog := time.AfterFunc(45*time.Second, func() { c.Close() })
	defer watchdog.Stop()
	got := make([]byte, 0, want.Len())
	buf := make([]byte, 100)
	start := time.Now()
	stalled := false
	for len(got) < want.Len() {
		if !stalled && len(got) >= want.Len()/2 {
			stalled = true
			time.Sleep(6 * time.Second)
		}
		time.Sleep(100 * time.Millisecond)
		n, err := c.Read(buf)
		if err != nil {
			t.Fatalf("after %d of %d bytes: %v (stats %+v)", len(got), want.Len(), err, c.Stats())
		}
		got = append(got, buf[:n]...)
	}
	elapsed := time.Since(start)
	if !bytes.Equal(got, want.Bytes()) {
		t.Fatalf("output differs at byte %d (stats %+v)", firstDifference(got, want.Bytes()), c.Stats())
	}
	st := c.Stats()
	// ipmi_sim sends at most 255 bytes a packet (it reads its serial side
	// 128 bytes at a time), at least 29 packets for 3,600 bytes; each
	// pause costs a packet each way per half second of waiting.
	budget := uint64(3600/100 + 4*int(elapsed.Seconds()+1))
	t.Logf("%v, stats %+v, budget %d packets each way", elapsed.Round(time.Millisecond), st, budget)
	if st.PacketsIn > budget || st.PacketsOut > budget {
		t.Fatalf("flow control cost %d packets in, %d out in %v; want at most %d each", st.PacketsIn, st.PacketsOut, elapsed, budget)
	}
	if st.Pauses == 0 {
		t.Fatalf("no pause although the reader stalled 6 s: the buffer bound was not exercised")
	}
	if st.Gaps != 0 || st.Overruns != 0 {
		t.Fatalf("ipmi_sim lost output: %+v", st)
	}
}

// TestIPMISimSOLAckPace: the ACK pacing against a real BMC. The node
// prints about 10 kB/s in 40-byte writes for 3 s, then the same text at
// once. With every packet answered at once ipmi_sim sends each write as a
// packet of its own; paced (the default), it puts what came meanwhile into
// its next packet: every byte arrives in order, in at most three quarters
// of the packets, and no later (the backlog as fast as unpaced).
func TestIPMISimSOLAckPace(t *testing.T) {
	t.Parallel()
	var want bytes.Buffer
	for i := range 750 {
		fmt.Fprintf(&want, "paced line %05d .....................\r\n", i) // 40 bytes
	}
	run := func(pace time.Duration, steady bool) (ipmilan.SOLStats, time.Duration) {
		sim, serial := startIPMISimSOL(t)
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		c, err := ipmilan.DialSOL(ctx, ipmilan.Config{Addr: sim.Addr, User: "admin", Password: ipmilan.Secret("secret"), CipherSuite: 3},
			ipmilan.SOLOptions{AckPace: pace})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		go func() {
			if !steady {
				serial.Write(want.Bytes())
				return
			}
			for b := want.Bytes(); len(b) > 0; b = b[40:] {
				serial.Write(b[:40])
				time.Sleep(4 * time.Millisecond)
			}
		}()
		watchdog := time.AfterFunc(45*time.Second, func() { c.Close() })
		defer watchdog.Stop()
		t0 := time.Now()
		got := make([]byte, want.Len())
		if _, err := io.ReadFull(c, got); err != nil {
			t.Fatalf("pace %v: read: %v (stats %+v)", pace, err, c.Stats())
		}
		took := time.Since(t0)
		if !bytes.Equal(got, want.Bytes()) {
			t.Fatalf("pace %v: output differs at byte %d (stats %+v)", pace, firstDifference(got, want.Bytes()), c.Stats())
		}
		st := c.Stats()
		if st.Gaps != 0 || st.Overruns != 0 {
			t.Fatalf("pace %v: ipmi_sim lost output: %+v", pace, st)
		}
		return st, took
	}
	for _, steady := range []bool{true, false} {
		plain, plainTook := run(-1, steady)
		paced, pacedTook := run(0, steady)
		t.Logf("steady %v: %d bytes in %v and %d packets answered at once, %v and %d packets paced",
			steady, want.Len(), plainTook.Round(time.Millisecond), plain.PacketsIn, pacedTook.Round(time.Millisecond), paced.PacketsIn)
		if pacedTook > plainTook+time.Second {
			t.Errorf("steady %v: %v paced, %v unpaced: pacing slowed ipmi_sim", steady, pacedTook, plainTook)
		}
		if steady && paced.PacketsIn > plain.PacketsIn*3/4 {
			t.Errorf("steady output: %d packets paced, %d unpaced: want at most three quarters", paced.PacketsIn, plain.PacketsIn)
		}
	}
}
