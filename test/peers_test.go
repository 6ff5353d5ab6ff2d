package test

import (
	"fmt"
	"os"
	"testing"

	"github.com/solgate/solgate/test/internal/testkit"
)

// needTool returns the path of a peer program, skipping the test when it
// is missing, or failing it when SOLGATE_REQUIRE_INTEROP is set.
func needTool(t testing.TB, name string) string {
	t.Helper()
	if p := testkit.FindTool(name); p != "" {
		return p
	}
	if os.Getenv("SOLGATE_REQUIRE_INTEROP") != "" {
		t.Fatalf("%s not installed and SOLGATE_REQUIRE_INTEROP is set (install it: see .ci/run)", name)
	}
	t.Skipf("%s not installed; skipping interop test (set SOLGATE_REQUIRE_INTEROP=1 to fail instead)", name)
	return ""
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
