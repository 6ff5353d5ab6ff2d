package bmcsim

import (
	"context"
	"net"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/solgate/solgate/ipmilan/internal/wire"
)

func TestFaultPlanDeterministic(t *testing.T) {
	f := Faults{Seed: 42, Drop: 0.2, Duplicate: 0.2, Reorder: 0.2, DelayJitter: time.Millisecond}
	run := func(f Faults) []sendPlan {
		s := newFaultState(f)
		var out []sendPlan
		for range 200 {
			out = append(out, s.plan())
		}
		return out
	}
	a, b := run(f), run(f)
	if !slices.Equal(a, b) {
		t.Fatal("same seed, different fault decisions")
	}
	f.Seed = 43
	if slices.Equal(a, run(f)) {
		t.Fatal("different seeds, same fault decisions")
	}
	var drops, dups int
	for _, p := range a {
		if p.drop {
			drops++
		}
		if p.copies == 2 {
			dups++
		}
	}
	if drops < 20 || drops > 60 || dups < 10 || dups > 60 {
		t.Fatalf("drops %d dups %d of 200 at p=0.2", drops, dups)
	}
}

func TestFaultsValidate(t *testing.T) {
	for _, f := range []Faults{{Drop: 1.5}, {Duplicate: -0.1}, {Delay: -1}, {Garbage: 9}} {
		if (&BMC{}).SetFaults(f) == nil {
			t.Errorf("%+v accepted", f)
		}
	}
}

// udpClient talks to a BMC served on loopback.
type udpClient struct {
	t  testing.TB
	pc net.PacketConn
	to net.Addr
}

func serveUDP(t testing.TB, b *BMC) *udpClient {
	t.Helper()
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Serve(ctx, pc) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
		pc.Close()
	})
	cl, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cl.Close() })
	return &udpClient{t: t, pc: cl, to: pc.LocalAddr()}
}

// exchange sends pkt and collects the answers: it waits up to 5 s
// for want of them, then briefly for unexpected extra ones.
func (u *udpClient) exchange(pkt []byte, want int) [][]byte {
	if _, err := u.pc.WriteTo(pkt, u.to); err != nil {
		u.t.Fatal(err)
	}
	return u.collect(want)
}

func (u *udpClient) collect(want int) [][]byte {
	var out [][]byte
	deadline := time.Now().Add(5 * time.Second)
	for {
		if len(out) >= want {
			deadline = time.Now().Add(30 * time.Millisecond)
		}
		u.pc.SetReadDeadline(deadline)
		buf := make([]byte, 2048)
		n, _, err := u.pc.ReadFrom(buf)
		if err != nil {
			return out
		}
		out = append(out, buf[:n])
	}
}

func authCapsPacket(seq uint8) []byte {
	req := wire.Request{RsAddr: 0x20, NetFn: wire.NetFnApp, RqAddr: 0x81, RqSeq: seq, Cmd: wire.CmdGetChannelAuthCaps, Data: []byte{0x8E, 4}}
	return wire.Session15{Message: req.Append(nil)}.Append(rmcpIPMI())
}

func rqSeqOf(t *testing.T, ans []byte) uint8 {
	t.Helper()
	_, rest, _ := wire.ParseRMCP(ans)
	s, err := wire.ParseSession15(rest)
	if err != nil {
		t.Fatal(err)
	}
	r, err := wire.ParseResponse(s.Message, true)
	if err != nil {
		t.Fatal(err)
	}
	return r.RqSeq
}

