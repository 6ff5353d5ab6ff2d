package test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/solgate/solgate/ipmilan/bmcsim"
	"github.com/solgate/solgate/logstore"
	"github.com/solgate/solgate/test/internal/testkit"
)

// solRun runs `solgate sol` with stdin and returns stdout, stderr and the
// exit code. It fails the test if the command outlives timeout.
func solRun(t *testing.T, timeout time.Duration, stdin io.Reader, env []string, args ...string) (string, string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, solgateBin(t), append([]string{"sol"}, args...)...)
	cmd.Env = append([]string{"PATH=/usr/bin:/bin"}, env...)
	cmd.Stdin = stdin
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("solgate sol %v: still running after %v\nstderr: %s", args, timeout, errb.String())
	}
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return out.String(), errb.String(), code
}

// logEvents returns the kinds of the events in a console's log, in order,
// and its output text.
func logEvents(t *testing.T, dir, console string) ([]logstore.EventKind, string) {
	t.Helper()
	store, err := logstore.Open(dir, logstore.Options{ReadOnly: true})
	must(t, err)
	defer store.Close()
	var kinds []logstore.EventKind
	var text strings.Builder
	for rec, err := range store.Records(context.Background(), console, logstore.Query{}) {
		must(t, err)
		if rec.Event != "" {
			kinds = append(kinds, rec.Event)
		} else {
			text.Write(rec.Data)
		}
	}
	return kinds, text.String()
}

// TestSolEarlyInputBMCSim is the README's `printf 'root\r' | solgate sol
// ... --eof-wait`: input that is there before the session is up, followed
// at once by EOF, reaches the host, its echo reaches stdout, the exit
// status is 0, and the log says attach (not reconnect) then detach.
func TestSolEarlyInputBMCSim(t *testing.T) {
	t.Parallel()
	bmc := startSimBMC(t, bmcsim.Config{PowerOn: true, SOL: bmcsim.SOLConfig{NoBootText: true}})
	logDir := t.TempDir()
	out, errOut, code := solRun(t, 60*time.Second, strings.NewReader("root\r"), []string{"IPMI_PASSWORD=" + bmcsimPassword},
		"-u", "admin", "--bmc", bmc.Addr, "node1", "--eof-wait", "1s", "--log-dir", logDir)
	if code != 0 {
		t.Fatalf("exit %d\nstderr: %s", code, errOut)
	}
	if in := string(bmc.HostInput()); in != "root\r" {
		t.Errorf("the host read %q, want %q", in, "root\r")
	}
	if !strings.Contains(out, "root") {
		t.Errorf("stdout %q lacks the echo", out)
	}
	kinds, text := logEvents(t, logDir, "node1")
	if len(kinds) != 2 || kinds[0] != logstore.EventAttach || kinds[1] != logstore.EventDetach {
		t.Errorf("log events %v, want [attach detach]", kinds)
	}
	if !strings.Contains(text, "root") {
		t.Errorf("log text %q lacks the echo", text)
	}
}

// TestSolEarlyInputIPMISim: the same against OpenIPMI's ipmi_sim. Quirk 9
// (SOL sequence numbers carry over between sessions, so a new session's
// first input packet can be dropped as a duplicate) does not apply: the
// sim is fresh and this is its first SOL session (waitReady opens only a
// plain IPMI session).
func TestSolEarlyInputIPMISim(t *testing.T) {
	sim, serial := startIPMISimSOL(t)
	// The node echoes what it reads, as a tty does.
	got := &testkit.LockedBuffer{}
	go func() {
		buf := make([]byte, 256)
		for {
			n, err := serial.Read(buf)
			if n > 0 {
				got.Write(buf[:n])
				serial.Write(buf[:n])
			}
			if err != nil {
				return
			}
		}
	}()
	out, errOut, code := solRun(t, 60*time.Second, strings.NewReader("root\r"), []string{"IPMI_PASSWORD=secret"},
		"-u", "admin", "-C", "3", sim.Addr, "--eof-wait", "2s")
	if code != 0 {
		t.Fatalf("exit %d\nstderr: %s", code, errOut)
	}
	if s := got.String(); s != "root\r" {
		t.Errorf("the serial port read %q, want %q", s, "root\r")
	}
	if !strings.Contains(out, "root") {
		t.Errorf("stdout %q lacks the echo", out)
	}
}

