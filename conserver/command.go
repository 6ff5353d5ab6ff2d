package conserver

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/solgate/solgate/conserver/config"
	"github.com/solgate/solgate/conserver/escape"
	"github.com/solgate/solgate/conserver/power"
)

// The escape-command engine: what an attached user types after the
// console's escape (default ^Ec). It runs on the typist's own goroutine
// (Attachment.Write); prompts, help and results go to that user only,
// never to the console nor into its log text. The escape typed twice
// (^Ec^Ec) sends it once.

// twoKeyCommands are the command keys that take one more key: l0 (break)
// and the power menu (!c, !r, ...).
const twoKeyCommands = "l!"

// powerKey is one entry of the power menu.
type powerKey struct {
	key     byte
	what    string // for the prompt and the result line
	steps   []power.Action
	confirm bool // destructive: ask [y/N]
}

var powerMenu = []powerKey{
	{'c', "power cycle", []power.Action{power.Cycle}, true},
	{'r', "reset", []power.Action{power.Reset}, true},
	{'1', "power on", []power.Action{power.On}, false},
	{'0', "power off (hard)", []power.Action{power.Off}, true},
	{'s', "soft shutdown (ACPI)", []power.Action{power.Soft}, true},
	{'n', "boot from the network (PXE), then reset", []power.Action{power.PXE, power.Reset}, true},
	{'b', "boot into BIOS setup, then reset", []power.Action{power.BIOS, power.Reset}, true},
	{'d', "diagnostic interrupt (NMI)", []power.Action{power.Diag}, true},
	{'?', "power status", []power.Action{power.Status}, false},
}

func findPowerKey(k byte) (powerKey, bool) {
	for _, p := range powerMenu {
		if p.key == k {
			return p, true
		}
	}
	return powerKey{}, false
}

// typed runs the escape engine over p. The caller holds wmu. Runs of
// ordinary bytes go to the parser whole; inside an escape it is fed one
// byte at a time, so that the byte after a command that asks [y/N] is
// the answer however the input was cut into writes. Only y or Y
// confirms; the escape's first byte cancels and starts an escape.
func (a *Attachment) typed(p []byte) int {
	esc := a.c.settings().esc
	if a.parser == nil || a.esc != esc {
		// A new escape (reload): start clean.
		a.parser, a.esc, a.confirm = escape.New(esc, twoKeyCommands), esc, 0
	}
	send := a.send
	if send == nil {
		send = func(b []byte) { a.c.input(a, b) }
	}
	run, answer := a.command, a.answer
	if a.commandHook != nil {
		run = a.commandHook
	}
	if a.answerHook != nil {
		answer = func(b byte) { a.confirm = 0; a.answerHook(b) }
	}
	rest := p
	for len(rest) > 0 {
		if a.confirm != 0 {
			if rest[0] == esc[0] {
				answer(0) // an escape instead of an answer: no, and the escape goes on
				continue
			}
			answer(rest[0])
			rest = rest[1:]
			continue
		}
		n := 1 // inside an escape, or at its first byte
		if !a.parser.Pending() {
			switch i := bytes.IndexByte(rest, esc[0]); {
			case i < 0:
				n = len(rest)
			case i > 0:
				n = i
			}
		}
		chunk := rest[:n]
		rest = rest[n:]
		for _, it := range a.parser.Feed(chunk) {
			if it.Command == "" {
				send(it.Data)
				continue
			}
			if !run(it.Command) {
				return len(p) // detached: the rest is not typed
			}
		}
	}
	return len(p)
}

// answer takes the reply to a [y/N] prompt.
func (a *Attachment) answer(b byte) {
	k := a.confirm
	a.confirm = 0
	pk, _ := findPowerKey(k)
	if b != 'y' && b != 'Y' {
		a.notice(fmt.Sprintf("%s: %s cancelled", a.c.name, pk.what))
		return
	}
	a.runPower(pk)
}

