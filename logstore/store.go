package logstore

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/klauspost/compress/zstd"
	"golang.org/x/sys/unix"
)

// Options tune a Store. The zero value of every field means its default.
type Options struct {
	// SegmentBytes rotates the live segment once it holds this many bytes
	// on disk. Default 64 MiB.
	SegmentBytes int64
	// SegmentAge rotates the live segment once it is this old, and seals
	// an idle live segment of that age. Default 1 hour.
	SegmentAge time.Duration
	// RetainAge deletes segments whose newest record is older than this.
	// 0 keeps them by age.
	RetainAge time.Duration
	// RetainBytes deletes a console's oldest segments while the console
	// holds more than this many bytes. 0 sets no limit. The live segment
	// is never deleted.
	RetainBytes int64
	// FlushInterval bounds how long console bytes stay in memory before
	// they are written as a frame: at most this much is lost in a crash.
	// Default 1 s.
	FlushInterval time.Duration
	// FrameBytes writes a frame early once this many bytes of records are
	// pending. Default 64 KiB.
	FrameBytes int
	// MaxPending is the most record bytes a console buffers while the disk
	// is slow or failing; beyond it console bytes are dropped, counted and
	// reported by a gap event. Default 256 KiB.
	MaxPending int
	// MaxPendingTotal is the most buffer memory all the Store's Writers
	// together hold for records (pending, and being written), counted as
	// the buffers' capacity, not just the bytes in them; beyond it console
	// bytes are dropped the same way, so a stalled disk under thousands of
	// consoles costs a bounded amount of memory. Default 256 MiB; never
	// less than MaxPending.
	MaxPendingTotal int64
	// SyncInterval is how often the live segments written since the last
	// sync are fdatasynced (by a background goroutine, never by Write), and
	// with them the folders of newly created segments; when more than 64
	// were written, the log directory's file system is synced instead
	// (syncfs(2)). What a power loss or kernel crash can lose is about the
	// last SyncInterval plus FlushInterval of output. Default 5 s; negative
	// never syncs live segments (rotation and sealing still do).
	SyncInterval time.Duration
	// IndexInterval is how often a live segment gets a time-index frame
	// covering the frames since the previous one. Default 1 minute.
	IndexInterval time.Duration
	// SealFrameBytes is the uncompressed size of the frames of a sealed
	// segment. Default 1 MiB.
	SealFrameBytes int
	// Logger receives warnings (disk errors, repairs, damage). nil
	// discards them. Console bytes never go here.
	Logger *slog.Logger
	// Warn, if set, receives once per file the problems that readers and
	// writers notice but that stop nothing: for now a file in a console's
	// folder that is not a segment (*StrayFileError), which is ignored.
	// nil sends them to Logger. It may be called from several goroutines
	// at once.
	Warn func(err error)
	// Now is the clock for record timestamps and rotation; nil means
	// time.Now. Tests and importers of old logs set it.
	Now func() time.Time
	// ReadOnly opens an existing directory for reading only: Open does
	// not create it and Writer fails.
	ReadOnly bool
	// MaxOpenFiles bounds the live segments kept open between writes:
	// beyond it a Writer closes its segment after each write and reopens
	// it at the next, so a daemon with 10,000 consoles needs about one
	// descriptor per console (its socket), not two. Default 1024.
	MaxOpenFiles int
}

