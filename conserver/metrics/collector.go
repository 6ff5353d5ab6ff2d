package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// daemonNames are the names of the families desc made.
var daemonNames []string

func desc(name, help string, labels ...string) *prometheus.Desc {
	daemonNames = append(daemonNames, name)
	return prometheus.NewDesc(name, help, labels, nil)
}

var (
	// Daemon-wide.
	buildInfo = desc("solgate_build_info", "Always 1; label version is solgate's version.", "version")

	gwConnections  = desc("solgate_gateway_connections", "SSH connections open.")
	gwUnauth       = desc("solgate_gateway_unauthenticated_connections", "SSH connections open that have not authenticated yet.")
	gwSessions     = desc("solgate_gateway_sessions", "SSH sessions open (attached or running a command).")
	gwAuthFailures = desc("solgate_gateway_auth_failures_total", "SSH connections refused at authentication.")
	gwRefused      = desc("solgate_gateway_refused_connections_total", "SSH connections closed by the gateway's limits: reason cap (the unauthenticated cap was reached), backoff (the source failed to log in too often), room (an unauthenticated connection closed to make room for another host's), connections (authenticated beyond ssh_max_sessions connections open).", "reason")

	slConnected  = desc("solgate_syslog_connected", "1 if the syslog target is connected (UDP and unix datagram targets: sending), else 0.", "target")
	slSent       = desc("solgate_syslog_sent_messages_total", "Messages the syslog receiver has taken.", "target")
	slSentBytes  = desc("solgate_syslog_sent_bytes_total", "Bytes of the messages the syslog receiver has taken (before framing).", "target")
	slBacklog    = desc("solgate_syslog_backlog_messages", "Lines sent to the receiver and not yet taken (at most the window; lines not yet read from the log are not counted: see _backlog_consoles and _backlog_age_seconds).", "target")
	slBacklogCon = desc("solgate_syslog_backlog_consoles", "Consoles with lines the receiver has not yet taken (not yet read from the log, or sent and not yet acknowledged).", "target")
	slBacklogAge = desc("solgate_syslog_backlog_age_seconds", "Age of the oldest line not yet taken by the receiver (0: none waiting).", "target")
	slReconnects = desc("solgate_syslog_reconnects_total", "Connections to the target made after the first.", "target")
	slDialErrors = desc("solgate_syslog_dial_errors_total", "Failed connection attempts to the target.", "target")
	slSkipped    = desc("solgate_syslog_skipped_records_total", "Log records the shipper could not read and reported as a gap instead.", "target")
	slLastError  = desc("solgate_syslog_last_error_timestamp_seconds", "When the target last failed (Unix time); absent if it never did.", "target")

	cfgReloads     = desc("solgate_config_reloads_total", "Configuration reloads since start-up, by result (success, failure).", "result")
	cfgLastOK      = desc("solgate_config_last_reload_successful", "1 if the last configuration reload was applied, 0 if it was refused.")
	cfgLastAttempt = desc("solgate_config_last_reload_timestamp_seconds", "When the configuration was last (re)loaded, applied or not (Unix time).")
	cfgLastSuccess = desc("solgate_config_last_reload_success_timestamp_seconds", "When a configuration was last applied, start-up included (Unix time).")
	cfgInfo        = desc("solgate_config_info", "Always 1; label fingerprint identifies the running configuration (secrets count by their source only).", "fingerprint")

	logDropped = desc("solgate_daemon_log_dropped_records_total", "Daemon log records that never reached its output (stderr): dropped because it did not take them fast enough, or their write failed.")
)

// collector builds the daemon-wide metrics at scrape time from the
// sources, through the registry; the per-console families are written by
// writeConsoles.
type collector struct{ o Options }

func newCollector(o Options) *collector { return &collector{o: o} }

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- buildInfo
	if c.o.Gateway != nil {
		for _, d := range []*prometheus.Desc{gwConnections, gwUnauth, gwSessions, gwAuthFailures, gwRefused} {
			ch <- d
		}
	}
	if c.o.Syslog != nil {
		for _, d := range []*prometheus.Desc{slConnected, slSent, slSentBytes, slBacklog, slBacklogCon, slBacklogAge,
			slReconnects, slDialErrors, slSkipped, slLastError} {
			ch <- d
		}
	}
	if c.o.Config != nil {
		for _, d := range []*prometheus.Desc{cfgReloads, cfgLastOK, cfgLastAttempt, cfgLastSuccess, cfgInfo} {
			ch <- d
		}
	}
	if c.o.LogDropped != nil {
		ch <- logDropped
	}
}

func (c *collector) gateway() (GatewayStats, bool) {
	if c.o.Gateway == nil {
		return GatewayStats{}, false
	}
	return c.o.Gateway.GatewayStats()
}

func unix(t time.Time) float64 { return float64(t.UnixNano()) / 1e9 }

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	const (
		gauge   = prometheus.GaugeValue
		counter = prometheus.CounterValue
	)
	m := func(d *prometheus.Desc, t prometheus.ValueType, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, t, v, labels...)
	}
	v := c.o.Version
	if v == "" {
		v = "unknown"
	}
	m(buildInfo, gauge, 1, v)
	if g, ok := c.gateway(); ok {
		m(gwConnections, gauge, float64(g.Connections))
		m(gwUnauth, gauge, float64(g.Unauthenticated))
		m(gwSessions, gauge, float64(g.Sessions))
		m(gwAuthFailures, counter, float64(g.AuthFailures))
		m(gwRefused, counter, float64(g.RefusedCap), "cap")
		m(gwRefused, counter, float64(g.RefusedBackoff), "backoff")
		m(gwRefused, counter, float64(g.ClosedForRoom), "room")
		m(gwRefused, counter, float64(g.RefusedConns), "connections")
	}
	if c.o.Syslog != nil {
		for _, t := range c.o.Syslog.Stats() {
			k := t.Key
			m(slConnected, gauge, b2f(t.Connected), k)
			m(slSent, counter, float64(t.Sent), k)
			m(slSentBytes, counter, float64(t.Bytes), k)
			m(slBacklog, gauge, float64(t.BacklogLines), k)
			m(slBacklogCon, gauge, float64(t.BacklogConsoles), k)
			m(slBacklogAge, gauge, t.BacklogAge.Seconds(), k)
			m(slReconnects, counter, float64(t.Reconnects), k)
			m(slDialErrors, counter, float64(t.DialErrors), k)
			m(slSkipped, counter, float64(t.Skipped), k)
			if !t.LastErrorTime.IsZero() {
				m(slLastError, gauge, unix(t.LastErrorTime), k)
			}
		}
	}
	if c.o.Config != nil {
		s := c.o.Config.ConfigStats()
		m(cfgReloads, counter, float64(s.Reloads), "success")
		m(cfgReloads, counter, float64(s.Failures), "failure")
		m(cfgLastOK, gauge, b2f(s.LastOK))
		if !s.LastAttempt.IsZero() {
			m(cfgLastAttempt, gauge, unix(s.LastAttempt))
		}
		if !s.LastSuccess.IsZero() {
			m(cfgLastSuccess, gauge, unix(s.LastSuccess))
		}
		if s.Fingerprint != "" {
			m(cfgInfo, gauge, 1, s.Fingerprint)
		}
	}
	if c.o.LogDropped != nil {
		m(logDropped, counter, float64(c.o.LogDropped()))
	}
}
