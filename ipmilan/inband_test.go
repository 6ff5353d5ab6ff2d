package ipmilan

import (
	"context"
	"encoding/binary"
	"errors"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"testing/synctest"
	"time"
	"unsafe"

	"github.com/solgate/solgate/ipmilan/bmcsim"
)

// fakeDriver is a double of the kernel's IPMI message interface: it reads
// the requests out of the ipmi_req structures the way the kernel copies
// them from user space, hands them to a BMC (handler), and queues the
// answers as ipmi_recv messages, with knobs for what a real driver does
// besides: late answers, events, truncation, silence.
type fakeDriver struct {
	handler func(netFn, cmd uint8, data []byte) (uint8, []byte)

	mu     sync.Mutex // guards the fields below
	queue  []fakeMsg
	wake   chan struct{} // signalled when a message is queued
	sent   []fakeSent
	closed bool
	// Knobs.
	delay    time.Duration // answers are queued this long after the request
	silent   bool          // never answer
	before   []fakeMsg     // queued ahead of the next answer
	wrongCmd bool          // answer with another command number
}

type fakeMsg struct {
	recvType int32
	msgid    int
	netfn    uint8
	cmd      uint8
	data     []byte
}

type fakeSent struct {
	addrType int32
	channel  int16
	msgid    int
	netfn    uint8
	cmd      uint8
	data     []byte
}

func newFakeDriver(h func(netFn, cmd uint8, data []byte) (uint8, []byte)) *fakeDriver {
	return &fakeDriver{handler: h, wake: make(chan struct{}, 1)}
}

func (d *fakeDriver) send(req *ipmiReq) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return syscall.EBADF
	}
	// What ipmi_devintf checks: the address fits and is a system
	// interface or IPMB address; data fits IPMI_MAX_MSG_LENGTH.
	if req.addrLen < 8 || req.addrLen > ipmiMaxAddrSize || req.msg.dataLen > ipmiMaxMsgLength {
		return syscall.EINVAL
	}
	addr := unsafe.Slice((*byte)(req.addr), req.addrLen)
	s := fakeSent{addrType: int32(binary.NativeEndian.Uint32(addr)), channel: int16(binary.NativeEndian.Uint16(addr[4:])),
		msgid: req.msgid, netfn: req.msg.netfn, cmd: req.msg.cmd}
	if s.addrType != ipmiSystemInterfaceAddrType || s.channel != ipmiBMCChannel {
		return syscall.EINVAL
	}
	if req.msg.dataLen > 0 {
		s.data = append([]byte(nil), unsafe.Slice((*byte)(req.msg.data), req.msg.dataLen)...)
	}
	d.sent = append(d.sent, s)
	if d.silent {
		return nil
	}
	code, data := d.handler(s.netfn, s.cmd, s.data)
	answer := fakeMsg{recvType: ipmiResponseRecvType, msgid: s.msgid, netfn: s.netfn | 1, cmd: s.cmd, data: append([]byte{code}, data...)}
	if d.wrongCmd {
		answer.cmd++
	}
	msgs := append(d.before, answer)
	d.before = nil
	if d.delay > 0 {
		time.AfterFunc(d.delay, func() { d.push(msgs...) })
		return nil
	}
	d.pushLocked(msgs...)
	return nil
}

func (d *fakeDriver) push(m ...fakeMsg) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.pushLocked(m...)
}

func (d *fakeDriver) pushLocked(m ...fakeMsg) {
	d.queue = append(d.queue, m...)
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

func (d *fakeDriver) receive(recv *ipmiRecv) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return syscall.EBADF
	}
	if len(d.queue) == 0 {
		return errWouldBlock
	}
	m := d.queue[0]
	d.queue = d.queue[1:]
	if recv.addrLen < 8 {
		return syscall.EINVAL
	}
	addr := unsafe.Slice((*byte)(recv.addr), recv.addrLen)
	binary.NativeEndian.PutUint32(addr, ipmiSystemInterfaceAddrType)
	binary.NativeEndian.PutUint16(addr[4:], ipmiBMCChannel)
	recv.addrLen = 8
	recv.recvType, recv.msgid, recv.msg.netfn, recv.msg.cmd = m.recvType, m.msgid, m.netfn, m.cmd
	buf := unsafe.Slice((*byte)(recv.msg.data), recv.msg.dataLen)
	n := copy(buf, m.data)
	recv.msg.dataLen = uint16(n)
	if n < len(m.data) {
		return errTruncated // the message is consumed, as with IPMICTL_RECEIVE_MSG_TRUNC
	}
	return nil
}

