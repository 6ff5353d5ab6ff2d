//go:build linux

package bmcsim

import (
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/solgate/solgate/ipmilan/internal/epollnap"
)

// On Linux a fleet's sockets are read by a few pollers instead of a Serve
// goroutine each. A streaming BMC gets one ACK per packet it sends and a
// socket almost never has a second datagram queued, so a goroutine per
// socket costs, per datagram, the Go netpoller's wake-up of that
// goroutine, a trip through the scheduler and a second read that only
// says EAGAIN. A poller is one goroutine blocked in epoll_wait on an
// epoll instance of its own, in which each of its BMCs' sockets is
// registered level-triggered: per ready socket it reads one datagram and
// handles it as Serve would (serveDatagram), then moves on; a socket
// with more queued is reported again by the next epoll_wait.
//
// The sockets are made with socket(2), not net.ListenPacket: a
// net.UDPConn's socket is in the runtime's own epoll set as well, and
// every datagram would wake the runtime's netpoller for nothing. Reads
// and writes are raw non-blocking system calls (RawSyscall: they never
// block, so the scheduler need not be told) with the address in a stack
// buffer, so a datagram costs no allocation for its address: a
// socket keeps the *net.UDPAddr of its last peer and hands the same one
// out while that peer sends.
//
// The set of registrations is fixed when the fleet starts and the
// sockets are closed only after every poller has stopped, so a
// descriptor is never reused under a poller. A BMC with an alternate SOL
// port (SOLConfig.Port) is served by Serve on a goroutine instead, as on
// other systems.

// pollerBMCs is how many BMCs a poller takes before another is started,
// up to GOMAXPROCS pollers: a poller is one goroutine, at most one core's
// worth of packet handling.
const pollerBMCs = 256

// polledConn is a non-blocking IPv4 UDP socket the Go runtime does not
// poll. WriteTo may be called from any goroutine (the SOL timer and the
// fault timers send too); only the poller reads.
type polledConn struct {
	// mu is read-held around each write and held by Close, so that the
	// descriptor is never closed, and its number reused by another
	// socket, under a write.
	mu     sync.RWMutex
	fd     int
	closed bool
	laddr  *net.UDPAddr

	lastFrom *net.UDPAddr              // the poller's: the last peer, handed out again while it sends
	lastTo   atomic.Pointer[sendCache] // the last destination and its raw address
}

type sendCache struct {
	to *net.UDPAddr
	sa unix.RawSockaddrInet4
}

// listenPolled binds a polled socket to ap (IPv4).
func listenPolled(ap netip.AddrPort) (*polledConn, error) {
	opErr := func(call string, err error) error {
		return &net.OpError{Op: "listen", Net: "udp4", Addr: net.UDPAddrFromAddrPort(ap), Err: os.NewSyscallError(call, err)}
	}
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, unix.IPPROTO_UDP)
	if err != nil {
		return nil, opErr("socket", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrInet4{Port: int(ap.Port()), Addr: ap.Addr().As4()}); err != nil {
		unix.Close(fd)
		return nil, opErr("bind", err)
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		unix.Close(fd)
		return nil, opErr("getsockname", err)
	}
	sa4, ok := sa.(*unix.SockaddrInet4)
	if !ok {
		unix.Close(fd)
		return nil, opErr("getsockname", unix.EAFNOSUPPORT)
	}
	return &polledConn{fd: fd, laddr: &net.UDPAddr{IP: net.IP(sa4.Addr[:]).To16(), Port: sa4.Port}}, nil
}

func (c *polledConn) LocalAddr() net.Addr { return c.laddr }

func (c *polledConn) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil
	}
	c.closed = true
	return unix.Close(c.fd)
}

