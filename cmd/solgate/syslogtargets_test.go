package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/solgate/solgate/conserver/config"
	"github.com/solgate/solgate/logstore/syslog"
)

func TestSyslogTargets(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "solgate.toml")
	os.WriteFile(path, []byte(`[[console]]
name = "n[1-2]"
bmc = "{name}-bmc"
[[syslog]]
address = "tcp://127.0.0.1:10514"
format = "rfc3164"
facility = "local3"
consoles = "n1"
patterns = ["alert:fire"]
severity = "notice"
`), 0o600)
	cfg, err := config.LoadWith(path, config.Options{SkipSecrets: true, LookupEnv: func(string) (string, bool) { return "", false }})
	if err != nil {
		t.Fatal(err)
	}
	ts := syslogTargets(cfg)
	if len(ts) != 1 {
		t.Fatalf("%d targets", len(ts))
	}
	tg := ts[0]
	if tg.Network != "tcp" || tg.Address != "127.0.0.1:10514" || tg.Format != syslog.RFC3164 || tg.Facility != 19 ||
		tg.Severity != "notice" || len(tg.Patterns) != 1 || tg.Patterns[0].Severity != syslog.Alert || tg.Name != "tcp://127.0.0.1:10514" {
		t.Fatalf("target %+v", tg)
	}
	if tg.Ships == nil || !tg.Ships("n1") || tg.Ships("n2") {
		t.Fatal("consoles = n1 not mapped")
	}
}
