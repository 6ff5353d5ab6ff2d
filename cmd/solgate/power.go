package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/solgate/solgate/conserver/config"
	"github.com/solgate/solgate/conserver/hostlist"
	"github.com/solgate/solgate/conserver/power"
	"github.com/solgate/solgate/ipmilan"
	"github.com/solgate/solgate/logstore"
)

func init() {
	register(command{name: "power", summary: "parallel power control: status on off cycle reset soft diag pxe bios", run: runPower})
}

func powerUsage() string {
	var b strings.Builder
	b.WriteString(`Usage: solgate power [flags] HOSTS ACTION

Runs ACTION on every BMC in HOSTS at once (at most --fanout at a time) and
prints one line per host as it completes: "node001: on". The exit status is 0
only if every host succeeded, 1 if any failed, 2 for usage errors, which are
found before any BMC is contacted (an empty HOSTS, a user name or password
too long, an unknown placeholder in --bmc, a bad address or port).

Ctrl-C or SIGTERM: no new host is started ("interrupted: not started"), a
session still opening stops before it sends anything, a command already sent
completes and its result is printed, and --wait stops waiting ("interrupted
while waiting: cycle sent, ..."). Every host still gets its line; the exit
status is then 130 (SIGINT) or 143 (SIGTERM). A second Ctrl-C kills at once.

HOSTS is a hostlist: node[001-128,200],gpu[1-4]. Without --bmc or -c each
host is the BMC address itself, optionally HOST:PORT (127.0.0.1:[20001-20010]).

Actions:
`)
	for _, a := range power.Actions {
		fmt.Fprintf(&b, "  %-7s %s\n", a.Action, a.Help)
	}
	b.WriteString(`
Examples:
  IPMI_PASSWORD=... solgate power -u admin 'node[001-128]' status --bmc '{name}-bmc'
  solgate power -u admin --password-file /etc/solgate/bmc.pass 'node[001-128]' cycle --wait
  solgate power -c /etc/solgate/solgate.toml 'node[001-128]' status --consolidate
  solgate power -u admin 10.1.2.[1-40] off --json | jq '.[] | select(.error)'

`)
	b.WriteString(connFlagsHelp)
	return b.String()
}

type powerJSON struct {
	Host        string `json:"host"`
	BMC         string `json:"bmc"`
	OK          bool   `json:"ok"`
	State       string `json:"state,omitempty"`
	Error       string `json:"error,omitempty"`
	CipherSuite *int   `json:"cipher_suite,omitempty"` // the RMCP+ suite used, when a 2.0 session opened
	Interrupted bool   `json:"interrupted,omitempty"`
}

const maxFanout = 4096 // sessions at once; each is a socket

