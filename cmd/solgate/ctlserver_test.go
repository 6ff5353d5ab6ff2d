package main

import (
	"bufio"
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// failingListener fails its first n accepts as a process out of file
// descriptors does.
type failingListener struct {
	*net.UnixListener
	n atomic.Int32
}

func (l *failingListener) AcceptUnix() (*net.UnixConn, error) {
	if l.n.Add(-1) >= 0 {
		return nil, &net.OpError{Op: "accept", Net: "unix", Err: syscall.EMFILE}
	}
	return l.UnixListener.AcceptUnix()
}

// TestCtlAcceptSurvivesErrors: an accept that fails (EMFILE) does not end
// the control socket: the next client is answered, and Stop still ends it.
func TestCtlAcceptSurvivesErrors(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "ctl.sock")
	ul, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	fl := &failingListener{UnixListener: ul}
	fl.n.Store(3)
	s := &ctlServer{log: slog.New(slog.DiscardHandler), stopping: make(chan struct{}), l: fl, conns: map[net.Conn]struct{}{}}
	s.wg.Add(1)
	go s.accept()
	defer func() {
		if err := s.Stop(context.Background()); err != nil {
			t.Errorf("Stop: %v", err)
		}
	}()

	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write([]byte("{}\n")); err != nil {
		t.Fatal(err)
	}
	var rep ctlReply
	if err := json.NewDecoder(bufio.NewReader(c)).Decode(&rep); err != nil {
		t.Fatalf("no answer after failed accepts: %v", err)
	}
	if rep.Error != "no command" {
		t.Errorf("answer %+v, want the error \"no command\"", rep)
	}
	if n := fl.n.Load(); n >= 0 {
		t.Errorf("the listener failed %d accepts fewer than it should have", n+1)
	}
}
