package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/term"

	"github.com/solgate/solgate/conserver"
	"github.com/solgate/solgate/conserver/escape"
	"github.com/solgate/solgate/ipmilan"
	"github.com/solgate/solgate/logstore"
)

func init() {
	register(command{name: "sol", summary: "interactive Serial-over-LAN console straight to one BMC", run: runSol})
}

const solUsage = `Usage: solgate sol [flags] HOST

Opens the Serial-over-LAN console of one BMC, like ipmiconsole: for debugging
a node or a BMC without the daemon. HOST is the BMC address (HOST:PORT
allowed), or a console name with --bmc or -c.

On a terminal the console runs in raw mode. Escape commands (default ^Ec,
that is Ctrl-E then c; change with --escape):
  ^Ec.    detach (quit)
  ^Ecl0   send a serial break (SysRq on Linux)
  ^Ec?    list these commands

When the session drops (BMC unreachable, rebooted, SOL deactivated) solgate
says so and reconnects with backoff. A payload held by another client is not
taken unless --steal is given (a solgate sol that was killed leaves its
session holding the payload until the BMC times it out; with -c, a payload
held by that configuration's solgate serve is named as the daemon's); a
console taken from us is not taken back unless --steal is given.

Without a terminal, stdin is copied to the console and the console to stdout,
so scripts and tests can drive it. Input that arrives before the session is
up (or while it reconnects) is queued, up to 64 KiB, and sent once it is.
When stdin ends, solgate waits until the BMC has accepted everything typed,
then --eof-wait for the output it causes, and exits (--follow keeps it open
until interrupted). Once stdin has ended it does not reconnect.

Exit status: 0 when the console was reached and everything typed was
accepted; 1 when the console was never reached (unreachable BMC, wrong port,
payload held elsewhere), typed input was not accepted, or the session ended
for good; 2 for usage errors; 130 or 143 when ended by SIGINT or SIGTERM.

With --log-dir the console is also recorded into the log store (compressed,
timestamped, with attach, detach, reconnects and data gaps as events), as the
daemon would: read it back with solgate log or zstdcat. Then a terminal or
pipe that stops reading never stalls the recording: output to it waits in a
1 MiB buffer, and what does not fit is left out of stdout with a notice (the
log has it). Without --log-dir, a stalled stdout holds the BMC back (SOL flow
control), so nothing is lost.

Examples:
  solgate sol -u admin --password-file ~/.bmcpw node42-bmc
  solgate sol -c /etc/solgate/solgate.toml node42 --steal
  printf 'root\r' | IPMI_PASSWORD=... solgate sol -u admin 10.1.2.42 --eof-wait 3s
  solgate sol -c /etc/solgate/solgate.toml node42 --follow --log-dir /var/log/solgate </dev/null
  solgate sol -u admin --bmc 10.1.2.42:623 node42 --log-dir ./logs

`

