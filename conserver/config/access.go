package config

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"

	"github.com/solgate/solgate/conserver/hostlist"
	"golang.org/x/crypto/ssh"
)

var (
	// ErrUnknownKey means no configured user holds the key.
	ErrUnknownKey = errors.New("config: key belongs to no user")
	// ErrBadCertificate is wrapped by every reason to refuse a certificate.
	ErrBadCertificate = errors.New("config: certificate refused")
)

// Perms returns what user may do on console: the union of what the rules
// covering the console grant the user (directly, through a group, or
// through @all), or nothing if any of them denies the user. Write implies
// Read. Unknown users and consoles get nothing.
func (c *Config) Perms(user, console string) Perm {
	ui, ok := c.users[user]
	if !ok {
		return 0
	}
	ci, ok := c.consoles[console]
	if !ok {
		return 0
	}
	u := &c.Users[ui]
	var p Perm
	for _, ri := range c.access[ci] {
		r := &c.Rules[ri]
		if names(r.Deny, u) {
			return 0
		}
		if names(r.Read, u) {
			p |= Read
		}
		if names(r.Write, u) {
			p |= Write | Read
		}
		if names(r.Power, u) {
			p |= Power
		}
	}
	return p
}

// Allowed reports whether user (a [[user]] name, see UserForKey) holds every
// permission in perm on console.
func (c *Config) Allowed(user, console string, perm Perm) bool {
	return perm != 0 && c.Perms(user, console)&perm == perm
}

// ConsolesFor lists, in config order, the consoles on which user holds
// every permission in perm.
func (c *Config) ConsolesFor(user string, perm Perm) []string {
	var out []string
	for i := range c.Consoles {
		if c.Allowed(user, c.Consoles[i].Name, perm) {
			out = append(out, c.Consoles[i].Name)
		}
	}
	return out
}

// names reports whether list names the user, one of the user's groups, or
// @all.
func names(list []string, u *User) bool {
	for _, p := range list {
		if p == u.Name || p == "@all" {
			return true
		}
		if g, ok := strings.CutPrefix(p, "@"); ok && slices.Contains(u.Groups, g) {
			return true
		}
	}
	return false
}

// UserForKey returns the user a public key or certificate identifies. See
// IdentifyKey for the reason when it identifies nobody.
func (c *Config) UserForKey(key ssh.PublicKey) (string, bool) {
	u, err := c.IdentifyKey(key)
	return u, err == nil
}

// IdentifyKey returns the user a key identifies: the user that lists a
// plain key, or for a certificate, the first of its principals that names
// a user, provided the certificate is a user certificate signed by a
// trusted CA, currently valid, and has no critical options other than a
// source-address (which, without a client address to check, refuses it;
// see IdentifyKeyFrom). The error wraps ErrUnknownKey or ErrBadCertificate
// and is safe to log.
func (c *Config) IdentifyKey(key ssh.PublicKey) (string, error) {
	return c.identify(key, nil)
}

// IdentifyKeyFrom is IdentifyKey for a key a client presents from remote:
// a certificate's source-address critical option (a comma-separated list
// of addresses and CIDR networks) is enforced: the certificate is refused
// unless remote is a TCP address in one of them.
func (c *Config) IdentifyKeyFrom(key ssh.PublicKey, remote net.Addr) (string, error) {
	if remote == nil {
		return "", fmt.Errorf("%w: no client address to check", ErrUnknownKey)
	}
	return c.identify(key, remote)
}

func (c *Config) identify(key ssh.PublicKey, remote net.Addr) (string, error) {
	if key == nil {
		return "", ErrUnknownKey
	}
	cert, ok := key.(*ssh.Certificate)
	if !ok {
		if i, ok := c.keys[string(key.Marshal())]; ok {
			return c.Users[i].Name, nil
		}
		return "", ErrUnknownKey
	}
	if cert.CertType != ssh.UserCert {
		return "", fmt.Errorf("%w: %q is a host certificate", ErrBadCertificate, cert.KeyId)
	}
	if cert.SignatureKey == nil || !c.cas[string(cert.SignatureKey.Marshal())] {
		return "", fmt.Errorf("%w: %q is not signed by a trusted user CA", ErrBadCertificate, cert.KeyId)
	}
	if len(cert.ValidPrincipals) == 0 {
		// OpenSSH reads "no principals" as "any user"; here that would
		// let one certificate be everyone.
		return "", fmt.Errorf("%w: %q has no principals", ErrBadCertificate, cert.KeyId)
	}
	for _, p := range cert.ValidPrincipals {
		if _, ok := c.users[p]; !ok {
			continue
		}
		checker := ssh.CertChecker{Clock: c.now, SupportedCriticalOptions: []string{sourceAddress}}
		if err := checker.CheckCert(p, cert); err != nil {
			return "", fmt.Errorf("%w: %q: %v", ErrBadCertificate, cert.KeyId, err)
		}
		if list, ok := cert.CriticalOptions[sourceAddress]; ok {
			if err := checkSourceAddress(list, remote); err != nil {
				return "", fmt.Errorf("%w: %q: %v", ErrBadCertificate, cert.KeyId, err)
			}
		}
		return p, nil
	}
	return "", fmt.Errorf("%w: %q: no principal (%s) names a user", ErrBadCertificate, cert.KeyId, strings.Join(cert.ValidPrincipals, ","))
}

