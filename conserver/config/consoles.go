// Building the Config from parsed files: [[console]]: hostlist expansion, BMC pairing, duplicate detection.

package config

import (
	"fmt"
	"slices"
	"strings"

	"github.com/solgate/solgate/conserver/hostlist"
)

func (b *builder) consoles(f *parsedFile, base settings, defaultBMC string) {
	for i := range f.shape.Console {
		cs := &f.shape.Console[i]
		e := f.pos.entry("console", i)
		line := 0
		if e != nil {
			line = e.line
		}
		if cs.Name == "" {
			b.errs.addf(f.name, line, "", "[[console]] has no name")
			continue
		}
		label := cs.Name
		names, err := hostlist.ExpandLimit(cs.Name, b.limit)
		if err != nil {
			b.errs.addf(f.name, e.lineOf("name"), "", "name: %v", err)
			continue
		}
		if len(names) == 0 {
			b.errs.addf(f.name, e.lineOf("name"), "", "name %q names no console", cs.Name)
			continue
		}
		s := b.apply(base, &cs.settingsShape, f, e, label)
		if s.Interface == "lan" && len(s.Password.Reveal()) > maxPassword15 {
			b.errs.addf(f.name, line, label, "interface \"lan\" (IPMI 1.5) allows passwords of at most %d bytes; this one has %d", maxPassword15, len(s.Password.Reveal()))
		}

		bmcs := b.bmcs(f, e, cs, names, defaultBMC)
		if bmcs == nil {
			continue
		}
		var badNames []string
		var firstBad error
		var dups map[loc][]string // rare: allocated on the first duplicate
		for k, n := range names {
			if err := checkConsoleName(n); err != nil {
				if firstBad == nil {
					firstBad = err
				}
				badNames = append(badNames, n)
				continue
			}
			if prev, dup := b.owner[n]; dup {
				if dups == nil {
					dups = map[loc][]string{}
				}
				dups[prev] = append(dups[prev], n)
				continue
			}
			if err := checkBMC(bmcs[k]); err != nil {
				b.errs.addf(f.name, e.lineOf("bmc"), n, "%v", err)
				continue
			}
			b.owner[n] = loc{f.name, line}
			if other, shared := b.bmcOwner[bmcs[k]]; shared {
				b.warnf("%s:%d: consoles %s and %s share BMC %s", f.name, line, other, n, bmcs[k])
			} else {
				b.bmcOwner[bmcs[k]] = n
			}
			b.cfg.consoles[n] = len(b.cfg.Consoles)
			b.cfg.Consoles = append(b.cfg.Consoles, Console{
				Name: n, BMC: bmcs[k], User: s.User, Password: s.Password, KG: s.KG,
				Interface: s.Interface, CipherSuite: s.CipherSuite, CipherSuiteZero: s.CipherSuiteZero,
				AuthType: s.AuthType, Privilege: s.Privilege, Quirks: s.Quirks, Steal: s.Steal,
				Escape: s.Escape, Log: s.Log, File: f.name, Line: line,
			})
		}
		if firstBad != nil {
			more := ""
			if len(badNames) > 1 {
				more = fmt.Sprintf(" (and %d more bad names: %s)", len(badNames)-1, hostlist.Compress(badNames[1:]))
			}
			b.errs.addf(f.name, e.lineOf("name"), "", "%v%s", firstBad, more)
		}
		for prev, ns := range sortedDups(dups) {
			b.errs.addf(f.name, e.lineOf("name"), hostlist.Compress(ns), "defined twice; first at %s", prev)
		}
		if len(b.cfg.Consoles) > b.limit {
			b.errs.addf(f.name, line, "", "more than %d consoles in all", b.limit)
			return
		}
	}
}

// sortedDups yields duplicate groups in the order of their first definition.
func sortedDups(m map[loc][]string) func(func(loc, []string) bool) {
	return func(yield func(loc, []string) bool) {
		keys := make([]loc, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		slices.SortFunc(keys, func(a, b loc) int {
			if c := strings.Compare(a.file, b.file); c != 0 {
				return c
			}
			return a.line - b.line
		})
		for _, k := range keys {
			if !yield(k, m[k]) {
				return
			}
		}
	}
}

// bmcs returns the BMC address of each name, from a template or a parallel
// hostlist, or nil after reporting an error.
func (b *builder) bmcs(f *parsedFile, e *entryPos, cs *consoleShape, names []string, defaultBMC string) []string {
	spec := defaultBMC
	if cs.BMC != nil {
		spec = *cs.BMC
	}
	line := e.lineOf("bmc")
	if spec == "" {
		b.errs.addf(f.name, e.lineOf(""), cs.Name, "no bmc: give a hostlist as long as name, or a template such as \"{name}-bmc\" (here or in [defaults])")
		return nil
	}
	out := make([]string, len(names))
	if strings.Contains(spec, "{name}") {
		if err := checkTemplate(spec); err != nil {
			b.errs.addf(f.name, line, cs.Name, "%v", err)
			return nil
		}
		for i, n := range names {
			out[i] = strings.ReplaceAll(spec, "{name}", n)
		}
		return out
	}
	addrs, err := hostlist.ExpandLimit(spec, b.limit)
	if err != nil {
		b.errs.addf(f.name, line, cs.Name, "bmc: %v", err)
		return nil
	}
	if len(addrs) != len(names) {
		hint := ""
		if len(addrs) == 1 {
			hint = " (for one BMC per name use a template such as \"{name}-bmc\")"
		}
		b.errs.addf(f.name, line, cs.Name, "bmc %q has %d addresses but name %q has %d names%s", spec, len(addrs), cs.Name, len(names), hint)
		return nil
	}
	return addrs
}