func (o *Options) setDefaults() {
	if o.SegmentBytes <= 0 {
		o.SegmentBytes = 64 << 20
	}
	if o.SegmentAge <= 0 {
		o.SegmentAge = time.Hour
	}
	if o.FlushInterval <= 0 {
		o.FlushInterval = time.Second
	}
	if o.FrameBytes <= 0 {
		o.FrameBytes = 64 << 10
	}
	if o.MaxPending <= 0 {
		o.MaxPending = 256 << 10
	}
	if o.MaxPending < o.FrameBytes {
		o.MaxPending = o.FrameBytes
	}
	if o.MaxPendingTotal <= 0 {
		o.MaxPendingTotal = 256 << 20
	}
	if o.MaxPendingTotal < int64(o.MaxPending) {
		o.MaxPendingTotal = int64(o.MaxPending)
	}
	if o.SyncInterval == 0 {
		o.SyncInterval = 5 * time.Second
	}
	if o.IndexInterval <= 0 {
		o.IndexInterval = time.Minute
	}
	if o.SealFrameBytes <= 0 {
		o.SealFrameBytes = 1 << 20
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.MaxOpenFiles <= 0 {
		o.MaxOpenFiles = defaultMaxOpenFiles
	}
}

const defaultMaxOpenFiles = 1024

// Errors callers may branch on.
var (
	ErrClosed     = errors.New("logstore: closed")
	ErrInUse      = errors.New("logstore: console log is already open for writing")
	ErrReadOnly   = errors.New("logstore: store is read-only")
	ErrNoSuchLog  = errors.New("logstore: no log for this console")
	ErrBadConsole = errors.New("bad console name")
)

// Store is a log directory: one folder of segments per console. It hands
// out Writers, runs the background work they need (flushing, rotation,
// sealing, retention) and serves readers. A Store is safe for concurrent
// use.
type Store struct {
	dir string
	opt Options
	log *slog.Logger

	encOnce sync.Once
	enc     *zstd.Encoder // shared by every Writer: EncodeAll only

	mu      sync.Mutex // guards the fields below
	qcond   *sync.Cond // with mu: the flush queue grew, or closing
	mcond   *sync.Cond // with mu: maintenance work arrived, or closing
	writers map[string]*Writer
	queue   []*Writer // writers due for a flush; each at most once (Writer.queued)
	started bool      // workers running
	closed  bool
	maint   []maintJob           // sealing and retention work, done one at a time
	queued  map[maintKey]bool    // the jobs in maint
	retry   map[maintKey]*Writer // seals that failed for a reason that may pass
	busy    bool                 // the maintainer is running a job
	wg      sync.WaitGroup

	ctx    context.Context // cancelled by Close: aborts sealing
	cancel context.CancelFunc

	closeFS bool      // with mu: Close syncs the file system; Writers leave syncing to it
	dirty   []*Writer // with mu: Writers with data or folders to sync; each once (Writer.inDirty)

	openFiles atomic.Int64 // live segments open (fdbudget.go)
	maxOpen   atomic.Int64 // Options.MaxOpenFiles, or as SetMaxOpenFiles changed it

	lockMu sync.Mutex           // guards lockF
	lockF  [lockShards]*os.File // the lock files, each open once a Writer needs it

	subs notifier // Changes subscribers (notify.go)

	strayMu sync.Mutex          // guards strays
	strays  map[string]struct{} // stray files already warned about

	pending       atomic.Int64 // buffer capacity all Writers hold for records (MaxPendingTotal)
	budgetDropped atomic.Int64
	syncs         atomic.Int64
	fsSyncs       atomic.Int64
	syncErrors    atomic.Int64

	// The seam around the calls that make data survive a power loss,
	// which a test cannot stage: tests set these to observe them or to
	// inject errors. wrapFile wraps every segment file a Writer appends
	// to or repairs; syncDirFn fsyncs a folder; syncFSFn syncs the file
	// system holding a folder.
	wrapFile  func(*os.File) segFile
	syncDirFn func(dir string) error
	syncFSFn  func(dir string) error
}

func (s *Store) wrap(f *os.File) segFile {
	if s.wrapFile != nil {
		return s.wrapFile(f)
	}
	return osFile{f}
}

// syncDir fsyncs a folder, so that the names created, renamed or removed
// in it survive a power loss.
func (s *Store) syncDir(dir string) error {
	fn := s.syncDirFn
	if fn == nil {
		fn = syncDirOS
	}
	err := fn(dir)
	if err != nil {
		s.syncErrors.Add(1)
		s.log.Warn("logstore: sync folder", "dir", dir, "err", err)
	}
	return err
}

func syncDirOS(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("fsync %s: %w", dir, err)
	}
	return nil
}

// syncFS syncs the whole file system of dir (syncfs(2)): one call for
// every segment at shutdown instead of one fdatasync each.
func (s *Store) syncFS(dir string) error {
	fn := s.syncFSFn
	if fn == nil {
		fn = syncFSOS
	}
	err := fn(dir)
	s.fsSyncs.Add(1)
	if err != nil {
		s.syncErrors.Add(1)
	}
	return err
}

