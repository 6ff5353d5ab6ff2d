package bmcsim

import (
	"bytes"
	"context"
	"encoding/binary"
	"net"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/solgate/solgate/ipmilan/internal/wire"
)

// A SOL console for tests: the small testClient plus a capturing packet
// sink standing in for the socket, so unsolicited SOL output (and its
// timing, under testing/synctest) can be inspected packet by packet.

// capSink records what the BMC sends through it.
type capSink struct {
	mu   sync.Mutex
	port uint16
	pkts [][]byte
}

func (s *capSink) send(_ *faultState, b []byte, _ net.Addr) {
	s.mu.Lock()
	s.pkts = append(s.pkts, append([]byte(nil), b...))
	s.mu.Unlock()
}

func (s *capSink) localPort() uint16 { return s.port }

func (s *capSink) take() [][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.pkts
	s.pkts = nil
	return p
}

type solClient struct {
	*testClient
	b      *BMC
	sink   *capSink
	remote net.Addr
	sol    [][]byte // SOL datagrams not yet read
	seq    uint8    // our last SOL packet sequence number
}

// newSOLClient opens an admin RMCP+ session with suite (from its own
// UDP source port) on b.
func newSOLClient(t testing.TB, b *BMC, port int, suite uint8) *solClient {
	t.Helper()
	c := &solClient{b: b, sink: &capSink{port: 623}, remote: &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port}}
	c.testClient = newTestClient(t, func(p []byte) [][]byte {
		b.handleVia(p, c.remote, c.sink)
		return c.split()
	})
	c.mustOpen20(hsOpts{suite: suite, user: "admin", pass: "secret"})
	c.mustCmd20(wire.NetFnApp, wire.CmdSetSessionPrivilege, []byte{4}, wire.CCOK)
	return c
}

// split keeps the SOL datagrams sent so far and returns the others.
func (c *solClient) split() [][]byte {
	var other [][]byte
	for _, p := range c.sink.take() {
		if len(p) > 5 && p[4] == uint8(wire.AuthRMCPPlus) && wire.PayloadType(p[5]&0x3F) == wire.PayloadSOL {
			c.sol = append(c.sol, p)
		} else {
			other = append(other, p)
		}
	}
	return other
}

// activate activates SOL instance 1 and returns the response.
func (c *solClient) activate() wire.ActivatePayloadResponse {
	c.t.Helper()
	d := c.mustCmd20(wire.NetFnApp, wire.CmdActivatePayload, []byte{1, 1, 0xC0, 0, 0, 0}, wire.CCOK)
	r, err := wire.ParseActivatePayloadResponse(d)
	if err != nil {
		c.t.Fatal(err)
	}
	return r
}

// send sends a SOL packet in the session.
func (c *solClient) send(p wire.SOLPacket) {
	c.t.Helper()
	c.testClient.seq++
	b, err := c.keys.Seal(rmcpIPMI(), wire.Packet20{Type: wire.PayloadSOL, SessionID: c.sidc, Seq: c.testClient.seq}, p.Append(nil))
	if err != nil {
		c.t.Fatal(err)
	}
	if other := c.rt(b); len(other) > 0 {
		c.t.Fatalf("%d non-SOL answers to a SOL packet", len(other))
	}
}

// data sends typed characters in a new packet and returns its seq.
func (c *solClient) data(s string) uint8 {
	c.seq = c.seq%15 + 1
	c.send(wire.SOLPacket{Seq: c.seq, Data: []byte(s)})
	return c.seq
}

func (c *solClient) ack(seq, n uint8) { c.send(wire.SOLPacket{AckSeq: seq, Accepted: n}) }

// recv returns the SOL packets received since the last call.
func (c *solClient) recv() []wire.SOLPacket {
	c.t.Helper()
	c.split()
	var out []wire.SOLPacket
	for _, d := range c.sol {
		plain, _, err := c.open20Answer(d)
		if err != nil {
			c.t.Fatalf("SOL datagram: %v", err)
		}
		p, err := wire.ParseSOL(plain)
		if err != nil {
			c.t.Fatalf("SOL payload %x: %v", plain, err)
		}
		out = append(out, p)
	}
	c.sol = nil
	return out
}

