//go:build linux

package ipmilan

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/solgate/solgate/ipmilan/internal/epollnap"
)

// On Linux the sessions' sockets are read by a few shared pollers instead
// of a goroutine each. A console's BMC sends one packet and waits for its
// ACK (SOL is stop-and-wait), so a socket almost never has a second
// datagram queued: a goroutine per socket costs, per packet, the Go
// netpoller's wake-up of that goroutine, a trip through the scheduler and
// a second read that only says EAGAIN. A poller is one goroutine blocked
// in epoll_wait on an epoll instance of its own, in which each of its
// sessions' sockets is registered level-triggered: per ready socket it
// reads one datagram and hands it to the session's handle on its own
// goroutine, as readLoop would, and moves on; a socket with more queued
// is simply reported again by the next epoll_wait.
//
// A registration is named in its epoll events by an ID that is never
// reused, not by its descriptor: once a session has ended, its socket's
// number can be reused at once by a new socket, and an event of the old
// registration still in a poller's batch must not read the new socket.
// Removal (Session.fail, through closeSocket) takes the registration out
// of the epoll set and the poller's table under the poller's mutex, and
// closes the socket only once the poller is not reading or handling it:
// at once if it is not, or, if it is (removal came from inside the
// session's own handle, or from another goroutine meanwhile), by the
// poller right after that handle returns. Either way no lock is held
// across handle, so handle may end its own session. The session's wg
// count for its reader is released only after that close, so Close and
// shutdown still return only when no handle runs for the session any
// more.
//
// handle runs on the poller for every session of it, so it must not block:
// see handle's paths (the SOL engine takes short locks; its sink, the
// console manager's output, never blocks by contract).

// pollerSessions is how many sessions a poller takes before another is
// started, up to maxPollers; past that each new session goes to the
// poller with fewest. More sessions per poller means fuller epoll_wait
// batches (fewer wake-ups per packet) under load; a poller is one
// goroutine, so at most one core's worth of packet handling. 512 sessions
// printing at 115200 baud are about 27,000 packets a second (some 220
// characters each); measured (test/scale TestBaud, 2 shared cores), the
// daemon spends 24-28 µs per packet in all, about nine tenths of it on
// the poller's goroutine (the console's output goes to its log there), so
// one poller at that load is busy about 0.6 of a core. Pollers beyond
// GOMAXPROCS could not run at once anyway; each costs two descriptors (its
// epoll instance and an eventfd).
const pollerSessions = 512

func maxPollers() int { return max(1, runtime.GOMAXPROCS(0)) }

// pollerEvents is how many ready sockets one epoll_wait returns at most.
const pollerEvents = 128

// thePollers are the process's pollers.
var thePollers pollerPool

// pollerPool starts pollers as sessions need them and lets one end when
// its last session leaves.
type pollerPool struct {
	mu      sync.Mutex // guards pollers, each poller's n, and nextID; taken before a poller's mu, never while holding it
	pollers []*poller
	nextID  uint64
}

// poller is one goroutine reading the sockets registered in its epoll
// instance.
type poller struct {
	epfd   int
	wakefd int // an eventfd in the epoll set (ID 0): written to make run look at quit
	n      int // registrations, counted by pollerPool.mu
	quit   atomic.Bool

	// mu guards regs, busy and each registration's removed and
	// closeAfter. It is held only for a lookup or a removal, never
	// across a read or handle.
	mu   sync.Mutex
	regs map[uint64]*pollReg
	busy *pollReg // the registration whose datagram run is reading or handling
}

// pollReg is one session's socket in a poller.
type pollReg struct {
	p    *poller
	id   uint64
	s    *Session
	conn io.Closer
	fd   int // valid until conn is closed, which removal does

	removed    bool // out of the epoll set and regs
	closeAfter bool // removed while busy: run closes it once handle returns
}

// testHookPollerBatch, if set (tests only), runs on the poller after each
// epoll_wait, before the batch is handled, with the IDs in it.
var testHookPollerBatch atomic.Pointer[func(ids []uint64)]

