package syslog

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/solgate/solgate/logstore"
)

// Timing of a target's goroutine.
const (
	backoffMin    = 100 * time.Millisecond
	backoffMax    = 30 * time.Second
	saveInterval  = time.Second      // positions are saved at most this often, unless the window is full
	pollInterval  = 30 * time.Second // look at every console even without a notification
	ackPoll       = 10 * time.Millisecond
	stopGrace     = 2 * time.Second // Close waits this long for the receiver to take what is in flight
	logEvery      = time.Minute     // the most one kind of trouble is logged
	readBatch     = 512             // records read from one console before moving on to the next
	statsInterval = time.Second
)

// target ships to one receiver. Everything but stats is owned by its
// goroutine (run).
type target struct {
	sh   *Shipper
	cfg  Target
	key  string
	path string
	sev  Severity
	f    formatter
	em   lineEmitter
	tls  tlsFiles
	log  *slog.Logger

	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}

	st       state
	cons     map[string]*cstate
	ready    []*cstate
	conn     conn
	unwatch  func() bool // stops the context.AfterFunc that bounds conn's writes once ctx ends
	writes   int         // messages written on conn
	inflight []entry     // sent, not yet taken, oldest first, from head
	head     int
	// recent are the entries taken lately on this connection, oldest
	// first (bounded): a connection that breaks may not really have
	// delivered the last of them (conn.suspect), so they are sent again.
	recent    []recentEntry
	takenConn int // conn messages taken, as taken last said
	unsaved   int // messages taken since the positions were last saved
	dirty     bool
	lastSave  time.Time
	saveBuf   []byte
	saveErr   error // the last save's error, read by Close after stop
	backoff   time.Duration
	nextDial  time.Time
	dialed    bool // a connection was made before
	failing   int  // failed attempts since the last good connection
	wbuf      []byte
	timer     *time.Timer
	statsTick <-chan time.Time  // run's statsInterval ticker, also looked at while the window is full
	changes   *logstore.Changes // run's subscription to new frames, also taken while the window is full
	names     []string          // Take's buffer

	shipping *cstate // the console ship is reading, which may wait for the window there

	// The record being fed, for the sink methods.
	cur      *cstate
	curNext  logstore.Position
	recStart logstore.Position
	wasIn    bool
	failed   error // the connection broke during a read

	logLast map[string]time.Time // rate limit of log messages by kind

	mu    sync.Mutex // guards stats
	stats TargetStats
}

// entry is a message (or a blank line) in flight.
type entry struct {
	cs   *cstate
	upto int // conn writes that must be taken for this entry to be
	size int // bytes; 0 for a blank line
	has  bool
	c    commit // the console's position once this entry is taken
	t    time.Time
}

// recentEntry is a taken entry and the console's position before it.
type recentEntry struct {
	cs   *cstate
	upto int
	prev commit
}

// cstate is one console as seen by one target.
type cstate struct {
	name      string
	cur       *logstore.Cursor
	line      lineState
	seq       uint64            // of the last message made
	skipUntil logstore.Position // records up to here only feed the stripper
	seqStart  logstore.Position // where the escape sequence open now started
	committed commit
	queued    bool
	inflight  int
	oldest    time.Time // time of the oldest line not yet taken, zero if none
	behind    bool      // the last read stopped before the end
}

func newTarget(sh *Shipper, cfg Target, sev Severity) *target {
	t := &target{sh: sh, cfg: cfg, key: cfg.Key(), sev: sev, cons: map[string]*cstate{}, done: make(chan struct{}),
		logLast: map[string]time.Time{}}
	t.path = stateFile(sh.stateDir, t.key)
	t.log = sh.log.With("target", t.key)
	t.f = newFormatter(cfg.Format, cfg.Facility, cfg.SDID, cfg.MaxMessage)
	pats := cfg.Patterns
	if !cfg.NoDefaultPatterns {
		pats = append(slices.Clone(pats), DefaultPatterns()...)
	}
	t.em = lineEmitter{f: &t.f, base: sev, patterns: pats}
	t.tls = tlsFiles{caFile: cfg.CAFile, serverName: cfg.ServerName, certFile: cfg.CertFile, keyFile: cfg.KeyFile}
	t.backoff = backoffMin
	t.stats.Key = t.key
	t.ctx, t.cancel = context.WithCancel(context.Background())
	return t
}

func (t *target) start() { go t.run() }

// stop ends the goroutine and waits for it (it saves the positions).
func (t *target) stop() {
	t.cancel()
	<-t.done
}

