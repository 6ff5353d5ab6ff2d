package test

import (
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// Tests of solgate bmc against OpenIPMI's ipmi_sim, a BMC nobody here
// wrote: what solgate sets, ipmitool reads back the same, and what the
// simulator lacks is reported as "not supported", not as an error.

type bmcShow struct {
	Host         string            `json:"host"`
	OK           bool              `json:"ok"`
	Error        string            `json:"error"`
	Settings     map[string]string `json:"settings"`
	NotSupported []string          `json:"not_supported"`
	UserIDs      int               `json:"user_ids"`
	Users        []struct {
		ID                                       int
		Name, Enabled, Privilege, Messaging, SOL string
		LinkAuth                                 string `json:"link_auth"`
		CallbackOnly                             string `json:"callback_only"`
	} `json:"users"`
}

func bmcShowJSON(t *testing.T, env []string, args ...string) bmcShow {
	t.Helper()
	out, errOut, code := runSolgate(t, env, append([]string{"bmc", "show", "--json"}, args...)...)
	var res []bmcShow
	if err := json.Unmarshal([]byte(out), &res); err != nil || code != 0 || len(res) != 1 || !res[0].OK {
		t.Fatalf("bmc show --json: exit %d, %v\n%s%s", code, err, out, errOut)
	}
	return res[0]
}

// ipmitoolFields parses "Key : value" lines.
func ipmitoolFields(out string) map[string]string {
	m := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok || strings.TrimSpace(k) == "" {
			continue
		}
		k = strings.TrimSpace(k)
		if _, dup := m[k]; !dup {
			m[k] = strings.TrimSpace(v)
		}
	}
	return m
}

