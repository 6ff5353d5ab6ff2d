package main

import (
	"context"
	"path/filepath"

	"github.com/solgate/solgate/conserver/config"
	"github.com/solgate/solgate/logstore/syslog"
)

// The syslog shipper as a component of solgate serve: it reads the log
// store at its saved positions (state_dir/syslog) and ships to the
// [[syslog]] targets, which it re-reads on every reload.
func init() {
	serveComponents = append(serveComponents, func(d *daemon) (component, error) {
		cfg := d.watcher.Config()
		return &syslogComponent{d: d, sh: syslog.NewShipper(d.store, filepath.Join(cfg.Server.StateDir, "syslog"), d.log)}, nil
	})
}

type syslogComponent struct {
	d  *daemon
	sh *syslog.Shipper
}

func (c *syslogComponent) Name() string { return "syslog" }

func (c *syslogComponent) Start(ctx context.Context) error {
	return c.sh.Apply(syslogTargets(c.d.m.Config()))
}

func (c *syslogComponent) Reload(ctx context.Context, cfg *config.Config, diff config.Diff) {
	if !diff.Syslog {
		return
	}
	if err := c.sh.Apply(syslogTargets(cfg)); err != nil {
		c.d.log.Error("serve: syslog targets not changed", "err", err)
	}
}

func (c *syslogComponent) Stop(ctx context.Context) error { return c.sh.Close() }
