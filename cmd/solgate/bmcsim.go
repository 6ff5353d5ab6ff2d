package main

import (
	"bufio"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/solgate/solgate/conserver/hostlist"
	"github.com/solgate/solgate/ipmilan/bmcsim"
)

func init() {
	register(command{name: "bmcsim", summary: "run simulated BMCs (IPMI 1.5/2.0 on loopback) for tests and demos", run: runBMCSim})
}

const bmcsimUsage = `Usage: solgate bmcsim [flags]

Runs N simulated BMCs in this process, each on its own UDP socket on
loopback: consecutive ports of one address (--listen 127.0.0.1:20000 gives
20000, 20001, ...) or, when the port is 623 or --per-address is given,
consecutive addresses with one port (127.0.1.1:623, 127.0.1.2:623, ...;
port 623 needs root). Each speaks IPMI v2.0 RMCP+ (and v1.5 with
--allow-lan15) with a simulated chassis: power on/off/cycle/reset/soft/diag
and boot options, as ipmitool, FreeIPMI and solgate power expect.

Each BMC also has a Serial-over-LAN console (ipmitool sol activate,
ipmiconsole, solgate sol): behind it a simulated host prints a boot (BIOS
screen, kernel log, login prompt) on power on and reset and echoes what is
typed; with --stream it prints sequence-numbered lines ("%010d" byte offset,
a fixed filler, CR LF) forever, so a console that loses anything shows a
jump in the numbers. Output printed while no console is connected is kept
in a small buffer (--sol-buffer), or, for --stream, waited on.

Once every BMC listens, one line per BMC "NAME ADDRESS:PORT" goes to stdout
(or --hosts-file); then it runs until SIGINT or SIGTERM.

The password comes from --password-file, else the environment variable
IPMI_PASSWORD, else the demo default "password" (with a warning: only for
simulation). Only loopback addresses are accepted.

Examples:
  solgate bmcsim -n 1000 --listen 127.0.0.1:20000 --hosts-file /tmp/bmcs
  sudo solgate bmcsim -n 100 --listen 127.0.1.1:623 --names 'node[001-100]'
  solgate bmcsim -n 50 --drop 0.1 --dup 0.05 --reorder 0.05 --delay 5ms --seed 7
  solgate bmcsim -n 4 --allow-lan15 --freeze 'node0003'
  solgate bmcsim -n 100 --drop 0.1 --fault-signals   (then kill -USR1 PID: faults on; -USR2: off)
  solgate bmcsim -n 10 --stream 20000 --drop 0.05 --sol-retry-interval 50ms
  solgate bmcsim -n 2 --sol-port 21000 --sol-payload-size 36 --quirks solport
  solgate bmcsim -n 4 --misconfigured node0002 --state-dir /tmp/bmc-state   (for solgate bmc doctor)
  ipmitool -I lanplus -C 17 -H 127.0.0.1 -p 20000 -U admin -P password chassis power status
  ipmipower -D LAN_2_0 -h 127.0.0.1:20000 -u admin -p password --stat
  ipmitool -I lanplus -C 3 -H 127.0.0.1 -p 20000 -U admin -P password sol activate
  ipmiconsole -h 127.0.0.1:20000 -u admin -p password`

// Simulator quirk names: the FreeIPMI -W workaround a client needs
// against a BMC with that quirk, where there is one.
var bmcsimQuirks = map[string]func(*bmcsim.Config){
	"opensesspriv":    func(c *bmcsim.Config) { c.Quirks.OpenSessionPrivZero = true },
	"supermicro20":    func(c *bmcsim.Config) { c.Quirks.RAKP2ExtraByte = true },
	"nochecksumcheck": func(c *bmcsim.Config) { c.Quirks.BadChecksum = true },
	"no20authcaps":    func(c *bmcsim.Config) { c.Quirks.NoExtendedAuthCaps = true },
	"nociphersuites":  func(c *bmcsim.Config) { c.Quirks.NoCipherSuiteList = true },
	"solpayloadsize":  func(c *bmcsim.Config) { c.SOL.BogusSizes = true }, // sizes reported byte-swapped
	"solport":         func(c *bmcsim.Config) { c.SOL.SwapPort = true },   // SOL port reported byte-swapped
}