func runIpmitool(t *testing.T, bin string, args ...string) string {
	t.Helper()
	out, err := bmcsimRun(t, peerTimeout, bin, args...)
	if err != nil {
		t.Fatalf("ipmitool %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

func writeSecretFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestBMCCommandIPMISim: set the LAN address and add a user on ipmi_sim,
// read them back with solgate bmc show and with ipmitool lan print and
// user list, and log in as the new user.
func TestBMCCommandIPMISim(t *testing.T) {
	ipmitool := needTool(t, "ipmitool")
	sim := startIPMISim(t, defaultSimUsers)
	host, port, _ := net.SplitHostPort(sim.Addr)
	env := []string{"IPMI_PASSWORD=secret"}
	conn := []string{"-u", "admin", "-C", "3", "--timeout", "500ms"}
	lan := []string{"lan.ipsrc=static", "lan.ip=10.20.30.40", "lan.netmask=255.255.255.0", "lan.gateway=10.20.30.1"}

	// Address changes could cut off the session: refused without the flag.
	out, errOut, code := runSolgate(t, env, append(append([]string{"bmc", "set", sim.Addr}, lan...), conn...)...)
	if code != 1 || strings.Count(out, ": refused: it could cut off the session in use") != 4 {
		t.Fatalf("set without --allow-disconnect: exit %d\n%s%s", code, out, errOut)
	}
	tool := []string{"-I", "lanplus", "-C", "3", "-H", host, "-p", port, "-U", "admin", "-P", "secret"}
	if f := ipmitoolFields(runIpmitool(t, ipmitool, append(tool, "lan", "print", "1")...)); f["IP Address"] == "10.20.30.40" {
		t.Fatal("a refused change reached ipmi_sim")
	}
	out, errOut, code = runSolgate(t, env, append(append([]string{"bmc", "set", sim.Addr, "--allow-disconnect"}, lan...), conn...)...)
	if code != 0 || strings.Count(out, ": ok\n") != 4 {
		t.Fatalf("set --allow-disconnect: exit %d\n%s%s", code, out, errOut)
	}

	pw := writeSecretFile(t, "carol.pass", "carols-pw")
	out, errOut, code = runSolgate(t, env, append([]string{"bmc", "user", sim.Addr, "add", "carol", "operator", "--new-password-file", pw}, conn...)...)
	// ipmi_sim does not report users' enable status (IPMI 2.0 before
	// errata 3): the enable is made but cannot be read back.
	if code != 0 || !strings.Contains(out, `user.5.name: "" -> carol: ok`) || !strings.Contains(out, "user.5.privilege: none -> operator: ok") ||
		!strings.Contains(out, "user.5.enabled: unknown -> on: applied, not read back: not reported by the BMC") || strings.Contains(out, "user.5.sol") {
		t.Fatalf("user add: exit %d\n%s%s", code, out, errOut)
	}

	sh := bmcShowJSON(t, env, append([]string{sim.Addr}, conn...)...)
	for k, want := range map[string]string{"lan.ip": "10.20.30.40", "lan.ipsrc": "static", "lan.netmask": "255.255.255.0",
		"lan.gateway": "10.20.30.1", "channel.access": "always", "sol.enable": "not supported", "sol.bitrate": "not supported"} {
		if sh.Settings[k] != want {
			t.Errorf("show: %s = %q, want %q", k, sh.Settings[k], want)
		}
	}
	if !slices.Contains(sh.NotSupported, "sol.enable") || slices.Contains(sh.NotSupported, "lan.ip") {
		t.Errorf("not supported: %v", sh.NotSupported)
	}
	var names []string
	for _, u := range sh.Users {
		names = append(names, u.Name)
		if u.Name == "carol" && (u.ID != 5 || u.Privilege != "operator" || u.Messaging != "on" || u.SOL != "not supported" || u.Enabled != "unknown") {
			t.Errorf("carol: %+v", u)
		}
	}
	if !slices.Equal(names, []string{"admin", "oper", "viewer", "carol"}) || sh.UserIDs != 63 {
		t.Errorf("users %v of %d IDs", names, sh.UserIDs)
	}

	f := ipmitoolFields(runIpmitool(t, ipmitool, append(tool, "lan", "print", "1")...))
	for k, want := range map[string]string{"IP Address": "10.20.30.40", "IP Address Source": "Static Address",
		"Subnet Mask": "255.255.255.0", "Default Gateway IP": "10.20.30.1"} {
		if f[k] != want {
			t.Errorf("ipmitool lan print: %s = %q, want %q", k, f[k], want)
		}
	}
	list := runIpmitool(t, ipmitool, append(tool, "-c", "user", "list", "1")...)
	if !strings.Contains(list, "\n5,carol,true,false,true,OPERATOR\n") {
		t.Errorf("ipmitool user list has no carol as solgate made her:\n%s", list)
	}
	carol := []string{"-I", "lanplus", "-C", "3", "-H", host, "-p", port, "-U", "carol", "-P", "carols-pw", "-L", "OPERATOR"}
	if out := runIpmitool(t, ipmitool, append(carol, "chassis", "power", "status")...); !strings.Contains(out, "Chassis Power is") {
		t.Errorf("carol cannot use her account: %s", out)
	}

	// The text form says it too, and an unsupported key cannot be set.
	out, _, code = runSolgate(t, env, append([]string{"bmc", "show", sim.Addr}, conn...)...)
	if code != 0 || !strings.Contains(out, "sol.enable            not supported\n") || !strings.Contains(out, "lan.ip                10.20.30.40\n") {
		t.Errorf("show: exit %d\n%s", code, out)
	}
	out, _, code = runSolgate(t, env, append([]string{"bmc", "set", sim.Addr, "sol.enable=on"}, conn...)...)
	if code != 1 || !strings.Contains(out, "sol.enable: cannot be set: SOL parameter 1 (SOL enable): not supported by the BMC") {
		t.Errorf("set of an unsupported key: exit %d\n%s", code, out)
	}
}

// TestBMCCommandIPMISimSOL: with a serial port configured ipmi_sim has
// the SOL enable and bit rate parameters and nothing else; solgate shows
// the rest as not supported and changes the bit rate as ipmitool sees it.
func TestBMCCommandIPMISimSOL(t *testing.T) {
	ipmitool := needTool(t, "ipmitool")
	sim, _ := startIPMISimSOL(t)
	host, port, _ := net.SplitHostPort(sim.Addr)
	env := []string{"IPMI_PASSWORD=secret"}
	conn := []string{"-u", "admin", "-C", "3", "--timeout", "500ms"}
	sh := bmcShowJSON(t, env, append([]string{sim.Addr}, conn...)...)
	for k, supported := range map[string]bool{"sol.enable": true, "sol.bitrate.volatile": true, "sol.bitrate.nv": true,
		"sol.privilege": false, "sol.accumulate": false, "sol.retry.count": false, "sol.port": false, "sol.channel": false} {
		if (sh.Settings[k] != notSupportedText) != supported || sh.Settings[k] == "" {
			t.Errorf("%s = %q, supported by ipmi_sim: %v", k, sh.Settings[k], supported)
		}
	}
	out, errOut, code := runSolgate(t, env, append([]string{"bmc", "set", sim.Addr, "sol.bitrate.volatile=57600"}, conn...)...)
	if code != 0 || !strings.Contains(out, "sol.bitrate.volatile: ") || !strings.Contains(out, "-> 57600: ok") {
		t.Fatalf("set: exit %d\n%s%s", code, out, errOut)
	}
	tool := []string{"-I", "lanplus", "-C", "3", "-H", host, "-p", port, "-U", "admin", "-P", "secret"}
	info, _ := bmcsimRun(t, peerTimeout, ipmitool, append(tool, "sol", "info", "1")...)
	if f := ipmitoolFields(info); f["Volatile Bit Rate (kbps)"] != "57.6" {
		t.Fatalf("ipmitool sol info after solgate set 57600:\n%s", info)
	}
	if got := bmcShowJSON(t, env, append([]string{sim.Addr}, conn...)...).Settings["sol.bitrate.volatile"]; got != "57600" {
		t.Fatalf("show: volatile bit rate %q", got)
	}
}

const notSupportedText = "not supported"
