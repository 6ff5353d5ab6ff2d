package conserver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/solgate/solgate/conserver/config"
	"github.com/solgate/solgate/ipmilan"
	"github.com/solgate/solgate/logstore"
)

// State is where a console's SOL connection stands.
type State uint8

const (
	Connecting State = iota + 1 // opening the IPMI session and activating SOL
	Up                          // connected: output flows to the log and the attached users
	Retrying                    // the last attempt failed or the session was lost; next try at NextTry
	Waiting                     // another client holds the SOL payload; re-checking (steal policy)
	Contested                   // the payload kept changing hands: solgate stopped taking it
	Down                        // a failure retrying soon cannot fix (authentication, SOL disabled); retried slowly
	Stopped                     // removed from the configuration or shut down
)

func (s State) String() string {
	switch s {
	case Connecting:
		return "connecting"
	case Up:
		return "up"
	case Retrying:
		return "retrying"
	case Waiting:
		return "waiting"
	case Contested:
		return "contested"
	case Down:
		return "down"
	case Stopped:
		return "stopped"
	}
	return fmt.Sprintf("State(%d)", uint8(s))
}

// readBufSize is the supervisor's read buffer: four SOL packets. Small,
// because every connected console holds one; a busy console just reads
// more often.
const readBufSize = 1024

// Console is one configured console: its SOL connection kept up by a
// supervisor goroutine, its log writer, and the users attached to it.
// Its methods are safe for concurrent use.
//
// Goroutines: run (the supervisor: dials, reads the SOL into the log and
// the attachments, waits out backoffs) for the console's lifetime; pump
// (typed input to SOL.Write) only while input is queued. The ipmilan
// session adds its own (reader, SOL engine; the keepalive runs on a timer) while connected.
//
// Lock order: outMu, then mu, then an Attachment's mu.
type Console struct {
	m    *Manager
	name string
	w    *logstore.Writer
	logp atomic.Pointer[slog.Logger] // with the console's BMC; replaced when it changes

	ctx    context.Context // the console's lifetime; its cause says why it ended
	cancel context.CancelCauseFunc
	done   chan struct{} // closed when run has returned and everything is released
	wake   chan struct{} // capacity 1: reconsider now (reopen, force, configuration change)
	inRoom chan struct{} // capacity 1: the input queue has room again
	wg     sync.WaitGroup

	// outMu serialises console output, so the log and every attachment
	// see chunks in the same order, and makes attach registration atomic
	// with respect to output. Guards boot and logged.
	outMu sync.Mutex
	boot  bootDetector
	// readMu keeps the SOL's events and output in their order when both
	// the session's reader (the output sink, see read) and the
	// supervisor's read loop (events without output) log them.
	readMu sync.Mutex
	logged int64 // console bytes handed to the log writer

	// atts is a copy-on-write snapshot of the attachments, for the
	// output path (no lock but outMu per chunk).
	atts atomic.Pointer[[]*Attachment]

	bytesIn    atomic.Uint64 // console output, all sessions
	bytesOut   atomic.Uint64 // typed input handed to SOL.Write
	lastOutput atomic.Int64  // unix nanos

	mu    sync.Mutex // guards the fields below
	set   *prepared
	st    State
	since time.Time
	// The state an attempt started from, and since when (setStateLocked).
	tryFrom      State
	tryFromSince time.Time
	reason       string
	nextTry      time.Time
	conn         *solConn
	upSince      time.Time
	downSince    time.Time // when the last session ended (zero before the first)
	everUp       bool
	reconns      int
	own          ownership
	req          *redial
	writer       *Attachment
	all          []*Attachment
	in           inputQueue
	pumping      bool
	solStats     ipmilan.SOLStats // of the last session, once it ended
	stopped      bool
	// credCheck: a check of new credentials runs (checkCredentials);
	// credAgain: they changed again meanwhile, check once more after it.
	credCheck, credAgain bool
}

// redial is a request to drop the SOL connection and dial again now.
type redial struct {
	reason string
	by     Identity // zero for the configuration
	steal  bool     // take the payload from whoever holds it
	kind   logstore.EventKind
}

// solConn is one live SOL connection: the session and its console.
type solConn struct {
	sess bmcSession
	sol  solStream
	once sync.Once
	// ctx ends when the connection is to be dropped (drop) or the console
	// stops: the supervisor's read then closes it.
	ctx  context.Context
	drop context.CancelFunc
}

