package conserver

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/solgate/solgate/ipmilan"
)

// fakeBMC is an in-memory BMC for the supervisor's timing tests: no
// sockets, so the supervisor runs under testing/synctest. It has one SOL
// payload that solgate's sessions or a "foreign" client may hold.
type fakeBMC struct {
	mu      sync.Mutex
	dials   []time.Time // when each session was opened
	fail    error       // Dial fails with this while set
	nextID  uint32
	foreign uint32   // the foreign holder's session ID, 0: none
	active  *fakeSOL // solgate's active console, if any
	steals  int      // times solgate took the payload from a foreign holder
	reclaim int      // times solgate took it back from its own stale session
	stale   uint32   // a session of "a previous daemon" holding the payload
	typed   []byte   // what solgate wrote to the console
	breaks  int
	// closeDelay is how long deactivating the payload takes (a BMC that
	// no longer answers: the request's retries time out).
	closeDelay time.Duration
	// lose is how many activations the BMC carries out but whose answers
	// are lost: the session's ActivateSOL fails with ErrNoAnswer while the
	// payload stays active for it (in stale).
	lose int
}

func (f *fakeBMC) open(ctx context.Context, cfg ipmilan.Config) (bmcSession, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.dials = append(f.dials, time.Now())
	if f.fail != nil {
		return nil, f.fail
	}
	f.nextID++
	return &fakeSession{f: f, id: 0x1000 + f.nextID}, nil
}

func (f *fakeBMC) dialTimes() []time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]time.Time(nil), f.dials...)
}

// takeForeign makes a foreign client take the payload (as ipmitool sol
// deactivate + activate would).
func (f *fakeBMC) takeForeign(id uint32) {
	f.mu.Lock()
	a := f.active
	f.active = nil
	f.foreign = id
	f.mu.Unlock()
	if a != nil {
		a.end(ipmilan.ErrSOLStolen)
	}
}

// releaseForeign: the foreign client leaves.
func (f *fakeBMC) releaseForeign() {
	f.mu.Lock()
	f.foreign = 0
	f.mu.Unlock()
}

// drop ends solgate's console as a lost session would.
func (f *fakeBMC) drop() {
	f.mu.Lock()
	a := f.active
	f.active = nil
	f.mu.Unlock()
	if a != nil {
		a.end(fmt.Errorf("%w: keepalive: %w", ipmilan.ErrClosed, ipmilan.ErrNoAnswer))
	}
}

func (f *fakeBMC) counts() (steals, reclaims int, active bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.steals, f.reclaim, f.active != nil
}

type fakeSession struct {
	f  *fakeBMC
	id uint32
}

func (s *fakeSession) ActivateSOL(ctx context.Context, o ipmilan.SOLOptions) (solStream, error) {
	f := s.f
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.lose > 0 && f.stale == 0 && f.foreign == 0 && f.active == nil {
		f.lose--
		f.stale = s.id
		return nil, fmt.Errorf("fake: activate SOL: %w after 3 tries", ipmilan.ErrNoAnswer)
	}
	switch {
	case f.stale != 0 && o.StealFrom == f.stale:
		f.stale = 0
		f.reclaim++
	case f.stale != 0 && !o.Steal:
		return nil, fmt.Errorf("fake: %w", &ipmilan.SOLActiveError{Owner: f.stale})
	case f.foreign != 0 && !o.Steal:
		return nil, fmt.Errorf("fake: %w", &ipmilan.SOLActiveError{Owner: f.foreign})
	case f.foreign != 0:
		f.foreign = 0
		f.steals++
	}
	if f.active != nil {
		return nil, fmt.Errorf("fake: %w", &ipmilan.SOLActiveError{Owner: 0x1})
	}
	sol := &fakeSOL{f: f, ended: make(chan struct{}), events: make(chan ipmilan.SOLEvent)}
	f.active = sol
	return sol, nil
}

func (s *fakeSession) ID() uint32             { return s.id }
func (s *fakeSession) CipherSuite() int       { return 17 }
func (s *fakeSession) Addr() string           { return "fake:623" }
func (s *fakeSession) Close() error           { return nil }
func (s *fakeSession) IPMI() *ipmilan.Session { return nil }

// fakeSOL is a console that prints nothing until it ends.
type fakeSOL struct {
	f      *fakeBMC
	once   sync.Once
	ended  chan struct{}
	events chan ipmilan.SOLEvent
	mu     sync.Mutex
	err    error
}

func (c *fakeSOL) end(err error) {
	c.once.Do(func() {
		c.mu.Lock()
		c.err = err
		c.mu.Unlock()
		close(c.events)
		close(c.ended)
	})
}

func (c *fakeSOL) Read(p []byte) (int, error) {
	<-c.ended
	return 0, c.Err()
}
func (c *fakeSOL) Write(p []byte) (int, error) {
	c.f.mu.Lock()
	c.f.typed = append(c.f.typed, p...)
	c.f.mu.Unlock()
	return len(p), c.Err()
}

func (c *fakeSOL) Break(ctx context.Context) error {
	c.f.mu.Lock()
	c.f.breaks++
	c.f.mu.Unlock()
	return nil
}
func (c *fakeSOL) Events() <-chan ipmilan.SOLEvent { return c.events }
func (c *fakeSOL) Stats() ipmilan.SOLStats         { return ipmilan.SOLStats{} }
func (c *fakeSOL) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}
func (c *fakeSOL) Close() error {
	c.f.mu.Lock()
	d := c.f.closeDelay
	c.f.mu.Unlock()
	time.Sleep(d)
	c.f.mu.Lock()
	if c.f.active == c {
		c.f.active = nil // deactivated
	}
	c.f.mu.Unlock()
	c.end(ipmilan.ErrClosed)
	return nil
}

func (f *fakeBMC) input() (string, int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return string(f.typed), f.breaks
}
