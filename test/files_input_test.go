package test

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// runBounded runs solgate and returns its stderr and exit code. A run
// still going after 10s fails the test: it is sent SIGTERM (which must end
// it within 5s; today's bug was a FIFO open that SIGINT and SIGTERM could
// not interrupt), then SIGKILL.
func runBounded(t *testing.T, env []string, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(solgateBin(t), args...)
	cmd.Env = env
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	must(t, cmd.Start())
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var err error
	select {
	case err = <-done:
	case <-time.After(10 * time.Second):
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
			t.Fatalf("solgate %q hung until SIGTERM\nstderr: %s", args, errb.String())
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-done
			t.Fatalf("solgate %q hung and ignored SIGTERM\nstderr: %s", args, errb.String())
		}
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return errb.String(), ee.ExitCode()
	}
	must(t, err)
	return errb.String(), 0
}

// TestOddFilesRefused: /dev/zero and a FIFO with no writer, as -c and as
// password file, are refused at once with an error that says what they
// are (they used to read until the OOM killer came, and hang beyond the
// reach of SIGINT and SIGTERM).
func TestOddFilesRefused(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	must(t, syscall.Mkfifo(fifo, 0o600))
	conf := func(pwFile string) string {
		p := filepath.Join(t.TempDir(), "solgate.toml")
		must(t, os.WriteFile(p, []byte("[defaults]\nuser = \"admin\"\npassword_file = \""+pwFile+"\"\n[[console]]\nname = \"n1\"\nbmc = \"127.0.0.1:9\"\n"), 0o600))
		return p
	}
	env := []string{"IPMI_PASSWORD=x"}
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"check", "-c", fifo}, 1, "is a FIFO (named pipe), not a regular file"},
		{[]string{"check", "-c", "/dev/zero"}, 1, "is a character device, not a regular file"},
		{[]string{"check", "-c", conf(fifo)}, 1, "password_file " + fifo + ": is a FIFO (named pipe), not a regular file"},
		{[]string{"check", "-c", conf("/dev/zero")}, 1, "password_file /dev/zero: is a character device, not a regular file"},
		{[]string{"power", "-c", fifo, "n1", "status"}, 2, "is a FIFO (named pipe), not a regular file"},
		{[]string{"power", "-c", conf("/dev/zero"), "n1", "status"}, 2, "password_file /dev/zero: is a character device"},
		{[]string{"power", "-u", "admin", "--password-file", fifo, "127.0.0.1:9", "status"}, 2, fifo + ": is a FIFO (named pipe), not a regular file"},
		{[]string{"power", "-u", "admin", "--password-file", "/dev/zero", "127.0.0.1:9", "status"}, 2, "/dev/zero: is a character device, not a regular file"},
		{[]string{"power", "-u", "admin", "--kg-file", fifo, "127.0.0.1:9", "status"}, 2, fifo + ": is a FIFO (named pipe), not a regular file"},
		{[]string{"sol", "-u", "admin", "--password-file", fifo, "127.0.0.1:9"}, 2, fifo + ": is a FIFO (named pipe), not a regular file"},
		{[]string{"sol", "-c", "/dev/zero", "n1"}, 2, "is a character device, not a regular file"},
	} {
		errOut, code := runBounded(t, env, c.args...)
		if code != c.code || !strings.Contains(errOut, c.want) {
			t.Errorf("solgate %q: exit %d, stderr %q; want exit %d and %q", c.args, code, errOut, c.code, c.want)
		}
	}
}
