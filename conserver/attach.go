package conserver

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/solgate/solgate/conserver/config"
	"github.com/solgate/solgate/conserver/escape"
	"github.com/solgate/solgate/logstore"
)

// Identity is who attaches or acts: a configured user, the front end they
// came through and from where.
type Identity struct {
	User   string // a [[user]] name; access is checked against it
	Via    string // front end: "ssh", "ctl"
	Remote string // the peer's address, for the logs
}

func (id Identity) zero() bool { return id == Identity{} }

func (id Identity) String() string {
	s := id.User
	if id.Via != "" {
		s += " via " + id.Via
	}
	if id.Remote != "" {
		s += " from " + id.Remote
	}
	return s
}

// Mode is an attachment's access: read-write (its typing reaches the
// console) or read-only. A console has at most one read-write attachment.
type Mode uint8

const (
	// ModeAuto (the zero value) attaches read-write if the user may write
	// and nobody else does, else read-only.
	ModeAuto Mode = iota
	ModeRW
	ModeRO
)

func (m Mode) String() string {
	switch m {
	case ModeRW:
		return "rw"
	case ModeRO:
		return "ro"
	}
	return "auto"
}

// AttachOptions say how to attach.
type AttachOptions struct {
	Mode Mode
	// Force takes write access from the current writer, who becomes
	// read-only and is told (needs write access).
	Force bool
	// Replay is how many lines of the console's log to show first
	// (unflushed output included).
	Replay int
	// Spy attaches read-only without telling the other attached users
	// (the attach is still in the console log and the daemon log).
	Spy bool
}

// AttachInfo describes one attachment (who).
type AttachInfo struct {
	User, Via, Remote string
	Since             time.Time
	Idle              time.Duration // since the user last typed
	Mode              Mode
	Lagging           bool  // output is being dropped for this user right now
	Missed            int64 // output bytes this user missed in all
}

// Errors an attachment ends with (Cause wraps them with the one line the
// user reads).
var (
	// ErrDetached: the user detached (escape . or Close).
	ErrDetached = errors.New("detached")
	// ErrTooSlow: the user's connection did not keep up with the console.
	ErrTooSlow = errors.New("too slow")
)

// noticeSlack is how far notices may go beyond an attachment's buffer
// limit: they are few, short, and a lagging user must still learn why.
const noticeSlack = 16 << 10

// Attachment is one user attached to a console. Read returns what this
// user sees (console output, notices, escape-command answers); Write takes
// what they type. Read and Write may be called from different goroutines;
// every method is safe for concurrent use.
type Attachment struct {
	c     *Console
	id    Identity
	since time.Time
	spy   bool
	limit int
	// seq numbers the attachment in its manager (from 1): its attach and
	// detach events carry it, so they pair up in the log and no two
	// attach events read the same.
	seq uint64
	// attachEvent is the text of the attach event written where this
	// attachment's live output begins (set and read by Attach only); the
	// replay ends at it, so it must be unique (seq).
	attachEvent string

	// wmu serialises Write: the escape parser and a pending confirmation
	// belong to one typist.
	wmu     sync.Mutex
	parser  *escape.Parser
	esc     [2]byte
	confirm byte // a power-menu key awaiting [y/N]; 0: none
	// Test seams of the escape engine: typed data, commands and [y/N]
	// answers go here instead of being acted on, when set.
	send        func([]byte)
	commandHook func(cmd string) bool
	answerHook  func(b byte)

	lastInput atomic.Int64 // unix nanos

	mu       sync.Mutex // guards the fields below
	mode     Mode
	buf      []byte // unread output for this user
	held     []byte // notices kept while the replay is prepared
	holding  bool   // the replay is being prepared: Read waits
	missed   int64  // output bytes missed in all
	lagMiss  int64  // missed since the last catch-up
	lagging  bool
	ended    bool
	cause    error
	roWarned time.Time
	readable chan struct{} // capacity 1
	done     chan struct{}
}

