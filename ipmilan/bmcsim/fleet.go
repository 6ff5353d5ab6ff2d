package bmcsim

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"sync"
)

// FleetConfig describes N simulated BMCs served by one process.
type FleetConfig struct {
	N int
	// Listen is the UDP address of the first BMC. With port 0 every BMC
	// gets its own ephemeral port on that IP (tests). Otherwise BMC i
	// listens on port+i, or, with PerAddress, on IP+i with the same port
	// (127.0.1.1:623, 127.0.1.2:623, ...; addresses ending in .0 and .255
	// are skipped; binding port 623 needs root). Only loopback addresses
	// are allowed: a simulator with demo passwords must not face a
	// network.
	Listen     string
	PerAddress bool
	// Config is the template every BMC starts from (a zero GUID gives
	// each BMC its own random GUID).
	Config Config
	// Configure, if set, adjusts BMC i's copy of Config.
	Configure func(i int, c *Config)
}

// Fleet is a running set of simulated BMCs.
type Fleet struct {
	bmcs   []*BMC
	addrs  []string
	conns  []io.Closer      // every socket bound, closed by Close
	serve  []net.PacketConn // BMC i's main socket if Serve serves it, else nil
	polled []pollTarget     // the BMCs pollers serve (fleet_linux.go)
	cancel context.CancelFunc
	wg     sync.WaitGroup // Serve goroutines
	pwait  func()         // waits for the pollers; nil if none

	mu   sync.Mutex
	errs []error // Serve errors; guarded by mu
	once sync.Once
}

// Validate reports what is wrong with the fleet's size, addresses or
// BMC template, without binding anything.
func (fc FleetConfig) Validate() error {
	if fc.N < 1 {
		return fmt.Errorf("bmcsim: fleet size %d: want at least 1", fc.N)
	}
	if _, err := fleetAddrs(fc.Listen, fc.N, fc.PerAddress); err != nil {
		return err
	}
	return fc.Config.Validate()
}

// StartFleet binds every BMC's socket, then serves them all until ctx
// ends or Close is called: on Linux from a few shared pollers (see
// fleet_linux.go), elsewhere (and for BMCs with SOLConfig.Port) with
// Serve, each in its own goroutine. If any socket cannot
// be bound, nothing is left running and the error names the address.
func StartFleet(ctx context.Context, fc FleetConfig) (*Fleet, error) {
	if fc.N < 1 {
		return nil, fmt.Errorf("bmcsim: fleet size %d: want at least 1", fc.N)
	}
	addrs, err := fleetAddrs(fc.Listen, fc.N, fc.PerAddress)
	if err != nil {
		return nil, err
	}
	f := &Fleet{}
	for i, a := range addrs {
		cfg := fc.Config
		if fc.Configure != nil {
			fc.Configure(i, &cfg)
		}
		if err := cfg.Validate(); err != nil {
			f.closeConns()
			return nil, fmt.Errorf("bmcsim: BMC %d: %w", i, err)
		}
		b := New(cfg)
		var pc net.PacketConn
		var laddr net.Addr
		if cfg.SOL.Port == 0 {
			c, err := listenPolled(a)
			if err == nil {
				f.conns = append(f.conns, c)
				f.polled = append(f.polled, pollTarget{b: b, c: c, snd: newSender(c, &b.stats)})
				laddr = c.LocalAddr()
			} else if err != errNoPoller {
				f.closeConns()
				return nil, fmt.Errorf("bmcsim: BMC %d: %w", i, err)
			}
		}
		if laddr == nil {
			if pc, err = net.ListenPacket("udp4", a.String()); err != nil {
				f.closeConns()
				return nil, fmt.Errorf("bmcsim: BMC %d: %w", i, err)
			}
			f.conns = append(f.conns, pc)
			laddr = pc.LocalAddr()
		}
		f.serve = append(f.serve, pc)
		if p := cfg.SOL.Port; p != 0 {
			// Bind the SOL port now, so a clash is reported here and
			// not by a Serve goroutine later.
			alt, err := net.ListenPacket("udp4", net.JoinHostPort(a.Addr().String(), strconv.Itoa(int(p))))
			if err != nil {
				f.closeConns()
				return nil, fmt.Errorf("bmcsim: BMC %d: SOL port: %w", i, err)
			}
			f.conns = append(f.conns, alt)
			b.altConn = alt
		}
		f.bmcs = append(f.bmcs, b)
		f.addrs = append(f.addrs, laddr.String())
	}
	ctx, f.cancel = context.WithCancel(ctx)
	if len(f.polled) > 0 {
		if f.pwait, err = servePolled(ctx, f.polled, f.report); err != nil {
			f.cancel()
			f.closeConns()
			return nil, err
		}
	}
	for i, pc := range f.serve {
		if pc == nil {
			continue
		}
		f.wg.Go(func() {
			if err := f.bmcs[i].Serve(ctx, pc); err != nil {
				f.report(err)
			}
		})
	}
	return f, nil
}

