package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"regexp"
	"strconv"
	"sync"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"github.com/solgate/solgate/conserver"
	"github.com/solgate/solgate/conserver/config"
	"github.com/solgate/solgate/conserver/power"
	"github.com/solgate/solgate/logstore"
	"github.com/solgate/solgate/sshgw"
)

// The SSH gateway is a component of solgate serve: sshgw on [server]
// listen, with the console manager adapted to sshgw.Backend.
func init() {
	serveComponents = append(serveComponents, func(d *daemon) (component, error) { return newGateway(d) })
}

// hostKeyName is the host key serve creates in state_dir when [server]
// host_keys is not set.
const hostKeyName = "ssh_host_ed25519_key"

type gateway struct {
	d      *daemon
	b      *gatewayBackend
	srv    *sshgw.Server
	listen string
	limits [5]int64 // the ssh_* settings it started with (sshLimits)

	ln   net.Listener
	done chan error // Serve's result
}

func newGateway(d *daemon) (*gateway, error) {
	cfg := d.m.Config()
	var keys []gossh.Signer
	for _, p := range cfg.Server.HostKeys {
		// The default key is created on first start; configured ones must
		// exist.
		create := p == filepath.Join(cfg.Server.StateDir, hostKeyName)
		k, err := sshgw.LoadHostKey(p, create)
		if err != nil {
			return nil, fmt.Errorf("gateway: %w", err)
		}
		keys = append(keys, k)
	}
	b := newGatewayBackend(d.m)
	srv, err := sshgw.New(sshgw.Options{
		Backend:       b,
		HostKeys:      keys,
		Logger:        d.log.With("via", "ssh"),
		ListName:      config.ListName,
		StreamNotices: true, // the manager's attachments bring their banner and last line

		MaxSessions:        cfg.Server.Daemon.SSHMaxSessions,
		MaxSessionsPerUser: cfg.Server.Daemon.SSHMaxSessionsPerUser,
		MaxUnauthenticated: cfg.Server.Daemon.SSHMaxUnauthenticated,
		HandshakeTimeout:   cfg.Server.Daemon.SSHHandshakeTimeout,
		IdleTimeout:        cfg.Server.Daemon.SSHIdleTimeout,
	})
	if err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	return &gateway{d: d, b: b, srv: srv, listen: cfg.Server.Listen, limits: sshLimits(cfg)}, nil
}

func (g *gateway) Name() string { return "ssh gateway" }

func (g *gateway) Start(ctx context.Context) error {
	ln, err := net.Listen("tcp", g.listen)
	if err != nil {
		return fmt.Errorf("listen %s: %w", g.listen, err)
	}
	g.ln = ln
	g.done = make(chan error, 1)
	go func() { g.done <- g.srv.Serve(ln) }()
	g.d.log.Info("gateway: listening", "addr", ln.Addr().String())
	return nil
}

func (g *gateway) Reload(ctx context.Context, cfg *config.Config, diff config.Diff) {
	if cfg.Server.Listen != g.listen {
		g.d.log.Warn("gateway: [server] listen changed; restart solgate serve to listen on the new address", "listen", g.listen, "new", cfg.Server.Listen)
	}
	if n := sshLimits(cfg); n != g.limits {
		g.d.log.Warn("gateway: [server] ssh_* limits changed; restart solgate serve to apply them")
	}
	g.b.changed()
}

func (g *gateway) Stop(ctx context.Context) error {
	err := g.srv.Shutdown(ctx)
	if g.done != nil {
		if serr := <-g.done; serr != nil && !errors.Is(serr, sshgw.ErrServerClosed) {
			g.d.log.Warn("gateway: serve", "err", serr)
		}
	}
	return err
}

// gatewayBackend adapts the console manager to sshgw.Backend: people and
// permissions from the running configuration, consoles from the manager,
// logs from its store.
type gatewayBackend struct {
	m *conserver.Manager

	mu sync.Mutex    // guards ch
	ch chan struct{} // closed at the next configuration change
}

func newGatewayBackend(m *conserver.Manager) *gatewayBackend {
	return &gatewayBackend{m: m, ch: make(chan struct{})}
}

// changed tells the gateway the configuration changed.
func (b *gatewayBackend) changed() {
	b.mu.Lock()
	close(b.ch)
	b.ch = make(chan struct{})
	b.mu.Unlock()
}

func (b *gatewayBackend) Changed() <-chan struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.ch
}

func (b *gatewayBackend) Identify(key gossh.PublicKey, remote net.Addr) (string, error) {
	cfg := b.m.Config()
	if cfg == nil {
		return "", errors.New("no configuration")
	}
	return cfg.IdentifyKeyFrom(key, remote)
}

