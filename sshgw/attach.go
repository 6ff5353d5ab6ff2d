package sshgw

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
)

// How long the end of an attach waits for output already read from the
// attachment to reach a slow client before it closes the channel, and
// then the connection.
const (
	drainWait = 2 * time.Second
	closeWait = 5 * time.Second
)

// attach attaches the session to con and pumps bytes both ways, unchanged,
// until the attachment ends, the person detaches, the client goes, or the
// session is ended (reload, shutdown). With a PTY it is interactive: a
// banner, then the current screen repainted (a full-screen program) or
// the last lines replayed, then live output; without one (a script, spy)
// the banner goes to stderr and output starts live.
func (ss *session) attach(con Console, opts AttachOptions) int {
	s := ss.srv
	perm := con.Perm()
	if opts.Mode == ReadWrite && perm&PermWrite == 0 {
		if opts.Force {
			return ss.errorf(exitDenied, "force: you may not write to %s", ss.target)
		}
		opts.Mode = ReadOnly
	}
	var paint []byte
	if ss.pty && !opts.Spy {
		opts.Replay = max(s.opts.Replay, 0)
		if recent, err := con.Recent(s.opts.RecentBytes); err == nil && fullScreen(recent, s.opts.Screen.Rows) {
			if scr, err := newScreen(s.opts.Screen, recent); err == nil {
				if p, err := scr.Repaint(); err == nil {
					paint, opts.Replay = p, 0
				}
			}
		}
	}
	a, err := con.Attach(opts)
	if err != nil {
		return ss.failed("attach", err)
	}
	defer a.Close()
	// Breaks are taken from now on (the loop below serves them).
	ss.mu.Lock()
	ss.att = true
	ss.mu.Unlock()
	defer func() {
		ss.mu.Lock()
		ss.att = false
		ss.mu.Unlock()
	}()
	start := time.Now()
	cols, rows := ss.window()
	s.log.Info("attached", "user", ss.id.Person, "console", ss.target, "remote", ss.id.Remote, "mode", a.Mode().String(),
		"pty", ss.pty, "term", ss.term, "cols", cols, "rows", rows)

	own := !s.opts.StreamNotices // the gateway writes the banner and the last line
	if own {
		banner := ss.banner(con.Status(), a.Mode(), perm, opts)
		if ss.pty && !opts.Spy {
			io.WriteString(ss.stdout(), banner)
			if paint != nil {
				ss.ch.Write(paint)
				paint = nil
			}
		} else {
			io.WriteString(ss.stderr(), banner)
		}
	}

	// Output: the attachment's bounded stream to the client. A slow
	// client blocks only this goroutine; the manager's lagging rule keeps
	// the console going.
	outDone := make(chan error, 1)
	go func() {
		buf := make([]byte, 4<<10) // SOL brings at most 255 bytes a packet
		for {
			n, err := a.Read(buf)
			if n > 0 {
				if _, werr := ss.ch.Write(buf[:n]); werr != nil {
					outDone <- werr
					return
				}
			}
			if paint != nil {
				// The backend's banner came first: the repaint follows it.
				if _, werr := ss.ch.Write(paint); werr != nil {
					outDone <- werr
					return
				}
				paint = nil
			}
			if err != nil {
				outDone <- nil
				return
			}
		}
	}()
	// Input: every byte to the escape engine, unchanged. It ends when the
	// client sends EOF or the channel closes; it may outlive this
	// function by the time the channel takes to close.
	inDone := make(chan struct{})
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer close(inDone)
		buf := make([]byte, 1<<10) // keystrokes
		for {
			n, err := ss.ch.Read(buf)
			if n > 0 && !opts.Spy {
				if _, werr := a.Write(buf[:n]); werr != nil {
					return
				}
			}
			if err != nil {
				return
			}
		}
	}()

	var cause error
	outFinished, clientGone := false, false
	fromStream := false // the cause is the attachment's: with StreamNotices its stream said it
	in := inDone
	for cause == nil {
		select {
		case <-ss.ctx.Done():
			cause = context.Cause(ss.ctx)
			clientGone = errors.Is(cause, errClientGone) || errors.Is(cause, errConnClosed)
		case <-a.Done():
			cause, fromStream = attachCause(a), true
		case err := <-outDone:
			outFinished = true
			if err != nil {
				cause, clientGone = errClientGone, true
			} else {
				cause, fromStream = attachCause(a), true
			}
		case <-in:
			in = nil
			if ss.pty {
				// With a PTY, EOF means the client is going.
				cause, clientGone = errClientGone, true
			}
		case <-ss.breaks:
			if err := a.Break(); err != nil {
				fmt.Fprintf(ss.stderr(), "solgate: break: %s\n", oneLine(err))
			}
		}
	}
	a.Close()
	if !outFinished {
		// Let what was read reach the client, within reason.
		select {
		case <-outDone:
		case <-time.After(drainWait):
			ss.ch.Close()
			select {
			case <-outDone:
			case <-time.After(closeWait):
				ss.c.close(cause)
				<-outDone
			}
			clientGone = true
		}
	}
	code := exitFailed
	text := oneLine(cause)
	if errors.Is(cause, ErrDetached) {
		code, text = exitOK, "detached from "+ss.target
	}
	s.log.Info("detached", "user", ss.id.Person, "console", ss.target, "remote", ss.id.Remote, "after", time.Since(start).Round(time.Millisecond).String(), "err", text)
	if !clientGone && (own || !fromStream) {
		if ss.pty && !opts.Spy {
			fmt.Fprintf(ss.ch, "\r\n[solgate: %s]\r\n", text)
		} else {
			fmt.Fprintf(ss.ch.Stderr(), "solgate: %s\n", text)
		}
	}
	return code
}

