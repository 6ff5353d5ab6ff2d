package sshgw

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// run is the session's worker: it routes by the SSH user name and the
// command, and returns the exit status.
func (ss *session) run() int {
	s := ss.srv
	start := time.Now()
	code := ss.dispatch()
	s.log.Info("session", "user", ss.id.Person, "console", logShort(ss.target), "remote", ss.id.Remote,
		"command", logShort(ss.cmd), "pty", ss.pty, "exit", code, "took", time.Since(start).Round(time.Millisecond).String())
	return code
}

func (ss *session) dispatch() int {
	s := ss.srv
	if ss.target == s.opts.ListName {
		return ss.runList()
	}
	con, err := s.opts.Backend.Lookup(ss.id, ss.target)
	if err != nil {
		if errors.Is(err, ErrNoConsole) {
			// The same words whether the console is missing or hidden.
			if !ss.exec || strings.TrimSpace(ss.cmd) == "" {
				// Nothing to run: "ssh consoles" (the login name names no
				// console) or a mistyped name. The consoles the person
				// may use are what they were after.
				if near := ss.nearName(); near != "" {
					fmt.Fprintf(ss.stderr(), "solgate: no such console %s (did you mean %s?); yours are:\n", quoteShort(ss.target), near)
				} else {
					fmt.Fprintf(ss.stderr(), "solgate: no such console %s; yours are:\n", quoteShort(ss.target))
				}
				return ss.list(false)
			}
			if near := ss.nearName(); near != "" {
				return ss.errorf(exitUsage, "no such console %s (did you mean %s? %s@ lists yours)", quoteShort(ss.target), near, s.opts.ListName)
			}
			return ss.errorf(exitUsage, "no such console %s (%s@ lists yours)", quoteShort(ss.target), s.opts.ListName)
		}
		return ss.errorf(exitFailed, "%s: %s", ss.target, oneLine(err))
	}
	if !ss.exec || strings.TrimSpace(ss.cmd) == "" {
		return ss.attach(con, AttachOptions{Mode: ReadWrite})
	}
	words, err := SplitCommand(ss.cmd)
	if err != nil {
		return ss.errorf(exitUsage, "%s", oneLine(err))
	}
	req, err := ParseRequest(words)
	if err != nil {
		return ss.errorf(exitUsage, "%s", oneLine(err))
	}
	return ss.execute(con, req)
}

// nearName is the console the person may use whose name the one asked
// for differs from only in letter case or in leading zeros of a number
// (NODE01, node1 for node01), or "" when there is none or several.
func (ss *session) nearName() string {
	want := looseName(ss.target)
	found := ""
	for _, st := range ss.srv.opts.Backend.List(ss.id) {
		if looseName(st.Name) == want {
			if found != "" {
				return ""
			}
			found = st.Name
		}
	}
	return found
}

// looseName is name in lower case with the leading zeros of each run of
// digits left out.
func looseName(name string) string {
	isDigit := func(c byte) bool { return '0' <= c && c <= '9' }
	b := make([]byte, 0, len(name))
	for i := 0; i < len(name); i++ {
		c := name[i]
		if isDigit(c) && (i == 0 || !isDigit(name[i-1])) {
			for c == '0' && i+1 < len(name) && isDigit(name[i+1]) {
				i++ // a leading zero
				c = name[i]
			}
		}
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		b = append(b, c)
	}
	return string(b)
}

// execute runs one exec command on con.
func (ss *session) execute(con Console, req Request) int {
	out := ss.stdout()
	perm := con.Perm()
	switch req.Cmd {
	case "help":
		io.WriteString(out, helpText(ss.target, ss.srv.opts.ListName, ss.srv.opts.Escape))
		return exitOK
	case "list":
		return ss.list(req.JSON)
	case "power":
		need, what := PermPower, "control the power of"
		if req.Action == "status" {
			need, what = PermRead, "read"
		}
		if perm&need == 0 {
			return ss.errorf(exitDenied, "power %s: you may not %s %s", req.Action, what, ss.target)
		}
		res, err := con.Power(ss.ctx, req.Action)
		if err != nil {
			return ss.failed("power "+req.Action, err)
		}
		if req.JSON {
			return ss.writeJSON(struct {
				Console string `json:"console"`
				Action  string `json:"action"`
				Result  string `json:"result"`
			}{ss.target, req.Action, res})
		}
		fmt.Fprintf(out, "%s: %s\n", ss.target, oneLine(errors.New(res)))
		return exitOK
	case "tail":
		if err := con.Tail(ss.ctx, req.Lines, out); err != nil {
			return ss.failed("tail", err)
		}
		return exitOK
	case "log":
		if err := con.Log(ss.ctx, req.Query, out); err != nil {
			return ss.failed("log", err)
		}
		return exitOK
	case "grep":
		n, err := con.Grep(ss.ctx, req.Pattern, req.Query, out)
		if err != nil {
			return ss.failed("grep", err)
		}
		if n == 0 {
			return exitFailed // like grep: no match, nothing on stderr
		}
		return exitOK
	case "who":
		return ss.who(con.Who(), req.JSON)
	case "info":
		return ss.info(con.Status(), perm, req.JSON)
	case "screen":
		recent, err := con.Recent(ss.srv.opts.RecentBytes)
		if err != nil {
			return ss.failed("screen", err)
		}
		scr, err := newScreen(ss.srv.opts.Screen, recent)
		if err != nil {
			return ss.failed("screen", err)
		}
		text, err := scr.Text()
		if err != nil {
			return ss.failed("screen", err)
		}
		out.Write(text)
		return exitOK
	case "spy":
		return ss.attach(con, AttachOptions{Mode: ReadOnly, Spy: true})
	case "force":
		return ss.attach(con, AttachOptions{Mode: ReadWrite, Force: true})
	case "break":
		if perm&PermWrite == 0 {
			return ss.errorf(exitDenied, "break: you may not write to %s", ss.target)
		}
		if err := con.Break(ss.ctx); err != nil {
			return ss.failed("break", err)
		}
		fmt.Fprintf(out, "%s: break sent\n", ss.target)
		return exitOK
	}
	return ss.errorf(exitUsage, "unknown command %s (try help)", quoteShort(req.Cmd))
}

