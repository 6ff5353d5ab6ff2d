package bmcsim

import (
	"bytes"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/solgate/solgate/ipmilan/internal/wire"
)

var testUsers = []User{
	{Name: "admin", Password: "secret", MaxPriv: PrivAdmin},
	{Name: "oper", Password: "operpw", MaxPriv: PrivOperator},
	{Name: "viewer", Password: "viewpw", MaxPriv: PrivUser},
}

func newTestBMC(mod func(*Config)) *BMC {
	cfg := Config{Users: testUsers, Allow15: true}
	if mod != nil {
		mod(&cfg)
	}
	return New(cfg)
}

func TestHandshake20Suites(t *testing.T) {
	all := []uint8{1, 2, 3, 6, 7, 8, 11, 12, 15, 16, 17}
	b := newTestBMC(func(c *Config) { c.CipherSuites = all })
	for _, id := range all {
		t.Run(suiteName(id), func(t *testing.T) {
			c := newTestClient(t, direct(b))
			c.mustOpen20(hsOpts{suite: id, user: "admin", pass: "secret"})
			d := c.mustCmd20(wire.NetFnApp, wire.CmdGetDeviceID, nil, wire.CCOK)
			if id, err := wire.ParseDeviceID(d); err != nil || id.IPMIVersion != 0x02 {
				t.Fatalf("device ID %+v, %v", id, err)
			}
			d = c.mustCmd20(wire.NetFnChassis, wire.CmdGetChassisStatus, nil, wire.CCOK)
			if st, err := wire.ParseChassisStatus(d); err != nil || st.PowerOn() {
				t.Fatalf("chassis status %+v, %v", st, err)
			}
			c.mustCmd20(wire.NetFnApp, wire.CmdCloseSession, le32(c.sidc), wire.CCOK)
			if _, err := c.cmd20(wire.NetFnApp, wire.CmdGetDeviceID, nil); err != errNoAnswer {
				t.Fatalf("command after Close Session: %v, want no answer", err)
			}
		})
	}
	if st := b.Stats(); st.SessionsOpened != uint64(len(all)) || st.SessionsActive != 0 || st.SessionsClosed != uint64(len(all)) {
		t.Fatalf("stats %+v", st)
	}
}

func suiteName(id uint8) string { return "suite" + string(rune('0'+id/10)) + string(rune('0'+id%10)) }

func le32(v uint32) []byte { return []byte{uint8(v), uint8(v >> 8), uint8(v >> 16), uint8(v >> 24)} }

