package metrics

import (
	"bufio"
	"io"
	"iter"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/common/expfmt"

	"github.com/solgate/solgate/conserver"
	"github.com/solgate/solgate/logstore/syslog"
)

// Gateway is what the SSH gateway tells metrics. ok false means there is
// no gateway running (not configured, or not started yet): its metrics are
// left out.
type Gateway interface {
	GatewayStats() (s GatewayStats, ok bool)
}

// GatewayStats are the SSH gateway's figures at one moment.
type GatewayStats struct {
	Connections     int // TCP connections open
	Unauthenticated int // of those, not yet authenticated
	Sessions        int // SSH sessions open (attached or running a command)
	// AuthFailures counts connections refused at authentication (no
	// offered key or certificate was accepted) since the gateway started.
	AuthFailures uint64
	// Since the gateway started: connections closed before the SSH
	// handshake because the unauthenticated cap was reached (RefusedCap)
	// or their source was in back-off after failed logins
	// (RefusedBackoff), and unauthenticated connections closed to make
	// room for another source's (ClosedForRoom); authenticated connections
	// closed because the gateway's connection cap was reached
	// (RefusedConns).
	RefusedCap, RefusedBackoff, ClosedForRoom, RefusedConns uint64
}

// Syslog is what the syslog shipper tells metrics, one TargetStats per
// target; *syslog.Shipper implements it.
type Syslog interface {
	Stats() []syslog.TargetStats
}

// ConfigSource reports the configuration reloads.
type ConfigSource interface {
	ConfigStats() ConfigStats
}

// ConfigStats describe the running configuration and its reloads.
type ConfigStats struct {
	Reloads  uint64 // reloads applied since start-up
	Failures uint64 // reloads refused (invalid files, refused by the manager)
	// LastAttempt is the last reload (start-up counts as one), LastSuccess
	// the last one applied; LastOK says whether the last attempt was.
	LastAttempt, LastSuccess time.Time
	LastOK                   bool
	Fingerprint              string // config.Config.Fingerprint of the running configuration
}

// Options are a Metrics' sources. Consoles is required; a nil Gateway,
// Syslog or Config leaves its metrics out.
type Options struct {
	// Consoles yields every console's Status at scrape time.
	Consoles iter.Seq[conserver.Status]
	Gateway  Gateway
	Syslog   Syslog
	Config   ConfigSource
	// LogDropped, if set, counts the daemon log records dropped (its
	// output blocked).
	LogDropped func() uint64
	// Version goes into solgate_build_info.
	Version string
	// Ready reports whether the daemon is serving (it told systemd READY);
	// /readyz answers 503 while it returns false. Nil: always ready.
	Ready func() bool
	// NoRuntime leaves out the Go runtime and process metrics (tests and
	// benchmarks of the console part).
	NoRuntime bool
}

// ManagerConsoles yields the Status of every console m runs, in
// configuration order.
func ManagerConsoles(m *conserver.Manager) iter.Seq[conserver.Status] {
	return func(yield func(conserver.Status) bool) {
		for _, c := range m.Consoles() {
			if !yield(c.Status()) {
				return
			}
		}
	}
}

// Metrics is the registry of solgate's metrics and its HTTP handler.
type Metrics struct {
	opts Options
	reg  *prometheus.Registry
	h    http.Handler
	sem  chan struct{} // scrapes in progress, at most cap
}

// New returns the metrics of the given sources.
func New(o Options) *Metrics {
	m := &Metrics{opts: o, reg: prometheus.NewRegistry(), sem: make(chan struct{}, maxScrapes)}
	m.reg.MustRegister(newCollector(o))
	if !o.NoRuntime {
		m.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /metrics", m.serveMetrics)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if o.Ready != nil && !o.Ready() {
			w.WriteHeader(http.StatusServiceUnavailable)
			w.Write([]byte("not ready\n"))
			return
		}
		w.Write([]byte("ready\n"))
	})
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Write([]byte("solgate: /metrics (Prometheus), /healthz, /readyz\n"))
	})
	m.h = mux
	return m
}

// maxScrapes bounds the scrapes served at once; more get 503.
const maxScrapes = 4

// textFormat is what /metrics serves: the text exposition format 0.0.4,
// which every Prometheus version scrapes.
var textFormat = expfmt.NewFormat(expfmt.TypeTextPlain)

// serveMetrics writes the registry's families (daemon-wide, Go, process)
// and then the per-console ones, gzip-compressed if the scraper accepts
// it.
func (m *Metrics) serveMetrics(w http.ResponseWriter, r *http.Request) {
	select {
	case m.sem <- struct{}{}:
		defer func() { <-m.sem }()
	default:
		http.Error(w, "too many scrapes at once", http.StatusServiceUnavailable)
		return
	}
	mfs, err := m.reg.Gather()
	if err != nil && len(mfs) == 0 {
		http.Error(w, "metrics: "+err.Error(), http.StatusInternalServerError)
		return
	}
	var list []conserver.Status
	if m.opts.Consoles != nil {
		for s := range m.opts.Consoles {
			list = append(list, s)
		}
	}
	h := w.Header()
	h.Set("Content-Type", string(textFormat))
	var out io.Writer = w
	if acceptsGzip(r.Header.Get("Accept-Encoding")) {
		h.Set("Content-Encoding", "gzip")
		h.Add("Vary", "Accept-Encoding")
		gz, _ := gzip.NewWriterLevel(w, gzip.BestSpeed)
		defer gz.Close()
		out = gz
	}
	bw := bufio.NewWriterSize(out, 32<<10)
	enc := expfmt.NewEncoder(bw, textFormat)
	for _, mf := range mfs {
		if err := enc.Encode(mf); err != nil {
			return // the scraper went away
		}
	}
	writeConsoles(bw, list)
	bw.Flush()
}

// acceptsGzip reports whether an Accept-Encoding header allows gzip.
func acceptsGzip(h string) bool {
	for part := range strings.SplitSeq(h, ",") {
		enc, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		if !strings.EqualFold(strings.TrimSpace(enc), "gzip") {
			continue
		}
		if q, ok := strings.CutPrefix(strings.TrimSpace(params), "q="); ok {
			if v, err := strconv.ParseFloat(q, 64); err == nil && v == 0 {
				return false
			}
		}
		return true
	}
	return false
}

// Names returns the name of every solgate_ metric family this package
// can expose (some only with their source, or once they have a value),
// sorted; Go's and the process's own (go_, process_) are not included.
// For checks of dashboards and alert rules.
func Names() []string {
	names := append(consoleMetricNames(), daemonNames...)
	slices.Sort(names)
	return slices.Compact(names)
}

// Handler serves /metrics, /healthz and /readyz.
func (m *Metrics) Handler() http.Handler { return m.h }

// Gatherer is the registry, for tests and other exporters.
func (m *Metrics) Gatherer() prometheus.Gatherer { return m.reg }