func TestFaultsOverUDP(t *testing.T) {
	b := newTestBMC(nil)
	u := serveUDP(t, b)
	send := u.exchange
	if n := len(send(authCapsPacket(1), 1)); n != 1 {
		t.Fatalf("no faults: %d answers", n)
	}

	must(t, b.SetFaults(Faults{Freeze: true}))
	if n := len(send(authCapsPacket(2), 0)); n != 0 {
		t.Fatalf("frozen BMC answered %d times", n)
	}
	must(t, b.SetFaults(Faults{Drop: 1}))
	if n := len(send(authCapsPacket(3), 0)); n != 0 {
		t.Fatalf("drop=1: %d answers", n)
	}
	must(t, b.SetFaults(Faults{DropRequests: 1}))
	if n := len(send(authCapsPacket(4), 0)); n != 0 {
		t.Fatalf("drop-requests=1: %d answers", n)
	}
	must(t, b.SetFaults(Faults{Duplicate: 1}))
	if out := send(authCapsPacket(5), 2); len(out) != 2 || string(out[0]) != string(out[1]) {
		t.Fatalf("duplicate=1: %d answers", len(out))
	}
	must(t, b.SetFaults(Faults{Delay: 60 * time.Millisecond}))
	start := time.Now()
	if out := send(authCapsPacket(6), 1); len(out) != 1 || time.Since(start) < 60*time.Millisecond {
		t.Fatalf("delay: %d answers after %v", len(out), time.Since(start))
	}
	must(t, b.SetFaults(Faults{Reorder: 1, ReorderHold: time.Second}))
	u.pc.WriteTo(authCapsPacket(7), u.to)
	u.pc.WriteTo(authCapsPacket(8), u.to)
	out := u.collect(2)
	if len(out) != 2 || rqSeqOf(t, out[0]) != 8 || rqSeqOf(t, out[1]) != 7 {
		t.Fatalf("reorder: %d answers", len(out))
	}
	must(t, b.SetFaults(Faults{Reorder: 1, ReorderHold: 10 * time.Millisecond}))
	if out := send(authCapsPacket(9), 1); len(out) != 1 {
		t.Fatalf("held answer not released: %d", len(out))
	}
	must(t, b.SetFaults(Faults{}))
	if n := len(send(authCapsPacket(10), 1)); n != 1 {
		t.Fatalf("faults cleared: %d answers", n)
	}
	if st := b.Stats(); st.FaultDrops != 2 || st.PacketsIn != 10 {
		t.Fatalf("stats %+v", st)
	}
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestGarbage(t *testing.T) {
	normal := newTestBMC(nil).handle(authCapsPacket(5), testRemote)[0]
	for _, g := range []GarbageKind{GarbageRandom, GarbageWrongSeq, GarbageBadChecksum, GarbageTruncated} {
		t.Run(g.String(), func(t *testing.T) {
			if k, err := ParseGarbageKind(g.String()); k != g || err != nil {
				t.Fatalf("ParseGarbageKind(%q) = %v, %v", g, k, err)
			}
			b := newTestBMC(func(c *Config) { c.Faults = Faults{Garbage: g, Seed: 1} })
			out := b.handle(authCapsPacket(5), testRemote)
			if len(out) != 1 {
				t.Fatalf("%d answers", len(out))
			}
			ans := out[0]
			_, rest, _ := wire.ParseRMCP(ans)
			s, sErr := wire.ParseSession15(rest)
			switch g {
			case GarbageRandom, GarbageTruncated:
				if len(ans) >= len(normal) && g == GarbageTruncated || sErr == nil && string(ans) == string(normal) {
					t.Fatalf("answer not corrupted: %x", ans)
				}
			case GarbageWrongSeq:
				r, err := wire.ParseResponse(s.Message, true)
				if err != nil || r.RqSeq == 5 {
					t.Fatalf("rqSeq %d, %v", r.RqSeq, err)
				}
			case GarbageBadChecksum:
				if _, err := wire.ParseResponse(s.Message, true); err == nil {
					t.Fatal("checksum verifies")
				}
				if _, err := wire.ParseResponse(s.Message, false); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
	// Probability: about half of the answers are corrupted.
	b := newTestBMC(func(c *Config) { c.Faults = Faults{Garbage: GarbageBadChecksum, GarbageProb: 0.5, Seed: 3} })
	bad := 0
	for range 100 {
		_, rest, _ := wire.ParseRMCP(b.handle(authCapsPacket(5), testRemote)[0])
		s, _ := wire.ParseSession15(rest)
		if _, err := wire.ParseResponse(s.Message, true); err != nil {
			bad++
		}
	}
	if bad < 30 || bad > 70 {
		t.Fatalf("%d of 100 corrupted at p=0.5", bad)
	}
}

func TestQuirkBadChecksumAndAuthCaps(t *testing.T) {
	b := newTestBMC(func(c *Config) {
		c.Quirks.BadChecksum = true
		c.Quirks.NoExtendedAuthCaps = true
		c.Quirks.NoCipherSuiteList = true
	})
	c := newTestClient(t, direct(b))
	if _, err := c.pre(wire.NetFnApp, wire.CmdGetChannelAuthCaps, []byte{0x0E, 4}); err == nil {
		t.Fatal("bad checksum quirk: response verifies")
	}
	b.cfg.Quirks.BadChecksum = false
	if r, _ := c.pre(wire.NetFnApp, wire.CmdGetChannelAuthCaps, []byte{0x8E, 4}); r.Code != wire.CCInvalidField {
		t.Fatalf("1.5-only quirk: %v", r.Code)
	}
	if r, _ := c.pre(wire.NetFnApp, wire.CmdGetChannelCipherSuites, []byte{0x0E, 0, 0x80}); r.Code != wire.CCInvalidCommand {
		t.Fatalf("no cipher suite list quirk: %v", r.Code)
	}
	c.mustOpen20(hsOpts{suite: 3, user: "admin", pass: "secret"})
}

func TestWrongAnswers(t *testing.T) {
	b := newTestBMC(func(c *Config) {
		c.Faults.WrongAnswers = map[Command]Answer{CmdChassisControl: {Code: 0xC0}, CmdGetChannelAuthCaps: {Code: 0xD2}}
	})
	c := newTestClient(t, direct(b))
	if r, _ := c.pre(wire.NetFnApp, wire.CmdGetChannelAuthCaps, []byte{0x8E, 4}); r.Code != 0xD2 {
		t.Fatalf("auth caps: %v", r.Code)
	}
	c.mustOpen20(hsOpts{suite: 17, user: "admin", pass: "secret"})
	c.mustCmd20(wire.NetFnApp, wire.CmdSetSessionPrivilege, []byte{4}, wire.CCOK)
	c.mustCmd20(wire.NetFnChassis, wire.CmdChassisControl, []byte{1}, wire.CCNodeBusy)
	if b.Power() {
		t.Fatal("wrong answer executed the command")
	}
	must(t, b.SetFaults(Faults{WrongAnswers: map[Command]Answer{CmdGetChassisStatus: {Code: 0, Data: []byte{1, 0, 0}}}}))
	if st, _ := wire.ParseChassisStatus(c.mustCmd20(wire.NetFnChassis, wire.CmdGetChassisStatus, nil, wire.CCOK)); !st.PowerOn() {
		t.Fatal("canned chassis status not returned")
	}
	c.mustCmd20(wire.NetFnChassis, wire.CmdChassisControl, []byte{1}, wire.CCOK)
	if !b.Power() {
		t.Fatal("cleared wrong answer still applies")
	}
}

// TestServeStopsTimers checks that Serve leaves no goroutine behind, even
// with answers waiting on delay timers.
func TestServeStopsTimers(t *testing.T) {
	before := runtime.NumGoroutine()
	b := newTestBMC(func(c *Config) { c.Faults = Faults{Delay: time.Hour, Reorder: 0.5} })
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	must(t, err)
	defer pc.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- b.Serve(ctx, pc) }()
	cl, err := net.ListenPacket("udp4", "127.0.0.1:0")
	must(t, err)
	defer cl.Close()
	for i := range 5 {
		cl.WriteTo(authCapsPacket(uint8(i)), pc.LocalAddr())
	}
	deadline := time.Now().Add(5 * time.Second)
	for b.Stats().PacketsIn < 5 {
		if time.Now().After(deadline) {
			t.Fatalf("BMC read %d of 5 requests", b.Stats().PacketsIn)
		}
		time.Sleep(time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	waitGoroutines(t, before)
}

func waitGoroutines(t *testing.T, want int) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for runtime.NumGoroutine() > want {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("%d goroutines, want %d:\n%s", runtime.NumGoroutine(), want, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestServeAgain serves one socket twice in a row: the deadline used to
// stop the first Serve must not disturb the second.
func TestServeAgain(t *testing.T) {
	b := newTestBMC(nil)
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	must(t, err)
	defer pc.Close()
	cl, err := net.ListenPacket("udp4", "127.0.0.1:0")
	must(t, err)
	defer cl.Close()
	u := &udpClient{t: t, pc: cl, to: pc.LocalAddr()}
	for round := range 2 {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error)
		go func() { done <- b.Serve(ctx, pc) }()
		if n := len(u.exchange(authCapsPacket(uint8(round)), 1)); n != 1 {
			t.Fatalf("round %d: %d answers", round, n)
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	pc.Close()
	if err := b.Serve(context.Background(), pc); err == nil {
		t.Fatal("Serve on a closed socket returned nil")
	}
}
