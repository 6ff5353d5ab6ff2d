package migrate

import (
	"encoding/hex"
	"fmt"
	"path"
	"strconv"
	"strings"
	"unicode/utf8"
)

// execIPMI is what the command line of an exec console running an IPMI SOL
// client says about the connection.
type execIPMI struct {
	tool      string // "ipmitool" or "ipmiconsole"
	host      string // BMC address, with :port when one was given
	user      string
	password  string // from -P or -p; "" for none
	pwFile    string // ipmitool -f
	kg        string // decoded
	cipher    string // -C or -I as given, "" if not (cipherSuite reads it)
	privilege string // "" is admin, the default of both tools
	quirks    []string
	lan       bool // ipmitool -I lan (IPMI 1.5)
	notes     []string
}

// execConsole reads an exec console's command. It returns the connection
// when the console certainly runs an IPMI SOL client with settings solgate
// can take over. Otherwise why is what could not be translated (never
// text that may hold a secret), and client says whether the command runs
// an IPMI SOL client at all.
func (p *cfParser) execConsole(e *cfEntity) (x *execIPMI, client bool, why string) {
	cmd, _ := e.get("exec")
	if cmd == "" {
		return nil, false, ""
	}
	mentions := strings.Contains(cmd, "ipmitool") || strings.Contains(cmd, "ipmiconsole")
	subst, changed, err := p.execSubst(e, cmd)
	if err != nil {
		return nil, mentions, err.Error()
	}
	words, err := shellSplit(subst)
	if err != nil {
		return nil, mentions, err.Error()
	}
	if len(words) > 0 && words[0] == "exec" {
		words = words[1:]
		if len(words) > 0 && strings.HasPrefix(words[0], "-") {
			return nil, mentions, (&shellFeature{"exec with options"}).Error()
		}
	}
	if len(words) == 0 {
		return nil, false, ""
	}
	if isAssignment(words[0]) {
		return nil, mentions, (&shellFeature{"a variable assignment before the command"}).Error()
	}
	prog := path.Base(words[0])
	switch prog {
	case "ipmitool":
		x, why = parseIpmitool(words[1:])
	case "ipmiconsole":
		x, why = parseIpmiconsole(words[1:])
	default:
		if mentions {
			return nil, true, fmt.Sprintf("the command runs %s, not ipmitool or ipmiconsole itself", quote(prog))
		}
		return nil, false, ""
	}
	if why != "" && changed != "" {
		why += fmt.Sprintf(" (execsubst replaces every %s in the exec value, option letters and paths included)", changed)
	}
	return x, true, why
}

func isAssignment(w string) bool {
	i := strings.IndexByte(w, '=')
	if i < 1 {
		return false
	}
	for j := 0; j < i; j++ {
		c := w[j]
		if !(c == '_' || isAlnum(c)) || j == 0 && c >= '0' && c <= '9' {
			return false
		}
	}
	return true
}

