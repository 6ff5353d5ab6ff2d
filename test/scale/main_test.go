package scale

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/solgate/solgate/test/internal/testkit"
)

// full is true under make scale (SOLGATE_SCALE=full): the sizes of the
// README's table, run one scenario at a time.
var full = os.Getenv("SOLGATE_SCALE") == "full"

// solgate is cmd/solgate, built once per run. The small sizes build it
// with -race when the tests run with it (make test), so the daemon's
// goroutines are checked under faults; the full sizes never do, their
// figures are the plain binary's.
var solgate = &testkit.Binary{Pkg: "../../cmd/solgate", Race: raceEnabled && !full, Prefix: "solgate-scale-bin-"}

func TestMain(m *testing.M) {
	code := m.Run()
	solgate.Cleanup()
	if err := writeReport(); err != nil {
		fmt.Fprintln(os.Stderr, "scale report:", err)
		code = 1
	}
	os.Exit(code)
}

// solgateBin builds cmd/solgate once per run (see solgate) and returns
// the binary's path.
func solgateBin(t testing.TB) string {
	t.Helper()
	return solgate.Path(t)
}

// scenario starts a scenario: small ones run in parallel (they mostly
// wait), full ones alone (their CPU figures must not include another's).
func scenario(t *testing.T) {
	t.Helper()
	if !full {
		t.Parallel()
	}
}

// knob returns a scenario's size: SOLGATE_SCALE_<NAME> if set, else the
// full or the small default.
func knob(name string, small, fullSize int) int {
	if v, err := strconv.Atoi(os.Getenv("SOLGATE_SCALE_" + name)); err == nil && v > 0 {
		return v
	}
	if full {
		return fullSize
	}
	return small
}

// knobDuration is knob in seconds.
func knobDuration(name string, small, fullSize time.Duration) time.Duration {
	return time.Duration(knob(name, int(small/time.Second), int(fullSize/time.Second))) * time.Second
}

// requireTool returns the path of a peer program. A missing one skips the
// test, or fails it under SOLGATE_REQUIRE_INTEROP (CI) or make scale.
func requireTool(t testing.TB, name string) string {
	t.Helper()
	if p := testkit.FindTool(name); p != "" {
		return p
	}
	skipOrFail(t, "%s not installed", name)
	return ""
}

// skipOrFail skips a test that needs what the machine lacks, or fails it
// when SOLGATE_REQUIRE_INTEROP is set or the full suite runs.
func skipOrFail(t testing.TB, format string, a ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, a...)
	if os.Getenv("SOLGATE_REQUIRE_INTEROP") != "" || full {
		t.Fatalf("%s (SOLGATE_REQUIRE_INTEROP or SOLGATE_SCALE=full is set)", msg)
	}
	t.Skipf("%s; skipping (set SOLGATE_REQUIRE_INTEROP=1 to fail instead)", msg)
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// loadAvg reads the 1-minute load average.
func loadAvg() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return -1
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return -1
	}
	v, _ := strconv.ParseFloat(f[0], 64)
	return v
}

// result is one scenario's figures for one implementation: a row half of
// the report's table.
type result struct {
	Scenario string   `json:"scenario"`
	Impl     string   `json:"impl"` // solgate or conman
	Size     string   `json:"size"`
	Figures  []string `json:"figures"`
	Target   string   `json:"target,omitempty"`
	Passed   bool     `json:"passed"`
	LoadFrom float64  `json:"load_from"`
	LoadTo   float64  `json:"load_to"`
	Took     string   `json:"took"`
	When     string   `json:"when"`
}

var (
	resultsMu sync.Mutex
	results   []result
)

// report is a scenario run being recorded: figures are added as they are
// measured, and the result is kept (and logged) when the test ends.
type report struct {
	t     *testing.T
	r     result
	start time.Time
}

func newReport(t *testing.T, scenario, impl, size, target string) *report {
	rp := &report{t: t, start: time.Now(), r: result{Scenario: scenario, Impl: impl, Size: size, Target: target, LoadFrom: loadAvg()}}
	t.Cleanup(func() {
		rp.r.LoadTo = loadAvg()
		rp.r.Passed = !t.Failed() && !t.Skipped()
		rp.r.Took = time.Since(rp.start).Round(time.Second).String()
		rp.r.When = rp.start.UTC().Format(time.RFC3339)
		t.Logf("RESULT %s [%s] %s: %s (load %.1f -> %.1f, %s)", rp.r.Scenario, rp.r.Impl, rp.r.Size,
			strings.Join(rp.r.Figures, "; "), rp.r.LoadFrom, rp.r.LoadTo, passWord(rp.r.Passed))
		if t.Skipped() {
			return
		}
		resultsMu.Lock()
		results = append(results, rp.r)
		resultsMu.Unlock()
	})
	return rp
}