func runPower(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("power", powerUsage(), stderr)
	var cf connFlags
	cf.register(fs)
	fanout := fs.Int("fanout", 64, "BMCs to talk to at once (1 to 4096)")
	wait := fs.Bool("wait", false, "after on/off/cycle/reset/soft, poll until the power state is reached")
	waitTimeout := fs.Duration("wait-timeout", 60*time.Second, "how long --wait waits (1s to 24h)")
	consolidate := fs.Bool("consolidate", false, "group hosts with the same answer: node[001-100]: on")
	asJSON := fs.Bool("json", false, "print a JSON array of {host, bmc, ok, state, error, cipher_suite, interrupted}")
	verbose := fs.Bool("v", false, "also say which cipher suite each session used")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return usageErr(err)
	}
	cf.set = setFlags(fs)
	if len(pos) != 2 {
		return &exitError{code: 2, msg: "power: want HOSTS and ACTION (see solgate power --help)"}
	}
	action, err := power.ParseAction(pos[1])
	if err != nil {
		return &exitError{code: 2, msg: "power: " + err.Error()}
	}
	hosts, err := hostlist.Expand(pos[0])
	if err != nil {
		return &exitError{code: 2, msg: "power: " + err.Error()}
	}
	if len(hosts) == 0 {
		return &exitError{code: 2, msg: fmt.Sprintf("power: HOSTS %s names no host", logstore.QuoteShort(pos[0]))}
	}
	if *fanout < 1 || *fanout > maxFanout {
		return &exitError{code: 2, msg: fmt.Sprintf("power: --fanout %d: want 1 to %d", *fanout, maxFanout)}
	}
	if *waitTimeout < time.Second || *waitTimeout > 24*time.Hour {
		return &exitError{code: 2, msg: fmt.Sprintf("power: --wait-timeout %v: want 1s to 24h", *waitTimeout)}
	}
	if err := cf.check(len(hosts)); err != nil {
		return &exitError{code: 2, msg: "power: " + err.Error()}
	}
	targets, err := cf.targets(hosts, os.Stdin, stderr)
	if err != nil {
		return &exitError{code: 2, msg: "power: " + err.Error()}
	}
	results := make(chan power.Result, 64)
	go func() {
		power.Run(ctx, targets, action, power.Options{Fanout: *fanout, Wait: *wait, WaitTimeout: *waitTimeout}, results)
		close(results)
	}()
	var all []power.Result
	failed, stopped := 0, 0
	for r := range results {
		if errors.Is(r.Err, power.ErrInterrupted) {
			stopped++
		} else if r.Err != nil {
			failed++
		}
		if *consolidate || *asJSON {
			all = append(all, r)
			continue
		}
		fmt.Fprintln(stdout, r.Name+": "+answer(r, *verbose))
	}
	// Results arrive in completion order; reports list hosts as given.
	order := make(map[string]int, len(hosts))
	for i, h := range hosts {
		order[h] = i
	}
	sort.Slice(all, func(i, j int) bool { return order[all[i].Name] < order[all[j].Name] })
	switch {
	case *asJSON:
		out := make([]powerJSON, len(all))
		for i, r := range all {
			out[i] = powerJSON{Host: r.Name, BMC: r.BMC, OK: r.Err == nil, State: r.State, Interrupted: errors.Is(r.Err, power.ErrInterrupted)}
			if r.Err != nil {
				out[i].Error = power.Describe(r.Err, r.BMC)
			}
			if r.Session && r.Interface != ipmilan.LAN {
				out[i].CipherSuite = &r.CipherSuite
			}
		}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(out); err != nil {
			return err
		}
	case *consolidate:
		groups := map[string][]string{}
		var keys []string
		for _, r := range all {
			a := answer(r, *verbose)
			if groups[a] == nil {
				keys = append(keys, a)
			}
			groups[a] = append(groups[a], r.Name)
		}
		for _, k := range keys {
			fmt.Fprintf(stdout, "%s: %s\n", hostlist.Compress(groups[k]), k)
		}
	}
	if err := interrupted(ctx, fmt.Sprintf("%d of %d hosts not done, %d failed", stopped, len(hosts), failed)); err != nil {
		return fmt.Errorf("power: %w", err)
	}
	if failed > 0 {
		return &exitError{code: 1}
	}
	return nil
}

func answer(r power.Result, verbose bool) string {
	a := r.State
	if r.Err != nil {
		a = power.Describe(r.Err, r.BMC)
	}
	if verbose && r.Session {
		if r.Interface == ipmilan.LAN {
			a += " (IPMI 1.5)"
		} else {
			a += fmt.Sprintf(" (cipher suite %d)", r.CipherSuite)
		}
	}
	return a
}

func usageErr(err error) error {
	if err == nil || errors.Is(err, flag.ErrHelp) {
		return err
	}
	return &exitError{code: 2}
}

// targets resolves host names to BMC configurations: from the config file
// with -c, else by the --bmc template, else the host is the BMC. Every
// address is checked before any is contacted.
func (f *connFlags) targets(hosts []string, stdin *os.File, stderr io.Writer) ([]power.Target, error) {
	if f.configFile != "" {
		return f.configTargets(hosts, stdin, stderr)
	}
	var bad []string
	var firstErr error
	for _, h := range hosts {
		if err := config.CheckBMC(f.address(h)); err != nil {
			if firstErr == nil {
				firstErr = err
			}
			bad = append(bad, h)
		}
	}
	if firstErr != nil {
		if len(bad) > 1 {
			return nil, fmt.Errorf("%v (and %d more hosts with bad addresses)", firstErr, len(bad)-1)
		}
		return nil, firstErr
	}
	base, err := f.base(stdin, stderr)
	if err != nil {
		return nil, err
	}
	out := make([]power.Target, len(hosts))
	for i, h := range hosts {
		c := base
		c.Addr = f.address(h)
		out[i] = power.Target{Name: h, Config: c}
	}
	return out, nil
}