// execSubst applies a console's execsubst to its exec value as conserver
// does: every occurrence of each substitution character in the whole value
// is replaced, with no quoting or escape. c (the console name), h (host)
// and r (replstring) are applied, padded on the left with spaces to the
// field length; a numeric substitution (p, P) or b that occurs in the value
// stops the translation. changed lists the characters that occurred.
func (p *cfParser) execSubst(e *cfEntity, cmd string) (out, changed string, err error) {
	spec, ok := e.get("execsubst")
	if !ok || spec == "" {
		return cmd, "", nil
	}
	type rule struct {
		t     byte
		width int
	}
	rules := map[byte]rule{}
	for _, item := range strings.Split(spec, ",") {
		// c=t[n]f: c printable and not ','; t one of c h r b (format s)
		// or p P (formats d x X a A).
		bad := fmt.Errorf("execsubst %s does not parse (conserver rejects it and substitutes nothing)", quote(spec))
		if len(item) < 4 || item[1] != '=' || item[0] <= ' ' || item[0] >= 0x7f {
			return "", "", bad
		}
		c, t, f, n := item[0], item[2], item[len(item)-1], item[3:len(item)-1]
		for i := 0; i < len(n); i++ {
			if n[i] < '0' || n[i] > '9' {
				return "", "", bad
			}
		}
		switch {
		case strings.IndexByte("chrb", t) >= 0 && f == 's':
		case strings.IndexByte("pP", t) >= 0 && strings.IndexByte("dxXaA", f) >= 0:
		default:
			return "", "", bad
		}
		if _, dup := rules[c]; dup {
			return "", "", fmt.Errorf("execsubst %s substitutes %s twice (conserver rejects it and substitutes nothing)", quote(spec), quote(string(c)))
		}
		width, _ := strconv.Atoi(n)
		rules[c] = rule{t, width}
	}
	var b strings.Builder
	var seen []byte
	for i := 0; i < len(cmd); i++ {
		r, ok := rules[cmd[i]]
		if !ok {
			b.WriteByte(cmd[i])
			continue
		}
		if strings.IndexByte(string(seen), cmd[i]) < 0 {
			seen = append(seen, cmd[i])
		}
		var v string
		switch r.t {
		case 'c':
			v = e.name
		case 'h':
			v, _ = e.get("host")
		case 'r':
			v, _ = e.get("replstring")
		case 'b':
			return "", "", fmt.Errorf("execsubst puts the baud rate (b) into the command")
		default:
			return "", "", fmt.Errorf("execsubst puts a port number (%c) into the command, which this import does not compute", r.t)
		}
		if pad := r.width - len(v); pad > 0 {
			b.WriteString(strings.Repeat(" ", pad))
		}
		b.WriteString(v)
	}
	for i, c := range seen {
		if i > 0 {
			changed += ", "
		}
		changed += quote(string(c))
	}
	return b.String(), changed, nil
}

// optName shows an option letter in a message.
func optName(c byte) string {
	if c > ' ' && c < 0x7f {
		return "-" + string(c)
	}
	return fmt.Sprintf("-%q", c)
}

// longOpt is a long option: the short option it equals (0 for none) and
// whether it takes a value.
type longOpt struct {
	short byte
	arg   bool
}

// getopt walks options as getopt_long(3) and argp do: short ones in
// clusters (-vE) with a value attached (-Hhost) or in the next word, long
// ones as --name=value or --name value. withArg and flags are the short
// option letters, long the long options (nil: none). set is called for
// each option in order, with the long name or the letter, and may stop the
// walk with a reason. getopt returns the words after the options.
func getopt(args []string, withArg, flags string, long map[string]longOpt, set func(name, v string) string) ([]string, string) {
	i := 0
	for ; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			i++
			break
		}
		if len(a) < 2 || a[0] != '-' {
			break
		}
		if a[1] == '-' {
			name, v, hasV := strings.Cut(a[2:], "=")
			o, ok := long[name]
			if !ok {
				return nil, "option --" + quoteOpt(name) + " is not one this import knows"
			}
			switch {
			case o.arg && !hasV:
				i++
				if i == len(args) {
					return nil, "--" + name + " without its value"
				}
				v = args[i]
			case !o.arg && hasV:
				return nil, "--" + name + " takes no value"
			}
			if o.short != 0 {
				name = string(o.short)
			}
			if why := set(name, v); why != "" {
				return nil, why
			}
			continue
		}
		for j := 1; j < len(a); j++ {
			o := a[j]
			switch {
			case strings.IndexByte(withArg, o) >= 0:
				v := a[j+1:]
				if v == "" {
					i++
					if i == len(args) {
						return nil, optName(o) + " without its value"
					}
					v = args[i]
				}
				if why := set(string(o), v); why != "" {
					return nil, why
				}
				j = len(a)
			case strings.IndexByte(flags, o) >= 0:
				if why := set(string(o), ""); why != "" {
					return nil, why
				}
			default:
				return nil, "option " + optName(o) + " is not one this import knows"
			}
		}
	}
	return args[i:], ""
}

