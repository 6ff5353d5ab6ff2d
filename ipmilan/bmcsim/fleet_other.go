//go:build !linux

package bmcsim

import (
	"context"
	"net"
	"net/netip"
)

// Elsewhere than on Linux every BMC of a fleet is served by Serve on a
// goroutine of its own (see fleet_linux.go).

type polledConn struct{}

func listenPolled(netip.AddrPort) (*polledConn, error) { return nil, errNoPoller }

func (*polledConn) LocalAddr() net.Addr                   { return nil }
func (*polledConn) Close() error                          { return nil }
func (*polledConn) WriteTo([]byte, net.Addr) (int, error) { return 0, errNoPoller }

type pollTarget struct {
	b   *BMC
	c   *polledConn
	snd *sender
}

func servePolled(context.Context, []pollTarget, func(error)) (func(), error) {
	return nil, errNoPoller
}
