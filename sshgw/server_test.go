package sshgw

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"strings"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"
)

func TestExecCommands(t *testing.T) {
	h := start(t, nil)
	h.b.consoles["node1"].emit([]byte("line one\r\nline two\r\nkernel: panic\r\nlast line\r\n"))
	cases := []struct {
		name, person, user, cmd string
		code                    int
		stdout, stderr          string // substrings; "" checks nothing (stderr: must be empty)
	}{
		{"power status", "alice", "node1", "power status", 0, "node1: on\n", ""},
		{"power cycle", "alice", "node1", "power cycle", 0, "node1: cycle done\n", ""},
		{"power json", "alice", "node1", "power status --json", 0, `"result": "on"`, ""},
		{"power BMC error", "alice", "node1", "power diag", 1, "", "solgate: power diag node1: BMC said: invalid command (0xc1)\n"},
		{"power without permission", "bob", "node1", "power cycle", 3, "", "solgate: power cycle: you may not control the power of node1\n"},
		{"power status read-only", "carol", "node1", "power status", 0, "node1: on\n", ""},
		{"power unknown action", "alice", "node1", "power explode", 2, "", `unknown action "explode"`},
		{"tail", "alice", "node1", "tail -n 2", 0, "kernel: panic\r\nlast line\r\n", ""},
		{"tail default", "carol", "node1", "tail", 0, "line one\r\n", ""},
		{"tail bad n", "alice", "node1", "tail -n lots", 2, "", `-n "lots" is not a number`},
		{"log", "alice", "node1", "log --since 1h", 0, "line two", ""},
		{"log bad since", "alice", "node1", "log --since bad", 2, "", "--since: bad time"},
		{"grep", "alice", "node1", "grep 'pan[i]c'", 0, "kernel: panic", ""},
		{"grep no match", "alice", "node1", "grep nothing-like-this", 1, "", ""},
		{"grep bad pattern", "alice", "node1", "grep '('", 2, "", "bad pattern"},
		{"who, nobody attached", "alice", "node1", "who", 0, "nobody is attached\n", ""},
		{"info", "alice", "node1", "info", 0, "bmc:", ""},
		{"info json", "alice", "node1", "info --json", 0, `"state": "up"`, ""},
		{"break", "alice", "node1", "break", 0, "node1: break sent\n", ""},
		{"break read-only", "carol", "node1", "break", 3, "", "solgate: break: you may not write to node1\n"},
		{"force read-only", "carol", "node1", "force", 3, "", "solgate: force: you may not write to node1\n"},
		{"help", "carol", "node1", "help", 0, "power status|on|off", ""},
		{"unknown command", "alice", "node1", "reboot-now", 2, "", `solgate: usage: unknown command "reboot-now" (try help)` + "\n"},
		{"unterminated quote", "alice", "node1", "grep 'oops", 2, "", "unterminated single quote"},
		{"missing console", "alice", "node9", "power status", 2, "", "solgate: no such console \"node9\" (list@ lists yours)\n"},
		{"hidden console", "alice", "node3", "power status", 2, "", "solgate: no such console \"node3\" (list@ lists yours)\n"},
		{"unreadable console", "bob", "node2", "tail", 2, "", "solgate: no such console \"node2\" (list@ lists yours)\n"},
		// A name that differs in case or leading zeros: the console meant,
		// if the person may use it (a hidden one is not hinted at).
		{"case of a name", "alice", "NODE1", "power status", 2, "", "solgate: no such console \"NODE1\" (did you mean node1? list@ lists yours)\n"},
		{"zeros in a name", "alice", "node001", "tail", 2, "", "solgate: no such console \"node001\" (did you mean node1? list@ lists yours)\n"},
		{"near a hidden console", "alice", "Node3", "tail", 2, "", "solgate: no such console \"Node3\" (list@ lists yours)\n"},
		{"near a console, nothing to run", "alice", "Node02", "", 0, "node2", "solgate: no such console \"Node02\" (did you mean node2?); yours are:\n"},
		{"list", "alice", "list", "", 0, "node2", ""},
		// ssh consoles: the login name is no console, nothing to run.
		{"not a console, nothing to run", "alice", "alice", "", 0, "node2", "solgate: no such console \"alice\"; yours are:\n"},
		{"list json", "alice", "list", "--json", 0, `"console": "node1"`, ""},
		{"list other command", "alice", "list", "power status", 2, "", "only lists consoles"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			stdout, stderr, code := h.run(c.person, c.user, c.cmd)
			if code != c.code {
				t.Errorf("exit status %d, want %d (stdout %q, stderr %q)", code, c.code, stdout, stderr)
			}
			if !strings.Contains(stdout, c.stdout) {
				t.Errorf("stdout %q does not contain %q", stdout, c.stdout)
			}
			if c.stderr == "" && stderr != "" {
				t.Errorf("stderr %q, want nothing", stderr)
			}
			if !strings.Contains(stderr, c.stderr) {
				t.Errorf("stderr %q does not contain %q", stderr, c.stderr)
			}
			if strings.Count(stderr, "\n") > 1 {
				t.Errorf("stderr has more than one line: %q", stderr)
			}
		})
	}
	// The listing shows only what the person may read.
	out, _, _ := h.run("bob", "list", "")
	if !strings.Contains(out, "node1") || strings.Contains(out, "node2") || strings.Contains(out, "node3") {
		t.Errorf("bob's listing %q: want node1 only", out)
	}
	var list []map[string]any
	out, _, _ = h.run("alice", "list", "list --json")
	if err := json.Unmarshal([]byte(out), &list); err != nil || len(list) != 2 {
		t.Errorf("alice's JSON listing %q: %v, want 2 consoles", out, err)
	}
	// Power actions were audited with the person's name.
	if got := strings.Join(h.b.consoles["node1"].power, ","); got != "alice:status,alice:cycle,alice:status,carol:status" {
		t.Errorf("power actions %q", got)
	}
	if got := h.b.consoles["node1"].breakCount(); got != 1 {
		t.Errorf("%d breaks, want 1", got)
	}
}

