// Building the Config from parsed files: [[user]]: SSH keys and groups.

package config

import (
	"bytes"
	"slices"
	"strings"

	"golang.org/x/crypto/ssh"
)

func (b *builder) users(f *parsedFile) {
	for i, us := range f.shape.User {
		e := f.pos.entry("user", i)
		line := e.lineOf("")
		bad := func(l int, format string, args ...any) {
			b.errs.addf(f.name, l, "", "user "+us.Name+": "+format, args...)
		}
		if err := checkIdent("user", us.Name); err != nil {
			b.errs.addf(f.name, e.lineOf("name"), "", "[[user]] %v", err)
			continue
		}
		if prev, dup := b.userLoc[us.Name]; dup {
			bad(e.lineOf("name"), "defined twice; first at %s", prev)
			continue
		}
		b.userLoc[us.Name] = loc{f.name, line}
		u := User{Name: us.Name, File: f.name, Line: line}
		for j, text := range us.Keys {
			l := e.elemLine("keys", j)
			k, _, opts, rest, err := ssh.ParseAuthorizedKey([]byte(text))
			switch {
			case err != nil:
				bad(l, "keys[%d]: not an SSH public key in authorized_keys format (%v)", j, err)
				continue
			case len(opts) > 0:
				bad(l, "keys[%d]: key options (%s) are not supported", j, strings.Join(opts, ","))
				continue
			case len(bytes.TrimSpace(rest)) > 0:
				bad(l, "keys[%d]: holds more than one key; give one key per element", j)
				continue
			}
			if _, ok := k.(*ssh.Certificate); ok {
				bad(l, "keys[%d]: is a certificate; trust its CA with [server] trusted_user_ca_keys instead", j)
				continue
			}
			m := string(k.Marshal())
			if other, dup := b.keyOwner[m]; dup && other != us.Name {
				bad(l, "keys[%d]: the same key belongs to user %s; a key must identify one person", j, other)
				continue
			} else if dup {
				continue
			}
			b.keyOwner[m] = us.Name
			u.Keys = append(u.Keys, k)
		}
		for j, g := range us.Groups {
			if err := checkIdent("group", g); err != nil {
				bad(e.elemLine("groups", j), "%v", err)
				continue
			}
			if g == "all" {
				bad(e.elemLine("groups", j), "group \"all\" is built in (every user is in it)")
				continue
			}
			if !slices.Contains(u.Groups, g) {
				u.Groups = append(u.Groups, g)
			}
		}
		if b.cfg.users == nil {
			b.cfg.users = map[string]int{}
			b.cfg.keys = map[string]int{}
		}
		b.cfg.users[u.Name] = len(b.cfg.Users)
		for _, k := range u.Keys {
			b.cfg.keys[string(k.Marshal())] = len(b.cfg.Users)
		}
		if len(u.Keys) == 0 && !b.caConfigured {
			b.warnf("%s:%d: user %s has no keys and no trusted_user_ca_* is set: they cannot log in", f.name, line, u.Name)
		}
		b.cfg.Users = append(b.cfg.Users, u)
	}
}