func runSol(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("sol", solUsage+connFlagsHelp, stderr)
	var cf connFlags
	cf.register(fs)
	steal := fs.Bool("steal", false, "take the SOL payload from another client (and back, if it is taken)")
	escSpec := fs.String("escape", escape.Default, "escape sequence: two characters, ^X for control characters")
	eofWait := fs.Duration("eof-wait", time.Second, "without a terminal: how long to wait for output after stdin ends")
	follow := fs.Bool("follow", false, "without a terminal: stay connected after stdin ends")
	noReconnect := fs.Bool("no-reconnect", false, "exit instead of reconnecting when the session drops")
	keepalive := fs.Duration("keepalive", 15*time.Second, "IPMI keepalive interval; the session counts as lost after twice this without an answer")
	logDir := fs.String("log-dir", "", "also record the console into the solgate log store under `DIR` (read it with solgate log)")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return usageErr(err)
	}
	cf.set = setFlags(fs)
	if len(pos) != 1 {
		return &exitError{code: 2, msg: "sol: want exactly one HOST (see solgate sol --help)"}
	}
	if err := cf.check(1); err != nil {
		return &exitError{code: 2, msg: "sol: " + err.Error()}
	}
	if *eofWait < 0 || *eofWait > time.Hour {
		return &exitError{code: 2, msg: fmt.Sprintf("sol: --eof-wait %v: want 0 to 1h", *eofWait)}
	}
	esc, err := escape.Parse(*escSpec)
	if err != nil {
		return &exitError{code: 2, msg: "sol: " + err.Error()}
	}
	targets, err := cf.targets(pos, os.Stdin, stderr)
	if err != nil {
		return &exitError{code: 2, msg: "sol: " + err.Error()}
	}
	cfg := targets[0].Config
	cfg.KeepAlive = *keepalive
	if cfg.Interface == ipmilan.LAN {
		return &exitError{code: 2, msg: "sol: SOL needs --interface lanplus (IPMI 2.0)"}
	}
	tty := term.IsTerminal(int(os.Stdin.Fd()))
	r := &solRunner{name: pos[0], cfg: cfg, opts: ipmilan.SOLOptions{Steal: *steal}, stdout: stdout, stderr: stderr,
		tty: tty, reconnect: !*noReconnect, esc: esc, stateDir: cf.stateDir}
	if *logDir != "" {
		if err := logstore.CheckConsoleName(pos[0]); err != nil {
			return &exitError{code: 2, msg: "sol: --log-dir: " + err.Error() + " (with an address as HOST, name the console: --bmc ADDRESS NAME)"}
		}
		store, err := logstore.Open(*logDir, logstore.Options{})
		if err != nil {
			return fmt.Errorf("sol: %w", err)
		}
		defer store.Close()
		w, err := store.Writer(pos[0])
		if err != nil {
			return fmt.Errorf("sol: %w", err)
		}
		defer w.Close()
		r.log = w
	}
	if tty {
		old, err := term.MakeRaw(int(os.Stdin.Fd()))
		if err != nil {
			return err
		}
		defer term.Restore(int(os.Stdin.Fd()), old)
		r.nl = "\r\n"
	} else {
		r.nl = "\n"
		r.eofWait, r.follow = *eofWait, *follow
	}
	return r.run(ctx, os.Stdin)
}

// solRunner keeps one console connected and copies bytes both ways.
type solRunner struct {
	name      string
	cfg       ipmilan.Config
	opts      ipmilan.SOLOptions
	stdout    io.Writer
	stderr    io.Writer
	tty       bool
	nl        string
	reconnect bool
	esc       [2]byte
	eofWait   time.Duration
	follow    bool

	log *logstore.Writer // records the console when --log-dir is set
	// stateDir is the daemon's (with -c), where it records the sessions
	// that hold its consoles' payloads.
	stateDir string

	in   inputQueue    // typed input not yet handed to a session
	eof  chan struct{} // closed when stdin has ended (without --follow or a terminal)
	lost atomic.Int64  // typed bytes no BMC accepted

	mu   sync.Mutex
	sess *solSession // the live console, nil while connecting or reconnecting
}

// solSession is one SOL session and the typed input handed to it.
type solSession struct {
	c      *ipmilan.SOL
	handed atomic.Int64 // bytes taken from the input queue for this session
}

// unaccepted is what was handed to the session and neither accepted by the
// BMC nor reported dropped (yet).
func (s *solSession) unaccepted() int64 {
	st := s.c.Stats()
	return max(0, s.handed.Load()-int64(st.BytesOut)-int64(st.InputDropped))
}

// event writes a marked line into the console log, if there is one.
func (r *solRunner) event(kind logstore.EventKind, format string, a ...any) {
	if r.log != nil {
		r.log.Event(kind, fmt.Sprintf(format, a...))
	}
}

func (r *solRunner) say(format string, a ...any) {
	fmt.Fprintf(r.stderr, "[solgate: "+format+"]"+r.nl, a...)
}

func (r *solRunner) current() *solSession {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.sess
}

func (r *solRunner) setCurrent(s *solSession) {
	r.mu.Lock()
	r.sess = s
	r.mu.Unlock()
}

func (r *solRunner) stdinEnded() bool {
	select {
	case <-r.eof:
		return true
	default:
		return false
	}
}

// errNeverReached wraps the last connection error when the console was
// never reached: solgate sol then exits 1 whatever else happened.
var errNeverReached = errors.New("console never reached")