// attachCause is why an attachment ended.
func attachCause(a Attachment) error {
	if c := a.Cause(); c != nil {
		return c
	}
	return errDeadSession
}

// banner is the line an attach starts with: the console's state, the
// session's mode (and who writes instead), and how to get help.
func (ss *session) banner(st Status, mode Mode, perm Perm, opts AttachOptions) string {
	esc := st.Escape
	if esc == "" {
		esc = ss.srv.opts.Escape
	}
	var b strings.Builder
	fmt.Fprintf(&b, "[solgate: %s: %s; ", ss.target, stateText(st, time.Now()))
	switch {
	case mode == ReadWrite:
		b.WriteString("you are read-write")
	case opts.Spy:
		b.WriteString("spying read-only")
	case perm&PermWrite == 0:
		b.WriteString("read-only (you may not write here)")
	case st.Writer != "":
		fmt.Fprintf(&b, "read-only: %s is writing (%sf forces write)", st.Writer, esc)
	default:
		fmt.Fprintf(&b, "read-only (%sa to write)", esc)
	}
	fmt.Fprintf(&b, "; %s? help, %s. detach]\n", esc, esc)
	return b.String()
}

// failed reports a backend error in one line and returns the exit status
// it calls for.
func (ss *session) failed(what string, err error) int {
	code := exitFailed
	switch {
	case errors.Is(err, ErrUsage):
		code = exitUsage
	case errors.Is(err, ErrNotPermitted):
		code = exitDenied
	case errors.Is(err, ErrNoConsole):
		return ss.errorf(exitUsage, "%s: no such console %s", what, quoteShort(ss.target))
	case ss.ctx.Err() != nil:
		err = context.Cause(ss.ctx)
	}
	return ss.errorf(code, "%s %s: %s", what, ss.target, oneLine(err))
}

// oneLine returns an error's text cut to its first line and a sensible
// length: what the person reads, whatever a backend put in it.
func oneLine(err error) string {
	if err == nil {
		return "ended"
	}
	s := err.Error()
	if i := strings.IndexAny(s, "\r\n"); i >= 0 {
		s = s[:i]
	}
	if len(s) > 300 {
		s = s[:300] + "..."
	}
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
}
