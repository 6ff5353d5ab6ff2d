// Package epollnap is the epoll waiting that solgate's socket pollers
// (ipmilan) and bmcsim's fleet pollers share.
//
// While datagrams come, a poller naps between batches instead of
// blocking in epoll_wait: a thread blocked there keeps the Go runtime's
// sysmon retaking its P and waking every 20 µs (measured: 9% of the
// daemon at 250 busy consoles), a sender into a socket whose reader
// sleeps in epoll_wait pays for waking it (no real BMC makes its client
// pay that, so the simulator naps too), and a batch gathered over a nap
// costs one look for many datagrams. A datagram waits at most about a
// millisecond more (Nap, which the runtime may round up to its timer's
// millisecond when nothing else wakes it). After BlockAfter empty looks
// in a row the poller blocks in epoll_wait again, so an idle process does
// not poll.
package epollnap

import (
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

const (
	Nap        = 500 * time.Microsecond
	BlockAfter = 3
)

// Waiter is one poller's waiting state; the zero value is ready. Not
// safe for concurrent use.
type Waiter struct {
	empty int // looks in a row that found nothing
}

// Wait returns the next ready events of epfd: it looks without blocking
// (a raw system call: under load something is ready, and the thread
// stays out of the scheduler's blocking-system-call path), naps and
// returns 0 after an empty look while datagrams came lately, and blocks
// in epoll_wait once BlockAfter looks in a row found nothing. Errors are
// epoll_wait's (EINTR among them).
func (w *Waiter) Wait(epfd int, events []unix.EpollEvent) (int, error) {
	n, err := Poll(epfd, events)
	if n == 0 && err == nil {
		if w.empty < BlockAfter {
			w.empty++
			time.Sleep(Nap)
			return 0, nil
		}
		n, err = unix.EpollWait(epfd, events, -1)
	}
	if n > 0 {
		w.empty = 0
	}
	return n, err
}

// Handled is called after a batch of n events was handled: unless it
// filled events, the poller naps to let the next batch gather.
func (w *Waiter) Handled(n int, events []unix.EpollEvent) {
	if n > 0 && n < len(events) {
		time.Sleep(Nap)
	}
}

// Poll is epoll_wait with a zero timeout as a raw system call (it never
// blocks; epoll_pwait with no signal mask: every Linux architecture has
// it).
func Poll(epfd int, events []unix.EpollEvent) (int, error) {
	n, _, e := unix.RawSyscall6(unix.SYS_EPOLL_PWAIT, uintptr(epfd), uintptr(unsafe.Pointer(&events[0])), uintptr(len(events)), 0, 0, 0)
	if e != 0 {
		return 0, e
	}
	return int(n), nil
}
