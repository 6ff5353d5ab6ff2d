package scale

import (
	"bufio"
	"fmt"
	"math/rand/v2"
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

// bmcPassword is the password of the "admin" user of every simulated BMC.
const bmcPassword = "s3cret-for-scale"

// bmcPort is every simulated BMC's UDP port: one BMC per loopback address
// (so a killed fleet comes back on the same addresses), below 32768
// (FreeIPMI, hence ConMan, refuses larger ports in HOST:PORT).
const bmcPort = 16623

// Every fleet of a scenario lives in one /16 of loopback, 127.R.0.0/16
// with R picked at random among these (127.0.x.x is where the other tests
// and the other engineers' programs bind): a scenario that finds its
// addresses taken picks another.
const netFirst, netLast = 100, 250

var netMu sync.Mutex
var netUsed = map[int]bool{} // the /16s this test process has handed out

// addrAt is the k-th usable address of 127.net.0.0/16: .0 and .255 of
// each /24 are skipped, as bmcsim --per-address skips them.
func addrAt(net, k int) string {
	return fmt.Sprintf("127.%d.%d.%d", net, k/254, k%254+1)
}

// fleet is a set of solgate bmcsim processes: BMC i (0-based) has the
// address addrs[i] and the name names[i] (the console's name too).
type fleet struct {
	t     *testing.T
	dir   string
	net   int
	procs []*simProc
	addrs []string
	names []string
	proc  []int // BMC i is in procs[proc[i]]
}

// simProc is one solgate bmcsim process serving BMCs [first, first+n).
type simProc struct {
	t         *testing.T
	i         int
	first, n  int
	args      []string
	hostsFile string
	logFile   string
	mu        sync.Mutex
	cmd       *exec.Cmd
	done      chan struct{}
}

// newFleet starts n BMCs in processes of at most per each. extra are
// more solgate bmcsim flags (faults, --stream RATE, ...). Console i is
// "node<i+1>", and its simulated host calls itself that.
func newFleet(t *testing.T, n, per int, extra ...string) *fleet {
	t.Helper()
	for range 20 {
		f, err := tryFleet(t, n, per, extra)
		if err == nil {
			return f
		}
		if !strings.Contains(err.Error(), "address already in use") {
			t.Fatal(err)
		}
		t.Logf("fleet addresses taken, trying another /16: %v", err)
	}
	t.Fatal("no free loopback /16 for the fleet")
	return nil
}

func tryFleet(t *testing.T, n, per int, extra []string) (*fleet, error) {
	netMu.Lock()
	r := 0
	for range 1000 {
		if c := netFirst + rand.IntN(netLast-netFirst+1); !netUsed[c] {
			r = c
			break
		}
	}
	netUsed[r] = true
	netMu.Unlock()
	if r == 0 {
		return nil, fmt.Errorf("every loopback /16 handed out")
	}
	f := &fleet{t: t, dir: t.TempDir(), net: r}
	for i := range n {
		f.addrs = append(f.addrs, fmt.Sprintf("%s:%d", addrAt(r, i), bmcPort))
		f.names = append(f.names, fmt.Sprintf("node%d", i+1))
		f.proc = append(f.proc, i/per)
	}
	for i := 0; i*per < n; i++ {
		p := &simProc{t: t, i: i, first: i * per, n: min(per, n-i*per)}
		p.hostsFile = filepath.Join(f.dir, fmt.Sprintf("hosts%d", i))
		p.logFile = filepath.Join(f.dir, fmt.Sprintf("bmcsim%d.log", i))
		p.args = append([]string{"bmcsim", "-n", strconv.Itoa(p.n),
			"--listen", fmt.Sprintf("%s:%d", addrAt(r, p.first), bmcPort), "--per-address",
			"--names", fmt.Sprintf("node[%d-%d]", p.first+1, p.first+p.n),
			"--hosts-file", p.hostsFile}, extra...)
		f.procs = append(f.procs, p)
		if err := p.start(); err != nil {
			f.stopAll()
			return nil, err
		}
	}
	t.Cleanup(f.stopAll)
	// What the simulators say they listen on must be what we computed.
	for _, p := range f.procs {
		hosts := readHosts(p.hostsFile)
		for k, h := range hosts {
			if want := f.names[p.first+k] + " " + f.addrs[p.first+k]; h != want {
				f.stopAll()
				return nil, fmt.Errorf("bmcsim %d listed %q, want %q", p.i, h, want)
			}
		}
	}
	return f, nil
}

// start runs the process and waits until every BMC listens (its hosts
// file appears).
func (p *simProc) start() error {
	os.Remove(p.hostsFile)
	cmd := exec.Command(solgateBin(p.t), p.args...)
	cmd.Env = []string{"IPMI_PASSWORD=" + bmcPassword, "GOGC=200"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	logf, err := os.OpenFile(p.logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	p.mu.Lock()
	p.cmd, p.done = cmd, done
	p.mu.Unlock()
	deadline := time.Now().Add(2 * time.Minute)
	for len(readHosts(p.hostsFile)) != p.n {
		select {
		case <-done:
			b, _ := os.ReadFile(p.logFile)
			return fmt.Errorf("bmcsim %d exited at start: %s", p.i, testkit.Tail(string(b), 800))
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("bmcsim %d: %d BMCs not listening after 2 minutes", p.i, p.n)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return nil
}

func (p *simProc) pid() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cmd.Process.Pid
}

func (p *simProc) signal(sig syscall.Signal) {
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-p.done:
	default:
		p.cmd.Process.Signal(sig)
	}
}

// kill ends the process with SIGKILL: its BMCs vanish without a word
// (datagrams to them get port unreachable) and lose every session.
func (p *simProc) kill() {
	p.signal(syscall.SIGCONT)
	p.signal(syscall.SIGKILL)
	<-p.done
}

// freeze stops the process (SIGSTOP): its BMCs answer nothing, and what
// is sent to them waits in their sockets; thaw (SIGCONT) lets them go on.
func (p *simProc) freeze() { p.signal(syscall.SIGSTOP) }
func (p *simProc) thaw()   { p.signal(syscall.SIGCONT) }

// setFaults turns the fault flags' faults on or off in every process
// (started with --fault-signals) and waits until each says so.
func (f *fleet) setFaults(on bool) {
	f.t.Helper()
	sig, line := syscall.SIGUSR2, "solgate bmcsim: faults off"
	if on {
		sig, line = syscall.SIGUSR1, "solgate bmcsim: faults on"
	}
	before := make([]int, len(f.procs))
	for i, p := range f.procs {
		b, _ := os.ReadFile(p.logFile)
		before[i] = strings.Count(string(b), line)
		p.signal(sig)
	}
	deadline := time.Now().Add(30 * time.Second)
	for i, p := range f.procs {
		for {
			b, _ := os.ReadFile(p.logFile)
			if strings.Count(string(b), line) > before[i] {
				break
			}
			if time.Now().After(deadline) {
				f.t.Fatalf("bmcsim %d did not say %q", i, line)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

// simStats is what a bmcsim process reports when it stops.
type simStats struct {
	packets                          int // datagrams the BMCs received
	open, active, delivered, resends int
	dropped                          int // output bytes dropped after the last resend
}

var simFinal = regexp.MustCompile(`stopped: (\d+) packets, .*\((\d+) still open\).*\((\d+) still active\), (\d+) bytes of console output delivered, (\d+) resends, (\d+) bytes dropped after the last resend`)

// stopBegin sends SIGTERM; the function returned waits for the exit and
// reads the final counts (of this start only).
func (p *simProc) stopBegin() func() (simStats, error) {
	b, _ := os.ReadFile(p.logFile)
	before := len(simFinal.FindAllString(string(b), -1))
	p.signal(syscall.SIGCONT)
	p.signal(syscall.SIGTERM)
	return func() (simStats, error) {
		select {
		case <-p.done:
		case <-time.After(30 * time.Second):
			p.signal(syscall.SIGKILL)
			<-p.done
			return simStats{}, fmt.Errorf("bmcsim %d: still running 30 s after SIGTERM", p.i)
		}
		b, _ := os.ReadFile(p.logFile)
		all := simFinal.FindAllStringSubmatch(string(b), -1)
		if len(all) <= before {
			return simStats{}, fmt.Errorf("bmcsim %d: no final counts in its output: %s", p.i, testkit.Tail(string(b), 500))
		}
		m := all[len(all)-1]
		var s simStats
		s.packets, _ = strconv.Atoi(m[1])
		s.open, _ = strconv.Atoi(m[2])
		s.active, _ = strconv.Atoi(m[3])
		s.delivered, _ = strconv.Atoi(m[4])
		s.resends, _ = strconv.Atoi(m[5])
		s.dropped, _ = strconv.Atoi(m[6])
		return s, nil
	}
}

// stop ends every process and sums their final counts.
func (f *fleet) stop() (simStats, error) {
	each, err := f.stopEach()
	var sum simStats
	for _, s := range each {
		sum.packets += s.packets
		sum.open += s.open
		sum.active += s.active
		sum.delivered += s.delivered
		sum.resends += s.resends
		sum.dropped += s.dropped
	}
	return sum, err
}

// stopEach ends every process and returns each one's final counts.
func (f *fleet) stopEach() ([]simStats, error) {
	var waits []func() (simStats, error)
	for _, p := range f.procs {
		waits = append(waits, p.stopBegin())
	}
	var out []simStats
	var first error
	for _, w := range waits {
		s, err := w()
		if err != nil && first == nil {
			first = err
		}
		out = append(out, s)
	}
	return out, first
}

func (f *fleet) stopAll() {
	for _, p := range f.procs {
		p.mu.Lock()
		cmd, done := p.cmd, p.done
		p.mu.Unlock()
		if cmd == nil {
			continue
		}
		select {
		case <-done:
			continue
		default:
		}
		cmd.Process.Signal(syscall.SIGCONT)
		cmd.Process.Signal(syscall.SIGKILL)
		<-done
	}
}

// delayBursts freezes each process for burst at random moments (every
// 2-8 s on average each) until stop is closed: every BMC of a process
// then answers late, and what the clients send waits, as behind a switch
// that stalls. It returns how many bursts there were when stop closes.
func (f *fleet) delayBursts(stop <-chan struct{}, burst time.Duration) func() int {
	var wg sync.WaitGroup
	var mu sync.Mutex
	n := 0
	for _, p := range f.procs {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				case <-time.After(time.Duration(2000+rand.IntN(6000)) * time.Millisecond):
				}
				p.freeze()
				time.Sleep(burst)
				p.thaw()
				mu.Lock()
				n++
				mu.Unlock()
			}
		})
	}
	return func() int { wg.Wait(); return n }
}

// readHosts reads a bmcsim hosts file ("NAME ADDRESS:PORT" lines).
func readHosts(path string) []string {
	fh, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer fh.Close()
	var out []string
	sc := bufio.NewScanner(fh)
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); l != "" {
			out = append(out, l)
		}
	}
	return out
}
