package migrate

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/solgate/solgate/conserver/config"
)

var update = flag.Bool("update", false, "rewrite testdata/golden/*.golden from the current output")

// needFile reads a file a Debian package installs. Missing, it skips the
// test locally and fails it in CI (SOLGATE_REQUIRE_INTEROP=1, set by
// .ci/run, which installs the package).
func needFile(t *testing.T, path, pkg string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err == nil {
		return data
	}
	if os.Getenv("SOLGATE_REQUIRE_INTEROP") != "" {
		t.Fatalf("%v: install Debian's %s (see .ci/run)", err, pkg)
	}
	t.Skipf("%v: Debian's %s is not installed; skipping (set SOLGATE_REQUIRE_INTEROP=1 to fail instead)", err, pkg)
	return nil
}

// load writes the result as a main config file and loads it with
// config.Load, secrets included: each placeholder file is created holding
// its own base name, so tests can tell which file a console reads.
func load(t *testing.T, r *Result) *config.Config {
	t.Helper()
	dir := t.TempDir()
	for _, s := range r.Secrets {
		if !strings.HasPrefix(s.Path, os.TempDir()) {
			t.Fatalf("secret %s is not in a temporary directory (set Options.SecretDir to t.TempDir())", s.Path)
		}
		if err := os.WriteFile(s.Path, []byte(filepath.Base(s.Path)+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	p := filepath.Join(dir, "solgate.toml")
	if err := os.WriteFile(p, r.TOML(), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := config.Load(p)
	if err != nil {
		t.Fatalf("config.Load rejects the import: %v\n%s", err, numbered(r.TOML()))
	}
	if len(c.Warnings) > 0 {
		t.Errorf("config.Load warns about the import: %s", strings.Join(c.Warnings, "\n"))
	}
	return c
}

// loadSkipSecrets is load without creating the secret files, for fuzzing.
func loadSkipSecrets(t *testing.T, dir string, r *Result) (*config.Config, error) {
	p := filepath.Join(dir, "solgate.toml")
	if err := os.WriteFile(p, r.TOML(), 0o600); err != nil {
		t.Fatal(err)
	}
	return config.LoadWith(p, config.Options{SkipSecrets: true})
}

func numbered(b []byte) string {
	var out strings.Builder
	for i, l := range strings.Split(string(b), "\n") {
		fmt.Fprintf(&out, "%4d %s\n", i+1, l)
	}
	return out.String()
}

func compareGolden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o640); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if bytes.Equal(got, want) {
		return
	}
	gl, wl := strings.Split(string(got), "\n"), strings.Split(string(want), "\n")
	for i := 0; i < len(gl) || i < len(wl); i++ {
		var g, w string
		if i < len(gl) {
			g = gl[i]
		}
		if i < len(wl) {
			w = wl[i]
		}
		if g != w {
			t.Fatalf("%s differs at line %d:\n got %q\nwant %q\n(go test -update rewrites it)", path, i+1, g, w)
		}
	}
}

// entries counts the [[console]] entries of a translation.
func entries(r *Result) int {
	return bytes.Count(r.TOML(), []byte("\n[[console]]"))
}
