package testkit

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// FindTool returns the path of a program in PATH or in the sbin
// directories (FreeIPMI and rsyslog install there, and a test run as a
// user may not have them in PATH), or "" when it is not installed.
// Whether a missing one skips or fails the test is the caller's rule.
func FindTool(name string) string {
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, dir := range []string{"/usr/sbin", "/sbin", "/usr/local/sbin"} {
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p
		}
	}
	return ""
}

// WaitTCP waits until every one of addrs accepts a TCP connection, in
// turn, all within timeout: a peer that was just started (name, as the
// failure messages call it) is ready once all its inputs listen. It fails
// the test when the time is up, or at once when exited is closed (the
// peer died), with the peer's stderr file, which says why.
func WaitTCP(t testing.TB, name string, exited <-chan struct{}, stderrPath string, timeout time.Duration, addrs ...string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for _, a := range addrs {
		for {
			c, err := net.Dial("tcp", a)
			if err == nil {
				c.Close()
				break
			}
			select {
			case <-exited:
				b, _ := os.ReadFile(stderrPath)
				t.Fatalf("%s exited: %s", name, b)
			default:
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s not listening on %s", name, a)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// StopProcess ends a started process: SIGTERM (by PID), and SIGKILL if
// it has not exited within grace; it returns once exited is closed (the
// caller's goroutine closes it when cmd.Wait returns), so that nothing of
// the process outlives the test.
func StopProcess(cmd *exec.Cmd, exited <-chan struct{}, grace time.Duration) {
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(grace):
		cmd.Process.Kill()
		<-exited
	}
}

// KillAtCleanup makes sure a process the test started does not outlive
// it: when the test ends, a process still running (exited not yet closed)
// is killed by PID and waited for. Then, if the test failed, onFail (when
// not nil) logs what the process wrote, to explain the failure.
func KillAtCleanup(t testing.TB, pid int, exited <-chan struct{}, onFail func()) {
	t.Cleanup(func() {
		select {
		case <-exited:
		default:
			syscall.Kill(pid, syscall.SIGKILL)
			<-exited
		}
		if t.Failed() && onFail != nil {
			onFail()
		}
	})
}
