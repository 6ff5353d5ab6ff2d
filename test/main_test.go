package test

import (
	"os"
	"testing"

	"github.com/solgate/solgate/test/internal/testkit"
)

// solgate is cmd/solgate, built once per test run (with -race when the
// tests run with it).
var solgate = &testkit.Binary{Pkg: "../cmd/solgate", Race: raceEnabled, Prefix: "solgate-test-bin-"}

func TestMain(m *testing.M) {
	code := m.Run()
	solgate.Cleanup()
	os.Exit(code)
}

// solgateBin builds cmd/solgate once per test run (with -race when the
// tests run with it) and returns the binary's path.
func solgateBin(t testing.TB) string {
	t.Helper()
	return solgate.Path(t)
}
