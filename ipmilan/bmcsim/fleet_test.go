package bmcsim

import (
	"context"
	"fmt"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/solgate/solgate/ipmilan/internal/wire"
)

func TestFleetAddrs(t *testing.T) {
	tests := []struct {
		listen string
		n      int
		perIP  bool
		want   string // first, last
		err    string
	}{
		{listen: "127.0.0.1:20000", n: 3, want: "127.0.0.1:20000 127.0.0.1:20002"},
		{listen: "127.0.0.1:0", n: 2, want: "127.0.0.1:0 127.0.0.1:0"},
		{listen: "127.0.1.1:623", n: 1000, perIP: true, want: "127.0.1.1:623 127.0.4.238:623"},
		{listen: "127.0.1.254:623", n: 2, perIP: true, want: "127.0.1.254:623 127.0.2.1:623"},
		{listen: "127.255.255.250:623", n: 10, perIP: true, err: "leave 127.0.0.0/8"},
		{listen: "127.0.0.1:65535", n: 2, err: "past 65535"},
		{listen: "10.0.0.1:623", n: 1, err: "only loopback"},
		{listen: "[::1]:623", n: 1, err: "IPv4"},
		{listen: "localhost", n: 1, err: "missing port"},
		{listen: "127.0.0.1:x", n: 1, err: "listen port"},
		{listen: "127.0.0.1:0", n: 1, perIP: true, err: "fixed port"},
	}
	for _, tt := range tests {
		t.Run(tt.listen, func(t *testing.T) {
			got, err := fleetAddrs(tt.listen, tt.n, tt.perIP)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("error %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != tt.n || fmt.Sprint(got[0], " ", got[len(got)-1]) != tt.want {
				t.Fatalf("%d addresses %v .. %v, want %s", len(got), got[0], got[len(got)-1], tt.want)
			}
			seen := map[string]bool{}
			for _, a := range got {
				if b := a.Addr().As4(); b[3] == 0 || b[3] == 255 {
					t.Fatalf("address %v ends in .0 or .255", a)
				}
				if seen[a.String()] && a.Port() != 0 {
					t.Fatalf("duplicate %v", a)
				}
				seen[a.String()] = true
			}
		})
	}
}

func pingAddr(t *testing.T, cl net.PacketConn, addr string) bool {
	t.Helper()
	ua, err := net.ResolveUDPAddr("udp4", addr)
	must(t, err)
	ping := wire.ASFMessage{Type: wire.ASFTypePing, Tag: 1}.Append(wire.RMCPHeader{Seq: 0xFF, Class: wire.ClassASF}.Append(nil))
	cl.WriteTo(ping, ua)
	cl.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 256)
	n, from, err := cl.ReadFrom(buf)
	return err == nil && from.String() == addr && n == 28
}

func TestFleet(t *testing.T) {
	before := runtime.NumGoroutine()
	cl, err := net.ListenPacket("udp4", "127.0.0.1:0")
	must(t, err)
	defer cl.Close()
	for _, tt := range []struct {
		name   string
		listen func() string
		perIP  bool
	}{
		{"ephemeral ports", func() string { return "127.0.0.1:0" }, false},
		{"consecutive ports", func() string { return fmt.Sprintf("127.0.0.1:%d", freePortRun(t, 5)) }, false},
		{"consecutive addresses", func() string { return fmt.Sprintf("127.0.77.253:%d", freePortRun(t, 1)) }, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f, err := StartFleet(context.Background(), FleetConfig{N: 5, Listen: tt.listen(), PerAddress: tt.perIP,
				Config:    Config{Users: testUsers},
				Configure: func(i int, c *Config) { c.PowerOn = i%2 == 1 }})
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if f.Len() != 5 || len(f.Addrs()) != 5 {
				t.Fatalf("len %d", f.Len())
			}
			seen := map[string]bool{}
			for i, a := range f.Addrs() {
				if seen[a] || a != f.Addr(i) {
					t.Fatalf("address %d %s repeated", i, a)
				}
				seen[a] = true
				if !pingAddr(t, cl, a) {
					t.Fatalf("BMC %d at %s does not answer", i, a)
				}
				if f.BMC(i).Power() != (i%2 == 1) {
					t.Fatalf("Configure not applied to BMC %d", i)
				}
			}
			if f.BMC(0).GUID() == f.BMC(1).GUID() {
				t.Error("BMCs share a GUID")
			}
			if err := f.Close(); err != nil {
				t.Fatal(err)
			}
			if err := f.Close(); err != nil {
				t.Fatal(err)
			}
		})
	}
	waitGoroutines(t, before)
}

func TestFleetBindError(t *testing.T) {
	// A busy port whose predecessor is free (other processes on a shared
	// machine hold ports too).
	var busy net.PacketConn
	var port int
	for range 50 {
		pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
		must(t, err)
		port = pc.LocalAddr().(*net.UDPAddr).Port
		if prev, err := net.ListenPacket("udp4", fmt.Sprintf("127.0.0.1:%d", port-1)); err == nil {
			prev.Close()
			busy = pc
			break
		}
		pc.Close()
	}
	if busy == nil {
		t.Fatal("no free UDP port pair on 127.0.0.1")
	}
	defer busy.Close()
	_, err := StartFleet(context.Background(), FleetConfig{N: 3, Listen: fmt.Sprintf("127.0.0.1:%d", port-1), Config: Config{Users: testUsers}})
	if err == nil || !strings.Contains(err.Error(), "BMC 1") {
		t.Fatalf("error %v, want one naming BMC 1", err)
	}
	// Nothing stayed bound.
	pc, err := net.ListenPacket("udp4", fmt.Sprintf("127.0.0.1:%d", port-1))
	if err == nil {
		pc.Close()
	} else if !strings.Contains(err.Error(), "in use") {
		t.Fatal(err)
	}
	if _, err := StartFleet(context.Background(), FleetConfig{N: 0, Listen: "127.0.0.1:0"}); err == nil {
		t.Fatal("empty fleet accepted")
	}
	if _, err := StartFleet(context.Background(), FleetConfig{N: 1, Listen: "127.0.0.1:0",
		Config: Config{Users: []User{{Name: strings.Repeat("x", 17)}}}}); err == nil {
		t.Fatal("invalid config accepted")
	}
}

// freePortRun finds n consecutive UDP ports that are free on 127.0.0.1
// (and probably elsewhere on 127/8) right now.
func freePortRun(t *testing.T, n int) int {
	t.Helper()
	for range 50 {
		pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
		must(t, err)
		base := pc.LocalAddr().(*net.UDPAddr).Port
		pc.Close()
		ok := base+n <= 65535
		for i := 0; ok && i < n; i++ {
			p, err := net.ListenPacket("udp4", fmt.Sprintf("127.0.0.1:%d", base+i))
			if err != nil {
				ok = false
				break
			}
			p.Close()
		}
		if ok {
			return base
		}
	}
	t.Fatal("no run of free ports")
	return 0
}

func TestFleetConfigValidate(t *testing.T) {
	ok := FleetConfig{N: 2, Listen: "127.0.0.1:0", Config: Config{Users: testUsers}}
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, fc := range []FleetConfig{
		{N: 0, Listen: "127.0.0.1:0"},
		{N: 1, Listen: "192.0.2.1:0"},
		{N: 1, Listen: "127.0.0.1:0", Config: Config{CipherSuites: []uint8{4}}},
	} {
		if fc.Validate() == nil {
			t.Errorf("%+v accepted", fc)
		}
	}
}
