package conserver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/solgate/solgate/conserver/power"
	"github.com/solgate/solgate/ipmilan"
	"github.com/solgate/solgate/logstore"
)

// SOL ownership. A BMC has one SOL payload per console; whoever activated
// it last holds it. solgate's policy per console (config steal):
//
//   - never: a payload held by another client (an operator's ipmitool sol
//     activate) is left alone. The console is Waiting ("held by BMC
//     session 0x... since T"), re-checks with the reconnect backoff
//     (capped at one minute) and connects once the payload is free. A
//     session taken from solgate is not taken back.
//   - when-idle (the default): as never for steal_grace (default 10 min)
//     from when solgate first found the payload held, then solgate takes
//     it. Taken from solgate, it waits steal_grace again before taking it
//     back. (A BMC does not say whether the other client is typing, so the
//     grace period stands for "idle".)
//   - always: solgate takes the payload at once, and back at once (after
//     the reconnect backoff) when it is taken from it.
//
// Whatever the policy:
//   - No ping-pong: once solgate has taken the payload from other clients
//     steal_limit times (default 3) within steal_window (default 1 h), the
//     next attempt does not take it: the console becomes Contested and
//     solgate stops dialling until a user reopens or forces it (escape o,
//     Console.Reopen, Console.Force) or its connection settings change.
//   - solgate's own stale payload (a previous daemon killed before it
//     could deactivate) is recognised by the BMC session ID recorded in
//     state_dir/sol-sessions and reclaimed at once (SOLOptions.StealFrom),
//     whatever the policy; it does not count as a takeover. So is one the
//     BMC activated for this daemon's own earlier try whose answers were
//     all lost (ownership.abandoned).
//   - A user with write access may take the payload now: reopen (escape
//     o) and force (Console.Force) take it from anyone.
//   - Every takeover and loss is an event line in the console log ("steal",
//     "stolen"), a daemon log record and a notice to the attached users,
//     who also see who holds the console and since when (escape i).
type ownership struct {
	owner       uint32      // the other session holding the payload (Waiting, Contested)
	heldSince   time.Time   // when solgate first found it held by another client
	takeovers   []time.Time // solgate's takeovers within steal_window
	contestedAt time.Time   // non-zero: contested since then
	lastFail    string      // reason of the last failed attempt, to log changes only
	// abandoned is the BMC session of this daemon's last attempt whose
	// activation failed for want of an answer: the BMC may have carried
	// it out (its answer lost) and still hold the payload for that
	// session until it times out. Used and set by the supervisor's
	// connect only.
	abandoned uint32
}

// waitCap bounds the re-check interval of a console waiting for a payload.
const waitCap = time.Minute

// connectResult is what a failed or noteworthy connection attempt found.
type connectResult struct {
	err       error
	took      string // solgate took the payload: from whom and why (an event line)
	held      bool   // another client holds the payload and it was left alone
	owner     uint32 // that client's BMC session ID (0: the BMC does not say)
	contested bool
}

// connect opens a session and activates SOL, applying the steal policy.
func (c *Console) connect(req *redial) (*solConn, *connectResult) {
	set := c.settings()
	cfg := c.m.ipmiConfig(set)
	ctx, cancel := context.WithTimeout(c.ctx, connectTimeout(cfg))
	defer cancel()
	stale := c.m.sess.get(c.name, cfg.Addr)
	for moved := false; ; moved = true {
		sess, err := c.m.open(ctx, cfg)
		if err != nil {
			return nil, &connectResult{err: err}
		}
		res := &connectResult{}
		sol, err := sess.ActivateSOL(ctx, ipmilan.SOLOptions{PowerEvery: powerEvery})
		var alt *ipmilan.AltPortError
		if errors.As(err, &alt) && !moved {
			// As FreeIPMI: redo the session on the port the BMC named.
			sess.Close()
			host, _, _ := net.SplitHostPort(cfg.Addr)
			cfg.Addr = net.JoinHostPort(host, strconv.Itoa(int(alt.Port)))
			continue
		}
		var ae *ipmilan.SOLActiveError
		if errors.As(err, &ae) {
			opts, took, ok := c.mayTake(ae.Owner, stale, c.own.abandoned, req, set.cfg.Steal)
			switch {
			case ok:
				opts.PowerEvery = powerEvery
				sol, err = sess.ActivateSOL(ctx, opts)
				if err == nil {
					res.took = took
				}
			default:
				res.held, res.owner = true, ae.Owner
				c.mu.Lock()
				res.contested = !c.own.contestedAt.IsZero()
				c.mu.Unlock()
			}
		}
		if err != nil {
			if errors.Is(err, ipmilan.ErrNoAnswer) {
				c.own.abandoned = sess.ID()
			}
			sess.Close()
			res.err = err
			return nil, res
		}
		c.own.abandoned = 0
		return newSOLConn(c.ctx, sess, sol), res
	}
}