// Attach attaches id to the console. The user needs read access; write
// access for read-write. The attachment starts with a banner (the
// console's state and how to get help), then the replay, then live output.
func (c *Console) Attach(id Identity, o AttachOptions) (*Attachment, error) {
	a := &Attachment{c: c, id: id, seq: c.m.attachSeq.Add(1), since: time.Now(), spy: o.Spy, limit: c.m.opts.AttachBuffer,
		mode: ModeRO, readable: make(chan struct{}, 1), done: make(chan struct{})}
	a.lastInput.Store(a.since.UnixNano())
	var (
		taken *Attachment
		note  string
	)
	c.outMu.Lock()
	c.mu.Lock()
	if c.stopped {
		c.mu.Unlock()
		c.outMu.Unlock()
		return nil, fmt.Errorf("attach %s: %w", c.name, ErrClosed)
	}
	// Under mu, so that a reload's recheck (which takes mu to list the
	// attachments) either sees this one or came before this read.
	perm := c.m.perms(id.User, c.name)
	if perm&config.Read == 0 {
		c.mu.Unlock()
		c.outMu.Unlock()
		c.logger().Warn("conserver: attach refused", "user", id.User, "remote", id.Remote, "err", ErrDenied)
		return nil, fmt.Errorf("attach %s: %w", c.name, ErrDenied)
	}
	mayWrite := perm&config.Write != 0
	switch {
	case o.Spy || o.Mode == ModeRO:
	case !mayWrite:
		if o.Mode == ModeRW || o.Force {
			note = "you have read access only"
		}
	case c.writer == nil:
		a.mode, c.writer = ModeRW, a
	case o.Force:
		taken = c.writer
		taken.setMode(ModeRO)
		a.mode, c.writer = ModeRW, a
	default:
		note = fmt.Sprintf("read-only: %s is writing (%sf takes over)", c.writer.id.User, formatEscape(c.set.esc))
	}
	// a is not visible to anyone yet: no lock needed for its fields.
	esc := c.set.esc
	a.buf = appendNotice(a.buf, fmt.Sprintf("%s: %s; you are %s; %s? for help", c.name, c.statusLineLocked(), a.mode, formatEscape(esc)))
	if note != "" {
		a.buf = appendNotice(a.buf, c.name+": "+note)
	}
	a.holding = o.Replay > 0
	heldFrom := len(a.buf)
	mode := a.mode // a's fields are shared from here on
	c.all = append(c.all, a)
	c.publishLocked()
	c.mu.Unlock()
	// Still under outMu, so that in the log this event sits exactly where
	// the live output begins: the replay ends at it (Event only buffers).
	// Its number tells it from the event of another attachment with the
	// same identity and mode (two sessions on one SSH connection).
	a.attachEvent = fmt.Sprintf("%s (%s) #%d", id, mode, a.seq)
	c.event(logstore.EventAttach, a.attachEvent)
	c.outMu.Unlock()

	c.logger().Info("conserver: attach", "user", id.User, "remote", id.Remote, "via", id.Via, "mode", mode.String(), "attachment", a.seq)
	if taken != nil {
		taken.notice(fmt.Sprintf("%s: %s took write access; you are read-only now (%sf takes it back)", c.name, id.User, formatEscape(esc)))
		c.event(logstore.EventForce, fmt.Sprintf("%s took write access from %s", id.User, taken.id.User))
	}
	if !o.Spy {
		c.tellOthers(a, fmt.Sprintf("%s attached (%s)", id.User, mode))
	}
	if o.Replay > 0 {
		a.insertReplay(o.Replay, heldFrom)
	}
	return a, nil
}

// publishLocked refreshes the output path's snapshot; mu is held.
func (c *Console) publishLocked() {
	s := slices.Clone(c.all)
	c.atts.Store(&s)
}

// statusLineLocked is the console's state in a few words; mu is held.
func (c *Console) statusLineLocked() string {
	switch c.st {
	case Up:
		return "connected since " + c.upSince.UTC().Format("2006-01-02 15:04:05Z")
	case Connecting:
		return "connecting"
	case Stopped:
		return "stopped"
	}
	s := c.st.String() + " since " + c.since.UTC().Format("2006-01-02 15:04:05Z")
	if c.reason != "" {
		s += ": " + c.reason
	}
	if !c.nextTry.IsZero() {
		s += fmt.Sprintf(" (next try in %v)", time.Until(c.nextTry).Round(time.Second))
	}
	return s
}

// appendReplayLine appends an output line of a replay; a line Tail cut
// (a console that printed for long without a line feed, a progress bar
// redrawn with CR) gets a notice saying how much of its beginning is not
// replayed.
func appendReplayLine(b []byte, console string, l logstore.Line) []byte {
	if l.Dropped > 0 {
		b = appendNotice(b, fmt.Sprintf("%s: a long line: its first %d bytes are not replayed", console, l.Dropped))
	}
	return append(b, l.Text...)
}

