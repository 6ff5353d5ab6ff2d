package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base32"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"

	"github.com/solgate/solgate/conserver"
	"github.com/solgate/solgate/conserver/hostlist"
	"github.com/solgate/solgate/ipmilan/bmcsim"
)

func init() {
	register(command{name: "demo", summary: "the daemon with a built-in simulated fleet: no hardware, no config, no root", run: runDemo})
}

const demoUsage = `Usage: solgate demo [--tour] [-n N] [--dir DIR] [--listen ADDR] [--metrics ADDR]

Runs the whole console server on loopback against a fleet of simulated
BMCs in this process: N nodes (default 16) that boot (BIOS screen, kernel
log, login prompt), print a kernel message now and then, echo what is
typed and obey power commands. The daemon is solgate serve itself: console
manager, log store, SSH gateway on --listen (default 127.0.0.1:2222),
metrics on --metrics (default 127.0.0.1:9623), the control socket. It
needs no root, no configuration and no hardware, and stops everything on
Ctrl-C.

It lets in your own SSH keys (~/.ssh/*.pub and the keys of your ssh-agent)
and makes a demo key as well (DIR/demo_key), then prints the commands to
try: attaching with ssh, the escape keys, a power cycle from inside the
console, solgate grep over the fleet's logs, ipmitool against a simulated
BMC. The last node's BMC starts misconfigured, for solgate bmc doctor.

Everything lives in DIR (default: a new temporary directory, removed at
the end; a --dir you give is kept): solgate.toml (edit it while the demo
runs: saving applies the change), the BMC password file, log/ (the
consoles' logs), state/ (host key, control socket), solgate.log (the
daemon's log).

--tour runs the same steps by itself, prints what each did, and exits
non-zero if any failed (a smoke test; CI runs it).

Examples:
  solgate demo
  solgate demo -n 100 --dir /tmp/demo --listen 127.0.0.1:2200
  solgate demo --tour --listen 127.0.0.1:0 --metrics 127.0.0.1:0`

type demoFlags struct {
	n               int
	dir             string
	listen, metrics string
	tour            bool
	chatter         time.Duration
}

// demo is one running demo: the fleet, the daemon and what to tell the
// user.
type demo struct {
	f        demoFlags
	dir      string
	cfgPath  string
	keyPath  string // the demo key (OpenSSH private key format)
	signer   ssh.Signer
	password string
	names    []string
	fleet    *bmcsim.Fleet
	d        *daemon
	listen   string // the SSH gateway's address
	metrics  string // the metrics' address ("" if off)
	keys     demoKeys
	self     string // how to run this binary in the printed commands
	out      io.Writer
}

// demoKeys says which of the user's keys the demo lets in.
type demoKeys struct {
	files, agent int
	lines        []string // authorized_keys lines
}

func runDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var f demoFlags
	fs := newFlagSet("demo", demoUsage, stderr)
	fs.IntVar(&f.n, "n", 16, "number of simulated nodes (1-1000)")
	fs.StringVar(&f.dir, "dir", "", "keep the demo's files in `DIR` (default: a temporary directory, removed at the end)")
	fs.StringVar(&f.listen, "listen", "127.0.0.1:2222", "SSH gateway `ADDRESS` (loopback; port 0: any free port)")
	fs.StringVar(&f.metrics, "metrics", "127.0.0.1:9623", "metrics `ADDRESS` (loopback; port 0: any free port; \"\" turns them off)")
	fs.BoolVar(&f.tour, "tour", false, "run the steps by itself, print what each did, and exit")
	fs.DurationVar(&f.chatter, "chatter", 20*time.Second, "each node prints a kernel message about this often (0: never)")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return usageErr(err)
	}
	if len(pos) > 0 {
		return &exitError{code: 2, msg: fmt.Sprintf("demo: unexpected argument %q (see solgate demo --help)", pos[0])}
	}
	if f.n < 1 || f.n > 1000 {
		return &exitError{code: 2, msg: fmt.Sprintf("demo: -n %d: want 1 to 1000", f.n)}
	}
	dm := &demo{f: f, out: stdout, self: selfName()}
	if dm.listen, err = loopbackAddr("--listen", f.listen); err != nil {
		return &exitError{code: 2, msg: "demo: " + err.Error()}
	}
	if f.metrics != "" {
		if dm.metrics, err = loopbackAddr("--metrics", f.metrics); err != nil {
			return &exitError{code: 2, msg: "demo: " + err.Error()}
		}
	}
	return dm.run(ctx)
}

