package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/solgate/solgate/conserver/hostlist"
	"github.com/solgate/solgate/conserver/power"
	"github.com/solgate/solgate/ipmilan"
	"github.com/solgate/solgate/ipmilan/bmcconf"
)

func init() {
	register(command{name: "bmc", summary: "read, set and check BMCs' LAN, user and SOL setup: show set user doctor", run: runBMC})
}

const bmcUsage = `Usage: solgate bmc show|set|user|doctor [flags] HOSTS ...

Reads, changes and checks what Serial-over-LAN needs on many BMCs at once
(at most --fanout at a time), over the LAN with the same host, credential and
config options as solgate power, or in-band on the local BMC with --inband
(through the Linux IPMI driver, /dev/ipmi0: run it on the node, as root,
from a kickstart or cloud-init script).

  solgate bmc show HOSTS             LAN, channel, cipher suites, SOL and users
  solgate bmc set HOSTS KEY=VALUE... change settings, read every one back
  solgate bmc user HOSTS ACTION ...  add users, set passwords, enable, disable,
                                     privilege, SOL payload access
  solgate bmc doctor HOSTS           what stops SOL from working, what is
                                     insecure, and the command that fixes it

Run 'solgate bmc COMMAND --help' for each command's flags, keys and examples.`

// bmcFlags are the flags of every bmc subcommand.
type bmcFlags struct {
	conn     connFlags
	fanout   int
	deadline time.Duration
	asJSON   bool
	inband   bool
	device   string
	channel  int
	fs       *flag.FlagSet
	name     string   // "bmc set", for messages
	hosts    []string // from parse
}

func (f *bmcFlags) register(fs *flag.FlagSet) {
	f.fs = fs
	f.conn.register(fs)
	fs.IntVar(&f.fanout, "fanout", 64, "BMCs to talk to at once")
	fs.DurationVar(&f.deadline, "deadline", 2*time.Minute, "bound on the work per BMC")
	fs.BoolVar(&f.asJSON, "json", false, "print JSON")
	fs.BoolVar(&f.inband, "inband", false, "talk to this node's own BMC through the Linux IPMI driver (no HOSTS, no password)")
	fs.StringVar(&f.device, "device", ipmilan.DefaultInbandDevice, "the IPMI driver `DEVICE` for --inband")
	fs.IntVar(&f.channel, "channel", 0, "LAN channel `N` (0: find it)")
}

// bmcTarget is one BMC to work on.
type bmcTarget struct {
	power.Target
	inband bool
}

// parse parses args and returns the host names and the remaining
// positional arguments. With --inband there are no HOSTS: the only host is
// "local". Nothing is read (passwords) until resolve.
func (f *bmcFlags) parse(args []string, minPos int, what string) ([]string, []string, error) {
	pos, err := parseFlags(f.fs, args)
	if err != nil {
		return nil, nil, usageErr(err)
	}
	f.name = strings.TrimPrefix(f.fs.Name(), "solgate ")
	f.conn.set = setFlags(f.fs)
	if f.channel < 0 || f.channel > 15 {
		return nil, nil, f.usage("--channel %d: want 1-15", f.channel)
	}
	if f.fanout < 1 || f.fanout > maxFanout {
		return nil, nil, f.usage("--fanout %d: want 1 to %d", f.fanout, maxFanout)
	}
	if f.inband {
		if len(pos) < minPos {
			return nil, nil, f.usage("want %s (see --help)", what)
		}
		if err := f.conn.check(1); err != nil {
			return nil, nil, f.usage("%v", err)
		}
		f.hosts = []string{"local"}
		return f.hosts, pos, nil
	}
	if len(pos) < minPos+1 {
		return nil, nil, f.usage("want HOSTS %s (see --help)", what)
	}
	hosts, err := hostlist.Expand(pos[0])
	if err != nil {
		return nil, nil, f.usage("%v", err)
	}
	if len(hosts) == 0 {
		return nil, nil, f.usage("HOSTS %q names no host", pos[0])
	}
	if err := f.conn.check(len(hosts)); err != nil {
		return nil, nil, f.usage("%v", err)
	}
	f.hosts = hosts
	return hosts, pos[1:], nil
}

func (f *bmcFlags) usage(format string, a ...any) error {
	return &exitError{code: 2, msg: f.name + ": " + fmt.Sprintf(format, a...)}
}