// TestSolNeverReached: no BMC at the address (or no valid port): exit
// non-zero with a message, not 0 after --eof-wait.
func TestSolNeverReached(t *testing.T) {
	t.Parallel()
	dead := "127.0.0.1:" + strconv.Itoa(freeUDPPort(t))
	env := []string{"IPMI_PASSWORD=x"}
	_, errOut, code := solRun(t, 60*time.Second, strings.NewReader("root\r"), env, "-u", "admin", "--timeout", "100ms", dead, "--eof-wait", "3s")
	if code != 1 || !strings.Contains(errOut, "console never reached") || !strings.Contains(errOut, "no answer") {
		t.Errorf("unreachable BMC: exit %d, stderr %q", code, errOut)
	}
	for _, addr := range []string{"127.0.0.1:", ":0", "127.0.0.1:99999"} {
		_, errOut, code := solRun(t, 30*time.Second, strings.NewReader(""), env, "-u", "admin", addr)
		if code != 2 || !strings.Contains(errOut, "invalid port") {
			t.Errorf("%s: exit %d, stderr %q", addr, code, errOut)
		}
	}
	// Interrupted before the console was ever reached: the signal's exit
	// status, and the message says the console was never reached.
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, solgateBin(t), "sol", "-u", "admin", "--timeout", "100ms", "--follow", dead)
	cmd.Env = env
	var errb testkit.LockedBuffer
	cmd.Stderr = &errb
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	must(t, cmd.Start())
	waitFor(t, "a retry notice", 30*time.Second, func() bool { return strings.Contains(errb.String(), "retrying in") })
	must(t, cmd.Process.Signal(syscall.SIGINT))
	err := cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 130 || !strings.Contains(errb.String(), "interrupted (SIGINT): console never reached") {
		t.Errorf("SIGINT while retrying: %v\nstderr: %s", err, errb.String())
	}
}

// TestSolPayloadHeldByKilledSolgate: a solgate sol killed with SIGKILL
// leaves its session holding the payload; the next one says so and names
// --steal, which then works.
func TestSolPayloadHeldByKilledSolgate(t *testing.T) {
	t.Parallel()
	bmc := startSimBMC(t, bmcsim.Config{PowerOn: true, SOL: bmcsim.SOLConfig{NoBootText: true}})
	env := []string{"IPMI_PASSWORD=" + bmcsimPassword}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	first := exec.CommandContext(ctx, solgateBin(t), "sol", "-u", "admin", "--follow", bmc.Addr)
	first.Env = env
	stdin, err := first.StdinPipe()
	must(t, err)
	defer stdin.Close()
	var out testkit.LockedBuffer
	first.Stdout = &out
	first.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	must(t, first.Start())
	waitFor(t, "the first console", 30*time.Second, func() bool {
		bmc.HostWrite([]byte("hello\r\n"))
		time.Sleep(50 * time.Millisecond)
		return strings.Contains(out.String(), "hello")
	})
	must(t, first.Process.Kill())
	first.Wait()

	_, errOut, code := solRun(t, 60*time.Second, strings.NewReader("x"), env, "-u", "admin", bmc.Addr, "--eof-wait", "0s")
	if code != 1 || !strings.Contains(errOut, "already active") || !strings.Contains(errOut, "--steal") || !strings.Contains(errOut, "killed") {
		t.Fatalf("payload held: exit %d, stderr %q", code, errOut)
	}
	_, errOut, code = solRun(t, 60*time.Second, strings.NewReader("y"), env, "-u", "admin", bmc.Addr, "--eof-wait", "0s", "--steal")
	if code != 0 || !strings.HasSuffix(string(bmc.HostInput()), "y") {
		t.Fatalf("--steal: exit %d, host input %q, stderr %q", code, bmc.HostInput(), errOut)
	}
}