// errNoPoller: this system has no shared pollers (fleet_other.go).
var errNoPoller = errors.New("bmcsim: no shared poller on this system")

// report records an error of a BMC's serving, for Close.
func (f *Fleet) report(err error) {
	f.mu.Lock()
	f.errs = append(f.errs, err)
	f.mu.Unlock()
}

func (f *Fleet) closeConns() {
	for _, c := range f.conns {
		c.Close()
	}
}

// Len is the number of BMCs.
func (f *Fleet) Len() int { return len(f.bmcs) }

// BMC returns BMC i (0-based).
func (f *Fleet) BMC(i int) *BMC { return f.bmcs[i] }

// Addr returns BMC i's UDP address as "IP:PORT".
func (f *Fleet) Addr(i int) string { return f.addrs[i] }

// Addrs returns every BMC's address, in order.
func (f *Fleet) Addrs() []string { return append([]string(nil), f.addrs...) }

// Close stops every BMC, waits for their goroutines, closes the sockets
// and returns the first error a BMC's Serve reported. It is idempotent.
func (f *Fleet) Close() error {
	f.once.Do(func() {
		f.cancel()
		f.wg.Wait()
		if f.pwait != nil {
			f.pwait()
		}
		f.closeConns()
	})
	f.mu.Lock()
	defer f.mu.Unlock()
	return errors.Join(f.errs...)
}

// fleetAddrs computes the n listen addresses described by listen.
func fleetAddrs(listen string, n int, perAddress bool) ([]netip.AddrPort, error) {
	host, portStr, err := net.SplitHostPort(listen)
	if err != nil {
		return nil, fmt.Errorf("bmcsim: listen address %q: %w", listen, err)
	}
	ip, err := netip.ParseAddr(host)
	if err != nil || !ip.Is4() {
		return nil, fmt.Errorf("bmcsim: listen address %q: want an IPv4 address", listen)
	}
	if !ip.IsLoopback() {
		return nil, fmt.Errorf("bmcsim: listen address %q: only loopback (127.0.0.0/8) is allowed", listen)
	}
	port, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil {
		return nil, fmt.Errorf("bmcsim: listen port %q: %w", portStr, err)
	}
	out := make([]netip.AddrPort, 0, n)
	switch {
	case perAddress:
		if port == 0 {
			return nil, fmt.Errorf("bmcsim: one BMC per address needs a fixed port, not 0")
		}
		for len(out) < n {
			if b := ip.As4(); b[3] != 0 && b[3] != 255 {
				out = append(out, netip.AddrPortFrom(ip, uint16(port)))
			}
			ip = ip.Next()
			if !ip.IsLoopback() {
				return nil, fmt.Errorf("bmcsim: %d BMCs from %s leave 127.0.0.0/8", n, host)
			}
		}
	case port == 0:
		for range n {
			out = append(out, netip.AddrPortFrom(ip, 0))
		}
	default:
		if int(port)+n-1 > 65535 {
			return nil, fmt.Errorf("bmcsim: %d BMCs from port %d run past 65535", n, port)
		}
		for i := range n {
			out = append(out, netip.AddrPortFrom(ip, uint16(int(port)+i)))
		}
	}
	return out, nil
}
