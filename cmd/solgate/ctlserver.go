package main

// The daemon side of solgate ctl: a component of solgate serve listening
// on a unix socket in state_dir. One request per connection: a JSON line
// {"command": ..., "console": ...} answered by one JSON object (ctlReply).
// Only the daemon's own user and root may connect: the socket is 0600 in a
// 0700 directory, and each connection's peer credentials (SO_PEERCRED)
// are checked as well.

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/solgate/solgate/conserver"
	"github.com/solgate/solgate/conserver/config"
	"github.com/solgate/solgate/conserver/hostlist"
)

func init() {
	serveComponents = append(serveComponents, func(d *daemon) (component, error) {
		return &ctlServer{d: d, log: d.log, stopping: make(chan struct{})}, nil
	})
}

// ctlSocketName is the control socket's name in state_dir.
const ctlSocketName = "ctl.sock"

// ctlMaxConns bounds the control connections served at once.
const ctlMaxConns = 8

// ctlRequest is what solgate ctl sends.
type ctlRequest struct {
	Command string `json:"command"`
	Console string `json:"console,omitempty"`
}

// ctlReply is the daemon's answer: Error, or the part the command fills.
type ctlReply struct {
	Error  string         `json:"error,omitempty"`
	Errors []string       `json:"errors,omitempty"` // reload: every configuration problem
	Status *ctlStatus     `json:"status,omitempty"`
	Info   *ctlInfo       `json:"info,omitempty"`
	Who    []ctlAttached  `json:"who,omitempty"`
	Reload *ctlReloadDone `json:"reload,omitempty"`
	Reopen *ctlReopened   `json:"reopen,omitempty"`
}

type ctlStatus struct {
	PID         int             `json:"pid"`
	Version     string          `json:"version"`
	Config      string          `json:"config"`
	Fingerprint string          `json:"fingerprint"`
	Loaded      time.Time       `json:"loaded"` // when the running configuration was applied
	LastReload  string          `json:"last_reload_error,omitempty"`
	Consoles    int             `json:"consoles"`
	States      []ctlStateGroup `json:"states"`
}

// ctlStateGroup is the consoles in one state, with the reasons they give
// (for the states that have one).
type ctlStateGroup struct {
	State    string      `json:"state"`
	Count    int         `json:"count"`
	Consoles string      `json:"consoles"` // a hostlist
	Reasons  []ctlReason `json:"reasons,omitempty"`
}

type ctlReason struct {
	Reason   string `json:"reason"`
	Count    int    `json:"count"`
	Consoles string `json:"consoles"`
}

type ctlInfo struct {
	Console    string        `json:"console"`
	BMC        string        `json:"bmc"`
	State      string        `json:"state"`
	Since      time.Time     `json:"since"`
	Reason     string        `json:"reason,omitempty"`
	NextTry    *time.Time    `json:"next_try,omitempty"`
	Owner      string        `json:"owner,omitempty"`
	OwnerSince *time.Time    `json:"owner_since,omitempty"`
	Steal      string        `json:"steal"`
	UpSince    *time.Time    `json:"up_since,omitempty"`
	Reconnects int           `json:"reconnects"`
	Writer     string        `json:"writer,omitempty"`
	LastOutput *time.Time    `json:"last_output,omitempty"`
	BytesOut   uint64        `json:"output_bytes"` // the console printed
	BytesIn    uint64        `json:"input_bytes"`  // typed into it
	SOL        ctlSOL        `json:"sol"`
	LogDropped int64         `json:"log_dropped_bytes"`
	LogErrors  int64         `json:"log_write_errors"`
	Attached   []ctlAttached `json:"attached"`
}

type ctlSOL struct {
	Retransmits  uint64 `json:"retransmits"`
	Gaps         uint64 `json:"gaps"`
	Overruns     uint64 `json:"overruns"`
	InputDropped uint64 `json:"input_dropped_bytes"`
}

type ctlAttached struct {
	Console string    `json:"console"`
	User    string    `json:"user"`
	Via     string    `json:"via"`
	Remote  string    `json:"remote,omitempty"`
	Since   time.Time `json:"since"`
	Idle    float64   `json:"idle_seconds"`
	Mode    string    `json:"mode"`
	Lagging bool      `json:"lagging,omitempty"`
	Missed  int64     `json:"missed_bytes,omitempty"`
}

