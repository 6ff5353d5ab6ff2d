package main

import (
	"context"
	"errors"
	"os"
	"os/signal"
	"syscall"
)

// signalError is the cause of a context ended by SIGINT or SIGTERM. A
// command that stops because of it returns it (see interrupted), and main
// exits 128 plus the signal number, as a shell reports a process killed by
// it: 130 for SIGINT, 143 for SIGTERM, so that a script can tell an
// interrupt from a failure.
type signalError struct {
	sig syscall.Signal
	msg string // what was left undone, if the command says
}

func (e *signalError) Error() string {
	name := map[syscall.Signal]string{syscall.SIGINT: "SIGINT", syscall.SIGTERM: "SIGTERM"}[e.sig]
	if name == "" {
		name = e.sig.String()
	}
	if e.msg != "" {
		return "interrupted (" + name + "): " + e.msg
	}
	return "interrupted (" + name + ")"
}

func (e *signalError) code() int { return 128 + int(e.sig) }

// interrupted returns the signal that ended ctx, with msg saying what was
// left undone, or nil when ctx did not end by a signal.
func interrupted(ctx context.Context, msg string) error {
	var se *signalError
	if errors.As(context.Cause(ctx), &se) {
		return &signalError{sig: se.sig, msg: msg}
	}
	return nil
}

// notifyContext returns a context that SIGINT or SIGTERM ends with a
// *signalError cause. After the first signal the default action is back,
// so a second Ctrl-C kills a command that does not stop in time.
func notifyContext() (context.Context, func()) {
	ctx, cancel := context.WithCancelCause(context.Background())
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	done := make(chan struct{})
	go func() {
		select {
		case s := <-sigs:
			signal.Stop(sigs)
			cancel(&signalError{sig: s.(syscall.Signal)})
		case <-done:
		}
	}()
	return ctx, func() {
		signal.Stop(sigs)
		close(done)
		cancel(nil)
	}
}

// keepRunningOnBrokenStderr is for the daemons (serve, demo): a write to
// a stdout or stderr whose reader went away (journald restarted, the end
// of a pipeline exited) would otherwise kill the process with SIGPIPE,
// and every console with it. Ignored, such a write fails with EPIPE
// instead, and the daemon log counts the records it could not write
// (solgate_daemon_log_dropped_records_total). The one-shot commands keep
// the default: 'solgate log node1 | head' ends quietly when head does.
func keepRunningOnBrokenStderr() { signal.Ignore(syscall.SIGPIPE) }