// runList serves the listing name: a shell or `list [--json]` lists the
// person's consoles, `help` says how to use the gateway.
func (ss *session) runList() int {
	cmd := strings.TrimSpace(ss.cmd)
	if cmd == "" {
		return ss.list(false)
	}
	words, err := SplitCommand(cmd)
	if err != nil {
		return ss.errorf(exitUsage, "%s", oneLine(err))
	}
	if len(words) > 0 && strings.HasPrefix(words[0], "-") {
		words = append([]string{"list"}, words...)
	}
	req, err := ParseRequest(words)
	if err != nil {
		return ss.errorf(exitUsage, "%s", oneLine(err))
	}
	switch req.Cmd {
	case "list":
		return ss.list(req.JSON)
	case "help":
		io.WriteString(ss.stdout(), helpText("", ss.srv.opts.ListName, ss.srv.opts.Escape))
		return exitOK
	}
	return ss.errorf(exitUsage, "%s@ only lists consoles (list [--json], help); to use %s, connect as %s@", ss.srv.opts.ListName, req.Cmd, "CONSOLE")
}

// list prints the consoles the person may read.
func (ss *session) list(asJSON bool) int {
	now := time.Now()
	consoles := ss.srv.opts.Backend.List(ss.id)
	if asJSON {
		out := make([]statusJSON, len(consoles))
		for i, st := range consoles {
			out[i] = toStatusJSON(st)
		}
		return ss.writeJSON(out)
	}
	if len(consoles) == 0 {
		fmt.Fprintf(ss.stdout(), "no consoles for %s\n", ss.id.Person)
		return exitOK
	}
	tw := tabwriter.NewWriter(ss.stdout(), 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "CONSOLE\tSTATE\tWRITER\tATTACHED\tLAST OUTPUT")
	for _, st := range consoles {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\n", st.Name, stateText(st, now), dash(st.Writer), st.Attached, ago(st.LastOutput, now))
	}
	tw.Flush()
	return exitOK
}

func (ss *session) who(list []Attached, asJSON bool) int {
	if asJSON {
		type entry struct {
			User    string    `json:"user"`
			Via     string    `json:"via"`
			Remote  string    `json:"remote"`
			Since   time.Time `json:"since"`
			IdleSec float64   `json:"idle_seconds"`
			Mode    string    `json:"mode"`
			Lagging bool      `json:"lagging"`
			Missed  int64     `json:"missed_bytes"`
		}
		out := make([]entry, len(list))
		for i, a := range list {
			out[i] = entry{a.User, a.Via, a.Remote, a.Since.UTC(), a.Idle.Seconds(), a.Mode.String(), a.Lagging, a.Missed}
		}
		return ss.writeJSON(out)
	}
	if len(list) == 0 {
		fmt.Fprintln(ss.stdout(), "nobody is attached") // as solgate ctl who says it
		return exitOK
	}
	tw := tabwriter.NewWriter(ss.stdout(), 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "USER\tVIA\tREMOTE\tSINCE\tIDLE\tMODE")
	for _, a := range list {
		mode := a.Mode.String()
		if a.Lagging || a.Missed > 0 {
			mode += fmt.Sprintf(" (lagging, %d bytes missed)", a.Missed)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", a.User, dash(a.Via), dash(a.Remote), stamp(a.Since), a.Idle.Round(time.Second), mode)
	}
	tw.Flush()
	return exitOK
}

func (ss *session) info(st Status, perm Perm, asJSON bool) int {
	now := time.Now()
	if asJSON {
		j := toStatusJSON(st)
		j.Perm = perm.String()
		return ss.writeJSON(j)
	}
	tw := tabwriter.NewWriter(ss.stdout(), 0, 8, 2, ' ', 0)
	fmt.Fprintf(tw, "console:\t%s\n", st.Name)
	fmt.Fprintf(tw, "state:\t%s\n", stateText(st, now))
	fmt.Fprintf(tw, "writer:\t%s\n", dash(st.Writer))
	fmt.Fprintf(tw, "attached:\t%d\n", st.Attached)
	fmt.Fprintf(tw, "last output:\t%s\n", ago(st.LastOutput, now))
	fmt.Fprintf(tw, "you may:\t%s\n", perm)
	for _, f := range st.Details {
		fmt.Fprintf(tw, "%s:\t%s\n", f.Name, f.Value)
	}
	tw.Flush()
	return exitOK
}

// statusJSON is Status as --json prints it.
type statusJSON struct {
	Name       string            `json:"console"`
	State      string            `json:"state"`
	Since      *time.Time        `json:"since,omitempty"`
	Reason     string            `json:"reason,omitempty"`
	NextTry    *time.Time        `json:"next_try,omitempty"`
	Owner      string            `json:"owner,omitempty"`
	Writer     string            `json:"writer"`
	Attached   int               `json:"attached"`
	LastOutput *time.Time        `json:"last_output"`
	Perm       string            `json:"perm,omitempty"`
	Details    map[string]string `json:"details,omitempty"`
}

func toStatusJSON(st Status) statusJSON {
	opt := func(t time.Time) *time.Time {
		if t.IsZero() {
			return nil
		}
		u := t.UTC()
		return &u
	}
	j := statusJSON{Name: st.Name, State: st.State, Since: opt(st.Since), Reason: st.Reason, NextTry: opt(st.NextTry),
		Owner: st.Owner, Writer: st.Writer, Attached: st.Attached, LastOutput: opt(st.LastOutput)}
	if len(st.Details) > 0 {
		j.Details = map[string]string{}
		for _, f := range st.Details {
			j.Details[f.Name] = f.Value
		}
	}
	return j
}

func (ss *session) writeJSON(v any) int {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return ss.errorf(exitFailed, "json: %v", err)
	}
	b = append(b, '\n')
	ss.stdout().Write(b)
	return exitOK
}

