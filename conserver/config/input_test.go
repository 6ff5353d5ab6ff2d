package config

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// loadWithin runs LoadWith in a goroutine and fails the test if it takes
// longer than d: the files under test used to hang it.
func loadWithin(t *testing.T, d time.Duration, path string, opts Options) (*Config, error) {
	t.Helper()
	type result struct {
		c   *Config
		err error
	}
	ch := make(chan result, 1)
	go func() {
		c, err := LoadWith(path, opts)
		ch <- result{c, err}
	}()
	select {
	case r := <-ch:
		return r.c, r.err
	case <-time.After(d):
		t.Fatalf("LoadWith(%s) still running after %v", path, d)
	}
	return nil, nil
}

// TestFilesThatAreNotWhatTheySeem: a password, K_g or CA file, or the main
// file, that is a FIFO, a socket, a device or huge is refused at once with
// an error that says what it is, instead of hanging (FIFO) or reading
// without end (/dev/zero).
func TestFilesThatAreNotWhatTheySeem(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	huge := filepath.Join(dir, "huge")
	f, err := os.OpenFile(huge, os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	// Sparse: 22 GiB that take no disk space.
	if err := f.Truncate(22 << 30); err != nil {
		t.Fatal(err)
	}
	f.Close()
	cases := []struct {
		path, want string
	}{
		{fifo, "is a FIFO (named pipe), not a regular file"},
		{sock, "is a socket, not a regular file"},
		{"/dev/zero", "is a character device, not a regular file"},
		{dir, "is a directory, not a regular file"},
		{huge, "is 22 GiB, larger than the 4 KiB such a file may be"},
	}
	for _, c := range cases {
		for _, key := range []string{"password_file", "kg_file"} {
			main := filepath.Join(t.TempDir(), "solgate.toml")
			if err := os.WriteFile(main, []byte("[[console]]\nname = \"n1\"\nbmc = \"b\"\n"+key+" = \""+c.path+"\"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := loadWithin(t, 10*time.Second, main, Options{})
			if err == nil || !strings.Contains(err.Error(), key+" "+c.path+": "+c.want) {
				t.Errorf("%s = %s: error %v, want %q", key, c.path, err, c.want)
			}
		}
	}
	// The main file itself (solgate check -c FIFO).
	for _, c := range cases[:4] {
		_, err := loadWithin(t, 10*time.Second, c.path, Options{})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("main file %s: error %v, want %q", c.path, err, c.want)
		}
	}
	// CA files.
	main := filepath.Join(t.TempDir(), "solgate.toml")
	if err := os.WriteFile(main, []byte("[server]\ntrusted_user_ca_files = [\""+fifo+"\"]\n[[syslog]]\naddress = \"tls://127.0.0.1:6514\"\ntls_ca_file = \"/dev/zero\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = loadWithin(t, 10*time.Second, main, Options{})
	if err == nil || !strings.Contains(err.Error(), "trusted_user_ca_files: "+fifo+": is a FIFO") ||
		!strings.Contains(err.Error(), "tls_ca_file: /dev/zero: is a character device") {
		t.Errorf("CA files: %v", err)
	}
}

// TestReadFileLimitFIFOWithWriter: even with a writer holding the FIFO
// open (so that a blocking open would succeed), nothing is read from it.
func TestReadFileLimitFIFOWithWriter(t *testing.T) {
	t.Parallel()
	fifo := filepath.Join(t.TempDir(), "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		w, err := os.OpenFile(fifo, os.O_WRONLY, 0)
		if err != nil {
			return
		}
		defer w.Close()
		<-ctx.Done()
	}()
	_, _, err := ReadFileLimit(fifo, 100)
	if err == nil || !strings.Contains(err.Error(), "FIFO") {
		t.Fatalf("err = %v", err)
	}
	// Unblock the writer's open if it is still waiting for a reader.
	if r, err := os.OpenFile(fifo, os.O_RDONLY|syscall.O_NONBLOCK, 0); err == nil {
		r.Close()
	}
}

// TestConfDirOddEntries: conf.d entries named *.toml that are not files
// are reported, not skipped; editor droppings still are skipped.
func TestConfDirOddEntries(t *testing.T) {
	t.Parallel()
	dir := writeTree(t, map[string]string{
		"solgate.toml":        "[defaults]\nbmc = \"{name}-bmc\"\n",
		"conf.d/good.toml":    "[[console]]\nname = \"n1\"\n",
		"conf.d/.hidden.toml": "garbage [[[",
		"conf.d/dir.toml/x":   "",
	})
	cd := filepath.Join(dir, "conf.d")
	for _, l := range [][2]string{
		{"missing-target.toml", "../nowhere.toml"},
		{"loop-a.toml", "loop-b.toml"},
		{"loop-b.toml", "loop-a.toml"},
		{"linked.toml", "good.toml"}, // a link to a file is fine
	} {
		if err := os.Symlink(l[1], filepath.Join(cd, l[0])); err != nil {
			t.Fatal(err)
		}
	}
	_, err := LoadWith(filepath.Join(dir, "solgate.toml"), Options{})
	if err == nil {
		t.Fatal("no error")
	}
	got := strings.Join(errorLines(t, err), "\n")
	for _, want := range []string{
		"conf.d/dir.toml: is a directory, not a regular file",
		"conf.d/loop-a.toml: is a symbolic link loop",
		"conf.d/loop-b.toml: is a symbolic link loop",
		`conf.d/missing-target.toml: is a symbolic link to "../nowhere.toml", which does not exist`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("errors lack %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "hidden") || strings.Contains(got, "linked.toml") || strings.Contains(got, "good.toml") {
		t.Errorf("errors about entries that are fine:\n%s", got)
	}
}

// TestHostlistRepeatWarns: a name listed twice in one entry is a warning;
// the console exists once.
func TestHostlistRepeatWarns(t *testing.T) {
	t.Parallel()
	c := mustLoad(t, map[string]string{"solgate.toml": "[[console]]\nname = \"node[1-3,2]\"\nbmc = \"{name}-bmc\"\n"})
	if len(c.Consoles) != 3 {
		t.Errorf("%d consoles, want 3", len(c.Consoles))
	}
	if len(c.Warnings) != 1 || !strings.HasSuffix(c.Warnings[0], `:2: name "node[1-3,2]" lists node2 more than once`) {
		t.Errorf("warnings %q", c.Warnings)
	}
}

// TestConsoleBudgetWhileExpanding: an entry is expanded against what is
// left of the console budget, so a huge entry after others is refused
// before its names exist, with the numbers that explain it.
func TestConsoleBudgetWhileExpanding(t *testing.T) {
	t.Parallel()
	files := map[string]string{"solgate.toml": "[defaults]\nbmc = \"{name}-bmc\"\n[[console]]\nname = \"a[1-600]\"\n[[console]]\nname = \"b[1-1000000]\"\n[[console]]\nname = \"c1\"\n"}
	_, err := loadTree(t, files, Options{maxConsoles: 1000})
	if err == nil {
		t.Fatal("no error")
	}
	lines := errorLines(t, err)
	want := `solgate.toml:6: name: hostlist: "b[1-1000000]": expands to more than 400 names (the limit) (at most 1000 consoles in all; 600 are defined before this entry)`
	if len(lines) != 1 || lines[0] != want {
		t.Errorf("errors %q\nwant %q", lines, want)
	}
	// The error names the budget left (400), not the whole limit: the
	// builder asked hostlist for at most that many names, and hostlist
	// checks before producing any (TestExpandLimitBeforeExpanding there
	// counts the allocations).
	// Exactly the budget is fine; one more, in a later file, is not.
	files = map[string]string{
		"solgate.toml":  "[defaults]\nbmc = \"{name}-bmc\"\n[[console]]\nname = \"a[1-600]\"\n",
		"conf.d/b.toml": "[[console]]\nname = \"b[1-400]\"\n",
	}
	if c, err := loadTree(t, files, Options{maxConsoles: 1000}); err != nil || len(c.Consoles) != 1000 {
		t.Fatalf("1000 consoles with a budget of 1000: %v", err)
	}
	files["conf.d/c.toml"] = "[[console]]\nname = \"c1\"\n"
	if _, err := loadTree(t, files, Options{maxConsoles: 1000}); err == nil || !strings.Contains(err.Error(), "c.toml:2: name \"c1\": more than 1000 consoles in all") {
		t.Fatalf("1001 consoles: %v", err)
	}
}

// TestLongValuesCut: a huge value is cut in every message it appears in,
// not only the first.
func TestLongValuesCut(t *testing.T) {
	t.Parallel()
	big := strings.Repeat("ö", 512<<10) // 1 MiB of non-ASCII
	files := map[string]string{"solgate.toml": `
[server]
log_level = "` + big + `"
listen = "` + big + `"
[defaults]
user = "` + big + `"
bmc = "` + big + `"
[[console]]
name = "` + big + `"
bmc = "b[1-3]"
escape = "` + big + `"
quirks = ["` + big + `"]
steal = "` + big + `"
log_rotate_size = "` + big + `"
[[console]]
name = "n` + big + `[1-2]"
bmc = "` + big + `,x"
[[user]]
name = "` + big + `"
[[access]]
consoles = "` + big + `"
read = ["` + big + `"]
[[syslog]]
address = "` + big + `"
`}
	_, err := loadTree(t, files, Options{SkipSecrets: true})
	if err == nil {
		t.Fatal("no error")
	}
	lines := errorLines(t, err)
	if testing.Verbose() {
		t.Logf("errors:\n%s", strings.Join(lines, "\n"))
	}
	if len(lines) < 10 {
		t.Errorf("only %d errors:\n%s", len(lines), strings.Join(lines, "\n"))
	}
	for _, l := range lines {
		if len(l) > 600 {
			t.Errorf("%d-byte error: %.300s", len(l), l)
		}
		if !strings.Contains(l, "ö") && strings.Contains(l, `\u00f6`) {
			t.Errorf("non-ASCII escaped: %.300s", l)
		}
	}
}

// TestInsecureKeysAllowed: with their insecure_* key, weak suites and the
// clear-text auth type load, and say so in the Console.
func TestInsecureKeysAllowed(t *testing.T) {
	t.Parallel()
	c := mustLoad(t, map[string]string{"solgate.toml": "[defaults]\nbmc = \"{name}\"\ncipher_suite = 2\ninsecure_cipher_suite = true\n" +
		"[[console]]\nname = \"a\"\n[[console]]\nname = \"b\"\ncipher_suite = 17\n" +
		"[[console]]\nname = \"c\"\ninterface = \"lan\"\nauth_type = \"password\"\ninsecure_auth_password = true\n"})
	a, _ := c.Console("a")
	b, _ := c.Console("b")
	cc, _ := c.Console("c")
	if a.CipherSuite != 2 || !a.InsecureCipherSuite {
		t.Errorf("a: suite %d insecure %v", a.CipherSuite, a.InsecureCipherSuite)
	}
	if b.CipherSuite != 17 || b.InsecureCipherSuite {
		t.Errorf("b: suite %d insecure %v (an override with a strong suite is not insecure)", b.CipherSuite, b.InsecureCipherSuite)
	}
	if cc.AuthType != "password" {
		t.Errorf("c: auth type %q", cc.AuthType)
	}
}
