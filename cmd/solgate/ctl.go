package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/pelletier/go-toml/v2"

	"github.com/solgate/solgate/conserver/config"
	"github.com/solgate/solgate/conserver/hostlist"
)

func init() {
	register(command{name: "ctl", summary: "talk to the running daemon: status, info, who, reload, reopen", run: runCtl})
}

const ctlUsage = `Usage: solgate ctl [-c FILE | --socket PATH] [--json] COMMAND [CONSOLE]

Talks to the running solgate serve over its control socket, state_dir/ctl.sock
(0600; only root and the daemon's own user may connect: the daemon checks
the peer's credentials).

Commands:
  status           consoles by state (with the reasons of those not up),
                   the running configuration's fingerprint, the last reload
  info CONSOLE     one console: BMC, state and since when, reconnects,
                   bytes, last output, SOL counters, who is attached
  who [CONSOLE]    who is attached (to every console, or to one)
  reload           re-read the configuration now and apply it; prints what
                   changed, or every error (exit status 1) while the running
                   configuration stays
  reopen CONSOLES  drop each console's SOL session and establish it again now
                   (taking the payload from another client if it holds it);
                   CONSOLES is a hostlist: node042, 'node[001-128]'

--json prints the daemon's answer as JSON instead, for scripts.

The socket is found from the configuration's state_dir (-c, default
/etc/solgate/solgate.toml), even when the file has errors.

Examples:
  sudo solgate ctl status
  sudo -u solgate solgate ctl info node042
  solgate ctl -c ./solgate.toml reload
  sudo solgate ctl reopen 'rack4-node[01-32]'   # after fixing their BMCs
  solgate ctl --json who | jq -r '.[].user'`

// ctlTimeout bounds a ctl command's wait for the daemon's answer;
// ctlSlowTimeout a reload or a reopen of a hostlist, which apply a change
// to many consoles.
const (
	ctlTimeout     = 30 * time.Second
	ctlSlowTimeout = 5 * time.Minute
)

func runCtl(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("ctl", ctlUsage, stderr)
	path := ""
	fs.StringVar(&path, "c", "", "config `FILE` whose state_dir holds the socket (default "+config.DefaultPath+")")
	fs.StringVar(&path, "config", "", "same as -c")
	sock := fs.String("socket", "", "control socket `PATH` (default: state_dir/ctl.sock)")
	asJSON := fs.Bool("json", false, "print the answer as JSON")
	timeout := fs.Duration("timeout", 0, "give up after this long (default 30s; reload and reopen of a hostlist 5m: applying a change to many consoles takes a while)")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return usageErr(err)
	}
	if len(pos) == 0 {
		fs.Usage()
		return &exitError{code: 2, msg: "ctl: no command (status, info, who, reload, reopen)"}
	}
	req := ctlRequest{Command: pos[0]}
	var many []string // reopen of several consoles
	switch req.Command {
	case "status", "reload":
		if len(pos) > 1 {
			return &exitError{code: 2, msg: fmt.Sprintf("ctl %s: unexpected argument %q", req.Command, pos[1])}
		}
	case "info":
		if len(pos) != 2 {
			return &exitError{code: 2, msg: "ctl info: want one CONSOLE"}
		}
		req.Console = pos[1]
	case "reopen":
		if len(pos) != 2 {
			return &exitError{code: 2, msg: "ctl reopen: want CONSOLES (a name or a hostlist such as 'node[001-128]')"}
		}
		names, err := hostlist.Expand(pos[1])
		if err != nil {
			return &exitError{code: 2, msg: fmt.Sprintf("ctl reopen: %v", err)}
		}
		if len(names) != 1 {
			many = names
		}
		req.Console = names[0]
	case "who":
		if len(pos) > 2 {
			return &exitError{code: 2, msg: "ctl who: at most one CONSOLE"}
		}
		if len(pos) == 2 {
			req.Console = pos[1]
		}
	default:
		return &exitError{code: 2, msg: fmt.Sprintf("ctl: unknown command %q (status, info, who, reload, reopen)", req.Command)}
	}
	if *sock != "" && path != "" {
		return &exitError{code: 2, msg: "ctl: use -c or --socket, not both"}
	}
	if *sock == "" {
		dir, err := ctlStateDir(path)
		if err != nil {
			return fmt.Errorf("ctl: %w", err)
		}
		*sock = filepath.Join(dir, ctlSocketName)
	}
	if *timeout <= 0 {
		// A daemon that is stopped or stuck (SIGSTOP, a hung disk) still
		// accepts in the kernel: without an answer, say so soon.
		*timeout = ctlTimeout
		if req.Command == "reload" || many != nil {
			*timeout = ctlSlowTimeout
		}
	}
	ctx, cancel := context.WithTimeoutCause(ctx, *timeout, fmt.Errorf("none within %v: is it stopped or stuck? (its log or systemctl status solgate say more; --timeout waits longer)", *timeout))
	defer cancel()
	if many != nil {
		return ctlReopenMany(ctx, *sock, *asJSON, many, stdout)
	}
	rep, raw, err := ctlCall(ctx, *sock, req)
	if err != nil {
		return fmt.Errorf("ctl: %w", err)
	}
	if *asJSON {
		if err := printCtlJSON(stdout, req.Command, rep, raw); err != nil {
			return err
		}
	} else {
		printCtl(stdout, req.Command, rep)
	}
	if rep.Error != "" {
		msg := "ctl " + req.Command + ": " + rep.Error
		if !*asJSON {
			for _, e := range rep.Errors {
				msg += "\n  " + e
			}
		}
		return &exitError{code: 1, msg: msg}
	}
	return nil
}

