package config

import (
	"crypto/rand"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

func accessConfig(t *testing.T, extra string) *Config {
	t.Helper()
	return mustLoad(t, map[string]string{"solgate.toml": `
[defaults]
bmc = "{name}-bmc"

[[console]]
name = "node[1-8],login1"

[[user]]
name = "alice"
groups = ["admins", "users"]

[[user]]
name = "bob"
groups = ["users"]

[[user]]
name = "carol"
groups = ["users", "contractors"]

[[user]]
name = "dave"

[[access]]
consoles = "*"
read = ["@users"]

[[access]]
consoles = "node[1-8]"
write = ["@admins", "bob"]
power = ["@admins"]

[[access]]
consoles = "node[5-8]"
deny = ["@contractors"]

[[access]]
consoles = "login1"
write = ["@all"]
` + extra})
}

func TestPerms(t *testing.T) {
	t.Parallel()
	c := accessConfig(t, "")
	tests := []struct {
		user, console string
		want          Perm
	}{
		{"alice", "node1", Read | Write | Power},
		{"bob", "node1", Read | Write},    // by name; write implies read
		{"carol", "node1", Read},          // through @users
		{"carol", "node5", 0},             // denied: @contractors, whatever else grants
		{"bob", "node5", Read | Write},    // the deny does not touch bob
		{"dave", "node1", 0},              // in no group
		{"dave", "login1", Read | Write},  // @all
		{"carol", "login1", Read | Write}, // the deny does not cover login1
		{"alice", "login1", Read | Write}, // power only on node[1-8]
		{"alice", "node9", 0},             // no such console
		{"mallory", "node1", 0},           // no such user
	}
	for _, tt := range tests {
		if got := c.Perms(tt.user, tt.console); got != tt.want {
			t.Errorf("Perms(%s, %s) = %v, want %v", tt.user, tt.console, got, tt.want)
		}
		for _, p := range []Perm{Read, Write, Power} {
			if got := c.Allowed(tt.user, tt.console, p); got != (tt.want&p != 0) {
				t.Errorf("Allowed(%s, %s, %v) = %v", tt.user, tt.console, p, got)
			}
		}
	}
	if c.Allowed("alice", "node1", 0) {
		t.Error("Allowed with no permission asked is true")
	}
	if !c.Allowed("alice", "node1", Read|Power) || c.Allowed("bob", "node1", Read|Power) {
		t.Error("combined permissions")
	}
	if got := strings.Join(c.ConsolesFor("carol", Write), ","); got != "login1" {
		t.Errorf("ConsolesFor(carol, write) = %s", got)
	}
	if got := (Read | Power).String(); got != "read+power" {
		t.Errorf("Perm.String = %q", got)
	}
}

// TestRuleOrderIrrelevant: deny wins wherever the rule stands.
func TestRuleOrderIrrelevant(t *testing.T) {
	t.Parallel()
	c := mustLoad(t, map[string]string{"solgate.toml": `
[[console]]
name = "n1"
bmc = "b1"
[[user]]
name = "eve"
groups = ["temps"]
[[access]]
consoles = "n1"
deny = ["eve"]
[[access]]
consoles = "*"
read = ["@temps"]
`})
	if p := c.Perms("eve", "n1"); p != 0 {
		t.Errorf("eve on n1: %v, want none", p)
	}
}

func TestUserForKey(t *testing.T) {
	t.Parallel()
	aliceKey, _ := newKey(t)
	bobKey, _ := newKey(t)
	strangerKey, _ := newKey(t)
	caPub, caSigner := newKey(t)
	otherCAPub, otherCASigner := newKey(t)
	_ = otherCAPub
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	dir := writeTree(t, map[string]string{"solgate.toml": `
[server]
trusted_user_ca_keys = ["` + authorizedKey(caPub, "ca@example") + `"]

[[user]]
name = "alice"
keys = ["` + authorizedKey(aliceKey, "alice@laptop") + `"]

[[user]]
name = "bob"
keys = ["` + authorizedKey(bobKey, "bob@laptop") + `"]

[[user]]
name = "certonly"
`})
	c, err := LoadWith(dir+"/solgate.toml", Options{Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	certKey, _ := newKey(t)
	sign := func(mod func(*ssh.Certificate), signer ssh.Signer) *ssh.Certificate {
		cert := &ssh.Certificate{
			Key:             certKey,
			Serial:          1,
			CertType:        ssh.UserCert,
			KeyId:           "test-cert",
			ValidPrincipals: []string{"nobody", "certonly"},
			ValidAfter:      uint64(now.Add(-time.Hour).Unix()),
			ValidBefore:     uint64(now.Add(time.Hour).Unix()),
			Permissions:     ssh.Permissions{Extensions: map[string]string{"permit-pty": ""}},
		}
		if mod != nil {
			mod(cert)
		}
		if err := cert.SignCert(rand.Reader, signer); err != nil {
			t.Fatal(err)
		}
		return cert
	}
	tests := []struct {
		name    string
		key     ssh.PublicKey
		want    string
		wantErr string
	}{
		{"plain key", aliceKey, "alice", ""},
		{"other plain key", bobKey, "bob", ""},
		{"unknown key", strangerKey, "", "belongs to no user"},
		{"nil key", nil, "", "belongs to no user"},
		{"certificate", sign(nil, caSigner), "certonly", ""},
		{"forever certificate", sign(func(c *ssh.Certificate) { c.ValidBefore = ssh.CertTimeInfinity }, caSigner), "certonly", ""},
		{"expired", sign(func(c *ssh.Certificate) { c.ValidBefore = uint64(now.Add(-time.Minute).Unix()) }, caSigner), "", "expired"},
		{"not yet valid", sign(func(c *ssh.Certificate) { c.ValidAfter = uint64(now.Add(time.Minute).Unix()) }, caSigner), "", "not yet valid"},
		{"no principals", sign(func(c *ssh.Certificate) { c.ValidPrincipals = nil }, caSigner), "", "has no principals"},
		{"principal is no user", sign(func(c *ssh.Certificate) { c.ValidPrincipals = []string{"root"} }, caSigner), "", "no principal (root) names a user"},
		{"host certificate", sign(func(c *ssh.Certificate) { c.CertType = ssh.HostCert }, caSigner), "", "host certificate"},
		{"untrusted CA", sign(nil, otherCASigner), "", "not signed by a trusted user CA"},
		{"critical option", sign(func(c *ssh.Certificate) {
			c.CriticalOptions = map[string]string{"force-command": "/bin/true"}
		}, caSigner), "", "unsupported critical option"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := c.IdentifyKey(tt.key)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("IdentifyKey = %q, %v; want error with %q", got, err, tt.wantErr)
				}
				if !errors.Is(err, ErrUnknownKey) && !errors.Is(err, ErrBadCertificate) {
					t.Errorf("error %v wraps no sentinel", err)
				}
				if _, ok := c.UserForKey(tt.key); ok {
					t.Error("UserForKey accepted it")
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("IdentifyKey = %q, %v; want %q", got, err, tt.want)
			}
			if u, ok := c.UserForKey(tt.key); !ok || u != tt.want {
				t.Errorf("UserForKey = %q, %v", u, ok)
			}
		})
	}
	// A forged signature: a valid certificate with its key swapped.
	forged := sign(nil, caSigner)
	forged.Key = strangerKey
	if _, err := c.IdentifyKey(forged); err == nil {
		t.Error("forged certificate accepted")
	}
}

func TestDuplicateKeyAcrossUsers(t *testing.T) {
	t.Parallel()
	k, _ := newKey(t)
	_, err := loadTree(t, map[string]string{"solgate.toml": `
[[user]]
name = "a"
keys = ["` + authorizedKey(k, "a") + `"]
[[user]]
name = "b"
keys = ["` + authorizedKey(k, "b") + `"]
`}, Options{})
	if err == nil || !strings.Contains(err.Error(), "solgate.toml:7: user b: keys[0]: the same key belongs to user a") {
		t.Fatalf("err = %v", err)
	}
}

func TestCAFile(t *testing.T) {
	t.Parallel()
	ca, _ := newKey(t)
	c := mustLoad(t, map[string]string{
		"user_ca.pub":  "# our CA\n\n" + authorizedKey(ca, "ca") + "\n",
		"solgate.toml": "[server]\ntrusted_user_ca_files = [\"user_ca.pub\"]\n",
	})
	if len(c.Server.TrustedUserCAs) != 1 || string(c.Server.TrustedUserCAs[0].Marshal()) != string(ca.Marshal()) {
		t.Errorf("CAs = %v", c.Server.TrustedUserCAs)
	}
	_, err := loadTree(t, map[string]string{
		"user_ca.pub":  "garbage\n",
		"solgate.toml": "[server]\ntrusted_user_ca_files = [\"user_ca.pub\"]\n",
	}, Options{})
	if err == nil || !strings.Contains(err.Error(), "user_ca.pub:1: not an SSH public key") {
		t.Errorf("bad CA file: %v", err)
	}
}

func TestIdentifyKeyFromSourceAddress(t *testing.T) {
	t.Parallel()
	caPub, caSigner := newKey(t)
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	dir := writeTree(t, map[string]string{"solgate.toml": `
[server]
trusted_user_ca_keys = ["` + authorizedKey(caPub, "ca@example") + `"]

[[user]]
name = "alice"
`})
	c, err := LoadWith(dir+"/solgate.toml", Options{Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	certKey, _ := newKey(t)
	cert := func(sourceAddr string) *ssh.Certificate {
		cert := &ssh.Certificate{
			Key: certKey, Serial: 1, CertType: ssh.UserCert, KeyId: "alice-cert",
			ValidPrincipals: []string{"alice"},
			ValidAfter:      uint64(now.Add(-time.Hour).Unix()),
			ValidBefore:     uint64(now.Add(time.Hour).Unix()),
			Permissions:     ssh.Permissions{CriticalOptions: map[string]string{"source-address": sourceAddr}},
		}
		if err := cert.SignCert(rand.Reader, caSigner); err != nil {
			t.Fatal(err)
		}
		return cert
	}
	from := func(ip string) net.Addr { return &net.TCPAddr{IP: net.ParseIP(ip), Port: 40000} }
	for _, tt := range []struct {
		name, list string
		remote     net.Addr
		wantErr    string
	}{
		{"address", "127.0.0.2", from("127.0.0.2"), ""},
		{"network", "10.0.0.0/8,127.0.0.0/24", from("127.0.0.9"), ""},
		{"IPv6 network", "2001:db8::/32", from("2001:db8::1"), ""},
		{"IPv4-mapped client", "192.0.2.1", from("::ffff:192.0.2.1"), ""},
		{"spaces", " 192.0.2.1 , 127.0.0.1", from("127.0.0.1"), ""},
		{"elsewhere", "192.0.2.0/24", from("127.0.0.1"), "may not be used from 127.0.0.1"},
		{"empty list", "", from("127.0.0.1"), "is not an address or network"},
		{"malformed", "localhost", from("127.0.0.1"), `"localhost" is not an address or network`},
		{"not TCP", "127.0.0.1", &net.UnixAddr{Name: "/run/x"}, "is not an IP address"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := c.IdentifyKeyFrom(cert(tt.list), tt.remote)
			if tt.wantErr == "" {
				if err != nil || got != "alice" {
					t.Fatalf("IdentifyKeyFrom = %q, %v; want alice", got, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !errors.Is(err, ErrBadCertificate) {
				t.Fatalf("IdentifyKeyFrom = %q, %v; want ErrBadCertificate with %q", got, err, tt.wantErr)
			}
		})
	}
	// Without an address the restriction cannot be checked: refused.
	if _, err := c.IdentifyKey(cert("127.0.0.1")); err == nil || !strings.Contains(err.Error(), "no client address") {
		t.Errorf("IdentifyKey of a source-address certificate: %v", err)
	}
	if _, err := c.IdentifyKeyFrom(cert("127.0.0.1"), nil); err == nil {
		t.Error("IdentifyKeyFrom without an address accepted it")
	}
}

func TestListNameReserved(t *testing.T) {
	t.Parallel()
	dir := writeTree(t, map[string]string{"solgate.toml": `
[[console]]
name = "list"
bmc = "127.0.0.1"
`})
	_, err := Load(dir + "/solgate.toml")
	if err == nil || !strings.Contains(err.Error(), `console name "list" is reserved`) {
		t.Fatalf("a console named list: %v", err)
	}
}
