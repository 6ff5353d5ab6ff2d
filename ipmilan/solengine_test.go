package ipmilan

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/solgate/solgate/ipmilan/internal/wire"
)

// link carries SOL payloads one way with seeded loss, duplication and
// reordering (random delays). It runs inside a synctest bubble.
type link struct {
	mu                 sync.Mutex
	rnd                *rand.Rand
	loss, dup, reorder float64
	// jitter bounds the extra delay of a reordered packet (default 20ms).
	jitter              time.Duration
	deliver             func([]byte)
	closed              bool
	wg                  sync.WaitGroup
	sent, dropped, dups int
}

func (l *link) send(p []byte) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return
	}
	l.sent++
	if l.rnd.Float64() < l.loss {
		l.dropped++
		return
	}
	n := 1
	if l.rnd.Float64() < l.dup {
		n, l.dups = 2, l.dups+1
	}
	for range n {
		delay := time.Millisecond
		if l.rnd.Float64() < l.reorder {
			j := l.jitter
			if j <= 0 {
				j = 20 * time.Millisecond
			}
			delay += time.Duration(l.rnd.Int64N(int64(j)))
		}
		cp := append([]byte(nil), p...)
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			time.Sleep(delay)
			l.mu.Lock()
			closed := l.closed
			l.mu.Unlock()
			if !closed {
				l.deliver(cp)
			}
		}()
	}
}

func (l *link) close() {
	l.mu.Lock()
	l.closed = true
	l.mu.Unlock()
	l.wg.Wait()
}

// fakeBMC is the BMC side of SOL, stop-and-wait like real BMCs: it sends
// the host's output one packet at a time, retransmitting each every
// second until acknowledged, and acknowledges the console's input.
type fakeBMC struct {
	toConsole *link
	in        chan []byte
	stop      chan struct{}
	done      chan struct{}

	mu       sync.Mutex
	output   []byte // host output still to send
	received []byte // console input accepted
	// acceptMax limits characters accepted per input packet (0: all).
	acceptMax int
	// maxOut limits characters per output packet (0: 255).
	maxOut int
	// nackFirst NACKs this many input packets before accepting.
	nackFirst int
	// status is ORed into every packet sent (e.g. deactivating).
	status uint8
	breaks int
}

func newFakeBMC(toConsole *link) *fakeBMC {
	return &fakeBMC{toConsole: toConsole, in: make(chan []byte, 256), stop: make(chan struct{}), done: make(chan struct{})}
}

func (b *fakeBMC) fromConsole(p []byte) {
	select {
	case b.in <- p:
	default:
	}
}

func (b *fakeBMC) emit(data []byte) {
	b.mu.Lock()
	b.output = append(b.output, data...)
	b.mu.Unlock()
}

func (b *fakeBMC) run() {
	defer close(b.done)
	var (
		seq, lastIn uint8
		inflight    []byte
		timer       = time.NewTimer(time.Hour)
		poll        = time.NewTicker(5 * time.Millisecond)
	)
	defer poll.Stop()
	sendNext := func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		if inflight != nil || len(b.output) == 0 {
			return
		}
		n := min(len(b.output), 255)
		if b.maxOut > 0 {
			n = min(n, b.maxOut)
		}
		inflight = b.output[:n]
		seq = seq%15 + 1
		b.toConsole.send(wire.SOLPacket{Seq: seq, Op: b.status, Data: inflight}.Append(nil))
		timer.Reset(time.Second)
	}
	for {
		select {
		case <-b.stop:
			return
		case <-poll.C:
			sendNext()
		case <-timer.C:
			b.mu.Lock()
			if inflight != nil {
				b.toConsole.send(wire.SOLPacket{Seq: seq, Op: b.status, Data: inflight}.Append(nil))
				timer.Reset(time.Second)
			}
			b.mu.Unlock()
		case raw := <-b.in:
			p, err := wire.ParseSOL(raw)
			if err != nil {
				panic(err)
			}
			b.mu.Lock()
			if p.AckSeq != 0 && p.AckSeq == seq && inflight != nil {
				n := min(int(p.Accepted), len(inflight))
				b.output = b.output[n:]
				inflight = nil
				timer.Stop()
			}
			if p.Seq != 0 {
				ack := wire.SOLPacket{AckSeq: p.Seq, Op: b.status}
				behind := (int(lastIn) - int(p.Seq) + 15) % 15
				switch {
				case lastIn != 0 && behind == 0:
					ack.Accepted = uint8(len(p.Data)) // duplicate: re-ACK, do not deliver again
				case lastIn != 0 && behind <= 7:
					b.mu.Unlock()
					continue // a late copy of an old packet
				case b.nackFirst > 0:
					b.nackFirst--
					ack.Op |= wire.SOLNack
				default:
					n := len(p.Data)
					if b.acceptMax > 0 {
						n = min(n, b.acceptMax)
					}
					if p.Op&wire.SOLOpBreak != 0 {
						b.breaks++
					}
					b.received = append(b.received, p.Data[:n]...)
					ack.Accepted = uint8(n)
					lastIn = p.Seq
				}
				b.toConsole.send(ack.Append(nil))
			}
			b.mu.Unlock()
			sendNext()
		}
	}
}