func (t *target) run() {
	defer close(t.done)
	t.timer = time.NewTimer(time.Hour)
	defer t.timer.Stop()
	changes := t.sh.store.Changes()
	defer changes.Close()
	t.changes = changes
	t.init()
	defer t.shutdown()
	poll := time.NewTicker(pollInterval)
	defer poll.Stop()
	tick := time.NewTicker(statsInterval)
	defer tick.Stop()
	t.statsTick = tick.C
	for t.ctx.Err() == nil {
		if t.conn == nil {
			if wait := time.Until(t.nextDial); wait > 0 {
				t.timer.Reset(wait)
				select {
				case <-t.ctx.Done():
				case <-t.timer.C:
				case <-changes.C():
					t.takeChanges()
				case <-tick.C:
					t.updateStats()
				}
				continue
			}
			t.connect()
			continue
		}
		if t.pump(); t.failed != nil {
			t.disconnect(t.failed)
			continue
		}
		if t.dirty && (time.Since(t.lastSave) >= saveInterval || t.unsaved >= t.cfg.Window/2) {
			t.save()
		}
		if len(t.ready) > 0 {
			cs := t.ready[0]
			t.ready[0] = nil
			t.ready = t.ready[1:]
			if len(t.ready) == 0 {
				t.ready = nil
			}
			t.ship(cs)
			if t.failed != nil {
				t.disconnect(t.failed)
			}
			continue
		}
		if err := t.conn.flush(); err != nil {
			t.disconnect(err)
			continue
		}
		var ack <-chan time.Time
		if t.head < len(t.inflight) {
			t.timer.Reset(ackPoll)
			ack = t.timer.C
		}
		select {
		case <-t.ctx.Done():
		case <-changes.C():
			t.takeChanges()
		case <-poll.C:
			t.discover(true)
		case <-tick.C:
			t.updateStats()
			if t.dirty {
				t.save()
			}
		case <-ack:
		case <-t.conn.wake():
		}
		t.timer.Stop() // Go 1.23 timers: no stale tick to drain
	}
}

// init loads the positions and finds the consoles.
func (t *target) init() {
	st, ok, err := loadState(t.path, t.key)
	if err != nil {
		bad := t.path + ".bad"
		os.Rename(t.path, bad)
		t.log.Error("syslog: positions file unusable, set aside; consoles start at their end", "file", bad, "err", err)
		st, ok = state{key: t.key, pos: map[string]commit{}}, false
	}
	t.st = st
	if !ok {
		t.st.created = time.Now()
		t.dirty = true
	}
	t.discover(false)
	if !ok {
		t.save() // so that a crash before the first save does not skip lines
	}
	t.updateStats()
}

// discover adds the consoles that have logs; queue: also queue every one.
func (t *target) discover(queue bool) {
	names, err := t.sh.store.Consoles()
	if err != nil {
		t.logLimited("consoles", slog.LevelWarn, "syslog: list consoles", "err", err)
		return
	}
	for _, n := range names {
		if cs := t.console(n); cs != nil && queue {
			t.queue(cs)
		}
	}
}

// takeChanges queues the consoles with new frames.
func (t *target) takeChanges() {
	t.names = t.changes.Take(t.names[:0])
	for _, n := range t.names {
		t.touch(n)
	}
}

// touch queues a console that has new frames.
func (t *target) touch(name string) {
	if cs := t.console(name); cs != nil {
		t.queue(cs)
	}
}

func (t *target) queue(cs *cstate) {
	if !cs.queued {
		cs.queued = true
		t.ready = append(t.ready, cs)
	}
}

// console returns the state of a shipped console, creating it (queued) on
// first sight; nil if the target does not ship it.
func (t *target) console(name string) *cstate {
	if cs, ok := t.cons[name]; ok {
		return cs
	}
	if t.cfg.Ships != nil && !t.cfg.Ships(name) {
		return nil
	}
	c, has := t.st.pos[name]
	if !has {
		// A console that was there before this target starts at its end;
		// one that began after, at its beginning.
		if oldest, ok := t.sh.store.Oldest(name); ok && !t.cfg.Backfill && oldest.Before(t.st.created.Truncate(time.Second)) {
			end, err := t.sh.store.End(name)
			if err != nil {
				t.logLimited("end", slog.LevelWarn, "syslog: find the end of a log", "console", name, "err", err)
			}
			c = commit{pos: end, stripFrom: end}
		}
		t.st.pos[name] = c
		t.dirty = true
	}
	cur, err := t.sh.store.Cursor(name, c.stripFrom)
	if err != nil {
		return nil
	}
	cs := &cstate{name: name, cur: cur, committed: c, seq: c.seq}
	if c.stripFrom != c.pos {
		cs.skipUntil = c.pos
	}
	t.cons[name] = cs
	t.queue(cs)
	return cs
}

