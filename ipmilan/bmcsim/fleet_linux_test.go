//go:build linux

package bmcsim

import (
	"context"
	"net"
	"runtime"
	"testing"
	"time"

	"github.com/solgate/solgate/ipmilan/internal/wire"
)

// TestFleetPolled: on Linux a fleet's BMCs are served by a few pollers,
// not a goroutine each, and they still answer every peer at its own
// address (the socket's cached peer address follows the sender), with
// fault timers stopped by Close.
func TestFleetPolled(t *testing.T) {
	before := runtime.NumGoroutine()
	const n = 300
	f, err := StartFleet(context.Background(), FleetConfig{N: n, Listen: "127.0.0.1:0", Config: Config{Users: testUsers},
		Configure: func(i int, c *Config) {
			if i == 1 {
				c.Faults.Delay = 20 * time.Millisecond
			}
		}})
	must(t, err)
	defer f.Close()
	if g := runtime.NumGoroutine() - before; g > runtime.GOMAXPROCS(0)+4 {
		t.Errorf("%d BMCs started %d goroutines", n, g)
	}
	if len(f.polled) != n {
		t.Fatalf("%d of %d BMCs polled", len(f.polled), n)
	}
	var peers []net.PacketConn
	for range 3 {
		cl, err := net.ListenPacket("udp4", "127.0.0.1:0")
		must(t, err)
		defer cl.Close()
		peers = append(peers, cl)
	}
	// Peers take turns on one BMC, and one peer goes round several.
	for round := range 3 {
		for i, cl := range peers {
			if !pingAddr(t, cl, f.Addr(0)) {
				t.Fatalf("round %d: peer %d got no answer from BMC 0", round, i)
			}
		}
		for _, i := range []int{1, 2, n - 1} {
			if !pingAddr(t, peers[0], f.Addr(i)) {
				t.Fatalf("round %d: BMC %d does not answer", round, i)
			}
		}
	}
	if st := f.BMC(0).Stats(); st.PacketsIn != 9 || st.PacketsOut != 9 {
		t.Errorf("BMC 0: %d datagrams in, %d out; want 9 each", st.PacketsIn, st.PacketsOut)
	}
	// An answer still on its delay timer when the fleet closes.
	ua, err := net.ResolveUDPAddr("udp4", f.Addr(1))
	must(t, err)
	peers[1].WriteTo(wire.ASFMessage{Type: wire.ASFTypePing, Tag: 1}.Append(wire.RMCPHeader{Seq: 0xFF, Class: wire.ClassASF}.Append(nil)), ua)
	time.Sleep(5 * time.Millisecond)
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	waitGoroutines(t, before)
}
