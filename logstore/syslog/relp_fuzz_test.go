package syslog

import (
	"bufio"
	"bytes"
	"fmt"
	"testing"
)

// FuzzRELPFrame: the reader of the receiver's RELP frames never panics,
// never returns more than maxRELPFrame bytes of data, and what it reads
// is what the same frame written out again reads as.
func FuzzRELPFrame(f *testing.F) {
	f.Add([]byte("1 rsp 6 200 OK\n"))
	f.Add([]byte("0 serverclose 0\n"))
	f.Add([]byte("2 rsp 92 200 OK\nrelp_version=0\nrelp_software=rsyslogd,8.2302.0,https://www.rsyslog.com\ncommands=syslog\n"))
	f.Add([]byte("3 rsp 999999999 x\n"))
	f.Add([]byte("-1 rsp 0\n"))
	f.Add([]byte("1 rsp 3 abc"))
	f.Fuzz(func(t *testing.T, b []byte) {
		txnr, cmd, data, err := readRELPFrame(bufio.NewReader(bytes.NewReader(b)))
		if err != nil {
			return
		}
		if len(data) > maxRELPFrame || txnr < 0 {
			t.Fatalf("frame %q: txnr %d, %d bytes of data", b, txnr, len(data))
		}
		again := fmt.Appendf(nil, "%d %s %d", txnr, cmd, len(data))
		if len(data) > 0 {
			again = append(append(again, ' '), data...)
		}
		again = append(again, '\n')
		txnr2, cmd2, data2, err := readRELPFrame(bufio.NewReader(bytes.NewReader(again)))
		if err != nil || txnr2 != txnr || cmd2 != cmd || !bytes.Equal(data2, data) {
			t.Fatalf("frame %q read as (%d %q %q); written out again as %q it reads as (%d %q %q) %v", b, txnr, cmd, data, again, txnr2, cmd2, data2, err)
		}
	})
}