func newSOLConn(parent context.Context, sess bmcSession, sol solStream) *solConn {
	sc := &solConn{sess: sess, sol: sol}
	sc.ctx, sc.drop = context.WithCancel(parent)
	return sc
}

// close deactivates the payload and closes the session (idempotent, safe
// from any goroutine; each step bounded by the IPMI timeout, which for a
// BMC that does not answer is seconds: other goroutines call drop).
func (sc *solConn) close() {
	sc.once.Do(func() {
		sc.sol.Close()
		sc.sess.Close()
	})
}

func newConsole(m *Manager, p *prepared, w *logstore.Writer) *Console {
	ctx, cancel := context.WithCancelCause(context.Background())
	c := &Console{
		m: m, name: p.cfg.Name, w: w,
		ctx: ctx, cancel: cancel, done: make(chan struct{}), wake: make(chan struct{}, 1), inRoom: make(chan struct{}, 1),
		set: p, st: Connecting, since: time.Now(),
	}
	c.atts.Store(&[]*Attachment{})
	c.logp.Store(m.log.With("console", p.cfg.Name, "bmc", p.ipmi.Addr))
	return c
}

// logger is the console's daemon logger (console and BMC keys).
func (c *Console) logger() *slog.Logger { return c.logp.Load() }

// Name returns the console's name.
func (c *Console) Name() string { return c.name }

// Done is closed once the console has stopped (removed or shut down).
func (c *Console) Done() <-chan struct{} { return c.done }

// settings returns the console's current settings.
func (c *Console) settings() *prepared {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.set
}

// kick wakes the supervisor out of a backoff wait.
func (c *Console) kick() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// stop ends the console with cause (what its users are told). run then
// deactivates the payload, closes the session and the log writer.
func (c *Console) stop(cause string) {
	c.cancel(stopError(cause))
}

// stopError is why a console stopped; it wraps ErrClosed.
type stopError string

func (e stopError) Error() string { return string(e) }
func (e stopError) Unwrap() error { return ErrClosed }

// update applies new settings from a reload.
func (c *Console) update(p *prepared, cc *config.Console, what config.Change) {
	c.mu.Lock()
	if p == nil { // unchanged: keep the built settings, point at the new snapshot
		np := *c.set
		np.cfg = cc
		p = &np
	}
	oldEsc := c.set.esc
	c.set = p
	var conn *solConn
	// A new password or K_g, or steal policy, without a connection
	// change: the live session stays (the next connection uses them). A
	// console waiting to retry tries now, since what stopped it may have
	// been the old password; one waiting for the payload or contested
	// does too, under the new policy, its contested count cleared.
	soft := what&config.ChangeConnection == 0
	creds := soft && what&config.ChangeCredentials != 0
	steal := soft && what&config.ChangeSteal != 0
	retryNow := creds && (c.st == Retrying || c.st == Down) || steal && (c.st == Waiting || c.st == Contested)
	keptUp := creds && c.conn != nil
	if steal || what&config.ChangeConnection != 0 {
		// A new policy, or a new BMC, user, cipher suite...: whatever
		// made the console contested may be fixed.
		c.own.contestedAt = time.Time{}
		c.own.takeovers = nil
	}
	if what&config.ChangeConnection != 0 {
		c.req = &redial{reason: "configuration changed", kind: logstore.EventReconnect}
		conn = c.conn
		c.logp.Store(c.m.log.With("console", c.name, "bmc", p.ipmi.Addr))
	}
	c.mu.Unlock()
	if what&config.ChangeLog != 0 {
		c.w.SetLimits(logLimits(cc.Log)) // no reconnect: the writer takes them at its next flush
		c.event(logstore.EventNote, "log rotation and retention settings changed")
	}
	if what&config.ChangeEscape != 0 && p.esc != oldEsc {
		c.tell(fmt.Sprintf("the escape is now %s (%s? for help)", formatEscape(p.esc), formatEscape(p.esc)))
	}
	if conn != nil {
		conn.drop() // closed by the supervisor's read: Apply does not wait for the BMC
	}
	if keptUp {
		c.startCredentialCheck()
	}
	if what&config.ChangeConnection != 0 || retryNow {
		// Only a connection change, or new credentials or policy for a
		// console they may help, has the supervisor act now: a kick for
		// anything else would cut short a backoff (a console down for a
		// wrong password would log in at every reload) or, left in wake,
		// skip the next one.
		c.kick()
	}
}