// ctlStateDir finds state_dir in the configuration at path, reading only
// [server] when the whole file does not load (a reload after a bad edit
// must still find the daemon).
func ctlStateDir(path string) (string, error) {
	explicit := path != ""
	if !explicit {
		path = config.DefaultPath
	}
	cfg, err := config.LoadWith(path, config.Options{SkipSecrets: true})
	if err == nil {
		return cfg.Server.StateDir, nil
	}
	data, _, rerr := config.ReadFileLimit(path, 16<<20)
	if rerr != nil {
		if !explicit && errors.Is(rerr, os.ErrNotExist) {
			return "/var/lib/solgate", nil
		}
		return "", fmt.Errorf("config %s: %w", path, rerr)
	}
	var shape struct {
		Server struct {
			StateDir string `toml:"state_dir"`
		} `toml:"server"`
	}
	if toml.Unmarshal(data, &shape) == nil {
		if shape.Server.StateDir != "" {
			return shape.Server.StateDir, nil
		}
		return "/var/lib/solgate", nil
	}
	// Not even TOML: look for the line itself.
	if dir := scanStateDir(data); dir != "" {
		return dir, nil
	}
	return "", fmt.Errorf("cannot find state_dir in %s (%v); give --socket", path, err)
}

// scanStateDir finds state_dir = "..." in the [server] table of a file
// that does not parse.
func scanStateDir(data []byte) string {
	inServer := false
	for _, l := range strings.Split(string(data), "\n") {
		l = strings.TrimSpace(l)
		if strings.HasPrefix(l, "[") {
			inServer = strings.ReplaceAll(l, " ", "") == "[server]"
			continue
		}
		k, v, ok := strings.Cut(l, "=")
		if !inServer || !ok || strings.TrimSpace(k) != "state_dir" {
			continue
		}
		v = strings.TrimSpace(v)
		if i := strings.Index(v, "#"); i > 0 && strings.Count(v[:i], `"`)%2 == 0 {
			v = strings.TrimSpace(v[:i])
		}
		if len(v) >= 2 && (v[0] == '"' || v[0] == '\'') && v[len(v)-1] == v[0] {
			return v[1 : len(v)-1]
		}
	}
	return ""
}