// one returns the single SOL packet received since the last call.
func (c *solClient) one() wire.SOLPacket {
	c.t.Helper()
	ps := c.recv()
	if len(ps) != 1 {
		c.t.Fatalf("got %d SOL packets, want 1: %+v", len(ps), ps)
	}
	return ps[0]
}

func (c *solClient) none() {
	c.t.Helper()
	if ps := c.recv(); len(ps) != 0 {
		c.t.Fatalf("got %d SOL packets, want none: %+v", len(ps), ps)
	}
}

// drain acknowledges output until none is left and returns it.
func (c *solClient) drain() []byte {
	c.t.Helper()
	var out []byte
	for range 10000 {
		ps := c.recv()
		if len(ps) == 0 {
			return out
		}
		for _, p := range ps {
			if p.Seq != 0 {
				out = append(out, p.Data...)
				c.ack(p.Seq, uint8(len(p.Data)))
			}
		}
	}
	c.t.Fatal("output never ends")
	return nil
}

// solBMC is a powered-on test BMC without boot text.
func solBMC(mod func(*Config)) *BMC {
	return newTestBMC(func(c *Config) {
		c.PowerOn = true
		c.SOL.NoBootText = true
		if mod != nil {
			mod(c)
		}
	})
}

func TestSOLActivation(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := solBMC(func(c *Config) { c.SOL.Instances = 2 })
		c := newSOLClient(t, b, 1000, 17)
		d := c.mustCmd20(wire.NetFnApp, wire.CmdGetChannelPayloadSupp, []byte{0x0E}, wire.CCOK)
		if len(d) != 8 || d[0]&0x02 == 0 {
			t.Fatalf("payload support %x: want the SOL bit", d)
		}
		if d := c.mustCmd20(wire.NetFnApp, wire.CmdGetChannelPayloadVer, []byte{0x0E, 1}, wire.CCOK); !bytes.Equal(d, []byte{0x10}) {
			t.Fatalf("payload version %x", d)
		}
		r := c.activate()
		if r.InboundSize != 259 || r.OutboundSz != 259 || r.Port != 623 || r.VLAN != 0xFFFF {
			t.Fatalf("activate response %+v", r)
		}
		if d := c.mustCmd20(wire.NetFnApp, wire.CmdGetPayloadActivation, []byte{1}, wire.CCOK); !bytes.Equal(d, []byte{2, 1, 0}) {
			t.Fatalf("activation status %x: want capacity 2, instance 1 active", d)
		}
		d = c.mustCmd20(wire.NetFnApp, wire.CmdGetPayloadInstanceInfo, []byte{1, 1}, wire.CCOK)
		if len(d) != 12 || binary.LittleEndian.Uint32(d) != c.sidc {
			t.Fatalf("instance info %x: want owner %#x (the session ID the console sends to)", d, c.sidc)
		}
		// Again in the same session, and from another session.
		c.mustCmd20(wire.NetFnApp, wire.CmdActivatePayload, []byte{1, 1, 0xC0, 0, 0, 0}, 0x80)
		c.mustCmd20(wire.NetFnApp, wire.CmdActivatePayload, []byte{1, 2, 0xC0, 0, 0, 0}, 0x82)
		o := newSOLClient(t, b, 1001, 3)
		o.mustCmd20(wire.NetFnApp, wire.CmdActivatePayload, []byte{1, 1, 0xC0, 0, 0, 0}, 0x80)
		o.mustCmd20(wire.NetFnApp, wire.CmdActivatePayload, []byte{1, 3, 0xC0, 0, 0, 0}, wire.CCInvalidField)
		o.mustCmd20(wire.NetFnApp, wire.CmdActivatePayload, []byte{1, 2, 0xC0, 0, 0, 0}, wire.CCOK)
		// Both instances get the host's output.
		b.HostWrite([]byte("to both"))
		for _, cl := range []*solClient{c, o} {
			if p := cl.one(); p.Seq != 1 || string(p.Data) != "to both" {
				t.Fatalf("output %+v", p)
			}
		}
		if st := b.Stats(); st.SOLActive != 2 || st.SOLActivations != 2 {
			t.Fatalf("stats %+v", st)
		}
		c.mustCmd20(wire.NetFnApp, wire.CmdDeactivatePayload, []byte{1, 1, 0, 0, 0, 0}, wire.CCOK)
		c.mustCmd20(wire.NetFnApp, wire.CmdDeactivatePayload, []byte{1, 1, 0, 0, 0, 0}, 0x80)
		c.none() // our own deactivation: no notice
		// Forced encryption refuses a session without it.
		b.sol.forceEncryption = true
		n := newSOLClient(t, b, 1002, 2)
		n.mustCmd20(wire.NetFnApp, wire.CmdActivatePayload, []byte{1, 1, 0x40, 0, 0, 0}, 0x84)
	})
}