func (d *fakeDriver) wait(timeout time.Duration) (bool, error) {
	d.mu.Lock()
	ready := len(d.queue) > 0
	d.mu.Unlock()
	if ready {
		return true, nil
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-d.wake:
		d.mu.Lock()
		defer d.mu.Unlock()
		return len(d.queue) > 0, nil
	case <-t.C:
		return false, nil
	}
}

func (d *fakeDriver) close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.closed = true
	return nil
}

func (d *fakeDriver) lastSent() fakeSent {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.sent[len(d.sent)-1]
}

// TestInbandABI pins the structures and ioctl numbers to the kernel's, as
// measured with the C compiler against /usr/include/linux/ipmi.h on
// x86-64 Linux (Debian 12): sizeof(struct ipmi_req) 40, ipmi_recv 48,
// IPMICTL_SEND_COMMAND 0x8028690d, IPMICTL_RECEIVE_MSG_TRUNC 0xc030690b.
func TestInbandABI(t *testing.T) {
	if runtime.GOARCH != "amd64" && runtime.GOARCH != "arm64" {
		t.Skip("ABI figures measured on 64-bit Linux")
	}
	var req ipmiReq
	var recv ipmiRecv
	if s := unsafe.Sizeof(req); s != 40 {
		t.Errorf("ipmi_req is %d bytes, want 40", s)
	}
	if s := unsafe.Sizeof(recv); s != 48 {
		t.Errorf("ipmi_recv is %d bytes, want 48", s)
	}
	if o := unsafe.Offsetof(req.msgid); o != 16 {
		t.Errorf("ipmi_req.msgid at %d, want 16", o)
	}
	if o := unsafe.Offsetof(req.msg); o != 24 {
		t.Errorf("ipmi_req.msg at %d, want 24", o)
	}
	if o := unsafe.Offsetof(recv.msg); o != 32 {
		t.Errorf("ipmi_recv.msg at %d, want 32", o)
	}
	if s := unsafe.Sizeof(ipmiSystemInterfaceAddr{}); s != 8 {
		t.Errorf("ipmi_system_interface_addr is %d bytes, want 8", s)
	}
	if ipmictlSendCommand != 0x8028690d || ipmictlReceiveMsgTrun != 0xc030690b {
		t.Errorf("ioctl numbers %#x %#x", ipmictlSendCommand, ipmictlReceiveMsgTrun)
	}
}

// echoBMC answers Get Device ID and echoes anything else.
func echoBMC(netFn, cmd uint8, data []byte) (uint8, []byte) {
	if netFn == 6 && cmd == 1 {
		return 0, []byte{0x20, 1, 2, 3, 0x02, 0, 0, 0, 0, 0, 0}
	}
	if netFn == 6 && cmd == 0x42 {
		return 0xCC, nil
	}
	return 0, data
}

func TestInbandRequest(t *testing.T) {
	d := newFakeDriver(echoBMC)
	in := newInband(d, InbandConfig{})
	defer in.Close()
	ctx := context.Background()
	r, err := in.Do(ctx, NetFnApp, 0x01, nil)
	if err != nil || len(r) != 11 || r[0] != 0x20 {
		t.Fatalf("device ID % x %v", r, err)
	}
	s := d.lastSent()
	if s.addrType != ipmiSystemInterfaceAddrType || s.channel != ipmiBMCChannel || s.netfn != 6 || s.cmd != 1 || s.msgid != 1 {
		t.Fatalf("request %+v", s)
	}
	r, err = in.Do(ctx, NetFnTransport, 0x02, []byte{1, 3, 0, 0})
	if err != nil || string(r) != "\x01\x03\x00\x00" || d.lastSent().msgid != 2 {
		t.Fatalf("echo % x %v, msgid %d", r, err, d.lastSent().msgid)
	}
	_, err = in.Do(ctx, NetFnApp, 0x42, []byte{1})
	var ce *CompletionError
	if !errors.As(err, &ce) || ce.Code != CCInvalidField || ce.Cmd != 0x42 {
		t.Fatalf("completion code: %v", err)
	}
	if _, err := in.Do(ctx, NetFnApp, 1, make([]byte, 300)); err == nil {
		t.Fatal("an over-long request was sent")
	}
}

