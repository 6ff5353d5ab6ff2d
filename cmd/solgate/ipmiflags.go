package main

import (
	"bytes"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/term"

	"github.com/solgate/solgate/conserver/config"
	"github.com/solgate/solgate/ipmilan"
	"github.com/solgate/solgate/logstore"
)

// connFlags are the BMC connection flags shared by power and sol.
type connFlags struct {
	user         string
	passwordFile string
	kgFile       string
	iface        string
	suite        int
	authType     string
	priv         string
	bmc          string
	configFile   string
	timeout      time.Duration
	retries      int
	quirks       string
	insecure     bool
	set          map[string]bool // flags given on the command line
	// stateDir is the state_dir of the -c configuration, once targets
	// has read it ("" without -c).
	stateDir string
}

const connFlagsHelp = `Credentials: the password comes from --password-file, else the environment
variable IPMI_PASSWORD (as ipmitool -E; IPMI_PASSWORD= for an empty one),
else a prompt when stdin is a terminal; with none of these solgate says so
rather than trying an empty password. It is never accepted on the command
line, where ps would show it.

Security: the automatic cipher suite choice uses only suites with integrity
and encryption (17, else 3). --insecure is needed for an explicit
--cipher-suite without them (1, 2, 6, 7, 11, 15, 16: what is typed travels
in clear) and for --auth-type password or none with --interface lan.
Cipher suite 0 is not available from the command line (the config file's
insecure_cipher_suite_zero can allow it per console).`

// Limits of the connection flags: IPMI's field sizes, and bounds that
// keep a typo from hanging a command for hours.
const (
	maxUser       = 16 // IPMI user name
	maxPassword20 = 20 // IPMI 2.0 password
	maxPassword15 = 16 // IPMI 1.5 password
	maxKG         = 20 // K_g
	minTimeout    = 10 * time.Millisecond
	maxTimeout    = time.Minute
	maxRetries    = 20
)

// weakSuites are the explicit suites --insecure must allow (no integrity
// or no confidentiality), as the config's insecure_cipher_suite.
var weakSuites = []int{1, 2, 6, 7, 11, 15, 16}

func (f *connFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.user, "u", "", "BMC user `name` (at most 16 bytes)")
	fs.StringVar(&f.user, "user", "", "BMC user `name` (same as -u)")
	fs.StringVar(&f.passwordFile, "password-file", "", "read the BMC password from the first line of `FILE`")
	fs.StringVar(&f.kgFile, "kg-file", "", "read the K_g BMC key from `FILE` (raw, or 0x followed by hex)")
	fs.StringVar(&f.iface, "interface", "lanplus", "`lanplus` (IPMI 2.0 RMCP+) or lan (IPMI 1.5)")
	fs.StringVar(&f.iface, "I", "lanplus", "same as --interface")
	fs.IntVar(&f.suite, "cipher-suite", 0, "RMCP+ cipher suite `N`: 0 is automatic (17, else 3); else one of "+joinInts(config.ValidCipherSuites))
	fs.IntVar(&f.suite, "C", 0, "same as --cipher-suite")
	fs.StringVar(&f.authType, "auth-type", "md5", "IPMI 1.5 authentication with --interface lan: md5, or password or none (both need --insecure)")
	fs.StringVar(&f.priv, "privilege", "admin", "session privilege: user, operator or admin")
	fs.StringVar(&f.bmc, "bmc", "", "BMC address `TEMPLATE` per host, e.g. '{name}-bmc' or '{name}.ipmi:623'")
	fs.StringVar(&f.configFile, "c", "", "solgate config `FILE`: host names are consoles there, with their BMCs and credentials")
	fs.DurationVar(&f.timeout, "timeout", time.Second, "per-attempt timeout (10ms to 1m)")
	fs.IntVar(&f.retries, "retries", 2, "retransmissions after the first try (0 to 20)")
	fs.StringVar(&f.quirks, "quirks", "", "BMC workarounds, comma separated (FreeIPMI -W names, e.g. opensesspriv,intel20)")
	fs.BoolVar(&f.insecure, "insecure", false, "allow an explicit --cipher-suite without integrity or encryption (1, 2, 6, 7, 11, 15, 16) and --auth-type password or none")
}