func TestSOLOutputAndRetransmission(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := solBMC(func(c *Config) {
			c.SOL.OutboundSize = 4 + 10
			c.SOL.RetryInterval = 50 * time.Millisecond
			c.SOL.Retries = 2
		})
		c := newSOLClient(t, b, 1000, 3)
		c.activate()
		b.HostWrite([]byte("0123456789abcdef"))
		p := c.one()
		if p.Seq != 1 || string(p.Data) != "0123456789" || p.Op != 0 {
			t.Fatalf("first packet %+v: want seq 1 with 10 characters", p)
		}
		// Not acknowledged: the same packet again, twice, then dropped.
		for i := range 2 {
			time.Sleep(50 * time.Millisecond)
			synctest.Wait()
			if r := c.one(); r.Seq != 1 || string(r.Data) != "0123456789" {
				t.Fatalf("resend %d: %+v", i, r)
			}
		}
		time.Sleep(50 * time.Millisecond)
		synctest.Wait()
		p = c.one()
		if p.Seq != 2 || string(p.Data) != "abcdef" {
			t.Fatalf("after giving up: %+v, want seq 2 with the rest", p)
		}
		// A partial ACK: the rest goes in a new packet.
		c.ack(2, 4)
		if p = c.one(); p.Seq != 3 || string(p.Data) != "ef" {
			t.Fatalf("after a partial ACK: %+v", p)
		}
		// An ACK of nothing: held for one interval, then a new packet.
		c.ack(3, 0)
		c.none()
		time.Sleep(50 * time.Millisecond)
		synctest.Wait()
		if p = c.one(); p.Seq != 4 || string(p.Data) != "ef" {
			t.Fatalf("after an ACK of 0: %+v", p)
		}
		// A NACK: the same packet after an interval.
		c.send(wire.SOLPacket{AckSeq: 4, Op: wire.SOLNack})
		c.none()
		time.Sleep(50 * time.Millisecond)
		synctest.Wait()
		if p = c.one(); p.Seq != 4 || string(p.Data) != "ef" {
			t.Fatalf("after a NACK: %+v", p)
		}
		c.ack(4, 2)
		c.none()
		st := b.Stats()
		if st.SOLRetransmits != 3 || st.SOLGaveUp != 10 || st.SOLBytesSent != 6 {
			t.Fatalf("stats %+v", st)
		}
	})
}

func TestSOLAccumulate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := solBMC(func(c *Config) { c.SOL.Threshold = 8; c.SOL.AccumulateInterval = 40 * time.Millisecond })
		c := newSOLClient(t, b, 1000, 3)
		c.activate()
		b.HostWrite([]byte("abc"))
		c.none()
		time.Sleep(39 * time.Millisecond)
		synctest.Wait()
		c.none()
		time.Sleep(time.Millisecond)
		synctest.Wait()
		if p := c.one(); string(p.Data) != "abc" {
			t.Fatalf("after the interval: %+v", p)
		}
		c.ack(1, 3)
		b.HostWrite([]byte("12345678"))
		if p := c.one(); string(p.Data) != "12345678" {
			t.Fatalf("at the threshold: %+v", p)
		}
	})
}

