package ipmilan

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/solgate/solgate/ipmilan/internal/wire"
)

// engHarness drives a solEngine by hand: the test hands it BMC packets
// and sees every payload it sends. It runs inside a synctest bubble.
type engHarness struct {
	t    *testing.T
	eng  *solEngine
	lost chan struct{}
	done chan struct{}

	mu   sync.Mutex
	sent []wire.SOLPacket
}

func newEngHarness(t *testing.T, outMax int) *engHarness {
	h := &engHarness{t: t, lost: make(chan struct{}), done: make(chan struct{})}
	h.eng = newSOLEngine(func(p []byte) error {
		sp, err := wire.ParseSOL(p)
		if err != nil {
			t.Errorf("engine sent a malformed SOL payload % x: %v", p, err)
		}
		sp.Data = append([]byte(nil), sp.Data...)
		h.mu.Lock()
		h.sent = append(h.sent, sp)
		h.mu.Unlock()
		return nil
	}, 32, outMax, 500*time.Millisecond, 16)
	h.eng.onPanic = func(err error) { t.Errorf("engine panicked: %v", err) }
	go func() { defer close(h.done); h.eng.run(h.lost, func() error { return ErrNoAnswer }) }()
	t.Cleanup(func() { h.eng.close(); <-h.done })
	return h
}

// bmc hands the engine one BMC packet and waits until it has handled it.
func (h *engHarness) bmc(seq uint8, data []byte) {
	h.eng.deliver(wire.SOLPacket{Seq: seq, Data: data}.Append(nil))
	synctest.Wait()
}

// acks returns the acknowledgements the engine sent since the last call.
func (h *engHarness) acks() []wire.SOLPacket {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []wire.SOLPacket
	for _, p := range h.sent {
		if p.AckSeq != 0 {
			out = append(out, p)
		}
	}
	h.sent = nil
	return out
}

// buffered returns what Read would return now, without blocking.
func (h *engHarness) buffered() []byte {
	h.eng.outMu.Lock()
	defer h.eng.outMu.Unlock()
	return append([]byte(nil), h.eng.out.Bytes()...)
}

func patterned(n int, salt byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = 'A' + byte(i*7+int(salt))%26
	}
	return b
}

// TestSOLEngineShorterResend is the regression test for the panic the
// old engine had (p.Data[:lastLen] with a shorter packet): packet 1 with
// 200 bytes, then packet 1 again with 100. As a cut-short copy of what
// was delivered, it delivers nothing and is acknowledged with its own
// length; with other bytes it is new output and is delivered once.
func TestSOLEngineShorterResend(t *testing.T) {
	first := patterned(200, 0)
	for _, tc := range []struct {
		name   string
		second []byte
		want   []byte // everything delivered
		ack    uint8  // count in the answer to the second packet
	}{
		{"cut-short copy", first[:100], first, 100},
		{"different bytes", patterned(100, 3), append(append([]byte(nil), first...), patterned(100, 3)...), 100},
		{"empty copy", nil, first, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				h := newEngHarness(t, 0)
				h.bmc(1, first)
				if a := h.acks(); len(a) != 1 || a[0].AckSeq != 1 || a[0].Accepted != 200 {
					t.Fatalf("answer to the first packet: %+v", a)
				}
				h.bmc(1, tc.second)
				a := h.acks()
				if len(a) != 1 || a[0].AckSeq != 1 || a[0].Accepted != tc.ack {
					t.Fatalf("answer to the second packet: %+v, want one ACK of 1 with %d", a, tc.ack)
				}
				if got := h.buffered(); !bytes.Equal(got, tc.want) {
					t.Fatalf("delivered %d bytes %q, want %d", len(got), got, len(tc.want))
				}
				if h.eng.Err() != nil {
					t.Fatalf("engine ended: %v", h.eng.Err())
				}
			})
		})
	}
}

