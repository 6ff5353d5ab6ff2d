package bmcsim

import (
	"math/rand/v2"
	"testing"

	"github.com/solgate/solgate/ipmilan/internal/wire"
)

// fuzzBMC is a BMC whose random numbers repeat, with every insecure
// option on, so that fuzz inputs can reach established sessions (suite 0
// and v1.5 auth type none need no keys).
func fuzzBMC() *BMC {
	b := New(Config{Users: testUsers, Allow15: true, AllowAuthNone: true, AllowCipherZero: true,
		CipherSuites: []uint8{0, 1, 2, 3, 17}, GUID: [16]byte{1},
		SOL: SOLConfig{NoBootText: true, InputBuffer: 16, BufferSize: 512, OutboundSize: 20}})
	b.rand = rand.NewChaCha8([32]byte{})
	return b
}

// splitDatagrams cuts fuzz input into datagrams: a length byte, then that
// many bytes, repeated; the rest is the last datagram.
func splitDatagrams(data []byte) [][]byte {
	var out [][]byte
	for len(data) > 0 && len(out) < 24 { // a SOL session needs about 16
		n := int(data[0])
		data = data[1:]
		if n > len(data) {
			n = len(data)
		}
		out = append(out, data[:n])
		data = data[n:]
	}
	return out
}

func joinDatagrams(ds [][]byte) []byte {
	var out []byte
	for _, d := range ds {
		out = append(out, uint8(len(d)))
		out = append(out, d...)
	}
	return out
}

// recordSession captures the datagrams of a suite 0 session that runs a
// command, against a fuzzBMC.
func recordSession(t testing.TB, cmds func(c *testClient)) [][]byte {
	var sent [][]byte
	b := fuzzBMC()
	c := newTestClient(t, func(p []byte) [][]byte {
		sent = append(sent, p)
		return b.handle(p, testRemote)
	})
	cmds(c)
	return sent
}

// checkAnswer fails unless out is a well-formed answer datagram.
func checkAnswer(t *testing.T, out []byte) {
	t.Helper()
	hdr, rest, err := wire.ParseRMCP(out)
	if err != nil {
		t.Fatalf("answer %x: %v", out, err)
	}
	switch hdr.Class &^ 0x80 {
	case wire.ClassASF:
		if hdr.IsACK() {
			if len(rest) != 0 {
				t.Fatalf("RMCP ACK with a body: %x", out)
			}
			return
		}
		if m, err := wire.ParseASF(rest); err != nil || m.Type != wire.ASFTypePong {
			t.Fatalf("ASF answer %x: %v", out, err)
		}
	case wire.ClassIPMI:
		if len(rest) > 0 && rest[0] == uint8(wire.AuthRMCPPlus) {
			p, err := wire.ParsePacket20(rest)
			if err != nil {
				t.Fatalf("RMCP+ answer %x: %v", out, err)
			}
			if p.Authenticated || p.Encrypted {
				return // sealed with keys the fuzzer cannot have
			}
			var perr error
			switch p.Type {
			case wire.PayloadIPMI:
				_, perr = wire.ParseResponse(p.Payload, true)
			case wire.PayloadOpenSessionResp:
				_, perr = wire.ParseOpenSessionResponse(p.Payload)
			case wire.PayloadRAKP2:
				_, perr = wire.ParseRAKP2(p.Payload)
			case wire.PayloadRAKP4:
				_, perr = wire.ParseRAKP4(p.Payload)
			case wire.PayloadSOL:
				_, perr = wire.ParseSOL(p.Payload)
			default:
				t.Fatalf("RMCP+ answer with payload type %v", p.Type)
			}
			if perr != nil {
				t.Fatalf("RMCP+ %v answer %x: %v", p.Type, out, perr)
			}
			return
		}
		s, err := wire.ParseSession15(rest)
		if err != nil {
			t.Fatalf("v1.5 answer %x: %v", out, err)
		}
		if _, err := wire.ParseResponse(s.Message, true); err != nil {
			t.Fatalf("v1.5 answer message %x: %v", s.Message, err)
		}
	default:
		t.Fatalf("answer with RMCP class %v", hdr.Class)
	}
}

func FuzzHandle(f *testing.F) {
	f.Add(authCapsPacket(1))
	f.Add(joinDatagrams([][]byte{wire.ASFMessage{Type: wire.ASFTypePing, Tag: 3}.Append(wire.RMCPHeader{Seq: 5, Class: wire.ClassASF}.Append(nil))}))
	f.Add(joinDatagrams(recordSession(f, func(c *testClient) {
		c.mustOpen20(hsOpts{suite: 0, user: "admin", pass: ""})
		c.mustCmd20(wire.NetFnApp, wire.CmdSetSessionPrivilege, []byte{4}, wire.CCOK)
		c.mustCmd20(wire.NetFnChassis, wire.CmdChassisControl, []byte{2}, wire.CCNotSupportedState)
		c.mustCmd20(wire.NetFnChassis, wire.CmdSetBootOptions, []byte{5, 0x80, 4, 0, 0, 0}, wire.CCOK)
		c.mustCmd20(wire.NetFnApp, wire.CmdGetSessionInfo, []byte{0}, wire.CCOK)
	})))
	f.Add(joinDatagrams(recordSession(f, func(c *testClient) {
		if _, act, err := c.open15(wire.AuthNone, "oper", "", wire.PrivOperator); act != 0 || err != nil {
			f.Fatal(act, err)
		}
		c.mustCmd15(wire.NetFnApp, wire.CmdSetSessionPrivilege, []byte{3}, wire.CCOK)
		c.mustCmd15(wire.NetFnChassis, wire.CmdChassisControl, []byte{1}, wire.CCOK)
		c.mustCmd15(wire.NetFnApp, wire.CmdCloseSession, le32(c.sid), wire.CCOK)
	})))
	f.Add(joinDatagrams(recordSession(f, func(c *testClient) {
		c.mustOpen20(hsOpts{suite: 17, user: "admin", pass: "secret"})
		c.mustCmd20(wire.NetFnChassis, wire.CmdGetChassisStatus, nil, wire.CCOK)
	})))
	f.Add(joinDatagrams(recordSOL(f)))
	f.Fuzz(func(t *testing.T, data []byte) {
		b := fuzzBMC()
		sink := &capSink{port: 623}
		defer b.Reboot(0) // stops SOL timers
		for _, d := range splitDatagrams(data) {
			for _, out := range append(b.handleVia(d, testRemote, sink), sink.take()...) {
				checkAnswer(t, out)
			}
			b.HostWrite([]byte("host output\r\n"))
			for _, out := range sink.take() {
				checkAnswer(t, out)
			}
		}
	})
}