// dialPolled opens s's socket, connected to raddr, and has a poller read
// it, and reports whether it did; if not (the system refused a socket, an
// epoll instance or the registration), the caller opens a net.UDPConn and
// starts readLoop. s.wg counts the reader already.
func (s *Session) dialPolled(raddr *net.UDPAddr) bool {
	c, err := dialRawUDP(raddr)
	if err != nil {
		s.log.Debug("no socket for a shared poller", "err", err)
		return false
	}
	s.conn = c
	if err := thePollers.register(s, c, c.fd); err != nil {
		s.log.Debug("no shared poller, the session reads its socket on a goroutine of its own", "err", err)
		c.Close()
		s.conn = nil
		return false
	}
	return true
}

// rawUDP is a connected, non-blocking UDP socket that the Go runtime does
// not know of: a poller reads it. A net.UDPConn's socket is in the
// runtime's own epoll set too (edge-triggered), so each datagram would
// also wake the runtime's netpoller, for nothing: measured, that left the
// daemon's CPU per packet where a goroutine per socket had it.
//
// Write never blocks: a full send buffer drops the datagram, as a lossy
// network would (retransmission deals with it), so that a write from a
// poller's handle cannot stall the poller's other sessions.
type rawUDP struct {
	// mu is read-held around each write and held by Close, so that the
	// descriptor is never closed, and its number reused by another socket,
	// under a write.
	mu     sync.RWMutex
	fd     int
	closed bool
	raddr  *net.UDPAddr
}

func dialRawUDP(raddr *net.UDPAddr) (*rawUDP, error) {
	var sa unix.Sockaddr
	family := unix.AF_INET
	if ip4 := raddr.IP.To4(); ip4 != nil {
		sa4 := &unix.SockaddrInet4{Port: raddr.Port}
		copy(sa4.Addr[:], ip4)
		sa = sa4
	} else if ip6 := raddr.IP.To16(); ip6 != nil {
		family = unix.AF_INET6
		sa6 := &unix.SockaddrInet6{Port: raddr.Port}
		copy(sa6.Addr[:], ip6)
		if raddr.Zone != "" {
			ifi, err := net.InterfaceByName(raddr.Zone)
			if err != nil {
				return nil, err
			}
			sa6.ZoneId = uint32(ifi.Index)
		}
		sa = sa6
	} else {
		return nil, fmt.Errorf("%v: not an IP address", raddr)
	}
	fd, err := unix.Socket(family, unix.SOCK_DGRAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, unix.IPPROTO_UDP)
	if err != nil {
		return nil, os.NewSyscallError("socket", err)
	}
	if err := unix.Connect(fd, sa); err != nil {
		unix.Close(fd)
		return nil, os.NewSyscallError("connect", err)
	}
	return &rawUDP{fd: fd, raddr: raddr}, nil
}

// Read is never called: the socket's poller reads it.
func (c *rawUDP) Read([]byte) (int, error) {
	return 0, errors.New("ipmilan: internal error: read of a polled socket")
}

func (c *rawUDP) Write(b []byte) (int, error) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.closed {
		return 0, &net.OpError{Op: "write", Net: "udp", Addr: c.raddr, Err: net.ErrClosed}
	}
	for {
		n, err := sendDontWait(c.fd, b)
		switch err {
		case nil:
			return n, nil
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			return len(b), nil // dropped: see rawUDP
		}
		return 0, &net.OpError{Op: "write", Net: "udp", Addr: c.raddr, Err: os.NewSyscallError("write", err)}
	}
}

func (c *rawUDP) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil
	}
	c.closed = true
	return unix.Close(c.fd)
}