// startCredentialCheck has new BMC credentials of a console that is up
// tried with a short-lived session, one check at a time (a change during
// a check is checked after it), so that a password the BMC does not
// take is said now, not at the console's next connection days later.
// The checks are queued to the manager's few check workers
// (Manager.queueCredCheck): a password file that 10,000 consoles share
// costs a queue entry each, not a goroutine each.
func (c *Console) startCredentialCheck() {
	c.mu.Lock()
	if c.credCheck {
		c.credAgain = true
		c.mu.Unlock()
		return
	}
	c.credCheck = true
	c.mu.Unlock()
	c.m.queueCredCheck(c)
}

// credCheckDone ends a check of c's credentials on a check worker and
// queues another if they changed again meanwhile.
func (c *Console) credCheckDone(counted bool, err error) {
	c.mu.Lock()
	again := c.credAgain && c.ctx.Err() == nil
	c.credAgain, c.credCheck = false, again
	c.mu.Unlock()
	if again {
		c.m.queueCredCheck(c) // before end: the tally must not see zero pending in between
	}
	c.m.creds.end(c.m.log, c.name, counted, err)
}

// checkCredentials tries c's BMC credentials with a short-lived session
// and says in c's log what came of it. It reports whether it got as far
// as an answer (not: the console stopped first) and the session's error.
func (c *Console) checkCredentials() (counted bool, err error) {
	if c.m.hs.acquire(c.ctx) != nil {
		return false, nil // stopping
	}
	defer c.m.hs.release()
	set := c.settings()
	cfg := c.m.ipmiConfig(set)
	ctx, cancel := context.WithTimeout(c.ctx, connectTimeout(cfg))
	defer cancel()
	sess, err := c.m.open(ctx, cfg)
	if c.ctx.Err() != nil {
		if sess != nil {
			sess.Close()
		}
		return
	}
	counted = true
	const kept = "this SOL session stays, the next connection uses them (solgate ctl reopen: now)"
	if err == nil {
		sess.Close()
		c.event(logstore.EventNote, "BMC credentials changed and checked with a short-lived session: the BMC takes them; "+kept)
		c.logger().Debug("conserver: checked the new BMC credentials: taken")
		return
	}
	line := oneLine(err, cfg.Addr)
	if !refusedCredentials(err) {
		c.event(logstore.EventNote, "BMC credentials changed; checking them with a short-lived session failed ("+line+"): "+kept)
		c.logger().Debug("conserver: could not check the new BMC credentials", "err", err)
		return
	}
	c.event(logstore.EventNote, "BMC credentials changed, but a short-lived session with them failed: "+line+"; "+kept+", and will fail as this one did")
	c.logger().Debug("conserver: checked the new BMC credentials: refused", "err", err)
	return
}

// setState records a state change; the caller holds mu. Since is when
// the state began: an attempt that ends as the one before it did (down
// again, still retrying) goes on from that state's start, not the
// attempt's, so a console retried for hours reads "down since" then.
func (c *Console) setStateLocked(s State, reason string, next time.Time) {
	if c.st != s {
		now := time.Now()
		switch {
		case s == Connecting:
			c.tryFrom, c.tryFromSince = c.st, c.since
			c.since = now
		case c.st == Connecting && s == c.tryFrom && s != Up:
			c.since = c.tryFromSince
		default:
			c.since = now
		}
	}
	c.st, c.reason, c.nextTry = s, reason, next
}

// run is the supervisor goroutine.
func (c *Console) run() {
	defer c.m.wg.Done()
	defer close(c.done)
	var (
		bo    backoff
		buf   []byte
		delay time.Duration
	)
	for {
		if !c.pause(delay) {
			break
		}
		c.mu.Lock()
		req := c.req
		c.req = nil
		contested := !c.own.contestedAt.IsZero()
		c.mu.Unlock()
		if contested && (req == nil || !req.steal) {
			delay = -1 // until a user reopens or the configuration changes
			continue
		}
		if req != nil && !req.by.zero() {
			c.event(req.kind, fmt.Sprintf("%s by %s", req.reason, req.by.User))
		}
		c.mu.Lock()
		c.setStateLocked(Connecting, "", time.Time{})
		c.mu.Unlock()
		if err := c.m.hs.acquire(c.ctx); err != nil {
			break
		}
		conn, fail := c.connect(req)
		c.m.hs.release()
		if conn == nil {
			delay = c.failed(fail, &bo)
			continue
		}
		if buf == nil {
			buf = make([]byte, readBufSize)
		}
		upAt := c.up(conn, fail)
		err := c.read(conn, buf)
		conn.close() // waits for a close that drop started
		conn.drop()
		bo.connected(c.m.backoff(), time.Since(upAt))
		delay = c.lost(conn, err, &bo)
	}
	c.finish()
}

