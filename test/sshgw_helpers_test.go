package test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"text/template"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"github.com/solgate/solgate/ipmilan/bmcsim"
	"github.com/solgate/solgate/sshgw"
	"github.com/solgate/solgate/test/internal/testkit"
)

// gwDaemon is `solgate serve` with its SSH gateway on 127.0.0.1, consoles
// on in-process bmcsim BMCs, and people whose keys the test holds:
// alice (read, write, power on every console), bob (read and write),
// carol and erin (read only), and dave, who has no key of his own and
// logs in with certificates from the test's user CA.
type gwDaemon struct {
	t           testing.TB
	dir         string
	cfgPath     string
	addr        string // gateway address, 127.0.0.1:PORT
	port        int
	bmcs        map[string]*simBMC // the bmcsim BMCs, by console
	addrs       map[string]string  // every console's BMC address
	names       []string
	cipherSuite int
	maxUnauth   int                     // ssh_max_unauthenticated; 0: the default
	starts      int                     // how many times the daemon was started (the log accumulates)
	keys        map[string]gossh.Signer // person -> key
	revoked     map[string]bool         // people whose key the config no longer lists
	ca          gossh.Signer
	read        []string // the access rule's lists; tests that reload change them
	write       []string
	power       []string
	cmd         *exec.Cmd
	stderr      *testkit.LockedBuffer
	hostKey     gossh.PublicKey
}

type gwOptions struct {
	consoles int              // default 1: node1
	sol      bmcsim.SOLConfig // for every BMC
	// external BMCs (name -> address) instead of bmcsim ones, with this
	// password and cipher suite (ipmi_sim).
	external    map[string]string
	password    string
	cipherSuite int
	maxUnauth   int // ssh_max_unauthenticated; 0: the default
}

// startGateway starts the daemon and waits until the gateway answers.
func startGateway(t testing.TB, o gwOptions) *gwDaemon {
	t.Helper()
	if o.consoles == 0 {
		o.consoles = 1
	}
	if o.password == "" {
		o.password = bmcsimPassword
	}
	g := &gwDaemon{t: t, dir: t.TempDir(), bmcs: map[string]*simBMC{}, keys: map[string]gossh.Signer{}, revoked: map[string]bool{},
		read: []string{"alice", "bob", "carol", "dave", "erin"}, write: []string{"alice", "bob", "dave"}, power: []string{"alice", "dave"}}
	g.addrs = map[string]string{}
	g.cipherSuite = o.cipherSuite
	g.maxUnauth = o.maxUnauth
	if o.external != nil {
		for name, addr := range o.external {
			g.addrs[name] = addr
			g.names = append(g.names, name)
		}
		slices.Sort(g.names)
	} else {
		for i := 1; i <= o.consoles; i++ {
			name := fmt.Sprintf("node%d", i)
			sol := o.sol
			sol.Hostname = name
			g.bmcs[name] = startSimBMC(t, bmcsim.Config{PowerOn: true, SOL: sol})
			g.addrs[name] = g.bmcs[name].Addr
			g.names = append(g.names, name)
		}
	}
	for _, p := range []string{"alice", "bob", "carol", "erin"} {
		var priv ed25519.PrivateKey
		g.keys[p], priv = gwKey(t)
		writeKeyFile(t, filepath.Join(g.dir, "id_"+p), priv)
	}
	g.ca, _ = gwKey(t)
	must(t, os.WriteFile(filepath.Join(g.dir, "bmc.pass"), []byte(o.password+"\n"), 0o600))
	g.port = freeTCPPort(t)
	g.addr = fmt.Sprintf("127.0.0.1:%d", g.port)
	g.cfgPath = filepath.Join(g.dir, "solgate.toml")
	g.writeConfig()
	g.start()
	return g
}

var gwConfig = template.Must(template.New("cfg").Parse(`
[server]
listen = "{{.Addr}}"
log_dir = "{{.Dir}}/log"
state_dir = "{{.Dir}}/state"
metrics = ""
log_level = "debug"
reload_interval = "0"
trusted_user_ca_keys = ["{{.CA}}"]
{{if .MaxUnauth}}ssh_max_unauthenticated = {{.MaxUnauth}}{{end}}

[defaults]
user = "admin"
password_file = "{{.Dir}}/bmc.pass"
{{if .CipherSuite}}cipher_suite = {{.CipherSuite}}{{end}}
{{range .Consoles}}
[[console]]
name = "{{.Name}}"
bmc = "{{.BMC}}"
{{end}}
{{range .Users}}
[[user]]
name = "{{.Name}}"
{{if .Key}}keys = ["{{.Key}}"]{{end}}
{{end}}
[[access]]
consoles = "*"
read = [{{.Read}}]
write = [{{.Write}}]
power = [{{.Power}}]
`))

