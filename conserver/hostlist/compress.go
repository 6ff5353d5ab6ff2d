package hostlist

import (
	"slices"
	"strings"
)

// Compress folds names into a host list for display, for example
// node[001-100,200],gpu[1-4]. Names are grouped by the text around their last
// number and by zero-padded width; groups appear in the order of their first
// name, numbers inside a group ascend, and duplicates disappear. Names that
// cannot be written in the notation (no digits, or containing brackets,
// commas or white space) are copied as they are.
//
// For any list produced by Expand, Expand(Compress(names)) holds the same
// names; the order is the same when names were ascending within each group.
func Compress(names []string) string {
	type key struct {
		prefix, suffix string
		width          int // zero-padded width, or 0 for plain numbers
	}
	type split struct {
		prefix, digits, suffix string
		ok                     bool
	}
	splits := make([]split, len(names))
	// padded records the widths written with leading zeros for each
	// prefix/suffix pair, so that 10 joins 08 and 09 in node[08-10].
	padded := map[[2]string]map[int]bool{}
	for i, n := range names {
		p, d, s, ok := splitLastNumber(n)
		splits[i] = split{p, d, s, ok}
		if ok && len(d) > 1 && d[0] == '0' {
			ps := [2]string{p, s}
			if padded[ps] == nil {
				padded[ps] = map[int]bool{}
			}
			padded[ps][len(d)] = true
		}
	}

	type item struct {
		lit  string // a name copied as is when nums is nil
		k    key
		nums []uint64
	}
	var items []*item
	groups := map[key]*item{}
	lits := map[string]bool{}
	for i, n := range names {
		sp := splits[i]
		if !sp.ok {
			if n != "" && !lits[n] {
				lits[n] = true
				items = append(items, &item{lit: n})
			}
			continue
		}
		w := 0
		if len(sp.digits) > 1 && sp.digits[0] == '0' || padded[[2]string{sp.prefix, sp.suffix}][len(sp.digits)] {
			w = len(sp.digits)
		}
		k := key{sp.prefix, sp.suffix, w}
		g := groups[k]
		if g == nil {
			g = &item{k: k}
			groups[k] = g
			items = append(items, g)
		}
		v, _ := parseDigits(sp.digits)
		g.nums = append(g.nums, v)
	}

	var b []byte
	for _, it := range items {
		if len(b) > 0 {
			b = append(b, ',')
		}
		if it.nums == nil {
			b = append(b, it.lit...)
			continue
		}
		slices.Sort(it.nums)
		nums := slices.Compact(it.nums)
		b = append(b, it.k.prefix...)
		if len(nums) == 1 {
			b = appendPadded(b, nums[0], it.k.width)
			b = append(b, it.k.suffix...)
			continue
		}
		b = append(b, '[')
		for j := 0; j < len(nums); {
			end := j
			for end+1 < len(nums) && nums[end+1] == nums[end]+1 {
				end++
			}
			if j > 0 {
				b = append(b, ',')
			}
			b = appendPadded(b, nums[j], it.k.width)
			if end > j {
				b = append(b, '-')
				b = appendPadded(b, nums[end], it.k.width)
			}
			j = end + 1
		}
		b = append(b, ']')
		b = append(b, it.k.suffix...)
	}
	return string(b)
}

// splitLastNumber splits name around its last run of digits. ok is false
// when the name has no usable number or cannot appear inside a host list
// term.
func splitLastNumber(name string) (prefix, digits, suffix string, ok bool) {
	if strings.ContainsAny(name, "[], \t\r\n") {
		return "", "", "", false
	}
	end := -1
	for i := len(name) - 1; i >= 0; i-- {
		if isDigit(name[i]) {
			end = i + 1
			break
		}
	}
	if end < 0 {
		return "", "", "", false
	}
	start := end - 1
	for start > 0 && isDigit(name[start-1]) {
		start--
	}
	if end-start > maxDigits {
		return "", "", "", false
	}
	return name[:start], name[start:end], name[end:], true
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func parseDigits(d string) (uint64, bool) {
	var v uint64
	for i := 0; i < len(d); i++ {
		if !isDigit(d[i]) {
			return 0, false
		}
		v = v*10 + uint64(d[i]-'0')
	}
	return v, len(d) > 0 && len(d) <= maxDigits
}
