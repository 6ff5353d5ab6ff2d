package test

import (
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/solgate/solgate"

// TestImportsPointDown enforces the layering in STYLE/README: cmd ->
// sshgw, conserver -> ipmilan, logstore. ipmilan and logstore import
// nothing of ours but their own subpackages; sshgw reaches consoles only
// through the interface it declares, so it imports nothing of ours either.
func TestImportsPointDown(t *testing.T) {
	allowed := map[string][]string{ // package prefix -> module prefixes it may depend on
		"ipmilan":   {"ipmilan"},
		"logstore":  {"logstore"},
		"conserver": {"conserver", "ipmilan", "logstore"},
		"sshgw":     {"sshgw"},
	}
	out, err := exec.Command("go", "list", "-f", `{{.ImportPath}}{{range .Deps}} {{.}}{{end}}`, module+"/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	checked := 0
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		pkg := strings.TrimPrefix(f[0], module+"/")
		top := strings.SplitN(pkg, "/", 2)[0]
		ok, ruled := allowed[top]
		if !ruled {
			continue
		}
		checked++
		for _, dep := range f[1:] {
			d, ours := strings.CutPrefix(dep, module+"/")
			if !ours {
				continue
			}
			dtop := strings.SplitN(d, "/", 2)[0]
			good := false
			for _, a := range ok {
				good = good || dtop == a
			}
			if !good {
				t.Errorf("%s depends on %s: imports must point down (%s may use only %v)", pkg, d, top, ok)
			}
		}
	}
	if checked == 0 {
		t.Fatal("go list returned none of our packages")
	}
}

// TestTestkitImports keeps test/internal/testkit a leaf that only tests
// use: it imports nothing of ours (it is shared by the test packages, so
// what it imported would be under every test), and no package's non-test
// code depends on it (Go's internal rule already keeps it inside test/).
func TestTestkitImports(t *testing.T) {
	const testkit = module + "/test/internal/testkit"
	out, err := exec.Command("go", "list", "-f", `{{.ImportPath}}{{range .Deps}} {{.}}{{end}}`, module+"/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	seen := false
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		if f[0] == testkit {
			seen = true
			for _, dep := range f[1:] {
				if strings.HasPrefix(dep, module+"/") {
					t.Errorf("%s depends on %s: it may use only the standard library", testkit, dep)
				}
			}
			continue
		}
		for _, dep := range f[1:] {
			if dep == testkit {
				t.Errorf("%s (non-test code) depends on %s: only tests may", f[0], testkit)
			}
		}
	}
	if !seen {
		t.Fatalf("go list did not list %s", testkit)
	}
}
