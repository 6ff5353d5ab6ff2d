package hostlist

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
)

func TestExpand(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want string // space-separated
	}{
		{"", ""},
		{"node1", "node1"},
		{"node[1-3]", "node1 node2 node3"},
		{"node[001-003,200]", "node001 node002 node003 node200"},
		{"node[08-10]", "node08 node09 node10"},
		{"node[8-10]", "node8 node9 node10"},
		{"node[1-010]", "node1 node2 node3 node4 node5 node6 node7 node8 node9 node10"},
		{"node[98-101]", "node98 node99 node100 node101"},
		{"node[098-101]", "node098 node099 node100 node101"},
		{"rack[1-2]-node[01-02]", "rack1-node01 rack1-node02 rack2-node01 rack2-node02"},
		{"n[1-2]x[3,5]y", "n1x3y n1x5y n2x3y n2x5y"},
		{"node[7,9-10]", "node7 node9 node10"},
		{"b,a,b,c", "b a c"},
		{"node[3,1,2,1]", "node3 node1 node2"},
		{"node[1-2],gpu[1-2]", "node1 node2 gpu1 gpu2"},
		{"node1 node2\tnode3\n", "node1 node2 node3"},
		{",,node1,,", "node1"},
		{"[1-3]", "1 2 3"},
		{"10.1.2.[101-103]", "10.1.2.101 10.1.2.102 10.1.2.103"},
		{"node[1-2]-bmc.mgmt:623", "node1-bmc.mgmt:623 node2-bmc.mgmt:623"},
		{"[fd00::1]:623,[fd00::2]", "[fd00::1]:623 [fd00::2]"},
		{"[fe80::1%eth0]:623", "[fe80::1%eth0]:623"},
		{"node[0-0]", "node0"},
		{"x[000000000000000001-000000000000000002]", "x000000000000000001 x000000000000000002"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := Expand(tt.in)
			if err != nil {
				t.Fatalf("Expand(%q): %v", tt.in, err)
			}
			if g := strings.Join(got, " "); g != tt.want {
				t.Errorf("Expand(%q)\n got %s\nwant %s", tt.in, g, tt.want)
			}
		})
	}
}

func TestExpandErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		wantErr string
	}{
		{"node[1-", `hostlist: "node[1-": missing ']' for '[' at offset 4`},
		{"node]", `hostlist: "node]": unexpected ']' at offset 4`},
		{"node[1-[2]]", `hostlist: "node[1-[2]]": missing ']' for '[' at offset 4`},
		{"node[]", `hostlist: "node[]": empty '[]' at offset 4`},
		{"node[1,]", `hostlist: "node[1,]": empty range in '[]' at offset 7`},
		{"node[a-b]", `hostlist: "node[a-b]": unexpected 'a' in '[]' (want digits, ',' or '-') at offset 5`},
		{"node[1-b]", `hostlist: "node[1-b]": unexpected 'b' in '[]' (want digits, ',' or '-') at offset 7`},
		{"node[1-]", `hostlist: "node[1-]": missing number at offset 7`},
		{"node[-1]", `hostlist: "node[-1]": missing number at offset 5`},
		{"node[5-3]", `hostlist: "node[5-3]": range "5-3" runs backwards at offset 5`},
		{"node[1-2-3]", `hostlist: "node[1-2-3]": unexpected '-' in '[]' (want digits, ',' or '-') at offset 8`},
		{"node[1 - 3]", `hostlist: "node[1 - 3]": unexpected ' ' in '[]' (want digits, ',' or '-') at offset 6`},
		{"n[1234567890123456789]", `hostlist: "n[1234567890123456789]": number "1234567890123456789" has more than 18 digits at offset 2`},
		// Slurm's steps are not IPv6 literals: say what is wrong.
		{"node[1-3:2]", `hostlist: "node[1-3:2]": unexpected ':' in '[]': steps such as [1-9:2] are not supported (list the numbers, as in [1,3,5]) at offset 8`},
		{"[fd00:::1]:623", `hostlist: "[fd00:::1]:623": "fd00:::1" in '[]' is neither a range group nor an IPv6 address at offset 1`},
		// Characters, not bytes of their encoding.
		{"nöde[ä]", `hostlist: "nöde[ä]": unexpected 'ä' in '[]' (want digits, ',' or '-') at offset 6`},
		{"n[1-\xff]", `hostlist: "n[1-\xff]": unexpected byte 0xff in '[]' (want digits, ',' or '-') at offset 4`},
		{"n[1-1000000],m", `hostlist: "n[1-1000000],m": expands to more than 1000000 names (the limit)`},
		{"n[1-1000][1-1001]", `hostlist: "n[1-1000][1-1001]": expands to more than 1000000 names (the limit)`},
		{"n[0-999999999999999999][0-999999999999999999][0-999999999999999999][0-9]", ""},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := Expand(tt.in)
			if err == nil {
				t.Fatalf("Expand(%q) = %d names, want error", tt.in, len(got))
			}
			var he *Error
			if !errors.As(err, &he) {
				t.Fatalf("error %T is not *Error", err)
			}
			if tt.wantErr != "" && err.Error() != tt.wantErr {
				t.Errorf("error\n got %s\nwant %s", err, tt.wantErr)
			}
		})
	}
}

