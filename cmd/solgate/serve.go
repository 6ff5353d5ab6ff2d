package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/solgate/solgate/conserver"
	"github.com/solgate/solgate/conserver/config"
	"github.com/solgate/solgate/logstore"
)

func init() {
	register(command{name: "serve", summary: "the daemon: keep every console's SOL session open, log it, reload config live", run: runServe})
}

const serveUsage = `Usage: solgate serve [-c FILE]

Runs the console server: one IPMI Serial-over-LAN session per configured
console, opened at start-up and kept open (reconnecting with backoff after
any failure), every byte of output written to the log store under
[server] log_dir, and escape commands and power actions for attached users.

The SSH gateway listens on [server] listen (default :2222): 'ssh -p 2222
node42@HOST' attaches to console node42, 'ssh node42@HOST power cycle'
runs a command, 'ssh list@HOST' lists your consoles. People are the
[[user]]s whose SSH keys (or certificates from [server]
trusted_user_ca_*) log in; [[access]] rules say what each may do. The host
key is state_dir/ssh_host_ed25519_key, created on the first start, or
[server] host_keys.

Prometheus metrics, /healthz and /readyz are served on [server] metrics
(default 127.0.0.1:9623, "" turns them off; a busy port is retried every
30s). 'solgate ctl' talks to the daemon over state_dir/ctl.sock (status,
info, who, reload, reopen), which only root and the daemon's own user may
use. Under systemd (Type=notify) READY=1 comes once the gateway and the
metrics listen and every console has started dialling; WATCHDOG=1 follows
every WatchdogSec/2.

The configuration is FILE (default /etc/solgate/solgate.toml) plus every
conf.d/*.toml beside it; etc/solgate.toml in the source tree is a commented
example. serve refuses to start when the configuration is invalid (every
problem is printed as FILE:LINE: what) or when another solgate serve uses
the same log directory.

Saving any configuration file (or SIGHUP, or 'solgate ctl reload') reloads it: added consoles start,
removed ones stop (payload deactivated, session closed, users told),
consoles whose BMC settings changed reconnect, the others are untouched,
and attached users who lost access are detached. An invalid edit is
logged with FILE:LINE and the running configuration stays.

SIGTERM or SIGINT stops it: every SOL payload is deactivated and every
session closed (bounded by [server] shutdown_timeout, default 5s), and the
logs are flushed and closed. A second one while it stops ends it at once
(exit 143 or 130, said in the daemon log): the payloads still active are
reclaimed at the next start, as after kill -9.

The daemon log goes to stderr: log/slog text or JSON ([server] log_format),
level from [server] log_level, keys console, bmc, user, remote, err.
A stderr that blocks never stalls a console: up to 8192 records wait for
it, and past that records are dropped and a WARN record counts them; one
that closes (journald restarted) does not stop the daemon.
[server] state_dir (created 0700) keeps what must survive a restart: the
BMC session of each console's SOL payload, so that after a crash the next
start takes its own payloads back at once. serve raises its open-file
limit to the hard limit: a console costs about one socket and the daemon
about 128 more, and a configuration the limit cannot hold is refused (at
start, and at a reload, which then keeps the running one) with the limit
to set (systemd LimitNOFILE=, ulimit -n).

Read the logs with 'solgate log NODE' (--boot -1, --list-boots) and
'solgate grep'.

Examples:
  solgate serve
  solgate serve -c /etc/solgate/solgate.toml
  solgate check -c ./solgate.toml && solgate serve -c ./solgate.toml`

func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("serve", serveUsage, stderr)
	path := config.DefaultPath
	fs.StringVar(&path, "c", path, "main config `FILE`; conf.d/ beside it is read too")
	fs.StringVar(&path, "config", path, "same as -c")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return usageErr(err)
	}
	if len(pos) > 0 {
		return &exitError{code: 2, msg: fmt.Sprintf("serve: unexpected argument %q (see solgate serve --help)", pos[0])}
	}
	keepRunningOnBrokenStderr()
	d, err := newDaemon(path, stderr)
	if err != nil {
		return err
	}
	return d.run(ctx)
}