// ctlCall sends one request and reads the answer.
func ctlCall(ctx context.Context, sock string, req ctlRequest) (ctlReply, json.RawMessage, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", sock)
	if err != nil {
		switch {
		case errors.Is(err, syscall.ENOENT):
			return ctlReply{}, nil, fmt.Errorf("solgate serve is not running (no control socket %s)", sock)
		case errors.Is(err, syscall.ECONNREFUSED):
			return ctlReply{}, nil, fmt.Errorf("solgate serve is not running (%s: connection refused, a socket left behind)", sock)
		case errors.Is(err, syscall.EACCES), errors.Is(err, syscall.EPERM):
			return ctlReply{}, nil, fmt.Errorf("permission denied on %s: run as root or as the daemon's user", sock)
		}
		return ctlReply{}, nil, err
	}
	defer c.Close()
	// ctx's end (its deadline too) cuts the exchange short; a deadline of
	// the connection's own could fire first and hide why.
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Now()) })
	defer stop()
	b, _ := json.Marshal(req)
	if _, err := c.Write(append(b, '\n')); err != nil {
		return ctlReply{}, nil, fmt.Errorf("send to %s: %w", sock, err)
	}
	raw, err := io.ReadAll(io.LimitReader(bufio.NewReader(c), 64<<20))
	if err != nil && json.Valid(raw) {
		err = nil // the whole answer came before the connection broke
	}
	if err != nil {
		if ctx.Err() != nil {
			return ctlReply{}, nil, fmt.Errorf("no answer from solgate serve: %w", context.Cause(ctx))
		}
		return ctlReply{}, nil, fmt.Errorf("read from %s: %w", sock, err)
	}
	if len(strings.TrimSpace(string(raw))) == 0 {
		return ctlReply{}, nil, fmt.Errorf("solgate serve closed the connection without an answer (too many at once?)")
	}
	var rep ctlReply
	if err := json.Unmarshal(raw, &rep); err != nil {
		return ctlReply{}, nil, fmt.Errorf("bad answer from solgate serve: %w", err)
	}
	return rep, raw, nil
}

