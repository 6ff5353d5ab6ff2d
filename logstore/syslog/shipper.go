package syslog

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/solgate/solgate/logstore"
)

// Target is one syslog receiver and how to ship to it.
type Target struct {
	// Name identifies the target's saved positions across reloads and
	// restarts; "" means Network + "://" + Address. Changing anything but
	// the name keeps the positions.
	Name string
	// Network is "udp", "tcp", "tls", "relp" or "unix" (a local socket,
	// datagram or stream, whichever it is).
	Network string
	// Address is host:port (IP literals are best: no resolver on the
	// path), or the socket path for "unix".
	Address string
	Format  Format
	// Facility is 0 to 23 (16 is local0).
	Facility int
	// Severity of console lines no pattern matches: a name such as "info"
	// (the default when "").
	Severity string
	// Patterns raise the severity of matching lines; they are tried first,
	// then DefaultPatterns unless NoDefaultPatterns. First match wins.
	Patterns          []Pattern
	NoDefaultPatterns bool
	// Ships selects the consoles shipped (nil: all); Consoles describes
	// the selection (a hostlist) and tells two Targets' selections apart.
	Ships    func(console string) bool
	Consoles string
	// TLS: the CA bundle to verify the receiver with ("" for the system
	// roots), the name its certificate must carry ("" for the host of
	// Address), and an optional client certificate.
	CAFile, ServerName, CertFile, KeyFile string
	// SDID is the SD-ID of the structured data (default DefaultSDID).
	SDID string
	// MaxMessage is the most bytes of one message before framing
	// (default 2048 for udp and unix, 8192 otherwise; 1024 for RFC 3164;
	// at least 480, at most 65536). Longer lines are split into parts.
	MaxMessage int
	// Backfill starts consoles that had logs before the target was first
	// applied at their oldest record; by default they start at their end
	// (consoles whose logs begin later always start at the beginning).
	Backfill bool
	// Window is the most messages sent and not yet durably committed
	// (taken by the receiver and their positions saved): after a crash,
	// at most this many are sent again. Default 10,000.
	Window int
}

// Key returns the name that identifies the target's positions.
func (t *Target) Key() string {
	if t.Name != "" {
		return t.Name
	}
	return t.Network + "://" + t.Address
}

func (t *Target) equal(u *Target) bool {
	if t.Key() != u.Key() || t.Network != u.Network || t.Address != u.Address || t.Format != u.Format ||
		t.Facility != u.Facility || t.Severity != u.Severity || t.NoDefaultPatterns != u.NoDefaultPatterns ||
		t.Consoles != u.Consoles || (t.Ships == nil) != (u.Ships == nil) || t.CAFile != u.CAFile ||
		t.ServerName != u.ServerName || t.CertFile != u.CertFile || t.KeyFile != u.KeyFile ||
		t.SDID != u.SDID || t.MaxMessage != u.MaxMessage || t.Window != u.Window || t.Backfill != u.Backfill {
		return false
	}
	return slices.EqualFunc(t.Patterns, u.Patterns, func(a, b Pattern) bool {
		return a.Severity == b.Severity && a.Re.String() == b.Re.String()
	})
}

// check validates t and fills in defaults.
func (t *Target) check() (Target, Severity, error) {
	c := *t
	switch c.Network {
	case "udp", "tcp", "tls", "relp", "unix":
	default:
		return c, 0, fmt.Errorf("syslog: target %s: network %q is not udp, tcp, tls, relp or unix", c.Key(), c.Network)
	}
	if c.Address == "" {
		return c, 0, fmt.Errorf("syslog: target %s: no address", c.Key())
	}
	if c.Facility < 0 || c.Facility > 23 {
		return c, 0, fmt.Errorf("syslog: target %s: facility %d is not 0 to 23", c.Key(), c.Facility)
	}
	sev := Info
	if c.Severity != "" {
		s, err := ParseSeverity(c.Severity)
		if err != nil {
			return c, 0, fmt.Errorf("syslog: target %s: %w", c.Key(), err)
		}
		sev = s
	}
	for _, p := range c.Patterns {
		if p.Re == nil {
			return c, 0, fmt.Errorf("syslog: target %s: pattern without a regular expression", c.Key())
		}
	}
	if c.MaxMessage == 0 {
		switch {
		case c.Format == RFC3164:
			c.MaxMessage = 1024
		case c.Network == "udp" || c.Network == "unix":
			c.MaxMessage = 2048
		default:
			c.MaxMessage = 8192
		}
	}
	if c.MaxMessage < minMessage || c.MaxMessage > maxMessage {
		return c, 0, fmt.Errorf("syslog: target %s: max message %d is not from %d to %d bytes", c.Key(), c.MaxMessage, minMessage, maxMessage)
	}
	if c.Window <= 0 {
		c.Window = 10000
	}
	return c, sev, nil
}

