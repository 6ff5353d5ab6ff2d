package ipmilan

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/solgate/solgate/ipmilan/bmcsim"
)

// The configuration commands run over both transports against the same
// kind of simulated BMC: a LAN session, and the in-band interface through
// a double of the Linux driver whose BMC side is bmcsim's system
// interface. Each step checks the answer the client decodes and the state
// the simulated BMC holds afterwards.

func serveSim(t *testing.T, cfg bmcsim.Config) (*bmcsim.BMC, string) {
	t.Helper()
	if cfg.Users == nil {
		cfg.Users = []bmcsim.User{{Name: "admin", Password: "secret"}, {Name: "oper", Password: "operpw", MaxPriv: bmcsim.PrivOperator}}
	}
	b := bmcsim.New(cfg)
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); b.Serve(ctx, pc) }()
	t.Cleanup(func() { cancel(); pc.Close(); <-done })
	return b, pc.LocalAddr().String()
}

func dialSim(t *testing.T, addr, user, pw string) (*Session, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	priv := PrivAdmin
	if user != "admin" {
		priv = PrivOperator
	}
	return Dial(ctx, Config{Addr: addr, User: user, Password: Secret(pw), Privilege: priv, Timeout: 300 * time.Millisecond, KeepAlive: -1})
}

// transports returns a Commander of each kind to b (served on addr).
func transports(t *testing.T, b *bmcsim.BMC, addr string) map[string]Commander {
	t.Helper()
	s, err := dialSim(t, addr, "admin", "secret")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	in := newInband(newFakeDriver(b.SystemInterface), InbandConfig{Device: "/dev/ipmi-test"})
	t.Cleanup(func() { in.Close() })
	return map[string]Commander{"lan": s, "inband": in}
}

func TestConfigCommandsLAN(t *testing.T)    { runConfigSuite(t, "lan") }
func TestConfigCommandsInband(t *testing.T) { runConfigSuite(t, "inband") }

func runConfigSuite(t *testing.T, kind string) {
	t.Parallel()
	steps := []struct {
		name string
		fn   func(t *testing.T, ctx context.Context, c Commander, b *bmcsim.BMC, addr string)
	}{
		{"channel", testChannelCommands},
		{"lan", testLANCommands},
		{"users", testUserCommands},
		{"sol", testSOLCommands},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			b, addr := serveSim(t, bmcsim.Config{Allow15: true})
			c := transports(t, b, addr)[kind]
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			st.fn(t, ctx, c, b, addr)
		})
	}
}