func syncFSOS(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := unix.Syncfs(int(d.Fd())); err != nil {
		return fmt.Errorf("syncfs %s: %w", dir, err)
	}
	return nil
}

// StoreStats are a Store's counters since it was opened.
type StoreStats struct {
	// Pending is the buffer memory (capacity) all Writers hold for
	// records now, pending or being written; at most about
	// Options.MaxPendingTotal.
	Pending int64
	// BudgetDropped counts console bytes dropped because Pending had
	// reached MaxPendingTotal (each is also in its Writer's Dropped and
	// reported by a gap event in its log).
	BudgetDropped int64
	Syncs         int64 // fdatasyncs of live segments
	FSSyncs       int64 // syncfs(2) of the log directory's file system
	SyncErrors    int64 // failed fdatasyncs, fsyncs and syncfs
}

// Stats returns the Store's counters.
func (s *Store) Stats() StoreStats {
	return StoreStats{
		Pending:       s.pending.Load(),
		BudgetDropped: s.budgetDropped.Load(),
		Syncs:         s.syncs.Load(),
		FSSyncs:       s.fsSyncs.Load(),
		SyncErrors:    s.syncErrors.Load(),
	}
}

// Open returns the Store rooted at dir, creating dir (0750) unless
// opt.ReadOnly. Open starts no goroutines; the first Writer does.
func Open(dir string, opt Options) (*Store, error) {
	opt.setDefaults()
	if dir == "" {
		return nil, errors.New("logstore: empty log directory")
	}
	if opt.ReadOnly {
		st, err := os.Stat(dir)
		if err != nil {
			return nil, fmt.Errorf("logstore: open %s: %w", dir, err)
		}
		if !st.IsDir() {
			return nil, fmt.Errorf("logstore: open %s: not a directory", dir)
		}
	} else if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("logstore: create %s: %w", dir, err)
	}
	log := opt.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Store{dir: dir, opt: opt, log: log, writers: map[string]*Writer{}, ctx: ctx, cancel: cancel}
	s.qcond = sync.NewCond(&s.mu)
	s.mcond = sync.NewCond(&s.mu)
	s.maxOpen.Store(int64(opt.MaxOpenFiles))
	return s, nil
}

// Dir returns the root directory.
func (s *Store) Dir() string { return s.dir }

func (s *Store) now() time.Time { return s.opt.Now() }

// encoder returns the shared encoder for live frames. EncodeAll is safe
// for concurrent use; it holds GOMAXPROCS internal encoders. Live frames
// use the fastest level: they are small (a second of one console), so
// the higher levels gain little on them, and sealing recompresses them
// into large frames anyway (measured on console text in 14 KiB frames:
// 387 MB/s and x13.3 against 285 MB/s and x12.1 for the default level).
func (s *Store) encoder() *zstd.Encoder {
	s.encOnce.Do(func() {
		e, err := zstd.NewWriter(nil,
			zstd.WithEncoderLevel(zstd.SpeedFastest),
			zstd.WithEncoderConcurrency(runtime.GOMAXPROCS(0)),
			zstd.WithEncoderCRC(true),
			zstd.WithWindowSize(1<<20),
			zstd.WithLowerEncoderMem(true))
		if err != nil {
			panic("logstore: zstd encoder options: " + err.Error()) // static options
		}
		s.enc = e
	})
	return s.enc
}

// MaxConsoleName is the longest console name, in bytes.
const MaxConsoleName = 128