func TestSOLInput(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := solBMC(func(c *Config) { c.SOL.InputBuffer = 8; c.SOL.InboundSize = 4 + 6 })
		c := newSOLClient(t, b, 1000, 17)
		c.activate()
		seq := c.data("ls\r")
		ps := c.recv()
		if len(ps) != 2 || ps[0].Seq != 0 || ps[0].AckSeq != seq || ps[0].Accepted != 3 {
			t.Fatalf("ACK %+v", ps)
		}
		// The host echoes like a tty.
		if string(ps[1].Data) != "ls\r\n" {
			t.Fatalf("echo %+v", ps[1])
		}
		c.ack(1, 4)
		// A retransmission is acknowledged again, not delivered again; a
		// late copy of an older packet is ignored.
		c.send(wire.SOLPacket{Seq: seq, Data: []byte("ls\r")})
		if p := c.one(); p.AckSeq != seq || p.Accepted != 3 {
			t.Fatalf("re-ACK %+v", p)
		}
		c.send(wire.SOLPacket{Seq: (seq+13)%15 + 1, Data: []byte("old")})
		c.none()
		if got := string(b.HostInput()); got != "ls\r" {
			t.Fatalf("host input %q", got)
		}
		// More than the BMC takes per packet (6): partially accepted.
		b.PauseInput(true)
		seq = c.data("abcdefgh")
		if p := c.one(); p.AckSeq != seq || p.Accepted != 6 || p.Op != 0 {
			t.Fatalf("ACK of an over-long packet %+v", p)
		}
		// The paused host's FIFO (8) fills: partial ACK, then NACK.
		seq = c.data("gh1")
		if p := c.one(); p.AckSeq != seq || p.Accepted != 2 || p.Op != 0 {
			t.Fatalf("partial ACK %+v", p)
		}
		seq = c.data("1")
		if p := c.one(); p.AckSeq != seq || p.Op&wire.SOLNack == 0 || p.Accepted != 0 {
			t.Fatalf("NACK %+v", p)
		}
		b.PauseInput(false)
		if got := string(b.HostInput()); got != "ls\rabcdefgh" {
			t.Fatalf("host input %q", got)
		}
		c.drain()
		// The NACKed packet, sent again, is taken now.
		c.send(wire.SOLPacket{Seq: seq, Data: []byte("1")})
		if p := c.recv(); len(p) < 1 || p[0].AckSeq != seq || p[0].Accepted != 1 {
			t.Fatalf("resent after NACK %+v", p)
		}
		// A break, acknowledged like data.
		c.seq = c.seq%15 + 1
		c.send(wire.SOLPacket{Seq: c.seq, Op: wire.SOLOpBreak})
		if p := c.one(); p.AckSeq != c.seq || p.Op&wire.SOLNack != 0 {
			t.Fatalf("break ACK %+v", p)
		}
		// Host off: NACK, character transfer unavailable.
		b.SetPower(false)
		seq = c.data("x")
		if p := c.one(); p.AckSeq != seq || p.Op != wire.SOLNack|wire.SOLStatusUnavailable {
			t.Fatalf("input with the host off: %+v", p)
		}
		st := b.Stats()
		if st.SOLBytesReceived != 12 || st.SOLDuplicates != 2 || st.SOLNACKs != 2 || st.SOLBreaks != 1 {
			t.Fatalf("stats %+v", st)
		}
	})
}

func TestSOLOverrun(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := solBMC(func(c *Config) { c.SOL.BufferSize = 32 })
		// Nobody connected: the newest 32 bytes are kept.
		b.HostWrite(bytes.Repeat([]byte("x"), 30))
		b.HostWrite([]byte("0123456789"))
		c := newSOLClient(t, b, 1000, 3)
		c.activate()
		p := c.one()
		if p.Op&wire.SOLStatusOverrun == 0 || string(p.Data) != string(bytes.Repeat([]byte("x"), 22))+"0123456789" {
			t.Fatalf("first packet %+v: want the newest 32 bytes and the overrun bit", p)
		}
		// Connected, output faster than it is taken: what does not fit
		// in the buffer is dropped.
		c.ack(p.Seq, uint8(len(p.Data)))
		b.HostWrite(bytes.Repeat([]byte("y"), 40))
		p = c.one()
		if len(p.Data) != 32 || p.Op&wire.SOLStatusOverrun == 0 {
			t.Fatalf("packet after the overflow %+v", p)
		}
		c.ack(p.Seq, uint8(len(p.Data)))
		b.HostWrite([]byte("z"))
		if p = c.one(); p.Op != 0 || string(p.Data) != "z" {
			t.Fatalf("overrun bit not cleared: %+v", p)
		}
		if st := b.Stats(); st.SOLOverruns != 8+8 {
			t.Fatalf("overruns %d, want 16", st.SOLOverruns)
		}
	})
}