// ctlReloadDone is what a reload applied.
type ctlReloadDone struct {
	Unchanged   bool     `json:"unchanged"`
	Started     []string `json:"started,omitempty"`
	Stopped     []string `json:"stopped,omitempty"`
	Reconnects  []string `json:"reconnecting,omitempty"`
	Updated     []string `json:"updated,omitempty"`
	Credentials []string `json:"credentials_changed,omitempty"` // of Updated: BMC password or K_g, checked in the background
	Failed      []string `json:"failed,omitempty"`
	Users       []string `json:"users_changed,omitempty"`
	Rules       bool     `json:"rules_changed,omitempty"`
	Syslog      bool     `json:"syslog_changed,omitempty"`
	Server      bool     `json:"server_changed,omitempty"`
	Detached    int      `json:"detached"`
	Downgraded  int      `json:"downgraded"`
	Fingerprint string   `json:"fingerprint"`
	// Warnings are the configuration's (solgate check prints the same).
	Warnings []string `json:"warnings,omitempty"`
}

type ctlReopened struct {
	Console string `json:"console"`
	State   string `json:"state"` // before the reopen
}

// ctlServer is the control socket component.
type ctlServer struct {
	d    *daemon
	log  *slog.Logger
	path string
	l    ctlListener

	stopping chan struct{} // closed by Stop: pending daemon calls give up
	wg       sync.WaitGroup
	mu       sync.Mutex // guards conns
	conns    map[net.Conn]struct{}
}

// ctlListener is the part of *net.UnixListener the server uses (tests
// make its Accept fail).
type ctlListener interface {
	AcceptUnix() (*net.UnixConn, error)
	Close() error
}

func (s *ctlServer) Name() string { return "ctl" }

func (s *ctlServer) Start(ctx context.Context) error {
	s.path = filepath.Join(s.d.m.Config().Server.StateDir, ctlSocketName)
	// A socket left by a daemon that died is removed; one that answers
	// belongs to a daemon still running on this state_dir.
	if c, err := net.DialTimeout("unix", s.path, time.Second); err == nil {
		c.Close()
		return fmt.Errorf("control socket %s is in use by another solgate serve (same state_dir)", s.path)
	}
	if err := os.Remove(s.path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("control socket: %w", err)
	}
	// state_dir is 0700, so nobody else reaches the socket before the
	// chmod. (Not umask: it is the process's, and log files are being
	// created meanwhile.)
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: s.path, Net: "unix"})
	if err != nil {
		return fmt.Errorf("control socket: %w", err)
	}
	if err := os.Chmod(s.path, 0o600); err != nil {
		l.Close()
		return fmt.Errorf("control socket: %w", err)
	}
	l.SetUnlinkOnClose(true)
	s.l = l
	s.conns = map[net.Conn]struct{}{}
	s.log.Info("serve: control socket listening", "path", s.path)
	s.wg.Add(1)
	go s.accept()
	return nil
}

func (s *ctlServer) Reload(ctx context.Context, cfg *config.Config, diff config.Diff) {
	if p := filepath.Join(cfg.Server.StateDir, ctlSocketName); p != s.path {
		s.log.Warn("serve: state_dir changed; the control socket stays where it is until restart", "path", s.path)
	}
}

func (s *ctlServer) Stop(ctx context.Context) error {
	close(s.stopping)
	err := s.l.Close()
	s.mu.Lock()
	for c := range s.conns {
		c.SetDeadline(time.Now()) // a request in progress ends now
	}
	s.mu.Unlock()
	s.wg.Wait()
	return err
}

func (s *ctlServer) accept() {
	defer s.wg.Done()
	sem := make(chan struct{}, ctlMaxConns)
	var pause time.Duration
	for {
		c, err := s.l.AcceptUnix()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of file descriptors (EMFILE, ENFILE) or another failure
			// that passes: the socket works again once it has (as
			// net/http's Serve does), until Stop.
			pause = min(max(2*pause, 5*time.Millisecond), time.Second)
			s.log.Error("serve: control socket: accept; trying again", "err", err, "in", pause)
			select {
			case <-s.stopping:
				return
			case <-time.After(pause):
			}
			continue
		}
		pause = 0
		select {
		case sem <- struct{}{}:
		default:
			c.Close() // too many at once: the client says so
			continue
		}
		s.mu.Lock()
		s.conns[c] = struct{}{}
		s.mu.Unlock()
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer func() { <-sem }()
			s.serve(c)
			s.mu.Lock()
			delete(s.conns, c)
			s.mu.Unlock()
			c.Close()
		}()
	}
}

// peerCred returns the connecting process's credentials.
func peerCred(c *net.UnixConn) (*unix.Ucred, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return nil, err
	}
	var cred *unix.Ucred
	var cerr error
	if err := rc.Control(func(fd uintptr) { cred, cerr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED) }); err != nil {
		return nil, err
	}
	return cred, cerr
}

