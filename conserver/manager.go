package conserver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/solgate/solgate/conserver/config"
	"github.com/solgate/solgate/conserver/escape"
	"github.com/solgate/solgate/conserver/hostlist"
	"github.com/solgate/solgate/conserver/power"
	"github.com/solgate/solgate/ipmilan"
	"github.com/solgate/solgate/logstore"
)

// Errors callers branch on.
var (
	// ErrClosed: the manager was shut down, or the console removed.
	ErrClosed = errors.New("conserver: closed")
	// ErrDenied: the user lacks the permission on the console.
	ErrDenied = errors.New("permission denied")
	// ErrNoConsole: no console of that name is configured.
	ErrNoConsole = errors.New("no such console")
)

// Options configure a Manager. Only Store is required; the zero value of
// every other field means its default (or the running config's value).
type Options struct {
	// Store receives every console's output; one Writer per console.
	Store *logstore.Store
	// StateDir holds what must survive restarts (the SOL session record);
	// "" keeps nothing. It must exist.
	StateDir string
	// Logger is the daemon log (keys console, bmc, user, remote, err); nil
	// discards.
	Logger *slog.Logger

	// Dial opens an IPMI session; nil means ipmilan.Dial.
	Dial func(ctx context.Context, cfg ipmilan.Config) (*ipmilan.Session, error)
	// Backoff, when Min is set, replaces [server] reconnect_*.
	Backoff Backoff
	// MaxHandshakes, when positive, replaces [server] max_handshakes.
	MaxHandshakes int
	// IPMITimeout, KeepAlive, when positive, replace [server] ipmi_timeout
	// and ipmi_keepalive.
	IPMITimeout time.Duration
	KeepAlive   time.Duration
	// AttachBuffer bounds each attachment's unread output (default 256
	// KiB); beyond it the attachment lags and misses output. MaxMissed
	// drops a lagging attachment once it has missed that much (default 4
	// MiB).
	AttachBuffer int
	MaxMissed    int64
	// Rand returns a uniform number in [0, n) for backoff jitter; nil
	// means math/rand/v2.
	Rand func(n int64) int64
}

// Manager keeps one Console per configured console: it starts them from
// the first Apply, diffs and applies every later configuration, and shuts
// them all down. Its methods are safe for concurrent use.
//
// Scopes (tailssh style): the manager outlives its consoles, a console its
// SOL connections and attachments; each ends with a cause that becomes the
// one line its users read.
type Manager struct {
	opts  Options
	log   *slog.Logger
	store *logstore.Store
	hs    *limiter
	sess  *sessionStore
	rnd   func(n int64) int64
	open  func(ctx context.Context, cfg ipmilan.Config) (bmcSession, error) // openSession; tests replace it
	// powerFn, when set (tests), performs power actions instead of a BMC.
	powerFn func(ctx context.Context, c *Console, a power.Action) (string, error)

	cfg   atomic.Pointer[config.Config]
	boots atomic.Pointer[bootPatterns]
	// attachSeq numbers attachments (Attachment.seq): unique in this
	// manager (one per daemon), so an attach event in the log is never
	// mistaken for another's. It restarts with the daemon: only events
	// after an attachment's own matter to its replay, and those are ours.
	attachSeq atomic.Uint64

	applyMu sync.Mutex // serialises Apply and Shutdown; held while consoles start and stop

	mu       sync.Mutex // guards consoles and closed
	consoles map[string]*Console
	closed   bool

	creds credTally // the checks of new BMC credentials, for one daemon log line

	credMu      sync.Mutex // guards credQueue and credWorkers
	credQueue   []*Console // consoles whose new credentials wait for a check, oldest first; each at most once (Console.credCheck)
	credWorkers int        // check workers running (credWorker)

	wg sync.WaitGroup // console supervisors and the credential check workers
}

// queueCredCheck queues a check of c's new credentials (counted in the
// tally from now) and starts a check worker if fewer run than may: at
// most half the handshake limit, so that a password file shared by
// thousands of consoles neither costs a goroutine each nor keeps the
// handshake slots from consoles that reconnect meanwhile.
func (m *Manager) queueCredCheck(c *Console) {
	m.creds.begin()
	m.credMu.Lock()
	defer m.credMu.Unlock()
	m.credQueue = append(m.credQueue, c)
	if m.credWorkers < max(1, m.hs.size()/2) {
		m.credWorkers++
		m.wg.Add(1)
		go m.credWorker()
	}
}

