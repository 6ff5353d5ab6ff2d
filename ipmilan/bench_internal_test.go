package ipmilan

import (
	"log/slog"
	"testing"
	"time"

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
