package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/solgate/solgate/logstore"
)

// logClock is a settable clock for writing test logs.
type logClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *logClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *logClock) set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

var logT0 = time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)

// writeTestLogs writes logs for a few consoles and returns the folder and
// the raw bytes written to node1.
func writeTestLogs(t *testing.T) (string, []byte) {
	t.Helper()
	dir := t.TempDir()
	clk := &logClock{t: logT0}
	s, err := logstore.Open(dir, logstore.Options{Now: clk.now, SegmentAge: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	w1, _ := s.Writer("node1")
	w2, _ := s.Writer("node2")
	var raw []byte
	write := func(p string) {
		raw = append(raw, p...)
		w1.Write([]byte(p))
	}
	for i := range 180 { // three hours, a line a minute
		clk.set(logT0.Add(time.Duration(i) * time.Minute))
		switch i {
		case 30:
			write("\x1b[1mKernel panic\x1b[0m - not sync")
			w1.Flush()
			write("ing: Fatal exception\r\n")
		case 60:
			w1.Event(logstore.EventPower, "cycle by alice: ok")
		case 90:
			write("progress 10%\rprogress 100%\r\n")
		default:
			write(fmt.Sprintf("[%4d.000000] boot message %d\r\n", i, i))
		}
		fmt.Fprintf(w2, "node2 line %d\n", i)
		if i%10 == 0 {
			w1.Flush()
			w2.Flush()
		}
	}
	write("node1 login: ")
	return dir, raw
}

func runCmd(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	err := run(context.Background(), args, &out, &errb)
	code := 0
	var ee *exitError
	if errors.As(err, &ee) {
		code = ee.code
		if ee.msg != "" {
			errb.WriteString(ee.msg + "\n")
		}
	} else if err != nil {
		t.Fatalf("%v: %v", args, err)
	}
	return out.String(), errb.String(), code
}

func TestParseWhen(t *testing.T) {
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	loc := time.Local
	tests := []struct {
		in   string
		want time.Time
	}{
		{"", time.Time{}},
		{"now", now},
		{"1h", now.Add(-time.Hour)},
		{"30m", now.Add(-30 * time.Minute)},
		{"2d", now.Add(-48 * time.Hour)},
		{"1w", now.Add(-7 * 24 * time.Hour)},
		{"1h30m", now.Add(-90 * time.Minute)},
		{"2026-11-20T10:00:00Z", time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)},
		{"2026-11-20T10:00:00.123+01:00", time.Date(2026, 11, 20, 9, 0, 0, 123e6, time.UTC)},
		{"2026-11-20 10:00", time.Date(2026, 11, 20, 10, 0, 0, 0, loc)},
		{"2026-11-20 10:00:30", time.Date(2026, 11, 20, 10, 0, 30, 0, loc)},
		{"2026-11-20", time.Date(2026, 11, 20, 0, 0, 0, 0, loc)},
	}
	for _, tt := range tests {
		got, err := parseWhen(tt.in, now)
		if err != nil || !got.Equal(tt.want) {
			t.Errorf("parseWhen(%q) = %v, %v, want %v", tt.in, got, err, tt.want)
		}
	}
	if got, err := parseWhen("10:30", now); err != nil || got.Hour() != 10 || got.Minute() != 30 {
		t.Errorf("parseWhen(10:30) = %v, %v", got, err)
	}
	for _, bad := range []string{"yesterday", "1x", "h", "2026-13-01", "-1h", "1h-"} {
		if _, err := parseWhen(bad, now); err == nil || !strings.Contains(err.Error(), "RFC 3339") {
			t.Errorf("parseWhen(%q) error = %v", bad, err)
		}
	}
}

func TestLogRaw(t *testing.T) {
	dir, raw := writeTestLogs(t)
	out, errb, code := runCmd(t, "log", "node1", "--raw", "--log-dir", dir)
	if code != 0 || out != string(raw) {
		t.Fatalf("log --raw: code %d, %d bytes (want %d)\nstderr: %s", code, len(out), len(raw), errb)
	}
}

func TestLogText(t *testing.T) {
	dir, _ := writeTestLogs(t)
	out, errb, code := runCmd(t, "log", "--log-dir", dir, "node1", "--since", "2026-11-23T10:29:00Z", "--until", "2026-11-23T10:31:00Z")
	want := "2026-11-23T10:29:00.000Z [  29.000000] boot message 29\n" +
		"2026-11-23T10:30:00.000Z \x1b[1mKernel panic\x1b[0m - not syncing: Fatal exception\n"
	if code != 0 || out != want {
		t.Fatalf("log: code %d\n%q\nwant\n%q\nstderr %s", code, out, want, errb)
	}
	out, _, _ = runCmd(t, "log", "--log-dir", dir, "node1", "--plain", "--since", "2026-11-23T10:30:00Z", "--until", "2026-11-23T11:31:00Z")
	lines := strings.Split(out, "\n")
	for _, want := range []string{
		"2026-11-23T10:30:00.000Z Kernel panic - not syncing: Fatal exception",
		"2026-11-23T11:00:00.000Z ! power cycle by alice: ok",
		"2026-11-23T11:30:00.000Z progress 100%",
	} {
		found := false
		for _, l := range lines {
			found = found || l == want
		}
		if !found {
			t.Errorf("--plain lacks %q", want)
		}
	}
	out, _, code = runCmd(t, "log", "--log-dir", dir, "node1", "-n", "2")
	if code != 0 || out != "2026-11-23T12:59:00.000Z [ 179.000000] boot message 179\n2026-11-23T12:59:00.000Z node1 login: \n" {
		t.Fatalf("-n 2: %q", out)
	}
}

func TestLogErrors(t *testing.T) {
	dir, _ := writeTestLogs(t)
	for _, tt := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"log", "--log-dir", dir}, 2, "exactly one HOST"},
		{[]string{"log", "--log-dir", dir, "a", "b"}, 2, "exactly one HOST"},
		{[]string{"log", "--log-dir", dir, "node1", "--raw", "--plain"}, 2, "exclude each other"},
		{[]string{"log", "--log-dir", dir, "node1", "--since", "soon"}, 2, "--since: bad time"},
		{[]string{"log", "--log-dir", dir, "node1", "--since", "1h", "--until", "2h"}, 2, "is not after"},
		{[]string{"log", "--log-dir", dir, "node1", "-f", "--until", "1h"}, 2, "--follow and --until"},
		{[]string{"log", "--log-dir", dir, "../etc"}, 2, "bad console name"},
		{[]string{"log", "--log-dir", dir, "node9"}, 1, "no log for console node9"},
		{[]string{"log", "--log-dir", filepath.Join(dir, "missing"), "node1"}, 1, "log directory"},
		{[]string{"log", "--log-dir", dir, "-c", "x.toml", "node1"}, 2, "not both"},
		{[]string{"log", "-c", filepath.Join(dir, "missing.toml"), "node1"}, 2, "config"},
	} {
		_, errb, code := runCmd(t, tt.args...)
		if code != tt.code || !strings.Contains(errb, tt.msg) {
			t.Errorf("%q: code %d, stderr %q; want %d and %q", tt.args, code, errb, tt.code, tt.msg)
		}
	}
}