// selfName is how the printed commands run solgate: as invoked when that
// was a path (bin/solgate), else "solgate".
func selfName() string {
	if strings.Contains(os.Args[0], "/") && !strings.Contains(os.Args[0], ".test") {
		return os.Args[0]
	}
	return "solgate"
}

// loopbackAddr checks that addr is an IP literal on loopback and, for port
// 0, picks a free port now (the daemon's configuration needs a number).
func loopbackAddr(flagName, addr string) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("%s %q: want IP:PORT", flagName, addr)
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return "", fmt.Errorf("%s %q: the demo listens on loopback only (127.0.0.1 or ::1): its BMC password and keys are for show", flagName, addr)
	}
	if port != "0" {
		if _, err := strconv.ParseUint(port, 10, 16); err != nil {
			return "", fmt.Errorf("%s %q: bad port", flagName, addr)
		}
		return addr, nil
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return "", fmt.Errorf("%s %s: %w", flagName, addr, err)
	}
	defer l.Close()
	return l.Addr().String(), nil
}

func (dm *demo) run(ctx context.Context) (err error) {
	start := time.Now()
	for _, a := range []struct{ flag, addr string }{{"--listen", dm.listen}, {"--metrics", dm.metrics}} {
		if a.addr == "" {
			continue
		}
		l, err := net.Listen("tcp", a.addr)
		if err != nil {
			return &exitError{code: 1, msg: fmt.Sprintf("demo: %s %s is not free (%v): choose another, e.g. %s 127.0.0.1:0", a.flag, a.addr, errors.Unwrap(err), a.flag)}
		}
		l.Close()
	}
	if err := dm.prepareDir(); err != nil {
		return err
	}
	defer func() {
		if dm.f.dir == "" {
			os.RemoveAll(dm.dir)
		}
	}()
	// The simulated BMCs outlive a Ctrl-C until the daemon has stopped
	// (Close, deferred): stopped with it, they left every console's
	// deactivation unanswered, and the stop took the IPMI timeout.
	if err := dm.startFleet(context.WithoutCancel(ctx)); err != nil {
		return err
	}
	defer dm.fleet.Close()
	if err := dm.gatherKeys(); err != nil {
		return err
	}
	if err := dm.writeConfig(); err != nil {
		return err
	}
	logf, err := os.OpenFile(filepath.Join(dm.dir, "solgate.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	defer logf.Close()
	keepRunningOnBrokenStderr() // the demo's own messages go to stdout and stderr
	dm.d, err = newDaemon(dm.cfgPath, logf)
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	dctx, stopDaemon := context.WithCancel(context.WithoutCancel(ctx))
	defer stopDaemon()
	ran := make(chan error, 1)
	go func() { ran <- dm.d.run(dctx) }()
	select {
	case <-dm.d.started:
	case err := <-ran:
		return fmt.Errorf("demo: the daemon did not start (see %s): %w", logf.Name(), err)
	}
	var chatter sync.WaitGroup
	cctx, stopChatter := context.WithCancel(ctx)
	chatter.Go(func() { dm.chatter(cctx) })
	defer func() { stopChatter(); chatter.Wait() }()

	if dm.f.tour {
		fmt.Fprintf(dm.out, "solgate demo --tour: %d simulated nodes and the daemon up in %v\n", len(dm.names), time.Since(start).Round(time.Millisecond))
		terr := dm.tour(ctx)
		stopChatter()
		stopDaemon()
		if derr := <-ran; derr != nil && terr == nil {
			terr = fmt.Errorf("demo: the daemon stopped with an error: %w", derr)
		}
		return terr
	}
	dm.printHelp(time.Since(start))
	select {
	case <-ctx.Done():
		fmt.Fprintln(dm.out, "\nsolgate demo: stopping (consoles, gateway, simulated BMCs)...")
		stopDaemon()
		err = <-ran
	case err = <-ran:
		if err == nil {
			err = errors.New("demo: the daemon stopped")
		}
	}
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	fmt.Fprintln(dm.out, "solgate demo: stopped.")
	if dm.f.dir != "" {
		fmt.Fprintf(dm.out, "Its files are kept in %s.\n", dm.dir)
	}
	return nil
}

func (dm *demo) prepareDir() error {
	if dm.f.dir == "" {
		d, err := os.MkdirTemp("", "solgate-demo-")
		if err != nil {
			return fmt.Errorf("demo: %w", err)
		}
		dm.dir = d
	} else {
		d, err := filepath.Abs(dm.f.dir)
		if err != nil {
			return fmt.Errorf("demo: --dir: %w", err)
		}
		if err := os.MkdirAll(d, 0o700); err != nil {
			return fmt.Errorf("demo: --dir: %w", err)
		}
		dm.dir = d
	}
	dm.cfgPath = filepath.Join(dm.dir, "solgate.toml")
	// A fresh password each run (the BMCs are new each run too), in a 0600
	// file as a real site keeps it.
	b := make([]byte, 10)
	rand.Read(b)
	dm.password = strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b))[:16]
	if err := writeFileAtomic(filepath.Join(dm.dir, "bmc.pass"), []byte(dm.password+"\n"), 0o600); err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	return nil
}