func (g *gwDaemon) writeConfig() {
	type console struct{ Name, BMC string }
	type user struct{ Name, Key string }
	list := func(names []string) string {
		q := make([]string, len(names))
		for i, n := range names {
			q[i] = `"` + n + `"`
		}
		return strings.Join(q, ", ")
	}
	data := struct {
		Addr, Dir, CA, Read, Write, Power string
		CipherSuite, MaxUnauth            int
		Consoles                          []console
		Users                             []user
	}{Addr: g.addr, Dir: g.dir, CA: authorizedLine(g.ca.PublicKey()), Read: list(g.read), Write: list(g.write), Power: list(g.power),
		CipherSuite: g.cipherSuite, MaxUnauth: g.maxUnauth}
	for _, n := range g.names {
		data.Consoles = append(data.Consoles, console{n, g.addrs[n]})
	}
	for _, p := range []string{"alice", "bob", "carol", "erin"} {
		u := user{Name: p}
		if k, ok := g.keys[p]; ok && !g.revoked[p] {
			u.Key = authorizedLine(k.PublicKey())
		}
		data.Users = append(data.Users, u)
	}
	data.Users = append(data.Users, user{Name: "dave"})
	var b bytes.Buffer
	must(g.t, gwConfig.Execute(&b, data))
	tmp := g.cfgPath + ".tmp"
	must(g.t, os.WriteFile(tmp, b.Bytes(), 0o600))
	must(g.t, os.Rename(tmp, g.cfgPath))
}

// reload rewrites the config and waits until the daemon applied it.
func (g *gwDaemon) reload() {
	g.t.Helper()
	before := strings.Count(g.stderr.String(), "configuration applied")
	g.writeConfig()
	g.cmd.Process.Signal(syscall.SIGHUP)
	waitFor(g.t, "the reload", 20*time.Second, func() bool {
		return strings.Count(g.stderr.String(), "configuration applied") > before
	})
}

func (g *gwDaemon) start() {
	t := g.t
	g.starts++
	if g.stderr == nil {
		g.stderr = &testkit.LockedBuffer{}
	}
	cmd := exec.Command(solgateBin(t), "serve", "-c", g.cfgPath)
	cmd.Stdout, cmd.Stderr = g.stderr, g.stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	must(t, cmd.Start())
	g.cmd = cmd
	t.Cleanup(func() {
		if g.cmd == cmd {
			g.stop()
		}
		if t.Failed() {
			t.Logf("solgate serve log:\n%s", g.stderr.String())
		}
	})
	waitFor(t, "the gateway to listen", 60*time.Second, func() bool {
		if cmd.ProcessState != nil {
			t.Fatalf("solgate serve exited: %s", g.stderr.String())
		}
		c, err := net.DialTimeout("tcp", g.addr, time.Second)
		if err != nil {
			return false
		}
		c.Close()
		return true
	})
	k, err := sshgw.LoadHostKey(filepath.Join(g.dir, "state", "ssh_host_ed25519_key"), false)
	must(t, err)
	g.hostKey = k.PublicKey()
	waitFor(t, "every console up", 120*time.Second, func() bool {
		return strings.Count(g.stderr.String(), "conserver: SOL up") >= len(g.names)*g.starts
	})
}

// stop sends SIGTERM and waits for the daemon to exit.
func (g *gwDaemon) stop() {
	g.t.Helper()
	cmd := g.cmd
	g.cmd = nil
	cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			g.t.Errorf("solgate serve: %v", err)
		}
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		<-done
		g.t.Error("solgate serve did not stop within 30 s of SIGTERM")
	}
}

// restart stops and starts the daemon on the same directories.
func (g *gwDaemon) restart() {
	g.stop()
	g.start()
}