// TestSOLEngineRetransmissionRules: a retransmission with characters
// appended delivers just those; a remainder resent under the old number
// (characters that continue differently) is new output; a copy of a
// packet answered 0 is answered 0 again (at most once per hold) and taken
// only when copies still come solRevive later.
func TestSOLEngineRetransmissionRules(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newEngHarness(t, 0)
		h.bmc(1, []byte("hello"))
		h.bmc(1, []byte("hello, world")) // our ACK was lost; the BMC appended
		if a := h.acks(); len(a) != 2 || a[1].Accepted != 12 {
			t.Fatalf("answers %+v: want the second to count 12", a)
		}
		h.bmc(1, []byte("rld!")) // a remainder under the old number
		if a := h.acks(); len(a) != 1 || a[0].Accepted != 4 {
			t.Fatalf("answer to the remainder: %+v", a)
		}
		if got := string(h.buffered()); got != "hello, worldrld!" {
			t.Fatalf("delivered %q", got)
		}
	})
	synctest.Test(t, func(t *testing.T) {
		h := newEngHarness(t, 10)
		h.bmc(1, patterned(10, 0)) // fills the buffer
		h.acks()
		big := patterned(50, 1)
		h.bmc(2, big)
		if a := h.acks(); len(a) != 0 {
			t.Fatalf("a packet that does not fit was answered at once: %+v", a)
		}
		time.Sleep(solPauseHold)
		synctest.Wait()
		if a := h.acks(); len(a) != 1 || a[0].AckSeq != 2 || a[0].Accepted != 0 {
			t.Fatalf("after the hold: %+v, want a pause (ACK 2 of 0)", a)
		}
		h.bmc(2, big) // crossed our answer: answered 0 again only after a hold
		if a := h.acks(); len(a) != 0 {
			t.Fatalf("copy right after the pause: %+v, want no answer yet", a)
		}
		time.Sleep(solPauseHold)
		h.bmc(2, big)
		if a := h.acks(); len(a) != 1 || a[0].Accepted != 0 {
			t.Fatalf("copy a hold after the pause: %+v, want 0 again", a)
		}
		h.eng.Read(make([]byte, 10)) // room now
		synctest.Wait()
		h.bmc(2, big)
		if a := h.acks(); len(a) != 0 || len(h.buffered()) != 0 {
			t.Fatalf("copy of a paused packet taken before solRevive: %+v", a)
		}
		time.Sleep(solRevive)
		h.bmc(2, big) // still coming: the BMC saw none of our answers
		if a := h.acks(); len(a) != 1 || a[0].Accepted != 50 {
			t.Fatalf("copy %v after the pause: %+v, want it taken", solRevive, a)
		}
		if got := h.buffered(); !bytes.Equal(got, big) {
			t.Fatalf("delivered %q", got)
		}
	})
}

// TestSOLEngineHoldResumes: a held packet is accepted as soon as Read
// makes room, without waiting for the BMC.
func TestSOLEngineHoldResumes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newEngHarness(t, 100)
		h.bmc(1, patterned(100, 0))
		h.bmc(2, patterned(60, 1))
		h.acks()
		time.Sleep(100 * time.Millisecond)
		h.eng.Read(make([]byte, 60))
		synctest.Wait()
		a := h.acks()
		if len(a) != 1 || a[0].AckSeq != 2 || a[0].Accepted != 60 {
			t.Fatalf("after Read made room: %+v, want packet 2 accepted at once", a)
		}
		if st := h.eng.stats(); st.Pauses != 0 {
			t.Fatalf("%d pauses, want none", st.Pauses)
		}
	})
}

