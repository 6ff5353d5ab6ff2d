package bmcconf

import (
	"strings"
	"testing"
)

// CheckKey knows the static keys and the patterns, and suggests the
// static key one or two edits away from a typo.
func TestCheckKey(t *testing.T) {
	for _, tc := range []struct{ key, want string }{
		{"sol.enable", ""},
		{"lan.cipher.3", ""},
		{"user.2.sol", ""},
		{"sol.enabel", `did you mean "sol.enable"?`},
		{"sol.bitrat", `did you mean "sol.bitrate"?`},
		{"lan.cipher.300", `unknown key "lan.cipher.300" (`},
		{"frobnicate", `unknown key "frobnicate" (`},
		{"", `unknown key "" (`},
	} {
		err := CheckKey(tc.key)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("CheckKey(%q) = %v, want nil", tc.key, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("CheckKey(%q) = %v, want %q", tc.key, err, tc.want)
		}
	}
	for _, tc := range []struct {
		a, b string
		d    int
	}{{"abc", "abc", 0}, {"abc", "acb", 1}, {"abc", "ab", 1}, {"abc", "xyz", 3}, {"", "abc", 3}, {"kitten", "sitting", 3}} {
		if got := editDistance(tc.a, tc.b, 3); got != tc.d {
			t.Errorf("editDistance(%q, %q) = %d, want %d", tc.a, tc.b, got, tc.d)
		}
	}
}