func TestAuthOnlyKnownKeys(t *testing.T) {
	h := start(t, nil)
	stranger := newSigner(t)
	cfg := h.config("alice")
	cfg.Auth = []gossh.AuthMethod{gossh.PublicKeys(stranger)}
	if c, err := gossh.Dial("tcp", h.addr, cfg); err == nil {
		c.Close()
		t.Fatal("an unknown key authenticated")
	}
	// Password and keyboard-interactive are not offered at all: a client
	// with only those methods cannot even try them.
	cfg.Auth = []gossh.AuthMethod{gossh.Password("secret"), gossh.KeyboardInteractive(func(string, string, []string, []bool) ([]string, error) {
		return []string{"secret"}, nil
	})}
	_, err := gossh.Dial("tcp", h.addr, cfg)
	if err == nil || !strings.Contains(err.Error(), "attempted methods [none]") {
		t.Fatalf("password client: %v, want a refusal after only [none]", err)
	}
	// A client offering an unknown key first, then a known one, is alice
	// (the decision follows the key that authenticated).
	cfg.Auth = []gossh.AuthMethod{gossh.PublicKeys(stranger, h.keys["alice"])}
	cfg.User = "node2"
	c, err := gossh.Dial("tcp", h.addr, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s, _ := c.NewSession()
	out, err := s.Output("power status")
	if err != nil || string(out) != "node2: on\n" {
		t.Fatalf("power status as alice: %q, %v", out, err)
	}
}

// A client that offers bob's key (accepted in the query) but proves only
// alice's is alice; one that offers alice's key and signs with bob's is
// bob: identity comes from the key that authenticated.
func TestIdentityFromAuthenticatedKey(t *testing.T) {
	h := start(t, nil)
	cfg := h.config("bob")
	cfg.User = "node2" // alice may read node2, bob may not
	cfg.Auth = []gossh.AuthMethod{gossh.PublicKeysCallback(func() ([]gossh.Signer, error) {
		return []gossh.Signer{h.keys["bob"]}, nil
	})}
	c, err := gossh.Dial("tcp", h.addr, cfg)
	if err != nil {
		t.Fatal(err)
	}
	s, _ := c.NewSession()
	var stderr bytes.Buffer
	s.Stderr = &stderr
	if err := s.Run("tail"); err == nil || !strings.Contains(stderr.String(), "no such console") {
		t.Errorf("bob on node2: %v %q, want no such console", err, stderr.String())
	}
	c.Close()
}

func TestAttachInteractive(t *testing.T) {
	h := start(t, nil)
	con := h.b.consoles["node1"]
	con.emit([]byte("old line 1\r\nold line 2\r\nlogin: "))
	tm := attachTerm(t, h.dial("alice", "node1"), true)
	tm.waitFor("[solgate: node1: up since")
	tm.waitFor("you are read-write; ^Ec? help, ^Ec. detach]\r\n")
	tm.waitFor("old line 1\r\nold line 2\r\nlogin: ")
	if i, j := strings.Index(tm.stdout(), "[solgate:"), strings.Index(tm.stdout(), "old line 1"); i > j {
		t.Errorf("replay before banner: %q", tm.stdout())
	}
	tm.in.Write([]byte("root\r"))
	tm.waitFor("login: root\r")
	if got := string(con.inputBytes()); got != "root\r" {
		t.Errorf("console received %q", got)
	}
	con.emit([]byte("bare\nLF\n"))
	tm.waitFor("bare\nLF\n") // not rewritten to CRLF
	tm.in.Write([]byte("\x05c?"))
	tm.waitFor("escape commands")
	tm.in.Write([]byte("\x05c."))
	tm.waitFor("[solgate: detached from node1]\r\n")
	if code := tm.exit(); code != 0 {
		t.Errorf("detach: exit status %d, want 0", code)
	}
	waitUntil(t, "attachment gone", func() bool { return con.attachedCount() == 0 })
}

// Every byte value passes unchanged both ways through a PTY session.
func TestByteTransparency(t *testing.T) {
	h := start(t, nil)
	con := h.b.consoles["node1"]
	con.noEcho = true
	tm := attachTerm(t, h.dial("alice", "node1"), true)
	tm.waitFor("detach]\r\n")
	all := make([]byte, 0, 512)
	for i := 0; i < 256; i++ {
		all = append(all, byte(i))
	}
	all = append(all, "\r\n\n\r\r\n\x00\xff\xfe\x1b[2J\x1b]0;title\x07é€😀"...)
	mark := len(tm.stdout())
	con.emit(all)
	waitUntil(t, "all bytes out", func() bool { return len(tm.stdout()) >= mark+len(all) })
	if got := tm.stdout()[mark:]; got != string(all) {
		t.Errorf("output changed in transit:\n got %q\nwant %q", got, all)
	}
	// Input: the escape prefix ^E followed by c is the manager's; every
	// other sequence, ^E included, reaches the console.
	tm.in.Write(all)
	waitUntil(t, "all bytes in", func() bool { return len(con.inputBytes()) >= len(all) })
	if got := con.inputBytes(); !bytes.Equal(got, all) {
		t.Errorf("input changed in transit:\n got %q\nwant %q", got, all)
	}
}

func TestSecondPersonReadOnly(t *testing.T) {
	h := start(t, nil)
	con := h.b.consoles["node1"]
	alice := attachTerm(t, h.dial("alice", "node1"), true)
	alice.waitFor("you are read-write")
	bob := attachTerm(t, h.dial("bob", "node1"), true)
	bob.waitFor("read-only: alice is writing (^Ecf forces write)")
	bob.in.Write([]byte("rm -rf /\r"))
	alice.in.Write([]byte("ls\r"))
	bob.waitFor("ls\r")
	if got := string(con.inputBytes()); got != "ls\r" {
		t.Errorf("console received %q, want only alice's input", got)
	}
	carol := attachTerm(t, h.dial("carol", "node1"), true)
	carol.waitFor("read-only (you may not write here)")
	// force: bob takes write; alice is told.
	c := h.dial("bob", "node1")
	s, _ := c.NewSession()
	s.RequestPty("xterm", 24, 80, gossh.TerminalModes{})
	in, _ := s.StdinPipe()
	var out bytes.Buffer
	s.Stdout = lockedWriter{&alice.mu, &out}
	if err := s.Start("force"); err != nil {
		t.Fatal(err)
	}
	alice.waitFor("bob forced write; you are read-only")
	waitUntil(t, "bob's forced session writes", func() bool {
		alice.mu.Lock()
		defer alice.mu.Unlock()
		return strings.Contains(out.String(), "you are read-write")
	})
	in.Write([]byte("whoami\r"))
	waitUntil(t, "forced input", func() bool { return strings.HasSuffix(string(con.inputBytes()), "whoami\r") })
	s.Close()
}

func TestSpyAndPipedInput(t *testing.T) {
	h := start(t, nil)
	con := h.b.consoles["node1"]
	// spy: a read-only stream, input ignored, banner on stderr.
	c := h.dial("bob", "node1")
	s, _ := c.NewSession()
	var out, errb bytes.Buffer
	spyOut := &term{t: t, s: s}
	s.Stdout = lockedWriter{&spyOut.mu, &out}
	s.Stderr = lockedWriter{&spyOut.mu, &errb}
	in, _ := s.StdinPipe()
	if err := s.Start("spy"); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "spy attached", func() bool { return con.attachedCount() == 1 })
	in.Write([]byte("typed by a spy\n"))
	con.emit([]byte("boot message\n"))
	waitUntil(t, "spy output", func() bool {
		spyOut.mu.Lock()
		defer spyOut.mu.Unlock()
		return out.String() == "boot message\n"
	})
	spyOut.mu.Lock()
	if !strings.Contains(errb.String(), "spying read-only") {
		t.Errorf("spy stderr %q", errb.String())
	}
	spyOut.mu.Unlock()
	if len(con.inputBytes()) != 0 {
		t.Errorf("spy input reached the console: %q", con.inputBytes())
	}
	s.Close()
	waitUntil(t, "spy detached", func() bool { return con.attachedCount() == 0 })

	// Piped input without a PTY goes to the console when the person writes.
	tm := attachTerm(t, h.dial("alice", "node1"), false)
	tm.waitStderr("you are read-write")
	tm.in.Write([]byte("echo hi\n"))
	waitUntil(t, "piped input", func() bool { return string(con.inputBytes()) == "echo hi\n" })
	tm.in.Close() // EOF on stdin does not end the attach: output keeps coming
	con.emit([]byte("after eof\n"))
	tm.waitFor("after eof\n")
	if strings.Contains(tm.stdout(), "[solgate") {
		t.Errorf("banner on stdout without a PTY: %q", tm.stdout())
	}
}