func (r *solRunner) run(ctx context.Context, stdin io.Reader) (err error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	r.eof = make(chan struct{})
	r.in.init(maxQueuedInput)
	errDetach := errors.New("detached")
	go r.input(ctx, stdin, func(err error) { cancel(err) }, errDetach)

	out := r.stdout
	if r.log != nil {
		// The log store never blocks nor fails the console on disk
		// trouble; a terminal that stops reading must not stall it either
		// (nor, through SOL flow control, the BMC): output to it goes
		// through a bounded buffer that drops, with a notice, what does
		// not fit. The log keeps everything.
		tw := newTermWriter(r.stdout, termBuffer, r.nl)
		defer tw.Close(2 * time.Second)
		out = io.MultiWriter(r.log, tw)
	}
	connected := false
	var lastErr error
	defer func() {
		if !connected {
			if se := interrupted(ctx, fmt.Sprintf("%v: %v", errNeverReached, lastErr)); se != nil {
				err = fmt.Errorf("sol: %s: %w", r.name, se)
			} else if err == nil {
				err = fmt.Errorf("sol: %s: %w: %v", r.name, errNeverReached, lastErr)
			}
		}
		if n := r.lost.Load() + int64(r.in.len()); err == nil && n > 0 {
			err = fmt.Errorf("sol: %s: %d bytes of typed input were not accepted by the BMC", r.name, n)
		}
		if connected {
			why := "stdin ended"
			switch {
			case errors.Is(context.Cause(ctx), errDetach) && r.tty:
				why = "detached by the user"
			case interrupted(ctx, "") != nil:
				why = interrupted(ctx, "").Error()
			case err != nil:
				why = err.Error()
			}
			r.event(logstore.EventDetach, "solgate sol detached: %s", why)
		}
	}()
	// finish decides how a run ends once stdin has ended and the console
	// is gone: reconnecting has nothing left to deliver.
	finish := func(cause error) error {
		if !connected {
			return fmt.Errorf("sol: %s: %w: %v", r.name, errNeverReached, cause)
		}
		if n := r.in.len(); n > 0 {
			return fmt.Errorf("sol: %s: %d bytes of typed input not sent: %w", r.name, n, cause)
		}
		return nil
	}

	backoff := time.Second
	for attempt := 0; ; attempt++ {
		c, err := ipmilan.DialSOL(ctx, r.cfg, r.opts)
		if err != nil {
			lastErr = err
			if ctx.Err() != nil {
				return r.endErr(ctx, errDetach)
			}
			if errors.Is(err, ipmilan.ErrSOLActive) && !r.opts.Steal {
				var active *ipmilan.SOLActiveError
				if r.stateDir != "" && errors.As(err, &active) && conserver.RecordedSession(r.stateDir, r.name, r.cfg.Addr, active.Owner) {
					return fmt.Errorf("sol: %s: %w: solgate serve's own session for this console (its state_dir records it); attach through the daemon's SSH gateway instead, or --steal takes it now (the daemon then takes it back as its steal setting says)", r.name, err)
				}
				return fmt.Errorf("sol: %s: %w; a solgate sol that was killed leaves its session holding the payload until the BMC times it out; --steal takes it now", r.name, err)
			}
			if permanent(err) || !r.reconnect {
				return fmt.Errorf("sol: %s: %w", r.name, err)
			}
			if r.stdinEnded() {
				return finish(err)
			}
			wait := jitter(backoff)
			r.say("%s: %v; retrying in %v", r.name, err, wait.Round(100*time.Millisecond))
			select {
			case <-ctx.Done():
				return r.endErr(ctx, errDetach)
			case <-r.eof:
				return finish(err)
			case <-time.After(wait):
			}
			backoff = min(backoff*2, 2*time.Minute)
			continue
		}
		suite := c.Session().CipherSuite()
		if r.tty {
			r.say("connected to %s (cipher suite %d); %s? for help", r.name, suite, escape.Format(r.esc))
		}
		if !connected {
			r.event(logstore.EventAttach, "solgate sol attached: SOL session established (cipher suite %d)", suite)
		} else {
			r.event(logstore.EventReconnect, "SOL session re-established by solgate sol (cipher suite %d)", suite)
		}
		connected = true
		sess := &solSession{c: c}
		r.setCurrent(sess)
		started := time.Now()
		var wg sync.WaitGroup
		wg.Add(2)
		go func() {
			defer wg.Done()
			for ev := range c.Events() {
				switch ev.Kind {
				case ipmilan.SOLOverrun, ipmilan.SOLGap:
					r.say("%s: %s: %s", r.name, ev.Kind, ev.Detail)
					r.event(logstore.EventGap, "%s: %s", ev.Kind, ev.Detail)
				case ipmilan.SOLInputDropped:
					r.say("%s: %s: %s", r.name, ev.Kind, ev.Detail)
				case ipmilan.SOLStolen:
					r.event(logstore.EventStolen, "%s", ev.Detail)
				}
			}
		}()
		connDone := make(chan struct{})
		go func() {
			defer wg.Done()
			r.forward(sess, connDone)
		}()
		go func() {
			select {
			case <-ctx.Done():
				c.Close() // detach or interrupt: end the copy below
			case <-connDone:
			}
		}()
		_, copyErr := io.Copy(out, c)
		close(connDone)
		r.setCurrent(nil)
		c.Close()
		wg.Wait()
		st := c.Stats()
		r.lost.Add(sess.unaccepted() + int64(st.InputDropped))
		if ctx.Err() != nil {
			return r.endErr(ctx, errDetach)
		}
		if time.Since(started) > time.Minute {
			backoff = time.Second // it was stable: start over
		}
		cause := c.Err()
		if cause == nil {
			cause = copyErr
		}
		lastErr = cause
		if errors.Is(cause, ipmilan.ErrSOLStolen) && !r.opts.Steal {
			return fmt.Errorf("sol: %s: %w (use --steal to take it back)", r.name, cause)
		}
		if !r.reconnect {
			return fmt.Errorf("sol: %s: %w", r.name, cause)
		}
		if r.stdinEnded() {
			r.say("%s: %v", r.name, cause)
			r.event(logstore.EventReconnect, "SOL session lost: %v", cause)
			return finish(cause)
		}
		wait := jitter(backoff)
		r.say("%s: %v; reconnecting in %v", r.name, cause, wait.Round(100*time.Millisecond))
		r.event(logstore.EventReconnect, "SOL session lost: %v; reconnecting in %v", cause, wait.Round(100*time.Millisecond))
		select {
		case <-ctx.Done():
			return r.endErr(ctx, errDetach)
		case <-r.eof:
			return finish(cause)
		case <-time.After(wait):
		}
		backoff = min(backoff*2, 2*time.Minute)
	}
}

