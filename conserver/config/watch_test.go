package config

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// fakeLoads returns a loader that hands out configs with distinct hashes
// (or an error when fail is set) and counts its calls.
type fakeLoads struct {
	calls atomic.Int32
	gen   atomic.Int32 // bump to make the next load differ
	fail  atomic.Bool
}

func (f *fakeLoads) load() (*Config, error) {
	f.calls.Add(1)
	if f.fail.Load() {
		return nil, &ErrorList{Errors: []*Error{{File: "x.toml", Line: 1, Msg: "bad"}}}
	}
	c := &Config{Server: Server{ReloadInterval: 30 * time.Second}}
	c.hash[0] = byte(f.gen.Load())
	return c, nil
}

func startFake(t *testing.T, opts WatchOptions) (*Watcher, *fakeLoads, context.CancelFunc) {
	t.Helper()
	f := &fakeLoads{}
	w := newWatcher("/nonexistent/solgate.toml", opts, f.load)
	first, _ := f.load()
	w.cur.Store(first)
	f.calls.Store(0)
	ctx, cancel := context.WithCancel(t.Context())
	go w.loop(ctx, nil)
	return w, f, cancel
}

func TestDebounceBurstIsOneReload(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w, f, cancel := startFake(t, WatchOptions{Interval: -1})
		defer cancel()
		f.gen.Store(1)
		// Ten events 50 ms apart: each restarts the 150 ms quiet period.
		for range 10 {
			w.kick()
			time.Sleep(50 * time.Millisecond)
			synctest.Wait()
			if n := f.calls.Load(); n != 0 {
				t.Fatalf("reloaded %d times during the burst", n)
			}
		}
		time.Sleep(100 * time.Millisecond)
		synctest.Wait()
		if n := f.calls.Load(); n != 1 {
			t.Fatalf("after the quiet period: %d reloads, want 1", n)
		}
		ev := <-w.Events()
		if ev.Reason != ReasonFiles || ev.Err != nil || ev.Config.hash[0] != 1 {
			t.Errorf("event = %+v", ev)
		}
	})
}

func TestDebounceEndlessEventsStillReload(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w, f, cancel := startFake(t, WatchOptions{Interval: -1})
		defer cancel()
		f.gen.Store(1)
		start := time.Now()
		for f.calls.Load() == 0 {
			if time.Since(start) > 10*time.Second {
				t.Fatal("no reload in 10s of continuous events")
			}
			w.kick()
			time.Sleep(50 * time.Millisecond)
			synctest.Wait()
		}
		if el := time.Since(start); el < 2*time.Second || el > 2100*time.Millisecond {
			t.Errorf("reload after %v of continuous events, want about 2s", el)
		}
		<-w.Events()
	})
}

func TestDebounceUnchangedIsSilent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w, f, cancel := startFake(t, WatchOptions{Interval: -1})
		defer cancel()
		w.kick()
		time.Sleep(time.Second)
		synctest.Wait()
		if n := f.calls.Load(); n != 1 {
			t.Fatalf("%d reloads, want 1", n)
		}
		select {
		case ev := <-w.Events():
			t.Fatalf("unchanged config produced an event: %+v", ev)
		default:
		}
	})
}

func TestPeriodicAndReload(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w, f, cancel := startFake(t, WatchOptions{})
		defer cancel()
		time.Sleep(29 * time.Second)
		synctest.Wait()
		if n := f.calls.Load(); n != 0 {
			t.Fatalf("%d reloads before the interval", n)
		}
		time.Sleep(2 * time.Second)
		synctest.Wait()
		if n := f.calls.Load(); n != 1 {
			t.Fatalf("%d reloads after the 30s interval, want 1", n)
		}
		f.gen.Store(2)
		w.Reload()
		synctest.Wait()
		ev := <-w.Events()
		if ev.Reason != ReasonReload || ev.Config.hash[0] != 2 {
			t.Errorf("event = %+v", ev)
		}
		if n := f.calls.Load(); n != 2 {
			t.Errorf("%d reloads, want 2", n)
		}
		if w.Config().hash[0] != 2 {
			t.Error("Config() does not return the new snapshot")
		}
	})
}