// TestSolInterruptLogsDetach: SIGINT ends solgate sol with 130 and a detach
// event in the log.
func TestSolInterruptLogsDetach(t *testing.T) {
	t.Parallel()
	bmc := startSimBMC(t, bmcsim.Config{PowerOn: true, SOL: bmcsim.SOLConfig{NoBootText: true}})
	logDir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, solgateBin(t), "sol", "-u", "admin", "--follow", "--bmc", bmc.Addr, "node7", "--log-dir", logDir)
	cmd.Env = []string{"IPMI_PASSWORD=" + bmcsimPassword}
	var out testkit.LockedBuffer
	cmd.Stdout = &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	must(t, cmd.Start())
	waitFor(t, "the console", 30*time.Second, func() bool {
		bmc.HostWrite([]byte("hello\r\n"))
		time.Sleep(50 * time.Millisecond)
		return strings.Contains(out.String(), "hello")
	})
	must(t, cmd.Process.Signal(syscall.SIGINT))
	err := cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 130 {
		t.Fatalf("after SIGINT: %v, want exit 130", err)
	}
	kinds, _ := logEvents(t, logDir, "node7")
	if len(kinds) != 2 || kinds[0] != logstore.EventAttach || kinds[1] != logstore.EventDetach {
		t.Errorf("log events %v, want [attach detach]", kinds)
	}
}

// TestSolStalledStdoutKeepsLogging: with --log-dir, a stdout nobody reads
// (a stalled terminal) does not stall the recording: the whole stream
// reaches the log, far more than the pipe, the terminal buffer and the
// SOL engine's buffer together could hold.
func TestSolStalledStdoutKeepsLogging(t *testing.T) {
	t.Parallel()
	bmc := startSimBMC(t, bmcsim.Config{PowerOn: true, SOL: bmcsim.SOLConfig{NoBootText: true, NoEcho: true}})
	logDir := t.TempDir()
	r, w, err := os.Pipe()
	must(t, err)
	defer r.Close() // never read: the pipe fills at 64 KiB
	ctx, cancel := context.WithTimeout(context.Background(), 180*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, solgateBin(t), "sol", "-u", "admin", "--follow", "--bmc", bmc.Addr, "node9", "--log-dir", logDir)
	cmd.Env = []string{"IPMI_PASSWORD=" + bmcsimPassword}
	cmd.Stdout = w
	var errb testkit.LockedBuffer
	cmd.Stderr = &errb
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	must(t, cmd.Start())
	w.Close()
	defer func() { cmd.Process.Kill(); cmd.Wait() }()

	// 3 MiB: more than the pipe (64 KiB), the terminal buffer (1 MiB)
	// and the SOL read buffer (1 MiB) together, so a stalled stdout
	// that held the copy back would stop the stream short of it.
	const total = 3 << 20
	streamDone := make(chan error, 1)
	go func() { streamDone <- bmc.Stream(ctx, 0, total) }()
	want := string(bmcsim.AppendStreamText(nil, 0, total))
	store, err := logstore.Open(logDir, logstore.Options{ReadOnly: true})
	must(t, err)
	defer store.Close()
	logged := func() int {
		n := 0
		for rec, err := range store.Records(ctx, "node9", logstore.Query{}) {
			if err != nil {
				return n
			}
			if rec.Event == "" {
				n += len(rec.Data)
			}
		}
		return n
	}
	deadline := time.Now().Add(150 * time.Second)
	for logged() < total {
		if time.Now().After(deadline) {
			t.Fatalf("after 150s the log has %d of %d bytes: stdout stalled the recording\nstderr: %s", logged(), total, errb.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
	if err := <-streamDone; err != nil {
		t.Fatalf("stream: %v", err)
	}
	must(t, cmd.Process.Signal(syscall.SIGINT))
	cmd.Wait()
	_, text := logEvents(t, logDir, "node9")
	if text != want {
		t.Errorf("log text differs from the stream (%d bytes, want %d)", len(text), len(want))
	}
}