// simLikeBMC is the BMC side as ipmi_sim implements it (OpenIPMI
// lanserv/sol.c): stop-and-wait, resend every second, and after an ACK
// of fewer characters than sent, the rest at once in a new packet.
func TestSOLEngineFlowControlPacketBudget(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var (
			mu      sync.Mutex
			seq     uint8 = 1
			out           = patterned(3600, 0)
			sentOut       = 0 // packets the BMC sent
		)
		var eng *solEngine
		lost := make(chan struct{})
		send := func() { // mu held
			n := min(len(out), 255)
			sentOut++
			if sentOut == 1000 {
				// A packet storm (the old engine answered every packet
				// "0 accepted" at once): end the session, fail below.
				close(lost)
				return
			}
			p := wire.SOLPacket{Seq: seq, Data: out[:n]}.Append(nil)
			go eng.deliver(p)
		}
		eng = newSOLEngine(func(p []byte) error {
			sp, _ := wire.ParseSOL(p)
			mu.Lock()
			defer mu.Unlock()
			if sp.AckSeq == seq && len(out) > 0 {
				out = out[min(int(sp.Accepted), len(out), 255):]
				seq = seq%15 + 1
				if len(out) > 0 {
					send()
				}
			}
			return nil
		}, 32, 100, 500*time.Millisecond, 16)
		done := make(chan struct{})
		go func() {
			defer close(done)
			eng.run(lost, func() error { return errors.New("packet storm: 1000 packets") })
		}()
		mu.Lock()
		send()
		mu.Unlock()
		// A reader that takes 100 bytes every 100 ms, and stalls for 6 s
		// (longer than ipmi_sim's four retries) in the middle.
		got := make([]byte, 0, 3600)
		buf := make([]byte, 100)
		start := time.Now()
		stalled := false
		for len(got) < 3600 {
			if len(got) >= 1800 && !stalled {
				stalled = true
				time.Sleep(6 * time.Second)
			}
			time.Sleep(100 * time.Millisecond)
			n, err := eng.Read(buf)
			if err != nil {
				t.Fatalf("after %d bytes: %v", len(got), err)
			}
			got = append(got, buf[:n]...)
		}
		elapsed := time.Since(start)
		eng.close()
		<-done
		if !bytes.Equal(got, patterned(3600, 0)) {
			t.Fatalf("output differs at byte %d", firstDiff(got, patterned(3600, 0)))
		}
		st := eng.stats()
		mu.Lock()
		defer mu.Unlock()
		// 3600 bytes need at least 15 packets; pausing may cost two
		// packets each way per solPauseHold on top.
		budget := uint64(15 + 2*int(elapsed/solPauseHold) + 4)
		t.Logf("%v: BMC sent %d packets, engine sent %d, stats %+v", elapsed, sentOut, st.PacketsOut, st)
		if uint64(sentOut) > budget || st.PacketsOut > budget {
			t.Fatalf("flow control cost %d packets in and %d out in %v, want at most %d each", sentOut, st.PacketsOut, elapsed, budget)
		}
	})
}

