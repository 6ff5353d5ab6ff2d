package conserver

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/solgate/solgate/ipmilan/bmcsim"
)

func TestConsoleLogsAndAttaches(t *testing.T) {
	t.Parallel()
	s := startSim(t, bmcsim.Config{PowerOn: true})
	e := newEnv(t, "", []consoleSpec{{name: "node1", bmc: s.Addr}}, Options{})
	c := e.m.Console("node1")
	waitState(t, c, Up, 10*time.Second)

	a, err := c.Attach(Identity{User: "alice", Via: "test"}, AttachOptions{Replay: 5})
	must(t, err)
	r := readAll(a)
	r.wait(t, "node1: connected since", 5*time.Second)
	r.wait(t, "simnode login: ", 5*time.Second) // the boot text, replayed or live
	if a.Mode() != ModeRW {
		t.Fatalf("mode %v, want rw", a.Mode())
	}

	// Output: a numbered stream reaches the attachment and the log whole.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	const total = 40 << 10
	must(t, s.Stream(ctx, 0, total))
	want := string(bmcsim.AppendStreamText(nil, 0, total))
	r.wait(t, want[len(want)-200:], 10*time.Second)
	if !strings.Contains(r.text(), want) {
		t.Fatal("the attachment's output lacks the stream in one piece")
	}
	waitFor(t, "stream in the log", 5*time.Second, func() bool { return strings.Contains(logRaw(t, e.store, "node1"), want) })

	// Input: typed text reaches the host, echoed back.
	line := "echo hello-from-alice\r"
	if _, err := a.Write([]byte(line)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "typed line at the host", 5*time.Second, func() bool { return bytes.Contains(s.HostInput(), []byte(line)) })
	r.wait(t, "echo hello-from-alice\r\n", 5*time.Second)

	// A second user is read-only; their typing does not reach the host.
	b, err := c.Attach(Identity{User: "bob", Via: "test"}, AttachOptions{})
	must(t, err)
	rb := readAll(b)
	rb.wait(t, "read-only: alice is writing", 5*time.Second)
	r.wait(t, "bob attached (ro)", 5*time.Second)
	b.Write([]byte("bob-typed\r"))
	rb.wait(t, "you are read-only: input ignored", 5*time.Second)

	// Who and info answer only the one who asked.
	b.Write([]byte("\x05cw"))
	rb.wait(t, "alice        rw since", 5*time.Second)
	if strings.Contains(r.text(), "attached:") {
		t.Fatal("who's answer went to another user")
	}
	time.Sleep(100 * time.Millisecond)
	if bytes.Contains(s.HostInput(), []byte("bob-typed")) || bytes.Contains(s.HostInput(), []byte{0x05}) {
		t.Fatalf("host input %q has read-only or escape bytes", s.HostInput())
	}

	// Force: bob takes write, alice is told.
	b.Write([]byte("\x05cf"))
	r.wait(t, "bob took write access; you are read-only now", 5*time.Second)
	if a.Mode() != ModeRO || b.Mode() != ModeRW {
		t.Fatalf("modes after force: alice %v bob %v", a.Mode(), b.Mode())
	}

	// Detach.
	a.Write([]byte("\x05c."))
	select {
	case <-a.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("not detached")
	}
	<-r.done
	if !strings.Contains(r.text(), "node1: detached") {
		t.Fatalf("no detach line: %q", tailStr(r.text(), 200))
	}
	log := logText(t, e.store, "node1")
	// An attachment's attach and detach events carry its number.
	for _, want := range []string{fmt.Sprintf("! attach alice via test (rw) #%d\n", a.seq), fmt.Sprintf("! attach bob via test (ro) #%d\n", b.seq),
		"! force bob took write access from alice", fmt.Sprintf("! detach alice via test (ro) #%d: node1: detached", a.seq), "! reconnect SOL session established"} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q", want)
		}
	}
	if strings.Contains(log, "attached:") || strings.Contains(log, "escape commands") {
		t.Error("escape-command answers reached the console log")
	}
	// The daemon log's records carry the same numbers.
	for _, want := range []string{fmt.Sprintf("msg=\"conserver: attach\" console=node1 bmc=%s user=alice remote=\"\" via=test mode=rw attachment=%d", s.Addr, a.seq),
		fmt.Sprintf("msg=\"conserver: detach\" console=node1 bmc=%s user=alice remote=\"\" via=test attachment=%d", s.Addr, a.seq)} {
		if !strings.Contains(e.logBuf.String(), want) {
			t.Errorf("daemon log lacks %q:\n%s", want, e.logBuf.String())
		}
	}
	b.Close()
}