// endErr is how a run ends when its context did: nil for a detach or the
// end of stdin, the signal for an interrupt (exit 130 or 143), or the
// cause.
func (r *solRunner) endErr(ctx context.Context, detach error) error {
	if err := interrupted(ctx, ""); err != nil {
		return fmt.Errorf("sol: %s: %w", r.name, err)
	}
	if cause := context.Cause(ctx); cause != nil && !errors.Is(cause, detach) && !errors.Is(cause, context.Canceled) {
		return cause
	}
	return nil
}

// forward hands queued input to the session until stop is closed or the
// session ends. Bytes Write did not take count as lost.
func (r *solRunner) forward(s *solSession, stop <-chan struct{}) {
	for {
		chunk := r.in.take(4096, &s.handed)
		if len(chunk) == 0 {
			select {
			case <-r.in.avail:
				continue
			case <-stop:
				return
			case <-s.c.Done():
				return
			}
		}
		n, err := s.c.Write(chunk)
		if err != nil {
			s.handed.Add(int64(n - len(chunk)))
			r.lost.Add(int64(len(chunk) - n))
			return
		}
	}
}

// drained reports whether every typed byte has reached a BMC (or been
// given up on, which run reports).
func (r *solRunner) drained() bool {
	if r.in.len() > 0 {
		return false
	}
	s := r.current()
	return s == nil || s.unaccepted() == 0
}