type bmcsimFlags struct {
	n                                                int
	listen, names, hostsFile, user, passwordFile     string
	kgFile, suites, power, quirks, freeze, garbage   string
	perAddress, lan15, authNone, cipherZero, verbose bool
	faultSignals                                     bool
	drop, dropRequests, dup, reorder, garbageProb    float64
	delay, jitter, sessionTimeout, softOff, cycle    time.Duration
	lockoutDuration                                  time.Duration
	seed                                             int64
	maxSessions, lockout, manufacturer, product      int

	// Serial-over-LAN.
	solPort, solSize, solRetries, solBuffer, solInstances int
	solRetryInterval                                      time.Duration
	noSOL, noBootText, noEcho                             bool
	stream                                                string

	// BMC configuration (solgate bmc).
	stateDir, misconfigured string
}

func runBMCSim(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var f bmcsimFlags
	fs := newFlagSet("bmcsim", bmcsimUsage, stderr)
	fs.IntVar(&f.n, "n", 0, "number of BMCs (default: the number of --names, else 1)")
	fs.StringVar(&f.listen, "listen", "127.0.0.1:20000", "UDP `ADDRESS:PORT` of the first BMC (port 0: a random port each)")
	fs.BoolVar(&f.perAddress, "per-address", false, "one BMC per consecutive loopback address, all on the --listen port (implied by port 623)")
	fs.StringVar(&f.names, "names", "", "BMC names as a `HOSTLIST`, e.g. 'node[0001-1000]' (default node0001, node0002, ...)")
	fs.StringVar(&f.hostsFile, "hosts-file", "", "write the \"NAME ADDRESS:PORT\" lines to `FILE` instead of stdout")
	fs.StringVar(&f.user, "u", "admin", "user `name` on every BMC")
	fs.StringVar(&f.user, "user", "admin", "same as -u")
	fs.StringVar(&f.passwordFile, "password-file", "", "read the password from the first line of `FILE`")
	fs.StringVar(&f.kgFile, "kg-file", "", "set the K_g BMC key from `FILE` (raw, or 0x followed by hex)")
	fs.StringVar(&f.suites, "cipher-suites", "1,2,3,17", "RMCP+ cipher suites offered, comma separated `LIST` (0-3, 6-8, 11, 12, 15-17)")
	fs.BoolVar(&f.cipherZero, "allow-cipher-zero", false, "also offer cipher suite 0 (INSECURE: any password works)")
	fs.BoolVar(&f.lan15, "allow-lan15", false, "also accept IPMI v1.5 sessions (MD5, straight password)")
	fs.BoolVar(&f.authNone, "allow-auth-none", false, "accept IPMI v1.5 auth type none (INSECURE; implies --allow-lan15)")
	fs.StringVar(&f.power, "power", "on", "initial power state: on, off or mixed (every other BMC on)")
	fs.DurationVar(&f.sessionTimeout, "session-timeout", 60*time.Second, "idle session timeout")
	fs.IntVar(&f.maxSessions, "max-sessions", 16, "session slots per BMC (1-63)")
	fs.DurationVar(&f.softOff, "soft-off-delay", 100*time.Millisecond, "time from soft shutdown to power off")
	fs.DurationVar(&f.cycle, "cycle-delay", 100*time.Millisecond, "time power stays off in a power cycle")
	fs.IntVar(&f.lockout, "lockout", 0, "lock a user out after `N` failed logins in a row (0: never)")
	fs.DurationVar(&f.lockoutDuration, "lockout-duration", time.Minute, "how long a lockout lasts")
	fs.IntVar(&f.manufacturer, "manufacturer-id", 0, "IANA manufacturer ID reported by Get Device ID")
	fs.IntVar(&f.product, "product-id", 0, "product ID reported by Get Device ID")
	fs.StringVar(&f.quirks, "quirks", "", "firmware bugs to imitate, comma separated: "+strings.Join(sortedKeys(bmcsimQuirks), ", "))
	fs.Float64Var(&f.drop, "drop", 0, "probability of dropping an answer")
	fs.Float64Var(&f.dropRequests, "drop-requests", 0, "probability of dropping a request before it takes effect")
	fs.Float64Var(&f.dup, "dup", 0, "probability of sending an answer twice")
	fs.Float64Var(&f.reorder, "reorder", 0, "probability of holding an answer back behind the next one")
	fs.DurationVar(&f.delay, "delay", 0, "delay every answer by this much")
	fs.DurationVar(&f.jitter, "delay-jitter", 0, "add a random delay of up to this much")
	fs.StringVar(&f.garbage, "garbage", "none", "corrupt answers: none, random, wrong-seq, bad-checksum or truncated")
	fs.Float64Var(&f.garbageProb, "garbage-prob", 0, "probability of corrupting an answer (0: every answer, if --garbage is set)")
	fs.BoolVar(&f.faultSignals, "fault-signals", false, "start without the faults of --drop, --drop-requests, --dup, --reorder, --delay, --delay-jitter and --garbage; SIGUSR1 turns them on for every BMC, SIGUSR2 off again")
	fs.StringVar(&f.freeze, "freeze", "", "`HOSTLIST` of BMC names that answer nothing (hung BMCs)")
	fs.Int64Var(&f.seed, "seed", 1, "seed of the fault decisions (BMC i uses seed+i)")
	fs.IntVar(&f.solPort, "sol-port", 0, "serve SOL on this alternate UDP `PORT` too and report it in Activate Payload (BMC i: PORT+i, or PORT on its own address with --per-address); 0: the BMC's own port")
	fs.IntVar(&f.solSize, "sol-payload-size", 0, "SOL payload size in `BYTES`, header included, both ways (5-259; default 259: 255 characters a packet)")
	fs.IntVar(&f.solRetries, "sol-retries", 0, "times the BMC resends unacknowledged console output before dropping it (default 32; -1: no resends)")
	fs.DurationVar(&f.solRetryInterval, "sol-retry-interval", 0, "wait for an acknowledgement before resending output (default 100ms)")
	fs.IntVar(&f.solBuffer, "sol-buffer", 0, "console output the BMC holds, in `BYTES` (default 8192)")
	fs.IntVar(&f.solInstances, "sol-instances", 0, "SOL payload instances per BMC (1-15; default 1)")
	fs.BoolVar(&f.noSOL, "no-sol", false, "SOL payload disabled (Activate Payload answers 0x81)")
	fs.BoolVar(&f.noBootText, "no-boot-text", false, "the simulated hosts print no boot text on power on and reset")
	fs.BoolVar(&f.noEcho, "no-echo", false, "the simulated hosts do not echo typed input")
	fs.StringVar(&f.stream, "stream", "", "each host prints sequence-numbered lines forever at `RATE` bytes/s (max: as fast as its console takes them)")
	fs.StringVar(&f.stateDir, "state-dir", "", "keep each BMC's users, LAN and SOL settings in `DIR`/NAME.json across restarts (created 0700)")
	fs.StringVar(&f.misconfigured, "misconfigured", "", "`HOSTLIST` of BMCs that start with what solgate bmc doctor reports (SOL off at 9600, no SOL payload access, anonymous login, cipher suite 0, per-message auth off)")
	fs.BoolVar(&f.verbose, "v", false, "log rejected logins and session events to stderr")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return usageErr(err)
	}
	if len(pos) > 0 {
		return &exitError{code: 2, msg: fmt.Sprintf("bmcsim: unexpected argument %q (see --help)", pos[0])}
	}
	fc, names, err := f.fleetConfig(stderr)
	if err != nil {
		return &exitError{code: 2, msg: err.Error()}
	}
	rate, err := parseStreamRate(f.stream)
	if err != nil {
		return &exitError{code: 2, msg: err.Error()}
	}
	fleet, err := bmcsim.StartFleet(ctx, fc)
	if err != nil {
		if errors.Is(err, os.ErrPermission) {
			err = fmt.Errorf("%w (ports below 1024 need root)", err)
		}
		return err
	}
	defer fleet.Close()
	toggled := func() {}
	if f.faultSignals {
		// Before the list is written: a signal sent once the BMCs are
		// listed must not find the default action (exit).
		toggled = toggleFaults(ctx, fleet, stderr)
	}
	if err := writeBMCList(f.hostsFile, names, fleet.Addrs(), stdout); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "solgate bmcsim: %d BMCs listening (user %q); Ctrl-C stops\n", fleet.Len(), f.user)
	var streams sync.WaitGroup
	if rate >= 0 {
		for i := range fleet.Len() {
			streams.Go(func() { fleet.BMC(i).Stream(ctx, rate, math.MaxInt) })
		}
	}
	<-ctx.Done()
	toggled()
	streams.Wait()
	err = fleet.Close()
	var total bmcsim.Stats
	for i := range fleet.Len() {
		st := fleet.BMC(i).Stats()
		total.SessionsActive += st.SessionsActive
		total.SOLActive += st.SOLActive
		total.PacketsIn += st.PacketsIn
		total.SessionsOpened += st.SessionsOpened
		total.AuthFailures += st.AuthFailures
		total.Commands += st.Commands
		total.SOLActivations += st.SOLActivations
		total.SOLBytesSent += st.SOLBytesSent
		total.SOLRetransmits += st.SOLRetransmits
		total.SOLGaveUp += st.SOLGaveUp
	}
	fmt.Fprintf(stderr, "solgate bmcsim: stopped: %d packets, %d sessions (%d still open), %d commands, %d failed logins; SOL: %d activations (%d still active), %d bytes of console output delivered, %d resends, %d bytes dropped after the last resend\n",
		total.PacketsIn, total.SessionsOpened, total.SessionsActive, total.Commands, total.AuthFailures,
		total.SOLActivations, total.SOLActive, total.SOLBytesSent, total.SOLRetransmits, total.SOLGaveUp)
	return err
}

