package syslog

import (
	"io"
	"net"
	"strings"
	"testing"

	"github.com/solgate/solgate/logstore"
)

// TestStreamCountsEveryByte: the byte count that says which messages the
// receiver's TCP acknowledged matches what went out on the socket, with
// messages large enough that a smaller buffer would write some of them to
// the socket by itself, uncounted (messages then counted as taken before
// their bytes were acknowledged).
func TestStreamCountsEveryByte(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	got := make(chan int64, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			got <- -1
			return
		}
		n, _ := io.Copy(io.Discard, c)
		c.Close()
		got <- n
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	s := newStreamConn(c, c, true)
	msg := []byte(strings.Repeat("x", 40000))
	for range 10 {
		if err := s.write(msg); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.flush(); err != nil {
		t.Fatal(err)
	}
	raw := s.raw
	s.close()
	if n := <-got; n != raw {
		t.Fatalf("the receiver got %d bytes, the connection counted %d", n, raw)
	}
}

// TestMaxMessageBounded: a target's message limit is at most what a
// stream connection's buffer holds with framing; beyond it Apply says
// so (a larger message would be written past the byte count).
func TestMaxMessageBounded(t *testing.T) {
	store, err := logstore.Open(t.TempDir(), logstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	sh := NewShipper(store, t.TempDir(), nil)
	defer sh.Close()
	for _, n := range []int{maxMessage + 1, minMessage - 1} {
		err := sh.Apply([]Target{{Network: "tcp", Address: "127.0.0.1:9", Facility: 16, MaxMessage: n}})
		if err == nil || !strings.Contains(err.Error(), "max message") {
			t.Errorf("MaxMessage %d: Apply = %v, want an error about max message", n, err)
		}
	}
}
