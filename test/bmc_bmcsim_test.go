package test

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/solgate/solgate/ipmilan/bmcsim"
)

// TestBMCSetAgreesWithIpmitool: after solgate bmc set and user on the
// simulator, ipmitool's lan print, sol info and user list say what
// solgate bmc show says.
func TestBMCSetAgreesWithIpmitool(t *testing.T) {
	t.Parallel()
	ipmitool := needTool(t, "ipmitool")
	sim := startSimBMC(t, bmcsim.Config{Allow15: true})
	pw := writeSecretFile(t, "bmc.pass", bmcsimPassword)
	conn := []string{"-u", "admin", "--password-file", pw, "--timeout", "500ms"}
	out, errOut, code := runSolgate(t, nil, append([]string{"bmc", "set", sim.Addr, "--allow-disconnect",
		"lan.ipsrc=dhcp", "lan.ip=10.5.0.7", "lan.netmask=255.255.240.0", "lan.gateway=10.5.0.1", "lan.vlan=12",
		"lan.auth=md5", "lan.auth.admin=md5,password", "lan.cipher.1=unused", "lan.cipher.2=user",
		"channel.alerting=off", "sol.privilege=operator", "sol.encryption=on", "sol.authentication=on",
		"sol.accumulate=50ms", "sol.threshold=12", "sol.retry.count=5", "sol.retry.interval=200ms",
		"sol.bitrate.volatile=57600", "sol.bitrate.nv=19200"}, conn...)...)
	if code != 0 || strings.Count(out, ": ok\n") != 18 || strings.Count(out, ": unchanged\n") != 1 { // lan.auth.admin is md5,password already
		t.Fatalf("set: exit %d\n%s%s", code, out, errOut)
	}
	newpw := writeSecretFile(t, "carol.pass", "carols-password")
	for _, args := range [][]string{{"add", "carol", "operator", "--new-password-file", newpw}, {"sol", "carol", "off"}, {"add", "dave", "user", "--new-password-file", newpw}, {"disable", "dave"}} {
		if out, errOut, code := runSolgate(t, nil, append(append([]string{"bmc", "user", sim.Addr}, args...), conn...)...); code != 0 {
			t.Fatalf("user %v: exit %d\n%s%s", args, code, out, errOut)
		}
	}
	sh := bmcShowJSON(t, nil, append([]string{sim.Addr}, conn...)...)
	s := sh.Settings

	tool := ipmitoolArgs(sim, "lanplus", "-C", "3")
	lan := ipmitoolFields(runIpmitool(t, ipmitool, append(tool, "lan", "print", "1")...))
	src := map[string]string{"static": "Static Address", "dhcp": "DHCP Address", "bios": "BIOS Assigned Address"}
	authNames := func(v string) string { // solgate's md5,password is ipmitool's "MD5 PASSWORD"
		if v == "off" {
			return ""
		}
		return strings.ToUpper(strings.ReplaceAll(v, ",", " "))
	}
	for ipmitoolKey, want := range map[string]string{
		"IP Address": s["lan.ip"], "Subnet Mask": s["lan.netmask"], "Default Gateway IP": s["lan.gateway"],
		"MAC Address": s["lan.mac"], "IP Address Source": src[s["lan.ipsrc"]], "802.1q VLAN ID": s["lan.vlan"],
	} {
		if lan[ipmitoolKey] != want || want == "" {
			t.Errorf("lan print %s = %q, solgate says %q", ipmitoolKey, lan[ipmitoolKey], want)
		}
	}
	if s["lan.ip"] != "10.5.0.7" || s["lan.vlan"] != "12" {
		t.Errorf("show: %v", s)
	}
	// "Auth Type Enable : Callback : MD5" and the levels below it.
	for _, level := range []struct{ ipmitool, solgate string }{{"Callback", "callback"}, {"User", "user"}, {"Operator", "operator"}, {"Admin", "admin"}} {
		want := authNames(s["lan.auth."+level.solgate])
		if !strings.Contains(runIpmitoolLine(t, ipmitool, tool, level.ipmitool+"     "[:8-len(level.ipmitool)]+" :"), want) || want == "" {
			t.Errorf("lan print auth %s: solgate says %q", level.ipmitool, want)
		}
	}
	// Cipher suite privileges: one character per entry of "RMCP+ Cipher
	// Suites", X for unused.
	char := map[string]byte{"unused": 'X', "callback": 'c', "user": 'u', "operator": 'o', "admin": 'a', "oem": 'O'}
	entries := strings.Split(lan["RMCP+ Cipher Suites"], ",")
	privs := lan["Cipher Suite Priv Max"]
	if len(entries) != 4 || len(privs) < len(entries) {
		t.Fatalf("lan print ciphers %q %q", entries, privs)
	}
	for i, id := range entries {
		if c := char[s["lan.cipher."+id]]; privs[i] != c {
			t.Errorf("cipher suite %s: ipmitool %c, solgate %q", id, privs[i], s["lan.cipher."+id])
		}
	}

	sol := ipmitoolFields(runIpmitool(t, ipmitool, append(tool, "sol", "info", "1")...))
	kbps := func(bps string) string {
		n, _ := strconv.Atoi(bps)
		return strings.TrimSuffix(strconv.FormatFloat(float64(n)/1000, 'f', 1, 64), ".0")
	}
	ms := func(d string) string { return strings.TrimSuffix(d, "ms") }
	for ipmitoolKey, want := range map[string]string{
		"Enabled": map[string]string{"on": "true", "off": "false"}[s["sol.enable"]], "Force Encryption": map[string]string{"on": "true", "off": "false"}[s["sol.encryption"]],
		"Force Authentication": map[string]string{"on": "true", "off": "false"}[s["sol.authentication"]], "Privilege Level": strings.ToUpper(s["sol.privilege"]),
		"Character Accumulate Level (ms)": ms(s["sol.accumulate"]), "Character Send Threshold": s["sol.threshold"],
		"Retry Count": s["sol.retry.count"], "Retry Interval (ms)": ms(s["sol.retry.interval"]),
		"Volatile Bit Rate (kbps)": kbps(s["sol.bitrate.volatile"]), "Non-Volatile Bit Rate (kbps)": kbps(s["sol.bitrate.nv"]),
		"Payload Port": s["sol.port"], "Payload Channel": s["sol.channel"] + " (0x0" + s["sol.channel"] + ")",
	} {
		if sol[ipmitoolKey] != want {
			t.Errorf("sol info %s = %q, solgate says %q", ipmitoolKey, sol[ipmitoolKey], want)
		}
	}
	if s["sol.privilege"] != "operator" || s["sol.bitrate.volatile"] != "57600" || s["sol.accumulate"] != "50ms" {
		t.Errorf("show: %v", s)
	}

	list := runIpmitool(t, ipmitool, append(tool, "-c", "user", "list", "1")...)
	ipPriv := map[string]string{"admin": "ADMINISTRATOR", "operator": "OPERATOR", "user": "USER", "callback": "CALLBACK", "none": "NO ACCESS"}
	tf := map[string]string{"on": "true", "off": "false"}
	if len(sh.Users) != 4 {
		t.Fatalf("show users %+v", sh.Users)
	}
	for _, u := range sh.Users {
		callin := map[string]string{"on": "false", "off": "true"}[u.CallbackOnly]
		line := fmt.Sprintf("%d,%s,%s,%s,%s,%s", u.ID, u.Name, callin, tf[u.LinkAuth], tf[u.Messaging], ipPriv[u.Privilege])
		if !strings.Contains(list, line+"\n") {
			t.Errorf("ipmitool user list lacks %q (solgate's %+v):\n%s", line, u, list)
		}
	}
	// Enable status and SOL payload access, which user list does not show.
	for _, u := range sh.Users {
		acc := ipmitoolFields(runIpmitool(t, ipmitool, append(tool, "channel", "getaccess", "1", strconv.Itoa(u.ID))...))
		if want := map[string]string{"on": "enabled", "off": "disabled"}[u.Enabled]; acc["Enable Status"] != want {
			t.Errorf("user %s: ipmitool enable status %q, solgate %q", u.Name, acc["Enable Status"], u.Enabled)
		}
		pay, _ := bmcsimRun(t, peerTimeout, ipmitool, append(tool, "sol", "payload", "status", "1", strconv.Itoa(u.ID))...)
		if want := map[string]string{"on": "enabled", "off": "disabled"}[u.SOL]; !strings.Contains(pay, want) {
			t.Errorf("user %s: ipmitool sol payload status %q, solgate %q", u.Name, strings.TrimSpace(pay), u.SOL)
		}
	}
	if u := sh.Users[2]; u.Name != "carol" || u.SOL != "off" || u.Privilege != "operator" || sh.Users[3].Name != "dave" || sh.Users[3].Enabled != "off" {
		t.Errorf("show users %+v", sh.Users)
	}
}

