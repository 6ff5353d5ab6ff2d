package test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/solgate/solgate/ipmilan/bmcsim"
	"github.com/solgate/solgate/logstore"
	"github.com/solgate/solgate/test/internal/testkit"
)

// servedConsole is one [[console]] of a solgate serve test config.
type servedConsole struct {
	name, bmc, extra string
}

// writeServeConfig writes dir/solgate.toml (and the password file) for a
// daemon whose BMCs are bmcsim's (user admin, bmcsimPassword).
func writeServeConfig(t testing.TB, dir, server string, consoles []servedConsole) string {
	t.Helper()
	must(t, os.WriteFile(filepath.Join(dir, "bmc.pass"), []byte(bmcsimPassword+"\n"), 0o600))
	var b strings.Builder
	// listen: the SSH gateway on a free loopback port (the default :2222
	// would be every interface, and taken by a parallel test); no metrics
	// listener unless the test asks (the default port would be shared).
	if !strings.Contains(server, "metrics") {
		server += "\nmetrics = \"\""
	}
	fmt.Fprintf(&b, "[server]\nlog_dir = %q\nstate_dir = %q\nlog_format = \"json\"\nlog_level = \"debug\"\nreload_interval = \"0\"\n%s\nlisten = \"127.0.0.1:0\"\n\n",
		filepath.Join(dir, "log"), filepath.Join(dir, "state"), server)
	b.WriteString("[defaults]\nuser = \"admin\"\npassword_file = \"bmc.pass\"\ncipher_suite = 17\n\n")
	for _, c := range consoles {
		fmt.Fprintf(&b, "[[console]]\nname = %q\nbmc = %q\n%s\n\n", c.name, c.bmc, c.extra)
	}
	path := filepath.Join(dir, "solgate.toml")
	tmp := path + ".tmp"
	must(t, os.WriteFile(tmp, []byte(b.String()), 0o640))
	must(t, os.Rename(tmp, path))
	return path
}

// serveProc is a solgate serve process. It is killed (by PID) when the
// test ends, if still running.
type serveProc struct {
	t      testing.TB
	cmd    *exec.Cmd
	stderr *testkit.LockedBuffer
	done   chan struct{}
	err    error
}

func startServe(t testing.TB, cfgPath string, env ...string) *serveProc {
	t.Helper()
	cmd := exec.Command(solgateBin(t), "serve", "-c", cfgPath)
	if len(env) > 0 {
		cmd.Env = append(os.Environ(), env...)
	}
	return startServeCmd(t, cmd)
}

// startServeNofile is startServe under an open-file limit of n (soft and
// hard, set by sh's ulimit before it execs the daemon).
func startServeNofile(t testing.TB, cfgPath string, n int) *serveProc {
	t.Helper()
	return startServeCmd(t, exec.Command("sh", "-c", `ulimit -n "$2" && exec "$0" serve -c "$1"`, solgateBin(t), cfgPath, strconv.Itoa(n)))
}

// startServeCmd starts cmd, a solgate serve, as startServe describes.
func startServeCmd(t testing.TB, cmd *exec.Cmd) *serveProc {
	t.Helper()
	p := &serveProc{t: t, cmd: cmd, stderr: &testkit.LockedBuffer{}, done: make(chan struct{})}
	cmd.Stdout = p.stderr
	cmd.Stderr = p.stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	must(t, cmd.Start())
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	testkit.KillAtCleanup(t, cmd.Process.Pid, p.done, func() {
		t.Logf("solgate serve (pid %d) log:\n%s", cmd.Process.Pid, testkit.Tail(p.stderr.String(), 6000))
	})
	return p
}

// stop sends SIGTERM and waits up to d for the exit.
func (p *serveProc) stop(d time.Duration) (time.Duration, error) {
	p.t.Helper()
	start := time.Now()
	must(p.t, p.cmd.Process.Signal(syscall.SIGTERM))
	select {
	case <-p.done:
		return time.Since(start), p.err
	case <-time.After(d):
		p.t.Fatalf("solgate serve still running %v after SIGTERM", d)
	}
	return 0, nil
}