func TestSOLSteal(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := solBMC(func(c *Config) { c.SOL.RetryInterval = 50 * time.Millisecond })
		a := newSOLClient(t, b, 1000, 3)
		a.activate()
		b.HostWrite([]byte("for a"))
		a.ack(a.one().Seq, 5)
		// A viewer may not take it; an admin session may.
		v := newSOLClient(t, b, 1001, 3)
		b.sol.minPriv = PrivAdmin
		v.mustCmd20(wire.NetFnApp, wire.CmdSetSessionPrivilege, []byte{2}, wire.CCOK)
		v.mustCmd20(wire.NetFnApp, wire.CmdDeactivatePayload, []byte{1, 1, 0, 0, 0, 0}, wire.CCInsufficientPriv)
		o := newSOLClient(t, b, 1002, 17)
		o.mustCmd20(wire.NetFnApp, wire.CmdDeactivatePayload, []byte{1, 1, 0, 0, 0, 0}, wire.CCOK)
		p := a.one()
		if p.Op != wire.SOLStatusDeactivated || p.Seq == 0 {
			t.Fatalf("old owner got %+v, want the deactivating status", p)
		}
		// Resent until acknowledged.
		time.Sleep(50 * time.Millisecond)
		synctest.Wait()
		if r := a.one(); r.Seq != p.Seq || r.Op != wire.SOLStatusDeactivated {
			t.Fatalf("notice resent as %+v", r)
		}
		a.ack(p.Seq, 0)
		time.Sleep(time.Second)
		synctest.Wait()
		a.none()
		d := o.mustCmd20(wire.NetFnApp, wire.CmdGetPayloadInstanceInfo, []byte{1, 1}, wire.CCOK)
		if binary.LittleEndian.Uint32(d) != 0 {
			t.Fatalf("owner after deactivation %x", d[:4])
		}
		o.activate()
		b.HostWrite([]byte("for o"))
		if p := o.one(); string(p.Data) != "for o" {
			t.Fatalf("new owner got %+v", p)
		}
		a.none()
		// The old owner typing is refused.
		a.data("q")
		if p := a.one(); p.Op != wire.SOLNack|wire.SOLStatusDeactivated {
			t.Fatalf("old owner's input answered %+v", p)
		}
		if st := b.Stats(); st.SOLSteals != 1 || st.SOLActivations != 2 {
			t.Fatalf("stats %+v", st)
		}
		// BMC-initiated deactivation tells the owner too.
		b.DeactivateSOL()
		if p := o.recv(); len(p) != 1 || p[0].Op != wire.SOLStatusDeactivated || p[0].Seq != 2 {
			t.Fatalf("after DeactivateSOL: %+v", p)
		}
	})
}

func TestSOLEndsWithSession(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := solBMC(func(c *Config) {
			c.SessionTimeout = 30 * time.Second
			c.SOL.RetryInterval = 10 * time.Second // not given up before the timeout
		})
		c := newSOLClient(t, b, 1000, 3)
		c.activate()
		c.mustCmd20(wire.NetFnApp, wire.CmdCloseSession, le32(c.sidc), wire.CCOK)
		if st := b.Stats(); st.SOLActive != 0 || st.SOLDeactivations != 1 {
			t.Fatalf("after Close Session: %+v", st)
		}
		// Timeout: the instance ends on time, with no traffic at all.
		c = newSOLClient(t, b, 1001, 3)
		c.activate()
		b.HostWrite([]byte("output nobody acknowledges"))
		time.Sleep(29 * time.Second)
		c.mustCmd20(wire.NetFnApp, wire.CmdGetDeviceID, nil, wire.CCOK)
		time.Sleep(29 * time.Second)
		synctest.Wait()
		if st := b.Stats(); st.SOLActive != 1 {
			t.Fatalf("SOL ended early: %+v", st)
		}
		time.Sleep(time.Second)
		synctest.Wait()
		if b.mu.Lock(); b.sol.inst[0] != nil || len(b.sessions) != 0 {
			b.mu.Unlock()
			t.Fatal("SOL still active after the session timed out")
		}
		b.mu.Unlock()
		// The output the console never took waits for the next one.
		c = newSOLClient(t, b, 1002, 3)
		c.activate()
		if got := string(c.drain()); got != "output nobody acknowledges" {
			t.Fatalf("next console got %q", got)
		}
	})
}

