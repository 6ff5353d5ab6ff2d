package logstore

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Position is a place in one console's log: a segment and an offset in
// that segment's record text (its data frames decompressed and joined, as
// zstdcat prints them). It always falls at the start of a record. Sealing
// rewrites a segment's frames but keeps its name and its text, and a
// crash repair only appends, so a Position stays valid for as long as its
// segment exists: it is what a reader saves to go on after a restart.
type Position struct {
	// Segment is the segment's file name, "20261123T100000Z.zst"; "" is
	// before the oldest segment.
	Segment string
	// Offset is the byte offset in the segment's record text.
	Offset int64
}

// String formats p as SEGMENT+OFFSET ("-" for the zero Position), the form
// ParsePosition reads.
func (p Position) String() string {
	if p.Segment == "" {
		return "-"
	}
	return p.Segment + "+" + strconv.FormatInt(p.Offset, 10)
}

// ParsePosition parses the String form of a Position.
func ParsePosition(s string) (Position, error) {
	if s == "-" {
		return Position{}, nil
	}
	seg, off, ok := strings.Cut(s, "+")
	n, err := strconv.ParseInt(off, 10, 64)
	if _, named := parseSegmentName(seg); !ok || !named || err != nil || n < 0 {
		return Position{}, fmt.Errorf("logstore: position %s: want SEGMENT.zst+OFFSET", QuoteShort(s))
	}
	return Position{Segment: seg, Offset: n}, nil
}

// Compare orders positions of one console: -1 if p is before q, 0 if
// equal, +1 if after.
func (p Position) Compare(q Position) int {
	switch {
	case p.Segment < q.Segment:
		return -1
	case p.Segment > q.Segment:
		return 1
	case p.Offset < q.Offset:
		return -1
	case p.Offset > q.Offset:
		return 1
	}
	return 0
}

// SkipError says a Cursor jumped over records it could not read: their
// segment was deleted (retention) before the cursor got there, or the
// Position pointed past the end of a finished segment. The Cursor has
// moved on to To.
type SkipError struct {
	From, To Position
	Reason   string
}

func (e *SkipError) Error() string {
	return fmt.Sprintf("logstore: skipped from %s to %s: %s", e.From, e.To, e.Reason)
}

// Cursor reads one console's records forward from a Position, across
// segments, picking up frames as they are written. Between calls it holds
// no open file and no buffer, only where it is, so a process can keep one
// per console for thousands of consoles. A Cursor is not safe for
// concurrent use; any number of Cursors may read a console.
type Cursor struct {
	dir string
	pos Position

	// Where pos is in the current file, valid while the file is the same
	// (sealing replaces it under the same name): the file offset and text
	// offset of the data frame (or index entry) that holds pos.
	fi       os.FileInfo
	unitOff  int64
	unitText int64
}

// Cursor returns a Cursor on console's log at from. The log need not
// exist yet.
func (s *Store) Cursor(console string, from Position) (*Cursor, error) {
	if err := CheckConsoleName(console); err != nil {
		return nil, err
	}
	return &Cursor{dir: filepath.Join(s.dir, console), pos: from}, nil
}

// Position returns where the cursor is: the start of the next record Read
// yields.
func (c *Cursor) Position() Position { return c.pos }

// Seek moves the cursor to p.
func (c *Cursor) Seek(p Position) {
	c.pos = p
	c.fi = nil
}

// End returns the position just after the last record of console on disk
// (the zero Position if it has none), where a reader starts that wants
// only what is written from now on.
func (s *Store) End(console string) (Position, error) {
	c, err := s.Cursor(console, Position{})
	if err != nil {
		return Position{}, err
	}
	segs, err := listSegments(c.dir)
	if errors.Is(err, fs.ErrNotExist) || err == nil && len(segs) == 0 {
		return Position{}, nil
	}
	if err != nil {
		return Position{}, fmt.Errorf("logstore: %w", err)
	}
	c.pos = Position{Segment: segs[len(segs)-1].name}
	f, fi, err := c.open()
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return c.pos, nil
		}
		return Position{}, err
	}
	defer f.Close()
	units, _ := c.units(f, fi.Size())
	if n := len(units); n > 0 {
		c.pos.Offset = units[n-1].text + max0(units[n-1].size)
	}
	return c.pos, nil
}

// textPool holds buffers for decompressed units.
var textPool = sync.Pool{New: func() any { return new([]byte) }}