// TestErrorsCutLongInput: a huge list or number is never printed whole.
func TestErrorsCutLongInput(t *testing.T) {
	t.Parallel()
	for _, in := range []string{
		"n[" + strings.Repeat("1", 1<<20) + "]",
		"n[" + strings.Repeat("9", 1<<20) + "-1]",
		strings.Repeat("ö", 1<<20) + "]",
	} {
		_, err := Expand(in)
		if err == nil {
			t.Fatalf("%d bytes: no error", len(in))
		}
		if len(err.Error()) > 300 {
			t.Errorf("error is %d bytes: %.200s", len(err.Error()), err)
		}
		if !strings.Contains(err.Error(), "bytes)") {
			t.Errorf("error does not say the input was cut: %.200s", err)
		}
	}
}

func TestExpandDups(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, names, dups string }{
		{"node[1-3]", "node1 node2 node3", ""},
		{"node[1-3,2]", "node1 node2 node3", "node2"},
		{"a,b,a,a,c,b", "a b c", "a b"},
		{"n[1-2],n[1-2]", "n1 n2", "n1 n2"},
		{"x", "x", ""},
	}
	for _, tt := range tests {
		names, dups, err := ExpandDups(tt.in, 0)
		if err != nil {
			t.Fatalf("%q: %v", tt.in, err)
		}
		if g := strings.Join(names, " "); g != tt.names {
			t.Errorf("%q: names %q, want %q", tt.in, g, tt.names)
		}
		if g := strings.Join(dups, " "); g != tt.dups {
			t.Errorf("%q: dups %q, want %q", tt.in, g, tt.dups)
		}
	}
	_, dups, err := ExpandDups("n[1-1000],n[1-1000]", 0)
	if err != nil || len(dups) != maxDups {
		t.Errorf("1000 repeats: %d reported (%v), want the first %d", len(dups), err, maxDups)
	}
}

// TestExpandLimitBeforeExpanding: the limit is enforced before any name
// is produced, so a million-name list over a small budget costs a few
// allocations, not a million.
func TestExpandLimitBeforeExpanding(t *testing.T) {
	allocs := testing.AllocsPerRun(5, func() {
		if _, err := ExpandLimit("n[1-1000000]", 1000); !errors.Is(err, ErrTooLarge) {
			t.Fatalf("err = %v, want ErrTooLarge", err)
		}
	})
	if allocs > 20 {
		t.Errorf("%v allocations for a refused list: names were produced before the limit was checked", allocs)
	}
}

func TestExpandLimit(t *testing.T) {
	t.Parallel()
	if _, err := ExpandLimit("n[1-10]", 10); err != nil {
		t.Errorf("10 names with limit 10: %v", err)
	}
	_, err := ExpandLimit("n[1-10]", 9)
	if !errors.Is(err, ErrTooLarge) {
		t.Errorf("10 names with limit 9: err = %v, want ErrTooLarge", err)
	}
	if err == nil || !strings.Contains(err.Error(), "9 names") {
		t.Errorf("error %v does not name the limit", err)
	}
	// A long literal multiplied out hits the byte budget, not the name count.
	long := strings.Repeat("x", 2000) + "[1-1000]"
	if _, err := ExpandLimit(long, 1000); !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), "bytes") {
		t.Errorf("byte budget: err = %v", err)
	}
}

func TestExpandParallel(t *testing.T) {
	t.Parallel()
	got, err := ExpandParallel("node[1-3]", "10.0.0.[11-13]")
	if err != nil {
		t.Fatal(err)
	}
	want := [][2]string{{"node1", "10.0.0.11"}, {"node2", "10.0.0.12"}, {"node3", "10.0.0.13"}}
	if !slices.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	_, err = ExpandParallel("node[1-3]", "bmc[1-2]")
	if err == nil || err.Error() != `hostlist: "node[1-3]" has 3 names but "bmc[1-2]" has 2` {
		t.Errorf("mismatch error = %v", err)
	}
	if _, err := ExpandParallel("node[1-", "b"); err == nil {
		t.Error("bad first list: no error")
	}
	if _, err := ExpandParallel("a", "b]"); err == nil {
		t.Error("bad second list: no error")
	}
}