type solRig struct {
	eng      *solEngine
	bmc      *fakeBMC
	toBMC    *link
	toCon    *link
	lost     chan struct{}
	lostErr  error
	engDone  chan struct{}
	shutdown sync.Once
}

func newSOLRig(seed uint64, loss, dup, reorder float64, outMax int) *solRig {
	return newSOLRigPaced(seed, loss, dup, reorder, outMax, 0)
}

// newSOLRigPaced is newSOLRig with acknowledgement pacing (0: none).
func newSOLRigPaced(seed uint64, loss, dup, reorder float64, outMax int, pace time.Duration) *solRig {
	r := &solRig{lost: make(chan struct{}), engDone: make(chan struct{})}
	r.toCon = &link{rnd: rand.New(rand.NewPCG(seed, 1)), loss: loss, dup: dup, reorder: reorder}
	r.toBMC = &link{rnd: rand.New(rand.NewPCG(seed, 2)), loss: loss, dup: dup, reorder: reorder}
	r.bmc = newFakeBMC(r.toCon)
	r.eng = newSOLEngine(func(p []byte) error { r.toBMC.send(p); return nil }, 200, outMax, 500*time.Millisecond, 16)
	r.eng.ackPace, r.eng.pacer = pace, newAckPacer() // a pacer of this bubble
	r.toCon.deliver = r.eng.deliver
	r.toBMC.deliver = r.bmc.fromConsole
	go r.bmc.run()
	go func() {
		defer close(r.engDone)
		r.eng.run(r.lost, func() error { return r.lostErr })
	}()
	return r
}

// readWant reads len(want) bytes from the engine and fails unless they
// are want.
func (r *solRig) readWant(t *testing.T, want []byte) {
	t.Helper()
	got := make([]byte, len(want))
	if _, err := io.ReadFull(r.eng, got); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("output differs at byte %d", firstDiff(got, want))
	}
}

// bmcPackets is how many packets the BMC has sent the console.
func (r *solRig) bmcPackets() int {
	r.toCon.mu.Lock()
	defer r.toCon.mu.Unlock()
	return r.toCon.sent
}

func (r *solRig) close() {
	r.shutdown.Do(func() {
		r.eng.close()
		waitPacerIdle(r.eng.pacer)
		close(r.bmc.stop)
		<-r.bmc.done
		r.toBMC.close()
		r.toCon.close()
	})
}

// waitPacerIdle waits until p's goroutine has stopped: the entries of
// closed engines drain within a pace.
func waitPacerIdle(p *ackPacer) {
	for {
		p.mu.Lock()
		running := p.running
		p.mu.Unlock()
		if !running {
			return
		}
		time.Sleep(time.Millisecond)
	}
}

func numbered(lines int) []byte {
	var b bytes.Buffer
	for i := range lines {
		fmt.Fprintf(&b, "%08d the quick brown fox \x1b[32mjumps\x1b[0m\r\n", i)
	}
	return b.Bytes()
}

func TestSOLEngineLossyLink(t *testing.T) {
	for _, tc := range []struct {
		name               string
		loss, dup, reorder float64
		outMax             int
		pace               time.Duration
	}{
		{"clean", 0, 0, 0, 0, 0},
		{"10% loss, dup, reorder", 0.10, 0.05, 0.05, 0, 0},
		{"lossy and slow reader", 0.10, 0.05, 0.05, 700, 0},
		{"lossy, paced ACKs", 0.10, 0.05, 0.05, 0, solDefaultAckPace},
		{"lossy, slow reader, paced ACKs", 0.10, 0.05, 0.05, 700, solDefaultAckPace},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				r := newSOLRigPaced(42, tc.loss, tc.dup, tc.reorder, tc.outMax, tc.pace)
				defer r.close()
				want := numbered(3000) // ~150 kB
				r.bmc.emit(want)
				input := bytes.Repeat([]byte("typed-0123456789\r"), 400)
				go r.eng.Write(input)
				r.readWant(t, want)
				for deadline := time.Now().Add(time.Minute); ; time.Sleep(10 * time.Millisecond) {
					r.bmc.mu.Lock()
					n := len(r.bmc.received)
					r.bmc.mu.Unlock()
					if n >= len(input) || time.Now().After(deadline) {
						break
					}
				}
				r.bmc.mu.Lock()
				recv := append([]byte(nil), r.bmc.received...)
				r.bmc.mu.Unlock()
				if !bytes.Equal(recv, input) {
					t.Fatalf("input differs: got %d bytes, want %d (first diff %d)", len(recv), len(input), firstDiff(recv, input))
				}
				st := r.eng.stats()
				if tc.loss > 0 && (st.Retransmits == 0 || st.Duplicates == 0) {
					t.Errorf("a lossy link should cause retransmits and duplicates: %+v", st)
				}
				if st.Gaps != 0 || st.InputDropped != 0 {
					t.Errorf("lost data: %+v", st)
				}
			})
		})
	}
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