func TestHandshake20Failures(t *testing.T) {
	tests := []struct {
		name      string
		cfg       func(*Config)
		o         hsOpts
		open      wire.RMCPPlusStatus
		rakp2     wire.RMCPPlusStatus
		rakp2OK   bool
		rakp4     wire.RMCPPlusStatus
		icvOK     bool
		rakp2Size int // expected RAKP2 payload length, 0: not checked
	}{
		{name: "ok", o: hsOpts{suite: 3, user: "admin", pass: "secret"}, rakp2OK: true, icvOK: true, rakp2Size: 60},
		{name: "wrong password", o: hsOpts{suite: 17, user: "admin", pass: "wrong"}, rakp4: wire.StatusInvalidICV},
		{name: "right code but bad RAKP3", o: hsOpts{suite: 3, user: "admin", pass: "secret", badRAKP3: true}, rakp2OK: true, rakp4: wire.StatusInvalidICV},
		{name: "unknown user leaks no HMAC", o: hsOpts{suite: 17, user: "nobody", pass: "x"}, rakp2: wire.StatusUnauthorizedName, rakp2Size: 8},
		{name: "suite 0 not offered", o: hsOpts{suite: 0, user: "admin", pass: "secret"}, open: wire.StatusInvalidAuthAlg},
		{name: "suite 16 not offered", o: hsOpts{suite: 16, user: "admin", pass: "secret"}, open: wire.StatusNoCipherSuiteMatch},
		{name: "suite 6 not offered", o: hsOpts{suite: 6, user: "admin", pass: "secret"}, open: wire.StatusInvalidAuthAlg},
		{name: "suite 0 allowed takes any password", cfg: func(c *Config) { c.AllowCipherZero = true },
			o: hsOpts{suite: 0, user: "admin", pass: "anything"}, rakp2OK: true, icvOK: true},
		{name: "operator asks for admin", o: hsOpts{suite: 3, user: "oper", pass: "operpw"}, rakp2: wire.StatusUnauthorizedRole},
		{name: "operator asks for operator", o: hsOpts{suite: 3, user: "oper", pass: "operpw", role: 0x13}, rakp2OK: true, icvOK: true},
		{name: "name+priv lookup matches", o: hsOpts{suite: 3, user: "oper", pass: "operpw", role: 0x03}, rakp2OK: true, icvOK: true},
		{name: "name+priv lookup misses", o: hsOpts{suite: 3, user: "admin", pass: "secret", role: 0x03}, rakp2: wire.StatusUnauthorizedName},
		{name: "invalid role", o: hsOpts{suite: 3, user: "admin", pass: "secret", role: 0x10}, rakp2: wire.StatusInvalidRole},
		{name: "role above Open Session privilege", o: hsOpts{suite: 3, user: "admin", pass: "secret", reqPriv: wire.PrivUser},
			rakp2: wire.StatusUnauthorizedRole},
		{name: "K_g matches", cfg: func(c *Config) { c.KG = []byte("0123456789abcdefghij") },
			o: hsOpts{suite: 17, user: "admin", pass: "secret", kg: []byte("0123456789abcdefghij")}, rakp2OK: true, icvOK: true},
		{name: "K_g wrong", cfg: func(c *Config) { c.KG = []byte("0123456789abcdefghij") },
			o: hsOpts{suite: 17, user: "admin", pass: "secret", kg: []byte("nope")}, rakp2OK: true, icvOK: false},
		{name: "K_g missing", cfg: func(c *Config) { c.KG = []byte("0123456789abcdefghij") },
			o: hsOpts{suite: 3, user: "admin", pass: "secret"}, rakp2OK: true, icvOK: false},
		{name: "supermicro long RAKP2", cfg: func(c *Config) { c.Quirks.RAKP2ExtraByte = true },
			o: hsOpts{suite: 3, user: "admin", pass: "secret"}, rakp2OK: false, icvOK: true, rakp2Size: 61},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newTestBMC(tt.cfg)
			c := newTestClient(t, direct(b))
			res, err := c.handshake20(tt.o)
			if err != nil {
				t.Fatal(err)
			}
			if res.open.Status != tt.open || res.rakp2.Status != tt.rakp2 || res.rakp4.Status != tt.rakp4 {
				t.Fatalf("statuses open %v rakp2 %v rakp4 %v, want %v %v %v",
					res.open.Status, res.rakp2.Status, res.rakp4.Status, tt.open, tt.rakp2, tt.rakp4)
			}
			if tt.open == 0 && tt.rakp2 == 0 && res.rakp2Valid != tt.rakp2OK {
				t.Errorf("RAKP2 code valid = %v, want %v", res.rakp2Valid, tt.rakp2OK)
			}
			if tt.open == 0 && tt.rakp2 == 0 && tt.rakp4 == 0 && res.icvValid != tt.icvOK {
				t.Errorf("RAKP4 ICV valid = %v, want %v", res.icvValid, tt.icvOK)
			}
			if tt.rakp2Size != 0 && len(res.rakp2Raw) != tt.rakp2Size {
				t.Errorf("RAKP2 payload %d bytes, want %d", len(res.rakp2Raw), tt.rakp2Size)
			}
			st := b.Stats()
			wantActive := 0
			if tt.open == 0 && tt.rakp2 == 0 && tt.rakp4 == 0 {
				wantActive = 1
			}
			if st.SessionsActive != wantActive {
				t.Errorf("active sessions %d, want %d", st.SessionsActive, wantActive)
			}
			if wantActive == 0 && len(b.sessions) != 0 {
				t.Errorf("failed handshake left %d half-open sessions", len(b.sessions))
			}
		})
	}
}

