package bmcsim

import (
	"crypto/hmac"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"net"
	"testing"

	"github.com/solgate/solgate/ipmilan/internal/wire"
)

// This file is a deliberately small IPMI client built from the wire
// codecs, independent of package ipmilan, that drives a BMC through its
// packet handler (or a UDP socket) so tests can inspect every step.

type roundTrip func(pkt []byte) [][]byte

var testRemote = &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40623}

// direct hands datagrams straight to the BMC's handler.
func direct(b *BMC) roundTrip {
	return func(p []byte) [][]byte { return b.handle(p, testRemote) }
}

type testClient struct {
	t  testing.TB
	rt roundTrip

	rqSeq uint8

	// RMCP+ session.
	suite wire.CipherSuite
	sidm  uint32
	sidc  uint32
	keys  *wire.Keys
	seq   uint32

	// v1.5 session.
	authType wire.AuthType
	pw16     [16]byte
	sid      uint32
	seq15    uint32
}

func newTestClient(t testing.TB, rt roundTrip) *testClient {
	return &testClient{t: t, rt: rt}
}

func (c *testClient) one(pkt []byte) []byte {
	c.t.Helper()
	out := c.rt(pkt)
	if len(out) > 1 {
		c.t.Fatalf("got %d answers to one request", len(out))
	}
	if len(out) == 0 {
		return nil
	}
	return out[0]
}

func (c *testClient) request(netfn wire.NetFn, cmd uint8, data []byte) wire.Request {
	c.rqSeq = (c.rqSeq + 1) & 0x3F
	return wire.Request{RsAddr: wire.BMCSlaveAddr, NetFn: netfn, RqAddr: wire.RemoteSWID, RqSeq: c.rqSeq, Cmd: cmd, Data: data}
}

// checkResponse parses an IPMI response and checks it matches req.
func (c *testClient) checkResponse(req wire.Request, msg []byte) (wire.Response, error) {
	r, err := wire.ParseResponse(msg, true)
	if err != nil {
		return r, err
	}
	if r.NetFn != req.NetFn|1 || r.Cmd != req.Cmd || r.RqSeq != req.RqSeq {
		return r, fmt.Errorf("response netfn %v cmd %#x seq %d does not match request netfn %v cmd %#x seq %d",
			r.NetFn, r.Cmd, r.RqSeq, req.NetFn, req.Cmd, req.RqSeq)
	}
	return r, nil
}

// pre sends a v1.5-format request outside a session.
func (c *testClient) pre(netfn wire.NetFn, cmd uint8, data []byte) (wire.Response, error) {
	c.t.Helper()
	req := c.request(netfn, cmd, data)
	pkt := wire.Session15{Message: req.Append(nil)}.Append(rmcpIPMI())
	ans := c.one(pkt)
	if ans == nil {
		return wire.Response{}, errNoAnswer
	}
	_, rest, err := wire.ParseRMCP(ans)
	if err != nil {
		return wire.Response{}, err
	}
	s, err := wire.ParseSession15(rest)
	if err != nil {
		return wire.Response{}, err
	}
	if s.AuthType != wire.AuthNone || s.SessionID != 0 || s.Seq != 0 {
		return wire.Response{}, fmt.Errorf("pre-session answer with auth %v sid %#x seq %d", s.AuthType, s.SessionID, s.Seq)
	}
	return c.checkResponse(req, s.Message)
}

var errNoAnswer = fmt.Errorf("no answer")

// setup20 sends a session-setup payload and returns the answer payload.
func (c *testClient) setup20(t wire.PayloadType, payload []byte, want wire.PayloadType) ([]byte, error) {
	c.t.Helper()
	ans := c.one(wire.Packet20{Type: t, Payload: payload}.Append(rmcpIPMI()))
	if ans == nil {
		return nil, errNoAnswer
	}
	_, rest, err := wire.ParseRMCP(ans)
	if err != nil {
		return nil, err
	}
	p, err := wire.ParsePacket20(rest)
	if err != nil {
		return nil, err
	}
	if p.Type != want || p.SessionID != 0 || p.Seq != 0 || p.Authenticated || p.Encrypted {
		return nil, fmt.Errorf("setup answer: type %v sid %#x seq %d", p.Type, p.SessionID, p.Seq)
	}
	return p.Payload, nil
}

// hsOpts are the console's choices for an RMCP+ handshake.
type hsOpts struct {
	suite   uint8
	user    string
	pass    string
	role    uint8 // RAKP1 role byte; 0 means name-only ADMIN (0x14)
	reqPriv wire.Privilege
	kg      []byte
	// badRAKP3 sends a wrong RAKP3 code even if RAKP2 verified.
	badRAKP3 bool
}

// hsResult records what each step of the handshake returned.
type hsResult struct {
	open       wire.OpenSessionResponse
	rakp2      wire.RAKP2
	rakp2Raw   []byte
	rakp2Valid bool // the BMC proved it knows the password
	rakp4      wire.RAKP4
	icvValid   bool // the BMC derived the same SIK
}

