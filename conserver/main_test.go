package conserver

import (
	"os"
	"testing"

	"github.com/solgate/solgate/logstore"
)

// TestMain creates logstore's process-wide zstd decoder outside any
// testing/synctest bubble: made inside one, its goroutines would belong
// to that bubble and every later read outside it would fail.
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
	os.Exit(m.Run())
}
