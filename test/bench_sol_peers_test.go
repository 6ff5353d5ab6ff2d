package test

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"
	"github.com/solgate/solgate/test/internal/testkit"
	"golang.org/x/term"
)

// Helpers for the SOL benchmarks against ipmi_sim: console clients run as
// processes (solgate sol and ipmitool on pipes, ipmiconsole on a pty, as
// it insists on a terminal), their stdout collected with arrival times.

// solBenchClients are the console clients compared, in report order.
var solBenchClients = []string{"solgate", "ipmitool", "ipmiconsole"}

// solClientCmd builds the command line of one console client against the
// ipmi_sim at addr (user admin, password secret, cipher suite 3). It skips
// the benchmark when the client is not installed.
func solClientCmd(b *testing.B, client, addr string) (cmd *exec.Cmd, tty bool) {
	b.Helper()
	host, port, err := net.SplitHostPort(addr)
	must(b, err)
	switch client {
	case "solgate":
		// --no-reconnect: a dropped session must show as a failure,
		// not be papered over by a reconnect.
		cmd = exec.Command(solgateBin(b), "sol", "-u", "admin", "-C", "3", "--follow", "--no-reconnect", addr)
		cmd.Env = append(os.Environ(), "IPMI_PASSWORD=secret")
	case "ipmitool":
		// Works on pipes (it only warns that tcgetattr fails); -C 3
		// avoids a 10 s cipher suite probe (interop quirk 3).
		cmd = exec.Command(needTool(b, "ipmitool"), "-I", "lanplus", "-C", "3", "-H", host, "-p", port,
			"-U", "admin", "-P", "secret", "sol", "activate")
	case "ipmiconsole":
		// Needs a terminal and three workarounds for ipmi_sim (quirks
		// 4, 5 and 6).
		cmd = exec.Command(needTool(b, "ipmiconsole"), "-h", addr, "-u", "admin", "-p", "secret", "-I", "3",
			"-W", "opensesspriv,solchannelsupport,solpayloadsize")
		tty = true
	default:
		b.Fatalf("unknown SOL client %q", client)
	}
	return cmd, tty
}

// consoleOut collects a client's stdout with the time of the last read.
type consoleOut struct {
	mu     sync.Mutex
	data   []byte
	last   time.Time // when the last bytes arrived
	err    error     // why reading ended
	notify chan struct{}
}

func (o *consoleOut) fill(r io.Reader) {
	buf := make([]byte, 64<<10)
	for {
		n, err := r.Read(buf)
		now := time.Now()
		o.mu.Lock()
		if n > 0 {
			o.data = append(o.data, buf[:n]...)
			o.last = now
		}
		if err != nil {
			o.err = err
		}
		o.mu.Unlock()
		select {
		case o.notify <- struct{}{}:
		default:
		}
		if err != nil {
			return
		}
	}
}

// wait calls cond with all output so far (not to be kept) until it holds,
// and returns the arrival time of the latest bytes then. It gives up after
// d or when the output ends.
func (o *consoleOut) wait(d time.Duration, cond func([]byte) bool) (time.Time, bool) {
	timer := time.NewTimer(d)
	defer timer.Stop()
	for {
		o.mu.Lock()
		ok, last, err := cond(o.data), o.last, o.err
		o.mu.Unlock()
		if ok {
			return last, true
		}
		if err != nil {
			return time.Time{}, false
		}
		select {
		case <-o.notify:
		case <-timer.C:
			return time.Time{}, false
		}
	}
}

// ended reports whether the client's stdout has closed (it exited).
func (o *consoleOut) ended() bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.err != nil
}

func (o *consoleOut) len() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.data)
}

// bytesFrom returns a copy of the output from offset off.
func (o *consoleOut) bytesFrom(off int) []byte {
	o.mu.Lock()
	defer o.mu.Unlock()
	if off > len(o.data) {
		return nil
	}
	return slices.Clone(o.data[off:])
}

// quiet waits until no output has arrived for d (at most max).
func (o *consoleOut) quiet(d, max time.Duration) {
	deadline := time.Now().Add(max)
	for n := o.len(); time.Now().Before(deadline); {
		time.Sleep(d)
		m := o.len()
		if m == n {
			return
		}
		n = m
	}
}

// solProc is a running console client.
type solProc struct {
	name    string
	in      io.Writer
	out     *consoleOut
	stderr  *testkit.LockedBuffer
	started time.Time // just before the process was started
	exited  chan struct{}
	stop    func()
	cmd     *exec.Cmd
}

// cpu is the CPU time the client used; valid after stop.
func (p *solProc) cpu() time.Duration {
	select {
	case <-p.exited:
		if st := p.cmd.ProcessState; st != nil {
			return st.UserTime() + st.SystemTime()
		}
	default:
	}
	return 0
}

