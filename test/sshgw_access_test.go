package test

import (
	"crypto/rand"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"github.com/solgate/solgate/ipmilan/bmcsim"
	"github.com/solgate/solgate/test/internal/testkit"
)

// cert returns a certificate login for dave signed by signer, changed by
// mod.
func (g *gwDaemon) cert(mod func(*gossh.Certificate), signer gossh.Signer) gossh.AuthMethod {
	g.t.Helper()
	key, _ := gwKey(g.t)
	now := time.Now()
	c := &gossh.Certificate{
		Key: key.PublicKey(), Serial: 7, CertType: gossh.UserCert, KeyId: "dave@test",
		ValidPrincipals: []string{"dave"},
		ValidAfter:      uint64(now.Add(-time.Hour).Unix()),
		ValidBefore:     uint64(now.Add(time.Hour).Unix()),
		Permissions:     gossh.Permissions{Extensions: map[string]string{"permit-pty": ""}},
	}
	if mod != nil {
		mod(c)
	}
	must(g.t, c.SignCert(rand.Reader, signer))
	cs, err := gossh.NewCertSigner(c, key)
	must(g.t, err)
	return gossh.PublicKeys(cs)
}

// TestGatewayCertificates: certificates from the trusted user CA log the
// principal's person in; every other kind is refused.
func TestGatewayCertificates(t *testing.T) {
	g := startGateway(t, gwOptions{})
	otherCA, _ := gwKey(t)
	stranger, _ := gwKey(t)
	now := time.Now()
	cases := []struct {
		name string
		auth gossh.AuthMethod
		from string // loopback source (each refusal from its own, so back-off never mixes in)
		ok   bool
		why  string // the reason in the daemon log
	}{
		{"valid", g.cert(nil, g.ca), "127.0.0.1", true, ""},
		{"expired", g.cert(func(c *gossh.Certificate) { c.ValidBefore = uint64(now.Add(-time.Minute).Unix()) }, g.ca), "127.0.0.31", false, "expired"},
		{"not yet valid", g.cert(func(c *gossh.Certificate) { c.ValidAfter = uint64(now.Add(time.Hour).Unix()) }, g.ca), "127.0.0.32", false, "not yet valid"},
		{"wrong CA", g.cert(nil, otherCA), "127.0.0.33", false, "not signed by a trusted user CA"},
		{"no principals", g.cert(func(c *gossh.Certificate) { c.ValidPrincipals = nil }, g.ca), "127.0.0.34", false, "has no principals"},
		{"principal is nobody", g.cert(func(c *gossh.Certificate) { c.ValidPrincipals = []string{"root"} }, g.ca), "127.0.0.35", false, "no principal (root) names a user"},
		{"host certificate", g.cert(func(c *gossh.Certificate) { c.CertType = gossh.HostCert }, g.ca), "127.0.0.36", false, "is a host certificate"},
		{"source-address matches", g.cert(func(c *gossh.Certificate) {
			c.CriticalOptions = map[string]string{"source-address": "127.0.0.37/32,10.0.0.0/8"}
		}, g.ca), "127.0.0.37", true, ""},
		{"source-address elsewhere", g.cert(func(c *gossh.Certificate) {
			c.CriticalOptions = map[string]string{"source-address": "127.0.0.37"}
		}, g.ca), "127.0.0.38", false, "may not be used from 127.0.0.38"},
		{"unknown critical option", g.cert(func(c *gossh.Certificate) {
			c.CriticalOptions = map[string]string{"force-command": "/bin/sh"}
		}, g.ca), "127.0.0.39", false, "unsupported critical option"},
		{"unknown key", gossh.PublicKeys(stranger), "127.0.0.40", false, "belongs to no user"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cl, err := g.client("node1", c.auth, c.from)
			if !c.ok {
				if err == nil {
					cl.Close()
					t.Fatal("logged in")
				}
				if !strings.Contains(err.Error(), "unable to authenticate") {
					t.Errorf("refused with %v, want an authentication failure", err)
				}
				waitFor(t, "the reason in the log", 10*time.Second, func() bool {
					for _, l := range strings.Split(g.stderr.String(), "\n") {
						if strings.Contains(l, "key refused") && strings.Contains(l, c.why) && strings.Contains(l, "remote="+c.from+":") {
							return true
						}
					}
					return false
				})
				return
			}
			if err != nil {
				t.Fatalf("refused: %v", err)
			}
			defer cl.Close()
			out, errOut, code := runOn(t, cl, "power status")
			if code != 0 || out != "node1: on\n" {
				t.Errorf("power status as dave: %d %q %q", code, out, errOut)
			}
		})
	}
}