// CheckConsoleName is solgate's one rule for console names, shared by the
// configuration and the log store: a name becomes a folder under the log
// directory, an SSH user name and a syslog HOSTNAME, so it is 1 to
// MaxConsoleName bytes of ASCII letters, digits, '.', '_' and '-', not
// starting with '.' or '-'. The error wraps ErrBadConsole and quotes the
// name cut to a readable length.
func CheckConsoleName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("%w: empty", ErrBadConsole)
	case len(name) > MaxConsoleName:
		return fmt.Errorf("%w %s: longer than %d bytes", ErrBadConsole, QuoteShort(name), MaxConsoleName)
	case name[0] == '.' || name[0] == '-':
		return fmt.Errorf("%w %s: starts with %q", ErrBadConsole, QuoteShort(name), name[0])
	}
	for i, r := range name {
		if r < utf8.RuneSelf && (r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			continue
		}
		what := fmt.Sprintf("%q", r)
		if r == utf8.RuneError {
			what = fmt.Sprintf("byte %#02x", name[i])
		}
		return fmt.Errorf("%w %s: contains %s (allowed: letters, digits, '.', '_', '-')", ErrBadConsole, QuoteShort(name), what)
	}
	return nil
}

// QuoteShort quotes s for an error message, cut to 40 characters so a
// huge value never floods a log, with non-ASCII shown as characters.
func QuoteShort(s string) string {
	const keep = 40
	if utf8.RuneCountInString(s) <= keep {
		return strconv.Quote(s)
	}
	n := 0
	for i := range s {
		if n == keep {
			return strconv.Quote(s[:i]) + fmt.Sprintf("... (%d bytes)", len(s))
		}
		n++
	}
	return strconv.Quote(s)
}

// Writer returns the Writer of console, opening (and if a crash left it
// torn, repairing) its newest segment. A console has at most one Writer
// at a time, across processes too (an advisory lock on its folder):
// ErrInUse otherwise. Close the Writer when the console goes away.
func (s *Store) Writer(console string) (*Writer, error) {
	if err := CheckConsoleName(console); err != nil {
		return nil, err
	}
	if s.opt.ReadOnly {
		return nil, ErrReadOnly
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, ErrClosed
	}
	if _, ok := s.writers[console]; ok {
		s.mu.Unlock()
		return nil, fmt.Errorf("%w: %s", ErrInUse, console)
	}
	w := newWriter(s, console)
	s.writers[console] = w // reserve the name while opening
	s.mu.Unlock()

	if err := w.open(); err != nil {
		s.mu.Lock()
		delete(s.writers, console)
		s.mu.Unlock()
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		delete(s.writers, console)
		w.closeFiles()
		return nil, ErrClosed
	}
	s.startLocked()
	return w, nil
}

// startLocked starts the background goroutines on first use.
func (s *Store) startLocked() {
	if s.started {
		return
	}
	s.started = true
	n := max(2, runtime.GOMAXPROCS(0))
	for range n {
		s.wg.Add(1)
		go s.flushWorker()
	}
	s.wg.Add(2)
	go s.maintainer()
	go s.janitor()
	if s.opt.SyncInterval > 0 {
		s.wg.Add(1)
		go s.syncer()
	}
}

// markDirty queues w for the next sync round. The caller holds w.ioMu.
func (s *Store) markDirty(w *Writer) {
	s.mu.Lock()
	if !w.inDirty && !s.closed && s.opt.SyncInterval > 0 {
		w.inDirty = true
		s.dirty = append(s.dirty, w)
	}
	s.mu.Unlock()
}

// syncFSWriters is how many Writers a sync round may fdatasync one by
// one; with more, it syncs the log directory's file system instead.
const syncFSWriters = 64

// syncWorkers is how many fdatasyncs a sync round runs at once: a
// journaling file system commits concurrent syncs together, and one slow
// file does not hold up the rest of the round.
const syncWorkers = 4

// syncer makes the output written since its previous round durable,
// every SyncInterval: it fdatasyncs the live segments written to, and
// fsyncs the folders of the segments created. It runs on its own
// goroutines, so neither Write nor the flush workers wait for a sync.
func (s *Store) syncer() {
	defer s.wg.Done()
	t := time.NewTicker(s.opt.SyncInterval)
	defer t.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
		}
		s.syncRound()
	}
}