// powerEvery: every fourth keepalive looks at the chassis power state
// (instead of the payload's owner), so a node powered on by someone else
// gets a boot marker; it costs no extra request.
const powerEvery = 4

// connectTimeout bounds one connection attempt: the handshake is about
// ten exchanges, each with its retries.
func connectTimeout(cfg ipmilan.Config) time.Duration {
	t := cfg.Timeout
	if t <= 0 {
		t = time.Second
	}
	return max(30*time.Second, 12*t)
}

// mayTake decides whether to take a payload held by session owner, and
// returns the activation options and the event text if so. A payload of
// solgate's own, stale (a previous daemon's session, from state_dir) or
// abandoned (this daemon's earlier try: see ownership.abandoned), is
// reclaimed whatever the policy, and counts as no takeover.
func (c *Console) mayTake(owner, stale, abandoned uint32, req *redial, policy string) (ipmilan.SOLOptions, string, bool) {
	switch {
	case owner == 0:
	case owner == stale:
		return ipmilan.SOLOptions{StealFrom: owner},
			fmt.Sprintf("reclaimed the SOL payload from this daemon's previous session %#x (left by a crash)", owner), true
	case owner == abandoned:
		return ipmilan.SOLOptions{StealFrom: owner},
			fmt.Sprintf("reclaimed the SOL payload from this daemon's earlier try, BMC session %#x (the BMC activated it, its answer was lost)", owner), true
	}
	if req != nil && req.steal {
		return ipmilan.SOLOptions{Steal: true},
			fmt.Sprintf("took the SOL payload from BMC session %#x (%s by %s)", owner, req.reason, req.by.User), true
	}
	d := c.m.daemon()
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.own.heldSince.IsZero() {
		c.own.heldSince = now
	}
	c.own.owner = owner
	switch policy {
	case "always":
	case "when-idle":
		if now.Sub(c.own.heldSince) < d.StealGrace {
			return ipmilan.SOLOptions{}, "", false
		}
	default: // never
		return ipmilan.SOLOptions{}, "", false
	}
	// No ping-pong: count our takeovers within the window.
	keep := c.own.takeovers[:0]
	for _, t := range c.own.takeovers {
		if now.Sub(t) < d.StealWindow {
			keep = append(keep, t)
		}
	}
	c.own.takeovers = keep
	if len(keep) >= d.StealLimit {
		c.own.contestedAt = now
		return ipmilan.SOLOptions{}, "", false
	}
	c.own.takeovers = append(c.own.takeovers, now)
	return ipmilan.SOLOptions{Steal: true},
		fmt.Sprintf("took the SOL payload from BMC session %#x (steal = %s; takeover %d of %d allowed within %v)",
			owner, policy, len(c.own.takeovers), d.StealLimit, d.StealWindow), true
}

