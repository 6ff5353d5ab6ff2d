package logstore

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Frame magics (RFC 8878 §3.1.1 and §3.1.2), little-endian on disk.
const (
	zstdMagic      = 0xFD2FB528
	skippableMagic = 0x184D2A50 // low nibble is the skippable frame's ID

	headerFrameID = 0xC // 0x184D2A5C: segment header (JSON)
	indexFrameID  = 0xD // 0x184D2A5D: time index
)

// Limits that keep a hostile file from making readers allocate much.
const (
	maxHeaderPayload = 4 << 10
	maxIndexPayload  = 16 << 20
	maxFrameContent  = 64 << 20 // largest decompressed data frame a reader accepts
	maxBlockSize     = 128 << 10
)

// ErrTruncated says a frame continues past the end of the file: the tail
// of a live segment being written, or of one torn by a crash.
var ErrTruncated = errors.New("frame continues past the end of the file")

// CorruptError reports damage in a segment file: where, and what is wrong.
// Readers skip the damaged part and go on with the next frame that is
// intact, so everything else stays readable.
type CorruptError struct {
	Path   string // the segment file
	Offset int64  // where the damage starts
	Err    error  // what is wrong
}

func (e *CorruptError) Error() string {
	return fmt.Sprintf("logstore: %s: offset %d: %v", e.Path, e.Offset, e.Err)
}

func (e *CorruptError) Unwrap() error { return e.Err }

type frameKind uint8

const (
	kindData frameKind = iota + 1
	kindSkippable
)

// frameInfo locates one frame of a segment file.
type frameInfo struct {
	Off, Len    int64
	Kind        frameKind
	SkipID      uint8 // skippable frames: the magic's low nibble
	ContentSize int64 // data frames: decompressed size, -1 when the header omits it
}

func (f frameInfo) End() int64 { return f.Off + f.Len }

// walker walks the frames of a segment reading only frame and block
// headers, through a small read-ahead window so that walking a file of
// many small frames costs one sequential read.
type walker struct {
	r      io.ReaderAt
	size   int64
	buf    []byte
	bufOff int64
}

const walkWindow = 64 << 10

func newWalker(r io.ReaderAt, size int64) *walker {
	return &walker{r: r, size: size}
}

// peek returns the n bytes at off. n must be at most walkWindow.
func (w *walker) peek(off int64, n int) ([]byte, error) {
	if off < 0 || off+int64(n) > w.size {
		return nil, ErrTruncated
	}
	if off >= w.bufOff && off+int64(n) <= w.bufOff+int64(len(w.buf)) {
		i := off - w.bufOff
		return w.buf[i : i+int64(n)], nil
	}
	m := int64(walkWindow)
	if rest := w.size - off; rest < m {
		m = rest
	}
	if cap(w.buf) < int(m) {
		w.buf = make([]byte, walkWindow)
	}
	w.buf = w.buf[:m]
	k, err := w.r.ReadAt(w.buf, off)
	if k < n {
		w.buf = w.buf[:0]
		if err == nil || err == io.EOF {
			return nil, ErrTruncated
		}
		return nil, err
	}
	w.buf, w.bufOff = w.buf[:k], off
	return w.buf[:n], nil
}

// next returns the frame starting at off. Errors are ErrTruncated, an I/O
// error, or a description of the damage (see frameAt).
func (w *walker) next(off int64) (frameInfo, error) {
	return frameAt(w.peek, off)
}