// insertReplay puts the console's last n lines after the banner and
// before the live output that arrived meanwhile. Output can arrive
// between the registration and the read of the log: it is then in both,
// so the replay ends at this attachment's attach event (replayLines);
// only if that is not found is the overlap cut by content (bounded).
func (a *Attachment) insertReplay(n, heldFrom int) {
	lines, seam, err := a.replayLines(n)
	var replay []byte
	if err != nil && !errors.Is(err, logstore.ErrNoSuchLog) {
		replay = appendNotice(replay, a.c.name+": replay unavailable: "+err.Error())
		a.c.logger().Warn("conserver: replay", "user", a.id.User, "err", err)
	} else if len(lines) > 0 {
		replay = appendNotice(replay, fmt.Sprintf("%s: the last %d lines", a.c.name, len(lines)))
	}
	var tailOut []byte // the output after the last event: where an overlap can be
	for _, l := range lines {
		if l.Event != "" {
			replay = appendNotice(replay, fmt.Sprintf("%s %s %s", l.Time.UTC().Format("15:04:05"), l.Event, l.Text))
			tailOut = tailOut[:0]
			continue
		}
		replay = appendReplayLine(replay, a.c.name, l)
		tailOut = append(tailOut, l.Text...)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if !a.holding {
		return
	}
	live := a.buf[heldFrom:]
	cut := 0
	if !seam {
		// The attach event was not found in the log: fall back to the
		// content overlap.
		cut = overlap(tailOut, live)
	}
	out := make([]byte, 0, heldFrom+len(replay)+len(live)+len(a.held))
	out = append(out, a.buf[:heldFrom]...)
	out = append(out, replay[:len(replay)-cut]...)
	out = append(out, live...)
	out = append(out, a.held...)
	a.buf, a.held, a.holding = out, nil, false
	a.signal()
}

// replayLines returns the console's last n lines up to this attachment's
// attach event, which the log holds where its live output begins (what
// follows it is in the live output already). When lines came after it
// before the log was read, it reads further back (bounded by
// maxSeamLines) so that n lines before it are shown if the log has them;
// seam is false if the event was not found.
func (a *Attachment) replayLines(n int) (lines []logstore.Line, seam bool, err error) {
	for k := n; ; k *= 4 {
		lines, err = a.c.Tail(k)
		if err != nil {
			return nil, false, err
		}
		for i := len(lines) - 1; i >= 0; i-- {
			if lines[i].Event != logstore.EventAttach || string(lines[i].Text) != a.attachEvent {
				continue
			}
			if i+1 >= n || len(lines) < k || k >= maxSeamLines {
				return lines[max(0, i+1-n) : i+1], true, nil
			}
			break // fewer than n lines before it in this read: read further back
		}
		if len(lines) < k || k >= maxSeamLines {
			return lines[max(0, len(lines)-n):], false, nil
		}
	}
}

// maxSeamLines bounds how far back replayLines looks for the attach event.
const maxSeamLines = 1 << 14

// maxOverlap bounds the seam search between a replay and live output.
const maxOverlap = 16 << 10

// overlap returns the longest k such that the last k bytes of old are the
// first k bytes of live.
func overlap(old, live []byte) int {
	for k := min(len(old), len(live), maxOverlap); k > 0; k-- {
		if bytes.Equal(old[len(old)-k:], live[:k]) {
			return k
		}
	}
	return 0
}

// deliver appends console output for this user. It never blocks: when the
// buffer is full the output is dropped and counted. It returns false when
// the user missed so much that the attachment must be dropped.
func (a *Attachment) deliver(p []byte) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.ended {
		return true
	}
	if len(a.buf)+len(p) > a.limit {
		a.missed += int64(len(p))
		a.lagMiss += int64(len(p))
		a.lagging = true
		if a.lagMiss > a.c.m.opts.MaxMissed {
			a.endLocked(fmt.Errorf("%s: dropped: %w: missed %d bytes of output", a.c.name, ErrTooSlow, a.lagMiss))
			return false
		}
		return true
	}
	if a.lagging {
		a.buf = appendNotice(a.buf, fmt.Sprintf("%s: you missed %d bytes of output (your connection is too slow)", a.c.name, a.lagMiss))
		a.lagging, a.lagMiss = false, 0
	}
	a.buf = append(a.buf, p...)
	a.signal()
	return true
}