// parseIpmitool reads ipmitool's options and its sol activate command.
func parseIpmitool(args []string) (*execIPMI, string) {
	x := &execIPMI{tool: "ipmitool"}
	var iface, port, authType, escape string
	var pwOpts, kgOpts []string
	var kgEnv, pwEnv, timing bool
	rest, why := getopt(args, "IHpUPfCLkyeNRA", "vEKaY", nil, func(name, v string) string {
		switch o := name[0]; o {
		case 'I':
			iface = v
		case 'H':
			x.host = v
		case 'p':
			port = v
		case 'U':
			x.user = v
		case 'P':
			pwOpts = append(pwOpts, "-P")
			if len(v) > 20 {
				return "-P gives a password longer than 20 bytes, the IPMI limit"
			}
			x.password = v
		case 'f':
			pwOpts = append(pwOpts, "-f")
			x.pwFile = v
		case 'E':
			pwOpts = append(pwOpts, "-E")
			pwEnv = true
		case 'a':
			return "-a: ipmitool prompts for the password"
		case 'C':
			x.cipher = v
		case 'L':
			switch strings.ToUpper(v) {
			case "USER":
				x.privilege = "user"
			case "OPERATOR":
				x.privilege = "operator"
			case "ADMINISTRATOR":
				x.privilege = "admin"
			default:
				return fmt.Sprintf("-L %s: solgate's privilege is user, operator or admin (ipmitool's USER, OPERATOR, ADMINISTRATOR)", quote(v))
			}
		case 'k':
			kgOpts = append(kgOpts, "-k")
			if len(v) > 20 {
				return "-k gives a K_g longer than 20 bytes"
			}
			x.kg = v
		case 'y':
			kgOpts = append(kgOpts, "-y")
			d, err := hex.DecodeString(v)
			if err != nil || len(d) > 20 {
				return "-y is not a K_g of at most 20 bytes in hex"
			}
			x.kg = string(d)
		case 'K':
			kgOpts = append(kgOpts, "-K")
			kgEnv = true
		case 'Y':
			return "-Y: ipmitool prompts for the K_g"
		case 'e':
			escape = v
		case 'N', 'R':
			timing = true
		case 'A':
			authType = v
		case 'v': // verbose output
		}
		return ""
	})
	if why != "" {
		return nil, why
	}
	switch iface {
	case "lanplus":
	case "lan":
		x.lan = true
	case "":
		return nil, "no -I: ipmitool's default interface depends on its version"
	default:
		return nil, fmt.Sprintf("-I %s is not an IPMI-over-LAN interface (lanplus or lan)", quote(iface))
	}
	if x.host == "" {
		return nil, "no -H"
	}
	if len(pwOpts) > 1 {
		return nil, "more than one of -P, -f and -E (" + strings.Join(pwOpts, ", ") + ")"
	}
	if len(kgOpts) > 1 {
		return nil, "more than one of -k, -y and -K (" + strings.Join(kgOpts, ", ") + ")"
	}
	if len(pwOpts) == 0 {
		return nil, "no -P, -f or -E: ipmitool prompts for the password"
	}
	if x.pwFile != "" {
		if !strings.HasPrefix(x.pwFile, "/") {
			return nil, "-f names a relative path, relative to conserver's working directory"
		}
		if !utf8.ValidString(x.pwFile) {
			return nil, "-f names a path that is not UTF-8"
		}
	}
	if authType != "" && !strings.EqualFold(authType, "MD5") {
		return nil, fmt.Sprintf("-A %s: solgate authenticates IPMI 1.5 sessions with MD5 (auth_type none and password need insecure_ settings)", quote(authType))
	}
	if port != "" {
		n, err := strconv.Atoi(port)
		if err != nil || n < 1 || n > 65535 || port[0] == '+' {
			return nil, fmt.Sprintf("-p %s is not a port number", quote(port))
		}
		if n != 623 {
			h := x.host
			if strings.Contains(h, ":") {
				h = "[" + h + "]"
			}
			x.host = h + ":" + strconv.Itoa(n)
		}
	}
	// The subcommand: sol activate [usesolkeepalive|nokeepalive] [instance=N].
	if len(rest) < 2 || rest[0] != "sol" || rest[1] != "activate" {
		if len(rest) == 0 {
			return nil, "no ipmitool command (want sol activate)"
		}
		cmd := rest[0]
		if len(rest) > 1 && rest[0] == "sol" {
			cmd += " " + rest[1]
		}
		return nil, fmt.Sprintf("ipmitool command %s is not sol activate", quote(cmd))
	}
	for _, a := range rest[2:] {
		switch {
		case a == "usesolkeepalive" || a == "nokeepalive":
			x.notes = append(x.notes, "ipmitool sol activate "+a+": solgate keeps the SOL session up itself")
		case strings.HasPrefix(a, "instance="):
			if why := solInstance("sol activate instance=", a[len("instance="):]); why != "" {
				return nil, why
			}
		case strings.HasPrefix(a, "-"):
			return nil, "an option after sol activate"
		default:
			return nil, fmt.Sprintf("sol activate %s is not an argument this import knows", quote(a))
		}
	}
	x.notes = append([]string{"conserver ran ipmitool (type exec); solgate speaks IPMI itself"}, x.notes...)
	if x.lan {
		if authType == "" {
			x.notes = append(x.notes, "ipmitool -I lan (IPMI 1.5) chose the best authentication type the BMC offered, MD5 first; solgate uses MD5 (auth_type)")
		}
		if len(x.password) > 16 {
			return nil, "-I lan (IPMI 1.5) with a password longer than 16 bytes"
		}
		var ignored []string
		if x.cipher != "" {
			ignored = append(ignored, "-C")
			x.cipher = ""
		}
		if len(kgOpts) > 0 {
			ignored = append(ignored, kgOpts[0])
			x.kg, kgEnv = "", false
		}
		if len(ignored) > 0 {
			x.notes = append(x.notes, strings.Join(ignored, " and ")+" left out: ipmitool uses them with -I lanplus only")
		}
	}
	switch {
	case pwEnv:
		x.notes = append(x.notes, "ipmitool -E read the password from IPMI_PASSWORD (or IPMITOOL_PASSWORD) in conserver's environment: put it in a password_file and set password_file here")
	case x.pwFile != "":
		x.notes = append(x.notes, "password_file is ipmitool's -f file: solgate reads all of it less one final newline, where ipmitool read its first line up to a tab, at most 20 bytes; keep the password alone on one line, readable by the user solgate runs as")
	}
	if kgEnv {
		x.notes = append(x.notes, "ipmitool -K read the K_g from IPMI_KGKEY in conserver's environment: put it in a kg_file and set kg_file here")
	}
	if escape != "" {
		x.notes = append(x.notes, "ipmitool -e "+quote(escape)+": ipmitool's SOL escape character; solgate's escape is its own (escape)")
	}
	if timing {
		x.notes = append(x.notes, "ipmitool -N/-R (retransmission interval, retries): solgate retransmits and reconnects by itself")
	}
	return x, ""
}

