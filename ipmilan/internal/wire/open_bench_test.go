package wire

import "testing"

// BenchmarkOpenSOL is the integrity check and decryption of one SOL
// packet of 255 characters, as a console's reader does it per packet.
func BenchmarkOpenSOL(b *testing.B) {
	for _, id := range []uint8{3, 17} {
		b.Run(map[uint8]string{3: "suite3", 17: "suite17"}[id], func(b *testing.B) {
			suite, _ := LookupCipherSuite(id)
			sik := make([]byte, 32)
			keys := SessionKeys(suite, sik, nil)
			bmc := SessionKeys(suite, sik, nil)
			data := make([]byte, 255)
			sol := SOLPacket{Seq: 1, Data: data}.Append(nil)
			pkt, err := bmc.Seal(RMCPHeader{Seq: RMCPSeqNoACK, Class: ClassIPMI}.Append(nil), Packet20{Type: PayloadSOL, SessionID: 2, Seq: 1}, sol)
			if err != nil {
				b.Fatal(err)
			}
			raw := pkt[4:]
			dst := make([]byte, 0, 512)
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			for b.Loop() {
				p, err := ParsePacket20(raw)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := keys.OpenTo(dst, raw, p); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkSealACK is the sealing of one SOL acknowledgement.
func BenchmarkSealACK(b *testing.B) {
	suite, _ := LookupCipherSuite(17)
	keys := SessionKeys(suite, make([]byte, 32), nil)
	ack := SOLPacket{AckSeq: 1, Accepted: 255}.Append(nil)
	buf := make([]byte, 0, 512)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := keys.Seal(buf[:0], Packet20{Type: PayloadSOL, SessionID: 2, Seq: 1}, ack); err != nil {
			b.Fatal(err)
		}
	}
}
