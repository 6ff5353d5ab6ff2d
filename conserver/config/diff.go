package config

import (
	"crypto/sha256"
	"encoding/binary"
	"hash"
	"slices"
	"strings"

	"golang.org/x/crypto/ssh"
)

// Change says which kind of a console's settings changed.
type Change uint8

const (
	// ChangeConnection: BMC address, user, interface, cipher suite,
	// authentication type, privilege or quirks. The SOL session must be
	// re-established.
	ChangeConnection Change = 1 << iota
	// ChangeLog: rotation or retention; the log writer is reconfigured.
	ChangeLog
	// ChangeAccess: the access rules covering the console; attached users
	// must be re-checked.
	ChangeAccess
	// ChangeEscape: the escape sequence of attached sessions.
	ChangeEscape
	// ChangeCredentials: the BMC password or K_g, nothing else of the
	// connection. A live session stays (it is authenticated, and a new
	// password that is wrong, or saved before the BMCs have it, must not
	// take every console down); the console manager checks them with a
	// short-lived session, and the next connection uses them.
	ChangeCredentials
	// ChangeSteal: the SOL ownership policy. A live session stays (the
	// policy matters only when another client holds the payload); a
	// console waiting for the payload or contested applies it at once.
	ChangeSteal
)

func (ch Change) String() string {
	var parts []string
	for _, x := range []struct {
		c    Change
		name string
	}{{ChangeConnection, "connection"}, {ChangeCredentials, "credentials"}, {ChangeSteal, "steal"}, {ChangeLog, "log"}, {ChangeAccess, "access"}, {ChangeEscape, "escape"}} {
		if ch&x.c != 0 {
			parts = append(parts, x.name)
		}
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, "+")
}

// ConsoleChange is one console present in both snapshots whose settings
// differ.
type ConsoleChange struct {
	Name string
	What Change
}

// Diff is what changed between two snapshots. Where a setting is written
// (file, line) does not count as a change.
type Diff struct {
	Added   []string // consoles, in new config order
	Removed []string // consoles, in old config order
	Changed []ConsoleChange
	Users   []string // users added, removed, or with other keys or groups
	Rules   bool     // access rules changed (per-console effect in Changed)
	Syslog  bool     // syslog targets changed
	Server  bool     // [server] changed, trusted CAs included
}

// Empty reports whether nothing changed.
func (d *Diff) Empty() bool {
	return len(d.Added) == 0 && len(d.Removed) == 0 && len(d.Changed) == 0 &&
		len(d.Users) == 0 && !d.Rules && !d.Syslog && !d.Server
}

// Compare returns what changed from old to new. A nil old means everything
// in new was added.
func Compare(old, new *Config) Diff {
	var d Diff
	if new == nil {
		new = &Config{}
	}
	if old == nil {
		old = &Config{}
	}
	for i := range new.Consoles {
		nc := &new.Consoles[i]
		oi, ok := old.consoles[nc.Name]
		if !ok {
			d.Added = append(d.Added, nc.Name)
			continue
		}
		oc := &old.Consoles[oi]
		var what Change
		if !connEqual(oc, nc) {
			what |= ChangeConnection
		}
		if !oc.Password.Equal(nc.Password) || !oc.KG.Equal(nc.KG) {
			what |= ChangeCredentials
		}
		if oc.Steal != nc.Steal {
			what |= ChangeSteal
		}
		if oc.Log != nc.Log {
			what |= ChangeLog
		}
		if oc.Escape != nc.Escape {
			what |= ChangeEscape
		}
		if old.accessSig[oi] != new.accessSig[i] {
			what |= ChangeAccess
		}
		if what != 0 {
			d.Changed = append(d.Changed, ConsoleChange{nc.Name, what})
		}
	}
	for i := range old.Consoles {
		if _, ok := new.consoles[old.Consoles[i].Name]; !ok {
			d.Removed = append(d.Removed, old.Consoles[i].Name)
		}
	}
	for i := range new.Users {
		nu := &new.Users[i]
		oi, ok := old.users[nu.Name]
		if !ok || !userEqual(&old.Users[oi], nu) {
			d.Users = append(d.Users, nu.Name)
		}
	}
	for i := range old.Users {
		if _, ok := new.users[old.Users[i].Name]; !ok {
			d.Users = append(d.Users, old.Users[i].Name)
		}
	}
	d.Rules = !slices.EqualFunc(old.Rules, new.Rules, func(a, b Rule) bool { return a.digest() == b.digest() })
	d.Syslog = !slices.EqualFunc(old.Syslog, new.Syslog, syslogEqual)
	d.Server = serverHash(&old.Server) != serverHash(&new.Server)
	return d
}

