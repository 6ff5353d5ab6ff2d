package test

import (
	"net"
	"strings"
	"sync"
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
