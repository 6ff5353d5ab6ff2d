package sshgw

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"regexp"
	"sync"
	"sync/atomic"
	"time"

	gossh "golang.org/x/crypto/ssh"
)

// fakeBackend is an in-memory console manager for the gateway's tests:
// people with keys, per-person permissions per console, consoles that
// echo what their writer types, and a tiny escape engine for "^Ec." and
// "^Ec?".
type fakeBackend struct {
	mu       sync.Mutex
	keys     map[string]string          // key.Marshal() -> person
	perms    map[string]map[string]Perm // person -> console -> perm
	consoles map[string]*fakeConsole
	order    []string
	changed  chan struct{}
	idCalls  int
	// idHook, if set, runs in Identify once it has decided, before it
	// returns (outside mu): tests hold a decision made on the old
	// configuration while a reload happens.
	idHook func()
	// notices: attachments start with a banner and end with their cause
	// in the stream, like the console manager's.
	notices bool
}

func newFakeBackend() *fakeBackend {
	return &fakeBackend{
		keys:     map[string]string{},
		perms:    map[string]map[string]Perm{},
		consoles: map[string]*fakeConsole{},
		changed:  make(chan struct{}),
	}
}

func (b *fakeBackend) addUser(person string, key gossh.PublicKey) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.keys[string(key.Marshal())] = person
	if b.perms[person] == nil {
		b.perms[person] = map[string]Perm{}
	}
}

func (b *fakeBackend) removeKey(key gossh.PublicKey) {
	b.mu.Lock()
	delete(b.keys, string(key.Marshal()))
	b.mu.Unlock()
}

func (b *fakeBackend) grant(person, console string, p Perm) {
	b.mu.Lock()
	b.perms[person][console] = p
	b.mu.Unlock()
}

func (b *fakeBackend) addConsole(name string) *fakeConsole {
	c := &fakeConsole{b: b, name: name, state: "up", since: time.Now()}
	b.mu.Lock()
	b.consoles[name] = c
	b.order = append(b.order, name)
	b.mu.Unlock()
	return c
}

func (b *fakeBackend) removeConsole(name string) {
	b.mu.Lock()
	delete(b.consoles, name)
	b.mu.Unlock()
}

// reload announces a configuration change, and (like the manager's
// Apply) re-checks attachments: detach who lost read, downgrade who lost
// write.
func (b *fakeBackend) reload() {
	b.mu.Lock()
	var cs []*fakeConsole
	for _, c := range b.consoles {
		cs = append(cs, c)
	}
	ch := b.changed
	b.changed = make(chan struct{})
	b.mu.Unlock()
	for _, c := range cs {
		c.recheck()
	}
	close(ch)
}

func (b *fakeBackend) perm(person, console string) Perm {
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.consoles[console]; !ok {
		return 0
	}
	return b.perms[person][console]
}

func (b *fakeBackend) Identify(key gossh.PublicKey, remote net.Addr) (string, error) {
	b.mu.Lock()
	b.idCalls++
	p, ok := b.keys[string(key.Marshal())]
	hook := b.idHook
	b.mu.Unlock()
	if hook != nil {
		hook()
	}
	if ok {
		return p, nil
	}
	return "", errors.New("unknown key")
}

// holdNextIdentify makes the next Identify call wait, once it has
// decided, until release is called; entered is closed when it waits.
func (b *fakeBackend) holdNextIdentify() (entered <-chan struct{}, release func()) {
	in, out := make(chan struct{}), make(chan struct{})
	var taken atomic.Bool
	b.mu.Lock()
	b.idHook = func() {
		if taken.CompareAndSwap(false, true) {
			close(in)
			<-out
		}
	}
	b.mu.Unlock()
	return in, sync.OnceFunc(func() { close(out) })
}

func (b *fakeBackend) Lookup(id Identity, name string) (Console, error) {
	b.mu.Lock()
	c, ok := b.consoles[name]
	b.mu.Unlock()
	if !ok || b.perm(id.Person, name)&PermRead == 0 {
		return nil, ErrNoConsole
	}
	return &fakeHandle{c: c, id: id}, nil
}

func (b *fakeBackend) List(id Identity) []Status {
	b.mu.Lock()
	order := append([]string(nil), b.order...)
	b.mu.Unlock()
	var out []Status
	for _, n := range order {
		b.mu.Lock()
		c := b.consoles[n]
		b.mu.Unlock()
		if c != nil && b.perm(id.Person, n)&PermRead != 0 {
			out = append(out, c.status())
		}
	}
	return out
}

func (b *fakeBackend) Changed() <-chan struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.changed
}

// fakeConsole is a console that echoes its writer's input.
type fakeConsole struct {
	b     *fakeBackend
	name  string
	state string
	since time.Time

	mu       sync.Mutex
	atts     []*fakeAttachment
	writer   *fakeAttachment
	input    bytes.Buffer // what reached the console
	output   bytes.Buffer // everything it printed
	breaks   int
	power    []string
	noEcho   bool
	lastOut  time.Time
	attaches int
}

