// Building the Config from parsed files: [[access]]: rules and certificate principals.

package config

import (
	"fmt"
	"slices"
	"strings"

	"github.com/solgate/solgate/conserver/hostlist"
)

func (b *builder) rules(f *parsedFile) {
	for i, as := range f.shape.Access {
		e := f.pos.entry("access", i)
		r := Rule{Consoles: as.Consoles, File: f.name, Line: e.lineOf("")}
		ok := true
		switch as.Consoles {
		case "":
			b.errs.addf(f.name, r.Line, "", "[[access]] has no consoles (a hostlist, or \"*\" for all)")
			ok = false
		case "*":
		default:
			if err := checkSpaces(as.Consoles); err != nil {
				b.errs.addf(f.name, e.lineOf("consoles"), "", "access consoles %v", err)
				ok = false
				break
			}
			names, err := hostlist.ExpandLimit(as.Consoles, b.limit)
			if err != nil {
				b.errs.addf(f.name, e.lineOf("consoles"), "", "access consoles: %v", err)
				ok = false
				break
			}
			r.names = make(map[string]bool, len(names))
			for _, n := range names {
				r.names[n] = true
			}
		}
		for _, l := range []struct {
			key string
			in  []string
			dst *[]string
		}{{"read", as.Read, &r.Read}, {"write", as.Write, &r.Write}, {"power", as.Power, &r.Power}, {"deny", as.Deny, &r.Deny}} {
			for j, p := range l.in {
				if err := b.checkPrincipal(p); err != nil {
					b.errs.addf(f.name, e.elemLine(l.key, j), "", "access %s: %v", l.key, err)
					ok = false
					continue
				}
				if !slices.Contains(*l.dst, p) {
					*l.dst = append(*l.dst, p)
				}
			}
		}
		if len(as.Read)+len(as.Write)+len(as.Power)+len(as.Deny) == 0 {
			b.errs.addf(f.name, r.Line, "", "[[access]] for %s grants and denies nothing (set read, write, power or deny)", quote(as.Consoles))
			ok = false
		}
		if ok {
			b.cfg.Rules = append(b.cfg.Rules, r)
		}
	}
}

// checkPrincipal accepts a configured user name, "@group" for a group some
// user is in, or "@all".
func (b *builder) checkPrincipal(p string) error {
	if g, isGroup := strings.CutPrefix(p, "@"); isGroup {
		if g == "all" || b.cfg.groups[g] {
			return nil
		}
		return fmt.Errorf("unknown group %s (no [[user]] lists it in groups)", quote(p))
	}
	if _, ok := b.userLoc[p]; ok {
		return nil
	}
	return fmt.Errorf("unknown user %s (groups start with @)", quote(p))
}
