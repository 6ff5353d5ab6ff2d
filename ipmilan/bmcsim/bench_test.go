package bmcsim

import (
	"testing"
	"time"

	"github.com/solgate/solgate/ipmilan/internal/wire"
)

// BenchmarkHandshake20 measures complete RMCP+ session setups (Open
// Session, RAKP 1-4, Close Session) through the packet handler; the
// in-test client's share of the HMAC work is included.
func BenchmarkHandshake20(b *testing.B) {
	for _, suite := range []uint8{3, 17} {
		b.Run(suiteName(suite), func(b *testing.B) {
			bmc := newTestBMC(nil)
			c := newTestClient(b, direct(bmc))
			for b.Loop() {
				c.mustOpen20(hsOpts{suite: suite, user: "admin", pass: "secret"})
				c.mustCmd20(wire.NetFnApp, wire.CmdCloseSession, le32(c.sidc), wire.CCOK)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "handshakes/s")
		})
	}
}

// BenchmarkCommand20 measures Get Chassis Status inside an AES session.
func BenchmarkCommand20(b *testing.B) {
	bmc := newTestBMC(nil)
	c := newTestClient(b, direct(bmc))
	c.mustOpen20(hsOpts{suite: 17, user: "admin", pass: "secret"})
	for b.Loop() {
		c.mustCmd20(wire.NetFnChassis, wire.CmdGetChassisStatus, nil, wire.CCOK)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "cmds/s")
}

// BenchmarkServeUDP measures sequential round trips over loopback UDP:
// a whole status check (handshake, Get Chassis Status, Close Session).
func BenchmarkServeUDP(b *testing.B) {
	bmc := newTestBMC(nil)
	u := serveUDP(b, bmc)
	c := newTestClient(b, func(p []byte) [][]byte {
		u.pc.WriteTo(p, u.to)
		u.pc.SetReadDeadline(time.Now().Add(time.Second))
		buf := make([]byte, 2048)
		n, _, err := u.pc.ReadFrom(buf)
		if err != nil {
			return nil
		}
		return [][]byte{buf[:n]}
	})
	for b.Loop() {
		c.mustOpen20(hsOpts{suite: 17, user: "admin", pass: "secret"})
		c.mustCmd20(wire.NetFnChassis, wire.CmdGetChassisStatus, nil, wire.CCOK)
		c.mustCmd20(wire.NetFnApp, wire.CmdCloseSession, le32(c.sidc), wire.CCOK)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "status/s")
}