// credWorker checks queued credentials until the queue is empty. The
// consoles' stop ends their checks at once (Console.checkCredentials), so
// Shutdown waits for nothing long.
func (m *Manager) credWorker() {
	defer m.wg.Done()
	for {
		m.credMu.Lock()
		if len(m.credQueue) == 0 {
			m.credWorkers--
			m.credQueue = nil // let a big one's array go
			m.credMu.Unlock()
			return
		}
		c := m.credQueue[0]
		m.credQueue[0] = nil
		m.credQueue = m.credQueue[1:]
		m.credMu.Unlock()
		counted, err := c.checkCredentials()
		c.credCheckDone(counted, err)
	}
}

// credTally sums up the checks of new BMC credentials (checkCredentials)
// for the daemon log: a password file that 10,000 consoles share is one
// line when its checks are done, not one per console.
type credTally struct {
	mu        sync.Mutex
	pending   int
	ok        int
	failed    []string // consoles whose BMC refused them
	lastErr   error    // one of their errors
	unchecked []string // consoles whose check failed otherwise (unreachable, no free session)
	otherErr  error    // one of those errors
}

func (t *credTally) begin() {
	t.mu.Lock()
	t.pending++
	t.mu.Unlock()
}

// refusedCredentials says err is the BMC refusing a password or K_g.
func refusedCredentials(err error) bool {
	return errors.Is(err, ipmilan.ErrAuth) || errors.Is(err, ipmilan.ErrKG)
}

// end counts one check (err nil: the BMC took them; refusedCredentials: it refused
// them; another error: they could not be checked; counted false: the
// console stopped first) and, after the last check under way, logs the
// sum.
func (t *credTally) end(log *slog.Logger, name string, counted bool, err error) {
	t.mu.Lock()
	t.pending--
	switch {
	case !counted:
	case err == nil:
		t.ok++
	case refusedCredentials(err):
		t.failed = append(t.failed, name)
		t.lastErr = err
	default:
		t.unchecked = append(t.unchecked, name)
		t.otherErr = err
	}
	if t.pending > 0 || t.ok+len(t.failed)+len(t.unchecked) == 0 {
		t.mu.Unlock()
		return
	}
	ok, failed, lastErr, unchecked, otherErr := t.ok, t.failed, t.lastErr, t.unchecked, t.otherErr
	t.ok, t.failed, t.lastErr, t.unchecked, t.otherErr = 0, nil, nil, nil, nil
	t.mu.Unlock()
	all := ok + len(failed) + len(unchecked)
	if len(failed) > 0 {
		log.Warn("conserver: new BMC credentials do not work: the live SOL sessions stay, their next connections will fail",
			"failed", hostlist.Compress(failed), "count", len(failed), "of", all, "err", lastErr)
	}
	if len(unchecked) > 0 {
		log.Warn("conserver: new BMC credentials could not be checked (the live SOL sessions stay)",
			"consoles", hostlist.Compress(unchecked), "count", len(unchecked), "of", all, "err", otherErr)
	}
	if len(failed)+len(unchecked) == 0 {
		log.Info("conserver: new BMC credentials checked: the BMCs take them", "consoles", ok)
	}
}

