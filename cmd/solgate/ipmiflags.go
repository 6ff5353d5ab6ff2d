package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"golang.org/x/term"

	"github.com/solgate/solgate/ipmilan"
)

// connFlags are the BMC connection flags shared by power and sol.
type connFlags struct {
	user         string
	passwordFile string
	kgFile       string
	iface        string
	suite        int
	priv         string
	bmc          string
	configFile   string
	timeout      time.Duration
	retries      int
	quirks       string
	insecure     bool
	set          map[string]bool // flags given on the command line
}

const connFlagsHelp = `Credentials: the password comes from --password-file, else the environment
variable IPMI_PASSWORD (as ipmitool -E), else a prompt when stdin is a
terminal. It is never accepted on the command line, where ps would show it.`

func (f *connFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.user, "u", "", "BMC user `name`")
	fs.StringVar(&f.user, "user", "", "BMC user `name` (same as -u)")
	fs.StringVar(&f.passwordFile, "password-file", "", "read the BMC password from the first line of `FILE`")
	fs.StringVar(&f.kgFile, "kg-file", "", "read the K_g BMC key from `FILE` (raw, or 0x followed by hex)")
	fs.StringVar(&f.iface, "interface", "lanplus", "`lanplus` (IPMI 2.0 RMCP+) or lan (IPMI 1.5)")
	fs.StringVar(&f.iface, "I", "lanplus", "same as --interface")
	fs.IntVar(&f.suite, "cipher-suite", 0, "RMCP+ cipher suite `N` (0: the first of 17, 3, 2, 1 the BMC offers)")
	fs.IntVar(&f.suite, "C", 0, "same as --cipher-suite")
	fs.StringVar(&f.priv, "privilege", "admin", "session privilege: user, operator or admin")
	fs.StringVar(&f.bmc, "bmc", "", "BMC address `TEMPLATE` per host, e.g. '{name}-bmc' or '{name}.ipmi:623'")
	fs.StringVar(&f.configFile, "c", "", "solgate config `FILE`: host names are consoles there, with their BMCs and credentials")
	fs.DurationVar(&f.timeout, "timeout", time.Second, "per-attempt timeout")
	fs.IntVar(&f.retries, "retries", 2, "retransmissions after the first try")
	fs.StringVar(&f.quirks, "quirks", "", "BMC workarounds, comma separated (FreeIPMI -W names, e.g. opensesspriv,intel20)")
	fs.BoolVar(&f.insecure, "insecure", false, "allow cipher suite 0, IPMI 1.5 auth none and clear-text passwords")
}

// base builds the ipmilan.Config the flags describe (no address).
func (f *connFlags) base(stdin io.Reader, stderr io.Writer) (ipmilan.Config, error) {
	var c ipmilan.Config
	var err error
	if c.Interface, err = ipmilan.ParseInterface(f.iface); err != nil {
		return c, err
	}
	if c.Privilege, err = ipmilan.ParsePrivilege(f.priv); err != nil {
		return c, err
	}
	if c.Quirks, err = ipmilan.ParseQuirks(f.quirks); err != nil {
		return c, err
	}
	if f.suite < 0 || f.suite > 255 {
		return c, fmt.Errorf("--cipher-suite %d: want 0-19", f.suite)
	}
	c.CipherSuite, c.Insecure = f.suite, f.insecure
	c.Timeout = f.timeout
	c.Retries = f.retries
	if f.retries == 0 {
		c.Retries = -1 // the flag says none; ipmilan's zero means default
	}
	c.User = f.user
	if c.Password, err = readSecret(f.passwordFile, "IPMI_PASSWORD", "BMC password", stdin, stderr); err != nil {
		return c, err
	}
	if f.kgFile != "" {
		if c.KG, err = readSecret(f.kgFile, "", "", nil, stderr); err != nil {
			return c, err
		}
	}
	return c, nil
}

// address maps a host name to its BMC address by the --bmc template; with
// no template the host is the BMC address.
func (f *connFlags) address(host string) string {
	if f.bmc == "" {
		return host
	}
	return strings.ReplaceAll(f.bmc, "{name}", host)
}

// readSecret reads a secret from a file (first line), else from the
// environment variable env, else by prompting on a terminal.
func readSecret(file, env, prompt string, stdin io.Reader, stderr io.Writer) (ipmilan.Secret, error) {
	if file != "" {
		fi, err := os.Stat(file)
		if err != nil {
			return nil, err
		}
		if fi.Mode().Perm()&0o004 != 0 {
			fmt.Fprintf(stderr, "solgate: warning: %s is readable by everyone; chmod 600 it\n", file)
		}
		fh, err := os.Open(file)
		if err != nil {
			return nil, err
		}
		defer fh.Close()
		line, err := bufio.NewReader(io.LimitReader(fh, 4096)).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%s: %w", file, err)
		}
		return ipmilan.Secret(strings.TrimRight(line, "\r\n")), nil
	}
	if env != "" {
		if v, ok := os.LookupEnv(env); ok {
			return ipmilan.Secret(v), nil
		}
	}
	if prompt != "" {
		if f, ok := stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
			fmt.Fprintf(stderr, "%s: ", prompt)
			pw, err := term.ReadPassword(int(f.Fd()))
			fmt.Fprintln(stderr)
			if err != nil {
				return nil, err
			}
			return ipmilan.Secret(pw), nil
		}
	}
	return nil, nil
}