// client connects with x/crypto as person (by key) or with auth, from
// the loopback address from ("" for any), with SSH user name user.
func (g *gwDaemon) client(user string, auth gossh.AuthMethod, from string) (*gossh.Client, error) {
	d := net.Dialer{Timeout: 10 * time.Second}
	if from != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(from)}
	}
	nc, err := d.Dial("tcp", g.addr)
	if err != nil {
		return nil, err
	}
	cfg := &gossh.ClientConfig{User: user, Auth: []gossh.AuthMethod{auth}, HostKeyCallback: gossh.FixedHostKey(g.hostKey), Timeout: 10 * time.Second}
	c, chans, reqs, err := gossh.NewClientConn(nc, g.addr, cfg)
	if err != nil {
		nc.Close()
		return nil, err
	}
	return gossh.NewClient(c, chans, reqs), nil
}

func (g *gwDaemon) dial(person, user string) *gossh.Client {
	g.t.Helper()
	c, err := g.client(user, gossh.PublicKeys(g.keys[person]), "")
	if err != nil {
		g.t.Fatalf("connect as %s@ with %s's key: %v", user, person, err)
	}
	g.t.Cleanup(func() { c.Close() })
	return c
}

// run runs an exec command and returns stdout, stderr and exit status.
func (g *gwDaemon) run(person, user, cmd string) (string, string, int) {
	g.t.Helper()
	return runOn(g.t, g.dial(person, user), cmd)
}

func runOn(t testing.TB, c *gossh.Client, cmd string) (string, string, int) {
	t.Helper()
	s, err := c.NewSession()
	must(t, err)
	defer s.Close()
	var o, e bytes.Buffer
	s.Stdout, s.Stderr = &o, &e
	err = s.Run(cmd)
	var ee *gossh.ExitError
	switch {
	case err == nil:
		return o.String(), e.String(), 0
	case errors.As(err, &ee):
		return o.String(), e.String(), ee.ExitStatus()
	}
	t.Fatalf("run %q: %v", cmd, err)
	return "", "", -1
}

// knownHosts returns a known_hosts file with the gateway's host key, as
// it was the first time this was called (so a changed key after a restart
// fails StrictHostKeyChecking).
func (g *gwDaemon) knownHosts() string {
	p := filepath.Join(g.dir, "known_hosts")
	if _, err := os.Stat(p); err == nil {
		return p
	}
	line := fmt.Sprintf("[127.0.0.1]:%d %s\n", g.port, authorizedLine(g.hostKey))
	must(g.t, os.WriteFile(p, []byte(line), 0o600))
	return p
}

// sshArgs are the OpenSSH client's arguments for person: no user or
// system config, a private known_hosts, only the person's key.
func (g *gwDaemon) sshArgs(person string, extra ...string) []string {
	args := []string{"-F", "/dev/null", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes",
		"-o", "UserKnownHostsFile=" + g.knownHosts(), "-o", "GlobalKnownHostsFile=/dev/null",
		"-o", "IdentitiesOnly=yes", "-o", "IdentityAgent=none", "-o", "ConnectTimeout=20",
		"-i", filepath.Join(g.dir, "id_"+person), "-p", fmt.Sprint(g.port)}
	return append(args, extra...)
}

// ssh runs the OpenSSH client to completion.
func (g *gwDaemon) ssh(person string, args ...string) (stdout, stderr string, code int) {
	g.t.Helper()
	bin := needTool(g.t, "ssh")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, g.sshArgs(person, args...)...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		code = ee.ExitCode()
	default:
		g.t.Fatalf("ssh: %v", err)
	}
	return o.String(), e.String(), code
}

// gwKey returns a new ed25519 key.
func gwKey(t testing.TB) (gossh.Signer, ed25519.PrivateKey) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	must(t, err)
	s, err := gossh.NewSignerFromKey(priv)
	must(t, err)
	return s, priv
}

// writeKeyFile writes priv as an OpenSSH private key file (mode 0600).
func writeKeyFile(t testing.TB, path string, priv ed25519.PrivateKey) {
	t.Helper()
	block, err := gossh.MarshalPrivateKey(priv, "test key")
	must(t, err)
	must(t, os.WriteFile(path, pem.EncodeToMemory(block), 0o600))
}

func authorizedLine(k gossh.PublicKey) string {
	return strings.TrimSpace(string(gossh.MarshalAuthorizedKey(k)))
}

// freeTCPPort returns a port that was free on 127.0.0.1 a moment ago.
func freeTCPPort(t testing.TB) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
