package test

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/solgate/solgate/ipmilan/bmcsim"
)

// Third-party IPMI clients (ipmitool, FreeIPMI ipmipower) against the
// simulator, observing the simulated chassis change.

const peerTimeout = 20 * time.Second

// ipmitoolArgs are the connection arguments of ipmitool for sim.
func ipmitoolArgs(sim *simBMC, iface string, extra ...string) []string {
	return append([]string{"-I", iface, "-H", sim.Host, "-p", strconv.Itoa(sim.Port), "-U", "admin", "-P", bmcsimPassword}, extra...)
}

func TestIpmitoolLanplusAgainstBMCSim(t *testing.T) {
	t.Parallel()
	bin := needTool(t, "ipmitool")
	for _, suite := range []string{"3", "17"} {
		t.Run("C"+suite, func(t *testing.T) {
			t.Parallel()
			sim := startSimBMC(t, bmcsim.Config{ManufacturerID: 10876, ProductID: 0x0907, CycleDelay: 50 * time.Millisecond})
			run := func(want string, args ...string) {
				t.Helper()
				out, err := bmcsimRun(t, peerTimeout, bin, ipmitoolArgs(sim, "lanplus", append([]string{"-C", suite}, args...)...)...)
				if err != nil || !strings.Contains(out, want) {
					t.Fatalf("ipmitool %s: %v\n%s\n(want %q)", strings.Join(args, " "), err, out, want)
				}
			}
			run("Chassis Power is off", "chassis", "power", "status")
			run("Up/On", "chassis", "power", "on")
			if !sim.Power() {
				t.Fatal("power on did not reach the simulated chassis")
			}
			run("Chassis Power is on", "chassis", "power", "status")
			run("Cycle", "chassis", "power", "cycle")
			bmcsimEventually(t, "power back on after the cycle", func() bool {
				st := sim.Stats()
				return sim.Power() && st.PowerOffs == 1 && st.PowerOns == 2
			})
			run("Down/Off", "chassis", "power", "off")
			if sim.Power() {
				t.Fatal("power off did not reach the simulated chassis")
			}
			run("Manufacturer ID           : 10876", "mc", "info")
			run("Set Boot Device to pxe", "chassis", "bootdev", "pxe")
			if b := sim.Boot(); !b.Valid || b.Device != bmcsim.BootPXE {
				t.Fatalf("boot options after bootdev pxe: %+v", b)
			}
			run("Chassis Power is off", "chassis", "power", "status")
			run("Up/On", "chassis", "power", "on")
			if b := sim.Boot(); b.Valid || b.LastBoot != bmcsim.BootPXE {
				t.Fatalf("boot options after power on: %+v (want the PXE flag used once)", b)
			}
			if st := sim.Stats(); st.SessionsActive != 0 || st.SessionsOpened != 9 {
				t.Errorf("sessions: %d active (ipmitool closes its sessions), %d opened", st.SessionsActive, st.SessionsOpened)
			}
		})
	}
}

// TestIpmitoolAutoSuiteAgainstBMCSim: without -C, ipmitool 1.8.19 reads
// Get Channel Cipher Suites and picks 17; a BMC whose list fails costs it
// a 10 s fallback (ipmi_sim), ours must not.
func TestIpmitoolAutoSuiteAgainstBMCSim(t *testing.T) {
	t.Parallel()
	bin := needTool(t, "ipmitool")
	sim := startSimBMC(t, bmcsim.Config{PowerOn: true})
	start := time.Now()
	out, err := bmcsimRun(t, peerTimeout, bin, ipmitoolArgs(sim, "lanplus", "chassis", "power", "status")...)
	if err != nil || !strings.Contains(out, "Chassis Power is on") {
		t.Fatalf("%v\n%s", err, out)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("automatic cipher suite took %v", d)
	}
}

func TestIpmitoolLanAgainstBMCSim(t *testing.T) {
	t.Parallel()
	bin := needTool(t, "ipmitool")
	for _, auth := range []string{"MD5", "PASSWORD"} {
		t.Run(auth, func(t *testing.T) {
			t.Parallel()
			sim := startSimBMC(t, bmcsim.Config{Allow15: true})
			run := func(want string, args ...string) {
				t.Helper()
				out, err := bmcsimRun(t, peerTimeout, bin, ipmitoolArgs(sim, "lan", append([]string{"-A", auth}, args...)...)...)
				if err != nil || !strings.Contains(out, want) {
					t.Fatalf("ipmitool -I lan %s: %v\n%s\n(want %q)", strings.Join(args, " "), err, out, want)
				}
			}
			run("Chassis Power is off", "chassis", "power", "status")
			run("Up/On", "chassis", "power", "on")
			if !sim.Power() {
				t.Fatal("power on did not reach the simulated chassis")
			}
			run("Chassis Power is on", "chassis", "power", "status")
			run("Down/Off", "chassis", "power", "off")
			if sim.Power() {
				t.Fatal("power off did not reach the simulated chassis")
			}
			run("IPMI Version              : 2.0", "mc", "info")
		})
	}
}

