package main

import (
	"strings"
	"testing"
	"time"

	"github.com/solgate/solgate/logstore"
)

// bootLog opens a log store in a new directory with node1's Writer, and
// at, which runs f with the store's clock at logT0 plus d; close closes
// them, so that solgate log can read the directory.
func bootLog(t *testing.T) (dir string, w *logstore.Writer, at func(d time.Duration, f func()), close func()) {
	t.Helper()
	dir = t.TempDir()
	clk := &logClock{t: logT0}
	s, err := logstore.Open(dir, logstore.Options{Now: clk.now})
	if err != nil {
		t.Fatal(err)
	}
	w, err = s.Writer("node1")
	if err != nil {
		t.Fatal(err)
	}
	at = func(d time.Duration, f func()) {
		clk.set(logT0.Add(d))
		f()
	}
	return dir, w, at, func() { w.Close(); s.Close() }
}

func TestLogBoots(t *testing.T) {
	dir, w, atT, closeLog := bootLog(t)
	at := func(min int, f func()) { atT(time.Duration(min)*time.Minute, f) }
	at(0, func() { w.Write([]byte("old boot output\r\n")) })
	at(1, func() { w.Event(logstore.EventBoot, "power cycle by alice") })
	at(2, func() { w.Write([]byte("second boot\r\n")) })
	at(3, func() { w.EventBeforeLine(logstore.EventBoot, `kernel banner seen: "] Linux version "`) })
	at(3, func() { w.Write([]byte("[    0.000000] Linux version 6.1\r\nthird boot\r\n")) })
	closeLog()

	out, stderr, code := runCmd(t, "log", "--log-dir", dir, "node1", "--list-boots")
	if code != 0 {
		t.Fatalf("--list-boots: exit %d: %s", code, stderr)
	}
	want := "  -2  2026-11-23T10:00:00.000Z  2026-11-23T10:01:00.000Z  (before the first recorded boot)\n" +
		"  -1  2026-11-23T10:01:00.000Z  2026-11-23T10:03:00.000Z  power cycle by alice\n" +
		"   0  2026-11-23T10:03:00.000Z  (current)                 kernel banner seen: \"] Linux version \"\n"
	if out != want {
		t.Fatalf("--list-boots:\n%s\nwant:\n%s", out, want)
	}
	out, _, code = runCmd(t, "log", "--log-dir", dir, "node1", "--boot", "-1")
	if code != 0 || out != "2026-11-23T10:01:00.000Z ! boot power cycle by alice\n2026-11-23T10:02:00.000Z second boot\n" {
		t.Fatalf("--boot -1: exit %d:\n%s", code, out)
	}
	out, _, _ = runCmd(t, "log", "--log-dir", dir, "node1", "--boot", "0")
	if !strings.HasPrefix(out, "2026-11-23T10:03:00.000Z ! boot kernel banner") || !strings.Contains(out, "Linux version 6.1\n") || !strings.Contains(out, "third boot") || strings.Contains(out, "second boot") {
		t.Fatalf("--boot 0:\n%s", out)
	}
	out, _, _ = runCmd(t, "log", "--log-dir", dir, "node1", "--boot", "1")
	if out != "2026-11-23T10:00:00.000Z old boot output\n" {
		t.Fatalf("--boot 1:\n%s", out)
	}
	if _, stderr, code := runCmd(t, "log", "--log-dir", dir, "node1", "--boot", "-3"); code != 1 || !strings.Contains(stderr, "no boot -3 (the log holds 3") {
		t.Fatalf("--boot -3: exit %d: %s", code, stderr)
	}
	if _, _, code := runCmd(t, "log", "--log-dir", dir, "node1", "--boot", "-1", "--list-boots"); code != 2 {
		t.Fatalf("--boot with --list-boots: exit %d", code)
	}
}

// A boot marked at its firmware banner starts with the screen the banner
// is on: --boot 0 begins with the BIOS's first line, and the boot before
// ends with what the node printed before it rebooted.
func TestLogBootStartsWithItsScreen(t *testing.T) {
	dir, w, atT, closeLog := bootLog(t)
	at := func(sec int, f func()) { atT(time.Duration(sec)*time.Second, f) }
	at(0, func() { w.Write([]byte("Kernel panic - not syncing\r\n")) })
	at(30, func() { w.Write([]byte("\x1b[0m\x1b[2J\x1b[HBIOS v1.0\r\n")) })
	at(32, func() { w.EventBeforeLine(logstore.EventBoot, `firmware banner seen: "to enter setup"`) })
	at(32, func() { w.Write([]byte("Press F2 to enter setup\r\n")) })
	closeLog()
	out, stderr, code := runCmd(t, "log", "--log-dir", dir, "node1", "--list-boots")
	want := "  -1  2026-11-23T10:00:00.000Z  2026-11-23T10:00:30.000Z  (before the first recorded boot)\n" +
		"   0  2026-11-23T10:00:30.000Z  (current)                 firmware banner seen: \"to enter setup\"\n"
	if code != 0 || out != want {
		t.Fatalf("--list-boots: exit %d %s\n%s\nwant:\n%s", code, stderr, out, want)
	}
	out, _, _ = runCmd(t, "log", "--log-dir", dir, "node1", "--boot", "0", "--plain")
	if !strings.HasPrefix(out, "2026-11-23T10:00:30.000Z BIOS v1.0\n") || strings.Contains(out, "panic") {
		t.Fatalf("--boot 0:\n%s", out)
	}
	out, _, _ = runCmd(t, "log", "--log-dir", dir, "node1", "--boot", "-1")
	if out != "2026-11-23T10:00:00.000Z Kernel panic - not syncing\n" {
		t.Fatalf("--boot -1:\n%s", out)
	}
}
