package logstore

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/klauspost/compress/zstd"
)

// segNameLayout is the time layout of segment file names (plus ".zst").
const segNameLayout = "20060102T150405Z"

// segment is one segment file of a console.
type segment struct {
	name, path string
	start      time.Time
}

func segmentName(t time.Time) string { return t.UTC().Format(segNameLayout) + ".zst" }

// clockBehindMark, in a console's folder, says a segment there was
// created while the clock was behind the newest segment's name (an NTP
// step back): its records are earlier than its name, so readers do not
// pick segments by name for a time range. It stays until the folder goes.
const clockBehindMark = ".clock-went-back"

func parseSegmentName(name string) (time.Time, bool) {
	base, ok := strings.CutSuffix(name, ".zst")
	if !ok || len(base) != len(segNameLayout) {
		return time.Time{}, false
	}
	t, err := time.Parse(segNameLayout, base)
	if err != nil {
		return time.Time{}, false
	}
	return t, true
}

// listSegments returns a console folder's segments, oldest first.
func listSegments(dir string) ([]segment, error) {
	segs, _, err := scanSegments(dir)
	return segs, err
}

// StrayFileError is a file in a console's folder that is not a segment:
// readers and writers ignore it, and say so once (Options.Warn).
type StrayFileError struct {
	Path   string
	Reason string
}

func (e *StrayFileError) Error() string {
	return fmt.Sprintf("logstore: %s: %s; ignored", e.Path, e.Reason)
}

// scanSegments returns a console folder's segments, oldest first, and the
// entries that are neither segments nor the store's own files (names
// starting with '.', such as a sealer's temporary files).
func scanSegments(dir string) ([]segment, []*StrayFileError, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, nil, err
	}
	var segs []segment
	var strays []*StrayFileError
	for _, e := range ents {
		name := e.Name()
		if strings.HasPrefix(name, ".") {
			continue
		}
		path := filepath.Join(dir, name)
		t, ok := parseSegmentName(name)
		switch {
		case ok && e.Type().IsRegular():
			segs = append(segs, segment{name: name, path: path, start: t})
		case ok:
			strays = append(strays, &StrayFileError{Path: path, Reason: fmt.Sprintf("named like a segment but not a regular file (%v)", e.Type())})
		default:
			strays = append(strays, &StrayFileError{Path: path, Reason: "not a segment: segment names are YYYYMMDDTHHMMSSZ.zst (UTC start time)"})
		}
	}
	sort.Slice(segs, func(i, j int) bool { return segs[i].name < segs[j].name })
	return segs, strays, nil
}

// segments is listSegments that also warns, once per file, about stray
// entries in the folder.
func (s *Store) segments(dir string) ([]segment, error) {
	segs, strays, err := scanSegments(dir)
	for _, e := range strays {
		s.warnOnce(e.Path, e)
	}
	return segs, err
}

// warnOnce reports err through Options.Warn (or the Logger) the first
// time it is called for key.
func (s *Store) warnOnce(key string, err error) {
	s.strayMu.Lock()
	_, seen := s.strays[key]
	if !seen {
		if s.strays == nil {
			s.strays = map[string]struct{}{}
		}
		s.strays[key] = struct{}{}
	}
	s.strayMu.Unlock()
	if seen {
		return
	}
	if s.opt.Warn != nil {
		s.opt.Warn(err)
		return
	}
	s.log.Warn("logstore: ignoring a file", "err", err)
}

// removeTemps deletes temporary files a crashed sealer left behind.
func removeTemps(dir string) {
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if n := e.Name(); strings.HasPrefix(n, ".") && strings.HasSuffix(n, ".tmp") {
			os.Remove(filepath.Join(dir, n))
		}
	}
}

// readHeader reads the header frame of the segment at path.
func readHeader(path string) (segHeader, error) {
	f, err := os.Open(path)
	if err != nil {
		return segHeader{}, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return segHeader{}, err
	}
	return headerAt(f, st.Size())
}

func headerAt(r io.ReaderAt, size int64) (segHeader, error) {
	w := newWalker(r, size)
	fr, err := w.next(0)
	if err != nil {
		return segHeader{}, fmt.Errorf("first frame: %w", err)
	}
	if fr.Kind != kindSkippable || fr.SkipID != headerFrameID {
		return segHeader{}, errors.New("first frame is not a solgate segment header")
	}
	p := make([]byte, min(fr.Len-8, maxHeaderPayload+1))
	if _, err := r.ReadAt(p, 8); err != nil {
		return segHeader{}, err
	}
	return parseHeader(p)
}

