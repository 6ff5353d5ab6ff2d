package wire

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"encoding/hex"
	"strings"
	"testing"
)

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestRequestBytes(t *testing.T) {
	// Pre-session Get Channel Auth Caps as ipmitool sends it (rqSeq 0).
	r := Request{RsAddr: BMCSlaveAddr, NetFn: NetFnApp, RqAddr: RemoteSWID, Cmd: CmdGetChannelAuthCaps,
		Data: AuthCapsRequest{Channel: ChannelThis, Extended: true, MaxPriv: PrivAdmin}.Append(nil)}
	got := r.Append(nil)
	want := unhex(t, "20 18 c8 81 00 38 8e 04 b5")
	if !bytes.Equal(got, want) {
		t.Fatalf("encode: got % x, want % x", got, want)
	}
	back, err := ParseRequest(got)
	if err != nil {
		t.Fatal(err)
	}
	if back.Cmd != r.Cmd || back.NetFn != r.NetFn || !bytes.Equal(back.Data, r.Data) {
		t.Fatalf("round trip: %+v", back)
	}
	got[8]++
	if _, err := ParseRequest(got); err == nil || !strings.Contains(err.Error(), "checksum") {
		t.Fatalf("bad checksum accepted: %v", err)
	}
}

func TestAuthCapsResponse(t *testing.T) {
	// Response of a 2.0 BMC (bytes after the completion code): channel 1,
	// MD5+password+extended, non-null users, 1.5 and 2.0 supported.
	b := unhex(t, "01 94 04 03 00 00 00 00")
	c, err := ParseAuthCaps(b)
	if err != nil {
		t.Fatal(err)
	}
	if !c.Extended || !c.IPMI20 || !c.IPMI15 || !c.Supports(AuthMD5) || !c.Supports(AuthPassword) || c.Supports(AuthNone) || !c.NonNullUsers {
		t.Fatalf("decoded %+v", c)
	}
	if got := c.Append(nil); !bytes.Equal(got, b) {
		t.Fatalf("re-encode: % x, want % x", got, b)
	}
}

func TestSession15AuthCode(t *testing.T) {
	pw := Password16([]byte("secret"))
	msg := Request{RsAddr: BMCSlaveAddr, NetFn: NetFnChassis, RqAddr: RemoteSWID, RqSeq: 5, Cmd: CmdGetChassisStatus}.Append(nil)
	code, err := AuthCode15(AuthMD5, pw, 0x11223344, msg, 7)
	if err != nil {
		t.Fatal(err)
	}
	other, _ := AuthCode15(AuthMD5, pw, 0x11223344, msg, 8)
	if code == other {
		t.Fatal("auth code does not depend on the sequence number")
	}
	s := Session15{AuthType: AuthMD5, Seq: 7, SessionID: 0x11223344, AuthCode: code, Message: msg}
	back, err := ParseSession15(s.Append(nil))
	if err != nil {
		t.Fatal(err)
	}
	if back.AuthCode != code || !bytes.Equal(back.Message, msg) || back.Seq != 7 {
		t.Fatalf("round trip %+v", back)
	}
	if _, err := AuthCode15(AuthNone, pw, 0, msg, 0); err == nil {
		t.Fatal("AuthNone produced a code")
	}
}

func TestSealOpen(t *testing.T) {
	for _, id := range []uint8{1, 2, 3, 7, 8, 11, 12, 16, 17} {
		s, _ := LookupCipherSuite(id)
		t.Run(s.Auth.String()+"/"+s.Integrity.String()+"/"+s.Conf.String(), func(t *testing.T) {
			h := Handshake{SIDm: 1, SIDc: 2, Role: RoleNameOnly | uint8(PrivAdmin), User: []byte("admin")}
			sik := h.SIK(s.Auth, []byte("password"))
			k := SessionKeys(s, sik, []byte("password"))
			for _, n := range []int{0, 1, 15, 16, 17, 100} {
				pt := bytes.Repeat([]byte{0xA5}, n)
				pkt, err := k.Seal(nil, Packet20{Type: PayloadIPMI, SessionID: 9, Seq: 3}, pt)
				if err != nil {
					t.Fatal(err)
				}
				if len(pkt)%4 != 0 && s.Integrity != IntegrityNone {
					t.Errorf("n=%d: packet length %d, want integrity padding", n, len(pkt))
				}
				p, err := ParsePacket20(pkt)
				if err != nil {
					t.Fatal(err)
				}
				if p.Encrypted != (s.Conf != ConfNone) || p.Authenticated != (s.Integrity != IntegrityNone) {
					t.Fatalf("flags %+v", p)
				}
				got, err := k.Open(pkt, p)
				if err != nil {
					t.Fatalf("n=%d: open: %v", n, err)
				}
				if !bytes.Equal(got, pt) {
					t.Fatalf("n=%d: got % x", n, got)
				}
				if s.Integrity != IntegrityNone {
					bad := append([]byte(nil), pkt...)
					bad[6] ^= 1 // the session sequence number
					bp, err := ParsePacket20(bad)
					if err != nil {
						t.Fatal(err)
					}
					if _, err := k.Open(bad, bp); err != ErrIntegrity {
						t.Fatalf("tampered packet: got %v, want ErrIntegrity", err)
					}
					// A packet without the authenticated bit is a downgrade.
					p2 := p
					p2.Authenticated = false
					if _, err := k.Open(pkt, p2); err == nil {
						t.Fatal("unauthenticated packet accepted")
					}
				}
			}
		})
	}
}

