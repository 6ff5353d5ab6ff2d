package migrate

import (
	"fmt"
	"path"
	"strconv"
	"strings"
)

// The conman.conf tokenizer, after conman.conf(5) and ConMan's lexer:
// directives end at a newline unless a backslash escapes it; '#' comments
// to the end of the line; strings are single- or double-quoted and may not
// hold a newline; a bare word of letters, digits and '_' (not starting with
// a digit) is a keyword when it is one (case-insensitively) and otherwise a
// string; [-+]digits is an integer; anything else is a one-character token
// such as '='.

type cmKind int

const (
	cmEOF cmKind = iota
	cmEOL
	cmStr   // quoted string or a bare word that is no keyword
	cmInt   // [-+]?[0-9]+
	cmKey   // a keyword; text is upper case
	cmChar  // one character, e.g. '='
	cmError // unterminated quote
)

type cmTok struct {
	kind   cmKind
	text   string
	quoted bool
	line   int
}

func (t cmTok) String() string {
	switch t.kind {
	case cmEOF:
		return "end of file"
	case cmEOL:
		return "end of line"
	case cmStr:
		return "string " + quote(t.text)
	case cmInt:
		return "integer " + t.text
	case cmKey:
		return "keyword " + t.text
	case cmChar:
		return quote(t.text)
	}
	return "unterminated quote"
}

var cmKeywords = map[string]bool{
	"CONSOLE": true, "COREDUMP": true, "COREDUMPDIR": true, "DEV": true, "EXECPATH": true,
	"GLOBAL": true, "IPMIOPTS": true, "KEEPALIVE": true, "LOG": true, "LOGDIR": true,
	"LOGFILE": true, "LOGOPTS": true, "LOOPBACK": true, "NAME": true, "NOFILE": true,
	"OFF": true, "ON": true, "PIDFILE": true, "PORT": true, "RESETCMD": true, "SEROPTS": true,
	"SERVER": true, "SYSLOG": true, "TCPWRAPPERS": true, "TESTOPTS": true, "TIMESTAMP": true,
}

type cmLexer struct {
	data []byte
	pos  int
	line int
}

func (l *cmLexer) next() cmTok {
	for l.pos < len(l.data) {
		c := l.data[l.pos]
		switch {
		case c == ' ' || c == '\t' || c == '\v' || c == '\f':
			l.pos++
		case c == '#':
			for l.pos < len(l.data) && l.data[l.pos] != '\n' && l.data[l.pos] != '\r' {
				l.pos++
			}
		case c == '\r' || c == '\n':
			t := cmTok{kind: cmEOL, line: l.line}
			l.pos++
			if c == '\r' && l.pos < len(l.data) && l.data[l.pos] == '\n' {
				l.pos++
			}
			l.line++
			return t
		case c == '"' || c == '\'':
			end := l.pos + 1
			for end < len(l.data) && l.data[end] != c && l.data[end] != '\n' && l.data[end] != '\r' {
				end++
			}
			if end == len(l.data) || l.data[end] != c {
				l.pos = end
				return cmTok{kind: cmError, line: l.line}
			}
			t := cmTok{kind: cmStr, text: string(l.data[l.pos+1 : end]), quoted: true, line: l.line}
			l.pos = end + 1
			return t
		case c == '\\' && l.pos+1 < len(l.data) && l.data[l.pos+1] == '\n':
			l.pos += 2
			l.line++
		case c == '\\' && l.pos+2 < len(l.data) && l.data[l.pos+1] == '\r' && l.data[l.pos+2] == '\n':
			l.pos += 3
			l.line++
		case isLetter(c) || c == '_':
			end := l.pos + 1
			for end < len(l.data) && (isLetter(l.data[end]) || isDigit(l.data[end]) || l.data[end] == '_') {
				end++
			}
			w := string(l.data[l.pos:end])
			l.pos = end
			if u := strings.ToUpper(w); cmKeywords[u] {
				return cmTok{kind: cmKey, text: u, line: l.line}
			}
			return cmTok{kind: cmStr, text: w, line: l.line}
		case isDigit(c) || (c == '-' || c == '+') && l.pos+1 < len(l.data) && isDigit(l.data[l.pos+1]):
			end := l.pos + 1
			for end < len(l.data) && isDigit(l.data[end]) {
				end++
			}
			t := cmTok{kind: cmInt, text: string(l.data[l.pos:end]), line: l.line}
			l.pos = end
			return t
		default:
			l.pos++
			return cmTok{kind: cmChar, text: string(c), line: l.line}
		}
	}
	return cmTok{kind: cmEOF, line: l.line}
}