func TestBreakAndWindowChange(t *testing.T) {
	h := start(t, nil)
	con := h.b.consoles["node1"]
	c := h.dial("alice", "node1")
	ch, reqs, err := c.OpenChannel("session", nil)
	if err != nil {
		t.Fatal(err)
	}
	go gossh.DiscardRequests(reqs)
	defer ch.Close()
	pty := gossh.Marshal(struct {
		Term                      string
		Cols, Rows, Width, Height uint32
		Modes                     string
	}{"xterm", 80, 24, 0, 0, ""})
	if ok, err := ch.SendRequest("pty-req", true, pty); !ok || err != nil {
		t.Fatalf("pty-req: %v %v", ok, err)
	}
	// Window changes before the shell, many of them, without reading
	// anything: the request loop must not block on them.
	for i := 0; i < 200; i++ {
		wc := make([]byte, 16)
		binary.BigEndian.PutUint32(wc, uint32(80+i))
		binary.BigEndian.PutUint32(wc[4:], 24)
		if _, err := ch.SendRequest("window-change", false, wc); err != nil {
			t.Fatal(err)
		}
	}
	if ok, err := ch.SendRequest("shell", true, nil); !ok || err != nil {
		t.Fatalf("shell: %v %v", ok, err)
	}
	buf := make([]byte, 4096)
	var got []byte
	for !bytes.Contains(got, []byte("detach]\r\n")) {
		n, err := ch.Read(buf)
		if err != nil {
			t.Fatalf("read: %v (%q)", err, got)
		}
		got = append(got, buf[:n]...)
	}
	for i := 0; i < 50; i++ {
		wc := make([]byte, 16)
		binary.BigEndian.PutUint32(wc, 100)
		binary.BigEndian.PutUint32(wc[4:], uint32(30+i))
		ch.SendRequest("window-change", false, wc)
	}
	ok, err := ch.SendRequest("break", true, binary.BigEndian.AppendUint32(nil, 500))
	if !ok || err != nil {
		t.Fatalf("break: %v %v", ok, err)
	}
	waitUntil(t, "break at the console", func() bool { return con.breakCount() == 1 })
	// Agent and X11 forwarding and env are refused.
	for _, r := range []string{"auth-agent-req@openssh.com", "x11-req", "env", "subsystem"} {
		if ok, _ := ch.SendRequest(r, true, nil); ok {
			t.Errorf("%s accepted", r)
		}
	}
	// Still alive and echoing after all that.
	ch.Write([]byte("x"))
	for !bytes.HasSuffix(got, []byte("x")) {
		n, err := ch.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, buf[:n]...)
	}
	// No port forwarding: direct-tcpip channels and tcpip-forward are refused.
	if _, _, err := c.OpenChannel("direct-tcpip", nil); err == nil {
		t.Error("direct-tcpip channel accepted")
	}
	if ok, _, _ := c.SendRequest("tcpip-forward", true, nil); ok {
		t.Error("tcpip-forward accepted")
	}
}