func TestLogDirFromConfig(t *testing.T) {
	dir, _ := writeTestLogs(t)
	cfg := filepath.Join(t.TempDir(), "solgate.toml")
	os.WriteFile(cfg, fmt.Appendf(nil, "[server]\nlog_dir = %q\n", dir), 0o600)
	out, errb, code := runCmd(t, "log", "node2", "-c", cfg, "-n", "1")
	if code != 0 || out != "2026-11-23T12:59:00.000Z node2 line 179\n" {
		t.Fatalf("log -c: code %d, %q, %s", code, out, errb)
	}
}

func TestLogDamaged(t *testing.T) {
	dir, _ := writeTestLogs(t)
	segs, _ := filepath.Glob(filepath.Join(dir, "node2", "*.zst"))
	b, _ := os.ReadFile(segs[0])
	b[len(b)/2] ^= 0xff
	os.WriteFile(segs[0], b, 0o640)
	out, errb, code := runCmd(t, "log", "--log-dir", dir, "node2")
	if code != 1 || !strings.Contains(errb, "warning") || !strings.Contains(out, "node2 line 179") {
		t.Fatalf("damaged log: code %d, stderr %q, %d bytes out", code, errb, len(out))
	}
}

func TestLogFollow(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s, err := logstore.Open(dir, logstore.Options{SegmentBytes: 300})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	w, _ := s.Writer("n1")
	for i := range 20 {
		fmt.Fprintf(w, "old %d\r\n", i)
	}
	w.Flush()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"log", "n1", "-f", "--plain", "--log-dir", dir}, pw, &bytes.Buffer{})
		pw.Close()
	}()
	var got []string
	lines := make(chan string)
	go func() {
		defer close(lines)
		buf := make([]byte, 0, 4096)
		tmp := make([]byte, 4096)
		for {
			n, err := pr.Read(tmp)
			buf = append(buf, tmp[:n]...)
			for {
				i := bytes.IndexByte(buf, '\n')
				if i < 0 {
					break
				}
				lines <- string(buf[:i])
				buf = buf[i+1:]
			}
			if err != nil {
				return
			}
		}
	}()
	next := func() string {
		select {
		case l := <-lines:
			return l[25:] // without the time
		case <-time.After(10 * time.Second):
			t.Fatalf("no line; so far %q", got)
		}
		return ""
	}
	for range 10 { // the last 10 lines first
		got = append(got, next())
	}
	if got[0] != "old 10" || got[9] != "old 19" {
		t.Fatalf("first lines %q", got)
	}
	for i := range 15 { // across rotations
		fmt.Fprintf(w, "new %d %s\r\n", i, strings.Repeat("=", 60))
		w.Flush()
		if l := next(); !strings.HasPrefix(l, fmt.Sprintf("new %d ", i)) {
			t.Fatalf("followed line %q, want new %d", l, i)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("log -f returned %v", err)
	}
}

