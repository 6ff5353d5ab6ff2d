package sshgw

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	gliderssh "github.com/gliderlabs/ssh"
	gossh "golang.org/x/crypto/ssh"
)

// fakeServerConn is the part of an SSH server connection the session
// channel handler reads.
type fakeServerConn struct {
	gossh.Conn
	user   string
	remote net.Addr
}

func (f fakeServerConn) User() string         { return f.user }
func (f fakeServerConn) RemoteAddr() net.Addr { return f.remote }

// heldChannel is a new session channel whose Accept waits until the test
// lets it go, then fails as if the client had gone.
type heldChannel struct {
	accepting chan struct{} // closed when Accept is called
	release   chan struct{} // Accept returns once closed
	let       func()        // closes release (once)

	mu       sync.Mutex
	accepted bool
	rejected string // the reason of Reject, if called
}

func newHeldChannel(t *testing.T) *heldChannel {
	h := &heldChannel{accepting: make(chan struct{}), release: make(chan struct{})}
	h.let = sync.OnceFunc(func() { close(h.release) })
	t.Cleanup(h.let) // before the server closes: it waits for the handler
	return h
}

func (h *heldChannel) Accept() (gossh.Channel, <-chan *gossh.Request, error) {
	h.mu.Lock()
	h.accepted = true
	h.mu.Unlock()
	close(h.accepting)
	<-h.release
	return nil, nil, errors.New("client gone")
}

func (h *heldChannel) Reject(_ gossh.RejectionReason, msg string) error {
	h.mu.Lock()
	h.rejected = msg
	h.mu.Unlock()
	return nil
}

func (h *heldChannel) ChannelType() string { return "session" }
func (h *heldChannel) ExtraData() []byte   { return nil }

// openSession runs the session channel handler for alice's key on a
// server without listeners (no reload watcher: the test calls recheck
// itself) and returns when the handler does.
func openSession(t *testing.T, s *Server, key gossh.PublicKey, nc gossh.NewChannel) <-chan struct{} {
	t.Helper()
	w := watch(t, s)
	gctx := &fakeContext{Context: context.Background(), values: map[any]any{connKey{}: w.c}}
	sc := &gossh.ServerConn{
		Conn:        fakeServerConn{user: "node1", remote: w.c.remote},
		Permissions: &gossh.Permissions{ExtraData: map[any]any{verifiedKeyTag{}: key}},
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.sessionChannel(nil, sc, nc, gliderssh.Context(gctx))
	}()
	return done
}

func newReloadServer(t *testing.T) (*Server, *fakeBackend, gossh.Signer) {
	t.Helper()
	b := newFakeBackend()
	key := newSigner(t)
	b.addUser("alice", key.PublicKey())
	b.addConsole("node1")
	b.grant("alice", "node1", PermRead|PermWrite)
	s, err := New(Options{Backend: b, HostKeys: []gossh.Signer{newSigner(t)}, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, b, key
}

func waitClosed(t *testing.T, what string, ch <-chan struct{}) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(10 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
	}
}

// A reload that re-checks sessions while a new one is still being
// accepted (network I/O) ends it instead of calling a cancel function
// that does not exist yet.
func TestReloadWhileSessionOpens(t *testing.T) {
	s, b, key := newReloadServer(t)
	nc := newHeldChannel(t)
	done := openSession(t, s, key.PublicKey(), nc)
	waitClosed(t, "Accept", nc.accepting)
	b.removeKey(key.PublicKey())
	b.reload()
	s.recheck()
	s.mu.Lock()
	var causes []error
	for ss := range s.sessions {
		causes = append(causes, context.Cause(ss.ctx))
	}
	s.mu.Unlock()
	if len(causes) != 1 || !errors.Is(causes[0], errKeyRevoked) {
		t.Errorf("sessions' causes after the reload: %v, want [%v]", causes, errKeyRevoked)
	}
	nc.let()
	waitClosed(t, "the handler", done)
	if n := s.Stats().Sessions; n != 0 {
		t.Errorf("%d sessions left", n)
	}
}

// A configuration change between Identify and admit (when the reload's
// re-check does not see the session yet) still refuses the session.
func TestReloadBetweenIdentifyAndAdmit(t *testing.T) {
	s, b, key := newReloadServer(t)
	entered, release := b.holdNextIdentify()
	t.Cleanup(release)
	nc := newHeldChannel(t)
	done := openSession(t, s, key.PublicKey(), nc)
	waitClosed(t, "Identify", entered)
	b.removeKey(key.PublicKey())
	b.reload()
	s.recheck() // sees no session: it is not admitted yet
	release()
	select {
	case <-done:
	case <-nc.accepting:
		nc.let()
		<-done
	case <-time.After(10 * time.Second):
		t.Fatal("the handler neither returned nor accepted")
	}
	nc.mu.Lock()
	defer nc.mu.Unlock()
	if nc.accepted {
		t.Error("a session whose key was removed meanwhile was accepted")
	}
	if !strings.Contains(nc.rejected, errKeyRevoked.Error()) {
		t.Errorf("rejected with %q, want %q", nc.rejected, errKeyRevoked)
	}
}

// A change that lands while the watcher re-checks sessions for the
// previous one is not missed: the revoked key's session ends.
func TestReloadDuringRecheck(t *testing.T) {
	h := start(t, nil)
	alice := attachTerm(t, h.dial("alice", "node1"), true)
	alice.waitFor("you are read-write")
	entered, release := h.b.holdNextIdentify()
	t.Cleanup(release)
	h.b.reload() // nothing changed; the re-check waits in Identify
	waitClosed(t, "the re-check", entered)
	h.b.removeKey(h.keys["alice"].PublicKey())
	h.b.reload()
	release()
	alice.waitFor("[solgate: your key is no longer accepted]")
	if code := alice.exit(); code != 1 {
		t.Errorf("exit status %d, want 1", code)
	}
}
