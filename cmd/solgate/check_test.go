package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func runCheckCmd(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errb bytes.Buffer
	err = run(context.Background(), append([]string{"check"}, args...), &out, &errb)
	return out.String(), errb.String(), err
}

func exitCodeOf(err error) int {
	if errors.Is(err, flag.ErrHelp) {
		return 0 // as main: --help is no failure
	}
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	if err != nil {
		return -1
	}
	return 0
}

// TestCheckExample runs check on etc/solgate.toml. Its secrets live under
// /etc/solgate, so --no-secrets; the config package's tests also load a
// copy with the secrets in place.
func TestCheckExample(t *testing.T) {
	t.Parallel()
	out, errb, err := runCheckCmd(t, "--no-secrets", "-c", "../../etc/solgate.toml")
	if err != nil {
		t.Fatalf("check of the example: %v\nstderr: %s", err, errb)
	}
	for _, want := range []string{"../../etc/solgate.toml: OK, 3 files, secrets not read", "consoles:       46 mgmt[1-2],node[001-040],gpu[01-04]", "users:          3", "access rules:   4", "syslog targets: 1"} {
		if !strings.Contains(out, want) {
			t.Errorf("summary lacks %q:\n%s", want, out)
		}
	}
}

func writeConfig(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o750); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return filepath.Join(dir, "solgate.toml")
}

func TestCheckErrors(t *testing.T) {
	t.Parallel()
	path := writeConfig(t, map[string]string{
		"solgate.toml":  "[defaults]\nbmc = \"{name}-bmc\"\nsteal = \"maybe\"\n\n[[console]]\nname = \"n[1-4]\"\n",
		"conf.d/b.toml": "[[console]]\nname = \"n[4-5]\"\nprivilige = \"user\"\n",
	})
	out, errb, err := runCheckCmd(t, "-c", path)
	if code := exitCodeOf(err); code != 1 {
		t.Fatalf("exit code %d (%v), want 1", code, err)
	}
	if out != "" {
		t.Errorf("stdout on failure: %q", out)
	}
	dir := filepath.Dir(path)
	for _, want := range []string{
		path + `:3: [defaults] steal: "maybe" is not one of never, when-idle, always`,
		filepath.Join(dir, "conf.d/b.toml") + `:2: console n4: defined twice; first at ` + path + `:5`,
		filepath.Join(dir, "conf.d/b.toml") + `:3: unknown key "privilige" in [[console]] (did you mean "privilege"?)`,
	} {
		if !strings.Contains(errb, want) {
			t.Errorf("stderr lacks %q:\n%s", want, errb)
		}
	}
	if !strings.Contains(err.Error(), "3 errors") {
		t.Errorf("error = %q", err)
	}
}

func TestCheckDump(t *testing.T) {
	t.Parallel()
	path := writeConfig(t, map[string]string{
		"solgate.toml": "[defaults]\nbmc = \"{name}-bmc\"\npassword_file = \"bmc.pass\"\n\n[[console]]\nname = \"n[1-4]\"\n",
		"bmc.pass":     "Sup3rSecret\n",
	})
	out, errb, err := runCheckCmd(t, "-c", path, "--dump", "n[2-3]")
	if err != nil {
		t.Fatalf("%v: %s", err, errb)
	}
	if strings.Count(out, "[[console]]") != 2 || !strings.Contains(out, `name = "n2"`) || strings.Contains(out, `name = "n1"`) {
		t.Errorf("dump of n[2-3]:\n%s", out)
	}
	if strings.Contains(out, "Sup3rSecret") || !strings.Contains(out, `password = "[redacted]" # file `) {
		t.Errorf("secret handling in dump:\n%s", out)
	}
	out, _, err = runCheckCmd(t, "--dump", "-c", path)
	if err != nil || strings.Count(out, "[[console]]") != 4 || !strings.Contains(out, "[server]") || strings.Contains(out, "Sup3rSecret") {
		t.Errorf("full dump (%v):\n%s", err, out)
	}
	if _, _, err := runCheckCmd(t, "--dump", "-c", path, "n9"); exitCodeOf(err) != 1 || !strings.Contains(err.Error(), "no such console: n9") {
		t.Errorf("dump of an unknown console: %v", err)
	}
}

func TestCheckUsage(t *testing.T) {
	t.Parallel()
	_, errb, err := runCheckCmd(t, "--help")
	if exitCodeOf(err) != 0 || !strings.Contains(errb, "Examples:") || !strings.Contains(errb, "--no-secrets") {
		t.Errorf("--help: %v\n%s", err, errb)
	}
	if _, _, err := runCheckCmd(t, "--bogus"); exitCodeOf(err) != 2 {
		t.Errorf("bad flag: %v", err)
	}
	if _, _, err := runCheckCmd(t, "n[1-2]"); exitCodeOf(err) != 2 {
		t.Errorf("HOSTS without --dump: %v", err)
	}
	if _, _, err := runCheckCmd(t, "-c", "/nonexistent/solgate.toml"); exitCodeOf(err) != 1 || !strings.Contains(err.Error(), "1 error") {
		t.Errorf("missing file: %v", err)
	}
}