func (a *Attachment) signal() {
	select {
	case a.readable <- struct{}{}:
	default:
	}
}

// appendNotice formats a one-line notice on a line of its own.
func appendNotice(b []byte, text string) []byte {
	b = append(b, "\r\n["...)
	b = append(b, text...)
	return append(b, "]\r\n"...)
}

// notice sends this user one line.
func (a *Attachment) notice(text string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.noticeLocked(text)
}

func (a *Attachment) noticeLocked(text string) {
	if a.ended {
		return
	}
	if a.holding {
		a.held = appendNotice(a.held, text)
		return
	}
	if len(a.buf) > a.limit+noticeSlack {
		return
	}
	a.buf = appendNotice(a.buf, text)
	a.signal()
}

// block sends this user a titled block of lines.
func (a *Attachment) block(title string, lines []string) {
	var b bytes.Buffer
	b.WriteString(title)
	for _, l := range lines {
		b.WriteString("\r\n  ")
		b.WriteString(l)
	}
	a.notice(b.String())
}

// Read returns what this user sees: console output, notices and
// escape-command answers. It blocks until something is there; once the
// attachment has ended it returns what is left, then io.EOF.
func (a *Attachment) Read(p []byte) (int, error) {
	for {
		a.mu.Lock()
		if !a.holding && len(a.buf) > 0 {
			n := copy(p, a.buf)
			a.buf = a.buf[n:]
			if len(a.buf) == 0 {
				a.buf = nil // an idle attachment keeps no buffer
			}
			a.mu.Unlock()
			return n, nil
		}
		ended := a.ended && !a.holding
		a.mu.Unlock()
		if ended {
			return 0, io.EOF
		}
		<-a.readable
	}
}

// Write takes typed bytes: escape commands are answered to this user only;
// everything else goes to the console if this attachment writes (it is
// queued, never written to the BMC from here). It returns len(p) unless
// the attachment has ended.
func (a *Attachment) Write(p []byte) (int, error) {
	a.wmu.Lock()
	defer a.wmu.Unlock()
	if err := a.Cause(); err != nil {
		return 0, err
	}
	a.lastInput.Store(time.Now().UnixNano())
	return a.typed(p), nil
}

// Break sends a serial break (SysRq on Linux) after the input typed
// before it. Needs write mode.
func (a *Attachment) Break() error {
	return a.c.sendBreak(a)
}

// Mode is the attachment's current access.
func (a *Attachment) Mode() Mode {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.mode
}

func (a *Attachment) setMode(m Mode) {
	a.mu.Lock()
	a.mode = m
	a.mu.Unlock()
}

// Identity is who attached.
func (a *Attachment) Identity() Identity { return a.id }

// Console is the console attached to.
func (a *Attachment) Console() *Console { return a.c }

// Close detaches. Read then returns what is left, then io.EOF.
func (a *Attachment) Close() error {
	a.c.detach(a, fmt.Errorf("%s: %w", a.c.name, ErrDetached))
	return nil
}

// Done is closed when the attachment has ended; Cause says why.
func (a *Attachment) Done() <-chan struct{} { return a.done }

// Cause is why the attachment ended, one line for the user (nil while
// attached). It wraps ErrDetached, ErrTooSlow, ErrDenied or ErrClosed.
func (a *Attachment) Cause() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.cause
}

// end ends the attachment with cause (told to the user as a last line).
func (a *Attachment) end(cause error) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.endLocked(cause)
}

func (a *Attachment) endLocked(cause error) bool {
	if a.ended {
		return false
	}
	if a.holding {
		a.buf = append(a.buf, a.held...)
		a.held, a.holding = nil, false
	}
	a.buf = appendNotice(a.buf, cause.Error())
	a.ended, a.cause = true, cause
	close(a.done)
	a.signal()
	return true
}

// info describes the attachment.
func (a *Attachment) info() AttachInfo {
	a.mu.Lock()
	defer a.mu.Unlock()
	return AttachInfo{User: a.id.User, Via: a.id.Via, Remote: a.id.Remote, Since: a.since,
		Idle: time.Since(time.Unix(0, a.lastInput.Load())), Mode: a.mode, Lagging: a.lagging, Missed: a.missed}
}

// Who lists the attachments, oldest first.
func (c *Console) Who() []AttachInfo {
	var out []AttachInfo
	for _, a := range *c.atts.Load() {
		out = append(out, a.info())
	}
	return out
}

