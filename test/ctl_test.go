package test

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"github.com/solgate/solgate/ipmilan/bmcsim"
)

// runAs runs bin with args as cred's user and returns stdout, stderr and
// the exit status (runSolgate for the daemon's own user).
func runAs(t *testing.T, cred *syscall.Credential, bin string, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Credential: cred}
	cmd.WaitDelay = time.Second
	done := make(chan error, 1)
	must(t, cmd.Start())
	go func() { done <- cmd.Wait() }()
	var err error
	select {
	case err = <-done:
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		<-done
		t.Fatalf("%s %v: still running after 60s", bin, args)
	}
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("%s %v: %v", bin, args, err)
	}
	return out.String(), errb.String(), code
}

// ctlJSON runs solgate ctl --json and decodes its output into v.
func ctlJSON(t *testing.T, v any, args ...string) {
	t.Helper()
	out, errs, code := runSolgate(t, nil, append([]string{"ctl", "--json"}, args...)...)
	if code != 0 {
		t.Fatalf("solgate ctl --json %v: exit %d: %s%s", args, code, out, errs)
	}
	if err := json.Unmarshal([]byte(out), v); err != nil {
		t.Fatalf("solgate ctl --json %v: %v\n%s", args, err, out)
	}
}

type ctlStatusJSON struct {
	PID         int    `json:"pid"`
	Consoles    int    `json:"consoles"`
	Fingerprint string `json:"fingerprint"`
	LastReload  string `json:"last_reload_error"`
	States      []struct {
		State    string `json:"state"`
		Count    int    `json:"count"`
		Consoles string `json:"consoles"`
		Reasons  []struct {
			Reason   string `json:"reason"`
			Consoles string `json:"consoles"`
		} `json:"reasons"`
	} `json:"states"`
}

func (s ctlStatusJSON) count(state string) (int, string) {
	for _, g := range s.States {
		if g.State == state {
			return g.Count, g.Consoles
		}
	}
	return 0, ""
}

