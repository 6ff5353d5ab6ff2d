//go:build linux && (amd64 || arm64 || 386 || arm || riscv64 || s390x || loong64)

package ipmilan

import (
	"errors"
	"fmt"
	"os"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// devDriver is the real message interface: an open /dev/ipmiN.
type devDriver struct {
	fd int
}

func openDriver(path string) (ipmiDriver, error) {
	fd, err := unix.Open(path, unix.O_RDWR|unix.O_CLOEXEC, 0)
	switch {
	case errors.Is(err, unix.ENOENT), errors.Is(err, unix.ENXIO), errors.Is(err, unix.ENODEV):
		return nil, fmt.Errorf("ipmilan: %s: %w (is there a BMC? load the ipmi_devintf and ipmi_si kernel modules)", path, err)
	case errors.Is(err, unix.EACCES), errors.Is(err, unix.EPERM):
		return nil, fmt.Errorf("ipmilan: %s: %w (the in-band interface needs root, or access to the device)", path, err)
	case err != nil:
		return nil, fmt.Errorf("ipmilan: %s: %w", path, &os.PathError{Op: "open", Path: path, Err: err})
	}
	return &devDriver{fd: fd}, nil
}

func (d *devDriver) ioctl(req uint, arg unsafe.Pointer) error {
	for {
		_, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(d.fd), uintptr(req), uintptr(arg))
		if e == unix.EINTR {
			continue
		}
		if e != 0 {
			return e
		}
		return nil
	}
}

func (d *devDriver) send(req *ipmiReq) error {
	return d.ioctl(ipmictlSendCommand, unsafe.Pointer(req))
}

func (d *devDriver) receive(recv *ipmiRecv) error {
	err := d.ioctl(ipmictlReceiveMsgTrun, unsafe.Pointer(recv))
	switch {
	case errors.Is(err, unix.EAGAIN):
		return errWouldBlock
	case errors.Is(err, unix.EMSGSIZE):
		return errTruncated
	}
	return err
}

func (d *devDriver) wait(timeout time.Duration) (bool, error) {
	fds := []unix.PollFd{{Fd: int32(d.fd), Events: unix.POLLIN}}
	ms := int(timeout / time.Millisecond)
	if ms < 1 {
		ms = 1
	}
	for {
		n, err := unix.Poll(fds, ms)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return false, err
		}
		return n > 0 && fds[0].Revents&unix.POLLIN != 0, nil
	}
}

func (d *devDriver) close() error { return unix.Close(d.fd) }
