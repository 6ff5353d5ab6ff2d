package epollnap

import (
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestWaiter: with nothing ready a Waiter returns 0 for BlockAfter looks
// (napping between them), then blocks until an event comes; after a
// batch it looks without blocking again.
func TestWaiter(t *testing.T) {
	ep, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(ep)
	efd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(efd)
	if err := unix.EpollCtl(ep, unix.EPOLL_CTL_ADD, efd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(efd)}); err != nil {
		t.Fatal(err)
	}
	events := make([]unix.EpollEvent, 8)
	var w Waiter
	wait := func() <-chan int {
		got := make(chan int, 1)
		go func() {
			n, err := w.Wait(ep, events)
			if err != nil {
				t.Error(err)
			}
			got <- n
		}()
		return got
	}
	signal := func() {
		one := [8]byte{1}
		unix.Write(efd, one[:])
	}
	drain := func() {
		var b [8]byte
		unix.Read(efd, b[:])
	}
	for round := range 2 {
		for i := range BlockAfter {
			select {
			case n := <-wait():
				if n != 0 {
					t.Fatalf("round %d, look %d: %d events, none ready", round, i, n)
				}
			case <-time.After(10 * time.Second):
				t.Fatalf("round %d, look %d: blocked before %d empty looks", round, i, BlockAfter)
			}
		}
		got := wait()
		select {
		case n := <-got:
			t.Fatalf("round %d: returned %d without an event after %d empty looks: it should block", round, n, BlockAfter)
		case <-time.After(50 * time.Millisecond):
		}
		signal()
		select {
		case n := <-got:
			if n != 1 {
				t.Fatalf("round %d: %d events, want the eventfd's", round, n)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("round %d: still blocked after the event", round)
		}
		drain() // the next round starts with nothing ready and looks again without blocking
	}
}