// trailingIndex returns the index frame that ends the file, if there is a
// well-formed one, and where it starts.
func trailingIndex(r io.ReaderAt, size int64) (entries []indexEntry, complete bool, start int64, ok bool) {
	if size < 8+indexTrailerLen {
		return nil, false, 0, false
	}
	var t [indexTrailerLen]byte
	if _, err := r.ReadAt(t[:], size-indexTrailerLen); err != nil || string(t[12:]) != indexMagic {
		return nil, false, 0, false
	}
	n := int64(binary.LittleEndian.Uint32(t[:]))
	plen := n*indexEntryLen + indexTrailerLen
	start = size - 8 - plen
	if n > maxIndexPayload/indexEntryLen || start < 0 {
		return nil, false, 0, false
	}
	buf := make([]byte, 8+plen)
	if _, err := r.ReadAt(buf, start); err != nil {
		return nil, false, 0, false
	}
	if binary.LittleEndian.Uint32(buf) != skippableMagic|indexFrameID || int64(binary.LittleEndian.Uint32(buf[4:])) != plen {
		return nil, false, 0, false
	}
	entries, complete, err := parseIndex(buf[8:])
	if err != nil {
		return nil, false, 0, false
	}
	for _, e := range entries {
		if e.End > start {
			return nil, false, 0, false
		}
	}
	return entries, complete, start, true
}

// sealedLayout checks that a complete index describes a sealed file: a
// header frame, then back to back the data frames the entries name, then
// the index frame at start.
func sealedLayout(r io.ReaderAt, entries []indexEntry, start int64) bool {
	var b [8]byte
	if _, err := r.ReadAt(b[:], 0); err != nil || binary.LittleEndian.Uint32(b[:]) != skippableMagic|headerFrameID {
		return false
	}
	next := 8 + int64(binary.LittleEndian.Uint32(b[4:]))
	for _, e := range entries {
		if e.Off != next {
			return false
		}
		if _, err := r.ReadAt(b[:4], e.Off); err != nil || binary.LittleEndian.Uint32(b[:4]) != zstdMagic {
			return false
		}
		next = e.End
	}
	return next == start
}

// chunk is a run of consecutive data frames read as one.
type chunk struct {
	Off, End    int64
	First, Last int64 // Unix ms; meaningful when Indexed
	Size        int64 // decompressed bytes when Indexed
	Indexed     bool
	// Salvage marks the torn frame that ends a damaged segment: its
	// records are what the decoder gets out of it (see salvage).
	Salvage bool
}

// segPlan is what a reader knows about a segment before decompressing.
type segPlan struct {
	hdr    segHeader
	hdrErr error
	chunks []chunk
	end    int64 // end of the last intact frame
	torn   bool  // the file ends inside a frame (live, or torn by a crash)
	damage []*CorruptError
	sealed bool // read through a complete trailing index
}

// planSegment finds the data of a segment: through its complete trailing
// index when it has one (sealed segments), else by walking its frames and
// collecting the index frames among them. Damage is skipped and reported.
func planSegment(r io.ReaderAt, size int64, path string) segPlan {
	var p segPlan
	p.hdr, p.hdrErr = headerAt(r, size)
	if entries, complete, start, ok := trailingIndex(r, size); ok && complete && sealedLayout(r, entries, start) {
		p.sealed = true
		p.end = size
		for _, e := range entries {
			p.chunks = append(p.chunks, chunk{Off: e.Off, End: e.End, First: e.First, Last: e.Last, Size: int64(e.Size), Indexed: true})
		}
		return p
	}
	return walkPlan(r, size, path, 0, p)
}