// ptyTerm is an x/crypto PTY session collecting its output.
type ptyTerm struct {
	t   testing.TB
	s   *gossh.Session
	in  io.WriteCloser
	out testkit.LockedBuffer
	end chan error
}

func (p *ptyTerm) Write(b []byte) (int, error) { return p.out.Write(b) }

func (p *ptyTerm) text() string { return p.out.String() }

func (p *ptyTerm) waitFor(what, want string) {
	p.t.Helper()
	waitFor(p.t, what, 20*time.Second, func() bool { return strings.Contains(p.text(), want) })
}

// openPTY starts a PTY session on c running cmd ("" for a shell).
func openPTY(t testing.TB, c *gossh.Client, cmd string) *ptyTerm {
	t.Helper()
	s, err := c.NewSession()
	must(t, err)
	p := &ptyTerm{t: t, s: s, end: make(chan error, 1)}
	s.Stdout, s.Stderr = p, p
	p.in, err = s.StdinPipe()
	must(t, err)
	must(t, s.RequestPty("xterm", 24, 80, gossh.TerminalModes{}))
	if cmd == "" {
		must(t, s.Shell())
	} else {
		must(t, s.Start(cmd))
	}
	go func() { p.end <- s.Wait() }()
	t.Cleanup(func() { s.Close() })
	return p
}

// TestGatewayAccess: a second person is read-only with a notice naming the
// writer; force takes write; spy streams without a PTY; a read-only
// person cannot type, force, break or power.
func TestGatewayAccess(t *testing.T) {
	g := startGateway(t, gwOptions{sol: noEcho()})
	bmc := g.bmcs["node1"]
	alice := openPTY(t, g.dial("alice", "node1"), "")
	alice.waitFor("alice's banner", "you are rw")
	bob := openPTY(t, g.dial("bob", "node1"), "")
	bob.waitFor("bob's notice", "read-only: alice is writing")
	io.WriteString(bob.in, "bob-typed\r")
	io.WriteString(alice.in, "alice-typed\r")
	waitFor(t, "alice's input at the BMC", 20*time.Second, func() bool { return strings.Contains(string(bmc.HostInput()), "alice-typed") })

	// spy: output without a PTY, input ignored.
	sc := g.dial("carol", "node1")
	ss, err := sc.NewSession()
	must(t, err)
	var spyOut testkit.LockedBuffer
	ss.Stdout = &spyOut
	spyIn, _ := ss.StdinPipe()
	must(t, ss.Start("spy"))
	waitFor(t, "the spy attached", 20*time.Second, func() bool { return strings.Contains(spyOut.String(), "node1:") })
	io.WriteString(spyIn, "spy-typed\r")
	bmc.HostWrite([]byte("for-the-spy\r\n"))
	waitFor(t, "the spy's output", 20*time.Second, func() bool { return strings.Contains(spyOut.String(), "for-the-spy\r\n") })

	// force: bob takes write.
	bobForce := openPTY(t, g.dial("bob", "node1"), "force")
	bobForce.waitFor("bob forced", "you are rw")
	alice.waitFor("alice told", "bob took write access; you are read-only now")
	io.WriteString(bobForce.in, "bob-forced\r")
	waitFor(t, "bob's input at the BMC", 20*time.Second, func() bool { return strings.Contains(string(bmc.HostInput()), "bob-forced") })

	// carol may only read.
	carol := openPTY(t, g.dial("carol", "node1"), "")
	carol.waitFor("carol's banner", "you are ro")
	io.WriteString(carol.in, "carol-typed\r")
	for _, c := range []struct{ cmd, want string }{
		{"power cycle", "solgate: power cycle: you may not control the power of node1\n"},
		{"force", "solgate: force: you may not write to node1\n"},
		{"break", "solgate: break: you may not write to node1\n"},
	} {
		out, errOut, code := g.run("carol", "node1", c.cmd)
		if code != 3 || errOut != c.want || out != "" {
			t.Errorf("carol %s: %d %q %q, want 3 and %q", c.cmd, code, out, errOut, c.want)
		}
	}
	// Give stray input time to arrive, then check none did.
	io.WriteString(alice.in, "")
	time.Sleep(500 * time.Millisecond)
	in := string(bmc.HostInput())
	for _, bad := range []string{"bob-typed", "spy-typed", "carol-typed"} {
		if strings.Contains(in, bad) {
			t.Errorf("%s reached the BMC: %q", bad, in)
		}
	}
	if st := bmc.Stats(); st.PowerOffs != 0 || st.SOLBreaks != 0 {
		t.Errorf("carol's refused actions reached the BMC: %+v", st)
	}
	out, _, _ := g.run("alice", "node1", "who")
	for _, p := range []string{"alice", "bob", "carol"} {
		if !strings.Contains(out, p) {
			t.Errorf("who lacks %s: %q", p, out)
		}
	}
}

