// Package power runs IPMI power actions on many BMCs at once with bounded
// parallelism, the engine behind `solgate power` (and, later, the console
// manager's power escape menu).
//
// Run takes a list of targets, each a display name with its ipmilan
// configuration, and reports one Result per target as it completes. It
// never stops early because one target failed: each result carries its
// own error, and callers decide the exit status.
//
// An interrupt (the context of Run ending) stops it starting targets and
// waiting, but never abandons a command already sent: see Run.
//
// Safe for concurrent use; it keeps no state between calls.
package power

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/solgate/solgate/ipmilan"
)

// Action is a power action.
type Action string

const (
	Status Action = "status"
	On     Action = "on"
	Off    Action = "off"
	Cycle  Action = "cycle"
	Reset  Action = "reset"
	Soft   Action = "soft" // ACPI soft shutdown
	Diag   Action = "diag" // diagnostic interrupt (NMI)
	PXE    Action = "pxe"  // next boot from the network
	BIOS   Action = "bios" // next boot into BIOS setup
)

// Actions lists every action with a one-line description.
var Actions = []struct {
	Action Action
	Help   string
}{
	{Status, "report whether power is on or off"},
	{On, "power on"},
	{Off, "hard power off (no OS shutdown)"},
	{Cycle, "power off then on (powers on a node that is off)"},
	{Reset, "hard reset (powers on a node that is off)"},
	{Soft, "ask the OS to shut down (ACPI soft off)"},
	{Diag, "pulse a diagnostic interrupt (NMI: a crash dump on Linux)"},
	{PXE, "boot from the network at the next boot (does not reset)"},
	{BIOS, "boot into BIOS setup at the next boot (does not reset)"},
}

// ParseAction validates an action name.
func ParseAction(s string) (Action, error) {
	for _, a := range Actions {
		if string(a.Action) == strings.ToLower(s) {
			return a.Action, nil
		}
	}
	var names []string
	for _, a := range Actions {
		names = append(names, string(a.Action))
	}
	return "", fmt.Errorf("unknown action %q (want one of: %s)", s, strings.Join(names, " "))
}

// Target is one BMC to act on.
type Target struct {
	Name   string // what the user called it (node042)
	Config ipmilan.Config
}

// Options tune Run.
type Options struct {
	Fanout int // concurrent BMC sessions (default 64)
	// Deadline bounds the work on one target, waiting included
	// (default 30s, or WaitTimeout plus 30s with Wait).
	Deadline time.Duration
	// Wait polls Get Chassis Status after on, off, soft, cycle and reset
	// until the target state is reached, for up to WaitTimeout (default
	// 60s).
	Wait        bool
	WaitTimeout time.Duration
	PollEvery   time.Duration // default 1s
}

// Result is the outcome for one target.
type Result struct {
	Name  string
	BMC   string
	State string // "on", "off", "ok", "ok (was off: powered on)", "next boot pxe"
	Err   error
	// Session says whether a session was opened; CipherSuite is then the
	// RMCP+ suite it used (0 for an IPMI 1.5 session, see Interface), so
	// that a fallback to a weaker suite is visible.
	Session     bool
	Interface   ipmilan.Interface
	CipherSuite int
}

// ErrInterrupted is wrapped by the error of a target that Run's context
// ended before its action was confirmed: not started at all, stopped
// before any command was sent, or stopped while waiting for the power
// state (the message says which). A command already sent is never
// abandoned: it completes and its result stands.
var ErrInterrupted = errors.New("interrupted")

// Run performs the action on every target and sends each Result to out as
// it completes. It returns when every target has a Result. When ctx ends
// (an interrupt), no new target is started (those report ErrInterrupted,
// "not started"), a target whose session is still opening stops before
// sending anything, a command in flight completes (bounded by Deadline),
// and --wait polling stops. out is not closed.
func Run(ctx context.Context, targets []Target, a Action, o Options, out chan<- Result) {
	if o.Fanout <= 0 {
		o.Fanout = 64
	}
	if o.WaitTimeout <= 0 {
		o.WaitTimeout = 60 * time.Second
	}
	if o.PollEvery <= 0 {
		o.PollEvery = time.Second
	}
	if o.Deadline <= 0 {
		o.Deadline = 30 * time.Second
		if o.Wait {
			o.Deadline += o.WaitTimeout
		}
	}
	work := make(chan Target)
	var wg sync.WaitGroup
	for range min(o.Fanout, len(targets)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for t := range work {
				out <- runOne(ctx, t, a, o)
			}
		}()
	}
	for i, t := range targets {
		if ctx.Err() == nil {
			select {
			case work <- t:
				continue
			case <-ctx.Done():
			}
		}
		for _, t := range targets[i:] {
			out <- Result{Name: t.Name, BMC: t.Config.Addr, Err: fmt.Errorf("%w: not started", ErrInterrupted)}
		}
		break
	}
	close(work)
	wg.Wait()
}

func runOne(ctx context.Context, t Target, a Action, o Options) Result {
	r := Result{Name: t.Name, BMC: t.Config.Addr, Interface: t.Config.Interface}
	if ctx.Err() != nil {
		r.Err = fmt.Errorf("%w: not started", ErrInterrupted)
		return r
	}
	// Commands run under cmdCtx: the per-target deadline, but not the
	// interrupt, so that a command the BMC may already have acted on is
	// never abandoned halfway. Opening the session and waiting are
	// interruptible (tctx): neither changes anything.
	cmdCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), o.Deadline)
	defer cancel()
	tctx, cancelT := context.WithCancel(cmdCtx)
	defer cancelT()
	stop := context.AfterFunc(ctx, cancelT)
	defer stop()
	s, err := ipmilan.Dial(tctx, t.Config)
	if err != nil {
		if ctx.Err() != nil {
			r.Err = fmt.Errorf("%w before any command was sent", ErrInterrupted)
		} else {
			r.Err = err
		}
		return r
	}
	defer s.Close()
	r.Session, r.CipherSuite = true, s.CipherSuite()
	r.State, r.Err = do(ctx, cmdCtx, tctx, s, a, o)
	return r
}

