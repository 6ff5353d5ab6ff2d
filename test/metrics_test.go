package test

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/solgate/solgate/ipmilan/bmcsim"
)

// notifySocket is a NOTIFY_SOCKET the test listens on, as systemd does
// for a Type=notify unit. onReady, if set, runs in the reader at the
// first READY=1, before the message is recorded.
type notifySocket struct {
	path    string
	mu      sync.Mutex
	msgs    []string
	times   []time.Time
	onReady func()
}

func listenNotify(t *testing.T, dir string, onReady func()) *notifySocket {
	t.Helper()
	n := &notifySocket{path: filepath.Join(dir, "notify.sock"), onReady: onReady}
	nc, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: n.path, Net: "unixgram"})
	must(t, err)
	t.Cleanup(func() { nc.Close() })
	go func() {
		buf := make([]byte, 4096)
		ready := false
		for {
			k, err := nc.Read(buf)
			if err != nil {
				return
			}
			m := string(buf[:k])
			if !ready && strings.HasPrefix(m, "READY=1") {
				ready = true
				if n.onReady != nil {
					n.onReady()
				}
			}
			n.mu.Lock()
			n.msgs = append(n.msgs, m)
			n.times = append(n.times, time.Now())
			n.mu.Unlock()
		}
	}()
	return n
}

// count returns how many messages start with prefix, and when each came.
func (n *notifySocket) count(prefix string) (int, []time.Time) {
	n.mu.Lock()
	defer n.mu.Unlock()
	var ts []time.Time
	for i, m := range n.msgs {
		if strings.HasPrefix(m, prefix) {
			ts = append(ts, n.times[i])
		}
	}
	return len(ts), ts
}

func (n *notifySocket) wait(t *testing.T, prefix string, want int, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		if k, _ := n.count(prefix); k >= want {
			return
		}
		if time.Now().After(deadline) {
			n.mu.Lock()
			got := append([]string(nil), n.msgs...)
			n.mu.Unlock()
			t.Fatalf("fewer than %d %q notifications within %v; got %q", want, prefix, d, got)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// freeTCPPort returns a loopback port nothing listens on right now.
func freeTCPPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	must(t, err)
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

type scraped map[string]*dto.MetricFamily

// scrapeMetrics fetches and parses http://addr/metrics.
func scrapeMetrics(t *testing.T, addr string) scraped {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	must(t, err)
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET /metrics: %s: %s", resp.Status, b)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse the exposition: %v", err)
	}
	return fams
}

// get returns the value of the sample of name with the given labels
// (name, value pairs), and whether there is one.
func (s scraped) get(name string, labels ...string) (float64, bool) {
	f := s[name]
	if f == nil {
		return 0, false
	}
next:
	for _, m := range f.Metric {
		for i := 0; i+1 < len(labels); i += 2 {
			ok := false
			for _, lp := range m.Label {
				ok = ok || lp.GetName() == labels[i] && lp.GetValue() == labels[i+1]
			}
			if !ok {
				continue next
			}
		}
		switch {
		case m.Gauge != nil:
			return m.Gauge.GetValue(), true
		case m.Counter != nil:
			return m.Counter.GetValue(), true
		}
		return m.GetUntyped().GetValue(), true
	}
	return 0, false
}

// label returns the value of label l of family name's only sample.
func (s scraped) label(t *testing.T, name, l string) string {
	t.Helper()
	f := s[name]
	if f == nil || len(f.Metric) != 1 {
		t.Fatalf("%s: want exactly one sample", name)
	}
	for _, lp := range f.Metric[0].Label {
		if lp.GetName() == l {
			return lp.GetValue()
		}
	}
	t.Fatalf("%s has no label %s", name, l)
	return ""
}

