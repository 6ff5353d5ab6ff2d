package config

import (
	"context"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fsnotify/fsnotify"
)

// DefaultDebounce is how long the watcher waits after the last file event
// before reloading: editors and Kubernetes touch several files per save.
const DefaultDebounce = 150 * time.Millisecond

// Reasons an Event carries.
const (
	ReasonFiles    = "files changed"
	ReasonReload   = "reload requested"
	ReasonPeriodic = "periodic check"
)

// Event reports a reload that changed something or failed.
type Event struct {
	// Config is the snapshot in force after the event: the new one, or
	// after an error the previous one, which stays in force.
	Config *Config
	Diff   Diff   // from the previous snapshot; empty when Err is set
	Err    error  // why the files were rejected (an *ErrorList, usually)
	Reason string // ReasonFiles, ReasonReload or ReasonPeriodic
}

// WatchOptions tune a Watcher. The zero value is sensible.
type WatchOptions struct {
	// Debounce is the quiet time after a file event before reloading;
	// 0 means DefaultDebounce. Events that never pause still reload after
	// max(10*Debounce, 2s).
	Debounce time.Duration
	// Interval is how often the files are re-read without any event, as a
	// safety net (network file systems, missed events). 0 takes [server]
	// reload_interval; a negative value turns it off.
	Interval time.Duration
	// Logger receives one line per reload; nil discards.
	Logger *slog.Logger
	// Load is passed to LoadWith on every reload.
	Load Options
}

// Watcher keeps the current snapshot of a configuration and reloads it when
// its files change, when Reload is called (on SIGHUP) and periodically. A
// reload that yields the same effective configuration is silent; one that
// changes it emits an Event with the new snapshot and a Diff; one that
// fails validation emits an Event with Err and keeps the old snapshot.
type Watcher struct {
	path   string
	opts   WatchOptions
	log    *slog.Logger
	loadFn func() (*Config, error)

	cur     atomic.Pointer[Config]
	events  chan Event
	reload  chan struct{} // capacity 1: requests coalesce
	kicks   chan struct{} // capacity 1: file events coalesce
	started chan struct{} // closed when the loop runs (and Run's watches are in place)

	// Owned by the Run goroutine.
	lastErr string
}

// NewWatcher loads the configuration at path and returns a Watcher holding
// it. It fails if the configuration is invalid; nothing is watched until
// Run is called.
func NewWatcher(path string, opts WatchOptions) (*Watcher, error) {
	w := newWatcher(path, opts, nil)
	cfg, err := w.loadFn()
	if err != nil {
		return nil, err
	}
	w.cur.Store(cfg)
	return w, nil
}

func newWatcher(path string, opts WatchOptions, load func() (*Config, error)) *Watcher {
	if opts.Debounce <= 0 {
		opts.Debounce = DefaultDebounce
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	w := &Watcher{
		path:   filepath.Clean(path),
		opts:   opts,
		log:    log,
		loadFn: load,
		events: make(chan Event, 1),
		reload: make(chan struct{}, 1),
		kicks:  make(chan struct{}, 1),

		started: make(chan struct{}),
	}
	if w.loadFn == nil {
		w.loadFn = func() (*Config, error) { return LoadWith(w.path, w.opts.Load) }
	}
	return w
}

// Config returns the snapshot currently in force.
func (w *Watcher) Config() *Config { return w.cur.Load() }

// Events delivers reload results. Run closes it when it returns. Run waits
// for the receiver, so read it promptly.
func (w *Watcher) Events() <-chan Event { return w.events }

// Reload asks Run to re-read the files now (call it on SIGHUP). It never
// blocks; requests made while one is pending coalesce.
func (w *Watcher) Reload() {
	select {
	case w.reload <- struct{}{}:
	default:
	}
}

// Run watches the configuration's directories until ctx is done, then
// closes Events and returns nil. If file notifications are unavailable it
// logs why and relies on Reload and the periodic check. Call it once.
func (w *Watcher) Run(ctx context.Context) error {
	defer close(w.events)
	fsw, err := fsnotify.NewWatcher()
	if err != nil {
		w.log.Warn("config: file notifications unavailable; relying on reload and the periodic check", "err", err)
		return w.loop(ctx, nil)
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	defer fsw.Close() // ends the forwarder below; wg.Wait then reaps it
	w.watch(fsw)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case ev, ok := <-fsw.Events:
				if !ok {
					return
				}
				if w.relevant(ev.Name) {
					w.kick()
				}
			case err, ok := <-fsw.Errors:
				if !ok {
					return
				}
				// An overflow means events were lost: reload to be sure.
				w.log.Warn("config: file notification error", "err", err)
				w.kick()
			}
		}
	}()
	return w.loop(ctx, func() { w.watch(fsw) })
}

func (w *Watcher) kick() {
	select {
	case w.kicks <- struct{}{}:
	default:
	}
}

