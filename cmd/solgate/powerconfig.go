package main

import (
	"errors"
	"io"
	"os"

	"github.com/solgate/solgate/conserver/power"
)

// configTargets resolves hosts through the solgate config file.
func (f *connFlags) configTargets(hosts []string, stdin *os.File, stderr io.Writer) ([]power.Target, error) {
	return nil, errors.New("-c: reading BMCs from the config file is not available yet")
}