// WriteTo sends b to the IPv4 UDP address to. It never blocks: with the
// send buffer full the datagram is dropped (and an error returned), as
// a lossy network would.
func (c *polledConn) WriteTo(b []byte, to net.Addr) (int, error) {
	ua, ok := to.(*net.UDPAddr)
	if !ok {
		return 0, &net.OpError{Op: "write", Net: "udp4", Addr: to, Err: unix.EAFNOSUPPORT}
	}
	sc := c.lastTo.Load()
	if sc == nil || sc.to != ua {
		ip4 := ua.IP.To4()
		if ip4 == nil {
			return 0, &net.OpError{Op: "write", Net: "udp4", Addr: to, Err: unix.EAFNOSUPPORT}
		}
		sc = &sendCache{to: ua, sa: unix.RawSockaddrInet4{Family: unix.AF_INET}}
		copy(sc.sa.Addr[:], ip4)
		binary.BigEndian.PutUint16(portBytes(&sc.sa.Port), uint16(ua.Port))
		c.lastTo.Store(sc)
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.closed {
		return 0, &net.OpError{Op: "write", Net: "udp4", Addr: to, Err: net.ErrClosed}
	}
	var p unsafe.Pointer
	if len(b) > 0 {
		p = unsafe.Pointer(&b[0])
	}
	for {
		_, _, e := unix.RawSyscall6(unix.SYS_SENDTO, uintptr(c.fd), uintptr(p), uintptr(len(b)), 0,
			uintptr(unsafe.Pointer(&sc.sa)), unix.SizeofSockaddrInet4)
		switch e {
		case 0:
			return len(b), nil
		case unix.EINTR:
			continue
		}
		return 0, &net.OpError{Op: "write", Net: "udp4", Addr: to, Err: os.NewSyscallError("sendto", e)}
	}
}

// readFrom reads one datagram without blocking (EAGAIN if none is
// queued). Only the socket's poller calls it.
func (c *polledConn) readFrom(buf []byte) (int, *net.UDPAddr, error) {
	var sa unix.RawSockaddrInet4
	salen := uint32(unix.SizeofSockaddrInet4)
	for {
		n, _, e := unix.RawSyscall6(unix.SYS_RECVFROM, uintptr(c.fd), uintptr(unsafe.Pointer(&buf[0])), uintptr(len(buf)), 0,
			uintptr(unsafe.Pointer(&sa)), uintptr(unsafe.Pointer(&salen)))
		if e == unix.EINTR {
			continue
		}
		if e != 0 {
			return 0, nil, e
		}
		port := int(binary.BigEndian.Uint16(portBytes(&sa.Port)))
		if f := c.lastFrom; f == nil || f.Port != port || [4]byte(f.IP[12:16]) != sa.Addr {
			c.lastFrom = &net.UDPAddr{IP: net.IP(sa.Addr[:]).To16(), Port: port}
		}
		return int(n), c.lastFrom, nil
	}
}

// portBytes is a sockaddr's port field as the bytes it is: in network
// byte order whatever the machine's.
func portBytes(p *uint16) []byte { return (*[2]byte)(unsafe.Pointer(p))[:] }

// pollTarget is one socket a poller serves, for BMC b.
type pollTarget struct {
	b   *BMC
	c   *polledConn
	snd *sender
}

// poller reads the sockets registered in its epoll instance.
type poller struct {
	epfd, wakefd int // wakefd: an eventfd in the epoll set (ID -1), written at shutdown
	targets      []pollTarget
	report       func(error)
}

// servePolled serves the targets on pollers until ctx ends; the returned
// function waits for the pollers to stop (and the senders' timers). It
// fails only if no epoll instance could be made; nothing runs then.
func servePolled(ctx context.Context, targets []pollTarget, report func(error)) (wait func(), err error) {
	n := min(runtime.GOMAXPROCS(0), (len(targets)+pollerBMCs-1)/pollerBMCs)
	var ps []*poller
	fail := func(err error) (func(), error) {
		for _, p := range ps {
			unix.Close(p.epfd)
			unix.Close(p.wakefd)
		}
		return nil, err
	}
	for i := range n {
		p := &poller{epfd: -1, wakefd: -1, report: report}
		if p.epfd, err = unix.EpollCreate1(unix.EPOLL_CLOEXEC); err != nil {
			return fail(os.NewSyscallError("epoll_create1", err))
		}
		ps = append(ps, p)
		if p.wakefd, err = unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK); err != nil {
			return fail(os.NewSyscallError("eventfd", err))
		}
		ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: -1}
		if err := unix.EpollCtl(p.epfd, unix.EPOLL_CTL_ADD, p.wakefd, &ev); err != nil {
			return fail(os.NewSyscallError("epoll_ctl", err))
		}
		for j := i; j < len(targets); j += n {
			t := targets[j]
			ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(len(p.targets))}
			if err := unix.EpollCtl(p.epfd, unix.EPOLL_CTL_ADD, t.c.fd, &ev); err != nil {
				return fail(os.NewSyscallError("epoll_ctl", err))
			}
			p.targets = append(p.targets, t)
		}
	}
	var wg sync.WaitGroup
	for _, p := range ps {
		wg.Go(p.run)
	}
	stop := context.AfterFunc(ctx, func() {
		one := [8]byte{1}
		for _, p := range ps {
			unix.Write(p.wakefd, one[:]) // an eventfd counter: cannot fail short of overflowing 2^64-1
		}
	})
	return func() {
		wg.Wait()
		stop()
	}, nil
}

// pollerEvents is how many ready sockets one epoll_wait returns at most.
const pollerEvents = 128

func (p *poller) run() {
	defer func() {
		for _, t := range p.targets {
			t.snd.stop()
		}
		unix.Close(p.epfd)
		unix.Close(p.wakefd)
	}()
	buf := make([]byte, maxDatagram)
	var events [pollerEvents]unix.EpollEvent
	var waiter epollnap.Waiter
	for {
		n, err := waiter.Wait(p.epfd, events[:])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			p.report(fmt.Errorf("bmcsim: epoll_wait: %w", err))
			return
		}
		for _, ev := range events[:n] {
			if ev.Fd < 0 {
				return // shutdown
			}
			t := &p.targets[ev.Fd]
			k, from, err := t.c.readFrom(buf)
			switch err {
			case nil:
				t.b.serveDatagram(buf[:k], from, t.snd)
			case unix.EAGAIN:
			default:
				// As Serve would, stop serving this socket.
				p.report(fmt.Errorf("bmcsim: serve %v: recvfrom: %w", t.c.laddr, err))
				unix.EpollCtl(p.epfd, unix.EPOLL_CTL_DEL, t.c.fd, nil)
			}
		}
		waiter.Handled(n, events[:])
	}
}
