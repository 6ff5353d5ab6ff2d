package migrate

import (
	"slices"
	"strconv"
	"strings"

	"github.com/solgate/solgate/conserver/hostlist"
)

// entry is one [[console]] entry: consoles with the same settings whose
// names (and BMCs) fold into hostlists.
type entry struct {
	cons []*Console
	name string // hostlist
	bmc  string // parallel hostlist, or a template; "" inherits [defaults]
}

// fold groups consecutive consoles with equal keys into entries. A run whose
// BMCs all derive from their names by one template becomes a single entry
// with that template, whatever gaps its names have; otherwise consoles whose
// names and BMCs both count up in step are paired as parallel hostlists.
// Every entry is checked by expanding it again; one that does not give
// back exactly its consoles is split into one entry per console.
func fold(cs []*Console, key func(*Console) string, defTemplate string) []entry {
	var out []entry
	for i := 0; i < len(cs); {
		j := i + 1
		k := key(cs[i])
		for j < len(cs) && key(cs[j]) == k {
			j++
		}
		out = append(out, foldRun(cs[i:j], defTemplate)...)
		i = j
	}
	return out
}

func foldRun(cs []*Console, defTemplate string) []entry {
	tmpl := make([]string, len(cs))
	for i, c := range cs {
		tmpl[i] = template(c.Name, c.BMC)
	}
	// startsRun: a template shared by this console and the next.
	startsRun := func(i int) bool {
		return tmpl[i] != "" && (tmpl[i] == defTemplate || i+1 < len(cs) && tmpl[i+1] == tmpl[i])
	}
	var out []entry
	for i := 0; i < len(cs); {
		if startsRun(i) {
			j := i + 1
			for j < len(cs) && tmpl[j] == tmpl[i] {
				j++
			}
			b := tmpl[i]
			if b == defTemplate {
				b = ""
			}
			out = append(out, checked(entry{cons: cs[i:j], name: compress(cs[i:j], false), bmc: b}, true, defTemplate)...)
			i = j
			continue
		}
		var names, bmcs counter
		names.add(cs[i].Name)
		bmcs.add(cs[i].BMC)
		j := i + 1
		for j < len(cs) && !startsRun(j) {
			// Both lists must take the console, or neither does.
			n, b := names, bmcs
			if !n.add(cs[j].Name) || !b.add(cs[j].BMC) {
				break
			}
			names, bmcs = n, b
			j++
		}
		e := entry{cons: cs[i:j], name: names.String(), bmc: bmcs.String()}
		out = append(out, checked(e, false, defTemplate)...)
		i = j
	}
	return out
}

func compress(cs []*Console, bmc bool) string {
	v := make([]string, len(cs))
	for i, c := range cs {
		v[i] = c.Name
		if bmc {
			v[i] = c.BMC
		}
	}
	if len(v) == 1 {
		return v[0]
	}
	return hostlist.Compress(v)
}

// checked returns e if expanding it gives back its consoles, else one entry
// per console.
func checked(e entry, byTemplate bool, defTemplate string) []entry {
	if entryOK(e, byTemplate) {
		return []entry{e}
	}
	out := make([]entry, len(e.cons))
	for i, c := range e.cons {
		out[i] = entry{cons: e.cons[i : i+1], name: c.Name, bmc: c.BMC}
		if template(c.Name, c.BMC) == defTemplate && defTemplate != "" {
			out[i].bmc = ""
		}
	}
	return out
}

func entryOK(e entry, tmpl bool) bool {
	names, err := hostlist.Expand(e.name)
	if err != nil || len(names) != len(e.cons) {
		return false
	}
	if tmpl || e.bmc == "" {
		want := make([]string, len(e.cons))
		for i, c := range e.cons {
			want[i] = c.Name
		}
		slices.Sort(want)
		slices.Sort(names)
		return slices.Equal(names, want)
	}
	bmcs, err := hostlist.Expand(e.bmc)
	if err != nil || len(bmcs) != len(e.cons) {
		return false
	}
	for i, c := range e.cons {
		if names[i] != c.Name || bmcs[i] != c.BMC {
			return false
		}
	}
	return true
}

// template returns the "{name}" template that turns name into bmc, or ""
// when bmc does not contain name.
func template(name, bmc string) string {
	if strings.HasPrefix(bmc, name) {
		return "{name}" + bmc[len(name):]
	}
	if i := strings.LastIndex(bmc, name); i >= 0 {
		return bmc[:i] + "{name}" + bmc[i+len(name):]
	}
	return ""
}

