package conserver

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/solgate/solgate/conserver/config"
	"github.com/solgate/solgate/conserver/power"
	"github.com/solgate/solgate/ipmilan"
	"github.com/solgate/solgate/logstore"
)

// Power performs a power action on the console's node and returns the
// result in a few words ("ok", "on", "next boot pxe"). It runs over the
// console's live IPMI session when SOL is up (BMCs have few session
// slots), else over a short-lived one. The user needs power access (read
// access for status). Every action but status is an event line in the
// console log (who, what, result) and a daemon log record; cycle, reset
// and power on of a node that was off also mark a boot.
func (c *Console) Power(ctx context.Context, id Identity, a power.Action) (string, error) {
	need := config.Power
	if a == power.Status {
		need = config.Read
	}
	if c.m.perms(id.User, c.name)&need != need {
		c.logger().Warn("conserver: power action refused", "user", id.User, "remote", id.Remote, "action", string(a), "err", ErrDenied)
		return "", fmt.Errorf("power %s %s: %w", a, c.name, ErrDenied)
	}
	c.mu.Lock()
	conn, set, stopped := c.conn, c.set, c.stopped
	c.mu.Unlock()
	if stopped {
		return "", fmt.Errorf("power %s %s: %w", a, c.name, ErrClosed)
	}
	run := func(s *ipmilan.Session) (string, error) {
		if a == power.On {
			st, err := s.ChassisStatus(ctx)
			if err != nil {
				return "", err
			}
			if st.PowerOn() {
				return "already on", nil
			}
		}
		return power.Exec(ctx, s, a, power.Options{})
	}
	var (
		res string
		err error
		via = "the console's session"
	)
	if conn != nil && conn.sess.IPMI() == nil {
		conn = nil
	}
	if c.m.powerFn != nil { // tests
		res, err = c.m.powerFn(ctx, c, a)
		conn, via = &solConn{}, "a test hook"
	} else if conn != nil {
		res, err = run(conn.sess.IPMI())
		if errors.Is(err, ipmilan.ErrClosed) {
			conn = nil // it ended meanwhile: use a session of our own
		}
	}
	if conn == nil {
		via = "a short-lived session"
		var s *ipmilan.Session
		s, err = c.m.opts.Dial(ctx, c.m.ipmiConfig(set))
		if err == nil {
			res, err = run(s)
			s.Close()
		}
	}
	if a == power.Status {
		return res, err
	}
	label := actionLabel(a)
	if err != nil {
		line := oneLine(err, set.ipmi.Addr)
		c.event(logstore.EventPower, fmt.Sprintf("%s by %s: failed: %s", label, id.User, line))
		c.logger().Warn("conserver: power action failed", "user", id.User, "remote", id.Remote, "action", string(a), "via", via, "err", err)
		return "", fmt.Errorf("%s", line)
	}
	c.event(logstore.EventPower, fmt.Sprintf("%s by %s: %s", label, id.User, res))
	c.logger().Info("conserver: power action", "user", id.User, "remote", id.Remote, "action", string(a), "via", via, "result", res)
	if startsBoot(a, res) {
		c.markBoot(fmt.Sprintf("%s by %s", label, id.User))
	}
	return res, nil
}

func actionLabel(a power.Action) string {
	switch a {
	case power.Cycle:
		return "power cycle"
	case power.Reset:
		return "reset"
	case power.On:
		return "power on"
	case power.Off:
		return "power off"
	case power.Soft:
		return "soft shutdown"
	case power.Diag:
		return "diagnostic interrupt"
	case power.PXE:
		return "next boot from the network"
	case power.BIOS:
		return "next boot into BIOS setup"
	}
	return string(a)
}

// startsBoot reports whether a successful action starts a boot.
func startsBoot(a power.Action, res string) bool {
	switch a {
	case power.Cycle, power.Reset:
		return true
	case power.On:
		return res != "already on"
	}
	return false
}

// oneLine is an error as an attached user reads it: no package prefixes,
// no BMC address repeated.
func oneLine(err error, bmc string) string {
	msg := power.Describe(err, bmc)
	if i := strings.IndexByte(msg, '\n'); i >= 0 {
		msg = msg[:i]
	}
	return msg
}