func (s *ctlServer) serve(c *net.UnixConn) {
	c.SetDeadline(time.Now().Add(10 * time.Second))
	enc := json.NewEncoder(c)
	cred, err := peerCred(c)
	if err != nil {
		s.log.Warn("serve: control socket: no peer credentials", "err", err)
		enc.Encode(ctlReply{Error: "no peer credentials"})
		return
	}
	// The request is read before the credentials are judged, so that a
	// refused client reads the refusal (closing with its request unread
	// would reset the connection under it).
	r := bufio.NewReader(&limitedReader{c, 4096})
	line, rerr := r.ReadBytes('\n')
	me := os.Geteuid()
	if int(cred.Uid) != me && cred.Uid != 0 {
		s.log.Warn("serve: control socket: connection refused", "uid", cred.Uid, "pid", cred.Pid, "err", "neither root nor the daemon's user")
		enc.Encode(ctlReply{Error: fmt.Sprintf("permission denied: uid %d is neither root nor the daemon's user (uid %d)", cred.Uid, me)})
		return
	}
	if rerr != nil {
		enc.Encode(ctlReply{Error: "no request (want one JSON line)"})
		return
	}
	var req ctlRequest
	if err := json.Unmarshal(line, &req); err != nil {
		enc.Encode(ctlReply{Error: "bad request: " + err.Error()})
		return
	}
	id := conserver.Identity{User: uidName(cred.Uid), Via: "ctl", Remote: "pid " + strconv.Itoa(int(cred.Pid))}
	s.log.Debug("serve: ctl", "command", req.Command, "console", req.Console, "user", id.User, "remote", id.Remote)
	// A reload may take long (10,000 consoles); the client waits for it.
	c.SetDeadline(time.Now().Add(5 * time.Minute))
	enc.Encode(s.handle(req, id))
}

// limitedReader fails a request line longer than n.
type limitedReader struct {
	c net.Conn
	n int
}

func (l *limitedReader) Read(p []byte) (int, error) {
	if l.n <= 0 {
		return 0, errors.New("request too long")
	}
	if len(p) > l.n {
		p = p[:l.n]
	}
	n, err := l.c.Read(p)
	l.n -= n
	return n, err
}

func uidName(uid uint32) string {
	if u, err := user.LookupId(strconv.Itoa(int(uid))); err == nil {
		return u.Username
	}
	return "uid " + strconv.Itoa(int(uid))
}

func (s *ctlServer) handle(req ctlRequest, id conserver.Identity) ctlReply {
	needConsole := func() (*conserver.Console, *ctlReply) {
		if req.Console == "" {
			return nil, &ctlReply{Error: req.Command + " needs a CONSOLE"}
		}
		c := s.d.m.Console(req.Console)
		if c == nil {
			return nil, &ctlReply{Error: fmt.Sprintf("no console %q", req.Console)}
		}
		return c, nil
	}
	switch req.Command {
	case "status":
		return ctlReply{Status: s.status()}
	case "info":
		c, bad := needConsole()
		if bad != nil {
			return *bad
		}
		return ctlReply{Info: infoOf(c)}
	case "who":
		var out []ctlAttached
		if req.Console != "" {
			c, bad := needConsole()
			if bad != nil {
				return *bad
			}
			out = attachedOf(c)
		} else {
			for _, c := range s.d.m.Consoles() {
				out = append(out, attachedOf(c)...)
			}
		}
		if out == nil {
			out = []ctlAttached{}
		}
		return ctlReply{Who: out}
	case "reopen":
		c, bad := needConsole()
		if bad != nil {
			return *bad
		}
		st := c.Status().State
		if err := c.ReopenAdmin(id); err != nil {
			return ctlReply{Error: fmt.Sprintf("reopen %s: %v", req.Console, err)}
		}
		return ctlReply{Reopen: &ctlReopened{Console: req.Console, State: st.String()}}
	case "reload":
		done := make(chan ctlReply, 1)
		select {
		case s.d.calls <- func(ctx context.Context) { done <- s.d.ctlReload(ctx) }:
		case <-s.stopping:
			return ctlReply{Error: "solgate serve is stopping"}
		}
		select {
		case r := <-done:
			return r
		case <-s.stopping:
			return ctlReply{Error: "solgate serve is stopping"}
		}
	case "":
		return ctlReply{Error: "no command"}
	}
	return ctlReply{Error: fmt.Sprintf("unknown command %q", req.Command)}
}

