package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"sync"
	"time"

	"golang.org/x/term"

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
taken unless --steal is given; a console taken from us is not taken back
unless --steal is given.

Without a terminal, stdin is copied to the console and the console to stdout,
so scripts and tests can drive it; when stdin ends, solgate waits --eof-wait
for trailing output and exits (--follow keeps it open until interrupted).

With --log-dir the console is also recorded into the log store (compressed,
timestamped, with reconnects and data gaps as events), as the daemon would:
read it back with solgate log or zstdcat.

Examples:
  solgate sol -u admin --password-file ~/.bmcpw node42-bmc
  solgate sol -c /etc/solgate/solgate.toml node42 --steal
  printf 'root\r' | IPMI_PASSWORD=... solgate sol -u admin 10.1.2.42 --eof-wait 3s
  solgate sol -c /etc/solgate/solgate.toml node42 --follow --log-dir /var/log/solgate </dev/null

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
		tty: tty, reconnect: !*noReconnect, esc: esc}
	if *logDir != "" {
		if err := logstore.CheckConsoleName(pos[0]); err != nil {
			return &exitError{code: 2, msg: "sol: --log-dir: " + err.Error()}
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

	mu  sync.Mutex
	sol *ipmilan.SOL // the live console, nil while reconnecting
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

func (r *solRunner) current() *ipmilan.SOL {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.sol
}

func (r *solRunner) run(ctx context.Context, stdin io.Reader) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	errDetach := errors.New("detached")
	go r.input(ctx, stdin, func(err error) { cancel(err) }, errDetach)

	backoff := time.Second
	for attempt := 0; ; attempt++ {
		c, err := ipmilan.DialSOL(ctx, r.cfg, r.opts)
		if err != nil {
			if ctx.Err() != nil {
				return r.endErr(ctx, errDetach)
			}
			if permanent(err) || !r.reconnect {
				return fmt.Errorf("sol: %s: %w", r.name, err)
			}
			wait := jitter(backoff)
			r.say("%s: %v; retrying in %v", r.name, err, wait.Round(100*time.Millisecond))
			select {
			case <-ctx.Done():
				return r.endErr(ctx, errDetach)
			case <-time.After(wait):
			}
			backoff = min(backoff*2, 2*time.Minute)
			continue
		}
		if r.tty {
			r.say("connected to %s (cipher suite %d); %s? for help", r.name, c.Session().CipherSuite(), escape.Format(r.esc))
		}
		r.event(logstore.EventReconnect, "SOL session established by solgate sol (cipher suite %d)", c.Session().CipherSuite())
		r.mu.Lock()
		r.sol = c
		r.mu.Unlock()
		started := time.Now()
		go func() {
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
			select {
			case <-ctx.Done():
				c.Close() // detach or interrupt: end the copy below
			case <-connDone:
			}
		}()
		out := r.stdout
		if r.log != nil {
			// The log store never blocks nor fails the console on disk
			// trouble; it counts what it could not keep.
			out = io.MultiWriter(r.log, r.stdout)
		}
		_, copyErr := io.Copy(out, c)
		close(connDone)
		r.mu.Lock()
		r.sol = nil
		r.mu.Unlock()
		c.Close()
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
		if errors.Is(cause, ipmilan.ErrSOLStolen) && !r.opts.Steal {
			return fmt.Errorf("sol: %s: %w (use --steal to take it back)", r.name, cause)
		}
		if !r.reconnect {
			return fmt.Errorf("sol: %s: %w", r.name, cause)
		}
		wait := jitter(backoff)
		r.say("%s: %v; reconnecting in %v", r.name, cause, wait.Round(100*time.Millisecond))
		r.event(logstore.EventReconnect, "SOL session lost: %v; reconnecting in %v", cause, wait.Round(100*time.Millisecond))
		select {
		case <-ctx.Done():
			return r.endErr(ctx, errDetach)
		case <-time.After(wait):
		}
		backoff = min(backoff*2, 2*time.Minute)
	}
}

func (r *solRunner) endErr(ctx context.Context, detach error) error {
	if cause := context.Cause(ctx); cause != nil && !errors.Is(cause, detach) && !errors.Is(cause, context.Canceled) {
		return cause
	}
	return nil
}

// input copies stdin to the console, acting on escape commands. It ends
// the run (stop) on detach, or when stdin ends (after eofWait).
func (r *solRunner) input(ctx context.Context, stdin io.Reader, stop func(error), detach error) {
	p := escape.New(r.esc, "l")
	buf := make([]byte, 4096)
	for {
		n, err := stdin.Read(buf)
		for _, it := range p.Feed(buf[:n]) {
			if it.Command == "" {
				if c := r.current(); c != nil {
					c.Write(it.Data)
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
				if c := r.current(); c != nil {
					bctx, cancel := context.WithTimeout(ctx, 10*time.Second)
					if err := c.Break(bctx); err != nil {
						r.say("break failed: %v", err)
					} else {
						r.say("break sent")
					}
					cancel()
				}
			default:
				r.say("unknown escape command %q; %s? for help", it.Command, escape.Format(r.esc))
			}
		}
		if err != nil {
			if r.tty || r.follow {
				if r.tty {
					stop(detach)
				}
				return
			}
			select {
			case <-time.After(r.eofWait):
			case <-ctx.Done():
			}
			stop(detach)
			return
		}
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