func (s *Store) syncRound() {
	s.mu.Lock()
	batch := s.dirty
	s.dirty = nil
	for _, w := range batch {
		w.inDirty = false
	}
	s.mu.Unlock()
	if len(batch) == 0 {
		return
	}
	if len(batch) > syncFSWriters {
		// One syncfs(2) instead of thousands of fdatasyncs: one journal
		// commit, not one per file (measured: the per-file syncs of
		// 10,000 consoles cost more CPU than the rest of the logging).
		for _, w := range batch {
			w.ioMu.Lock()
			w.checkDeletedIO()
			w.dirty, w.syncDir, w.syncParent = false, false, false
			w.ioMu.Unlock()
		}
		if err := s.syncFS(s.dir); err != nil {
			s.log.Warn("logstore: syncfs: output of the last seconds may not survive a power loss", "dir", s.dir, "err", err)
		}
		return
	}
	work := make(chan *Writer)
	var wg sync.WaitGroup
	for range min(syncWorkers, len(batch)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for w := range work {
				w.syncData()
			}
		}()
	}
	for _, w := range batch {
		if s.ctx.Err() != nil {
			break // Close syncs the whole file system instead
		}
		work <- w
	}
	close(work)
	wg.Wait()
}

// enqueue schedules w for a flush. The caller holds w.mu and has checked
// and set w.queued.
func (s *Store) enqueue(w *Writer) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.queue = append(s.queue, w)
	s.mu.Unlock()
	s.qcond.Signal()
}

func (s *Store) flushWorker() {
	defer s.wg.Done()
	for {
		s.mu.Lock()
		for len(s.queue) == 0 && !s.closed {
			s.qcond.Wait()
		}
		if s.closed {
			s.mu.Unlock()
			return
		}
		w := s.queue[0]
		s.queue[0] = nil
		s.queue = s.queue[1:]
		if len(s.queue) == 0 {
			s.queue = nil // let the backing array go
		}
		s.mu.Unlock()
		w.runQueued()
	}
}

// janitor periodically rotates live segments that aged while idle and
// applies retention to every open console.
func (s *Store) janitor() {
	defer s.wg.Done()
	period := min(time.Minute, max(s.opt.SegmentAge/4, time.Second))
	t := time.NewTicker(period)
	defer t.Stop()
	var lastRetain time.Time // retention runs at the first tick, then hourly
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
		}
		now := s.now()
		retain := now.Sub(lastRetain) >= time.Hour || now.Before(lastRetain)
		if retain {
			lastRetain = now
		}
		s.mu.Lock()
		ws := make([]*Writer, 0, len(s.writers))
		for _, w := range s.writers {
			ws = append(ws, w)
		}
		s.mu.Unlock()
		for _, w := range ws {
			w.checkAge(now)
			w.closeIdle()
			if retain {
				s.addMaint(maintJob{console: w.console, w: w})
			}
		}
	}
}

// maintJob is sealing (seg != "") or retention (seg == "") for a console.
type maintJob struct {
	console string
	w       *Writer // the console's writer, for the live segment's name
	seg     string
}

type maintKey struct{ console, seg string }

func (s *Store) addMaint(j maintJob) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	k := maintKey{j.console, j.seg}
	if s.queued[k] {
		return
	}
	if s.queued == nil {
		s.queued = map[maintKey]bool{}
	}
	s.queued[k] = true
	s.maint = append(s.maint, j)
	s.mcond.Broadcast()
}

// maintainer seals and prunes, one job at a time, so both never race
// on one console's folder and at most one sealing encoder is busy.
func (s *Store) maintainer() {
	defer s.wg.Done()
	for {
		s.mu.Lock()
		for len(s.maint) == 0 && !s.closed {
			s.mcond.Wait()
		}
		if s.closed {
			s.mu.Unlock()
			return
		}
		j := s.maint[0]
		s.maint[0] = maintJob{}
		s.maint = s.maint[1:]
		delete(s.queued, maintKey{j.console, j.seg})
		s.busy = true
		s.mu.Unlock()
		dir := filepath.Join(s.dir, j.console)
		if j.seg != "" {
			err := s.sealSegment(s.ctx, dir, j.seg)
			if err != nil && s.ctx.Err() == nil && !errors.Is(err, fs.ErrNotExist) {
				s.log.Warn("logstore: seal segment", "console", j.console, "segment", j.seg, "err", err)
				if !errors.Is(err, errDamaged) {
					s.retrySealLater(j) // a full disk, say: try again at the next retention pass
				}
			}
		} else {
			for _, r := range s.takeSealRetries(j.console) {
				s.addMaint(r)
			}
			s.retain(j)
		}
		s.mu.Lock()
		s.busy = false
		s.mu.Unlock()
		s.mcond.Broadcast()
	}
}

