package test

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"testing"
	"time"
)

// SOL benchmarks of solgate sol against the console clients people use
// today (ipmitool, FreeIPMI ipmiconsole), all against OpenIPMI's ipmi_sim:
// a fresh sim (startIPMISimSOL) for every client (and every setup round), because ipmi_sim
// keeps SOL sequence state across sessions and a wedged or stolen payload
// would spoil the next client's figures. Each benchmark does a fixed
// amount of work whatever b.N is and reports its figures as metrics; KB
// is 1000 bytes. ipmi_sim's SOL is stop-and-wait (one packet of at most
// 255 characters in flight), so throughput here measures the round trip
// through client and sim more than anything a client could win.

const (
	solStreamLines = 24576 // of solStreamLine bytes each: 1.5 MiB
	solStreamLine  = 64
	solEchoKeys    = 200
	solSetupRounds = 10
)

// solStream is the node's sequence-numbered output: fixed-length lines
// whose number makes any loss, duplication or reordering visible.
func solStream() []byte {
	var b bytes.Buffer
	b.Grow(solStreamLines * solStreamLine)
	const filler = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	for i := range solStreamLines {
		fmt.Fprintf(&b, "%08d %s\r\n", i, filler[:solStreamLine-11])
	}
	return b.Bytes()
}

// streamDiff describes where got departs from want.
func streamDiff(got, want []byte) string {
	i := 0
	for i < len(got) && i < len(want) && got[i] == want[i] {
		i++
	}
	if i == len(want) && len(got) == len(want) {
		return ""
	}
	line := i / solStreamLine
	end := min(len(got), i+2*solStreamLine)
	return fmt.Sprintf("first difference at byte %d (line %d of %d): got %q", i, line, solStreamLines, got[i:end])
}

// BenchmarkIPMISimSOLThroughput: the node writes a 1.5 MiB numbered
// stream as fast as ipmi_sim takes it; the figure is bytes per second
// until the client has printed all of it, complete and in order.
func BenchmarkIPMISimSOLThroughput(b *testing.B) {
	needTool(b, "ipmi_sim")
	want := solStream()
	var sum benchSummary
	for _, client := range solBenchClients {
		b.Run(client, func(b *testing.B) {
			r, failed := solAttempts(b, client, func() (solThroughput, error) {
				return solThroughputOnce(b, client, want)
			})
			kbs := float64(len(want)) / r.elapsed.Seconds() / 1000
			b.ReportMetric(0, "ns/op")
			b.ReportMetric(kbs, "KB/s")
			b.ReportMetric(ms(r.cpu), "client-cpu-ms")
			line := fmt.Sprintf("%-12s %6.0f KB/s  (%d bytes in %v, complete and in order; client CPU %v in all%s)",
				client, kbs, len(want), r.elapsed.Round(time.Millisecond), r.cpu.Round(time.Millisecond), failedNote(failed))
			b.Log(line)
			sum.add(line)
		})
	}
	sum.log(b, "SOL throughput")
}

type solThroughput struct {
	elapsed time.Duration // from the node's first write to the client's last byte
	cpu     time.Duration // the client process's CPU time over its whole life
}

