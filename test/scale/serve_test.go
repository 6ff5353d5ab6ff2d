package scale

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/solgate/solgate/test/internal/testkit"
)

// serveConfig is what a scenario's solgate serve configuration holds.
type serveConfig struct {
	dir      string            // holds solgate.toml, bmc.pass, log/, state/
	logDir   string            // default dir/log
	server   string            // more [server] lines
	consoles []string          // names
	bmcs     []string          // their BMC addresses
	extra    map[string]string // more lines of some consoles' [[console]] entries
	syslog   string            // [[syslog]] entries
	entries  string            // more entries ([[user]], [[access]])
	logLevel string            // of the daemon log; default info
	listen   string            // the SSH gateway's address; default 127.0.0.1:0
	metrics  string            // the metrics address; default "" (off)
}

// write writes solgate.toml atomically (a reload when serve runs) and
// returns its path: one [[console]] entry per console.
func (c *serveConfig) write(t testing.TB) string {
	t.Helper()
	if c.logDir == "" {
		c.logDir = filepath.Join(c.dir, "log")
	}
	must(t, os.WriteFile(filepath.Join(c.dir, "bmc.pass"), []byte(bmcPassword+"\n"), 0o600))
	var b strings.Builder
	level := c.logLevel
	if level == "" {
		level = "info"
	}
	listen := c.listen
	if listen == "" {
		listen = "127.0.0.1:0"
	}
	fmt.Fprintf(&b, "[server]\nlog_dir = %q\nstate_dir = %q\nlog_format = \"json\"\nlog_level = %q\nreload_interval = \"0\"\nlisten = %q\nmetrics = %q\n%s\n\n",
		c.logDir, filepath.Join(c.dir, "state"), level, listen, c.metrics, c.server)
	b.WriteString("[defaults]\nuser = \"admin\"\npassword_file = \"bmc.pass\"\ncipher_suite = 17\n\n")
	for i, name := range c.consoles {
		fmt.Fprintf(&b, "[[console]]\nname = %q\nbmc = %q\n%s\n", name, c.bmcs[i], c.extra[name])
	}
	b.WriteString(c.syslog)
	b.WriteString(c.entries)
	path := filepath.Join(c.dir, "solgate.toml")
	tmp := path + ".tmp"
	must(t, os.WriteFile(tmp, []byte(b.String()), 0o640))
	must(t, os.Rename(tmp, path))
	return path
}

// newServeConfig is the configuration for every BMC of a fleet.
func newServeConfig(t testing.TB, f *fleet, server string) *serveConfig {
	return &serveConfig{dir: t.TempDir(), server: server, consoles: f.names, bmcs: f.addrs, extra: map[string]string{}}
}

// serveProc is a solgate serve process; its daemon log (JSON) goes to a
// file that daemonLog reads as it grows.
type serveProc struct {
	t    *testing.T
	cmd  *exec.Cmd
	done chan struct{}
	err  error
	log  *daemonLog
}

// startServe starts solgate serve -c cfg. It is killed (by PID) when the
// test ends, if still running.
func startServe(t *testing.T, cfg string, logPath string, env ...string) *serveProc {
	t.Helper()
	cmd := exec.Command(solgateBin(t), "serve", "-c", cfg)
	cmd.Env = append(os.Environ(), env...)
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	must(t, err)
	defer logf.Close()
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	must(t, cmd.Start())
	p := &serveProc{t: t, cmd: cmd, done: make(chan struct{}), log: openDaemonLog(logPath)}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	testkit.KillAtCleanup(t, cmd.Process.Pid, p.done, func() {
		b, _ := os.ReadFile(logPath)
		t.Logf("solgate serve (pid %d) log, the end:\n%s", cmd.Process.Pid, testkit.Tail(string(b), 4000))
	})
	return p
}

