package main

// systemd's readiness and watchdog protocol (sd_notify(3)), for `solgate
// serve` under the Type=notify unit in etc/solgate.service. The daemon
// makes three calls:
//
//	n, err := newNotifier(os.Getenv, os.Getpid()) // log err; n may be nil
//	... listeners up, Manager.Apply returned (every console dialling):
//	n.Ready(fmt.Sprintf("%d consoles", len(cfg.Consoles)))
//	go n.RunWatchdog(ctx, nil, logErr) // WATCHDOG=1 every WatchdogSec/2 until ctx ends
//	... on SIGHUP:   n.Reloading(); apply the new config; n.Ready(status)
//	... on shutdown: n.Stopping(); then Manager.Shutdown
//
// Everything is a no-op without NOTIFY_SOCKET (not started by systemd) and
// on a nil *notifier.

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// notifier sends state changes to systemd's notification socket. Its
// methods are safe for concurrent use (each message is one datagram) and
// do nothing on a nil *notifier.
type notifier struct {
	addr     *net.UnixAddr
	watchdog time.Duration
	// send delivers one message; tests replace it.
	send func(msg []byte) error
}

// newNotifier reads NOTIFY_SOCKET, WATCHDOG_USEC and WATCHDOG_PID through
// getenv. Without NOTIFY_SOCKET it returns nil, nil: there is no one to
// tell. An unusable NOTIFY_SOCKET is an error, and the notifier is nil.
func newNotifier(getenv func(string) string, pid int) (*notifier, error) {
	sock := getenv("NOTIFY_SOCKET")
	if sock == "" {
		return nil, nil
	}
	// A path, or @name for the abstract namespace (Go's net package turns
	// the leading @ into the NUL byte the kernel expects).
	if !strings.HasPrefix(sock, "/") && !strings.HasPrefix(sock, "@") {
		return nil, fmt.Errorf("sd_notify: NOTIFY_SOCKET %q: only socket paths and @abstract names are supported", sock)
	}
	n := &notifier{addr: &net.UnixAddr{Name: sock, Net: "unixgram"}}
	n.send = n.sendSocket
	wd, err := watchdogInterval(getenv, pid)
	if err != nil {
		return n, err
	}
	n.watchdog = wd
	return n, nil
}

// watchdogInterval is systemd's WatchdogSec for this process: WATCHDOG_USEC,
// if WATCHDOG_PID is unset or names pid. 0 means no watchdog.
func watchdogInterval(getenv func(string) string, pid int) (time.Duration, error) {
	us := getenv("WATCHDOG_USEC")
	if us == "" {
		return 0, nil
	}
	if p := getenv("WATCHDOG_PID"); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil {
			return 0, fmt.Errorf("sd_notify: WATCHDOG_PID %q is not a process ID", p)
		}
		if n != pid {
			return 0, nil // meant for another process
		}
	}
	n, err := strconv.ParseUint(us, 10, 63)
	if err != nil || n == 0 || n > uint64(1<<63-1)/1000 {
		return 0, fmt.Errorf("sd_notify: WATCHDOG_USEC %q is not a positive number of microseconds", us)
	}
	return time.Duration(n) * time.Microsecond, nil
}

func (n *notifier) sendSocket(msg []byte) error {
	c, err := net.DialUnix("unixgram", nil, n.addr)
	if err != nil {
		return fmt.Errorf("sd_notify: %w", err)
	}
	defer c.Close()
	if _, err := c.Write(msg); err != nil {
		return fmt.Errorf("sd_notify: %w", err)
	}
	return nil
}

func (n *notifier) notify(lines ...string) error {
	if n == nil {
		return nil
	}
	return n.send([]byte(strings.Join(lines, "\n") + "\n"))
}

// statusLine is STATUS= with the text on one line.
func statusLine(s string) string {
	return "STATUS=" + strings.Map(func(r rune) rune {
		if r == '\n' || r == '\r' {
			return ' '
		}
		return r
	}, s)
}

// Ready says the daemon is serving: after start-up, and after each reload.
func (n *notifier) Ready(status string) error {
	if status == "" {
		return n.notify("READY=1")
	}
	return n.notify("READY=1", statusLine(status))
}

// Reloading says a reload has begun; Ready ends it. MONOTONIC_USEC lets
// systemd (Type=notify-reload) match the reload to the request.
func (n *notifier) Reloading() error {
	if n == nil {
		return nil
	}
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return fmt.Errorf("sd_notify: clock_gettime: %w", err)
	}
	return n.notify("RELOADING=1", "MONOTONIC_USEC="+strconv.FormatInt(ts.Nano()/1000, 10))
}

// Stopping says the daemon is shutting down.
func (n *notifier) Stopping() error { return n.notify("STOPPING=1") }

// Status sets the one-line status systemctl status shows.
func (n *notifier) Status(s string) error { return n.notify(statusLine(s)) }

// Watchdog tells systemd the daemon is alive.
func (n *notifier) Watchdog() error { return n.notify("WATCHDOG=1") }

// WatchdogInterval is systemd's WatchdogSec for this process, 0 if none.
func (n *notifier) WatchdogInterval() time.Duration {
	if n == nil {
		return 0
	}
	return n.watchdog
}

// RunWatchdog sends WATCHDOG=1 at once and then every half watchdog
// interval until ctx ends, skipping a ping while healthy (if not nil)
// returns an error, so that systemd restarts a daemon that is stuck. It
// returns at once when there is no watchdog. onErr (if not nil) hears the
// first of each run of failed sends, so a missing socket does not flood the
// log.
func (n *notifier) RunWatchdog(ctx context.Context, healthy func() error, onErr func(error)) {
	iv := n.WatchdogInterval()
	if iv == 0 {
		return
	}
	tick := time.NewTicker(iv / 2)
	defer tick.Stop()
	failing := false
	for {
		var err error
		if healthy != nil {
			err = healthy() // unhealthy: no ping, and systemd restarts the daemon once WatchdogSec passes
		}
		if err == nil {
			err = n.Watchdog()
		}
		if err != nil && !failing && onErr != nil {
			onErr(err)
		}
		failing = err != nil
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}
