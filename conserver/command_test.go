package conserver

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/solgate/solgate/conserver/power"
	"github.com/solgate/solgate/logstore"
)

// powerLog records the power actions the engine asked for.
type powerLog struct {
	mu   sync.Mutex
	acts []power.Action
}

func (p *powerLog) fn(ctx context.Context, c *Console, a power.Action) (string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.acts = append(p.acts, a)
	if a == power.Status {
		return "on", nil
	}
	return "ok", nil
}

func (p *powerLog) list() []power.Action {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]power.Action(nil), p.acts...)
}

// engineEnv is a console up on the in-memory BMC with alice attached rw.
func engineEnv(t *testing.T) (*testEnv, *fakeBMC, *powerLog, *Attachment, *reader) {
	t.Helper()
	f := &fakeBMC{}
	pl := &powerLog{}
	e := newEnv(t, "", []consoleSpec{{name: "node1", bmc: "127.0.0.1:623"}}, Options{}, func(m *Manager) {
		m.open, m.powerFn = f.open, pl.fn
	})
	c := e.m.Console("node1")
	waitState(t, c, Up, 5*time.Second)
	a, err := c.Attach(Identity{User: "alice", Via: "test"}, AttachOptions{})
	must(t, err)
	r := readAll(a)
	r.wait(t, "you are rw", 5*time.Second)
	return e, f, pl, a, r
}