// handshake20 runs Open Session and RAKP 1-4. It stops at the first
// error status and returns what it got so far; err reports transport or
// parse problems only.
func (c *testClient) handshake20(o hsOpts) (hsResult, error) {
	c.t.Helper()
	var res hsResult
	suite, ok := wire.LookupCipherSuite(o.suite)
	if !ok {
		return res, fmt.Errorf("unknown suite %d", o.suite)
	}
	c.suite = suite
	var b [4]byte
	rand.Read(b[:])
	c.sidm = binary.LittleEndian.Uint32(b[:]) | 1
	p, err := c.setup20(wire.PayloadOpenSessionReq, wire.OpenSessionRequest{Tag: 7, MaxPriv: o.reqPriv, SIDm: c.sidm,
		Auth: suite.Auth, Integrity: suite.Integrity, Conf: suite.Conf}.Append(nil), wire.PayloadOpenSessionResp)
	if err != nil {
		return res, err
	}
	if res.open, err = wire.ParseOpenSessionResponse(p); err != nil {
		return res, err
	}
	if res.open.Tag != 7 || res.open.SIDm != c.sidm && res.open.Status == wire.StatusOK {
		return res, fmt.Errorf("open session response tag %d sidm %#x", res.open.Tag, res.open.SIDm)
	}
	if res.open.Status != wire.StatusOK {
		return res, nil
	}
	c.sidc = res.open.SIDc
	role := o.role
	if role == 0 {
		role = wire.RoleNameOnly | uint8(wire.PrivAdmin)
	}
	hs := wire.Handshake{SIDm: c.sidm, SIDc: c.sidc, Role: role, User: []byte(o.user)}
	rand.Read(hs.Rm[:])
	p, err = c.setup20(wire.PayloadRAKP1, wire.RAKP1{Tag: 8, SIDc: c.sidc, Rm: hs.Rm, Role: role, User: hs.User}.Append(nil), wire.PayloadRAKP2)
	if err != nil {
		return res, err
	}
	res.rakp2Raw = p
	if res.rakp2, err = wire.ParseRAKP2(p); err != nil {
		return res, err
	}
	if res.rakp2.Status != wire.StatusOK {
		return res, nil
	}
	if res.rakp2.SIDm != c.sidm || res.rakp2.Tag != 8 {
		return res, fmt.Errorf("RAKP2 sidm %#x tag %d", res.rakp2.SIDm, res.rakp2.Tag)
	}
	hs.Rc, hs.GUID = res.rakp2.Rc, res.rakp2.GUID
	res.rakp2Valid = hmac.Equal(hs.RAKP2Code(suite.Auth, []byte(o.pass)), res.rakp2.AuthCode)
	code := hs.RAKP3Code(suite.Auth, []byte(o.pass))
	if o.badRAKP3 {
		code = hs.RAKP3Code(suite.Auth, []byte(o.pass+"x"))
	}
	p, err = c.setup20(wire.PayloadRAKP3, wire.RAKP3{Tag: 9, SIDc: c.sidc, AuthCode: code}.Append(nil), wire.PayloadRAKP4)
	if err != nil {
		return res, err
	}
	if res.rakp4, err = wire.ParseRAKP4(p); err != nil {
		return res, err
	}
	if res.rakp4.Status != wire.StatusOK {
		return res, nil
	}
	key := o.kg
	if key == nil {
		key = []byte(o.pass)
	}
	sik := hs.SIK(suite.Auth, key)
	res.icvValid = hmac.Equal(hs.RAKP4ICV(suite.Auth, sik), res.rakp4.ICV)
	c.keys = wire.SessionKeys(suite, sik, []byte(o.pass))
	c.seq = 0
	return res, nil
}

// mustOpen20 establishes an RMCP+ session or fails the test.
func (c *testClient) mustOpen20(o hsOpts) {
	c.t.Helper()
	res, err := c.handshake20(o)
	if err != nil {
		c.t.Fatalf("handshake: %v", err)
	}
	if res.open.Status != 0 || res.rakp2.Status != 0 || res.rakp4.Status != 0 || !res.rakp2Valid || !res.icvValid {
		c.t.Fatalf("handshake failed: open %v rakp2 %v (valid %v) rakp4 %v (icv %v)",
			res.open.Status, res.rakp2.Status, res.rakp2Valid, res.rakp4.Status, res.icvValid)
	}
}

// packet20 builds an in-session IPMI packet with sequence number seq.
func (c *testClient) packet20(req wire.Request, seq uint32) []byte {
	c.t.Helper()
	b, err := c.keys.Seal(rmcpIPMI(), wire.Packet20{Type: wire.PayloadIPMI, SessionID: c.sidc, Seq: seq}, req.Append(nil))
	if err != nil {
		c.t.Fatal(err)
	}
	return b
}

// open20Answer checks and decrypts an in-session answer.
func (c *testClient) open20Answer(ans []byte) ([]byte, uint32, error) {
	_, rest, err := wire.ParseRMCP(ans)
	if err != nil {
		return nil, 0, err
	}
	p, err := wire.ParsePacket20(rest)
	if err != nil {
		return nil, 0, err
	}
	if p.SessionID != c.sidm {
		return nil, 0, fmt.Errorf("answer session ID %#x, want %#x", p.SessionID, c.sidm)
	}
	plain, err := c.keys.Open(rest, p)
	return plain, p.Seq, err
}