func solThroughputOnce(b *testing.B, client string, want []byte) (solThroughput, error) {
	sim, serial := startIPMISimSOL(b)
	defer killBenchSim(sim)
	defer serial.Close()
	drainSerial(serial)
	cmd, tty := solClientCmd(b, client, sim.Addr)
	p := launchSOLClient(b, client, cmd, tty)
	defer p.stop()
	if err := awaitConsole(p, serial, "\r\n@@ready@@\r\n"); err != nil {
		return solThroughput{}, err
	}

	const start = "\r\n@@start@@\r\n"
	from := p.out.len()
	writeErr := make(chan error, 1)
	t0 := time.Now()
	go func() {
		serial.SetWriteDeadline(time.Now().Add(60 * time.Second))
		_, err := serial.Write(append([]byte(start), want...))
		writeErr <- err
	}()
	// The stream starts after the start marker's first appearance; it is
	// complete once that many bytes follow.
	body := -1
	last, ok := p.out.wait(60*time.Second, func(d []byte) bool {
		if body < 0 {
			if i := bytes.Index(d[from:], []byte(start)); i >= 0 {
				body = from + i + len(start)
			}
		}
		return body >= 0 && len(d)-body >= len(want)
	})
	if !ok {
		got := 0
		if body >= 0 {
			got = p.out.len() - body
		}
		return solThroughput{}, p.errorf("received %d of %d bytes within 60s", got, len(want))
	}
	if err := <-writeErr; err != nil {
		return solThroughput{}, p.errorf("writing the stream to the serial port: %v", err)
	}
	got := p.out.bytesFrom(body)
	if d := streamDiff(got[:len(want)], want); d != "" {
		return solThroughput{}, p.errorf("stream damaged: %s", d)
	}
	p.stop()
	return solThroughput{elapsed: last.Sub(t0), cpu: p.cpu()}, nil
}

// BenchmarkIPMISimSOLEcho: the node echoes every byte it receives; the
// client types single keystrokes, each after the previous one's echo, and
// the figure is the time from the write to the client's stdin until the
// echo is read from its stdout.
func BenchmarkIPMISimSOLEcho(b *testing.B) {
	needTool(b, "ipmi_sim")
	var sum benchSummary
	for _, client := range solBenchClients {
		b.Run(client, func(b *testing.B) {
			rtts, failed := solAttempts(b, client, func() ([]time.Duration, error) {
				return solEchoOnce(b, client)
			})
			slices.Sort(rtts)
			p50, p99 := percentile(rtts, 0.50), percentile(rtts, 0.99)
			b.ReportMetric(0, "ns/op")
			b.ReportMetric(ms(p50), "echo-p50-ms")
			b.ReportMetric(ms(p99), "echo-p99-ms")
			line := fmt.Sprintf("%-12s echo median %.2f ms  p99 %.2f ms  (min %.2f, max %.2f, %d keystrokes%s)",
				client, ms(p50), ms(p99), ms(rtts[0]), ms(rtts[len(rtts)-1]), len(rtts), failedNote(failed))
			b.Log(line)
			sum.add(line)
		})
	}
	sum.log(b, "SOL keystroke echo round trip")
}

func solEchoOnce(b *testing.B, client string) ([]time.Duration, error) {
	sim, serial := startIPMISimSOL(b)
	defer killBenchSim(sim)
	defer serial.Close()
	go echoNode(serial)
	cmd, tty := solClientCmd(b, client, sim.Addr)
	p := launchSOLClient(b, client, cmd, tty)
	defer p.stop()
	if err := awaitConsole(p, serial, "\r\n@@ready@@\r\n"); err != nil {
		return nil, err
	}

	return echoRTTs(p)
}

// BenchmarkIPMISimSOLSetup: from the client's process start until the
// first console byte on its stdout, while the node prints a marker every
// 2 ms; median and worst of solSetupRounds rounds, each with a fresh
// ipmi_sim (warmed up with one session, so OpenSSL's start-up is not
// counted). The worst case matters: a client that drops a SOL packet
// arriving before it is ready for it waits for ipmi_sim's 1 s resend.
func BenchmarkIPMISimSOLSetup(b *testing.B) {
	needTool(b, "ipmi_sim")
	var sum benchSummary
	for _, client := range solBenchClients {
		b.Run(client, func(b *testing.B) {
			var times []time.Duration
			var failed []string
			for range solSetupRounds {
				t, f := solAttempts(b, client, func() (time.Duration, error) {
					return solSetupOnce(b, client)
				})
				times = append(times, t)
				failed = append(failed, f...)
			}
			sorted := slices.Clone(times)
			slices.Sort(sorted)
			med := percentile(sorted, 0.5)
			b.ReportMetric(0, "ns/op")
			b.ReportMetric(ms(med), "setup-ms")
			b.ReportMetric(ms(sorted[len(sorted)-1]), "setup-max-ms")
			strs := make([]string, len(times))
			for i, t := range times {
				strs[i] = fmt.Sprintf("%.0f", ms(t))
			}
			line := fmt.Sprintf("%-12s setup to first byte: median %.0f ms  (rounds: %s ms%s)",
				client, ms(med), strings.Join(strs, " "), failedNote(failed))
			b.Log(line)
			sum.add(line)
		})
	}
	sum.log(b, "SOL session setup")
}