// TestEscapeCommands: every key of the escape table and the power menu,
// with its answer going to the typist only and nothing of the command
// reaching the console.
func TestEscapeCommands(t *testing.T) {
	t.Parallel()
	const E = "\x05c" // ^Ec
	for _, tc := range []struct {
		name   string
		typed  string
		answer string         // in the typist's output
		input  string         // what reaches the console
		power  []power.Action // actions performed
		breaks int
	}{
		{"help", E + "?", "escape commands (^Ec, then a key)", "", nil, 0},
		{"who", E + "w", "alice        rw since", "", nil, 0},
		{"info", E + "i", "reconnects 0; 1 attached, writer alice", "", nil, 0},
		{"replay20", E + "r", "replay of the last", "", nil, 0},
		{"replay60", E + "p", "end of replay", "", nil, 0},
		{"readonly", E + "s" + "x", "you are read-only", "", nil, 0},
		{"attach-rw", E + "s" + E + "a" + "y", "you are read-write", "y", nil, 0},
		{"force-self", E + "f", "you are already read-write", "", nil, 0},
		{"break", "ab" + E + "l0" + "cd", "break sent", "abcd", nil, 1},
		{"unknown-l", E + "l9", "unknown escape command ^Ecl9", "", nil, 0},
		{"unknown", E + "z", "unknown escape command ^Ecz", "", nil, 0},
		{"reopen", E + "o", "reopening the SOL session", "", nil, 0},
		{"escape-twice", "a" + E + E + "b", "", "a" + E + "b", nil, 0},
		{"ctrl-e-twice", "\x05\x05x", "", "\x05\x05x", nil, 0},
		{"ctrl-e-other", "\x05x", "", "\x05x", nil, 0},
		{"menu", E + "!x", "power menu:", "", nil, 0},
		{"status", E + "!?", "power status: on", "", []power.Action{power.Status}, 0},
		{"on", E + "!1", "power on: ok", "", []power.Action{power.On}, 0},
		{"cycle-yes", E + "!c" + "y" + "z", "power cycle: ok", "z", []power.Action{power.Cycle}, 0},
		{"cycle-Y", E + "!cY", "power cycle: ok", "", []power.Action{power.Cycle}, 0},
		{"cycle-no", E + "!c" + "n" + "z", "power cycle cancelled", "z", nil, 0},
		{"cycle-enter", E + "!c" + "\r", "power cycle cancelled", "", nil, 0},
		{"cycle-escape", E + "!c" + E + "w", "node1: attached:", "", nil, 0},
		{"reset", E + "!ry", "reset: ok", "", []power.Action{power.Reset}, 0},
		{"off", E + "!0y", "power off (hard): ok", "", []power.Action{power.Off}, 0},
		{"soft", E + "!sy", "soft shutdown (ACPI): ok", "", []power.Action{power.Soft}, 0},
		{"pxe", E + "!ny", "boot from the network (PXE), then reset: ok; ok", "", []power.Action{power.PXE, power.Reset}, 0},
		{"bios", E + "!by", "boot into BIOS setup, then reset: ok; ok", "", []power.Action{power.BIOS, power.Reset}, 0},
		{"nmi", E + "!dy", "diagnostic interrupt (NMI): ok", "", []power.Action{power.Diag}, 0},
		{"nmi-no", E + "!dN", "diagnostic interrupt (NMI) cancelled", "", nil, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e, f, pl, a, r := engineEnv(t)
			// Byte by byte and in one write: the same.
			for _, split := range []bool{false, true} {
				before := len(pl.list())
				inBefore, brBefore := f.input()
				if split {
					for i := range len(tc.typed) {
						a.Write([]byte{tc.typed[i]})
					}
				} else {
					a.Write([]byte(tc.typed))
				}
				if tc.answer != "" {
					r.wait(t, tc.answer, 5*time.Second)
				}
				if tc.input != "" {
					waitFor(t, "console input", 5*time.Second, func() bool { in, _ := f.input(); return len(in) >= len(inBefore)+len(tc.input) })
				}
				if tc.breaks > 0 {
					waitFor(t, "break", 5*time.Second, func() bool { _, b := f.input(); return b >= brBefore+tc.breaks })
				}
				time.Sleep(20 * time.Millisecond)
				in, br := f.input()
				if got := in[len(inBefore):]; got != tc.input {
					t.Fatalf("split %v: console got %q, want %q", split, got, tc.input)
				}
				if br-brBefore != tc.breaks {
					t.Fatalf("split %v: %d breaks, want %d", split, br-brBefore, tc.breaks)
				}
				if got := pl.list()[before:]; !equalActions(got, tc.power) {
					t.Fatalf("split %v: power actions %v, want %v", split, got, tc.power)
				}
				if a.Mode() != ModeRW {
					a.Write([]byte(E + "a"))
					r.wait(t, "you are read-write", 5*time.Second)
				}
			}
			log := logText(t, e.store, "node1")
			if strings.Contains(log, "escape commands") || strings.Contains(log, "[y/N]") || strings.Contains(log, "power menu") {
				t.Fatalf("an answer reached the console log:\n%s", log)
			}
			for _, act := range tc.power {
				if act != power.Status && !strings.Contains(log, "! power "+actionLabel(act)+" by alice: ok") {
					t.Fatalf("log lacks the power event for %s:\n%s", act, log)
				}
			}
		})
	}
}

func equalActions(a, b []power.Action) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestEscapeDetachAndPermissions(t *testing.T) {
	t.Parallel()
	e, f, pl, a, r := engineEnv(t)
	c := e.m.Console("node1")
	carol, err := c.Attach(Identity{User: "carol", Via: "test"}, AttachOptions{})
	must(t, err)
	rc := readAll(carol)
	rc.wait(t, "you are ro", 5*time.Second)
	// Read-only users: no power (status is fine), no force, no reopen, no typing.
	carol.Write([]byte("\x05c!c"))
	rc.wait(t, "power cycle: permission denied (you have no power access)", 5*time.Second)
	carol.Write([]byte("y")) // not an answer: there was no prompt; carol is read-only
	carol.Write([]byte("\x05cf"))
	rc.wait(t, "you have read access only", 5*time.Second)
	carol.Write([]byte("\x05co"))
	rc.wait(t, "reopen: reopen node1: permission denied", 5*time.Second)
	carol.Write([]byte("\x05c!?"))
	rc.wait(t, "power status: on", 5*time.Second)
	if got := pl.list(); !equalActions(got, []power.Action{power.Status}) {
		t.Fatalf("power actions %v, want only status", got)
	}
	if in, _ := f.input(); in != "" {
		t.Fatalf("console got %q from a read-only user", in)
	}
	// Detach: the rest of the write is not typed.
	a.Write([]byte("before\x05c.after"))
	<-r.done
	waitFor(t, "input", 5*time.Second, func() bool { in, _ := f.input(); return in == "before" })
	time.Sleep(20 * time.Millisecond)
	if in, _ := f.input(); in != "before" {
		t.Fatalf("console got %q", in)
	}
	if _, err := a.Write([]byte("x")); err == nil {
		t.Fatal("write after detach succeeded")
	}
	if !strings.Contains(r.text(), "node1: detached") {
		t.Fatalf("no detach notice: %q", tailStr(r.text(), 200))
	}
	rc.wait(t, "alice detached", 5*time.Second)
	carol.Close()
}