func TestSOLEnginePartialAndNACK(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newSOLRig(7, 0, 0, 0, 0)
		defer r.close()
		r.bmc.mu.Lock()
		r.bmc.acceptMax = 7
		r.bmc.nackFirst = 3
		r.bmc.mu.Unlock()
		input := []byte("a line longer than seven characters, accepted piecemeal\r")
		if _, err := r.eng.Write(input); err != nil {
			t.Fatal(err)
		}
		time.Sleep(30 * time.Second)
		synctest.Wait()
		r.bmc.mu.Lock()
		got := string(r.bmc.received)
		r.bmc.mu.Unlock()
		if got != string(input) {
			t.Fatalf("BMC received %q", got)
		}
		if st := r.eng.stats(); st.NACKs != 3 || st.BytesOut != uint64(len(input)) {
			t.Fatalf("stats %+v: want 3 NACKs and all bytes out", st)
		}
	})
}

func TestSOLEngineBreak(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newSOLRig(9, 0, 0, 0, 0)
		defer r.close()
		r.eng.Write([]byte("before"))
		ch, err := r.eng.sendBreak()
		if err != nil {
			t.Fatal(err)
		}
		if err := <-ch; err != nil {
			t.Fatal(err)
		}
		r.bmc.mu.Lock()
		defer r.bmc.mu.Unlock()
		if string(r.bmc.received) != "before" || r.bmc.breaks != 1 {
			t.Fatalf("received %q, breaks %d: want the input first, then one break", r.bmc.received, r.bmc.breaks)
		}
	})
}

func TestSOLEngineInputGivenUp(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newSOLRig(3, 1.0, 0, 0, 0) // nothing gets through
		defer r.close()
		r.eng.Write([]byte("lost"))
		time.Sleep(10 * time.Second) // 17 tries at 500ms
		synctest.Wait()
		ev := drain(r.eng.events)
		if st := r.eng.stats(); st.InputDropped != 4 || st.Retransmits != 16 {
			t.Fatalf("stats %+v: want 16 retransmits then 4 bytes dropped", st)
		}
		if !hasEvent(ev, SOLInputDropped) {
			t.Fatalf("events %v: want input dropped", ev)
		}
	})
}

func TestSOLEngineDeactivated(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newSOLRig(5, 0, 0, 0, 0)
		defer r.close()
		r.bmc.mu.Lock()
		r.bmc.status = wire.SOLStatusDeactivated
		r.bmc.mu.Unlock()
		r.bmc.emit([]byte("last words"))
		got, err := io.ReadAll(r.eng)
		if !errors.Is(err, ErrSOLDeactivated) {
			t.Fatalf("read error %v, want ErrSOLDeactivated", err)
		}
		if string(got) != "last words" {
			t.Fatalf("output before deactivation: %q", got)
		}
		if ev := drain(r.eng.events); !hasEvent(ev, SOLDeactivated) {
			t.Fatalf("events %v", ev)
		}
	})
}

func TestSOLEngineSessionLost(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newSOLRig(6, 0, 0, 0, 0)
		defer r.close()
		r.lostErr = ErrNoAnswer
		close(r.lost)
		<-r.engDone
		if _, err := r.eng.Read(make([]byte, 1)); !errors.Is(err, ErrClosed) {
			t.Fatalf("read after session loss: %v", err)
		}
		if _, err := r.eng.Write([]byte("x")); err == nil {
			t.Fatal("write after session loss succeeded")
		}
		if ev := drain(r.eng.events); !hasEvent(ev, SOLSessionLost) {
			t.Fatalf("events %v", ev)
		}
	})
}

func drain(ch <-chan SOLEvent) []SOLEvent {
	var out []SOLEvent
	for {
		select {
		case e, ok := <-ch:
			if !ok {
				return out
			}
			out = append(out, e)
		default:
			return out
		}
	}
}

func hasEvent(evs []SOLEvent, k SOLEventKind) bool {
	for _, e := range evs {
		if e.Kind == k {
			return true
		}
	}
	return false
}

