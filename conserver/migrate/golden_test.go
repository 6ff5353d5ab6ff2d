package migrate

import (
	"path/filepath"
	"strings"
	"testing"
)

// debianExamples are the configurations Debian's packages install. The test
// reads them where the packages put them; they are not copied into this
// repository. /etc files are conffiles: a locally edited one changes the
// output, and the golden file then says so.
var debianExamples = []struct {
	format, path, pkg, golden string
	skipped                   int // consoles that are not IPMI
}{
	{"conserver", "/usr/share/doc/conserver-server/examples/conserver.cf", "conserver-server", "conserver-examples-conserver.cf", 8},
	{"conserver", "/usr/share/doc/conserver-server/examples/test.cf", "conserver-server", "conserver-examples-test.cf", 4},
	{"conserver", "/etc/conserver/conserver.cf", "conserver-server", "conserver-etc-conserver.cf", 0},
	{"conman", "/etc/conman.conf", "conman", "conman-etc-conman.conf", 0},
}

// TestDebianExamples imports each example file Debian ships, compares the
// output with testdata/golden (go test -update rewrites it) and loads it
// with config.Load.
func TestDebianExamples(t *testing.T) {
	for _, ex := range debianExamples {
		t.Run(ex.golden, func(t *testing.T) {
			data := needFile(t, ex.path, ex.pkg)
			imp := Conserver
			if ex.format == "conman" {
				imp = ConMan
			}
			r, err := imp(ex.path, data, Options{SecretDir: t.TempDir()})
			if err != nil {
				t.Fatal(err)
			}
			if len(r.Skipped) != ex.skipped {
				t.Errorf("%d consoles not imported, want %d: %+v", len(r.Skipped), ex.skipped, r.Skipped)
			}
			if len(r.Warnings) > 0 {
				t.Errorf("warnings on a stock example: %v", r.Warnings)
			}
			load(t, r)
			// The golden file must not depend on the temporary secret dir.
			r2, _ := imp(ex.path, data, Options{})
			compareGolden(t, filepath.Join("testdata/golden", ex.golden+".golden"), r2.TOML())
		})
	}
}

// TestDebianConserverExample checks what the import says about the richest
// example, beyond the golden file: every console is named with why it was
// left out, and the break sequences, access rules and groups are listed.
func TestDebianConserverExample(t *testing.T) {
	const p = "/usr/share/doc/conserver-server/examples/conserver.cf"
	data := needFile(t, p, "conserver-server")
	r, err := Conserver(p, data, Options{})
	if err != nil {
		t.Fatal(err)
	}
	out := string(r.TOML())
	for _, want := range []string{
		`web1.conserver.com (conserver.cf:46): type host (terminal server) "ts1.conserver.com:2200"`, // portbase 2000 + portinc 100 * port 2
		`ldap1.conserver.com (conserver.cf:55): type host (terminal server) "ts2.conserver.com:2007"`,
		`ssh (conserver.cf:60): type exec "ssh" with 1 argument (not shown)`,
		`ttya (conserver.cf:68): type device (serial port) "/dev/ttya"`,
		`conserver.cf:18: break 4 ("+\\d+\\d+")`,
		`conserver.cf:19: break 5 ("\\033c")`,
		`access "*" (allowed, trusted)`,
		`# group sysadmin (conserver.cf:77): bryan, todd, dave`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

// TestGoldenGenerated pins the output format on generated configurations
// with IPMI consoles of every kind (the Debian examples have none).
func TestGoldenGenerated(t *testing.T) {
	t.Parallel()
	text, _, _ := genConserver(40)
	r, err := Conserver("/etc/conserver/conserver.cf", []byte(text), Options{})
	if err != nil {
		t.Fatal(err)
	}
	compareGolden(t, "testdata/golden/generated-conserver.golden", r.TOML())
	text, _, _ = genConMan(40)
	r, err = ConMan("/etc/conman.conf", []byte(text), Options{})
	if err != nil {
		t.Fatal(err)
	}
	compareGolden(t, "testdata/golden/generated-conman.golden", r.TOML())
}