// Exec performs action a in the open session s and returns the result
// in Result.State words. The console manager runs power actions this way
// over a console's live SOL session: BMCs have few session slots. ctx
// bounds everything (the caller's deadline is its own); o.Fanout and
// o.Deadline do not apply.
func Exec(ctx context.Context, s *ipmilan.Session, a Action, o Options) (string, error) {
	if _, ok := controls[a]; !ok && a != Status && a != PXE && a != BIOS {
		return "", fmt.Errorf("unknown action %q", a)
	}
	if o.WaitTimeout <= 0 {
		o.WaitTimeout = 60 * time.Second
	}
	if o.PollEvery <= 0 {
		o.PollEvery = time.Second
	}
	return do(ctx, ctx, ctx, s, a, o)
}

// do runs the action on an open session. ictx is the interrupt, cmdCtx
// bounds commands, tctx is cmdCtx ended by the interrupt too.
func do(ictx, cmdCtx, tctx context.Context, s *ipmilan.Session, a Action, o Options) (string, error) {
	interrupted := func() error {
		if ictx.Err() != nil {
			return fmt.Errorf("%w before any command was sent", ErrInterrupted)
		}
		return nil
	}
	switch a {
	case Status:
		st, err := s.ChassisStatus(cmdCtx)
		if err != nil {
			return "", err
		}
		return onOff(st.PowerOn()), nil
	case PXE, BIOS:
		dev := ipmilan.BootPXE
		if a == BIOS {
			dev = ipmilan.BootBIOS
		}
		if err := interrupted(); err != nil {
			return "", err
		}
		if err := s.SetBootDevice(cmdCtx, dev, ipmilan.BootOptions{}); err != nil {
			return "", err
		}
		return "next boot " + string(a), nil
	}
	ctl := controls[a]
	note := "ok"
	if a == Cycle || a == Reset {
		// Cycle and reset need not power on a node that is off (IPMI
		// leaves it to the BMC); a sysadmin expects it on afterwards.
		st, err := s.ChassisStatus(tctx)
		if err := interrupted(); err != nil {
			return "", err
		}
		if err != nil {
			return "", err
		}
		if !st.PowerOn() {
			ctl, note = ipmilan.PowerOn, "ok (was off: powered on)"
		}
	}
	if err := interrupted(); err != nil {
		return "", err
	}
	if err := s.ChassisControl(cmdCtx, ctl); err != nil {
		return "", err
	}
	if !o.Wait || a == Diag {
		return note, nil
	}
	want := a != Off && a != Soft
	wctx, cancel := context.WithTimeout(tctx, o.WaitTimeout)
	defer cancel()
	tick := time.NewTicker(o.PollEvery)
	defer tick.Stop()
	waiting := func() error {
		return fmt.Errorf("%w while waiting: %s sent, power not yet seen %s", ErrInterrupted, a, onOff(want))
	}
	// Right after a cycle or reset the power may still read "on" before
	// it drops: give the BMC one poll interval first.
	first := a != Cycle && a != Reset
	for {
		if first {
			st, err := s.ChassisStatus(wctx)
			if err == nil && st.PowerOn() == want {
				return onOff(want), nil
			}
			if ictx.Err() != nil {
				return "", waiting()
			}
			if err != nil && !errors.Is(err, ipmilan.ErrNoAnswer) && wctx.Err() == nil {
				return "", err
			}
		}
		first = true
		select {
		case <-wctx.Done():
			if ictx.Err() != nil {
				return "", waiting()
			}
			return "", fmt.Errorf("power still not %s after %v", onOff(want), o.WaitTimeout)
		case <-tick.C:
		}
	}
}

// controls maps the chassis-control actions to their command.
var controls = map[Action]ipmilan.ChassisControl{On: ipmilan.PowerOn, Off: ipmilan.PowerOff, Cycle: ipmilan.PowerCycle,
	Reset: ipmilan.HardReset, Soft: ipmilan.SoftShutdown, Diag: ipmilan.DiagInterrupt}

func onOff(on bool) string {
	if on {
		return "on"
	}
	return "off"
}

// Describe turns an error into the one line a sysadmin reads after the
// host name: the cause without repeating the BMC address.
func Describe(err error, bmc string) string {
	switch {
	case errors.Is(err, ipmilan.ErrKG):
		return "authentication failed (wrong K_g BMC key)"
	case errors.Is(err, ipmilan.ErrAuth):
		return "authentication failed (wrong password or user)"
	case errors.Is(err, ipmilan.ErrInsecure):
		return "refusing insecure authentication (use --insecure to allow)"
	case errors.Is(err, ErrInterrupted):
		return err.Error()
	case errors.Is(err, context.DeadlineExceeded):
		return "timed out"
	}
	msg := err.Error()
	msg = strings.TrimPrefix(msg, "ipmilan: ")
	msg = strings.TrimPrefix(msg, bmc+": ")
	if i := strings.Index(msg, noAnswer); i >= 0 {
		return msg[i:]
	}
	return msg
}

// noAnswer starts the message of an unanswered BMC: "no answer after 3
// tries" is all a sysadmin needs, not the stage it happened in.
var noAnswer = ipmilan.ErrNoAnswer.Error()
