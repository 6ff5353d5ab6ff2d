package test

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/solgate/solgate/ipmilan/bmcsim"
)

// bmcsimPassword is the password of the "admin" user of in-process
// simulated BMCs; bmcsimOperator is an operator-only account.
const bmcsimPassword = "s3cret-for-tests"

var bmcsimUsers = []bmcsim.User{
	{Name: "admin", Password: bmcsimPassword, MaxPriv: bmcsim.PrivAdmin},
	{Name: "oper", Password: "operpw", MaxPriv: bmcsim.PrivOperator},
}

// simBMC is one bmcsim BMC served in this process on a random loopback
// port.
type simBMC struct {
	*bmcsim.BMC
	Host string // IP address
	Port int
	Addr string // 127.0.0.1:PORT
}

// startSimBMC serves a BMC built from cfg (users default to bmcsimUsers)
// until the test ends.
func startSimBMC(t testing.TB, cfg bmcsim.Config) *simBMC {
	t.Helper()
	return startSimBMCOn(t, "127.0.0.1", cfg)
}

// startSimBMCOn is startSimBMC on loopback address ip.
func startSimBMCOn(t testing.TB, ip string, cfg bmcsim.Config) *simBMC {
	t.Helper()
	if cfg.Users == nil {
		cfg.Users = bmcsimUsers
	}
	pc, err := net.ListenPacket("udp4", net.JoinHostPort(ip, "0"))
	must(t, err)
	return serveSimBMC(t, pc, cfg)
}

// startSimBMCLow is startSimBMC on a port below 32768: FreeIPMI 1.6.10
// rejects HOST:PORT with a larger port ("hostname invalid").
func startSimBMCLow(t testing.TB, cfg bmcsim.Config) *simBMC {
	t.Helper()
	if cfg.Users == nil {
		cfg.Users = bmcsimUsers
	}
	for range 100 {
		pc, err := net.ListenPacket("udp4", fmt.Sprintf("127.0.0.1:%d", 20000+rand.IntN(32768-20000)))
		if err == nil {
			return serveSimBMC(t, pc, cfg)
		}
	}
	t.Fatal("no free UDP port in 20000-32767 on 127.0.0.1")
	return nil
}

// serveSimBMC serves a BMC built from cfg on pc until the test ends.
func serveSimBMC(t testing.TB, pc net.PacketConn, cfg bmcsim.Config) *simBMC {
	t.Helper()
	ip := pc.LocalAddr().(*net.UDPAddr).IP.String()
	b := bmcsim.New(cfg)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Serve(ctx, pc) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("bmcsim Serve: %v", err)
		}
		pc.Close()
	})
	port := pc.LocalAddr().(*net.UDPAddr).Port
	return &simBMC{BMC: b, Host: ip, Port: port, Addr: pc.LocalAddr().String()}
}

// bmcsimRun runs a peer program with a deadline and returns its combined
// output and exit error. The process is killed when the deadline passes
// or the test process dies, so none is left behind.
func bmcsimRun(t testing.TB, timeout time.Duration, bin string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	cmd.WaitDelay = time.Second
	err := cmd.Run()
	if ctx.Err() != nil {
		err = fmt.Errorf("%s %s: killed after %v: %w", bin, strings.Join(args, " "), timeout, ctx.Err())
	}
	return out.String(), err
}

// bmcsimEventually polls cond for up to 3 seconds.
func bmcsimEventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