// FuzzSOLEngine feeds arbitrary packets (any sequence, ACK and status
// fields, up to 255 characters and beyond) to the engine, interleaved
// with reads, typed input and the passing of time: it must never panic,
// never answer a packet with more characters than it had, never deliver
// more than it received nor buffer more than BufferSize plus one packet.
func FuzzSOLEngine(f *testing.F) {
	f.Add([]byte{0, 1, 0, 0, 0, 200, 0, 1, 0, 0, 0, 100})
	f.Add([]byte{0, 1, 0, 0, 0x10, 5, 0, 2, 1, 3, 0x0c, 255, 1, 10, 2, 100})
	f.Add([]byte{0, 1, 0, 0, 0, 255, 0, 2, 0, 0, 0, 255, 2, 60, 0, 2, 0, 0, 0, 255, 1, 255})
	f.Fuzz(func(t *testing.T, b []byte) {
		synctest.Test(t, func(t *testing.T) {
			const outMax = 300
			var (
				mu       sync.Mutex
				lastData [16]int // characters of the last packet with each number
				badAck   error
			)
			e := newSOLEngine(func(p []byte) error {
				sp, err := wire.ParseSOL(p)
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					badAck = err
				} else if sp.AckSeq != 0 && int(sp.Accepted) > lastData[sp.AckSeq] {
					badAck = errors.New("answered more characters than the packet had")
				}
				return nil
			}, 32, outMax, 500*time.Millisecond, 2)
			e.onPanic = func(err error) { t.Errorf("engine panicked: %v", err) }
			lost := make(chan struct{})
			done := make(chan struct{})
			go func() { defer close(done); e.run(lost, func() error { return nil }) }()
			next := func() byte {
				if len(b) == 0 {
					return 0
				}
				c := b[0]
				b = b[1:]
				return c
			}
			var received, read int
			buf := make([]byte, 512)
			for len(b) > 0 {
				switch next() % 4 {
				case 0: // a BMC packet
					hdr := [4]byte{next() & 0x0F, next() & 0x0F, next(), next() &^ wire.SOLStatusDeactivated}
					n := int(next())
					if n == 255 {
						n += int(next()) // beyond the accepted count's reach
					}
					pkt := append(hdr[:], patterned(n, next()%3)...)
					mu.Lock()
					lastData[hdr[0]] = min(n, 255)
					mu.Unlock()
					received += n
					e.deliver(pkt)
				case 1: // Read
					k := int(next()) + 1
					e.outMu.Lock()
					avail := e.out.Len()
					e.outMu.Unlock()
					if avail > 0 {
						n, _ := e.Read(buf[:k])
						read += n
					}
				case 2: // time passes
					time.Sleep(time.Duration(next()) * 10 * time.Millisecond)
				case 3: // typed input or a break
					if next()%2 == 0 {
						go e.Write(patterned(int(next()), 1))
					} else if ch, err := e.sendBreak(); err == nil {
						go func() { <-ch }()
					}
				}
				synctest.Wait()
				e.outMu.Lock()
				buffered := e.out.Len()
				e.outMu.Unlock()
				if buffered > outMax+255 {
					t.Fatalf("%d bytes buffered, bound %d plus a packet", buffered, outMax)
				}
			}
			e.close()
			<-done
			mu.Lock()
			defer mu.Unlock()
			if badAck != nil {
				t.Fatal(badAck)
			}
			if st := e.stats(); st.BytesIn > uint64(received) || uint64(read) > st.BytesIn {
				t.Fatalf("received %d, delivered %d, read %d", received, st.BytesIn, read)
			}
		})
	})
}

// modelParams are the BMC behaviours and network faults the model fuzz
// target draws.
type modelParams struct {
	maxOut       int           // characters per BMC packet
	bufSize      int           // engine's BufferSize
	retry        time.Duration // BMC retransmission interval
	waitAfterAck bool          // after a partial/zero ACK, wait retry before sending (bmcsim) rather than at once (ipmi_sim)
	sameSeq      bool          // resend a remainder under the old number (not spec)
	extend       bool          // append new output to a retransmission (ipmi_sim does)
	loss, dup    float64
	status       uint8 // status bits the BMC sets now and then
	acceptIn     int   // characters of our input it takes per packet (0: all)
	stall        time.Duration
	readChunk    int
}

// modelBMC is a BMC that follows the spec (or one of the deviations in
// modelParams): stop-and-wait output that it never gives up on, so that
// every byte of its stream must reach the reader exactly once.
type modelBMC struct {
	p      modelParams
	rnd    *rand.Rand
	stream []byte
	toCon  *link
	in     chan []byte
	stop   chan struct{}
	done   chan struct{}

	mu       sync.Mutex
	avail    int // bytes the host printed so far
	acked    int // bytes acknowledged: where the packet in flight starts
	seq      uint8
	inflight []byte
	flying   bool
	notAt    time.Time // do not send before (waitAfterAck)
	lastIn   uint8
	lastAcc  uint8
	received []byte
}

