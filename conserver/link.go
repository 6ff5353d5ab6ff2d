package conserver

import (
	"context"

	"github.com/solgate/solgate/ipmilan"
)

// bmcSession is what a console needs of an IPMI session: ipmilan's, or
// in tests an in-memory one, so the supervisor (backoff, steal policy,
// contested detection) runs under testing/synctest.
type bmcSession interface {
	ActivateSOL(ctx context.Context, o ipmilan.SOLOptions) (solStream, error)
	ID() uint32
	CipherSuite() int
	Addr() string
	Close() error
	// IPMI is the session for power commands; nil when there is none.
	IPMI() *ipmilan.Session
}

// solStream is an active SOL console (*ipmilan.SOL).
type solStream interface {
	Read(p []byte) (int, error)
	Write(p []byte) (int, error)
	Break(ctx context.Context) error
	Events() <-chan ipmilan.SOLEvent
	Stats() ipmilan.SOLStats
	Err() error
	Close() error
}

// ipmiSession adapts *ipmilan.Session.
type ipmiSession struct{ *ipmilan.Session }

func (s ipmiSession) ActivateSOL(ctx context.Context, o ipmilan.SOLOptions) (solStream, error) {
	sol, err := s.Session.ActivateSOL(ctx, o)
	if err != nil {
		return nil, err
	}
	return sol, nil
}

func (s ipmiSession) IPMI() *ipmilan.Session { return s.Session }

// openSession dials with Options.Dial.
func (m *Manager) openSession(ctx context.Context, cfg ipmilan.Config) (bmcSession, error) {
	s, err := m.opts.Dial(ctx, cfg)
	if err != nil {
		return nil, err
	}
	return ipmiSession{s}, nil
}