func TestRevocationOnReload(t *testing.T) {
	h := start(t, nil)
	con := h.b.consoles["node1"]
	bob := attachTerm(t, h.dial("bob", "node1"), true)
	bob.waitFor("you are read-write")
	carol := attachTerm(t, h.dial("carol", "node1"), true)
	carol.waitFor("read-only")
	alice := attachTerm(t, h.dial("alice", "node2"), true)
	alice.waitFor("you are read-write")
	// A listing session and an exec in progress are ended too when the
	// key goes.
	list := attachTerm(t, h.dial("carol", "list"), true)
	list.waitFor("node1")

	// bob loses write: read-only, still attached.
	h.b.grant("bob", "node1", PermRead)
	// carol's key is removed: every carol session ends.
	h.b.removeKey(h.keys["carol"].PublicKey())
	// node2 is removed: alice is detached.
	h.b.removeConsole("node2")
	start := time.Now()
	h.b.reload()
	carol.waitFor("[solgate: your key is no longer accepted]")
	alice.waitFor("[solgate: you may no longer use node2")
	bob.waitFor("read-only now")
	if code := carol.exit(); code != 1 {
		t.Errorf("carol's exit status %d, want 1", code)
	}
	if code := alice.exit(); code != 1 {
		t.Errorf("alice's exit status %d, want 1", code)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("revocation took %v", d)
	}
	bob.in.Write([]byte("typed after downgrade"))
	con.emit([]byte("still attached\r\n"))
	bob.waitFor("still attached")
	if len(con.inputBytes()) != 0 {
		t.Errorf("downgraded bob still writes: %q", con.inputBytes())
	}
	// New connections with carol's old key are refused.
	cfg := h.config("carol")
	if c, err := gossh.Dial("tcp", h.addr, cfg); err == nil {
		c.Close()
		t.Error("removed key still authenticates")
	}
}