func (m *modelBMC) run() {
	defer close(m.done)
	timer := time.NewTimer(time.Hour)
	host := time.NewTicker(7 * time.Millisecond)
	defer host.Stop()
	send := func(seq uint8, data []byte) {
		op := uint8(0)
		if m.rnd.IntN(8) == 0 {
			op = m.p.status
		}
		m.toCon.send(wire.SOLPacket{Seq: seq, Op: op, Data: data}.Append(nil))
	}
	trySend := func() {
		if m.flying || m.acked >= m.avail || time.Now().Before(m.notAt) {
			return
		}
		m.seq = m.seq%15 + 1
		m.inflight = m.stream[m.acked : m.acked+min(m.p.maxOut, m.avail-m.acked)]
		m.flying = true
		send(m.seq, m.inflight)
		timer.Reset(m.p.retry)
	}
	for {
		select {
		case <-m.stop:
			return
		case <-host.C:
			m.mu.Lock()
			m.avail = min(len(m.stream), m.avail+1+m.rnd.IntN(400))
			trySend()
			m.mu.Unlock()
		case <-timer.C:
			m.mu.Lock()
			if m.flying {
				if m.p.extend {
					m.inflight = m.stream[m.acked : m.acked+min(m.p.maxOut, m.avail-m.acked)]
				}
				send(m.seq, m.inflight)
				timer.Reset(m.p.retry)
			} else {
				trySend()
			}
			m.mu.Unlock()
		case raw := <-m.in:
			p, err := wire.ParseSOL(raw)
			if err != nil {
				panic(err)
			}
			m.mu.Lock()
			if p.AckSeq != 0 && m.flying && p.AckSeq == m.seq {
				n := min(int(p.Accepted), len(m.inflight))
				m.acked += n
				switch {
				case n == len(m.inflight):
					m.flying = false
				case m.p.sameSeq:
					m.inflight = m.inflight[n:]
					if !m.p.waitAfterAck {
						send(m.seq, m.inflight)
					}
					timer.Reset(m.p.retry)
				default:
					m.flying = false
					if m.p.waitAfterAck {
						m.notAt = time.Now().Add(m.p.retry)
						timer.Reset(m.p.retry)
					}
				}
			}
			if p.Seq != 0 {
				behind := (int(m.lastIn) - int(p.Seq) + 15) % 15
				switch {
				case m.lastIn != 0 && behind == 0:
					m.toCon.send(wire.SOLPacket{AckSeq: p.Seq, Accepted: m.lastAcc}.Append(nil))
				case m.lastIn != 0 && behind <= 7:
					// a late copy
				default:
					n := len(p.Data)
					if m.p.acceptIn > 0 {
						n = min(n, m.p.acceptIn)
					}
					m.received = append(m.received, p.Data[:n]...)
					m.lastIn, m.lastAcc = p.Seq, uint8(n)
					m.toCon.send(wire.SOLPacket{AckSeq: p.Seq, Accepted: uint8(n)}.Append(nil))
				}
			}
			trySend()
			m.mu.Unlock()
		}
	}
}

