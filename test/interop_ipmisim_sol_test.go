package test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/solgate/solgate/ipmilan"
)

// TestIPMISimSOL: our SOL client against OpenIPMI's ipmi_sim SOL, bytes
// checked both ways (ipmi_sim's serial side is a TCP socket this test
// drives).
func TestIPMISimSOL(t *testing.T) {
	sim, serial := startIPMISimSOL(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c, err := ipmilan.DialSOL(ctx, ipmilan.Config{Addr: sim.Addr, User: "admin", Password: ipmilan.Secret("secret"), CipherSuite: 3}, ipmilan.SOLOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	// Node output -> client: a numbered stream well over one packet.
	var want bytes.Buffer
	for i := range 2000 {
		fmt.Fprintf(&want, "line %05d \x1b[1mbold\x1b[0m\r\n", i)
	}
	go func() { serial.Write(want.Bytes()) }()
	got := make([]byte, want.Len())
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatalf("read %d bytes: %v (stats %+v)", want.Len(), err, c.Stats())
	}
	if !bytes.Equal(got, want.Bytes()) {
		t.Fatalf("console output differs (stats %+v)", c.Stats())
	}

	// Client input -> node, larger than ipmi_sim's 32-byte inbound buffer.
	in := bytes.Repeat([]byte("typed input 0123456789 "), 40)
	if _, err := c.Write(in); err != nil {
		t.Fatal(err)
	}
	serial.SetReadDeadline(time.Now().Add(30 * time.Second))
	gotIn := make([]byte, len(in))
	if _, err := io.ReadFull(serial, gotIn); err != nil {
		t.Fatalf("node received %v (stats %+v)", err, c.Stats())
	}
	if !bytes.Equal(gotIn, in) {
		t.Fatalf("node input differs:\n got %q\nwant %q", gotIn, in)
	}
	// The last acknowledgement may still be on its way.
	st := c.Stats()
	for deadline := time.Now().Add(5 * time.Second); st.BytesOut < uint64(len(in)) && time.Now().Before(deadline); st = c.Stats() {
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("stats: %+v", st)
	if st.BytesIn != uint64(want.Len()) || st.BytesOut != uint64(len(in)) {
		t.Errorf("counters: in %d out %d, want %d and %d", st.BytesIn, st.BytesOut, want.Len(), len(in))
	}
}