// pause waits d (negative: until woken), or until the console ends.
func (c *Console) pause(d time.Duration) bool {
	if c.ctx.Err() != nil {
		return false
	}
	if d == 0 {
		return true
	}
	var timer <-chan time.Time
	if d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		timer = t.C
	}
	select {
	case <-c.ctx.Done():
		return false
	case <-c.wake:
	case <-timer:
	}
	return c.ctx.Err() == nil
}

// up records a new connection and tells everyone.
func (c *Console) up(conn *solConn, note *connectResult) time.Time {
	now := time.Now()
	set := c.settings()
	c.m.sess.set(c.name, set.ipmi.Addr, conn.sess.ID())
	c.mu.Lock()
	c.conn = conn
	c.upSince = now
	downSince := c.downSince
	if c.everUp {
		c.reconns++
	}
	c.everUp = true
	c.own.heldSince = time.Time{}
	if c.req != nil && !c.req.by.zero() {
		// A user's reopen or force that came while this connection was
		// being set up: it is satisfied. (A configuration change is not:
		// it may have named another BMC.)
		c.req = nil
	}
	stale := c.req != nil // the configuration changed meanwhile
	c.setStateLocked(Up, "", time.Time{})
	c.mu.Unlock()
	select { // a wake-up for the attempt that just succeeded
	case <-c.wake:
	default:
	}
	if stale {
		conn.close() // read ends at once; the next attempt uses the new settings
	}
	msg := fmt.Sprintf("SOL session established (BMC session %#x, cipher suite %d)", conn.sess.ID(), conn.sess.CipherSuite())
	if note != nil && note.took != "" {
		c.event(logstore.EventKind("steal"), note.took)
		c.logger().Warn("conserver: took the SOL payload", "how", note.took)
		c.tell(note.took)
	}
	c.event(logstore.EventReconnect, msg)
	// Most BMCs keep little or nothing printed while no console is
	// active: say so where the output may jump.
	if downSince.IsZero() {
		c.event(logstore.EventGap, "first SOL session of this solgate serve: output printed while it was not running is lost unless the BMC kept it")
	} else {
		c.event(logstore.EventGap, fmt.Sprintf("SOL was down for %v: output the node printed meanwhile is lost unless the BMC kept it",
			now.Sub(downSince).Round(time.Millisecond)))
	}
	c.logger().Info("conserver: SOL up", "session", fmt.Sprintf("%#x", conn.sess.ID()))
	c.tell("connected")
	return now
}

// read copies the SOL's output to the log and the attachments until the
// connection ends (or is dropped, or the console stops: that closes it).
//
// An ipmilan console hands its output over on the session's reader
// goroutine (SetOutput): a busy console then costs no wake-up of this
// goroutine per packet, only events and the end wake it. The output path
// never blocks (the log writer and the attachments buffer), as the sink
// must not.
func (c *Console) read(conn *solConn, buf []byte) error {
	stop := context.AfterFunc(conn.ctx, conn.close)
	defer stop()
	if s, ok := conn.sol.(outputSetter); ok {
		s.SetOutput(func(p []byte) {
			c.readMu.Lock()
			c.drainEvents(conn) // those that came with this output go before it
			c.output(p)
			c.readMu.Unlock()
		})
	}
	for {
		n, err := conn.sol.Read(buf)
		c.readMu.Lock()
		c.drainEvents(conn)
		if n > 0 {
			c.output(buf[:n])
		}
		c.readMu.Unlock()
		if err != nil {
			return err
		}
	}
}

// outputSetter is a SOL console that can hand its output to a function
// instead of Read (*ipmilan.SOL).
type outputSetter interface {
	SetOutput(func(p []byte))
}

