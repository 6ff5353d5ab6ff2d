package sshgw

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	gliderssh "github.com/gliderlabs/ssh"
	gossh "golang.org/x/crypto/ssh"
)

// fakeContext is the part of a gliderlabs connection context the
// connection watcher uses.
type fakeContext struct {
	context.Context
	sync.Mutex
	mu     sync.Mutex
	values map[any]any
}

func (f *fakeContext) Value(k any) any {
	f.mu.Lock()
	defer f.mu.Unlock()
	if v, ok := f.values[k]; ok {
		return v
	}
	return f.Context.Value(k)
}
func (f *fakeContext) SetValue(k, v any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.values[k] = v
}
func (f *fakeContext) User() string                        { return "" }
func (f *fakeContext) SessionID() string                   { return "" }
func (f *fakeContext) ClientVersion() string               { return "" }
func (f *fakeContext) ServerVersion() string               { return "" }
func (f *fakeContext) RemoteAddr() net.Addr                { return nil }
func (f *fakeContext) LocalAddr() net.Addr                 { return nil }
func (f *fakeContext) Permissions() *gliderssh.Permissions { return nil }

// watched is one connection handed to the server's accept hook, with what
// gliderlabs would do around it: read until the connection fails, then
// close it.
type watched struct {
	c      *conn
	client net.Conn
	closed chan struct{}
}

func watch(t *testing.T, s *Server) *watched {
	t.Helper()
	server, client := net.Pipe()
	nc := s.accepted(&fakeContext{Context: context.Background(), values: map[any]any{}}, server)
	if nc == nil {
		t.Fatal("connection refused")
	}
	w := &watched{c: nc.(*trackedConn).c, client: client, closed: make(chan struct{})}
	go func() {
		io.Copy(io.Discard, nc)
		nc.Close()
		close(w.closed)
	}()
	t.Cleanup(func() { client.Close(); <-w.closed })
	return w
}

func (w *watched) isClosed() bool {
	select {
	case <-w.closed:
		return true
	default:
		return false
	}
}

// The connection watcher's timers under a fake clock: the handshake
// timeout, keepalives that a live client answers and a dead one does not,
// and the idle timeout that attached sessions hold off.
func TestWatcherTimers(t *testing.T) {
	newServer := func(t *testing.T) *Server {
		s, err := New(Options{Backend: newFakeBackend(), HostKeys: []gossh.Signer{newSigner(t)},
			HandshakeTimeout: 30 * time.Second, KeepaliveInterval: 30 * time.Second, KeepaliveCountMax: 3, IdleTimeout: 10 * time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	t.Run("handshake timeout", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			s := newServer(t)
			w := watch(t, s)
			time.Sleep(30*time.Second - time.Millisecond)
			synctest.Wait()
			if w.isClosed() {
				t.Fatal("closed before the handshake timeout")
			}
			time.Sleep(2 * time.Millisecond)
			synctest.Wait()
			if !w.isClosed() {
				t.Fatal("open after the handshake timeout")
			}
			if got := context.Cause(w.c.ctx); !errors.Is(got, errHandshake) {
				t.Errorf("cause %v", got)
			}
			if st := s.Stats(); st.Unauthenticated != 0 || st.Conns != 0 {
				t.Errorf("after the timeout: %+v", st)
			}
		})
	})
	t.Run("dead client", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			s := newServer(t)
			w := watch(t, s)
			pings := 0
			w.c.ping = func() error { pings++; <-w.c.done; return errors.New("closed") }
			w.c.authenticated()
			// The first keepalive goes at 30 s; it is still unanswered at
			// 60, 90 and 120 s: the third miss closes the connection.
			time.Sleep(120*time.Second - time.Millisecond)
			synctest.Wait()
			if w.isClosed() {
				t.Fatal("closed before three keepalives went unanswered")
			}
			time.Sleep(2 * time.Millisecond)
			synctest.Wait()
			if !w.isClosed() {
				t.Fatal("a dead client's connection is still open")
			}
			if pings != 1 {
				t.Errorf("%d keepalives sent, want 1 (one outstanding at a time)", pings)
			}
			if got := context.Cause(w.c.ctx); !errors.Is(got, errNoResponse) {
				t.Errorf("cause %v", got)
			}
		})
	})
	t.Run("live client, idle", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			s := newServer(t)
			w := watch(t, s)
			pings := 0
			w.c.ping = func() error { pings++; return nil }
			w.c.authenticated()
			// A session holds the idle timeout off for an hour.
			s.mu.Lock()
			w.c.sessions = 1
			s.mu.Unlock()
			time.Sleep(time.Hour)
			synctest.Wait()
			if w.isClosed() {
				t.Fatal("a live connection with a session was closed")
			}
			if pings != 120 {
				t.Errorf("%d keepalives in an hour, want 120", pings)
			}
			// Then no session: closed once idle for 10 minutes (checked
			// at the keepalive ticks).
			s.mu.Lock()
			w.c.sessions = 0
			w.c.idleSince = time.Now()
			s.mu.Unlock()
			time.Sleep(10*time.Minute - time.Millisecond)
			synctest.Wait()
			if w.isClosed() {
				t.Fatal("closed before the idle timeout")
			}
			time.Sleep(30 * time.Second)
			synctest.Wait()
			if !w.isClosed() {
				t.Fatal("an idle connection is still open")
			}
			if got := context.Cause(w.c.ctx); !errors.Is(got, errIdle) {
				t.Errorf("cause %v", got)
			}
		})
	})
}
