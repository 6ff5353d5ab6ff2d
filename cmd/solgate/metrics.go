package main

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/solgate/solgate/conserver/config"
	"github.com/solgate/solgate/conserver/metrics"
	"github.com/solgate/solgate/logstore/syslog"
)

// Metrics as a component of solgate serve: Prometheus exposition,
// /healthz and /readyz on [server] metrics ("" turns it off). A busy port
// does not stop the daemon (consoles matter more than their metrics): it
// is logged and retried every metricsRetry until it is free. A reload
// that changes the address moves the listener.
func init() {
	serveComponents = append(serveComponents, func(d *daemon) (component, error) {
		c := &metricsComponent{d: d, log: d.log}
		c.m = metrics.New(metrics.Options{
			Consoles:   metrics.ManagerConsoles(d.m),
			Gateway:    daemonGateway{d},
			Syslog:     daemonSyslog{d},
			Config:     &d.reloads,
			LogDropped: d.logOut.Dropped,
			Version:    version,
			Ready:      d.ready.Load,
		})
		return c, nil
	})
}

// metricsRetry is how often a metrics address that could not be bound is
// tried again.
const metricsRetry = 30 * time.Second

type metricsComponent struct {
	d   *daemon
	log *slog.Logger
	m   *metrics.Metrics

	mu     sync.Mutex // guards the fields below
	want   string     // the configured address
	srv    *http.Server
	bound  string             // the address listened on, "" while not listening
	cancel context.CancelFunc // ends the current serve or retry loop
	wg     sync.WaitGroup     // that loop
}

func (c *metricsComponent) Name() string { return "metrics" }

func (c *metricsComponent) Start(ctx context.Context) error {
	c.listen(c.d.m.Config().Server.Metrics)
	return nil
}

func (c *metricsComponent) Reload(ctx context.Context, cfg *config.Config, diff config.Diff) {
	c.mu.Lock()
	same := cfg.Server.Metrics == c.want
	c.mu.Unlock()
	if same {
		return
	}
	c.stopServing(ctx)
	c.listen(cfg.Server.Metrics)
}

func (c *metricsComponent) Stop(ctx context.Context) error {
	c.stopServing(ctx)
	return nil
}

// Addr is the address the metrics listen on, "" while they do not.
func (c *metricsComponent) Addr() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.bound
}

// listen starts serving on addr, or a loop retrying it.
func (c *metricsComponent) listen(addr string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.want = addr
	if addr == "" {
		c.log.Info("serve: metrics off ([server] metrics is empty)")
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	c.cancel = cancel
	l, err := net.Listen("tcp", addr)
	if err == nil {
		c.serveLocked(l)
		return
	}
	c.log.Error("serve: metrics: cannot listen; retrying", "addr", addr, "every", metricsRetry, "err", err)
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		t := time.NewTicker(metricsRetry)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			l, err := net.Listen("tcp", addr)
			if err != nil {
				continue
			}
			c.mu.Lock()
			if ctx.Err() != nil {
				c.mu.Unlock()
				l.Close()
				return
			}
			c.serveLocked(l)
			c.mu.Unlock()
			return
		}
	}()
}

// serveLocked serves on l from a goroutine of c.wg; c.mu is held.
func (c *metricsComponent) serveLocked(l net.Listener) {
	c.bound = l.Addr().String()
	srv, l := newMetricsServer(c.m.Handler(), l, c.log)
	c.srv = srv
	c.log.Info("serve: metrics listening", "addr", c.bound)
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			c.log.Error("serve: metrics stopped", "err", err)
		}
	}()
}

