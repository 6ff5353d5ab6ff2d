package ipmilan

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/solgate/solgate/ipmilan/internal/wire"
)

// DeviceID runs Get Device ID.
func (s *Session) DeviceID(ctx context.Context) (DeviceID, error) {
	r, err := s.do(ctx, wire.NetFnApp, wire.CmdGetDeviceID, nil)
	if err != nil {
		return DeviceID{}, fmt.Errorf("ipmilan: %s: get device ID: %w", s.cfg.Addr, err)
	}
	d, err := wire.ParseDeviceID(r.Data)
	if err != nil {
		return d, fmt.Errorf("ipmilan: %s: %w: %v", s.cfg.Addr, ErrProtocol, err)
	}
	return d, nil
}

// ChassisStatus runs Get Chassis Status.
func (s *Session) ChassisStatus(ctx context.Context) (ChassisStatus, error) {
	r, err := s.do(ctx, wire.NetFnChassis, wire.CmdGetChassisStatus, nil)
	if err != nil {
		return ChassisStatus{}, fmt.Errorf("ipmilan: %s: get chassis status: %w", s.cfg.Addr, err)
	}
	c, err := wire.ParseChassisStatus(r.Data)
	if err != nil {
		return c, fmt.Errorf("ipmilan: %s: %w: %v", s.cfg.Addr, ErrProtocol, err)
	}
	return c, nil
}

// ChassisControl runs Chassis Control: power on, off, cycle, hard reset,
// diagnostic interrupt or soft shutdown. The BMC may answer before the
// change happens; poll ChassisStatus to wait for it.
func (s *Session) ChassisControl(ctx context.Context, c ChassisControl) error {
	if _, err := s.do(ctx, wire.NetFnChassis, wire.CmdChassisControl, []byte{uint8(c)}); err != nil {
		return fmt.Errorf("ipmilan: %s: chassis control %v: %w", s.cfg.Addr, c, err)
	}
	return nil
}

// BootDevice is a next-boot override for SetBootDevice.
type BootDevice = wire.BootDevice

// The boot devices solgate uses.
const (
	BootNone = wire.BootDeviceNone
	BootPXE  = wire.BootDevicePXE
	BootDisk = wire.BootDeviceDisk
	BootBIOS = wire.BootDeviceBIOS // into BIOS setup
)

// BootOptions refine SetBootDevice.
type BootOptions struct {
	Persistent bool // every boot, not just the next
	EFI        bool
}

// SetBootDevice sets the boot device override (System Boot Options
// parameter 5): by default for the next boot only.
func (s *Session) SetBootDevice(ctx context.Context, d BootDevice, o BootOptions) error {
	data := []byte{wire.BootParamFlags}
	data = wire.BootFlags{Valid: d != BootNone, Persistent: o.Persistent, EFI: o.EFI, Device: d}.Append(data)
	if _, err := s.do(ctx, wire.NetFnChassis, wire.CmdSetBootOptions, data); err != nil {
		return fmt.Errorf("ipmilan: %s: set boot device %v: %w", s.cfg.Addr, d, err)
	}
	return nil
}

// BootDevice reads the boot device override back.
func (s *Session) BootDevice(ctx context.Context) (BootDevice, BootOptions, error) {
	r, err := s.do(ctx, wire.NetFnChassis, wire.CmdGetBootOptions, []byte{wire.BootParamFlags, 0, 0})
	if err != nil {
		return 0, BootOptions{}, fmt.Errorf("ipmilan: %s: get boot options: %w", s.cfg.Addr, err)
	}
	if len(r.Data) < 2 {
		return 0, BootOptions{}, fmt.Errorf("ipmilan: %s: get boot options: %w: %d bytes", s.cfg.Addr, ErrProtocol, len(r.Data))
	}
	f, err := wire.ParseBootFlags(r.Data[2:])
	if err != nil {
		return 0, BootOptions{}, fmt.Errorf("ipmilan: %s: %w: %v", s.cfg.Addr, ErrProtocol, err)
	}
	if !f.Valid {
		return BootNone, BootOptions{}, nil
	}
	return f.Device, BootOptions{Persistent: f.Persistent, EFI: f.EFI}, nil
}

// SessionInfo runs Get Session Info for this session.
func (s *Session) SessionInfo(ctx context.Context) (SessionInfo, error) {
	r, err := s.do(ctx, wire.NetFnApp, wire.CmdGetSessionInfo, []byte{0})
	if err != nil {
		return SessionInfo{}, fmt.Errorf("ipmilan: %s: get session info: %w", s.cfg.Addr, err)
	}
	i, err := wire.ParseSessionInfo(r.Data)
	if err != nil {
		return i, fmt.Errorf("ipmilan: %s: %w: %v", s.cfg.Addr, ErrProtocol, err)
	}
	return i, nil
}

// Ping sends an ASF presence ping and reports whether the BMC says it
// supports IPMI. Many BMCs never answer pings: it is no liveness proof.
func Ping(ctx context.Context, addr string, timeout time.Duration) (bool, error) {
	if _, _, err := net.SplitHostPort(addr); err != nil {
		addr = net.JoinHostPort(strings.Trim(addr, "[]"), "623")
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "udp", addr)
	if err != nil {
		return false, fmt.Errorf("ipmilan: ping %s: %w", addr, err)
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) < timeout {
		timeout = time.Until(dl)
	}
	conn.SetDeadline(time.Now().Add(timeout))
	tag := randByte() % 0xFF
	pkt := wire.ASFMessage{Type: wire.ASFTypePing, Tag: tag}.Append(wire.RMCPHeader{Seq: wire.RMCPSeqNoACK, Class: wire.ClassASF}.Append(nil))
	if _, err := conn.Write(pkt); err != nil {
		return false, fmt.Errorf("ipmilan: ping %s: %w", addr, err)
	}
	buf := make([]byte, 512)
	for {
		n, err := conn.Read(buf)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return false, fmt.Errorf("ipmilan: ping %s: %w", addr, ErrNoAnswer)
			}
			return false, fmt.Errorf("ipmilan: ping %s: %w", addr, err)
		}
		h, rest, err := wire.ParseRMCP(buf[:n])
		if err != nil || h.Class != wire.ClassASF {
			continue
		}
		m, err := wire.ParseASF(rest)
		if err != nil || m.Type != wire.ASFTypePong || m.Tag != tag {
			continue
		}
		return m.IPMISupported, nil
	}
}
