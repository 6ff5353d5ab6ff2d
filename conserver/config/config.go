package config

import (
	"net"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"
)

// DefaultPath is where solgate looks for its main file.
const DefaultPath = "/etc/solgate/solgate.toml"

// DefaultBMCPort is the RMCP port used when a BMC address has none.
const DefaultBMCPort = "623"

// Config is one validated snapshot of the whole configuration: the main
// file and every conf.d file, with hostlists expanded, defaults applied and
// secrets read. It is immutable once Load returns it and safe for
// concurrent use.
type Config struct {
	Path  string   // the main file
	Files []string // every file read, main file first, then conf.d in name order

	Server   Server
	Consoles []Console // one per node, in file order (main file first)
	Users    []User    // in file order
	Rules    []Rule    // access rules, in file order
	Syslog   []SyslogTarget

	// Warnings are problems that do not make the config invalid (a
	// world-readable password file, a rule that matches no console).
	Warnings []string

	consoles  map[string]int   // name -> index in Consoles
	users     map[string]int   // name -> index in Users
	keys      map[string]int   // ssh.PublicKey.Marshal() -> index in Users
	cas       map[string]bool  // trusted user CA keys, Marshal()
	groups    map[string]bool  // every group some user is in
	access    [][]int32        // per console (same index): the rules that cover it
	accessSig [][2]uint64      // per console: sum of the digests of those rules
	refs      []string         // other files the config names (secrets, CAs), for the watcher
	hash      [32]byte         // over the canonical form; equal hashes: equal configs
	now       func() time.Time // clock for certificate validity
}

// Server holds the daemon-wide settings of [server].
type Server struct {
	Listen   string // SSH gateway address, default ":2222"
	LogDir   string // console logs, LogDir/NAME/; default /var/log/solgate
	StateDir string // host keys, syslog positions; default /var/lib/solgate
	Metrics  string // Prometheus listener; "" disables. Default 127.0.0.1:9623
	LogLevel string // daemon log level: debug, info, warn, error

	// HostKeys are SSH host key files; default StateDir/ssh_host_ed25519_key,
	// which the daemon creates when missing.
	HostKeys []string

	// TrustedUserCAs are the CA keys whose user certificates are accepted;
	// a certificate principal names a [[user]].
	TrustedUserCAs []ssh.PublicKey

	// ReloadInterval is how often the watcher re-reads the files even
	// without a change notification; 0 disables it. Default 30s.
	ReloadInterval time.Duration

	// Daemon holds the console manager's settings (server.go).
	Daemon Daemon
}

// Console is the effective settings of one console: its [[console]] entry
// with [defaults] and built-in defaults applied.
type Console struct {
	Name string // safe as a path component and an SSH user name
	BMC  string // host, or host:port; see BMCAddr
	User string // IPMI user name ("" is the anonymous user)

	Password Secret
	KG       Secret // IPMI 2.0 K_g (BMC key); unset means none

	Interface string // "lanplus" (IPMI 2.0, RMCP+) or "lan" (IPMI 1.5)

	// CipherSuite is the RMCP+ cipher suite; 0 means automatic: 17, else
	// 3 (the suites with integrity and encryption). Suite 0 itself (no
	// authentication, no encryption) is used only when CipherSuiteZero is
	// true. InsecureCipherSuite is true when an explicit suite without
	// integrity or encryption (1, 2, 6, 7, 11, 15, 16) was allowed with
	// insecure_cipher_suite.
	CipherSuite         int
	CipherSuiteZero     bool
	InsecureCipherSuite bool

	// AuthType is the IPMI 1.5 authentication type for Interface "lan":
	// "" or "md5", "password" (clear text: only with
	// insecure_auth_password) or "none" (only with insecure_auth_none).
	// md2 is refused at load time: this client does not speak it.
	AuthType string

	Privilege string   // "user", "operator" or "admin"
	Quirks    []string // workaround names, see ValidQuirks
	Steal     string   // "never", "when-idle" or "always"
	Escape    string   // attach escape sequence, e.g. "^Ec"; see ParseEscape

	Log LogSettings

	File string // where the console was defined
	Line int
}

// BMCAddr returns the BMC address as host:port, with DefaultBMCPort when the
// configuration gave none.
func (c *Console) BMCAddr() string {
	host, port, err := net.SplitHostPort(c.BMC)
	if err != nil {
		return net.JoinHostPort(strings.Trim(c.BMC, "[]"), DefaultBMCPort)
	}
	return net.JoinHostPort(host, port)
}

// LogSettings are a console's log rotation and retention limits.
type LogSettings struct {
	RotateSize  int64         // start a new segment after this many bytes
	RotateAge   time.Duration // ... or after this long
	RetainAge   time.Duration // delete segments older than this; 0 keeps them
	RetainBytes int64         // keep at most this many bytes per console; 0: no limit
}

// User is a person who may use the SSH gateway.
type User struct {
	Name   string
	Keys   []ssh.PublicKey
	Groups []string
	File   string
	Line   int
}

// Perm is a set of permissions on a console.
type Perm uint8

const (
	// Read allows attaching read-only, replay, tail and log.
	Read Perm = 1 << iota
	// Write allows typing into the console (and implies Read).
	Write
	// Power allows power actions on the console's node.
	Power
)

func (p Perm) String() string {
	if p == 0 {
		return "none"
	}
	var parts []string
	for _, x := range []struct {
		p    Perm
		name string
	}{{Read, "read"}, {Write, "write"}, {Power, "power"}} {
		if p&x.p != 0 {
			parts = append(parts, x.name)
		}
	}
	return strings.Join(parts, "+")
}

// Rule is one [[access]] rule: on the consoles it covers, it grants the
// listed users and @groups read, write or power, and denies the users and
// groups in Deny everything. A deny always wins over a grant, so the order
// of rules does not matter.
type Rule struct {
	Consoles string // hostlist, or "*" for every console
	Read     []string
	Write    []string
	Power    []string
	Deny     []string
	File     string
	Line     int

	names map[string]bool // expanded Consoles; nil means every console
}

// SyslogTarget is one [[syslog]] receiver of console lines.
type SyslogTarget struct {
	URL           string // as written, e.g. "tcp://loghost:514"
	Network       string // "udp", "tcp", "tls" or "unix"
	Address       string // host:port, or a socket path for "unix"
	Format        string // "rfc5424" or "rfc3164"
	Facility      int    // 0-23, e.g. 16 for local0
	Consoles      string // hostlist of the consoles shipped; "" means all
	CAFile        string // for tls: CA bundle to verify the receiver; "" uses the system roots
	SyslogOptions        // the other keys (syslog.go)
	File          string
	Line          int

	names map[string]bool // expanded Consoles; nil means every console
}

// Ships reports whether lines of the named console go to this target.
func (t *SyslogTarget) Ships(console string) bool {
	return t.names == nil || t.names[console]
}

// Console returns the console with the given name.
func (c *Config) Console(name string) (*Console, bool) {
	i, ok := c.consoles[name]
	if !ok {
		return nil, false
	}
	return &c.Consoles[i], true
}

// User returns the user with the given name.
func (c *Config) User(name string) (*User, bool) {
	i, ok := c.users[name]
	if !ok {
		return nil, false
	}
	return &c.Users[i], true
}

// Equal reports whether two snapshots have the same effective content.
func (c *Config) Equal(o *Config) bool {
	return c != nil && o != nil && c.hash == o.hash
}