// retrySealLater remembers a seal that failed for a reason that may pass
// (a full disk); the console's next retention pass queues it again.
func (s *Store) retrySealLater(j maintJob) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.retry == nil {
		s.retry = map[maintKey]*Writer{}
	}
	s.retry[maintKey{j.console, j.seg}] = j.w
}

func (s *Store) takeSealRetries(console string) []maintJob {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []maintJob
	for k, w := range s.retry {
		if k.console == console {
			out = append(out, maintJob{console: k.console, w: w, seg: k.seg})
			delete(s.retry, k)
		}
	}
	return out
}

// quiesce waits until no sealing or retention is queued or running.
func (s *Store) quiesce() {
	s.mu.Lock()
	for (len(s.maint) > 0 || s.busy) && !s.closed {
		s.mcond.Wait()
	}
	s.mu.Unlock()
}

// retain deletes a console's segments beyond the retention limits.
func (s *Store) retain(j maintJob) {
	lim := j.w.limits()
	if lim.RetainAge <= 0 && lim.RetainBytes <= 0 {
		return
	}
	dir := filepath.Join(s.dir, j.console)
	segs, err := s.segments(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return // deleted by hand: nothing to keep or remove (the next flush makes it again)
	}
	if err != nil {
		s.log.Warn("logstore: retention", "console", j.console, "err", err)
		return
	}
	removed := false
	defer func() {
		if removed {
			s.syncDir(dir)
		}
	}()
	live := j.w.liveSegment()
	sizes := make([]int64, len(segs))
	var total int64
	for i, sg := range segs {
		if st, err := os.Stat(sg.path); err == nil {
			sizes[i] = st.Size()
			total += sizes[i]
		}
	}
	now := s.now()
	for i, sg := range segs {
		if sg.name == live || i == len(segs)-1 && live == "" {
			break // never delete the live segment, nor anything after it
		}
		// A segment ends where the next one starts.
		end := now
		if i+1 < len(segs) {
			end = segs[i+1].start
		}
		old := lim.RetainAge > 0 && now.Sub(end) > lim.RetainAge
		big := lim.RetainBytes > 0 && total > lim.RetainBytes
		if !old && !big {
			break
		}
		if err := os.Remove(sg.path); err != nil {
			s.log.Warn("logstore: retention: remove", "console", j.console, "segment", sg.name, "err", err)
			return
		}
		removed = true
		total -= sizes[i]
		s.log.Debug("logstore: retention removed segment", "console", j.console, "segment", sg.name, "bytes", sizes[i])
	}
}

// Closing tells the Store that Close follows soon (a daemon shutting
// down, about to close its consoles' Writers one by one): while it has
// many Writers, those closed from now on leave their last sync to
// Close, which makes it one syncfs(2) instead of a fdatasync each
// (10,000 of those at once). Until Close, a power loss
// may take what they wrote since their last sync round, as it may
// between rounds anyway.
func (s *Store) Closing() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closed && s.manyWritersLocked(len(s.writers)) {
		s.closeFS = true
	}
}

// manyWritersLocked says whether n Writers are enough for one syncfs at
// Close. s.mu is held.
func (s *Store) manyWritersLocked(n int) bool {
	return n > closeFSWriters && !s.opt.ReadOnly && s.opt.SyncInterval > 0
}

// closeFSWriters is how many Writers Close needs to have before it syncs
// the whole file system instead of each segment.
const closeFSWriters = 64