func isLetter(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }
func isDigit(c byte) bool  { return c >= '0' && c <= '9' }

// cmIPMI is a set of ConMan ipmiopts.
type cmIPMI struct {
	user, password, kg string
	userSet            bool
	pwLine, kgLine     int    // where password and K_g were set
	priv               string // "" is the default (admin)
	cipher             int    // -1 is the default
	workarounds        uint32 // wDefault is libipmiconsole's default set
}

const wDefault = 0xFFFFFFFF

// cmWorkarounds are libipmiconsole's workaround flags, by ConMan's (and
// solgate's) names.
var cmWorkarounds = []struct {
	name string
	bit  uint32
}{
	{"authcap", 0x00000001}, {"intel20", 0x00000002}, {"supermicro20", 0x00000004},
	{"sun20", 0x00000008}, {"opensesspriv", 0x00000010}, {"integritycheckvalue", 0x00000020},
	{"nochecksumcheck", 0x00000040}, {"serialalertsdeferred", 0x00000080},
	{"solpacketseq", 0x00000100}, {"solpayloadsize", 0x01000000}, {"solport", 0x02000000},
	{"solstatus", 0x04000000}, {"solchannelsupport", 0x08000000},
}

// cmWorkaround looks a libipmiconsole workaround name up, in any case.
func cmWorkaround(name string) (string, uint32, bool) {
	for _, w := range cmWorkarounds {
		if strings.EqualFold(name, w.name) {
			return w.name, w.bit, true
		}
	}
	return "", 0, false
}

// cmParser evaluates conman.conf directive by directive, as conmand does:
// SERVER logdir and the GLOBAL settings apply to the consoles after them.
type cmParser struct {
	b         *builder
	file      string
	lx        *cmLexer
	logDir    string
	globalLog string
	logOpts   string // accumulated GLOBAL logopts
	ipmi      cmIPMI
	names     map[string]int // console name -> line
}

// ConMan imports a conman.conf. name is used in messages.
func ConMan(name string, data []byte, opts Options) (*Result, error) {
	if len(data) > maxInput {
		return nil, &Error{File: name, Line: 1, Msg: fmt.Sprintf("larger than %d MiB", maxInput>>20)}
	}
	p := &cmParser{
		b:     newBuilder("conman", name, opts),
		file:  name,
		lx:    &cmLexer{data: data, line: 1},
		ipmi:  cmIPMI{cipher: -1, workarounds: wDefault},
		names: map[string]int{},
	}
	p.b.r.EscapeNote = `ConMan's escape is "&" ("&." closes); solgate's is Ctrl-E c: ^Ec. detaches, ^Ec? lists the keys`
	for {
		t := p.lx.next()
		switch {
		case t.kind == cmEOF:
			return p.b.finish(), nil
		case t.kind == cmEOL:
		case t.kind == cmError:
			return nil, p.errf(t, "unterminated quote (strings end on the same line)")
		case t.kind == cmKey && t.text == "SERVER":
			if err := p.directive(t, p.server); err != nil {
				return nil, err
			}
		case t.kind == cmKey && t.text == "GLOBAL":
			if err := p.directive(t, p.global); err != nil {
				return nil, err
			}
		case t.kind == cmKey && t.text == "CONSOLE":
			con := map[string]cmTok{}
			if err := p.directive(t, func(k string, v cmTok, kt cmTok) error {
				switch k {
				case "NAME", "DEV", "LOG", "LOGOPTS", "SEROPTS", "IPMIOPTS", "TESTOPTS":
				default:
					return p.errf(kt, "%s is not a CONSOLE keyword (name, dev, log, logopts, seropts, ipmiopts)", strings.ToLower(k))
				}
				if v.kind != cmStr {
					return p.errf(v, "%s wants a string, not %s", strings.ToLower(k), v)
				}
				if v.text == "" && (k == "NAME" || k == "DEV") {
					return p.errf(v, "%s is empty", strings.ToLower(k))
				}
				con[k] = v
				return nil
			}); err != nil {
				return nil, err
			}
			if con["NAME"].kind != cmStr || con["DEV"].kind != cmStr {
				return nil, p.errf(t, "incomplete CONSOLE directive: it needs name= and dev=")
			}
			p.console(t, con)
		default:
			return nil, p.errf(t, "unexpected %s: a directive starts with SERVER, GLOBAL or CONSOLE", t)
		}
	}
}