// walkPlan walks frames from off and adds their chunks to p.
func walkPlan(r io.ReaderAt, size int64, path string, off int64, p segPlan) segPlan {
	w := newWalker(r, size)
	var data []frameInfo
	var idx []indexEntry
	for off < size {
		fr, err := w.next(off)
		if err == ErrTruncated {
			p.torn = true
			break
		}
		if err != nil {
			p.damage = append(p.damage, &CorruptError{Path: path, Offset: off, Err: err})
			next := w.resync(off)
			if next < 0 {
				break
			}
			off = next
			continue
		}
		switch {
		case fr.Kind == kindData:
			data = append(data, fr)
		case fr.SkipID == indexFrameID:
			if fr.Len-8 > maxIndexPayload {
				p.damage = append(p.damage, &CorruptError{Path: path, Offset: off, Err: fmt.Errorf("index frame of %d bytes is too large", fr.Len)})
				break
			}
			buf := make([]byte, fr.Len-8)
			if _, err := r.ReadAt(buf, off+8); err != nil {
				p.damage = append(p.damage, &CorruptError{Path: path, Offset: off, Err: err})
				break
			}
			es, _, err := parseIndex(buf)
			if err != nil {
				p.damage = append(p.damage, &CorruptError{Path: path, Offset: off, Err: err})
				break
			}
			idx = append(idx, es...)
		}
		off = fr.End()
		p.end = off
	}
	p.chunks = append(p.chunks, chunksFrom(data, idx)...)
	return p
}

// chunksFrom groups walked data frames by the index entries that cover
// them exactly; frames no valid entry covers become unindexed chunks.
func chunksFrom(data []frameInfo, idx []indexEntry) []chunk {
	byOff := make(map[int64]int, len(data))
	for i, f := range data {
		byOff[f.Off] = i
	}
	covered := make([]int, len(data)) // index into idx + 1, 0 when not covered
	for k, e := range idx {
		i, ok := byOff[e.Off]
		if !ok {
			continue
		}
		j := i
		for j < len(data) && data[j].End() < e.End && (j+1 >= len(data) || data[j+1].Off == data[j].End()) {
			j++
		}
		if j >= len(data) || data[j].End() != e.End {
			continue // the entry does not match the frames: ignore it
		}
		for m := i; m <= j; m++ {
			if covered[m] == 0 {
				covered[m] = k + 1
			}
		}
	}
	var out []chunk
	for i := 0; i < len(data); {
		if k := covered[i]; k > 0 {
			e := idx[k-1]
			j := i
			for j+1 < len(data) && covered[j+1] == k {
				j++
			}
			out = append(out, chunk{Off: data[i].Off, End: data[j].End(), First: e.First, Last: e.Last, Size: int64(e.Size), Indexed: true})
			i = j + 1
			continue
		}
		out = append(out, chunk{Off: data[i].Off, End: data[i].End()})
		i++
	}
	return out
}

// decoder is shared by all readers; DecodeAll is safe for concurrent use.
var decoder = sync.OnceValue(func() *zstd.Decoder {
	d, err := zstd.NewReader(nil,
		zstd.WithDecoderConcurrency(runtime.GOMAXPROCS(0)),
		zstd.WithDecoderLowmem(true),
		zstd.WithDecoderMaxMemory(maxFrameContent),
		zstd.WithDecoderMaxWindow(maxFrameContent))
	if err != nil {
		panic("logstore: zstd decoder options: " + err.Error()) // static options
	}
	return d
})

// chunksDecoded counts decodeChunk calls; tests use it to check that
// range queries skip what the index excludes.
var chunksDecoded atomic.Int64

// srcPool holds buffers for the compressed bytes of a chunk.
var srcPool = sync.Pool{New: func() any { return new([]byte) }}

// maxChunkBytes bounds how much compressed data one chunk read takes.
const maxChunkBytes = 64 << 20

