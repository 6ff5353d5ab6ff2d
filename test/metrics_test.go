package test

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"go.yaml.in/yaml/v3"
	gossh "golang.org/x/crypto/ssh"

	"github.com/solgate/solgate/conserver/metrics"
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
// NOTIFY_SOCKET with a watchdog: READY=1 comes only once the SSH gateway
// and the metrics accept connections, and WATCHDOG=1 keeps coming. A
// refused SSH key counts as an authentication failure.
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
	gaddr := fmt.Sprintf("127.0.0.1:%d", freeTCPPort(t))
	writeConfig := func(cs []servedConsole, extra string) string {
		p := writeServeConfig(t, dir, server, cs)
		data, err := os.ReadFile(p)
		must(t, err)
		data = bytes.Replace(data, []byte(`listen = "127.0.0.1:0"`), []byte(`listen = "`+gaddr+`"`), 1)
		must(t, os.WriteFile(p, data, 0o640))
		appendFile(t, p, "\n[[syslog]]\naddress = \""+target+"\"\n"+extra)
		return p
	}
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	must(t, err)
	signer, err := gossh.NewSignerFromKey(priv)
	must(t, err)
	users := "\n[[user]]\nname = \"alice\"\nkeys = [\"" + authorizedLine(signer.PublicKey()) + "\"]\n\n[[access]]\nconsoles = \"*\"\nread = [\"alice\"]\n"
	cfg := writeConfig(consoles, users)

	readyErr := make(chan error, 1)
	n := listenNotify(t, dir, func() {
		// At READY the SSH gateway and the metrics must already accept
		// connections.
		for _, a := range []string{gaddr, maddr} {
			c, err := net.DialTimeout("tcp", a, time.Second)
			if err != nil {
				readyErr <- err
				return
			}
			c.Close()
		}
		readyErr <- nil
	})
	p := startServe(t, cfg, "NOTIFY_SOCKET="+n.path, "WATCHDOG_USEC=200000")
	n.wait(t, "READY=1", 1, 20*time.Second)
	if err := <-readyErr; err != nil {
		t.Fatalf("READY=1 before the gateway and the metrics accepted connections: %v", err)
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
	if v, ok := s.get("solgate_daemon_log_dropped_records_total"); !ok || v != 0 {
		t.Errorf("solgate_daemon_log_dropped_records_total = %v (%v), want 0", v, ok)
	}
	known := map[string]bool{}
	for _, n := range metrics.Names() {
		known[n] = true
	}
	for name := range s {
		if strings.HasPrefix(name, "solgate_") && !known[name] {
			t.Errorf("the daemon exposes %s, which metrics.Names does not list", name)
		}
	}
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

	// The gateway: a session counted while it is open, a refused key
	// counted as an authentication failure.
	for _, name := range []string{"solgate_gateway_connections", "solgate_gateway_sessions", "solgate_gateway_auth_failures_total"} {
		if v, ok := s.get(name); !ok || v != 0 {
			t.Errorf("%s = %v (%v) before any client, want 0", name, v, ok)
		}
	}
	for _, reason := range []string{"cap", "backoff", "room", "connections"} {
		if v, ok := s.get("solgate_gateway_refused_connections_total", "reason", reason); !ok || v != 0 {
			t.Errorf("solgate_gateway_refused_connections_total{reason=%q} = %v (%v) before any client, want 0", reason, v, ok)
		}
	}
	client, err := gossh.Dial("tcp", gaddr, &gossh.ClientConfig{User: "node1", Auth: []gossh.AuthMethod{gossh.PublicKeys(signer)},
		HostKeyCallback: gossh.InsecureIgnoreHostKey(), Timeout: 10 * time.Second})
	must(t, err)
	sess, err := client.NewSession()
	must(t, err)
	stdin, err := sess.StdinPipe() // held open: EOF would detach
	must(t, err)
	defer stdin.Close()
	must(t, sess.RequestPty("xterm", 24, 80, gossh.TerminalModes{}))
	must(t, sess.Shell())
	waitMetrics(t, maddr, "one gateway session, attached to node1", 15*time.Second, func(s scraped) bool {
		n, _ := s.get("solgate_gateway_sessions")
		a, _ := s.get("solgate_console_attachments", "console", "node1")
		return n == 1 && a == 1
	})
	client.Close()
	_, stranger, err := ed25519.GenerateKey(rand.Reader)
	must(t, err)
	strangerSigner, err := gossh.NewSignerFromKey(stranger)
	must(t, err)
	if c, err := gossh.Dial("tcp", gaddr, &gossh.ClientConfig{User: "node1", Auth: []gossh.AuthMethod{gossh.PublicKeys(strangerSigner)},
		HostKeyCallback: gossh.InsecureIgnoreHostKey(), Timeout: 10 * time.Second}); err == nil {
		c.Close()
		t.Fatal("a key the configuration does not list was let in")
	}
	waitMetrics(t, maddr, "the refused key counted, the session gone", 15*time.Second, func(s scraped) bool {
		f, _ := s.get("solgate_gateway_auth_failures_total")
		n, _ := s.get("solgate_gateway_sessions")
		return f == 1 && n == 0
	})

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
	writeConfig(append(consoles, servedConsole{name: "node3", bmc: sim3.Addr}), users)
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
	writeConfig(consoles, "bogus_key = 1\n"+users)
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

// TestAlertRules checks etc/solgate-alerts.yml as promtool would where it
// can (promtool is not installed here): the YAML is Prometheus's rule file
// shape with no unknown keys, every rule has a name, an expression, a
// valid "for", a severity and both annotations, and every metric an
// expression names is one solgate exposes (metrics.Names) or Prometheus's
// own up.
func TestAlertRules(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile("../etc/solgate-alerts.yml")
	must(t, err)
	var file struct {
		Groups []struct {
			Name     string `yaml:"name"`
			Interval string `yaml:"interval"`
			Rules    []struct {
				Alert       string            `yaml:"alert"`
				Expr        string            `yaml:"expr"`
				For         string            `yaml:"for"`
				Labels      map[string]string `yaml:"labels"`
				Annotations map[string]string `yaml:"annotations"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&file); err != nil {
		t.Fatalf("etc/solgate-alerts.yml: %v", err)
	}
	known := map[string]bool{"up": true}
	for _, n := range metrics.Names() {
		known[n] = true
	}
	alerts := map[string]bool{}
	used := map[string]bool{}
	if len(file.Groups) == 0 {
		t.Fatal("no rule groups")
	}
	for _, g := range file.Groups {
		if g.Name == "" || len(g.Rules) == 0 {
			t.Errorf("group %q: want a name and rules", g.Name)
		}
		for _, r := range g.Rules {
			if !regexp.MustCompile(`^[A-Z][A-Za-z0-9]+$`).MatchString(r.Alert) || alerts[r.Alert] {
				t.Errorf("alert %q: want a unique CamelCase name", r.Alert)
			}
			alerts[r.Alert] = true
			if r.For != "" {
				if _, err := model.ParseDuration(r.For); err != nil {
					t.Errorf("%s: for %q: %v", r.Alert, r.For, err)
				}
			}
			switch r.Labels["severity"] {
			case "critical", "warning", "info":
			default:
				t.Errorf("%s: severity %q: want critical, warning or info", r.Alert, r.Labels["severity"])
			}
			if r.Annotations["summary"] == "" || r.Annotations["description"] == "" {
				t.Errorf("%s: want a summary and a description", r.Alert)
			}
			names, err := promqlMetrics(r.Expr)
			if err != nil || len(names) == 0 {
				t.Errorf("%s: expr %q: %v (names %v)", r.Alert, r.Expr, err, names)
			}
			for _, n := range names {
				used[n] = true
				if !known[n] {
					t.Errorf("%s: expr %q names %s, which solgate does not expose", r.Alert, r.Expr, n)
				}
			}
		}
	}
	// What the issue asks the example to cover.
	for _, n := range []string{"solgate_console_up", "solgate_syslog_backlog_age_seconds", "solgate_console_log_dropped_bytes_total"} {
		if !used[n] {
			t.Errorf("no rule uses %s", n)
		}
	}
	// The checker itself.
	for expr, want := range map[string]string{
		`sum by (console) (rate(a_total[5m])) > on (x) group_left b{c="d"}`: "a_total b",
		`deriv(x[15m]) > 0 and y > 1000 unless z offset 5m`:                 "x y z",
		`up{job="solgate"} == 0`:                                            "up",
		`sum without (state) (m{state!="up", l=~"a.*"}) / 2`:                "m",
	} {
		got, err := promqlMetrics(expr)
		if err != nil || strings.Join(got, " ") != want {
			t.Errorf("promqlMetrics(%q) = %v, %v; want %s", expr, got, err, want)
		}
	}
	for _, bad := range []string{`x{a="b"`, `sum(x`, `x{a="b}`} {
		if _, err := promqlMetrics(bad); err == nil {
			t.Errorf("promqlMetrics(%q): no error", bad)
		}
	}
}

// promqlMetrics returns the metric names a PromQL expression selects, in
// order of appearance: identifiers that are not functions, keywords,
// aggregations' label lists, label matchers, strings, ranges or numbers.
// It checks brackets and quotes balance; it is not a full parser.
func promqlMetrics(expr string) ([]string, error) {
	keywords := map[string]bool{"and": true, "or": true, "unless": true, "bool": true, "offset": true,
		"by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true, "inf": true, "nan": true,
		// Aggregations, which may take by (...) before their parentheses.
		"sum": true, "min": true, "max": true, "avg": true, "group": true, "stddev": true, "stdvar": true, "count": true,
		"count_values": true, "bottomk": true, "topk": true, "quantile": true, "limitk": true, "limit_ratio": true}
	labelLists := map[string]bool{"by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true}
	isIdentStart := func(c byte) bool { return c == '_' || c == ':' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }
	isIdent := func(c byte) bool { return isIdentStart(c) || c >= '0' && c <= '9' }
	var names []string
	seen := map[string]bool{}
	depth := 0
	for i := 0; i < len(expr); {
		c := expr[i]
		switch {
		case c == '"' || c == '\'' || c == '`':
			j := i + 1
			for j < len(expr) && expr[j] != c {
				if expr[j] == '\\' && c != '`' {
					j++
				}
				j++
			}
			if j >= len(expr) {
				return nil, fmt.Errorf("unterminated string at %d", i)
			}
			i = j + 1
		case c == '{' || c == '[':
			end := byte('}')
			if c == '[' {
				end = ']'
			}
			j := i + 1
			for j < len(expr) && expr[j] != end {
				if q := expr[j]; q == '"' || q == '\'' {
					k := j + 1
					for k < len(expr) && expr[k] != q {
						if expr[k] == '\\' {
							k++
						}
						k++
					}
					if k >= len(expr) {
						return nil, fmt.Errorf("unterminated string at %d", j)
					}
					j = k
				}
				j++
			}
			if j >= len(expr) {
				return nil, fmt.Errorf("unclosed %c at %d", c, i)
			}
			i = j + 1
		case c == '(':
			depth++
			i++
		case c == ')':
			if depth--; depth < 0 {
				return nil, fmt.Errorf("unbalanced ) at %d", i)
			}
			i++
		case c >= '0' && c <= '9' || c == '.':
			for i < len(expr) && (isIdent(expr[i]) || expr[i] == '.') {
				i++ // a number, possibly with a unit or exponent (5m, 1e3)
			}
		case isIdentStart(c):
			j := i
			for j < len(expr) && isIdent(expr[j]) {
				j++
			}
			word := expr[i:j]
			k := j
			for k < len(expr) && expr[k] == ' ' {
				k++
			}
			switch {
			case labelLists[word] && k < len(expr) && expr[k] == '(':
				end := strings.IndexByte(expr[k:], ')')
				if end < 0 {
					return nil, fmt.Errorf("unclosed label list after %s", word)
				}
				j = k + end + 1
			case keywords[strings.ToLower(word)]:
			case k < len(expr) && expr[k] == '(':
				// a function or an aggregation
			default:
				if !seen[word] {
					seen[word] = true
					names = append(names, word)
				}
			}
			i = j
		default:
			i++
		}
	}
	if depth != 0 {
		return nil, fmt.Errorf("%d unclosed (", depth)
	}
	return names, nil
}
