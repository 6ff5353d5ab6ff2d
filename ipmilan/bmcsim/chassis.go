package bmcsim

import (
	"time"

	"github.com/solgate/solgate/ipmilan/internal/wire"
)

// BootDevice is the boot device selector of boot option parameter 5.
type BootDevice = wire.BootDevice

// Boot devices (IPMI spec table 28-14, data 2 bits 5:2).
const (
	BootNone   = wire.BootDeviceNone
	BootPXE    = wire.BootDevicePXE
	BootDisk   = wire.BootDeviceDisk
	BootSafe   = wire.BootDeviceSafe
	BootDiag   = wire.BootDeviceDiag
	BootCDROM  = wire.BootDeviceCDROM
	BootBIOS   = wire.BootDeviceBIOS // BIOS setup
	BootFloppy = wire.BootDeviceFloppy
)

// BootState is what Set System Boot Options left for the next boot and
// what the last simulated boot used.
type BootState struct {
	Device     BootDevice // requested next-boot device (meaningful when Valid)
	Valid      bool       // the boot flags are set and not yet consumed
	Persistent bool       // applies to all future boots, not just the next
	EFI        bool
	// LastBoot is the device the last power-on or reset booted from
	// (BootNone: the default order), and Boots counts those boots.
	LastBoot BootDevice
	Boots    int
}

type pendingOp uint8

const (
	pendingNone pendingOp = iota
	pendingOff            // soft shutdown completes
	pendingOn             // power cycle turns power back on
)

// chassis is the simulated host's power state machine. Timed transitions
// (soft shutdown, the off time of a power cycle) are applied lazily by
// advance, so no timer goroutine is needed. Guarded by BMC.mu.
type chassis struct {
	on            bool
	pending       pendingOp
	pendingAt     time.Time
	lastOnByIPMI  bool
	bootFlags     [5]byte
	setInProgress uint8
	infoAck       [2]byte
	lastBoot      BootDevice
	boots         int
	identify      bool
	// onBoot and onOff tell the serial console (called with BMC.mu held).
	onBoot, onOff func()

	powerOns, powerOffs, resets, diags uint64
}

type chassisCounters struct{ powerOns, powerOffs, resets, diags uint64 }

func (c *chassis) snapshot() chassisCounters {
	return chassisCounters{c.powerOns, c.powerOffs, c.resets, c.diags}
}

// advance applies a due timed transition.
func (c *chassis) advance(now time.Time) {
	if c.pending == pendingNone || now.Before(c.pendingAt) {
		return
	}
	switch c.pending {
	case pendingOff:
		c.powerOff()
	case pendingOn:
		c.powerOn(true)
	}
	c.pending = pendingNone
}

func (c *chassis) powerOff() {
	if c.on {
		c.on = false
		c.powerOffs++
		if c.onOff != nil {
			c.onOff()
		}
	}
}

func (c *chassis) powerOn(byIPMI bool) {
	if c.on {
		return
	}
	c.on = true
	c.powerOns++
	c.lastOnByIPMI = byIPMI
	c.boot()
}

// boot consumes the boot flags as a BIOS does: a valid one-time flag is
// used once and cleared, a persistent one stays.
func (c *chassis) boot() {
	if c.onBoot != nil {
		c.onBoot()
	}
	c.boots++
	c.lastBoot = BootNone
	if c.bootFlags[0]&0x80 != 0 {
		c.lastBoot = BootDevice(c.bootFlags[1] >> 2 & 0x0F)
		if c.bootFlags[0]&0x40 == 0 {
			c.bootFlags[0] &^= 0x80
		}
	}
}

func (c *chassis) bootState() BootState {
	f, _ := wire.ParseBootFlags(c.bootFlags[:])
	return BootState{Device: f.Device, Valid: f.Valid, Persistent: f.Persistent, EFI: f.EFI,
		LastBoot: c.lastBoot, Boots: c.boots}
}

