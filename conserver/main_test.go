package conserver

import (
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/solgate/solgate/logstore"
)

// TestMain creates logstore's process-wide zstd decoder outside any
// testing/synctest bubble (made inside one, its goroutines would belong
// to that bubble and every later read outside it would fail), and checks
// after all tests that every goroutine the tests started has ended: each
// test shuts its manager down, which must stop every console's goroutines
// (supervisor, input pump, ipmilan session) and every attachment's.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "conserver-test-")
	if err != nil {
		panic(err)
	}
	s, err := logstore.Open(dir, logstore.Options{})
	if err == nil {
		if w, err := s.Writer("warmup"); err == nil {
			w.Write([]byte("warm up\r\n"))
			w.Close()
			s.Tail("warmup", 1)
		}
		s.Close()
	}
	os.RemoveAll(dir)
	base := runtime.NumGoroutine()
	code := m.Run()
	if code == 0 {
		if leaked := waitGoroutines(base, 10*time.Second); leaked != "" {
			fmt.Fprintf(os.Stderr, "goroutines left after the tests (started with %d):\n%s\n", base, leaked)
			code = 1
		}
	}
	os.Exit(code)
}

// waitGoroutines waits for the goroutine count to fall back to base and
// returns the stacks of the ones left over, if it does not.
func waitGoroutines(base int, d time.Duration) string {
	deadline := time.Now().Add(d)
	for runtime.NumGoroutine() > base {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			n := runtime.Stack(buf, true)
			var ours []string
			for _, g := range strings.Split(string(buf[:n]), "\n\n") {
				if strings.Contains(g, "solgate/") && !strings.Contains(g, "waitGoroutines") {
					ours = append(ours, g)
				}
			}
			if len(ours) == 0 {
				return "" // runtime or library goroutines winding down
			}
			return strings.Join(ours, "\n\n")
		}
		time.Sleep(20 * time.Millisecond)
	}
	return ""
}