// output is one chunk of console output: into the log (with boot
// markers), then to every attachment. Never blocks on either.
func (c *Console) output(p []byte) {
	now := time.Now()
	c.bytesIn.Add(uint64(len(p)))
	c.lastOutput.Store(now.UnixNano())
	c.outMu.Lock()
	c.logOutputLocked(p, now)
	c.logged += int64(len(p))
	var drop []*Attachment
	for _, a := range *c.atts.Load() {
		if !a.deliver(p) {
			drop = append(drop, a)
		}
	}
	c.outMu.Unlock()
	for _, a := range drop {
		c.detach(a, a.Cause())
	}
}

// drainEvents turns the SOL's events into log events and notices.
func (c *Console) drainEvents(conn *solConn) {
	for {
		select {
		case ev, ok := <-conn.sol.Events():
			if !ok {
				return
			}
			switch ev.Kind {
			case ipmilan.SOLGap, ipmilan.SOLOverrun:
				c.event(logstore.EventGap, fmt.Sprintf("%s: %s", ev.Kind, ev.Detail))
				c.tell(fmt.Sprintf("output lost: %s", ev.Kind))
			case ipmilan.SOLInputDropped:
				c.event(logstore.EventNote, fmt.Sprintf("%s: %s", ev.Kind, ev.Detail))
				c.tellWriter(fmt.Sprintf("input lost: %s", ev.Detail))
			case ipmilan.SOLBreakDetected:
				c.event(logstore.EventNote, "serial break detected by the BMC")
			case ipmilan.SOLPowerOn:
				c.powerOnSeen()
			case ipmilan.SOLPowerOff:
				c.event(logstore.EventPower, "power off seen (the chassis was on)")
			}
		default:
			return
		}
	}
}

// lost records the end of a connection and returns the delay before the
// next attempt.
func (c *Console) lost(conn *solConn, err error, bo *backoff) time.Duration {
	st := conn.sol.Stats()
	c.mu.Lock()
	c.conn = nil
	c.downSince = time.Now()
	c.solStats = st
	req := c.req
	c.dropInputLocked()
	c.mu.Unlock()
	if c.ctx.Err() != nil {
		return 0
	}
	if se := conn.sol.Err(); se != nil && (errors.Is(err, ipmilan.ErrClosed) || err == nil) {
		err = se
	}
	why := describe(err, conn.sess.Addr())
	if req != nil {
		why = req.reason
		if !req.by.zero() {
			why += " by " + req.by.User
		}
	}
	if errors.Is(err, ipmilan.ErrSOLStolen) || errors.Is(err, ipmilan.ErrSOLDeactivated) {
		c.event(logstore.EventStolen, why)
		c.mu.Lock()
		c.own.heldSince = time.Now() // when-idle waits its grace from here
		c.mu.Unlock()
	}
	if req != nil {
		c.event(logstore.EventReconnect, "SOL session closed: "+why)
		c.tell("reconnecting: " + why)
		c.logger().Info("conserver: SOL reconnecting", "why", why)
		return 0
	}
	d := bo.fail(c.m.backoff(), c.m.rnd)
	next := time.Now().Add(d)
	c.mu.Lock()
	c.setStateLocked(Retrying, "SOL session lost: "+why, next)
	c.mu.Unlock()
	c.event(logstore.EventReconnect, fmt.Sprintf("SOL session lost: %s; next try in %v", why, d.Round(100*time.Millisecond)))
	c.tell(fmt.Sprintf("SOL session lost: %s; reconnecting in %v", why, d.Round(100*time.Millisecond)))
	c.logger().Warn("conserver: SOL session lost", "err", err, "retry_in", d.Round(time.Millisecond))
	return d
}

// finish runs when the console stops: attachments told and detached,
// input dropped, the session record cleared, the log writer closed.
func (c *Console) finish() {
	cause := fmt.Errorf("%s: %w", c.name, context.Cause(c.ctx))
	c.mu.Lock()
	c.stopped = true
	c.setStateLocked(Stopped, context.Cause(c.ctx).Error(), time.Time{})
	c.dropInputLocked()
	all := append([]*Attachment(nil), c.all...)
	c.mu.Unlock()
	c.wg.Wait() // the input pump
	for _, a := range all {
		c.detach(a, cause)
	}
	c.m.sess.set(c.name, "", 0)
	c.event(logstore.EventReconnect, "console stopped: "+context.Cause(c.ctx).Error())
	if err := c.w.Close(); err != nil {
		c.logger().Warn("conserver: closing the console log", "err", err)
	}
	c.logger().Info("conserver: console stopped", "why", context.Cause(c.ctx).Error())
}

