package main

import (
	"strings"
	"testing"
)

func TestFileLimitBudget(t *testing.T) {
	for _, tc := range []struct {
		limit    uint64
		consoles int
		ok       bool
		logFiles int
	}{
		{0, 10000, true, 0},        // unknown: no check, the store's default
		{20000, 10000, true, 1024}, // the machines here: room to spare
		{11000, 10000, true, 436},  // half of 11000-10000-128
		{10128, 10000, true, 16},   // just enough: the floor
		{10127, 10000, false, 16},  // one short
		{1024, 2000, false, 16},    // a shell's default and a cluster
		{65536, 0, true, 1024},     // no consoles yet
	} {
		err := checkFileLimit(tc.limit, tc.consoles)
		if (err == nil) != tc.ok {
			t.Errorf("checkFileLimit(%d, %d) = %v, want ok %v", tc.limit, tc.consoles, err, tc.ok)
		}
		if err != nil && !strings.Contains(err.Error(), "raise it to at least") {
			t.Errorf("checkFileLimit(%d, %d): %v does not say what to raise it to", tc.limit, tc.consoles, err)
		}
		if got := logFileBudget(tc.limit, tc.consoles); got != tc.logFiles {
			t.Errorf("logFileBudget(%d, %d) = %d, want %d", tc.limit, tc.consoles, got, tc.logFiles)
		}
	}
}