// fleetConfig validates the flags and builds the fleet configuration and
// the BMC names.
func (f *bmcsimFlags) fleetConfig(stderr io.Writer) (bmcsim.FleetConfig, []string, error) {
	var fc bmcsim.FleetConfig
	names, err := bmcsimNames(f.names, f.n)
	if err != nil {
		return fc, nil, err
	}
	fc.N = len(names)
	fc.Listen = f.listen
	if _, port, err := net.SplitHostPort(f.listen); err == nil && port == "623" {
		f.perAddress = true
	}
	fc.PerAddress = f.perAddress

	pw, err := bmcsimPassword(f.passwordFile, stderr)
	if err != nil {
		return fc, nil, err
	}
	c := bmcsim.Config{
		Users:           []bmcsim.User{{Name: f.user, Password: pw, MaxPriv: bmcsim.PrivAdmin}},
		AllowCipherZero: f.cipherZero,
		Allow15:         f.lan15 || f.authNone,
		AllowAuthNone:   f.authNone,
		SessionTimeout:  f.sessionTimeout,
		MaxSessions:     f.maxSessions,
		SoftOffDelay:    f.softOff,
		CycleDelay:      f.cycle,
		ManufacturerID:  uint32(f.manufacturer),
		ProductID:       uint16(f.product),
		Lockout:         bmcsim.Lockout{Failures: f.lockout, Duration: f.lockoutDuration},
	}
	if f.manufacturer < 0 || f.manufacturer > 0xFFFFF || f.product < 0 || f.product > 0xFFFF {
		return fc, nil, fmt.Errorf("bmcsim: --manufacturer-id must be 0-1048575 and --product-id 0-65535")
	}
	if c.CipherSuites, err = parseSuiteList(f.suites, f.cipherZero); err != nil {
		return fc, nil, err
	}
	if f.kgFile != "" {
		if c.KG, err = readKG(f.kgFile); err != nil {
			return fc, nil, err
		}
	}
	if f.solSize != 0 && (f.solSize < 5 || f.solSize > 259) {
		return fc, nil, fmt.Errorf("bmcsim: --sol-payload-size %d: want 5-259 (SOL header included)", f.solSize)
	}
	if f.solPort < 0 || f.solPort > 65535 || f.solPort != 0 && !f.perAddress && f.solPort+fc.N-1 > 65535 {
		return fc, nil, fmt.Errorf("bmcsim: --sol-port %d: %d ports from there run past 65535", f.solPort, fc.N)
	}
	if _, p, err := net.SplitHostPort(f.listen); err == nil && f.solPort != 0 {
		first, _ := strconv.Atoi(p)
		n := fc.N
		if f.perAddress {
			n = 1
		}
		if first != 0 && f.solPort < first+n && first < f.solPort+n {
			return fc, nil, fmt.Errorf("bmcsim: --sol-port %d: the SOL ports overlap the BMC ports %d-%d", f.solPort, first, first+n-1)
		}
	}
	if f.solRetries < -1 || f.solRetries > 1000 {
		return fc, nil, fmt.Errorf("bmcsim: --sol-retries %d: want -1 (never) to 1000", f.solRetries)
	}
	c.SOL = bmcsim.SOLConfig{Disabled: f.noSOL, Instances: f.solInstances, InboundSize: uint16(f.solSize),
		OutboundSize: uint16(f.solSize), RetryInterval: f.solRetryInterval, Retries: f.solRetries,
		BufferSize: f.solBuffer, NoEcho: f.noEcho, NoBootText: f.noBootText}
	for _, q := range strings.Split(f.quirks, ",") { // after c.SOL: quirks amend it
		if q = strings.TrimSpace(q); q == "" {
			continue
		}
		set, ok := bmcsimQuirks[q]
		if !ok {
			return fc, nil, fmt.Errorf("bmcsim: unknown quirk %q (want %s)", q, strings.Join(sortedKeys(bmcsimQuirks), ", "))
		}
		set(&c)
	}
	g, err := bmcsim.ParseGarbageKind(f.garbage)
	if err != nil {
		return fc, nil, err
	}
	c.Faults = bmcsim.Faults{Drop: f.drop, DropRequests: f.dropRequests, Duplicate: f.dup, Reorder: f.reorder,
		Delay: f.delay, DelayJitter: f.jitter, Garbage: g, GarbageProb: f.garbageProb}
	switch f.power {
	case "on", "off", "mixed":
	default:
		return fc, nil, fmt.Errorf("bmcsim: --power %q: want on, off or mixed", f.power)
	}
	frozen := map[string]bool{}
	if f.freeze != "" {
		l, err := hostlist.Expand(f.freeze)
		if err != nil {
			return fc, nil, fmt.Errorf("bmcsim: --freeze: %w", err)
		}
		known := map[string]bool{}
		for _, n := range names {
			known[n] = true
		}
		for _, n := range l {
			if !known[n] {
				return fc, nil, fmt.Errorf("bmcsim: --freeze: no BMC named %q", n)
			}
			frozen[n] = true
		}
	}
	misconfigured, err := bmcsimSubset(f.misconfigured, names, "--misconfigured")
	if err != nil {
		return fc, nil, err
	}
	if f.stateDir != "" {
		if err := os.MkdirAll(f.stateDir, 0o700); err != nil {
			return fc, nil, fmt.Errorf("bmcsim: --state-dir: %w", err)
		}
	}
	if f.verbose {
		c.Logger = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	fc.Config = c
	fc.Configure = func(i int, c *bmcsim.Config) {
		c.PowerOn = f.power == "on" || f.power == "mixed" && i%2 == 0
		c.Faults.Seed = f.seed + int64(i)
		c.Faults.Freeze = frozen[names[i]]
		c.SOL.Hostname = names[i]
		c.Misconfigured = misconfigured[names[i]]
		if f.stateDir != "" {
			c.StateFile = filepath.Join(f.stateDir, names[i]+".json")
		}
		if f.solPort != 0 && !f.perAddress {
			c.SOL.Port = uint16(f.solPort + i)
		} else {
			c.SOL.Port = uint16(f.solPort)
		}
		if c.Logger != nil {
			c.Logger = c.Logger.With("bmc", names[i])
		}
	}
	return fc, names, fc.Validate()
}

// bmcsimNames returns the BMC names: the expanded hostlist (whose length
// must match n when both are given) or node0001... .
func bmcsimNames(list string, n int) ([]string, error) {
	if list != "" {
		names, err := hostlist.ExpandLimit(list, 100000)
		if err != nil {
			return nil, fmt.Errorf("bmcsim: --names: %w", err)
		}
		if n != 0 && n != len(names) {
			return nil, fmt.Errorf("bmcsim: -n %d but --names has %d names", n, len(names))
		}
		return names, nil
	}
	if n == 0 {
		n = 1
	}
	if n < 0 || n > 100000 {
		return nil, fmt.Errorf("bmcsim: -n %d: want 1-100000", n)
	}
	width := max(4, len(strconv.Itoa(n)))
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("node%0*d", width, i+1)
	}
	return names, nil
}