func TestCompress(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string // space-separated names
		want string
	}{
		{"", ""},
		{"node1", "node1"},
		{"node001 node002 node003", "node[001-003]"},
		{"node1 node2 node3 node5", "node[1-3,5]"},
		{"node08 node09 node10", "node[08-10]"},
		{"node8 node9 node10", "node[8-10]"},
		{"node098 node099 node100 node101", "node[098-101]"},
		{"node98 node99 node100", "node[98-100]"},
		{"node3 node1 node2 node1", "node[1-3]"},
		{"node1 gpu1 node2 gpu2", "node[1-2],gpu[1-2]"},
		{"login mgmt node1", "login,mgmt,node1"},
		{"login login", "login"},
		{"rack1-node01 rack1-node02 rack2-node01", "rack1-node[01-02],rack2-node01"},
		{"node1-bmc node2-bmc", "node[1-2]-bmc"},
		{"n01 n1", "n01,n1"},
		{"[fd00::1]:623 [fd00::2]:623", "[fd00::1]:623,[fd00::2]:623"},
		{"n1234567890123456789", "n1234567890123456789"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			names := strings.Fields(tt.in)
			if got := Compress(names); got != tt.want {
				t.Errorf("Compress(%q) = %q, want %q", names, got, tt.want)
			}
		})
	}
}

func TestCompressRoundTrip(t *testing.T) {
	t.Parallel()
	for _, in := range []string{
		"node[001-100,200],gpu[1-4]",
		"node[1-1000]",
		"node[0001-1000],node[1-20]",
		"rack[1-4]-node[01-40]",
		"10.1.[1-3].[1-250]",
		"a,b,c1,c3,c2",
	} {
		names, err := Expand(in)
		if err != nil {
			t.Fatal(err)
		}
		c := Compress(names)
		back, err := Expand(c)
		if err != nil {
			t.Fatalf("Expand(Compress(%q)) = Expand(%q): %v", in, c, err)
		}
		if !sameSet(names, back) {
			t.Errorf("%q: Compress gave %q which expands to a different set", in, c)
		}
	}
}

func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

func FuzzExpand(f *testing.F) {
	for _, s := range []string{
		"node[001-128,200],gpu[1-4]", "rack[1-2]-node[01-02]", "node[1-", "a,b,,c",
		"[fd00::1]:623", "n[08-10]", "x[0-9][0-9]", "]", "n[5-3]", "n[1-2-3]",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		names, err := ExpandLimit(s, 10_000)
		if err != nil {
			var he *Error
			if !errors.As(err, &he) {
				t.Fatalf("error %T is not *Error: %v", err, err)
			}
			return
		}
		seen := map[string]bool{}
		for _, n := range names {
			if n == "" {
				t.Fatalf("empty name from %q", s)
			}
			if seen[n] {
				t.Fatalf("duplicate %q from %q", n, s)
			}
			seen[n] = true
		}
		c := Compress(names)
		back, err := ExpandLimit(c, 10_000)
		if err != nil {
			t.Fatalf("Expand(Compress(Expand(%q))) = Expand(%q): %v", s, c, err)
		}
		if !sameSet(names, back) {
			t.Fatalf("%q -> %q -> different set (%d vs %d names)", s, c, len(names), len(back))
		}
		// Compress is canonical: compressing again changes nothing.
		if c2 := Compress(back); c2 != c {
			t.Fatalf("Compress not stable: %q then %q", c, c2)
		}
	})
}

func BenchmarkExpand10k(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		names, err := Expand("node[00001-10000]")
		if err != nil || len(names) != 10_000 {
			b.Fatal(len(names), err)
		}
	}
}

func BenchmarkCompress10k(b *testing.B) {
	names := make([]string, 10_000)
	for i := range names {
		names[i] = fmt.Sprintf("node%05d", i+1)
	}
	b.ReportAllocs()
	for b.Loop() {
		if got := Compress(names); got != "node[00001-10000]" {
			b.Fatal(got)
		}
	}
}

func ExampleExpand() {
	names, _ := Expand("rack[1-2]-node[08-09]")
	fmt.Println(names)
	// Output: [rack1-node08 rack1-node09 rack2-node08 rack2-node09]
}

func ExampleCompress() {
	fmt.Println(Compress([]string{"node001", "node002", "node003", "node200", "gpu1", "gpu2"}))
	// Output: node[001-003,200],gpu[1-2]
}