func (p *cmParser) errf(t cmTok, format string, args ...any) error {
	return &Error{File: p.file, Line: t.line, Msg: fmt.Sprintf(format, args...)}
}

// directive reads KEY=VALUE pairs to the end of the line and hands each to
// f. A TIMESTAMP value may be followed by its unit (m, h, d).
func (p *cmParser) directive(d cmTok, f func(key string, v, kt cmTok) error) error {
	for {
		kt := p.lx.next()
		switch kt.kind {
		case cmEOL, cmEOF:
			return nil
		case cmError:
			return p.errf(kt, "unterminated quote (strings end on the same line)")
		case cmKey:
		default:
			return p.errf(kt, "unexpected %s in %s directive", kt, d.text)
		}
		if eq := p.lx.next(); eq.kind != cmChar || eq.text != "=" {
			return p.errf(eq, "want '=' after %s, not %s", strings.ToLower(kt.text), eq)
		}
		v := p.lx.next()
		if v.kind == cmError {
			return p.errf(v, "unterminated quote (strings end on the same line)")
		}
		if kt.text == "TIMESTAMP" && v.kind == cmInt {
			save := *p.lx
			if u := p.lx.next(); u.kind == cmStr && !u.quoted && len(u.text) == 1 && strings.ContainsAny(u.text, "mhdMHD") {
				v.text += strings.ToLower(u.text)
			} else {
				*p.lx = save
			}
		}
		if err := f(kt.text, v, kt); err != nil {
			return err
		}
	}
}

func (p *cmParser) server(k string, v, kt cmTok) error {
	want := func(kind cmKind, what string) error {
		if v.kind != kind {
			return p.errf(v, "server %s wants %s, not %s", strings.ToLower(k), what, v)
		}
		return nil
	}
	onOff := func() error {
		if v.kind != cmKey || v.text != "ON" && v.text != "OFF" {
			return p.errf(v, "server %s wants on or off, not %s", strings.ToLower(k), v)
		}
		return nil
	}
	switch k {
	case "LOGDIR":
		if err := want(cmStr, "a string"); err != nil {
			return err
		}
		p.logDir = strings.TrimRight(v.text, "/")
		if v.text != "" && p.logDir == "" {
			p.logDir = "/"
		}
	case "PORT":
		if err := want(cmInt, "an integer"); err != nil {
			return err
		}
		p.b.notef(p.file, v.line, "server port=%s: ConMan's client port; solgate's users come in over SSH, [server] listen (default :2222)", v.text)
	case "LOOPBACK":
		if err := onOff(); err != nil {
			return err
		}
		if v.text == "ON" {
			p.b.r.Listen = "127.0.0.1:2222"
			p.b.r.ListenNote = "ConMan had loopback=on: clients on this host only"
		} else {
			p.b.r.Listen, p.b.r.ListenNote = "", ""
		}
	case "RESETCMD":
		if err := want(cmStr, "a string"); err != nil {
			return err
		}
		p.b.notef(p.file, v.line, "server resetcmd=%s: ConMan ran it on &R; solgate resets a node over IPMI itself (^Ec!r, solgate power NODE reset)", quote(v.text))
	case "TIMESTAMP":
		if err := want(cmInt, "an integer with m, h or d"); err != nil {
			return err
		}
		p.b.notef(p.file, v.line, "server timestamp=%s: solgate stamps every log line with the time", v.text)
	case "LOGFILE", "SYSLOG":
		if err := want(cmStr, "a string"); err != nil {
			return err
		}
		p.b.notef(p.file, v.line, "server %s=%s: ConMan's own log; solgate logs to stderr (the journal, under systemd), at [server] log_level", strings.ToLower(k), quote(v.text))
	case "KEEPALIVE", "TCPWRAPPERS", "COREDUMP":
		if err := onOff(); err != nil {
			return err
		}
		p.b.notef(p.file, v.line, "server %s=%s: no solgate equivalent", strings.ToLower(k), strings.ToLower(v.text))
	case "COREDUMPDIR", "EXECPATH", "PIDFILE":
		if err := want(cmStr, "a string"); err != nil {
			return err
		}
		p.b.notef(p.file, v.line, "server %s=%s: no solgate equivalent", strings.ToLower(k), quote(v.text))
	case "NOFILE":
		if err := want(cmInt, "an integer"); err != nil {
			return err
		}
		p.b.notef(p.file, v.line, "server nofile=%s: the systemd unit sets solgate's LimitNOFILE", v.text)
	default:
		return p.errf(kt, "%s is not a SERVER keyword", strings.ToLower(k))
	}
	return nil
}

