package test

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/solgate/solgate/ipmilan/bmcsim"
	"github.com/solgate/solgate/test/internal/testkit"
)

func TestServeRefusesInvalidConfig(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cfg := writeServeConfig(t, dir, "reconect_min = \"1s\"", []servedConsole{{name: "node1", bmc: "127.0.0.1:623", extra: "steal = \"sometimes\""}})
	out, err := exec.Command(solgateBin(t), "serve", "-c", cfg).CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("exit %v, want 1:\n%s", err, out)
	}
	for _, want := range []string{"invalid configuration, not starting", cfg + ":7: unknown key \"reconect_min\" in [server] (did you mean \"reconnect_min\"?)", "steal: \"sometimes\" is not one of never, when-idle, always"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "log")); err == nil {
		t.Error("an invalid configuration created the log directory")
	}
}

func TestServeRefusesALogDirInUse(t *testing.T) {
	t.Parallel()
	sim := startSimBMC(t, bmcsim.Config{PowerOn: true})
	dir := t.TempDir()
	must(t, os.MkdirAll(filepath.Join(dir, "state"), 0o755))
	cfg := writeServeConfig(t, dir, "", []servedConsole{{name: "node1", bmc: sim.Addr}})
	p := startServe(t, cfg)
	p.waitLog(`"msg":"conserver: SOL up"`, 20*time.Second)
	out, err := exec.Command(solgateBin(t), "serve", "-c", cfg).CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("second serve: exit %v, want 1:\n%s", err, out)
	}
	want := regexp.MustCompile(`log directory \S+ is in use by another solgate serve \(pid ` + itoaPid(p.cmd.Process.Pid) + `\)`)
	if !want.Match(out) {
		t.Fatalf("second serve said:\n%s", out)
	}
	// The first one is undisturbed; its state_dir was tightened to 0700,
	// and its open-file limit raised to the hard limit.
	st, err := os.Stat(filepath.Join(dir, "state"))
	must(t, err)
	if st.Mode().Perm() != 0o700 {
		t.Errorf("state_dir mode %v, want 0700", st.Mode().Perm())
	}
	var rl syscall.Rlimit
	must(t, syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl))
	p.waitLog(`"msg":"serve: open-file limit","limit":`+itoaPid(int(rl.Max)), 5*time.Second)

	// SIGHUP re-reads the files; an unchanged configuration changes nothing.
	must(t, p.cmd.Process.Signal(syscall.SIGHUP))
	p.waitLog(`"msg":"serve: SIGHUP: reloading the configuration"`, 5*time.Second)
	p.waitLog(`"msg":"config: unchanged","reason":"reload requested"`, 5*time.Second)
	if _, err := p.stop(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	if st := sim.Stats(); st.SOLActive != 0 || st.SessionsActive != 0 {
		t.Fatalf("after SIGTERM: %+v", st)
	}
}

