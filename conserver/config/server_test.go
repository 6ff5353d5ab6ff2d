package config

import (
	"slices"
	"strings"
	"testing"
	"time"
)

func TestDaemonKeys(t *testing.T) {
	t.Parallel()
	const head = "[server]\n"
	c := mustLoad(t, map[string]string{"solgate.toml": head + `log_format = "json"
reconnect_min = "200ms"
reconnect_max = "30s"
reconnect_stable = "10s"
max_handshakes = 8
shutdown_timeout = "2s"
steal_grace = "0"
steal_limit = 2
steal_window = "5m"
boot_firmware = ["^Award BIOS"]
boot_kernel = []
`})
	d := c.Server.Daemon
	want := Daemon{LogFormat: "json", ReconnectMin: 200 * time.Millisecond, ReconnectMax: 30 * time.Second,
		ReconnectStable: 10 * time.Second, MaxHandshakes: 8, ShutdownTimeout: 2 * time.Second, StealGrace: 0,
		StealLimit: 2, StealWindow: 5 * time.Minute, BootFirmware: []string{"^Award BIOS"}, BootKernel: []string{}}
	if d.LogFormat != want.LogFormat || d.ReconnectMin != want.ReconnectMin || d.ReconnectMax != want.ReconnectMax ||
		d.ReconnectStable != want.ReconnectStable || d.MaxHandshakes != want.MaxHandshakes || d.ShutdownTimeout != want.ShutdownTimeout ||
		d.StealGrace != want.StealGrace || d.StealLimit != want.StealLimit || d.StealWindow != want.StealWindow ||
		!slices.Equal(d.BootFirmware, want.BootFirmware) || len(d.BootKernel) != 0 {
		t.Fatalf("daemon settings %+v, want %+v", d, want)
	}

	// Defaults, also without a [server] table.
	c = mustLoad(t, map[string]string{"solgate.toml": ""})
	if d := c.Server.Daemon; d.ReconnectMin != time.Second || d.ReconnectMax != 5*time.Minute || d.MaxHandshakes != 64 ||
		d.StealGrace != 10*time.Minute || !slices.Equal(d.BootKernel, DefaultBootKernel) || d.LogFormat != "text" {
		t.Fatalf("defaults: %+v", d)
	}

	// A change of a daemon key is a [server] change, not a console one.
	c2 := mustLoad(t, map[string]string{"solgate.toml": head + "reconnect_max = \"1m\"\n"})
	if c.Equal(c2) {
		t.Fatal("reconnect_max change: configs equal")
	}
	if d := Compare(c, c2); !d.Server || len(d.Changed) != 0 {
		t.Fatalf("diff %+v: want a server change only", d)
	}
	var dump strings.Builder
	if err := c2.Dump(&dump); err != nil || !strings.Contains(dump.String(), "reconnect_max = \"1m\"\n") {
		t.Fatalf("dump: %v\n%s", err, dump.String())
	}
}

func TestDaemonKeyErrors(t *testing.T) {
	t.Parallel()
	_, err := loadTree(t, map[string]string{"solgate.toml": `[server]
log_format = "xml"
reconnect_min = "1m"
reconnect_max = "1s"
max_handshakes = 0
steal_limit = -1
steal_window = "soon"
boot_kernel = ["Lin", "^ok"]
reconect_stable = "1m"
`}, Options{})
	got := strings.Join(errorLines(t, err), "\n")
	for _, want := range []string{
		`solgate.toml:2: [server] log_format: "xml" is not one of text, json`,
		`solgate.toml:4: [server] reconnect_max: 1s is shorter than reconnect_min (1m)`,
		`solgate.toml:5: [server] max_handshakes: 0 is outside 1 to 4096`,
		`solgate.toml:6: [server] steal_limit: -1 is outside 1 to 1000`,
		`solgate.toml:7: [server] steal_window: duration "soon"`,
		`solgate.toml:8: [server] boot_kernel[0]: "Lin": want 4 to 128 bytes`,
		`solgate.toml:8: [server] boot_kernel[1]: "^ok": want 4 to 128 bytes`,
		`solgate.toml:9: unknown key "reconect_stable" in [server] (did you mean "reconnect_stable"?)`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("errors lack %q:\n%s", want, got)
		}
	}
}

func TestGatewayLimitKeys(t *testing.T) {
	t.Parallel()
	c := mustLoad(t, map[string]string{"solgate.toml": `[server]
ssh_max_sessions = 100
ssh_max_sessions_per_user = 5
ssh_max_unauthenticated = 10
ssh_handshake_timeout = "5s"
ssh_idle_timeout = "1h"
`})
	d := c.Server.Daemon
	if d.SSHMaxSessions != 100 || d.SSHMaxSessionsPerUser != 5 || d.SSHMaxUnauthenticated != 10 ||
		d.SSHHandshakeTimeout != 5*time.Second || d.SSHIdleTimeout != time.Hour {
		t.Fatalf("gateway limits %+v", d)
	}
	if d := mustLoad(t, map[string]string{"solgate.toml": ""}).Server.Daemon; d.SSHMaxSessions != 2048 || d.SSHHandshakeTimeout != 30*time.Second {
		t.Fatalf("gateway defaults %+v", d)
	}
	_, err := loadTree(t, map[string]string{"solgate.toml": "[server]\nssh_max_sessions = 0\nssh_handshake_timeout = \"1ms\"\n"}, Options{})
	got := strings.Join(errorLines(t, err), "\n")
	for _, want := range []string{
		`solgate.toml:2: [server] ssh_max_sessions: 0 is outside 1 to 100000`,
		`solgate.toml:3: [server] ssh_handshake_timeout: 1ms is outside 1s to 10m`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("errors lack %q:\n%s", want, got)
		}
	}
}
