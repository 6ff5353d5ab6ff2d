package test

import (
	"fmt"
	"os"
	"os/exec"
	"testing"
)

// needTool returns the path of a peer program, skipping the test when it
// is missing, or failing it when SOLGATE_REQUIRE_INTEROP is set.
func needTool(t testing.TB, name string) string {
	t.Helper()
	if p := findTool(name); p != "" {
		return p
	}
	if os.Getenv("SOLGATE_REQUIRE_INTEROP") != "" {
		t.Fatalf("%s not installed and SOLGATE_REQUIRE_INTEROP is set (install it: see .ci/run)", name)
	}
	t.Skipf("%s not installed; skipping interop test (set SOLGATE_REQUIRE_INTEROP=1 to fail instead)", name)
	return ""
}

// findTool returns the path of a program in PATH or the sbin directories
// (FreeIPMI installs there), or "" when it is not installed.
func findTool(name string) string {
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, dir := range []string{"/usr/sbin", "/sbin", "/usr/local/sbin"} {
		if p := dir + "/" + name; isExec(p) {
			return p
		}
	}
	return ""
}

func isExec(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

// skipOrFail skips a test that needs something this machine lacks, or
// fails it when SOLGATE_REQUIRE_INTEROP is set.
func skipOrFail(t *testing.T, format string, a ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, a...)
	if os.Getenv("SOLGATE_REQUIRE_INTEROP") != "" {
		t.Fatalf("%s, and SOLGATE_REQUIRE_INTEROP is set", msg)
	}
	t.Skipf("%s; skipping (set SOLGATE_REQUIRE_INTEROP=1 to fail instead)", msg)
}
