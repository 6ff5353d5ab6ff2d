package main

import (
	"net"
	"testing"
	"time"
)

// The metrics listener holds at most its limit of connections open; the
// next waits in the kernel's queue until one closes.
func TestLimitListener(t *testing.T) {
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := newLimitListener(raw, 2)
	defer l.Close()
	accepted := make(chan net.Conn, 3)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	for range 3 {
		c, err := net.Dial("tcp", raw.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
	}
	first, second := <-accepted, <-accepted
	select {
	case <-accepted:
		t.Fatal("a third connection accepted with a limit of 2")
	case <-time.After(200 * time.Millisecond):
	}
	first.Close()
	first.Close() // twice: one slot back, not two
	select {
	case third := <-accepted:
		third.Close()
	case <-time.After(10 * time.Second):
		t.Fatal("the waiting connection was not accepted after one closed")
	}
	second.Close()
	// Every slot is back (the double Close gave back one): two new
	// connections are both accepted.
	for range 2 {
		c, err := net.Dial("tcp", raw.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
	}
	for range 2 {
		select {
		case c := <-accepted:
			defer c.Close()
		case <-time.After(10 * time.Second):
			t.Fatal("slots not given back: a new connection waits with none open")
		}
	}
	// And no more than that: a slot given back twice (the double Close
	// above) would let a third one in now.
	c, err := net.Dial("tcp", raw.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	select {
	case <-accepted:
		t.Fatal("a third connection accepted with two open and a limit of 2: a slot was given back twice")
	case <-time.After(200 * time.Millisecond):
	}
}