// decodeChunk decompresses the frames of c, appending their records to
// dst. Frames that fail are skipped and reported; the others are kept.
func decodeChunk(r io.ReaderAt, path string, c chunk, dst []byte) ([]byte, []*CorruptError) {
	chunksDecoded.Add(1)
	n := c.End - c.Off
	if n <= 0 || n > maxChunkBytes {
		return dst, []*CorruptError{{Path: path, Offset: c.Off, Err: fmt.Errorf("chunk of %d bytes is out of bounds", n)}}
	}
	sp := srcPool.Get().(*[]byte)
	defer srcPool.Put(sp)
	src := slices.Grow((*sp)[:0], int(n))[:n]
	*sp = src
	if k, err := r.ReadAt(src, c.Off); k < len(src) {
		if err == nil || err == io.EOF {
			err = ErrTruncated
		}
		return dst, []*CorruptError{{Path: path, Offset: c.Off, Err: err}}
	}
	if c.Salvage {
		return append(dst, salvage(src)...), nil
	}
	base := len(dst)
	// DecodeAll grows dst one frame at a time: room for the whole chunk
	// up front keeps a chunk of many frames from costing quadratic copies.
	want := c.Size
	if want <= 0 {
		want = 4 * n
	}
	dst = slices.Grow(dst, int(min(want, maxFrameContent)))
	out, err := decoder().DecodeAll(src, dst)
	if err == nil {
		return out, nil
	}
	// Decode frame by frame to keep everything intact.
	dst = dst[:base]
	var errs []*CorruptError
	w := newWalker(bytes.NewReader(src), n)
	for off := int64(0); off < n; {
		fr, err := w.next(off)
		if err != nil {
			errs = append(errs, &CorruptError{Path: path, Offset: c.Off + off, Err: err})
			next := w.resync(off)
			if next < 0 {
				break
			}
			off = next
			continue
		}
		if fr.Kind == kindData {
			if fr.ContentSize > maxFrameContent {
				errs = append(errs, &CorruptError{Path: path, Offset: c.Off + off, Err: fmt.Errorf("frame claims %d bytes, more than %d", fr.ContentSize, maxFrameContent)})
			} else {
				m := len(dst)
				out, err := decoder().DecodeAll(src[off:fr.End()], dst)
				if err != nil {
					errs = append(errs, &CorruptError{Path: path, Offset: c.Off + off, Err: fmt.Errorf("decompress: %w", err)})
					dst = dst[:m]
				} else {
					dst = out
				}
			}
		}
		off = fr.End()
	}
	if len(errs) == 0 {
		// The whole failed but every frame alone decodes: report the first error.
		errs = append(errs, &CorruptError{Path: path, Offset: c.Off, Err: fmt.Errorf("decompress: %w", err)})
	}
	return dst, errs
}

// recordStats returns the time span and number of the records in text.
func recordStats(text []byte) (first, last int64, n int) {
	for len(text) > 0 {
		i := bytes.IndexByte(text, '\n')
		line := text
		if i >= 0 {
			line, text = text[:i], text[i+1:]
		} else {
			text = nil
		}
		ms, err := parseTimestampMs(line)
		if err != nil {
			continue
		}
		if n == 0 {
			first, last = ms, ms
		}
		first, last = min(first, ms), max(last, ms)
		n++
	}
	return first, last, n
}

// errEmptySegment says a segment file holds no header: a crash hit right
// after it was created. It is removed.
var errEmptySegment = errors.New("segment has no header; removed")

// errDamaged marks a segment that is damaged other than at its end: it
// is left as it is, and not retried.
var errDamaged = errors.New("damaged")

// tornGapText is the text of the gap event that replaces a torn frame.
func tornGapText(torn int64, salvaged int) string {
	return fmt.Sprintf("the writer stopped in the middle of a frame (crash?): %d compressed bytes torn, %d bytes of records salvaged; anything after is lost", torn, salvaged)
}

// errRepairDeferred says a torn segment could not be repaired without
// risking what can be salvaged from it (no room to write the salvage):
// it is left exactly as it was, for sealing to salvage later.
var errRepairDeferred = errors.New("torn segment left as it is until there is room to write what can be salvaged")

// tornFrameID is the skippable frame ID (magic 0x184D2A5B) that a repair
// writes over the start of a torn frame once what could be salvaged from
// it is safely written after it: the torn bytes stay, but every zstd
// decoder and reader skips them, and sealing drops them.
const tornFrameID = 0xB