func TestIpmipowerAgainstBMCSim(t *testing.T) {
	t.Parallel()
	bin := needTool(t, "ipmipower")
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"LAN_2_0", []string{"-D", "LAN_2_0"}},
		{"LAN_2_0-suite17", []string{"-D", "LAN_2_0", "-I", "17"}},
		{"LAN", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			sim := startSimBMC(t, bmcsim.Config{Allow15: true, CycleDelay: 50 * time.Millisecond})
			host := sim.Addr
			run := func(op, want string) {
				t.Helper()
				args := append([]string{"-h", host, "-u", "admin", "-p", bmcsimPassword, op}, tc.args...)
				out, err := bmcsimRun(t, peerTimeout, bin, args...)
				if err != nil || strings.TrimSpace(out) != sim.Host+": "+want {
					t.Fatalf("ipmipower %s: %v\n%s\n(want %q)", op, err, out, sim.Host+": "+want)
				}
			}
			run("--stat", "off")
			run("--on", "ok")
			if !sim.Power() {
				t.Fatal("--on did not reach the simulated chassis")
			}
			run("--stat", "on")
			run("--cycle", "ok")
			bmcsimEventually(t, "power back on after --cycle", func() bool { return sim.Power() && sim.Stats().PowerOffs == 1 })
			run("--off", "ok")
			if sim.Power() {
				t.Fatal("--off did not reach the simulated chassis")
			}
			run("--stat", "off")
		})
	}
}

// TestIpmipowerFleetLossyBMCSim: ipmipower recovers from lost answers
// (every setup step retransmitted) against a fleet dropping 15% of them.
func TestIpmipowerFleetLossyBMCSim(t *testing.T) {
	t.Parallel()
	bin := needTool(t, "ipmipower")
	for _, mode := range []string{"LAN_2_0", "LAN"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			// ipmipower prints hosts without their ports: one address each.
			var hosts, ips []string
			for i := range 10 {
				sim := startSimBMCOn(t, fmt.Sprintf("127.0.66.%d", 10+i), bmcsim.Config{Allow15: true, PowerOn: i%2 == 0,
					Faults: bmcsim.Faults{Drop: 0.15, Seed: int64(i)}})
				hosts, ips = append(hosts, sim.Addr), append(ips, sim.Host)
			}
			out, err := bmcsimRun(t, peerTimeout, bin, "-D", mode, "-h", strings.Join(hosts, ","), "-u", "admin", "-p", bmcsimPassword, "--stat")
			if err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			for i, h := range ips {
				want := map[bool]string{true: "on", false: "off"}[i%2 == 0]
				if !strings.Contains(out, h+": "+want+"\n") {
					t.Errorf("%s: want %q in\n%s", h, want, out)
				}
			}
		})
	}
}