// component is a part of the daemon beside the console manager (the SSH
// gateway, the syslog shipper, metrics). Components start in order after
// the consoles, hear of every configuration applied, and stop in reverse
// order before the consoles. Wiring one in is a file with an init that
// appends its constructor to serveComponents.
type component interface {
	Name() string
	Start(ctx context.Context) error
	// Reload runs after the manager applied cfg (diff is from the previous
	// configuration).
	Reload(ctx context.Context, cfg *config.Config, diff config.Diff)
	Stop(ctx context.Context) error
}

// serveComponents build the components from the running daemon.
var serveComponents []func(d *daemon) (component, error)

// daemon is solgate serve: the configuration watcher, the log store, the
// console manager and the components, with their lifetimes.
type daemon struct {
	path    string
	log     *slog.Logger
	logOut  *asyncLog // d.log's queue and writer
	level   *slog.LevelVar
	watcher *config.Watcher
	store   *logstore.Store
	m       *conserver.Manager
	comps   []component
	lock    *os.File  // the log directory's daemon lock
	fdLimit uint64    // the open-file limit in force (0: unknown)
	notify  *notifier // systemd (Type=notify); nil when not under systemd

	ready    atomic.Bool                // READY sent and not stopping (/readyz)
	calls    chan func(context.Context) // run in the daemon's loop (solgate ctl reload)
	hup      chan os.Signal             // SIGHUP, from newDaemon on
	loopDone chan struct{}              // closed when run's loop has ended
	reloads  reloadStats                // for metrics and solgate ctl
	started  chan struct{}              // closed once every component started (tests, demo)
}

// newDaemon validates the configuration and prepares the directories; it
// opens no BMC session.
func newDaemon(path string, stderr io.Writer) (_ *daemon, err error) {
	d := &daemon{path: path, level: new(slog.LevelVar), calls: make(chan func(context.Context)), started: make(chan struct{}),
		hup: make(chan os.Signal, 1)}
	// From the start: a SIGHUP while the daemon starts (systemctl reload
	// right after start) waits for run's loop instead of ending the daemon
	// by its default action.
	signal.Notify(d.hup, syscall.SIGHUP)
	defer func() {
		if err != nil {
			signal.Stop(d.hup)
		}
	}()
	// The first load's errors are printed one per line, before any
	// daemon log exists.
	cfg, err := config.Load(path)
	if err != nil {
		return nil, &exitError{code: 1, msg: "serve: invalid configuration, not starting:\n" + err.Error()}
	}
	d.level.Set(parseLevel(cfg.Server.LogLevel))
	var h slog.Handler
	ho := &slog.HandlerOptions{Level: d.level}
	if cfg.Server.Daemon.LogFormat == "json" {
		h = slog.NewJSONHandler(stderr, ho)
	} else {
		h = slog.NewTextHandler(stderr, ho)
	}
	d.logOut = newAsyncLog(h, asyncLogQueue)
	d.log = slog.New(d.logOut.Handler())
	defer func() {
		if err != nil {
			d.closeLog()
		}
	}()
	// Now with the daemon log for reloads.
	if d.watcher, err = config.NewWatcher(path, config.WatchOptions{Logger: d.log}); err != nil {
		return nil, &exitError{code: 1, msg: "serve: invalid configuration, not starting:\n" + err.Error()}
	}
	cfg = d.watcher.Config()
	for _, warn := range cfg.Warnings {
		d.log.Warn("config: " + warn)
	}
	if err := ensureDir(cfg.Server.StateDir, 0o700); err != nil {
		return nil, fmt.Errorf("serve: state_dir: %w", err)
	}
	if err := ensureDir(cfg.Server.LogDir, 0o750); err != nil {
		return nil, fmt.Errorf("serve: log_dir: %w", err)
	}
	if d.lock, err = lockLogDir(cfg.Server.LogDir); err != nil {
		return nil, &exitError{code: 1, msg: "serve: " + err.Error()}
	}
	d.fdLimit = raiseFileLimit(d.log)
	if err := d.fitsFileLimit(len(cfg.Consoles)); err != nil {
		d.lock.Close()
		return nil, &exitError{code: 1, msg: "serve: not starting: " + err.Error()}
	}
	if d.notify, err = newNotifier(os.Getenv, os.Getpid()); err != nil {
		d.log.Warn("serve: systemd notifications off", "err", err)
	}
	if os.Getenv("GOGC") == "" {
		// Thousands of idle sessions make a large live heap and little
		// garbage: collecting at 50% growth instead of 100% keeps the
		// resident memory per console down for a negligible CPU cost.
		debug.SetGCPercent(50)
	}
	return d, nil
}