func TestHandshakeCodes(t *testing.T) {
	h := Handshake{SIDm: 0xA0A2A3A4, SIDc: 0x01020304, Role: 0x14, User: []byte("admin")}
	for i := range h.Rm {
		h.Rm[i], h.Rc[i], h.GUID[i] = byte(i), byte(16+i), byte(32+i)
	}
	for _, alg := range []AuthAlg{AuthRAKPHMACSHA1, AuthRAKPHMACMD5, AuthRAKPHMACSHA256} {
		pw := []byte("secret")
		c2, c3 := h.RAKP2Code(alg, pw), h.RAKP3Code(alg, pw)
		if len(c2) != alg.CodeLen() || len(c3) != alg.CodeLen() || bytes.Equal(c2, c3) {
			t.Fatalf("%v: codes % x / % x", alg, c2, c3)
		}
		// Padding the key with zeros to 20 bytes gives the same HMAC.
		if !bytes.Equal(c2, h.RAKP2Code(alg, append(pw, make([]byte, 14)...))) {
			t.Fatalf("%v: zero-padded key changes HMAC", alg)
		}
		sik := h.SIK(alg, pw)
		if n := len(h.RAKP4ICV(alg, sik)); n != alg.ICVLen() {
			t.Fatalf("%v: ICV length %d", alg, n)
		}
		h2 := h
		h2.Role = 0x04
		if bytes.Equal(h2.SIK(alg, pw), sik) {
			t.Fatalf("%v: role byte not hashed into SIK", alg)
		}
	}
	if h.RAKP2Code(AuthRAKPNone, []byte("x")) != nil {
		t.Fatal("RAKP-none produced a code")
	}
}

func TestHandshakeKnownAnswer(t *testing.T) {
	// Expected values computed independently with Python's hmac module
	// from the field layouts in spec 13.31/13.32 (Rm = Rc = 0).
	h := Handshake{SIDm: 1, SIDc: 2, Role: 0x14, User: []byte("admin")}
	if got := hex.EncodeToString(h.RAKP3Code(AuthRAKPHMACSHA1, []byte("password"))); got != "23c307380deb75027d47bd3ccbff8fe0ccc77d15" {
		t.Errorf("RAKP3 HMAC-SHA1 = %s", got)
	}
	k1 := AdditionalKey(AuthRAKPHMACSHA256, h.SIK(AuthRAKPHMACSHA256, []byte("password")), 1)
	if got := hex.EncodeToString(k1); got != "a5f7cfb7c40c9ad86ed372e8ca6980e1995563e406dc0e4d4e6a7df0a52adb6a" {
		t.Errorf("K1 HMAC-SHA256 = %s", got)
	}
}

func TestOpenSessionRoundTrip(t *testing.T) {
	r := OpenSessionRequest{Tag: 7, MaxPriv: PrivAdmin, SIDm: 0xdeadbeef, Auth: AuthRAKPHMACSHA256, Integrity: IntegrityHMACSHA256128, Conf: ConfAESCBC128}
	b := r.Append(nil)
	if len(b) != 32 {
		t.Fatalf("length %d", len(b))
	}
	back, err := ParseOpenSessionRequest(b)
	if err != nil || back != r {
		t.Fatalf("round trip %+v %v", back, err)
	}
	resp := OpenSessionResponse{Tag: 7, MaxPriv: PrivAdmin, SIDm: 1, SIDc: 2, Auth: 3, Integrity: 4, Conf: 1}
	rb, err := ParseOpenSessionResponse(resp.Append(nil))
	if err != nil || rb != resp {
		t.Fatalf("response round trip %+v %v", rb, err)
	}
	// Supermicro's 1-byte error status after the tag.
	e, err := ParseOpenSessionResponse([]byte{7, 0x11})
	if err != nil || e.Status != StatusNoCipherSuiteMatch {
		t.Fatalf("short error response: %+v %v", e, err)
	}
}