// NewManager returns a manager with no consoles; Apply starts them.
func NewManager(o Options) (*Manager, error) {
	if o.Store == nil {
		return nil, errors.New("conserver: no log store")
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if o.Dial == nil {
		o.Dial = ipmilan.Dial
	}
	if o.AttachBuffer <= 0 {
		o.AttachBuffer = 256 << 10
	}
	if o.MaxMissed <= 0 {
		o.MaxMissed = 4 << 20
	}
	if o.Rand == nil {
		o.Rand = defaultRand
	}
	if o.StateDir != "" {
		if st, err := os.Stat(o.StateDir); err != nil || !st.IsDir() {
			return nil, fmt.Errorf("conserver: state directory %s: not a directory", o.StateDir)
		}
	}
	sess, err := openSessions(o.StateDir, log)
	if err != nil {
		return nil, err
	}
	m := &Manager{opts: o, log: log, store: o.Store, hs: newLimiter(64), sess: sess, rnd: o.Rand,
		consoles: map[string]*Console{}}
	m.open = m.openSession
	return m, nil
}

// Store returns the log store.
func (m *Manager) Store() *logstore.Store { return m.store }

// Config returns the running configuration (nil before the first Apply).
func (m *Manager) Config() *config.Config { return m.cfg.Load() }

// Console returns the named console, or nil.
func (m *Manager) Console(name string) *Console {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.consoles[name]
}

// Consoles returns every console in configuration order.
func (m *Manager) Consoles() []*Console {
	cfg := m.cfg.Load()
	m.mu.Lock()
	defer m.mu.Unlock()
	if cfg == nil {
		return nil
	}
	out := make([]*Console, 0, len(m.consoles))
	for i := range cfg.Consoles {
		if c := m.consoles[cfg.Consoles[i].Name]; c != nil {
			out = append(out, c)
		}
	}
	return out
}

// backoff is the reconnect schedule in force.
func (m *Manager) backoff() Backoff {
	if m.opts.Backoff.Min > 0 {
		b := m.opts.Backoff
		if b.Max < b.Min {
			b.Max = b.Min
		}
		if b.Stable <= 0 {
			b.Stable = time.Minute
		}
		return b
	}
	d := m.daemon()
	return Backoff{Min: d.ReconnectMin, Max: d.ReconnectMax, Stable: d.ReconnectStable}
}

// daemon is the [server] console manager settings in force.
func (m *Manager) daemon() *config.Daemon {
	if c := m.cfg.Load(); c != nil {
		return &c.Server.Daemon
	}
	d := config.Daemon{ReconnectMin: time.Second, ReconnectMax: 5 * time.Minute, ReconnectStable: time.Minute,
		MaxHandshakes: 64, ShutdownTimeout: 5 * time.Second, IPMITimeout: time.Second, KeepAlive: 15 * time.Second, StealGrace: 10 * time.Minute, StealLimit: 3, StealWindow: time.Hour}
	return &d
}

// perms returns what user may do on console under the running config.
func (m *Manager) perms(user, console string) config.Perm {
	c := m.cfg.Load()
	if c == nil {
		return 0
	}
	return c.Perms(user, console)
}

// NotStarted lists the running configuration's consoles that failed to
// start (see ApplyResult.Failed); the next Apply tries them again.
func (m *Manager) NotStarted() []string {
	cfg := m.cfg.Load()
	if cfg == nil {
		return nil
	}
	var out []string
	for i := range cfg.Consoles {
		if m.Console(cfg.Consoles[i].Name) == nil {
			out = append(out, cfg.Consoles[i].Name)
		}
	}
	return out
}

// ApplyResult says what an Apply did.
type ApplyResult struct {
	Unchanged  bool     // the configuration was identical: nothing done
	Started    []string // consoles added
	Stopped    []string // consoles removed
	Reconnects []string // consoles whose connection settings changed
	Updated    []string // consoles with other changes (log, escape, access, credentials alone)
	// Credentials are the consoles of Updated whose BMC password or K_g
	// changed: live sessions keep running, the next connection uses them.
	Credentials []string
	// Failed are configured consoles that could not start (their log
	// could not be opened: descriptors, disk, permissions); every later
	// Apply, an identical one too, tries them again.
	Failed []string
	// Detached and Downgraded count attachments that lost their access or
	// their write permission.
	Detached, Downgraded int
}

// prepared is a console's new settings, built and checked off to the side.
type prepared struct {
	cfg  *config.Console
	ipmi ipmilan.Config
	esc  [2]byte
}

// Apply makes cfg the running configuration. The first call starts every
// console; later ones diff against the running configuration and apply
// only the difference: added consoles start, removed ones stop (payload
// deactivated, session closed, log writer closed, attached users told and
// detached), consoles whose connection settings changed reconnect, log
// and escape changes apply in place, and every attachment is re-checked
// against the new access rules. An identical cfg is a no-op. Everything is
// validated before anything changes: on error nothing did.
func (m *Manager) Apply(ctx context.Context, cfg *config.Config) (ApplyResult, error) {
	if cfg == nil {
		return ApplyResult{}, errors.New("conserver: nil configuration")
	}
	m.applyMu.Lock()
	defer m.applyMu.Unlock()
	m.mu.Lock()
	closed := m.closed
	m.mu.Unlock()
	if closed {
		return ApplyResult{}, ErrClosed
	}
	old := m.cfg.Load()
	// Consoles of the running configuration that failed to start.
	var retry []string
	if old != nil {
		retry = m.NotStarted()
	}
	if old != nil && old.Equal(cfg) && len(retry) == 0 {
		return ApplyResult{Unchanged: true}, nil
	}
	d := config.Compare(old, cfg)
	toStart := slices.Clone(d.Added)
	for _, n := range retry {
		if _, ok := cfg.Console(n); ok {
			toStart = append(toStart, n)
		}
	}

	// Build off to the side: every new or changed console's settings.
	prep := map[string]*prepared{}
	var errs []error
	build := func(name string) {
		cc, _ := cfg.Console(name)
		p, err := m.prepare(cc)
		if err != nil {
			errs = append(errs, err)
			return
		}
		prep[name] = p
	}
	for _, n := range toStart {
		build(n)
	}
	for _, ch := range d.Changed {
		if prep[ch.Name] == nil {
			build(ch.Name)
		}
	}
	bp, err := compileBoots(&cfg.Server.Daemon)
	if err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return ApplyResult{}, errors.Join(errs...)
	}

	// Swap, then apply.
	m.cfg.Store(cfg)
	m.boots.Store(bp)
	if m.opts.MaxHandshakes > 0 {
		m.hs.setLimit(m.opts.MaxHandshakes)
	} else {
		m.hs.setLimit(cfg.Server.Daemon.MaxHandshakes)
	}
	var res ApplyResult
	res.Stopped = d.Removed
	m.stopConsoles(ctx, d.Removed, "console removed from the configuration")

	changed := map[string]config.Change{}
	for _, ch := range d.Changed {
		changed[ch.Name] = ch.What
	}
	for i := range cfg.Consoles {
		cc := &cfg.Consoles[i]
		c := m.Console(cc.Name)
		if c == nil {
			continue // added: started below
		}
		what := changed[cc.Name]
		c.update(prep[cc.Name], cc, what)
		switch {
		case what&config.ChangeConnection != 0:
			res.Reconnects = append(res.Reconnects, cc.Name)
		case what != 0:
			res.Updated = append(res.Updated, cc.Name)
			if what&config.ChangeCredentials != 0 {
				res.Credentials = append(res.Credentials, cc.Name)
			}
		}
	}
	for _, n := range toStart {
		if err := m.startConsole(prep[n]); err != nil {
			m.log.Error("conserver: console not started (tried again at the next reload)", "console", n, "err", err)
			res.Failed = append(res.Failed, n)
			continue
		}
		res.Started = append(res.Started, n)
	}
	// Access: users, groups and rules may all change what someone may do.
	if old != nil {
		for _, c := range m.Consoles() {
			det, down := c.recheck(cfg)
			res.Detached += det
			res.Downgraded += down
		}
	}
	if len(res.Credentials) > 0 {
		m.log.Info("conserver: BMC credentials changed: live SOL sessions stay, each console's next connection uses them (solgate ctl reopen: now)",
			"consoles", hostlist.Compress(res.Credentials), "count", len(res.Credentials))
	}
	m.log.Info("conserver: configuration applied", "consoles", len(cfg.Consoles), "started", len(res.Started),
		"stopped", len(res.Stopped), "reconnecting", len(res.Reconnects), "updated", len(res.Updated),
		"detached", res.Detached, "downgraded", res.Downgraded)
	return res, nil
}