// FuzzSOLEngineModel runs the engine against a model BMC drawn from the
// fuzz input (packets up to 255 characters and the drawn maximum, spec
// and ipmi_sim-like retransmission, remainders under the old number,
// appended retransmissions, status bits, partial input acceptance),
// through a link that loses and duplicates packets each way and delays
// them less than the BMC's retransmission interval, with a reader that
// stalls and reads in drawn chunks. Every byte of the BMC's stream must
// be read exactly once and in order, and all typed input must reach the
// BMC exactly once.
func FuzzSOLEngineModel(f *testing.F) {
	f.Add(uint64(1), uint64(2), uint16(3000))
	f.Add(uint64(7), uint64(9), uint16(20000))
	f.Add(uint64(42), uint64(0), uint16(255))
	f.Fuzz(func(t *testing.T, seed1, seed2 uint64, size uint16) {
		rnd := rand.New(rand.NewPCG(seed1, seed2))
		p := modelParams{
			maxOut:       1 + rnd.IntN(255),
			bufSize:      1 + rnd.IntN(2000),
			retry:        50*time.Millisecond + time.Duration(rnd.IntN(1500))*time.Millisecond,
			waitAfterAck: rnd.IntN(2) == 0,
			loss:         rnd.Float64() * 0.3,
			dup:          rnd.Float64() * 0.1,
			status:       []uint8{0, wire.SOLStatusBreak, wire.SOLStatusOverrun, wire.SOLStatusUnavailable}[rnd.IntN(4)],
			stall:        time.Duration(rnd.IntN(8000)) * time.Millisecond,
			readChunk:    1 + rnd.IntN(600),
		}
		if rnd.IntN(3) == 0 {
			p.maxOut = 255
		}
		switch rnd.IntN(3) { // the spec, or one deviation (not both: see solEngine)
		case 1:
			p.sameSeq = true
		case 2:
			p.extend = true
		}
		if rnd.IntN(2) == 0 {
			p.acceptIn = 1 + rnd.IntN(40)
		}
		// At most 150 of the BMC's packets: with loss and second-long
		// retransmissions, more would not finish in the virtual deadline.
		total := min(int(size)%20000+1, 150*p.maxOut)
		synctest.Test(t, func(t *testing.T) {
			stream := patterned(total, byte(seed1))
			for i := range stream { // some structure, some repetition
				if rnd.IntN(5) == 0 {
					stream[i] = 'A'
				}
			}
			m := &modelBMC{p: p, rnd: rand.New(rand.NewPCG(seed2, 3)), stream: stream,
				in: make(chan []byte, 256), stop: make(chan struct{}), done: make(chan struct{})}
			m.toCon = &link{rnd: rand.New(rand.NewPCG(seed1, 5)), loss: p.loss, dup: p.dup, reorder: 0.05, jitter: 5 * time.Millisecond}
			toBMC := &link{rnd: rand.New(rand.NewPCG(seed1, 6)), loss: p.loss, dup: p.dup, reorder: 0.05, jitter: 5 * time.Millisecond,
				deliver: func(b []byte) {
					select {
					case m.in <- b:
					default:
					}
				}}
			e := newSOLEngine(func(b []byte) error { toBMC.send(b); return nil }, 32, p.bufSize, 200*time.Millisecond, 1<<20)
			e.onPanic = func(err error) { t.Errorf("engine panicked: %v", err) }
			m.toCon.deliver = e.deliver
			lost := make(chan struct{})
			engDone := make(chan struct{})
			go m.run()
			go func() { defer close(engDone); e.run(lost, func() error { return nil }) }()
			input := patterned(500+rnd.IntN(1500), 2)
			go e.Write(input)

			deadline := time.Now().Add(30 * time.Minute)
			got := make([]byte, 0, total)
			buf := make([]byte, p.readChunk)
			for len(got) < total && time.Now().Before(deadline) {
				if len(got) > total/3 && p.stall > 0 {
					time.Sleep(p.stall)
					p.stall = 0
				}
				n, err := e.Read(buf)
				if err != nil {
					t.Fatalf("read: %v", err)
				}
				got = append(got, buf[:n]...)
				time.Sleep(time.Duration(rnd.IntN(30)) * time.Millisecond)
			}
			for time.Now().Before(deadline) {
				m.mu.Lock()
				n := len(m.received)
				m.mu.Unlock()
				if n >= len(input) {
					break
				}
				time.Sleep(100 * time.Millisecond)
			}
			e.close()
			<-engDone
			close(m.stop)
			<-m.done
			toBMC.close()
			m.toCon.close()
			if !bytes.Equal(got, stream) {
				i := firstDiff(got, stream)
				t.Fatalf("params %+v: read %d of %d bytes, first difference at %d: got %q want %q (stats %+v)",
					p, len(got), total, i, got[i:min(len(got), i+20)], stream[i:min(total, i+20)], e.stats())
			}
			if m.received == nil || !bytes.Equal(m.received, input) {
				t.Fatalf("params %+v: BMC received %d of %d input bytes, first difference at %d", p, len(m.received), len(input), firstDiff(m.received, input))
			}
			if st := e.stats(); st.Gaps != 0 {
				t.Fatalf("params %+v: %d gaps from a BMC that never gives up", p, st.Gaps)
			}
		})
	})
}