func (t *target) connect() {
	c, err := dial(t.ctx, t.cfg.Network, t.cfg.Address, t.tls)
	if err != nil {
		if t.ctx.Err() != nil {
			return
		}
		t.failing++
		t.mu.Lock()
		t.stats.DialErrors++
		t.mu.Unlock()
		t.setErr(err)
		t.logLimited("dial", slog.LevelWarn, "syslog: cannot reach receiver; retrying", "err", err, "attempts", t.failing, "retry_in", t.backoff)
		t.retryLater()
		return
	}
	if t.dialed {
		t.mu.Lock()
		t.stats.Reconnects++
		t.mu.Unlock()
	}
	if t.failing > 0 || !t.dialed {
		t.log.Info("syslog: connected", "failed_attempts", t.failing)
	}
	t.dialed = true
	t.conn, t.writes = c, 0
	// A stop must not wait writeTimeout for a receiver whose window is
	// closed (Apply holds the Shipper's lock meanwhile): once ctx ends,
	// writes get stopGrace.
	t.unwatch = context.AfterFunc(t.ctx, func() { c.stopping(time.Now().Add(stopGrace)) })
	t.mu.Lock()
	t.stats.Connected = true
	t.mu.Unlock()
	for _, cs := range t.cons {
		t.queue(cs)
	}
}

func (t *target) retryLater() {
	t.nextDial = time.Now().Add(t.backoff)
	t.backoff = min(t.backoff*2, backoffMax)
}

// disconnect drops a broken connection: what it did not take is read
// again from the consoles' committed positions.
func (t *target) disconnect(err error) {
	t.pump() // count what it took before it broke
	rewound := t.rewind(t.conn.suspect())
	t.unwatch()
	t.conn.close()
	t.conn = nil
	t.failed = nil
	t.failing++
	for _, cs := range rewound {
		t.rollback(cs)
	}
	for _, e := range t.inflight[t.head:] {
		if cs := e.cs; cs.inflight > 0 {
			t.rollback(cs)
		}
	}
	clear(t.inflight)
	t.inflight, t.head = t.inflight[:0], 0
	t.mu.Lock()
	t.stats.Connected = false
	t.stats.InFlight = 0
	t.mu.Unlock()
	if t.ctx.Err() != nil {
		return
	}
	t.setErr(err)
	t.logLimited("conn", slog.LevelWarn, "syslog: connection lost; resending from the last lines taken", "err", err, "retry_in", t.backoff)
	t.retryLater()
}

// rewind moves back the positions of the consoles whose lines are among
// the last n messages the broken connection counted as taken, so they
// are sent again (with the sequence numbers they had), and returns those
// consoles. The recent list starts afresh for the next connection.
func (t *target) rewind(n int) []*cstate {
	defer func() { clear(t.recent); t.recent = t.recent[:0] }()
	if n <= 0 {
		return nil
	}
	boundary := t.takenConn - n
	var out []*cstate
	seen := map[*cstate]bool{}
	for _, r := range t.recent {
		if r.upto <= boundary || seen[r.cs] {
			continue
		}
		seen[r.cs] = true
		r.cs.committed = r.prev
		t.st.pos[r.cs.name] = r.prev
		t.dirty = true
		out = append(out, r.cs)
	}
	if len(out) > 0 {
		t.log.Info("syslog: connection reset; resending the lines it may not have delivered", "lines", n, "consoles", len(out))
	}
	return out
}

// rollback makes a console read again from its committed position.
func (t *target) rollback(cs *cstate) {
	c := cs.committed
	cs.cur.Seek(c.stripFrom)
	cs.skipUntil = logstore.Position{}
	if c.stripFrom != c.pos {
		cs.skipUntil = c.pos
	}
	cs.seq = c.seq
	cs.line.reset()
	cs.inflight = 0
	t.queue(cs)
}