// TestSOLEngineAckPace: a console printing steadily (115 characters every
// 10 ms, about 115200 baud) while nobody types arrives in about half the
// packets when ACKs are paced at 20 ms (the fake BMC, like a real one,
// sends what gathered meanwhile in its next packet), every byte in order
// and readable at once; while someone types, every packet is answered at
// once (as many packets as without pacing).
func TestSOLEngineAckPace(t *testing.T) {
	run := func(t *testing.T, pace time.Duration, typing bool) (packets int) {
		synctest.Test(t, func(t *testing.T) {
			r := newSOLRigPaced(9, 0, 0, 0, 0, pace)
			defer r.close()
			var want []byte
			chunk := numbered(3)[:115]
			emitted := make(chan struct{})
			defer func() { <-emitted }()
			go func() {
				defer close(emitted)
				for i := range 200 {
					r.bmc.emit(chunk)
					if typing && i%10 == 0 {
						r.eng.Write([]byte("k"))
					}
					time.Sleep(10 * time.Millisecond)
				}
			}()
			for range 200 {
				want = append(want, chunk...)
			}
			r.readWant(t, want)
			// Nothing waits in the engine: the last bytes were readable
			// as soon as their packet came, not a pace later.
			packets = r.bmcPackets()
			if st := r.eng.stats(); st.Gaps != 0 || st.Duplicates != 0 {
				t.Errorf("paced %v: %+v", pace, st)
			}
		})
		return packets
	}
	plain := run(t, 0, false)
	paced := run(t, solDefaultAckPace, false)
	typed := run(t, solDefaultAckPace, true)
	t.Logf("BMC packets for 23 kB: %d unpaced, %d paced, %d paced while typing", plain, paced, typed)
	if paced > plain*6/10 {
		t.Errorf("paced ACKs: %d BMC packets, unpaced %d: want at most 60%%", paced, plain)
	}
	if typed < plain*9/10 {
		t.Errorf("while typing: %d BMC packets, unpaced %d: pacing slowed an interactive console", typed, plain)
	}
}

// TestSOLEngineAckPaceNeverSlows: a BMC with a backlog is never slowed by
// the pacing, whether it sends full packets or (saying 255) only 100
// characters per packet: 60 kB arrive within 150 ms of the time they take
// with every packet answered at once.
func TestSOLEngineAckPaceNeverSlows(t *testing.T) {
	for _, maxOut := range []int{0, 100} {
		took := func(pace time.Duration) (d time.Duration) {
			synctest.Test(t, func(t *testing.T) {
				r := newSOLRigPaced(5, 0, 0, 0, 0, pace)
				defer r.close()
				r.bmc.mu.Lock()
				r.bmc.maxOut = maxOut
				r.bmc.mu.Unlock()
				want := numbered(1500) // about 60 kB, all waiting at once
				t0 := time.Now()
				r.bmc.emit(want)
				r.readWant(t, want)
				d = time.Since(t0)
			})
			return d
		}
		plain, paced := took(0), took(solDefaultAckPace)
		t.Logf("BMC sending at most %d per packet: %v unpaced, %v paced", maxOut, plain, paced)
		if paced > plain+150*time.Millisecond {
			t.Errorf("BMC sending at most %d per packet: %v with pacing, %v without: pacing slowed a backlog", maxOut, paced, plain)
		}
	}
}

// TestSOLEngineAckPaceFullByChance: a console printing at about 115200
// baud whose paced packets now and then gather a little more than usual
// and come full (here 20 extra characters every 70 ms) keeps its pace:
// such a packet is answered after the pace like the others, not at once,
// which would have the BMC send two short packets after it.
func TestSOLEngineAckPaceFullByChance(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newSOLRigPaced(11, 0, 0, 0, 0, solDefaultAckPace)
		defer r.close()
		text := numbered(400)
		var chunks [][]byte // 58 characters every 5 ms (11.6 a millisecond), 78 every 14th
		for off, i := 0, 0; i < 400; i++ {
			n := 58
			if i%14 == 0 {
				n += 20
			}
			chunks = append(chunks, text[off:off+n])
			off += n
		}
		want := bytes.Join(chunks, nil)
		emitted := make(chan struct{})
		defer func() { <-emitted }()
		go func() {
			defer close(emitted)
			for _, c := range chunks {
				r.bmc.emit(c)
				time.Sleep(5 * time.Millisecond)
			}
		}()
		r.readWant(t, want)
		packets := r.bmcPackets()
		per := float64(len(want)) / float64(packets)
		t.Logf("%d characters in %d BMC packets: %.0f each", len(want), packets, per)
		if per < 225 {
			t.Errorf("%.0f characters per packet, want at least 225 (20 ms of output): full packets answered at once broke the pace", per)
		}
	})
}