func (p *cmParser) global(k string, v, kt cmTok) error {
	switch k {
	case "LOG", "LOGOPTS", "SEROPTS", "IPMIOPTS", "TESTOPTS":
	default:
		return p.errf(kt, "%s is not a GLOBAL keyword (log, logopts, seropts, ipmiopts)", strings.ToLower(k))
	}
	if v.kind != cmStr {
		return p.errf(v, "global %s wants a string, not %s", strings.ToLower(k), v)
	}
	switch k {
	case "LOG":
		switch {
		case v.text == "":
			p.globalLog = ""
		case !strings.Contains(v.text, "%N") && !strings.Contains(v.text, "%D"):
			p.b.warnf(p.file, v.line, "global log=%s has neither %%N nor %%D; ConMan ignores it", quote(v.text))
		default:
			p.globalLog = v.text
		}
	case "LOGOPTS":
		if v.text == "" {
			p.b.warnf(p.file, v.line, "global logopts is empty; ConMan ignores it")
			return nil
		}
		if err := checkLogOpts(v.text); err != nil {
			p.b.warnf(p.file, v.line, "global logopts: %v; ConMan ignores it", err)
			return nil
		}
		p.logOpts += "," + v.text
	case "IPMIOPTS":
		if v.text == "" {
			p.b.warnf(p.file, v.line, "global ipmiopts is empty; ConMan ignores it")
			return nil
		}
		o, err := parseIPMIOpts(p.ipmi, v.text, v.line)
		if err != nil {
			p.b.warnf(p.file, v.line, "global ipmiopts: %v; ConMan ignores it", err)
			return nil
		}
		p.ipmi = o
	}
	return nil
}

func checkLogOpts(s string) error {
	for _, o := range strings.Split(s, ",") {
		switch strings.ToLower(strings.TrimSpace(o)) {
		case "lock", "nolock", "sanitize", "nosanitize", "timestamp", "notimestamp":
		default:
			return fmt.Errorf("unknown option %s", quote(o))
		}
	}
	return nil
}

// logOptOn reports whether the last mention of opt in the list turns it on.
func logOptOn(list, opt string) bool {
	on := false
	for _, o := range strings.Split(list, ",") {
		switch strings.ToLower(strings.TrimSpace(o)) {
		case opt:
			on = true
		case "no" + opt:
			on = false
		}
	}
	return on
}