// TestCtl drives solgate ctl against a running daemon: status (consoles
// by state, with reasons), info, who, reopen (a reconnect follows),
// reload (the diff applied, unchanged, then every error of a broken edit
// with the running configuration kept), the answer when the daemon is not
// running, and, as root, a connection from another user refused by the
// daemon's peer credential check even when the socket's mode lets it in.
func TestCtl(t *testing.T) {
	t.Parallel()
	base, err := os.MkdirTemp("", "solgate-ctl-")
	must(t, err)
	t.Cleanup(func() { os.RemoveAll(base) })
	dir := filepath.Join(base, "d")
	must(t, os.Mkdir(dir, 0o700))
	sim1 := startSimBMC(t, bmcsim.Config{PowerOn: true, SOL: bmcsim.SOLConfig{NoBootText: true}})
	sim2 := startSimBMC(t, bmcsim.Config{PowerOn: true, SOL: bmcsim.SOLConfig{NoBootText: true}})
	consoles := []servedConsole{{name: "node1", bmc: sim1.Addr}, {name: "node2", bmc: sim2.Addr},
		// No BMC answers there: retrying, with a reason.
		{name: "node9", bmc: "127.0.0.1:9"}}
	server := "metrics = \"\"\nipmi_timeout = \"200ms\"\nreconnect_min = \"1s\"\nreconnect_max = \"2s\""
	cfg := writeServeConfig(t, dir, server, consoles)
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	must(t, err)
	signer, err := gossh.NewSignerFromKey(priv)
	must(t, err)
	users := "\n[[user]]\nname = \"alice\"\nkeys = [\"" + authorizedLine(signer.PublicKey()) + "\"]\n\n[[access]]\nconsoles = \"*\"\nwrite = [\"alice\"]\n"
	appendFile(t, cfg, users)
	p := startServe(t, cfg)
	p.waitLog(`"msg":"serve: control socket listening"`, 20*time.Second)
	sock := filepath.Join(dir, "state", "ctl.sock")
	if st, err := os.Stat(sock); err != nil || st.Mode().Perm() != 0o600 || st.Mode().Type() != os.ModeSocket {
		t.Fatalf("control socket %s: %v %v, want a socket with mode 0600", sock, st.Mode(), err)
	}

	var st ctlStatusJSON
	deadline := time.Now().Add(20 * time.Second)
	for {
		ctlJSON(t, &st, "-c", cfg, "status")
		up, _ := st.count("up")
		retrying, _ := st.count("retrying")
		if up == 2 && retrying == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("status: want 2 up and 1 retrying, got %+v", st)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if _, names := st.count("up"); names != "node[1-2]" {
		t.Errorf("status: up consoles %q, want node[1-2]", names)
	}
	// solgate sol beside the daemon: the payload's holder is named as the
	// daemon's own session (from its state_dir), not as a stranger's.
	if _, errs, code := runSolgate(t, nil, "sol", "-c", cfg, "--no-reconnect", "node1"); code != 1 ||
		!strings.Contains(errs, "solgate serve's own session for this console") {
		t.Errorf("solgate sol node1 while the daemon holds it: exit %d: %s", code, errs)
	}
	if st.Consoles != 3 || st.PID != p.cmd.Process.Pid || len(st.Fingerprint) != 16 {
		t.Errorf("status: %+v", st)
	}
	for _, g := range st.States {
		if g.State == "retrying" && (len(g.Reasons) != 1 || g.Reasons[0].Consoles != "node9" || g.Reasons[0].Reason == "") {
			t.Errorf("status: retrying without node9's reason: %+v", g)
		}
	}
	out, errs, code := runSolgate(t, nil, "ctl", "-c", cfg, "status")
	if code != 0 || !regexp.MustCompile(`(?m)^up +2 +node\[1-2\]$`).MatchString(out) || !strings.Contains(out, "node9") {
		t.Errorf("ctl status: exit %d\n%s%s", code, out, errs)
	}

	var info struct {
		Console    string `json:"console"`
		BMC        string `json:"bmc"`
		State      string `json:"state"`
		Reconnects int    `json:"reconnects"`
		Attached   []any  `json:"attached"`
	}
	ctlJSON(t, &info, "-c", cfg, "info", "node1")
	if info.Console != "node1" || info.BMC != sim1.Addr || info.State != "up" || info.Reconnects != 0 || info.Attached == nil {
		t.Errorf("info node1: %+v", info)
	}
	out, _, code = runSolgate(t, nil, "ctl", "-c", cfg, "info", "node1")
	if code != 0 || !strings.Contains(out, "bmc              "+sim1.Addr) || !strings.Contains(out, "state            up since") {
		t.Errorf("ctl info node1: exit %d\n%s", code, out)
	}
	if _, errs, code := runSolgate(t, nil, "ctl", "-c", cfg, "info", "nosuch"); code != 1 || !strings.Contains(errs, `no console "nosuch"`) {
		t.Errorf("ctl info nosuch: exit %d, %q", code, errs)
	}
	var who []any
	ctlJSON(t, &who, "-c", cfg, "who")
	if who == nil || len(who) != 0 {
		t.Errorf("who: %v, want an empty list", who)
	}
	// alice attaches over SSH: who and info show her.
	gaddr := ""
	for _, l := range strings.Split(p.stderr.String(), "\n") {
		if m := regexp.MustCompile(`"msg":"gateway: listening","addr":"([^"]+)"`).FindStringSubmatch(l); m != nil {
			gaddr = m[1]
		}
	}
	client, err := gossh.Dial("tcp", gaddr, &gossh.ClientConfig{User: "node1", Auth: []gossh.AuthMethod{gossh.PublicKeys(signer)},
		HostKeyCallback: gossh.InsecureIgnoreHostKey(), Timeout: 10 * time.Second})
	must(t, err)
	sess, err := client.NewSession()
	must(t, err)
	stdin, err := sess.StdinPipe()
	must(t, err)
	must(t, sess.RequestPty("xterm", 24, 80, gossh.TerminalModes{}))
	must(t, sess.Shell())
	var attached []struct {
		Console string `json:"console"`
		User    string `json:"user"`
		Via     string `json:"via"`
		Mode    string `json:"mode"`
	}
	deadline = time.Now().Add(15 * time.Second)
	for {
		ctlJSON(t, &attached, "-c", cfg, "who")
		if len(attached) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("who: %+v, want alice on node1", attached)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if a := attached[0]; a.Console != "node1" || a.User != "alice" || a.Via != "ssh" || a.Mode != "rw" {
		t.Errorf("who: %+v, want alice on node1 via ssh, rw", a)
	}
	out, _, code = runSolgate(t, nil, "ctl", "-c", cfg, "who", "node1")
	if code != 0 || !regexp.MustCompile(`(?m)^node1 +alice +ssh +127\.0\.0\.1:\d+ .* rw`).MatchString(out) {
		t.Errorf("ctl who node1: exit %d\n%s", code, out)
	}
	out, _, code = runSolgate(t, nil, "ctl", "-c", cfg, "info", "node1")
	if code != 0 || !strings.Contains(out, "attached         1 (writer: alice)") {
		t.Errorf("ctl info node1 with alice attached: exit %d\n%s", code, out)
	}
	stdin.Close()
	client.Close()

	// reopen: the session is dropped and re-established.
	out, errs, code = runSolgate(t, nil, "ctl", "-c", cfg, "reopen", "node2")
	if code != 0 || !strings.Contains(out, "node2: reopening its SOL session (was up)") {
		t.Fatalf("ctl reopen node2: exit %d\n%s%s", code, out, errs)
	}
	reconnected := func(n int) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for {
			ctlJSON(t, &info, "--socket", sock, "info", "node2")
			if info.State == "up" && info.Reconnects == n {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("after reopen: %+v, want up with %d reconnects", info, n)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	reconnected(1)
	// reopen of a hostlist: each console, past one that does not exist,
	// exit status 1 naming it.
	out, errs, code = runSolgate(t, nil, "ctl", "-c", cfg, "reopen", "node[1-3]")
	if code != 1 || !strings.Contains(out, "node1: reopening its SOL session") || !strings.Contains(out, "node2: reopening its SOL session") ||
		!strings.Contains(out, `node3: not reopened: no console "node3"`) || !strings.Contains(errs, "1 of 3 consoles not reopened: node3") {
		t.Fatalf("ctl reopen node[1-3]: exit %d\n%s%s", code, out, errs)
	}
	reconnected(2)

	// reload: unchanged, then a console added and one removed.
	var rl struct {
		Unchanged   bool     `json:"unchanged"`
		Started     []string `json:"started"`
		Stopped     []string `json:"stopped"`
		Fingerprint string   `json:"fingerprint"`
	}
	ctlJSON(t, &rl, "-c", cfg, "reload")
	if !rl.Unchanged || rl.Fingerprint != st.Fingerprint {
		t.Errorf("reload of the same files: %+v, want unchanged with fingerprint %s", rl, st.Fingerprint)
	}
	sim3 := startSimBMC(t, bmcsim.Config{PowerOn: true, SOL: bmcsim.SOLConfig{NoBootText: true}})
	writeServeConfig(t, dir, server, []servedConsole{consoles[0], consoles[1], {name: "node3", bmc: sim3.Addr}})
	// With a rule that matches no console: valid, with a warning.
	appendFile(t, cfg, "\n[[access]]\nconsoles = \"nomatch\"\nread = [\"@all\"]\n")
	out, errs, code = runSolgate(t, nil, "ctl", "-c", cfg, "reload")
	if code != 0 || !strings.Contains(out, "configuration applied") || !strings.Contains(out, "consoles started: 1 (node3)") ||
		!strings.Contains(out, "consoles stopped: 1 (node9)") || !regexp.MustCompile(`(?m)^warning: .*solgate.toml:\d+: access rule for nomatch matches no console$`).MatchString(out) {
		t.Fatalf("ctl reload: exit %d\n%s%s", code, out, errs)
	}
	waitFor(t, "the warning in the daemon log", 5*time.Second, func() bool {
		return p.countLog(`"msg":"config: `, `access rule for nomatch matches no console`) == 1
	})
	ctlJSON(t, &st, "-c", cfg, "status")
	if st.Consoles != 3 || st.LastReload != "" {
		t.Errorf("status after reload: %+v", st)
	}
	// The watcher sees the same files: not applied (or counted) twice.
	time.Sleep(500 * time.Millisecond)
	if n := p.countLog(`"msg":"serve: configuration applied"`); n != 1 {
		t.Errorf("%d \"configuration applied\" log lines for one change, want 1", n)
	}
	// A broken edit: every error, exit 1, the running configuration stays.
	appendFile(t, cfg, "\n[[console]]\nname = \"node4\"\nbmc = \"127.0.0.1:1\"\nbogus_one = 1\n\n[[user]]\nname = \"x\"\nbogus_two = 2\n")
	out, errs, code = runSolgate(t, nil, "ctl", "-c", cfg, "reload")
	if code != 1 || !strings.Contains(errs, "the configuration is invalid; the running one stays") || !strings.Contains(errs, "solgate.toml:") {
		t.Errorf("ctl reload of a broken file: exit %d\n%s%s", code, out, errs)
	}
	var failed struct {
		Error  string   `json:"error"`
		Errors []string `json:"errors"`
	}
	jout, _, code := runSolgate(t, nil, "ctl", "--json", "-c", cfg, "reload")
	if err := json.Unmarshal([]byte(jout), &failed); code != 1 || err != nil || len(failed.Errors) < 2 {
		t.Errorf("ctl --json reload of a broken file: exit %d, %v, want at least two errors: %s", code, err, jout)
	}
	// Each ctl reload is refused once: the watcher is not made to read the
	// same broken files again (a second refusal logged and counted).
	time.Sleep(500 * time.Millisecond)
	if n := p.countLog(`"msg":"serve: configuration invalid; keeping the running one"`, `"reason":"reload requested"`); n != 0 {
		t.Errorf("%d refusals of the watcher's re-read after solgate ctl reload, want 0 (one per ctl reload)", n)
	}
	ctlJSON(t, &st, "-c", cfg, "status")
	if st.Consoles != 3 || st.LastReload == "" {
		t.Errorf("status after a refused reload: %+v, want 3 consoles and the error", st)
	}
	if n, _ := st.count("up"); n != 3 {
		t.Errorf("status after a refused reload: %d up, want 3", n)
	}

	// A file that is not even TOML still leads to the socket.
	good, err := os.ReadFile(cfg)
	must(t, err)
	appendFile(t, cfg, "\n[server]\n")
	if _, errs, code := runSolgate(t, nil, "ctl", "-c", cfg, "reload"); code != 1 || !strings.Contains(errs, "solgate.toml:") {
		t.Errorf("ctl reload of a file that is not TOML: exit %d, %q", code, errs)
	}
	must(t, os.WriteFile(cfg, good, 0o640))

	// A new BMC password the BMCs do not have: applied without a
	// reconnect, said so, and every console stays up.
	writeServeConfig(t, dir, server, []servedConsole{consoles[0], consoles[1], {name: "node3", bmc: sim3.Addr}})
	if _, errs, code := runSolgate(t, nil, "ctl", "-c", cfg, "reload"); code != 0 {
		t.Fatalf("ctl reload of the last good configuration: exit %d %s", code, errs)
	}
	must(t, os.WriteFile(filepath.Join(dir, "bmc.pass"), []byte("not-yet-on-the-bmcs\n"), 0o600))
	out, errs, code = runSolgate(t, nil, "ctl", "-c", cfg, "reload")
	if code != 0 || !strings.Contains(out, "of those, new BMC credentials (live sessions kept; each is checked now, its console log says how it went): 3 (node[1-3])") ||
		strings.Contains(out, "reconnecting") {
		t.Fatalf("ctl reload of a new password: exit %d\n%s%s", code, out, errs)
	}
	time.Sleep(500 * time.Millisecond)
	ctlJSON(t, &st, "-c", cfg, "status")
	if n, _ := st.count("up"); n != 3 {
		t.Errorf("status after a new password the BMCs refuse: %d up, want 3 (live sessions kept)", n)
	}

	// Bad use.
	for _, args := range [][]string{{"ctl"}, {"ctl", "frobnicate"}, {"ctl", "info"}, {"ctl", "status", "extra"},
		{"ctl", "-c", cfg, "--socket", sock, "reopen", "node[1-2]"}, {"ctl", "reopen", "node[1-"}} {
		if _, errs, code := runSolgate(t, nil, args...); code != 2 || errs == "" {
			t.Errorf("solgate %v: exit %d, %q; want 2 with a message", args, code, errs)
		}
	}

	if os.Geteuid() == 0 {
		ctlOtherUser(t, base, sock, p)
	}

	if _, err := p.stop(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	_, errs, code = runSolgate(t, nil, "ctl", "-c", cfg, "status")
	if code != 1 || !strings.Contains(errs, "solgate serve is not running (no control socket "+sock+")") {
		t.Errorf("ctl status with no daemon: exit %d, %q", code, errs)
	}
}

// ctlOtherUser runs solgate ctl as nobody: refused by the socket's
// directory, and, with the directory and socket opened up to everyone,
// refused by the daemon's peer credential check.
func ctlOtherUser(t *testing.T, base, sock string, p *serveProc) {
	t.Helper()
	// A copy of the binary nobody may run.
	bin := filepath.Join(base, "solgate")
	src, err := os.Open(solgateBin(t))
	must(t, err)
	dst, err := os.OpenFile(bin, os.O_CREATE|os.O_WRONLY, 0o755)
	must(t, err)
	_, err = io.Copy(dst, src)
	src.Close()
	must(t, err)
	must(t, dst.Close())
	must(t, os.Chmod(base, 0o711))
	nobody := &syscall.Credential{Uid: 65534, Gid: 65534}

	_, errs, code := runAs(t, nobody, bin, "ctl", "--socket", sock, "status")
	if code != 1 || !strings.Contains(errs, "permission denied on "+sock) {
		t.Errorf("ctl as nobody: exit %d, %q; want permission denied on the socket", code, errs)
	}
	// Even with the modes opened up, the daemon refuses the other uid.
	for _, d := range []string{filepath.Dir(filepath.Dir(sock)), filepath.Dir(sock)} {
		must(t, os.Chmod(d, 0o711))
	}
	must(t, os.Chmod(sock, 0o666))
	out, errs, code := runAs(t, nobody, bin, "ctl", "--socket", sock, "status")
	if code != 1 || !strings.Contains(errs, "permission denied: uid 65534 is neither root nor the daemon's user (uid 0)") || out != "" {
		t.Errorf("ctl as nobody through an open socket: exit %d, %q %q; want the daemon's refusal", code, out, errs)
	}
	if n := p.countLog(`"msg":"serve: control socket: connection refused"`, `"uid":65534`); n != 1 {
		t.Errorf("%d daemon log lines for the refused connection, want 1", n)
	}
	must(t, os.Chmod(sock, 0o600))
}