// run starts everything, serves until ctx ends (SIGTERM, SIGINT), then
// stops everything.
// serveFlushInterval is how long console output stays in memory in serve.
const serveFlushInterval = 800 * time.Millisecond

func (d *daemon) run(ctx context.Context) error {
	defer d.closeLog()
	defer d.lock.Close()
	defer signal.Stop(d.hup)
	cfg := d.watcher.Config()
	var err error
	// Frames every 0.8 s rather than the store's default second: syslog
	// receivers see a line within a second of the console printing it
	// (the shipper follows the frames), and a crash loses less.
	d.store, err = logstore.Open(cfg.Server.LogDir, logstore.Options{Logger: d.log, FlushInterval: serveFlushInterval,
		MaxOpenFiles: logFileBudget(d.fdLimit, len(cfg.Consoles))})
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	defer d.store.Close()
	d.m, err = conserver.NewManager(conserver.Options{Store: d.store, StateDir: cfg.Server.StateDir, Logger: d.log})
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	start := time.Now()
	if _, err := d.m.Apply(ctx, cfg); err != nil {
		d.log.Error("serve: configuration refused", "err", err)
		return &exitError{code: 1, msg: "serve: " + err.Error()}
	}
	d.reloads.loaded(start, cfg)
	d.log.Info("serve: started", "consoles", len(cfg.Consoles), "config", d.path, "log_dir", cfg.Server.LogDir,
		"state_dir", cfg.Server.StateDir, "pid", os.Getpid(), "took", time.Since(start).Round(time.Millisecond))
	for _, mk := range serveComponents {
		c, err := mk(d)
		if err != nil {
			d.stop()
			return fmt.Errorf("serve: %w", err)
		}
		if err := c.Start(ctx); err != nil {
			d.stop()
			return fmt.Errorf("serve: %s: %w", c.Name(), err)
		}
		d.comps = append(d.comps, c)
	}
	// "started" came before the components: the gateway and metrics
	// listen from here on, as systemd hears with READY=1.
	d.log.Info("serve: ready", "components", len(d.comps), "took", time.Since(start).Round(time.Millisecond))
	d.tellSystemd(d.notify.Ready(fmt.Sprintf("%d consoles", len(cfg.Consoles))))
	d.ready.Store(true)
	close(d.started)
	d.loopDone = make(chan struct{})
	wdCtx, stopWatchdog := context.WithCancel(context.Background())
	wdDone := make(chan struct{})
	go func() {
		defer close(wdDone)
		d.notify.RunWatchdog(wdCtx, func() error { return d.loopAnswers(loopAnswerTimeout) },
			func(err error) { d.log.Warn("serve: systemd watchdog", "err", err) })
	}()
	defer func() { stopWatchdog(); <-wdDone }()

	wctx, cancelWatch := context.WithCancel(context.Background())
	watchDone := make(chan error, 1)
	go func() { watchDone <- d.watcher.Run(wctx) }()
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case <-d.hup:
			d.log.Info("serve: SIGHUP: reloading the configuration")
			d.watcher.Reload()
			if n := d.m.NotStarted(); len(n) > 0 {
				// The files may be unchanged: try those again anyway.
				d.reload(ctx, config.Event{Config: d.m.Config(), Reason: "SIGHUP: consoles not started"})
			}
		case ev, ok := <-d.watcher.Events():
			if !ok {
				break loop
			}
			if ev.Err == nil && ev.Config.Equal(d.m.Config()) {
				// solgate ctl reload applied it already.
				d.log.Debug("serve: configuration already applied", "reason", ev.Reason)
				continue
			}
			d.reload(ctx, ev)
		case f := <-d.calls:
			f(ctx)
		}
	}
	d.ready.Store(false)
	close(d.loopDone) // a watchdog check waiting for the loop gives up
	d.tellSystemd(d.notify.Stopping())
	stopped := make(chan struct{})
	defer close(stopped)
	go d.exitOnSecondSignal(stopped)
	cancelWatch()
	<-watchDone
	return d.stop()
}

