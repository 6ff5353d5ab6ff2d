package test

import (
	"bufio"
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/solgate/solgate/test/internal/testkit"
)

// tmuxPane is one tmux window on a private server, running a command with
// a real PTY.
type tmuxPane struct {
	t    *testing.T
	bin  string
	sock string
}

// startTmux runs argv in a cols x rows tmux window. When argv exits, the
// pane prints "EXIT=<status>" and stays.
func startTmux(t *testing.T, dir string, cols, rows int, argv []string) *tmuxPane {
	t.Helper()
	p := &tmuxPane{t: t, bin: needTool(t, "tmux"), sock: filepath.Join(dir, "tmux.sock")}
	script := shellQuote(argv) + `; echo "EXIT=$?"; sleep 3600`
	p.tmux("-f", "/dev/null", "new-session", "-d", "-s", "main", "-x", itoa(cols), "-y", itoa(rows), "sh", "-c", script)
	t.Cleanup(func() { exec.Command(p.bin, "-S", p.sock, "kill-server").Run() })
	return p
}

func (p *tmuxPane) tmux(args ...string) string {
	p.t.Helper()
	out, err := exec.Command(p.bin, append([]string{"-S", p.sock}, args...)...).CombinedOutput()
	if err != nil {
		p.t.Fatalf("tmux %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// typeText types text literally; keys sends tmux key names (C-e, Enter).
func (p *tmuxPane) typeText(text string) { p.tmux("send-keys", "-t", "main", "-l", text) }
func (p *tmuxPane) keys(k ...string)     { p.tmux(append([]string{"send-keys", "-t", "main"}, k...)...) }

// screen is the pane's text now, scroll-back included.
func (p *tmuxPane) screen() string {
	return p.tmux("capture-pane", "-p", "-J", "-S", "-200", "-t", "main")
}

// waitScreen waits until the pane shows want.
func (p *tmuxPane) waitScreen(what, want string) {
	p.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(p.screen(), want) {
		if time.Now().After(deadline) {
			p.t.Fatalf("%s: the pane never showed %q; it shows:\n%s", what, want, p.screen())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func shellQuote(argv []string) string {
	var b strings.Builder
	for i, a := range argv {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString("'" + strings.ReplaceAll(a, "'", `'\''`) + "'")
	}
	return b.String()
}

func itoa(n int) string { return strconv.Itoa(n) }

// TestGatewayOpenSSHAttach: the stock OpenSSH client under tmux attaches
// to a bmcsim console through solgate serve: the replay, typing and the
// echo, the escape help, a power cycle from the escape menu, ~B as a SOL
// break, a resize, and the detach.
func TestGatewayOpenSSHAttach(t *testing.T) {
	g := startGateway(t, gwOptions{})
	bmc := g.bmcs["node1"]
	bmc.HostWrite([]byte("replay-marker-before-attach\r\n"))
	waitFor(t, "the marker in the log", 20*time.Second, func() bool {
		out, _, _ := g.run("alice", "node1", "tail -n 50")
		return strings.Contains(out, "replay-marker-before-attach")
	})
	ssh := needTool(t, "ssh")
	pane := startTmux(t, g.dir, 100, 30, append([]string{ssh}, g.sshArgs("alice", "-t", "node1@127.0.0.1")...))
	pane.waitScreen("the banner", "you are rw")
	pane.waitScreen("the replay", "replay-marker-before-attach")

	pane.typeText("echo-this-please")
	pane.waitScreen("the echo", "echo-this-please")
	waitFor(t, "the typed bytes at the BMC", 20*time.Second, func() bool {
		return strings.Contains(string(bmc.HostInput()), "echo-this-please")
	})

	pane.keys("C-e")
	pane.typeText("c?")
	pane.waitScreen("the escape help", "escape commands")

	offs := bmc.Stats().PowerOffs
	pane.keys("C-e")
	pane.typeText("c!c")
	pane.waitScreen("the confirmation", "[y/N]")
	pane.typeText("y")
	waitFor(t, "the chassis to cycle", 30*time.Second, func() bool { return bmc.Stats().PowerOffs > offs })

	breaks := bmc.Stats().SOLBreaks
	pane.keys("Enter")
	pane.typeText("~B")
	waitFor(t, "~B as a SOL break", 30*time.Second, func() bool { return bmc.Stats().SOLBreaks > breaks })

	pane.tmux("resize-window", "-t", "main", "-x", "132", "-y", "43")
	pane.typeText("after-resize")
	pane.waitScreen("the echo after a resize", "after-resize")

	pane.keys("C-e")
	pane.typeText("c.")
	pane.waitScreen("the detach", "EXIT=0")
}

// TestGatewayOpenSSHExec: exec commands through ssh, the host key kept
// across a restart, and password authentication refused.
func TestGatewayOpenSSHExec(t *testing.T) {
	g := startGateway(t, gwOptions{})
	bmc := g.bmcs["node1"]
	for i := 1; i <= 8; i++ {
		bmc.HostWrite([]byte("tail-line-" + itoa(i) + "\r\n"))
	}
	out, errOut, code := g.ssh("alice", "node1@127.0.0.1", "power", "status")
	if code != 0 || out != "node1: on\n" {
		t.Errorf("ssh node1@ power status: %d %q %q", code, out, errOut)
	}
	waitFor(t, "the lines in the log", 20*time.Second, func() bool {
		out, _, _ = g.ssh("alice", "node1@127.0.0.1", "tail", "-n", "5")
		return strings.Contains(out, "tail-line-8")
	})
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != 5 || !strings.Contains(lines[0], "tail-line-4") {
		t.Errorf("tail -n 5: %q", out)
	}
	if _, errOut, code := g.ssh("carol", "node1@127.0.0.1", "power", "cycle"); code != 3 || !strings.Contains(errOut, "you may not control the power of node1") {
		t.Errorf("carol power cycle: %d %q", code, errOut)
	}
	if _, errOut, code := g.ssh("alice", "node9@127.0.0.1", "tail"); code != 2 || !strings.Contains(errOut, `no such console "node9"`) {
		t.Errorf("node9: %d %q", code, errOut)
	}
	// The user name as OpenSSH sends it, in the wrong case: the console
	// meant is named.
	if _, errOut, code := g.ssh("alice", "NODE1@127.0.0.1", "tail"); code != 2 || !strings.Contains(errOut, `no such console "NODE1" (did you mean node1?`) {
		t.Errorf("NODE1: %d %q", code, errOut)
	}
	if out, errOut, code := g.ssh("alice", "node1@127.0.0.1", "tail -n2"); code != 0 || strings.Count(out, "\n") != 2 {
		t.Errorf("tail -n2: %d %q %q", code, out, errOut)
	}
	// "ssh consoles": the login name names no console and nothing is to
	// run, so the consoles alice may use are listed.
	if out, errOut, code := g.ssh("alice", "alice@127.0.0.1"); code != 0 || !strings.Contains(out, "node1") || !strings.Contains(errOut, `no such console "alice"; yours are:`) {
		t.Errorf("ssh alice@ with nothing to run: %d %q %q, want the listing", code, out, errOut)
	}
	// log --boot: a power cycle starts a new boot.
	if out, errOut, code := g.ssh("alice", "node1@127.0.0.1", "power", "cycle"); code != 0 {
		t.Errorf("power cycle: %d %q %q", code, out, errOut)
	}
	waitFor(t, "the new boot's output", 30*time.Second, func() bool {
		out, _, _ := g.ssh("alice", "node1@127.0.0.1", "log", "--boot", "0")
		return strings.Contains(out, "Simulated BIOS") && !strings.Contains(out, "tail-line-8")
	})
	if out, _, code := g.ssh("carol", "node1@127.0.0.1", "log", "--boot", "-1", "--plain"); code != 0 || !strings.Contains(out, "tail-line-8") {
		t.Errorf("log --boot -1: %d %q", code, out)
	}
	// log --list-boots: numbered as --boot takes them, the new one started
	// by alice's power cycle.
	if out, errOut, code := g.ssh("carol", "node1@127.0.0.1", "log", "--list-boots"); code != 0 ||
		!regexp.MustCompile(`(?m)^ +-1  \S+  \S+  .*\n +0  \S+  \(current\) +power cycle by alice`).MatchString(out) {
		t.Errorf("log --list-boots: %d %q %q", code, out, errOut)
	}
	if out, _, code := g.ssh("carol", "list@127.0.0.1"); code != 0 || !strings.Contains(out, "node1") || !strings.Contains(out, "up since") {
		t.Errorf("list: %d %q", code, out)
	}

	// Only public keys: a client that may only use a password gets nowhere.
	_, errOut, code = g.ssh("alice", "-o", "PreferredAuthentications=password", "-o", "PasswordAuthentication=yes", "node1@127.0.0.1", "power", "status")
	if code != 255 || !strings.Contains(errOut, "Permission denied (publickey)") {
		t.Errorf("password login: %d %q", code, errOut)
	}

	// The host key survives a restart: StrictHostKeyChecking=yes still
	// connects with the known_hosts of the first run.
	before := authorizedLine(g.hostKey)
	g.restart()
	if after := authorizedLine(g.hostKey); after != before {
		t.Errorf("host key changed across a restart: %s -> %s", before, after)
	}
	if out, errOut, code := g.ssh("alice", "node1@127.0.0.1", "power", "status"); code != 0 || out != "node1: on\n" {
		t.Errorf("after a restart: %d %q %q", code, out, errOut)
	}
}

// TestGatewayOpenSSHPastAStalledHost: one host holding every
// unauthenticated slot with connections that never handshake does not
// keep the real OpenSSH client, from another host, out.
func TestGatewayOpenSSHPastAStalledHost(t *testing.T) {
	t.Parallel()
	g := startGateway(t, gwOptions{maxUnauth: 4})
	for range 4 {
		c, err := (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}, Timeout: 5 * time.Second}).Dial("tcp", g.addr)
		must(t, err)
		t.Cleanup(func() { c.Close() })
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if line, err := bufio.NewReader(c).ReadString('\n'); err != nil || !strings.HasPrefix(line, "SSH-2.0-") {
			t.Fatalf("stalled connection: %q %v", line, err)
		}
	}
	if out, errOut, code := g.ssh("alice", "node1@127.0.0.1", "power", "status"); code != 0 || out != "node1: on\n" {
		t.Fatalf("ssh from another host with every slot taken: exit %d %q %q, want it let in", code, out, errOut)
	}
}

// TestGatewayOpenSSHLongLine: a console that printed for long without a
// line feed (a progress bar redrawn with CR): tail gives the end of that
// line, at most 64 KiB, with a line saying what it left out; log still
// gives all of it; screen still paints. With the real OpenSSH client.
func TestGatewayOpenSSHLongLine(t *testing.T) {
	g := startGateway(t, gwOptions{})
	bmc := g.bmcs["node1"]
	bmc.HostWrite([]byte("before-the-bar\r\n"))
	var bar []byte
	for i := 0; len(bar) < 96<<10; i++ {
		bar = fmt.Appendf(bar, "\r%6d%% copied", i)
	}
	for i := 0; i < len(bar); i += 4 << 10 {
		bmc.HostWrite(bar[i:min(i+4<<10, len(bar))])
		time.Sleep(100 * time.Millisecond) // within what the simulated BMC sends: its buffer drops beyond
	}
	bmc.HostWrite([]byte("\r\nafter-the-bar\r\n"))
	var out string
	waitFor(t, "the lines in the log", 30*time.Second, func() bool {
		out, _, _ = g.ssh("alice", "node1@127.0.0.1", "tail", "-n", "3")
		return strings.Contains(out, "after-the-bar")
	})
	full := len(bar) + 2
	note := fmt.Sprintf("! cut the first %d bytes of the next line are left out", full-64<<10)
	if !strings.Contains(out, note) || !strings.Contains(out, "before-the-bar") || len(out) > 70<<10 {
		t.Errorf("tail -n 3: %d bytes, want the bar's end (64 KiB) after %q:\n%s", len(out), note, testkit.Tail(out, 300))
	}
	var errOut string
	var code int
	waitFor(t, "the lines on disk", 30*time.Second, func() bool { // log reads what is flushed, tail the rest too
		out, errOut, code = g.ssh("alice", "node1@127.0.0.1", "log", "--raw")
		return strings.Contains(out, "after-the-bar")
	})
	if code != 0 || !strings.Contains(out, string(bar)) {
		t.Errorf("log --raw: exit %d, %d bytes, want the whole bar (%d bytes): %s", code, len(out), len(bar), errOut)
	}
	out, errOut, code = g.ssh("alice", "node1@127.0.0.1", "log")
	if code != 0 || strings.Contains(out, "! cut") || !strings.Contains(out, string(bar[len(bar)-1000:])) || len(out) < len(bar) {
		t.Errorf("log: exit %d, %d bytes (a line under 1 MiB is printed whole): %s", code, len(out), errOut)
	}
	if _, errOut, code := g.ssh("alice", "node1@127.0.0.1", "screen"); code != 0 {
		t.Errorf("screen: exit %d: %s", code, errOut)
	}
}