// check validates the flags that are the same for every host, before any
// BMC is contacted: one usage error instead of one failure per host.
func (f *connFlags) check(hosts int) error {
	if f.timeout < minTimeout || f.timeout > maxTimeout {
		return fmt.Errorf("--timeout %v: want %v to %v", f.timeout, minTimeout, maxTimeout)
	}
	if f.retries < 0 || f.retries > maxRetries {
		return fmt.Errorf("--retries %d: want 0 to %d", f.retries, maxRetries)
	}
	if len(f.user) > maxUser {
		return fmt.Errorf("user name %s is %d bytes; IPMI allows at most %d", logstore.QuoteShort(f.user), len(f.user), maxUser)
	}
	if f.suite != 0 && !slices.Contains(config.ValidCipherSuites, f.suite) {
		return fmt.Errorf("--cipher-suite %d: want 0 (automatic: 17, else 3) or one of %s", f.suite, joinInts(config.ValidCipherSuites))
	}
	if slices.Contains(weakSuites, f.suite) && !f.insecure {
		return fmt.Errorf("--cipher-suite %d has no integrity or no encryption (what is typed travels in clear); add --insecure to use it anyway", f.suite)
	}
	iface, err := ipmilan.ParseInterface(f.iface)
	if err != nil {
		return err
	}
	if _, err := f.ipmiAuthType(iface); err != nil {
		return err
	}
	if _, err := ipmilan.ParsePrivilege(f.priv); err != nil {
		return err
	}
	if _, err := ipmilan.ParseQuirks(f.quirks); err != nil {
		return err
	}
	if f.bmc != "" {
		if f.configFile != "" {
			return errors.New("--bmc and -c: the config file names each console's BMC; give one of them")
		}
		if err := config.CheckTemplate(f.bmc); err != nil {
			return fmt.Errorf("--bmc: %w", err)
		}
		if !strings.Contains(f.bmc, "{name}") && hosts > 1 {
			return fmt.Errorf("--bmc %s has no {name}: all %d hosts would be the same BMC", logstore.QuoteShort(f.bmc), hosts)
		}
	}
	return nil
}

func (f *connFlags) ipmiAuthType(iface ipmilan.Interface) (ipmilan.AuthType, error) {
	var t ipmilan.AuthType
	switch f.authType {
	case "md5", "":
		return ipmilan.AuthMD5, nil
	case "password":
		t = ipmilan.AuthPassword
	case "none":
		t = ipmilan.AuthNone
	default:
		return 0, fmt.Errorf("--auth-type %s: want md5, password or none", logstore.QuoteShort(f.authType))
	}
	if iface != ipmilan.LAN {
		return 0, fmt.Errorf("--auth-type %s is IPMI 1.5: it needs --interface lan", f.authType)
	}
	if !f.insecure {
		return 0, fmt.Errorf("--auth-type %s sends the password in clear or not at all; add --insecure to use it anyway", f.authType)
	}
	return t, nil
}

