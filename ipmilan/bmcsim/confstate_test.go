package bmcsim

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/solgate/solgate/ipmilan/internal/wire"
)

func si(t *testing.T, b *BMC, netFn wire.NetFn, cmd uint8, data []byte, want wire.CompletionCode) []byte {
	t.Helper()
	code, r := b.SystemInterface(uint8(netFn), cmd, data)
	if wire.CompletionCode(code) != want {
		t.Fatalf("%v command %#02x % x: completion code %#02x, want %#02x", netFn, cmd, data, code, uint8(want))
	}
	return r
}

// TestStateFile: every change is written to the state file (0600), a new
// BMC with the same file starts with it, and a broken file is refused by
// Validate with the file named.
func TestStateFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "node01.json")
	cfg := Config{Users: testUsers, StateFile: path}
	b := New(cfg)
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("a state file exists before any change: %v", err)
	}
	si(t, b, wire.NetFnApp, wire.CmdSetUserName, wire.SetUserNameRequest{UserID: 6, Name: mustName("alice")}.Append(nil), wire.CCOK)
	si(t, b, wire.NetFnApp, wire.CmdSetUserPassword, wire.SetUserPasswordRequest{UserID: 6, Op: wire.PasswordSet, Password: []byte("pw")}.Append(nil), wire.CCOK)
	si(t, b, wire.NetFnApp, wire.CmdSetUserPassword, wire.SetUserPasswordRequest{UserID: 6, Op: wire.PasswordEnableUser}.Append(nil), wire.CCOK)
	si(t, b, wire.NetFnApp, wire.CmdSetUserAccess, wire.SetUserAccessRequest{Channel: 1, UserID: 6, ChangeBits: true, IPMIMessaging: true, PrivLimit: PrivAdmin}.Append(nil), wire.CCOK)
	si(t, b, wire.NetFnTransport, wire.CmdSetLANConfigParam, wire.SetParamRequest{Channel: 1, Param: uint8(wire.LANIPAddress), Data: []byte{10, 9, 8, 7}}.Append(nil), wire.CCOK)
	si(t, b, wire.NetFnTransport, wire.CmdSetSOLConfigParam, wire.SetParamRequest{Channel: 1, Param: uint8(wire.SOLVBitRate), Data: []byte{uint8(wire.BitRate9600)}}.Append(nil), wire.CCOK)
	si(t, b, wire.NetFnTransport, wire.CmdSetSOLConfigParam, wire.SetParamRequest{Channel: 1, Param: uint8(wire.SOLAuthParam), Data: []byte{0x43}}.Append(nil), wire.CCOK)
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("state file: %v %v", fi, err)
	}
	var st State
	data, _ := os.ReadFile(path)
	if err := json.Unmarshal(data, &st); err != nil || st.Users[5].Name != "alice" || st.LAN.IP.String() != "10.9.8.7" || st.SOL.BitRate != 9600 {
		t.Fatalf("state file content %v:\n%s", err, data)
	}

	b2 := New(cfg)
	got := b2.ConfigState()
	if u := got.Users[5]; u.Name != "alice" || u.Password != "pw" || !u.Enabled {
		t.Fatalf("user after restart %+v", u)
	}
	if got.LAN.IP.String() != "10.9.8.7" || got.SOL.BitRate != 9600 || !got.SOL.ForceAuthentication || got.SOL.Privilege != "operator" {
		t.Fatalf("after restart: LAN %+v SOL %+v", got.LAN, got.SOL)
	}
	r := si(t, b2, wire.NetFnTransport, wire.CmdGetSOLConfigParam, wire.GetParamRequest{Channel: 1, Param: uint8(wire.SOLAuthParam)}.Append(nil), wire.CCOK)
	if len(r) != 2 || r[1] != 0x43 {
		t.Fatalf("SOL authentication after restart % x", r)
	}

	// Logins use the table: alice, created at run time, can log in.
	c := newTestClient(t, direct(b2))
	c.mustOpen20(hsOpts{suite: 3, user: "alice", pass: "pw", role: 0x14})

	for name, content := range map[string]string{
		"not JSON":   "{",
		"bad source": `{"lan":{"ip_source":"carrier pigeon"},"channel":{"access":"always","privilege":"admin"},"sol":{"privilege":"user"}}`,
	} {
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		err := cfg.Validate()
		if err == nil || !strings.Contains(err.Error(), path) && !strings.Contains(err.Error(), "state") {
			t.Errorf("%s: Validate: %v", name, err)
		}
	}
}