func TestBadRAKP3DiscardsSession(t *testing.T) {
	b := newTestBMC(nil)
	c := newTestClient(t, direct(b))
	res, err := c.handshake20(hsOpts{suite: 3, user: "admin", pass: "secret", badRAKP3: true})
	if err != nil || res.rakp4.Status != wire.StatusInvalidICV {
		t.Fatalf("rakp4 %v, %v", res.rakp4.Status, err)
	}
	if len(res.rakp4.ICV) != 0 {
		t.Errorf("error RAKP4 carries an ICV")
	}
	// The correct RAKP3 for the same session now gets nothing.
	_, err = c.setup20(wire.PayloadRAKP3, wire.RAKP3{Tag: 9, SIDc: c.sidc, AuthCode: make([]byte, 20)}.Append(nil), wire.PayloadRAKP4)
	if err != errNoAnswer {
		t.Fatalf("RAKP3 after failure: %v, want no answer", err)
	}
	if st := b.Stats(); st.AuthFailures != 1 {
		t.Errorf("auth failures %d, want 1", st.AuthFailures)
	}
}

func TestPrivileges(t *testing.T) {
	b := newTestBMC(nil)
	for _, tt := range []struct {
		user, pass string
		role       uint8
		max        wire.Privilege
	}{
		{"admin", "secret", 0x14, wire.PrivAdmin},
		{"oper", "operpw", 0x13, wire.PrivOperator},
		{"viewer", "viewpw", 0x12, wire.PrivUser},
	} {
		t.Run(tt.user, func(t *testing.T) {
			c := newTestClient(t, direct(b))
			c.mustOpen20(hsOpts{suite: 17, user: tt.user, pass: tt.pass, role: tt.role})
			// Sessions start at USER.
			if d := c.mustCmd20(wire.NetFnApp, wire.CmdSetSessionPrivilege, []byte{0}, wire.CCOK); d[0] != uint8(wire.PrivUser) {
				t.Fatalf("initial privilege %d", d[0])
			}
			c.mustCmd20(wire.NetFnChassis, wire.CmdChassisControl, []byte{1}, wire.CCInsufficientPriv)
			for p := wire.PrivOperator; p <= wire.PrivAdmin; p++ {
				want := wire.CCOK
				if p > tt.max {
					want = 0x81
				}
				c.mustCmd20(wire.NetFnApp, wire.CmdSetSessionPrivilege, []byte{uint8(p)}, want)
			}
			want := wire.CCOK
			if tt.max < wire.PrivOperator {
				want = wire.CCInsufficientPriv
			}
			c.mustCmd20(wire.NetFnChassis, wire.CmdChassisControl, []byte{1}, want)
			c.mustCmd20(wire.NetFnApp, wire.CmdSetSessionPrivilege, []byte{1}, 0x80)
		})
	}
	if !b.Power() {
		t.Fatal("power is off after an operator's power up")
	}
}

func TestSessionTableFull(t *testing.T) {
	b := newTestBMC(func(c *Config) { c.MaxSessions = 2 })
	for i := range 2 {
		c := newTestClient(t, direct(b))
		if i == 0 {
			c.mustOpen20(hsOpts{suite: 3, user: "admin", pass: "secret"})
			continue
		}
		if cc, act, err := c.open15(wire.AuthMD5, "admin", "secret", wire.PrivAdmin); cc != 0 || act != 0 || err != nil {
			t.Fatalf("v1.5 session: %#x %#x %v", cc, act, err)
		}
	}
	c := newTestClient(t, direct(b))
	res, err := c.handshake20(hsOpts{suite: 3, user: "admin", pass: "secret"})
	if err != nil || res.open.Status != wire.StatusNoResources {
		t.Fatalf("third session: open status %v, %v", res.open.Status, err)
	}
	if _, act, err := c.open15(wire.AuthMD5, "admin", "secret", wire.PrivAdmin); act != 0x81 || err != nil {
		t.Fatalf("third v1.5 session: activate %#x, %v", act, err)
	}
	if st := b.Stats(); st.SessionsRefused != 2 {
		t.Errorf("refused %d, want 2", st.SessionsRefused)
	}
}

func TestSessionTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newTestBMC(func(c *Config) { c.SessionTimeout = 30 * time.Second })
		c := newTestClient(t, direct(b))
		c.mustOpen20(hsOpts{suite: 17, user: "admin", pass: "secret"})
		time.Sleep(29 * time.Second)
		c.mustCmd20(wire.NetFnApp, wire.CmdGetDeviceID, nil, wire.CCOK) // activity refreshes the timer
		time.Sleep(29 * time.Second)
		c.mustCmd20(wire.NetFnApp, wire.CmdGetDeviceID, nil, wire.CCOK)
		time.Sleep(30 * time.Second)
		if _, err := c.cmd20(wire.NetFnApp, wire.CmdGetDeviceID, nil); err != errNoAnswer {
			t.Fatalf("after timeout: %v, want no answer", err)
		}
		if st := b.Stats(); st.SessionsTimedOut != 1 || st.SessionsActive != 0 {
			t.Fatalf("stats %+v", st)
		}
		// Half-open sessions time out too and free their slot.
		res, _ := c.handshake20(hsOpts{suite: 17, user: "nobody"})
		if res.rakp2.Status != wire.StatusUnauthorizedName {
			t.Fatal("expected unknown user")
		}
		if _, err := c.setup20(wire.PayloadOpenSessionReq, wire.OpenSessionRequest{Tag: 1, SIDm: 5,
			Auth: 1, Integrity: 1, Conf: 1}.Append(nil), wire.PayloadOpenSessionResp); err != nil {
			t.Fatal(err)
		}
		time.Sleep(9 * time.Second)
		if b.Stats(); len(b.sessions) != 1 {
			t.Fatalf("%d sessions after 9 s, want the half-open one", len(b.sessions))
		}
		time.Sleep(time.Second)
		if b.Stats(); len(b.sessions) != 0 {
			t.Fatalf("%d sessions left 10 s after an abandoned handshake", len(b.sessions))
		}
	})
}

func TestSequenceWindow(t *testing.T) {
	b := newTestBMC(nil)
	c := newTestClient(t, direct(b))
	c.mustOpen20(hsOpts{suite: 3, user: "admin", pass: "secret"})
	req := c.request(wire.NetFnApp, wire.CmdGetDeviceID, nil)
	send := func(seq uint32) bool { return c.one(c.packet20(req, seq)) != nil }
	steps := []struct {
		seq  uint32
		want bool
	}{
		{1, true}, {1, false}, // duplicate
		{5, true}, {3, true}, {3, false}, {2, true}, // out of order inside the window
		{21, true}, {38, false}, // too far ahead
		{5, false}, // behind the window
		{37, true},
	}
	for _, s := range steps {
		if got := send(s.seq); got != s.want {
			t.Fatalf("seq %d answered = %v, want %v", s.seq, got, s.want)
		}
	}
	// A forged packet (bad integrity) must not advance the window.
	pkt := c.packet20(req, 38)
	pkt[len(pkt)-1] ^= 1
	if c.one(pkt) != nil {
		t.Fatal("forged packet answered")
	}
	if !send(38) {
		t.Fatal("genuine packet after a forged one with the same seq was dropped")
	}
	// Unauthenticated packets in an integrity-protected session are dropped.
	plain := wire.Packet20{Type: wire.PayloadIPMI, SessionID: c.sidc, Seq: 39, Payload: req.Append(nil)}.Append(rmcpIPMI())
	if c.one(plain) != nil {
		t.Fatal("unauthenticated packet answered")
	}
	if b.Stats().Replays == 0 {
		t.Error("replays not counted")
	}
}

func TestSeqWindowUnit(t *testing.T) {
	w := newSeqWindow(0xFFFFFFFE, 8, 8)
	for _, s := range []struct {
		seq uint32
		ok  bool
	}{{0xFFFFFFFE, true}, {0xFFFFFFFF, true}, {1, true}, {1, false}, {0xFFFFFFFD, false}, {0, true}, {0xFFFFFFF9, false}, {9, true}, {18, false}} {
		if got := w.accept(s.seq); got != s.ok {
			t.Fatalf("accept(%#x) = %v, want %v", s.seq, got, s.ok)
		}
	}
}