// TestEscapeChangesOnReload: a new escape applies to attached users.
func TestEscapeChangesOnReload(t *testing.T) {
	t.Parallel()
	e, f, _, a, r := engineEnv(t)
	e.write(testConfig(e.dir, "", []consoleSpec{{name: "node1", bmc: "127.0.0.1:623", extra: "escape = \"^]x\""}}, ""))
	res := e.reload()
	if len(res.Updated) != 1 || len(res.Reconnects) != 0 {
		t.Fatalf("reload %+v: want one update, no reconnect", res)
	}
	r.wait(t, "the escape is now ^]x", 5*time.Second)
	a.Write([]byte("\x05cw")) // the old escape is plain input now
	a.Write([]byte("\x1dxw"))
	r.wait(t, "node1: attached:", 5*time.Second)
	waitFor(t, "input", 5*time.Second, func() bool { in, _ := f.input(); return in == "\x05cw" })
}

// engineModel is an independent reading of the escape grammar: what the
// console receives, the commands run and whether the user detached. esc
// is (E, C); power keys that ask consume the next byte as the answer.
func engineModel(in []byte, E, C byte) (out []byte, cmds []string) {
	const (
		normal = iota
		sawE
		sawEC
		sawTwo
	)
	state := normal
	var first byte
	confirm := false
	for _, b := range in {
		if confirm {
			confirm = false
			if b != E {
				cmds = append(cmds, "answer:"+string(b))
				continue
			}
			cmds = append(cmds, "answer:\x00")
		}
		switch state {
		case normal:
			if b == E {
				state = sawE
			} else {
				out = append(out, b)
			}
		case sawE:
			switch b {
			case C:
				state = sawEC
			case E:
				out = append(out, E)
			default:
				out = append(out, E, b)
				state = normal
			}
		case sawEC:
			switch {
			case b == E && E != C:
				out = append(out, E)
				state = normal
			case b == 'l' || b == '!':
				first, state = b, sawTwo
			default:
				cmds = append(cmds, string(b))
				state = normal
				if b == '.' {
					return out, cmds
				}
			}
		case sawTwo:
			cmds = append(cmds, string([]byte{first, b}))
			state = normal
			if first == '!' {
				if pk, ok := findPowerKey(b); ok && pk.confirm {
					confirm = true
				}
			}
		}
	}
	return out, cmds
}