func TestSessionCaps(t *testing.T) {
	h := start(t, func(o *Options) { o.MaxSessionsPerUser = 2; o.MaxSessions = 3 })
	c := h.dial("alice", "node1")
	var held []*gossh.Session
	for i := 0; i < 2; i++ {
		s, err := c.NewSession()
		if err != nil {
			t.Fatalf("session %d: %v", i, err)
		}
		held = append(held, s)
		s.Start("spy")
	}
	if _, err := c.NewSession(); err == nil || !strings.Contains(err.Error(), "too many sessions for alice (limit 2)") {
		t.Errorf("third session of alice: %v", err)
	}
	b := h.dial("bob", "node1")
	s, err := b.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	s.Start("spy")
	if _, err := b.NewSession(); err == nil || !strings.Contains(err.Error(), "too many sessions on the gateway (limit 3)") {
		t.Errorf("fourth session: %v", err)
	}
	held[0].Close()
	waitUntil(t, "a slot frees", func() bool { return h.srv.Stats().Sessions == 2 })
	if s, err := c.NewSession(); err != nil {
		t.Errorf("after one closed: %v", err)
	} else {
		s.Close()
	}
}

func TestShutdownTellsSessions(t *testing.T) {
	h := start(t, nil)
	tm := attachTerm(t, h.dial("alice", "node1"), true)
	tm.waitFor("read-write")
	done := make(chan error)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		done <- h.srv.Shutdown(ctx)
	}()
	tm.waitFor("[solgate: the gateway is shutting down]\r\n")
	if code := tm.exit(); code != 1 {
		t.Errorf("exit status %d, want 1", code)
	}
	if err := <-done; err != nil {
		t.Errorf("Shutdown: %v", err)
	}
}

