package test

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/solgate/solgate/ipmilan/bmcsim"
	"github.com/solgate/solgate/test/internal/testkit"
)

// TestBMCSimCommand runs `solgate bmcsim` as a sysadmin would: it prints
// one line per BMC once they listen, serves ipmitool, and exits 0 with a
// summary on SIGTERM.
func TestBMCSimCommand(t *testing.T) {
	t.Parallel()
	ipmitool := needTool(t, "ipmitool")
	bin := solgateBin(t)
	cmd := exec.Command(bin, "bmcsim", "--listen", "127.0.0.1:0", "--names", "n[1-3]", "--power", "mixed", "--allow-lan15")
	cmd.Env = append(os.Environ(), "IPMI_PASSWORD=")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	out, err := cmd.StdoutPipe()
	must(t, err)
	must(t, cmd.Start())
	exited := false
	t.Cleanup(func() {
		if !exited {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	addrs := map[string]string{}
	for len(addrs) < 3 {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("stdout closed after %d lines; stderr:\n%s", len(addrs), stderr.String())
			}
			name, addr, found := strings.Cut(l, " ")
			if !found || !strings.HasPrefix(addr, "127.0.0.1:") {
				t.Fatalf("line %q: want NAME ADDRESS:PORT", l)
			}
			addrs[name] = addr
		case <-time.After(20 * time.Second):
			t.Fatalf("no BMC list after 20s; stderr:\n%s", stderr.String())
		}
	}
	for name, want := range map[string]string{"n1": "on", "n2": "off", "n3": "on"} {
		host, port, _ := strings.Cut(addrs[name], ":")
		o, err := bmcsimRun(t, peerTimeout, ipmitool, "-I", "lan", "-H", host, "-p", port, "-U", "admin", "-P", "password", "chassis", "power", "status")
		if err != nil || !strings.Contains(o, "Chassis Power is "+want) {
			t.Fatalf("%s: %v\n%s", name, err, o)
		}
	}
	must(t, cmd.Process.Signal(syscall.SIGTERM))
	err = cmd.Wait()
	exited = true
	if err != nil {
		t.Fatalf("exit after SIGTERM: %v\n%s", err, stderr.String())
	}
	for _, want := range []string{"demo password", "3 BMCs listening", "stopped: ", "3 sessions"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr.String())
		}
	}
}

func TestBMCSimCommandHostsFileAndErrors(t *testing.T) {
	t.Parallel()
	bin := solgateBin(t)
	dir := t.TempDir()
	pwFile := filepath.Join(dir, "pw")
	must(t, os.WriteFile(pwFile, []byte("file-secret\n"), 0o600))
	hosts := filepath.Join(dir, "hosts")
	cmd := exec.Command(bin, "bmcsim", "-n", "2", "--listen", "127.0.0.1:0", "--password-file", pwFile, "--hosts-file", hosts)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	must(t, cmd.Start())
	defer cmd.Wait()
	defer cmd.Process.Kill()
	var data []byte
	bmcsimEventually(t, "the hosts file", func() bool {
		data, _ = os.ReadFile(hosts)
		return len(data) > 0
	})
	if l := strings.Split(strings.TrimSpace(string(data)), "\n"); len(l) != 2 || !strings.HasPrefix(l[0], "node0001 127.0.0.1:") {
		t.Fatalf("hosts file:\n%s", data)
	}
	if fi, _ := os.Stat(hosts); fi.Mode().Perm() != 0o640 {
		t.Errorf("hosts file mode %v, want 0640", fi.Mode().Perm())
	}
	cmd.Process.Signal(syscall.SIGTERM)
	cmd.Wait()
	if stdout.Len() != 0 || strings.Contains(stderr.String(), "demo password") || strings.Contains(stderr.String(), "file-secret") {
		t.Errorf("stdout %q, stderr %q", stdout.String(), stderr.String())
	}

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--listen", "192.0.2.1:623"}, "only loopback"},
		{[]string{"-n", "2", "--names", "x[1-3]"}, "has 3 names"},
		{[]string{"--cipher-suites", "1,4"}, "cipher suite 4 not supported"},
		{[]string{"--quirks", "bogus"}, "unknown quirk"},
		{[]string{"--drop", "2"}, "probability"},
		{[]string{"--freeze", "node9"}, "no BMC named"},
		{[]string{"--garbage", "lots"}, "unknown garbage kind"},
		{[]string{"extra"}, "unexpected argument"},
		{[]string{"--sol-payload-size", "300"}, "want 5-259"},
		{[]string{"--sol-instances", "16"}, "SOL instances 16"},
		{[]string{"--sol-port", "70000"}, "--sol-port 70000"},
		{[]string{"-n", "3", "--listen", "127.0.0.1:21000", "--sol-port", "21002"}, "overlap the BMC ports 21000-21002"},
		{[]string{"--stream", "fast"}, "want bytes per second or max"},
		{[]string{"--sol-retry-interval", "-1s"}, "negative SOL interval"},
	} {
		o, code := runSolgateBMCSim(t, bin, tc.args...)
		if code != 2 || !strings.Contains(o, tc.want) {
			t.Errorf("bmcsim %v: exit %d, output %q, want exit 2 and %q", tc.args, code, o, tc.want)
		}
	}
	if o, code := runSolgateBMCSim(t, bin, "--help"); code != 0 || !strings.Contains(o, "Examples:") || !strings.Contains(o, "-stream RATE") {
		t.Errorf("--help: exit %d\n%s", code, o)
	}
}

