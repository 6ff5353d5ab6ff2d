package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"golang.org/x/crypto/ssh"

	"github.com/solgate/solgate/conserver"
	"github.com/solgate/solgate/conserver/hostlist"
)

// tourStep is one step of solgate demo --tour: what a user would type,
// and a check that it did what it should.
type tourStep struct {
	title string
	cmd   string // the command a user would type ("" for a wait)
	run   func(ctx context.Context) (string, error)
}

// tour runs every step, printing what each did; it fails if any step
// failed (and runs the rest anyway: one report shows everything).
func (dm *demo) tour(ctx context.Context) error {
	first, second, third := dm.names[0], dm.names[min(1, len(dm.names)-1)], dm.names[min(2, len(dm.names)-1)]
	last := dm.names[len(dm.names)-1]
	all := hostlist.Compress(dm.names)
	ssh := func(console string, rest string) string {
		return strings.TrimSpace(fmt.Sprintf(dm.sshArgs(true), console) + " " + rest)
	}
	steps := []tourStep{
		{"every console connects; the misconfigured BMC's console does not", "", dm.stepConsoles},
		{"attach to " + first + ", type, see the help, power-cycle it from inside, detach", ssh(first, ""), func(ctx context.Context) (string, error) { return dm.stepAttach(ctx, first) }},
		{"a command instead of an attach", ssh(second, "power status"), func(ctx context.Context) (string, error) { return dm.stepExec(ctx, second, "power status", "on") }},
		{"the consoles this key may use", ssh("list", ""), func(ctx context.Context) (string, error) { return dm.stepExec(ctx, "list", "", first) }},
		{"the same attach with OpenSSH's ssh", ssh(third, "-tt"), func(ctx context.Context) (string, error) { return dm.stepOpenSSH(ctx, third) }},
		{"search every console's log", dm.self + " grep -c " + dm.cfgPath + " 'Hostname set to' '" + all + "'", dm.stepGrep},
		{"the boots of " + first + " (the power cycle made one)", dm.self + " log -c " + dm.cfgPath + " " + first + " --list-boots", func(ctx context.Context) (string, error) { return dm.stepBoots(ctx, first) }},
		{"ipmitool against a simulated BMC", "ipmitool -I lanplus -C 17 -H ... -U admin -P ... chassis power status", func(ctx context.Context) (string, error) { return dm.stepIpmitool(ctx, 1) }},
		{"what is wrong with " + last + "'s BMC", dm.self + " bmc doctor -c " + dm.cfgPath + " " + last, func(ctx context.Context) (string, error) { return dm.stepDoctor(ctx, last, false) }},
		{"fix it as doctor says, check again", dm.self + " bmc set ... / bmc user ... / bmc doctor", func(ctx context.Context) (string, error) { return dm.stepFix(ctx, last) }},
		{"reconnect " + last + " now instead of at its next retry", dm.self + " ctl -c " + dm.cfgPath + " reopen " + last, func(ctx context.Context) (string, error) { return dm.stepReopen(ctx, last) }},
		{"the daemon's view", dm.self + " ctl -c " + dm.cfgPath + " status", dm.stepStatus},
		{"Prometheus metrics", "curl http://" + dm.metrics + "/metrics", dm.stepMetrics},
	}
	failed := 0
	for i, s := range steps {
		fmt.Fprintf(dm.out, "\n== %d/%d %s\n", i+1, len(steps), s.title)
		if s.cmd != "" {
			fmt.Fprintf(dm.out, "$ %s\n", s.cmd)
		}
		sctx, cancel := context.WithTimeout(ctx, 60*time.Second)
		start := time.Now()
		out, err := s.run(sctx)
		cancel()
		if out = strings.TrimRight(out, "\n"); out != "" {
			for _, l := range strings.Split(out, "\n") {
				fmt.Fprintf(dm.out, "   %s\n", l)
			}
		}
		took := time.Since(start).Round(time.Millisecond)
		var skip errSkipped
		switch {
		case errors.As(err, &skip):
			fmt.Fprintf(dm.out, "-- skipped: %s\n", skip)
		case err != nil:
			failed++
			fmt.Fprintf(dm.out, "-- FAILED (%v): %v\n", took, err)
		default:
			fmt.Fprintf(dm.out, "-- ok (%v)\n", took)
		}
		if ctx.Err() != nil {
			return interruptedOr(ctx, errors.New("demo --tour: interrupted"))
		}
	}
	if failed > 0 {
		return &exitError{code: 1, msg: fmt.Sprintf("demo --tour: %d of %d steps failed (the daemon's log: %s)", failed, len(steps), filepath.Join(dm.dir, "solgate.log"))}
	}
	fmt.Fprintf(dm.out, "\nsolgate demo --tour: all %d steps passed\n", len(steps))
	return nil
}

