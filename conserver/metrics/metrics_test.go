package metrics

import (
	"compress/gzip"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/solgate/solgate/conserver"
	"github.com/solgate/solgate/ipmilan"
	"github.com/solgate/solgate/logstore"
	"github.com/solgate/solgate/logstore/syslog"
)

type fakeGateway GatewayStats

func (g fakeGateway) GatewayStats() (GatewayStats, bool) { return GatewayStats(g), true }

type fakeSyslog []syslog.TargetStats

func (s fakeSyslog) Stats() []syslog.TargetStats { return s }

type fakeConfig ConfigStats

func (c fakeConfig) ConfigStats() ConfigStats { return ConfigStats(c) }

// scrape fetches path from h and parses the text exposition.
func scrape(t testing.TB, h http.Handler) map[string]*dto.MetricFamily {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != 200 {
		t.Fatalf("GET /metrics: %d %s", rec.Code, rec.Body)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(rec.Body)
	if err != nil {
		t.Fatalf("parse exposition: %v", err)
	}
	return fams
}

// value returns the sample of family name whose labels are those given
// (name=value pairs), and whether there is one.
func value(fams map[string]*dto.MetricFamily, name string, labels ...string) (float64, bool) {
	f := fams[name]
	if f == nil {
		return 0, false
	}
next:
	for _, m := range f.Metric {
		for i := 0; i+1 < len(labels); i += 2 {
			found := false
			for _, lp := range m.Label {
				if lp.GetName() == labels[i] && lp.GetValue() == labels[i+1] {
					found = true
				}
			}
			if !found {
				continue next
			}
		}
		switch {
		case m.Gauge != nil:
			return m.Gauge.GetValue(), true
		case m.Counter != nil:
			return m.Counter.GetValue(), true
		case m.Untyped != nil:
			return m.Untyped.GetValue(), true
		}
	}
	return 0, false
}

func TestExposition(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_800_000_000, 500_000_000)
	cons := []conserver.Status{
		{Name: "node1", State: conserver.Up, Since: now, UpSince: now, Reconnects: 3, BytesIn: 1000, BytesOut: 7,
			LastOutput: now.Add(time.Second), Attached: 2,
			SOL: ipmilan.SOLStats{Retransmits: 5, Gaps: 1, Overruns: 2, InputDropped: 9}, Log: logstore.WriterStats{Dropped: 11, WriteErrors: 1}},
		{Name: "node2", State: conserver.Down, Since: now.Add(-time.Hour), Reason: "authentication failed"},
		{Name: "node3", State: conserver.Retrying, Since: now},
	}
	ready := false
	m := New(Options{
		Consoles: slices.Values(cons),
		Gateway:  fakeGateway{Connections: 4, Unauthenticated: 1, Sessions: 3, AuthFailures: 17, RefusedCap: 5, RefusedBackoff: 6, ClosedForRoom: 7, RefusedConns: 8},
		Syslog: fakeSyslog{{Key: "tcp://127.0.0.1:514", Connected: true, Sent: 100, Bytes: 5000, BacklogLines: 12, BacklogConsoles: 2,
			BacklogAge: 90 * time.Second, Reconnects: 1, DialErrors: 4, LastErrorTime: now}},
		Config:     fakeConfig{Reloads: 2, Failures: 1, LastAttempt: now, LastSuccess: now.Add(-time.Minute), LastOK: false, Fingerprint: "0123456789abcdef"},
		LogDropped: func() uint64 { return 6 },
		Version:    "v1.2.3",
		Ready:      func() bool { return ready },
	})
	fams := scrape(t, m.Handler())
	want := []struct {
		name   string
		labels []string
		v      float64
	}{
		{"solgate_console_up", []string{"console", "node1"}, 1},
		{"solgate_console_up", []string{"console", "node2"}, 0},
		{"solgate_console_state", []string{"console", "node2", "state", "down"}, 1},
		{"solgate_console_state", []string{"console", "node3", "state", "retrying"}, 1},
		{"solgate_console_state_since_timestamp_seconds", []string{"console", "node2"}, 1_800_000_000.5 - 3600},
		{"solgate_console_up_since_timestamp_seconds", []string{"console", "node1"}, 1_800_000_000.5},
		{"solgate_console_reconnects_total", []string{"console", "node1"}, 3},
		{"solgate_console_output_bytes_total", []string{"console", "node1"}, 1000},
		{"solgate_console_input_bytes_total", []string{"console", "node1"}, 7},
		{"solgate_console_last_output_timestamp_seconds", []string{"console", "node1"}, 1_800_000_001.5},
		{"solgate_console_attachments", []string{"console", "node1"}, 2},
		{"solgate_console_sol_retransmits_total", []string{"console", "node1"}, 5},
		{"solgate_console_sol_gaps_total", []string{"console", "node1"}, 1},
		{"solgate_console_sol_overruns_total", []string{"console", "node1"}, 2},
		{"solgate_console_sol_input_dropped_bytes_total", []string{"console", "node1"}, 9},
		{"solgate_console_log_dropped_bytes_total", []string{"console", "node1"}, 11},
		{"solgate_console_log_write_errors_total", []string{"console", "node1"}, 1},
		{"solgate_consoles", []string{"state", "up"}, 1},
		{"solgate_consoles", []string{"state", "down"}, 1},
		{"solgate_consoles", []string{"state", "waiting"}, 0},
		{"solgate_build_info", []string{"version", "v1.2.3"}, 1},
		{"solgate_gateway_connections", nil, 4},
		{"solgate_gateway_unauthenticated_connections", nil, 1},
		{"solgate_gateway_sessions", nil, 3},
		{"solgate_gateway_auth_failures_total", nil, 17},
		{"solgate_gateway_refused_connections_total", []string{"reason", "cap"}, 5},
		{"solgate_gateway_refused_connections_total", []string{"reason", "backoff"}, 6},
		{"solgate_gateway_refused_connections_total", []string{"reason", "room"}, 7},
		{"solgate_gateway_refused_connections_total", []string{"reason", "connections"}, 8},
		{"solgate_syslog_connected", []string{"target", "tcp://127.0.0.1:514"}, 1},
		{"solgate_syslog_sent_messages_total", []string{"target", "tcp://127.0.0.1:514"}, 100},
		{"solgate_syslog_sent_bytes_total", []string{"target", "tcp://127.0.0.1:514"}, 5000},
		{"solgate_syslog_backlog_messages", []string{"target", "tcp://127.0.0.1:514"}, 12},
		{"solgate_syslog_backlog_consoles", []string{"target", "tcp://127.0.0.1:514"}, 2},
		{"solgate_syslog_backlog_age_seconds", []string{"target", "tcp://127.0.0.1:514"}, 90},
		{"solgate_syslog_reconnects_total", []string{"target", "tcp://127.0.0.1:514"}, 1},
		{"solgate_syslog_dial_errors_total", []string{"target", "tcp://127.0.0.1:514"}, 4},
		{"solgate_syslog_last_error_timestamp_seconds", []string{"target", "tcp://127.0.0.1:514"}, 1_800_000_000.5},
		{"solgate_config_reloads_total", []string{"result", "success"}, 2},
		{"solgate_config_reloads_total", []string{"result", "failure"}, 1},
		{"solgate_config_last_reload_successful", nil, 0},
		{"solgate_config_last_reload_timestamp_seconds", nil, 1_800_000_000.5},
		{"solgate_config_last_reload_success_timestamp_seconds", nil, 1_800_000_000.5 - 60},
		{"solgate_config_info", []string{"fingerprint", "0123456789abcdef"}, 1},
		{"solgate_daemon_log_dropped_records_total", nil, 6},
	}
	for _, w := range want {
		got, ok := value(fams, w.name, w.labels...)
		if !ok || got != w.v {
			t.Errorf("%s%v = %v (present %v), want %v", w.name, w.labels, got, ok, w.v)
		}
	}
	// Absent while not meaningful.
	for _, a := range []struct {
		name    string
		console string
	}{{"solgate_console_up_since_timestamp_seconds", "node2"}, {"solgate_console_last_output_timestamp_seconds", "node3"}} {
		if _, ok := value(fams, a.name, "console", a.console); ok {
			t.Errorf("%s{console=%q} present", a.name, a.console)
		}
	}
	if f := fams["solgate_console_state"]; f == nil || len(f.Metric) != len(cons) {
		t.Errorf("solgate_console_state: want one series per console")
	}
	// Conventions: counters end in _total and only they do; every name has
	// the prefix (or is Go's and the process's own).
	for name, f := range fams {
		isCounter := f.GetType() == dto.MetricType_COUNTER
		if isCounter != strings.HasSuffix(name, "_total") {
			t.Errorf("%s: type %v and name disagree on _total", name, f.GetType())
		}
		if !strings.HasPrefix(name, "solgate_") && !strings.HasPrefix(name, "go_") && !strings.HasPrefix(name, "process_") {
			t.Errorf("%s: no solgate_ prefix", name)
		}
		if f.GetHelp() == "" {
			t.Errorf("%s: no help text", name)
		}
	}
	// With every source and every value set, the scrape holds exactly
	// the families Names lists.
	var got []string
	for name := range fams {
		if strings.HasPrefix(name, "solgate_") {
			got = append(got, name)
		}
	}
	slices.Sort(got)
	if want := Names(); !slices.Equal(got, want) {
		t.Errorf("scraped families:\n%v\nNames():\n%v", got, want)
	}
	for _, runtime := range []string{"go_goroutines", "process_open_fds"} {
		if fams[runtime] == nil {
			t.Errorf("%s missing", runtime)
		}
	}

	get := func(path string) (int, string) {
		rec := httptest.NewRecorder()
		m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
		b, _ := io.ReadAll(rec.Body)
		return rec.Code, string(b)
	}
	if code, body := get("/healthz"); code != 200 || body != "ok\n" {
		t.Errorf("/healthz: %d %q", code, body)
	}
	if code, _ := get("/readyz"); code != http.StatusServiceUnavailable {
		t.Errorf("/readyz before ready: %d, want 503", code)
	}
	ready = true
	if code, body := get("/readyz"); code != 200 || body != "ready\n" {
		t.Errorf("/readyz when ready: %d %q", code, body)
	}
	// gzip, as Prometheus asks for it, holds the same families.
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("GET", "/metrics", nil)
	req.Header.Set("Accept-Encoding", "gzip")
	m.Handler().ServeHTTP(rec, req)
	if rec.Header().Get("Content-Encoding") != "gzip" {
		t.Fatalf("Accept-Encoding gzip: Content-Encoding %q", rec.Header().Get("Content-Encoding"))
	}
	zr, err := gzip.NewReader(rec.Body)
	if err != nil {
		t.Fatal(err)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	zfams, err := p.TextToMetricFamilies(zr)
	if err != nil {
		t.Fatalf("parse gzip exposition: %v", err)
	}
	for name := range fams {
		if zfams[name] == nil {
			t.Errorf("gzip scrape lacks %s", name)
		}
	}
	if code, _ := get("/nothing"); code != 404 {
		t.Errorf("/nothing: %d, want 404", code)
	}
}

// TestNoOptionalSources: without a gateway, shipper or config source their
// metrics are absent, not zero.
func TestNoOptionalSources(t *testing.T) {
	t.Parallel()
	m := New(Options{Consoles: slices.Values([]conserver.Status(nil)), NoRuntime: true})
	fams := scrape(t, m.Handler())
	for name := range fams {
		if strings.HasPrefix(name, "solgate_gateway_") || strings.HasPrefix(name, "solgate_syslog_") || strings.HasPrefix(name, "solgate_config_") {
			t.Errorf("%s present without its source", name)
		}
	}
	if v, ok := value(fams, "solgate_consoles", "state", "up"); !ok || v != 0 {
		t.Errorf("solgate_consoles{state=up} = %v, %v; want 0", v, ok)
	}
}

// fleet is n consoles in plausible states.
func fleet(n int) []conserver.Status {
	now := time.Now()
	out := make([]conserver.Status, n)
	for i := range out {
		st := conserver.Up
		if i%50 == 0 {
			st = conserver.Retrying
		}
		out[i] = conserver.Status{Name: fmt.Sprintf("node%05d", i), BMC: fmt.Sprintf("10.1.%d.%d:623", i/250, i%250), State: st,
			Since: now, UpSince: now, Reconnects: i % 7, BytesIn: uint64(i) * 4096, BytesOut: uint64(i), LastOutput: now,
			SOL: ipmilan.SOLStats{Retransmits: uint64(i % 3)}, Log: logstore.WriterStats{Bytes: int64(i) * 4096}}
	}
	return out
}

// BenchmarkScrape10000 is one scrape of 10,000 consoles through the HTTP
// handler: time per scrape, and the size of the exposition (plain and
// gzip, as Prometheus asks for it).
func BenchmarkScrape10000(b *testing.B) {
	cons := fleet(10_000)
	m := New(Options{Consoles: slices.Values(cons), NoRuntime: true, Config: fakeConfig{Fingerprint: "0123456789abcdef"},
		Syslog: fakeSyslog{{Key: "tcp://127.0.0.1:514"}}, Gateway: fakeGateway{}})
	for _, enc := range []string{"identity", "gzip"} {
		b.Run(enc, func(b *testing.B) {
			var size int
			for b.Loop() {
				rec := httptest.NewRecorder()
				req := httptest.NewRequest("GET", "/metrics", nil)
				req.Header.Set("Accept-Encoding", enc)
				m.Handler().ServeHTTP(rec, req)
				if rec.Code != 200 {
					b.Fatalf("scrape: %d", rec.Code)
				}
				size = rec.Body.Len()
			}
			b.ReportMetric(float64(size), "bytes/scrape")
		})
	}
}

func TestAcceptsGzip(t *testing.T) {
	t.Parallel()
	for h, want := range map[string]bool{
		"": false, "gzip": true, "identity": false, "br, gzip;q=0.5": true, "GZIP": true,
		"gzip;q=0": false, "gzip; q=0.0": false, "deflate, identity;q=0.1": false,
	} {
		if got := acceptsGzip(h); got != want {
			t.Errorf("acceptsGzip(%q) = %v, want %v", h, got, want)
		}
	}
}

// TestLabelEscaping: a value with the characters the text format escapes
// parses back unchanged.
func TestLabelEscaping(t *testing.T) {
	t.Parallel()
	odd := "a\\b\"c\nd"
	m := New(Options{Consoles: slices.Values([]conserver.Status{{Name: odd, State: conserver.Up}}), NoRuntime: true})
	fams := scrape(t, m.Handler())
	if v, ok := value(fams, "solgate_console_up", "console", odd); !ok || v != 1 {
		t.Errorf("console %q: %v %v", odd, v, ok)
	}
}