func TestInvalidKeepsOldAndPeriodicDoesNotRepeat(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w, f, cancel := startFake(t, WatchOptions{Interval: 10 * time.Second})
		defer cancel()
		old := w.Config()
		f.fail.Store(true)
		w.kick()
		time.Sleep(200 * time.Millisecond)
		synctest.Wait()
		ev := <-w.Events()
		if ev.Err == nil || ev.Config != old || ev.Reason != ReasonFiles {
			t.Fatalf("event = %+v, want an error with the old config", ev)
		}
		if w.Config() != old {
			t.Fatal("invalid config replaced the snapshot")
		}
		// Three periodic checks see the same error: no more events.
		time.Sleep(35 * time.Second)
		synctest.Wait()
		if n := f.calls.Load(); n != 4 {
			t.Fatalf("%d loads, want 4", n)
		}
		select {
		case ev := <-w.Events():
			t.Fatalf("repeated error event: %+v", ev)
		default:
		}
		// An explicit reload reports it again.
		w.Reload()
		synctest.Wait()
		if ev := <-w.Events(); ev.Err == nil {
			t.Fatalf("reload of invalid files: %+v", ev)
		}
		f.fail.Store(false)
		f.gen.Store(5)
		w.kick()
		time.Sleep(200 * time.Millisecond)
		synctest.Wait()
		if ev := <-w.Events(); ev.Err != nil || ev.Config.hash[0] != 5 {
			t.Fatalf("fixed config: %+v", ev)
		}
	})
}

// Real file system tests: fsnotify, editors, Kubernetes.

const fsTimeout = 10 * time.Second

const baseConfig = `
[defaults]
user = "ADMIN"
password_file = "bmc.pass"
bmc = "{name}-bmc"

[[console]]
name = "node[1-3]"
`

// startReal runs a Watcher on dir/solgate.toml with periodic checks off, so
// that only file notifications can cause events. The debounce is longer
// than the default so that a test's own writes, on a loaded machine, still
// fall into one quiet period.
func startReal(t *testing.T, dir string) *Watcher {
	t.Helper()
	return startRealDebounce(t, dir, 250*time.Millisecond)
}

func startRealDebounce(t *testing.T, dir string, debounce time.Duration) *Watcher {
	t.Helper()
	w, err := NewWatcher(filepath.Join(dir, "solgate.toml"), WatchOptions{Interval: -1, Debounce: debounce})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- w.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		for range w.Events() {
		}
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	select {
	case <-w.started:
	case <-time.After(fsTimeout):
		t.Fatal("watcher loop does not start")
	}
	return w
}

func nextEvent(t *testing.T, w *Watcher) Event {
	t.Helper()
	select {
	case ev := <-w.Events():
		return ev
	case <-time.After(fsTimeout):
		t.Fatalf("no config event within %v", fsTimeout)
	}
	return Event{}
}

func noEvent(t *testing.T, w *Watcher, wait time.Duration) {
	t.Helper()
	select {
	case ev := <-w.Events():
		t.Fatalf("unexpected event: reason %q err %v diff %+v", ev.Reason, ev.Err, ev.Diff)
	case <-time.After(wait):
	}
}

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o640); err != nil {
		t.Fatal(err)
	}
}

func TestWatchWriteInPlace(t *testing.T) {
	t.Parallel()
	dir := writeTree(t, map[string]string{"solgate.toml": baseConfig, "bmc.pass": "pw\n"})
	w := startReal(t, dir)
	write(t, filepath.Join(dir, "solgate.toml"), strings.Replace(baseConfig, "node[1-3]", "node[1-4]", 1))
	ev := nextEvent(t, w)
	if ev.Err != nil || strings.Join(ev.Diff.Added, ",") != "node4" || len(ev.Diff.Changed) != 0 {
		t.Fatalf("event: err %v diff %+v", ev.Err, ev.Diff)
	}
	if ev.Reason != ReasonFiles {
		t.Errorf("reason %q", ev.Reason)
	}
}

