package test

import (
	"bufio"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/solgate/solgate/test/internal/testkit"
	"golang.org/x/crypto/ssh"
)

// TestDemoTour runs solgate demo --tour, the smoke test CI runs: a
// simulated fleet and the whole daemon, an in-process SSH attach with a
// power cycle, exec commands, an attach with OpenSSH's ssh, solgate grep
// and log, ipmitool against a simulated BMC, bmc doctor finding and fixing
// the misconfigured BMC, ctl reopen and status, a metrics scrape. Every
// step must pass and none may be skipped (ssh and ipmitool are required).
func TestDemoTour(t *testing.T) {
	t.Parallel()
	needTool(t, "ssh")
	needTool(t, "ipmitool")
	cmd := exec.Command(solgateBin(t), "demo", "--tour", "-n", "8", "--listen", "127.0.0.1:0", "--metrics", "127.0.0.1:0")
	tmp := t.TempDir()
	cmd.Env = append(os.Environ(), "TMPDIR="+tmp)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	cmd.WaitDelay = time.Second
	done := make(chan struct{})
	var out []byte
	var err error
	go func() { out, err = cmd.CombinedOutput(); close(done) }()
	select {
	case <-done:
	case <-time.After(3 * time.Minute):
		cmd.Process.Kill()
		<-done
		t.Fatalf("solgate demo --tour still running after 3 minutes:\n%s", out)
	}
	s := string(out)
	if err != nil || !strings.Contains(s, "solgate demo --tour: all 13 steps passed") {
		t.Fatalf("solgate demo --tour: %v\n%s", err, s)
	}
	if n := strings.Count(s, "\n-- ok ("); n != 13 || strings.Contains(s, "-- skipped") {
		t.Errorf("%d steps ok, want 13, none skipped:\n%s", n, s)
	}
	for _, want := range []string{"the same attach with OpenSSH's ssh", "attached with ", "typed 'hello from the tour': echoed by the node",
		"Ctrl-E c ! c, y: power cycle", "Chassis Power is on", "node08: ok", "up  8  node[01-08]"} {
		if !strings.Contains(s, want) {
			t.Errorf("the tour's report lacks %q", want)
		}
	}
	// Its temporary directory is gone.
	if left, _ := filepath.Glob(filepath.Join(tmp, "solgate-demo-*")); len(left) > 0 {
		t.Errorf("solgate demo left %v behind", left)
	}
}