func interruptedOr(ctx context.Context, err error) error {
	if e := interrupted(ctx, "the tour"); e != nil {
		return e
	}
	return err
}

// errSkipped is a step that could not run here (a peer program missing).
type errSkipped string

func (e errSkipped) Error() string { return string(e) }

// poll calls cond every 50 ms until it returns nil or ctx ends, and
// returns its last error then.
func poll(ctx context.Context, cond func() error) error {
	for {
		err := cond()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (dm *demo) stepConsoles(ctx context.Context) (string, error) {
	last := dm.names[len(dm.names)-1]
	var up []string
	var bad conserver.Status
	err := poll(ctx, func() error {
		up = up[:0]
		for _, n := range dm.names[:len(dm.names)-1] {
			if dm.consoleState(n).State == conserver.Up {
				up = append(up, n)
			}
		}
		bad = dm.consoleState(last)
		switch {
		case len(up) < len(dm.names)-1:
			return fmt.Errorf("%d of %d consoles up", len(up), len(dm.names)-1)
		case len(dm.names) > 1 && bad.State != conserver.Down:
			return fmt.Errorf("%s is %s, want down (SOL is disabled on its BMC)", last, bad.State)
		}
		return nil
	})
	out := fmt.Sprintf("up: %s", hostlist.Compress(up))
	if len(dm.names) > 1 {
		out += fmt.Sprintf("\n%s: %s: %s", last, bad.State, bad.Reason)
	}
	return out, err
}

// sshClient connects to the gateway as console (the SSH user name) with
// the demo key, checking the daemon's host key.
func (dm *demo) sshClient(ctx context.Context, console string) (*ssh.Client, error) {
	hk, err := dm.hostKey()
	if err != nil {
		return nil, err
	}
	cfg := &ssh.ClientConfig{User: console, Auth: []ssh.AuthMethod{ssh.PublicKeys(dm.signer)},
		HostKeyCallback: ssh.FixedHostKey(hk), Timeout: 10 * time.Second}
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", dm.listen)
	if err != nil {
		return nil, fmt.Errorf("connect to the gateway: %w", err)
	}
	c, chans, reqs, err := ssh.NewClientConn(nc, dm.listen, cfg)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("ssh: %w", err)
	}
	return ssh.NewClient(c, chans, reqs), nil
}

// hostKey is the gateway's host key, as the daemon keeps it.
func (dm *demo) hostKey() (ssh.PublicKey, error) {
	cfg := dm.d.m.Config()
	if len(cfg.Server.HostKeys) == 0 {
		return nil, errors.New("no host key configured")
	}
	data, err := os.ReadFile(cfg.Server.HostKeys[0])
	if err != nil {
		return nil, fmt.Errorf("host key: %w", err)
	}
	s, err := ssh.ParsePrivateKey(data)
	if err != nil {
		return nil, fmt.Errorf("host key %s: %w", cfg.Server.HostKeys[0], err)
	}
	return s.PublicKey(), nil
}

// syncBuf collects a session's output.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// waitFor waits until the output after offset from holds want, and
// returns the offset after it.
func waitFor(ctx context.Context, b *syncBuf, from int, want string) (int, error) {
	var at int
	err := poll(ctx, func() error {
		s := b.String()
		if from > len(s) {
			from = len(s)
		}
		if i := strings.Index(s[from:], want); i >= 0 {
			at = from + i + len(want)
			return nil
		}
		return fmt.Errorf("no %q in the output; last of it: %q", want, tailOf(s, 200))
	})
	return at, err
}

func tailOf(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// session opens an SSH session to console on the demo's gateway, its
// output (stdout and stderr) collected in out.
func (dm *demo) session(ctx context.Context, console string) (*ssh.Client, *ssh.Session, *syncBuf, error) {
	c, err := dm.sshClient(ctx, console)
	if err != nil {
		return nil, nil, nil, err
	}
	sess, err := c.NewSession()
	if err != nil {
		c.Close()
		return nil, nil, nil, err
	}
	out := &syncBuf{}
	sess.Stdout, sess.Stderr = out, out
	return c, sess, out, nil
}

func (dm *demo) stepAttach(ctx context.Context, console string) (string, error) {
	c, sess, out, err := dm.session(ctx, console)
	if err != nil {
		return "", err
	}
	defer c.Close()
	defer sess.Close()
	in, err := sess.StdinPipe()
	if err != nil {
		return "", err
	}
	if err := sess.RequestPty("xterm", 24, 80, ssh.TerminalModes{}); err != nil {
		return "", fmt.Errorf("pty: %w", err)
	}
	if err := sess.Shell(); err != nil {
		return "", fmt.Errorf("shell: %w", err)
	}
	var report []string
	at, err := waitFor(ctx, out, 0, "login:")
	if err != nil {
		return "", fmt.Errorf("no replay of the console's last lines: %w", err)
	}
	report = append(report, "the banner and the last lines, ending at the login prompt")
	io.WriteString(in, "hello from the tour\r")
	if at, err = waitFor(ctx, out, at, "hello from the tour"); err != nil {
		return strings.Join(report, "\n"), fmt.Errorf("typed text not echoed: %w", err)
	}
	report = append(report, "typed 'hello from the tour': echoed by the node")
	io.WriteString(in, "\x05c?")
	if at, err = waitFor(ctx, out, at, "detach"); err != nil {
		return strings.Join(report, "\n"), fmt.Errorf("no escape help: %w", err)
	}
	report = append(report, "Ctrl-E c ?: the escape commands")
	io.WriteString(in, "\x05c!c")
	if at, err = waitFor(ctx, out, at, "[y/N]"); err != nil {
		return strings.Join(report, "\n"), fmt.Errorf("power cycle not confirmed: %w", err)
	}
	io.WriteString(in, "y")
	if at, err = waitFor(ctx, out, at, "Simulated BIOS"); err != nil {
		return strings.Join(report, "\n"), fmt.Errorf("no boot after the power cycle: %w", err)
	}
	report = append(report, "Ctrl-E c ! c, y: power cycle; the BIOS screen and the boot follow")
	if _, err = waitFor(ctx, out, at, "login:"); err != nil {
		return strings.Join(report, "\n"), fmt.Errorf("the boot did not reach the login prompt: %w", err)
	}
	io.WriteString(in, "\x05c.")
	done := make(chan error, 1)
	go func() { done <- sess.Wait() }()
	select {
	case <-done:
	case <-ctx.Done():
		return strings.Join(report, "\n"), errors.New("Ctrl-E c . did not end the session")
	}
	report = append(report, "Ctrl-E c .: detached")
	return strings.Join(report, "\n"), nil
}

func (dm *demo) stepExec(ctx context.Context, console, cmd, want string) (string, error) {
	c, sess, out, err := dm.session(ctx, console)
	if err != nil {
		return "", err
	}
	defer c.Close()
	defer sess.Close()
	if cmd == "" {
		err = sess.Shell()
	} else {
		err = sess.Start(cmd)
	}
	if err != nil {
		return "", err
	}
	done := make(chan error, 1)
	go func() { done <- sess.Wait() }()
	select {
	case err = <-done:
	case <-ctx.Done():
		return out.String(), errors.New("no end of output")
	}
	s := out.String()
	if err != nil {
		return s, err
	}
	if !strings.Contains(s, want) {
		return s, fmt.Errorf("the output does not mention %q", want)
	}
	return firstLines(s, 6), nil
}

func firstLines(s string, n int) string {
	l := strings.Split(strings.TrimRight(s, "\r\n"), "\n")
	if len(l) > n {
		l = append(l[:n], fmt.Sprintf("... (%d more lines)", len(l)-n))
	}
	for i := range l {
		l[i] = strings.TrimRight(l[i], "\r")
	}
	return strings.Join(l, "\n")
}

// stepOpenSSH attaches with the ssh binary, when there is one.
func (dm *demo) stepOpenSSH(ctx context.Context, console string) (string, error) {
	bin, err := exec.LookPath("ssh")
	if err != nil {
		return "", errSkipped("no ssh program here")
	}
	hk, err := dm.hostKey()
	if err != nil {
		return "", err
	}
	host, port, _ := net.SplitHostPort(dm.listen)
	khHost := "[" + host + "]:" + port
	kh := filepath.Join(dm.dir, "known_hosts")
	if err := os.WriteFile(kh, []byte(khHost+" "+string(ssh.MarshalAuthorizedKey(hk))), 0o600); err != nil {
		return "", err
	}
	cmd := exec.CommandContext(ctx, bin, "-F", "/dev/null", "-p", port, "-i", dm.keyPath, "-o", "IdentitiesOnly=yes",
		"-o", "BatchMode=yes", "-o", "UserKnownHostsFile="+kh, "-o", "StrictHostKeyChecking=yes", "-o", "LogLevel=ERROR",
		"-tt", console+"@"+host)
	cmd.Env = append(os.Environ(), "SSH_AUTH_SOCK=")
	cmd.WaitDelay = 2 * time.Second
	var out syncBuf
	cmd.Stdout, cmd.Stderr = &out, &out
	in, err := cmd.StdinPipe()
	if err != nil {
		return "", err
	}
	if err := cmd.Start(); err != nil {
		return "", err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	exited := false
	defer func() {
		if !exited {
			cmd.Process.Kill()
			<-done
		}
	}()
	at, err := waitFor(ctx, &out, 0, "login:")
	if err != nil {
		return "", fmt.Errorf("ssh attach: %w", err)
	}
	io.WriteString(in, "typed through OpenSSH\r")
	if _, err := waitFor(ctx, &out, at, "typed through OpenSSH"); err != nil {
		return "", fmt.Errorf("ssh attach: %w", err)
	}
	io.WriteString(in, "\x05c.")
	select {
	case err := <-done:
		exited = true
		if err != nil {
			return "", fmt.Errorf("ssh exited with %v after detaching; output: %q", err, tailOf(out.String(), 200))
		}
	case <-ctx.Done():
		return "", errors.New("ssh did not exit after Ctrl-E c .")
	}
	return "attached with " + bin + ", typed, echoed, detached with Ctrl-E c .", nil
}

// runHere runs a solgate command in this process and returns its output.
func (dm *demo) runHere(ctx context.Context, args ...string) (string, error) {
	var b syncBuf
	err := run(ctx, args, &b, &b)
	return b.String(), err
}

func (dm *demo) stepGrep(ctx context.Context) (string, error) {
	var out string
	var seen map[string]bool
	err := poll(ctx, func() error {
		var err error
		out, err = dm.runHere(ctx, "grep", "-c", dm.cfgPath, "Hostname set to", hostlist.Compress(dm.names))
		if err != nil {
			return err
		}
		seen = map[string]bool{}
		for _, l := range strings.Split(out, "\n") {
			if f := strings.Fields(l); len(f) > 0 {
				seen[f[0]] = true
			}
		}
		if len(seen) < len(dm.names)-1 {
			return fmt.Errorf("lines from %d consoles, want %d", len(seen), len(dm.names)-1)
		}
		return nil
	})
	return fmt.Sprintf("%s\n(%d lines from %d consoles)", firstLines(out, 3), strings.Count(out, "\n"), len(seen)), err
}

func (dm *demo) stepBoots(ctx context.Context, console string) (string, error) {
	var out string
	err := poll(ctx, func() error {
		var err error
		if out, err = dm.runHere(ctx, "log", "-c", dm.cfgPath, console, "--list-boots"); err != nil {
			return err
		}
		if !strings.Contains(out, "cycle") {
			return errors.New("no boot started by the power cycle")
		}
		return nil
	})
	return firstLines(out, 6), err
}

func (dm *demo) stepIpmitool(ctx context.Context, i int) (string, error) {
	bin, err := exec.LookPath("ipmitool")
	if err != nil {
		return "", errSkipped("no ipmitool program here")
	}
	i = min(i, len(dm.names)-1)
	host, port, _ := net.SplitHostPort(dm.fleet.Addr(i))
	out, err := exec.CommandContext(ctx, bin, "-I", "lanplus", "-C", "17", "-H", host, "-p", port, "-U", demoBMCUser, "-P", dm.password,
		"chassis", "power", "status").CombinedOutput()
	s := strings.TrimSpace(string(out))
	if err != nil {
		return s, fmt.Errorf("ipmitool: %w", err)
	}
	if !strings.Contains(s, "Chassis Power is on") {
		return s, errors.New("ipmitool does not say the power is on")
	}
	return dm.names[i] + ": " + s, nil
}

func (dm *demo) stepDoctor(ctx context.Context, console string, wantClean bool) (string, error) {
	out, err := dm.runHere(ctx, "bmc", "doctor", "-c", dm.cfgPath, console)
	switch {
	case wantClean && err != nil:
		return out, fmt.Errorf("doctor still finds problems: %w", err)
	case !wantClean && err == nil:
		return out, errors.New("doctor found nothing wrong with the misconfigured BMC")
	case !wantClean && !strings.Contains(strings.ToLower(out), "sol"):
		return out, errors.New("doctor does not mention SOL")
	}
	return firstLines(out, 12), nil
}

func (dm *demo) stepFix(ctx context.Context, console string) (string, error) {
	var log []string
	for _, args := range [][]string{
		{"bmc", "set", "-c", dm.cfgPath, console, "sol.enable=on", "sol.bitrate=115200", "channel.per-msg-auth=on", "lan.cipher.0=unused"},
		{"bmc", "user", "-c", dm.cfgPath, console, "sol", demoBMCUser, "on"},
		{"bmc", "user", "-c", dm.cfgPath, console, "disable", "1"},
	} {
		log = append(log, "$ "+dm.self+" "+strings.Join(args, " "))
		out, err := dm.runHere(ctx, args...)
		if err != nil {
			return strings.Join(log, "\n") + "\n" + out, err
		}
	}
	out, err := dm.stepDoctor(ctx, console, true)
	log = append(log, "$ "+dm.self+" bmc doctor -c "+dm.cfgPath+" "+console, out)
	return strings.Join(log, "\n"), err
}

func (dm *demo) stepReopen(ctx context.Context, console string) (string, error) {
	out, err := dm.runHere(ctx, "ctl", "-c", dm.cfgPath, "reopen", console)
	if err != nil {
		return out, err
	}
	err = poll(ctx, func() error {
		if st := dm.consoleState(console); st.State != conserver.Up {
			return fmt.Errorf("%s is %s (%s), want up", console, st.State, st.Reason)
		}
		return nil
	})
	return out + console + " is up", err
}

func (dm *demo) stepStatus(ctx context.Context) (string, error) {
	out, err := dm.runHere(ctx, "ctl", "-c", dm.cfgPath, "status")
	if err != nil {
		return out, err
	}
	want := fmt.Sprintf("up  %d  %s", len(dm.names), hostlist.Compress(dm.names))
	if !strings.Contains(out, want) {
		return out, fmt.Errorf("the status lacks %q", want)
	}
	return out, nil
}

func (dm *demo) stepMetrics(ctx context.Context) (string, error) {
	if dm.metrics == "" {
		return "", errSkipped("metrics are off (--metrics \"\")")
	}
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+dm.metrics+"/metrics", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		return "", fmt.Errorf("the exposition does not parse: %w", err)
	}
	up := 0.0
	if f := fams["solgate_consoles"]; f != nil {
		for _, m := range f.Metric {
			for _, l := range m.Label {
				if l.GetName() == "state" && l.GetValue() == "up" {
					up = m.GetGauge().GetValue()
				}
			}
		}
	}
	n := 0
	for _, f := range fams {
		n += len(f.Metric)
	}
	out := fmt.Sprintf("%d families, %d samples; solgate_consoles{state=\"up\"} %v", len(fams), n, up)
	if int(up) != len(dm.names) {
		return out, fmt.Errorf("solgate_consoles{state=\"up\"} is %v, want %d", up, len(dm.names))
	}
	return out, nil
}
