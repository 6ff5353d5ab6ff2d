// Building the Config from parsed files: [[console]]: hostlist expansion, BMC pairing, duplicate detection.

package config

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

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
		label := cutName(cs.Name)
		if err := checkSpaces(cs.Name); err != nil {
			b.errs.addf(f.name, e.lineOf("name"), "", "name %v", err)
			continue
		}
		left := b.limit - len(b.cfg.Consoles)
		if left < 1 {
			b.errs.addf(f.name, e.lineOf("name"), "", "name %s: more than %d consoles in all", quote(cs.Name), b.limit)
			return
		}
		// The budget left, not the whole limit: an entry is refused before
		// its names are produced, whatever came before it.
		names, repeated, err := hostlist.ExpandDups(cs.Name, left)
		if errors.Is(err, hostlist.ErrTooLarge) {
			b.errs.addf(f.name, e.lineOf("name"), "", "name: %v (at most %d consoles in all; %d are defined before this entry)", err, b.limit, len(b.cfg.Consoles))
			return
		}
		if err != nil {
			b.errs.addf(f.name, e.lineOf("name"), "", "name: %v", err)
			continue
		}
		if len(names) == 0 {
			b.errs.addf(f.name, e.lineOf("name"), "", "name %s names no console", quote(cs.Name))
			continue
		}
		if len(repeated) > 0 {
			b.warnf("%s:%d: name %s lists %s more than once", f.name, e.lineOf("name"), quote(cs.Name), cutName(hostlist.Compress(repeated)))
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
			lower := strings.ToLower(n)
			if other, clash := b.lowerOwner[lower]; clash {
				// Refused, not just warned about: a case-insensitive file
				// system (a copy of the log directory, a Samba share) would
				// merge their logs, and people read the names as one.
				b.errs.addf(f.name, e.lineOf("name"), n, "differs from console %s (%s) only in letter case; console names must differ by more than case", other, b.owner[other])
				continue
			}
			if err := CheckBMC(bmcs[k]); err != nil {
				b.errs.addf(f.name, e.lineOf("bmc"), n, "%v", err)
				continue
			}
			b.owner[n] = loc{f.name, line}
			b.lowerOwner[lower] = n
			if other, shared := b.bmcOwner[bmcs[k]]; shared {
				b.warnf("%s:%d: consoles %s and %s share BMC %s", f.name, line, other, n, bmcs[k])
			} else {
				b.bmcOwner[bmcs[k]] = n
			}
			b.cfg.consoles[n] = len(b.cfg.Consoles)
			b.cfg.Consoles = append(b.cfg.Consoles, Console{
				Name: n, BMC: bmcs[k], User: s.User, Password: s.Password, KG: s.KG,
				Interface: s.Interface, CipherSuite: s.CipherSuite, CipherSuiteZero: s.CipherSuiteZero,
				InsecureCipherSuite: s.InsecureCipherSuite,
				AuthType:            s.AuthType, Privilege: s.Privilege, Quirks: s.Quirks, Steal: s.Steal,
				Escape: s.Escape, Log: s.Log, File: f.name, Line: line,
			})
		}
		if firstBad != nil {
			more := ""
			if len(badNames) > 1 {
				more = fmt.Sprintf(" (and %d more bad names: %s)", len(badNames)-1, cutName(hostlist.Compress(badNames[1:])))
			}
			b.errs.addf(f.name, e.lineOf("name"), "", "%v%s", firstBad, more)
		}
		for prev, ns := range sortedDups(dups) {
			b.errs.addf(f.name, e.lineOf("name"), cutName(hostlist.Compress(ns)), "defined twice; first at %s", prev)
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
	label := cutName(cs.Name)
	if spec == "" {
		b.errs.addf(f.name, e.lineOf(""), label, "no bmc: give a hostlist as long as name, or a template such as \"{name}-bmc\" (here or in [defaults])")
		return nil
	}
	out := make([]string, len(names))
	if strings.Contains(spec, "{name}") {
		if err := CheckTemplate(spec); err != nil {
			b.errs.addf(f.name, line, label, "%v", err)
			return nil
		}
		for i, n := range names {
			out[i] = strings.ReplaceAll(spec, "{name}", n)
		}
		return out
	}
	if err := checkSpaces(spec); err != nil {
		b.errs.addf(f.name, line, label, "bmc %v", err)
		return nil
	}
	// One more than needed, so that a list one too long is told apart
	// from one far too long without expanding the latter.
	addrs, repeated, err := hostlist.ExpandDups(spec, len(names)+1)
	if errors.Is(err, hostlist.ErrTooLarge) {
		b.errs.addf(f.name, line, label, "bmc %s has more addresses than name %s has names (%d)", quote(spec), quote(cs.Name), len(names))
		return nil
	}
	if err != nil {
		b.errs.addf(f.name, line, label, "bmc: %v", err)
		return nil
	}
	if len(addrs) != len(names) {
		hint := ""
		switch {
		case len(repeated) > 0:
			hint = fmt.Sprintf(" (it lists %s more than once; each counts once)", cutName(hostlist.Compress(repeated)))
		case len(addrs) == 1:
			hint = " (for one BMC per name use a template such as \"{name}-bmc\")"
		}
		b.errs.addf(f.name, line, label, "bmc %s has %d addresses but name %s has %d names%s", quote(spec), len(addrs), quote(cs.Name), len(names), hint)
		return nil
	}
	return addrs
}

// checkSpaces refuses white space inside a name of a hostlist: hostlist
// syntax reads "node 1" as two names, node and 1, which is never what a
// config means. White space next to the commas that separate names is
// fine ("node1, node2").
func checkSpaces(list string) error {
	depth, start := 0, 0
	for i := 0; i <= len(list); i++ {
		if i < len(list) {
			switch list[i] {
			case '[':
				depth++
				continue
			case ']':
				depth--
				continue
			case ',':
				if depth > 0 {
					continue
				}
			default:
				continue
			}
		}
		term := strings.TrimSpace(list[start:i])
		if strings.ContainsAny(term, " \t\r\n") {
			return fmt.Errorf("%s: %s holds white space, which would split it into several names; separate names with commas", quote(list), quote(term))
		}
		start = i + 1
	}
	return nil
}

// cutName shortens a name or list of names used as the console of an
// error: the message quotes it in full where that matters, cut.
func cutName(s string) string {
	const keep = 60
	if len(s) <= keep+20 {
		return s
	}
	i := keep
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i] + fmt.Sprintf("... (%d bytes)", len(s))
}
