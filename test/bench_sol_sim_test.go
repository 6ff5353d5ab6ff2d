package test

import (
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
)

// startBenchSimSOL is startIPMISimSOL with the sim's UDP port below 32768:
// FreeIPMI 1.6.10 rejects HOST:PORT with a larger port ("hostname
// invalid"), and freeUDPPort picks from the kernel's ephemeral range
// (32768 and up). Same configuration otherwise (one LAN channel, the
// default users, SOL on a TCP serial port of ours), so every client of a
// benchmark meets the same kind of sim.
func startBenchSimSOL(b *testing.B) (*ipmiSim, net.Conn) {
	b.Helper()
	bin := needTool(b, "ipmi_sim")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(b, err)
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			accepted <- c
		}
		close(accepted)
	}()

	dir := b.TempDir()
	port := lowFreeUDPPort(b)
	s := &ipmiSim{Addr: fmt.Sprintf("127.0.0.1:%d", port), dir: dir}
	var conf strings.Builder
	fmt.Fprintf(&conf, "name \"solgate-bench\"\nset_working_mc 0x20\n  startlan 1\n    addr 127.0.0.1 %d\n    priv_limit admin\n", port)
	conf.WriteString("    allowed_auths_callback md5\n    allowed_auths_user md5 straight\n    allowed_auths_operator md5 straight\n    allowed_auths_admin md5 straight\n")
	conf.WriteString("    guid a123456789abcdefa123456789abcdef\n  endlan\n")
	fmt.Fprintf(&conf, "  sol \"tcp:%s\" 115200\n", ln.Addr())
	for i, u := range defaultSimUsers {
		fmt.Fprintf(&conf, "  user %d true %q %q %s 10 md5 straight\n", i+2, u.name, u.password, u.priv)
	}
	emu := "mc_setbmc 0x20\nmc_add 0x20 0 no-device-sdrs 0x23 9 8 0x9f 0x1291 0xf02 persist_sdr\nmc_enable 0x20\n"
	must(b, os.WriteFile(filepath.Join(dir, "lan.conf"), []byte(conf.String()), 0o600))
	must(b, os.WriteFile(filepath.Join(dir, "sim.emu"), []byte(emu), 0o600))
	out, err := os.Create(filepath.Join(dir, "ipmi_sim.log"))
	must(b, err)
	s.cmd = exec.Command(bin, "-c", filepath.Join(dir, "lan.conf"), "-f", filepath.Join(dir, "sim.emu"),
		"-s", filepath.Join(dir, "state"), "-n", "-p")
	s.cmd.Stdout, s.cmd.Stderr = out, out
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	must(b, s.cmd.Start())
	b.Cleanup(func() {
		s.cmd.Process.Kill()
		s.cmd.Wait()
		out.Close()
		if b.Failed() {
			log, _ := os.ReadFile(out.Name())
			b.Logf("ipmi_sim output:\n%s", log)
		}
	})
	var serial net.Conn
	select {
	case c, ok := <-accepted:
		if !ok {
			b.Fatal("ipmi_sim did not connect its serial port")
		}
		serial = c
		b.Cleanup(func() { c.Close() })
	case <-time.After(15 * time.Second):
		b.Fatal("ipmi_sim did not connect its serial port within 15s")
	}
	s.waitReady(b) // one session: OpenSSL warmed up before any timing
	return s, serial
}

// lowFreeUDPPort finds a free loopback UDP port in 20000-32767.
func lowFreeUDPPort(b *testing.B) int {
	b.Helper()
	for range 100 {
		port := 20000 + rand.IntN(32768-20000)
		pc, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			continue
		}
		pc.Close()
		return port
	}
	b.Fatal("no free UDP port in 20000-32767 on 127.0.0.1")
	return 0
}

// killBenchSim ends a sim before its cleanup (which then reaps it), to
// free the CPU between attempts.
func killBenchSim(s *ipmiSim) {
	s.cmd.Process.Kill()
}