func TestRetransmittedSetupAndControl(t *testing.T) {
	b := newTestBMC(func(c *Config) { c.PowerOn = true })
	c := newTestClient(t, direct(b))
	open := wire.OpenSessionRequest{Tag: 3, SIDm: 0x1234, Auth: 1, Integrity: 1, Conf: 1}.Append(nil)
	p1, err := c.setup20(wire.PayloadOpenSessionReq, open, wire.PayloadOpenSessionResp)
	if err != nil {
		t.Fatal(err)
	}
	p2, err := c.setup20(wire.PayloadOpenSessionReq, open, wire.PayloadOpenSessionResp)
	if err != nil || !bytes.Equal(p1, p2) || len(b.sessions) != 1 {
		t.Fatalf("retransmitted Open Session: same answer %v, %d sessions, %v", bytes.Equal(p1, p2), len(b.sessions), err)
	}
	c.mustOpen20(hsOpts{suite: 3, user: "admin", pass: "secret"})
	c.mustCmd20(wire.NetFnApp, wire.CmdSetSessionPrivilege, []byte{4}, wire.CCOK)
	req := c.request(wire.NetFnChassis, wire.CmdChassisControl, []byte{uint8(wire.ControlHardReset)})
	for i := range 3 {
		c.seq++
		ans := c.one(c.packet20(req, c.seq))
		plain, _, err := c.open20Answer(ans)
		if err != nil {
			t.Fatalf("try %d: %v", i, err)
		}
		if r, err := c.checkResponse(req, plain); err != nil || r.Code != 0 {
			t.Fatalf("try %d: %v %v", i, r.Code, err)
		}
	}
	if st := b.Stats(); st.Resets != 1 {
		t.Fatalf("retransmitted hard reset executed %d times", st.Resets)
	}
	c.mustCmd20(wire.NetFnChassis, wire.CmdChassisControl, []byte{uint8(wire.ControlHardReset)}, wire.CCOK)
	if st := b.Stats(); st.Resets != 2 {
		t.Fatalf("new hard reset (new rqSeq) not executed: %d", st.Resets)
	}
}

func TestPreSession(t *testing.T) {
	b := newTestBMC(func(c *Config) {
		c.CipherSuites = []uint8{1, 2, 3, 17}
		c.ManufacturerID = 343
		c.KG = []byte{1}
	})
	c := newTestClient(t, direct(b))
	r, err := c.pre(wire.NetFnApp, wire.CmdGetChannelAuthCaps, []byte{0x8E, 4})
	if err != nil || r.Code != 0 {
		t.Fatal(r.Code, err)
	}
	caps, err := wire.ParseAuthCaps(r.Data)
	if err != nil || !caps.Extended || !caps.IPMI20 || !caps.IPMI15 || !caps.Supports(wire.AuthMD5) || !caps.Supports(wire.AuthPassword) ||
		caps.Supports(wire.AuthNone) || !caps.NonNullUsers || caps.Anonymous || !caps.KGSet || caps.OEMIANA != 343 || caps.PerMsgAuthOff {
		t.Fatalf("auth caps %+v %v", caps, err)
	}
	if r, _ := c.pre(wire.NetFnApp, wire.CmdGetChannelAuthCaps, []byte{0x0E, 4}); r.Data[1]&0x80 != 0 {
		t.Fatal("non-extended request got extended data")
	}
	if r, _ := c.pre(wire.NetFnApp, wire.CmdGetChannelAuthCaps, []byte{0x03, 4}); r.Code != wire.CCInvalidField {
		t.Fatalf("wrong channel: %v", r.Code)
	}
	if r, _ := c.pre(wire.NetFnApp, wire.CmdGetChannelAuthCaps, []byte{0x8E}); r.Code != wire.CCBadLength {
		t.Fatalf("short request: %v", r.Code)
	}
	// Cipher suites, 16 bytes a page.
	var all []byte
	for idx := uint8(0); ; idx++ {
		r, err := c.pre(wire.NetFnApp, wire.CmdGetChannelCipherSuites, []byte{0x0E, 0, 0x80 | idx})
		if err != nil || r.Code != 0 || r.Data[0] != channelLAN {
			t.Fatal(r, err)
		}
		all = append(all, r.Data[1:]...)
		if len(r.Data)-1 < 16 {
			break
		}
	}
	recs, err := wire.ParseCipherSuiteRecords(all)
	if err != nil || len(recs) != 4 {
		t.Fatalf("records %+v %v", recs, err)
	}
	var ids []uint8
	for _, r := range recs {
		ids = append(ids, r.ID)
	}
	if !slices.Equal(ids, []uint8{1, 2, 3, 17}) || recs[3].Auth[0] != wire.AuthRAKPHMACSHA256 || recs[3].Conf[0] != wire.ConfAESCBC128 {
		t.Fatalf("suites %v %+v", ids, recs[3])
	}
	// Commands that need a session are refused outside one.
	if r, _ := c.pre(wire.NetFnChassis, wire.CmdChassisControl, []byte{1}); r.Code != wire.CCNotSupportedState || b.Power() {
		t.Fatalf("chassis control outside a session: %v", r.Code)
	}
	if r, _ := c.pre(wire.NetFnApp, wire.CmdGetSystemGUID, nil); r.Code != 0 || [16]byte(r.Data) != b.GUID() {
		t.Fatalf("GUID %x", r.Data)
	}
}

