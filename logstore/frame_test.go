package logstore

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"
)

var testEnc = func() *zstd.Encoder {
	e, _ := zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1))
	return e
}()

func TestIndexCodec(t *testing.T) {
	es := []indexEntry{
		{Off: 80, End: 200, First: 1000, Last: 2000, Size: 500, Records: 7},
		{Off: 200, End: 9000, First: 1500, Last: 1500, Size: 1 << 20, Records: 1},
	}
	for _, complete := range []bool{false, true} {
		b := appendIndexFrame(nil, es, complete)
		f, err := frameAt(bytesPeek(b), 0)
		if err != nil || f.Kind != kindSkippable || f.SkipID != indexFrameID || f.Len != int64(len(b)) {
			t.Fatalf("index frame walks as %+v, %v", f, err)
		}
		got, c, err := parseIndex(b[8:])
		if err != nil || c != complete || fmt.Sprint(got) != fmt.Sprint(es) {
			t.Fatalf("parseIndex = %v %v %v, want %v %v", got, c, err, es, complete)
		}
	}
	good := appendIndexFrame(nil, es, true)[8:]
	tests := []struct {
		name string
		p    []byte
		want string
	}{
		{"short", good[:5], "shorter than"},
		{"bad magic", append(bytes.Clone(good[:len(good)-1]), 'Y'), "trailer magic"},
		{"wrong count", func() []byte { b := bytes.Clone(good); b[len(b)-16] = 3; return b }(), "entries need"},
		{"crc", func() []byte { b := bytes.Clone(good); b[0] ^= 1; return b }(), "CRC-32C"},
		{"empty range", appendIndexFrame(nil, []indexEntry{{Off: 5, End: 5}}, false)[8:], "empty or negative"},
		{"time order", appendIndexFrame(nil, []indexEntry{{Off: 5, End: 6, First: 9, Last: 8}}, false)[8:], "before first"},
		{"overlap", appendIndexFrame(nil, []indexEntry{{Off: 5, End: 9}, {Off: 8, End: 10}}, false)[8:], "before entry 0 ends"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, _, err := parseIndex(tt.p); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("parseIndex error = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestHeaderCodec(t *testing.T) {
	h := segHeader{Format: formatName, Console: "node42", Start: "2026-11-23T10:00:00.000Z", Sealed: true}
	b := appendHeaderFrame(nil, h)
	got, err := headerAt(bytes.NewReader(b), int64(len(b)))
	if err != nil || got != h {
		t.Fatalf("headerAt = %+v, %v", got, err)
	}
	for _, p := range []string{`{"format":"other/1"}`, `not json`, `{"format":1}`} {
		if _, err := parseHeader([]byte(p)); err == nil {
			t.Fatalf("parseHeader(%s) accepted", p)
		}
	}
	if _, err := headerAt(bytes.NewReader(testEnc.EncodeAll([]byte("x"), nil)), 20); err == nil {
		t.Fatal("a data frame first was accepted as a header")
	}
}

func bytesPeek(b []byte) func(int64, int) ([]byte, error) {
	w := newWalker(bytes.NewReader(b), int64(len(b)))
	return w.peek
}

// TestFrameWalk checks the header-only walk against frames klauspost
// writes: small, large (several blocks), RLE, incompressible, empty.
func TestFrameWalk(t *testing.T) {
	rnd := make([]byte, 300<<10)
	for i := range rnd {
		rnd[i] = byte(i*7919 ^ i>>5)
	}
	inputs := [][]byte{
		[]byte("hello"), bytes.Repeat([]byte("a"), 1<<20), rnd, []byte(strings.Repeat("line of text\n", 20000)), {},
	}
	var file []byte
	var want []frameInfo
	for i, in := range inputs {
		off := int64(len(file))
		if i == 2 {
			file = appendSkippable(file, 3, []byte("other tool's frame"))
			want = append(want, frameInfo{Off: off, Len: int64(len(file)) - off, Kind: kindSkippable, SkipID: 3})
			off = int64(len(file))
		}
		file = testEnc.EncodeAll(in, file)
		want = append(want, frameInfo{Off: off, Len: int64(len(file)) - off, Kind: kindData})
	}
	w := newWalker(bytes.NewReader(file), int64(len(file)))
	var got []frameInfo
	for off := int64(0); off < int64(len(file)); {
		f, err := w.next(off)
		if err != nil {
			t.Fatalf("walk at %d: %v", off, err)
		}
		f.ContentSize = 0
		got = append(got, f)
		off = f.End()
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("walk:\n got %+v\nwant %+v", got, want)
	}
	// Every cut inside the last frame is a truncation, not damage.
	last := want[len(want)-1]
	for cut := last.Off + 1; cut < last.End(); cut += 97 {
		w := newWalker(bytes.NewReader(file[:cut]), cut)
		if _, err := w.next(last.Off); !errors.Is(err, ErrTruncated) {
			t.Fatalf("cut at %d: %v, want ErrTruncated", cut, err)
		}
	}
	// Resync finds the next frame after garbage.
	g := append(append(bytes.Clone(file[:want[1].Off]), "garbage!"...), file[want[1].Off:]...)
	w = newWalker(bytes.NewReader(g), int64(len(g)))
	if _, err := w.next(want[1].Off); err == nil {
		t.Fatal("garbage walked as a frame")
	}
	if next := w.resync(want[1].Off); next != want[1].Off+8 {
		t.Fatalf("resync = %d, want %d", next, want[1].Off+8)
	}
}

// testSegment builds a segment in memory: the header, one data frame per
// group of records, an index frame after every frame when live; when
// sealed, one complete index at the end. It returns the file and the end
// offset of each data frame.
func testSegment(groups [][]byte, sealed bool) ([]byte, []int64) {
	file := appendHeaderFrame(nil, segHeader{Format: formatName, Console: "c", Start: "2026-11-23T10:00:00.000Z", Sealed: sealed})
	var ends []int64
	var es []indexEntry
	for _, g := range groups {
		off := int64(len(file))
		file = testEnc.EncodeAll(g, file)
		ends = append(ends, int64(len(file)))
		first, last, n := recordStats(g)
		e := indexEntry{Off: off, End: int64(len(file)), First: first, Last: last, Size: uint32(len(g)), Records: uint32(n)}
		if sealed {
			es = append(es, e)
		} else {
			file = appendIndexFrame(file, []indexEntry{e}, false)
		}
	}
	if sealed {
		file = appendIndexFrame(file, es, true)
	}
	return file, ends
}

// readAll reads every record of a segment the way readers do.
func readAll(file []byte) (recs []string, errs []error) {
	r := bytes.NewReader(file)
	p := planSegment(r, int64(len(file)), "seg")
	for _, e := range p.damage {
		errs = append(errs, e)
	}
	for _, c := range p.chunks {
		text, ce := decodeChunk(r, "seg", c, nil)
		for _, e := range ce {
			errs = append(errs, e)
		}
		for _, rr := range splitRecords(text, nil, func(int, error) {}) {
			recs = append(recs, string(rr.line))
		}
	}
	return recs, errs
}

func TestReadSegment(t *testing.T) {
	groups := [][]byte{
		splitLikeWriter([]byte("one\r\ntwo\r\n"), nil),
		splitLikeWriter([]byte("three\r\nfour"), nil),
		appendEventRecord(nil, t0, EventAttach, "alice"),
	}
	for _, sealed := range []bool{false, true} {
		file, _ := testSegment(groups, sealed)
		recs, errs := readAll(file)
		if len(errs) > 0 || len(recs) != 5 {
			t.Fatalf("sealed=%v: %d records %q, errors %v", sealed, len(recs), recs, errs)
		}
		p := planSegment(bytes.NewReader(file), int64(len(file)), "seg")
		if p.sealed != sealed || len(p.chunks) != 3 || !p.chunks[0].Indexed {
			t.Fatalf("sealed=%v: plan %+v", sealed, p)
		}
	}
}

// FuzzSegment corrupts a valid segment (cut, overwrite or insert at a
// position) and checks that reading never panics, reports the damage, and
// still returns every record of the frames before the damage, in order.
func FuzzSegment(f *testing.F) {
	f.Add([]byte("boot\r\nok\r\n"), uint16(100), byte(0), byte(0), false)
	f.Add([]byte("a\nb\nc"), uint16(60), byte(1), byte(0xff), true)
	f.Add([]byte("x\x1b[0m\r\ny"), uint16(300), byte(2), byte(0x28), false)
	f.Add([]byte("zz"), uint16(9999), byte(1), byte(0x5d), true)
	f.Fuzz(func(t *testing.T, raw []byte, at uint16, op, v byte, sealed bool) {
		// Three frames of records made from raw.
		var groups [][]byte
		for i := range 3 {
			part := raw[i*len(raw)/3 : (i+1)*len(raw)/3]
			g := splitLikeWriter(part, nil)
			g = appendEventRecord(g, t0, EventNote, fmt.Sprint(i))
			groups = append(groups, g)
		}
		file, ends := testSegment(groups, sealed)
		x := int(at) % (len(file) + 1)
		bad := bytes.Clone(file)
		switch op % 3 {
		case 0:
			bad = bad[:x]
		case 1:
			if x < len(bad) {
				bad[x] ^= v | 1
			}
		case 2:
			bad = append(append(bad[:x:x], v, v^0x5a, 0x18, 0x4d, 0x2a, 0x5d), file[x:]...)
		}
		recs, _ := readAll(bad)
		var want []string
		for i, e := range ends {
			if e <= int64(x) {
				for _, rr := range splitRecords(groups[i], nil, nil) {
					want = append(want, string(rr.line))
				}
			}
		}
		if len(recs) < len(want) {
			t.Fatalf("op %d at %d of %d: read %d records, want at least the %d before the damage", op%3, x, len(file), len(recs), len(want))
		}
		for i := range want {
			if recs[i] != want[i] {
				t.Fatalf("op %d at %d: record %d = %q, want %q", op%3, x, i, recs[i], want[i])
			}
		}
		// The undamaged file reads back whole.
		if recs, errs := readAll(file); len(errs) > 0 || len(recs) < 3 {
			t.Fatalf("clean file: %d records, %v", len(recs), errs)
		}
	})
}

// FuzzIndex feeds arbitrary payloads to the index decoder and arbitrary
// files to the planner.
func FuzzIndex(f *testing.F) {
	f.Add(appendIndexFrame(nil, []indexEntry{{Off: 1, End: 2}}, true))
	f.Add(appendHeaderFrame(nil, segHeader{Format: formatName}))
	f.Fuzz(func(t *testing.T, b []byte) {
		if es, c, err := parseIndex(b); err == nil {
			again := appendIndexFrame(nil, es, c)[8:]
			if !bytes.Equal(again, b) {
				t.Fatalf("index re-encodes differently:\n%x\n%x", b, again)
			}
		}
		recs, _ := readAll(b)
		_ = recs
		trailingIndex(bytes.NewReader(b), int64(len(b)))
	})
}