// demoBMCUser is the simulated BMCs' administrator.
const demoBMCUser = "admin"

func (dm *demo) startFleet(ctx context.Context) error {
	width := max(2, len(strconv.Itoa(dm.f.n)))
	dm.names = make([]string, dm.f.n)
	for i := range dm.names {
		dm.names[i] = fmt.Sprintf("node%0*d", width, i+1)
	}
	if err := os.MkdirAll(filepath.Join(dm.dir, "bmc"), 0o700); err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	fc := bmcsim.FleetConfig{
		N:      dm.f.n,
		Listen: "127.0.0.1:0",
		Config: bmcsim.Config{
			Users:        []bmcsim.User{{Name: demoBMCUser, Password: dm.password, MaxPriv: bmcsim.PrivAdmin}},
			PowerOn:      true,
			CycleDelay:   2 * time.Second,
			SoftOffDelay: 2 * time.Second,
		},
		Configure: func(i int, c *bmcsim.Config) {
			c.SOL.Hostname = dm.names[i]
			// The last node's BMC comes as a neglected one would: SOL off,
			// anonymous login, cipher suite 0 (for solgate bmc doctor).
			// Its state file keeps what bmc set fixes, until the demo ends.
			c.Misconfigured = i == dm.f.n-1
			c.StateFile = filepath.Join(dm.dir, "bmc", dm.names[i]+".json")
			os.Remove(c.StateFile) // each demo starts from the same fleet
		},
	}
	var err error
	if dm.fleet, err = bmcsim.StartFleet(ctx, fc); err != nil {
		return fmt.Errorf("demo: simulated BMCs: %w", err)
	}
	return nil
}

// gatherKeys reads the user's public keys (files and agent) and makes the
// demo key.
func (dm *demo) gatherKeys() error {
	seen := map[string]bool{}
	add := func(k ssh.PublicKey, comment string) bool {
		if _, cert := k.(*ssh.Certificate); cert {
			return false // a certificate needs its CA trusted: see the README
		}
		m := string(k.Marshal())
		if seen[m] {
			return false
		}
		seen[m] = true
		line := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(k)))
		if comment = strings.TrimSpace(strings.Map(func(r rune) rune {
			if r < ' ' || r == '"' || r == '\\' {
				return -1
			}
			return r
		}, comment)); comment != "" {
			line += " " + comment
		}
		dm.keys.lines = append(dm.keys.lines, line)
		return true
	}
	// The demo key, for the tour and for anyone without a key of their own.
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return fmt.Errorf("demo: key: %w", err)
	}
	blk, err := ssh.MarshalPrivateKey(priv, "solgate demo key")
	if err != nil {
		return fmt.Errorf("demo: key: %w", err)
	}
	dm.keyPath = filepath.Join(dm.dir, "demo_key")
	if err := writeFileAtomic(dm.keyPath, pem.EncodeToMemory(blk), 0o600); err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	if dm.signer, err = ssh.NewSignerFromKey(priv); err != nil {
		return fmt.Errorf("demo: key: %w", err)
	}
	os.WriteFile(dm.keyPath+".pub", ssh.MarshalAuthorizedKey(dm.signer.PublicKey()), 0o644)
	add(dm.signer.PublicKey(), "solgate demo key")

	if dm.f.tour {
		return nil // the tour uses the demo key only: a smoke test must not depend on the machine's keys
	}
	if home, err := os.UserHomeDir(); err == nil {
		files, _ := filepath.Glob(filepath.Join(home, ".ssh", "*.pub"))
		for _, f := range files {
			data, err := os.ReadFile(f)
			if err != nil {
				continue
			}
			for len(data) > 0 {
				k, comment, _, rest, err := ssh.ParseAuthorizedKey(data)
				if err != nil {
					break
				}
				if add(k, comment) {
					dm.keys.files++
				}
				data = rest
			}
		}
	}
	if sock := os.Getenv("SSH_AUTH_SOCK"); sock != "" {
		if c, err := net.DialTimeout("unix", sock, time.Second); err == nil {
			c.SetDeadline(time.Now().Add(2 * time.Second))
			keys, _ := agent.NewClient(c).List()
			c.Close()
			for _, k := range keys {
				pk, err := ssh.ParsePublicKey(k.Blob)
				if err == nil && add(pk, k.Comment) {
					dm.keys.agent++
				}
			}
		}
	}
	return nil
}

