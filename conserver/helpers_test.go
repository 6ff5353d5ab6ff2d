package conserver

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/solgate/solgate/conserver/config"
	"github.com/solgate/solgate/ipmilan/bmcsim"
	"github.com/solgate/solgate/logstore"
)

const simPassword = "s3cret-for-tests"

// sim is an in-process simulated BMC on a loopback port.
type sim struct {
	*bmcsim.BMC
	Addr   string
	pc     net.PacketConn
	cancel context.CancelFunc
	done   chan error
}

func startSim(t testing.TB, cfg bmcsim.Config) *sim {
	t.Helper()
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return serveSim(t, pc, cfg)
}

func serveSim(t testing.TB, pc net.PacketConn, cfg bmcsim.Config) *sim {
	t.Helper()
	if cfg.Users == nil {
		cfg.Users = []bmcsim.User{{Name: "admin", Password: simPassword, MaxPriv: bmcsim.PrivAdmin}}
	}
	if cfg.SOL.Hostname == "" {
		cfg.SOL.Hostname = "simnode"
	}
	b := bmcsim.New(cfg)
	ctx, cancel := context.WithCancel(context.Background())
	s := &sim{BMC: b, Addr: pc.LocalAddr().String(), pc: pc, cancel: cancel, done: make(chan error, 1)}
	go func() { s.done <- b.Serve(ctx, pc) }()
	t.Cleanup(s.stop)
	return s
}

func (s *sim) stop() {
	if s.cancel == nil {
		return
	}
	s.cancel()
	<-s.done
	s.pc.Close()
	s.cancel = nil
}

// testEnv is a configuration directory, a log store and a manager.
type testEnv struct {
	t      testing.TB
	dir    string
	path   string
	store  *logstore.Store
	m      *Manager
	logBuf *syncBuffer
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// consoleSpec is one [[console]] of a test configuration.
type consoleSpec struct {
	name, bmc string
	extra     string // more TOML lines for the entry
}

// testConfig writes a configuration: the consoles, users alice (admin:
// everything), bob (read and write), carol (read only), with the server
// lines given.
func testConfig(dir, server string, consoles []consoleSpec, access string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "[server]\nlog_dir = %q\nstate_dir = %q\nreload_interval = \"0\"\n", filepath.Join(dir, "log"), filepath.Join(dir, "state"))
	if !strings.Contains(server, "reconnect_") {
		b.WriteString("reconnect_min = \"50ms\"\nreconnect_max = \"500ms\"\nreconnect_stable = \"2s\"\n")
	}
	b.WriteString(server + "\n")
	b.WriteString("[defaults]\nuser = \"admin\"\npassword_file = \"bmc.pass\"\ncipher_suite = 17\n\n")
	for _, c := range consoles {
		fmt.Fprintf(&b, "[[console]]\nname = %q\nbmc = %q\n%s\n", c.name, c.bmc, c.extra)
	}
	b.WriteString("[[user]]\nname = \"alice\"\ngroups = [\"admins\"]\n\n[[user]]\nname = \"bob\"\n\n[[user]]\nname = \"carol\"\n\n")
	if access == "" {
		access = "[[access]]\nconsoles = \"*\"\nread = [\"@all\"]\nwrite = [\"@admins\", \"bob\"]\npower = [\"@admins\"]\n"
	}
	b.WriteString(access)
	return b.String()
}

// newEnv writes the configuration and starts a manager on it.
func newEnv(t testing.TB, server string, consoles []consoleSpec, o Options, setup ...func(*Manager)) *testEnv {
	t.Helper()
	dir := t.TempDir()
	e := &testEnv{t: t, dir: dir, path: filepath.Join(dir, "solgate.toml"), logBuf: &syncBuffer{}}
	must(t, os.WriteFile(filepath.Join(dir, "bmc.pass"), []byte(simPassword+"\n"), 0o600))
	must(t, os.MkdirAll(filepath.Join(dir, "state"), 0o700))
	e.write(testConfig(dir, server, consoles, ""))
	cfg, err := config.Load(e.path)
	must(t, err)
	store, err := logstore.Open(cfg.Server.LogDir, logstore.Options{})
	must(t, err)
	e.store = store
	o.Store = store
	o.StateDir = cfg.Server.StateDir
	if o.Logger == nil {
		o.Logger = newTestLogger(e.logBuf)
	}
	if o.IPMITimeout == 0 {
		o.IPMITimeout = 300 * time.Millisecond
	}
	m, err := NewManager(o)
	must(t, err)
	e.m = m
	for _, f := range setup {
		f(m)
	}
	if _, err := m.Apply(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := m.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		store.Close()
		if t.Failed() {
			t.Logf("daemon log:\n%s", e.logBuf.String())
		}
	})
	return e
}

func (e *testEnv) write(text string) {
	e.t.Helper()
	tmp := e.path + ".tmp"
	must(e.t, os.WriteFile(tmp, []byte(text), 0o640))
	must(e.t, os.Rename(tmp, e.path))
}

// reload loads the configuration file again and applies it.
func (e *testEnv) reload() ApplyResult {
	e.t.Helper()
	cfg, err := config.Load(e.path)
	must(e.t, err)
	res, err := e.m.Apply(context.Background(), cfg)
	must(e.t, err)
	return res
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// waitFor polls cond for up to d.
func waitFor(t testing.TB, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func waitState(t testing.TB, c *Console, st State, d time.Duration) {
	t.Helper()
	waitFor(t, fmt.Sprintf("%s %v (now %v: %s)", c.Name(), st, c.Status().State, c.Status().Reason), d, func() bool { return c.Status().State == st })
}

// reader collects what an attachment reads.
type reader struct {
	a    *Attachment
	mu   sync.Mutex
	b    []byte
	done chan struct{}
}

func readAll(a *Attachment) *reader {
	r := &reader{a: a, done: make(chan struct{})}
	go func() {
		defer close(r.done)
		buf := make([]byte, 4096)
		for {
			n, err := a.Read(buf)
			r.mu.Lock()
			r.b = append(r.b, buf[:n]...)
			r.mu.Unlock()
			if err == io.EOF {
				return
			}
		}
	}()
	return r
}

func (r *reader) text() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return string(r.b)
}

func (r *reader) wait(t testing.TB, want string, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !strings.Contains(r.text(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %q in the attachment's output; got %q", d, want, tailStr(r.text(), 400))
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func tailStr(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

// logText returns a console's log as lines (events included).
func logText(t testing.TB, store *logstore.Store, console string) string {
	t.Helper()
	lines, err := store.Tail(console, 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, l := range lines {
		if l.Event != "" {
			fmt.Fprintf(&b, "! %s %s\n", l.Event, l.Text)
			continue
		}
		b.Write(l.Text)
	}
	return b.String()
}

func newTestLogger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// logRaw returns a console's logged output bytes, events left out.
func logRaw(t testing.TB, store *logstore.Store, console string) string {
	t.Helper()
	lines, err := store.Tail(console, 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, l := range lines {
		if l.Event == "" {
			b.Write(l.Text)
		}
	}
	return b.String()
}
