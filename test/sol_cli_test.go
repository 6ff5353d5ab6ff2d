package test

import (
	"context"
	"io"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/solgate/solgate/logstore"
	"github.com/solgate/solgate/test/internal/testkit"
)

func waitFor(t testing.TB, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestSolCommandIPMISim drives `solgate sol` without a terminal against
// ipmi_sim: stdin reaches the node's serial port, the node's output
// reaches stdout, and the process exits cleanly when stdin ends.
func TestSolCommandIPMISim(t *testing.T) {
	sim, serial := startIPMISimSOL(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	logDir := t.TempDir()
	cmd := exec.CommandContext(ctx, solgateBin(t), "sol", "-u", "admin", "-C", "3", "--eof-wait", "2s", "--log-dir", logDir, "--bmc", sim.Addr, "node42")
	cmd.Env = []string{"IPMI_PASSWORD=secret"}
	stdin, err := cmd.StdinPipe()
	must(t, err)
	var out, errb testkit.LockedBuffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	must(t, cmd.Start())

	// Output: the node prints; it must appear on stdout.
	serialIn := &testkit.LockedBuffer{}
	go io.Copy(serialIn, serial)
	waitFor(t, "the console to connect", 10*time.Second, func() bool {
		serial.Write([]byte("login: "))
		time.Sleep(100 * time.Millisecond)
		return strings.Contains(out.String(), "login: ")
	})
	// Input: what a script types reaches the serial port.
	io.WriteString(stdin, "root\r")
	waitFor(t, "typed input on the serial port", 10*time.Second, func() bool { return strings.Contains(serialIn.String(), "root\r") })
	serial.Write([]byte("\r\nWelcome to node42\r\n"))
	waitFor(t, "output after login", 10*time.Second, func() bool { return strings.Contains(out.String(), "Welcome to node42") })
	stdin.Close()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("solgate sol: %v\nstderr: %s", err, errb.String())
	}

	// --log-dir recorded the session: the output between an attach and a
	// detach event.
	store, err := logstore.Open(logDir, logstore.Options{ReadOnly: true})
	must(t, err)
	defer store.Close()
	lines, err := store.Tail("node42", 100)
	must(t, err)
	var text strings.Builder
	var events []logstore.EventKind
	for _, l := range lines {
		if l.Event != "" {
			events = append(events, l.Event)
		}
		text.Write(l.Text)
	}
	if !strings.Contains(text.String(), "Welcome to node42") || len(events) != 2 || events[0] != logstore.EventAttach || events[1] != logstore.EventDetach {
		t.Fatalf("log store has events %v and text %q", events, text.String())
	}
}
