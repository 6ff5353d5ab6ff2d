package test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/solgate/solgate/ipmilan"
)

// ipmiSim is one OpenIPMI ipmi_sim process serving one BMC on loopback.
type ipmiSim struct {
	Addr string
	dir  string
	cmd  *exec.Cmd
}

type ipmiSimUser struct {
	name, password, priv string
}

var defaultSimUsers = []ipmiSimUser{{"admin", "secret", "admin"}, {"oper", "operpw", "operator"}, {"viewer", "viewpw", "user"}}

// startIPMISim starts ipmi_sim with a generated configuration: one LAN
// channel on a free loopback port, the given users, and a chassis control
// program that keeps the power state in a file (shell built-ins only:
// ipmi_sim runs it synchronously for every power get and set).
func startIPMISim(t testing.TB, users []ipmiSimUser) *ipmiSim {
	t.Helper()
	return startIPMISimWith(t, users, "")
}

// startIPMISimSOL starts ipmi_sim with SOL: its serial side connects to a
// TCP listener of ours, returned as the connection the test reads the
// node's input from and writes the node's output to.
func startIPMISimSOL(t testing.TB) (*ipmiSim, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			accepted <- c
		}
		close(accepted)
	}()
	sim := startIPMISimWith(t, defaultSimUsers, fmt.Sprintf("  sol \"tcp:%s\" 115200\n", ln.Addr()))
	select {
	case c, ok := <-accepted:
		if !ok {
			t.Fatal("ipmi_sim did not connect its serial port")
		}
		t.Cleanup(func() { c.Close() })
		return sim, c
	case <-time.After(15 * time.Second):
		t.Fatal("ipmi_sim did not connect its serial port within 15s")
	}
	return nil, nil
}

func startIPMISimWith(t testing.TB, users []ipmiSimUser, extra string) *ipmiSim {
	t.Helper()
	bin := needTool(t, "ipmi_sim")
	dir := t.TempDir()
	port := freeUDPPort(t)
	s := &ipmiSim{Addr: fmt.Sprintf("127.0.0.1:%d", port), dir: dir}
	var conf strings.Builder
	fmt.Fprintf(&conf, "name \"solgate-test\"\nset_working_mc 0x20\n  startlan 1\n    addr 127.0.0.1 %d\n    priv_limit admin\n", port)
	conf.WriteString("    allowed_auths_callback md5\n    allowed_auths_user md5 straight\n    allowed_auths_operator md5 straight\n    allowed_auths_admin md5 straight\n")
	conf.WriteString("    guid a123456789abcdefa123456789abcdef\n  endlan\n")
	fmt.Fprintf(&conf, "  chassis_control %q\n", filepath.Join(dir, "chassis"))
	conf.WriteString(extra)
	for i, u := range users {
		fmt.Fprintf(&conf, "  user %d true %q %q %s 10 md5 straight\n", i+2, u.name, u.password, u.priv)
	}
	chassis := fmt.Sprintf(`#!/bin/sh
st=%q
op=$1; shift
case $op in
get) for p in "$@"; do case $p in power) v=0; [ -f "$st" ] && read v < "$st"; echo "power:$v";; boot) echo "boot:default";; esac; done;;
set) while [ $# -ge 2 ]; do case $1 in power) echo "$2" > "$st";; esac; shift 2; done;;
*) exit 1;;
esac
`, filepath.Join(dir, "power"))
	emu := "mc_setbmc 0x20\nmc_add 0x20 0 no-device-sdrs 0x23 9 8 0x9f 0x1291 0xf02 persist_sdr\nmc_enable 0x20\n"
	must(t, os.WriteFile(filepath.Join(dir, "lan.conf"), []byte(conf.String()), 0o600))
	must(t, os.WriteFile(filepath.Join(dir, "chassis"), []byte(chassis), 0o700))
	must(t, os.WriteFile(filepath.Join(dir, "sim.emu"), []byte(emu), 0o600))
	must(t, os.WriteFile(filepath.Join(dir, "power"), []byte("1\n"), 0o600))
	out, err := os.Create(filepath.Join(dir, "ipmi_sim.log"))
	must(t, err)
	s.cmd = exec.Command(bin, "-c", filepath.Join(dir, "lan.conf"), "-f", filepath.Join(dir, "sim.emu"),
		"-s", filepath.Join(dir, "state"), "-n", "-p")
	s.cmd.Stdout, s.cmd.Stderr = out, out
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	must(t, s.cmd.Start())
	t.Cleanup(func() {
		s.cmd.Process.Kill()
		s.cmd.Wait()
		out.Close()
		if t.Failed() {
			b, _ := os.ReadFile(out.Name())
			t.Logf("ipmi_sim output:\n%s", b)
		}
	})
	s.waitReady(t)
	return s
}

// waitReady polls with IPMI sessions until the sim answers (it is ready
// in tens of milliseconds, but on a loaded machine it can take longer).
func (s *ipmiSim) waitReady(t testing.TB) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		sess, err := ipmilan.Dial(ctx, ipmilan.Config{Addr: s.Addr, User: "admin", Password: ipmilan.Secret("secret"),
			CipherSuite: 3, Timeout: 200 * time.Millisecond, Retries: -1})
		cancel()
		if err == nil {
			sess.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("ipmi_sim on %s not ready after 10s: %v", s.Addr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Power reads the power state the chassis program recorded.
func (s *ipmiSim) Power(t testing.TB) bool {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(s.dir, "power"))
	must(t, err)
	return strings.TrimSpace(string(b)) == "1"
}

// freeUDPPort finds a free loopback UDP port in 20000-32767: FreeIPMI
// 1.6.10 rejects HOST:PORT with a port of 32768 or more ("hostname
// invalid"), and the kernel's ephemeral range starts there.
func freeUDPPort(t testing.TB) int {
	t.Helper()
	for range 100 {
		port := 20000 + rand.IntN(32768-20000)
		pc, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			continue
		}
		pc.Close()
		return port
	}
	t.Fatal("no free UDP port in 20000-32767 on 127.0.0.1")
	return 0
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