// prepare builds a console's run-time settings from its configuration.
func (m *Manager) prepare(cc *config.Console) (*prepared, error) {
	ic, err := BMCConfig(cc, m.log.With("console", cc.Name))
	if err != nil {
		return nil, fmt.Errorf("%s:%d: %w", cc.File, cc.Line, err)
	}
	esc, err := escape.Parse(cc.Escape)
	if err != nil {
		return nil, fmt.Errorf("%s:%d: console %s: %w", cc.File, cc.Line, cc.Name, err)
	}
	return &prepared{cfg: cc, ipmi: ic, esc: esc}, nil
}

func (m *Manager) startConsole(p *prepared) error {
	w, err := m.store.Writer(p.cfg.Name)
	if err != nil {
		return err
	}
	w.SetLimits(logLimits(p.cfg.Log))
	c := newConsole(m, p, w)
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		w.Close()
		return ErrClosed
	}
	m.consoles[p.cfg.Name] = c
	m.wg.Add(1)
	m.mu.Unlock()
	go c.run()
	return nil
}

// stopConsoles stops the named consoles in parallel and waits for them
// (bounded by ctx: a console that cannot finish in time is abandoned with
// its sockets closed by the process's exit).
func (m *Manager) stopConsoles(ctx context.Context, names []string, cause string) {
	var cs []*Console
	m.mu.Lock()
	for _, n := range names {
		if c := m.consoles[n]; c != nil {
			cs = append(cs, c)
			delete(m.consoles, n)
		}
	}
	m.mu.Unlock()
	stopAll(ctx, cs, cause)
}