// startServeTraced is startServe with the Go runtime listing the
// daemon's goroutines every period (GODEBUG schedtrace, scheddetail), read
// by p.log.goroutinesAfter.
func startServeTraced(t *testing.T, cfg, logPath string, period time.Duration) *serveProc {
	t.Helper()
	start := time.Now()
	p := startServe(t, cfg, logPath, fmt.Sprintf("GODEBUG=schedtrace=%d,scheddetail=1", period.Milliseconds()))
	p.log.traced, p.log.start = true, start
	return p
}

// goroutinesAfter waits for the runtime's first goroutine listing after
// t (see startServeTraced) and returns its count of live goroutines.
func (p *serveProc) goroutinesAfter(t time.Time, d time.Duration) int {
	p.t.Helper()
	deadline := time.Now().Add(d)
	for {
		p.log.update()
		if n, ok := p.log.goroutinesAfter(t); ok {
			return n
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("no goroutine listing from the daemon's runtime within %v", d)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func (p *serveProc) pid() int { return p.cmd.Process.Pid }

func (p *serveProc) running() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// stop sends SIGTERM and waits up to d for the exit.
func (p *serveProc) stop(d time.Duration) error {
	p.t.Helper()
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return p.err
	case <-time.After(d):
		p.cmd.Process.Signal(syscall.SIGKILL)
		<-p.done
		return fmt.Errorf("solgate serve still running %v after SIGTERM", d)
	}
}

func (p *serveProc) kill() {
	p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// waitUp waits until n SOL sessions in all came up (counted over this
// daemon log file, every start of the daemon included).
func (p *serveProc) waitUp(n int, d time.Duration) time.Duration {
	p.t.Helper()
	start := time.Now()
	deadline := start.Add(d)
	for {
		p.log.update()
		// All up, and the daemon ready: its metrics and gateway listen
		// only from then on, and some consoles may be up before.
		if up := p.log.count("conserver: SOL up"); up >= n && p.log.count("serve: ready") > 0 {
			return time.Since(start)
		}
		if !p.running() {
			p.t.Fatalf("solgate serve exited (%v) with %d of %d SOL sessions up", p.err, p.log.count("conserver: SOL up"), n)
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("%d of %d SOL sessions up after %v", p.log.count("conserver: SOL up"), n, d)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// logLine is one line of the daemon log.
type logLine struct {
	Time    time.Time `json:"time"`
	Level   string    `json:"level"`
	Msg     string    `json:"msg"`
	Console string    `json:"console"`
	Err     string    `json:"err"`
	RetryIn int64     `json:"retry_in"` // nanoseconds
}

// logEvent is a timed message of one console.
type logEvent struct {
	at      time.Time
	msg     string
	retryIn time.Duration
}

// daemonLog reads a JSON daemon log as it grows and counts its messages,
// in all and per console.
type daemonLog struct {
	path   string
	mu     sync.Mutex
	off    int64
	rest   []byte
	total  map[string]int
	per    map[string]map[string]int // msg -> console -> count
	events map[string][]logEvent     // console -> its timed messages
	errors []string                  // ERROR lines
	bad    []string                  // lines that are not JSON (or, with runtime tracing, that report a crash)

	// With GODEBUG=schedtrace=MS,scheddetail=1 (startServeTraced) the Go
	// runtime lists every goroutine on stderr every MS: the live ones
	// counted per listing, at the process start plus the listing's time.
	traced bool
	start  time.Time
	dumps  []goroutineDump // complete listings
	cur    *goroutineDump
}

// goroutineDump is one listing of the runtime's scheduler trace.
type goroutineDump struct {
	at   time.Time
	live int
}

var (
	schedLine = regexp.MustCompile(`^SCHED (\d+)ms:`)
	gLine     = regexp.MustCompile(`^\s*G\d+: status=(\d+)`)
	crashLine = regexp.MustCompile(`panic:|fatal error:|DATA RACE|^goroutine \d+ \[`)
)

func openDaemonLog(path string) *daemonLog {
	return &daemonLog{path: path, total: map[string]int{}, per: map[string]map[string]int{}, events: map[string][]logEvent{}}
}

// runtimeLine takes a line of the runtime's scheduler trace.
func (l *daemonLog) runtimeLine(line []byte) {
	if m := schedLine.FindSubmatch(line); m != nil {
		if l.cur != nil {
			l.dumps = append(l.dumps, *l.cur)
		}
		ms, _ := strconv.Atoi(string(m[1]))
		l.cur = &goroutineDump{at: l.start.Add(time.Duration(ms) * time.Millisecond)}
		return
	}
	if m := gLine.FindSubmatch(line); m != nil && l.cur != nil && string(m[1]) != "6" { // 6: _Gdead
		l.cur.live++
	}
}

// goroutinesAfter returns the live goroutines of the first complete
// listing made after t, if there is one yet.
func (l *daemonLog) goroutinesAfter(t time.Time) (int, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, d := range l.dumps {
		if d.at.After(t) {
			return d.live, true
		}
	}
	return 0, false
}

// peakGoroutines is the most live goroutines of any complete listing.
func (l *daemonLog) peakGoroutines() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, d := range l.dumps {
		n = max(n, d.live)
	}
	return n
}

// timed are the messages whose times are kept, per console.
var timed = map[string]bool{"conserver: SOL up": true, "conserver: SOL session lost": true,
	"serve: configuration applied": true, "serve: started": true, "conserver: SOL reconnecting": true,
	"conserver: SOL not connected": true}

// update reads what was appended since the last call.
func (l *daemonLog) update() {
	l.mu.Lock()
	defer l.mu.Unlock()
	f, err := os.Open(l.path)
	if err != nil {
		return
	}
	defer f.Close()
	if _, err := f.Seek(l.off, io.SeekStart); err != nil {
		return
	}
	b, _ := io.ReadAll(f)
	l.off += int64(len(b))
	b = append(l.rest, b...)
	i := bytes.LastIndexByte(b, '\n')
	if i < 0 {
		l.rest = b
		return
	}
	l.rest = append([]byte(nil), b[i+1:]...)
	sc := bufio.NewScanner(bytes.NewReader(b[:i+1]))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Bytes()
		var ll logLine
		if len(line) == 0 {
			continue
		}
		if l.traced {
			// The runtime writes its trace in pieces: a log line may
			// follow a piece of one of its lines.
			i := bytes.Index(line, []byte(`{"time":`))
			if i != 0 {
				if crashLine.Match(line) {
					l.bad = append(l.bad, string(line))
				}
				if i < 0 {
					l.runtimeLine(line)
					continue
				}
				l.runtimeLine(line[:i])
				line = line[i:]
			}
		}
		if line[0] != '{' || json.Unmarshal(line, &ll) != nil {
			l.bad = append(l.bad, string(line))
			continue
		}
		l.total[ll.Msg]++
		m := l.per[ll.Msg]
		if m == nil {
			m = map[string]int{}
			l.per[ll.Msg] = m
		}
		m[ll.Console]++
		if timed[ll.Msg] {
			if ll.Console != "" {
				l.events[ll.Console] = append(l.events[ll.Console], logEvent{ll.Time, ll.Msg, time.Duration(ll.RetryIn)})
			}
		}
		if ll.Level == "ERROR" {
			l.errors = append(l.errors, string(line))
		}
	}
}

func (l *daemonLog) count(msg string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.total[msg]
}

// perConsole returns a copy of msg's count per console.
func (l *daemonLog) perConsole(msg string) map[string]int {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := map[string]int{}
	for k, v := range l.per[msg] {
		out[k] = v
	}
	return out
}

// eventsOf returns a console's timed messages, in order.
func (l *daemonLog) eventsOf(console string) []logEvent {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]logEvent(nil), l.events[console]...)
}

// notJSON returns the lines that were not JSON (a panic, a runtime error).
func (l *daemonLog) notJSON() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.bad...)
}
