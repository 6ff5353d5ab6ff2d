package ipmilan

import (
	"context"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/solgate/solgate/ipmilan/bmcsim"
	"github.com/solgate/solgate/ipmilan/internal/wire"
)

// ackConn is a Session socket for benchmarks: writes (our ACKs) signal
// acked; nothing is ever read.
type ackConn struct{ acked chan struct{} }

func (c ackConn) Read([]byte) (int, error) { select {} }
func (c ackConn) Write(b []byte) (int, error) {
	c.acked <- struct{}{}
	return len(b), nil
}
func (c ackConn) Close() error { return nil }

// BenchmarkSOLReceive is the console output hot path of one session:
// an authenticated (and, for suites 3 and 17, encrypted) SOL packet of 255
// characters goes through the reader (checks, integrity, decryption,
// window), the engine (buffer, acknowledgement) and back out sealed, and
// a reader takes the bytes. Run with -benchmem: B/op over 255 is what the
// daemon allocates per console byte.
func BenchmarkSOLReceive(b *testing.B) {
	for _, id := range []uint8{3, 17} {
		b.Run(map[uint8]string{3: "suite3", 17: "suite17"}[id], func(b *testing.B) {
			suite, _ := wire.LookupCipherSuite(id)
			sik := make([]byte, 32)
			keys := wire.SessionKeys(suite, sik, nil)
			bmcKeys := wire.SessionKeys(suite, sik, nil)
			conn := ackConn{acked: make(chan struct{}, 1)}
			s := &Session{cfg: Config{Addr: "127.0.0.1:623"}, conn: conn, v2: true, suite: suite, keys: keys,
				phase: phaseActive, sid: 1, sidm: 2, outSeq: 1, calls: map[uint8]*call{}, done: make(chan struct{})}
			s.log = discardLogger()
			s.inAuth.reset(1)
			eng := newSOLEngine(func(p []byte) error { return s.sendPayload(wire.PayloadSOL, p) }, 32, 0, time.Second, 16)
			s.setPayloadHandler(func(t wire.PayloadType, p []byte) { eng.deliver(p) })
			lost := make(chan struct{})
			go eng.run(lost, func() error { return nil })
			defer eng.close()
			go func() {
				buf := make([]byte, 4096)
				for {
					if _, err := eng.Read(buf); err != nil {
						return
					}
				}
			}()
			// The BMC's packets, sealed beforehand: 4095 of them (a
			// multiple of 15, so SOL numbers run on across the wrap).
			const batch = 4095
			data := make([]byte, 255)
			for i := range data {
				data[i] = byte('a' + i%26)
			}
			pkts := make([][]byte, batch)
			for i := range pkts {
				sol := wire.SOLPacket{Seq: uint8(i%15 + 1), Data: data}.Append(nil)
				p, err := bmcKeys.Seal(wire.RMCPHeader{Seq: wire.RMCPSeqNoACK, Class: wire.ClassIPMI}.Append(nil),
					wire.Packet20{Type: wire.PayloadSOL, SessionID: 2, Seq: uint32(i + 1)}, sol)
				if err != nil {
					b.Fatal(err)
				}
				pkts[i] = p
			}
			raw := make([]byte, 2048)
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				if i%batch == 0 && i > 0 {
					s.mu.Lock()
					s.inAuth.reset(1)
					s.mu.Unlock()
				}
				n := copy(raw, pkts[i%batch]) // the reader's buffer is reused too
				s.handle(raw[:n])
				<-conn.acked
			}
			b.StopTimer()
			if st := eng.stats(); st.BytesIn != uint64(b.N)*255 {
				b.Fatalf("delivered %d bytes of %d", st.BytesIn, b.N*255)
			}
		})
	}
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// BenchmarkKeepAlive is one SOL keepalive (Get Payload Instance Info,
// which also checks who owns the payload) as the keepalive timer runs
// it: on a goroutine of its own, over loopback UDP to a simulated BMC in
// this process. The op includes the BMC's side.
func BenchmarkKeepAlive(b *testing.B) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	bmc := bmcsim.New(bmcsim.Config{Users: []bmcsim.User{{Name: "admin", Password: "secret"}}, SOL: bmcsim.SOLConfig{NoBootText: true}})
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan struct{})
	go func() { defer close(served); bmc.Serve(ctx, pc) }()
	defer func() { cancel(); pc.Close(); <-served }()
	c, err := DialSOL(ctx, Config{Addr: pc.LocalAddr().String(), User: "admin", Password: Secret("secret"), KeepAlive: -1}, SOLOptions{})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	s := c.Session()
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cpuTime()
	for range b.N {
		done := make(chan bool)
		go func() {
			_, ok := s.keepAliveRun()
			done <- ok
		}()
		if !<-done {
			b.Fatal(s.Err())
		}
	}
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
}