// command runs one escape command; false means the user detached.
func (a *Attachment) command(cmd string) bool {
	c := a.c
	e := formatEscape(a.esc)
	switch cmd {
	case ".":
		c.detach(a, fmt.Errorf("%s: %w", c.name, ErrDetached))
		return false
	case "?":
		a.block(fmt.Sprintf("%s: escape commands (%s, then a key):", c.name, e), []string{
			".   detach",
			"a   attach read-write (if nobody writes)",
			"f   force read-write (the writer becomes read-only)",
			"s   switch to read-only",
			"w   who is attached",
			"i   info: BMC, SOL state, reconnects, bytes, last output",
			"r   replay the last 20 lines",
			"p   replay the last 60 lines",
			"l0  send a serial break (SysRq on Linux)",
			"o   reopen: drop and re-establish the SOL session (takes the payload)",
			"!   power menu: c r 1 0 s n b d ?  (" + e + "!h lists them)",
			e + "  send the escape itself",
		})
	case "a":
		c.takeWrite(a, false)
	case "f":
		c.takeWrite(a, true)
	case "s":
		c.releaseWrite(a)
	case "w":
		var lines []string
		for _, w := range c.Who() {
			l := fmt.Sprintf("%-12s %s since %s, idle %v", w.User, w.Mode, w.Since.UTC().Format("2006-01-02 15:04:05Z"), w.Idle.Round(time.Second))
			if w.Via != "" {
				l += " via " + w.Via
			}
			if w.Remote != "" {
				l += " from " + w.Remote
			}
			if w.Lagging || w.Missed > 0 {
				l += fmt.Sprintf(" (missed %d bytes)", w.Missed)
			}
			lines = append(lines, l)
		}
		a.block(c.name+": attached:", lines)
	case "i":
		a.block(c.name+":", infoLines(c.Status()))
	case "r":
		a.replay(20)
	case "p":
		a.replay(60)
	case "l0":
		if err := a.Break(); err != nil {
			a.notice(fmt.Sprintf("%s: break not sent: %v", c.name, err))
		} else {
			a.notice(c.name + ": break sent")
		}
	case "o":
		if err := c.Reopen(a.id); err != nil {
			a.notice(fmt.Sprintf("%s: reopen: %v", c.name, err))
		} else {
			a.notice(c.name + ": reopening the SOL session")
		}
	default:
		switch {
		case cmd[0] == '!':
			a.powerCommand(cmd[1])
		case cmd[0] == 'l':
			a.notice(fmt.Sprintf("%s: unknown escape command %sl%s; %sl0 sends a break", c.name, e, printable(cmd[1]), e))
		default:
			a.notice(fmt.Sprintf("%s: unknown escape command %s%s; %s? for help", c.name, e, printable(cmd[0]), e))
		}
	}
	return true
}

// powerCommand is a key of the power menu.
func (a *Attachment) powerCommand(k byte) {
	c := a.c
	pk, ok := findPowerKey(k)
	if !ok {
		var lines []string
		e := formatEscape(a.esc)
		for _, p := range powerMenu {
			l := fmt.Sprintf("%s!%c  %s", e, p.key, p.what)
			if p.confirm {
				l += " (asks y/N)"
			}
			lines = append(lines, l)
		}
		a.block(c.name+": power menu:", lines)
		return
	}
	if pk.steps[0] != power.Status && c.m.perms(a.id.User, c.name)&config.Power == 0 {
		a.notice(fmt.Sprintf("%s: %s: %v (you have no power access)", c.name, pk.what, ErrDenied))
		return
	}
	if pk.confirm {
		a.confirm = k
		a.notice(fmt.Sprintf("%s: %s? [y/N]", c.name, pk.what))
		return
	}
	a.runPower(pk)
}