func TestWatchVimRename(t *testing.T) {
	t.Parallel()
	dir := writeTree(t, map[string]string{"solgate.toml": baseConfig, "bmc.pass": "pw\n"})
	w := startReal(t, dir)
	p := filepath.Join(dir, "solgate.toml")
	// What vim does with backupcopy=no: swap and test files, then move
	// the original to a backup and write a new file.
	write(t, filepath.Join(dir, ".solgate.toml.swp"), "swap")
	write(t, filepath.Join(dir, "4913"), "")
	os.Remove(filepath.Join(dir, "4913"))
	if err := os.Rename(p, p+"~"); err != nil {
		t.Fatal(err)
	}
	write(t, p, strings.Replace(baseConfig, `user = "ADMIN"`, `user = "root"`, 1))
	os.Remove(p + "~")
	os.Remove(filepath.Join(dir, ".solgate.toml.swp"))
	ev := nextEvent(t, w)
	if ev.Err != nil || len(ev.Diff.Changed) != 3 || ev.Diff.Changed[0].What != ChangeConnection {
		t.Fatalf("event: err %v diff %+v", ev.Err, ev.Diff)
	}
	// Rename-over, as most other editors and config tools save.
	tmp := filepath.Join(dir, ".solgate.toml.tmp")
	write(t, tmp, strings.Replace(baseConfig, `user = "ADMIN"`, `user = "ops"`, 1))
	if err := os.Rename(tmp, p); err != nil {
		t.Fatal(err)
	}
	ev = nextEvent(t, w)
	if c, _ := ev.Config.Console("node1"); ev.Err != nil || c.User != "ops" {
		t.Fatalf("after rename-over: err %v", ev.Err)
	}
}

func TestWatchConfDirAddRemove(t *testing.T) {
	t.Parallel()
	dir := writeTree(t, map[string]string{"solgate.toml": baseConfig, "bmc.pass": "pw\n"})
	w := startReal(t, dir)
	// conf.d does not exist at start.
	confd := filepath.Join(dir, "conf.d")
	if err := os.Mkdir(confd, 0o750); err != nil {
		t.Fatal(err)
	}
	// Editor droppings in conf.d are not config.
	write(t, filepath.Join(confd, ".rack.toml.swp"), "junk [[[")
	write(t, filepath.Join(confd, "rack.toml~"), "junk [[[")
	write(t, filepath.Join(confd, "rack.toml"), "[[console]]\nname = \"gpu[1-2]\"\n")
	ev := nextEvent(t, w)
	if ev.Err != nil || strings.Join(ev.Diff.Added, ",") != "gpu1,gpu2" {
		t.Fatalf("conf.d file added: err %v diff %+v", ev.Err, ev.Diff)
	}
	if err := os.Remove(filepath.Join(confd, "rack.toml")); err != nil {
		t.Fatal(err)
	}
	ev = nextEvent(t, w)
	if ev.Err != nil || strings.Join(ev.Diff.Removed, ",") != "gpu1,gpu2" {
		t.Fatalf("conf.d file removed: err %v diff %+v", ev.Err, ev.Diff)
	}
}

// TestWatchSymlinkSwap: the files are reached through a symlink to a
// version folder, and a new version goes live by replacing that symlink
// atomically: the kubelet's ConfigMap volume (..data), and a deploy
// tool's release switch (current). Each applies at once, not at the
// periodic check (off here).
func TestWatchSymlinkSwap(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, link, v1, v2 string }{
		{"kubernetes", "..data", "..2026_11_23_10_00_00.1", "..2026_11_23_10_05_00.2"},
		{"release", "current", "v1", "v2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			version := func(name, cfg string) {
				must(t, os.Mkdir(filepath.Join(dir, name), 0o750))
				write(t, filepath.Join(dir, name, "solgate.toml"), cfg)
				write(t, filepath.Join(dir, name, "bmc.pass"), "pw\n")
			}
			version(tc.v1, baseConfig)
			must(t, os.Symlink(tc.v1, filepath.Join(dir, tc.link)))
			must(t, os.Symlink(tc.link+"/solgate.toml", filepath.Join(dir, "solgate.toml")))
			must(t, os.Symlink(tc.link+"/bmc.pass", filepath.Join(dir, "bmc.pass")))
			w := startReal(t, dir)

			version(tc.v2, strings.Replace(baseConfig, "node[1-3]", "node[2-3]", 1))
			must(t, os.Symlink(tc.v2, filepath.Join(dir, tc.link+"_tmp")))
			must(t, os.Rename(filepath.Join(dir, tc.link+"_tmp"), filepath.Join(dir, tc.link)))
			must(t, os.RemoveAll(filepath.Join(dir, tc.v1)))
			ev := nextEvent(t, w)
			if ev.Err != nil || strings.Join(ev.Diff.Removed, ",") != "node1" {
				t.Fatalf("after the swap: err %v diff %+v", ev.Err, ev.Diff)
			}
		})
	}
}