func TestAuthCapsWithout15(t *testing.T) {
	b := New(Config{Users: testUsers})
	c := newTestClient(t, direct(b))
	r, err := c.pre(wire.NetFnApp, wire.CmdGetChannelAuthCaps, []byte{0x8E, 4})
	if err != nil {
		t.Fatal(err)
	}
	caps, _ := wire.ParseAuthCaps(r.Data)
	if caps.IPMI15 || !caps.IPMI20 || caps.AuthTypes != 0 {
		t.Fatalf("caps %+v", caps)
	}
	if cc, _, err := c.open15(wire.AuthMD5, "admin", "secret", 4); cc != int(wire.CCInvalidCommand) || err != nil {
		t.Fatalf("v1.5 challenge on a 2.0-only BMC: %#x %v", cc, err)
	}
}

func TestSession15(t *testing.T) {
	tests := []struct {
		name      string
		cfg       func(*Config)
		auth      wire.AuthType
		user, pw  string
		priv      wire.Privilege
		chal, act int
	}{
		{name: "md5", auth: wire.AuthMD5, user: "admin", pw: "secret", priv: wire.PrivAdmin},
		{name: "password", auth: wire.AuthPassword, user: "oper", pw: "operpw", priv: wire.PrivOperator},
		{name: "none refused", auth: wire.AuthNone, user: "admin", pw: "secret", priv: 4, chal: int(wire.CCInvalidField)},
		{name: "none allowed", cfg: func(c *Config) { c.AllowAuthNone = true }, auth: wire.AuthNone, user: "admin", priv: 4},
		{name: "md2 refused", auth: wire.AuthMD2, user: "admin", pw: "secret", priv: 4, chal: int(wire.CCInvalidField)},
		{name: "wrong password", auth: wire.AuthMD5, user: "admin", pw: "wrong", priv: 4, act: 0xFFFF},
		{name: "unknown user", auth: wire.AuthMD5, user: "nobody", pw: "x", priv: 4, chal: 0x81},
		{name: "null user", auth: wire.AuthMD5, user: "", pw: "x", priv: 4, chal: 0x82},
		{name: "privilege above limit", auth: wire.AuthMD5, user: "viewer", pw: "viewpw", priv: 3, act: 0x86},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newTestBMC(tt.cfg)
			c := newTestClient(t, direct(b))
			chal, act, err := c.open15(tt.auth, tt.user, tt.pw, tt.priv)
			if err != nil || chal != tt.chal || act != tt.act {
				t.Fatalf("challenge %#x activate %#x (%v), want %#x %#x", chal, act, err, tt.chal, tt.act)
			}
			if chal != 0 || act != 0 {
				if b.Stats().SessionsActive != 0 {
					t.Fatal("failed activation left a session")
				}
				return
			}
			c.mustCmd15(wire.NetFnChassis, wire.CmdChassisControl, []byte{1}, wire.CCInsufficientPriv)
			c.mustCmd15(wire.NetFnApp, wire.CmdSetSessionPrivilege, []byte{uint8(tt.priv)}, wire.CCOK)
			c.mustCmd15(wire.NetFnChassis, wire.CmdChassisControl, []byte{1}, wire.CCOK)
			if !b.Power() {
				t.Fatal("power not on")
			}
			d := c.mustCmd15(wire.NetFnApp, wire.CmdGetSessionInfo, []byte{0}, wire.CCOK)
			if info, err := wire.ParseSessionInfo(d); err != nil || info.IPMI20 || info.Privilege != tt.priv || info.Active != 1 {
				t.Fatalf("session info %+v %v", info, err)
			}
			// Replay of the last packet is dropped.
			req := c.request(wire.NetFnApp, wire.CmdGetDeviceID, nil)
			c.seq15++
			pkt := c.packet15(req, c.sid, c.seq15)
			if c.one(pkt) == nil || c.one(pkt) != nil {
				t.Fatal("replay not dropped")
			}
			c.mustCmd15(wire.NetFnApp, wire.CmdCloseSession, le32(c.sid), wire.CCOK)
			if _, err := c.cmd15(wire.NetFnApp, wire.CmdGetDeviceID, nil); err != errNoAnswer {
				t.Fatalf("after close: %v", err)
			}
		})
	}
}