func passWord(ok bool) string {
	if ok {
		return "passed"
	}
	return "FAILED"
}

// add records a figure ("what: value").
func (rp *report) add(format string, a ...any) {
	rp.r.Figures = append(rp.r.Figures, fmt.Sprintf(format, a...))
}

// writeReport appends this run's results to SOLGATE_SCALE_OUT (JSON, one
// result a line) and rewrites the Markdown table beside it from every
// result the file holds (the newest per scenario and implementation).
func writeReport() error {
	out := os.Getenv("SOLGATE_SCALE_OUT")
	if out == "" || len(results) == 0 {
		return nil
	}
	f, err := os.OpenFile(out, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	enc := json.NewEncoder(f)
	for _, r := range results {
		if err := enc.Encode(r); err != nil {
			f.Close()
			return err
		}
	}
	if err := f.Close(); err != nil {
		return err
	}
	b, err := os.ReadFile(out)
	if err != nil {
		return err
	}
	var all []result
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var r result
		if json.Unmarshal([]byte(l), &r) == nil {
			all = append(all, r)
		}
	}
	md := strings.TrimSuffix(out, filepath.Ext(out)) + ".md"
	return os.WriteFile(md, []byte(renderTable(all)), 0o644)
}

// scenarioOrder is the order of the report's rows.
var scenarioOrder = []string{"hold", "boot storm", "115200 baud", "network faults", "BMC kill and freeze",
	"kill -9", "full disk", "syslog down", "reload storm", "SSH sessions"}

// renderTable is the README's table: one row per scenario, solgate and
// ConMan side by side, with the machine.
func renderTable(all []result) string {
	newest := map[[2]string]result{}
	for _, r := range all {
		newest[[2]string{r.Scenario, r.Impl}] = r
	}
	cell := func(r result, ok bool) string {
		if !ok {
			return ""
		}
		s := strings.Join(r.Figures, "; ")
		if !r.Passed {
			s = "**failed**: " + s
		}
		return strings.ReplaceAll(s, "|", "\\|")
	}
	var b strings.Builder
	fmt.Fprintf(&b, "| scenario | size | target | solgate | ConMan 0.2.7 | load (1 min) |\n|---|---|---|---|---|---|\n")
	for _, sc := range scenarioOrder {
		s, sok := newest[[2]string{sc, "solgate"}]
		c, cok := newest[[2]string{sc, "conman"}]
		if !sok && !cok {
			continue
		}
		size, target := s.Size, s.Target
		if !sok {
			size, target = c.Size, c.Target
		} else if cok && c.Size != s.Size {
			size += " (ConMan: " + c.Size + ")"
		}
		load := ""
		if sok {
			load = fmt.Sprintf("%.1f-%.1f", s.LoadFrom, s.LoadTo)
		}
		if cok {
			load += fmt.Sprintf(" (ConMan %.1f-%.1f)", c.LoadFrom, c.LoadTo)
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s |\n", sc, size, target, cell(s, sok), cell(c, cok), strings.TrimSpace(load))
	}
	fmt.Fprintf(&b, "\n%s\n", machine())
	return b.String()
}

// machine describes where the figures were taken.
func machine() string {
	model := ""
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				model = strings.TrimSpace(v)
				break
			}
		}
	}
	mem := ""
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		if f := strings.Fields(string(b)); len(f) >= 2 {
			if kb, err := strconv.Atoi(f[1]); err == nil {
				mem = fmt.Sprintf(", %d GiB RAM", (kb+1<<19)>>20)
			}
		}
	}
	kernel, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	return fmt.Sprintf("Machine: %d cores (%s)%s, Linux %s, %s; the simulators, the daemon under test and other work share it.",
		runtime.NumCPU(), model, mem, strings.TrimSpace(string(kernel)), runtime.Version())
}

// keepEvidence copies the given directories to SOLGATE_SCALE_KEEP (when
// set) before the test's temporary directories are removed.
func keepEvidence(t *testing.T, dirs ...string) {
	to := os.Getenv("SOLGATE_SCALE_KEEP")
	if to == "" {
		return
	}
	for _, d := range dirs {
		dst := filepath.Join(to, t.Name(), filepath.Base(d))
		if err := os.MkdirAll(filepath.Dir(dst), 0o700); err == nil {
			if out, err := exec.Command("cp", "-a", d, dst).CombinedOutput(); err != nil {
				t.Logf("keep %s: %v: %s", d, err, out)
			}
		}
	}
	t.Logf("evidence kept in %s", filepath.Join(to, t.Name()))
}