// cmd20 runs one command in the RMCP+ session.
func (c *testClient) cmd20(netfn wire.NetFn, cmd uint8, data []byte) (wire.Response, error) {
	c.t.Helper()
	req := c.request(netfn, cmd, data)
	c.seq++
	ans := c.one(c.packet20(req, c.seq))
	if ans == nil {
		return wire.Response{}, errNoAnswer
	}
	plain, _, err := c.open20Answer(ans)
	if err != nil {
		return wire.Response{}, err
	}
	return c.checkResponse(req, plain)
}

// mustCmd20 runs a command and returns its response data, failing the
// test unless the completion code is want.
func (c *testClient) mustCmd20(netfn wire.NetFn, cmd uint8, data []byte, want wire.CompletionCode) []byte {
	c.t.Helper()
	r, err := c.cmd20(netfn, cmd, data)
	if err != nil {
		c.t.Fatalf("netfn %v cmd %#x: %v", netfn, cmd, err)
	}
	if r.Code != want {
		c.t.Fatalf("netfn %v cmd %#x: completion code %#x, want %#x", netfn, cmd, uint8(r.Code), uint8(want))
	}
	return r.Data
}

// open15 runs Get Session Challenge and Activate Session. It returns the
// completion codes (0xFFFF when the BMC did not answer).
func (c *testClient) open15(t wire.AuthType, user, pass string, priv wire.Privilege) (chalCC, actCC int, err error) {
	c.t.Helper()
	var u [16]byte
	copy(u[:], user)
	r, err := c.pre(wire.NetFnApp, wire.CmdGetSessionChallenge, wire.SessionChallengeRequest{AuthType: t, User: u}.Append(nil))
	if err != nil {
		return 0, 0, err
	}
	if r.Code != 0 {
		return int(r.Code), 0, nil
	}
	ch, err := wire.ParseSessionChallenge(r.Data)
	if err != nil {
		return 0, 0, err
	}
	c.authType, c.pw16 = t, wire.Password16([]byte(pass))
	var b [4]byte
	rand.Read(b[:])
	out := binary.LittleEndian.Uint32(b[:]) | 1
	req := c.request(wire.NetFnApp, wire.CmdActivateSession,
		wire.ActivateSessionRequest{AuthType: t, MaxPriv: priv, Challenge: ch.Challenge, OutSeq: out}.Append(nil))
	ans := c.one(c.packet15(req, ch.TempSessionID, 0))
	if ans == nil {
		return 0, 0xFFFF, nil
	}
	m, s, err := c.open15Answer(ans, ch.TempSessionID)
	if err != nil {
		return 0, 0, err
	}
	if s.Seq != out {
		return 0, 0, fmt.Errorf("activate answer seq %d, want %d", s.Seq, out)
	}
	resp, err := c.checkResponse(req, m)
	if err != nil || resp.Code != 0 {
		return 0, int(resp.Code), err
	}
	a, err := wire.ParseActivateSessionResponse(resp.Data)
	if err != nil {
		return 0, 0, err
	}
	c.sid, c.seq15 = a.SessionID, a.InSeq-1
	return 0, 0, nil
}

func (c *testClient) packet15(req wire.Request, sid, seq uint32) []byte {
	s := wire.Session15{AuthType: c.authType, Seq: seq, SessionID: sid, Message: req.Append(nil)}
	if c.authType != wire.AuthNone {
		code, err := wire.AuthCode15(c.authType, c.pw16, sid, s.Message, seq)
		if err != nil {
			c.t.Fatal(err)
		}
		s.AuthCode = code
	}
	return s.Append(rmcpIPMI())
}

func (c *testClient) open15Answer(ans []byte, sid uint32) ([]byte, wire.Session15, error) {
	_, rest, err := wire.ParseRMCP(ans)
	if err != nil {
		return nil, wire.Session15{}, err
	}
	s, err := wire.ParseSession15(rest)
	if err != nil {
		return nil, s, err
	}
	if s.SessionID != sid || s.AuthType != c.authType {
		return nil, s, fmt.Errorf("v1.5 answer sid %#x auth %v", s.SessionID, s.AuthType)
	}
	if c.authType != wire.AuthNone {
		want, _ := wire.AuthCode15(c.authType, c.pw16, sid, s.Message, s.Seq)
		if want != s.AuthCode {
			return nil, s, fmt.Errorf("v1.5 answer auth code mismatch")
		}
	}
	return s.Message, s, nil
}

func (c *testClient) cmd15(netfn wire.NetFn, cmd uint8, data []byte) (wire.Response, error) {
	c.t.Helper()
	req := c.request(netfn, cmd, data)
	c.seq15++
	ans := c.one(c.packet15(req, c.sid, c.seq15))
	if ans == nil {
		return wire.Response{}, errNoAnswer
	}
	m, _, err := c.open15Answer(ans, c.sid)
	if err != nil {
		return wire.Response{}, err
	}
	return c.checkResponse(req, m)
}