// frameAt parses the frame at off using peek to read bytes. It validates
// the structure (magic, descriptor, block headers) without decompressing.
func frameAt(peek func(off int64, n int) ([]byte, error), off int64) (frameInfo, error) {
	b, err := peek(off, 4)
	if err != nil {
		return frameInfo{}, err
	}
	magic := binary.LittleEndian.Uint32(b)
	if magic != zstdMagic && magic&0xFFFFFFF0 != skippableMagic {
		return frameInfo{}, fmt.Errorf("bad frame magic %#08x", magic)
	}
	if b, err = peek(off, 8); err != nil {
		return frameInfo{}, err
	}
	if magic&0xFFFFFFF0 == skippableMagic {
		n := int64(binary.LittleEndian.Uint32(b[4:]))
		f := frameInfo{Off: off, Len: 8 + n, Kind: kindSkippable, SkipID: uint8(magic & 0xF)}
		if _, err := peek(off+f.Len-1, 1); err != nil && f.Len > 8 {
			return f, err
		}
		return f, nil
	}
	fhd := b[4]
	if fhd&0x08 != 0 {
		return frameInfo{}, errors.New("frame header: reserved bit set")
	}
	single := fhd&0x20 != 0
	dictLen := [4]int{0, 1, 2, 4}[fhd&3]
	fcsLen := [4]int{0, 2, 4, 8}[fhd>>6]
	if fcsLen == 0 && single {
		fcsLen = 1
	}
	hdrLen := 5 + dictLen + fcsLen
	if !single {
		hdrLen++
	}
	h, err := peek(off, hdrLen)
	if err != nil {
		return frameInfo{}, err
	}
	windowSize := int64(-1)
	p := 5
	if !single {
		wd := h[5]
		exp := int(wd >> 3)
		base := int64(1) << (10 + exp)
		windowSize = base + (base/8)*int64(wd&7)
		p++
	}
	p += dictLen
	f := frameInfo{Off: off, Kind: kindData, ContentSize: -1}
	switch fcsLen {
	case 1:
		f.ContentSize = int64(h[p])
	case 2:
		f.ContentSize = int64(binary.LittleEndian.Uint16(h[p:])) + 256
	case 4:
		f.ContentSize = int64(binary.LittleEndian.Uint32(h[p:]))
	case 8:
		f.ContentSize = int64(binary.LittleEndian.Uint64(h[p:]))
	}
	if f.ContentSize < -1 {
		f.ContentSize = 1 << 62
	}
	blockMax := int64(maxBlockSize)
	if single {
		windowSize = f.ContentSize
	}
	if windowSize >= 0 && windowSize < blockMax {
		blockMax = max(windowSize, 1)
	}
	pos := off + int64(hdrLen)
	for {
		bh, err := peek(pos, 3)
		if err != nil {
			return f, err
		}
		v := uint32(bh[0]) | uint32(bh[1])<<8 | uint32(bh[2])<<16
		last := v&1 != 0
		typ := (v >> 1) & 3
		size := int64(v >> 3)
		pos += 3
		switch typ {
		case 0: // raw
			if size > blockMax {
				return f, fmt.Errorf("block at %d: raw block of %d bytes exceeds the maximum %d", pos-3, size, blockMax)
			}
			pos += size
		case 1: // RLE
			pos++
		case 2: // compressed
			if size > blockMax {
				return f, fmt.Errorf("block at %d: compressed block of %d bytes exceeds the maximum %d", pos-3, size, blockMax)
			}
			pos += size
		default:
			return f, fmt.Errorf("block at %d: reserved block type", pos-3)
		}
		if last {
			break
		}
	}
	if fhd&0x04 != 0 {
		pos += 4
	}
	f.Len = pos - off
	if _, err := peek(pos-1, 1); err != nil {
		return f, err
	}
	return f, nil
}

// resync looks for the next offset after off where an intact frame starts,
// scanning for a zstd or skippable magic and checking the frame there.
// It returns -1 if there is none.
func (w *walker) resync(off int64) int64 {
	for pos := off + 1; pos+4 <= w.size; {
		n := int(min(int64(walkWindow), w.size-pos))
		b, err := w.peek(pos, n)
		if err != nil {
			return -1
		}
		for i := 0; i+4 <= len(b); i++ {
			// Cheap byte test first: the top byte of either magic.
			if b[i+3] != 0xFD && b[i+3] != 0x18 {
				continue
			}
			m := binary.LittleEndian.Uint32(b[i:])
			if m != zstdMagic && m&0xFFFFFFF0 != skippableMagic {
				continue
			}
			cand := pos + int64(i)
			if _, err := w.next(cand); err == nil {
				return cand
			}
			// next moved the window; re-peek to continue scanning.
			b, err = w.peek(pos, n)
			if err != nil {
				return -1
			}
		}
		pos += int64(n) - 3
		if n < 4 {
			break
		}
	}
	return -1
}

// appendSkippable appends a skippable frame with the given ID (0-15).
func appendSkippable(dst []byte, id uint8, payload []byte) []byte {
	dst = binary.LittleEndian.AppendUint32(dst, skippableMagic|uint32(id&0xF))
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(payload)))
	return append(dst, payload...)
}

// formatName is the value of a segment header's "format" field.
const formatName = "solgate-log/1"

// segHeader is the JSON payload of a segment's first frame.
type segHeader struct {
	Format  string `json:"format"`
	Console string `json:"console"`
	Start   string `json:"start"` // record timestamp form
	Sealed  bool   `json:"sealed,omitempty"`
}

func appendHeaderFrame(dst []byte, h segHeader) []byte {
	p, _ := json.Marshal(h) // cannot fail: strings and a bool
	return appendSkippable(dst, headerFrameID, p)
}

func parseHeader(p []byte) (segHeader, error) {
	var h segHeader
	if len(p) > maxHeaderPayload {
		return h, fmt.Errorf("segment header: %d bytes, more than %d", len(p), maxHeaderPayload)
	}
	if err := json.Unmarshal(p, &h); err != nil {
		return h, fmt.Errorf("segment header: %w", err)
	}
	if h.Format != formatName {
		return h, fmt.Errorf("segment header: format %q, want %q", h.Format, formatName)
	}
	return h, nil
}

