package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func runImportCmd(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errb bytes.Buffer
	err = run(context.Background(), append([]string{"import"}, args...), &out, &errb)
	return out.String(), errb.String(), err
}

// TestImportThenCheck imports a conserver.cf and a conman.conf, saves the
// output with its secret files, and runs solgate check on it.
func TestImportThenCheck(t *testing.T) {
	t.Parallel()
	// An unknown workaround: conserver drops the setting, ConMan the console.
	for _, tc := range []struct{ format, text, consoles string }{
		{"conserver", "default * { master localhost; type ipmi; username admin; password pw1; }\n" +
			"console node1 { host node1-bmc; }\nconsole node2 { host node2-bmc; }\nconsole node3 { host node3-bmc; password pw2; }\n" +
			"console sh { type exec; exec /bin/sh; }\nconsole bad { type ipmi; host x; ipmiworkaround nosuch; }\n" +
			"console node4 { type exec; exec \"ipmitool -I lan -H node4-bmc -U admin -P 'pw 3' sol activate\"; }\n" +
			"console node5 { type exec; exec \"ipmiconsole -h node5-bmc -u admin -p pw1 -W solport\"; }\n" +
			"console sol { type exec; exec \"ipmitool -I lanplus -H sol-bmc -P 'pw 4' sol activate | logger\"; }\n",
			"6 node[1-5],bad"},
		{"conman", "global ipmiopts=\"U:admin,P:pw1\"\nconsole name=\"node1\" dev=\"ipmi:node1-bmc\"\nconsole name=\"node2\" dev=\"ipmi:node2-bmc\"\n" +
			"console name=\"node3\" dev=\"ipmi:node3-bmc\" ipmiopts=\"P:pw2\"\nconsole name=\"ts\" dev=\"ts:7001\"\nconsole name=\"bad\" dev=\"ipmi:x\" ipmiopts=\"W:nosuch\"\n",
			"3 node[1-3]"},
	} {
		t.Run(tc.format, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			src := filepath.Join(dir, "old.conf")
			if err := os.WriteFile(src, []byte(tc.text), 0o600); err != nil {
				t.Fatal(err)
			}
			out, errb, err := runImportCmd(t, tc.format, src, "--secret-dir", dir)
			if err != nil {
				t.Fatalf("import: %v\n%s", err, errb)
			}
			if !strings.Contains(errb, "warning: old.conf:6: console ") || strings.Count(errb, "\n") != 1 {
				t.Errorf("stderr should hold the one warning:\n%s", errb)
			}
			if strings.Contains(out, "pw1") || strings.Contains(out, "pw2") || strings.Contains(out, "pw 3") || strings.Contains(out, "pw 4") {
				t.Errorf("a password is in the output:\n%s", out)
			}
			if !strings.Contains(out, `name = "node[1-2]"`) || !strings.Contains(out, `bmc = "{name}-bmc"`) {
				t.Errorf("node1 and node2 are not folded:\n%s", out)
			}
			for _, f := range []string{"bmc.pass", "bmc-2.pass", "bmc-3.pass"} {
				if err := os.WriteFile(filepath.Join(dir, f), []byte("x\n"), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			cfgPath := filepath.Join(dir, "solgate.toml")
			if err := os.WriteFile(cfgPath, []byte(out), 0o600); err != nil {
				t.Fatal(err)
			}
			cout, cerr, err := runCheckCmd(t, "-c", cfgPath)
			if err != nil {
				t.Fatalf("check of the import: %v\n%s\n%s", err, cerr, out)
			}
			if !strings.Contains(cout, "consoles:       "+tc.consoles+"\n") {
				t.Errorf("check summary:\n%s", cout)
			}
		})
	}
}

func TestImportOutputFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	src := filepath.Join(dir, "conman.conf")
	os.WriteFile(src, []byte("console name=\"a\" dev=\"ipmi:a-bmc\"\n"), 0o600)
	dst := filepath.Join(dir, "out.toml")
	out, errb, err := runImportCmd(t, "conman", src, "-o", dst)
	if err != nil || out != "" || !strings.Contains(errb, "1 consoles imported") {
		t.Fatalf("import -o: %v, stdout %q, stderr %q", err, out, errb)
	}
	st, err := os.Stat(dst)
	if err != nil || st.Mode().Perm() != 0o640 {
		t.Fatalf("output file: %v, %v", st, err)
	}
	if _, _, err := runImportCmd(t, "conman", src, "-o", dst); exitCodeOf(err) != 1 || !strings.Contains(err.Error(), "exists") {
		t.Errorf("second import -o over an existing file: %v", err)
	}
}

func TestImportErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.cf")
	os.WriteFile(bad, []byte("console a {\n  host x\n}\n"), 0o600)
	for _, tc := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"conserver", bad}, 1, bad + ":3: want ';' after the value of host, not '}'"},
		{[]string{"conserver", filepath.Join(dir, "missing")}, 1, "no such file"},
		{[]string{"xcat", bad}, 2, `unknown format "xcat"`},
		{[]string{"conserver"}, 2, "want a format"},
	} {
		_, _, err := runImportCmd(t, tc.args...)
		if exitCodeOf(err) != tc.code || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%v: %v (code %d), want code %d and %q", tc.args, err, exitCodeOf(err), tc.code, tc.msg)
		}
	}
	if out, _, err := runImportCmd(t, "--help"); exitCodeOf(err) != 0 || out != "" {
		t.Errorf("--help: %v", err)
	}
}