// runIpmitoolLine returns the lan print line containing prefix.
func runIpmitoolLine(t *testing.T, bin string, tool []string, prefix string) string {
	t.Helper()
	for _, l := range strings.Split(runIpmitool(t, bin, append(tool, "lan", "print", "1")...), "\n") {
		if strings.Contains(l, prefix) {
			return l
		}
	}
	return ""
}

// TestBMCCommandConfig: with -c, console names resolve to their BMCs and
// credentials from the solgate config, per-host values use the console
// names, and doctor's fixes repeat -c.
func TestBMCCommandConfig(t *testing.T) {
	t.Parallel()
	a := startSimBMC(t, bmcsim.Config{})
	b := startSimBMC(t, bmcsim.Config{Misconfigured: true})
	dir := t.TempDir()
	pw := writeSecretFile(t, "bmc.pass", bmcsimPassword)
	conf := dir + "/solgate.toml"
	must(t, os.WriteFile(conf, []byte(`
[server]
log_dir = "`+dir+`/log"
state_dir = "`+dir+`/state"

[defaults]
user = "admin"
password_file = "`+pw+`"

[[console]]
name = "node[07-08]"
bmc = "`+a.Addr+`,`+b.Addr+`"
`), 0o600))
	out, errOut, code := runSolgate(t, nil, "bmc", "set", "-c", conf, "node[07-08]", "lan.ip=10.1.0.{n}", "lan.gateway=10.1.0.254", "--allow-disconnect")
	if code != 0 || !strings.Contains(out, "node07: lan.ip: ") || !strings.Contains(out, "-> 10.1.0.8: ok") {
		t.Fatalf("set -c: exit %d\n%s%s", code, out, errOut)
	}
	if a.ConfigState().LAN.IP.String() != "10.1.0.7" || b.ConfigState().LAN.IP.String() != "10.1.0.8" {
		t.Fatalf("addresses %v %v", a.ConfigState().LAN.IP, b.ConfigState().LAN.IP)
	}
	out, _, code = runSolgate(t, nil, "bmc", "doctor", "-c", conf, "node[07-08]")
	if code != 1 || !strings.Contains(out, "node07: ok\n") || !strings.Contains(out, "node08: sol.enable: SOL is disabled; fix: solgate bmc set -c "+conf+" node08 sol.enable=on\n") {
		t.Fatalf("doctor -c: exit %d\n%s", code, out)
	}
	out, _, code = runSolgate(t, nil, "bmc", "show", "-c", conf, "node08")
	if code != 0 || !strings.HasPrefix(out, "== node08 ("+b.Addr+")\n") || !strings.Contains(out, "lan.ip                10.1.0.8\n") {
		t.Fatalf("show -c: exit %d\n%s", code, out)
	}
}
