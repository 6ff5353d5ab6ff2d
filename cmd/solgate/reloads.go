package main

import (
	"sync"
	"time"

	"github.com/solgate/solgate/conserver/config"
	"github.com/solgate/solgate/conserver/metrics"
)

// reloadStats counts solgate serve's configuration reloads for metrics
// (solgate_config_*) and solgate ctl. Safe for concurrent use.
type reloadStats struct {
	mu      sync.Mutex // guards the fields below
	s       metrics.ConfigStats
	lastErr string // why the last reload was refused ("" if it was applied)
}

// loaded records the configuration serve started with.
func (r *reloadStats) loaded(at time.Time, cfg *config.Config) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.s.LastAttempt, r.s.LastSuccess, r.s.LastOK = at, at, true
	r.s.Fingerprint = cfg.Fingerprint()
}

// record counts one reload: applied (cfg is the new configuration) or
// refused (err says why).
func (r *reloadStats) record(at time.Time, cfg *config.Config, err error) {
	fp := ""
	if cfg != nil {
		fp = cfg.Fingerprint() // outside the lock: 10,000 consoles take a few ms
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.s.LastAttempt = at
	if err != nil {
		r.s.Failures++
		r.s.LastOK = false
		r.lastErr = err.Error()
		return
	}
	r.s.Reloads++
	r.s.LastSuccess, r.s.LastOK, r.lastErr = at, true, ""
	r.s.Fingerprint = fp
}

// ConfigStats implements metrics.ConfigSource.
func (r *reloadStats) ConfigStats() metrics.ConfigStats {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.s
}

// lastError is why the last reload was refused, "" if it was applied.
func (r *reloadStats) lastError() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.lastErr
}