// TestSOLReadContext: a read waiting for output gives up when its
// context ends, loses nothing by that, and Close still unblocks a
// plain Read.
func TestSOLReadContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newEngHarness(t, 0)
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		start := time.Now()
		if _, err := h.eng.ReadContext(ctx, make([]byte, 8)); !errors.Is(err, context.DeadlineExceeded) || time.Since(start) != time.Second {
			t.Fatalf("ReadContext: %v after %v, want the deadline after 1s", err, time.Since(start))
		}
		h.bmc(1, []byte("kept"))
		buf := make([]byte, 8)
		if n, err := h.eng.ReadContext(context.Background(), buf); err != nil || string(buf[:n]) != "kept" {
			t.Fatalf("read after a cancelled read: %q, %v", buf[:n], err)
		}
		readErr := make(chan error, 1)
		go func() {
			_, err := h.eng.Read(buf)
			readErr <- err
		}()
		synctest.Wait()
		h.eng.close()
		synctest.Wait()
		select {
		case err := <-readErr:
			if !errors.Is(err, ErrClosed) {
				t.Fatalf("read after Close: %v", err)
			}
		default:
			t.Fatal("Close did not unblock Read")
		}
	})
}

// TestSOLBreakQueueBounded: breaks the BMC does not acknowledge queue up
// to solMaxBreaks, then Break fails at once instead of growing the queue.
func TestSOLBreakQueueBounded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newEngHarness(t, 0) // nobody answers
		var chans []<-chan error
		for range 1 + solMaxBreaks { // one in flight, the rest queued
			ch, err := h.eng.sendBreak()
			if err != nil {
				t.Fatalf("break %d: %v", len(chans)+1, err)
			}
			chans = append(chans, ch)
			synctest.Wait()
		}
		if _, err := h.eng.sendBreak(); !errors.Is(err, errBreakQueue) {
			t.Fatalf("break beyond the bound: %v", err)
		}
		h.eng.close()
		for i, ch := range chans {
			if err := <-ch; err == nil {
				t.Fatalf("break %d succeeded on a closed console", i+1)
			}
		}
	})
}

// newPacedHarness is an engine harness that paces its ACKs by 20 ms on
// a pacer of its own (run inside the test's synctest bubble).
func newPacedHarness(t *testing.T) *engHarness {
	h := newEngHarness(t, 0)
	p := newAckPacer()
	h.eng.mu.Lock()
	h.eng.ackPace, h.eng.pacer = 20*time.Millisecond, p
	h.eng.mu.Unlock()
	t.Cleanup(func() { waitPacerIdle(p) })
	return h
}