// resolve turns the hosts into BMC configurations (reading the password).
func (f *bmcFlags) resolve(stderr io.Writer) ([]bmcTarget, error) {
	if f.inband {
		priv, err := ipmilan.ParsePrivilege(f.conn.priv)
		if err != nil {
			return nil, f.usage("%v", err)
		}
		// No session: the user, privilege and suite are what doctor checks.
		cfg := ipmilan.Config{Addr: f.device, User: f.conn.user, Privilege: priv, CipherSuite: f.conn.suite}
		return []bmcTarget{{Target: power.Target{Name: "local", Config: cfg}, inband: true}}, nil
	}
	ts, err := f.conn.targets(f.hosts, os.Stdin, stderr)
	if err != nil {
		return nil, f.usage("%v", err)
	}
	out := make([]bmcTarget, len(ts))
	for i, t := range ts {
		out[i] = bmcTarget{Target: t}
	}
	return out, nil
}

// each runs fn on every target, at most fanout at once, each with its own
// connection and deadline, and returns the results in target order.
func each[R any](ctx context.Context, f *bmcFlags, ts []bmcTarget, fn func(ctx context.Context, i int, c ipmilan.Commander) (R, error)) ([]R, []error) {
	res := make([]R, len(ts))
	errs := make([]error, len(ts))
	sem := make(chan struct{}, max(1, f.fanout))
	var wg sync.WaitGroup
	for i, t := range ts {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			tctx, cancel := context.WithTimeout(ctx, f.deadline)
			defer cancel()
			c, closeFn, err := connect(tctx, t, f)
			if err != nil {
				errs[i] = err
				return
			}
			defer closeFn()
			res[i], errs[i] = fn(tctx, i, c)
		}()
	}
	wg.Wait()
	return res, errs
}

func connect(ctx context.Context, t bmcTarget, f *bmcFlags) (ipmilan.Commander, func(), error) {
	if t.inband {
		in, err := ipmilan.OpenInband(ipmilan.InbandConfig{Device: f.device, Timeout: max(f.conn.timeout, 5*time.Second)})
		if err != nil {
			return nil, nil, err
		}
		return in, func() { in.Close() }, nil
	}
	cfg := t.Config
	cfg.KeepAlive = -1 // a short-lived session
	s, err := ipmilan.Dial(ctx, cfg)
	if err != nil {
		return nil, nil, err
	}
	return s, func() { s.Close() }, nil
}

func describe(err error, t bmcTarget) string {
	if t.inband {
		return strings.TrimPrefix(err.Error(), "ipmilan: ")
	}
	return power.Describe(err, t.Config.Addr)
}

func runBMC(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprintln(stderr, bmcUsage)
		return &exitError{code: 2}
	}
	switch args[0] {
	case "-h", "--help", "help":
		fmt.Fprintln(stdout, bmcUsage)
		return nil
	case "show":
		return runBMCShow(ctx, args[1:], stdout, stderr)
	case "set":
		return runBMCSet(ctx, args[1:], stdout, stderr)
	case "user":
		return runBMCUser(ctx, args[1:], stdout, stderr)
	case "doctor":
		return runBMCDoctor(ctx, args[1:], stdout, stderr)
	}
	fmt.Fprintln(stderr, bmcUsage)
	return &exitError{code: 2, msg: fmt.Sprintf("bmc: unknown command %q (want show, set, user or doctor)", args[0])}
}

const bmcTargetsHelp = `HOSTS is a hostlist (node[001-128]); without --bmc or -c each host is the
BMC address itself, optionally HOST:PORT. With --inband there are no HOSTS.`

// ---- show ----

const bmcShowUsage = `Usage: solgate bmc show [flags] HOSTS

Prints each BMC's LAN channel (IP source, address, netmask, gateway, MAC, VLAN,
IPMI 1.5 authentication types, cipher suites and their privileges), channel
access, SOL settings and users, as KEY VALUE lines with the keys of
solgate bmc set, then a users table. What a BMC does not support reads
"not supported". With --json, one object per host.

` + bmcTargetsHelp + `

Examples:
  solgate bmc show -u admin --password-file /etc/solgate/bmc.pass 'node[001-004]' --bmc '{name}-bmc'
  solgate bmc show -c /etc/solgate/solgate.toml node042
  solgate bmc show -c /etc/solgate/solgate.toml 'node[001-128]' --json | jq '.[] | {host, sol: .settings["sol.enable"]}'
  sudo solgate bmc show --inband

` + connFlagsHelp