// stateText says a console's state in words: "up since T", "retrying
// since T: why (next try in 20s)", "waiting for OWNER to release SOL
// since T", "down: why".
func stateText(st Status, now time.Time) string {
	since := ""
	if !st.Since.IsZero() {
		since = " since " + stamp(st.Since)
	}
	reason := ""
	if st.Reason != "" {
		reason = ": " + st.Reason
	}
	switch st.State {
	case "up":
		return "up" + since
	case "connecting":
		return "connecting" + since
	case "retrying":
		s := "retrying" + since + reason
		if !st.NextTry.IsZero() {
			if d := st.NextTry.Sub(now); d > 0 {
				s += fmt.Sprintf(" (next try in %s)", d.Round(time.Second))
			} else {
				s += " (trying now)"
			}
		}
		return s
	case "waiting":
		owner := st.Owner
		if owner == "" {
			owner = "another client"
		}
		return "waiting for " + owner + " to release SOL" + since
	case "contested":
		return "contested" + since + reason
	case "down":
		if st.Reason == "" {
			return "down" + since
		}
		return "down" + reason
	case "":
		return "unknown"
	}
	return st.State + since + reason
}

// stamp formats a time as UTC to the second.
func stamp(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("2006-01-02T15:04:05Z")
}

func ago(t, now time.Time) string {
	if t.IsZero() {
		return "never"
	}
	d := now.Sub(t)
	if d < 0 {
		d = 0
	}
	switch {
	case d < time.Minute:
		return strconv.Itoa(int(d/time.Second)) + "s ago"
	case d < time.Hour:
		return strconv.Itoa(int(d/time.Minute)) + "m ago"
	case d < 48*time.Hour:
		return strconv.Itoa(int(d/time.Hour)) + "h ago"
	}
	return strconv.Itoa(int(d/(24*time.Hour))) + "d ago"
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// helpText is what help prints: for a console, or for the listing name.
func helpText(console, listName, esc string) string {
	c := console
	if c == "" {
		c = "CONSOLE"
	}
	return fmt.Sprintf(`solgate SSH gateway: the SSH user name names the console.
  ssh %[1]s@HOST                 attach (read-write if nobody writes, else read-only)
  ssh %[2]s@HOST [--json]          list the consoles you may use (so does any name
                                 that is no console, with nothing to run)
  ssh %[1]s@HOST COMMAND         run a command:
    power status|on|off|cycle|reset|soft|diag|pxe|bios [--json]
    tail [-n N]                  the last N lines of the console's log (default 20)
    log [--since T] [--until T] [--boot N] [--raw|--plain]
                                 the log; --boot 0 is this boot, -1 the one before
    log --list-boots             the boots in the log: start, end, how each started
    grep PATTERN [--since T] [--until T]
    who [--json]                 who is attached
    info [--json]                the console's state
    screen                       the current screen as text
    spy                          stream the output, read-only
    force                        attach and take write from the current writer
    break                        send a serial break
    help                         this text
Inside an attached console, %[3]s? lists the escape commands and %[3]s. detaches;
OpenSSH's ~B sends a break. Times T: RFC 3339, "2026-11-20 10:00", or an age (1h, 2d).
Exit status: 0 done, 1 failed, 2 bad usage or no such console, 3 not permitted.
`, c, listName, esc)
}
