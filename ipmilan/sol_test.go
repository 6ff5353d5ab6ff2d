package ipmilan_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/solgate/solgate/ipmilan"
	"github.com/solgate/solgate/ipmilan/bmcsim"
)

func dialSOL(t *testing.T, addr string, o ipmilan.SOLOptions, cfg ipmilan.Config) *ipmilan.SOL {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cfg.Addr, cfg.User, cfg.Password = addr, "admin", ipmilan.Secret("secret")
	c, err := ipmilan.DialSOL(ctx, cfg, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestSOLBothWays(t *testing.T) {
	bmc, addr := startBMC(t, bmcsim.Config{PowerOn: true, SOL: bmcsim.SOLConfig{NoBootText: true}})
	c := dialSOL(t, addr, ipmilan.SOLOptions{}, ipmilan.Config{})
	in := bytes.Repeat([]byte("typed 0123456789\r"), 500)
	if _, err := c.Write(in); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !bytes.Contains(bmc.HostInput(), in) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if !bytes.Equal(bmc.HostInput(), in) {
		t.Fatalf("host got %d bytes, want %d", len(bmc.HostInput()), len(in))
	}
	bmc.HostWrite([]byte("\x1b[2J\x1b[1;1HBIOS\r\nno newline at the end"))
	want := "\x1b[2J\x1b[1;1HBIOS\r\nno newline at the end"
	// The host echoes input first; read until the output has come.
	var got []byte
	buf := make([]byte, 4096)
	timer := time.AfterFunc(10*time.Second, func() { c.Close() })
	defer timer.Stop()
	for !bytes.Contains(got, []byte(want)) {
		n, err := c.Read(buf)
		if err != nil {
			t.Fatalf("console output so far %q: %v", got, err)
		}
		got = append(got, buf[:n]...)
	}
	if !bytes.HasPrefix(got, bytes.ReplaceAll(in, []byte("\r"), []byte("\r\n"))) {
		t.Errorf("echo of the typed input missing or altered")
	}
	if err := c.Break(context.Background()); err != nil {
		t.Fatalf("break: %v", err)
	}
	if n := bmc.Stats().SOLBreaks; n != 1 {
		t.Fatalf("BMC saw %d breaks, want 1", n)
	}
}

func TestSOLDeactivatedByBMC(t *testing.T) {
	bmc, addr := startBMC(t, bmcsim.Config{SOL: bmcsim.SOLConfig{NoBootText: true}})
	before := runtime.NumGoroutine()
	c := dialSOL(t, addr, ipmilan.SOLOptions{}, ipmilan.Config{})
	bmc.DeactivateSOL()
	waitEvent(t, c, ipmilan.SOLDeactivated)
	if _, err := io.ReadAll(c); !errors.Is(err, ipmilan.ErrSOLDeactivated) {
		t.Fatalf("read after deactivation: %v", err)
	}
	c.Close()
	noLeak(t, before)
}

func TestSOLStolen(t *testing.T) {
	bmc, addr := startBMC(t, bmcsim.Config{SOL: bmcsim.SOLConfig{NoBootText: true}})
	c := dialSOL(t, addr, ipmilan.SOLOptions{}, ipmilan.Config{})
	// A second client without Steal is refused; with Steal it wins.
	ctx := context.Background()
	_, err := ipmilan.DialSOL(ctx, ipmilan.Config{Addr: addr, User: "admin", Password: ipmilan.Secret("secret")}, ipmilan.SOLOptions{})
	if !errors.Is(err, ipmilan.ErrSOLActive) {
		t.Fatalf("second client without steal: %v", err)
	}
	thief := dialSOL(t, addr, ipmilan.SOLOptions{Steal: true}, ipmilan.Config{})
	if n := bmc.Stats().SOLSteals; n != 1 {
		t.Fatalf("BMC counted %d steals, want 1", n)
	}
	ev := waitEvent(t, c, ipmilan.SOLStolen, ipmilan.SOLDeactivated)
	t.Logf("first client saw: %v %s", ev.Kind, ev.Detail)
	if thief.Err() != nil {
		t.Fatalf("thief's console ended: %v", thief.Err())
	}
}

// TestSOLStealFrom: a payload held by a known session (one's own, left by
// a killed process) is taken with StealFrom; any other holder is not, and
// the refusal names the holder.
func TestSOLStealFrom(t *testing.T) {
	_, addr := startBMC(t, bmcsim.Config{SOL: bmcsim.SOLConfig{NoBootText: true}})
	stale := dialSOL(t, addr, ipmilan.SOLOptions{}, ipmilan.Config{})
	staleID := stale.Session().ID()
	if staleID == 0 {
		t.Fatal("session ID is 0")
	}
	cfg := ipmilan.Config{Addr: addr, User: "admin", Password: ipmilan.Secret("secret")}
	_, err := ipmilan.DialSOL(context.Background(), cfg, ipmilan.SOLOptions{StealFrom: staleID + 1})
	var active *ipmilan.SOLActiveError
	if !errors.As(err, &active) || !errors.Is(err, ipmilan.ErrSOLActive) || active.Owner != staleID {
		t.Fatalf("StealFrom another session: %v (want SOLActiveError naming %#x)", err, staleID)
	}
	c := dialSOL(t, addr, ipmilan.SOLOptions{StealFrom: staleID}, ipmilan.Config{})
	waitEvent(t, stale, ipmilan.SOLStolen, ipmilan.SOLDeactivated)
	if c.Err() != nil {
		t.Fatalf("new console ended: %v", c.Err())
	}
}

func TestSOLAltPort(t *testing.T) {
	// The BMC names another UDP port for SOL in Activate Payload and
	// serves the protocol there too: DialSOL redoes the session there.
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	alt := pc.LocalAddr().(*net.UDPAddr).Port
	pc.Close()
	bmc, addr := startBMC(t, bmcsim.Config{PowerOn: true, SOL: bmcsim.SOLConfig{NoBootText: true, Port: uint16(alt)}})
	c := dialSOL(t, addr, ipmilan.SOLOptions{}, ipmilan.Config{})
	if want := net.JoinHostPort("127.0.0.1", strconv.Itoa(alt)); c.Session().Addr() != want {
		t.Fatalf("SOL session on %s, want the alternate %s", c.Session().Addr(), want)
	}
	bmc.HostWrite([]byte("via the alternate port\r\n"))
	buf := make([]byte, 64)
	n, err := io.ReadAtLeast(c, buf, len("via the alternate port"))
	if err != nil || !bytes.Contains(buf[:n], []byte("via the alternate port")) {
		t.Fatalf("read %q, %v", buf[:n], err)
	}
	// With IgnoreAltPort the console stays on the session's port.
	c2, err := ipmilan.DialSOL(context.Background(), ipmilan.Config{Addr: addr, User: "admin", Password: ipmilan.Secret("secret")},
		ipmilan.SOLOptions{IgnoreAltPort: true, Steal: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	if c2.Session().Addr() != addr {
		t.Fatalf("IgnoreAltPort: SOL on %s, want %s", c2.Session().Addr(), addr)
	}
}

func waitEvent(t *testing.T, c *ipmilan.SOL, kinds ...ipmilan.SOLEventKind) ipmilan.SOLEvent {
	t.Helper()
	timeout := time.After(20 * time.Second)
	for {
		select {
		case ev, ok := <-c.Events():
			if !ok {
				t.Fatalf("events closed without %v (console error %v)", kinds, c.Err())
			}
			for _, k := range kinds {
				if ev.Kind == k {
					return ev
				}
			}
		case <-timeout:
			t.Fatalf("no %v event within 20s", kinds)
		}
	}
}

func noLeak(t *testing.T, before int) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		buf := make([]byte, 1<<16)
		t.Fatalf("%d goroutines, %d before:\n%s", n, before, buf[:runtime.Stack(buf, true)])
	}
}

// BenchmarkSOLThroughput: one console at bmcsim's fastest rate, clean and
// through 10% loss (plus duplication and reordering) each way; every byte
// must arrive, in order.
func BenchmarkSOLThroughput(b *testing.B) {
	for _, tc := range []struct {
		name   string
		faults bmcsim.Faults
	}{
		{"clean", bmcsim.Faults{}},
		{"10pct-loss", bmcsim.Faults{Seed: 5, DropRequests: 0.1, Drop: 0.1, Duplicate: 0.05, Reorder: 0.05}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			bmc := bmcsim.New(bmcsim.Config{Users: []bmcsim.User{{Name: "admin", Password: "secret"}},
				SOL: bmcsim.SOLConfig{NoBootText: true, RetryInterval: 5 * time.Millisecond, Retries: 1000}})
			pc, err := net.ListenPacket("udp", "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			go bmc.Serve(ctx, pc)
			defer pc.Close()
			c, err := ipmilan.DialSOL(ctx, ipmilan.Config{Addr: pc.LocalAddr().String(), User: "admin", Password: ipmilan.Secret("secret")},
				ipmilan.SOLOptions{})
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			bmc.SetFaults(tc.faults)
			const total = 1 << 20
			b.SetBytes(total)
			buf := make([]byte, 64<<10)
			b.ResetTimer()
			for range b.N {
				go bmc.Stream(ctx, 0, total)
				for got := 0; got < total; {
					n, err := c.Read(buf)
					if err != nil {
						b.Fatal(err)
					}
					got += n
				}
			}
			b.StopTimer()
			if st := c.Stats(); st.BytesIn != uint64(b.N)*total || st.Gaps != 0 || st.Overruns != 0 {
				b.Fatalf("lost or extra output: %+v", st)
			}
		})
	}
}

// TestSOLCloseAcksTaken: closing a console that prints while its ACK
// waits for the pace (the characters are taken, the BMC not yet told)
// answers that packet before the payload is deactivated, and takes no
// output after. Otherwise the BMC keeps those characters for the next
// session, which prints them again: reconnects (reloads, steals,
// restarts) doubled output in the log.
func TestSOLCloseAcksTaken(t *testing.T) {
	t.Run("paced", func(t *testing.T) { testSOLCloseAcksTaken(t, false) })
	t.Run("busy", func(t *testing.T) { testSOLCloseAcksTaken(t, true) })
}

func testSOLCloseAcksTaken(t *testing.T, fast bool) {
	bmc, addr := startBMC(t, bmcsim.Config{PowerOn: true, SOL: bmcsim.SOLConfig{NoBootText: true}})
	// A network delay widens the window in which the BMC's next packet
	// crosses the deactivation (taken, it would be printed twice as well).
	if err := bmc.SetFaults(bmcsim.Faults{Delay: 5 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// 3,000 B/s: packets of 30-60 characters, each answered 20 ms after
	// the last, so an ACK nearly always waits; 20,000 B/s: the BMC always
	// has a packet to send, and sends it as soon as an ACK comes.
	rate := 3000
	if fast {
		rate = 20000
	}
	go bmc.Stream(ctx, rate, 1<<30)
	var got []byte
	buf := make([]byte, 4096)
	for round := range 8 {
		c := dialSOL(t, addr, ipmilan.SOLOptions{}, ipmilan.Config{})
		for until := time.Now().Add(150 * time.Millisecond); time.Now().Before(until); {
			n, err := c.Read(buf)
			if err != nil {
				t.Fatalf("round %d: %v", round, err)
			}
			got = append(got, buf[:n]...)
		}
		c.Close()
		for { // what was taken before the close
			n, err := c.Read(buf)
			got = append(got, buf[:n]...)
			if err != nil {
				break
			}
		}
	}
	want := bmcsim.AppendStreamText(nil, 0, len(got))
	if !bytes.Equal(got, want) {
		i := 0
		for i < len(got) && got[i] == want[i] {
			i++
		}
		t.Fatalf("over 8 sessions the console printed %d bytes, different from the stream at %d: %q, want %q",
			len(got), i, got[i:min(len(got), i+40)], want[i:min(len(want), i+40)])
	}
	if len(got) < 8*200 {
		t.Fatalf("only %d bytes in 8 sessions", len(got))
	}
}

// TestSOLSetOutput: after SetOutput the console's output goes to the
// function, whole and in order, starting with what was buffered before;
// Read hands out none of it and returns the end only after the last
// output went to the function.
func TestSOLSetOutput(t *testing.T) {
	bmc, addr := startBMC(t, bmcsim.Config{PowerOn: true, SOL: bmcsim.SOLConfig{NoBootText: true}})
	c := dialSOL(t, addr, ipmilan.SOLOptions{}, ipmilan.Config{})
	const total = 200_000
	streamed := make(chan error, 1)
	go func() { streamed <- bmc.Stream(context.Background(), 0, total) }()
	buf := make([]byte, 1000)
	n, err := c.Read(buf) // some output read the old way first
	if err != nil {
		t.Fatal(err)
	}
	got := append([]byte(nil), buf[:n]...)
	time.Sleep(20 * time.Millisecond) // more is buffered when SetOutput comes
	var (
		mu      sync.Mutex
		sinkGot []byte
	)
	c.SetOutput(func(p []byte) {
		mu.Lock()
		sinkGot = append(sinkGot, p...)
		mu.Unlock()
	})
	mu.Lock()
	first := len(sinkGot)
	mu.Unlock()
	if first == 0 {
		t.Errorf("nothing buffered went to the function before SetOutput returned")
	}
	if err := <-streamed; err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		k := len(got) + len(sinkGot)
		mu.Unlock()
		if k >= total || time.Now().After(deadline) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	readDone := make(chan error, 1)
	go func() {
		n, err := c.Read(buf)
		if n > 0 {
			err = fmt.Errorf("Read returned %d bytes of output after SetOutput", n)
		}
		readDone <- err
	}()
	c.Close()
	if err := <-readDone; !errors.Is(err, ipmilan.ErrClosed) {
		t.Errorf("Read after Close: %v, want ErrClosed", err)
	}
	mu.Lock()
	got = append(got, sinkGot...)
	mu.Unlock()
	if want := bmcsim.AppendStreamText(nil, 0, total); !bytes.Equal(got, want) {
		i := 0
		for i < len(got) && i < len(want) && got[i] == want[i] {
			i++
		}
		t.Fatalf("got %d bytes, want %d; they differ at %d", len(got), len(want), i)
	}
}