// cpuTime is the CPU time this process used so far (both sides of a
// benchmark over loopback: wall time per op is mostly waiting).
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkSOLStream is console output over loopback UDP as a busy
// console server sees it: 64 consoles at once, each fed by a stand-in BMC
// (stop-and-wait, like real BMCs) that sends sealed SOL packets of 115
// characters (what bmcsim sends at 115200 baud) and waits for each
// acknowledgement; each session's reader takes them through its socket,
// checks, decrypts, buffers, acknowledges; a consumer per console reads
// the bytes as the console manager does. cpu-ns/op is the process's CPU
// per packet, both sides (the BMC's part is the same whatever the
// console's code); with 64 streams the process is busy, as the daemon
// is, so little of it is the scheduler spinning for work.
//
// BenchmarkSOLStream reads each socket on a goroutine of its own
// (readLoop, as on other systems than Linux); BenchmarkSOLStreamPolled
// (Linux) through the shared pollers, as Dial does there.
func BenchmarkSOLStream(b *testing.B) { benchSOLStream(b, readLoopStart) }

// readLoopStart opens s's socket as a net.UDPConn read by readLoop.
func readLoopStart(b *testing.B, s *Session, bmc *net.UDPAddr) *net.UDPAddr {
	conn, err := net.DialUDP("udp", nil, bmc)
	if err != nil {
		b.Fatal(err)
	}
	s.conn = conn
	s.wg.Add(1)
	go s.readLoop()
	return conn.LocalAddr().(*net.UDPAddr)
}

func benchSOLStream(b *testing.B, start func(*testing.B, *Session, *net.UDPAddr) *net.UDPAddr) {
	const streams = 64
	var ss [streams]*solStream
	for i := range ss {
		ss[i] = newSOLStream(b, start)
	}
	b.SetBytes(int64(len(ss[0].data)))
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cpuTime()
	var wg sync.WaitGroup
	for i, st := range ss {
		n := b.N / streams
		if i < b.N%streams {
			n++
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			st.pump(b, n)
		}()
	}
	wg.Wait()
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
	b.StopTimer()
	for _, st := range ss {
		st.close(b)
	}
}

// solStream is one console of BenchmarkSOLStream.
type solStream struct {
	bmc  *net.UDPConn
	to   netip.AddrPort
	s    *Session
	eng  *solEngine
	data []byte
	pkts [][]byte
	sent int
	got  atomic.Uint64
}

func newSOLStream(b *testing.B, start func(*testing.B, *Session, *net.UDPAddr) *net.UDPAddr) *solStream {
	suite, _ := wire.LookupCipherSuite(17)
	sik := make([]byte, 32)
	bmcSock, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		b.Fatal(err)
	}
	s := &Session{cfg: Config{Addr: bmcSock.LocalAddr().String()}, v2: true, suite: suite, keys: wire.SessionKeys(suite, sik, nil),
		phase: phaseActive, sid: 1, sidm: 2, outSeq: 1, calls: map[uint8]*call{}, done: make(chan struct{})}
	s.log = discardLogger()
	s.inAuth.reset(1)
	eng := newSOLEngine(func(p []byte) error { return s.sendPayload(wire.PayloadSOL, p) }, 32, 0, time.Second, 16)
	s.setPayloadHandler(func(t wire.PayloadType, p []byte) { eng.deliver(p) })
	local := start(b, s, bmcSock.LocalAddr().(*net.UDPAddr))
	go eng.run(make(chan struct{}), func() error { return nil })
	st := &solStream{bmc: bmcSock, to: local.AddrPort(), s: s, eng: eng, data: make([]byte, 115)}
	go func() {
		buf := make([]byte, 1024)
		for {
			n, err := eng.Read(buf)
			if err != nil {
				return
			}
			st.got.Add(uint64(n))
		}
	}()
	for i := range st.data {
		st.data[i] = byte('a' + i%26)
	}
	// 4095 packets: a multiple of 15, so SOL numbers run on across the
	// wrap.
	bmcKeys := wire.SessionKeys(suite, sik, nil)
	st.pkts = make([][]byte, 4095)
	for i := range st.pkts {
		sol := wire.SOLPacket{Seq: uint8(i%15 + 1), Data: st.data}.Append(nil)
		p, err := bmcKeys.Seal(wire.RMCPHeader{Seq: wire.RMCPSeqNoACK, Class: wire.ClassIPMI}.Append(nil),
			wire.Packet20{Type: wire.PayloadSOL, SessionID: 2, Seq: uint32(i + 1)}, sol)
		if err != nil {
			b.Fatal(err)
		}
		st.pkts[i] = p
	}
	return st
}

// pump sends n packets, each after the acknowledgement of the one before.
func (st *solStream) pump(b *testing.B, n int) {
	ack := make([]byte, 512)
	for range n {
		k := st.sent % len(st.pkts)
		if k == 0 && st.sent > 0 {
			st.s.mu.Lock()
			st.s.inAuth.reset(1)
			st.s.mu.Unlock()
		}
		st.sent++
		if _, err := st.bmc.WriteToUDPAddrPort(st.pkts[k], st.to); err != nil {
			b.Error(err)
			return
		}
		if _, _, err := st.bmc.ReadFromUDPAddrPort(ack); err != nil {
			b.Error(err)
			return
		}
	}
}

func (st *solStream) close(b *testing.B) {
	want := uint64(st.sent) * uint64(len(st.data))
	for deadline := time.Now().Add(10 * time.Second); st.got.Load() < want && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	if got := st.got.Load(); got != want {
		b.Errorf("delivered %d bytes of %d", got, want)
	}
	st.eng.close()
	st.s.shutdown(ErrClosed)
	st.bmc.Close()
}