// control executes a Chassis Control request.
func (c *chassis) control(op wire.ChassisControl, now time.Time, cfg *Config) wire.CompletionCode {
	switch op {
	case wire.ControlPowerDown:
		c.pending = pendingNone
		c.powerOff()
	case wire.ControlPowerUp:
		c.pending = pendingNone
		c.powerOn(true)
	case wire.ControlPowerCycle:
		if !c.on {
			return wire.CCNotSupportedState
		}
		c.powerOff()
		c.pending, c.pendingAt = pendingOn, now.Add(cfg.CycleDelay)
	case wire.ControlHardReset:
		if !c.on {
			return wire.CCNotSupportedState
		}
		c.pending = pendingNone
		c.resets++
		c.boot()
	case wire.ControlDiagInterrupt:
		if !c.on {
			return wire.CCNotSupportedState
		}
		c.diags++
	case wire.ControlSoftShutdown:
		if c.on && c.pending != pendingOff {
			c.pending, c.pendingAt = pendingOff, now.Add(cfg.SoftOffDelay)
		}
	default:
		return wire.CCInvalidField
	}
	return wire.CCOK
}

func (c *chassis) status() wire.ChassisStatus {
	st := wire.ChassisStatus{PowerState: 0x20} // restore policy: previous state
	if c.on {
		st.PowerState |= 1
	}
	if c.lastOnByIPMI {
		st.LastPowerEvent |= 0x10
	}
	st.Misc = 0x40 // identify supported
	if c.identify {
		st.Misc |= 0x20 // indefinite on
	}
	return st
}

// Boot option parameters the simulator keeps.
const (
	bootParamSetInProgress = 0
	bootParamInfoAck       = 3
	bootParamValidClear    = 4
)

// setBootOption executes Set System Boot Options (request data).
func (c *chassis) setBootOption(d []byte) wire.CompletionCode {
	if len(d) < 1 {
		return wire.CCBadLength
	}
	param, val := d[0]&0x7F, d[1:]
	switch param {
	case bootParamSetInProgress:
		if len(val) < 1 {
			return wire.CCBadLength
		}
		if val[0]&3 == 3 {
			return wire.CCInvalidField
		}
		c.setInProgress = val[0] & 3
	case bootParamInfoAck:
		if len(val) < 2 {
			return wire.CCBadLength
		}
		c.infoAck[1] = c.infoAck[1]&^val[0] | val[1]&val[0]
	case bootParamValidClear:
		if len(val) < 1 {
			return wire.CCBadLength
		}
	case wire.BootParamFlags:
		if len(val) < 2 {
			return wire.CCBadLength
		}
		clear(c.bootFlags[:])
		copy(c.bootFlags[:], val)
	default:
		return 0x80 // parameter not supported
	}
	return wire.CCOK
}

// getBootOption executes Get System Boot Options and returns the
// response data.
func (c *chassis) getBootOption(d []byte) (wire.CompletionCode, []byte) {
	if len(d) < 3 {
		return wire.CCBadLength, nil
	}
	param := d[0] & 0x7F
	out := []byte{0x01, param} // parameter version 1, parameter valid
	switch param {
	case bootParamSetInProgress:
		out = append(out, c.setInProgress)
	case bootParamInfoAck:
		out = append(out, 0, c.infoAck[1])
	case bootParamValidClear:
		out = append(out, 0)
	case wire.BootParamFlags:
		out = append(out, c.bootFlags[:]...)
	default:
		return 0x80, nil
	}
	return wire.CCOK, out
}

// Power reports whether the simulated host is powered on.
func (b *BMC) Power() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.chassis.advance(b.now())
	return b.chassis.on
}

// SetPower switches the simulated host on or off at once, as the front
// panel button would; a pending soft shutdown or power cycle is
// cancelled. Powering on consumes one-time boot flags.
func (b *BMC) SetPower(on bool) {
	b.mu.Lock()
	defer func() { b.unlockAndFlush(b.now()) }()
	b.chassis.advance(b.now())
	b.chassis.pending = pendingNone
	if on {
		b.chassis.powerOn(false)
	} else {
		b.chassis.powerOff()
	}
}

// Boot returns the boot options state.
func (b *BMC) Boot() BootState {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.chassis.advance(b.now())
	return b.chassis.bootState()
}