func TestSOLConfigParams(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := solBMC(func(c *Config) { c.SOL.Port = 20623 })
		c := newSOLClient(t, b, 1000, 3)
		get := func(param uint8) []byte {
			return c.mustCmd20(wire.NetFnTransport, wire.CmdGetSOLConfigParam, []byte{0x0E, param, 0, 0}, wire.CCOK)
		}
		for _, tc := range []struct {
			param uint8
			want  []byte
		}{
			{1, []byte{0x11, 1}},
			{2, []byte{0x11, 2}},
			{3, []byte{0x11, 20, 1}},
			{4, []byte{0x11, 7, 10}},
			{7, []byte{0x11, 1}},
			{8, []byte{0x11, 20623 & 0xFF, 20623 >> 8}},
		} {
			if got := get(tc.param); !bytes.Equal(got, tc.want) {
				t.Errorf("parameter %d: %x, want %x", tc.param, got, tc.want)
			}
		}
		c.mustCmd20(wire.NetFnTransport, wire.CmdGetSOLConfigParam, []byte{0x0E, 99, 0, 0}, 0x80)
		c.mustCmd20(wire.NetFnTransport, wire.CmdSetSOLConfigParam, []byte{0x0E, 3, 4, 16}, wire.CCOK)
		c.mustCmd20(wire.NetFnTransport, wire.CmdSetSOLConfigParam, []byte{0x0E, 4, 3, 5}, wire.CCOK)
		if got := get(3); !bytes.Equal(got, []byte{0x11, 4, 16}) {
			t.Errorf("accumulate after set: %x", got)
		}
		if got := get(4); !bytes.Equal(got, []byte{0x11, 3, 5}) {
			t.Errorf("retry after set: %x", got)
		}
		c.mustCmd20(wire.NetFnTransport, wire.CmdSetSOLConfigParam, []byte{0x0E, 8, 1, 2}, 0x82)
		// Disabling SOL ends the active console, with notice.
		r := c.activate()
		if r.Port != 20623 {
			t.Fatalf("activate response port %d, want the SOL port", r.Port)
		}
		c.mustCmd20(wire.NetFnTransport, wire.CmdSetSOLConfigParam, []byte{0x0E, 1, 0}, wire.CCOK)
		if p := c.one(); p.Op != wire.SOLStatusDeactivated {
			t.Fatalf("after disabling: %+v", p)
		}
		c.mustCmd20(wire.NetFnApp, wire.CmdActivatePayload, []byte{1, 1, 0, 0, 0, 0}, 0x81)
		// Setting needs ADMIN.
		c.mustCmd20(wire.NetFnApp, wire.CmdSetSessionPrivilege, []byte{2}, wire.CCOK)
		c.mustCmd20(wire.NetFnTransport, wire.CmdSetSOLConfigParam, []byte{0x0E, 1, 1}, wire.CCInsufficientPriv)
	})
}

func TestSOLBogusSizesAndPort(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := solBMC(func(c *Config) { c.SOL.BogusSizes, c.SOL.SwapPort = true, true })
		c := newSOLClient(t, b, 1000, 3)
		if r := c.activate(); r.InboundSize != 0x0301 || r.OutboundSz != 0x0301 || r.Port != 0x6F02 {
			t.Fatalf("activate %+v: want byte-swapped 259 and 623", r)
		}
	})
}

