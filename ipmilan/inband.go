package ipmilan

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"sync"
	"time"
	"unsafe"

	"github.com/solgate/solgate/ipmilan/internal/wire"
)

// Inband runs IPMI commands on the local BMC through the Linux IPMI
// driver's message interface (/dev/ipmi0: the ipmi_devintf and ipmi_si
// kernel modules), as ipmitool's "open" interface does. No session, user
// or password is involved: the kernel checks only that the caller may open
// the device (root, usually). It is a Commander, so every configuration
// command works over it as over a LAN Session; SOL and power control over
// it are not offered.
//
// Requests run one at a time (Do is safe for concurrent use and
// serializes); each is matched to its answer by message ID, so a late
// answer to a request that timed out is recognised and dropped.
type Inband struct {
	dev     ipmiDriver
	path    string
	timeout time.Duration
	log     *slog.Logger

	mu     sync.Mutex // serializes requests; guards the fields below
	msgid  int
	closed bool
}

// InbandConfig says which driver device to use.
type InbandConfig struct {
	// Device is the driver's device file (default /dev/ipmi0).
	Device string
	// Timeout bounds each request (default 5 s; the kernel retries the
	// system interface itself and answers completion code 0xC3 when it
	// gives up).
	Timeout time.Duration
	Logger  *slog.Logger
}

// DefaultInbandDevice is the device of the first BMC.
const DefaultInbandDevice = "/dev/ipmi0"

// ipmiDriver is the seam around the kernel's message interface on one
// open device file: the two ioctls and poll(2). Tests substitute a double;
// the real one is in inband_linux.go.
type ipmiDriver interface {
	// send is ioctl(IPMICTL_SEND_COMMAND): queue req for the BMC.
	send(req *ipmiReq) error
	// receive is ioctl(IPMICTL_RECEIVE_MSG_TRUNC): take the oldest queued
	// message into recv (its address and data buffers and their lengths
	// set by the caller; the kernel writes the lengths back). It returns
	// errWouldBlock when nothing is queued and errTruncated when the
	// message was cut to fit.
	receive(recv *ipmiRecv) error
	// wait is poll(2) for POLLIN: true when a message is queued, false
	// when the timeout passed first.
	wait(timeout time.Duration) (bool, error)
	close() error
}

var (
	errWouldBlock = errors.New("no message queued")
	errTruncated  = errors.New("message truncated")
)

// The kernel ABI (include/uapi/linux/ipmi.h). Go lays these out as C
// does on Linux: int32 is int, int is long, unsafe.Pointer a pointer.
type (
	ipmiSystemInterfaceAddr struct {
		addrType int32
		channel  int16
		lun      uint8
		_        uint8
	}
	ipmiMsg struct {
		netfn   uint8
		cmd     uint8
		dataLen uint16
		data    unsafe.Pointer
	}
	ipmiReq struct {
		addr    unsafe.Pointer
		addrLen uint32
		msgid   int
		msg     ipmiMsg
	}
	ipmiRecv struct {
		recvType int32
		addr     unsafe.Pointer
		addrLen  uint32
		msgid    int
		msg      ipmiMsg
	}
)

const (
	ipmiSystemInterfaceAddrType = 0x0C
	ipmiBMCChannel              = 0x0F
	ipmiResponseRecvType        = 1
	ipmiMaxAddrSize             = 32
	ipmiMaxMsgLength            = 272 // IPMI_MAX_MSG_LENGTH; the receive buffer is larger
	ipmiIOCMagic                = 'i'
)

// ioctl numbers: _IOR('i', 13, struct ipmi_req) and _IOWR('i', 11, struct
// ipmi_recv), in the generic Linux encoding (direction in bits 31:30, size
// in 29:16).
var (
	ipmictlSendCommand    = ioc(2, 13, unsafe.Sizeof(ipmiReq{}))
	ipmictlReceiveMsgTrun = ioc(3, 11, unsafe.Sizeof(ipmiRecv{}))
)

func ioc(dir, nr uint, size uintptr) uint {
	return dir<<30 | uint(size)<<16 | ipmiIOCMagic<<8 | nr
}

// OpenInband opens the driver device. The error says what to do when the
// device is missing (load ipmi_devintf and ipmi_si) or not accessible.
func OpenInband(cfg InbandConfig) (*Inband, error) {
	if cfg.Device == "" {
		cfg.Device = DefaultInbandDevice
	}
	dev, err := openDriver(cfg.Device)
	if err != nil {
		return nil, err
	}
	return newInband(dev, cfg), nil
}

