package test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/solgate/solgate/ipmilan/bmcsim"
)

// TestServeNotifiesSystemdAndShipsSyslog: solgate serve under a
// NOTIFY_SOCKET (as systemd's Type=notify unit runs it) says READY=1 once
// its consoles dial, RELOADING=1 and READY=1 around a reload, STOPPING=1
// at SIGTERM; and its syslog component ships the console's lines to the
// [[syslog]] target, which a reload changes.
func TestServeNotifiesSystemdAndShipsSyslog(t *testing.T) {
	t.Parallel()
	sim := startSimBMC(t, bmcsim.Config{PowerOn: true, SOL: bmcsim.SOLConfig{NoBootText: true}})
	dir := t.TempDir()
	n := listenNotify(t, dir, nil)
	waitMsg := func(prefix string) {
		t.Helper()
		n.wait(t, prefix, 1, 15*time.Second)
	}
	rx, err := net.ListenPacket("udp4", "127.0.0.1:0")
	must(t, err)
	defer rx.Close()
	var smu sync.Mutex
	var syslogged strings.Builder
	go func() {
		buf := make([]byte, 8192)
		for {
			n, _, err := rx.ReadFrom(buf)
			if err != nil {
				return
			}
			smu.Lock()
			syslogged.Write(buf[:n])
			syslogged.WriteByte('\n')
			smu.Unlock()
		}
	}()
	consoles := []servedConsole{{name: "node1", bmc: sim.Addr}}
	cfg := writeServeConfig(t, dir, "", consoles)
	appendFile(t, cfg, "\n[[syslog]]\naddress = \"udp://"+rx.LocalAddr().String()+"\"\n")
	p := startServe(t, cfg, "NOTIFY_SOCKET="+n.path)
	waitMsg("READY=1\nSTATUS=1 consoles")
	p.waitLog(`"msg":"conserver: SOL up"`, 20*time.Second)
	sim.HostWrite([]byte("to syslog from node1\r\n"))
	deadline := time.Now().Add(15 * time.Second)
	for {
		smu.Lock()
		got := syslogged.String()
		smu.Unlock()
		if strings.Contains(got, "node1 solgate") && strings.Contains(got, "to syslog from node1") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the line was not shipped to syslog; got:\n%s", got)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// A reload (a second console) is bracketed by RELOADING=1 and READY=1.
	sim2 := startSimBMC(t, bmcsim.Config{PowerOn: true, SOL: bmcsim.SOLConfig{NoBootText: true}})
	cfg = writeServeConfig(t, dir, "", append(consoles, servedConsole{name: "node2", bmc: sim2.Addr}))
	appendFile(t, cfg, "\n[[syslog]]\naddress = \"udp://"+rx.LocalAddr().String()+"\"\n")
	waitMsg("RELOADING=1\nMONOTONIC_USEC=")
	waitMsg("READY=1\nSTATUS=2 consoles")
	p.waitLog(`"msg":"conserver: SOL up","console":"node2"`, 20*time.Second)
	if _, err := p.stop(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	waitMsg("STOPPING=1")
}

// TestServeStopsConsolesBesideAStuckSyslogReceiver: at SIGTERM the
// consoles' payloads are deactivated at once, while the syslog shipper
// still gives a TCP receiver that takes nothing its grace (2 s) for the
// lines in flight: the components stopped one after another, and the
// consoles only after them, so a stuck receiver (or a slow scrape, or a
// gateway session) took that much of the consoles' shutdown budget.
func TestServeStopsConsolesBesideAStuckSyslogReceiver(t *testing.T) {
	t.Parallel()
	sim := startSimBMC(t, bmcsim.Config{PowerOn: true, SOL: bmcsim.SOLConfig{NoBootText: true}})
	// A receiver that accepts and never reads, with a small receive
	// buffer (set on the listener, inherited by what it accepts), so that
	// a few kilobytes fill its window.
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 2048) })
		return errors.Join(err, serr)
	}}
	sink, err := lc.Listen(context.Background(), "tcp4", "127.0.0.1:0")
	must(t, err)
	defer sink.Close()
	var held []net.Conn
	var hmu sync.Mutex
	go func() {
		for {
			c, err := sink.Accept()
			if err != nil {
				return
			}
			hmu.Lock()
			held = append(held, c)
			hmu.Unlock()
		}
	}()
	defer func() {
		hmu.Lock()
		defer hmu.Unlock()
		for _, c := range held {
			c.Close()
		}
	}()
	dir := t.TempDir()
	cfg := writeServeConfig(t, dir, "", []servedConsole{{name: "node1", bmc: sim.Addr}})
	appendFile(t, cfg, "\n[[syslog]]\naddress = \"tcp://"+sink.Addr().String()+"\"\n")
	p := startServe(t, cfg)
	p.waitLog(`"msg":"syslog: connected"`, 20*time.Second)
	p.waitLog(`"msg":"conserver: SOL up"`, 20*time.Second)
	for i := range 600 {
		sim.HostWrite(fmt.Appendf(nil, "line %04d for a receiver that takes nothing, padded out to about a hundred bytes\r\n", i))
		if i%50 == 49 {
			time.Sleep(50 * time.Millisecond) // within the BMC's buffer
		}
	}
	time.Sleep(2 * time.Second) // shipped as far as the receiver's window lets
	if _, err := p.stop(20 * time.Second); err != nil {
		t.Fatal(err)
	}
	stamp := func(msg string) time.Time {
		t.Helper()
		for _, l := range strings.Split(p.stderr.String(), "\n") {
			var rec struct {
				Time time.Time `json:"time"`
				Msg  string    `json:"msg"`
			}
			if json.Unmarshal([]byte(l), &rec) == nil && rec.Msg == msg {
				return rec.Time
			}
		}
		t.Fatalf("the daemon log has no %q", msg)
		return time.Time{}
	}
	stopping, consoles, stopped := stamp("serve: stopping"), stamp("conserver: all consoles stopped"), stamp("serve: stopped")
	t.Logf("consoles stopped %v after 'serve: stopping', the daemon %v", consoles.Sub(stopping), stopped.Sub(stopping))
	if stopped.Sub(stopping) < 1500*time.Millisecond {
		t.Fatalf("the daemon stopped %v after 'serve: stopping': the syslog receiver's window never filled, so this tests nothing", stopped.Sub(stopping))
	}
	if d := consoles.Sub(stopping); d > time.Second {
		t.Errorf("the consoles stopped %v after 'serve: stopping': they waited for the syslog shipper's grace", d)
	}
}