func (c *fakeConsole) status() Status {
	c.mu.Lock()
	defer c.mu.Unlock()
	st := Status{Name: c.name, State: c.state, Since: c.since, Attached: len(c.atts), LastOutput: c.lastOut, Escape: "^Ec",
		Details: []Field{{"bmc", c.name + "-bmc:623"}}}
	if c.writer != nil {
		st.Writer = c.writer.id.Person
	}
	return st
}

// emit is console output: logged and sent to every attachment.
func (c *fakeConsole) emit(p []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.output.Write(p)
	c.lastOut = time.Now()
	for _, a := range c.atts {
		a.send(p)
	}
}

func (c *fakeConsole) inputBytes() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return bytes.Clone(c.input.Bytes())
}

func (c *fakeConsole) breakCount() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.breaks
}

func (c *fakeConsole) attachedCount() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.atts)
}

func (c *fakeConsole) recheck() {
	c.mu.Lock()
	atts := append([]*fakeAttachment(nil), c.atts...)
	c.mu.Unlock()
	for _, a := range atts {
		p := c.b.perm(a.id.Person, c.name)
		switch {
		case p&PermRead == 0:
			a.end(errors.New("access revoked"))
		case p&PermWrite == 0 && a.Mode() == ReadWrite:
			c.mu.Lock()
			if c.writer == a {
				c.writer = nil
			}
			a.mode = ReadOnly
			a.send([]byte("\r\n[solgate: you may no longer write; read-only now]\r\n"))
			c.mu.Unlock()
		}
	}
}

// fakeHandle is a console as one person sees it.
type fakeHandle struct {
	c  *fakeConsole
	id Identity
}

func (h *fakeHandle) Status() Status { return h.c.status() }
func (h *fakeHandle) Perm() Perm     { return h.c.b.perm(h.id.Person, h.c.name) }

func (h *fakeHandle) Who() []Attached {
	h.c.mu.Lock()
	defer h.c.mu.Unlock()
	var out []Attached
	for _, a := range h.c.atts {
		out = append(out, Attached{User: a.id.Person, Via: a.id.Via, Remote: a.id.Remote, Since: a.since, Mode: a.mode})
	}
	return out
}

func (h *fakeHandle) Attach(opts AttachOptions) (Attachment, error) {
	p := h.Perm()
	if p&PermRead == 0 {
		return nil, ErrNoConsole
	}
	if opts.Force && p&PermWrite == 0 {
		return nil, fmt.Errorf("%w: force needs write", ErrNotPermitted)
	}
	c := h.c
	a := &fakeAttachment{c: c, id: h.id, since: time.Now(), out: make(chan []byte, 64), done: make(chan struct{})}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.attaches++
	if opts.Mode == ReadWrite && p&PermWrite != 0 && !opts.Spy {
		switch {
		case c.writer == nil:
			c.writer, a.mode = a, ReadWrite
		case opts.Force:
			old := c.writer
			old.mode = ReadOnly
			old.send([]byte("\r\n[solgate: " + h.id.Person + " forced write; you are read-only]\r\n"))
			c.writer, a.mode = a, ReadWrite
		}
	}
	if c.b.notices {
		a.send([]byte("\r\n[" + c.name + ": up; you are " + a.mode.String() + "]\r\n"))
	}
	if opts.Replay > 0 {
		lines := bytes.SplitAfter(c.output.Bytes(), []byte("\n"))
		if len(lines) > 0 && len(lines[len(lines)-1]) == 0 {
			lines = lines[:len(lines)-1]
		}
		if len(lines) > opts.Replay {
			lines = lines[len(lines)-opts.Replay:]
		}
		a.send(bytes.Join(lines, nil))
	}
	c.atts = append(c.atts, a)
	return a, nil
}

func (h *fakeHandle) Power(ctx context.Context, action string) (string, error) {
	if action != "status" && h.Perm()&PermPower == 0 {
		return "", fmt.Errorf("%w: power", ErrNotPermitted)
	}
	if action == "diag" {
		return "", errors.New("BMC said: invalid command (0xc1)")
	}
	h.c.mu.Lock()
	h.c.power = append(h.c.power, h.id.Person+":"+action)
	h.c.mu.Unlock()
	if action == "status" {
		return "on", nil
	}
	return action + " done", nil
}

func (h *fakeHandle) Break(ctx context.Context) error {
	h.c.mu.Lock()
	h.c.breaks++
	h.c.mu.Unlock()
	return nil
}

