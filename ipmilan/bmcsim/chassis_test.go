package bmcsim

import (
	"testing"
	"testing/synctest"
	"time"

	"github.com/solgate/solgate/ipmilan/internal/wire"
)

func TestOpenSessionPrivilege(t *testing.T) {
	for _, tt := range []struct {
		name  string
		quirk bool
		req   wire.Privilege
		want  wire.Privilege
	}{
		{"highest", false, 0, wire.PrivAdmin},
		{"operator", false, wire.PrivOperator, wire.PrivOperator},
		{"ipmi_sim quirk echoes 0", true, 0, 0},
		{"ipmi_sim quirk echoes operator", true, wire.PrivOperator, wire.PrivOperator},
	} {
		t.Run(tt.name, func(t *testing.T) {
			b := newTestBMC(func(c *Config) { c.Quirks.OpenSessionPrivZero = tt.quirk })
			c := newTestClient(t, direct(b))
			role := uint8(0x14)
			if tt.req != 0 {
				role = 0x10 | uint8(tt.req)
			}
			res, err := c.handshake20(hsOpts{suite: 17, user: "admin", pass: "secret", reqPriv: tt.req, role: role})
			if err != nil || res.open.MaxPriv != tt.want || !res.icvValid {
				t.Fatalf("granted %v (icv %v, %v), want %v", res.open.MaxPriv, res.icvValid, err, tt.want)
			}
		})
	}
}

// power drives the chassis through an operator session.
func TestChassisControl(t *testing.T) {
	type step struct {
		op    wire.ChassisControl
		code  wire.CompletionCode
		on    bool          // power right after the command
		after time.Duration // then wait
		later bool          // power after the wait
	}
	tests := []struct {
		name    string
		initial bool
		steps   []step
		resets  uint64
		diags   uint64
	}{
		{name: "on off", steps: []step{
			{op: wire.ControlPowerUp, on: true, later: true},
			{op: wire.ControlPowerUp, on: true, later: true},
			{op: wire.ControlPowerDown, on: false},
			{op: wire.ControlPowerDown, on: false}}},
		{name: "soft shutdown after delay", initial: true, steps: []step{
			{op: wire.ControlSoftShutdown, on: true, after: 99 * time.Millisecond, later: true},
			{op: wire.ControlSoftShutdown, on: true, after: time.Millisecond, later: false},
			{op: wire.ControlSoftShutdown, on: false, later: false}}},
		{name: "power up cancels soft shutdown", initial: true, steps: []step{
			{op: wire.ControlSoftShutdown, on: true, later: true},
			{op: wire.ControlPowerUp, on: true, after: time.Second, later: true}}},
		{name: "cycle", initial: true, steps: []step{
			{op: wire.ControlPowerCycle, on: false, after: 100 * time.Millisecond, later: true}}},
		{name: "cycle while off", steps: []step{
			{op: wire.ControlPowerCycle, code: wire.CCNotSupportedState}}},
		{name: "power down during cycle", initial: true, steps: []step{
			{op: wire.ControlPowerCycle, on: false},
			{op: wire.ControlPowerDown, on: false, after: time.Second}}},
		{name: "reset and diag", initial: true, resets: 1, diags: 1, steps: []step{
			{op: wire.ControlHardReset, on: true, later: true},
			{op: wire.ControlDiagInterrupt, on: true, later: true}}},
		{name: "reset while off", resets: 0, steps: []step{
			{op: wire.ControlHardReset, code: wire.CCNotSupportedState},
			{op: wire.ControlDiagInterrupt, code: wire.CCNotSupportedState}}},
		{name: "invalid op", steps: []step{{op: 9, code: wire.CCInvalidField}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				b := newTestBMC(func(c *Config) { c.PowerOn = tt.initial })
				c := newTestClient(t, direct(b))
				c.mustOpen20(hsOpts{suite: 3, user: "oper", pass: "operpw", role: 0x13})
				c.mustCmd20(wire.NetFnApp, wire.CmdSetSessionPrivilege, []byte{3}, wire.CCOK)
				for i, s := range tt.steps {
					c.mustCmd20(wire.NetFnChassis, wire.CmdChassisControl, []byte{uint8(s.op)}, s.code)
					d := c.mustCmd20(wire.NetFnChassis, wire.CmdGetChassisStatus, nil, wire.CCOK)
					if st, _ := wire.ParseChassisStatus(d); st.PowerOn() != s.on || b.Power() != s.on {
						t.Fatalf("step %d (%v): power %v, want %v", i, s.op, st.PowerOn(), s.on)
					}
					time.Sleep(s.after)
					if b.Power() != s.later {
						t.Fatalf("step %d (%v): power after %v is %v, want %v", i, s.op, s.after, b.Power(), s.later)
					}
				}
				if st := b.Stats(); st.Resets != tt.resets || st.Diags != tt.diags {
					t.Fatalf("resets %d diags %d", st.Resets, st.Diags)
				}
			})
		})
	}
}

