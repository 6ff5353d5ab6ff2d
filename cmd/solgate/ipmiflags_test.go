package main

import (
	"bytes"
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/solgate/solgate/ipmilan"
)

// parseConnFlags parses args into connFlags as power and sol do.
func parseConnFlags(t *testing.T, args ...string) (*connFlags, *flag.FlagSet) {
	t.Helper()
	fs := newFlagSet("test", "", io.Discard)
	var cf connFlags
	cf.register(fs)
	if _, err := parseFlags(fs, args); err != nil {
		t.Fatalf("parse %q: %v", args, err)
	}
	cf.set = setFlags(fs)
	return &cf, fs
}

// TestConnFlagsCheckBeforeContact: what is the same for every host is
// found by check, which contacts nothing, so that a template such as
// {nam}-bmc never becomes one DNS lookup per host.
func TestConnFlagsCheckBeforeContact(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--bmc", "{nam}-bmc"}, `--bmc: bmc template "{nam}-bmc": unknown placeholder "{nam}" ({name} is the only one)`},
		{[]string{"--bmc", "{name}-bmc}"}, `{name} is the only placeholder, and braces are allowed only in it`},
		{[]string{"-u", "a-user-name-of-17"}, "is 17 bytes; IPMI allows at most 16"},
		{[]string{"-C", "4"}, "--cipher-suite 4: want 0 (automatic: 17, else 3) or one of 1, 2, 3, 6, 7, 8, 11, 12, 15, 16, 17"},
		{[]string{"-C", "-1"}, "--cipher-suite -1: want 0"},
		{[]string{"-C", "16"}, "--cipher-suite 16 has no integrity or no encryption"},
		{[]string{"--auth-type", "password"}, "--auth-type password is IPMI 1.5: it needs --interface lan"},
		{[]string{"--auth-type", "md2", "-I", "lan"}, `--auth-type "md2": want md5, password or none`},
		{[]string{"--timeout", "5ms"}, "--timeout 5ms: want 10ms to 1m0s"},
		{[]string{"--retries", "21"}, "--retries 21: want 0 to 20"},
		{[]string{"--bmc", "{name}-bmc", "-c", "x.toml"}, "--bmc and -c"},
	} {
		cf, _ := parseConnFlags(t, c.args...)
		err := cf.check(3)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: %v, want %q", c.args, err, c.want)
		}
	}
	cf, _ := parseConnFlags(t, "--bmc", "{name}.ipmi:623", "-u", "sixteen-bytes-ok", "-C", "17")
	if err := cf.check(3); err != nil {
		t.Errorf("valid flags: %v", err)
	}
}

// TestInsecureFlagHelpMatches: --insecure allows what its help says and
// nothing else. Suite 0 is not among them: --cipher-suite 0 stays the
// automatic choice even with --insecure, and the help does not claim it.
func TestInsecureFlagHelpMatches(t *testing.T) {
	_, fs := parseConnFlags(t)
	usage := fs.Lookup("insecure").Usage
	if strings.Contains(usage, "suite 0") || strings.Contains(usage, "auth none") {
		t.Errorf("--insecure help claims more than it does: %q", usage)
	}
	for _, want := range []string{"1, 2, 6, 7, 11, 15, 16", "--auth-type password or none"} {
		if !strings.Contains(usage, want) {
			t.Errorf("--insecure help %q lacks %q", usage, want)
		}
	}
	pw := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(pw, []byte("secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	base := func(args ...string) (ipmilan.Config, error) {
		cf, _ := parseConnFlags(t, append([]string{"--password-file", pw}, args...)...)
		if err := cf.check(1); err != nil {
			return ipmilan.Config{}, err
		}
		return cf.base(nil, io.Discard)
	}
	c, err := base("--insecure", "-C", "0")
	if err != nil || c.ForceSuiteZero || c.CipherSuite != 0 {
		t.Errorf("--insecure -C 0: %+v %v: want the automatic choice, not suite 0", c, err)
	}
	for _, suite := range []string{"1", "2", "6", "7", "11", "15", "16"} {
		if _, err := base("-C", suite); err == nil {
			t.Errorf("-C %s without --insecure accepted", suite)
		}
		if c, err := base("-C", suite, "--insecure"); err != nil || !c.Insecure || c.ForceSuiteZero {
			t.Errorf("-C %s --insecure: %+v %v", suite, c, err)
		}
	}
	if c, err := base("-C", "3"); err != nil || c.Insecure {
		t.Errorf("-C 3: %+v %v", c, err)
	}
	if c, err := base("-I", "lan", "--auth-type", "password", "--insecure"); err != nil || c.AuthType != ipmilan.AuthPassword || !c.Insecure {
		t.Errorf("lan password --insecure: %+v %v", c, err)
	}
	// Without --auth-type, IPMI 1.5 stays MD5 even with --insecure.
	if c, err := base("-I", "lan", "--insecure"); err != nil || c.AuthType != ipmilan.AuthMD5 {
		t.Errorf("lan --insecure: auth type %v %v, want md5", c.AuthType, err)
	}
}

// TestReadSecretRefusesOddFiles: --password-file /dev/zero or a FIFO is
// refused at once (the config package tests the FIFO that would block).
func TestReadSecretRefusesOddFiles(t *testing.T) {
	var warn bytes.Buffer
	if _, _, err := readSecret("/dev/zero", "", "", nil, &warn); err == nil || !strings.Contains(err.Error(), "character device") {
		t.Errorf("/dev/zero: %v", err)
	}
	if _, ok, err := readSecret("", "SOLGATE_TEST_NO_SUCH_VAR", "BMC password", strings.NewReader(""), &warn); ok || err != nil {
		t.Errorf("nothing given: ok %v err %v, want not ok", ok, err)
	}
}