// Close flushes and closes every Writer, stops the background work (a
// segment being sealed is left for the next start) and waits for it.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	ws := make([]*Writer, 0, len(s.writers))
	for _, w := range s.writers {
		ws = append(ws, w)
	}
	// With many Writers, one syncfs(2) is far cheaper than a fdatasync
	// each; with a few, it would sync other programs' files for nothing.
	s.closeFS = s.closeFS || s.manyWritersLocked(len(ws))
	closeFS := s.closeFS
	s.mu.Unlock()
	var errs []error
	for _, w := range ws {
		if err := w.Close(); err != nil && !errors.Is(err, ErrClosed) {
			errs = append(errs, err)
		}
	}
	if closeFS {
		// The Writers left their last syncs to this one call.
		if err := s.syncFS(s.dir); err != nil {
			errs = append(errs, fmt.Errorf("logstore: %w", err))
		}
	}
	s.mu.Lock()
	s.closed = true
	s.queue = nil
	s.maint = nil
	s.queued = nil
	s.dirty = nil
	s.mu.Unlock()
	s.cancel()
	s.qcond.Broadcast()
	s.mcond.Broadcast()
	s.wg.Wait()
	if s.enc != nil {
		s.enc.Close()
	}
	s.lockMu.Lock()
	for i, f := range s.lockF {
		if f != nil {
			f.Close() // releases its consoles' locks
			s.lockF[i] = nil
		}
	}
	s.lockMu.Unlock()
	return errors.Join(errs...)
}

func (s *Store) removeWriter(w *Writer) {
	s.mu.Lock()
	if s.writers[w.console] == w {
		delete(s.writers, w.console)
	}
	s.mu.Unlock()
}

// Consoles lists the consoles that have a log folder, sorted.
func (s *Store) Consoles() ([]string, error) {
	ents, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, fmt.Errorf("logstore: list %s: %w", s.dir, err)
	}
	var out []string
	for _, e := range ents {
		if e.IsDir() && CheckConsoleName(e.Name()) == nil {
			out = append(out, e.Name())
		}
	}
	sort.Strings(out)
	return out, nil
}

// The consoles' locks: one byte-range lock per console, at an offset
// hashed from its name, in one of lockShards files in the log directory
// (.lock.00 to .lock.3f, also chosen by the hash). Open file description
// locks (F_OFD_SETLK) belong to the Store's open file, so any number of
// consoles costs at most lockShards file descriptors, other processes
// and other Stores conflict, and the kernel releases the locks when the
// process dies. The kernel keeps a file's locks in a list it walks on
// every lock taken: with one file, taking 10,000 consoles' locks cost
// 10-14 s of CPU on the loaded 2-core development machine, with 64 files
// 0.8 s.
const (
	lockShards = 64
	lockPrefix = ".lock."
)

func lockSpot(console string) (shard int, offset int64) {
	h := fnv.New64a()
	h.Write([]byte(console))
	sum := h.Sum64()
	return int(sum % lockShards), int64(sum >> 2) // positive, far beyond any real file size
}

func lockPath(dir string, shard int) string {
	return filepath.Join(dir, fmt.Sprintf("%s%02x", lockPrefix, shard))
}

// lockConsole takes the console's lock, opening its lock file on first use.
func (s *Store) lockConsole(console string) error {
	shard, off := lockSpot(console)
	s.lockMu.Lock()
	defer s.lockMu.Unlock()
	f := s.lockF[shard]
	if f == nil {
		var err error
		f, err = os.OpenFile(lockPath(s.dir, shard), os.O_RDWR|os.O_CREATE, 0o640)
		if err != nil {
			return fmt.Errorf("open lock file: %w", err)
		}
		s.lockF[shard] = f
	}
	lk := unix.Flock_t{Type: unix.F_WRLCK, Whence: io.SeekStart, Start: off, Len: 1}
	if err := unix.FcntlFlock(f.Fd(), unix.F_OFD_SETLK, &lk); err != nil {
		if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EACCES) {
			return ErrInUse
		}
		return fmt.Errorf("lock console %s: %w", console, err)
	}
	return nil
}

func (s *Store) unlockConsole(console string) {
	shard, off := lockSpot(console)
	s.lockMu.Lock()
	defer s.lockMu.Unlock()
	if f := s.lockF[shard]; f != nil {
		lk := unix.Flock_t{Type: unix.F_UNLCK, Whence: io.SeekStart, Start: off, Len: 1}
		unix.FcntlFlock(f.Fd(), unix.F_OFD_SETLK, &lk)
	}
}

// discard is a Writer-shaped sink used in examples and tests.
var _ io.Writer = (*Writer)(nil)
