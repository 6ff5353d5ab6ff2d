package test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"strings"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"github.com/solgate/solgate/ipmilan/bmcsim"
	"github.com/solgate/solgate/test/internal/testkit"
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
	var out testkit.LockedBuffer
	s.Stdout = &out
	in, _ := s.StdinPipe()
	must(t, s.Shell())
	io.WriteString(in, "scripted-input\r")
	waitFor(t, "the input at the BMC", 20*time.Second, func() bool { return strings.Contains(string(bmc.HostInput()), "scripted-input\r") })
	waitFor(t, "the echo", 20*time.Second, func() bool { return strings.Contains(out.String(), "scripted-input") })
}

// biosScreen is a BIOS setup screen as firmware draws it over serial.
const biosScreen = "\x1b[0m\x1b[2J\x1b[1;1H\x1b[44;37m Aptio Setup Utility \x1b[0m" +
	"\x1b[3;3HMain  Advanced  Boot" +
	"\x1b[5;5HSystem Date         [Tue 11/23/2026]" +
	"\x1b[5;26HW" +
	"\x1b[20;40H"

// TestGatewayScreen: a console showing a full-screen program is
// repainted on attach (after the manager's banner) instead of replayed,
// and `screen` prints it as text.
func TestGatewayScreen(t *testing.T) {
	g := startGateway(t, gwOptions{sol: noEcho()})
	g.bmcs["node1"].HostWrite([]byte("a line before setup\r\n" + biosScreen))
	waitFor(t, "the screen", 20*time.Second, func() bool {
		out, _, _ := g.run("carol", "node1", "screen")
		return strings.Contains(out, "    System Date         [Wue 11/23/2026]\n")
	})
	p := openPTY(t, g.dial("alice", "node1"), "")
	p.waitFor("the repaint", "\x1b[5;1H    System Date         [Wue 11/23/2026]")
	out := p.text()
	if b, r := strings.Index(out, "you are rw"), strings.Index(out, "\x1b[0m\x1b[H\x1b[2J"); b < 0 || r < b {
		t.Errorf("the repaint does not follow the banner: %q", out)
	}
	if strings.Contains(out, "a line before setup") {
		t.Errorf("lines replayed under a full-screen program: %q", out)
	}
}

// TestGatewaySlowClient: a client that stops reading falls behind on its
// own: the console keeps streaming to another session and to the log.
func TestGatewaySlowClient(t *testing.T) {
	g := startGateway(t, gwOptions{sol: bmcsim.SOLConfig{NoBootText: true, NoEcho: true}})
	bmc := g.bmcs["node1"]
	// The stuck one: a session channel whose data is never read, so its
	// SSH window fills and the gateway's writes to it block.
	stuck := g.dial("bob", "node1")
	ch, reqs, err := stuck.OpenChannel("session", nil)
	must(t, err)
	go gossh.DiscardRequests(reqs)
	defer ch.Close()
	if ok, err := ch.SendRequest("exec", true, gossh.Marshal(struct{ Cmd string }{"spy"})); !ok || err != nil {
		t.Fatalf("exec spy: %v %v", ok, err)
	}
	// The healthy one.
	c := g.dial("carol", "node1")
	s, err := c.NewSession()
	must(t, err)
	defer s.Close()
	var out testkit.LockedBuffer
	s.Stdout = &out
	must(t, s.Start("spy"))
	waitFor(t, "both attached", 20*time.Second, func() bool {
		o, _, _ := g.run("alice", "node1", "info --json")
		return strings.Contains(o, `"attached": 2`)
	})
	const mark = "@@go@@\r\n"
	bmc.HostWrite([]byte(mark))
	const total = 6 << 20 // more than the SSH window and the attachment's buffer together
	want := bmcsim.AppendStreamText(nil, 0, total)
	t0 := time.Now()
	must(t, bmc.Stream(context.Background(), 0, total))
	waitFor(t, "the healthy session to get everything", 120*time.Second, func() bool {
		s := out.String()
		i := strings.Index(s, mark)
		return i >= 0 && len(s)-i-len(mark) >= total
	})
	t.Logf("%d MiB streamed past a stuck client in %v", total>>20, time.Since(t0).Round(time.Millisecond))
	got := out.String()
	got = got[strings.Index(got, mark)+len(mark):][:total]
	if got != string(want) {
		t.Fatalf("the healthy session's stream differs: %s", streamDiff([]byte(got), want))
	}
	// The stuck session was told it lags, or dropped; the manager, not
	// the console, paid for it.
	who, _, _ := g.run("alice", "node1", "who --json")
	var list []struct {
		User    string `json:"user"`
		Lagging bool   `json:"lagging"`
		Missed  int64  `json:"missed_bytes"`
	}
	must(t, json.Unmarshal([]byte(who), &list))
	for _, a := range list {
		if a.User == "bob" && !a.Lagging && a.Missed == 0 {
			t.Errorf("the stuck session neither lags nor was dropped: %s", who)
		}
		if a.User == "carol" && a.Missed != 0 {
			t.Errorf("the healthy session missed output: %s", who)
		}
	}
}