func (p *cmParser) console(t cmTok, con map[string]cmTok) {
	name := con["NAME"].text
	at := con["NAME"].line
	if prev, dup := p.names[name]; dup {
		p.b.warnf(p.file, at, "console %s is defined again (first at line %d); ConMan keeps the first", quote(name), prev)
		return
	}
	p.names[name] = at
	args, err := splitDev(con["DEV"].text, name)
	if err != nil || len(args) == 0 {
		p.b.warnf(p.file, at, "console %s: dev %s does not parse; ConMan ignores it", quote(name), quote(con["DEV"].text))
		p.b.skip(name, "dev "+quote(con["DEV"].text)+" does not parse", p.file, at)
		return
	}
	dev := args[0]
	kind := devKind(dev)
	o := p.ipmi
	var host, via string
	switch prog := path.Base(dev); {
	case kind == "ipmi":
		if len(args) != 1 {
			p.b.warnf(p.file, at, "console %s: an ipmi: dev takes no arguments; ConMan ignores the console", quote(name))
			p.b.skip(name, "an ipmi: dev with arguments", p.file, at)
			return
		}
		host = dev[len("ipmi:"):]
		if io, ok := con["IPMIOPTS"]; ok && io.text != "" {
			o, err = parseIPMIOpts(o, io.text, io.line)
			if err != nil {
				p.b.warnf(p.file, io.line, "console %s: ipmiopts: %v; ConMan ignores the console", quote(name), err)
				p.b.skip(name, "ipmiopts do not parse", p.file, at)
				return
			}
		}
	case kind == "process" && (prog == "ipmitool.exp" || prog == "ipmiconsole.exp") && len(args) >= 3:
		// ConMan's own SOL scripts: HOST USER [PSWD [KEYG]].
		via = prog
		host = args[1]
		o = cmIPMI{user: args[2], userSet: true, cipher: -1, workarounds: wDefault}
		if len(args) > 3 {
			o.password, o.pwLine = args[3], con["DEV"].line
		}
		if len(args) > 4 {
			o.kg, o.kgLine = args[4], con["DEV"].line
		}
	default:
		what := map[string]string{
			"unix":    "a Unix socket",
			"telnet":  "a terminal server over telnet",
			"serial":  "a serial port",
			"process": "a program",
			"test":    "ConMan's test device",
		}[kind]
		shown := quote(dev)
		if len(args) > 1 {
			// Arguments are not shown: scripts take passwords there.
			shown += fmt.Sprintf(" with %d %s (not shown)", len(args)-1, plural(len(args)-1, "argument", "arguments"))
		}
		p.b.skip(name, "dev "+shown+" is "+what, p.file, at)
		return
	}
	if err := checkName(name); err != nil {
		p.b.warnf(p.file, at, "console %s: %v", quote(name), err)
		p.b.skip(name, "not a solgate console name", p.file, at)
		return
	}
	if err := checkBMC(host); err != nil {
		p.b.warnf(p.file, at, "console %s: %v", name, err)
		p.b.skip(name, "BMC "+quote(host)+" is not an address solgate can use", p.file, at)
		return
	}
	pc := &pending{c: Console{Name: name, BMC: host, Privilege: "admin", File: p.file, Line: at}}
	c := &pc.c
	if o.userSet {
		if err := checkUser(o.user); err != nil {
			p.b.warnf(p.file, at, "console %s: %v", name, err)
			p.b.skip(name, "IPMI user solgate cannot use", p.file, at)
			return
		}
	}
	c.User, c.HasUser = o.user, true
	if via != "" {
		c.Notes = append(c.Notes, "ConMan ran ipmitool or ipmiconsole through its "+via+" script; solgate speaks IPMI itself")
		if o.password == "" {
			c.Notes = append(c.Notes, "the script read the password from ConMan's password file (/etc/conman.pswd); add password_file here")
		}
	}
	if o.password != "" {
		pc.password, pc.pwAt = o.password, Note{File: p.file, Line: o.pwLine}
	}
	if o.kg != "" {
		pc.kg, pc.kgAt = o.kg, Note{File: p.file, Line: o.kgLine}
	}
	if o.priv != "" {
		c.Privilege = o.priv
	}
	switch o.cipher {
	case -1:
	case 3, 8, 12, 17:
		c.CipherSuite = o.cipher
	case 0:
		c.Notes = append(c.Notes, "C:0 (cipher suite 0: no authentication, no encryption) left out: solgate tries 17, then 3; set cipher_suite = 0 with insecure_cipher_suite_zero = true to keep it")
	default:
		c.Notes = append(c.Notes, fmt.Sprintf("C:%d (a cipher suite without both integrity and encryption) left out: solgate tries 17, then 3; an explicit weak suite needs insecure_cipher_suite = true", o.cipher))
	}
	if o.workarounds != wDefault {
		for _, w := range cmWorkarounds {
			if o.workarounds&w.bit != 0 {
				c.Quirks = append(c.Quirks, w.name)
			}
		}
	}
	// The log: the console's own, else the global one; relative names are
	// under logdir.
	log, hasLog := con["LOG"]
	logName := p.globalLog
	if hasLog {
		logName = log.text
	}
	if logName != "" && !strings.HasPrefix(logName, "/") && p.logDir != "" {
		logName = path.Join(p.logDir, logName)
	}
	if logName == "" {
		c.Notes = append(c.Notes, "ConMan kept no log for this console; solgate logs every console")
	} else {
		c.Notes = append(c.Notes, fmt.Sprintf("ConMan logged to %s (%%N is the console name); solgate writes LOG_DIR/NAME/*.zst, see [server] log_dir; old logs stay where they are", quote(logName)))
	}
	lo := p.logOpts
	if v, ok := con["LOGOPTS"]; ok {
		if err := checkLogOpts(v.text); err != nil {
			p.b.warnf(p.file, v.line, "console %s: logopts: %v; ConMan ignores the console", name, err)
			p.b.skip(name, "logopts do not parse", p.file, at)
			return
		}
		lo += "," + v.text
	}
	if logName != "" && logOptOn(lo, "timestamp") {
		c.Notes = append(c.Notes, "logopts timestamp: solgate stamps every log line with the time")
	}
	if logName != "" && logOptOn(lo, "sanitize") {
		c.Notes = append(c.Notes, "logopts sanitize: solgate keeps the exact bytes; solgate log --plain strips escape sequences")
	}
	p.b.cons = append(p.b.cons, pc)
}