// register adds s's socket (descriptor fd of c, which closes it) to a
// poller.
func (pp *pollerPool) register(s *Session, c io.Closer, fd int) error {
	pp.mu.Lock()
	p, err := pp.pickLocked()
	if err != nil {
		pp.mu.Unlock()
		return err
	}
	p.n++
	pp.nextID++
	r := &pollReg{p: p, id: pp.nextID, s: s, conn: c, fd: fd}
	pp.mu.Unlock()
	// Before the poller can see it: a packet handled at once may end the
	// session.
	s.closeSocket = r.remove
	p.mu.Lock()
	p.regs[r.id] = r
	p.mu.Unlock()
	ev := unix.EpollEvent{Events: unix.EPOLLIN}
	setEventID(&ev, r.id)
	if err := unix.EpollCtl(p.epfd, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
		p.mu.Lock()
		delete(p.regs, r.id)
		r.removed = true
		p.mu.Unlock()
		s.closeSocket = nil
		pp.release(p)
		return fmt.Errorf("epoll_ctl add: %w", err)
	}
	return nil
}

// pickLocked returns the poller for a new session, starting one if the
// running ones are full and there may be more. pp.mu is held.
func (pp *pollerPool) pickLocked() (*poller, error) {
	var least *poller
	for _, p := range pp.pollers {
		if p.n < pollerSessions {
			return p, nil
		}
		if least == nil || p.n < least.n {
			least = p
		}
	}
	if least != nil && len(pp.pollers) >= maxPollers() {
		return least, nil
	}
	p, err := newPoller()
	if err != nil {
		if least != nil {
			return least, nil
		}
		return nil, err
	}
	pp.pollers = append(pp.pollers, p)
	go p.run()
	return p, nil
}

// release counts one registration of p gone; the last one stops p.
func (pp *pollerPool) release(p *poller) {
	pp.mu.Lock()
	defer pp.mu.Unlock()
	p.n--
	if p.n > 0 {
		return
	}
	for i, q := range pp.pollers {
		if q == p {
			pp.pollers = append(pp.pollers[:i], pp.pollers[i+1:]...)
			break
		}
	}
	p.quit.Store(true)
	one := [8]byte{1}
	unix.Write(p.wakefd, one[:]) // an eventfd counter: cannot fail short of overflowing 2^64-1
}

func newPoller() (*poller, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("epoll_create1: %w", err)
	}
	wakefd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		unix.Close(epfd)
		return nil, fmt.Errorf("eventfd: %w", err)
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN} // ID 0
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, wakefd, &ev); err != nil {
		unix.Close(wakefd)
		unix.Close(epfd)
		return nil, fmt.Errorf("epoll_ctl add eventfd: %w", err)
	}
	return &poller{epfd: epfd, wakefd: wakefd, regs: make(map[uint64]*pollReg)}, nil
}

// setEventID and eventID keep a registration's ID in the event's 64-bit
// user data (the kernel hands it back untouched; x/sys/unix names its two
// halves Fd and Pad).
func setEventID(ev *unix.EpollEvent, id uint64) {
	ev.Fd, ev.Pad = int32(uint32(id)), int32(uint32(id>>32))
}

func eventID(ev *unix.EpollEvent) uint64 {
	return uint64(uint32(ev.Fd)) | uint64(uint32(ev.Pad))<<32
}

// run is the poller's goroutine; it ends when its last session has left.
func (p *poller) run() {
	defer func() {
		unix.Close(p.wakefd)
		unix.Close(p.epfd)
	}()
	events := make([]unix.EpollEvent, pollerEvents)
	var ids []uint64
	buf := make([]byte, 2048)
	var waiter epollnap.Waiter
	for !p.quit.Load() {
		n, err := waiter.Wait(p.epfd, events)
		if err != nil {
			if errors.Is(err, unix.EINTR) {
				continue
			}
			p.failAll(fmt.Errorf("read: %w", os.NewSyscallError("epoll_wait", err)))
			continue
		}
		if n == 0 {
			continue
		}
		if hook := testHookPollerBatch.Load(); hook != nil {
			ids = ids[:0]
			for i := range events[:n] {
				ids = append(ids, eventID(&events[i]))
			}
			(*hook)(ids)
		}
		for i := range events[:n] {
			id := eventID(&events[i])
			if id == 0 {
				var b [8]byte
				unix.Read(p.wakefd, b[:])
				continue
			}
			p.mu.Lock()
			r := p.regs[id] // nil: removed since epoll_wait returned
			p.busy = r
			p.mu.Unlock()
			if r == nil {
				continue
			}
			r.serve(buf)
			p.mu.Lock()
			p.busy = nil
			closeNow := r.closeAfter
			p.mu.Unlock()
			if closeNow {
				r.closed()
			}
		}
		waiter.Handled(n, events)
	}
}