// launchSOLClient starts cmd with its stdin and stdout on pipes, or on a
// raw pty when tty is set. The process is killed by PID in stop, which is
// also registered as a cleanup.
func launchSOLClient(b *testing.B, name string, cmd *exec.Cmd, tty bool) *solProc {
	b.Helper()
	p := &solProc{name: name, cmd: cmd, out: &consoleOut{notify: make(chan struct{}, 1)}, stderr: &testkit.LockedBuffer{}}
	cmd.Stderr = p.stderr
	cmd.WaitDelay = 2 * time.Second
	var closers []io.Closer
	if tty {
		ptmx, pts, err := pty.Open()
		must(b, err)
		// Raw before the client starts: no local echo or newline
		// translation by the line discipline in the meantime.
		if _, err := term.MakeRaw(int(pts.Fd())); err != nil {
			ptmx.Close()
			pts.Close()
			b.Fatal(err)
		}
		cmd.Stdin, cmd.Stdout = pts, pts
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0, Pdeathsig: syscall.SIGKILL}
		p.started = time.Now()
		err = cmd.Start()
		pts.Close()
		if err != nil {
			ptmx.Close()
			b.Fatal(err)
		}
		p.in = ptmx
		closers = append(closers, ptmx)
		go p.out.fill(ptmx)
	} else {
		stdin, err := cmd.StdinPipe()
		must(b, err)
		pr, pw, err := os.Pipe()
		must(b, err)
		cmd.Stdout = pw
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		p.started = time.Now()
		err = cmd.Start()
		pw.Close()
		if err != nil {
			pr.Close()
			b.Fatal(err)
		}
		p.in = stdin
		closers = append(closers, pr)
		go p.out.fill(pr)
	}
	p.exited = make(chan struct{})
	go func() { cmd.Wait(); close(p.exited) }()
	var once sync.Once
	p.stop = func() {
		once.Do(func() {
			cmd.Process.Kill()
			select {
			case <-p.exited:
			case <-time.After(10 * time.Second):
				b.Errorf("%s (pid %d) did not exit after SIGKILL", name, cmd.Process.Pid)
			}
			for _, c := range closers {
				c.Close()
			}
		})
	}
	b.Cleanup(p.stop)
	return p
}

// errorf describes a failed run with the client's state, the end of its
// output and its stderr.
func (p *solProc) errorf(format string, a ...any) error {
	state := "still running"
	select {
	case <-p.exited:
		state = "exited"
	default:
	}
	out := p.out.bytesFrom(max(0, p.out.len()-200))
	return fmt.Errorf("%s: %s\n  (%s; last output %q; stderr %q)", p.name, fmt.Sprintf(format, a...), state, out, p.stderr.String())
}

// awaitConsole makes the node print marker until it shows on the client's
// stdout (ipmi_sim throws console output away until a session is active),
// then waits for the line to go quiet.
func awaitConsole(p *solProc, serial net.Conn, marker string) error {
	deadline := time.Now().Add(30 * time.Second)
	for found := false; !found; {
		if p.out.ended() {
			return p.errorf("exited before console output %q arrived", marker)
		}
		if time.Now().After(deadline) {
			return p.errorf("console output %q did not arrive within 30s", marker)
		}
		serial.SetWriteDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.WriteString(serial, marker); err != nil {
			return p.errorf("writing to the serial port: %v", err)
		}
		_, found = p.out.wait(50*time.Millisecond, func(d []byte) bool { return bytes.Contains(d, []byte(marker)) })
	}
	p.out.quiet(300*time.Millisecond, 10*time.Second)
	return nil
}

// solAttempts runs one measurement of client, each attempt on a fresh
// ipmi_sim. solgate gets one attempt: any failure of ours fails the
// benchmark. The peers get three, because they fail in ways that are
// theirs (libipmiconsole closes the session with "internal error" when
// its buffer overflows because the terminal side stalled for some tens of
// milliseconds, which a loaded 2-core machine does); every failed attempt
// is logged and counted in the summary.
func solAttempts[T any](b *testing.B, client string, once func() (T, error)) (r T, failed []string) {
	b.Helper()
	tries := 3
	if client == "solgate" {
		tries = 1
	}
	for i := 1; ; i++ {
		r, err := once()
		if err == nil {
			return r, failed
		}
		if i >= tries {
			b.Fatalf("%v", err)
		}
		b.Logf("attempt %d of %d failed, retrying on a fresh ipmi_sim: %v", i, tries, err)
		failed = append(failed, firstLine(err.Error()))
	}
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

// failedNote is the summary's remark on failed attempts.
func failedNote(failed []string) string {
	if len(failed) == 0 {
		return ""
	}
	return fmt.Sprintf("; %d failed attempt(s): %s", len(failed), strings.Join(failed, "; "))
}

// drainSerial reads what clients type on the node's serial port and throws
// it away (ipmi_sim must never find the serial side blocked).
func drainSerial(serial net.Conn) {
	go io.Copy(io.Discard, serial)
}

// percentile is the q-quantile (nearest rank) of sorted durations.
func percentile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q*float64(len(sorted))+0.999999) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// benchSummary collects one figure line per client for a side-by-side log.
type benchSummary struct {
	mu    sync.Mutex
	lines []string
}

func (s *benchSummary) add(line string) {
	s.mu.Lock()
	s.lines = append(s.lines, line)
	s.mu.Unlock()
}

func (s *benchSummary) log(b *testing.B, title string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.lines) == 0 {
		return
	}
	var out bytes.Buffer
	out.WriteString(title + " (against ipmi_sim; one fresh sim per client):")
	for _, l := range s.lines {
		out.WriteString("\n    " + l)
	}
	b.Log(out.String())
}