// The daemon's stderr going away (journald restarted, the end of a
// pipeline exited) does not kill it, and its consoles with it: it logs on
// into the void, keeps its SOL session, and stops cleanly on SIGTERM. Go
// would end it with SIGPIPE at its next log record otherwise.
func TestServeSurvivesClosedStderr(t *testing.T) {
	t.Parallel()
	sim := startSimBMC(t, bmcsim.Config{PowerOn: true})
	dir := t.TempDir()
	cfg := writeServeConfig(t, dir, "", []servedConsole{{name: "node1", bmc: sim.Addr}})
	r, w, err := os.Pipe()
	must(t, err)
	cmd := exec.Command(solgateBin(t), "serve", "-c", cfg)
	cmd.Stdout, cmd.Stderr = w, w
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	must(t, cmd.Start())
	w.Close()
	exited := make(chan struct{})
	var waitErr error
	go func() { waitErr = cmd.Wait(); close(exited) }()
	testkit.KillAtCleanup(t, cmd.Process.Pid, exited, func() {})

	sc := bufio.NewScanner(r)
	for sc.Scan() && !strings.Contains(sc.Text(), `"msg":"conserver: SOL up"`) {
	}
	if sc.Err() != nil || !strings.Contains(sc.Text(), "SOL up") {
		t.Fatalf("no SOL up in the daemon log before it ended (%v)", sc.Err())
	}
	r.Close()                                   // the reader goes away
	must(t, cmd.Process.Signal(syscall.SIGHUP)) // logs at once, into the closed pipe
	deadline := time.Now().Add(10 * time.Second)
	for sim.Stats().SOLActive != 1 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	must(t, cmd.Process.Signal(syscall.SIGTERM)) // its stop logs too
	select {
	case <-exited:
	case <-time.After(20 * time.Second):
		t.Fatal("solgate serve did not stop within 20 s of SIGTERM")
	}
	if waitErr != nil {
		t.Fatalf("solgate serve with its stderr closed: %v, want exit 0 after SIGTERM", waitErr)
	}
	if st := sim.Stats(); st.SOLActive != 0 || st.SessionsActive != 0 {
		t.Fatalf("after SIGTERM the BMC still has %+v", st)
	}
}

// An open-file limit too low for the consoles: serve refuses to start
// and says what to raise it to, instead of starting some consoles and
// failing the others (and its own sockets) with "too many open files"; a
// reload that would need more than the limit is refused the same way and
// the running configuration stays.
func TestServeOpenFileLimit(t *testing.T) {
	t.Parallel()
	consoles := func(n int) []servedConsole {
		var cs []servedConsole
		for i := range n {
			cs = append(cs, servedConsole{name: fmt.Sprintf("node%03d", i), bmc: "127.0.0.1:9"})
		}
		return cs
	}
	dir := t.TempDir()
	cfg := writeServeConfig(t, dir, "", consoles(200))
	out, err := exec.Command("sh", "-c", `ulimit -n 300 && exec "$0" serve -c "$1"`, solgateBin(t), cfg).CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("200 consoles under 300 descriptors: exit %v, want 1:\n%s", err, out)
	}
	if want := "not starting: the open-file limit (300) is too low for 200 consoles: each holds a socket, and the daemon needs about 128 more; raise it to at least 328"; !strings.Contains(string(out), want) {
		t.Fatalf("output lacks %q:\n%s", want, out)
	}

	cfg = writeServeConfig(t, dir, "", consoles(20))
	p := startServeNofile(t, cfg, 300)
	p.waitLog(`"msg":"serve: started","consoles":20`, 20*time.Second)
	p.waitLog(`"msg":"serve: the open-file limit leaves little room beyond the consoles' sockets`, 5*time.Second)
	writeServeConfig(t, dir, "", consoles(200))
	must(t, p.cmd.Process.Signal(syscall.SIGHUP))
	p.waitLog(`"msg":"serve: configuration refused; keeping the running one"`, 10*time.Second)
	p.waitLog(`the open-file limit (300) is too low for 200 consoles`, 5*time.Second)
	st, err := exec.Command(solgateBin(t), "ctl", "-c", cfg, "status").CombinedOutput()
	if err != nil || !strings.Contains(string(st), ", 20 consoles, config ") {
		t.Errorf("solgate ctl status after the refused reload (%v), want the running 20 consoles:\n%s", err, st)
	}
	if _, err := p.stop(10 * time.Second); err != nil {
		t.Fatal(err)
	}
}

func TestServeHelp(t *testing.T) {
	t.Parallel()
	out, err := exec.Command(solgateBin(t), "serve", "--help").CombinedOutput()
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	for _, want := range []string{"Usage: solgate serve [-c FILE]", "etc/solgate.toml", "SIGHUP", "SIGTERM", "state_dir", "-c FILE"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("--help lacks %q", want)
		}
	}
}

func itoaPid(n int) string { return strconv.Itoa(n) }
