package test

import (
	"context"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/solgate/solgate/ipmilan/bmcsim"
)

// restartableBMC is a bmcsim BMC whose socket can be closed ("the BMC is
// killed") and opened again on the same port.
type restartableBMC struct {
	t    testing.TB
	b    *bmcsim.BMC
	addr string
	mu   sync.Mutex
	stop func()
}

func newRestartableBMC(t testing.TB, cfg bmcsim.Config) *restartableBMC {
	t.Helper()
	if cfg.Users == nil {
		cfg.Users = bmcsimUsers
	}
	r := &restartableBMC{t: t, b: bmcsim.New(cfg)}
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	must(t, err)
	r.addr = pc.LocalAddr().String()
	r.serve(pc)
	t.Cleanup(r.kill)
	return r
}

func (r *restartableBMC) serve(pc net.PacketConn) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { r.b.Serve(ctx, pc); close(done) }()
	r.mu.Lock()
	r.stop = func() { cancel(); <-done; pc.Close() }
	r.mu.Unlock()
}

// kill closes the socket: datagrams to it now get "port unreachable".
func (r *restartableBMC) kill() {
	r.mu.Lock()
	stop := r.stop
	r.stop = nil
	r.mu.Unlock()
	if stop != nil {
		stop()
	}
}

// restart brings the BMC back on its port with no sessions (a restarted
// BMC remembers none).
func (r *restartableBMC) restart() {
	r.t.Helper()
	var pc net.PacketConn
	var err error
	for range 50 { // the port was just freed
		if pc, err = net.ListenPacket("udp4", r.addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	must(r.t, err)
	r.b.Reboot(0)
	r.serve(pc)
}

// TestServeSurvivesBMCFaults: solgate serve (its own process) logs five
// consoles of BMCs in this process that print numbered streams while
// each suffers one fault: the BMC killed and restarted, 30% packet loss
// both ways for 10 s, SOL deactivated by the BMC, a BMC reboot, a power
// cycle of the host. Every console's log holds the whole stream in order,
// except jumps that a gap event names, and every console recovers to log
// the stream's end.
func TestServeSurvivesBMCFaults(t *testing.T) {
	if testing.Short() {
		t.Skip("takes about 30 s")
	}
	t.Parallel()
	faults := []string{"kill", "loss", "deactivate", "reboot", "powercycle"}
	bmcs := map[string]*restartableBMC{}
	var consoles []servedConsole
	for _, f := range faults {
		bmcs[f] = newRestartableBMC(t, bmcsim.Config{PowerOn: true, SOL: bmcsim.SOLConfig{NoBootText: true}})
		consoles = append(consoles, servedConsole{name: f, bmc: bmcs[f].addr})
	}
	dir := t.TempDir()
	cfg := writeServeConfig(t, dir, `reconnect_min = "200ms"
reconnect_max = "2s"
ipmi_timeout = "300ms"
ipmi_keepalive = "1s"`, consoles)
	p := startServe(t, cfg)
	for _, f := range faults {
		p.waitLog(`"msg":"conserver: SOL up","console":"`+f+`"`, 20*time.Second)
	}

	const rate, total = 20000, 400_000 // 20 s of output each
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for _, f := range faults {
		wg.Go(func() {
			if err := bmcs[f].b.Stream(ctx, rate, total); err != nil {
				t.Errorf("%s: stream: %v", f, err)
			}
		})
	}
	time.Sleep(3 * time.Second)
	bmcs["kill"].kill()
	must(t, bmcs["loss"].b.SetFaults(bmcsim.Faults{Seed: 7, Drop: 0.3, DropRequests: 0.3}))
	bmcs["deactivate"].b.DeactivateSOL()
	bmcs["reboot"].b.Reboot(3 * time.Second)
	bmcs["powercycle"].b.SetPower(false)
	time.Sleep(time.Second)
	bmcs["powercycle"].b.SetPower(true)
	time.Sleep(5 * time.Second)
	bmcs["kill"].restart()
	time.Sleep(5 * time.Second)
	must(t, bmcs["loss"].b.SetFaults(bmcsim.Faults{}))
	wg.Wait()

	logDir := dir + "/log"
	results := map[string]streamCheck{}
	deadline := time.Now().Add(30 * time.Second)
	for _, f := range faults {
		for {
			res := checkStream(t, logDir, f)
			if res.next == total {
				results[f] = res
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: the log ends at stream offset %d of %d: the console did not recover", f, res.next, total)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	for _, f := range faults {
		res := results[f]
		lost := total - res.bytes
		t.Logf("%-10s %7d of %d bytes logged, %d jumps %v; SOL sessions opened: %d", f, res.bytes, total, res.jumps, res.offsets,
			p.countLog(`"msg":"conserver: SOL up"`, `"console":"`+f+`"`))
		if f == "loss" || f == "powercycle" {
			// Retransmission covers the loss; power does not touch SOL.
			if res.jumps != 0 || lost != 0 {
				t.Errorf("%s: %d bytes lost in %d jumps, want none", f, lost, res.jumps)
			}
		}
		if f == "kill" || f == "deactivate" || f == "reboot" {
			if n := p.countLog(`"msg":"conserver: SOL up"`, `"console":"`+f+`"`); n < 2 {
				t.Errorf("%s: %d SOL sessions, want a reconnect", f, n)
			}
		}
	}
	// The daemon log is structured: every line is JSON with the fixed keys.
	for _, l := range strings.Split(strings.TrimSpace(p.stderr.String()), "\n") {
		if !strings.HasPrefix(l, `{"time":`) {
			t.Fatalf("daemon log line is not JSON: %q", l)
		}
	}
	if d, err := p.stop(10 * time.Second); err != nil {
		t.Fatalf("exit after SIGTERM (%v): %v", d, err)
	}
	for _, f := range faults {
		if st := bmcs[f].b.Stats(); st.SOLActive != 0 || st.SessionsActive != 0 {
			t.Errorf("%s: after SIGTERM the BMC still has %d sessions, %d SOL payloads", f, st.SessionsActive, st.SOLActive)
		}
	}
}