func mustName(s string) wire.UserName {
	n, ok := wire.UserNameOf(s)
	if !ok {
		panic(s)
	}
	return n
}

// TestMisconfigured: the knob plants what it documents, and the BMC acts
// on it (suite 0 works, the anonymous user logs in, SOL is refused).
func TestMisconfigured(t *testing.T) {
	b := New(Config{Users: testUsers, Misconfigured: true})
	st := b.ConfigState()
	if st.SOL.Enabled || st.SOL.BitRate != 9600 || st.SOL.NonVolatileBitRate != 9600 || st.Channel.PerMsgAuth ||
		!st.Users[0].Enabled || st.Users[0].Name != "" || st.Users[1].SOL || st.LAN.CipherPrivs["0"] != "admin" {
		t.Fatalf("misconfigured state %+v", st)
	}
	c := newTestClient(t, direct(b))
	c.mustOpen20(hsOpts{suite: 0, user: "admin", pass: "anything at all", role: 0x14})
	c = newTestClient(t, direct(b))
	c.mustOpen20(hsOpts{suite: 3, user: "", pass: "", role: 0x14})
	r, err := c.pre(wire.NetFnApp, wire.CmdGetChannelAuthCaps, []byte{0x8E, 4})
	if err != nil {
		t.Fatal(err)
	}
	if caps, _ := wire.ParseAuthCaps(r.Data); !caps.Anonymous || !caps.PerMsgAuthOff {
		t.Fatalf("auth caps %+v: want anonymous login and per-message auth off", caps)
	}

	// Fixing it through the commands: suite 0 unused, SOL on.
	privs := wire.CipherSuitePrivs{}
	for i := range b.cipherEntries() {
		privs[i] = PrivAdmin
	}
	privs[0] = 0
	si(t, b, wire.NetFnTransport, wire.CmdSetLANConfigParam, wire.SetParamRequest{Channel: 1, Param: uint8(wire.LANCipherSuitePrivs), Data: privs.Append(nil)}.Append(nil), wire.CCOK)
	c = newTestClient(t, direct(b))
	if res, err := c.handshake20(hsOpts{suite: 0, user: "admin", pass: "x", role: 0x14}); err == nil && res.open.Status == wire.StatusOK {
		t.Fatal("suite 0 still opens a session after it was set unused")
	}
}

func (b *BMC) cipherEntries() []uint8 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.cipherEntriesLocked()
}