// FuzzParseWhen: any string is a time or a clear error, never a panic.
func FuzzParseWhen(f *testing.F) {
	for _, s := range []string{"1h", "2d", "1h30m", "now", "2026-11-20 10:00", "2026-11-20T10:00:00Z", "10:30", "99999999999w", ""} {
		f.Add(s)
	}
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, s string) {
		tm, err := parseWhen(s, now)
		if err != nil && !strings.Contains(err.Error(), "bad time") {
			t.Fatalf("parseWhen(%q) error %v", s, err)
		}
		if err == nil && strings.TrimSpace(s) != "" && tm.IsZero() {
			t.Fatalf("parseWhen(%q) = zero time without error", s)
		}
	})
}

// truncateLast cuts the newest segment of console in dir inside its last
// frame and returns its name.
func truncateLast(t *testing.T, dir, console string) string {
	t.Helper()
	segs, _ := filepath.Glob(filepath.Join(dir, console, "*.zst"))
	if len(segs) == 0 {
		t.Fatal("no segments")
	}
	last := segs[len(segs)-1]
	st, _ := os.Stat(last)
	if err := os.Truncate(last, st.Size()-30); err != nil {
		t.Fatal(err)
	}
	return filepath.Base(last)
}

// TestLogTruncated: a last segment cut short (live with its writer gone,
// or sealed) is named on stderr with exit 1 after what is intact, not
// printed as a healthy short log.
func TestLogTruncated(t *testing.T) {
	t.Run("live", func(t *testing.T) {
		dir, _ := writeTestLogs(t)
		name := truncateLast(t, dir, "node2")
		out, errb, code := runCmd(t, "log", "--log-dir", dir, "node2")
		if code != 1 || !strings.Contains(errb, name) || !strings.Contains(errb, "cut short") || !strings.Contains(out, "node2 line 0\n") {
			t.Fatalf("log of a truncated live segment: exit %d, stderr %q, %d bytes out", code, errb, len(out))
		}
		out, errb, code = runCmd(t, "grep", "--log-dir", dir, "line 1$", "node2")
		if code != 2 || !strings.Contains(errb, name) || !strings.Contains(out, "node2 line 1\n") {
			t.Fatalf("grep: exit %d, stderr %q, out %q", code, errb, out)
		}
	})
	t.Run("sealed", func(t *testing.T) {
		dir := t.TempDir()
		clk := &logClock{t: logT0}
		s, err := logstore.Open(dir, logstore.Options{Now: clk.now, SegmentAge: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		w, _ := s.Writer("n")
		for i := range 200 {
			fmt.Fprintf(w, "sealed line %d\r\n", i)
		}
		w.Flush()
		clk.set(logT0.Add(2 * time.Hour))
		w.Flush() // rotates: the segment is sealed in the background
		segs, _ := filepath.Glob(filepath.Join(dir, "n", "*.zst"))
		deadline := time.Now().Add(30 * time.Second)
		for {
			head := make([]byte, 200)
			f, _ := os.Open(segs[0])
			f.Read(head)
			f.Close()
			if bytes.Contains(head, []byte(`"sealed":true`)) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("segment not sealed")
			}
			time.Sleep(10 * time.Millisecond)
		}
		s.Close()
		name := truncateLast(t, dir, "n")
		out, errb, code := runCmd(t, "log", "--log-dir", dir, "n", "--raw")
		if code != 1 || !strings.Contains(errb, name) || !strings.Contains(errb, "cut short") || !strings.HasPrefix(out, "sealed line 0\r\n") {
			t.Fatalf("log of a truncated sealed segment: exit %d, stderr %q, out %.40q", code, errb, out)
		}
	})
}

func TestLogEmptyTime(t *testing.T) {
	dir, _ := writeTestLogs(t)
	for _, args := range [][]string{
		{"log", "node1", "--since", ""},
		{"log", "node1", "--until", " "},
		{"log", "node1", "--since="},
		{"grep", "x", "--since", ""},
		{"grep", "x", "node1", "--until="},
	} {
		_, errb, code := runCmd(t, append(args, "--log-dir", dir)...)
		if code != 2 || !strings.Contains(errb, "empty time") {
			t.Errorf("%q: exit %d, stderr %q; want 2 and \"empty time\"", args, code, errb)
		}
	}
}

// TestLogStrayFiles: a file in a console's folder that is not a segment
// is named once on stderr, not silently skipped; it is not damage.
func TestLogStrayFiles(t *testing.T) {
	dir, _ := writeTestLogs(t)
	stray := filepath.Join(dir, "node2", "20261123T100000Z.zst.orig")
	os.WriteFile(stray, []byte("junk"), 0o640)
	for _, args := range [][]string{{"log", "node2", "-n", "1"}, {"grep", "line 179", "node[1-2]"}} {
		out, errb, code := runCmd(t, append(args, "--log-dir", dir)...)
		if code != 0 || strings.Count(errb, stray) != 1 || !strings.Contains(errb, "not a segment") || !strings.Contains(out, "node2 line 179") {
			t.Errorf("%q: exit %d, stderr %q, out %q", args, code, errb, out)
		}
	}
}

// TestLogUnreadableSegment: one segment with mode 000 does not hide the
// others: log and grep print what is readable, name the segment, exit
// non-zero. Root reads mode 000 files, so as root the commands run as
// nobody in a child process.
func TestLogUnreadableSegment(t *testing.T) {
	dir, _ := writeTestLogs(t)
	segs, _ := filepath.Glob(filepath.Join(dir, "node2", "*.zst"))
	if len(segs) < 3 {
		t.Fatalf("%d segments, want several", len(segs))
	}
	bad := segs[1]
	run := func(args ...string) (string, string, int) { return runCmd(t, args...) }
	if os.Geteuid() == 0 {
		run = asNobody(t, dir)
	}
	if err := os.Chmod(bad, 0); err != nil {
		t.Fatal(err)
	}
	out, errb, code := run("log", "--log-dir", dir, "node2")
	if code != 1 || !strings.Contains(errb, filepath.Base(bad)) || !strings.Contains(errb, "permission denied") ||
		!strings.Contains(out, "node2 line 0\n") || !strings.Contains(out, "node2 line 179\n") {
		t.Fatalf("log with an unreadable segment: exit %d, stderr %q, %d bytes out", code, errb, len(out))
	}
	out, errb, code = run("grep", "--log-dir", dir, "line 1(0|79)$", "node2")
	if code != 2 || !strings.Contains(errb, "permission denied") || strings.Count(out, "\n") != 2 {
		t.Fatalf("grep with an unreadable segment: exit %d, stderr %q, out %q", code, errb, out)
	}
}

const cliHelperEnv = "SOLGATE_TEST_CLI_ARGS"

// TestCLIHelper runs solgate with the arguments in $SOLGATE_TEST_CLI_ARGS
// (separated by US, 0x1f) in a child process (see asNobody).
func TestCLIHelper(t *testing.T) {
	a := os.Getenv(cliHelperEnv)
	if a == "" {
		return
	}
	err := run(context.Background(), strings.Split(a, "\x1f"), os.Stdout, os.Stderr)
	code := 0
	var ee *exitError
	if errors.As(err, &ee) {
		code = ee.code
		if ee.msg != "" {
			fmt.Fprintln(os.Stderr, ee.msg)
		}
	} else if err != nil {
		fmt.Fprintln(os.Stderr, err)
		code = 99
	}
	os.Exit(code)
}

// asNobody makes dir readable to everyone and returns a runner of solgate
// commands as user nobody (65534), through a copy of the test binary.
func asNobody(t *testing.T, dir string) func(args ...string) (string, string, int) {
	t.Helper()
	filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err == nil {
			if fi.IsDir() {
				os.Chmod(p, 0o755)
			} else {
				os.Chmod(p, 0o644)
			}
		}
		return nil
	})
	for p := filepath.Dir(dir); p != "/" && p != "."; p = filepath.Dir(p) {
		if st, err := os.Stat(p); err == nil && st.Mode().Perm()&0o005 != 0o005 {
			os.Chmod(p, st.Mode().Perm()|0o005) // t.TempDir's parents are 0700
		}
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "solgate.test")
	b, err := os.ReadFile(exe)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, b, 0o755); err != nil {
		t.Fatal(err)
	}
	return func(args ...string) (string, string, int) {
		t.Helper()
		var out, errb bytes.Buffer
		cmd := exec.Command(bin, "-test.run=^TestCLIHelper$")
		cmd.Env = []string{cliHelperEnv + "=" + strings.Join(args, "\x1f"), "PATH=/usr/bin:/bin", "HOME=/"}
		cmd.Stdout, cmd.Stderr = &out, &errb
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		err := cmd.Run()
		var xe *exec.ExitError
		code := 0
		if errors.As(err, &xe) {
			code = xe.ExitCode()
		} else if err != nil {
			t.Fatalf("run as nobody: %v", err)
		}
		return out.String(), errb.String(), code
	}
}