// serve reads one datagram of r's socket, if one is there, and handles
// it. A panic in handle ends r's session only, as in readLoop.
func (r *pollReg) serve(buf []byte) {
	s := r.s
	defer s.recoverPanic("reader")
	n, err := recvDontWait(r.fd, buf)
	if err != nil {
		if err != unix.EAGAIN && err != unix.EINTR {
			s.readFailed(os.NewSyscallError("recvfrom", err))
		}
		return
	}
	if h := testHookServe.Load(); h != nil {
		(*h)(s)
	}
	s.handle(buf[:n])
}

// testHookServe, if set (tests only), runs on the poller before each
// datagram it read is handled, with the session it is for.
var testHookServe atomic.Pointer[func(*Session)]

// sendDontWait is send(fd, b, MSG_DONTWAIT) on a connected socket. It
// never blocks, so like recvDontWait it is a raw system call: no
// entersyscall and exitsyscall per datagram, and no trip through
// write(2)'s file layer, which a socket does not need (measured: the
// ACK's write was the largest single cost of a busy console).
func sendDontWait(fd int, b []byte) (int, error) {
	var p unsafe.Pointer
	if len(b) > 0 {
		p = unsafe.Pointer(&b[0])
	}
	n, _, e := unix.RawSyscall6(unix.SYS_SENDTO, uintptr(fd), uintptr(p), uintptr(len(b)), unix.MSG_DONTWAIT, 0, 0)
	if e != 0 {
		return 0, e
	}
	return int(n), nil
}

// recvDontWait is recvfrom(fd, buf, MSG_DONTWAIT) without the source
// address (the socket is connected) and without allocating. It never
// blocks, so it needs no entersyscall.
func recvDontWait(fd int, buf []byte) (int, error) {
	n, _, e := unix.RawSyscall6(unix.SYS_RECVFROM, uintptr(fd), uintptr(unsafe.Pointer(&buf[0])), uintptr(len(buf)), unix.MSG_DONTWAIT, 0, 0)
	if e != 0 {
		return 0, e
	}
	return int(n), nil
}

// failAll ends every session of p (epoll_wait failed: a bug).
func (p *poller) failAll(err error) {
	p.mu.Lock()
	all := make([]*pollReg, 0, len(p.regs))
	for _, r := range p.regs {
		all = append(all, r)
	}
	p.mu.Unlock()
	for _, r := range all {
		r.s.log.Error("shared socket poller failed, session ended", "err", err)
		r.s.fail(err)
	}
}

// remove is the session's closeSocket: r leaves the epoll set and the
// table, and its socket is closed, now or, if the poller is busy with r
// (this may be that very handle), by the poller once handle returns.
// Safe from any goroutine, at most once in effect.
func (r *pollReg) remove() {
	p := r.p
	p.mu.Lock()
	if r.removed {
		p.mu.Unlock()
		return
	}
	r.removed = true
	unix.EpollCtl(p.epfd, unix.EPOLL_CTL_DEL, r.fd, nil) // the socket is still open: cannot fail
	delete(p.regs, r.id)
	later := p.busy == r
	r.closeAfter = later
	p.mu.Unlock()
	thePollers.release(p)
	if !later {
		r.closed()
	}
}

// closed closes r's socket once no poller reads it and releases the
// session's count for its reader.
func (r *pollReg) closed() {
	r.conn.Close()
	r.s.wg.Done()
}