func bmcsimPassword(file string, stderr io.Writer) (string, error) {
	pw, fromDefault := "", false
	switch {
	case file != "":
		fh, err := os.Open(file)
		if err != nil {
			return "", fmt.Errorf("bmcsim: password file: %w", err)
		}
		defer fh.Close()
		line, err := bufio.NewReader(fh).ReadString('\n')
		if err != nil && err != io.EOF {
			return "", fmt.Errorf("bmcsim: password file %s: %w", file, err)
		}
		pw = strings.TrimRight(line, "\r\n")
	case os.Getenv("IPMI_PASSWORD") != "":
		pw = os.Getenv("IPMI_PASSWORD")
	default:
		pw, fromDefault = "password", true
	}
	if len(pw) > 20 {
		return "", fmt.Errorf("bmcsim: password longer than 20 bytes (the IPMI limit)")
	}
	if fromDefault {
		fmt.Fprintln(stderr, `solgate bmcsim: warning: no --password-file or IPMI_PASSWORD; using the demo password "password" (simulation only)`)
	}
	return pw, nil
}

func readKG(file string) ([]byte, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("bmcsim: K_g file: %w", err)
	}
	s := strings.TrimRight(string(b), "\r\n")
	if h, ok := strings.CutPrefix(s, "0x"); ok {
		if b, err = hex.DecodeString(h); err != nil {
			return nil, fmt.Errorf("bmcsim: K_g file %s: bad hex: %w", file, err)
		}
	} else {
		b = []byte(s)
	}
	if len(b) > 20 {
		return nil, fmt.Errorf("bmcsim: K_g file %s: key longer than 20 bytes", file)
	}
	return b, nil
}

