package config

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/*/*.golden from the current output")

// TestGolden loads each testdata/golden/CASE/solgate.toml and compares the
// effective configuration (Dump) with testdata/golden/CASE.golden.
func TestGolden(t *testing.T) {
	cases, _ := filepath.Glob("testdata/golden/*/solgate.toml")
	if len(cases) == 0 {
		t.Fatal("no golden cases")
	}
	for _, p := range cases {
		name := filepath.Base(filepath.Dir(p))
		t.Run(name, func(t *testing.T) {
			c, err := Load(p)
			if err != nil {
				t.Fatal(err)
			}
			var out bytes.Buffer
			if err := c.Dump(&out); err != nil {
				t.Fatal(err)
			}
			compareGolden(t, filepath.Join("testdata/golden", name+".golden"), out.Bytes())
		})
	}
}

// TestGoldenErrors does the same for invalid configs and their error lists.
func TestGoldenErrors(t *testing.T) {
	cases, _ := filepath.Glob("testdata/errors/*/solgate.toml")
	if len(cases) == 0 {
		t.Fatal("no error cases")
	}
	for _, p := range cases {
		name := filepath.Base(filepath.Dir(p))
		t.Run(name, func(t *testing.T) {
			_, err := Load(p)
			if err == nil {
				t.Fatal("no error")
			}
			compareGolden(t, filepath.Join("testdata/errors", name+".golden"), []byte(err.Error()+"\n"))
		})
	}
}

func compareGolden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, got, 0o640); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
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
}
