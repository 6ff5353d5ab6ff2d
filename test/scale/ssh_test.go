package scale

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/solgate/solgate/test/internal/testkit"
	gossh "golang.org/x/crypto/ssh"
)

// sshPeople is how many people the sessions are spread over (each with
// a key of its own), so the per-person session limit keeps its default.
const sshPeople = 10

// sshFleet is the gateway side of the SSH scenario: the people's keys
// and the daemon's [[user]] and [[access]] entries.
type sshFleet struct {
	dir     string
	signers []gossh.Signer
	keyFile []string
	port    int
	hostKey gossh.PublicKey
}

func newSSHFleet(t *testing.T) *sshFleet {
	s := &sshFleet{dir: t.TempDir(), port: freeTCPPort(t)}
	for i := range sshPeople {
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		must(t, err)
		sg, err := gossh.NewSignerFromKey(priv)
		must(t, err)
		block, err := gossh.MarshalPrivateKey(priv, fmt.Sprintf("op%d", i+1))
		must(t, err)
		path := filepath.Join(s.dir, fmt.Sprintf("id_op%d", i+1))
		must(t, os.WriteFile(path, pem.EncodeToMemory(block), 0o600))
		s.signers = append(s.signers, sg)
		s.keyFile = append(s.keyFile, path)
	}
	return s
}

// config is the [[user]] and [[access]] part of solgate.toml.
func (s *sshFleet) config() string {
	var b strings.Builder
	var names []string
	for i, sg := range s.signers {
		name := fmt.Sprintf("op%d", i+1)
		names = append(names, strconv.Quote(name))
		fmt.Fprintf(&b, "[[user]]\nname = %q\nkeys = [%q]\n\n", name, strings.TrimSpace(string(gossh.MarshalAuthorizedKey(sg.PublicKey()))))
	}
	fmt.Fprintf(&b, "[[access]]\nconsoles = \"*\"\nread = [%s]\nwrite = [%s]\n\n", strings.Join(names, ", "), strings.Join(names, ", "))
	return b.String()
}

// attach opens an SSH connection as person to console with a PTY and a
// shell (the console), as `ssh -t console@gateway` does.
func (s *sshFleet) attach(person int, console string) (*gossh.Client, *gossh.Session, io.Reader, io.WriteCloser, error) {
	addr := fmt.Sprintf("127.0.0.1:%d", s.port)
	cfg := &gossh.ClientConfig{User: console, Auth: []gossh.AuthMethod{gossh.PublicKeys(s.signers[person])},
		HostKeyCallback: gossh.FixedHostKey(s.hostKey), Timeout: 20 * time.Second}
	c, err := gossh.Dial("tcp", addr, cfg)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	sess, err := c.NewSession()
	if err != nil {
		c.Close()
		return nil, nil, nil, nil, err
	}
	out, _ := sess.StdoutPipe()
	in, _ := sess.StdinPipe()
	if err := sess.RequestPty("xterm", 24, 80, gossh.TerminalModes{}); err != nil {
		c.Close()
		return nil, nil, nil, nil, err
	}
	if err := sess.Shell(); err != nil {
		c.Close()
		return nil, nil, nil, nil, err
	}
	return c, sess, out, in, nil
}

// sshCounts are the SSH scenario's tallies, updated by every session.
type sshCounts struct {
	attaches, detachEscape, detachClose, withOutput, failures atomic.Int64
	openssh, opensshOK                                        atomic.Int64
	live, peak                                                atomic.Int64
	mu                                                        sync.Mutex
	firstErr                                                  error
}

func (c *sshCounts) fail(err error) {
	c.failures.Add(1)
	c.mu.Lock()
	if c.firstErr == nil {
		c.firstErr = err
	}
	c.mu.Unlock()
}

