package testkit

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"testing"
)

// MountTmpfs mounts a tmpfs of the given size (mount's size= option:
// "1m", or bytes) on a new directory of the test and unmounts it when the
// test ends (lazily, after an error, which the test reports). Tests fill
// it to see what a full disk does. It needs root: when it cannot mount, it
// returns the reason as an error and the caller skips or fails on it as
// its package does for what the machine lacks. source names the mount in
// /proc/mounts, to tell whose it is.
func MountTmpfs(t testing.TB, source, size string) (string, error) {
	t.Helper()
	if os.Geteuid() != 0 {
		return "", errors.New("mounting a tmpfs needs root")
	}
	mnt := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size+",mode=0750", source, mnt).CombinedOutput(); err != nil {
		return "", fmt.Errorf("mount -t tmpfs: %v: %s", err, bytes.TrimSpace(out))
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", mnt).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", mnt, err, out)
			exec.Command("umount", "-l", mnt).Run()
		}
	})
	return mnt, nil
}

// Nobody returns user nobody's IDs when the tests run as root, so that a
// peer daemon (rsyslogd) runs unprivileged as it would on a site; ok is
// false when they do not run as root or there is no such user.
func Nobody() (uid, gid int, ok bool) {
	if os.Getuid() != 0 {
		return 0, 0, false
	}
	u, err := user.Lookup("nobody")
	if err != nil {
		return 0, 0, false
	}
	uid, _ = strconv.Atoi(u.Uid)
	gid, _ = strconv.Atoi(u.Gid)
	return uid, gid, true
}

// OpenTo gives everything below dir to uid:gid and makes dir and its
// parents up to the temporary directory 0755: t.TempDir's parents are
// 0700 root, which would keep that user out. Errors are ignored: a
// peer that cannot then read its files says so when it starts.
func OpenTo(dir string, uid, gid int) {
	filepath.Walk(dir, func(path string, _ os.FileInfo, _ error) error { return os.Chown(path, uid, gid) })
	for d := dir; d != "/" && d != os.TempDir(); d = filepath.Dir(d) {
		os.Chmod(d, 0o755)
	}
}