// TestSOLEngineAckPaceRules: with pacing, the first packet after a quiet
// spell is answered at once; one that comes sooner than the pace after
// the last ACK is readable at once but answered only when the pace has
// passed; a copy of a packet whose answer waits is answered at once (its
// BMC resends sooner than our pace), and the waiting entry left behind
// sends nothing early for the packet after it.
func TestSOLEngineAckPaceRules(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newPacedHarness(t)
		want := func(when string, seqs ...uint8) {
			t.Helper()
			got := h.acks()
			var gs []uint8
			for _, a := range got {
				gs = append(gs, a.AckSeq)
			}
			if !bytes.Equal(gs, seqs) {
				t.Fatalf("%s: ACKs of %v, want %v", when, gs, seqs)
			}
		}
		h.bmc(1, []byte("a"))
		want("first packet", 1)
		time.Sleep(5 * time.Millisecond)
		h.bmc(2, []byte("bb"))
		if got := string(h.buffered()); got != "abb" {
			t.Fatalf("buffered %q while the ACK waits, want %q", got, "abb")
		}
		want("5 ms later")
		time.Sleep(14 * time.Millisecond)
		synctest.Wait()
		want("19 ms after the last ACK")
		time.Sleep(2 * time.Millisecond)
		synctest.Wait()
		want("21 ms after the last ACK", 2)

		time.Sleep(4 * time.Millisecond)
		h.bmc(3, []byte("c"))
		want("packet 3, soon after")
		time.Sleep(time.Millisecond)
		h.bmc(3, []byte("c")) // the BMC resends before our pace
		want("a copy of packet 3", 3)
		time.Sleep(time.Millisecond)
		h.bmc(4, []byte("d"))
		time.Sleep(17 * time.Millisecond) // past packet 3's entry, before packet 4's due
		synctest.Wait()
		want("packet 4, 17 ms after the copy was answered")
		time.Sleep(4 * time.Millisecond)
		synctest.Wait()
		want("packet 4, 21 ms after", 4)
		if got := string(h.buffered()); got != "abbcd" {
			t.Fatalf("buffered %q, want %q", got, "abbcd")
		}
	})
}

// TestAckPacerLateTurn: entries keep their place on the wheel when the
// pacer's goroutine runs late. Two entries in one slot a wheel's turn
// apart: a turn that reaches the first leaves the second, and a turn late
// by more than the whole wheel still returns exactly the entries due by
// then (before, a slot gave up all it held, so an ACK due later was
// dropped unsent and its console waited for the BMC's resend).
func TestAckPacerLateTurn(t *testing.T) {
	p := newAckPacer()
	a, b, c := &solEngine{}, &solEngine{}, &solEngine{}
	ms := func(k int64) time.Time { return p.epoch.Add(time.Duration(k) * time.Millisecond) }
	p.mu.Lock()
	p.running = true // no goroutine: the test turns the wheel itself
	p.mu.Unlock()
	p.add(a, ms(5))
	p.add(b, ms(5+ackWheelSlots))
	p.add(c, ms(300))
	p.mu.Lock()
	defer p.mu.Unlock()
	if got := p.turnLocked(10, nil); len(got) != 1 || got[0] != a {
		t.Fatalf("turn to 10 ms: %d engines (want only the one due at 5 ms)", len(got))
	}
	if got := p.turnLocked(5+ackWheelSlots+10, nil); len(got) != 1 || got[0] != b {
		t.Fatalf("a turn late by a whole wheel: %d engines (want only the one due at %d ms)", len(got), 5+ackWheelSlots)
	}
	if got := p.turnLocked(299, nil); len(got) != 0 {
		t.Fatalf("turn to 299 ms: %d engines, want none", len(got))
	}
	if got := p.turnLocked(1000, nil); len(got) != 1 || got[0] != c {
		t.Fatalf("turn to 1000 ms: %d engines (want the one due at 300 ms)", len(got))
	}
}

// TestSOLEngineAckPaceOffAfterOverrun: once the BMC reports that its
// buffer overflowed, every packet is answered at once.
func TestSOLEngineAckPaceOffAfterOverrun(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newPacedHarness(t)
		h.bmc(1, []byte("a"))
		time.Sleep(time.Millisecond)
		h.bmc(2, []byte("b"))
		if n := len(h.acks()); n != 1 {
			t.Fatalf("%d ACKs before the overrun, want 1 (the second waits)", n)
		}
		time.Sleep(25 * time.Millisecond)
		synctest.Wait()
		h.acks()
		h.eng.deliver(wire.SOLPacket{Seq: 3, Op: wire.SOLStatusOverrun, Data: []byte("c")}.Append(nil))
		synctest.Wait()
		time.Sleep(time.Millisecond)
		h.bmc(4, []byte("d"))
		if n := len(h.acks()); n != 2 {
			t.Fatalf("%d ACKs after the overrun report, want 2 (each at once)", n)
		}
	})
}