// TestPeersWrongCredentialsBMCSim: wrong passwords and users make every
// client fail, quickly, and change nothing.
func TestPeersWrongCredentialsBMCSim(t *testing.T) {
	t.Parallel()
	ipmitool := needTool(t, "ipmitool")
	ipmipower := needTool(t, "ipmipower")
	sim := startSimBMC(t, bmcsim.Config{Allow15: true})
	port := strconv.Itoa(sim.Port)
	cases := []struct {
		name string
		bin  string
		args []string
		want string // in the output
	}{
		{"ipmitool-lanplus-password", ipmitool, []string{"-I", "lanplus", "-C", "17", "-H", sim.Host, "-p", port, "-U", "admin", "-P", "wrong", "chassis", "power", "on"},
			"Unable to establish IPMI v2"},
		{"ipmitool-lanplus-user", ipmitool, []string{"-v", "-I", "lanplus", "-C", "3", "-H", sim.Host, "-p", port, "-U", "nobody", "-P", "x", "chassis", "power", "on"},
			"unauthorized name"},
		{"ipmitool-lan-password", ipmitool, []string{"-I", "lan", "-A", "MD5", "-N", "1", "-R", "1", "-H", sim.Host, "-p", port, "-U", "admin", "-P", "wrong", "chassis", "power", "on"},
			"Unable to establish"},
		{"ipmipower-2.0-password", ipmipower, []string{"-D", "LAN_2_0", "-h", sim.Addr, "-u", "admin", "-p", "wrong", "--on"}, "password invalid"},
		{"ipmipower-2.0-user", ipmipower, []string{"-D", "LAN_2_0", "-h", sim.Addr, "-u", "nobody", "-p", "wrong", "--on"}, "username invalid"},
		{"ipmipower-1.5-password", ipmipower, []string{"-h", sim.Addr, "-u", "admin", "-p", "wrong", "--on", "--session-timeout", "3000"},
			"password verification timeout"},
		{"ipmipower-1.5-user", ipmipower, []string{"-h", sim.Addr, "-u", "nobody", "-p", "wrong", "--on"}, "username invalid"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			out, err := bmcsimRun(t, peerTimeout, tc.bin, tc.args...)
			if !strings.Contains(out, tc.want) {
				t.Fatalf("output lacks %q (err %v):\n%s", tc.want, err, out)
			}
			if tc.bin == ipmitool && err == nil {
				t.Fatalf("ipmitool exited 0 with wrong credentials:\n%s", out)
			}
			if d := time.Since(start); d > 10*time.Second {
				t.Errorf("took %v", d)
			}
		})
	}
	if sim.Power() {
		t.Fatal("a client with wrong credentials powered the chassis on")
	}
	if st := sim.Stats(); st.SessionsOpened != 0 || st.AuthFailures == 0 {
		t.Fatalf("stats %+v", st)
	}
}

// TestIpmitoolPrivilegeBMCSim: an operator may control power, a session
// asking for more than the user's limit is refused.
func TestIpmitoolPrivilegeBMCSim(t *testing.T) {
	t.Parallel()
	bin := needTool(t, "ipmitool")
	sim := startSimBMC(t, bmcsim.Config{})
	base := []string{"-v", "-I", "lanplus", "-C", "17", "-H", sim.Host, "-p", strconv.Itoa(sim.Port), "-U", "oper", "-P", "operpw"}
	out, err := bmcsimRun(t, peerTimeout, bin, append(base, "-L", "OPERATOR", "chassis", "power", "on")...)
	if err != nil || !sim.Power() {
		t.Fatalf("operator power on: %v\n%s", err, out)
	}
	out, err = bmcsimRun(t, peerTimeout, bin, append(base, "-L", "ADMINISTRATOR", "chassis", "power", "off")...)
	if err == nil || !sim.Power() {
		t.Fatalf("operator got an admin session: %v\n%s", err, out)
	}
	if !strings.Contains(out, "Unable to establish") {
		t.Fatalf("unexpected refusal:\n%s", out)
	}
}

// TestIpmipowerQuirksBMCSim: the simulator's firmware quirks defeat
// FreeIPMI exactly as the real firmware does, unless FreeIPMI is given
// the matching -W workaround: proof that the quirks are faithful enough
// to test solgate's own workarounds with.
func TestIpmipowerQuirksBMCSim(t *testing.T) {
	t.Parallel()
	bin := needTool(t, "ipmipower")
	for _, tc := range []struct {
		workaround string
		quirks     bmcsim.Quirks
		failure    string // ipmipower's message without the workaround
	}{
		{"opensesspriv", bmcsim.Quirks{OpenSessionPrivZero: true}, "privilege level cannot be obtained"},
		{"supermicro20", bmcsim.Quirks{RAKP2ExtraByte: true}, "password invalid"},
		{"nochecksumcheck", bmcsim.Quirks{BadChecksum: true}, "connection timeout"},
	} {
		t.Run(tc.workaround, func(t *testing.T) {
			t.Parallel()
			sim := startSimBMC(t, bmcsim.Config{PowerOn: true, Quirks: tc.quirks})
			args := []string{"-D", "LAN_2_0", "-h", sim.Addr, "-u", "admin", "-p", bmcsimPassword, "--stat", "--session-timeout", "3000"}
			out, _ := bmcsimRun(t, peerTimeout, bin, args...)
			if !strings.Contains(out, tc.failure) {
				t.Fatalf("without -W %s: want %q, got\n%s", tc.workaround, tc.failure, out)
			}
			out, err := bmcsimRun(t, peerTimeout, bin, append(args, "-W", tc.workaround)...)
			if err != nil || strings.TrimSpace(out) != sim.Host+": on" {
				t.Fatalf("with -W %s: %v\n%s", tc.workaround, err, out)
			}
		})
	}
}