// TestDemoInteractive runs solgate demo as a person would: it lets in the
// key found in ~/.ssh, prints the commands to try, and the printed ssh
// command attaches with OpenSSH; Ctrl-C (SIGINT) stops everything within
// seconds and keeps the --dir it was given.
func TestDemoInteractive(t *testing.T) {
	t.Parallel()
	sshBin := needTool(t, "ssh")
	home := t.TempDir()
	must(t, os.Mkdir(filepath.Join(home, ".ssh"), 0o700))
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	must(t, err)
	blk, err := ssh.MarshalPrivateKey(priv, "test key")
	must(t, err)
	keyPath := filepath.Join(home, ".ssh", "id_ed25519")
	must(t, os.WriteFile(keyPath, pem.EncodeToMemory(blk), 0o600))
	spub, err := ssh.NewPublicKey(pub)
	must(t, err)
	must(t, os.WriteFile(keyPath+".pub", ssh.MarshalAuthorizedKey(spub), 0o644))

	// A second key, only in an ssh-agent.
	agentSock := ""
	if agentBin, addBin := testkit.FindTool("ssh-agent"), testkit.FindTool("ssh-add"); agentBin != "" && addBin != "" {
		agentSock = filepath.Join(home, "agent.sock")
		agent := exec.Command(agentBin, "-D", "-a", agentSock)
		agent.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		must(t, agent.Start())
		t.Cleanup(func() { agent.Process.Kill(); agent.Wait() })
		_, apriv, err := ed25519.GenerateKey(rand.Reader)
		must(t, err)
		ablk, err := ssh.MarshalPrivateKey(apriv, "agent key")
		must(t, err)
		akey := filepath.Join(t.TempDir(), "agent_key")
		must(t, os.WriteFile(akey, pem.EncodeToMemory(ablk), 0o600))
		deadline := time.Now().Add(10 * time.Second)
		for {
			add := exec.Command(addBin, akey)
			add.Env = append(os.Environ(), "SSH_AUTH_SOCK="+agentSock)
			out, err := add.CombinedOutput()
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("ssh-add: %v\n%s", err, out)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	dir := filepath.Join(t.TempDir(), "demo")
	cmd := exec.Command(solgateBin(t), "demo", "-n", "3", "--dir", dir, "--listen", "127.0.0.1:0", "--metrics", "127.0.0.1:0")
	cmd.Env = append(os.Environ(), "HOME="+home, "SSH_AUTH_SOCK="+agentSock)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stdout, err := cmd.StdoutPipe()
	must(t, err)
	var stderr testkit.LockedBuffer
	cmd.Stderr = &stderr
	start := time.Now()
	must(t, cmd.Start())
	exited := make(chan error, 1)
	lines := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		exited <- cmd.Wait()
	}()
	t.Cleanup(func() {
		select {
		case <-exited:
		default:
			cmd.Process.Kill()
		}
	})
	var printed []string
	var attach string
	deadline := time.After(30 * time.Second)
	for attach == "" {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("solgate demo ended early:\n%s\n%s", strings.Join(printed, "\n"), stderr.String())
			}
			printed = append(printed, l)
			if m := regexp.MustCompile(`^\s+(ssh -p \d+ node01@127\.0\.0\.1)$`).FindStringSubmatch(l); m != nil {
				attach = m[1]
			}
		case <-deadline:
			t.Fatalf("no ssh command printed within 30s:\n%s", strings.Join(printed, "\n"))
		}
	}
	if time.Since(start) > 20*time.Second {
		t.Errorf("the demo took %v to start", time.Since(start))
	}
	text := strings.Join(printed, "\n")
	agentKeys := 0
	if agentSock != "" {
		agentKeys = 1
	}
	if want := fmt.Sprintf("with your keys (1 from ~/.ssh/*.pub, %d from the agent)", agentKeys); !strings.Contains(text, want) {
		t.Errorf("the demo does not say %q:\n%s", want, text)
	}
	// The printed command, with the key from ~/.ssh (ssh's own default
	// identity under HOME), runs an exec command.
	args := strings.Fields(attach)[1:]
	kh := filepath.Join(home, "known_hosts")
	run := exec.Command(sshBin, append([]string{"-F", "/dev/null", "-i", keyPath, "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes",
		"-o", "StrictHostKeyChecking=accept-new", "-o", "UserKnownHostsFile=" + kh, "-o", "LogLevel=ERROR"}, append(args, "power", "status")...)...)
	run.Env = append(os.Environ(), "HOME="+home, "SSH_AUTH_SOCK=")
	out, err := runWithin(run, 30*time.Second)
	if err != nil || !strings.Contains(out, "on") {
		t.Errorf("%s power status: %v\n%s", attach, err, out)
	}
	// Ctrl-C.
	must(t, cmd.Process.Signal(syscall.SIGINT))
	var rest []string
	for l := range lines {
		rest = append(rest, l)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("solgate demo after SIGINT: %v\n%s\n%s", err, strings.Join(rest, "\n"), stderr.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatal("solgate demo still running 15s after SIGINT")
	}
	if !strings.Contains(strings.Join(rest, "\n"), "solgate demo: stopped.") {
		t.Errorf("no clean stop reported: %q", rest)
	}
	for _, f := range []string{"solgate.toml", "solgate.log", "log/node01"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("--dir lost %s: %v", f, err)
		}
	}
	// The simulated BMCs answered the consoles' deactivations: stopped
	// with the daemon, they left each unanswered until the IPMI timeout
	// (2 s), and the demo's stop took that.
	dlog, _ := os.ReadFile(filepath.Join(dir, "solgate.log"))
	m := regexp.MustCompile(`msg="conserver: all consoles stopped" consoles=\d+ took=(\S+)`).FindSubmatch(dlog)
	if m == nil {
		t.Errorf("the daemon log does not say the consoles stopped:\n%s", dlog)
	} else if took, err := time.ParseDuration(string(m[1])); err != nil || took >= 1500*time.Millisecond {
		t.Errorf("the consoles took %s to stop (%v): the simulated BMCs did not answer their deactivation", m[1], err)
	}
}

// runWithin runs cmd and returns its combined output, killing it after d.
func runWithin(cmd *exec.Cmd, d time.Duration) (string, error) {
	var b testkit.LockedBuffer
	cmd.Stdout, cmd.Stderr = &b, &b
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return "", err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return b.String(), err
	case <-time.After(d):
		cmd.Process.Kill()
		<-done
		return b.String(), io.ErrUnexpectedEOF
	}
}