type userJSON struct {
	ID           uint8  `json:"id"`
	Name         string `json:"name"`
	Enabled      string `json:"enabled"`
	Privilege    string `json:"privilege"`
	Messaging    string `json:"messaging"`
	LinkAuth     string `json:"link_auth"`
	CallbackOnly string `json:"callback_only"`
	SOL          string `json:"sol"`
}

type showJSON struct {
	Host         string            `json:"host"`
	BMC          string            `json:"bmc"`
	OK           bool              `json:"ok"`
	Error        string            `json:"error,omitempty"`
	Settings     map[string]string `json:"settings,omitempty"`
	NotSupported []string          `json:"not_supported,omitempty"`
	UserIDs      int               `json:"user_ids,omitempty"`
	Users        []userJSON        `json:"users,omitempty"`
}

const notSupported = "not supported"

func valueText(v bmcconf.Value) string {
	switch {
	case v.Err == nil:
		return v.Value
	case ipmilan.IsNotSupported(v.Err):
		return notSupported
	case errors.Is(v.Err, bmcconf.ErrNotReported):
		return "unknown"
	}
	return "unknown (" + v.Err.Error() + ")"
}

func userRows(s *bmcconf.Snapshot) []userJSON {
	var out []userJSON
	for _, u := range s.ShownUsers() {
		get := func(field string) string {
			for _, v := range s.UserValues(u.ID) {
				if v.Key == fmt.Sprintf("user.%d.%s", u.ID, field) {
					return valueText(v)
				}
			}
			return ""
		}
		out = append(out, userJSON{ID: u.ID, Name: u.Name, Enabled: get("enabled"), Privilege: get("privilege"),
			Messaging: get("messaging"), LinkAuth: get("link-auth"), CallbackOnly: get("callback-only"), SOL: get("sol")})
	}
	return out
}

func runBMCShow(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var f bmcFlags
	fs := newFlagSet("bmc show", bmcShowUsage, stderr)
	f.register(fs)
	_, rest, err := f.parse(args, 0, "")
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return f.usage("unexpected %q (want only HOSTS)", rest[0])
	}
	ts, err := f.resolve(stderr)
	if err != nil {
		return err
	}
	snaps, errs := each(ctx, &f, ts, func(ctx context.Context, i int, c ipmilan.Commander) (*bmcconf.Snapshot, error) {
		return bmcconf.Read(ctx, c, uint8(f.channel))
	})
	failed := 0
	var js []showJSON
	for i, t := range ts {
		j := showJSON{Host: t.Name, BMC: t.Config.Addr, OK: errs[i] == nil}
		if errs[i] != nil {
			failed++
			j.Error = describe(errs[i], t)
			if !f.asJSON {
				fmt.Fprintf(stdout, "%s: %s\n", t.Name, j.Error)
			}
			js = append(js, j)
			continue
		}
		s := snaps[i]
		j.Settings = map[string]string{}
		for _, v := range s.Values() {
			if v.Err != nil && ipmilan.IsNotSupported(v.Err) {
				j.NotSupported = append(j.NotSupported, v.Key)
			}
			j.Settings[v.Key] = valueText(v)
		}
		j.Users = userRows(s)
		j.UserIDs = len(s.Users)
		if s.UsersErr != nil {
			j.NotSupported = append(j.NotSupported, "users")
		}
		js = append(js, j)
		if !f.asJSON {
			printShow(stdout, t, s, j)
		}
	}
	return finishBMC(stdout, f.asJSON, js, failed)
}

func printShow(w io.Writer, t bmcTarget, s *bmcconf.Snapshot, j showJSON) {
	if t.Name == t.Config.Addr {
		fmt.Fprintf(w, "== %s\n", t.Name)
	} else {
		fmt.Fprintf(w, "== %s (%s)\n", t.Name, t.Config.Addr)
	}
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	for _, v := range s.Values() {
		fmt.Fprintf(tw, "%s\t%s\n", v.Key, valueText(v))
	}
	tw.Flush()
	if s.UsersErr != nil {
		fmt.Fprintf(w, "users: %s\n", valueText(bmcconf.Value{Err: s.UsersErr}))
		return
	}
	enabled := 0
	for _, u := range s.Users {
		if u.Enabled() {
			enabled++
		}
	}
	fmt.Fprintf(w, "users: %d IDs, %d enabled\n", len(s.Users), enabled)
	tw = tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "  ID\tNAME\tENABLED\tPRIVILEGE\tMESSAGING\tLINK-AUTH\tCALLBACK-ONLY\tSOL")
	for _, u := range j.Users {
		fmt.Fprintf(tw, "  %d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", u.ID, u.Name, u.Enabled, u.Privilege, u.Messaging, u.LinkAuth, u.CallbackOnly, u.SOL)
	}
	tw.Flush()
}