func (s *ctlServer) status() *ctlStatus {
	cfg := s.d.m.Config()
	rs := s.d.reloads.ConfigStats()
	st := &ctlStatus{PID: os.Getpid(), Version: version, Config: s.d.path, Fingerprint: rs.Fingerprint, Loaded: rs.LastSuccess,
		LastReload: s.d.reloads.lastError(), Consoles: len(cfg.Consoles)}
	type group struct {
		names   []string
		reasons map[string][]string
		order   []string
	}
	groups := map[conserver.State]*group{}
	for _, c := range s.d.m.Consoles() {
		cs := c.Status()
		g := groups[cs.State]
		if g == nil {
			g = &group{reasons: map[string][]string{}}
			groups[cs.State] = g
		}
		g.names = append(g.names, cs.Name)
		if cs.State != conserver.Up && cs.Reason != "" {
			if _, seen := g.reasons[cs.Reason]; !seen {
				g.order = append(g.order, cs.Reason)
			}
			g.reasons[cs.Reason] = append(g.reasons[cs.Reason], cs.Name)
		}
	}
	for state := conserver.Connecting; state <= conserver.Stopped; state++ {
		g := groups[state]
		if g == nil {
			continue
		}
		sg := ctlStateGroup{State: state.String(), Count: len(g.names), Consoles: hostlist.Compress(g.names)}
		// The commonest reasons first.
		slices.SortStableFunc(g.order, func(a, b string) int { return len(g.reasons[b]) - len(g.reasons[a]) })
		for _, r := range g.order {
			sg.Reasons = append(sg.Reasons, ctlReason{Reason: r, Count: len(g.reasons[r]), Consoles: hostlist.Compress(g.reasons[r])})
		}
		st.States = append(st.States, sg)
	}
	return st
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

func infoOf(c *conserver.Console) *ctlInfo {
	s := c.Status()
	return &ctlInfo{Console: s.Name, BMC: s.BMC, State: s.State.String(), Since: s.Since, Reason: s.Reason, NextTry: timePtr(s.NextTry),
		Owner: s.Owner, OwnerSince: timePtr(s.OwnerSince), Steal: s.Steal, UpSince: timePtr(s.UpSince), Reconnects: s.Reconnects,
		Writer: s.Writer, LastOutput: timePtr(s.LastOutput), BytesOut: s.BytesIn, BytesIn: s.BytesOut,
		SOL:        ctlSOL{Retransmits: s.SOL.Retransmits, Gaps: s.SOL.Gaps, Overruns: s.SOL.Overruns, InputDropped: s.SOL.InputDropped},
		LogDropped: s.Log.Dropped, LogErrors: s.Log.WriteErrors, Attached: attachedOf(c)}
}

func attachedOf(c *conserver.Console) []ctlAttached {
	out := []ctlAttached{}
	for _, a := range c.Who() {
		out = append(out, ctlAttached{Console: c.Name(), User: a.User, Via: a.Via, Remote: a.Remote, Since: a.Since,
			Idle: a.Idle.Seconds(), Mode: a.Mode.String(), Lagging: a.Lagging, Missed: a.Missed})
	}
	return out
}

// ctlReload re-reads the configuration now and applies it, in the
// daemon's loop, and says what changed or why nothing did. Once it is
// applied the watcher is asked to re-read too, so that its snapshot is
// this one (its event is then a no-op: see run). Not after a failure: the
// watcher would read the same files again and its event would be refused
// (logged and counted) a second time.
func (d *daemon) ctlReload(ctx context.Context) ctlReply {
	const reason = "solgate ctl reload"
	d.log.Info("serve: reload requested by solgate ctl")
	cfg, err := config.Load(d.path)
	if err != nil {
		d.reload(ctx, config.Event{Config: d.m.Config(), Err: err, Reason: reason})
		r := ctlReply{Error: "the configuration is invalid; the running one stays"}
		var el *config.ErrorList
		if errors.As(err, &el) {
			for _, e := range el.Errors {
				r.Errors = append(r.Errors, e.Error())
			}
			if el.Omitted > 0 {
				r.Errors = append(r.Errors, fmt.Sprintf("(%d more not shown)", el.Omitted))
			}
		} else {
			r.Errors = []string{err.Error()}
		}
		return r
	}
	old := d.m.Config()
	if cfg.Equal(old) && len(d.m.NotStarted()) == 0 {
		d.watcher.Reload()
		return ctlReply{Reload: &ctlReloadDone{Unchanged: true, Fingerprint: cfg.Fingerprint(), Warnings: cfg.Warnings}}
	}
	diff := config.Compare(old, cfg)
	res, err := d.reload(ctx, config.Event{Config: cfg, Diff: diff, Reason: reason})
	if err != nil {
		return ctlReply{Error: "the configuration was refused; the running one stays", Errors: []string{err.Error()}}
	}
	d.watcher.Reload()
	return ctlReply{Reload: &ctlReloadDone{Started: res.Started, Stopped: res.Stopped, Reconnects: res.Reconnects, Updated: res.Updated, Credentials: res.Credentials, Failed: res.Failed,
		Users: diff.Users, Rules: diff.Rules, Syslog: diff.Syslog, Server: diff.Server, Detached: res.Detached, Downgraded: res.Downgraded,
		Fingerprint: cfg.Fingerprint(), Warnings: cfg.Warnings}}
}