// TestSystemInterfaceChannels: in-band, "this channel" is the system
// interface, not the LAN, and payload commands do not exist.
func TestSystemInterfaceChannels(t *testing.T) {
	b := New(Config{Users: testUsers})
	r := si(t, b, wire.NetFnApp, wire.CmdGetChannelInfo, []byte{wire.ChannelThis}, wire.CCOK)
	if i, err := wire.ParseChannelInfo(r); err != nil || i.Channel != wire.ChannelSystemInterface || i.Medium != wire.MediumSystemInterface {
		t.Fatalf("this channel in-band: %+v %v", i, err)
	}
	si(t, b, wire.NetFnTransport, wire.CmdGetLANConfigParam, wire.GetParamRequest{Channel: wire.ChannelThis, Param: 3}.Append(nil), wire.CCInvalidField)
	si(t, b, wire.NetFnTransport, wire.CmdGetLANConfigParam, wire.GetParamRequest{Channel: 1, Param: 3}.Append(nil), wire.CCOK)
	si(t, b, wire.NetFnApp, wire.CmdActivatePayload, []byte{1, 1, 0, 0, 0, 0}, wire.CCInvalidCommand)
	si(t, b, wire.NetFnApp, wire.CmdGetUserAccess, []byte{1, 64}, wire.CCInvalidField)
	si(t, b, wire.NetFnApp, wire.CmdGetUserAccess, []byte{1}, wire.CCBadLength)
	si(t, b, wire.NetFnTransport, wire.CmdSetLANConfigParam, []byte{1, 3, 10}, wire.CCBadLength)
	si(t, b, wire.NetFnTransport, wire.CmdSetLANConfigParam, []byte{1, 22, 1}, wire.CCParamReadOnly)
	si(t, b, wire.NetFnTransport, wire.CmdSetLANConfigParam, []byte{1, 99, 1}, wire.CCParamNotSupported)
}

// FuzzSystemInterface: no command crashes the BMC, and what Set LAN
// Configuration Parameters accepts, Get returns (reserved bits cleared).
func FuzzSystemInterface(f *testing.F) {
	f.Add(uint8(0x0C), uint8(wire.CmdSetLANConfigParam), []byte{1, 3, 10, 1, 2, 3})
	f.Add(uint8(0x0C), uint8(wire.CmdSetLANConfigParam), []byte{1, 20, 12, 0x80})
	f.Add(uint8(0x06), uint8(wire.CmdSetUserName), append([]byte{5}, "bob"+strings.Repeat("\x00", 13)...))
	f.Add(uint8(0x06), uint8(wire.CmdSetUserPassword), append([]byte{0x85, 2}, make([]byte, 20)...))
	f.Add(uint8(0x06), uint8(wire.CmdSetChannelAccess), []byte{1, 0x82, 0x84})
	f.Add(uint8(0x06), uint8(wire.CmdSetUserPayloadAccess), []byte{1, 2, 2, 0, 0, 0})
	f.Add(uint8(0x0C), uint8(wire.CmdSetSOLConfigParam), []byte{1, 3, 10, 1})
	masks := map[wire.LANParam][]byte{
		wire.LANIPAddress: {0xFF, 0xFF, 0xFF, 0xFF}, wire.LANSubnetMask: {0xFF, 0xFF, 0xFF, 0xFF},
		wire.LANDefaultGateway: {0xFF, 0xFF, 0xFF, 0xFF}, wire.LANMACAddress: {0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF},
		wire.LANVLANID: {0xFF, 0x8F}, wire.LANAuthTypeEnables: {0x37, 0x37, 0x37, 0x37, 0x37}, wire.LANIPSource: {0x0F},
	}
	b := New(Config{Users: testUsers, Allow15: true})
	f.Fuzz(func(t *testing.T, netFn, cmd uint8, data []byte) {
		code, _ := b.SystemInterface(netFn&^1, cmd, data)
		if netFn&^1 != uint8(wire.NetFnTransport) || cmd != wire.CmdSetLANConfigParam || code != 0 {
			return
		}
		r, _ := wire.ParseSetParamRequest(data)
		mask, ok := masks[wire.LANParam(r.Param)]
		if !ok || r.Channel != 1 {
			return
		}
		gc, got := b.SystemInterface(uint8(wire.NetFnTransport), wire.CmdGetLANConfigParam, wire.GetParamRequest{Channel: 1, Param: r.Param}.Append(nil))
		if gc != 0 || len(got) != 1+len(mask) {
			t.Fatalf("get parameter %d after set: code %#02x, % x", r.Param, gc, got)
		}
		for i, m := range mask {
			if got[1+i] != r.Data[i]&m {
				t.Fatalf("parameter %d: set % x, got % x", r.Param, r.Data, got[1:])
			}
		}
	})
}