// TestInbandMatching: the answer is the response with our message ID;
// events, commands and late answers to earlier requests are skipped.
func TestInbandMatching(t *testing.T) {
	d := newFakeDriver(echoBMC)
	in := newInband(d, InbandConfig{})
	defer in.Close()
	d.before = []fakeMsg{
		{recvType: 2, msgid: 0, netfn: 0x07, data: []byte{0}},                                        // async event
		{recvType: ipmiResponseRecvType, msgid: 99, netfn: 0x0D, cmd: 0x02, data: []byte{0}},         // stale answer
		{recvType: 3, msgid: 1, netfn: 0x06, cmd: 0x34},                                              // a command for us
		{recvType: ipmiResponseRecvType, msgid: 1, netfn: 0x0D, cmd: 0x02, data: make([]byte, 2000)}, // truncated
	}
	r, err := in.Do(context.Background(), NetFnTransport, 0x02, []byte{7})
	if err != nil || len(r) != 1 || r[0] != 7 {
		t.Fatalf("answer % x %v", r, err)
	}
	d.wrongCmd = true
	if _, err := in.Do(context.Background(), NetFnTransport, 0x02, []byte{7}); !errors.Is(err, ErrProtocol) {
		t.Fatalf("answer for another command: %v, want ErrProtocol", err)
	}
	d.wrongCmd = false
	d.before = []fakeMsg{{recvType: ipmiResponseRecvType, msgid: 3, netfn: 0x0D, cmd: 0x02}} // our ID, no completion code
	d.silent = true
	d.push(d.before...)
	d.before = nil
	if _, err := in.Do(context.Background(), NetFnTransport, 0x02, nil); !errors.Is(err, ErrProtocol) {
		t.Fatalf("empty answer: %v, want ErrProtocol", err)
	}
}

// TestInbandTimeouts: no answer within the timeout is ErrNoAnswer, a late
// one is then skipped by the next request; a cancelled ctx ends the wait;
// a closed Inband says ErrClosed.
func TestInbandTimeouts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		d := newFakeDriver(echoBMC)
		in := newInband(d, InbandConfig{Timeout: 2 * time.Second})
		d.delay = 3 * time.Second
		start := time.Now()
		_, err := in.Do(context.Background(), NetFnApp, 0x01, nil)
		if !errors.Is(err, ErrNoAnswer) || time.Since(start) != 2*time.Second {
			t.Fatalf("after %v: %v, want ErrNoAnswer after 2s", time.Since(start), err)
		}
		d.delay = 0
		time.Sleep(2 * time.Second) // the late answer arrives meanwhile
		r, err := in.Do(context.Background(), NetFnTransport, 0x05, []byte{9})
		if err != nil || len(r) != 1 || r[0] != 9 {
			t.Fatalf("after a late answer: % x %v", r, err)
		}

		d.silent = true
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(250*time.Millisecond, cancel)
		start = time.Now()
		_, err = in.Do(ctx, NetFnApp, 0x01, nil)
		if !errors.Is(err, context.Canceled) || time.Since(start) > 250*time.Millisecond+pollSlice {
			t.Fatalf("cancelled after %v: %v", time.Since(start), err)
		}
		ctx, cancel = context.WithTimeout(context.Background(), 500*time.Millisecond)
		defer cancel()
		start = time.Now()
		if _, err := in.Do(ctx, NetFnApp, 0x01, nil); !errors.Is(err, ErrNoAnswer) || time.Since(start) != 500*time.Millisecond {
			t.Fatalf("ctx deadline: after %v %v", time.Since(start), err)
		}
		in.Close()
		if _, err := in.Do(context.Background(), NetFnApp, 0x01, nil); !errors.Is(err, ErrClosed) {
			t.Fatalf("after Close: %v", err)
		}
	})
}

// TestInbandConcurrent: concurrent requests are serialized and each gets
// its own answer.
func TestInbandConcurrent(t *testing.T) {
	b := bmcsim.New(bmcsim.Config{Users: []bmcsim.User{{Name: "admin", Password: "secret"}}})
	in := newInband(newFakeDriver(b.SystemInterface), InbandConfig{})
	defer in.Close()
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for i := range 16 {
		wg.Go(func() {
			id := uint8(i%14 + 2)
			name, err := GetUserName(context.Background(), in, id)
			if err == nil && (id == 2) != (name == "admin") {
				err = errors.New("wrong answer: " + name)
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
}

func TestOpenInbandMissingDevice(t *testing.T) {
	_, err := OpenInband(InbandConfig{Device: t.TempDir() + "/ipmi0"})
	if err == nil || !strings.Contains(err.Error(), "ipmi_devintf") {
		t.Fatalf("opening a missing device: %v, want advice to load ipmi_devintf", err)
	}
}