// pump takes what the receiver has taken off the in-flight list.
func (t *target) pump() {
	if t.conn == nil {
		return
	}
	n, err := t.conn.taken()
	t.takenConn = n
	var sent, bytes int64
	for t.head < len(t.inflight) && t.inflight[t.head].upto <= n {
		e := t.inflight[t.head]
		t.inflight[t.head] = entry{}
		t.head++
		cs := e.cs
		cs.inflight--
		if e.has {
			if len(t.recent) == recentMax {
				t.recent = append(t.recent[:0], t.recent[recentMax/2:]...)
			}
			t.recent = append(t.recent, recentEntry{cs: cs, upto: e.upto, prev: cs.committed})
			cs.committed = e.c
			t.st.pos[cs.name] = e.c
			t.dirty = true
		}
		if e.size > 0 {
			sent++
			bytes += int64(e.size)
			t.unsaved++
		}
		if cs.inflight == 0 && !cs.behind {
			cs.oldest = time.Time{}
		}
	}
	if t.head == len(t.inflight) {
		t.inflight, t.head = t.inflight[:0], 0
	} else if t.head > 4096 && t.head > len(t.inflight)/2 {
		n := copy(t.inflight, t.inflight[t.head:])
		clear(t.inflight[n:])
		t.inflight, t.head = t.inflight[:n], 0
	}
	if sent > 0 {
		t.failing = 0
		t.backoff = backoffMin
		t.mu.Lock()
		t.stats.Sent += sent
		t.stats.Bytes += bytes
		t.stats.InFlight = len(t.inflight) - t.head
		t.mu.Unlock()
	}
	if err != nil && t.failed == nil {
		t.failed = err
	}
}

// ship reads a batch of one console's records and sends their messages.
func (t *target) ship(cs *cstate) {
	cs.queued = false
	t.shipping = cs
	defer func() { t.shipping = nil }()
	n := 0
	err := cs.cur.Read(readBatch, func(rec logstore.Record, next logstore.Position) bool {
		if t.ctx.Err() != nil || t.failed != nil {
			return false
		}
		n++
		if cs.skipUntil.Segment != "" {
			if next.Compare(cs.skipUntil) <= 0 {
				// Before the saved position: only the stripper's state matters.
				was := cs.line.strip.InSequence()
				cs.line.feedSkip(rec)
				if !was && cs.line.strip.InSequence() {
					cs.seqStart = cs.cur.Position()
				}
				if next == cs.skipUntil {
					cs.skipUntil = logstore.Position{}
				}
				return true
			}
			cs.skipUntil = logstore.Position{}
		}
		if !t.waitWindow() {
			return false
		}
		t.feed(cs, rec, next)
		return t.failed == nil
	})
	var skip *logstore.SkipError
	var bad *logstore.CorruptError
	switch {
	case errors.As(err, &skip), errors.As(err, &bad):
		// Tell the receiver what it will not get, as a gap event. The
		// cursor has moved past the trouble: the next read goes on.
		t.mu.Lock()
		t.stats.Skipped++
		t.mu.Unlock()
		t.logLimited("skip", slog.LevelWarn, "syslog: records could not be shipped", "console", cs.name, "err", err)
		if t.failed == nil && t.waitWindow() {
			t.feed(cs, logstore.Record{Time: time.Now().UTC(), Event: logstore.EventGap, Data: []byte("syslog shipper: " + err.Error())}, cs.cur.Position())
		}
		t.queue(cs)
		return
	case err != nil:
		t.setErr(err)
		t.logLimited("read", slog.LevelWarn, "syslog: read console log", "console", cs.name, "err", err)
		return
	}
	cs.behind = n >= readBatch
	if cs.behind && t.failed == nil {
		t.queue(cs)
	}
	if t.failed == nil {
		if err := t.conn.flush(); err != nil {
			t.failed = err
		}
	}
}

// feed turns one record into messages.
func (t *target) feed(cs *cstate, rec logstore.Record, next logstore.Position) {
	t.cur, t.curNext, t.recStart = cs, next, cs.cur.Position()
	t.wasIn = cs.line.strip.InSequence()
	if cs.oldest.IsZero() {
		cs.oldest = rec.Time
	}
	t.em.feed(&cs.line, cs.name, rec, t)
	if !t.wasIn && cs.line.strip.InSequence() {
		cs.seqStart = t.recStart
	}
	t.cur = nil
}

// commitHere is the console position after the record being fed.
func (t *target) commitHere() commit {
	cs := t.cur
	c := commit{pos: t.curNext, seq: cs.seq, stripFrom: t.curNext}
	if cs.line.strip.InSequence() {
		c.stripFrom = cs.seqStart
		if !t.wasIn {
			c.stripFrom = t.recStart
		}
	}
	return c
}

// message implements sink: it sends one message.
func (t *target) message(m *message, last bool) {
	cs := t.cur
	cs.seq++
	m.seq = cs.seq
	t.wbuf = t.f.appendHeader(t.wbuf[:0], m)
	t.wbuf = append(t.wbuf, m.text...)
	if t.failed == nil {
		if err := t.conn.write(t.wbuf); err != nil {
			t.failed = err
		}
	}
	t.writes++
	e := entry{cs: cs, upto: t.writes, size: len(t.wbuf), t: m.time}
	if last {
		e.c, e.has = t.commitHere(), true
	}
	t.inflight = append(t.inflight, e)
	cs.inflight++
}