// exitOnSecondSignal ends the process at once on a SIGINT or SIGTERM that
// comes while the daemon stops (an operator who will not wait for BMCs
// that do not answer), after saying so in the daemon log: the payloads
// still active are then reclaimed at the next start, as after a kill -9,
// and the logs lose at most their last unflushed output. Without it the
// signal's default action (back after the first, see notifyContext) ended
// the daemon without a word.
func (d *daemon) exitOnSecondSignal(stopped <-chan struct{}) {
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigs)
	select {
	case <-stopped:
	case s := <-sigs:
		sig := s.(syscall.Signal)
		d.log.Error("serve: second signal while stopping: exiting now; SOL payloads still active are reclaimed at the next start", "signal", sig.String())
		if err := d.logOut.Close(time.Second); err != nil {
			fmt.Fprintln(os.Stderr, "solgate: "+err.Error())
		}
		os.Exit(128 + int(sig))
	}
}

// closeLog writes the daemon log's queued records (for a bounded time:
// an output that blocks must not keep the daemon from exiting).
func (d *daemon) closeLog() {
	if err := d.logOut.Close(5 * time.Second); err != nil {
		fmt.Fprintln(os.Stderr, "solgate: "+err.Error())
	}
}

// loopAnswerTimeout is how long the watchdog waits for the daemon's loop
// (a reload, a SIGHUP, solgate ctl) before it skips a ping: a loop stuck
// that long means the daemon no longer takes changes, and systemd
// restarts it once WatchdogSec passes without a ping.
const loopAnswerTimeout = 10 * time.Second

