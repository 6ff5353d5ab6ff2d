package syslog

import (
	"bytes"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/solgate/solgate/logstore"
)

// A positions file with a line longer than the scanner takes (a damaged
// file) is unusable as a whole, not read up to that line: the consoles
// after it would silently start over.
func TestParseStateLongLine(t *testing.T) {
	st := state{key: "tcp://127.0.0.1:514", created: time.UnixMilli(1_800_000_000_000), pos: map[string]commit{
		"node1": {pos: logstore.Position{Segment: "20261123T100000Z.zst", Offset: 42}, seq: 7},
	}}
	good := st.appendText(nil)
	if got, err := parseState(good, "p", st.key); err != nil || !maps.Equal(got.pos, st.pos) || !got.created.Equal(st.created) {
		t.Fatalf("round trip: %+v, %v", got, err)
	}
	damaged := append(bytes.Clone(good), strings.Repeat("x", 2<<20)...)
	damaged = append(damaged, "\nnode2 20261123T100000Z.zst:1 1 :0\n"...)
	if _, err := parseState(damaged, "p", st.key); err == nil || !strings.Contains(err.Error(), "token too long") {
		t.Fatalf("a 2 MiB line: %v, want the file refused", err)
	}
}

// FuzzParseState: any file content parses or is refused without
// panicking, and a state it accepts is written back and read again
// unchanged.
func FuzzParseState(f *testing.F) {
	key := "tcp://127.0.0.1:514"
	st := state{key: key, created: time.UnixMilli(1_800_000_000_000), pos: map[string]commit{
		"node1": {pos: logstore.Position{Segment: "20261123T100000Z.zst", Offset: 42}, seq: 7},
		"node2": {seq: 1, stripFrom: logstore.Position{Segment: "20261123T110000Z.zst", Offset: 3}},
	}}
	f.Add(st.appendText(nil))
	f.Add([]byte(stateMagic + "\ntarget " + key + "\ncreated x\n"))
	f.Add([]byte("garbage\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := parseState(data, "p", key)
		if err != nil {
			return
		}
		again, err := parseState(got.appendText(nil), "p", key)
		if err != nil || !maps.Equal(got.pos, again.pos) || !got.created.Equal(again.created) {
			t.Fatalf("round trip: %+v -> %+v, %v", got, again, err)
		}
	})
}