// solInstance accepts SOL payload instance 1 only: solgate's configuration
// has no setting for another.
func solInstance(what, v string) string {
	if v == "1" {
		return ""
	}
	if n, err := strconv.Atoi(v); err != nil || n < 1 || n > 15 {
		return fmt.Sprintf("%s%s is not a SOL payload instance (1-15)", what, quote(v))
	}
	return fmt.Sprintf("%s%s: solgate always uses SOL payload instance 1 (its configuration has no setting for another)", what, v)
}

// ipmiconsoleLong are ipmiconsole's long options (ipmiconsole(8)), each
// with the short option it equals ("" for none) and whether it takes a
// value.
var ipmiconsoleLong = map[string]longOpt{
	"hostname": {'h', true}, "username": {'u', true}, "password": {'p', true},
	"password-prompt": {'P', false}, "k-g": {'k', true}, "k-g-prompt": {'K', false},
	"cipher-suite-id": {'I', true}, "privilege-level": {'l', true},
	"workaround-flags": {'W', true}, "escape-char": {'e', true},
	"help": {'?', false}, "version": {'V', false},
	"session-timeout": {0, true}, "retransmission-timeout": {0, true},
	"config-file": {0, true}, "debug": {0, false}, "usage": {0, false},
	"dont-steal": {0, false}, "deactivate": {0, false},
	"serial-keepalive": {0, false}, "serial-keepalive-empty": {0, false},
	"sol-payload-instance": {0, true}, "deactivate-all-instances": {0, false},
	"lock-memory": {0, false}, "debugfile": {0, false},
}