func TestSOLBootText(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newTestBMC(func(c *Config) { c.SOL.Hostname = "n42" })
		c := newSOLClient(t, b, 1000, 3)
		c.activate()
		c.mustCmd20(wire.NetFnChassis, wire.CmdChassisControl, []byte{1}, wire.CCOK)
		var out []byte
		for range 200 {
			time.Sleep(10 * time.Millisecond)
			synctest.Wait()
			out = append(out, c.drain()...)
		}
		for _, want := range []string{"\x1b[2J", "\x1b[1;37;44m", "Memory Test", "] Linux version", "printk: console [ttyS0] enabled",
			"Hostname set to <n42>", "\r\nn42 login: "} {
			if !bytes.Contains(out, []byte(want)) {
				t.Errorf("boot text lacks %q", want)
			}
		}
		if !bytes.HasSuffix(out, []byte("n42 login: ")) {
			t.Errorf("boot text ends %q", out[max(0, len(out)-40):])
		}
		// A reset boots again.
		c.mustCmd20(wire.NetFnChassis, wire.CmdChassisControl, []byte{3}, wire.CCOK)
		time.Sleep(2 * time.Second)
		synctest.Wait()
		if again := c.drain(); !bytes.HasSuffix(again, []byte("n42 login: ")) || !bytes.Contains(again, []byte("\x1b[2J")) {
			t.Errorf("no boot after reset: %q", again)
		}
	})
}

func TestStreamText(t *testing.T) {
	whole := AppendStreamText(nil, 0, 3*StreamLineLen)
	want := "0000000000 " + streamFiller + "\r\n0000000075 " + streamFiller + "\r\n0000000150 " + streamFiller + "\r\n"
	if string(whole) != want {
		t.Fatalf("stream text %q", whole)
	}
	for off := range len(whole) {
		for n := range len(whole) - off {
			if got := AppendStreamText(nil, off, n); !bytes.Equal(got, whole[off:off+n]) {
				t.Fatalf("AppendStreamText(%d, %d) = %q", off, n, got)
			}
		}
	}
}

func TestStreamWaitsForRoom(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := solBMC(func(c *Config) { c.SOL.BufferSize = 300 })
		const total = 5000
		done := make(chan error, 1)
		go func() { done <- b.Stream(context.Background(), 0, total) }()
		// Nobody connected: Stream fills the buffer and waits.
		synctest.Wait()
		select {
		case err := <-done:
			t.Fatalf("Stream returned %v with nowhere to put the output", err)
		default:
		}
		c := newSOLClient(t, b, 1000, 3)
		c.activate()
		var got []byte
		for len(got) < total {
			synctest.Wait()
			more := c.drain()
			if len(more) == 0 {
				t.Fatalf("stream stalled after %d bytes", len(got))
			}
			got = append(got, more...)
		}
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, AppendStreamText(nil, 0, total)) {
			t.Fatal("stream text differs")
		}
		if st := b.Stats(); st.SOLOverruns != 0 || st.SOLBytesSent != total {
			t.Fatalf("stats %+v", st)
		}
		// At a rate: 1000 bytes at 2000 B/s take half a second.
		start := time.Now()
		go func() { done <- b.Stream(context.Background(), 2000, 1000) }()
		for n := 0; n < 1000; {
			time.Sleep(10 * time.Millisecond)
			synctest.Wait()
			n += len(c.drain())
		}
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if d := time.Since(start); d < 490*time.Millisecond || d > 600*time.Millisecond {
			t.Fatalf("1000 bytes at 2000 B/s took %v", d)
		}
	})
}

// TestStreamOrderAndCancel: Stream calls on one BMC print one after the
// other; a cancelled one returns its context's error and gives way to the
// next, and what it handed over stays.
func TestStreamOrderAndCancel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := solBMC(func(c *Config) { c.SOL.BufferSize = 300 })
		ctx, cancel := context.WithCancel(context.Background())
		first, second := make(chan error, 1), make(chan error, 1)
		go func() { first <- b.Stream(ctx, 0, 1000) }()
		synctest.Wait()
		go func() { second <- b.Stream(context.Background(), 0, 200) }()
		synctest.Wait()
		cancel()
		if err := <-first; err != context.Canceled {
			t.Fatalf("cancelled Stream returned %v", err)
		}
		if err := b.Stream(ctx, 0, 10); err != context.Canceled {
			t.Fatalf("Stream with a cancelled context returned %v", err)
		}
		c := newSOLClient(t, b, 1000, 3)
		c.activate()
		var got []byte
		for len(got) < 500 {
			synctest.Wait()
			more := c.drain()
			if len(more) == 0 {
				t.Fatalf("stalled after %d bytes: %q", len(got), got)
			}
			got = append(got, more...)
		}
		if err := <-second; err != nil {
			t.Fatal(err)
		}
		want := append(AppendStreamText(nil, 0, 300), AppendStreamText(nil, 0, 200)...)
		if !bytes.Equal(got, want) {
			t.Fatalf("got %q\nwant %q", got, want)
		}
	})
}

