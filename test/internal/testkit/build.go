package testkit

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

// Binary is a Go command built once per test run (the first Path call
// builds it; the others wait for that build and share its result, a
// failure included), into a temporary directory that Cleanup removes.
// The fields are read at that first call and must not change after.
type Binary struct {
	Pkg    string // the package to build, relative to the test's directory ("../cmd/solgate")
	Race   bool   // build with -race
	Prefix string // of the temporary directory's name, to tell whose it is

	once sync.Once
	dir  string
	err  error
}

// Path builds the command if this run has not yet and returns the
// binary's path. A build that fails fails the test with go build's
// output.
func (b *Binary) Path(t testing.TB) string {
	t.Helper()
	name := filepath.Base(b.Pkg)
	b.once.Do(func() {
		b.dir, b.err = os.MkdirTemp("", b.Prefix)
		if b.err != nil {
			return
		}
		args := []string{"build", "-o", filepath.Join(b.dir, name)}
		if b.Race {
			args = append(args, "-race")
		}
		cmd := exec.Command("go", append(args, b.Pkg)...)
		if out, err := cmd.CombinedOutput(); err != nil {
			b.err = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if b.err != nil {
		t.Fatal(b.err)
	}
	return filepath.Join(b.dir, name)
}

// Cleanup removes the binary's directory, if Path made one. TestMain
// calls it after m.Run.
func (b *Binary) Cleanup() {
	if b.dir != "" {
		os.RemoveAll(b.dir)
	}
}