// demoUser is the [[user]] the keys belong to: the login name when it is
// a valid one.
func demoUser() string {
	if u, err := user.Current(); err == nil {
		n := u.Username
		ok := n != "" && len(n) <= 64
		for i := 0; ok && i < len(n); i++ {
			c := n[i]
			ok = c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || i > 0 && (c == '.' || c == '-')
		}
		if ok {
			return n
		}
	}
	return "demo"
}

func (dm *demo) writeConfig() error {
	var b strings.Builder
	q := strconv.Quote
	fmt.Fprintf(&b, `# Written by solgate demo. Edit it while the demo runs: saving applies the
# change within a second (an invalid edit is refused and logged in
# solgate.log; 'solgate ctl -c %s reload' shows the errors).

[server]
listen = %s
metrics = %s
log_dir = %s
state_dir = %s
log_level = "info"
reconnect_max = "30s"      # the misconfigured node is retried twice a minute

[defaults]
user = %q
password_file = "bmc.pass"
cipher_suite = 17

[[console]]
name = %s
bmc = %s

[[user]]
name = %s
keys = [
`, dm.cfgPath, q(dm.listen), q(dm.metrics), q(filepath.Join(dm.dir, "log")), q(filepath.Join(dm.dir, "state")),
		demoBMCUser, q(hostlist.Compress(dm.names)), q(strings.Join(dm.fleet.Addrs(), ",")), q(demoUser()))
	for _, l := range dm.keys.lines {
		fmt.Fprintf(&b, "  %s,\n", q(l))
	}
	b.WriteString(`]

# Everyone here may do everything: it is a demo.
[[access]]
consoles = "*"
read = ["@all"]
write = ["@all"]
power = ["@all"]
`)
	if err := writeFileAtomic(dm.cfgPath, []byte(b.String()), 0o600); err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	return nil
}

// kernelChatter are the messages the simulated nodes print now and then.
var kernelChatter = []string{
	"EXT4-fs (nvme0n1p2): re-mounted. Quota mode: none.",
	"ice 0000:4b:00.0 eno1: NIC Link is Down",
	"ice 0000:4b:00.0 eno1: NIC Link is up 25 Gbps Full Duplex, Flow Control: None",
	"perf: interrupt took too long (2503 > 2500), lowering kernel.perf_event_max_sample_rate to 79800",
	"mce: [Hardware Error]: Machine check events logged",
	"EDAC MC0: 1 CE memory read error on CPU_SrcID#0_MC#0_Chan#1_DIMM#0 (channel:1 slot:0 page:0x4a3b1 offset:0x0 grain:32 syndrome:0x0)",
	"nfs: server fileserver not responding, still trying",
	"nfs: server fileserver OK",
	"TCP: request_sock_TCP: Possible SYN flooding on port 22. Sending cookies.",
	"systemd-journald[612]: Data hash table of /var/log/journal/system.journal has a fill level at 75.0 (8535 of 11377 items), suggesting rotation.",
	"usb 1-1: new high-speed USB device number 3 using xhci_hcd",
	"watchdog: BUG: soft lockup - CPU#17 stuck for 22s! [slurmstepd:48213]",
}

// chatter makes a random powered-on node print a kernel message, so that
// each node prints one about every f.chatter.
func (dm *demo) chatter(ctx context.Context) {
	if dm.f.chatter <= 0 {
		return
	}
	every := dm.f.chatter / time.Duration(len(dm.names))
	t := time.NewTicker(max(every, 10*time.Millisecond))
	defer t.Stop()
	booted := make([]time.Time, len(dm.names))
	boots := make([]int, len(dm.names))
	for i := range booted {
		booted[i] = time.Now().Add(-time.Minute)
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		i := randInt(len(dm.names))
		b := dm.fleet.BMC(i)
		if bs := b.Boot().Boots; bs != boots[i] {
			boots[i], booted[i] = bs, time.Now()
		}
		up := time.Since(booted[i])
		if !b.Power() || up < 5*time.Second {
			continue // off, or still booting
		}
		msg := kernelChatter[randInt(len(kernelChatter))]
		b.HostWrite(fmt.Appendf(nil, "[%6d.%06d] %s\r\n", int(up.Seconds()), up.Microseconds()%1e6, msg))
	}
}

