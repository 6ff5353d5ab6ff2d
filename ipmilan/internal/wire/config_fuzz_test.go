package wire

import (
	"bytes"
	"testing"
)

// exact checks the stronger property of fixed-layout codecs: what parses
// re-encodes to the input's first len(mask) bytes with the bits the
// layout reserves (mask 0) cleared, and that parses to the same value.
func exact[T any](t *testing.T, name string, parse func([]byte) (T, error), enc func(T) []byte, b, mask []byte) {
	t.Helper()
	roundTrip(t, name, parse, enc, b)
	v, err := parse(b)
	if err != nil {
		return
	}
	if len(b) < len(mask) {
		t.Fatalf("%s: parsed %d bytes, the layout has %d", name, len(b), len(mask))
	}
	want := make([]byte, len(mask))
	for i := range mask {
		want[i] = b[i] & mask[i]
	}
	if got := enc(v); !bytes.Equal(got, want) {
		t.Fatalf("%s: % x re-encodes to % x, want % x", name, b, got, want)
	}
}

func enc[T interface{ Append([]byte) []byte }](v T) []byte { return v.Append(nil) }

func FuzzConfigCodecs(f *testing.F) {
	f.Add(uint8(0), GetParamRequest{Channel: 1, Param: 3}.Append(nil))
	f.Add(uint8(3), VLAN{ID: 12, Enabled: true}.Append(nil))
	f.Add(uint8(4), AuthTypeEnables{0x04, 0x14, 0x14, 0x15, 0}.Append(nil))
	f.Add(uint8(5), CipherSuiteEntries{0, 1, 2, 3, 17}.Append(nil))
	f.Add(uint8(6), CipherSuitePrivs{4, 4, 4, 4}.Append(nil))
	f.Add(uint8(9), SetChannelAccessRequest{Channel: 1, Access: ChannelAccess{Mode: AccessAlways, PrivLimit: PrivAdmin}, AccessSet: AccessVolatile, PrivSet: AccessNonVolatile}.Append(nil))
	f.Add(uint8(12), SetUserAccessRequest{Channel: 1, UserID: 3, ChangeBits: true, IPMIMessaging: true, PrivLimit: PrivOperator, SessionLimit: 2}.Append(nil))
	f.Add(uint8(14), SetUserPasswordRequest{UserID: 3, Op: PasswordSet, Size20: true, Password: []byte("secret")}.Append(nil))
	f.Add(uint8(16), SetUserPayloadAccessRequest{Channel: 1, UserID: 3, Payloads: PayloadAccess{Standard: PayloadSOLBit}}.Append(nil))
	f.Add(uint8(20), []byte{0xC0, 0x11, 0x03, 0x44, 0x81, 0xC1, 0x80, 0x57, 0x01, 0x00, 0x01, 0x41, 0x80})
	f.Fuzz(func(t *testing.T, which uint8, b []byte) {
		switch which % 24 {
		case 0:
			roundTrip(t, "GetParamRequest", ParseGetParamRequest, enc[GetParamRequest], b)
			if len(b) >= 4 {
				exact(t, "GetParamRequest", ParseGetParamRequest, enc[GetParamRequest], b, []byte{0x8F, 0xFF, 0xFF, 0xFF})
			}
		case 1:
			exact(t, "ParamResponse", ParseParamResponse, enc[ParamResponse], b, bytes.Repeat([]byte{0xFF}, max(1, len(b))))
		case 2:
			roundTrip(t, "SetParamRequest", ParseSetParamRequest, enc[SetParamRequest], b)
		case 3:
			exact(t, "VLAN", ParseVLAN, enc[VLAN], b, []byte{0xFF, 0x8F})
		case 4:
			exact(t, "AuthTypeEnables", ParseAuthTypeEnables, enc[AuthTypeEnables], b, []byte{0x37, 0x37, 0x37, 0x37, 0x37})
		case 5:
			roundTrip(t, "CipherSuiteEntries", func(b []byte) (CipherSuiteEntries, error) { return ParseCipherSuiteEntries(b, -1) }, enc[CipherSuiteEntries], b)
			if e, err := ParseCipherSuiteEntries(b, 3); err == nil && len(e) > 3 {
				t.Fatalf("count 3 gave %d entries", len(e))
			}
		case 6:
			exact(t, "CipherSuitePrivs", ParseCipherSuitePrivs, enc[CipherSuitePrivs], b, []byte{0, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF})
		case 7:
			exact(t, "IPSource", ParseIPSource, enc[IPSource], b, []byte{0x0F})
			exact(t, "IPv4", func(b []byte) (IPv4, error) { return ParseIPv4(b, "ip") }, enc[IPv4], b, []byte{0xFF, 0xFF, 0xFF, 0xFF})
			exact(t, "MAC", func(b []byte) (MAC, error) { return ParseMAC(b, "mac") }, enc[MAC], b, bytes.Repeat([]byte{0xFF}, 6))
		case 8:
			exact(t, "ChannelInfo", ParseChannelInfo, enc[ChannelInfo], b, []byte{0x0F, 0x7F, 0x1F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF})
		case 9:
			exact(t, "SetChannelAccessRequest", ParseSetChannelAccessRequest, enc[SetChannelAccessRequest], b, []byte{0x0F, 0xFF, 0xCF})
		case 10:
			exact(t, "ChannelAccess", ParseChannelAccess, enc[ChannelAccess], b, []byte{0x3F, 0x0F})
			exact(t, "GetChannelAccessRequest", ParseGetChannelAccessRequest, enc[GetChannelAccessRequest], b, []byte{0x0F, 0xC0})
		case 11:
			exact(t, "UserAccess", ParseUserAccess, enc[UserAccess], b, []byte{0x3F, 0xFF, 0x3F, 0x7F})
			exact(t, "UserChannelRequest", ParseUserChannelRequest, enc[UserChannelRequest], b, []byte{0x0F, 0x3F})
		case 12:
			roundTrip(t, "SetUserAccessRequest", ParseSetUserAccessRequest, enc[SetUserAccessRequest], b)
			if len(b) == 3 {
				exact(t, "SetUserAccessRequest", ParseSetUserAccessRequest, enc[SetUserAccessRequest], b, []byte{0xFF, 0x3F, 0x0F})
			}
		case 13:
			exact(t, "UserName", ParseUserName, enc[UserName], b, bytes.Repeat([]byte{0xFF}, 16))
			exact(t, "SetUserNameRequest", ParseSetUserNameRequest, enc[SetUserNameRequest], b, append([]byte{0x3F}, bytes.Repeat([]byte{0xFF}, 16)...))
			if n, err := ParseUserName(b); err == nil {
				if again, ok := UserNameOf(n.String()); ok && again.String() != n.String() {
					t.Fatalf("user name %q -> %q", n, again)
				}
			}
		case 14:
			r, err := ParseSetUserPasswordRequest(b)
			if err != nil {
				return
			}
			mask := []byte{0xBF, 0x03}
			if r.Op == PasswordSet || r.Op == PasswordTest {
				mask = append(mask, bytes.Repeat([]byte{0xFF}, len(r.Password))...)
			}
			exact(t, "SetUserPasswordRequest", ParseSetUserPasswordRequest, enc[SetUserPasswordRequest], b, mask)
		case 15:
			exact(t, "PayloadAccess", ParsePayloadAccess, enc[PayloadAccess], b, []byte{0xFE, 0, 0xFF, 0})
		case 16:
			exact(t, "SetUserPayloadAccessRequest", ParseSetUserPayloadAccessRequest, enc[SetUserPayloadAccessRequest], b, []byte{0x0F, 0x7F, 0xFE, 0, 0xFF, 0})
		case 17:
			exact(t, "SOLAuth", ParseSOLAuth, enc[SOLAuth], b, []byte{0xCF})
			exact(t, "BitRate", ParseBitRate, enc[BitRate], b, []byte{0x0F})
			exact(t, "SetInProgress", ParseSetInProgress, enc[SetInProgress], b, []byte{0x03})
		case 18:
			exact(t, "SOLAccumulate", ParseSOLAccumulate, enc[SOLAccumulateParams], b, []byte{0xFF, 0xFF})
			exact(t, "SOLRetry", ParseSOLRetry, enc[SOLRetryParams], b, []byte{0x07, 0xFF})
		case 19:
			exact(t, "CipherSuitesRequest", ParseCipherSuitesRequest, enc[CipherSuitesRequest], b, []byte{0x0F, 0x3F, 0xBF})
		case 20:
			recs, err := ParseCipherSuiteRecords(b)
			if err != nil {
				return
			}
			again, err := ParseCipherSuiteRecords(AppendCipherSuiteRecords(nil, recs))
			if err != nil || len(again) != len(recs) {
				t.Fatalf("cipher suite records: %d -> %d (%v)", len(recs), len(again), err)
			}
			for i := range recs {
				if !bytes.Equal(AppendCipherSuiteRecords(nil, recs[i:i+1]), AppendCipherSuiteRecords(nil, again[i:i+1])) {
					t.Fatalf("cipher suite record %d changed: %+v -> %+v", i, recs[i], again[i])
				}
			}
		case 21:
			if p, err := ParsePort(b, "port"); err == nil && !bytes.Equal(AppendPort(nil, p), b[:2]) {
				t.Fatalf("port % x -> %d", b[:2], p)
			}
			if v, err := ParseBool(b, "enable"); err == nil && AppendBool(nil, v)[0] != b[0]&1 {
				t.Fatalf("bool % x -> %v", b[:1], v)
			}
		case 22:
			if m, err := ParseAuthTypeSupport(b); err == nil {
				again, err := ParseAuthTypeMaskNames(m.String())
				if err != nil || again != m {
					t.Fatalf("auth type mask %#x -> %q -> %#x (%v)", m, m.String(), again, err)
				}
			}
		case 23:
			if n, err := ParseCipherSuiteCount(b); err == nil && (n < 0 || n > MaxCipherSuiteEntries) {
				t.Fatalf("cipher suite count %d", n)
			}
			if c, err := ParseChannelNumber(b); err == nil && c > 15 {
				t.Fatalf("channel %d", c)
			}
		}
	})
}