func runSolgateBMCSim(t *testing.T, bin string, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"bmcsim", "--password-file", "/dev/null"}, args...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	o, _ := cmd.CombinedOutput()
	return string(o), cmd.ProcessState.ExitCode()
}

// TestBMCSimCommandSOLStream: `solgate bmcsim --stream max` hosts print
// numbered lines nonstop; ipmitool's SOL console on one of them shows the
// boot, then the stream from its first byte with nothing missing (what
// was printed before anyone connected was kept, the rest waited).
func TestBMCSimCommandSOLStream(t *testing.T) {
	t.Parallel()
	ipmitool := needTool(t, "ipmitool")
	bin := solgateBin(t)
	cmd := exec.Command(bin, "bmcsim", "--listen", "127.0.0.1:0", "--names", "s[1-2]", "--stream", "max", "--sol-retry-interval", "50ms")
	cmd.Env = append(os.Environ(), "IPMI_PASSWORD="+bmcsimPassword)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	out, err := cmd.StdoutPipe()
	must(t, err)
	must(t, cmd.Start())
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		syscall.Kill(cmd.Process.Pid, syscall.SIGKILL)
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			t.Errorf("solgate bmcsim (pid %d) not reaped", cmd.Process.Pid)
		}
	})
	sc := bufio.NewScanner(out)
	var addr string
	for sc.Scan() {
		if name, a, _ := strings.Cut(sc.Text(), " "); name == "s2" {
			addr = a
			break
		}
	}
	if addr == "" {
		t.Fatalf("no address for s2; stderr:\n%s", stderr.String())
	}
	go io.Copy(io.Discard, out)
	host, port, _ := strings.Cut(addr, ":")
	c := startSimConsole(t, ipmitool, "-I", "lanplus", "-C", "3", "-H", host, "-p", port, "-U", "admin", "-P", bmcsimPassword, "sol", "activate")
	c.waitText("s2 login: ", 10*time.Second)
	want := bmcsim.AppendStreamText(nil, 0, 64<<10)
	c.waitFor("the first 64 KiB of the numbered stream", 20*time.Second, func(b []byte) bool { return bytes.Contains(b, want) })
	c.typeText("\r~.")
	if _, ok := c.wait(10 * time.Second); !ok {
		t.Fatal("ipmitool still running after ~.")
	}
	must(t, cmd.Process.Signal(syscall.SIGTERM))
	select {
	case err := <-exited:
		exited <- err
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v\n%s", err, stderr.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("solgate bmcsim still running 10 s after SIGTERM")
	}
	if !strings.Contains(stderr.String(), "SOL: 1 activations") || !regexp.MustCompile(`, \d+ bytes dropped after the last resend\n`).MatchString(stderr.String()) {
		t.Errorf("summary lacks the SOL activation or the dropped output:\n%s", stderr.String())
	}
}

// TestBMCSimCommandFaultSignals: with --fault-signals the fault flags
// wait for SIGUSR1 and stop at SIGUSR2: a BMC that drops every answer
// answers `solgate power status` at first, then times out, then answers
// again.
func TestBMCSimCommandFaultSignals(t *testing.T) {
	t.Parallel()
	bin := solgateBin(t)
	cmd := exec.Command(bin, "bmcsim", "--listen", "127.0.0.1:0", "-n", "1", "--drop", "1", "--fault-signals")
	cmd.Env = append(os.Environ(), "IPMI_PASSWORD="+bmcsimPassword)
	stderr := &testkit.LockedBuffer{}
	cmd.Stderr = stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	out, err := cmd.StdoutPipe()
	must(t, err)
	must(t, cmd.Start())
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		syscall.Kill(cmd.Process.Pid, syscall.SIGKILL)
		<-exited
	})
	sc := bufio.NewScanner(out)
	if !sc.Scan() {
		t.Fatalf("no BMC listed; stderr:\n%s", stderr.String())
	}
	_, addr, _ := strings.Cut(sc.Text(), " ")
	go io.Copy(io.Discard, out)
	status := func() error {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		pc := exec.CommandContext(ctx, bin, "power", "-u", "admin", "--timeout", "100ms", "--retries", "1", addr, "status")
		pc.Env = append(os.Environ(), "IPMI_PASSWORD="+bmcsimPassword)
		o, err := pc.CombinedOutput()
		if err == nil && !strings.Contains(string(o), ": on") {
			t.Fatalf("power status: %q", o)
		}
		return err
	}
	toggle := func(sig syscall.Signal, line string) {
		t.Helper()
		n := strings.Count(stderr.String(), line)
		must(t, cmd.Process.Signal(sig))
		bmcsimEventually(t, "bmcsim to say "+line, func() bool { return strings.Count(stderr.String(), line) > n })
	}
	if err := status(); err != nil {
		t.Fatalf("faults not yet on: %v", err)
	}
	toggle(syscall.SIGUSR1, "faults on")
	if err := status(); err == nil {
		t.Fatal("power status answered with every answer dropped")
	}
	toggle(syscall.SIGUSR2, "faults off")
	if err := status(); err != nil {
		t.Fatalf("faults off again: %v", err)
	}
	must(t, cmd.Process.Signal(syscall.SIGTERM))
	if err := <-exited; err != nil {
		t.Fatalf("exit after SIGTERM: %v\n%s", err, stderr.String())
	}
	exited <- nil
}