// TestStreamFillsOnAck: once the buffer is full, each acknowledgement's
// room is filled and sent by the packet handler itself: the next packet
// is the answer to the ACK, with no other goroutine involved.
func TestStreamFillsOnAck(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := solBMC(func(c *Config) { c.SOL.BufferSize = 600 })
		c := newSOLClient(t, b, 1000, 3)
		c.activate()
		go b.Stream(t.Context(), 0, 1<<30)
		synctest.Wait()
		p := c.one()
		off := 0
		for range 20 {
			if len(p.Data) != 255 || !bytes.Equal(p.Data, AppendStreamText(nil, off, 255)) {
				t.Fatalf("packet at %d: %q", off, p.Data)
			}
			off += len(p.Data)
			// c.ack runs the handler on this goroutine; it must come
			// back with the next packet already sent.
			c.ack(p.Seq, uint8(len(p.Data)))
			p = c.one()
			b.mu.Lock()
			queued := len(b.sol.inst[0].queue) + len(b.sol.inst[0].inFlight)
			b.mu.Unlock()
			if queued != 600 {
				t.Fatalf("after the ACK of %d: %d bytes queued, want the buffer full (600)", off, queued)
			}
		}
	})
}

func TestReboot(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := solBMC(nil)
		c := newSOLClient(t, b, 1000, 3)
		c.activate()
		b.Reboot(5 * time.Second)
		if _, err := c.cmd20(wire.NetFnApp, wire.CmdGetDeviceID, nil); err != errNoAnswer {
			t.Fatalf("command during reboot: %v", err)
		}
		if r, err := c.pre(wire.NetFnApp, wire.CmdGetChannelAuthCaps, []byte{0x8E, 4}); err != errNoAnswer {
			t.Fatalf("pre-session command during reboot: %+v %v", r, err)
		}
		b.HostWrite([]byte("printed while the BMC reboots"))
		time.Sleep(5 * time.Second)
		c2 := newSOLClient(t, b, 1001, 3)
		c2.activate()
		if got := string(c2.drain()); got != "printed while the BMC reboots" {
			t.Fatalf("after the reboot: %q", got)
		}
		if st := b.Stats(); st.Reboots != 1 || st.SessionsActive != 1 {
			t.Fatalf("stats %+v", st)
		}
	})
}

// TestSOLPortServed: the alternate SOL port answers the whole protocol,
// over real sockets, and Serve stops it.
func TestSOLPortServed(t *testing.T) {
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	must(t, err)
	defer pc.Close()
	probe, err := net.ListenPacket("udp4", "127.0.0.1:0")
	must(t, err)
	altPort := probe.LocalAddr().(*net.UDPAddr).Port
	probe.Close()
	b := newTestBMC(func(c *Config) { c.SOL.Port = uint16(altPort) })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Serve(ctx, pc) }()
	cl, err := net.ListenPacket("udp4", "127.0.0.1:0")
	must(t, err)
	defer cl.Close()
	alt := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: altPort}
	// Once the main port answers, Serve has bound the SOL port too.
	if n := len((&udpClient{t: t, pc: cl, to: pc.LocalAddr()}).exchange(authCapsPacket(1), 1)); n != 1 {
		t.Fatalf("%d answers on the main port", n)
	}
	if n := len((&udpClient{t: t, pc: cl, to: alt}).exchange(authCapsPacket(2), 1)); n != 1 {
		t.Fatalf("%d answers on the SOL port", n)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	// Serve has released the SOL port.
	again, err := net.ListenPacket("udp4", alt.String())
	if err != nil {
		t.Fatalf("SOL port still bound after Serve returned: %v", err)
	}
	again.Close()
}