// repairSegment opens the newest segment of a console for appending. If
// it ends in a torn frame (the writer died mid-write), the decodable
// prefix of that frame is salvaged and appended, as a complete frame with
// a gap event, after the torn bytes, which then become a skippable frame;
// data frames after the last index frame get one. Nothing is cut before
// what replaces it is on disk: if the salvage cannot be written (a full
// disk), the file is left as it was and errRepairDeferred returned. A
// torn tail without anything to salvage is cut; if the gap event cannot
// be written then, it is returned as note for the Writer to write later.
// sealed reports that the segment is already sealed (then it must not be
// appended to).
func (s *Store) repairSegment(path string) (f segFile, size int64, sealed bool, note []byte, err error) {
	osf, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, 0, false, nil, err
	}
	st, err := osf.Stat()
	if err != nil {
		osf.Close()
		return nil, 0, false, nil, err
	}
	sf := s.wrap(osf)
	f = sf
	defer func() {
		if err != nil {
			sf.Close()
			f = nil
		}
	}()
	size = st.Size()
	hdr, herr := headerAt(f, size)
	if herr != nil {
		if size < 64 {
			// Created but the header never made it: nothing to keep.
			f.Close()
			if os.Remove(path) == nil {
				s.syncDir(filepath.Dir(path))
			}
			return nil, 0, false, nil, errEmptySegment
		}
		return nil, 0, false, nil, fmt.Errorf("repair %s: %w (%w; left as is)", path, herr, errDamaged)
	}
	if hdr.Sealed {
		return f, size, true, nil, nil
	}
	if _, _, _, ok := trailingIndex(f, size); ok {
		return f, size, false, nil, nil // closed cleanly, or idle after an index frame
	}
	// Walk, noting the end of the last index frame and the torn tail.
	w := newWalker(f, size)
	var after []frameInfo // data frames after the last index frame
	var lastTs int64
	off := int64(0)
	torn := false
	for off < size {
		fr, err := w.next(off)
		if err == ErrTruncated {
			torn = true
			break
		}
		if err != nil {
			return nil, 0, false, nil, fmt.Errorf("repair %s: offset %d: %w (%w; left as is)", path, off, err, errDamaged)
		}
		if fr.Kind == kindData {
			after = append(after, fr)
		} else if fr.SkipID == indexFrameID {
			after = after[:0]
		}
		off = fr.End()
	}
	// entries index the data frames after the last index frame (if
	// contiguous) and the salvage frame.
	var entries []indexEntry
	addEntry := func(text []byte, at, end int64) {
		first, last, n := recordStats(text)
		if n == 0 {
			return
		}
		lastTs = max(lastTs, last)
		if k := len(entries) - 1; k >= 0 && entries[k].End == at {
			e := &entries[k]
			e.End = end
			e.First, e.Last = min(e.First, first), max(e.Last, last)
			e.Size += uint32(len(text))
			e.Records += uint32(n)
			return
		}
		entries = append(entries, indexEntry{Off: at, End: end, First: first, Last: last, Size: uint32(len(text)), Records: uint32(n)})
	}
	for _, fr := range after {
		src := make([]byte, fr.Len)
		if _, err := f.ReadAt(src, fr.Off); err != nil {
			return nil, 0, false, nil, fmt.Errorf("repair %s: %w", path, err)
		}
		text, err := decoder().DecodeAll(src, nil)
		if err != nil {
			return nil, 0, false, nil, fmt.Errorf("repair %s: frame at %d: %w (%w; left as is)", path, fr.Off, err, errDamaged)
		}
		addEntry(text, fr.Off, fr.End())
	}
	if !torn {
		if len(entries) == 0 {
			return f, off, false, nil, nil
		}
		// Only an index frame is owed: if it cannot be written, the
		// frames stay unindexed, which readers cope with.
		idx := appendIndexFrame(nil, entries, false)
		if _, err := f.WriteAt(idx, off); err != nil {
			f.Truncate(off)
			return f, off, false, nil, nil
		}
		f.Datasync()
		return f, off + int64(len(idx)), false, nil, nil
	}

	tail := make([]byte, size-off)
	if _, err := f.ReadAt(tail, off); err != nil {
		return nil, 0, false, nil, fmt.Errorf("repair %s: %w", path, err)
	}
	text := salvage(tail)
	salvaged := len(text)
	if _, last, n := recordStats(text); n > 0 {
		lastTs = max(lastTs, last)
	}
	if lastTs == 0 {
		if t, ok := parseSegmentName(filepath.Base(path)); ok {
			lastTs = t.UnixMilli()
		}
	}
	lost := size - off
	text = appendEventRecord(text, msTime(lastTs), EventGap, tornGapText(lost, salvaged))
	frame := s.encoder().EncodeAll(text, nil)

	if salvaged == 0 || lost < 8 {
		// Nothing to lose by cutting the torn bytes: write the gap event
		// (and the index) in their place.
		if err := f.Truncate(off); err != nil {
			return nil, 0, false, nil, fmt.Errorf("repair %s: %w", path, err)
		}
		addEntry(text, off, off+int64(len(frame)))
		out := appendIndexFrame(frame, entries, false)
		if _, err := f.WriteAt(out, off); err != nil {
			f.Truncate(off)
			s.log.Warn("logstore: repaired torn segment; its gap event is written later", "segment", path, "torn_bytes", lost, "err", err)
			return f, off, false, text, nil
		}
		f.Datasync()
		s.log.Warn("logstore: repaired torn segment", "segment", path, "torn_bytes", lost, "salvaged_bytes", 0)
		return f, off + int64(len(out)), false, nil, nil
	}

	// 1. The salvage goes after the torn bytes, which stay until it is
	// safely on disk: on a full disk the file is left exactly as it was.
	restore := func(err error) (segFile, int64, bool, []byte, error) {
		if terr := f.Truncate(size); terr != nil {
			return nil, 0, false, nil, fmt.Errorf("repair %s: %w; and cutting back what was written: %w", path, err, terr)
		}
		return nil, 0, false, nil, fmt.Errorf("repair %s: %w: %w", path, errRepairDeferred, err)
	}
	if _, err := f.WriteAt(frame, size); err != nil {
		return restore(err)
	}
	if err := f.Datasync(); err != nil {
		return restore(err)
	}
	// 2. The torn bytes become a skippable frame: an 8-byte overwrite of
	// space the file already has.
	var skip [8]byte
	binary.LittleEndian.PutUint32(skip[:], skippableMagic|tornFrameID)
	binary.LittleEndian.PutUint32(skip[4:], uint32(lost-8))
	if _, err := f.WriteAt(skip[:], off); err != nil {
		return restore(err)
	}
	end := size + int64(len(frame))
	// 3. The index, if there is room; without it the frames are walked.
	addEntry(text, size, end)
	idx := appendIndexFrame(nil, entries, false)
	if _, err := f.WriteAt(idx, end); err != nil {
		f.Truncate(end)
	} else {
		end += int64(len(idx))
	}
	if err := f.Datasync(); err != nil {
		return nil, 0, false, nil, fmt.Errorf("repair %s: %w", path, err)
	}
	s.log.Warn("logstore: repaired torn segment", "segment", path, "torn_bytes", lost, "salvaged_bytes", salvaged)
	return f, end, false, nil, nil
}