// counter follows a sequence of names (or BMC addresses) that one hostlist
// term can write in the same order: the same text around one number, the
// numbers strictly increasing, and either all of one width or none
// zero-padded. The number is the last one in the name, or for host:port
// the last one before the port, whichever the first two names agree on.
type counter struct {
	nums           []uint64
	closed         bool // no second name can join the first
	first          string
	beforePort     bool
	prefix, suffix string
	width          int
	sameWidth      bool
	padded         bool
}

// add appends s if the sequence stays foldable.
func (c *counter) add(s string) bool {
	if len(c.nums) == 0 {
		c.first = s
		_, _, _, ok0 := splitNumber(s, false)
		_, _, _, ok1 := splitNumber(s, true)
		c.closed = !ok0 && !ok1
		c.nums = append(c.nums, 0) // set once the split is known
		return true
	}
	if c.closed {
		return false
	}
	if len(c.nums) == 1 {
		for _, bp := range []bool{false, true} {
			p0, d0, s0, ok0 := splitNumber(c.first, bp)
			p, d, suf, ok := splitNumber(s, bp)
			if !ok0 || !ok || p != p0 || suf != s0 {
				continue
			}
			c.beforePort, c.prefix, c.suffix = bp, p0, s0
			c.nums[0], c.width, c.sameWidth, c.padded = parseUint(d0), len(d0), true, padded(d0)
			if c.next(d) {
				return true
			}
		}
		return false
	}
	p, d, suf, ok := splitNumber(s, c.beforePort)
	if !ok || p != c.prefix || suf != c.suffix {
		return false
	}
	return c.next(d)
}

func (c *counter) next(d string) bool {
	v := parseUint(d)
	if v <= c.nums[len(c.nums)-1] {
		return false
	}
	same := c.sameWidth && len(d) == c.width
	pad := c.padded || padded(d)
	if !same && pad {
		return false
	}
	c.nums = append(c.nums, v)
	c.sameWidth, c.padded = same, pad
	return true
}

// String writes the sequence as one hostlist term.
func (c *counter) String() string {
	if len(c.nums) == 1 {
		return c.first
	}
	width := 0
	if c.padded {
		width = c.width
	}
	var b []byte
	b = append(b, c.prefix...)
	b = append(b, '[')
	for j := 0; j < len(c.nums); {
		end := j
		for end+1 < len(c.nums) && c.nums[end+1] == c.nums[end]+1 {
			end++
		}
		if j > 0 {
			b = append(b, ',')
		}
		b = appendPadded(b, c.nums[j], width)
		if end > j {
			b = append(b, '-')
			b = appendPadded(b, c.nums[end], width)
		}
		j = end + 1
	}
	b = append(b, ']')
	b = append(b, c.suffix...)
	return string(b)
}

func appendPadded(b []byte, v uint64, width int) []byte {
	d := strconv.FormatUint(v, 10)
	for i := len(d); i < width; i++ {
		b = append(b, '0')
	}
	return append(b, d...)
}

func padded(d string) bool { return len(d) > 1 && d[0] == '0' }

// splitNumber splits s around its last run of digits, or with beforePort
// around the last run before a final ":PORT". Names with characters that
// mean something in a hostlist do not split.
func splitNumber(s string, beforePort bool) (prefix, digits, suffix string, ok bool) {
	if strings.ContainsAny(s, "[], \t\r\n{}") {
		return "", "", "", false
	}
	limit := len(s)
	if beforePort {
		i := strings.LastIndexByte(s, ':')
		if i < 0 || i == len(s)-1 || strings.Count(s, ":") != 1 {
			return "", "", "", false
		}
		for _, c := range []byte(s[i+1:]) {
			if c < '0' || c > '9' {
				return "", "", "", false
			}
		}
		limit = i
	}
	end := -1
	for i := limit - 1; i >= 0; i-- {
		if s[i] >= '0' && s[i] <= '9' {
			end = i + 1
			break
		}
	}
	if end < 0 {
		return "", "", "", false
	}
	start := end - 1
	for start > 0 && s[start-1] >= '0' && s[start-1] <= '9' {
		start--
	}
	if end-start > 18 {
		return "", "", "", false
	}
	return s[:start], s[start:end], s[end:], true
}

func parseUint(d string) uint64 {
	var v uint64
	for i := 0; i < len(d); i++ {
		v = v*10 + uint64(d[i]-'0')
	}
	return v
}
