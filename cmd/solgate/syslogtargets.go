package main

import (
	"github.com/solgate/solgate/conserver/config"
	"github.com/solgate/solgate/logstore/syslog"
)

// syslogTargets maps the configuration's [[syslog]] entries onto the
// shipper's targets (solgate serve: sh.Apply(syslogTargets(cfg)) at start
// and on every reload).
func syslogTargets(cfg *config.Config) []syslog.Target {
	out := make([]syslog.Target, 0, len(cfg.Syslog))
	for i := range cfg.Syslog {
		s := &cfg.Syslog[i]
		t := syslog.Target{
			Name:              s.URL,
			Network:           s.Network,
			Address:           s.Address,
			Facility:          s.Facility,
			Severity:          s.Severity,
			NoDefaultPatterns: s.NoDefaultPatterns,
			CAFile:            s.CAFile,
			ServerName:        s.ServerName,
			CertFile:          s.CertFile,
			KeyFile:           s.KeyFile,
			MaxMessage:        s.MaxMessage,
			Backfill:          s.Backfill,
			Consoles:          s.Consoles,
		}
		if s.Format == "rfc3164" {
			t.Format = syslog.RFC3164
		}
		if s.Consoles != "" {
			t.Ships = s.Ships
		}
		for _, p := range s.Patterns {
			sev, err := syslog.ParseSeverity(p.Severity)
			if err != nil {
				continue // config validated the names
			}
			t.Patterns = append(t.Patterns, syslog.Pattern{Re: p.Re, Severity: sev})
		}
		out = append(out, t)
	}
	return out
}
