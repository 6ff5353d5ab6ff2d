// Package metrics exposes solgate serve's state to Prometheus: per console
// state, up-since, reconnects, bytes both ways, last output, SOL
// retransmits and losses, log drops; SSH gateway sessions and
// authentication failures; syslog shipping per target; configuration
// reloads and the running configuration's fingerprint; Go and process
// metrics. It also serves /healthz and /readyz.
//
// Entry points:
//
//	m := metrics.New(metrics.Options{Consoles: metrics.ManagerConsoles(mgr), Syslog: shipper, Gateway: gw, Config: cfgStats, Ready: ready})
//	http.Serve(l, m.Handler())   // /metrics, /healthz, /readyz
//
// Everything is collected at scrape time from the sources' snapshots
// (Console.Status, the shipper's and the gateway's Stats): nothing is
// updated on the console's hot path, and 10,000 consoles cost no metric
// objects between scrapes. Each scrape collects on its own; at most four
// are served at once, and more get 503 Service Unavailable.
//
// The names follow Prometheus conventions: the solgate_ prefix, base units
// (seconds, bytes), _total for counters, _timestamp_seconds for points in
// time, one label per dimension (console, state, target, result). The
// SOL counters are those of the console's current (or last) session, so
// they start again from zero at each reconnect, which rate() and
// increase() treat as a counter reset.
//
// The package knows nothing of SSH: the gateway's figures come through
// the Gateway interface declared here, which cmd/solgate adapts; the
// syslog shipper (*syslog.Shipper) satisfies Syslog as it is. It does not
// listen on a socket itself and keeps no history.
//
// A *Metrics is safe for concurrent use; the sources it is given must be
// too.
package metrics
