package main

import (
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

func sortedLines(s string) []string {
	l := strings.Split(strings.TrimSuffix(s, "\n"), "\n")
	if s == "" {
		l = nil
	}
	sort.Strings(l)
	return l
}

func TestGrepCommand(t *testing.T) {
	dir, _ := writeTestLogs(t)
	tests := []struct {
		name string
		args []string
		code int
		want []string
	}{
		{"plain text across a flush", []string{"Kernel panic - not syncing"}, 0,
			[]string{"node1 2026-11-23T10:30:00.000Z Kernel panic - not syncing: Fatal exception"}},
		{"hostlist", []string{`line 17[89]$`, "node[1-2]"}, 0,
			[]string{"node2 2026-11-23T12:58:00.000Z node2 line 178", "node2 2026-11-23T12:59:00.000Z node2 line 179"}},
		{"time range", []string{`line`, "node2", "--since", "2026-11-23T12:00:00Z", "--until", "2026-11-23T12:02:00Z"}, 0,
			[]string{"node2 2026-11-23T12:00:00.000Z node2 line 120", "node2 2026-11-23T12:01:00.000Z node2 line 121"}},
		{"event", []string{"cycle by"}, 0, []string{"node1 2026-11-23T11:00:00.000Z ! power cycle by alice: ok"}},
		{"ignore case", []string{"-i", "KERNEL PANIC", "node1"}, 0,
			[]string{"node1 2026-11-23T10:30:00.000Z Kernel panic - not syncing: Fatal exception"}},
		{"carriage returns applied", []string{"^progress"}, 0, []string{"node1 2026-11-23T11:30:00.000Z progress 100%"}},
		{"partial last line", []string{"login: $"}, 0, []string{"node1 2026-11-23T12:59:00.000Z node1 login: "}},
		{"no match", []string{"no such text"}, 1, nil},
		{"quiet", []string{"-q", "boot message"}, 0, nil},
		{"missing console", []string{"line", "node[2-3]"}, 2, []string{"node2 2026-11-23T12:59:00.000Z node2 line 179"}},
		{"missing console silenced", []string{"-s", "line 179", "node[2-3]"}, 0, []string{"node2 2026-11-23T12:59:00.000Z node2 line 179"}},
		{"bad pattern", []string{"("}, 2, nil},
		{"bad hostlist", []string{"x", "node[1-"}, 2, nil},
		{"no pattern", []string{}, 2, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"grep", "--log-dir", dir}, tt.args...)
			out, errb, code := runCmd(t, args...)
			if code != tt.code {
				t.Fatalf("exit %d, want %d; stderr %s", code, tt.code, errb)
			}
			got := sortedLines(out)
			if tt.name == "missing console" {
				if !strings.Contains(errb, "no log for console node3") {
					t.Fatalf("stderr %q", errb)
				}
				got = got[len(got)-1:] // node2's last line sorts last
			}
			want := append([]string(nil), tt.want...)
			sort.Strings(want)
			if strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Fatalf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
		})
	}
}

func TestGrepDamaged(t *testing.T) {
	dir, _ := writeTestLogs(t)
	segs, _ := filepath.Glob(filepath.Join(dir, "node2", "*.zst"))
	b, _ := os.ReadFile(segs[0])
	b[len(b)/2] ^= 0xff
	os.WriteFile(segs[0], b, 0o640)
	out, errb, code := runCmd(t, "grep", "--log-dir", dir, "line 179")
	if code != 2 || !strings.Contains(out, "node2 line 179") || !strings.Contains(errb, "offset") {
		t.Fatalf("exit %d, out %q, stderr %q", code, out, errb)
	}
}