// newMetricsServer is the metrics HTTP server and the listener to serve
// it on: at most metricsMaxConns connections open. Shutdown (stopServing)
// closes the listener, then idle connections, and waits for scrapes under
// way; but it gives a connection that has sent nothing yet 5 s in case a
// request is coming, and 32 of those would hold the daemon's stop: the
// listener's Close closes them, before Accept could take more from the
// kernel's queue.
func newMetricsServer(h http.Handler, l net.Listener, log *slog.Logger) (*http.Server, net.Listener) {
	quiet := &quietConns{m: map[net.Conn]struct{}{}}
	srv := &http.Server{
		ConnState:         quiet.track,
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		WriteTimeout:      time.Minute,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	return srv, newLimitListener(l, metricsMaxConns, quiet.closeAll)
}

// stopServing ends the server (scrapes in progress get until ctx ends)
// or the retry loop, and waits for it.
func (c *metricsComponent) stopServing(ctx context.Context) {
	c.mu.Lock()
	// Cancelled under c.mu: a retry loop that has just bound the address
	// checks its context under c.mu too, so it cannot start serving after
	// this (a server nobody shuts down, and a c.wg.Wait that never ends).
	if c.cancel != nil {
		c.cancel()
	}
	srv := c.srv
	c.srv, c.cancel, c.bound = nil, nil, ""
	c.mu.Unlock()
	if srv != nil {
		sctx, done := context.WithTimeout(ctx, 2*time.Second)
		if err := srv.Shutdown(sctx); err != nil {
			srv.Close()
		}
		done()
	}
	c.wg.Wait()
}

// daemonSyslog finds the syslog shipper among the daemon's components
// once they have all started.
type daemonSyslog struct{ d *daemon }

func (s daemonSyslog) Stats() []syslog.TargetStats {
	for _, c := range s.d.components() {
		if sc, ok := c.(*syslogComponent); ok {
			return sc.sh.Stats()
		}
	}
	return nil
}

// daemonGateway finds a component that reports gateway figures (the SSH
// gateway) once they have all started.
type daemonGateway struct{ d *daemon }

func (g daemonGateway) GatewayStats() (metrics.GatewayStats, bool) {
	for _, c := range g.d.components() {
		if gc, ok := c.(metrics.Gateway); ok {
			return gc.GatewayStats()
		}
	}
	return metrics.GatewayStats{}, false
}

// components returns the daemon's components once every one has started
// (nil before: d.comps is still being appended to then).
func (d *daemon) components() []component {
	select {
	case <-d.started:
		return d.comps
	default:
		return nil
	}
}

// GatewayStats implements metrics.Gateway for the SSH gateway component.
func (g *gateway) GatewayStats() (metrics.GatewayStats, bool) {
	st := g.srv.Stats()
	return metrics.GatewayStats{Connections: st.Conns, Unauthenticated: st.Unauthenticated, Sessions: st.Sessions,
		AuthFailures: st.AuthFailures, RefusedCap: st.RefusedCap, RefusedBackoff: st.RefusedBackoff, ClosedForRoom: st.ClosedForRoom, RefusedConns: st.RefusedConns}, true
}

// quietConns are a metrics server's connections that have sent no
// request yet (http.StateNew).
type quietConns struct {
	mu sync.Mutex
	m  map[net.Conn]struct{}
}

func (q *quietConns) track(c net.Conn, st http.ConnState) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if st == http.StateNew {
		q.m[c] = struct{}{}
	} else {
		delete(q.m, c)
	}
}

func (q *quietConns) closeAll() {
	q.mu.Lock()
	defer q.mu.Unlock()
	for c := range q.m {
		c.Close()
	}
	clear(q.m)
}

// metricsMaxConns bounds the metrics listener's open connections: each
// costs a descriptor, and a flood of idle ones must not take the
// descriptors the consoles need (beyond it, connections wait in the
// kernel's accept queue, which costs the daemon none).
const metricsMaxConns = 32

// limitListener accepts at most n connections open at once. While all n
// are open, Accept waits for one to close or for the listener to close:
// http.Server.Shutdown waits for Serve to return before it closes any
// connection, so an Accept that waited for a slot alone would hold the
// daemon's stop until idle clients time out.
type limitListener struct {
	net.Listener
	slots     chan struct{}
	closed    chan struct{}
	closeOnce sync.Once
	onClose   func() // run by Close after the listener is closed
}

func newLimitListener(l net.Listener, n int, onClose func()) net.Listener {
	return &limitListener{Listener: l, slots: make(chan struct{}, n), closed: make(chan struct{}), onClose: onClose}
}

func (l *limitListener) Accept() (net.Conn, error) {
	select {
	case l.slots <- struct{}{}:
	case <-l.closed:
		return nil, net.ErrClosed
	}
	c, err := l.Listener.Accept()
	if err != nil {
		<-l.slots
		return nil, err
	}
	return &limitConn{Conn: c, release: func() { <-l.slots }}, nil
}

func (l *limitListener) Close() error {
	var err error
	l.closeOnce.Do(func() {
		close(l.closed)
		err = l.Listener.Close()
		if l.onClose != nil {
			l.onClose()
		}
	})
	return err
}

type limitConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}