// FuzzEscapeEngine: whatever is typed, in whatever pieces, the engine
// never panics, sends the console exactly the ordinary bytes (escape
// commands never, the escape doubled once), and runs exactly the
// commands an independent model of the grammar finds.
func FuzzEscapeEngine(f *testing.F) {
	for _, s := range []string{"hello\r", "\x05c.", "\x05c?", "a\x05c\x05cb", "\x05\x05\x05c!cy", "\x05c!c\x05cw", "\x05cl0x", "\x05c!d", "\x05", "\x05c", "\x05c!", "x\x05cs\x05cay"} {
		f.Add([]byte(s), uint8(3))
	}
	f.Fuzz(func(t *testing.T, in []byte, cut uint8) {
		// Commands that reach out (power, replay, reopen, break) are
		// recorded instead of run: the engine's output is the subject.
		c := &Console{name: "node1", m: &Manager{}}
		c.set = &prepared{esc: [2]byte{0x05, 'c'}}
		c.atts.Store(&[]*Attachment{})
		var sent []byte
		var ran []string
		a := &Attachment{c: c, readable: make(chan struct{}, 1), done: make(chan struct{}), limit: 1 << 20}
		a.send = func(b []byte) { sent = append(sent, b...) }
		a.commandHook = func(cmd string) bool {
			ran = append(ran, cmd)
			if cmd[0] == '!' {
				if pk, ok := findPowerKey(cmd[1]); ok && pk.confirm {
					a.confirm = cmd[1]
				}
			}
			return cmd != "."
		}
		a.answerHook = func(b byte) { ran = append(ran, "answer:"+string(b)) }
		step := int(cut%17) + 1
		for off := 0; off < len(in); off += step {
			a.typed(in[off:min(off+step, len(in))])
			if len(ran) > 0 && ran[len(ran)-1] == "." {
				break
			}
		}
		wantOut, wantCmds := engineModel(in, 0x05, 'c')
		if string(sent) != string(wantOut) {
			t.Fatalf("input %q (pieces of %d): console got %q, want %q", in, step, sent, wantOut)
		}
		if strings.Join(ran, "|") != strings.Join(wantCmds, "|") {
			t.Fatalf("input %q (pieces of %d): commands %q, want %q", in, step, ran, wantCmds)
		}
	})
}

// TestDetachedNeverBecomesWriter: a take-write that runs after its
// attachment was closed (its ^Eca raced the session's end) leaves the
// console without a writer, so the next user gets write access.
func TestDetachedNeverBecomesWriter(t *testing.T) {
	e, _, _, a, _ := engineEnv(t)
	c := e.m.Console("node1")
	a.Close()
	c.takeWrite(a, true)
	if st := c.Status(); st.Writer != "" {
		t.Fatalf("writer %q after its attachment closed", st.Writer)
	}
	b, err := c.Attach(Identity{User: "bob", Via: "test"}, AttachOptions{})
	must(t, err)
	defer b.Close()
	readAll(b).wait(t, "you are rw", 5*time.Second)
}

// TestReplaySkippedWhenBehind: a user far behind on output (not reading)
// gets a one-line notice instead of another replay, so repeated ^Ecp
// cannot grow the buffer without bound.
func TestReplaySkippedWhenBehind(t *testing.T) {
	e, _, _, _, _ := engineEnv(t)
	c := e.m.Console("node1")
	b, err := c.Attach(Identity{User: "bob", Via: "test"}, AttachOptions{})
	must(t, err)
	defer b.Close()
	b.mu.Lock()
	b.buf = append(b.buf, make([]byte, b.limit)...)
	before := len(b.buf)
	b.mu.Unlock()
	for range 10 {
		b.replay(60)
	}
	b.mu.Lock()
	grown := len(b.buf) - before
	tail := string(b.buf[before:])
	b.mu.Unlock()
	if grown > 10*200 || !strings.Contains(tail, "replay skipped") {
		t.Fatalf("10 replays to a full buffer added %d bytes: %q", grown, tailStr(tail, 200))
	}
}

// replayAcross prints before lines ("before-NN"), attaches bob, and,
// with the attachment held where Attach prepares its replay, prints
// after more ("after-NN"); then the replay of n lines goes in. It
// returns what bob's buffer holds.
func replayAcross(t *testing.T, before, after, n int) string {
	t.Helper()
	e, _, _, _, _ := engineEnv(t)
	c := e.m.Console("node1")
	for i := range before {
		c.output(fmt.Appendf(nil, "before-%02d\r\n", i))
	}
	b, err := c.Attach(Identity{User: "bob", Via: "test"}, AttachOptions{})
	must(t, err)
	t.Cleanup(func() { b.Close() })
	heldFrom := holdForReplay(b)
	for i := range after {
		c.output(fmt.Appendf(nil, "after-%02d\r\n", i))
	}
	b.insertReplay(n, heldFrom)
	return bufText(b)
}