// splitDev splits a dev string into arguments as ConMan does: white space
// separates them, quotes group, and %N becomes the console name outside
// single quotes.
func splitDev(dev, name string) ([]string, error) {
	var args []string
	i := 0
	for {
		for i < len(dev) && (dev[i] == ' ' || dev[i] == '\t') {
			i++
		}
		if i == len(dev) {
			return args, nil
		}
		var arg string
		if q := dev[i]; q == '"' || q == '\'' {
			end := strings.IndexByte(dev[i+1:], q)
			if end < 0 {
				return nil, fmt.Errorf("unterminated quote")
			}
			arg = dev[i+1 : i+1+end]
			i += end + 2
			if q == '"' {
				arg = strings.ReplaceAll(arg, "%N", name)
			}
		} else {
			end := i
			for end < len(dev) && dev[end] != ' ' && dev[end] != '\t' {
				end++
			}
			arg = strings.ReplaceAll(dev[i:end], "%N", name)
			i = end
		}
		args = append(args, arg)
	}
}

// devKind classifies a dev in ConMan's order: Unix socket, telnet
// host:port, serial device, program, IPMI, test.
func devKind(dev string) string {
	switch {
	case strings.HasPrefix(dev, "unix:"):
		return "unix"
	case isTelnet(dev):
		return "telnet"
	case strings.HasPrefix(strings.ToLower(dev), "ipmi:") && len(dev) > len("ipmi:"):
		return "ipmi"
	case strings.HasPrefix(dev, "/dev/"):
		return "serial"
	case strings.HasPrefix(strings.ToLower(dev), "test:"):
		return "test"
	}
	return "process"
}

func isTelnet(dev string) bool {
	i := strings.IndexByte(dev, ':')
	if i < 0 || i == len(dev)-1 {
		return false
	}
	for _, c := range []byte(dev[i+1:]) {
		if !isDigit(c) {
			return false
		}
	}
	return true
}

// parseIPMIOpts applies an ipmiopts string to o, as ConMan does: comma-
// separated X:VALUE items (an empty VALUE restores the default), or the
// older positional form user,password,K_g,workaround... with "-" for a
// default.
func parseIPMIOpts(o cmIPMI, s string, line int) (cmIPMI, error) {
	if len(s) > 1 && s[1] != ':' {
		parts := strings.Split(s, ",")
		for i, v := range parts {
			if v == "-" {
				v = ""
			}
			var err error
			switch i {
			case 0:
				err = o.set('U', v, line)
			case 1:
				err = o.set('P', v, line)
			case 2:
				err = o.set('K', v, line)
			default:
				err = o.set('W', v, line)
			}
			if err != nil {
				return o, err
			}
		}
		return o, nil
	}
	for _, item := range strings.Split(s, ",") {
		if item == "" {
			continue
		}
		if len(item) < 2 || item[1] != ':' || !strings.ContainsRune("UPKLCWupklcw", rune(item[0])) {
			return o, fmt.Errorf("%s is not X:VALUE with X one of U, P, K, L, C, W", quote(item))
		}
		if err := o.set(item[0]&^0x20, item[2:], line); err != nil {
			return o, err
		}
	}
	return o, nil
}