// TestSSHSessions: N SSH sessions (1,000 at full size; x/crypto clients,
// and a few OpenSSH clients among them) attach to consoles that print,
// stay a random while, detach (half with the escape ^Ec., half by
// closing the connection) and attach again, for a while. Afterwards the
// daemon's goroutines (counted from the Go runtime's scheduler trace) and
// open files must be back where they started, and its memory is
// followed until the runtime returned it; the consoles' SOL sessions and
// logs must not notice.
func TestSSHSessions(t *testing.T) {
	scenario(t)
	sshBin := requireTool(t, "ssh")
	n := knob("SSH_CONSOLES", 8, 1000)
	sessions := knob("SSH_SESSIONS", 20, 1000)
	real := knob("SSH_OPENSSH", 2, 20)
	d := knobDuration("SSH_SECONDS", 4*time.Second, 5*time.Minute)
	holdMin, holdMax := 500*time.Millisecond, 2*time.Second
	if full {
		holdMin, holdMax = 10*time.Second, 50*time.Second
	}
	rp := newReport(t, "SSH sessions", "solgate", fmt.Sprintf("%s sessions (%d of them OpenSSH) attaching and detaching on %s consoles for %v, each staying %v-%v",
		comma(sessions), real, comma(n), d, holdMin, holdMax), "goroutines, fds and memory back to where they started")
	f := newFleet(t, n, knob("PER_PROCESS", 20, 500), "--no-boot-text", "--stream", "50")
	gw := newSSHFleet(t)
	cfg := newServeConfig(t, f, fmt.Sprintf("ssh_max_sessions = %d\nssh_max_unauthenticated = 256", sessions+100))
	cfg.listen = fmt.Sprintf("127.0.0.1:%d", gw.port)
	cfg.entries = gw.config()
	trace := time.Second
	if full {
		trace = 10 * time.Second
	}
	p := startServeTraced(t, cfg.write(t), filepath.Join(cfg.dir, "serve.log"), trace)
	p.waitUp(n, 3*time.Minute)
	// The key the gateway presents (it keeps only the private key, in
	// state_dir): what a person accepts at the first connection.
	gw.hostKey = presentedHostKey(t, gw.port)
	time.Sleep(pause())
	before, _ := readProc(p.pid())
	g0 := p.goroutinesAfter(time.Now(), 3*trace)
	s := startSampler(p.pid(), time.Second)

	var counts sshCounts
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var wg sync.WaitGroup
	hold := func() time.Duration { return holdMin + time.Duration(mrand.Int64N(int64(holdMax-holdMin))) }
	for i := range sessions {
		console := f.names[i%n]
		person := i % sshPeople
		if i < real {
			wg.Go(func() { opensshLoop(ctx, t, gw, sshBin, person, console, hold, &counts) })
		} else {
			wg.Go(func() { xsshLoop(ctx, gw, person, console, hold, &counts) })
		}
		if full {
			time.Sleep(20 * time.Millisecond) // a ramp: 50 handshakes a second
		}
	}
	wg.Wait()
	time.Sleep(pause() + time.Second) // the last sessions' goroutines end; idle connections close
	after, _ := readProc(p.pid())
	g1 := p.goroutinesAfter(time.Now(), 3*trace)
	gPeak := p.log.peakGoroutines()
	// Memory: the Go runtime returns freed pages to the system in the
	// background, over a minute or two.
	memWait := 2 * time.Minute
	if !full {
		memWait = 0 // a -race build's memory is mostly the detector's
	}
	back := before.rssKiB + max(before.rssKiB/5, 4<<10) // within 20% (4 MiB) of where it started
	settled := after
	memStart := time.Now()
	for settled.rssKiB > back && time.Since(memStart) < memWait {
		time.Sleep(5 * time.Second)
		settled, _ = readProc(p.pid())
	}
	memTook := time.Since(memStart)
	first, last, peak := s.stop()
	p.log.update()
	lost := p.log.count("conserver: SOL session lost")
	if err := p.stop(time.Minute); err != nil {
		t.Error(err)
	}
	if _, err := f.stop(); err != nil {
		t.Error(err)
	}
	lt := solgateTotals(t, cfg.logDir, f.names)

	rp.add("%s attaches (peak %s at once), %s detached with ^Ec., %s by closing; %s sessions got console output; %d failures",
		comma(int(counts.attaches.Load())), comma(int(counts.peak.Load())), comma(int(counts.detachEscape.Load())), comma(int(counts.detachClose.Load())),
		comma(int(counts.withOutput.Load())), counts.failures.Load())
	rp.add("OpenSSH: %d of %d runs attached, got output and detached with ^Ec. (exit 0)", counts.opensshOK.Load(), counts.openssh.Load())
	rp.add("goroutines %s before, peak %s, %s after", comma(g0), comma(gPeak), comma(g1))
	rp.add("fds %d before, peak %d, %d after; threads %d/%d/%d", before.fds, peak.fds, after.fds, before.threads, peak.threads, after.threads)
	if settled.rssKiB <= back {
		rp.add("RSS %s before, peak %s, %s after (%s %v later)", mib(before.rssKiB), mib(peak.rssKiB), mib(after.rssKiB), mib(settled.rssKiB), (memTook + pause() + time.Second).Round(time.Second))
	} else {
		rp.add("RSS %s before, peak %s, %s after, still %s %v later", mib(before.rssKiB), mib(peak.rssKiB), mib(after.rssKiB), mib(settled.rssKiB), (memTook + pause() + time.Second).Round(time.Second))
	}
	rp.add("daemon CPU %.0f%% of one core", cpuPct(first, last))
	if counts.failures.Load() > 0 {
		t.Errorf("%d sessions failed, the first: %v", counts.failures.Load(), counts.firstErr)
	}
	if real > 0 && counts.opensshOK.Load() == 0 {
		t.Error("no OpenSSH run succeeded")
	}
	if after.fds > before.fds+2 {
		t.Errorf("open files: %d before the sessions, %d after", before.fds, after.fds)
	}
	if g1 > g0+5 {
		t.Errorf("goroutines: %d before the sessions, %d after", g0, g1)
	}
	if lost > 0 || lt.jumps > 0 || lt.damaged > 0 {
		t.Errorf("the consoles noticed: %d SOL sessions lost, %d jumps, %d bytes damaged in the logs", lost, lt.jumps, lt.damaged)
	}
	checkDaemonLog(t, p)
}