func TestBootOptions(t *testing.T) {
	b := newTestBMC(nil)
	c := newTestClient(t, direct(b))
	c.mustOpen20(hsOpts{suite: 17, user: "admin", pass: "secret"})
	c.mustCmd20(wire.NetFnChassis, wire.CmdGetBootOptions, []byte{5, 0, 0}, wire.CCInsufficientPriv)
	c.mustCmd20(wire.NetFnApp, wire.CmdSetSessionPrivilege, []byte{4}, wire.CCOK)
	// ipmitool's "chassis bootdev pxe" sequence.
	set := func(d ...byte) { c.mustCmd20(wire.NetFnChassis, wire.CmdSetBootOptions, d, wire.CCOK) }
	set(0, 1)
	set(3, 1, 1)
	set(append([]byte{5}, wire.BootFlags{Valid: true, Device: wire.BootDevicePXE}.Append(nil)...)...)
	set(0, 2)
	set(0, 0)
	d := c.mustCmd20(wire.NetFnChassis, wire.CmdGetBootOptions, []byte{5, 0, 0}, wire.CCOK)
	if len(d) != 7 || d[0] != 1 || d[1] != 5 {
		t.Fatalf("get boot flags: %x", d)
	}
	if f, _ := wire.ParseBootFlags(d[2:]); !f.Valid || f.Device != wire.BootDevicePXE || f.Persistent {
		t.Fatalf("boot flags %+v", f)
	}
	if st := b.Boot(); !st.Valid || st.Device != BootPXE || st.Boots != 0 {
		t.Fatalf("boot state %+v", st)
	}
	c.mustCmd20(wire.NetFnChassis, wire.CmdGetBootOptions, []byte{0x61, 0, 0}, 0x80)
	c.mustCmd20(wire.NetFnChassis, wire.CmdSetBootOptions, []byte{0x61, 0}, 0x80)
	c.mustCmd20(wire.NetFnChassis, wire.CmdSetBootOptions, []byte{5}, wire.CCBadLength)
	c.mustCmd20(wire.NetFnChassis, wire.CmdGetBootOptions, []byte{5}, wire.CCBadLength)

	// The next power-on boots from PXE once, then the flag is gone.
	c.mustCmd20(wire.NetFnChassis, wire.CmdChassisControl, []byte{1}, wire.CCOK)
	if st := b.Boot(); st.Valid || st.LastBoot != BootPXE || st.Boots != 1 {
		t.Fatalf("after power on: %+v", st)
	}
	c.mustCmd20(wire.NetFnChassis, wire.CmdChassisControl, []byte{3}, wire.CCOK)
	if st := b.Boot(); st.LastBoot != BootNone || st.Boots != 2 {
		t.Fatalf("after reset: %+v", st)
	}
	// Persistent BIOS setup survives boots.
	set(append([]byte{5}, wire.BootFlags{Valid: true, Persistent: true, Device: wire.BootDeviceBIOS}.Append(nil)...)...)
	c.mustCmd20(wire.NetFnChassis, wire.CmdChassisControl, []byte{3}, wire.CCOK)
	b.SetPower(false)
	b.SetPower(true)
	if st := b.Boot(); !st.Valid || !st.Persistent || st.LastBoot != BootBIOS || st.Boots != 4 {
		t.Fatalf("persistent: %+v", st)
	}
}

func TestDeviceIDAndIdentify(t *testing.T) {
	b := newTestBMC(func(c *Config) { c.ManufacturerID = 10876; c.ProductID = 0x1234 })
	c := newTestClient(t, direct(b))
	c.mustOpen20(hsOpts{suite: 2, user: "admin", pass: "secret"})
	id, err := wire.ParseDeviceID(c.mustCmd20(wire.NetFnApp, wire.CmdGetDeviceID, nil, wire.CCOK))
	if err != nil || id.ManufacturerID != 10876 || id.ProductID != 0x1234 {
		t.Fatalf("device ID %+v %v", id, err)
	}
	c.mustCmd20(wire.NetFnApp, wire.CmdSetSessionPrivilege, []byte{3}, wire.CCOK)
	c.mustCmd20(wire.NetFnChassis, 0x04, []byte{0, 1}, wire.CCOK)
	st, _ := wire.ParseChassisStatus(c.mustCmd20(wire.NetFnChassis, wire.CmdGetChassisStatus, nil, wire.CCOK))
	if st.Misc&0x20 == 0 {
		t.Fatalf("identify not on: %+v", st)
	}
	c.mustCmd20(wire.NetFnStorage, 0x10, nil, wire.CCInvalidCommand)
	c.mustCmd20(wire.NetFnChassis, wire.CmdChassisControl, nil, wire.CCBadLength)
}