// loopAnswers reports whether run's loop takes a call within timeout, for
// the systemd watchdog: a ping then says the daemon still works, not only
// that a goroutine ticks. While starting or stopping (not ready) there is
// no loop to ask, and the answer is yes.
func (d *daemon) loopAnswers(timeout time.Duration) error {
	if !d.ready.Load() {
		return nil
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	done := make(chan struct{})
	select {
	case d.calls <- func(context.Context) { close(done) }:
	case <-d.loopDone:
		return nil // stopping
	case <-t.C:
		return fmt.Errorf("the daemon's loop took no call in %v: watchdog ping withheld", timeout)
	}
	select {
	case <-done:
		return nil
	case <-t.C:
		return fmt.Errorf("the daemon's loop took no call in %v: watchdog ping withheld", timeout)
	}
}

// tellSystemd logs a failed notification (the daemon goes on).
func (d *daemon) tellSystemd(err error) {
	if err != nil {
		d.log.Warn("serve: systemd notification", "err", err)
	}
}

// reload applies one watcher event (or solgate ctl reload's) and says
// what it did.
func (d *daemon) reload(ctx context.Context, ev config.Event) (conserver.ApplyResult, error) {
	start := time.Now()
	if ev.Err != nil {
		d.reloads.record(start, nil, ev.Err)
		var el *config.ErrorList
		if errors.As(ev.Err, &el) {
			for _, e := range el.Errors {
				d.log.Error("config: "+e.Error(), "reason", ev.Reason)
			}
		}
		d.log.Error("serve: configuration invalid; keeping the running one", "reason", ev.Reason)
		return conserver.ApplyResult{}, ev.Err
	}
	d.tellSystemd(d.notify.Reloading())
	var res conserver.ApplyResult
	err := d.fitsFileLimit(len(ev.Config.Consoles))
	if err == nil {
		res, err = d.m.Apply(ctx, ev.Config)
	}
	if err != nil {
		d.reloads.record(start, nil, err)
		d.log.Error("serve: configuration refused; keeping the running one", "reason", ev.Reason, "err", err)
		d.tellSystemd(d.notify.Ready(fmt.Sprintf("%d consoles; last reload refused", len(d.m.Config().Consoles))))
		return res, err
	}
	d.reloads.record(start, ev.Config, nil)
	d.store.SetMaxOpenFiles(logFileBudget(d.fdLimit, len(ev.Config.Consoles)))
	defer func() { d.tellSystemd(d.notify.Ready(fmt.Sprintf("%d consoles", len(ev.Config.Consoles)))) }()
	d.level.Set(parseLevel(ev.Config.Server.LogLevel))
	for _, c := range d.comps {
		c.Reload(ctx, ev.Config, ev.Diff)
	}
	d.log.Info("serve: configuration applied", "reason", ev.Reason, "started", len(res.Started), "stopped", len(res.Stopped),
		"reconnecting", len(res.Reconnects), "updated", len(res.Updated), "failed", len(res.Failed), "detached", res.Detached, "downgraded", res.Downgraded,
		"took", time.Since(start).Round(time.Millisecond))
	return res, nil
}

// stop stops the components and the consoles, all at once, each bounded
// by the same deadline. One after another, the syslog shipper's grace for
// a receiver that takes nothing (2 s) and the metrics' and gateway's for
// requests under way added up and came before the consoles' payload
// deactivations, which the shutdown budget is for. Attached users are
// told the daemon stops by whichever ends their session first.
func (d *daemon) stop() error {
	cfg := d.m.Config()
	timeout := 5 * time.Second
	if cfg != nil {
		timeout = cfg.Server.Daemon.ShutdownTimeout
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout+time.Second)
	defer cancel()
	d.log.Info("serve: stopping")
	var wg sync.WaitGroup
	for _, c := range d.comps {
		wg.Go(func() {
			if err := c.Stop(ctx); err != nil {
				d.log.Warn("serve: stopping "+c.Name(), "err", err)
			}
		})
	}
	d.store.Closing() // the consoles' Writers leave their last sync to store.Close
	err := d.m.Shutdown(ctx)
	wg.Wait()
	if cerr := d.store.Close(); cerr != nil {
		d.log.Warn("serve: closing the log store", "err", cerr)
	}
	if err != nil {
		d.log.Error("serve: stopped with consoles still closing", "err", err)
		return err
	}
	d.log.Info("serve: stopped")
	return nil
}

func parseLevel(s string) slog.Level {
	switch s {
	case "debug":
		return slog.LevelDebug
	case "warn":
		return slog.LevelWarn
	case "error":
		return slog.LevelError
	}
	return slog.LevelInfo
}

// ensureDir creates dir with mode, or tightens an existing one to it.
func ensureDir(dir string, mode os.FileMode) error {
	if err := os.MkdirAll(dir, mode); err != nil {
		return err
	}
	st, err := os.Stat(dir)
	if err != nil {
		return err
	}
	if !st.IsDir() {
		return fmt.Errorf("%s is not a directory", dir)
	}
	if st.Mode().Perm()&^mode != 0 {
		return os.Chmod(dir, mode)
	}
	return nil
}

// daemonLock is the file in the log directory that one solgate serve
// holds (flock) for its whole life.
const daemonLock = ".serve.lock"

// lockLogDir takes the log directory for this daemon: a second solgate
// serve on the same directory is refused, naming the first one's PID.
// (Every console's log also has its own lock, so even a tool writing one
// console is kept out.) The kernel drops the lock when the process dies.
func lockLogDir(dir string) (*os.File, error) {
	p := filepath.Join(dir, daemonLock)
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE, 0o640)
	if err != nil {
		return nil, fmt.Errorf("lock log directory: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		b, _ := io.ReadAll(io.LimitReader(f, 32))
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			who := ""
			if pid := strings.TrimSpace(string(b)); pid != "" {
				who = " (pid " + pid + ")"
			}
			return nil, fmt.Errorf("log directory %s is in use by another solgate serve%s", dir, who)
		}
		return nil, fmt.Errorf("lock log directory %s: %w", dir, err)
	}
	f.Truncate(0)
	f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	return f, nil
}