// salvage decodes what it can of a torn data frame and returns the
// complete records in it, plus the cut last output record as a partial
// record (its missing rest is lost).
func salvage(torn []byte) []byte {
	if len(torn) < 4 || binary.LittleEndian.Uint32(torn) != zstdMagic {
		return nil
	}
	// DecodeAll keeps what it decoded before the cut, even the last block
	// when only the checksum is missing (a streaming decoder does not).
	text, _ := decoder().DecodeAll(torn, nil)
	cut := bytes.LastIndexByte(text, '\n') + 1
	rest := text[cut:]
	text = text[:cut]
	if len(rest) > prefixLen && (Marker(rest[tsLen+1]) == MarkCRLF || Marker(rest[tsLen+1]) == MarkLF || Marker(rest[tsLen+1]) == MarkPartial) {
		payload := rest[prefixLen:]
		// Drop an escape cut in the middle.
		if i := bytes.LastIndexByte(payload, '\\'); i >= 0 {
			if _, err := appendUnescaped(nil, payload[i:]); err != nil {
				payload = payload[:i]
			}
		}
		if raw, err := appendUnescaped(nil, payload); err == nil {
			if ms, err := parseTimestampMs(rest); err == nil && len(raw) > 0 {
				text = appendOutputRecord(text, msTime(ms), raw)
			}
		}
	}
	return text
}

// sealEncoder compresses sealed segments; sealing runs one segment at a
// time per Store, so one encoder is enough.
var sealEncoder = sync.OnceValue(func() *zstd.Encoder {
	e, err := zstd.NewWriter(nil,
		zstd.WithEncoderLevel(zstd.SpeedBetterCompression),
		zstd.WithEncoderConcurrency(1),
		zstd.WithEncoderCRC(true))
	if err != nil {
		panic("logstore: zstd encoder options: " + err.Error()) // static options
	}
	return e
})

