package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"golang.org/x/sys/unix"
)

func envOf(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

// listenNotify listens on a unixgram socket as systemd does for
// NOTIFY_SOCKET and returns its name and a function that reads one message.
func listenNotify(t *testing.T, name string) (string, func() string) {
	t.Helper()
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return name, func() string {
		t.Helper()
		buf := make([]byte, 4096)
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		n, _, err := c.ReadFromUnix(buf)
		if err != nil {
			t.Fatalf("reading the notify socket: %v", err)
		}
		return string(buf[:n])
	}
}

func TestNotifierMessages(t *testing.T) {
	t.Parallel()
	for _, kind := range []string{"path", "abstract"} {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			name := filepath.Join(t.TempDir(), "notify")
			if kind == "abstract" {
				name = fmt.Sprintf("@solgate-test-%d-%d", os.Getpid(), time.Now().UnixNano())
			}
			sock, read := listenNotify(t, name)
			n, err := newNotifier(envOf(map[string]string{"NOTIFY_SOCKET": sock}), os.Getpid())
			if err != nil || n == nil {
				t.Fatalf("newNotifier: %v, %v", n, err)
			}
			if err := n.Ready("40 consoles\nconnecting"); err != nil {
				t.Fatal(err)
			}
			if got := read(); got != "READY=1\nSTATUS=40 consoles connecting\n" {
				t.Errorf("Ready sent %q", got)
			}
			var ts unix.Timespec
			unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
			before := ts.Nano() / 1000
			if err := n.Reloading(); err != nil {
				t.Fatal(err)
			}
			unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
			after := ts.Nano() / 1000
			got := read()
			us, ok := strings.CutPrefix(got, "RELOADING=1\nMONOTONIC_USEC=")
			v, err := strconv.ParseInt(strings.TrimSuffix(us, "\n"), 10, 64)
			if !ok || !strings.HasSuffix(us, "\n") || err != nil || v < before || v > after {
				t.Errorf("Reloading sent %q; want MONOTONIC_USEC between %d and %d", got, before, after)
			}
			for _, tc := range []struct {
				f    func() error
				want string
			}{
				{func() error { return n.Ready("") }, "READY=1\n"},
				{n.Stopping, "STOPPING=1\n"},
				{n.Watchdog, "WATCHDOG=1\n"},
				{func() error { return n.Status("reloading: 3 consoles changed") }, "STATUS=reloading: 3 consoles changed\n"},
			} {
				if err := tc.f(); err != nil {
					t.Fatal(err)
				}
				if got := read(); got != tc.want {
					t.Errorf("sent %q, want %q", got, tc.want)
				}
			}
		})
	}
}

// TestNotifierWithoutSystemd: no NOTIFY_SOCKET, every call is a no-op.
func TestNotifierWithoutSystemd(t *testing.T) {
	t.Parallel()
	n, err := newNotifier(envOf(nil), os.Getpid())
	if n != nil || err != nil {
		t.Fatalf("newNotifier without NOTIFY_SOCKET: %v, %v", n, err)
	}
	for _, f := range []func() error{func() error { return n.Ready("x") }, n.Reloading, n.Stopping, n.Watchdog, func() error { return n.Status("x") }} {
		if err := f(); err != nil {
			t.Errorf("nil notifier: %v", err)
		}
	}
	if n.WatchdogInterval() != 0 {
		t.Error("nil notifier has a watchdog")
	}
	n.RunWatchdog(context.Background(), nil, nil) // returns at once
}