// base builds the ipmilan.Config the flags describe (no address), reading
// the password and K_g. check must have passed.
func (f *connFlags) base(stdin io.Reader, stderr io.Writer) (ipmilan.Config, error) {
	var c ipmilan.Config
	var err error
	if c.Interface, err = ipmilan.ParseInterface(f.iface); err != nil {
		return c, err
	}
	if c.AuthType, err = f.ipmiAuthType(c.Interface); err != nil {
		return c, err
	}
	c.ForceAuthNone = c.AuthType == ipmilan.AuthNone // ipmilan wants none asked for twice
	if c.Privilege, err = ipmilan.ParsePrivilege(f.priv); err != nil {
		return c, err
	}
	if c.Quirks, err = ipmilan.ParseQuirks(f.quirks); err != nil {
		return c, err
	}
	c.CipherSuite, c.Insecure = f.suite, f.insecure
	c.Timeout = f.timeout
	c.Retries = f.retries
	if f.retries == 0 {
		c.Retries = -1 // the flag says none; ipmilan's zero means default
	}
	c.User = f.user
	pw, ok, err := readSecret(f.passwordFile, "IPMI_PASSWORD", "BMC password", stdin, stderr)
	if err != nil {
		return c, fmt.Errorf("--password-file: %w", err)
	}
	if !ok {
		return c, errors.New("no BMC password: give --password-file, set IPMI_PASSWORD (IPMI_PASSWORD= for an empty password), or run on a terminal to be asked")
	}
	maxPw := maxPassword20
	if c.Interface == ipmilan.LAN {
		maxPw = maxPassword15
	}
	if len(pw) > maxPw {
		return c, fmt.Errorf("the password is %d bytes; IPMI %s allows at most %d", len(pw), map[bool]string{true: "1.5", false: "2.0"}[c.Interface == ipmilan.LAN], maxPw)
	}
	c.Password = pw
	if f.kgFile != "" {
		kg, _, err := readSecret(f.kgFile, "", "", nil, stderr)
		if err != nil {
			return c, fmt.Errorf("--kg-file: %w", err)
		}
		if err := checkKG(kg); err != nil {
			return c, fmt.Errorf("--kg-file %s: %w", f.kgFile, err)
		}
		c.KG = kg
	}
	return c, nil
}

// checkKG checks a K_g as ipmilan takes it: raw, or 0x and hex digits, at
// most 20 bytes either way.
func checkKG(kg ipmilan.Secret) error {
	if h, ok := bytes.CutPrefix(kg, []byte("0x")); ok || bytes.HasPrefix(kg, []byte("0X")) {
		if !ok {
			h = kg[2:]
		}
		d := make([]byte, hex.DecodedLen(len(h)))
		if _, err := hex.Decode(d, h); err != nil {
			return errors.New("K_g after 0x is not hex")
		}
		kg = d
	}
	if len(kg) > maxKG {
		return fmt.Errorf("K_g is %d bytes; IPMI allows at most %d", len(kg), maxKG)
	}
	return nil
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
// environment variable env, else by prompting on a terminal. ok is false
// when none of them gave one. The file must be a small regular file: a
// FIFO or /dev/zero is refused at once.
func readSecret(file, env, prompt string, stdin io.Reader, stderr io.Writer) (s ipmilan.Secret, ok bool, err error) {
	if file != "" {
		data, st, err := config.ReadFileLimit(file, config.MaxSecretFile)
		if err != nil {
			return nil, false, fmt.Errorf("%s: %w", file, err)
		}
		if st.Mode().Perm()&0o004 != 0 {
			fmt.Fprintf(stderr, "solgate: warning: %s is readable by everyone; chmod 600 it\n", file)
		}
		line, _, _ := bytes.Cut(data, []byte("\n"))
		return ipmilan.Secret(bytes.TrimSuffix(line, []byte("\r"))), true, nil
	}
	if env != "" {
		if v, ok := os.LookupEnv(env); ok {
			return ipmilan.Secret(v), true, nil
		}
	}
	if prompt != "" {
		if f, isFile := stdin.(*os.File); isFile && term.IsTerminal(int(f.Fd())) {
			fmt.Fprintf(stderr, "%s: ", prompt)
			pw, err := term.ReadPassword(int(f.Fd()))
			fmt.Fprintln(stderr)
			if err != nil {
				return nil, false, err
			}
			return ipmilan.Secret(pw), true, nil
		}
	}
	return nil, false, nil
}

func joinInts(v []int) string {
	s := make([]string, len(v))
	for i, n := range v {
		s[i] = strconv.Itoa(n)
	}
	return strings.Join(s, ", ")
}