func randInt(n int) int {
	v, _ := rand.Int(rand.Reader, big.NewInt(int64(n)))
	return int(v.Int64())
}

// sshArgs is the start of an ssh command line reaching the gateway.
func (dm *demo) sshArgs(withKey bool) string {
	host, port, _ := net.SplitHostPort(dm.listen)
	s := "ssh -p " + port
	if withKey {
		s += " -i " + dm.keyPath
	}
	// OpenSSH takes an IPv6 address bare after "user@" (node01@::1) and
	// looks "[::1]" up as a host name.
	return s + " %s@" + host
}

func (dm *demo) printHelp(took time.Duration) {
	w := dm.out
	last := dm.names[len(dm.names)-1]
	first := dm.names[0]
	second := dm.names[min(1, len(dm.names)-1)]
	withKey := dm.keys.files+dm.keys.agent == 0
	ssh := func(console string) string { return fmt.Sprintf(dm.sshArgs(withKey), console) }
	bmcHost, bmcPort, _ := net.SplitHostPort(dm.fleet.Addr(min(1, len(dm.names)-1)))
	fmt.Fprintf(w, "solgate demo: %d simulated nodes (%s) and the console server, up in %v. Ctrl-C stops it all.\n\n",
		len(dm.names), hostlist.Compress(dm.names), took.Round(time.Millisecond))
	fmt.Fprintf(w, "  files     %s (solgate.toml: edit it live; log/: console logs; solgate.log: the daemon)\n", dm.dir)
	fmt.Fprintf(w, "  ssh       %s, ", dm.listen)
	switch {
	case withKey:
		fmt.Fprintf(w, "with the demo key %s (no key of yours found in ~/.ssh or the agent)\n", dm.keyPath)
	default:
		fmt.Fprintf(w, "with your keys (%d from ~/.ssh/*.pub, %d from the agent) or the demo key %s\n", dm.keys.files, dm.keys.agent, dm.keyPath)
	}
	if dm.metrics != "" {
		fmt.Fprintf(w, "  metrics   http://%s/metrics\n", dm.metrics)
	}
	fmt.Fprintf(w, "\nTry:\n")
	fmt.Fprintf(w, "  %s\n", ssh(first))
	fmt.Fprintf(w, "      attach to %s's console: it shows the last lines, then echoes what you type\n", first)
	fmt.Fprintf(w, "      inside, Ctrl-E c then:  ?  help   .  detach   w  who   i  info   r  replay\n")
	fmt.Fprintf(w, "                              ! c  power cycle (answer y): watch it boot again\n")
	fmt.Fprintf(w, "  %s\n      every console you may use, with its state\n", fmt.Sprintf(dm.sshArgs(withKey), "list"))
	fmt.Fprintf(w, "  %s power status          (also: power cycle, tail -n 20, who, info)\n", ssh(second))
	fmt.Fprintf(w, "  %s grep -c %s 'Hostname set|Hardware Error|soft lockup' '%s'\n", dm.self, dm.cfgPath, hostlist.Compress(dm.names))
	fmt.Fprintf(w, "  %s log -c %s %s --list-boots\n", dm.self, dm.cfgPath, first)
	fmt.Fprintf(w, "  %s ctl -c %s status\n", dm.self, dm.cfgPath)
	fmt.Fprintf(w, "  %s bmc doctor -c %s %s\n", dm.self, dm.cfgPath, last)
	fmt.Fprintf(w, "      %s's BMC came misconfigured (its console is down): doctor says why and prints the fix;\n", last)
	fmt.Fprintf(w, "      after the fix, '%s ctl -c %s reopen %s' connects it at once\n", dm.self, dm.cfgPath, last)
	fmt.Fprintf(w, "  ipmitool -I lanplus -C 17 -H %s -p %s -U %s -P %s chassis power status\n", bmcHost, bmcPort, demoBMCUser, dm.password)
	fmt.Fprintf(w, "      %s's simulated BMC (the others: '%s check -c %s --dump | grep ^bmc')\n", second, dm.self, dm.cfgPath)
	if dm.metrics != "" {
		fmt.Fprintf(w, "  curl -s http://%s/metrics | grep '^solgate_console_up'\n", dm.metrics)
	}
	fmt.Fprintln(w)
}

// demoConsoleState is a console's state, for the tour's waits.
func (dm *demo) consoleState(name string) conserver.Status {
	if c := dm.d.m.Console(name); c != nil {
		return c.Status()
	}
	return conserver.Status{}
}