// stopAll ends every console with cause, then waits for all of them.
func stopAll(ctx context.Context, cs []*Console, cause string) {
	for _, c := range cs {
		c.stop(cause)
	}
	for _, c := range cs {
		select {
		case <-c.done:
		case <-ctx.Done():
			return
		}
	}
}

// Shutdown stops every console: attached users are told and detached,
// every SOL payload is deactivated and every session closed (in parallel,
// bounded by ctx and by [server] shutdown_timeout), and the log writers
// are flushed and closed. The store stays open (its owner closes it).
// Later Applies fail with ErrClosed.
func (m *Manager) Shutdown(ctx context.Context) error {
	m.applyMu.Lock()
	defer m.applyMu.Unlock()
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil
	}
	m.closed = true
	cs := make([]*Console, 0, len(m.consoles))
	for _, c := range m.consoles {
		cs = append(cs, c)
	}
	clear(m.consoles)
	m.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, m.daemon().ShutdownTimeout)
	defer cancel()
	start := time.Now()
	stopAll(ctx, cs, "solgate is shutting down")
	left := 0
	for _, c := range cs {
		select {
		case <-c.done:
		default:
			left++
		}
	}
	m.sess.close()
	if left > 0 {
		m.log.Warn("conserver: shutdown: consoles still closing their sessions", "consoles", left, "after", time.Since(start).Round(time.Millisecond))
		return fmt.Errorf("conserver: shutdown: %d of %d consoles did not finish in time", left, len(cs))
	}
	m.wg.Wait()
	m.log.Info("conserver: all consoles stopped", "consoles", len(cs), "took", time.Since(start).Round(time.Millisecond))
	return nil
}

// sortedNames returns the manager's console names, sorted (tests).
func (m *Manager) sortedNames() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]string, 0, len(m.consoles))
	for n := range m.consoles {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

// logLimits maps a console's log settings onto its writer's.
func logLimits(l config.LogSettings) logstore.Limits {
	return logstore.Limits{SegmentBytes: l.RotateSize, SegmentAge: l.RotateAge, RetainAge: l.RetainAge, RetainBytes: l.RetainBytes}
}

// ipmiConfig is a console's connection settings with the manager's
// timeouts applied.
func (m *Manager) ipmiConfig(p *prepared) ipmilan.Config {
	cfg := p.ipmi
	d := m.daemon()
	cfg.Timeout, cfg.KeepAlive = d.IPMITimeout, d.KeepAlive
	if m.opts.IPMITimeout > 0 {
		cfg.Timeout = m.opts.IPMITimeout
	}
	if m.opts.KeepAlive > 0 {
		cfg.KeepAlive = m.opts.KeepAlive
	}
	return cfg
}