// parseIpmiconsole reads FreeIPMI ipmiconsole's options.
func parseIpmiconsole(args []string) (*execIPMI, string) {
	x := &execIPMI{tool: "ipmiconsole"}
	var escape string
	var keepalive, timeout, steal, debug bool
	set := func(name string, v string) string {
		switch name {
		case "h":
			x.host = v
		case "u":
			x.user = v
		case "p":
			if len(v) > 20 {
				return "-p gives a password longer than 20 bytes, the IPMI limit"
			}
			x.password = v
		case "P":
			return "-P: ipmiconsole prompts for the password"
		case "k":
			kg, err := parseKey(v)
			if err != nil {
				return "-k is not a K_g of at most 20 bytes (as text, or 0x and hex)"
			}
			x.kg = kg
		case "K":
			return "-K: ipmiconsole prompts for the K_g"
		case "I":
			x.cipher = v
		case "l":
			switch p := strings.ToLower(v); p {
			case "user", "operator", "admin":
				x.privilege = p
			default:
				return fmt.Sprintf("-l %s is not user, operator or admin", quote(v))
			}
		case "W":
			x.quirks = nil
			for _, w := range strings.Split(v, ",") {
				if strings.EqualFold(w, "none") {
					x.quirks = nil
					continue
				}
				name, _, ok := cmWorkaround(w)
				if !ok {
					return fmt.Sprintf("-W %s is not a workaround this import knows", quote(w))
				}
				if !contains(x.quirks, name) {
					x.quirks = append(x.quirks, name)
				}
			}
		case "e":
			escape = v
		case "?", "V", "usage":
			return "the help or version options do not open a console"
		case "deactivate", "deactivate-all-instances":
			return "--" + name + " does not open a console"
		case "config-file":
			return "--config-file: the settings in that file are not read by this import"
		case "sol-payload-instance":
			return solInstance("--sol-payload-instance=", v)
		case "session-timeout", "retransmission-timeout":
			timeout = true
		case "serial-keepalive", "serial-keepalive-empty":
			keepalive = true
		case "dont-steal":
			steal = true
		case "debug", "debugfile", "lock-memory":
			debug = true
		}
		return ""
	}
	rest, why := getopt(args, "hupkIlWe", "PK?V", ipmiconsoleLong, set)
	if why != "" {
		return nil, why
	}
	if len(rest) > 0 {
		return nil, "an argument ipmiconsole does not take"
	}
	if x.host == "" {
		return nil, "no -h"
	}
	x.notes = append(x.notes, "conserver ran ipmiconsole (type exec); solgate speaks IPMI itself",
		"ipmiconsole also read /etc/freeipmi/freeipmi.conf: a setting there that the command did not give (a password, say) is not carried over")
	if escape != "" {
		x.notes = append(x.notes, "ipmiconsole -e "+quote(escape)+": ipmiconsole's escape character; solgate's escape is its own (escape)")
	}
	if keepalive {
		x.notes = append(x.notes, "ipmiconsole --serial-keepalive: solgate keeps the SOL session up itself")
	}
	if timeout {
		x.notes = append(x.notes, "ipmiconsole's session and retransmission timeouts: solgate has its own")
	}
	if steal {
		x.notes = append(x.notes, "ipmiconsole --dont-steal: see solgate's steal setting (when-idle unless set)")
	}
	if debug {
		x.notes = append(x.notes, "ipmiconsole's debugging and memory options are left out")
	}
	return x, ""
}

// quoteOpt shows an option name from the input: as is when it is plain,
// else quoted.
func quoteOpt(name string) string {
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(isAlnum(c) || c == '-' || c == '_') {
			return quote(name)
		}
	}
	return name
}
