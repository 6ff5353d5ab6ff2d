package scale

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/solgate/solgate/ipmilan/bmcsim"
	"github.com/solgate/solgate/test/internal/testkit"
)

// rsyslogPeer is a private rsyslogd on loopback (imrelp and imtcp), that
// writes "HOSTNAME MSG" lines to one file. It runs as nobody when the
// tests run as root.
type rsyslogPeer struct {
	t         testing.TB
	dir, conf string
	out       string
	relp, tcp string // 127.0.0.1:port
	cmd       *exec.Cmd
	exited    chan struct{}
	cred      *syscall.Credential
}

func freeTCPPort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func newRsyslog(t testing.TB) *rsyslogPeer {
	t.Helper()
	requireTool(t, "rsyslogd")
	if m, _ := filepath.Glob("/usr/lib/*/rsyslog/imrelp.so"); len(m) == 0 {
		skipOrFail(t, "rsyslog's imrelp module is missing (package rsyslog-relp)")
	}
	dir := t.TempDir()
	p := &rsyslogPeer{t: t, dir: dir, conf: filepath.Join(dir, "rsyslog.conf"), out: filepath.Join(dir, "out", "all.log")}
	for _, d := range []string{"work", "out"} {
		must(t, os.MkdirAll(filepath.Join(dir, d), 0o755))
	}
	if uid, gid, ok := testkit.Nobody(); ok {
		p.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		testkit.OpenTo(dir, uid, gid)
	}
	rp, tp := freeTCPPort(t), freeTCPPort(t)
	p.relp, p.tcp = fmt.Sprintf("127.0.0.1:%d", rp), fmt.Sprintf("127.0.0.1:%d", tp)
	conf := fmt.Sprintf(`global(workDirectory="%[1]s/work" maxMessageSize="64k")
main_queue(queue.type="Direct")
module(load="imrelp")
module(load="imtcp")
template(name="lean" type="string" string="%%hostname%% %%msg%%\n")
ruleset(name="peer") {
  action(type="omfile" file="%[1]s/out/all.log" template="lean" asyncWriting="on" flushOnTXEnd="on" ioBufferSize="256k")
}
input(type="imrelp" name="relp" address="127.0.0.1" port="%[2]d" ruleset="peer")
input(type="imtcp" name="tcp" address="127.0.0.1" port="%[3]d" ruleset="peer")
`, dir, rp, tp)
	must(t, os.WriteFile(p.conf, []byte(conf), 0o644))
	if out, err := exec.Command("rsyslogd", "-N1", "-f", p.conf).CombinedOutput(); err != nil {
		t.Fatalf("rsyslogd -N1: %v\n%s", err, out)
	}
	p.start()
	t.Cleanup(p.stop)
	return p
}

// start runs rsyslogd in the foreground and waits for its inputs.
func (p *rsyslogPeer) start() {
	t := p.t
	t.Helper()
	stderr, err := os.OpenFile(filepath.Join(p.dir, "rsyslogd.stderr"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	must(t, err)
	defer stderr.Close()
	cmd := exec.Command("rsyslogd", "-n", "-f", p.conf, "-i", filepath.Join(p.dir, "work", "rsyslogd.pid"))
	cmd.Stdout, cmd.Stderr = stderr, stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: p.cred, Pdeathsig: syscall.SIGKILL}
	must(t, cmd.Start())
	p.cmd = cmd
	p.exited = make(chan struct{})
	go func() { cmd.Wait(); close(p.exited) }()
	testkit.WaitTCP(t, "rsyslogd", p.exited, filepath.Join(p.dir, "rsyslogd.stderr"), 20*time.Second, p.relp, p.tcp)
}

// stop ends rsyslogd (SIGTERM, by PID) and waits for it.
func (p *rsyslogPeer) stop() {
	if p.cmd == nil {
		return
	}
	testkit.StopProcess(p.cmd, p.exited, 15*time.Second)
	p.cmd = nil
}

// received reads what rsyslog wrote: per console (host), how many times
// each stream line (by its offset) arrived, and how many messages in all.
// streamHeaders returns the stream line numbers in a message: ten digits
// with two leading zeros (the tests' offsets stay far below 10^8), a
// multiple of the line length, followed by the line's space; and the ten
// digits at its start (a line cut by a gap right after its number). A
// line cut by a gap may run into the next line's number right after its
// own digits, so every position is tried, even one that overlaps the
// start: the continuation of 0000030450 cut after its number may be
// 000030825 (the next line's number less its first digit, lost with the
// rest), and 0000030450000030825 holds both. Ten digits at the start that
// pass are always the message's own line number: a message starts where
// a line does, or in the middle of a line whose start was lost, and no
// ten characters of a line other than its number are ten digits
// beginning 00.
func streamHeaders(msg string) []int {
	header := func(i int) (int, bool) {
		if i+10 > len(msg) || msg[i] != '0' || msg[i+1] != '0' {
			return 0, false
		}
		off, err := strconv.Atoi(msg[i : i+10])
		return off, err == nil && off%bmcsim.StreamLineLen == 0
	}
	var out []int
	if off, ok := header(0); ok && (len(msg) == 10 || msg[10] != ' ') {
		out = append(out, off) // cut right after its number
	}
	for i := 0; i+10 < len(msg); i++ {
		if msg[i+10] != ' ' {
			continue
		}
		if off, ok := header(i); ok {
			out = append(out, off)
		}
	}
	return out
}

func (p *rsyslogPeer) received() (map[string]map[int]int, int) {
	p.t.Helper()
	out := map[string]map[int]int{}
	f, err := os.Open(p.out)
	if os.IsNotExist(err) {
		return out, 0
	}
	must(p.t, err)
	defer f.Close()
	n := 0
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<16), 1<<20)
	for sc.Scan() {
		host, msg, ok := strings.Cut(sc.Text(), " ")
		if !ok {
			continue
		}
		n++
		// A message is a console line; where a line was cut by lost
		// output, the bytes before and after the gap are one message (as
		// the console showed them), so every stream line number in it
		// counts, not only the first.
		for _, off := range streamHeaders(msg) {
			m := out[host]
			if m == nil {
				m = map[int]int{}
				out[host] = m
			}
			m[off]++
		}
	}
	return out, n
}