// detach removes a from the console, ending it with cause.
func (c *Console) detach(a *Attachment, cause error) {
	a.end(cause)
	c.mu.Lock()
	i := slices.Index(c.all, a)
	if i < 0 {
		c.mu.Unlock()
		return
	}
	c.all = slices.Delete(c.all, i, i+1)
	c.publishLocked()
	wasWriter := c.writer == a
	if wasWriter {
		c.writer = nil
	}
	c.mu.Unlock()
	mode := ModeRO
	if wasWriter {
		mode = ModeRW
	}
	c.event(logstore.EventDetach, fmt.Sprintf("%s (%s) #%d: %v", a.id, mode, a.seq, cause))
	c.logger().Info("conserver: detach", "user", a.id.User, "remote", a.id.Remote, "via", a.id.Via, "attachment", a.seq, "err", cause)
	if !a.spy {
		c.tellOthers(a, fmt.Sprintf("%s detached", a.id.User))
	}
}

// tellOthers sends a notice to every attachment but a.
func (c *Console) tellOthers(a *Attachment, text string) {
	for _, o := range *c.atts.Load() {
		if o != a {
			o.notice(c.name + ": " + text)
		}
	}
}

// takeWrite makes a the writer: if nobody writes, or (force) from the
// current writer, who becomes read-only and is told.
func (c *Console) takeWrite(a *Attachment, force bool) {
	c.mu.Lock()
	// Both under mu: a reload's recheck (which takes mu) then either sees
	// a as the writer or comes before, and a detached attachment (closed
	// while its command ran) never becomes the writer.
	if !slices.Contains(c.all, a) {
		c.mu.Unlock()
		return
	}
	if c.m.perms(a.id.User, c.name)&config.Write == 0 {
		c.mu.Unlock()
		a.notice(c.name + ": you have read access only")
		return
	}
	prev := c.writer
	esc := c.set.esc
	switch {
	case prev == a:
		c.mu.Unlock()
		a.notice(c.name + ": you are already read-write")
		return
	case prev != nil && !force:
		c.mu.Unlock()
		a.notice(fmt.Sprintf("%s: %s is writing (%sf takes over)", c.name, prev.id.User, formatEscape(esc)))
		return
	}
	if prev != nil {
		prev.setMode(ModeRO)
	}
	c.writer = a
	a.setMode(ModeRW)
	c.mu.Unlock()
	a.notice(c.name + ": you are read-write")
	if prev != nil {
		prev.notice(fmt.Sprintf("%s: %s took write access; you are read-only now (%sf takes it back)", c.name, a.id.User, formatEscape(esc)))
		c.event(logstore.EventForce, fmt.Sprintf("%s took write access from %s", a.id.User, prev.id.User))
		c.logger().Info("conserver: write access forced", "user", a.id.User, "remote", a.id.Remote, "from", prev.id.User)
	}
}

// releaseWrite makes a read-only.
func (c *Console) releaseWrite(a *Attachment) {
	c.mu.Lock()
	if c.writer == a {
		c.writer = nil
	}
	c.mu.Unlock()
	a.setMode(ModeRO)
	a.notice(c.name + ": you are read-only")
}

// recheck applies cfg's access rules to every attachment: those without
// read access are detached, writers without write access become
// read-only. Each is told why in one line.
func (c *Console) recheck(cfg *config.Config) (detached, downgraded int) {
	c.mu.Lock()            // an Attach or takeWrite that read the old rules is done
	atts := *c.atts.Load() // published under mu; never changed in place
	c.mu.Unlock()
	for _, a := range atts {
		p := cfg.Perms(a.id.User, c.name)
		if p&config.Read == 0 {
			c.detach(a, fmt.Errorf("%s: access revoked by a configuration change: %w", c.name, ErrDenied))
			detached++
			continue
		}
		if p&config.Write != 0 {
			continue
		}
		c.mu.Lock()
		was := c.writer == a
		if was {
			c.writer = nil
		}
		c.mu.Unlock()
		if was {
			a.setMode(ModeRO)
			a.notice(c.name + ": write access revoked by a configuration change; you are read-only now")
			c.event(logstore.EventNote, fmt.Sprintf("%s: write access revoked by a configuration change", a.id.User))
			c.logger().Info("conserver: write access revoked", "user", a.id.User, "remote", a.id.Remote)
			downgraded++
		}
	}
	return detached, downgraded
}

func formatEscape(e [2]byte) string { return escape.Format(e) }