// raiseFileLimit sets the soft open-file limit to the hard one and
// returns the limit in force (0: unknown). Each console holds a socket;
// log files, the SSH gateway, syslog and the rest share what is left.
func raiseFileLimit(log *slog.Logger) uint64 {
	var rl unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &rl); err != nil {
		log.Warn("serve: cannot read the open-file limit", "err", err)
		return 0
	}
	if rl.Cur < rl.Max {
		old := rl.Cur
		rl.Cur = rl.Max
		if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &rl); err != nil {
			log.Warn("serve: cannot raise the open-file limit", "soft", old, "hard", rl.Max, "err", err)
			rl.Cur = old
		}
	}
	log.Info("serve: open-file limit", "limit", rl.Cur)
	return rl.Cur
}

// The open-file budget beyond the consoles' sockets. fdBase is what the
// daemon needs whatever else it does: its 64 console-lock files, standard
// streams, the daemon lock, pollers, listeners, the config watcher, a few
// log files. fdComfort is what a daemon with busy users wants on top: log
// files kept open, SSH sessions, syslog connections, replays.
const (
	fdBase    = 128
	fdComfort = 1024
)

// checkFileLimit refuses a number of consoles the open-file limit cannot
// hold (they would fail one by one with "too many open files", and the
// daemon's own sockets with them) and says what to raise it to.
func checkFileLimit(limit uint64, consoles int) error {
	if limit == 0 || limit >= uint64(consoles+fdBase) {
		return nil
	}
	return fmt.Errorf("the open-file limit (%d) is too low for %d consoles: each holds a socket, and the daemon needs about %d more; raise it to at least %d, better %d (systemd: LimitNOFILE=, a shell: ulimit -n)",
		limit, consoles, fdBase, consoles+fdBase, consoles+fdBase+fdComfort)
}

// fitsFileLimit is checkFileLimit for n consoles under the daemon's limit,
// at start and at every reload, with a warning when the limit holds them
// but leaves little beyond their sockets.
func (d *daemon) fitsFileLimit(n int) error {
	if err := checkFileLimit(d.fdLimit, n); err != nil {
		return err
	}
	if d.fdLimit != 0 && d.fdLimit < uint64(n+fdBase+fdComfort) {
		d.log.Warn("serve: the open-file limit leaves little room beyond the consoles' sockets: log files are reopened per write, and SSH sessions or syslog may fail with \"too many open files\"",
			"limit", d.fdLimit, "consoles", n, "want", n+fdBase+fdComfort)
	}
	return nil
}

// logFileBudget is how many live log segments the log store keeps open
// between writes (logstore.Options.MaxOpenFiles): half of what the limit
// leaves beyond the consoles' sockets and fdBase, at least 16, at most
// the store's default 1024. The rest is for the SSH gateway and syslog.
func logFileBudget(limit uint64, consoles int) int {
	if limit == 0 {
		return 0 // the store's default
	}
	spare := int64(limit) - int64(consoles) - fdBase
	return int(min(max(spare/2, 16), 1024))
}