func (c *testClient) mustCmd15(netfn wire.NetFn, cmd uint8, data []byte, want wire.CompletionCode) []byte {
	c.t.Helper()
	r, err := c.cmd15(netfn, cmd, data)
	if err != nil {
		c.t.Fatalf("netfn %v cmd %#x: %v", netfn, cmd, err)
	}
	if r.Code != want {
		c.t.Fatalf("netfn %v cmd %#x: completion code %#x, want %#x", netfn, cmd, uint8(r.Code), uint8(want))
	}
	return r.Data
}

func TestSessionInfoAndClose(t *testing.T) {
	b := newTestBMC(nil)
	admin := newTestClient(t, direct(b))
	admin.mustOpen20(hsOpts{suite: 17, user: "admin", pass: "secret"})
	viewer := newTestClient(t, direct(b))
	viewer.mustOpen20(hsOpts{suite: 3, user: "viewer", pass: "viewpw", role: 0x12})
	d := admin.mustCmd20(wire.NetFnApp, wire.CmdGetSessionInfo, []byte{0}, wire.CCOK)
	info, err := wire.ParseSessionInfo(d)
	if err != nil || !info.IPMI20 || info.Active != 2 || info.MaxSessions != defaultMaxSessions || info.UserID != 2 ||
		info.Privilege != wire.PrivUser || len(info.Extra) != 12 || !bytes.Equal(info.Extra[:4], []byte{127, 0, 0, 1}) {
		t.Fatalf("info %+v %v", info, err)
	}
	d = admin.mustCmd20(wire.NetFnApp, wire.CmdGetSessionInfo, append([]byte{0xFF}, le32(viewer.sidc)...), wire.CCOK)
	if info, _ := wire.ParseSessionInfo(d); info.UserID != 4 {
		t.Fatalf("viewer info %+v", info)
	}
	if d := admin.mustCmd20(wire.NetFnApp, wire.CmdGetSessionInfo, []byte{9}, wire.CCOK); len(d) != 3 {
		t.Fatalf("no 9th session: %x", d)
	}
	// Closing someone else's session needs ADMIN.
	viewer.mustCmd20(wire.NetFnApp, wire.CmdCloseSession, le32(admin.sidc), wire.CCInsufficientPriv)
	admin.mustCmd20(wire.NetFnApp, wire.CmdCloseSession, le32(viewer.sidc), wire.CCInsufficientPriv)
	admin.mustCmd20(wire.NetFnApp, wire.CmdSetSessionPrivilege, []byte{4}, wire.CCOK)
	admin.mustCmd20(wire.NetFnApp, wire.CmdCloseSession, le32(12345), 0x87)
	admin.mustCmd20(wire.NetFnApp, wire.CmdCloseSession, le32(viewer.sidc), wire.CCOK)
	if _, err := viewer.cmd20(wire.NetFnApp, wire.CmdGetDeviceID, nil); err != errNoAnswer {
		t.Fatal("closed session still answers")
	}
	admin.mustCmd20(wire.NetFnApp, wire.CmdCloseSession, nil, wire.CCBadLength)
}

func TestLockout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newTestBMC(func(c *Config) { c.Lockout = Lockout{Failures: 2, Duration: time.Minute} })
		c := newTestClient(t, direct(b))
		for range 2 {
			if res, _ := c.handshake20(hsOpts{suite: 3, user: "admin", pass: "bad"}); res.rakp4.Status != wire.StatusInvalidICV {
				t.Fatal("wrong password accepted")
			}
		}
		if res, _ := c.handshake20(hsOpts{suite: 3, user: "admin", pass: "secret"}); res.rakp2.Status != wire.StatusUnauthorizedName {
			t.Fatalf("locked user: rakp2 %v", res.rakp2.Status)
		}
		if _, act, _ := c.open15(wire.AuthMD5, "admin", "secret", 4); act != 0xFFFF {
			t.Fatalf("locked user activated a v1.5 session: %#x", act)
		}
		c2 := newTestClient(t, direct(b))
		c2.mustOpen20(hsOpts{suite: 3, user: "oper", pass: "operpw", role: 0x13}) // others are not locked
		time.Sleep(time.Minute)
		c.mustOpen20(hsOpts{suite: 3, user: "admin", pass: "secret"})
		if st := b.Stats(); st.LockedOut != 2 || st.AuthFailures != 2 {
			t.Fatalf("stats %+v", st)
		}
	})
}

