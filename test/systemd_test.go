package test

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

const unitBinary = "/usr/local/bin/solgate"

// unitWithBinary copies etc/solgate.service to a temporary directory with
// ExecStart pointing at a freshly built solgate, so that systemd-analyze can
// check the command too.
func unitWithBinary(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile("../etc/solgate.service")
	if err != nil {
		t.Fatal(err)
	}
	if n := bytes.Count(data, []byte("ExecStart="+unitBinary+" ")); n != 1 {
		t.Fatalf("etc/solgate.service: %d ExecStart lines running %s, want 1", n, unitBinary)
	}
	data = bytes.ReplaceAll(data, []byte("ExecStart="+unitBinary), []byte("ExecStart="+solgateBin(t)))
	p := filepath.Join(t.TempDir(), "solgate.service")
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestSystemdUnitVerify runs systemd-analyze verify on the unit. verify only
// warns about unknown or misspelt settings, so any output fails the test.
func TestSystemdUnitVerify(t *testing.T) {
	analyze := needTool(t, "systemd-analyze")
	unit := unitWithBinary(t)
	out, err := exec.Command(analyze, "verify", "--man=no", unit).CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
	// The hardening, as systemd scores it: exposure at most 2.0 of 10
	// (--threshold counts tenths).
	out, err = exec.Command(analyze, "security", "--offline=yes", "--threshold=20", "--no-pager", unit).CombinedOutput()
	if err != nil {
		t.Fatalf("systemd-analyze security: exposure above 2.0 (%v)\n%s", err, out)
	}
	if i := bytes.Index(out, []byte("Overall exposure level")); i >= 0 {
		t.Logf("%s", bytes.TrimSpace(out[i:]))
	}
}

// TestSystemdUnitSettings checks the settings the daemon and the README
// rely on.
func TestSystemdUnitSettings(t *testing.T) {
	t.Parallel()
	f, err := os.Open("../etc/solgate.service")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	set := map[string][]string{}
	sc := bufio.NewScanner(f)
	section := ""
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		if l == "" || l[0] == '#' || l[0] == ';' {
			continue
		}
		if strings.HasPrefix(l, "[") {
			section = l
			continue
		}
		k, v, _ := strings.Cut(l, "=")
		set[section+k] = append(set[section+k], v)
	}
	one := func(k string) string {
		if v := set["[Service]"+k]; len(v) == 1 {
			return v[0]
		}
		t.Errorf("[Service] %s: %q, want one value", k, set["[Service]"+k])
		return ""
	}
	for k, want := range map[string]string{
		"Type": "notify", "NotifyAccess": "main", "User": "solgate", "Group": "solgate",
		"NoNewPrivileges": "yes", "ProtectSystem": "strict", "ProtectHome": "yes", "PrivateTmp": "yes",
		"CapabilityBoundingSet": "", "AmbientCapabilities": "", "MemoryDenyWriteExecute": "yes",
		"StateDirectory": "solgate", "StateDirectoryMode": "0700", "LogsDirectory": "solgate", "LogsDirectoryMode": "0750",
		"ExecReload": "/bin/kill -HUP $MAINPID", "RestrictAddressFamilies": "AF_UNIX AF_INET AF_INET6",
	} {
		if got := one(k); got != want {
			t.Errorf("[Service] %s=%s, want %s", k, got, want)
		}
	}
	if n, err := strconv.Atoi(one("LimitNOFILE")); err != nil || n < 65536 {
		t.Errorf("LimitNOFILE %q: want at least 65536", one("LimitNOFILE"))
	}
	if wd := one("WatchdogSec"); wd == "" || wd == "0" {
		t.Errorf("WatchdogSec %q: want a watchdog", wd)
	}
	if rw := one("ReadWritePaths"); !strings.Contains(rw, "/var/lib/solgate") || !strings.Contains(rw, "/var/log/solgate") {
		t.Errorf("ReadWritePaths %q", rw)
	}
}

// TestSysusersTmpfiles applies the sysusers.d and tmpfiles.d snippets to an
// empty root directory with systemd's own tools and checks the user and
// the directories they create.
func TestSysusersTmpfiles(t *testing.T) {
	sysusers := needTool(t, "systemd-sysusers")
	tmpfiles := needTool(t, "systemd-tmpfiles")
	root := t.TempDir()
	if err := os.Mkdir(filepath.Join(root, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, s := range []struct{ src, dst string }{
		{"../etc/sysusers.d/solgate.conf", "usr/lib/sysusers.d/solgate.conf"},
		{"../etc/tmpfiles.d/solgate.conf", "usr/lib/tmpfiles.d/solgate.conf"},
	} {
		data, err := os.ReadFile(s.src)
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(root, s.dst)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if out, err := exec.Command(sysusers, "--root="+root, "solgate.conf").CombinedOutput(); err != nil {
		t.Fatalf("systemd-sysusers: %v\n%s", err, out)
	}
	passwd, err := os.ReadFile(filepath.Join(root, "etc/passwd"))
	if err != nil {
		t.Fatal(err)
	}
	var uid, gid int
	found := false
	for _, l := range strings.Split(string(passwd), "\n") {
		f := strings.Split(l, ":")
		if len(f) == 7 && f[0] == "solgate" {
			found = true
			uid, _ = strconv.Atoi(f[2])
			gid, _ = strconv.Atoi(f[3])
			if f[5] != "/var/lib/solgate" || f[6] != "/usr/sbin/nologin" || uid == 0 || uid >= 1000 {
				t.Errorf("passwd entry %q: want a system user without a login shell, home /var/lib/solgate", l)
			}
		}
	}
	if !found {
		t.Fatalf("no solgate user in %s:\n%s", root, passwd)
	}
	if os.Getuid() != 0 {
		t.Skip("not root: systemd-tmpfiles cannot give the directories to solgate")
	}
	if out, err := exec.Command(tmpfiles, "--root="+root, "--create", "solgate.conf").CombinedOutput(); err != nil {
		t.Fatalf("systemd-tmpfiles: %v\n%s", err, out)
	}
	for dir, mode := range map[string]os.FileMode{"var/lib/solgate": 0o700, "var/log/solgate": 0o750} {
		st, err := os.Stat(filepath.Join(root, dir))
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != mode || !st.IsDir() {
			t.Errorf("/%s: mode %v, want %v", dir, st.Mode(), mode)
		}
		if o := ownerOf(st); o[0] != uid || o[1] != gid {
			t.Errorf("/%s: owner %d:%d, want solgate %d:%d", dir, o[0], o[1], uid, gid)
		}
	}
}

func ownerOf(st os.FileInfo) [2]int {
	if s, ok := st.Sys().(*syscall.Stat_t); ok {
		return [2]int{int(s.Uid), int(s.Gid)}
	}
	return [2]int{-1, -1}
}
