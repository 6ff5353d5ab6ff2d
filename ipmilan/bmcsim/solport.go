package bmcsim

import (
	"context"
	"fmt"
	"net"
	"strconv"
)

// serveSOLPort starts answering on SOLConfig.Port (same IP address as pc)
// when one is set and no other Serve does yet. stop, if not nil, ends
// that and waits for it.
func (b *BMC) serveSOLPort(ctx context.Context, pc net.PacketConn) (stop func(), err error) {
	port := b.cfg.SOL.Port
	la, ok := pc.LocalAddr().(*net.UDPAddr)
	if port == 0 || !ok || la.Port == int(port) {
		return nil, nil
	}
	b.altMu.Lock()
	defer b.altMu.Unlock()
	if b.altServing {
		return nil, nil
	}
	alt, owned := b.altConn, false
	if alt == nil {
		alt, err = net.ListenPacket("udp", net.JoinHostPort(la.IP.String(), strconv.Itoa(int(port))))
		if err != nil {
			return nil, fmt.Errorf("bmcsim: SOL port: %w", err)
		}
		owned = true
	}
	b.altServing = true
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := b.Serve(ctx, alt); err != nil {
			b.log.Warn("SOL port stopped", "err", err)
		}
	}()
	return func() {
		cancel()
		<-done
		if owned {
			alt.Close()
		}
		b.altMu.Lock()
		b.altServing = false
		b.altMu.Unlock()
	}, nil
}