func printCtlJSON(w io.Writer, cmd string, rep ctlReply, raw json.RawMessage) error {
	var v any
	switch {
	case rep.Error != "":
		v = struct {
			Error  string   `json:"error"`
			Errors []string `json:"errors,omitempty"`
		}{rep.Error, rep.Errors}
	case cmd == "status":
		v = rep.Status
	case cmd == "info":
		v = rep.Info
	case cmd == "who":
		if rep.Who == nil {
			rep.Who = []ctlAttached{}
		}
		v = rep.Who
	case cmd == "reload":
		v = rep.Reload
	case cmd == "reopen":
		v = rep.Reopen
	default:
		v = raw
	}
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// ctlReopenMany reopens each console of a hostlist, one request each,
// and goes on past failures: one line per console (or a JSON array of
// the replies), exit status 1 if any failed.
func ctlReopenMany(ctx context.Context, sock string, asJSON bool, names []string, stdout io.Writer) error {
	var failed []string
	type result struct {
		Console string `json:"console"`
		State   string `json:"state,omitempty"` // before the reopen
		Error   string `json:"error,omitempty"`
	}
	var all []result
	for _, name := range names {
		rep, _, err := ctlCall(ctx, sock, ctlRequest{Command: "reopen", Console: name})
		if err != nil {
			return fmt.Errorf("ctl: %w", err) // the daemon is not there: the rest would fail alike
		}
		r := result{Console: name, Error: rep.Error}
		if rep.Reopen != nil {
			r.State = rep.Reopen.State
		}
		all = append(all, r)
		if r.Error != "" {
			failed = append(failed, name)
			if !asJSON {
				fmt.Fprintf(stdout, "%s: not reopened: %s\n", name, r.Error)
			}
			continue
		}
		if !asJSON {
			printCtl(stdout, "reopen", rep)
		}
	}
	if asJSON {
		b, err := json.MarshalIndent(all, "", "  ")
		if err != nil {
			return err
		}
		if _, err := stdout.Write(append(b, '\n')); err != nil {
			return err
		}
	}
	if len(failed) > 0 {
		return &exitError{code: 1, msg: fmt.Sprintf("ctl reopen: %d of %d consoles not reopened: %s", len(failed), len(names), hostlist.Compress(failed))}
	}
	return nil
}

func ago(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	d := time.Since(t)
	if d < 0 {
		d = 0
	}
	return t.Local().Format("2006-01-02 15:04:05") + " (" + d.Round(time.Second).String() + " ago)"
}

func printCtl(w io.Writer, cmd string, rep ctlReply) {
	if rep.Error != "" {
		return
	}
	switch cmd {
	case "status":
		s := rep.Status
		fmt.Fprintf(w, "solgate serve pid %d, version %s, %d consoles, config %s (fingerprint %s, applied %s)\n",
			s.PID, s.Version, s.Consoles, s.Config, s.Fingerprint, ago(s.Loaded))
		if s.LastReload != "" {
			fmt.Fprintf(w, "last reload refused: %s\n", firstLine(s.LastReload))
		}
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		for _, g := range s.States {
			fmt.Fprintf(tw, "%s\t%d\t%s\n", g.State, g.Count, g.Consoles)
			for _, r := range g.Reasons {
				fmt.Fprintf(tw, "\t\t  %s: %s\n", r.Consoles, r.Reason)
			}
		}
		tw.Flush()
	case "info":
		i := rep.Info
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		p := func(k, format string, a ...any) { fmt.Fprintf(tw, "%s\t"+format+"\n", append([]any{k}, a...)...) }
		p("console", "%s", i.Console)
		p("bmc", "%s", i.BMC)
		p("state", "%s since %s", i.State, ago(i.Since))
		if i.Reason != "" {
			p("reason", "%s", i.Reason)
		}
		if i.NextTry != nil {
			p("next try", "%s", i.NextTry.Local().Format("2006-01-02 15:04:05"))
		}
		if i.Owner != "" {
			p("payload held by", "%s since %s", i.Owner, ago(*i.OwnerSince))
		}
		if i.UpSince != nil {
			p("connected since", "%s", ago(*i.UpSince))
		}
		p("steal", "%s", i.Steal)
		p("reconnects", "%d", i.Reconnects)
		p("output", "%d bytes, last %s", i.BytesOut, ago(deref(i.LastOutput)))
		p("input", "%d bytes", i.BytesIn)
		p("sol", "%d retransmits, %d gaps, %d overruns, %d input bytes dropped", i.SOL.Retransmits, i.SOL.Gaps, i.SOL.Overruns, i.SOL.InputDropped)
		p("log", "%d bytes dropped, %d write errors", i.LogDropped, i.LogErrors)
		writer := i.Writer
		if writer == "" {
			writer = "nobody"
		}
		p("attached", "%d (writer: %s)", len(i.Attached), writer)
		tw.Flush()
		if len(i.Attached) > 0 {
			printWho(w, i.Attached)
		}
	case "who":
		if len(rep.Who) == 0 {
			fmt.Fprintln(w, "nobody is attached")
			return
		}
		printWho(w, rep.Who)
	case "reload":
		r := rep.Reload
		defer func() {
			for _, warn := range r.Warnings {
				fmt.Fprintf(w, "warning: %s\n", warn)
			}
		}()
		if r.Unchanged {
			fmt.Fprintf(w, "configuration unchanged (fingerprint %s)\n", r.Fingerprint)
			return
		}
		fmt.Fprintf(w, "configuration applied (fingerprint %s)\n", r.Fingerprint)
		list := func(what string, names []string) {
			if len(names) > 0 {
				fmt.Fprintf(w, "  %s: %d (%s)\n", what, len(names), hostlist.Compress(names))
			}
		}
		list("consoles started", r.Started)
		list("consoles stopped", r.Stopped)
		list("consoles reconnecting (connection settings changed)", r.Reconnects)
		list("consoles updated (log, escape, access, steal policy or credentials)", r.Updated)
		list("of those, new BMC credentials (live sessions kept; each is checked now, its console log says how it went)", r.Credentials)
		list("consoles that could not start (see the daemon log; tried again at every reload)", r.Failed)
		list("users changed", r.Users)
		for _, f := range []struct {
			on   bool
			what string
		}{{r.Rules, "access rules changed"}, {r.Syslog, "syslog targets changed"}, {r.Server, "[server] settings changed"}} {
			if f.on {
				fmt.Fprintf(w, "  %s\n", f.what)
			}
		}
		if r.Detached+r.Downgraded > 0 {
			fmt.Fprintf(w, "  attached users: %d detached, %d made read-only (access changed)\n", r.Detached, r.Downgraded)
		}
	case "reopen":
		fmt.Fprintf(w, "%s: reopening its SOL session (was %s)\n", rep.Reopen.Console, rep.Reopen.State)
	}
}

func deref(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return *t
}

func printWho(w io.Writer, list []ctlAttached) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "CONSOLE\tUSER\tVIA\tFROM\tSINCE\tIDLE\tMODE\t")
	for _, a := range list {
		mode := a.Mode
		if a.Lagging {
			mode += " (lagging)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", a.Console, a.User, a.Via, a.Remote, a.Since.Local().Format("2006-01-02 15:04:05"),
			time.Duration(a.Idle*float64(time.Second)).Round(time.Second), mode)
	}
	tw.Flush()
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	return l
}