func TestASFPing(t *testing.T) {
	b := newTestBMC(nil)
	ping := wire.ASFMessage{Type: wire.ASFTypePing, Tag: 42}.Append(wire.RMCPHeader{Seq: 0xFF, Class: wire.ClassASF}.Append(nil))
	out := b.handle(ping, testRemote)
	if len(out) != 1 {
		t.Fatalf("%d answers", len(out))
	}
	_, rest, _ := wire.ParseRMCP(out[0])
	m, err := wire.ParseASF(rest)
	if err != nil || m.Type != wire.ASFTypePong || m.Tag != 42 || !m.IPMISupported {
		t.Fatalf("pong %+v %v", m, err)
	}
	ping[2] = 7 // asks for an RMCP ACK
	if out := b.handle(ping, testRemote); len(out) != 2 || out[0][3] != 0x86 || out[0][2] != 7 {
		t.Fatalf("answers to a ping wanting an ACK: %x", out)
	}
}

// TestRetransmittedWithNewTag covers FreeIPMI, which retransmits
// session-setup messages with a new message tag.
func TestRetransmittedWithNewTag(t *testing.T) {
	b := newTestBMC(nil)
	var last []byte
	c := newTestClient(t, func(p []byte) [][]byte {
		last = append([]byte(nil), p...)
		return b.handle(p, testRemote)
	})
	c.mustOpen20(hsOpts{suite: 17, user: "admin", pass: "secret"})
	rakp3 := last // the RAKP3 datagram
	first, err := c.setup20(wire.PayloadRAKP3, rakp3[16:], wire.PayloadRAKP4)
	if err != nil {
		t.Fatal(err)
	}
	retry := append([]byte(nil), rakp3[16:]...)
	retry[0] = 99
	again, err := c.setup20(wire.PayloadRAKP3, retry, wire.PayloadRAKP4)
	if err != nil || again[0] != 99 || !bytes.Equal(again[1:], first[1:]) {
		t.Fatalf("RAKP3 retransmitted with a new tag: %x vs %x, %v", again, first, err)
	}
	c.mustCmd20(wire.NetFnApp, wire.CmdGetDeviceID, nil, wire.CCOK)
	if st := b.Stats(); st.SessionsOpened != 1 || st.SessionsActive != 1 {
		t.Fatalf("stats %+v", st)
	}
	// A different RAKP3 for the established session is ignored.
	retry[9] ^= 1
	if _, err := c.setup20(wire.PayloadRAKP3, retry, wire.PayloadRAKP4); err != errNoAnswer {
		t.Fatalf("altered RAKP3: %v", err)
	}
}

func TestRetransmittedActivateSession(t *testing.T) {
	b := newTestBMC(nil)
	var last []byte
	c := newTestClient(t, func(p []byte) [][]byte {
		last = append([]byte(nil), p...)
		return b.handle(p, testRemote)
	})
	if _, act, err := c.open15(wire.AuthMD5, "admin", "secret", wire.PrivAdmin); act != 0 || err != nil {
		t.Fatal(act, err)
	}
	activate := last
	sid := c.sid
	out := b.handle(activate, testRemote)
	if len(out) != 1 {
		t.Fatal("retransmitted Activate Session not answered")
	}
	_, rest, _ := wire.ParseRMCP(out[0])
	s, _ := wire.ParseSession15(rest)
	r, err := wire.ParseResponse(s.Message, true)
	if err != nil || r.Code != 0 {
		t.Fatal(r.Code, err)
	}
	if a, _ := wire.ParseActivateSessionResponse(r.Data); a.SessionID != sid {
		t.Fatalf("second activation gave session %#x, first %#x", a.SessionID, sid)
	}
	c.mustCmd15(wire.NetFnApp, wire.CmdGetDeviceID, nil, wire.CCOK)
	if st := b.Stats(); st.SessionsOpened != 1 || st.SessionsActive != 1 {
		t.Fatalf("stats %+v", st)
	}
	c.mustCmd15(wire.NetFnApp, wire.CmdCloseSession, le32(sid), wire.CCOK)
	if out := b.handle(activate, testRemote); len(out) != 0 {
		t.Fatal("activation of a closed session replayed")
	}
}
