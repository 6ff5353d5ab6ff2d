package main

import (
	"fmt"
	"testing"
)

// The ssh command lines the demo prints work as printed: OpenSSH takes
// an IPv6 address bare after "user@" and would look "[::1]" up as a name.
func TestDemoSSHArgs(t *testing.T) {
	for _, tc := range []struct{ listen, want, withKey string }{
		{"127.0.0.1:2222", "ssh -p 2222 node01@127.0.0.1", "ssh -p 2222 -i /d/demo_key node01@127.0.0.1"},
		{"[::1]:2299", "ssh -p 2299 node01@::1", "ssh -p 2299 -i /d/demo_key node01@::1"},
	} {
		dm := &demo{listen: tc.listen, keyPath: "/d/demo_key"}
		if got := fmt.Sprintf(dm.sshArgs(false), "node01"); got != tc.want {
			t.Errorf("listen %s: %q, want %q", tc.listen, got, tc.want)
		}
		if got := fmt.Sprintf(dm.sshArgs(true), "node01"); got != tc.withKey {
			t.Errorf("listen %s with the key: %q, want %q", tc.listen, got, tc.withKey)
		}
	}
}