func (p *serveProc) kill() {
	p.t.Helper()
	must(p.t, p.cmd.Process.Signal(syscall.SIGKILL))
	<-p.done
}

// waitLog waits for the daemon log to contain s.
func (p *serveProc) waitLog(s string, d time.Duration) {
	p.t.Helper()
	deadline := time.Now().Add(d)
	for !strings.Contains(p.stderr.String(), s) {
		select {
		case <-p.done:
			p.t.Fatalf("solgate serve exited (%v) before logging %q", p.err, s)
		default:
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("solgate serve did not log %q within %v", s, d)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// countLog counts daemon log lines containing all of subs.
func (p *serveProc) countLog(subs ...string) int {
	n := 0
	for _, l := range strings.Split(p.stderr.String(), "\n") {
		ok := true
		for _, s := range subs {
			ok = ok && strings.Contains(l, s)
		}
		if ok && l != "" {
			n++
		}
	}
	return n
}

// streamCheck is what checkStream found in a console's log.
type streamCheck struct {
	bytes   int // stream bytes in the log
	next    int // the stream offset after the last logged byte
	jumps   int // discontinuities (each preceded by a gap event)
	causes  []string
	lastAt  time.Time // the last stream record's time
	offsets []jump
}

type jump struct {
	from, to int // stream offsets: expected, found
	cause    string
}

// checkStream reads a console's log and checks that it is bmcsim's
// numbered stream: every byte in order, except where a gap event came
// before a jump (lost or doubled bytes are then allowed). Output that is
// not stream text fails the check.
func checkStream(t testing.TB, logDir, console string) streamCheck {
	t.Helper()
	s, err := logstore.Open(logDir, logstore.Options{ReadOnly: true})
	must(t, err)
	defer s.Close()
	var (
		res   streamCheck
		pos   = -1
		cause string
		buf   []byte
		pend  []byte
	)
	for rec, err := range s.Records(context.Background(), console, logstore.Query{}) {
		if err != nil {
			t.Fatalf("%s: read log: %v", console, err)
		}
		if rec.Event != "" {
			if rec.Event == logstore.EventGap {
				cause = string(rec.Data)
				res.causes = append(res.causes, cause)
			}
			continue
		}
		data := rec.Data
		res.lastAt = rec.Time
		if pos >= 0 && len(pend) == 0 {
			buf = bmcsim.AppendStreamText(buf[:0], pos, len(data))
			if bytes.Equal(buf, data) {
				pos += len(data)
				res.bytes += len(data)
				continue
			}
		}
		// A jump (or the start): find where the stream resumes, joining
		// records until one holds a line number.
		pend = append(pend, data...)
		o, ok := streamOffset(pend)
		if !ok {
			if len(pend) > 4*bmcsim.StreamLineLen {
				t.Fatalf("%s: log at %s is not stream text: %q", console, logstore.FormatTime(rec.Time), pend)
			}
			continue
		}
		if pos >= 0 {
			if cause == "" {
				t.Fatalf("%s: at %s the stream jumps from offset %d to %d with no gap event before it", console, logstore.FormatTime(rec.Time), pos, o)
			}
			res.jumps++
			res.offsets = append(res.offsets, jump{pos, o, cause})
		}
		cause = ""
		pos = o + len(pend)
		res.bytes += len(pend)
		pend = pend[:0]
	}
	res.next = max(pos, 0)
	return res
}

// streamOffset finds which stream offset data starts at, from the first
// complete line number in it.
func streamOffset(data []byte) (int, bool) {
	for i := 0; i+10 <= len(data); i++ {
		if i > 0 && data[i-1] != '\n' {
			continue
		}
		n, err := strconv.Atoi(string(data[i : i+10]))
		if err != nil || n < i {
			continue
		}
		if o := n - i; bytes.Equal(bmcsim.AppendStreamText(nil, o, len(data)), data) {
			return o, true
		}
	}
	return 0, false
}

// appendFile appends text to a file.
func appendFile(t testing.TB, path, text string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	must(t, err)
	defer f.Close()
	_, err = f.WriteString(text)
	must(t, err)
}

func ensureTestDir(dir string) error { return os.MkdirAll(dir, 0o700) }