// runPower performs a power-menu entry and tells the user the result.
func (a *Attachment) runPower(pk powerKey) {
	c := a.c
	ctx, cancel := context.WithTimeout(c.ctx, 90*time.Second)
	defer cancel()
	var results []string
	for _, step := range pk.steps {
		res, err := c.Power(ctx, a.id, step)
		if err != nil {
			a.notice(fmt.Sprintf("%s: %s failed: %s", c.name, pk.what, oneLine(err, c.settings().ipmi.Addr)))
			return
		}
		results = append(results, res)
	}
	a.notice(fmt.Sprintf("%s: %s: %s", c.name, pk.what, strings.Join(results, "; ")))
}

// replay shows this user the console's last n lines.
func (a *Attachment) replay(n int) {
	a.mu.Lock()
	behind := len(a.buf) > a.limit/2
	a.mu.Unlock()
	if behind {
		// Repeated replays to a user who does not read would grow the
		// buffer without bound (and each reads the log): one replay at
		// most lands on a buffer less than half full.
		a.notice(a.c.name + ": replay skipped: you are behind on the console's output")
		return
	}
	lines, err := a.c.Tail(n)
	if err != nil {
		a.notice(fmt.Sprintf("%s: replay: %v", a.c.name, err))
		return
	}
	b := appendNotice(nil, fmt.Sprintf("%s: replay of the last %d lines", a.c.name, len(lines)))
	for _, l := range lines {
		if l.Event != "" {
			b = appendNotice(b, fmt.Sprintf("%s %s %s", l.Time.UTC().Format("15:04:05"), l.Event, l.Text))
			continue
		}
		b = appendReplayLine(b, a.c.name, l)
	}
	b = appendNotice(b, a.c.name+": end of replay")
	a.mu.Lock()
	if !a.ended {
		a.buf = append(a.buf, b...)
		a.signal()
	}
	a.mu.Unlock()
}

// infoLines describes a console's status.
func infoLines(s Status) []string {
	ago := func(t time.Time) string {
		if t.IsZero() {
			return "never"
		}
		return fmt.Sprintf("%s (%v ago)", t.UTC().Format("2006-01-02 15:04:05Z"), time.Since(t).Round(time.Second))
	}
	state := s.State.String()
	switch s.State {
	case Up:
		state = "up since " + ago(s.UpSince)
	default:
		state += " since " + ago(s.Since)
		if s.Reason != "" {
			state += ": " + s.Reason
		}
		if !s.NextTry.IsZero() {
			state += fmt.Sprintf("; next try in %v", time.Until(s.NextTry).Round(time.Second))
		}
	}
	lines := []string{
		"BMC " + s.BMC + ", steal = " + s.Steal,
		"SOL " + state,
	}
	if s.Owner != "" {
		lines = append(lines, "SOL held by "+s.Owner+" since "+ago(s.OwnerSince))
	}
	writer := s.Writer
	if writer == "" {
		writer = "nobody"
	}
	lines = append(lines,
		fmt.Sprintf("reconnects %d; %d attached, writer %s", s.Reconnects, s.Attached, writer),
		fmt.Sprintf("bytes in %d, out %d; last output %s", s.BytesIn, s.BytesOut, ago(s.LastOutput)),
		fmt.Sprintf("SOL packets in %d, out %d; retransmits %d, gaps %d, overruns %d, input dropped %d",
			s.SOL.PacketsIn, s.SOL.PacketsOut, s.SOL.Retransmits, s.SOL.Gaps, s.SOL.Overruns, s.SOL.InputDropped),
		fmt.Sprintf("log: %d bytes written, %d dropped, %d gaps", s.Log.Written, s.Log.Dropped, s.Log.Gaps),
	)
	return lines
}

// printable shows a command key in a message.
func printable(b byte) string {
	switch {
	case b < 0x20:
		return "^" + string(rune(b+'@'))
	case b == 0x7F:
		return "^?"
	case b >= 0x80:
		return fmt.Sprintf("\\x%02x", b)
	}
	return string(rune(b))
}
