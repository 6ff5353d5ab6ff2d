package test

import (
	"io"
	"net"
	"testing"
	"time"

	"github.com/solgate/solgate/logstore/syslog"
)

// TestBenchSyslogShipperAlone measures the shipper against a TCP sink that
// discards: what the shipper itself can do, without rsyslog.
func TestBenchSyslogShipperAlone(t *testing.T) {
	benchGate(t)
	consoles := envInt(t, "SOLGATE_SYSLOG_CONSOLES", 200)
	lines := envInt(t, "SOLGATE_SYSLOG_LINES", 1000)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go io.Copy(io.Discard, c)
		}
	}()
	store := fillStore(t, t.TempDir(), consoles, lines)
	total := consoles * lines
	sh := syslog.NewShipper(store, t.TempDir(), nil)
	defer sh.Close()
	cpu0, t0 := cpuTime(), time.Now()
	if err := sh.Apply([]syslog.Target{{Network: "tcp", Address: l.Addr().String(), Facility: 16, Backfill: true}}); err != nil {
		t.Fatal(err)
	}
	for sh.Stats()[0].Sent < int64(total) {
		time.Sleep(10 * time.Millisecond)
	}
	el, cpu := time.Since(t0), cpuTime()-cpu0
	rate := float64(total) / el.Seconds()
	t.Logf("shipper alone (tcp sink): %d lines in %v: %.0f lines/s, %.2f cores per 10,000 lines/s", total, el.Round(time.Millisecond), rate, cpu.Seconds()/el.Seconds()/(rate/10000))
}
