package sshgw

import (
	"encoding/binary"
	"testing"
)

// FuzzRequestPayloads: the parsers of the pty-req and window-change
// payloads a client sends never panic, and what they read from a payload
// is what that payload says when written out again.
func FuzzRequestPayloads(f *testing.F) {
	pty := func(term string, cols, rows uint32) []byte {
		p := binary.BigEndian.AppendUint32(nil, uint32(len(term)))
		p = append(p, term...)
		for _, v := range []uint32{cols, rows, 0, 0, 0} { // pixels, then an empty modes string
			p = binary.BigEndian.AppendUint32(p, v)
		}
		return p
	}
	f.Add(pty("xterm-256color", 80, 24))
	f.Add(pty("", 0, 0))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 'x'})
	f.Add(binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint32(nil, 132), 50))
	f.Fuzz(func(t *testing.T, p []byte) {
		if term, cols, rows, ok := parsePtyReq(p); ok {
			t2, c2, r2, ok2 := parsePtyReq(pty(term, cols, rows))
			if !ok2 || t2 != term || c2 != cols || r2 != rows {
				t.Fatalf("pty-req %x read as %q %dx%d; written out again: %q %dx%d %v", p, term, cols, rows, t2, c2, r2, ok2)
			}
		}
		if cols, rows, ok := parseWindowChange(p); ok {
			if len(p) < 16 || cols != binary.BigEndian.Uint32(p) || rows != binary.BigEndian.Uint32(p[4:]) {
				t.Fatalf("window-change %x read as %dx%d", p, cols, rows)
			}
		} else if len(p) >= 16 {
			t.Fatalf("window-change of %d bytes refused", len(p))
		}
	})
}