// finishBMC ends a bmc subcommand: the per-BMC results as JSON when asked
// (a table was printed as they came otherwise), and exit status 1 when any
// BMC failed.
func finishBMC(w io.Writer, asJSON bool, results any, failed int) error {
	if asJSON {
		if err := writeJSON(w, results); err != nil {
			return err
		}
	}
	if failed > 0 {
		return &exitError{code: 1}
	}
	return nil
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// ---- set ----

func bmcSetUsage() string {
	var b strings.Builder
	b.WriteString(`Usage: solgate bmc set [flags] HOSTS KEY=VALUE...

Changes settings on every BMC of HOSTS, reads each one back and prints one line
per key: "node01: sol.enable: off -> on: ok". Keys already at their value are
reported unchanged. Changes that could cut off the session solgate is using
(the address, VLAN, channel access, the user it logged in as) are refused
unless --allow-disconnect is given, and then applied after all the others
(they are not read back if the session is gone). --dry-run prints what would
change and changes nothing. The exit status is 0 only if every change was made
(and, where the BMC reports it, read back), 1 otherwise, 2 for usage errors.

Per-host values: {name} is the host, {n} the number at the end of its name
(node042: 42), {i} its position in HOSTS (from 1); a VALUE with [ranges] is a
hostlist with one value per host, in order:
  lan.ip=10.1.0.{n}     lan.ip=10.1.0.[101-228]     lan.gateway=10.1.0.1

`)
	b.WriteString(bmcTargetsHelp)
	b.WriteString("\n\nKeys:\n")
	tw := tabwriter.NewWriter(&b, 0, 8, 2, ' ', 0)
	for _, k := range bmcconf.Keys() {
		if !k.ReadOnly && !strings.HasPrefix(k.Name, "user.") {
			fmt.Fprintf(tw, "  %s\t%s\n", k.Name, k.Help)
		}
	}
	fmt.Fprintf(tw, "  user.N.FIELD\tname, enabled, privilege, messaging, link-auth, callback-only, sol (see solgate bmc user)\n")
	tw.Flush()
	b.WriteString(`
Examples:
  solgate bmc set -c /etc/solgate/solgate.toml 'node[001-128]' sol.enable=on sol.bitrate=115200 sol.privilege=user
  solgate bmc set -u admin --password-file bmc.pass 'node[001-128]' --bmc '{name}-bmc' lan.cipher.0=unused lan.auth=md5
  solgate bmc set -c solgate.toml 'node[001-004]' lan.ipsrc=static lan.ip=10.1.0.{n} lan.netmask=255.255.0.0 --allow-disconnect
  solgate bmc set -c solgate.toml node042 channel.per-msg-auth=on --dry-run
  sudo solgate bmc set --inband lan.ipsrc=static lan.ip=10.1.0.42 lan.netmask=255.255.0.0 lan.gateway=10.1.0.1

`)
	b.WriteString(connFlagsHelp)
	return b.String()
}

// setJSON is one host's result of set and user.
type setJSON struct {
	Host    string       `json:"host"`
	BMC     string       `json:"bmc"`
	OK      bool         `json:"ok"`
	Error   string       `json:"error,omitempty"`
	DryRun  bool         `json:"dry_run,omitempty"`
	Changes []changeJSON `json:"changes,omitempty"`
}

type changeJSON struct {
	Key      string `json:"key"`
	Old      string `json:"old"`
	New      string `json:"new"`
	Status   string `json:"status"`
	Got      string `json:"got,omitempty"`
	Error    string `json:"error,omitempty"`
	Disrupts string `json:"disrupts,omitempty"`
}

func runBMCSet(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var f bmcFlags
	fs := newFlagSet("bmc set", bmcSetUsage(), stderr)
	f.register(fs)
	dry := fs.Bool("dry-run", false, "print what would change, change nothing")
	allow := fs.Bool("allow-disconnect", false, "also make changes that could cut off the session in use (applied last)")
	names, rest, err := f.parse(args, 1, "KEY=VALUE...")
	if err != nil {
		return err
	}
	perHost := make([][]bmcconf.Assignment, len(names))
	for _, arg := range rest {
		a, err := bmcconf.ParseAssignment(arg)
		if err == nil {
			err = bmcconf.CheckKey(a.Key)
		}
		if err != nil {
			return &exitError{code: 2, msg: "bmc set: " + err.Error()}
		}
		vals, err := expandValue(a.Value, names)
		if err != nil {
			return &exitError{code: 2, msg: fmt.Sprintf("bmc set: %s: %v", a.Key, err)}
		}
		for i := range names {
			perHost[i] = append(perHost[i], bmcconf.Assignment{Key: a.Key, Value: vals[i]})
		}
	}
	ts, err := f.resolve(stderr)
	if err != nil {
		return err
	}
	return applyPlans(ctx, &f, ts, stdout, *dry, *allow, func(i int, s *bmcconf.Snapshot) ([]bmcconf.Assignment, error) {
		return perHost[i], nil
	})
}

// applyPlans plans and applies per host and reports.
func applyPlans(ctx context.Context, f *bmcFlags, ts []bmcTarget, stdout io.Writer, dry, allow bool,
	assign func(i int, s *bmcconf.Snapshot) ([]bmcconf.Assignment, error)) error {
	type out struct {
		plan *bmcconf.Plan
		res  []bmcconf.Result
	}
	outs, errs := each(ctx, f, ts, func(ctx context.Context, i int, c ipmilan.Commander) (out, error) {
		s, err := bmcconf.Read(ctx, c, uint8(f.channel))
		if err != nil {
			return out{}, err
		}
		s.SetLoginUser(ts[i].Config.User)
		as, err := assign(i, s)
		if err != nil {
			return out{}, err
		}
		p, err := bmcconf.NewPlan(s, as)
		if err != nil || dry {
			return out{plan: p}, err
		}
		return out{plan: p, res: p.Apply(ctx, c, bmcconf.ApplyOptions{AllowDisconnect: allow})}, nil
	})
	failed := 0
	var js []setJSON
	for i, t := range ts {
		j := setJSON{Host: t.Name, BMC: t.Config.Addr, OK: true, DryRun: dry}
		line := func(format string, a ...any) {
			if !f.asJSON {
				fmt.Fprintf(stdout, "%s: %s\n", t.Name, fmt.Sprintf(format, a...))
			}
		}
		if errs[i] != nil {
			failed++
			j.OK, j.Error = false, describe(errs[i], t)
			line("%s", j.Error)
			js = append(js, j)
			continue
		}
		o := outs[i]
		for _, k := range o.plan.Unchanged {
			line("%s: unchanged", k)
			j.Changes = append(j.Changes, changeJSON{Key: k, Status: "unchanged"})
		}
		if dry {
			for _, c := range o.plan.Changes {
				note := ""
				if c.Disrupts != "" {
					note = "; could cut off the session: " + c.Disrupts
					if !allow {
						note += " (needs --allow-disconnect)"
					}
				}
				line("%s: %s -> %s (dry run%s)", c.Key, shown(c.Old), shown(c.New), note)
				j.Changes = append(j.Changes, changeJSON{Key: c.Key, Old: c.Old, New: c.New, Status: "dry run", Disrupts: c.Disrupts})
			}
			js = append(js, j)
			continue
		}
		for _, r := range o.res {
			cj := changeJSON{Key: r.Key, Old: r.Old, New: r.New, Status: string(r.Status), Got: r.Got, Disrupts: r.Disrupts}
			msg := string(r.Status)
			switch r.Status {
			case bmcconf.StatusOK:
			case bmcconf.StatusNotReadBack:
				cj.Error = describe(r.Err, t)
				msg = "applied, not read back: " + cj.Error
			case bmcconf.StatusMismatch:
				j.OK = false
				msg = "applied, but reads back " + r.Got
			case bmcconf.StatusRefused:
				j.OK = false
				msg = "refused: it could cut off the session in use: " + r.Disrupts + " (give --allow-disconnect)"
			default:
				j.OK = false
				cj.Error = describe(r.Err, t)
				msg += ": " + cj.Error
			}
			line("%s: %s -> %s: %s", r.Key, shown(r.Old), shown(r.New), msg)
			j.Changes = append(j.Changes, cj)
		}
		if !j.OK {
			failed++
		}
		js = append(js, j)
	}
	return finishBMC(stdout, f.asJSON, js, failed)
}

// shown prints an empty value (a user without a name) visibly.
func shown(v string) string {
	if v == "" {
		return `""`
	}
	return v
}

var trailingNumber = regexp.MustCompile(`[0-9]+$`)

// expandValue returns the value of a KEY=VALUE for each host: templates
// {name}, {n} and {i}, or a hostlist with one value per host.
func expandValue(v string, hosts []string) ([]string, error) {
	out := make([]string, len(hosts))
	if strings.Contains(v, "[") {
		l, err := hostlist.Expand(v)
		if err != nil {
			return nil, err
		}
		switch len(l) {
		case 1:
			v = l[0]
		case len(hosts):
			copy(out, l)
			return out, nil
		default:
			return nil, fmt.Errorf("%q gives %d values for %d hosts", v, len(l), len(hosts))
		}
	}
	for i, h := range hosts {
		s := strings.ReplaceAll(v, "{name}", h)
		s = strings.ReplaceAll(s, "{i}", strconv.Itoa(i+1))
		if strings.Contains(s, "{n}") {
			num := trailingNumber.FindString(h)
			if num == "" {
				return nil, fmt.Errorf("{n}: host %q does not end in a number", h)
			}
			n, _ := strconv.ParseUint(num, 10, 64)
			s = strings.ReplaceAll(s, "{n}", strconv.FormatUint(n, 10))
		}
		if strings.ContainsAny(s, "{}") {
			return nil, fmt.Errorf("%q: unknown template (want {name}, {n} or {i})", v)
		}
		out[i] = s
	}
	return out, nil
}

// ---- user ----

func bmcUserUsage() string {
	var b strings.Builder
	b.WriteString(`Usage: solgate bmc user [flags] HOSTS ACTION NAME|ID [VALUE]

Manages a user on every BMC of HOSTS and reads each change back (as solgate
bmc set does; the same --dry-run and --allow-disconnect). A NAME of digits
only is a user ID (user 1 is the null user, which has no name). New passwords
come from --new-password-file (first line; stored in the 20-byte form when
longer than 16 bytes, or as --password-size says), else a prompt on a
terminal: never from the command line.

Actions:
`)
	tw := tabwriter.NewWriter(&b, 0, 8, 2, ' ', 0)
	for _, a := range bmcconf.UserActions {
		fmt.Fprintf(tw, "  %s %s\t%s\n", a.Action, a.Args, a.Help)
	}
	tw.Flush()
	b.WriteString("\n" + bmcTargetsHelp + `

Examples:
  solgate bmc user -c solgate.toml 'node[001-128]' add solgate operator --new-password-file /etc/solgate/bmc.pass
  solgate bmc user -c solgate.toml 'node[001-128]' sol solgate on
  solgate bmc user -c solgate.toml 'node[001-128]' disable 1
  solgate bmc user -c solgate.toml node042 password admin --new-password-file new.pass --allow-disconnect
  sudo solgate bmc user --inband add solgate admin --new-password-file /root/bmc.pass

`)
	b.WriteString(connFlagsHelp)
	return b.String()
}

func runBMCUser(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var f bmcFlags
	fs := newFlagSet("bmc user", bmcUserUsage(), stderr)
	f.register(fs)
	dry := fs.Bool("dry-run", false, "print what would change, change nothing")
	allow := fs.Bool("allow-disconnect", false, "also make changes that could cut off the session in use (applied last)")
	pwFile := fs.String("new-password-file", "", "read the new password from the first line of `FILE`")
	pwSize := fs.Int("password-size", 0, "store passwords in the 16- or 20-byte form (0: 20 if longer than 16 bytes)")
	noSOL := fs.Bool("no-sol", false, "add: without SOL payload access")
	id := fs.Int("id", 0, "add: use user ID `N` (0: the first free one)")
	_, rest, err := f.parse(args, 2, "ACTION NAME [VALUE]")
	if err != nil {
		return err
	}
	op := bmcconf.UserOp{Action: rest[0], User: rest[1], NoSOL: *noSOL, Size: ipmilan.PasswordSize(*pwSize)}
	if len(rest) > 2 {
		op.Value = rest[2]
	}
	if len(rest) > 3 {
		return &exitError{code: 2, msg: fmt.Sprintf("bmc user: unexpected %q", rest[3])}
	}
	if *id < 0 || *id > ipmilan.MaxUserID || *pwSize != 0 && *pwSize != 16 && *pwSize != 20 {
		return &exitError{code: 2, msg: "bmc user: --id wants 1-63 and --password-size 16 or 20"}
	}
	op.ID = uint8(*id)
	known := false
	for _, a := range bmcconf.UserActions {
		known = known || a.Action == op.Action
	}
	if !known {
		return &exitError{code: 2, msg: fmt.Sprintf("bmc user: unknown action %q (want add, password, enable, disable, privilege or sol)", op.Action)}
	}
	if op.Action == "add" || op.Action == "password" {
		pw, _, err := readSecret(*pwFile, "", "New BMC user password", os.Stdin, stderr)
		if err != nil {
			return &exitError{code: 2, msg: "bmc user: " + err.Error()}
		}
		if len(pw) == 0 {
			return &exitError{code: 2, msg: "bmc user: " + op.Action + " needs a password: give --new-password-file FILE"}
		}
		if _, err := op.Size.Check(pw); err != nil {
			return &exitError{code: 2, msg: "bmc user: " + strings.TrimPrefix(err.Error(), "ipmilan: ")}
		}
		op.Password = pw
	}
	ts, err := f.resolve(stderr)
	if err != nil {
		return err
	}
	return applyPlans(ctx, &f, ts, stdout, *dry, *allow, func(i int, s *bmcconf.Snapshot) ([]bmcconf.Assignment, error) {
		return op.Assignments(s)
	})
}

// ---- doctor ----

func bmcDoctorUsage() string {
	var b strings.Builder
	b.WriteString(`Usage: solgate bmc doctor [flags] HOSTS

Checks on every BMC of HOSTS what Serial-over-LAN needs and what is insecure,
and prints one line per problem with the command that fixes it:
  node01: sol.bitrate: SOL bit rate: volatile 9600, the console runs at 115200; fix: solgate bmc set ... node01 sol.bitrate=115200
A BMC without problems prints "ok". The exit status is 0 only if no check
failed on any BMC (1 otherwise, 2 for usage errors). The user checked is the
one solgate logs in with (-u, or the console's user with -c); the cipher suite
is the configured one (-C), or 17 or 3. Checks the BMC cannot answer (it lacks
the command) are listed as skipped, not failed.

Checks:
`)
	tw := tabwriter.NewWriter(&b, 0, 8, 2, ' ', 0)
	for _, c := range bmcconf.Checks {
		fmt.Fprintf(tw, "  %s\t%s\n", c.Name, c.Help)
	}
	tw.Flush()
	b.WriteString("\n" + bmcTargetsHelp + `

Examples:
  solgate bmc doctor -c /etc/solgate/solgate.toml 'node[001-128]'
  solgate bmc doctor -u admin --password-file bmc.pass 'node[001-004]' --bmc '{name}-bmc' --baud 57600
  solgate bmc doctor -c solgate.toml 'node[001-128]' --json | jq -r '.[] | select(.ok | not) | .host'
  sudo solgate bmc doctor --inband -u solgate

`)
	b.WriteString(connFlagsHelp)
	return b.String()
}

type doctorJSON struct {
	Host     string        `json:"host"`
	BMC      string        `json:"bmc"`
	OK       bool          `json:"ok"`
	Error    string        `json:"error,omitempty"`
	Problems []problemJSON `json:"problems,omitempty"`
	Skipped  []string      `json:"skipped,omitempty"`
}

type problemJSON struct {
	Check    string `json:"check"`
	Insecure bool   `json:"insecure"`
	Message  string `json:"message"`
	Fix      string `json:"fix,omitempty"`
}

func runBMCDoctor(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var f bmcFlags
	fs := newFlagSet("bmc doctor", bmcDoctorUsage(), stderr)
	f.register(fs)
	baud := fs.String("baud", "115200", "the nodes' serial console speed, which SOL's bit rate must equal")
	expectSuite := fs.Int("expect-suite", -1, "the cipher suite solgate is configured with, if not the one of this session (-C; 0: 17 or 3)")
	_, rest, err := f.parse(args, 0, "")
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return f.usage("unexpected %q (want only HOSTS)", rest[0])
	}
	rate, err := ipmilan.ParseBitRate(*baud)
	if err != nil || rate == ipmilan.BitRateSerial {
		return f.usage("--baud %q: want 9600, 19200, 38400, 57600 or 115200", *baud)
	}
	if *expectSuite < -1 || *expectSuite > 255 {
		return f.usage("--expect-suite %d: want a cipher suite", *expectSuite)
	}
	ts, err := f.resolve(stderr)
	if err != nil {
		return err
	}
	type diag struct {
		problems []bmcconf.Problem
		skipped  []string
	}
	ds, errs := each(ctx, &f, ts, func(ctx context.Context, i int, c ipmilan.Commander) (diag, error) {
		s, err := bmcconf.Read(ctx, c, uint8(f.channel))
		if err != nil {
			return diag{}, err
		}
		cfg := ts[i].Config
		suite := cfg.CipherSuite
		if *expectSuite >= 0 {
			suite = *expectSuite
		}
		p, sk := bmcconf.Diagnose(s, bmcconf.Expect{BitRate: rate, User: cfg.User, Privilege: cfg.Privilege, CipherSuite: suite})
		return diag{p, sk}, nil
	})
	prefix := fixPrefix(&f)
	if !f.inband && f.conn.set["privilege"] && f.conn.priv != "admin" && f.conn.priv != "administrator" {
		fmt.Fprintln(stderr, "solgate: note: most fixes need an admin session; run them with an administrator account")
	}
	failed := 0
	var js []doctorJSON
	for i, t := range ts {
		j := doctorJSON{Host: t.Name, BMC: t.Config.Addr, OK: errs[i] == nil && len(ds[i].problems) == 0}
		if !j.OK {
			failed++
		}
		if errs[i] != nil {
			j.Error = describe(errs[i], t)
			if !f.asJSON {
				fmt.Fprintf(stdout, "%s: %s\n", t.Name, j.Error)
			}
			js = append(js, j)
			continue
		}
		j.Skipped = ds[i].skipped
		for _, p := range ds[i].problems {
			pj := problemJSON{Check: p.Check, Insecure: p.Insecure, Message: p.Message}
			if len(p.Fix) > 0 {
				pj.Fix = fixCommand(prefix, p.Fix, t.Name, f.inband)
			}
			j.Problems = append(j.Problems, pj)
			if !f.asJSON {
				tag := ""
				if p.Insecure {
					tag = " [insecure]"
				}
				fix := "; fix: " + pj.Fix
				if pj.Fix == "" {
					fix = ""
				}
				fmt.Fprintf(stdout, "%s: %s%s: %s%s\n", t.Name, p.Check, tag, p.Message, fix)
			}
		}
		if !f.asJSON && len(j.Problems) == 0 {
			note := ""
			if n := len(j.Skipped); n > 0 {
				note = fmt.Sprintf(" (%d checks skipped: %s)", n, strings.Join(j.Skipped, "; "))
			}
			fmt.Fprintf(stdout, "%s: ok%s\n", t.Name, note)
		}
		js = append(js, j)
	}
	return finishBMC(stdout, f.asJSON, js, failed)
}