func check(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func wantCode(t *testing.T, err error, code CompletionCode, unsupported bool) {
	t.Helper()
	var ce *CompletionError
	if !errors.As(err, &ce) || ce.Code != code {
		t.Fatalf("error %v: want completion code %#02x", err, uint8(code))
	}
	if IsNotSupported(err) != unsupported {
		t.Fatalf("error %v: IsNotSupported = %v, want %v", err, !unsupported, unsupported)
	}
}

func testChannelCommands(t *testing.T, ctx context.Context, c Commander, b *bmcsim.BMC, _ string) {
	ch, err := FindLANChannel(ctx, c)
	if err != nil || ch != 1 {
		t.Fatalf("LAN channel %d, %v: want 1", ch, err)
	}
	info, err := GetChannelInfo(ctx, c, 1)
	if err != nil || info.Medium != MediumLAN || info.SessionSupport != 2 {
		t.Fatalf("channel 1 info %+v %v", info, err)
	}
	if _, err := GetChannelInfo(ctx, c, 5); err == nil {
		t.Fatal("channel 5 exists")
	}
	a, err := GetChannelAccess(ctx, c, ch, AccessVolatile)
	if err != nil || a.Mode != AccessAlways || a.PrivLimit != PrivAdmin || a.PerMsgAuthOff || a.UserAuthOff {
		t.Fatalf("channel access %+v %v", a, err)
	}
	// Privilege limit to the stored copy only, access bits to the active one.
	check(t, SetChannelAccess(ctx, c, ch, ChannelAccess{Mode: AccessAlways, PerMsgAuthOff: true, PrivLimit: PrivOperator}, AccessVolatile, AccessNonVolatile))
	v, err := GetChannelAccess(ctx, c, ch, AccessVolatile)
	check(t, err)
	nv, err := GetChannelAccess(ctx, c, ch, AccessNonVolatile)
	check(t, err)
	if !v.PerMsgAuthOff || v.PrivLimit != PrivAdmin || nv.PerMsgAuthOff || nv.PrivLimit != PrivOperator {
		t.Fatalf("after set: volatile %+v, non-volatile %+v", v, nv)
	}
	if st := b.ConfigState(); st.Channel.PerMsgAuth || st.Channel.Privilege != "admin" {
		t.Fatalf("BMC channel state %+v", st.Channel)
	}
	err = SetChannelAccess(ctx, c, ch, ChannelAccess{PrivLimit: 9}, AccessNoChange, AccessVolatile)
	wantCode(t, err, CCInvalidField, false)

	recs, err := GetChannelCipherSuites(ctx, c, ch)
	check(t, err)
	var ids []uint8
	for _, r := range recs {
		ids = append(ids, r.ID)
	}
	if !slices.Equal(ids, []uint8{1, 2, 3, 17}) || len(recs[3].Auth) != 1 || recs[3].Auth[0] != 3 {
		t.Fatalf("cipher suites %v (%+v)", ids, recs)
	}
}

func testLANCommands(t *testing.T, ctx context.Context, c Commander, b *bmcsim.BMC, addr string) {
	l, err := ReadLANConfig(ctx, c, 1)
	check(t, err)
	st := b.ConfigState()
	if l.IP != st.LAN.IP || l.Netmask != st.LAN.Netmask || l.Gateway != st.LAN.Gateway || l.MAC.String() != st.LAN.MAC ||
		l.IPSource != IPSourceStatic || l.VLAN.Enabled || len(l.Unsupported) != 0 {
		t.Fatalf("LAN config %+v, BMC has %+v", l, st.LAN)
	}
	if !slices.Equal(l.CipherSuites, []uint8{1, 2, 3, 17}) || !slices.Equal(l.CipherPrivs, []Privilege{4, 4, 4, 4}) {
		t.Fatalf("cipher suite entries %v privileges %v", l.CipherSuites, l.CipherPrivs)
	}
	if !l.AuthEnables[3].Has(AuthMD5) || l.AuthEnables[3].Has(AuthNone) {
		t.Fatalf("auth enables %v", l.AuthEnables)
	}

	check(t, SetLANIPSource(ctx, c, 1, IPSourceDHCP))
	check(t, SetLANAddr(ctx, c, 1, LANIPAddress, netip.MustParseAddr("10.1.0.42")))
	check(t, SetLANAddr(ctx, c, 1, LANSubnetMask, netip.MustParseAddr("255.255.252.0")))
	check(t, SetLANAddr(ctx, c, 1, LANDefaultGateway, netip.MustParseAddr("10.1.0.1")))
	check(t, SetLANVLAN(ctx, c, 1, VLAN{ID: 12, Enabled: true}))
	check(t, SetLANMAC(ctx, c, 1, MAC{0x02, 0, 0, 0, 0, 0x42}))
	md5 := AuthTypeMask(1 << AuthMD5)
	check(t, SetLANAuthEnables(ctx, c, 1, AuthTypeEnables{md5, md5, md5, md5, 0}))
	check(t, SetLANCipherPrivs(ctx, c, 1, []Privilege{0, PrivUser, PrivAdmin, PrivAdmin}))
	l, err = ReadLANConfig(ctx, c, 1)
	check(t, err)
	if l.IPSource != IPSourceDHCP || l.IP.String() != "10.1.0.42" || l.Netmask.String() != "255.255.252.0" ||
		l.Gateway.String() != "10.1.0.1" || l.VLAN != (VLAN{ID: 12, Enabled: true}) || l.MAC.String() != "02:00:00:00:00:42" ||
		l.AuthEnables[3] != md5 || !slices.Equal(l.CipherPrivs, []Privilege{0, 2, 4, 4}) {
		t.Fatalf("read back %+v", l)
	}
	st = b.ConfigState()
	if st.LAN.IP.String() != "10.1.0.42" || st.LAN.IPSource != "dhcp" || st.LAN.VLAN != 12 || st.LAN.CipherPrivs["1"] != "unused" ||
		st.LAN.AuthEnables[3] != "md5" {
		t.Fatalf("BMC LAN state %+v", st.LAN)
	}
	if p, ok := l.CipherPriv(2); !ok || p != PrivUser {
		t.Fatalf("suite 2 privilege %v %v", p, ok)
	}
	// The BMC now refuses suite 1 and caps suite 2 at user privilege.
	s1, err := Dial(ctx, Config{Addr: addr, User: "admin", Password: Secret("secret"), CipherSuite: 1, Insecure: true, Timeout: 300 * time.Millisecond})
	if err == nil {
		s1.Close()
		t.Fatal("a session with the unused suite 1 opened")
	}

	// Typed errors: unsupported, read-only, invalid.
	_, err = GetLANParam(ctx, c, 1, LANParam(8))
	wantCode(t, err, CCParamNotSupported, true)
	err = SetLANParam(ctx, c, 1, LANCipherSuiteEntries, []byte{0, 3})
	wantCode(t, err, CCParamReadOnly, false)
	err = SetLANVLAN(ctx, c, 1, VLAN{ID: 4095, Enabled: true})
	if err == nil {
		t.Fatal("VLAN 4095 accepted")
	}
	if err := SetLANAddr(ctx, c, 1, LANIPAddress, netip.MustParseAddr("fe80::1")); err == nil {
		t.Fatal("an IPv6 address accepted")
	}
}

func testUserCommands(t *testing.T, ctx context.Context, c Commander, b *bmcsim.BMC, addr string) {
	users, first, err := ListUsers(ctx, c, 1)
	check(t, err)
	if first.MaxIDs != 16 || len(users) != 16 || users[0].Name != "" || users[0].Enabled() ||
		users[1].Name != "admin" || !users[1].Enabled() || users[1].Access.PrivLimit != PrivAdmin || !users[1].Payload.SOL() ||
		users[2].Name != "oper" || users[2].Access.PrivLimit != PrivOperator {
		t.Fatalf("users %+v", users[:3])
	}

	const id = 5
	check(t, SetUserName(ctx, c, id, "alice"))
	check(t, SetUserPassword(ctx, c, id, Secret("a-password-of-20-by"), PasswordAuto))
	check(t, SetUserAccess(ctx, c, 1, id, UserAccess{IPMIMessaging: true, PrivLimit: PrivOperator}))
	check(t, SetUserPayloadAccess(ctx, c, 1, id, PayloadAccess{Standard: PayloadSOLBit}, false))
	// Not enabled yet: the login fails.
	if s, err := dialSim(t, addr, "alice", "a-password-of-20-by"); err == nil {
		s.Close()
		t.Fatal("a disabled user logged in")
	}
	check(t, EnableUser(ctx, c, id, true))
	name, err := GetUserName(ctx, c, id)
	if err != nil || name != "alice" {
		t.Fatalf("name %q %v", name, err)
	}
	for _, tc := range []struct {
		pw   string
		size PasswordSize
		want bool
	}{{"a-password-of-20-by", Password20, true}, {"a-password-of-20-by", PasswordAuto, true}, {"wrong", Password20, false}, {"short", Password16, false}} {
		ok, err := TestUserPassword(ctx, c, id, Secret(tc.pw), tc.size)
		if err != nil || ok != tc.want {
			t.Errorf("test password %q size %d: %v %v, want %v", tc.pw, tc.size, ok, err, tc.want)
		}
	}
	s, err := dialSim(t, addr, "alice", "a-password-of-20-by")
	if err != nil {
		t.Fatalf("alice cannot log in: %v", err)
	}
	s.Close()
	ua, err := GetUserAccess(ctx, c, 1, id)
	if err != nil || ua.Status != UserStatusEnabled || !ua.IPMIMessaging || ua.PrivLimit != PrivOperator || ua.EnabledIDs != 3 {
		t.Fatalf("user access %+v %v", ua, err)
	}
	pa, err := GetUserPayloadAccess(ctx, c, 1, id)
	if err != nil || !pa.SOL() {
		t.Fatalf("payload access %+v %v", pa, err)
	}
	u := b.ConfigState().Users[id-1]
	if u.Name != "alice" || !u.Enabled || u.Privilege != "operator" || !u.SOL || !u.Password20 {
		t.Fatalf("BMC user state %+v", u)
	}

	check(t, SetUserPayloadAccess(ctx, c, 1, id, PayloadAccess{Standard: PayloadSOLBit}, true))
	check(t, EnableUser(ctx, c, id, false))
	if u := b.ConfigState().Users[id-1]; u.SOL || u.Enabled {
		t.Fatalf("after disable: %+v", u)
	}
	if s, err := dialSim(t, addr, "alice", "a-password-of-20-by"); err == nil {
		s.Close()
		t.Fatal("a disabled user logged in")
	}
	// 16-byte form.
	check(t, SetUserPassword(ctx, c, id, Secret("pw16"), Password16))
	if ok, _ := TestUserPassword(ctx, c, id, Secret("pw16"), Password20); ok {
		t.Error("a 16-byte password tested right in the 20-byte form")
	}
	if ok, err := TestUserPassword(ctx, c, id, Secret("pw16"), Password16); !ok || err != nil {
		t.Errorf("16-byte password test: %v %v", ok, err)
	}

	// Refused before anything is sent.
	for _, err := range []error{
		SetUserName(ctx, c, id, "a-name-of-17-byte"),
		SetUserName(ctx, c, 0, "x"),
		SetUserPassword(ctx, c, id, Secret("a-password-of-21-byte"), PasswordAuto),
		SetUserPassword(ctx, c, id, Secret("seventeen-bytes!!"), Password16),
		EnableUser(ctx, c, 64, true),
	} {
		if err == nil {
			t.Error("an invalid user request was accepted")
		}
	}
	// The BMC refuses a name for the null user, and duplicates.
	wantCode(t, SetUserName(ctx, c, 1, "root"), CCInvalidField, false)
	wantCode(t, SetUserName(ctx, c, 6, "admin"), CCInvalidField, false)
}

func testSOLCommands(t *testing.T, ctx context.Context, c Commander, b *bmcsim.BMC, _ string) {
	s, err := ReadSOLConfig(ctx, c, 1)
	check(t, err)
	if !s.Enabled || s.Auth.Priv != PrivUser || s.VBitRate != BitRate115200 || s.NVBitRate != BitRate115200 ||
		s.Port != 623 || s.PayloadChan != 1 || len(s.Unsupported) != 0 {
		t.Fatalf("SOL config %+v", s)
	}
	check(t, SetSOLEnabled(ctx, c, 1, false))
	check(t, SetSOLAuth(ctx, c, 1, SOLAuth{ForceEncryption: true, ForceAuthentication: true, Priv: PrivOperator}))
	check(t, SetSOLAccumulate(ctx, c, 1, 50*time.Millisecond, 12))
	check(t, SetSOLRetry(ctx, c, 1, 5, 200*time.Millisecond))
	check(t, SetSOLBitRate(ctx, c, 1, true, BitRate57600))
	check(t, SetSOLBitRate(ctx, c, 1, false, BitRate19200))
	s, err = ReadSOLConfig(ctx, c, 1)
	check(t, err)
	if s.Enabled || !s.Auth.ForceEncryption || !s.Auth.ForceAuthentication || s.Auth.Priv != PrivOperator ||
		s.Accumulate != (SOLAccumulateParams{Interval: 10, Threshold: 12}) || s.Retry != (SOLRetryParams{Count: 5, Interval: 20}) ||
		s.VBitRate != BitRate57600 || s.NVBitRate != BitRate19200 {
		t.Fatalf("read back %+v", s)
	}
	st := b.ConfigState().SOL
	if st.Enabled || st.Privilege != "operator" || !st.ForceAuthentication || st.Accumulate != 50*time.Millisecond ||
		st.Threshold != 12 || st.Retries != 5 || st.RetryInterval != 200*time.Millisecond || st.BitRate != 57600 || st.NonVolatileBitRate != 19200 {
		t.Fatalf("BMC SOL state %+v", st)
	}
	wantCode(t, SetSOLPort(ctx, c, 1, 624), CCParamReadOnly, false)
	_, err = GetSOLParam(ctx, c, 1, SOLParam(9))
	wantCode(t, err, CCParamNotSupported, true)
	for _, err := range []error{
		SetSOLAccumulate(ctx, c, 1, 0, 1),
		SetSOLAccumulate(ctx, c, 1, 2*time.Second, 1),
		SetSOLRetry(ctx, c, 1, 8, 0),
		SetSOLAuth(ctx, c, 1, SOLAuth{Priv: PrivCallback}),
		SetSOLBitRate(ctx, c, 1, true, BitRate(3)),
	} {
		if err == nil {
			t.Error("an invalid SOL setting was accepted")
		}
	}
	if r, err := ParseBitRate("115200"); err != nil || r != BitRate115200 {
		t.Errorf("ParseBitRate: %v %v", r, err)
	}
	if _, err := ParseBitRate("115201"); err == nil {
		t.Error("115201 bps accepted")
	}
}