func (b *gatewayBackend) Lookup(id sshgw.Identity, name string) (sshgw.Console, error) {
	cfg := b.m.Config()
	if cfg == nil {
		return nil, sshgw.ErrNoConsole
	}
	cc, ok := cfg.Console(name)
	if !ok {
		return nil, fmt.Errorf("%w: %s was removed from the configuration", sshgw.ErrNoConsole, name)
	}
	if cfg.Perms(id.Person, name)&config.Read == 0 {
		return nil, fmt.Errorf("%w: your access to %s was revoked", sshgw.ErrNoConsole, name)
	}
	c := b.m.Console(name)
	if c == nil {
		return nil, fmt.Errorf("%w: %s is not running", sshgw.ErrNoConsole, name)
	}
	return &gatewayConsole{b: b, c: c, id: managerIdentity(id), escape: cc.Escape}, nil
}

func (b *gatewayBackend) List(id sshgw.Identity) []sshgw.Status {
	cfg := b.m.Config()
	if cfg == nil {
		return nil
	}
	var out []sshgw.Status
	for _, name := range cfg.ConsolesFor(id.Person, config.Read) {
		c := b.m.Console(name)
		if c == nil {
			continue
		}
		cc, _ := cfg.Console(name)
		out = append(out, gatewayStatus(c.Status(), cc.Escape))
	}
	return out
}

func managerIdentity(id sshgw.Identity) conserver.Identity {
	return conserver.Identity{User: id.Person, Via: id.Via, Remote: id.Remote}
}

// gatewayConsole is one console as one person sees it through the
// gateway.
type gatewayConsole struct {
	b      *gatewayBackend
	c      *conserver.Console
	id     conserver.Identity
	escape string
}

func (g *gatewayConsole) Status() sshgw.Status { return gatewayStatus(g.c.Status(), g.escape) }

func gatewayStatus(st conserver.Status, escape string) sshgw.Status {
	out := sshgw.Status{
		Name: st.Name, State: st.State.String(), Since: st.Since, Reason: st.Reason, NextTry: st.NextTry,
		Owner: st.Owner, Writer: st.Writer, Attached: st.Attached, LastOutput: st.LastOutput, Escape: escape,
	}
	if st.State == conserver.Up && !st.UpSince.IsZero() {
		out.Since = st.UpSince
	}
	add := func(name, value string) { out.Details = append(out.Details, sshgw.Field{Name: name, Value: value}) }
	add("bmc", st.BMC)
	add("steal", st.Steal)
	add("reconnects", strconv.Itoa(st.Reconnects))
	add("bytes in", strconv.FormatUint(st.BytesIn, 10))
	add("bytes out", strconv.FormatUint(st.BytesOut, 10))
	if st.Owner != "" && !st.OwnerSince.IsZero() {
		add("owner since", st.OwnerSince.UTC().Format(time.RFC3339))
	}
	sol := st.SOL
	add("sol packets", fmt.Sprintf("%d in, %d out; %d retransmits, %d duplicates, %d gaps, %d overruns, %d NACKs; %d input bytes dropped",
		sol.PacketsIn, sol.PacketsOut, sol.Retransmits, sol.Duplicates, sol.Gaps, sol.Overruns, sol.NACKs, sol.InputDropped))
	return out
}

func (g *gatewayConsole) Perm() sshgw.Perm {
	cfg := g.b.m.Config()
	if cfg == nil || g.b.m.Console(g.c.Name()) != g.c {
		return 0
	}
	p := cfg.Perms(g.id.User, g.c.Name())
	var out sshgw.Perm
	if p&config.Read != 0 {
		out |= sshgw.PermRead
	}
	if p&config.Write != 0 {
		out |= sshgw.PermWrite
	}
	if p&config.Power != 0 {
		out |= sshgw.PermPower
	}
	return out
}

func (g *gatewayConsole) Who() []sshgw.Attached {
	var out []sshgw.Attached
	for _, a := range g.c.Who() {
		out = append(out, sshgw.Attached{User: a.User, Via: a.Via, Remote: a.Remote, Since: a.Since, Idle: a.Idle,
			Mode: gatewayMode(a.Mode), Lagging: a.Lagging, Missed: a.Missed})
	}
	return out
}

func gatewayMode(m conserver.Mode) sshgw.Mode {
	if m == conserver.ModeRW {
		return sshgw.ReadWrite
	}
	return sshgw.ReadOnly
}

// gatewayErr maps the manager's sentinels onto the gateway's.
func gatewayErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, conserver.ErrDenied):
		return fmt.Errorf("%w: %v", sshgw.ErrNotPermitted, err)
	case errors.Is(err, conserver.ErrNoConsole), errors.Is(err, conserver.ErrClosed):
		return fmt.Errorf("%w: %v", sshgw.ErrNoConsole, err)
	}
	return err
}