func parseSuiteList(s string, zero bool) ([]uint8, error) {
	var out []uint8
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		v, err := strconv.ParseUint(f, 10, 8)
		if err != nil {
			return nil, fmt.Errorf("bmcsim: --cipher-suites: %q is not a suite number", f)
		}
		out = append(out, uint8(v))
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("bmcsim: --cipher-suites: empty list")
	}
	if zero && !slices.Contains(out, 0) {
		out = append([]uint8{0}, out...)
	}
	return out, nil
}

// writeBMCList prints "NAME ADDRESS:PORT" lines to file (0640) or stdout.
func writeBMCList(file string, names, addrs []string, stdout io.Writer) error {
	var b strings.Builder
	for i, a := range addrs {
		fmt.Fprintf(&b, "%s %s\n", names[i], a)
	}
	if file == "" {
		_, err := io.WriteString(stdout, b.String())
		return err
	}
	if err := writeFileAtomic(file, []byte(b.String()), 0o640); err != nil {
		return fmt.Errorf("bmcsim: hosts file: %w", err)
	}
	return nil
}

// writeFileAtomic writes data to path.tmp with mode perm and renames it
// to path, so that a reader sees the old file or the whole new one.
func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, perm); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func sortedKeys[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }

// parseStreamRate reads --stream: "" is off (-1), "max" or 0 is as fast as
// the consoles take it, else bytes per second.
func parseStreamRate(s string) (int, error) {
	switch s {
	case "":
		return -1, nil
	case "max":
		return 0, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("bmcsim: --stream %q: want bytes per second or max", s)
	}
	return n, nil
}

