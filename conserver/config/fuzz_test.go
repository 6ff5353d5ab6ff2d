package config

import (
	"bytes"
	"strings"
	"testing"
)

// FuzzParse feeds arbitrary main and conf.d files through decoding and
// validation. Properties: no panic; a rejected config has located errors
// of bounded length; an accepted one has safe console names that differ by
// more than case, dumps, and loads to the same hash again.
func FuzzParse(f *testing.F) {
	f.Add([]byte(baseConfig), []byte(""))
	f.Add([]byte("[server]\nlisten = \":2222\"\n[defaults]\nbmc = \"{name}-bmc\"\n[[console]]\nname = \"n[1-3]\"\ncipher_suite = 17\n"),
		[]byte("[[console]]\nname = \"rack[1-2]-n[1-2]\"\nbmc = \"10.0.[1-2].[1-2]\"\n"))
	f.Add([]byte("[[user]]\nname = \"a\"\ngroups = [\"g\"]\n[[access]]\nconsoles = \"*\"\nread = [\"@g\"]\ndeny = [\"a\"]\n"), []byte("[[syslog]]\naddress = \"tcp://h\"\n"))
	f.Add([]byte("[[console]]\nname = \"a\"\nbmc = \"b\"\nsteal = \"x\"\nbogus = 1\n"), []byte("[server]\n"))
	f.Add([]byte("[[console]\n"), []byte("x = \n"))
	opts := Options{SkipSecrets: true, LookupEnv: func(string) (string, bool) { return "", false }, maxConsoles: 5000}
	f.Fuzz(func(t *testing.T, main, extra []byte) {
		srcs := []source{{name: "solgate.toml", data: main, main: true}, {name: "conf.d/x.toml", data: extra}}
		c, err := build("solgate.toml", srcs, opts)
		if err != nil {
			el, ok := err.(*ErrorList)
			if !ok || el.Len() == 0 {
				t.Fatalf("error %T %v is not a non-empty *ErrorList", err, err)
			}
			for _, e := range el.Errors {
				if e.File == "" || e.Msg == "" {
					t.Fatalf("unlocated error %+v", e)
				}
				if len(e.Msg) > maxMessage+40 || len(e.Console) > 240 {
					t.Fatalf("uncut error of %d bytes", len(e.Error()))
				}
			}
			return
		}
		folded := map[string]bool{}
		for _, x := range c.Consoles {
			if folded[strings.ToLower(x.Name)] {
				t.Fatalf("accepted names differing only in case: %s", x.Name)
			}
			folded[strings.ToLower(x.Name)] = true
			if err := checkConsoleName(x.Name); err != nil {
				t.Fatalf("accepted unsafe name: %v", err)
			}
			if err := CheckBMC(x.BMC); err != nil {
				t.Fatalf("accepted bad BMC: %v", err)
			}
		}
		var out bytes.Buffer
		if err := c.Dump(&out); err != nil {
			t.Fatal(err)
		}
		c2, err := build("solgate.toml", srcs, opts)
		if err != nil || !c.Equal(c2) {
			t.Fatalf("second load differs: %v", err)
		}
		if d := Compare(c, c2); !d.Empty() {
			t.Fatalf("diff of identical loads: %+v", d)
		}
	})
}