// event writes an event line into the console log.
func (c *Console) event(kind logstore.EventKind, text string) {
	c.w.Event(kind, text)
}

// tell sends a one-line notice to every attached user.
func (c *Console) tell(text string) {
	for _, a := range *c.atts.Load() {
		a.notice(c.name + ": " + text)
	}
}

// tellWriter sends a notice to the attachment that writes, if any.
func (c *Console) tellWriter(text string) {
	c.mu.Lock()
	w := c.writer
	c.mu.Unlock()
	if w != nil {
		w.notice(text)
	}
}

// Status is a snapshot of a console's state, for info, status listings and
// metrics.
type Status struct {
	Name  string
	BMC   string
	State State
	Since time.Time // of State
	// Reason is one line: why it is retrying, waiting, contested or down.
	Reason  string
	NextTry time.Time // Retrying, Waiting, Down: the next attempt
	// Owner describes who holds the SOL payload while Waiting or
	// Contested ("BMC session 0x1234"), since OwnerSince.
	Owner      string
	OwnerSince time.Time
	Steal      string // the console's policy
	UpSince    time.Time
	Reconnects int // sessions established after the first
	Writer     string
	Attached   int
	LastOutput time.Time
	BytesIn    uint64           // console output since the daemon started
	BytesOut   uint64           // typed input
	SOL        ipmilan.SOLStats // of the current (or last) session
	Log        logstore.WriterStats
}

// Status reports the console's state.
func (c *Console) Status() Status {
	c.mu.Lock()
	s := Status{Name: c.name, BMC: c.set.ipmi.Addr, State: c.st, Since: c.since, Reason: c.reason, NextTry: c.nextTry,
		Steal: c.set.cfg.Steal, Reconnects: c.reconns, Attached: len(c.all), SOL: c.solStats}
	if c.own.owner != 0 && (c.st == Waiting || c.st == Contested) {
		s.Owner = fmt.Sprintf("BMC session %#x", c.own.owner)
		s.OwnerSince = c.own.heldSince
	}
	if c.st == Up {
		s.UpSince = c.upSince
	}
	if c.writer != nil {
		s.Writer = c.writer.id.User
	}
	conn := c.conn
	c.mu.Unlock()
	if conn != nil {
		s.SOL = conn.sol.Stats()
	}
	if t := c.lastOutput.Load(); t != 0 {
		s.LastOutput = time.Unix(0, t)
	}
	s.BytesIn, s.BytesOut = c.bytesIn.Load(), c.bytesOut.Load()
	s.Log = c.w.Stats()
	return s
}

// Tail returns the console's last n lines from the log store, unflushed
// output included.
func (c *Console) Tail(n int) ([]logstore.Line, error) {
	return c.m.store.Tail(c.name, n)
}

// Reopen drops the SOL connection and establishes it again now. If
// another client holds the payload, or the console is contested, it takes
// the payload (the user asked for this console now). Needs write access.
func (c *Console) Reopen(id Identity) error {
	return c.requestRedial(id, "reopen", logstore.EventReopen, config.Write)
}

// Force takes the SOL payload now from whoever holds it (another client,
// a contested console) and reconnects. Needs write access.
func (c *Console) Force(id Identity) error {
	return c.requestRedial(id, "force SOL", logstore.EventForce, config.Write)
}

func (c *Console) requestRedial(id Identity, what string, kind logstore.EventKind, need config.Perm) error {
	if c.m.perms(id.User, c.name)&need != need {
		c.logger().Warn("conserver: "+what+" refused", "user", id.User, "remote", id.Remote, "err", ErrDenied)
		return fmt.Errorf("%s %s: %w", what, c.name, ErrDenied)
	}
	return c.redial(id, what, kind)
}

// redial drops the SOL connection (taking the payload, if held) and dials
// again now, on id's behalf, whose permission was checked.
func (c *Console) redial(id Identity, what string, kind logstore.EventKind) error {
	c.mu.Lock()
	if c.stopped {
		c.mu.Unlock()
		return ErrClosed
	}
	c.req = &redial{reason: what, by: id, steal: true, kind: kind}
	c.own.contestedAt = time.Time{}
	c.own.takeovers = nil
	conn := c.conn
	c.mu.Unlock()
	c.logger().Info("conserver: "+what, "user", id.User, "remote", id.Remote)
	if conn != nil {
		conn.drop()
	}
	c.kick()
	return nil
}
