// Package power runs IPMI power actions on many BMCs at once with bounded
// parallelism, the engine behind `solgate power` (and, later, the console
// manager's power escape menu).
//
// Run takes a list of targets, each a display name with its ipmilan
// configuration, and reports one Result per target as it completes. It
// never stops early because one target failed: each result carries its
// own error, and callers decide the exit status.
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
}

// Run performs the action on every target and sends each Result to out as
// it completes. It returns when all are done (or ctx ends: the remaining
// targets report ctx's error). out is not closed.
func Run(ctx context.Context, targets []Target, a Action, o Options, out chan<- Result) {
	if o.Fanout <= 0 {
		o.Fanout = 64
	}
	o.defaults()
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
				tctx, cancel := context.WithTimeout(ctx, o.Deadline)
				state, err := do(tctx, t, a, o)
				cancel()
				out <- Result{Name: t.Name, BMC: t.Config.Addr, State: state, Err: err}
			}
		}()
	}
	for _, t := range targets {
		work <- t
	}
	close(work)
	wg.Wait()
}

func (o *Options) defaults() {
	if o.WaitTimeout <= 0 {
		o.WaitTimeout = 60 * time.Second
	}
	if o.PollEvery <= 0 {
		o.PollEvery = time.Second
	}
}

func do(ctx context.Context, t Target, a Action, o Options) (string, error) {
	s, err := ipmilan.Dial(ctx, t.Config)
	if err != nil {
		return "", err
	}
	defer s.Close()
	return Exec(ctx, s, a, o)
}

// Exec performs action a in the open session s and returns the result
// as Result.State words. The console manager runs power actions this way
// over a console's live SOL session: BMCs have few session slots.
// o.Fanout and o.Deadline do not apply (ctx bounds the call).
func Exec(ctx context.Context, s *ipmilan.Session, a Action, o Options) (string, error) {
	o.defaults()
	switch a {
	case Status:
		st, err := s.ChassisStatus(ctx)
		if err != nil {
			return "", err
		}
		return onOff(st.PowerOn()), nil
	case PXE, BIOS:
		dev := ipmilan.BootPXE
		if a == BIOS {
			dev = ipmilan.BootBIOS
		}
		if err := s.SetBootDevice(ctx, dev, ipmilan.BootOptions{}); err != nil {
			return "", err
		}
		return "next boot " + string(a), nil
	}
	ctl, ok := controls[a]
	if !ok {
		return "", fmt.Errorf("unknown action %q", a)
	}
	note := "ok"
	if a == Cycle || a == Reset {
		// Cycle and reset need not power on a node that is off (IPMI
		// leaves it to the BMC); a sysadmin expects it on afterwards.
		st, err := s.ChassisStatus(ctx)
		if err != nil {
			return "", err
		}
		if !st.PowerOn() {
			ctl, note = ipmilan.PowerOn, "ok (was off: powered on)"
		}
	}
	if err := s.ChassisControl(ctx, ctl); err != nil {
		return "", err
	}
	if !o.Wait || a == Diag {
		return note, nil
	}
	want := a != Off && a != Soft
	wctx, cancel := context.WithTimeout(ctx, o.WaitTimeout)
	defer cancel()
	tick := time.NewTicker(o.PollEvery)
	defer tick.Stop()
	// Right after a cycle or reset the power may still read "on" before
	// it drops: give the BMC one poll interval first.
	first := a != Cycle && a != Reset
	for {
		if first {
			st, err := s.ChassisStatus(wctx)
			if err == nil && st.PowerOn() == want {
				return onOff(want), nil
			}
			if err != nil && !errors.Is(err, ipmilan.ErrNoAnswer) && wctx.Err() == nil {
				return "", err
			}
		}
		first = true
		select {
		case <-wctx.Done():
			return "", fmt.Errorf("power still not %s after %v", onOff(want), o.WaitTimeout)
		case <-tick.C:
		}
	}
}

// controls maps the chassis-control actions to their command.
var controls = map[Action]ipmilan.ChassisControl{On: ipmilan.PowerOn, Off: ipmilan.PowerOff, Cycle: ipmilan.PowerCycle,
	Reset: ipmilan.HardReset, Soft: ipmilan.SoftShutdown, Diag: ipmilan.DiagInterupt}

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