// failed records a failed attempt and returns the delay before the next
// one (negative: wait to be woken).
func (c *Console) failed(res *connectResult, bo *backoff) time.Duration {
	if c.ctx.Err() != nil {
		return 0
	}
	p := c.m.backoff()
	d := c.m.daemon()
	set := c.settings()
	now := time.Now()
	var (
		st     State
		reason string
		delay  time.Duration
		kind   = logstore.EventReconnect
	)
	switch {
	case res.contested:
		c.mu.Lock()
		n := len(c.own.takeovers)
		c.mu.Unlock()
		st, delay, kind = Contested, -1, logstore.EventStolen
		reason = fmt.Sprintf("contested: the SOL payload was taken back from solgate after %d takeovers within %v; held by %s; solgate stopped taking it (reopen to take it)",
			n, d.StealWindow, ownerName(res.owner))
	case res.held:
		delay = min(bo.fail(p, c.m.rnd), waitCap)
		c.mu.Lock()
		since := c.own.heldSince
		c.mu.Unlock()
		if set.cfg.Steal == "when-idle" {
			if left := since.Add(d.StealGrace).Sub(now); left < delay {
				delay = max(left, p.Min/2)
			}
		}
		st, kind = Waiting, logstore.EventStolen
		reason = fmt.Sprintf("SOL held by another client (%s) since %s; steal = %s: %s", ownerName(res.owner),
			since.UTC().Format("2006-01-02 15:04:05Z"), set.cfg.Steal, waitPlan(set.cfg.Steal, since.Add(d.StealGrace)))
	case permanent(res.err):
		st, delay = Down, bo.slowest(p, c.m.rnd)
		reason = describe(res.err, set.ipmi.Addr)
	default:
		st, delay = Retrying, bo.fail(p, c.m.rnd)
		reason = describe(res.err, set.ipmi.Addr)
	}
	var next time.Time
	if delay >= 0 {
		next = now.Add(delay)
	}
	c.mu.Lock()
	c.setStateLocked(st, reason, next)
	changed := c.own.lastFail != reason
	c.own.lastFail = reason
	c.mu.Unlock()
	if changed {
		// One line per change of reason, not per attempt: a BMC down for
		// a day must not fill the console log.
		c.event(kind, reason)
		c.tell(reason)
		c.logger().Warn("conserver: SOL not connected", "state", st, "err", res.err, "reason", reason, "retry_in", delay.Round(time.Millisecond))
	} else {
		c.logger().Debug("conserver: SOL not connected", "state", st, "err", res.err, "retry_in", delay.Round(time.Millisecond))
	}
	return delay
}

func ownerName(id uint32) string {
	if id == 0 {
		return "a BMC session the BMC does not name"
	}
	return fmt.Sprintf("BMC session %#x", id)
}

func waitPlan(policy string, takeAt time.Time) string {
	switch policy {
	case "when-idle":
		return "solgate takes it at " + takeAt.UTC().Format("15:04:05Z") + " if it is still held"
	case "always":
		return "taking it"
	}
	return "waiting for it to be released"
}

// permanent reports failures that retrying soon cannot fix, and that
// could lock the account out if hammered.
func permanent(err error) bool {
	var ce *ipmilan.CompletionError
	if errors.As(err, &ce) && ce.Code == 0x81 { // Activate Payload: SOL disabled
		return true
	}
	return errors.Is(err, ipmilan.ErrAuth) || errors.Is(err, ipmilan.ErrKG) || errors.Is(err, ipmilan.ErrInsecure) ||
		errors.Is(err, ipmilan.ErrUnsupported)
}

// describe is the one line users read about a connection failure.
func describe(err error, bmc string) string {
	var ce *ipmilan.CompletionError
	var ae *ipmilan.SOLActiveError
	switch {
	case err == nil:
		return "closed"
	case errors.As(err, &ae):
		return "SOL in use by another client (" + ownerName(ae.Owner) + ")"
	case errors.Is(err, ipmilan.ErrSOLStolen):
		return "SOL payload taken by another client"
	case errors.Is(err, ipmilan.ErrSOLDeactivated):
		return "SOL deactivated by the BMC (disabled, or taken by another client)"
	case errors.As(err, &ce) && ce.Code == 0x81:
		return "SOL is disabled on the BMC (or not permitted for this user)"
	case errors.Is(err, ipmilan.ErrNoAnswer):
		return "BMC unreachable (" + power.Describe(err, bmc) + ")"
	}
	return power.Describe(err, bmc)
}
