package main

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"os"
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
	l := newLimitListener(raw, 2, nil)
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

// With every slot held by clients that send nothing and another waiting,
// the metrics server's stop (Shutdown with a deadline, then Close, as
// stopServing does) still ends Serve: Accept waits for a slot, not in the
// kernel, and closing the held connections gives the slots back.
func TestLimitListenerShutdownWithEverySlotHeld(t *testing.T) {
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.NotFoundHandler(), ReadHeaderTimeout: time.Minute}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(newLimitListener(raw, 2, nil)) }()
	var held []net.Conn
	for range 3 {
		c, err := net.Dial("tcp", raw.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		held = append(held, c)
	}
	time.Sleep(200 * time.Millisecond) // two accepted, the third in the kernel's queue
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	if err := srv.Shutdown(ctx); err == nil {
		t.Fatal("Shutdown returned at once with two connections open that sent nothing")
	}
	srv.Close()
	select {
	case err := <-served:
		if !errors.Is(err, http.ErrServerClosed) {
			t.Fatalf("Serve: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve still runs 10 s after Close with every slot held")
	}
	// The held ones were closed by the server.
	for i, c := range held[:2] {
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
			t.Errorf("connection %d: read %v, want it closed by the server", i, err)
		}
	}
}

// The metrics server stops at once with every slot held by connections
// that sent nothing and more waiting in the kernel's queue (a port
// scanner, a flood): Shutdown gives such connections 5 s, and the
// daemon's stop has 5 s for everything.
func TestMetricsServerStopsWithQuietConnections(t *testing.T) {
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv, l := newMetricsServer(http.NotFoundHandler(), raw, slog.New(slog.DiscardHandler))
	served := make(chan error, 1)
	go func() { served <- srv.Serve(l) }()
	for range metricsMaxConns + 8 {
		c, err := net.Dial("tcp", raw.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
	}
	time.Sleep(300 * time.Millisecond) // the first metricsMaxConns accepted
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Errorf("Shutdown: %v after %v; want the quiet connections closed at once", err, time.Since(start))
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("Shutdown took %v", d)
	}
	select {
	case err := <-served:
		if !errors.Is(err, http.ErrServerClosed) {
			t.Fatalf("Serve: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve still runs after Shutdown")
	}
}
