package test

import (
	"context"
	"io"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/solgate/solgate/ipmilan/bmcsim"
	"github.com/solgate/solgate/test/internal/testkit"
)

// TestSolCommandRecovers: `solgate sol` notices a BMC-initiated
// deactivation and a BMC reboot, says so, reconnects, and output flows
// again; a payload taken by another client is not taken back without
// --steal.
func TestSolCommandRecovers(t *testing.T) {
	t.Parallel()
	bmc := startSimBMC(t, bmcsim.Config{PowerOn: true, SOL: bmcsim.SOLConfig{NoBootText: true}, SessionTimeout: 3 * time.Second})
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, solgateBin(t), "sol", "-u", "admin", "--follow", "--timeout", "200ms", "--keepalive", "1s", bmc.Addr)
	cmd.Env = []string{"IPMI_PASSWORD=" + bmcsimPassword}
	stdin, err := cmd.StdinPipe()
	must(t, err)
	defer stdin.Close()
	var out, errb testkit.LockedBuffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	must(t, cmd.Start())
	defer func() { cmd.Process.Kill(); cmd.Wait() }()

	expect := func(what, marker string) {
		t.Helper()
		waitFor(t, what, 30*time.Second, func() bool {
			bmc.HostWrite([]byte(marker + "\r\n"))
			time.Sleep(100 * time.Millisecond)
			return strings.Contains(out.String(), marker)
		})
	}
	expect("first output", "hello-1")
	bmc.DeactivateSOL()
	waitFor(t, "a reconnect notice", 20*time.Second, func() bool { return strings.Contains(errb.String(), "reconnecting") })
	expect("output after the BMC deactivated SOL", "hello-2")

	bmc.Reboot(2 * time.Second)
	waitFor(t, "a second reconnect notice", 40*time.Second, func() bool { return strings.Count(errb.String(), "reconnecting") >= 2 })
	expect("output after the BMC rebooted", "hello-3")
	io.WriteString(stdin, "typed\r")
	waitFor(t, "input after reconnects", 10*time.Second, func() bool { return strings.Contains(string(bmc.HostInput()), "typed\r") })
	t.Logf("stderr:\n%s", errb.String())
}