func TestCipherSuiteRecords(t *testing.T) {
	var b []byte
	for _, id := range []uint8{3, 17} {
		s, _ := LookupCipherSuite(id)
		b = AppendCipherSuiteRecord(b, s)
	}
	b = append(b, 0xC1, 0x80, 0x57, 0x01, 0x00, 0x01) // OEM suite, Intel IANA 343
	recs, err := ParseCipherSuiteRecords(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 3 || recs[0].ID != 3 || recs[1].ID != 17 || recs[1].Conf[0] != ConfAESCBC128 || !recs[2].OEM || recs[2].OEMIANA != 343 {
		t.Fatalf("records %+v", recs)
	}
	if _, err := ParseCipherSuiteRecords([]byte{0x42}); err == nil {
		t.Fatal("garbage accepted")
	}
}

func TestSOLRoundTrip(t *testing.T) {
	p := SOLPacket{Seq: 3, AckSeq: 2, Accepted: 10, Op: SOLOpBreak, Data: []byte("hello\r\n")}
	back, err := ParseSOL(p.Append(nil))
	if err != nil || back.Seq != 3 || back.AckSeq != 2 || back.Accepted != 10 || back.Op != SOLOpBreak || string(back.Data) != "hello\r\n" {
		t.Fatalf("%+v %v", back, err)
	}
	if _, err := ParseSOL([]byte{0x13, 0, 0, 0}); err == nil {
		t.Fatal("reserved bits accepted")
	}
}

func TestASF(t *testing.T) {
	ping := RMCPHeader{Seq: RMCPSeqNoACK, Class: ClassASF}.Append(nil)
	ping = ASFMessage{Type: ASFTypePing, Tag: 9}.Append(ping)
	want := unhex(t, "06 00 ff 06 00 00 11 be 80 09 00 00")
	if !bytes.Equal(ping, want) {
		t.Fatalf("ping % x, want % x", ping, want)
	}
	pong := ASFMessage{Type: ASFTypePong, Tag: 9, Entities: 0x81}.Append(nil)
	m, err := ParseASF(pong)
	if err != nil || !m.IPMISupported || m.Tag != 9 {
		t.Fatalf("%+v %v", m, err)
	}
}

// TestSealAESMatchesCBC: Seal's in-place CBC equals crypto/cipher's, and
// Open decrypts crypto/cipher's output: the hand-written loop must not
// drift from the standard mode the BMCs implement.
func TestSealAESMatchesCBC(t *testing.T) {
	s, _ := LookupCipherSuite(17)
	k := SessionKeys(s, bytes.Repeat([]byte{7}, 32), nil)
	iv := bytes.Repeat([]byte{0x3C}, 16)
	for _, n := range []int{0, 1, 15, 16, 31, 255, 259} {
		pt := make([]byte, n)
		for i := range pt {
			pt[i] = byte(i * 13)
		}
		k.Rand = bytes.NewReader(iv)
		pkt, err := k.Seal(nil, Packet20{Type: PayloadSOL, SessionID: 5, Seq: 1}, pt)
		if err != nil {
			t.Fatal(err)
		}
		p, err := ParsePacket20(pkt)
		if err != nil {
			t.Fatal(err)
		}
		// The reference: the same padding, crypto/cipher's CBC.
		pad := (16 - (n+1)%16) % 16
		want := append([]byte(nil), pt...)
		for i := 1; i <= pad; i++ {
			want = append(want, byte(i))
		}
		want = append(want, byte(pad))
		blk, _ := aes.NewCipher(k.K2[:16])
		cipher.NewCBCEncrypter(blk, iv).CryptBlocks(want, want)
		if !bytes.Equal(p.Payload[:16], iv) || !bytes.Equal(p.Payload[16:], want) {
			t.Fatalf("n=%d: ciphertext differs from crypto/cipher CBC", n)
		}
		got, err := k.OpenTo(make([]byte, 0, 8), pkt, p)
		if err != nil || !bytes.Equal(got, pt) {
			t.Fatalf("n=%d: open: %v, % x", n, err, got)
		}
	}
}

// TestSealOpenAllocs: with buffers to reuse, sealing and opening a
// session packet allocate nothing (a console moves every byte this way).
func TestSealOpenAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector makes sync.Pool drop items on purpose")
	}
	for _, id := range []uint8{3, 17} {
		s, _ := LookupCipherSuite(id)
		k := SessionKeys(s, bytes.Repeat([]byte{7}, 32), nil)
		pt := bytes.Repeat([]byte{'x'}, 255)
		buf := make([]byte, 0, 512)
		plain := make([]byte, 0, 512)
		var pkt []byte
		allocs := testing.AllocsPerRun(100, func() {
			var err error
			pkt, err = k.Seal(buf[:0], Packet20{Type: PayloadSOL, SessionID: 5, Seq: 1}, pt)
			if err != nil {
				t.Fatal(err)
			}
			p, _ := ParsePacket20(pkt)
			if _, err := k.OpenTo(plain, pkt, p); err != nil {
				t.Fatal(err)
			}
		})
		if allocs != 0 {
			t.Fatalf("suite %d: %v allocations per seal and open, want 0", id, allocs)
		}
	}
}