func connEqual(a, b *Console) bool {
	return a.BMC == b.BMC && a.User == b.User &&
		a.Interface == b.Interface && a.CipherSuite == b.CipherSuite && a.CipherSuiteZero == b.CipherSuiteZero &&
		a.InsecureCipherSuite == b.InsecureCipherSuite &&
		a.AuthType == b.AuthType && a.Privilege == b.Privilege && slices.Equal(a.Quirks, b.Quirks)
}

func userEqual(a, b *User) bool {
	return slices.Equal(a.Groups, b.Groups) && slices.EqualFunc(a.Keys, b.Keys, func(x, y ssh.PublicKey) bool {
		return string(x.Marshal()) == string(y.Marshal())
	})
}

func syslogEqual(a, b SyslogTarget) bool {
	return a.URL == b.URL && a.Network == b.Network && a.Address == b.Address && a.Format == b.Format &&
		a.Facility == b.Facility && a.Consoles == b.Consoles && a.CAFile == b.CAFile && a.SyslogOptions.equal(&b.SyslogOptions)
}

// hashWriter writes length-prefixed fields, so that no two different
// sequences of fields hash alike. With noSecrets a secret counts by its
// source only (Fingerprint), never by its value.
type hashWriter struct {
	h         hash.Hash
	noSecrets bool
}

func (w hashWriter) str(s string) {
	var n [8]byte
	binary.LittleEndian.PutUint64(n[:], uint64(len(s)))
	w.h.Write(n[:])
	w.h.Write([]byte(s))
}

func (w hashWriter) bytes(b []byte) { w.str(string(b)) }

func (w hashWriter) num(v int64) {
	var n [8]byte
	binary.LittleEndian.PutUint64(n[:], uint64(v))
	w.h.Write(n[:])
}

func (w hashWriter) strs(l []string) {
	w.num(int64(len(l)))
	for _, s := range l {
		w.str(s)
	}
}

func (w hashWriter) secret(s Secret) {
	if !s.set {
		w.num(0)
		return
	}
	if !s.read || w.noSecrets {
		w.num(1)
		w.str(s.source)
		return
	}
	w.num(2)
	w.bytes(s.Reveal())
}

func serverHash(s *Server) [32]byte {
	h := sha256.New()
	w := hashWriter{h: h}
	w.str(s.Listen)
	w.str(s.LogDir)
	w.str(s.StateDir)
	w.str(s.Metrics)
	w.str(s.LogLevel)
	w.strs(s.HostKeys)
	w.num(int64(s.ReloadInterval))
	s.Daemon.hash(w)
	w.num(int64(len(s.TrustedUserCAs)))
	for _, k := range s.TrustedUserCAs {
		w.bytes(k.Marshal())
	}
	var sum [32]byte
	h.Sum(sum[:0])
	return sum
}

// canonicalHash fingerprints the effective configuration, leaving out where
// things were written, so that moving or commenting lines is no change.
func (c *Config) canonicalHash() [32]byte { return c.digest(true) }

// digest is canonicalHash, with or without the secrets' values.
func (c *Config) digest(secrets bool) [32]byte {
	h := sha256.New()
	w := hashWriter{h: h, noSecrets: !secrets}
	sh := serverHash(&c.Server)
	h.Write(sh[:])
	w.num(int64(len(c.Consoles)))
	for i := range c.Consoles {
		x := &c.Consoles[i]
		w.str(x.Name)
		w.str(x.BMC)
		w.str(x.User)
		w.secret(x.Password)
		w.secret(x.KG)
		w.str(x.Interface)
		w.num(int64(x.CipherSuite))
		w.num(b2i(x.CipherSuiteZero))
		w.num(b2i(x.InsecureCipherSuite))
		w.str(x.AuthType)
		w.str(x.Privilege)
		w.strs(x.Quirks)
		w.str(x.Steal)
		w.str(x.Escape)
		w.num(x.Log.RotateSize)
		w.num(int64(x.Log.RotateAge))
		w.num(int64(x.Log.RetainAge))
		w.num(x.Log.RetainBytes)
	}
	w.num(int64(len(c.Users)))
	for i := range c.Users {
		u := &c.Users[i]
		w.str(u.Name)
		w.strs(u.Groups)
		w.num(int64(len(u.Keys)))
		for _, k := range u.Keys {
			w.bytes(k.Marshal())
		}
	}
	w.num(int64(len(c.Rules)))
	for i := range c.Rules {
		d := c.Rules[i].digest()
		w.num(int64(d[0]))
		w.num(int64(d[1]))
	}
	w.num(int64(len(c.Syslog)))
	for _, t := range c.Syslog {
		w.str(t.URL)
		w.str(t.Format)
		w.num(int64(t.Facility))
		w.str(t.Consoles)
		w.str(t.CAFile)
	}
	var sum [32]byte
	h.Sum(sum[:0])
	return sum
}

func b2i(b bool) int64 {
	if b {
		return 1
	}
	return 0
}
