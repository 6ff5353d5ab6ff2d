package conserver

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// sessionsFile is the name, in state_dir, of the record of the BMC
// sessions that own each console's SOL payload. After a crash or kill -9
// the payloads stay active on the BMCs until their sessions time out; the
// next start finds each console's previous session ID here and takes the
// payload back from it at once (ipmilan SOLOptions.StealFrom) instead of
// treating it as another client's.
const sessionsFile = "sol-sessions"

// sessionsDelay batches writes of the file: thousands of consoles
// connecting at start-up cost one write a batch, not one each. A session
// younger than this at a crash is not recorded; its payload is then
// treated as another client's (the steal policy applies) until the BMC
// times it out.
const sessionsDelay = 250 * time.Millisecond

// ownedSession is one console's SOL session as recorded.
type ownedSession struct {
	BMC string // the address it was opened to
	ID  uint32 // the BMC's session ID
}

// sessionStore keeps the file. Writes happen on a timer goroutine,
// serialised by writeMu; a write is atomic (temporary file, fsync,
// rename, fsync of the directory).
type sessionStore struct {
	path string
	log  *slog.Logger

	writeMu sync.Mutex // serialises writes of the file

	mu     sync.Mutex // guards the fields below
	m      map[string]ownedSession
	dirty  bool
	timer  *time.Timer
	closed bool
}

// openSessions reads dir/sol-sessions (a missing file is empty). dir ""
// keeps nothing.
func openSessions(dir string, log *slog.Logger) (*sessionStore, error) {
	s := &sessionStore{log: log, m: map[string]ownedSession{}}
	if dir == "" {
		return s, nil
	}
	s.path = filepath.Join(dir, sessionsFile)
	data, err := os.ReadFile(s.path)
	if errors.Is(err, os.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return nil, fmt.Errorf("conserver: read %s: %w", s.path, err)
	}
	m, bad := parseSessions(data)
	if len(bad) > 0 {
		log.Warn("conserver: ignoring malformed lines of the SOL session record (those consoles' stale payloads, if any, wait for their BMCs to time them out)",
			"file", s.path, "lines", len(bad), "first_line", bad[0])
	}
	s.m = m
	return s, nil
}

// parseSessions reads the file's text: a line per console, "console BMC
// session-ID-in-hex", blank lines and # comments ignored. It returns the
// sessions and the numbers of the lines it could not read (a file cut
// short by a crash, or damaged: whatever else it holds is still used).
func parseSessions(data []byte) (map[string]ownedSession, []int) {
	m := map[string]ownedSession{}
	var bad []int
	for n, raw := range bytes.Split(data, []byte{'\n'}) {
		line := strings.TrimSpace(string(raw))
		if line == "" || line[0] == '#' {
			continue
		}
		f := strings.Fields(line)
		if len(f) != 3 {
			bad = append(bad, n+1)
			continue
		}
		id, err := strconv.ParseUint(f[2], 16, 32)
		if err != nil {
			bad = append(bad, n+1)
			continue
		}
		m[f[0]] = ownedSession{BMC: f[1], ID: uint32(id)}
	}
	return m, bad
}

// RecordedSession reports whether stateDir's record names session id on
// bmc as the one solgate serve opened for console's SOL payload: tools
// beside the daemon (solgate sol) use it to tell the daemon's own
// session from another client's.
func RecordedSession(stateDir, console, bmc string, id uint32) bool {
	data, err := os.ReadFile(filepath.Join(stateDir, sessionsFile))
	if err != nil {
		return false
	}
	m, _ := parseSessions(data)
	o, ok := m[console]
	return ok && o.BMC == bmc && o.ID == id
}

// formatSessions is the file's text for m, sorted by console.
func formatSessions(m map[string]ownedSession) []byte {
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	slices.Sort(names)
	var b bytes.Buffer
	b.WriteString("# solgate: the BMC session holding each console's SOL payload (console, BMC, session ID)\n")
	for _, n := range names {
		o := m[n]
		fmt.Fprintf(&b, "%s %s %08x\n", n, o.BMC, o.ID)
	}
	return b.Bytes()
}

// get returns the recorded session of console, if it was opened to bmc.
func (s *sessionStore) get(console, bmc string) uint32 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if o, ok := s.m[console]; ok && o.BMC == bmc {
		return o.ID
	}
	return 0
}

// set records console's session (id 0 forgets it) and schedules a write.
func (s *sessionStore) set(console, bmc string, id uint32) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o, ok := s.m[console]
	switch {
	case id == 0 && !ok, ok && o.BMC == bmc && o.ID == id:
		return
	case id == 0:
		delete(s.m, console)
	default:
		s.m[console] = ownedSession{BMC: bmc, ID: id}
	}
	s.dirty = true
	if s.path == "" || s.closed {
		return
	}
	if s.timer == nil {
		s.timer = time.AfterFunc(sessionsDelay, s.flush)
	} else {
		s.timer.Reset(sessionsDelay)
	}
}

// flush writes the file if anything changed.
func (s *sessionStore) flush() {
	if s.path == "" {
		return
	}
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	s.mu.Lock()
	if !s.dirty {
		s.mu.Unlock()
		return
	}
	data := formatSessions(s.m)
	s.dirty = false
	s.mu.Unlock()
	if err := writeFileAtomic(s.path, data, 0o600); err != nil {
		s.log.Warn("conserver: cannot record SOL sessions; after a crash the payloads wait for the BMCs to time them out", "file", s.path, "err", err)
		s.mu.Lock()
		s.dirty = true
		s.mu.Unlock()
	}
}

// close stops the timer and writes what is pending.
func (s *sessionStore) close() {
	s.mu.Lock()
	s.closed = true
	if s.timer != nil {
		s.timer.Stop()
	}
	s.mu.Unlock()
	s.flush()
}

// writeFileAtomic replaces path with data: a temporary file beside it,
// fsynced, renamed over it, and the directory fsynced.
func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // after a successful rename there is nothing to remove
	if err := f.Chmod(mode); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