func TestWatchInvalidThenFix(t *testing.T) {
	t.Parallel()
	dir := writeTree(t, map[string]string{"solgate.toml": baseConfig, "bmc.pass": "pw\n"})
	w := startReal(t, dir)
	old := w.Config()
	p := filepath.Join(dir, "solgate.toml")
	write(t, p, baseConfig+"\n[[console]]\nname = \"node[4-\"\n")
	ev := nextEvent(t, w)
	var el *ErrorList
	if !errors.As(ev.Err, &el) || !strings.Contains(ev.Err.Error(), "solgate.toml:11") {
		t.Fatalf("invalid edit: err %v", ev.Err)
	}
	if ev.Config != old || w.Config() != old {
		t.Fatal("the old snapshot was not kept")
	}
	write(t, p, baseConfig+"\n[[console]]\nname = \"node[4-5]\"\n")
	ev = nextEvent(t, w)
	if ev.Err != nil || strings.Join(ev.Diff.Added, ",") != "node4,node5" {
		t.Fatalf("fix: err %v diff %+v", ev.Err, ev.Diff)
	}
}

func TestWatchBurstOneReload(t *testing.T) {
	t.Parallel()
	dir := writeTree(t, map[string]string{"solgate.toml": baseConfig, "bmc.pass": "pw\n"})
	w := startRealDebounce(t, dir, time.Second)
	p := filepath.Join(dir, "solgate.toml")
	for i := 1; i <= 20; i++ {
		write(t, p, strings.Replace(baseConfig, `user = "ADMIN"`, `user = "u`+string(rune('a'+i))+`"`, 1))
	}
	// The reload runs after the burst, so the one event carries the last
	// version; had it reloaded mid-burst, this would be an earlier one.
	ev := nextEvent(t, w)
	if c, _ := ev.Config.Console("node1"); ev.Err != nil || c.User != "uu" {
		t.Fatalf("first event: err %v user %q", ev.Err, c.User)
	}
	noEvent(t, w, 1500*time.Millisecond)
}

func TestWatchSecretFileChange(t *testing.T) {
	t.Parallel()
	dir := writeTree(t, map[string]string{"solgate.toml": baseConfig, "bmc.pass": "pw\n"})
	w := startReal(t, dir)
	write(t, filepath.Join(dir, "bmc.pass"), "new\n")
	ev := nextEvent(t, w)
	if ev.Err != nil || len(ev.Diff.Changed) != 3 || ev.Diff.Changed[0].What != ChangeCredentials {
		t.Fatalf("password change: err %v diff %+v", ev.Err, ev.Diff)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestReloadLogsNewWarnings: a warning an edit brings (two consoles on one
// BMC) is in the daemon log at that reload, where the person who saved
// the file looks; one the running config had already is not repeated.
func TestReloadLogsNewWarnings(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		var logged bytes.Buffer
		log := slog.New(slog.NewTextHandler(writerFunc(func(p []byte) (int, error) {
			mu.Lock()
			defer mu.Unlock()
			return logged.Write(p)
		}), nil))
		var gen atomic.Int32
		load := func() (*Config, error) {
			c := &Config{Server: Server{ReloadInterval: 30 * time.Second}}
			c.hash[0] = byte(gen.Load())
			if gen.Load() > 0 {
				c.Warnings = []string{"conf.d/a.toml:1: consoles n1 and n2 share BMC 10.0.0.1"}
			}
			return c, nil
		}
		w := newWatcher("/nonexistent/solgate.toml", WatchOptions{Interval: -1, Logger: log}, load)
		first, _ := load()
		w.cur.Store(first)
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		go w.loop(ctx, nil)
		count := func() int {
			mu.Lock()
			defer mu.Unlock()
			return strings.Count(logged.String(), "share BMC 10.0.0.1")
		}
		for i, want := range []int{1, 1} { // the edit that brings it, then another
			gen.Store(int32(i + 1))
			w.Reload()
			synctest.Wait()
			<-w.Events()
			if n := count(); n != want {
				t.Fatalf("after reload %d the warning is logged %d times, want %d:\n%s", i+1, n, want, logged.String())
			}
		}
	})
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }
