package main

import (
	"context"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// ctl finds the daemon's state_dir in the configuration even when the file
// no longer loads (a reload after a bad edit must reach the daemon), and
// names the file when it cannot read it.
func TestCtlStateDir(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, tc := range []struct {
		name, text, want string
	}{
		{"invalid config, valid TOML", "[server]\nstate_dir = \"/srv/sg/state\"\nbogus_key = 1\n", "/srv/sg/state"},
		{"no state_dir", "[server]\nlog_dir = \"/x\"\n[[console]]\n", "/var/lib/solgate"},
		{"not TOML", "[server]\nstate_dir = '/srv/b' # here\nthis is = = not toml\n", "/srv/b"},
		{"not TOML, other table", "[defaults]\nstate_dir = \"/nope\"\n[server]\n\"unterminated\n", ""},
	} {
		got, err := ctlStateDir(write("c.toml", tc.text))
		if tc.want == "" {
			if err == nil || !strings.Contains(err.Error(), "cannot find state_dir") {
				t.Errorf("%s: %q, %v; want cannot find state_dir", tc.name, got, err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%s: %q, %v; want %q", tc.name, got, err, tc.want)
		}
	}
	// A file it cannot read: the error names it.
	for _, p := range []string{filepath.Join(dir, "missing.toml"), dir} {
		if _, err := ctlStateDir(p); err == nil || !strings.Contains(err.Error(), p) {
			t.Errorf("ctlStateDir(%s): %v, want an error naming it", p, err)
		}
	}
}

// FuzzScanStateDir: the line scanner of files that do not parse never
// panics, returns only text that is in the file, and finds a plain
// state_dir line of [server].
func FuzzScanStateDir(f *testing.F) {
	f.Add([]byte("[server]\nstate_dir = \"/var/lib/solgate\"\n"), "/d")
	f.Add([]byte("[ server ]\r\nstate_dir='/x' # c\n"), "/y")
	f.Add([]byte("state_dir = \"/top\"\n[server]\nstate_dir = \"\"\n"), "a b")
	f.Add([]byte("\x00[server]\nstate_dir = \"#\"\n"), "#")
	f.Fuzz(func(t *testing.T, data []byte, dir string) {
		if got := scanStateDir(data); got != "" && !strings.Contains(string(data), got) {
			t.Fatalf("scanStateDir(%q) = %q, not in the file", data, got)
		}
		if dir == "" || strings.ContainsAny(dir, "\"\r\n#") || strings.TrimSpace(dir) != dir {
			return
		}
		file := append([]byte("[server]\nstate_dir = \""+dir+"\"\n"), data...)
		if got := scanStateDir(file); got != dir {
			t.Fatalf("scanStateDir(%q) = %q, want %q", file, got, dir)
		}
	})
}

// TestCtlNoAnswer: a daemon that accepts (the kernel does, even for a
// stopped process) and never answers is given up on after --timeout, and
// the message says what to look at; without --timeout the wait is 30 s,
// 5 minutes for a reload or a reopen of a hostlist.
func TestCtlNoAnswer(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "ctl.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			defer c.Close() // held, never answered
		}
	}()
	start := time.Now()
	err = run(context.Background(), []string{"ctl", "--socket", sock, "--timeout", "300ms", "status"}, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "no answer from solgate serve: none within 300ms: is it stopped or stuck?") {
		t.Errorf("ctl status: %v", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("gave up after %v", d)
	}
	var help strings.Builder
	run(context.Background(), []string{"ctl", "--help"}, io.Discard, &help)
	if !strings.Contains(help.String(), "default 30s; reload and reopen of a hostlist 5m") {
		t.Errorf("--help does not give the default timeouts:\n%s", help.String())
	}
}