// indexEntry describes a run of consecutive data frames: where they are
// in the file and the time span and size of the records they hold.
type indexEntry struct {
	Off, End    int64 // file offsets: first data frame, end of the last one
	First, Last int64 // Unix ms: earliest and latest record timestamp
	Size        uint32
	Records     uint32
}

const (
	indexEntryLen   = 40
	indexTrailerLen = 16 // u32 count, u32 flags, u32 CRC-32C of the entries, "SGIX"
	indexComplete   = 1  // flag: the entries cover every data frame of the file
	indexMagic      = "SGIX"
)

// appendIndexFrame appends a complete index skippable frame.
func appendIndexFrame(dst []byte, entries []indexEntry, complete bool) []byte {
	n := len(entries)*indexEntryLen + indexTrailerLen
	dst = binary.LittleEndian.AppendUint32(dst, skippableMagic|indexFrameID)
	dst = binary.LittleEndian.AppendUint32(dst, uint32(n))
	start := len(dst)
	for _, e := range entries {
		dst = binary.LittleEndian.AppendUint64(dst, uint64(e.Off))
		dst = binary.LittleEndian.AppendUint64(dst, uint64(e.End))
		dst = binary.LittleEndian.AppendUint64(dst, uint64(e.First))
		dst = binary.LittleEndian.AppendUint64(dst, uint64(e.Last))
		dst = binary.LittleEndian.AppendUint32(dst, e.Size)
		dst = binary.LittleEndian.AppendUint32(dst, e.Records)
	}
	var flags uint32
	if complete {
		flags |= indexComplete
	}
	crc := crc32.Checksum(dst[start:], castagnoli)
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(entries)))
	dst = binary.LittleEndian.AppendUint32(dst, flags)
	dst = binary.LittleEndian.AppendUint32(dst, crc)
	return append(dst, indexMagic...)
}

// parseIndex decodes an index frame payload. It checks the payload's own
// consistency; whether the offsets fit the file is the caller's business.
func parseIndex(p []byte) (entries []indexEntry, complete bool, err error) {
	if len(p) < indexTrailerLen {
		return nil, false, fmt.Errorf("index: %d bytes, shorter than its %d-byte trailer", len(p), indexTrailerLen)
	}
	if len(p) > maxIndexPayload {
		return nil, false, fmt.Errorf("index: %d bytes, more than %d", len(p), maxIndexPayload)
	}
	t := p[len(p)-indexTrailerLen:]
	if string(t[12:]) != indexMagic {
		return nil, false, fmt.Errorf("index: trailer magic %q, want %q", t[12:], indexMagic)
	}
	n := int(binary.LittleEndian.Uint32(t))
	flags := binary.LittleEndian.Uint32(t[4:])
	if want := n*indexEntryLen + indexTrailerLen; n < 0 || n > maxIndexPayload/indexEntryLen || want != len(p) {
		return nil, false, fmt.Errorf("index: %d entries need %d bytes, payload has %d", n, n*indexEntryLen+indexTrailerLen, len(p))
	}
	if got, want := crc32.Checksum(p[:len(p)-indexTrailerLen], castagnoli), binary.LittleEndian.Uint32(t[8:]); got != want {
		return nil, false, fmt.Errorf("index: CRC-32C %#08x, trailer says %#08x", got, want)
	}
	entries = make([]indexEntry, n)
	for i := range entries {
		b := p[i*indexEntryLen:]
		e := indexEntry{
			Off:     int64(binary.LittleEndian.Uint64(b)),
			End:     int64(binary.LittleEndian.Uint64(b[8:])),
			First:   int64(binary.LittleEndian.Uint64(b[16:])),
			Last:    int64(binary.LittleEndian.Uint64(b[24:])),
			Size:    binary.LittleEndian.Uint32(b[32:]),
			Records: binary.LittleEndian.Uint32(b[36:]),
		}
		if e.Off < 0 || e.End <= e.Off {
			return nil, false, fmt.Errorf("index: entry %d: range [%d,%d) is empty or negative", i, e.Off, e.End)
		}
		if e.Last < e.First {
			return nil, false, fmt.Errorf("index: entry %d: last time %d before first %d", i, e.Last, e.First)
		}
		if i > 0 && e.Off < entries[i-1].End {
			return nil, false, fmt.Errorf("index: entry %d starts at %d, before entry %d ends at %d", i, e.Off, i-1, entries[i-1].End)
		}
		entries[i] = e
	}
	return entries, flags&indexComplete != 0, nil
}