func noEcho() bmcsim.SOLConfig { return bmcsim.SOLConfig{NoEcho: true} }

// TestGatewayRevocation: on reload, a removed key ends its person's
// sessions, revoked read detaches, revoked write makes the session
// read-only; each is told why in one line.
func TestGatewayRevocation(t *testing.T) {
	g := startGateway(t, gwOptions{})
	alice := openPTY(t, g.dial("alice", "node1"), "")
	alice.waitFor("alice", "you are rw")
	bob := openPTY(t, g.dial("bob", "node1"), "")
	bob.waitFor("bob", "you are ro")
	daveC, err := g.client("node1", g.cert(nil, g.ca), "")
	must(t, err)
	defer daveC.Close()
	carol := openPTY(t, g.dial("carol", "node1"), "")
	carol.waitFor("carol", "you are ro")

	// alice loses her key, bob his read access, dave (who will write
	// once alice is gone) his write access.
	g.revoked["alice"] = true
	g.read = []string{"alice", "carol", "dave"}
	g.write = []string{"alice", "dave"}
	start := time.Now()
	g.reload()
	alice.waitFor("alice's key revoked", "your key is no longer accepted")
	bob.waitFor("bob's read revoked", "access revoked")
	t.Logf("detached %v after the reload started", time.Since(start).Round(time.Millisecond))
	for name, p := range map[string]*ptyTerm{"alice": alice, "bob": bob} {
		select {
		case err := <-p.end:
			var ee *gossh.ExitError
			if !errors.As(err, &ee) || ee.ExitStatus() == 0 {
				t.Errorf("%s's session ended with %v, want a non-zero exit status", name, err)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("%s's session did not end", name)
		}
	}
	// carol is untouched.
	g.bmcs["node1"].HostWrite([]byte("still-flowing\r\n"))
	carol.waitFor("carol still attached", "still-flowing")
	// alice's key is refused from now on.
	if c, err := g.client("node1", gossh.PublicKeys(g.keys["alice"]), "127.0.0.50"); err == nil {
		c.Close()
		t.Error("alice's removed key still logs in")
	}
	// dave attaches (alice no longer writes), then loses write.
	dave := openPTY(t, daveC, "")
	dave.waitFor("dave rw", "you are rw")
	g.write = []string{"alice"}
	g.reload()
	dave.waitFor("dave downgraded", "read-only now")
	if out, _, code := g.run("carol", "node1", "info --json"); code != 0 || !strings.Contains(out, `"writer": ""`) {
		t.Errorf("info after the downgrade: %d %q", code, out)
	}
}