func (g *gatewayConsole) Attach(o sshgw.AttachOptions) (sshgw.Attachment, error) {
	mode := conserver.ModeRO
	if o.Mode == sshgw.ReadWrite {
		mode = conserver.ModeAuto
	}
	a, err := g.c.Attach(g.id, conserver.AttachOptions{Mode: mode, Force: o.Force, Replay: o.Replay, Spy: o.Spy})
	if err != nil {
		return nil, gatewayErr(err)
	}
	return gatewayAttachment{a}, nil
}

// gatewayAttachment is a manager attachment with the gateway's mode and
// causes.
type gatewayAttachment struct{ *conserver.Attachment }

func (a gatewayAttachment) Mode() sshgw.Mode { return gatewayMode(a.Attachment.Mode()) }

func (a gatewayAttachment) Cause() error {
	err := a.Attachment.Cause()
	if errors.Is(err, conserver.ErrDetached) {
		return fmt.Errorf("%w: %v", sshgw.ErrDetached, err)
	}
	return gatewayErr(err)
}

func (g *gatewayConsole) Power(ctx context.Context, action string) (string, error) {
	a, err := power.ParseAction(action)
	if err != nil {
		return "", fmt.Errorf("%w: %v", sshgw.ErrUsage, err)
	}
	res, err := g.c.Power(ctx, g.id, a)
	return res, gatewayErr(err)
}

// Break sends a break through a short attachment that writes: the
// manager sends breaks in order with the writer's input.
func (g *gatewayConsole) Break(ctx context.Context) error {
	a, err := g.c.Attach(g.id, conserver.AttachOptions{Mode: conserver.ModeAuto})
	if err != nil {
		return gatewayErr(err)
	}
	defer a.Close()
	if a.Mode() != conserver.ModeRW {
		w := g.c.Status().Writer
		return fmt.Errorf("%s is writing on %s (force takes write)", w, g.c.Name())
	}
	return gatewayErr(a.Break())
}

func (g *gatewayConsole) Tail(ctx context.Context, n int, w io.Writer) error {
	lines, err := g.c.Tail(n)
	if err != nil && !errors.Is(err, logstore.ErrNoSuchLog) {
		return err
	}
	out := bufio.NewWriter(w)
	var buf []byte
	for _, l := range lines {
		buf = appendCutNote(buf[:0], l)
		buf = appendLogLine(buf, l, false)
		out.Write(buf)
	}
	return out.Flush()
}

// gatewayLogLineBytes bounds a line the gateway's log command prints: the
// daemon would otherwise hold a whole line in memory however long a
// console printed without a line feed (solgate log on the host prints
// every byte, and log --raw here streams them).
const gatewayLogLineBytes = 1 << 20

// appendCutNote appends, for a line that was cut to its end
// (logstore.Line.Dropped), an event-style line saying so.
func appendCutNote(dst []byte, l logstore.Line) []byte {
	if l.Dropped == 0 {
		return dst
	}
	dst = append(dst, logstore.FormatTime(l.Time)...)
	return fmt.Appendf(dst, " ! cut the first %d bytes of the next line are left out (log --raw prints them)\n", l.Dropped)
}

// query turns the gateway's log query into the store's, as solgate log
// reads the same flags.
func (g *gatewayConsole) query(ctx context.Context, q sshgw.LogQuery) (logstore.Query, error) {
	now := time.Now()
	var lq logstore.Query
	var err error
	if lq.Since, err = parseWhen(q.Since, now); err != nil {
		return lq, fmt.Errorf("%w: --since: %v", sshgw.ErrUsage, err)
	}
	if lq.Until, err = parseWhen(q.Until, now); err != nil {
		return lq, fmt.Errorf("%w: --until: %v", sshgw.ErrUsage, err)
	}
	if !lq.Since.IsZero() && !lq.Until.IsZero() && !lq.Until.After(lq.Since) {
		return lq, fmt.Errorf("%w: --until is not after --since", sshgw.ErrUsage)
	}
	if q.Boot != "" {
		n, err := strconv.Atoi(q.Boot)
		if err != nil {
			return lq, fmt.Errorf("%w: --boot %q is not a number", sshgw.ErrUsage, q.Boot)
		}
		boots, err := g.b.m.Store().Boots(ctx, g.c.Name(), conserver.BootOptions)
		if err != nil && !errors.Is(err, logstore.ErrNoSuchLog) {
			return lq, err
		}
		b, err := logstore.BootAt(boots, n)
		if err != nil {
			return lq, fmt.Errorf("no boot %d in the log of %s (it holds %d; see log --list-boots)", n, g.c.Name(), len(boots))
		}
		if lq.Since.IsZero() || lq.Since.Before(b.Start) {
			lq.Since = b.Start
		}
		if !b.End.IsZero() && (lq.Until.IsZero() || b.End.Before(lq.Until)) {
			lq.Until = b.End
		}
	}
	return lq, nil
}