// input copies stdin to the input queue, acting on escape commands. It
// ends the run (stop) on detach, or when stdin ends: once what was typed
// has reached the BMC, after eofWait for the output it causes.
func (r *solRunner) input(ctx context.Context, stdin io.Reader, stop func(error), detach error) {
	p := escape.New(r.esc, "l")
	buf := make([]byte, 4096)
	for {
		n, err := stdin.Read(buf)
		for _, it := range p.Feed(buf[:n]) {
			if it.Command == "" {
				// On a terminal never block (the escape must always work):
				// what does not fit is dropped, and said so. From a pipe,
				// wait: a script's input is not to be lost.
				if taken := r.in.put(ctx, it.Data, !r.tty); taken < len(it.Data) && ctx.Err() == nil {
					r.say("%d bytes of input dropped: the console is not connected and %d bytes are already waiting", len(it.Data)-taken, r.in.len())
				}
				continue
			}
			switch it.Command {
			case ".":
				r.say("detached")
				stop(detach)
				return
			case "?":
				e := escape.Format(r.esc)
				r.say("%s. detach   %sl0 send break   %s? this help", e, e, e)
			case "l0":
				if s := r.current(); s != nil {
					bctx, cancel := context.WithTimeout(ctx, 10*time.Second)
					if err := s.c.Break(bctx); err != nil {
						r.say("break failed: %v", err)
					} else {
						r.say("break sent")
					}
					cancel()
				} else {
					r.say("break not sent: the console is not connected")
				}
			default:
				r.say("unknown escape command %q; %s? for help", it.Command, escape.Format(r.esc))
			}
		}
		if err != nil {
			if r.tty {
				stop(detach)
				return
			}
			if r.follow {
				return
			}
			close(r.eof)
			tick := time.NewTicker(20 * time.Millisecond)
			for !r.drained() {
				select {
				case <-tick.C:
				case <-ctx.Done():
					tick.Stop()
					return
				}
			}
			tick.Stop()
			select {
			case <-time.After(r.eofWait):
			case <-ctx.Done():
			}
			stop(detach)
			return
		}
	}
}

// maxQueuedInput bounds typed input waiting for a session: as much as the
// SOL engine itself queues.
const maxQueuedInput = 64 << 10

// inputQueue is typed input waiting for a session, bounded. One goroutine
// puts (input), one takes (the session's forwarder).
type inputQueue struct {
	mu    sync.Mutex
	buf   []byte // guarded by mu
	max   int
	avail chan struct{} // capacity 1: bytes were added
	room  chan struct{} // capacity 1: bytes were taken
}

func (q *inputQueue) init(max int) {
	q.max = max
	q.avail = make(chan struct{}, 1)
	q.room = make(chan struct{}, 1)
}

// put queues p, waiting for room when block is set (until ctx ends), else
// taking what fits. It returns how much it queued.
func (q *inputQueue) put(ctx context.Context, p []byte, block bool) int {
	done := 0
	for {
		q.mu.Lock()
		n := min(q.max-len(q.buf), len(p)-done)
		q.buf = append(q.buf, p[done:done+n]...)
		q.mu.Unlock()
		done += n
		if n > 0 {
			notify(q.avail)
		}
		if done == len(p) || !block {
			return done
		}
		select {
		case <-q.room:
		case <-ctx.Done():
			return done
		}
	}
}

// take removes up to n bytes and adds their count to handed in the same
// step, so that a reader of len and handed never sees them nowhere.
func (q *inputQueue) take(n int, handed *atomic.Int64) []byte {
	q.mu.Lock()
	defer q.mu.Unlock()
	n = min(n, len(q.buf))
	if n == 0 {
		return nil
	}
	out := append([]byte(nil), q.buf[:n]...)
	q.buf = append(q.buf[:0], q.buf[n:]...)
	handed.Add(int64(n))
	notify(q.room)
	return out
}

func (q *inputQueue) len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.buf)
}

func notify(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// permanent reports errors that retrying cannot fix (and that could lock
// the account out if hammered).
func permanent(err error) bool {
	return errors.Is(err, ipmilan.ErrAuth) || errors.Is(err, ipmilan.ErrKG) || errors.Is(err, ipmilan.ErrInsecure) ||
		errors.Is(err, ipmilan.ErrUnsupported) || errors.Is(err, ipmilan.ErrSOLActive)
}

// jitter spreads reconnects: a random duration in [d/2, d].
func jitter(d time.Duration) time.Duration {
	return d/2 + time.Duration(rand.Int64N(int64(d/2)+1))
}