// unit is a piece of a segment the cursor decodes at once: a data frame,
// or the frames of one entry of a complete index (one per frame in a
// sealed segment).
type unit struct {
	off, end   int64 // file offsets
	text, size int64 // text offset and decompressed size; size -1 when the frame header omits it
}

func (c *Cursor) open() (*os.File, os.FileInfo, error) {
	f, err := os.Open(filepath.Join(c.dir, c.pos.Segment))
	if err != nil {
		return nil, nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("logstore: %w", err)
	}
	return f, fi, nil
}

// units lists the units of the file from the cached unit on (or from the
// start). It reports whether the file ends in a frame still being
// written, or torn.
func (c *Cursor) units(f *os.File, size int64) ([]unit, bool) {
	if c.fi == nil {
		if es, complete, _, ok := trailingIndex(f, size); ok && complete {
			out := make([]unit, 0, len(es))
			text := int64(0)
			for _, e := range es {
				out = append(out, unit{off: e.Off, end: e.End, text: text, size: int64(e.Size)})
				text += int64(e.Size)
			}
			return out, false
		}
	}
	off, text := int64(0), int64(0)
	if c.fi != nil {
		off, text = c.unitOff, c.unitText
	}
	w := newWalker(f, size)
	var out []unit
	for off < size {
		fr, err := w.next(off)
		if err != nil {
			if err == ErrTruncated {
				return out, true
			}
			next := w.resync(off)
			if next < 0 {
				return out, true
			}
			off = next
			continue
		}
		if fr.Kind == kindData {
			u := unit{off: fr.Off, end: fr.End(), text: text, size: fr.ContentSize}
			if u.size < 0 {
				// The header does not say: decode to learn.
				if t, errs := decodeChunk(f, "", chunk{Off: u.off, End: u.end}, nil); len(errs) == 0 {
					u.size = int64(len(t))
				}
			}
			out = append(out, u)
			if u.size > 0 {
				text += u.size
			}
		}
		off = fr.End()
	}
	return out, false
}

// Read calls fn with each complete record after the cursor, oldest first,
// with the position just after it, until fn returns false, or it has
// yielded at least max records (max > 0) and finished the frame they came
// from, or everything written to disk so far has been read. The cursor
// moves past each record fn returns true for; the record fn refuses is
// read again by the next Read (which decompresses its frame again: a
// caller that stops often should rather use max). Record.Data is valid
// only during the call.
//
// Damage makes Read return a *CorruptError, a jump over deleted records a
// *SkipError; the cursor has then moved past the trouble, and the next
// Read goes on. Other errors (the folder unreadable) leave the cursor
// where it was. Read returns nil when it has read everything, fn refused,
// or max was reached.
func (c *Cursor) Read(max int, fn func(rec Record, next Position) bool) error {
	n := 0
	for {
		if c.pos.Segment == "" {
			segs, err := listSegments(c.dir)
			if errors.Is(err, fs.ErrNotExist) || err == nil && len(segs) == 0 {
				return nil
			}
			if err != nil {
				return fmt.Errorf("logstore: %w", err)
			}
			c.Seek(Position{Segment: segs[0].name})
		}
		st, err := c.readSegment(max, &n, fn)
		if err != nil || st == readStop {
			return err
		}
		if st == readMore {
			continue
		}
		// At the end of this segment: go on with the next one, if any.
		next, err := c.nextSegment()
		if err != nil || next == "" {
			return err
		}
		// The writer rotates before it writes to a newer segment, so once
		// one exists this one is complete; read what came meanwhile.
		st, err = c.readSegment(max, &n, fn)
		if err != nil || st == readStop {
			return err
		}
		if st == readMore {
			continue
		}
		c.Seek(Position{Segment: next})
	}
}

// nextSegment returns the name of the segment after the cursor's, "" if
// there is none yet.
func (c *Cursor) nextSegment() (string, error) {
	segs, err := listSegments(c.dir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return "", nil
		}
		return "", fmt.Errorf("logstore: %w", err)
	}
	for _, sg := range segs {
		if sg.name > c.pos.Segment {
			return sg.name, nil
		}
	}
	return "", nil
}

type readState int

const (
	readEnd  readState = iota // read the segment to its end
	readMore                  // the segment grew meanwhile: read it again
	readStop                  // fn refused, max reached, or an error
)

