package main

import (
	"fmt"
	"io"
	"os"
	"slices"

	"github.com/solgate/solgate/conserver"
	"github.com/solgate/solgate/conserver/config"
	"github.com/solgate/solgate/conserver/power"
	"github.com/solgate/solgate/logstore"
)

// configTargets resolves hosts through the solgate config file: each host
// must be a console there, and its BMC settings come from the file.
// Flags given explicitly on the command line override the file.
func (f *connFlags) configTargets(hosts []string, stdin *os.File, stderr io.Writer) ([]power.Target, error) {
	cfg, err := config.Load(f.configFile)
	if err != nil {
		return nil, err
	}
	f.stateDir = cfg.Server.StateDir
	out := make([]power.Target, 0, len(hosts))
	var missing []string
	for _, h := range hosts {
		c, ok := cfg.Console(h)
		if !ok {
			missing = append(missing, h)
			continue
		}
		ic, err := conserver.BMCConfig(c, nil)
		if err != nil {
			return nil, err
		}
		if f.set["timeout"] {
			ic.Timeout = f.timeout
		}
		if f.set["retries"] {
			ic.Retries = f.retries
			if f.retries == 0 {
				ic.Retries = -1
			}
		}
		if f.set["u"] || f.set["user"] {
			ic.User = f.user
		}
		if f.set["cipher-suite"] || f.set["C"] {
			// check refused a weak suite without --insecure.
			ic.CipherSuite, ic.ForceSuiteZero = f.suite, false
			if slices.Contains(weakSuites, f.suite) {
				ic.Insecure = true
			}
		}
		out = append(out, power.Target{Name: h, Config: ic})
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("%s: no such console: %s", f.configFile, joinMax(missing, 10))
	}
	return out, nil
}

func joinMax(l []string, n int) string {
	s := ""
	for i, x := range l {
		if i == n {
			return s + fmt.Sprintf(" and %d more", len(l)-n)
		}
		if i > 0 {
			s += ", "
		}
		if len(x) > 60 {
			x = logstore.QuoteShort(x)
		}
		s += x
	}
	return s
}