// blank implements sink: a line with nothing to ship still moves the
// position, once what was sent before it is taken.
func (t *target) blank() {
	cs := t.cur
	t.inflight = append(t.inflight, entry{cs: cs, upto: t.writes, has: true, c: t.commitHere()})
	cs.inflight++
}

// waitWindow waits until another message may be sent: fewer than Window
// messages are sent and not durably committed. It returns false if the
// connection broke or the target is stopping.
func (t *target) waitWindow() bool {
	for len(t.inflight)-t.head+t.unsaved >= t.cfg.Window {
		if err := t.conn.flush(); err != nil {
			t.failed = err
			return false
		}
		t.pump()
		if t.failed != nil {
			return false
		}
		if len(t.inflight)-t.head+t.unsaved < t.cfg.Window {
			break
		}
		if t.unsaved > 0 {
			// Parts of a line that goes on carry no position (the line is
			// resumed from its start), so nothing may be dirty: saving
			// still starts a new window, or a long line without a line
			// end would stop the target for good. After a kill -9 those
			// parts are sent again with the rest of their line.
			t.save()
			continue
		}
		t.timer.Reset(ackPoll)
		select {
		case <-t.ctx.Done():
			t.timer.Stop()
			return false
		case <-t.conn.wake():
			t.timer.Stop()
		case <-t.timer.C:
		case <-t.statsTick:
			// A receiver that takes nothing keeps us here: the backlog
			// figures must show it, not what they were when it stopped,
			// and the consoles that printed meanwhile count as behind.
			t.timer.Stop()
			t.takeChanges()
			t.updateStats()
		}
	}
	return true
}

// save writes the committed positions.
func (t *target) save() {
	var err error
	t.saveBuf, err = t.st.save(t.path, t.saveBuf)
	t.saveErr = err
	if err != nil {
		t.setErr(err)
		t.logLimited("save", slog.LevelError, "syslog: save positions", "err", err)
		return
	}
	t.dirty = false
	t.unsaved = 0
	t.lastSave = time.Now()
}

// shutdown lets the receiver take what is in flight (briefly), then
// closes the connection and saves the positions.
func (t *target) shutdown() {
	if t.conn != nil {
		deadline := time.Now().Add(stopGrace)
		t.conn.stopping(deadline) // the flush too
		if t.conn.flush() == nil {
			for t.pump(); t.head < len(t.inflight) && t.failed == nil && time.Now().Before(deadline); t.pump() {
				t.timer.Reset(ackPoll)
				select {
				case <-t.conn.wake():
				case <-t.timer.C:
				}
			}
		}
		t.unwatch()
		t.conn.close()
		t.conn = nil
	}
	if t.dirty {
		t.save()
	}
}

func (t *target) setErr(err error) {
	t.mu.Lock()
	t.stats.LastError = err.Error()
	t.stats.LastErrorTime = time.Now()
	t.mu.Unlock()
}

// logLimited logs at most once per logEvery for each kind of trouble.
func (t *target) logLimited(kind string, level slog.Level, msg string, args ...any) {
	now := time.Now()
	if last, ok := t.logLast[kind]; ok && now.Sub(last) < logEvery {
		return
	}
	t.logLast[kind] = now
	t.log.Log(context.Background(), level, msg, args...)
}

// updateStats refreshes the backlog figures (once a second: it looks at
// every console).
func (t *target) updateStats() {
	var oldest time.Time
	behind := 0
	for _, cs := range t.cons {
		if cs.behind || cs.queued || cs == t.shipping || cs.inflight > 0 {
			behind++
		}
		if !cs.oldest.IsZero() && (oldest.IsZero() || cs.oldest.Before(oldest)) {
			oldest = cs.oldest
		}
	}
	t.mu.Lock()
	t.stats.InFlight = len(t.inflight) - t.head
	t.stats.BacklogConsoles = behind
	t.stats.BacklogLines = int64(t.stats.InFlight)
	t.stats.BacklogAge = 0
	if !oldest.IsZero() {
		t.stats.BacklogAge = time.Since(oldest)
	}
	st := t.stats
	t.mu.Unlock()
	if behind > 0 && st.BacklogAge > time.Minute {
		t.logLimited("backlog", slog.LevelInfo, "syslog: catching up", "backlog_consoles", behind, "backlog_age", st.BacklogAge.Round(time.Second), "sent", st.Sent)
	}
}

func (t *target) statsNow() TargetStats {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.stats
}
