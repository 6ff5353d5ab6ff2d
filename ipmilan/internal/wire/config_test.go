package wire

import (
	"bytes"
	"net/netip"
	"strings"
	"testing"
)

// TestConfigEncodings pins the encoders to the bytes other implementations
// send: ipmitool 1.8.19 and FreeIPMI build the same requests (their
// sources were read for the layouts; the values are the spec's).
func TestConfigEncodings(t *testing.T) {
	ip, _ := IPv4Of(netip.MustParseAddr("10.1.0.5"))
	cases := []struct {
		name string
		got  []byte
		want string
	}{
		{"get LAN IP address, channel 1", GetParamRequest{Channel: 1, Param: uint8(LANIPAddress)}.Append(nil), "01 03 00 00"},
		{"get SOL revision only", GetParamRequest{Channel: 1, RevisionOnly: true, Param: uint8(SOLEnable)}.Append(nil), "81 01 00 00"},
		{"set LAN IP 10.1.0.5", SetParamRequest{Channel: 1, Param: uint8(LANIPAddress), Data: ip.Append(nil)}.Append(nil), "01 03 0a 01 00 05"},
		{"VLAN 12 on", VLAN{ID: 12, Enabled: true}.Append(nil), "0c 80"},
		{"VLAN 4094 on", VLAN{ID: 4094, Enabled: true}.Append(nil), "fe 8f"},
		{"VLAN off", VLAN{}.Append(nil), "00 00"},
		{"ipmitool cipher_privs aaaaaaaaaaaaaaa", CipherSuitePrivs{4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4}.Append(nil), "00 44 44 44 44 44 44 44 04"},
		{"ipmitool cipher_privs XaaaaaaaaaaaaaX", CipherSuitePrivs{0, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 0}.Append(nil), "00 40 44 44 44 44 44 44 00"},
		{"auth enables md5 everywhere, none for admin", AuthTypeEnables{1 << AuthMD5, 1 << AuthMD5, 1 << AuthMD5, 1<<AuthMD5 | 1<<AuthNone, 0}.Append(nil), "04 04 04 05 00"},
		{"IP source static", IPSourceStatic.Append(nil), "01"},
		{"set channel access: always, volatile; privilege admin, non-volatile",
			SetChannelAccessRequest{Channel: 1, Access: ChannelAccess{Mode: AccessAlways, PrivLimit: PrivAdmin}, AccessSet: AccessVolatile, PrivSet: AccessNonVolatile}.Append(nil), "01 82 44"},
		{"set channel access: per-message auth off", SetChannelAccessRequest{Channel: 1, Access: ChannelAccess{Mode: AccessAlways, PerMsgAuthOff: true}, AccessSet: AccessNonVolatile}.Append(nil), "01 52 00"},
		{"get channel access, volatile", GetChannelAccessRequest{Channel: 1, Target: AccessVolatile}.Append(nil), "01 80"},
		{"set user access: messaging on, user privilege", SetUserAccessRequest{Channel: 1, UserID: 4, ChangeBits: true, IPMIMessaging: true, PrivLimit: PrivUser}.Append(nil), "91 04 02"},
		{"set user access: no access, session limit", SetUserAccessRequest{Channel: 1, UserID: 4, PrivLimit: PrivNoAccess, SessionLimit: 2}.Append(nil), "01 04 0f 02"},
		{"set user name", SetUserNameRequest{UserID: 4, Name: must(UserNameOf("alice"))}.Append(nil), "04 61 6c 69 63 65 00 00 00 00 00 00 00 00 00 00 00"},
		{"enable user 4", SetUserPasswordRequest{UserID: 4, Op: PasswordEnableUser}.Append(nil), "04 01"},
		{"set 16-byte password", SetUserPasswordRequest{UserID: 4, Op: PasswordSet, Password: []byte("pw")}.Append(nil), "04 02 70 77 00 00 00 00 00 00 00 00 00 00 00 00 00 00"},
		{"test 20-byte password", SetUserPasswordRequest{UserID: 4, Op: PasswordTest, Size20: true, Password: []byte("pw")}.Append(nil), "84 03 70 77 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00"},
		{"ipmitool sol payload enable 1 3", SetUserPayloadAccessRequest{Channel: 1, UserID: 3, Payloads: PayloadAccess{Standard: PayloadSOLBit}}.Append(nil), "01 03 02 00 00 00"},
		{"ipmitool sol payload disable 1 3", SetUserPayloadAccessRequest{Channel: 1, UserID: 3, Disable: true, Payloads: PayloadAccess{Standard: PayloadSOLBit}}.Append(nil), "01 43 02 00 00 00"},
		{"SOL auth: encrypt, authenticate, user", SOLAuth{ForceEncryption: true, ForceAuthentication: true, Priv: PrivUser}.Append(nil), "c2"},
		{"SOL 115200", BitRate115200.Append(nil), "0a"},
		{"SOL accumulate 50 ms, 12 characters", SOLAccumulateParams{Interval: 10, Threshold: 12}.Append(nil), "0a 0c"},
		{"SOL retry 7 x 100 ms", SOLRetryParams{Count: 7, Interval: 10}.Append(nil), "07 0a"},
		{"SOL port 623", AppendPort(nil, 623), "6f 02"},
		{"cipher suites by suite, index 2", CipherSuitesRequest{Channel: 0x0E, Index: 2, BySuite: true}.Append(nil), "0e 00 82"},
	}
	for _, tc := range cases {
		if got := hexOf(tc.got); got != tc.want {
			t.Errorf("%s: got %s, want %s", tc.name, got, tc.want)
		}
	}
}