// sealSegment rewrites a closed segment as large frames with a complete
// index at the end, atomically (temporary file, fsync, rename, fsync of
// the folder). A segment that ends in a torn frame gets what can be
// salvaged from it and a gap event. A segment damaged elsewhere is left
// as it is (errDamaged).
func (s *Store) sealSegment(ctx context.Context, dir, name string) error {
	frameBytes := s.opt.SealFrameBytes
	path := filepath.Join(dir, name)
	in, err := os.Open(path)
	if err != nil {
		return err
	}
	defer in.Close()
	st, err := in.Stat()
	if err != nil {
		return err
	}
	p := planSegment(in, st.Size(), path)
	if p.hdrErr != nil {
		return fmt.Errorf("not sealed: %w (%w)", p.hdrErr, errDamaged)
	}
	if p.hdr.Sealed {
		return nil
	}
	if len(p.damage) > 0 {
		return fmt.Errorf("not sealed: %w (%w)", p.damage[0], errDamaged)
	}
	tmp := filepath.Join(dir, "."+name+".tmp")
	os.Remove(tmp)
	outf, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o640)
	if err != nil {
		return err
	}
	out := s.wrap(outf)
	ok := false
	defer func() {
		if !ok {
			out.Close()
			os.Remove(tmp)
		}
	}()
	hdr := p.hdr
	hdr.Sealed = true
	wbuf := appendHeaderFrame(nil, hdr)
	off := int64(0)
	var entries []indexEntry
	enc := sealEncoder()
	var frame []byte
	emit := func(text []byte) error {
		first, last, n := recordStats(text)
		frame = enc.EncodeAll(text, frame[:0])
		start := off + int64(len(wbuf))
		entries = append(entries, indexEntry{Off: start, End: start + int64(len(frame)), First: first, Last: last,
			Size: uint32(len(text)), Records: uint32(n)})
		wbuf = append(wbuf, frame...)
		if len(wbuf) >= 1<<20 {
			if _, err := out.WriteAt(wbuf, off); err != nil {
				return err
			}
			off += int64(len(wbuf))
			wbuf = wbuf[:0]
		}
		return nil
	}
	buf := make([]byte, 0, frameBytes+frameBytes/4)
	for _, c := range p.chunks {
		if err := ctx.Err(); err != nil {
			return err
		}
		var errs []*CorruptError
		buf, errs = decodeChunk(in, path, c, buf)
		if len(errs) > 0 {
			return fmt.Errorf("not sealed: %w (%w)", errs[0], errDamaged)
		}
		off := 0
		for len(buf)-off >= frameBytes {
			cut := sealCut(buf[off:], frameBytes)
			if err := emit(buf[off : off+cut]); err != nil {
				return err
			}
			off += cut
		}
		buf = append(buf[:0], buf[off:]...)
	}
	if p.torn {
		// What a crash cut: salvage it as a repair would.
		tail := make([]byte, st.Size()-p.end)
		if _, err := in.ReadAt(tail, p.end); err != nil {
			return err
		}
		text := salvage(tail)
		_, lastTs, n := recordStats(text)
		if n == 0 {
			if _, last, m := recordStats(buf); m > 0 {
				lastTs = last
			} else if k := len(entries); k > 0 {
				lastTs = entries[k-1].Last
			} else if t, ok := parseSegmentName(name); ok {
				lastTs = t.UnixMilli()
			}
		}
		buf = append(buf, text...)
		buf = appendEventRecord(buf, msTime(lastTs), EventGap, fmt.Sprintf(
			"the segment ended in a frame cut short (the writer crashed, or a write failed and could not be undone): %d compressed bytes torn, %d bytes of records salvaged; anything after is lost",
			st.Size()-p.end, len(text)))
	}
	if len(buf) > 0 {
		if err := emit(buf); err != nil {
			return err
		}
	}
	wbuf = appendIndexFrame(wbuf, entries, true)
	if _, err := out.WriteAt(wbuf, off); err != nil {
		return err
	}
	if err := out.Sync(); err != nil {
		return err
	}
	if err := out.Close(); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	ok = true
	s.syncDir(dir)
	return nil
}

// sealCut picks where to end a sealed frame: at a record boundary at most
// limit bytes in, preferring one that also ends a console line, so a frame
// seldom starts in the middle of a line.
func sealCut(text []byte, limit int) int {
	lastRec := -1
	for p := limit - 1; p >= 0 && p >= limit-(64<<10); p-- {
		if text[p] != '\n' {
			continue
		}
		if lastRec < 0 {
			lastRec = p + 1
		}
		start := bytes.LastIndexByte(text[:p], '\n') + 1
		if p-start > tsLen+1 && Marker(text[start+tsLen+1]) != MarkPartial {
			return p + 1
		}
	}
	if lastRec > 0 {
		return lastRec
	}
	if i := bytes.LastIndexByte(text[:limit], '\n'); i >= 0 {
		return i + 1
	}
	if i := bytes.IndexByte(text[limit:], '\n'); i >= 0 {
		return limit + i + 1
	}
	return len(text)
}