func (h *fakeHandle) Tail(ctx context.Context, n int, w io.Writer) error {
	h.c.mu.Lock()
	lines := bytes.SplitAfter(bytes.Clone(h.c.output.Bytes()), []byte("\n"))
	h.c.mu.Unlock()
	if len(lines) > 0 && len(lines[len(lines)-1]) == 0 {
		lines = lines[:len(lines)-1]
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	_, err := w.Write(bytes.Join(lines, nil))
	return err
}

func (h *fakeHandle) Log(ctx context.Context, q LogQuery, w io.Writer) error {
	if q.Since == "bad" {
		return fmt.Errorf("%w: --since: bad time", ErrUsage)
	}
	h.c.mu.Lock()
	out := bytes.Clone(h.c.output.Bytes())
	h.c.mu.Unlock()
	_, err := w.Write(out)
	return err
}

func (h *fakeHandle) Grep(ctx context.Context, pattern string, q LogQuery, w io.Writer) (int, error) {
	re, err := regexp.Compile(pattern)
	if err != nil {
		return 0, fmt.Errorf("%w: bad pattern: %v", ErrUsage, err)
	}
	h.c.mu.Lock()
	out := bytes.Clone(h.c.output.Bytes())
	h.c.mu.Unlock()
	n := 0
	for _, l := range bytes.SplitAfter(out, []byte("\n")) {
		if re.Match(l) {
			n++
			w.Write(l)
		}
	}
	return n, nil
}

func (h *fakeHandle) Recent(max int) ([]byte, error) {
	h.c.mu.Lock()
	defer h.c.mu.Unlock()
	b := h.c.output.Bytes()
	if len(b) > max {
		b = b[len(b)-max:]
	}
	return bytes.Clone(b), nil
}

// fakeAttachment is a bounded stream of output chunks; a reader that
// falls behind loses chunks (counted), never blocks the console.
type fakeAttachment struct {
	c     *fakeConsole
	id    Identity
	since time.Time
	mode  Mode // guarded by c.mu

	out    chan []byte
	missed int // guarded by c.mu

	esc []byte // escape state, only touched by Write's caller

	once  sync.Once
	done  chan struct{}
	cause error // set before done closes
	pend  []byte
}

// send queues output; c.mu is held.
func (a *fakeAttachment) send(p []byte) {
	select {
	case <-a.done:
		return
	default:
	}
	select {
	case a.out <- bytes.Clone(p):
	default:
		a.missed += len(p)
	}
}

func (a *fakeAttachment) Read(p []byte) (int, error) {
	if len(a.pend) == 0 {
		select {
		case b := <-a.out:
			a.pend = b
		case <-a.done:
			select {
			case b := <-a.out:
				a.pend = b
			default:
				return 0, io.EOF
			}
		}
	}
	n := copy(p, a.pend)
	a.pend = a.pend[n:]
	return n, nil
}

func (a *fakeAttachment) Write(p []byte) (int, error) {
	select {
	case <-a.done:
		return 0, errors.New("attachment ended")
	default:
	}
	c := a.c
	var pass []byte
	for _, b := range p {
		switch {
		case len(a.esc) == 0 && b == 0x05:
			a.esc = append(a.esc, b)
		case len(a.esc) == 1 && b == 'c':
			a.esc = append(a.esc, b)
		case len(a.esc) == 1:
			pass = append(pass, a.esc[0], b)
			a.esc = a.esc[:0]
		case len(a.esc) == 2:
			a.esc = a.esc[:0]
			switch b {
			case '.':
				a.end(fmt.Errorf("%w (escape command)", ErrDetached))
				return len(p), nil
			case '?':
				c.mu.Lock()
				a.send([]byte("\r\n[solgate: escape commands: . detach, ? help]\r\n"))
				c.mu.Unlock()
			default:
				pass = append(pass, 0x05, 'c', b)
			}
		default:
			pass = append(pass, b)
		}
	}
	c.mu.Lock()
	if len(pass) > 0 && c.writer == a && a.mode == ReadWrite {
		c.input.Write(pass)
		if !c.noEcho {
			c.output.Write(pass)
			c.lastOut = time.Now()
			for _, o := range c.atts {
				o.send(pass)
			}
		}
	}
	c.mu.Unlock()
	return len(p), nil
}

func (a *fakeAttachment) Break() error {
	a.c.mu.Lock()
	defer a.c.mu.Unlock()
	if a.mode != ReadWrite {
		return fmt.Errorf("%w: read-only", ErrNotPermitted)
	}
	a.c.breaks++
	return nil
}

func (a *fakeAttachment) Mode() Mode {
	a.c.mu.Lock()
	defer a.c.mu.Unlock()
	return a.mode
}

func (a *fakeAttachment) end(cause error) {
	a.once.Do(func() {
		c := a.c
		c.mu.Lock()
		for i, o := range c.atts {
			if o == a {
				c.atts = append(c.atts[:i], c.atts[i+1:]...)
				break
			}
		}
		if c.writer == a {
			c.writer = nil
		}
		a.cause = cause
		if c.b.notices {
			select {
			case a.out <- []byte("\r\n[" + cause.Error() + "]\r\n"):
			default:
			}
		}
		c.mu.Unlock()
		close(a.done)
	})
}

func (a *fakeAttachment) Close() error {
	a.end(errors.New("closed"))
	return nil
}

func (a *fakeAttachment) Done() <-chan struct{} { return a.done }

func (a *fakeAttachment) Cause() error {
	select {
	case <-a.done:
		return a.cause
	default:
		return nil
	}
}
