package sshgw

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"io"
	"log/slog"
	"net"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"
)

// harness is a gateway on 127.0.0.1 in front of a fake backend.
type harness struct {
	t    *testing.T
	b    *fakeBackend
	srv  *Server
	addr string
	host gossh.PublicKey
	keys map[string]gossh.Signer // person -> key
	done chan error
}

func newSigner(t testing.TB) gossh.Signer {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := gossh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// start runs a gateway with alice (rw+power on node1, node2), bob
// (read-write on node1) and carol (read-only on node1); node3 exists but
// nobody may see it.
func start(t *testing.T, tweak func(*Options)) *harness {
	t.Helper()
	before := runtime.NumGoroutine()
	h := &harness{t: t, b: newFakeBackend(), keys: map[string]gossh.Signer{}, done: make(chan error, 1)}
	for _, p := range []string{"alice", "bob", "carol"} {
		h.keys[p] = newSigner(t)
		h.b.addUser(p, h.keys[p].PublicKey())
	}
	for _, n := range []string{"node1", "node2", "node3"} {
		h.b.addConsole(n)
	}
	h.b.grant("alice", "node1", PermRead|PermWrite|PermPower)
	h.b.grant("alice", "node2", PermRead|PermWrite|PermPower)
	h.b.grant("bob", "node1", PermRead|PermWrite)
	h.b.grant("carol", "node1", PermRead)
	hostKey := newSigner(t)
	h.host = hostKey.PublicKey()
	opts := Options{Backend: h.b, HostKeys: []gossh.Signer{hostKey}, Logger: testLogger(t)}
	if tweak != nil {
		tweak(&opts)
	}
	srv, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	h.srv = srv
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h.addr = l.Addr().String()
	go func() { h.done <- srv.Serve(l) }()
	t.Cleanup(func() {
		srv.Close()
		select {
		case err := <-h.done:
			if !errors.Is(err, ErrServerClosed) {
				t.Errorf("Serve returned %v, want ErrServerClosed", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("Serve did not return after Close")
		}
		checkGoroutines(t, before)
	})
	return h
}

// testLogger collects the server's log and prints it if the test fails.
func testLogger(t *testing.T) *slog.Logger {
	var mu sync.Mutex
	var buf bytes.Buffer
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		if t.Failed() {
			t.Logf("server log:\n%s", buf.String())
		}
	})
	return slog.New(slog.NewTextHandler(lockedWriter{&mu, &buf}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// checkGoroutines fails if goroutines started by the test outlive it.
func checkGoroutines(t *testing.T, before int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		n := runtime.NumGoroutine()
		if n <= before {
			return
		}
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			buf = buf[:runtime.Stack(buf, true)]
			t.Errorf("%d goroutines left running (started with %d):\n%s", n, before, buf)
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (h *harness) config(person string) *gossh.ClientConfig {
	return &gossh.ClientConfig{
		User:            "node1",
		Auth:            []gossh.AuthMethod{gossh.PublicKeys(h.keys[person])},
		HostKeyCallback: gossh.FixedHostKey(h.host),
		Timeout:         10 * time.Second,
	}
}

// dial connects as person with SSH user name user.
func (h *harness) dial(person, user string) *gossh.Client {
	h.t.Helper()
	cfg := h.config(person)
	cfg.User = user
	c, err := gossh.Dial("tcp", h.addr, cfg)
	if err != nil {
		h.t.Fatalf("dial as %s@ with %s's key: %v", user, person, err)
	}
	h.t.Cleanup(func() { c.Close() })
	return c
}

// run runs an exec command and returns stdout, stderr and the exit status.
func (h *harness) run(person, user, cmd string) (stdout, stderr string, code int) {
	h.t.Helper()
	c := h.dial(person, user)
	defer c.Close()
	s, err := c.NewSession()
	if err != nil {
		h.t.Fatal(err)
	}
	defer s.Close()
	var o, e bytes.Buffer
	s.Stdout, s.Stderr = &o, &e
	err = s.Run(cmd)
	var ee *gossh.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		code = ee.ExitStatus()
	default:
		h.t.Fatalf("run %q: %v", cmd, err)
	}
	return o.String(), e.String(), code
}

// term is an interactive PTY session.
type term struct {
	t    *testing.T
	s    *gossh.Session
	in   io.WriteCloser
	mu   sync.Mutex
	out  bytes.Buffer
	errb bytes.Buffer
	wait chan error
}

type lockedWriter struct {
	mu *sync.Mutex
	b  *bytes.Buffer
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

// attach opens a shell on c, with a PTY unless noPTY.
func attachTerm(t *testing.T, c *gossh.Client, pty bool) *term {
	t.Helper()
	s, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	tm := &term{t: t, s: s, wait: make(chan error, 1)}
	s.Stdout = lockedWriter{&tm.mu, &tm.out}
	s.Stderr = lockedWriter{&tm.mu, &tm.errb}
	tm.in, err = s.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if pty {
		if err := s.RequestPty("xterm", 24, 80, gossh.TerminalModes{}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Shell(); err != nil {
		t.Fatal(err)
	}
	go func() { tm.wait <- s.Wait() }()
	t.Cleanup(func() { s.Close() })
	return tm
}

func (tm *term) stdout() string {
	tm.mu.Lock()
	defer tm.mu.Unlock()
	return tm.out.String()
}

func (tm *term) stderr() string {
	tm.mu.Lock()
	defer tm.mu.Unlock()
	return tm.errb.String()
}

// waitFor waits until stdout contains want.
func (tm *term) waitFor(want string) {
	tm.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(tm.stdout(), want) {
		if time.Now().After(deadline) {
			tm.t.Fatalf("stdout never contained %q; got %q (stderr %q)", want, tm.stdout(), tm.stderr())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// waitStderr waits until stderr contains want.
func (tm *term) waitStderr(want string) {
	tm.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(tm.stderr(), want) {
		if time.Now().After(deadline) {
			tm.t.Fatalf("stderr never contained %q; got %q (stdout %q)", want, tm.stderr(), tm.stdout())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// exit waits for the session to end and returns its exit status.
func (tm *term) exit() int {
	tm.t.Helper()
	select {
	case err := <-tm.wait:
		var ee *gossh.ExitError
		switch {
		case err == nil:
			return 0
		case errors.As(err, &ee):
			return ee.ExitStatus()
		default:
			tm.t.Fatalf("session ended without exit status: %v (stdout %q)", err, tm.stdout())
		}
	case <-time.After(10 * time.Second):
		tm.t.Fatalf("session did not end; stdout %q", tm.stdout())
	}
	return -1
}

// waitUntil polls cond for up to 10 s.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
