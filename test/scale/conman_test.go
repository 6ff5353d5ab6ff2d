package scale

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/solgate/solgate/test/internal/testkit"
)

// conmanProc is conmand (ConMan 0.2.7, FreeIPMI's libipmiconsole) in the
// foreground, with an ipmi: console per BMC of a fleet and a log file per
// console. What it prints (INFO lines) goes to a file.
type conmanProc struct {
	t      *testing.T
	dir    string
	conf   string
	logDir string
	out    string
	cmd    *exec.Cmd
	done   chan struct{}
}

// writeConmanConf writes conman.conf for the fleet's BMCs. ConMan needs
// "server loopback=on" to stay on loopback; bmcsim needs no workaround
// flags (W:).
func writeConmanConf(t *testing.T, f *fleet, dir string) string {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "server loopback=on\nserver port=%d\nserver logdir=%q\nserver pidfile=%q\nserver keepalive=on\n",
		freeTCPPort(t), filepath.Join(dir, "logs"), filepath.Join(dir, "conmand.pid"))
	fmt.Fprintf(&b, "global log=\"%%N.log\"\nglobal logopts=\"lock,nosanitize,notimestamp\"\nglobal ipmiopts=\"U:admin,P:%s,C:17,L:admin\"\n", bmcPassword)
	for i, n := range f.names {
		fmt.Fprintf(&b, "console name=%q dev=\"ipmi:%s\"\n", n, f.addrs[i])
	}
	path := filepath.Join(dir, "conman.conf")
	must(t, os.WriteFile(path, []byte(b.String()), 0o600))
	return path
}

// startConman starts conmand -F for the fleet; it is killed when the test
// ends if still running.
func startConman(t *testing.T, f *fleet) *conmanProc {
	t.Helper()
	requireTool(t, "conmand")
	dir := t.TempDir()
	c := &conmanProc{t: t, dir: dir, logDir: filepath.Join(dir, "logs"), out: filepath.Join(dir, "conmand.out")}
	must(t, os.MkdirAll(c.logDir, 0o755))
	c.conf = writeConmanConf(t, f, dir)
	c.start()
	t.Cleanup(func() {
		c.kill()
		if t.Failed() {
			b, _ := os.ReadFile(c.out)
			t.Logf("conmand output, the end:\n%s", testkit.Tail(string(b), 3000))
		}
	})
	return c
}

func (c *conmanProc) start() {
	c.t.Helper()
	cmd := exec.Command(requireTool(c.t, "conmand"), "-F", "-c", c.conf)
	out, err := os.OpenFile(c.out, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	must(c.t, err)
	defer out.Close()
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	must(c.t, cmd.Start())
	c.cmd = cmd
	c.done = make(chan struct{})
	go func() { cmd.Wait(); close(c.done) }()
}

func (c *conmanProc) pid() int { return c.cmd.Process.Pid }

func (c *conmanProc) running() bool {
	select {
	case <-c.done:
		return false
	default:
		return true
	}
}

// kill ends conmand with SIGKILL.
func (c *conmanProc) kill() {
	if c.cmd == nil {
		return
	}
	c.cmd.Process.Signal(syscall.SIGKILL)
	<-c.done
}

// stop ends conmand with SIGTERM, then SIGKILL after a few seconds (it
// sometimes busy-loops in libipmiconsole's engine teardown; it writes
// console output to its logs as it reads it, so nothing is left unsaved).
func (c *conmanProc) stop() {
	wait := 5 * time.Second
	if !full {
		wait = 2 * time.Second
	}
	testkit.StopProcess(c.cmd, c.done, wait)
}

// count counts conmand's output lines holding every one of subs.
func (c *conmanProc) count(subs ...string) int {
	b, _ := os.ReadFile(c.out)
	n := 0
	for _, l := range strings.Split(string(b), "\n") {
		ok := l != ""
		for _, s := range subs {
			ok = ok && strings.Contains(l, s)
		}
		if ok {
			n++
		}
	}
	return n
}

// connectedPer counts conmand's "connected" notices per console.
func (c *conmanProc) connectedPer() map[string]int {
	b, _ := os.ReadFile(c.out)
	out := map[string]int{}
	for _, l := range strings.Split(string(b), "\n") {
		if !strings.HasPrefix(l, "INFO:") || !strings.Contains(l, "] connected to <") {
			continue
		}
		if i := strings.Index(l, "Console ["); i >= 0 {
			if name, _, ok := strings.Cut(l[i+len("Console ["):], "]"); ok {
				out[name]++
			}
		}
	}
	return out
}

// connected is how many "connected" notices conmand printed.
func (c *conmanProc) connected() int { return c.count("INFO:", "] connected to <") }

// waitConnected waits until n connections in all were made, or d passes;
// it returns how many there were.
func (c *conmanProc) waitConnected(n int, d time.Duration) int {
	deadline := time.Now().Add(d)
	for {
		k := c.connected()
		if k >= n || time.Now().After(deadline) || !c.running() {
			return k
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func (c *conmanProc) logFile(console string) string { return filepath.Join(c.logDir, console+".log") }