func newInband(dev ipmiDriver, cfg InbandConfig) *Inband {
	if cfg.Device == "" {
		cfg.Device = DefaultInbandDevice
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 5 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Inband{dev: dev, path: cfg.Device, timeout: cfg.Timeout, log: cfg.Logger.With("bmc", cfg.Device)}
}

// Device is the device file the Inband talks through.
func (b *Inband) Device() string { return b.path }

// Close closes the device; later requests fail with ErrClosed.
func (b *Inband) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil
	}
	b.closed = true
	return b.dev.close()
}

// pollSlice bounds one wait, so that a cancelled ctx is noticed soon.
const pollSlice = 100 * time.Millisecond

// Do sends one request to the BMC and waits for its answer, bounded by
// ctx and the configured timeout. A non-zero completion code is a
// *CompletionError; no answer in time is ErrNoAnswer.
func (b *Inband) Do(ctx context.Context, netFn NetFn, cmd uint8, data []byte) ([]byte, error) {
	if len(data) > ipmiMaxMsgLength {
		return nil, fmt.Errorf("ipmilan: %s: request of %d bytes: at most %d", b.path, len(data), ipmiMaxMsgLength)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil, ErrClosed
	}
	b.msgid++
	id := b.msgid

	var pin runtime.Pinner
	defer pin.Unpin()
	addr := &ipmiSystemInterfaceAddr{addrType: ipmiSystemInterfaceAddrType, channel: ipmiBMCChannel}
	pin.Pin(addr)
	req := &ipmiReq{addr: unsafe.Pointer(addr), addrLen: uint32(unsafe.Sizeof(*addr)), msgid: id,
		msg: ipmiMsg{netfn: uint8(netFn), cmd: cmd, dataLen: uint16(len(data))}}
	if len(data) > 0 {
		buf := append([]byte(nil), data...)
		pin.Pin(&buf[0])
		req.msg.data = unsafe.Pointer(&buf[0])
	}
	pin.Pin(req)
	if err := b.dev.send(req); err != nil {
		return nil, fmt.Errorf("ipmilan: %s: send %v command %#02x: %w", b.path, netFn, cmd, err)
	}

	deadline := time.Now().Add(b.timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	rbuf := make([]byte, 1024)
	raddr := make([]byte, ipmiMaxAddrSize)
	pin.Pin(&rbuf[0])
	pin.Pin(&raddr[0])
	recv := &ipmiRecv{}
	pin.Pin(recv)
	for {
		left := time.Until(deadline)
		if left <= 0 {
			return nil, fmt.Errorf("ipmilan: %s: %v command %#02x: %w in time", b.path, netFn, cmd, ErrNoAnswer)
		}
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("ipmilan: %s: %v command %#02x: %w", b.path, netFn, cmd, err)
		}
		ready, err := b.dev.wait(min(left, pollSlice))
		if err != nil {
			return nil, fmt.Errorf("ipmilan: %s: poll: %w", b.path, err)
		}
		if !ready {
			continue
		}
		*recv = ipmiRecv{addr: unsafe.Pointer(&raddr[0]), addrLen: uint32(len(raddr)),
			msg: ipmiMsg{data: unsafe.Pointer(&rbuf[0]), dataLen: uint16(len(rbuf))}}
		err = b.dev.receive(recv)
		switch {
		case errors.Is(err, errWouldBlock):
			continue
		case errors.Is(err, errTruncated):
			// Never for a response that fits IPMI_MAX_MSG_LENGTH; drop it.
			b.log.Debug("inband: message truncated, dropped", "msgid", recv.msgid)
			continue
		case err != nil:
			return nil, fmt.Errorf("ipmilan: %s: receive: %w", b.path, err)
		}
		if recv.recvType != ipmiResponseRecvType || recv.msgid != id {
			// An event, a command for us, or the late answer to an
			// earlier request that timed out.
			b.log.Debug("inband: unexpected message dropped", "type", recv.recvType, "msgid", recv.msgid, "want", id)
			continue
		}
		n := int(recv.msg.dataLen)
		if n > len(rbuf) {
			n = len(rbuf)
		}
		if wire.NetFn(recv.msg.netfn) != netFn|1 || recv.msg.cmd != cmd {
			return nil, fmt.Errorf("ipmilan: %s: %w: answer to %v command %#02x is %v command %#02x",
				b.path, ErrProtocol, netFn, cmd, wire.NetFn(recv.msg.netfn), recv.msg.cmd)
		}
		if n < 1 {
			return nil, fmt.Errorf("ipmilan: %s: %w: empty answer to %v command %#02x", b.path, ErrProtocol, netFn, cmd)
		}
		if cc := CompletionCode(rbuf[0]); cc != wire.CCOK {
			return nil, &CompletionError{NetFn: netFn, Cmd: cmd, Code: cc}
		}
		return append([]byte(nil), rbuf[1:n]...), nil
	}
}