func must[T any](v T, ok bool) T {
	if !ok {
		panic("must")
	}
	return v
}

func hexOf(b []byte) string {
	var s []string
	for _, c := range b {
		s = append(s, strings.ToLower(string("0123456789abcdef"[c>>4])+string("0123456789abcdef"[c&15])))
	}
	return strings.Join(s, " ")
}

func TestConfigDecodings(t *testing.T) {
	// Get User Access for admin (user 2) from OpenIPMI ipmi_sim 2.0.33:
	// 63 user IDs, 3 enabled, status unspecified, no fixed names; IPMI
	// messaging, administrator.
	ua, err := ParseUserAccess([]byte{0x3f, 0x03, 0x00, 0x14})
	if err != nil || ua.MaxIDs != 63 || ua.EnabledIDs != 3 || ua.Status != UserStatusUnspecified ||
		!ua.IPMIMessaging || ua.LinkAuth || ua.CallbackOnly || ua.PrivLimit != PrivAdmin {
		t.Errorf("user access: %+v %v", ua, err)
	}
	if ua, _ := ParseUserAccess([]byte{0x10, 0x82, 0x01, 0x6f}); ua.Status != UserStatusDisabled || ua.FixedNames != 1 || !ua.CallbackOnly || !ua.LinkAuth || ua.IPMIMessaging || ua.PrivLimit != PrivNoAccess {
		t.Errorf("user access with status disabled: %+v", ua)
	}
	v, err := ParseVLAN([]byte{0x0c, 0x80})
	if err != nil || v != (VLAN{ID: 12, Enabled: true}) || v.String() != "12" || (VLAN{ID: 12}).String() != "off" {
		t.Errorf("VLAN: %+v %v", v, err)
	}
	e, err := ParseCipherSuiteEntries([]byte{0, 1, 2, 3, 17, 0xff, 0xff}, 4)
	if err != nil || !bytes.Equal(e, []byte{1, 2, 3, 17}) {
		t.Errorf("cipher suite entries: %v %v", e, err)
	}
	p, err := ParseCipherSuitePrivs([]byte{0, 0x40, 0x44, 0x44, 0x44, 0x44, 0x44, 0x44, 0x00})
	if err != nil || p[0] != 0 || p[1] != PrivAdmin || p[13] != PrivAdmin || p[14] != 0 {
		t.Errorf("cipher suite privileges: %v %v", p, err)
	}
	ci, err := ParseChannelInfo([]byte{0x01, 0x04, 0x01, 0x82, 0xf2, 0x1b, 0x00, 0x00, 0x00})
	if err != nil || ci.Channel != 1 || ci.Medium != MediumLAN || ci.SessionSupport != 2 || ci.ActiveSessions != 2 || ci.VendorIANA != 7154 {
		t.Errorf("channel info: %+v %v", ci, err)
	}
	ca, err := ParseChannelAccess([]byte{0x22, 0x04})
	if err != nil || ca.Mode != AccessAlways || !ca.AlertingOff || ca.UserAuthOff || ca.PerMsgAuthOff || ca.PrivLimit != PrivAdmin {
		t.Errorf("channel access: %+v %v", ca, err)
	}
	m, err := ParseAuthTypeMaskNames("md5,password")
	if err != nil || m != 1<<AuthMD5|1<<AuthPassword || m.String() != "md5,password" || AuthTypeMask(0).String() != "off" {
		t.Errorf("auth type names: %#x %v", m, err)
	}
	for bps, code := range map[int]BitRate{9600: 6, 19200: 7, 38400: 8, 57600: 9, 115200: 10} {
		if r, ok := BitRateOf(bps); !ok || r != code || r.Bps() != bps || r.String() == "" {
			t.Errorf("bit rate %d: %v %v", bps, r, ok)
		}
	}
	if _, ok := BitRateOf(300); ok {
		t.Error("300 bps accepted")
	}
}

// TestConfigErrors: short or malformed input is an error naming the field
// with what was wanted and what came, never a panic.
func TestConfigErrors(t *testing.T) {
	cases := []struct {
		err  error
		want string
	}{
		{second(ParseVLAN([]byte{1})), "802.1q VLAN ID: want at least 2 bytes, got 1"},
		{second(ParseUserAccess(nil)), "Get User Access response: want at least 4 bytes, got 0"},
		{second(ParseCipherSuitePrivs([]byte{0, 1})), "cipher suite privilege levels: want at least 9 bytes, got 2"},
		{second(ParseIPv4([]byte{10, 1}, "subnet mask")), "subnet mask: want at least 4 bytes, got 2"},
		{second(ParseSetUserPasswordRequest([]byte{0x84, 2, 1, 2, 3})), "password of 3 bytes, want 20"},
		{second(ParseSetUserPayloadAccessRequest([]byte{1, 0xC3, 2, 0, 0, 0})), "operation 3, want 0 (enable) or 1 (disable)"},
		{second(ParseAuthTypeMaskNames("md5,rot13")), `authentication type "rot13"`},
		{second(ParseSetParamRequest([]byte{1, 3})), "Set Configuration Parameters request: want at least 3 bytes, got 2"},
	}
	for _, tc := range cases {
		if tc.err == nil || !strings.Contains(tc.err.Error(), tc.want) {
			t.Errorf("error %v, want it to contain %q", tc.err, tc.want)
		}
	}
	if _, ok := UserNameOf("seventeen-chars!!"); ok {
		t.Error("a 17-byte user name was accepted")
	}
	if _, ok := UserNameOf("a\x00b"); ok {
		t.Error("a user name with a NUL was accepted")
	}
}

func second[T any](_ T, err error) error { return err }