// TargetStats are one target's counters since its shipper started.
type TargetStats struct {
	Key       string
	Connected bool
	// Sent and Bytes count messages (and their bytes, before framing) the
	// receiver has taken.
	Sent, Bytes int64
	// InFlight are messages sent and not yet taken.
	InFlight int
	// BacklogConsoles have lines the receiver has not yet taken (not yet
	// read from the log, or sent and not yet acknowledged);
	// BacklogLines are the lines sent and not yet taken (InFlight: lines
	// not yet read are not counted); BacklogAge is how old the oldest line
	// not yet taken is. They are refreshed once a second, also while the
	// target waits for a receiver that takes nothing (not during a single
	// blocked write, which the write timeout ends).
	BacklogConsoles int
	BacklogLines    int64
	BacklogAge      time.Duration
	Reconnects      int64 // connections made after the first
	DialErrors      int64
	Skipped         int64 // gap events the shipper sent for records it could not read
	LastError       string
	LastErrorTime   time.Time
}

// Shipper ships every console's lines to a set of targets, one goroutine
// per target. It is safe for concurrent use.
type Shipper struct {
	store    *logstore.Store
	stateDir string
	log      *slog.Logger

	mu      sync.Mutex // guards targets, closed
	targets map[string]*target
	closed  bool
}

// NewShipper returns a Shipper reading from store and keeping positions
// in stateDir (created 0750 if missing). It ships nothing until Apply.
func NewShipper(store *logstore.Store, stateDir string, log *slog.Logger) *Shipper {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Shipper{store: store, stateDir: stateDir, log: log, targets: map[string]*target{}}
}

// Apply makes the running targets those given: new ones start, removed
// ones stop (their positions stay saved, for when they come back), changed
// ones restart from their saved positions, unchanged ones go on. An error
// (a bad target, two with one key) changes nothing.
func (s *Shipper) Apply(targets []Target) error {
	type want struct {
		t   Target
		sev Severity
	}
	wants := map[string]want{}
	for i := range targets {
		c, sev, err := targets[i].check()
		if err != nil {
			return err
		}
		if _, dup := wants[c.Key()]; dup {
			return fmt.Errorf("syslog: two targets named %s", c.Key())
		}
		wants[c.Key()] = want{c, sev}
	}
	if len(wants) > 0 {
		if err := os.MkdirAll(s.stateDir, 0o750); err != nil {
			return fmt.Errorf("syslog: state directory: %w", err)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errors.New("syslog: shipper closed")
	}
	var stop []*target
	for k, old := range s.targets {
		if w, ok := wants[k]; !ok || !old.cfg.equal(&w.t) {
			stop = append(stop, old)
			delete(s.targets, k)
		}
	}
	for _, t := range stop {
		t.stop() // saves its positions before a changed one reads them
	}
	for k, w := range wants {
		if _, ok := s.targets[k]; ok {
			continue
		}
		t := newTarget(s, w.t, w.sev)
		s.targets[k] = t
		t.start()
	}
	return nil
}

// Stats returns every target's counters, sorted by key.
func (s *Shipper) Stats() []TargetStats {
	s.mu.Lock()
	ts := make([]*target, 0, len(s.targets))
	for _, t := range s.targets {
		ts = append(ts, t)
	}
	s.mu.Unlock()
	out := make([]TargetStats, 0, len(ts))
	for _, t := range ts {
		out = append(out, t.statsNow())
	}
	slices.SortFunc(out, func(a, b TargetStats) int {
		if a.Key < b.Key {
			return -1
		}
		if a.Key > b.Key {
			return 1
		}
		return 0
	})
	return out
}

// Close stops every target, waiting briefly for receivers to take what is
// in flight, and saves the positions.
func (s *Shipper) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	ts := s.targets
	s.targets = map[string]*target{}
	s.mu.Unlock()
	var wg sync.WaitGroup
	for _, t := range ts {
		wg.Add(1)
		go func() { defer wg.Done(); t.stop() }()
	}
	wg.Wait()
	var errs []error
	for _, t := range ts {
		if t.saveErr != nil {
			errs = append(errs, t.saveErr)
		}
	}
	return errors.Join(errs...)
}