// waitMetrics scrapes until cond holds.
func waitMetrics(t *testing.T, addr, what string, d time.Duration, cond func(scraped) bool) scraped {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		s := scrapeMetrics(t, addr)
		if cond(s) {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("metrics: %s: not within %v", what, d)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestServeMetrics scrapes solgate serve over HTTP while a BMC hangs and
// comes back and while the configuration is reloaded (applied, then
// refused), and checks that the values follow. The daemon runs under a
// NOTIFY_SOCKET with a watchdog: READY=1 comes only once the metrics
// listener accepts connections, and WATCHDOG=1 keeps coming.
func TestServeMetrics(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	sim1 := startSimBMC(t, bmcsim.Config{PowerOn: true, SOL: bmcsim.SOLConfig{NoBootText: true}})
	sim2 := startSimBMC(t, bmcsim.Config{PowerOn: true, SOL: bmcsim.SOLConfig{NoBootText: true}})
	rx, err := net.ListenPacket("udp4", "127.0.0.1:0")
	must(t, err)
	defer rx.Close()
	go func() {
		buf := make([]byte, 8192)
		for {
			if _, _, err := rx.ReadFrom(buf); err != nil {
				return
			}
		}
	}()
	target := "udp://" + rx.LocalAddr().String()
	maddr := fmt.Sprintf("127.0.0.1:%d", freeTCPPort(t))
	server := fmt.Sprintf("metrics = %q\nipmi_keepalive = \"500ms\"\nipmi_timeout = \"200ms\"\nreconnect_min = \"100ms\"\nreconnect_max = \"500ms\"", maddr)
	consoles := []servedConsole{{name: "node1", bmc: sim1.Addr}, {name: "node2", bmc: sim2.Addr}}
	writeConfig := func(cs []servedConsole, extra string) string {
		p := writeServeConfig(t, dir, server, cs)
		appendFile(t, p, "\n[[syslog]]\naddress = \""+target+"\"\n"+extra)
		return p
	}
	cfg := writeConfig(consoles, "")

	readyErr := make(chan error, 1)
	n := listenNotify(t, dir, func() {
		// At READY the metrics must already accept connections.
		c, err := net.DialTimeout("tcp", maddr, time.Second)
		if err == nil {
			c.Close()
		}
		readyErr <- err
	})
	p := startServe(t, cfg, "NOTIFY_SOCKET="+n.path, "WATCHDOG_USEC=200000")
	n.wait(t, "READY=1", 1, 20*time.Second)
	if err := <-readyErr; err != nil {
		t.Fatalf("READY=1 before the metrics listener accepted connections: %v", err)
	}

	// Readiness and health.
	for path, want := range map[string]string{"/healthz": "ok\n", "/readyz": "ready\n"} {
		resp, err := http.Get("http://" + maddr + path)
		must(t, err)
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(b) != want {
			t.Errorf("GET %s: %s %q, want 200 %q", path, resp.Status, b, want)
		}
	}

	s := waitMetrics(t, maddr, "both consoles up", 20*time.Second, func(s scraped) bool {
		v, _ := s.get("solgate_consoles", "state", "up")
		return v == 2
	})
	fp0 := s.label(t, "solgate_config_info", "fingerprint")
	for _, c := range []string{"node1", "node2"} {
		if v, ok := s.get("solgate_console_up", "console", c); !ok || v != 1 {
			t.Errorf("solgate_console_up{console=%q} = %v (%v), want 1", c, v, ok)
		}
		if v, ok := s.get("solgate_console_reconnects_total", "console", c); !ok || v != 0 {
			t.Errorf("solgate_console_reconnects_total{console=%q} = %v (%v), want 0", c, v, ok)
		}
		if since, ok := s.get("solgate_console_up_since_timestamp_seconds", "console", c); !ok || time.Since(time.Unix(int64(since), 0)) > time.Minute {
			t.Errorf("solgate_console_up_since_timestamp_seconds{console=%q} = %v (%v): want a moment ago", c, since, ok)
		}
	}
	for _, name := range []string{"go_goroutines", "process_open_fds", "process_resident_memory_bytes", "solgate_build_info"} {
		if s[name] == nil {
			t.Errorf("%s missing", name)
		}
	}

	// Output counts bytes and sets the last output time; the line is
	// shipped to syslog.
	before, _ := s.get("solgate_console_output_bytes_total", "console", "node1")
	sim1.HostWrite([]byte("a line for the metrics test\r\n"))
	s = waitMetrics(t, maddr, "node1's output counted and shipped", 15*time.Second, func(s scraped) bool {
		v, _ := s.get("solgate_console_output_bytes_total", "console", "node1")
		sent, _ := s.get("solgate_syslog_sent_messages_total", "target", target)
		return v >= before+29 && sent >= 1
	})
	if last, ok := s.get("solgate_console_last_output_timestamp_seconds", "console", "node1"); !ok || time.Since(time.Unix(int64(last), 0)) > time.Minute {
		t.Errorf("solgate_console_last_output_timestamp_seconds = %v (%v): want a moment ago", last, ok)
	}
	if v, ok := s.get("solgate_syslog_connected", "target", target); !ok || v != 1 {
		t.Errorf("solgate_syslog_connected = %v (%v), want 1", v, ok)
	}

	// node2's BMC hangs: the console is no longer up, node1 still is.
	must(t, sim2.SetFaults(bmcsim.Faults{Freeze: true}))
	s = waitMetrics(t, maddr, "node2 not up", 20*time.Second, func(s scraped) bool {
		v, _ := s.get("solgate_console_up", "console", "node2")
		return v == 0
	})
	if v, _ := s.get("solgate_console_up", "console", "node1"); v != 1 {
		t.Errorf("node1 went down with node2's BMC")
	}
	if v, ok := s.get("solgate_console_state", "console", "node2", "state", "up"); ok {
		t.Errorf("solgate_console_state{console=node2,state=up} = %v while the BMC is hung", v)
	}
	if v, _ := s.get("solgate_consoles", "state", "up"); v != 1 {
		t.Errorf("solgate_consoles{state=up} = %v, want 1", v)
	}
	// It comes back: up again, one reconnect.
	must(t, sim2.SetFaults(bmcsim.Faults{}))
	waitMetrics(t, maddr, "node2 up again after one reconnect", 20*time.Second, func(s scraped) bool {
		up, _ := s.get("solgate_console_up", "console", "node2")
		rc, _ := s.get("solgate_console_reconnects_total", "console", "node2")
		return up == 1 && rc == 1
	})

	// A reload that adds a console: counted, a new fingerprint.
	sim3 := startSimBMC(t, bmcsim.Config{PowerOn: true, SOL: bmcsim.SOLConfig{NoBootText: true}})
	writeConfig(append(consoles, servedConsole{name: "node3", bmc: sim3.Addr}), "")
	s = waitMetrics(t, maddr, "the reload applied", 20*time.Second, func(s scraped) bool {
		v, _ := s.get("solgate_config_reloads_total", "result", "success")
		up, _ := s.get("solgate_console_up", "console", "node3")
		return v == 1 && up == 1
	})
	fp1 := s.label(t, "solgate_config_info", "fingerprint")
	if fp1 == fp0 {
		t.Errorf("the fingerprint stayed %s after a console was added", fp0)
	}
	if v, _ := s.get("solgate_config_last_reload_successful"); v != 1 {
		t.Errorf("solgate_config_last_reload_successful = %v, want 1", v)
	}
	if v, _ := s.get("solgate_config_reloads_total", "result", "failure"); v != 0 {
		t.Errorf("solgate_config_reloads_total{result=failure} = %v, want 0", v)
	}
	okAt, _ := s.get("solgate_config_last_reload_success_timestamp_seconds")
	// A broken edit: refused, counted; the running configuration stays.
	writeConfig(consoles, "bogus_key = 1\n")
	s = waitMetrics(t, maddr, "the broken edit refused", 20*time.Second, func(s scraped) bool {
		v, _ := s.get("solgate_config_reloads_total", "result", "failure")
		return v == 1
	})
	if v, _ := s.get("solgate_config_last_reload_successful"); v != 0 {
		t.Errorf("solgate_config_last_reload_successful = %v after a refused reload, want 0", v)
	}
	if fp := s.label(t, "solgate_config_info", "fingerprint"); fp != fp1 {
		t.Errorf("fingerprint %s after a refused reload, want %s (the running one)", fp, fp1)
	}
	if v, _ := s.get("solgate_config_last_reload_success_timestamp_seconds"); v != okAt {
		t.Errorf("last success time moved from %v to %v on a refused reload", okAt, v)
	}
	if at, _ := s.get("solgate_config_last_reload_timestamp_seconds"); at <= okAt {
		t.Errorf("last reload time %v not after the last success %v", at, okAt)
	}
	if v, ok := s.get("solgate_console_up", "console", "node3"); !ok || v != 1 {
		t.Errorf("node3 = %v (%v) after a refused reload: the running configuration should stay", v, ok)
	}

	// The watchdog: WATCHDOG=1 every 100 ms (half of WATCHDOG_USEC).
	k0, _ := n.count("WATCHDOG=1")
	n.wait(t, "WATCHDOG=1", k0+5, 10*time.Second)

	if _, err := p.stop(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	n.wait(t, "STOPPING=1", 1, 5*time.Second)
	if _, err := os.Stat(filepath.Join(dir, "state", "ctl.sock")); err == nil {
		t.Errorf("the control socket is left behind after the daemon stopped")
	}
}
