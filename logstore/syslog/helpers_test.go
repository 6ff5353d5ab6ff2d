package syslog_test

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/solgate/solgate/logstore"
	"github.com/solgate/solgate/logstore/syslog"
)

// openStore opens a Store in dir whose Writers flush within 10 ms; it is
// closed when the test ends (after the Shippers started later).
func openStore(t *testing.T, dir string) *logstore.Store {
	t.Helper()
	store, err := logstore.Open(dir, logstore.Options{FlushInterval: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	return store
}

func mustWriter(t *testing.T, store *logstore.Store, console string) *logstore.Writer {
	t.Helper()
	w, err := store.Writer(console)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// udpReceiver is a loopback UDP socket, closed when the test ends.
func udpReceiver(t *testing.T) net.PacketConn {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	return pc
}

// startShipper starts a Shipper on store with its positions in stateDir,
// shipping to targets; it is closed when the test ends, if not before.
func startShipper(t *testing.T, store *logstore.Store, stateDir string, targets ...syslog.Target) *syslog.Shipper {
	t.Helper()
	sh := syslog.NewShipper(store, stateDir, nil)
	t.Cleanup(func() { sh.Close() })
	if err := sh.Apply(targets); err != nil {
		t.Fatal(err)
	}
	return sh
}

// damageLine flips a bit of text in console's only segment, in the live
// frame that holds it raw: the frame's checksum no longer matches, and
// live frames carry no content size.
func damageLine(t *testing.T, dir, console, text string) {
	t.Helper()
	segs, err := filepath.Glob(filepath.Join(dir, console, "*.zst"))
	if err != nil || len(segs) != 1 {
		t.Fatalf("segments of %s: %v %v", console, segs, err)
	}
	b, err := os.ReadFile(segs[0])
	if err != nil {
		t.Fatal(err)
	}
	at := bytes.Index(b, []byte(text))
	if at < 0 {
		t.Fatalf("%q is not stored raw: cannot damage it as planned", text)
	}
	b[at] ^= 0x20
	if err := os.WriteFile(segs[0], b, 0o640); err != nil {
		t.Fatal(err)
	}
}

// silentReceiver listens on loopback and accepts one connection it never
// reads (closed when the test ends), with the listener's receive buffer
// set to rcvbuf when positive (inherited by what it accepts: a small one
// fills the receiver's window with a few kilobytes). It returns the
// address.
func silentReceiver(t *testing.T, rcvbuf int) string {
	t.Helper()
	var lc net.ListenConfig
	if rcvbuf > 0 {
		lc.Control = func(_, _ string, c syscall.RawConn) error {
			var serr error
			err := c.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, rcvbuf) })
			return errors.Join(err, serr)
		}
	}
	ln, err := lc.Listen(context.Background(), "tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			accepted <- c // never read
		}
		close(accepted)
	}()
	t.Cleanup(func() {
		ln.Close()
		if c, ok := <-accepted; ok {
			c.Close()
		}
	})
	return ln.Addr().String()
}

// waitTakesNothing waits until the one target's receiver has taken
// nothing more for a second while started says the target is under way,
// and returns how many messages it took.
func waitTakesNothing(t *testing.T, sh *syslog.Shipper, started func(syslog.TargetStats) bool) int64 {
	t.Helper()
	last, same := int64(-1), 0
	deadline := time.Now().Add(20 * time.Second)
	for same < 10 {
		if time.Now().After(deadline) {
			t.Fatalf("the receiver's TCP still takes messages: %+v", sh.Stats())
		}
		time.Sleep(100 * time.Millisecond)
		st := sh.Stats()
		if started(st[0]) && st[0].Sent == last {
			same++
		} else {
			same = 0
		}
		last = st[0].Sent
	}
	return last
}
