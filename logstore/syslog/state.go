package syslog

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/solgate/solgate/logstore"
)

// A target's positions live in one file in the state directory,
// syslog-<slug>-<hash>.pos, rewritten whole and atomically (temporary
// file, fsync, rename, fsync of the directory):
//
//	solgate-syslog-positions 1
//	target tcp://10.0.0.1:514
//	created 1795430400000
//	node42 20261123T100000Z.zst+12345 817 20261123T100000Z.zst+12345
//
// One line per console: the position after the last line the receiver
// has taken, the sequence number of the last message sent for it, and
// where to start stripping escape sequences again (before the position
// when a sequence was open there).
const stateMagic = "solgate-syslog-positions 1"

// commit is what a console's saved position says.
type commit struct {
	pos       logstore.Position
	seq       uint64
	stripFrom logstore.Position
}

type state struct {
	key     string
	created time.Time
	pos     map[string]commit
}

// stateFile names the positions file of a target key.
func stateFile(dir, key string) string {
	h := sha256.Sum256([]byte(key))
	slug := make([]byte, 0, 40)
	for i := 0; i < len(key) && len(slug) < 40; i++ {
		c := key[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-') {
			c = '_'
		}
		slug = append(slug, c)
	}
	return filepath.Join(dir, "syslog-"+string(slug)+"-"+hex.EncodeToString(h[:4])+".pos")
}

// loadState reads a positions file; a missing file is no state (ok false).
func loadState(path, key string) (st state, ok bool, err error) {
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return state{key: key, pos: map[string]commit{}}, false, nil
	}
	if err != nil {
		return state{}, false, fmt.Errorf("syslog: read positions: %w", err)
	}
	st, err = parseState(b, path, key)
	if err != nil {
		return state{}, false, err
	}
	return st, true, nil
}

// parseState reads a positions file's text (path names it in errors). Any
// line it cannot read makes the whole file unusable: positions are only
// worth having if they are all right.
func parseState(b []byte, path, key string) (st state, err error) {
	st = state{key: key, pos: map[string]commit{}}
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, 1<<20)
	n := 0
	for sc.Scan() {
		n++
		line := sc.Text()
		bad := func(what string) error {
			return fmt.Errorf("syslog: positions %s:%d: %s", path, n, what)
		}
		switch {
		case n == 1:
			if line != stateMagic {
				return state{}, bad("not a solgate syslog positions file")
			}
			continue
		case strings.HasPrefix(line, "target "):
			if got := strings.TrimPrefix(line, "target "); got != key {
				return state{}, bad(fmt.Sprintf("positions of target %q, not %q", got, key))
			}
			continue
		case strings.HasPrefix(line, "created "):
			ms, err := strconv.ParseInt(strings.TrimPrefix(line, "created "), 10, 64)
			if err != nil {
				return state{}, bad("bad created time")
			}
			st.created = time.UnixMilli(ms)
			continue
		}
		f := strings.Fields(line)
		if len(f) != 4 || logstore.CheckConsoleName(f[0]) != nil {
			return state{}, bad("want: CONSOLE POSITION SEQ STRIP-FROM")
		}
		var c commit
		var err1, err2, err3 error
		c.pos, err1 = logstore.ParsePosition(f[1])
		c.seq, err2 = strconv.ParseUint(f[2], 10, 64)
		c.stripFrom, err3 = logstore.ParsePosition(f[3])
		if err1 != nil || err2 != nil || err3 != nil {
			return state{}, bad("bad position or sequence number")
		}
		st.pos[f[0]] = c
	}
	if err := sc.Err(); err != nil {
		// A line over the buffer (a damaged file): what follows it would
		// be missing, and those consoles would start over.
		return state{}, fmt.Errorf("syslog: positions %s:%d: %w", path, n+1, err)
	}
	if n == 0 {
		return state{}, fmt.Errorf("syslog: positions %s: empty file", path)
	}
	return st, nil
}

// save writes the state atomically.
func (st *state) save(path string, buf []byte) ([]byte, error) {
	buf = st.appendText(buf[:0])
	return buf, writeAtomic(path, buf)
}

// appendText appends the positions file's text for st.
func (st *state) appendText(buf []byte) []byte {
	buf = append(buf, stateMagic...)
	buf = append(buf, "\ntarget "...)
	buf = append(buf, st.key...)
	buf = append(buf, "\ncreated "...)
	buf = strconv.AppendInt(buf, st.created.UnixMilli(), 10)
	buf = append(buf, '\n')
	for name, c := range st.pos {
		buf = append(buf, name...)
		buf = append(buf, ' ')
		buf = append(buf, c.pos.String()...)
		buf = append(buf, ' ')
		buf = strconv.AppendUint(buf, c.seq, 10)
		buf = append(buf, ' ')
		buf = append(buf, c.stripFrom.String()...)
		buf = append(buf, '\n')
	}
	return buf
}

// writeAtomic replaces path with data: temporary file, fsync, rename,
// fsync of the directory, so a crash leaves the old or the new file.
func writeAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return fmt.Errorf("syslog: save positions: %w", err)
	}
	ok := false
	defer func() {
		if !ok {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err := tmp.Chmod(0o640); err != nil {
		return fmt.Errorf("syslog: save positions: %w", err)
	}
	if _, err := tmp.Write(data); err != nil {
		return fmt.Errorf("syslog: save positions: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("syslog: save positions: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("syslog: save positions: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("syslog: save positions: %w", err)
	}
	ok = true
	if d, err := os.Open(dir); err == nil {
		err = d.Sync()
		d.Close()
		if err != nil {
			return fmt.Errorf("syslog: save positions: sync %s: %w", dir, err)
		}
	}
	return nil
}