// fixFlags are the connection flags a fix command repeats.
var fixFlags = []string{"c", "u", "user", "password-file", "kg-file", "interface", "I", "auth-type", "cipher-suite", "C",
	"privilege", "bmc", "timeout", "retries", "quirks", "insecure", "inband", "device", "channel"}

// fixPrefix is "solgate bmc" plus nothing: the connection flags go after
// the verb, so they are returned separately.
func fixPrefix(f *bmcFlags) []string {
	var out []string
	for _, name := range fixFlags {
		fl := f.fs.Lookup(name)
		if fl == nil || !f.conn.set[name] {
			continue
		}
		if bf, ok := fl.Value.(interface{ IsBoolFlag() bool }); ok && bf.IsBoolFlag() {
			if fl.Value.String() == "true" {
				out = append(out, "--"+name)
			}
			continue
		}
		dash := "--"
		if len(name) == 1 {
			dash = "-"
		}
		out = append(out, dash+name, fl.Value.String())
	}
	return out
}

// fixCommand renders a Problem.Fix as a command line.
func fixCommand(conn, fix []string, host string, inband bool) string {
	args := []string{"solgate", "bmc", fix[0]}
	args = append(args, conn...)
	for _, a := range fix[1:] {
		if a == bmcconf.HOST {
			if inband {
				continue
			}
			a = host
		}
		args = append(args, a)
	}
	for i, a := range args {
		args[i] = shellQuote(a)
	}
	return strings.Join(args, " ")
}

var shellSafe = regexp.MustCompile(`^[A-Za-z0-9_./:=@%+,-]+$`)

func shellQuote(s string) string {
	if shellSafe.MatchString(s) {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