func (g *gatewayConsole) Log(ctx context.Context, q sshgw.LogQuery, w io.Writer) error {
	if q.ListBoots {
		boots, err := g.b.m.Store().Boots(ctx, g.c.Name(), conserver.BootOptions)
		if err != nil && !errors.Is(err, logstore.ErrNoSuchLog) {
			return err
		}
		return listBootsTo(w, boots)
	}
	lq, err := g.query(ctx, q)
	if err != nil {
		return err
	}
	s := g.b.m.Store()
	out := bufio.NewWriterSize(w, 64<<10)
	defer out.Flush()
	if q.Raw {
		for rec, err := range s.Records(ctx, g.c.Name(), lq) {
			if err != nil {
				if errors.Is(err, logstore.ErrNoSuchLog) {
					return nil
				}
				return err
			}
			if rec.Event == "" {
				if _, err := out.Write(rec.Data); err != nil {
					return err
				}
			}
		}
		return out.Flush()
	}
	var buf []byte
	lq.MaxLineBytes = gatewayLogLineBytes
	for l, err := range s.Lines(ctx, g.c.Name(), lq) {
		if err != nil {
			if errors.Is(err, logstore.ErrNoSuchLog) {
				return nil
			}
			return err
		}
		buf = appendCutNote(buf[:0], l)
		buf = appendLogLine(buf, l, q.Plain)
		if _, err := out.Write(buf); err != nil {
			return err
		}
	}
	return out.Flush()
}

func (g *gatewayConsole) Grep(ctx context.Context, pattern string, q sshgw.LogQuery, w io.Writer) (int, error) {
	re, err := regexp.Compile(pattern)
	if err != nil {
		return 0, fmt.Errorf("%w: %v", sshgw.ErrUsage, err)
	}
	lq, err := g.query(ctx, q)
	if err != nil {
		return 0, err
	}
	out := bufio.NewWriterSize(w, 64<<10)
	defer out.Flush()
	n := 0
	var buf []byte
	err = g.b.m.Store().Grep(ctx, g.c.Name(), re, lq, func(m logstore.Match) error {
		n++
		buf = append(buf[:0], logstore.FormatTime(m.Time)...)
		buf = append(buf, ' ')
		if m.Event != "" {
			buf = append(buf, "! "...)
			buf = append(buf, m.Event...)
			buf = append(buf, ' ')
		}
		buf = append(buf, bytes.ReplaceAll(m.Text, []byte("\n"), []byte(`\n`))...)
		buf = append(buf, '\n')
		_, err := out.Write(buf)
		return err
	})
	if errors.Is(err, logstore.ErrNoSuchLog) {
		err = nil
	}
	if ferr := out.Flush(); err == nil {
		err = ferr
	}
	return n, err
}

// recentLines is how many lines Recent reads at most to find max bytes:
// more than a screen of short lines.
const recentLines = 2000

// Recent returns the console's last limit bytes of output (at most
// recentLines lines). It reads a few lines first and more only while they
// hold fewer bytes: each line Tail returns may be 64 KiB.
func (g *gatewayConsole) Recent(limit int) ([]byte, error) {
	for k := 64; ; k *= 4 {
		k = min(k, recentLines)
		lines, err := g.c.Tail(k)
		if err != nil && !errors.Is(err, logstore.ErrNoSuchLog) {
			return nil, err
		}
		n := 0
		for _, l := range lines {
			if l.Event == "" {
				n += len(l.Text)
			}
		}
		if n < limit && len(lines) == k && k < recentLines {
			continue
		}
		skip := max(0, n-limit) // the bytes before the last limit
		out := make([]byte, 0, n-skip)
		for _, l := range lines {
			if l.Event == "" {
				t := l.Text[min(skip, len(l.Text)):]
				skip -= len(l.Text) - len(t)
				out = append(out, t...)
			}
		}
		return out, nil
	}
}

// sshLimits are the gateway's [server] ssh_* settings, to notice a change
// that needs a restart.
func sshLimits(cfg *config.Config) [5]int64 {
	d := cfg.Server.Daemon
	return [5]int64{int64(d.SSHMaxSessions), int64(d.SSHMaxSessionsPerUser), int64(d.SSHMaxUnauthenticated),
		int64(d.SSHHandshakeTimeout), int64(d.SSHIdleTimeout)}
}