func solSetupOnce(b *testing.B, client string) (time.Duration, error) {
	sim, serial := startIPMISimSOL(b)
	defer killBenchSim(sim)
	defer serial.Close()
	drainSerial(serial)
	cmd, tty := solClientCmd(b, client, sim.Addr)
	stopMarks := make(chan struct{})
	marksDone := make(chan struct{})
	go func() {
		defer close(marksDone)
		tick := time.NewTicker(2 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stopMarks:
				return
			case <-tick.C:
				serial.SetWriteDeadline(time.Now().Add(5 * time.Second))
				if _, err := io.WriteString(serial, "@@"); err != nil {
					return
				}
			}
		}
	}()
	p := launchSOLClient(b, client, cmd, tty)
	defer p.stop()
	first, ok := p.out.wait(30*time.Second, func(d []byte) bool { return bytes.Contains(d, []byte("@@")) })
	close(stopMarks)
	<-marksDone
	if !ok {
		return 0, p.errorf("no console output within 30s")
	}
	return first.Sub(p.started), nil
}

// echoNode is a node that echoes whatever arrives on its serial port,
// until the port closes.
func echoNode(serial net.Conn) {
	buf := make([]byte, 256)
	for {
		n, err := serial.Read(buf)
		if n > 0 {
			serial.SetWriteDeadline(time.Now().Add(5 * time.Second))
			if _, werr := serial.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// echoRTTs types solEchoKeys keystrokes into the client p, one at a time,
// and returns each one's time until it is echoed on p's output; every
// key must come back once, in order.
func echoRTTs(p *solProc) ([]time.Duration, error) {
	// Throw-away keystrokes until one comes back: ipmi_sim may drop a new
	// session's first input packet as a duplicate of the previous
	// session's last one (interop quirk 9).
	echoed := false
	for try := 0; try < 10 && !echoed; try++ {
		from := p.out.len()
		if _, err := io.WriteString(p.in, "."); err != nil {
			return nil, p.errorf("typing: %v", err)
		}
		_, echoed = p.out.wait(2*time.Second, func(d []byte) bool { return bytes.IndexByte(d[from:], '.') >= 0 })
	}
	if !echoed {
		return nil, p.errorf("no typed character came back in 10 tries")
	}
	p.out.quiet(300*time.Millisecond, 10*time.Second)

	keysFrom := p.out.len()
	rtts := make([]time.Duration, 0, solEchoKeys)
	want := make([]byte, 0, solEchoKeys)
	for i := range solEchoKeys {
		key := byte('a' + i%26) // letters only: no client's escape character
		want = append(want, key)
		from := p.out.len()
		t0 := time.Now()
		if _, err := p.in.Write([]byte{key}); err != nil {
			return nil, p.errorf("typing keystroke %d: %v", i, err)
		}
		last, ok := p.out.wait(5*time.Second, func(d []byte) bool { return len(d) > from })
		if !ok {
			return nil, p.errorf("keystroke %d (%q) not echoed within 5s", i, key)
		}
		if got := p.out.bytesFrom(from); got[0] != key {
			return nil, p.errorf("keystroke %d: typed %q, console showed %q", i, key, got)
		}
		rtts = append(rtts, last.Sub(t0))
	}
	// Nothing extra may follow (a keystroke delivered twice).
	p.out.quiet(200*time.Millisecond, 2*time.Second)
	if got := p.out.bytesFrom(keysFrom); !bytes.Equal(got, want) {
		return nil, p.errorf("console showed %q after typing %q", got, want)
	}
	return rtts, nil
}