// checkReplaySeam checks replayAcross's text: a replay of n lines up to
// the attach event shows the last n-1 "before" lines (the event is the
// n-th) once and the earlier ones not at all, and every "after" line
// once (live).
func checkReplaySeam(t *testing.T, text string, before, after, n int) {
	t.Helper()
	for i := range before {
		want := 0
		if i >= before-(n-1) {
			want = 1
		}
		if k := strings.Count(text, fmt.Sprintf("before-%02d", i)); k != want {
			t.Errorf("before-%02d shown %d times, want %d:\n%s", i, k, want, text)
		}
	}
	for i := range after {
		if k := strings.Count(text, fmt.Sprintf("after-%02d", i)); k != 1 {
			t.Errorf("after-%02d shown %d times, want once:\n%s", i, k, text)
		}
	}
}

// TestReplayFullAfterFewLines: fewer lines than the replay asked for
// arrive between an attachment joining and its replay reading the log.
// The replay still holds the n lines up to the attach event, not n
// minus those that came after it.
func TestReplayFullAfterFewLines(t *testing.T) {
	text := replayAcross(t, 8, 2, 5)
	if !strings.Contains(text, "node1: the last 5 lines") {
		t.Errorf("want a replay of 5 lines:\n%s", text)
	}
	checkReplaySeam(t, text, 8, 2, 5)
}

// TestReplaySeamAfterManyLines: more lines than the replay asked for
// arrive between an attachment joining and its replay reading the log.
// The replay still ends at the attach event: every line after it is
// shown once (live), and the replay holds the lines before it. (Driven
// step by step: the state Attach is in while it prepares the replay.)
func TestReplaySeamAfterManyLines(t *testing.T) {
	text := replayAcross(t, 8, 20, 5)
	checkReplaySeam(t, text, 8, 20, 5)
}

// TestReplayCutsALongLine: a console that printed for long without a line
// feed (a progress bar redrawn with CR) is replayed from the end of that
// line, at most logstore.TailLineBytes of it, with a notice saying how
// much is not, on attach and with ^Ecr: not megabytes to each user who
// attaches.
func TestReplayCutsALongLine(t *testing.T) {
	e, _, _, _, _ := engineEnv(t)
	c := e.m.Console("node1")
	c.output([]byte("boot\r\n"))
	progress := bytes.Repeat([]byte("\r 42% done"), 40000) // 400,000 bytes, one line
	for i := 0; i < len(progress); i += 4000 {
		c.output(progress[i : i+4000])
	}
	c.output([]byte("\r\n"))
	b, err := c.Attach(Identity{User: "bob", Via: "test"}, AttachOptions{Replay: 20})
	must(t, err)
	defer b.Close()
	waitFor(t, "the attach replay", 10*time.Second, func() bool { return strings.Contains(bufText(b), "the last") })
	b.replay(20)
	text := bufText(b)
	want := fmt.Sprintf("node1: a long line: its first %d bytes are not replayed", len(progress)+2-logstore.TailLineBytes)
	if n := strings.Count(text, want); n != 2 {
		t.Errorf("%d notices %q, want 2 (attach, ^Ecr):\n%q", n, want, tailStr(strings.ReplaceAll(text, " 42% done\r", ""), 3000))
	}
	if len(text) > 3*logstore.TailLineBytes || strings.Count(text, "boot\r\n") != 2 {
		t.Errorf("attach and a replay put %d bytes in the buffer (boot line %d times), want the long line cut", len(text), strings.Count(text, "boot\r\n"))
	}
}