// loop is the Run goroutine's body: it debounces kicks and performs
// reloads. rewatch (may be nil) refreshes the watched directories; it runs
// before each load, so that a directory created since (conf.d) is watched
// before it is read and no change to it can fall between read and watch,
// and again after, for directories the new config names.
func (w *Watcher) loop(ctx context.Context, rewatch func()) error {
	close(w.started)
	debounce := time.NewTimer(time.Hour)
	debounce.Stop()
	defer debounce.Stop()
	interval := w.interval()
	ticker := time.NewTicker(max(interval, time.Hour))
	if interval <= 0 {
		ticker.Stop()
	} else {
		ticker.Reset(interval)
	}
	defer ticker.Stop()
	// A file that changes without pause (a log written into the config
	// directory by mistake) must not postpone reloads forever: the first
	// event of a burst sets a deadline.
	maxWait := max(10*w.opts.Debounce, 2*time.Second)
	var burstStart time.Time // zero: no reload pending
	for {
		var reason string
		select {
		case <-ctx.Done():
			return nil
		case <-w.kicks:
			now := time.Now()
			if burstStart.IsZero() {
				burstStart = now
			}
			debounce.Reset(max(0, min(w.opts.Debounce, burstStart.Add(maxWait).Sub(now))))
			continue
		case <-debounce.C:
			burstStart = time.Time{}
			reason = ReasonFiles
		case <-w.reload:
			reason = ReasonReload
		case <-ticker.C:
			reason = ReasonPeriodic
		}
		if rewatch != nil {
			rewatch()
		}
		w.check(ctx, reason)
		if rewatch != nil {
			rewatch()
		}
		if iv := w.interval(); iv != interval {
			interval = iv
			if iv > 0 {
				ticker.Reset(iv)
			} else {
				ticker.Stop()
			}
		}
	}
}

func (w *Watcher) interval() time.Duration {
	switch {
	case w.opts.Interval < 0:
		return 0
	case w.opts.Interval > 0:
		return w.opts.Interval
	}
	if c := w.cur.Load(); c != nil {
		return c.Server.ReloadInterval
	}
	return defaultReloadInterval
}

// check reloads and emits an event when the result differs.
func (w *Watcher) check(ctx context.Context, reason string) {
	old := w.cur.Load()
	cfg, err := w.loadFn()
	if err != nil {
		msg := err.Error()
		if reason == ReasonPeriodic && msg == w.lastErr {
			return // already reported; the periodic check would repeat it forever
		}
		w.lastErr = msg
		var n int
		var el *ErrorList
		if errors.As(err, &el) {
			n = el.Len()
		}
		w.log.Error("config: invalid, keeping the previous configuration", "reason", reason, "errors", n, "err", err)
		w.emit(ctx, Event{Config: old, Err: err, Reason: reason})
		return
	}
	if w.lastErr != "" {
		w.lastErr = ""
		if cfg.Equal(old) {
			w.log.Info("config: valid again, unchanged", "reason", reason)
		}
	}
	if cfg.Equal(old) {
		w.log.Debug("config: unchanged", "reason", reason)
		return
	}
	d := Compare(old, cfg)
	w.cur.Store(cfg)
	w.log.Info("config: reloaded", "reason", reason, "consoles", len(cfg.Consoles),
		"added", len(d.Added), "removed", len(d.Removed), "changed", len(d.Changed),
		"users_changed", len(d.Users), "rules_changed", d.Rules)
	for _, warn := range cfg.Warnings {
		// Those the edit brought; the running config's were logged when
		// they came.
		if old == nil || !slices.Contains(old.Warnings, warn) {
			w.log.Warn("config: " + warn)
		}
	}
	w.emit(ctx, Event{Config: cfg, Diff: d, Reason: reason})
}

func (w *Watcher) emit(ctx context.Context, ev Event) {
	select {
	case w.events <- ev:
	case <-ctx.Done():
	}
}

// watchDirs lists the directories whose entries matter: the main file's,
// the one it links into, conf.d (and where it links), and those holding
// referenced secret and CA files. Directories, not files: editors replace
// files by rename and Kubernetes swaps a ..data symlink, both of which a
// watch on the file itself would lose.
func (w *Watcher) watchDirs() []string {
	dirs := []string{filepath.Dir(w.path), ConfDir(w.path)}
	if real, err := filepath.EvalSymlinks(w.path); err == nil {
		dirs = append(dirs, filepath.Dir(real))
	}
	if c := w.cur.Load(); c != nil {
		for _, r := range c.refs {
			dirs = append(dirs, filepath.Dir(r))
		}
	}
	return dirs
}

// watch (re)adds the watches. Adding an existing watch is harmless; a
// directory that was replaced (a Kubernetes swap) gets a fresh watch, and
// a conf.d created after start is picked up at the next reload, which its
// creation triggers.
func (w *Watcher) watch(fsw *fsnotify.Watcher) {
	for _, d := range w.watchDirs() {
		if st, err := os.Stat(d); err != nil || !st.IsDir() {
			continue
		}
		if err := fsw.Add(d); err != nil {
			w.log.Warn("config: cannot watch directory", "dir", d, "err", err)
		}
	}
}

// relevant reports whether an event on name may change the configuration.
// It ignores editor droppings so that a swap file written every few seconds
// does not cause reloads.
func (w *Watcher) relevant(name string) bool {
	name = filepath.Clean(name)
	base := filepath.Base(name)
	dir := filepath.Dir(name)
	confDir := ConfDir(w.path)
	switch {
	case strings.HasPrefix(base, ".."): // Kubernetes ..data, ..2024_01_01...
		return true
	case name == w.path || name == confDir:
		return true
	case dir == confDir:
		return isConfName(base)
	}
	if real, err := filepath.EvalSymlinks(w.path); err == nil && name == real {
		return true
	}
	if c := w.cur.Load(); c != nil {
		for _, r := range c.refs {
			if name == filepath.Clean(r) {
				return true
			}
		}
	}
	// A symlink replaced in a watched folder: a deploy tool's "current"
	// pointing at the new release, as ..data above for Kubernetes. Editors'
	// droppings are never symlinks, and a reload to the same configuration
	// is silent.
	if fi, err := os.Lstat(name); err == nil && fi.Mode()&fs.ModeSymlink != 0 {
		return true
	}
	return false
}
