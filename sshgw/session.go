package sshgw

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	gliderssh "github.com/gliderlabs/ssh"
	gossh "golang.org/x/crypto/ssh"
)

// Exit statuses of sessions.
const (
	exitOK     = 0 // done; also detaching with the escape command
	exitFailed = 1 // the operation failed (BMC error), or the session was ended (revoked, shutdown)
	exitUsage  = 2 // unknown command, bad arguments, no such console
	exitDenied = 3 // the person may read the console but not do this
)

// session is the scope of one SSH session channel. Its request loop runs
// in the channel handler's goroutine and never blocks: pty-req and
// window-change only record, break only signals; shell and exec start
// the worker, which owns all I/O on the channel.
type session struct {
	srv *Server
	c   *conn
	ch  gossh.Channel

	key    gossh.PublicKey // the key that authenticated the connection
	id     Identity
	target string // the SSH user name: a console, or the listing name

	ctx    context.Context // ends with the session; its cause is what the person reads
	cancel context.CancelCauseFunc

	// Set by the request loop before the worker starts, then read-only.
	pty  bool
	term string
	cmd  string // exec command line; "" for a shell
	exec bool

	win    atomic.Uint64 // cols<<32 | rows, latest window size
	breaks chan struct{} // break requests for the attach loop, at most one pending
	mu     sync.Mutex    // guards att
	att    bool          // an attach loop takes breaks
}

// sessionChannel is the gliderlabs channel handler for "session"
// channels. It replaces gliderlabs' own, which rewrites LF to CRLF on
// PTY sessions (console bytes must pass unchanged) and can block its
// request loop on a window change.
func (s *Server) sessionChannel(_ *gliderssh.Server, sc *gossh.ServerConn, nc gossh.NewChannel, gctx gliderssh.Context) {
	c, _ := gctx.Value(connKey{}).(*conn)
	if c == nil {
		nc.Reject(gossh.ConnectionFailed, "internal error")
		return
	}
	var key gossh.PublicKey
	if sc.Permissions != nil {
		key, _ = sc.Permissions.ExtraData[verifiedKeyTag{}].(gossh.PublicKey)
	}
	if key == nil {
		nc.Reject(gossh.Prohibited, "not authenticated by key")
		return
	}
	// Taken before Identify: a change from here on is either seen by the
	// reload's re-check (the session is admitted by then) or below.
	changed := s.opts.Backend.Changed()
	person, err := s.opts.Backend.Identify(key, sc.RemoteAddr())
	if err != nil {
		s.log.Info("session refused: key no longer accepted", "remote", sc.RemoteAddr().String(), "err", err)
		nc.Reject(gossh.Prohibited, errKeyRevoked.Error())
		return
	}
	ss := &session{
		srv:    s,
		c:      c,
		key:    key,
		id:     Identity{Person: person, Remote: sc.RemoteAddr().String(), Via: "ssh"},
		target: sc.User(),
		breaks: make(chan struct{}, 1),
	}
	// Before admit: a reload's re-check may cancel the session as soon as
	// it is in s.sessions.
	ss.ctx, ss.cancel = context.WithCancelCause(c.ctx)
	defer ss.cancel(errClientGone)
	if why := s.admit(ss); why != "" {
		s.log.Warn("session refused", "user", person, "remote", ss.id.Remote, "err", why)
		nc.Reject(gossh.ResourceShortage, why)
		return
	}
	defer s.release(ss)
	select {
	case <-changed:
		// The configuration changed after Identify; the reload's
		// re-check may have run before admit.
		if cause := ss.recheck(); cause != nil {
			ss.cancel(cause)
		}
	default:
	}
	if ss.ctx.Err() != nil {
		cause := context.Cause(ss.ctx)
		s.log.Info("session refused: ended before it opened", "user", person, "remote", ss.id.Remote, "err", cause)
		nc.Reject(gossh.Prohibited, cause.Error())
		return
	}
	ch, reqs, err := nc.Accept()
	if err != nil {
		return
	}
	ss.ch = ch
	ss.serve(reqs)
}

// admit counts a new session against the caps, or says why not.
func (s *Server) admit(ss *session) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.closed:
		return errShutdown.Error()
	case len(s.sessions) >= s.opts.MaxSessions:
		return fmt.Sprintf("too many sessions on the gateway (limit %d)", s.opts.MaxSessions)
	case s.perUser[ss.id.Person] >= s.opts.MaxSessionsPerUser:
		return fmt.Sprintf("too many sessions for %s (limit %d)", ss.id.Person, s.opts.MaxSessionsPerUser)
	}
	s.sessions[ss] = struct{}{}
	s.perUser[ss.id.Person]++
	ss.c.sessions++
	s.wg.Add(1)
	return ""
}

func (s *Server) release(ss *session) {
	s.mu.Lock()
	delete(s.sessions, ss)
	if s.perUser[ss.id.Person]--; s.perUser[ss.id.Person] <= 0 {
		delete(s.perUser, ss.id.Person)
	}
	ss.c.sessions--
	if ss.c.sessions == 0 {
		ss.c.idleSince = time.Now()
	}
	s.mu.Unlock()
	s.wg.Done()
}

// serve runs the session's request loop until the channel closes.
func (ss *session) serve(reqs <-chan *gossh.Request) {
	var worker sync.WaitGroup
	started := false
	workerDone := make(chan struct{})
	stopCut := func() bool { return false }
	defer func() {
		ss.cancel(errClientGone)
		worker.Wait()
		stopCut()
		ss.ch.Close()
		// Drain whatever the client still sends until the channel is gone.
		for req := range reqs {
			if req.WantReply {
				req.Reply(false, nil)
			}
		}
	}()
	for {
		var req *gossh.Request
		var ok bool
		select {
		case req, ok = <-reqs:
		case <-ss.ctx.Done():
			// Revoked or shut down before or without a shell or exec:
			// the worker, if any, ends the channel.
			if !started {
				return
			}
			req, ok = <-reqs
		}
		if !ok {
			return
		}
		switch req.Type {
		case "pty-req":
			if started {
				req.Reply(false, nil)
				continue
			}
			term, cols, rows, ok := parsePtyReq(req.Payload)
			if ok {
				ss.pty, ss.term = true, term
				ss.setWindow(cols, rows)
			}
			req.Reply(ok, nil)
		case "window-change":
			if cols, rows, ok := parseWindowChange(req.Payload); ok {
				ss.setWindow(cols, rows)
			}
			if req.WantReply {
				req.Reply(true, nil)
			}
		case "shell", "exec":
			if started {
				req.Reply(false, nil)
				continue
			}
			if req.Type == "exec" {
				cmd, rest, ok := parseString(req.Payload)
				if !ok || len(rest) > 0 {
					req.Reply(false, nil)
					continue
				}
				ss.cmd, ss.exec = cmd, true
			}
			started = true
			req.Reply(true, nil)
			worker.Add(1)
			go func() {
				defer worker.Done()
				defer close(workerDone)
				ss.finish(ss.run())
			}()
			stopCut = context.AfterFunc(ss.ctx, func() { ss.cut(workerDone) })
		case "break":
			ss.mu.Lock()
			att := ss.att
			ss.mu.Unlock()
			if att {
				select {
				case ss.breaks <- struct{}{}:
				default: // one is pending already
				}
			}
			if req.WantReply {
				req.Reply(att, nil)
			}
		default:
			// env, signal, subsystem, x11-req, auth-agent-req@openssh.com
			// and anything else: refused.
			if req.Type == "auth-agent-req@openssh.com" || req.Type == "x11-req" {
				ss.srv.log.Debug("forwarding request refused", "user", ss.id.Person, "remote", ss.id.Remote, "request", req.Type)
			}
			if req.WantReply {
				req.Reply(false, nil)
			}
		}
	}
}

// cut runs when the session's context ends (revoked, shut down, client
// gone) while its command runs: a command still writing to a client that
// stopped reading (a long `log` blocked on the SSH window) would notice
// only when the connection closes. After drainWait its channel is
// closed, which fails the blocked write; after closeWait more, the
// connection. Attach sessions do the same on their own for every cause.
func (ss *session) cut(done <-chan struct{}) {
	select {
	case <-done:
		return
	case <-time.After(drainWait):
	}
	ss.ch.Close()
	select {
	case <-done:
	case <-time.After(closeWait):
		ss.c.close(context.Cause(ss.ctx))
	}
}

// finish sends the exit status, then EOF, then closes the channel:
// clients read the status before the channel goes.
func (ss *session) finish(code int) {
	ss.ch.SendRequest("exit-status", false, binary.BigEndian.AppendUint32(nil, uint32(code)))
	ss.ch.CloseWrite()
	ss.ch.Close()
}

func (ss *session) setWindow(cols, rows uint32) {
	ss.win.Store(uint64(cols)<<32 | uint64(rows))
}

// Window returns the client's latest window size.
func (ss *session) window() (cols, rows int) {
	v := ss.win.Load()
	return int(v >> 32), int(uint32(v))
}

// recheck says why the session may no longer go on after a reload, or
// nil.
func (ss *session) recheck() error {
	b := ss.srv.opts.Backend
	person, err := b.Identify(ss.key, ss.c.remote)
	if err != nil || person != ss.id.Person {
		return errKeyRevoked
	}
	if ss.target == ss.srv.opts.ListName {
		return nil
	}
	if _, err := b.Lookup(ss.id, ss.target); err != nil {
		if errors.Is(err, ErrNoConsole) {
			return userError(fmt.Sprintf("you may no longer use %s (%v)", ss.target, unwrapNoConsole(err)))
		}
		return userError(fmt.Sprintf("%s: %v", ss.target, err))
	}
	return nil
}

// unwrapNoConsole returns the backend's reason for ErrNoConsole (shown
// only to sessions that had the console), or "removed or access revoked".
func unwrapNoConsole(err error) string {
	if err == nil || err == ErrNoConsole || err.Error() == ErrNoConsole.Error() {
		return "removed or access revoked"
	}
	msg := err.Error()
	if p := ErrNoConsole.Error() + ": "; len(msg) > len(p) && msg[:len(p)] == p {
		return msg[len(p):]
	}
	return msg
}

// stdout and stderr write the gateway's own text to the client: with a
// PTY the client's terminal is raw, so "\n" becomes "\r\n".
func (ss *session) stdout() io.Writer {
	if ss.pty {
		return &crlfWriter{w: ss.ch}
	}
	return ss.ch
}

func (ss *session) stderr() io.Writer {
	if ss.pty {
		return &crlfWriter{w: ss.ch.Stderr()}
	}
	return ss.ch.Stderr()
}

// errorf writes one line to stderr and returns code.
func (ss *session) errorf(code int, format string, args ...any) int {
	fmt.Fprintf(ss.stderr(), "solgate: "+format+"\n", args...)
	return code
}

// crlfWriter turns every "\n" not preceded by "\r" into "\r\n".
type crlfWriter struct {
	w    io.Writer
	last byte
	buf  []byte
}

func (c *crlfWriter) Write(p []byte) (int, error) {
	c.buf = c.buf[:0]
	for _, b := range p {
		if b == '\n' && c.last != '\r' {
			c.buf = append(c.buf, '\r')
		}
		c.buf = append(c.buf, b)
		c.last = b
	}
	if _, err := c.w.Write(c.buf); err != nil {
		return 0, err
	}
	return len(p), nil
}

// parseString reads one SSH string (uint32 length, bytes).
func parseString(p []byte) (string, []byte, bool) {
	if len(p) < 4 {
		return "", nil, false
	}
	n := binary.BigEndian.Uint32(p)
	if uint64(n) > uint64(len(p)-4) {
		return "", nil, false
	}
	return string(p[4 : 4+n]), p[4+n:], true
}

// parsePtyReq parses a pty-req payload (RFC 4254 6.2): TERM, columns,
// rows, width and height in pixels, encoded terminal modes.
func parsePtyReq(p []byte) (term string, cols, rows uint32, ok bool) {
	term, p, ok = parseString(p)
	if !ok || len(p) < 16 {
		return "", 0, 0, false
	}
	cols, rows = binary.BigEndian.Uint32(p), binary.BigEndian.Uint32(p[4:])
	return term, cols, rows, true
}

// parseWindowChange parses a window-change payload (RFC 4254 6.7).
func parseWindowChange(p []byte) (cols, rows uint32, ok bool) {
	if len(p) < 16 {
		return 0, 0, false
	}
	return binary.BigEndian.Uint32(p), binary.BigEndian.Uint32(p[4:]), true
}