func (o *cmIPMI) set(key byte, v string, line int) error {
	switch key {
	case 'U':
		if len(v) > 16 {
			return fmt.Errorf("IPMI user %s is longer than 16 bytes", quote(v))
		}
		o.user, o.userSet = v, true
	case 'P', 'K':
		k, err := parseKey(v)
		if err != nil {
			return err
		}
		if key == 'P' {
			if i := strings.IndexByte(k, 0); i >= 0 {
				k = k[:i] // ConMan ignores a password after its first NUL
			}
			o.password, o.pwLine = k, line
		} else {
			o.kg, o.kgLine = k, line
		}
	case 'L':
		switch strings.ToLower(v) {
		case "":
			o.priv = ""
		case "user", "0":
			o.priv = "user"
		case "op", "operator", "1":
			o.priv = "operator"
		case "admin", "administrator", "2":
			o.priv = "admin"
		default:
			return fmt.Errorf("L:%s is not user, op or admin", quote(v))
		}
	case 'C':
		if v == "" {
			o.cipher = -1
			return nil
		}
		n, err := strconv.ParseInt(v, 0, 32)
		if err != nil || !validSuite(int(n)) {
			return fmt.Errorf("C:%s is not a cipher suite ID (0-3, 6-8, 11, 12, 15-17)", quote(v))
		}
		o.cipher = int(n)
	case 'W':
		flag, err := workaroundFlag(v)
		if err != nil {
			return err
		}
		if flag == 0 || flag == wDefault || o.workarounds == wDefault {
			o.workarounds = flag
		} else {
			o.workarounds |= flag
		}
	}
	return nil
}

func validSuite(n int) bool {
	switch n {
	case -1, 0, 1, 2, 3, 6, 7, 8, 11, 12, 15, 16, 17:
		return true
	}
	return false
}

func workaroundFlag(v string) (uint32, error) {
	switch strings.ToLower(v) {
	case "", "default":
		return wDefault, nil
	case "none":
		return 0, nil
	}
	if _, bit, ok := cmWorkaround(v); ok {
		return bit, nil
	}
	n, err := strconv.ParseUint(v, 0, 32)
	if err != nil {
		return 0, fmt.Errorf("W:%s is not a workaround flag", quote(v))
	}
	var known uint32
	for _, w := range cmWorkarounds {
		known |= w.bit
	}
	if uint32(n) != wDefault && uint32(n)&^known != 0 {
		return 0, fmt.Errorf("W:%s has bits no workaround flag uses", quote(v))
	}
	return uint32(n), nil
}

// parseKey reads a password or K_g as ConMan does: text, or 0x followed by
// hex digits; at most 20 bytes either way.
func parseKey(v string) (string, error) {
	if len(v) > 2 && (v[:2] == "0x" || v[:2] == "0X") && isHex(v[2:]) {
		h := v[2:]
		if len(h) > 40 {
			return "", fmt.Errorf("a hex key has at most 40 digits")
		}
		out := make([]byte, 0, (len(h)+1)/2)
		for i := 0; i < len(h); i += 2 {
			hi := unhex(h[i])
			lo := byte(0)
			if i+1 < len(h) {
				lo = unhex(h[i+1])
			}
			out = append(out, hi<<4|lo)
		}
		return string(out), nil
	}
	if len(v) > 20 {
		return "", fmt.Errorf("a password or K_g is at most 20 bytes")
	}
	return v, nil
}

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if unhex(s[i]) == 0xff {
			return false
		}
	}
	return true
}

func unhex(c byte) byte {
	switch {
	case c >= '0' && c <= '9':
		return c - '0'
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10
	}
	return 0xff
}