// xsshLoop attaches with x/crypto/ssh, reads for a while, detaches, and
// again, until ctx ends.
func xsshLoop(ctx context.Context, gw *sshFleet, person int, console string, hold func() time.Duration, c *sshCounts) {
	for k := 0; ctx.Err() == nil; k++ {
		client, sess, out, in, err := gw.attach(person, console)
		if err != nil {
			if ctx.Err() == nil {
				c.fail(fmt.Errorf("%s: attach: %w", console, err))
			}
			time.Sleep(time.Second)
			continue
		}
		c.attaches.Add(1)
		live := c.live.Add(1)
		for {
			p := c.peak.Load()
			if live <= p || c.peak.CompareAndSwap(p, live) {
				break
			}
		}
		var got atomic.Int64
		readDone := make(chan struct{})
		go func() {
			defer close(readDone)
			buf := make([]byte, 4096)
			for {
				n, err := out.Read(buf)
				if bytes.Contains(buf[:n], []byte(streamMark)) {
					got.Store(1)
				}
				if err != nil {
					return
				}
			}
		}()
		select {
		case <-ctx.Done():
		case <-time.After(hold()):
		}
		for wait := time.Now(); got.Load() == 0 && time.Since(wait) < 15*time.Second; {
			time.Sleep(50 * time.Millisecond) // as opensshLoop: some output first
		}
		if k%2 == 0 {
			// The escape: Ctrl-E c . detaches; the gateway ends the
			// session, then the client closes the connection.
			in.Write([]byte{0x05, 'c', '.'})
			select {
			case <-readDone:
				c.detachEscape.Add(1)
			case <-time.After(10 * time.Second):
				c.fail(fmt.Errorf("%s: still attached 10 s after ^Ec.", console))
			}
		} else {
			c.detachClose.Add(1)
		}
		sess.Close()
		client.Close()
		<-readDone
		c.live.Add(-1)
		if got.Load() == 1 {
			c.withOutput.Add(1)
		}
	}
}

// opensshLoop is xsshLoop with the OpenSSH client (ssh -tt), detaching
// with ^Ec. each time.
func opensshLoop(ctx context.Context, t *testing.T, gw *sshFleet, bin string, person int, console string, hold func() time.Duration, c *sshCounts) {
	for ctx.Err() == nil {
		cmd := exec.Command(bin, "-F", "/dev/null", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no",
			"-o", "UserKnownHostsFile=/dev/null", "-o", "GlobalKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR",
			"-o", "IdentitiesOnly=yes", "-o", "IdentityAgent=none", "-o", "ConnectTimeout=20",
			"-i", gw.keyFile[person], "-p", strconv.Itoa(gw.port), "-tt", console+"@127.0.0.1")
		var out testkit.LockedBuffer
		cmd.Stdout, cmd.Stderr = &out, &out
		in, err := cmd.StdinPipe()
		if err != nil {
			c.fail(err)
			return
		}
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		if err := cmd.Start(); err != nil {
			c.fail(err)
			return
		}
		c.openssh.Add(1)
		c.attaches.Add(1)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case <-ctx.Done():
		case <-time.After(hold()):
		}
		// A whole stream line, not only a part: on a loaded machine the
		// replay can be all event lines and the hold end mid-line, so wait
		// (bounded) until one has come before detaching.
		for wait := time.Now(); !out.Contains(streamMark) && time.Since(wait) < 15*time.Second; {
			time.Sleep(50 * time.Millisecond)
		}
		in.Write([]byte{0x05, 'c', '.'})
		select {
		case err := <-done:
			if err == nil && out.Contains(streamMark) {
				c.opensshOK.Add(1)
				c.detachEscape.Add(1)
				c.withOutput.Add(1)
			} else if ctx.Err() == nil {
				c.fail(fmt.Errorf("ssh %s: %v: %s", console, err, testkit.Tail(out.String(), 300)))
			}
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
			c.fail(fmt.Errorf("ssh %s still running 10 s after ^Ec.: %s", console, testkit.Tail(out.String(), 300)))
		}
	}
}

// streamMark is part of every line the numbered streams print.
const streamMark = "ABCDEFGHIJ"

// presentedHostKey connects to the gateway and returns the host key it
// presents (the handshake stops there).
func presentedHostKey(t *testing.T, port int) gossh.PublicKey {
	t.Helper()
	var key gossh.PublicKey
	cfg := &gossh.ClientConfig{User: "list", HostKeyCallback: func(_ string, _ net.Addr, k gossh.PublicKey) error {
		key = k
		return fmt.Errorf("host key read")
	}, Timeout: 10 * time.Second}
	// The consoles can be up before the gateway listens (it starts after
	// the manager): a refused connection is tried again, bounded.
	var err error
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		var c *gossh.Client
		c, err = gossh.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port), cfg)
		if c != nil {
			c.Close()
		}
		if key != nil || !errors.Is(err, syscall.ECONNREFUSED) || time.Now().After(deadline) {
			break
		}
	}
	if key == nil {
		t.Fatalf("no host key from the gateway: %v", err)
	}
	return key
}
