package test

import (
	"bytes"
	"io"
	"strings"
	"testing"
	"time"
)

// allBytes is every byte value, then line endings, escape sequences and
// UTF-8 that a terminal would act on.
func allBytes() []byte {
	b := make([]byte, 0, 300)
	for i := 0; i < 256; i++ {
		b = append(b, byte(i))
	}
	return append(b, "\r\n\n\r\x00\xff\x1b[2J\x1b[5;5H\x1b]0;t\x07é€😀"...)
}

// TestGatewayByteTransparency: every byte value passes unchanged both
// ways through a PTY session, the SSH gateway, the console manager and
// SOL to a bmcsim host.
func TestGatewayByteTransparency(t *testing.T) {
	g := startGateway(t, gwOptions{sol: noEcho()})
	bmc := g.bmcs["node1"]
	p := openPTY(t, g.dial("alice", "node1"), "")
	p.waitFor("the banner", "you are rw")
	all := allBytes()
	const start, end = "<<<begin>>>", "<<<end>>>"
	bmc.HostWrite([]byte(start))
	bmc.HostWrite(all)
	bmc.HostWrite([]byte(end))
	p.waitFor("every byte out", end)
	got := p.text()
	got = got[strings.Index(got, start)+len(start) : strings.Index(got, end)]
	if got != string(all) {
		t.Errorf("output changed on its way:\n got %q\nwant %q", got, all)
	}

	// Input: everything but the escape prefix (^E then c) reaches the
	// host as typed; ^E followed by anything else is sent as it is.
	io.WriteString(p.in, start)
	p.in.Write(all)
	io.WriteString(p.in, end)
	waitFor(t, "every byte in", 30*time.Second, func() bool { return bytes.Contains(bmc.HostInput(), []byte(end)) })
	in := bmc.HostInput()
	in = in[bytes.Index(in, []byte(start))+len(start) : bytes.Index(in, []byte(end))]
	if !bytes.Equal(in, all) {
		t.Errorf("input changed on its way:\n got %q\nwant %q", in, all)
	}
}

// TestGatewayPipedInput: an attach without a PTY (a script with stdin
// piped) sends its input to the console and gets the output.
func TestGatewayPipedInput(t *testing.T) {
	g := startGateway(t, gwOptions{})
	bmc := g.bmcs["node1"]
	c := g.dial("alice", "node1")
	s, err := c.NewSession()
	must(t, err)
	defer s.Close()
	var out syncBuffer
	s.Stdout = &out
	in, _ := s.StdinPipe()
	must(t, s.Shell())
	io.WriteString(in, "scripted-input\r")
	waitFor(t, "the input at the BMC", 20*time.Second, func() bool { return strings.Contains(string(bmc.HostInput()), "scripted-input\r") })
	waitFor(t, "the echo", 20*time.Second, func() bool { return strings.Contains(out.String(), "scripted-input") })
}