// readSegment reads the cursor's segment from its position.
func (c *Cursor) readSegment(max int, n *int, fn func(Record, Position) bool) (readState, error) {
	f, fi, err := c.open()
	if errors.Is(err, fs.ErrNotExist) {
		// Deleted by retention (or an empty one removed by repair).
		from := c.pos
		next, nerr := c.nextSegment()
		if nerr != nil {
			return readStop, nerr
		}
		older := segExistsBefore(c.dir, from.Segment)
		c.Seek(Position{Segment: next})
		if next == "" {
			if from.Offset == 0 && !older {
				return readStop, nil // nothing there yet, or all removed before we read a byte
			}
			return readStop, &SkipError{From: from, To: Position{}, Reason: "segment deleted before it was read"}
		}
		if from.Offset == 0 && older {
			return readMore, nil // an empty segment removed by repair: nothing lost
		}
		return readStop, &SkipError{From: from, To: c.pos, Reason: "segment deleted before it was read (retention)"}
	}
	if err != nil {
		return readStop, err
	}
	defer f.Close()
	if c.fi != nil && !os.SameFile(c.fi, fi) {
		c.fi = nil // sealed: the frames moved, the text did not
	}
	path := filepath.Join(c.dir, c.pos.Segment)
	units, torn := c.units(f, fi.Size())
	sp := textPool.Get().(*[]byte)
	defer textPool.Put(sp)
	var data []byte
	for _, u := range units {
		if u.size >= 0 && u.text+u.size <= c.pos.Offset || u.size < 0 && u.text < c.pos.Offset {
			// Before the position. A damaged unit of unknown size counts
			// as empty text: it is behind a position past its start (the
			// cursor that saved it stepped over it), and met again only by
			// a cursor opened at its very start.
			continue
		}
		c.fi, c.unitOff, c.unitText = fi, u.off, u.text
		text, errs := decodeChunk(f, path, chunk{Off: u.off, End: u.end, Size: max0(u.size)}, (*sp)[:0])
		*sp = text[:0]
		if len(errs) > 0 {
			// Skip the damaged unit whole. A unit whose size is unknown
			// (live frames do not record it) counts as empty text, as
			// units does for every later unit's text offset, so the
			// cursor goes on at the same offset, in the next frame; a
			// cursor opened afresh at exactly that offset meets this unit
			// again and reports it once more (one opened further on
			// passes it, above).
			if end := u.text + max0(u.size); end > c.pos.Offset {
				c.pos.Offset = end
			}
			c.unitOff, c.unitText = u.end, u.text+max0(u.size)
			return readStop, errs[0]
		}
		for off := 0; off < len(text); {
			end := len(text)
			if nl := bytes.IndexByte(text[off:], '\n'); nl >= 0 {
				end = off + nl + 1
			}
			at := u.text + int64(off)
			line := text[off:end]
			off = end
			if at < c.pos.Offset {
				continue
			}
			next := Position{Segment: c.pos.Segment, Offset: u.text + int64(end)}
			rec, perr := ParseRecord(line, data)
			if perr != nil {
				c.pos = next
				return readStop, &CorruptError{Path: path, Offset: u.off, Err: fmt.Errorf("record at text offset %d: %w", at, perr)}
			}
			data = rec.Data[:0]
			if !fn(rec, next) {
				return readStop, nil
			}
			c.pos = next
			*n++
		}
		c.pos.Offset = u.text + int64(len(text))
		c.unitOff, c.unitText = u.end, c.pos.Offset
		if max > 0 && *n >= max {
			return readStop, nil
		}
	}
	if st, err := f.Stat(); err == nil && st.Size() > fi.Size() {
		return readMore, nil
	}
	if len(units) > 0 && !torn {
		last := units[len(units)-1]
		if c.pos.Offset > last.text+max0(last.size) {
			// Past the end of this segment's text: a bad saved position.
			if next, _ := c.nextSegment(); next != "" {
				from := c.pos
				c.Seek(Position{Segment: next})
				return readStop, &SkipError{From: from, To: c.pos, Reason: "position past the end of its segment"}
			}
		}
	}
	return readEnd, nil
}

func max0(v int64) int64 { return max(v, 0) }

// segExistsBefore reports whether a segment older than name exists.
func segExistsBefore(dir, name string) bool {
	segs, _ := listSegments(dir)
	return len(segs) > 0 && segs[0].name < name
}

// Oldest returns the start of console's oldest segment (from its name);
// ok is false when the console has no log.
func (s *Store) Oldest(console string) (start time.Time, ok bool) {
	if CheckConsoleName(console) != nil {
		return time.Time{}, false
	}
	segs, err := listSegments(filepath.Join(s.dir, console))
	if err != nil || len(segs) == 0 {
		return time.Time{}, false
	}
	return segs[0].start, true
}