// FuzzSeqWindow checks the anti-replay window against a plain model.
func FuzzSeqWindow(f *testing.F) {
	f.Add(uint32(1), []byte{0, 1, 0, 5, 3, 3, 200, 2})
	f.Add(uint32(0xFFFFFFF0), []byte{20, 1, 1, 1, 255, 0})
	f.Fuzz(func(t *testing.T, start uint32, steps []byte) {
		w := newSeqWindow(start, 16, 16)
		high := start - 1
		seen := map[uint32]bool{high: true}
		seq := start
		for _, s := range steps {
			seq += uint32(int8(s)) // walk forward and back
			var want bool
			switch d := seq - high; {
			case d != 0 && d <= 16:
				want = true
				high = seq
			case high-seq < 16 && !seen[seq]:
				want = true
			}
			if got := w.accept(seq); got != want {
				t.Fatalf("accept(%#x) = %v, model says %v (high %#x)", seq, got, want, high)
			}
			if want {
				seen[seq] = true
			}
		}
	})
}

// TestFuzzSeedsReachSessions checks that a recorded session replays
// against a fresh fuzzBMC, so the fuzzer starts from inside sessions.
func TestFuzzSeedsReachSessions(t *testing.T) {
	sent := recordSession(t, func(c *testClient) {
		if _, act, err := c.open15(wire.AuthNone, "oper", "", wire.PrivOperator); act != 0 || err != nil {
			t.Fatal(act, err)
		}
		c.mustCmd15(wire.NetFnApp, wire.CmdSetSessionPrivilege, []byte{3}, wire.CCOK)
		c.mustCmd15(wire.NetFnChassis, wire.CmdChassisControl, []byte{1}, wire.CCOK)
	})
	b := fuzzBMC()
	answered := 0
	for _, d := range splitDatagrams(joinDatagrams(sent)) {
		answered += len(b.handle(d, testRemote))
	}
	if answered != len(sent) || !b.Power() {
		t.Fatalf("replay: %d of %d answered, power %v", answered, len(sent), b.Power())
	}
}

// recordSOL captures a suite 0 session that powers the host on, activates
// SOL, types, acknowledges output, sends a break and deactivates.
func recordSOL(t testing.TB) [][]byte {
	var sent [][]byte
	b := fuzzBMC()
	defer b.Reboot(0)
	c := &solClient{b: b, sink: &capSink{port: 623}, remote: testRemote}
	c.testClient = newTestClient(t, func(p []byte) [][]byte {
		sent = append(sent, p)
		b.handleVia(p, c.remote, c.sink)
		return c.split()
	})
	c.mustOpen20(hsOpts{suite: 0, user: "admin", pass: ""})
	c.mustCmd20(wire.NetFnApp, wire.CmdSetSessionPrivilege, []byte{4}, wire.CCOK)
	c.mustCmd20(wire.NetFnChassis, wire.CmdChassisControl, []byte{1}, wire.CCOK)
	c.activate()
	seq := c.data("typed text longer than the FIFO\r")
	for _, p := range c.recv() {
		if p.Seq != 0 {
			c.ack(p.Seq, uint8(len(p.Data)))
		}
	}
	c.send(wire.SOLPacket{Seq: seq, Data: []byte("typed")}) // a retransmission
	c.seq = c.seq%15 + 1
	c.send(wire.SOLPacket{Seq: c.seq, Op: wire.SOLOpBreak})
	c.mustCmd20(wire.NetFnApp, wire.CmdGetPayloadInstanceInfo, []byte{1, 1}, wire.CCOK)
	c.mustCmd20(wire.NetFnTransport, wire.CmdGetSOLConfigParam, []byte{0x0E, 3, 0, 0}, wire.CCOK)
	c.mustCmd20(wire.NetFnApp, wire.CmdDeactivatePayload, []byte{1, 1, 0, 0, 0, 0}, wire.CCOK)
	return sent
}

// TestFuzzSOLSeedReachesSOL checks that the recorded SOL session replays
// against a fresh fuzzBMC: the fuzzer starts from an active console.
func TestFuzzSOLSeedReachesSOL(t *testing.T) {
	sent := recordSOL(t)
	b := fuzzBMC()
	defer b.Reboot(0)
	sink := &capSink{}
	for _, d := range splitDatagrams(joinDatagrams(sent)) {
		b.handleVia(d, testRemote, sink)
	}
	st := b.Stats()
	if st.SOLActivations != 1 || st.SOLBytesReceived == 0 || st.SOLBreaks != 1 || st.SOLDuplicates != 1 {
		t.Fatalf("replay did not reach SOL: %+v", st)
	}
}