// sourceAddress is the certificate critical option that limits where the
// certificate may be used from.
const sourceAddress = "source-address"

// checkSourceAddress reports whether remote is allowed by a
// source-address list: addresses and CIDR networks separated by commas.
// A malformed list allows nothing.
func checkSourceAddress(list string, remote net.Addr) error {
	if remote == nil {
		return errors.New("has a source-address restriction and no client address is known")
	}
	ta, ok := remote.(*net.TCPAddr)
	if !ok {
		return fmt.Errorf("has a source-address restriction and the client address %s is not an IP address", remote)
	}
	ip, ok := netip.AddrFromSlice(ta.IP)
	if !ok {
		return fmt.Errorf("has a source-address restriction and the client address %s is not an IP address", remote)
	}
	ip = ip.Unmap()
	for _, item := range strings.Split(list, ",") {
		item = strings.TrimSpace(item)
		if a, err := netip.ParseAddr(item); err == nil {
			if a.Unmap() == ip {
				return nil
			}
			continue
		}
		pfx, err := netip.ParsePrefix(item)
		if err != nil {
			return fmt.Errorf("source-address %q is not an address or network", item)
		}
		if pfx.Masked().Contains(ip) {
			return nil
		}
	}
	return fmt.Errorf("may not be used from %s (source-address %s)", ip, list)
}

// ListName is the SSH user name the gateway reserves for listing a
// person's consoles (ssh list@HOST); no console may be called that.
const ListName = "list"

// index computes which rules cover which console, rejects contradicting
// rules, and fingerprints each console's rules for Compare.
func (b *builder) index() {
	c := b.cfg
	c.access = make([][]int32, len(c.Consoles))
	c.accessSig = make([][2]uint64, len(c.Consoles))
	covers := make([][]int32, len(c.Rules)) // rule -> console indices, ascending
	for ri := range c.Rules {
		r := &c.Rules[ri]
		var idx []int32
		if r.names == nil {
			idx = make([]int32, len(c.Consoles))
			for i := range idx {
				idx[i] = int32(i)
			}
		} else {
			idx = make([]int32, 0, len(r.names))
			for n := range r.names {
				if i, ok := c.consoles[n]; ok {
					idx = append(idx, int32(i))
				}
			}
			slices.Sort(idx)
		}
		covers[ri] = idx
		if len(idx) == 0 {
			b.warnf("%s:%d: access rule for %s matches no console", r.File, r.Line, r.Consoles)
		}
		d := r.grantDigest()
		for _, i := range idx {
			c.access[i] = append(c.access[i], int32(ri))
			c.accessSig[i][0] += d[0]
			c.accessSig[i][1] += d[1]
		}
	}
	b.conflicts(covers)
}

// conflicts reports a user or group that one rule grants something and
// another (or the same) denies on the same console: deny would win, but
// the author evidently meant something else.
func (b *builder) conflicts(covers [][]int32) {
	c := b.cfg
	type use struct {
		rule int
		perm string
	}
	grants := map[string][]use{}
	for ri, r := range c.Rules {
		for _, l := range []struct {
			perm string
			list []string
		}{{"read", r.Read}, {"write", r.Write}, {"power", r.Power}} {
			for _, p := range l.list {
				grants[p] = append(grants[p], use{ri, l.perm})
			}
		}
	}
	for ri, r := range c.Rules {
		for _, p := range r.Deny {
			for _, g := range grants[p] {
				both := intersect(covers[ri], covers[g.rule])
				if len(both) == 0 {
					continue
				}
				names := make([]string, len(both))
				for i, ci := range both {
					names[i] = c.Consoles[ci].Name
				}
				gr := &c.Rules[g.rule]
				where := fmt.Sprintf("the rule at %s:%d", gr.File, gr.Line)
				if g.rule == ri {
					where = "the same rule"
				}
				b.errs.addf(r.File, r.Line, hostlist.Compress(names),
					"access rule denies %s, whom %s grants %s; remove one of them", p, where, g.perm)
			}
		}
	}
}

func intersect(a, b []int32) []int32 {
	var out []int32
	for i, j := 0, 0; i < len(a) && j < len(b); {
		switch {
		case a[i] < b[j]:
			i++
		case a[i] > b[j]:
			j++
		default:
			out = append(out, a[i])
			i++
			j++
		}
	}
	return out
}

// digest fingerprints what a rule says (not where it is).
func (r *Rule) digest() [2]uint64 { return r.fingerprint(true) }

// grantDigest fingerprints what a rule grants and denies, for the consoles
// it covers: moving a rule's range does not change the access of the
// consoles that stay in it.
func (r *Rule) grantDigest() [2]uint64 { return r.fingerprint(false) }

func (r *Rule) fingerprint(withConsoles bool) [2]uint64 {
	h := sha256.New()
	w := hashWriter{h: h}
	if withConsoles {
		w.str(r.Consoles)
	}
	for _, l := range [][]string{r.Read, r.Write, r.Power, r.Deny} {
		w.strs(l)
	}
	var sum [32]byte
	h.Sum(sum[:0])
	return [2]uint64{binary.LittleEndian.Uint64(sum[:8]), binary.LittleEndian.Uint64(sum[8:16])}
}