// TestRevocationCutsStalledExec: an exec command whose client stopped
// reading (its output blocks on the SSH window) ends when the person's key
// is removed, a few seconds after the reload, instead of holding the
// session (and the console's log reader) until the connection closes.
func TestRevocationCutsStalledExec(t *testing.T) {
	h := start(t, nil)
	con := h.b.consoles["node1"]
	con.emit(bytes.Repeat([]byte("a log line that fills the window ............\r\n"), 200_000)) // about 9 MB
	c := h.dial("carol", "node1")
	s, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.StdoutPipe(); err != nil { // never read
		t.Fatal(err)
	}
	if err := s.Start("log"); err != nil {
		t.Fatal(err)
	}
	ended := make(chan error, 1)
	go func() { ended <- s.Wait() }()
	select {
	case err := <-ended:
		t.Fatalf("the log command ended before the revocation (%v): its output did not fill the window", err)
	case <-time.After(500 * time.Millisecond):
	}
	h.b.removeKey(h.keys["carol"].PublicKey())
	h.b.reload()
	select {
	case <-ended:
	case <-time.After(15 * time.Second):
		t.Fatal("the stalled exec session still runs 15 s after its key was removed")
	}
}

func TestLooseName(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"node01", "node1"}, {"NODE001", "node1"}, {"node1", "node1"}, {"node10", "node10"},
		{"node100", "node100"}, {"n0", "n0"}, {"n00", "n0"}, {"0", "0"}, {"007", "7"},
		{"rack02-node003", "rack2-node3"}, {"gpu0a", "gpu0a"}, {"", ""}, {"Ünï", "Ünï"},
	} {
		if got := looseName(c.in); got != c.want {
			t.Errorf("looseName(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}