func TestNotifierErrors(t *testing.T) {
	t.Parallel()
	if _, err := newNotifier(envOf(map[string]string{"NOTIFY_SOCKET": "vsock:2:1234"}), 1); err == nil || !strings.Contains(err.Error(), `NOTIFY_SOCKET "vsock:2:1234"`) {
		t.Errorf("vsock socket: %v", err)
	}
	// A socket nobody listens on: the send fails and says why.
	n, err := newNotifier(envOf(map[string]string{"NOTIFY_SOCKET": filepath.Join(t.TempDir(), "gone")}), 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Ready("x"); err == nil || !strings.HasPrefix(err.Error(), "sd_notify: ") {
		t.Errorf("send to a missing socket: %v", err)
	}
}

func TestWatchdogInterval(t *testing.T) {
	t.Parallel()
	const pid = 4242
	for _, tc := range []struct {
		usec, wpid string
		want       time.Duration
		err        bool
	}{
		{"", "", 0, false},
		{"30000000", "", 30 * time.Second, false},
		{"30000000", "4242", 30 * time.Second, false},
		{"30000000", "1", 0, false}, // another process's watchdog
		{"500", "4242", 500 * time.Microsecond, false},
		{"0", "", 0, true},
		{"-5", "", 0, true},
		{"30s", "", 0, true},
		{"99999999999999999999", "", 0, true},
		{"1000", "x", 0, true},
	} {
		got, err := watchdogInterval(envOf(map[string]string{"WATCHDOG_USEC": tc.usec, "WATCHDOG_PID": tc.wpid}), pid)
		if got != tc.want || (err != nil) != tc.err {
			t.Errorf("WATCHDOG_USEC=%q WATCHDOG_PID=%q: %v, %v; want %v, error %v", tc.usec, tc.wpid, got, err, tc.want, tc.err)
		}
	}
	n, err := newNotifier(envOf(map[string]string{"NOTIFY_SOCKET": "@x", "WATCHDOG_USEC": "20000000"}), pid)
	if err != nil || n.WatchdogInterval() != 20*time.Second {
		t.Errorf("notifier watchdog %v, %v", n.WatchdogInterval(), err)
	}
}

// TestRunWatchdog checks the ping schedule on a fake clock: at once, then
// every half interval; none while unhealthy; one report per run of
// failures; nothing after the context ends.
func TestRunWatchdog(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		var mu sync.Mutex
		var pings []time.Duration
		failSend := false
		n := &notifier{watchdog: 30 * time.Second, send: func(msg []byte) error {
			mu.Lock()
			defer mu.Unlock()
			if string(msg) != "WATCHDOG=1\n" {
				t.Errorf("watchdog sent %q", msg)
			}
			if failSend {
				return errors.New("refused")
			}
			pings = append(pings, time.Since(start))
			return nil
		}}
		healthy := true
		var reports []string
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			n.RunWatchdog(ctx, func() error {
				mu.Lock()
				defer mu.Unlock()
				if !healthy {
					return errors.New("stuck")
				}
				return nil
			}, func(err error) { reports = append(reports, err.Error()) })
			close(done)
		}()
		set := func(h, f bool) {
			mu.Lock()
			healthy, failSend = h, f
			mu.Unlock()
		}
		time.Sleep(46 * time.Second) // pings at 0, 15, 30, 45 s
		set(false, false)
		time.Sleep(30 * time.Second) // 60, 75: unhealthy
		set(true, true)
		time.Sleep(30 * time.Second) // 90, 105: sends fail
		set(true, false)
		time.Sleep(15 * time.Second) // 120
		cancel()
		<-done
		time.Sleep(time.Minute)
		synctest.Wait()
		want := []time.Duration{0, 15 * time.Second, 30 * time.Second, 45 * time.Second, 120 * time.Second}
		mu.Lock()
		defer mu.Unlock()
		if fmt.Sprint(pings) != fmt.Sprint(want) {
			t.Errorf("pings at %v, want %v", pings, want)
		}
		// 60 to 105 s is one run of failures (unhealthy, then the sends
		// refused): reported once, by its first cause.
		if fmt.Sprint(reports) != "[stuck]" {
			t.Errorf("failure reports %q, want one for the run of failures, [stuck]", reports)
		}
	})
}

// The watchdog's health check asks the daemon's loop: a loop that takes
// calls answers, a stuck one makes it withhold the ping (on the fake
// clock, after the timeout), and before ready (starting) or after
// (stopping) there is no loop to ask.
func TestLoopAnswers(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		d := &daemon{calls: make(chan func(context.Context)), loopDone: make(chan struct{})}
		if err := d.loopAnswers(time.Second); err != nil {
			t.Errorf("not ready: %v, want nil", err)
		}
		d.ready.Store(true)
		start := time.Now()
		if err := d.loopAnswers(10 * time.Second); err == nil || !strings.Contains(err.Error(), "took no call in 10s") {
			t.Errorf("no loop: %v, want the ping withheld", err)
		}
		if waited := time.Since(start); waited != 10*time.Second {
			t.Errorf("gave up after %v, want 10s", waited)
		}
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		go func() { // the loop
			for {
				select {
				case f := <-d.calls:
					f(ctx)
				case <-ctx.Done():
					return
				}
			}
		}()
		if err := d.loopAnswers(10 * time.Second); err != nil {
			t.Errorf("a loop that takes calls: %v", err)
		}
		cancel()
		synctest.Wait()
		// The loop ends (SIGTERM) while a check waits for it: the check
		// gives up at once, so the watchdog does not hold up the exit.
		go func() {
			time.Sleep(time.Second)
			close(d.loopDone)
		}()
		start = time.Now()
		if err := d.loopAnswers(10 * time.Second); err != nil || time.Since(start) != time.Second {
			t.Errorf("loop ended during the check: %v after %v, want nil after 1s", err, time.Since(start))
		}
	})
}