// bmcsimSubset expands a hostlist of BMC names that must all exist.
func bmcsimSubset(list string, names []string, flag string) (map[string]bool, error) {
	out := map[string]bool{}
	if list == "" {
		return out, nil
	}
	l, err := hostlist.Expand(list)
	if err != nil {
		return nil, fmt.Errorf("bmcsim: %s: %w", flag, err)
	}
	known := map[string]bool{}
	for _, n := range names {
		known[n] = true
	}
	for _, n := range l {
		if !known[n] {
			return nil, fmt.Errorf("bmcsim: %s: no BMC named %q", flag, n)
		}
		out[n] = true
	}
	return out, nil
}

// toggleFaults takes the fault injection off every BMC of the fleet (a
// frozen BMC stays frozen) and puts it back on SIGUSR1, off again on
// SIGUSR2, saying so on stderr each time, until ctx ends. The returned
// function waits for the signal handler to finish.
func toggleFaults(ctx context.Context, fleet *bmcsim.Fleet, stderr io.Writer) func() {
	on := make([]bmcsim.Faults, fleet.Len())
	set := func(enable bool) {
		for i := range fleet.Len() {
			f := bmcsim.Faults{Seed: on[i].Seed, Freeze: on[i].Freeze}
			if enable {
				f = on[i]
			}
			// The values were validated at start-up: SetFaults cannot fail.
			_ = fleet.BMC(i).SetFaults(f)
		}
	}
	for i := range fleet.Len() {
		on[i] = fleet.BMC(i).Faults()
	}
	set(false)
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGUSR1, syscall.SIGUSR2)
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer signal.Stop(sig)
		for {
			select {
			case <-ctx.Done():
				return
			case s := <-sig:
				set(s == syscall.SIGUSR1)
				state := "off"
				if s == syscall.SIGUSR1 {
					state = "on"
				}
				fmt.Fprintf(stderr, "solgate bmcsim: faults %s\n", state)
			}
		}
	}()
	return func() { <-done }
}
