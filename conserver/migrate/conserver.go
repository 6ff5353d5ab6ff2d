package migrate

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// cfBlocks are conserver.cf's block types and the keywords each accepts
// (conserver 8.2).
var cfBlocks = map[string][]string{
	"access":  {"admin", "allowed", "include", "limited", "rejected", "trusted"},
	"break":   {"confirm", "delay", "string"},
	"config":  {"autocomplete", "daemonmode", "defaultaccess", "initdelay", "logfile", "loghostnames", "passwdfile", "primaryport", "redirect", "reinitcheck", "secondaryport", "setproctitle", "sslcacertificatefile", "sslcredentials", "sslreqclientcert", "sslrequired", "unifiedlog"},
	"console": append([]string{"aliases"}, cfConsoleKeys...),
	"default": cfConsoleKeys,
	"group":   {"users"},
	"task":    {"cmd", "confirm", "description", "runas", "subst"},
}

var cfConsoleKeys = []string{
	"baud", "break", "breaklist", "device", "devicesubst", "exec", "execrunas", "execsubst",
	"host", "idlestring", "idletimeout", "include", "initcmd", "initrunas", "initspinmax",
	"initspintimer", "initsubst", "ipmiciphersuite", "ipmikg", "ipmiprivlevel", "ipmiworkaround",
	"logfile", "logfilemax", "master", "motd", "options", "parity", "password", "port", "portbase",
	"portinc", "protocol", "replstring", "ro", "rw", "tasklist", "timestamp", "type", "uds",
	"udssubst", "username",
}

// cfWorkarounds maps conserver's ipmiworkaround names (conserver.cf(5),
// spelling included) to solgate's quirks, which are FreeIPMI's names.
var cfWorkarounds = map[string]string{
	"activation-status":   "solstatus",
	"auth-capabilites":    "authcap",
	"channel-payload":     "solchannelsupport",
	"checksum":            "nochecksumcheck",
	"ignore-payload-size": "solpayloadsize",
	"ignore-port":         "solport",
	"integrity":           "integritycheckvalue",
	"intel-session":       "intel20",
	"packet-sequence":     "solpacketseq",
	"privilege":           "opensesspriv",
	"serial-alerts":       "serialalertsdeferred",
	"sun-session":         "sun20",
	"supermicro-session":  "supermicro20",
}

// cfField is one setting of a default or console block.
type cfField struct {
	v    string
	file string
	line int
}

// cfEntity is a default or console block as evaluated so far: its fields,
// and the user lists, which accumulate rather than replace.
type cfEntity struct {
	name    string
	file    string
	line    int
	f       map[string]cfField
	rw, ro  []string // entries as written, "!user" for a denial
	aliases []string
}

func newEntity(name, file string, line int) *cfEntity {
	return &cfEntity{name: name, file: file, line: line, f: map[string]cfField{}}
}

// apply is conserver's include: every field the default sets replaces the
// console's, and its user lists are appended.
func (e *cfEntity) apply(d *cfEntity) {
	for k, v := range d.f {
		e.f[k] = v
	}
	e.rw = append(e.rw, d.rw...)
	e.ro = append(e.ro, d.ro...)
}

func (e *cfEntity) get(k string) (string, bool) {
	f, ok := e.f[k]
	return f.v, ok
}

type cfBreak struct {
	seq   string
	delay string
	file  string
	line  int
}

// cfParser reads conserver.cf and evaluates it block by block, as conserver
// does: a default must come before the blocks that include it, and a later
// definition of a default or console replaces the earlier one.
type cfParser struct {
	b        *builder
	opts     Options
	defaults map[string]*cfEntity // by lower-case name
	consoles []*cfEntity          // nil where a later definition replaced one
	byName   map[string]int       // lower-case name -> index in consoles
	breaks   map[string]*cfBreak
	groups   map[string]bool

	// block being read
	typ, name  string
	blockFile  string
	blockLine  int
	items      []cfItem
	masters    []string
	masterSeen map[string]bool
}

type cfItem struct {
	key, value string
	file       string
	line       int
}

// Conserver imports a conserver.cf. name is used in messages and to resolve
// relative #include files.
func Conserver(name string, data []byte, opts Options) (*Result, error) {
	p := &cfParser{
		b:          newBuilder("conserver", name, opts),
		opts:       opts,
		defaults:   map[string]*cfEntity{},
		byName:     map[string]int{},
		breaks:     map[string]*cfBreak{},
		groups:     map[string]bool{},
		masterSeen: map[string]bool{},
	}
	p.b.r.EscapeNote = "conserver's default escape, Ctrl-E c; solgate's keys after it are listed by ^Ec?"
	st := &cfState{}
	if err := p.parse(name, data, 0, st); err != nil {
		return nil, err
	}
	if st.s != cfStart {
		return nil, &Error{File: st.file, Line: st.line, Msg: fmt.Sprintf("end of file inside %s block %s (a '}' or ';' is missing)", p.typ, quote(p.name))}
	}
	p.finish()
	return p.b.finish(), nil
}

type cfStateKind int

const (
	cfStart cfStateKind = iota // before a block type
	cfName                     // before a block name
	cfLeft                     // before '{'
	cfKey                      // before a keyword or '}'
	cfValue                    // before a value
	cfSemiS                    // before ';'
)

// cfState is the parser state, which carries across #include files as it
// does in conserver.
type cfState struct {
	s    cfStateKind
	key  string
	file string
	line int
}

func (p *cfParser) parse(file string, data []byte, depth int, st *cfState) error {
	if len(data) > maxInput {
		return &Error{File: file, Line: 1, Msg: fmt.Sprintf("larger than %d MiB", maxInput>>20)}
	}
	lx := &cfLexer{data: data, line: 1}
	for {
		tok, word, line := lx.next(st.s == cfName || st.s == cfValue)
		st.file, st.line = file, line
		bad := func(format string, args ...any) error {
			return &Error{File: file, Line: line, Msg: fmt.Sprintf(format, args...)}
		}
		switch tok {
		case cfEOF:
			return nil
		case cfBadQuote:
			return bad("unterminated double quote")
		case cfInclude:
			if err := p.include(file, line, word, depth, st); err != nil {
				return err
			}
			continue
		}
		switch st.s {
		case cfStart:
			if tok != cfWord {
				return bad("unexpected %s where a block type (console, default, break, group, task, access, config) belongs", tok)
			}
			t := strings.ToLower(word)
			if _, ok := cfBlocks[t]; !ok {
				return bad("unknown block type %s (want console, default, break, group, task, access or config)", quote(word))
			}
			p.typ, st.s = t, cfName
		case cfName:
			if tok != cfWord {
				return bad("%s block without a name before %s", p.typ, tok)
			}
			p.name, p.blockFile, p.blockLine, p.items = word, file, line, nil
			st.s = cfLeft
		case cfLeft:
			if tok != cfLBrace {
				return bad("want '{' after %s %s, not %s", p.typ, quote(p.name), tok)
			}
			st.s = cfKey
		case cfKey:
			switch tok {
			case cfRBrace:
				p.endBlock()
				st.s = cfStart
			case cfSemi: // a stray ';' (conserver complains and goes on)
			case cfWord:
				k := strings.ToLower(word)
				if !slices.Contains(cfBlocks[p.typ], k) {
					return bad("unknown keyword %s in %s block %s", quote(word), p.typ, quote(p.name))
				}
				st.key, st.s = k, cfValue
			default:
				return bad("unexpected %s in %s block %s", tok, p.typ, quote(p.name))
			}
		case cfValue:
			if tok != cfWord {
				return bad("keyword %s has no value before %s (write \"\" for an empty one)", st.key, tok)
			}
			p.items = append(p.items, cfItem{key: st.key, value: word, file: file, line: line})
			st.s = cfSemiS
		case cfSemiS:
			if tok != cfSemi {
				return bad("want ';' after the value of %s, not %s", st.key, tok)
			}
			st.s = cfKey
		}
	}
}

func (p *cfParser) include(from string, line int, name string, depth int, st *cfState) error {
	if depth+1 >= maxIncludeDepth {
		return &Error{File: from, Line: line, Msg: fmt.Sprintf("#include %s: nested more than %d deep", quote(name), maxIncludeDepth)}
	}
	path := name
	if !filepath.IsAbs(path) {
		path = filepath.Join(filepath.Dir(from), path)
	}
	read := p.opts.ReadFile
	if read == nil {
		read = os.ReadFile
	}
	data, err := read(path)
	if err != nil {
		return &Error{File: from, Line: line, Msg: fmt.Sprintf("#include %s: %v", quote(name), err)}
	}
	return p.parse(path, data, depth+1, st)
}

// endBlock evaluates the block just read.
func (p *cfParser) endBlock() {
	switch p.typ {
	case "default", "console":
		e := newEntity(p.name, p.blockFile, p.blockLine)
		if p.typ == "console" {
			if d := p.defaults["*"]; d != nil {
				e.apply(d)
			}
		}
		for _, it := range p.items {
			p.set(e, it)
		}
		if p.typ == "default" {
			p.defaults[strings.ToLower(p.name)] = e
			return
		}
		key := strings.ToLower(e.name)
		if i, dup := p.byName[key]; dup {
			o := p.consoles[i]
			p.b.warnf(e.file, e.line, "console %s defined again (first at line %d); the later definition wins, as in conserver", quote(e.name), o.line)
			p.consoles[i] = nil
		}
		p.byName[key] = len(p.consoles)
		p.consoles = append(p.consoles, e)
	case "break":
		n := p.name
		if len(n) != 1 || !(n[0] >= '1' && n[0] <= '9' || n[0] >= 'a' && n[0] <= 'z') {
			p.b.warnf(p.blockFile, p.blockLine, "break %s: not a break number (1-9, a-z); ignored", quote(n))
			return
		}
		br := &cfBreak{file: p.blockFile, line: p.blockLine}
		for _, it := range p.items {
			switch it.key {
			case "string":
				br.seq = it.value
			case "delay":
				br.delay = it.value
			}
		}
		p.breaks[n] = br
		if br.seq == `\z` {
			return // a serial break, as solgate's ^Ecl0
		}
		p.b.notef(br.file, br.line, "break %s (%s): conserver's ^Ecl%s sent this sequence; solgate's ^Ecl0 sends a serial break, and there are no other break sequences", n, quote(br.seq), n)
	case "task":
		var cmd, descr string
		for _, it := range p.items {
			switch it.key {
			case "cmd":
				cmd = it.value
			case "description":
				descr = it.value
			}
		}
		what := command(cmd)
		if descr != "" {
			what = quote(descr) + ", " + what
		}
		p.b.notef(p.blockFile, p.blockLine, "task %s (%s): conserver ran it on ^Ec!%s; solgate runs no commands (its ^Ec! is the power menu)", quote(p.name), what, p.name)
	case "group":
		g := Group{Name: p.name, File: p.blockFile, Line: p.blockLine}
		for _, it := range p.items {
			if it.value == "" {
				g.Members = nil
				continue
			}
			g.Members = append(g.Members, splitList(it.value)...)
		}
		p.groups[p.name] = true
		p.b.r.Groups = slices.DeleteFunc(p.b.r.Groups, func(o Group) bool { return o.Name == g.Name })
		p.b.r.Groups = append(p.b.r.Groups, g)
	case "access":
		keys := itemKeys(p.items)
		if keys != "" {
			p.b.notef(p.blockFile, p.blockLine, "access %s (%s): conserver's client host rules; solgate admits SSH keys only, so limit client addresses with a firewall", quote(p.name), keys)
		}
	case "config":
		keys := itemKeys(p.items)
		if keys != "" {
			p.b.notef(p.blockFile, p.blockLine, "config %s (%s): conserver's daemon settings; solgate's are in [server]", quote(p.name), keys)
		}
	}
}

func itemKeys(items []cfItem) string {
	var keys []string
	for _, it := range items {
		if !slices.Contains(keys, it.key) {
			keys = append(keys, it.key)
		}
	}
	return strings.Join(keys, ", ")
}

// splitList splits a conserver list value at commas and white space.
func splitList(v string) []string {
	return strings.FieldsFunc(v, func(r rune) bool {
		return r == ',' || r < 0x80 && isSpace(byte(r))
	})
}

// set applies one keyword to a default or console, with conserver's rule
// that an empty value unsets (and so is not passed on by include).
func (p *cfParser) set(e *cfEntity, it cfItem) {
	switch it.key {
	case "include":
		if it.value == "" {
			return
		}
		d := p.defaults[strings.ToLower(it.value)]
		if d == nil {
			p.b.warnf(it.file, it.line, "include %s: no default of that name before this line; ignored, as conserver does", quote(it.value))
			return
		}
		e.apply(d)
	case "rw", "ro":
		list := &e.rw
		if it.key == "ro" {
			list = &e.ro
		}
		if it.value == "" {
			*list = nil
			return
		}
		*list = append(*list, splitList(it.value)...)
	case "aliases":
		if it.value == "" {
			e.aliases = nil
			return
		}
		e.aliases = append(e.aliases, splitList(it.value)...)
	case "ipmiworkaround", "timestamp":
		// "" is a value here: no workarounds, no timestamps.
		e.f[it.key] = cfField{it.value, it.file, it.line}
	default:
		if it.value == "" {
			delete(e.f, it.key)
			return
		}
		e.f[it.key] = cfField{it.value, it.file, it.line}
	}
}

// finish translates the consoles once the whole file is read.
func (p *cfParser) finish() {
	for _, e := range p.consoles {
		if e != nil {
			p.console(e)
		}
	}
	if len(p.masters) > 1 || len(p.masters) == 1 && !isLocal(p.masters[0]) {
		p.b.notef(p.b.r.Source, 0, "master %s: conserver divided the consoles between these hosts; this file puts all of them on one solgate (split it into conf.d files per host if you keep several)", strings.Join(p.masters, ", "))
	}
}

func isLocal(h string) bool {
	switch strings.ToLower(h) {
	case "localhost", "127.0.0.1", "::1":
		return true
	}
	return false
}

func (p *cfParser) console(e *cfEntity) {
	typ, _ := e.get("type")
	typ = strings.ToLower(typ)
	master, hasMaster := e.get("master")
	if !hasMaster {
		p.b.warnf(e.file, e.line, "console %s has no master; conserver ignores it", quote(e.name))
		p.b.skip(e.name, "no master: conserver does not serve it", e.file, e.line)
		return
	}
	if !p.masterSeen[master] {
		p.masterSeen[master] = true
		p.masters = append(p.masters, master)
	}
	switch typ {
	case "ipmi":
		p.ipmiConsole(e)
	case "exec":
		x, client, why := p.execConsole(e)
		if x == nil {
			p.b.skip(e.name, p.describeExec(e, client, why), e.file, e.line)
			return
		}
		p.execIPMIConsole(e, x)
	default:
		p.b.skip(e.name, p.describe(e, typ), e.file, e.line)
	}
}

// ipmiConsole imports a console of conserver's type ipmi.
func (p *cfParser) ipmiConsole(e *cfEntity) {
	host, _ := e.get("host")
	if host == "" {
		p.b.warnf(e.file, e.line, "console %s: type ipmi without a host; conserver ignores it", quote(e.name))
		p.b.skip(e.name, "type ipmi without a host", e.file, e.line)
		return
	}
	u, hasUser := e.f["username"]
	pc := p.newConsole(e, host, "host", u, hasUser)
	if pc == nil {
		return
	}
	c := &pc.c
	if pw, ok := e.f["password"]; ok {
		pc.password, pc.pwAt = pw.v, Note{File: pw.file, Line: pw.line}
	}
	if kg, ok := e.f["ipmikg"]; ok {
		v := decodeKG(kg.v)
		if len(v) > 20 {
			p.b.warnf(kg.file, kg.line, "console %s: ipmikg is longer than 20 bytes; conserver ignores it, so does this import", e.name)
		} else {
			pc.kg, pc.kgAt = v, Note{File: kg.file, Line: kg.line}
		}
	}
	if cs, ok := e.f["ipmiciphersuite"]; ok {
		c.CipherSuite = p.cipherSuite(c, "ipmiciphersuite", cs)
	}
	if pl, ok := e.f["ipmiprivlevel"]; ok {
		switch v := strings.ToLower(pl.v); v {
		case "user", "operator", "admin":
			c.Privilege = v
		default:
			p.b.warnf(pl.file, pl.line, "console %s: ipmiprivlevel %s is not user, operator or admin; admin is used", e.name, quote(pl.v))
		}
	}
	if w, ok := e.f["ipmiworkaround"]; ok {
		c.Quirks = p.workarounds(e.name, w)
	}
	p.addConsole(e, pc)
}

// execIPMIConsole imports a console of type exec whose command runs an
// IPMI SOL client, from what execConsole read of the command.
func (p *cfParser) execIPMIConsole(e *cfEntity, x *execIPMI) {
	ex := e.f["exec"] // where secrets and settings from the command are set
	at := Note{File: ex.file, Line: ex.line}
	pc := p.newConsole(e, x.host, x.tool+" "+map[string]string{"ipmitool": "-H", "ipmiconsole": "-h"}[x.tool],
		cfField{v: x.user, file: ex.file, line: ex.line}, true)
	if pc == nil {
		return
	}
	c := &pc.c
	c.Notes = append(c.Notes, x.notes...)
	if x.lan {
		c.Interface = "lan"
	}
	if x.password != "" {
		pc.password, pc.pwAt = x.password, at
	}
	c.Password = x.pwFile // ipmitool -f: the file itself, not a placeholder
	if x.kg != "" {
		pc.kg, pc.kgAt = x.kg, at
	}
	if x.cipher != "" {
		opt := map[string]string{"ipmitool": "ipmitool -C", "ipmiconsole": "ipmiconsole -I"}[x.tool]
		c.CipherSuite = p.cipherSuite(c, opt, cfField{v: x.cipher, file: ex.file, line: ex.line})
	}
	if x.privilege != "" {
		c.Privilege = x.privilege
	}
	c.Quirks = x.quirks
	p.addConsole(e, pc)
}

// newConsole checks a console's name, BMC address and IPMI user and starts
// its entry; it returns nil when the console is skipped. hostWhat names
// where the address came from; hasUser false is conserver's default, the
// null user.
func (p *cfParser) newConsole(e *cfEntity, host, hostWhat string, u cfField, hasUser bool) *pending {
	if err := checkName(e.name); err != nil {
		p.b.warnf(e.file, e.line, "console %s: %v", quote(e.name), err)
		p.b.skip(e.name, "not a solgate console name", e.file, e.line)
		return nil
	}
	if err := checkBMC(host); err != nil {
		p.b.warnf(e.file, e.line, "console %s: %v", e.name, err)
		p.b.skip(e.name, hostWhat+" "+quote(host)+" is not an address solgate can use", e.file, e.line)
		return nil
	}
	pc := &pending{c: Console{Name: e.name, BMC: host, Privilege: "admin", File: e.file, Line: e.line}}
	c := &pc.c
	if hasUser {
		if err := checkUser(u.v); err != nil {
			p.b.warnf(u.file, u.line, "console %s: %v", e.name, err)
			p.b.skip(e.name, "IPMI user solgate cannot use", e.file, e.line)
			return nil
		}
		c.User = u.v
	}
	c.HasUser = true
	return pc
}

// addConsole completes a console with what every type shares (log
// rotation, the settings solgate does without, the access lists) and adds
// it.
func (p *cfParser) addConsole(e *cfEntity, pc *pending) {
	c := &pc.c
	if m, ok := e.f["logfilemax"]; ok {
		if n, ok := parseLogfileMax(m.v); ok && n >= 4096 {
			c.RotateSize = n
		} else if ok && n > 0 {
			c.Notes = append(c.Notes, fmt.Sprintf("logfilemax %s: below solgate's smallest log_rotate_size, 4KiB", quote(m.v)))
		}
	}
	p.notes(e, c)
	c.Access = p.access(e)
	p.b.cons = append(p.b.cons, pc)
}

// cipherSuite reads a cipher suite that what (ipmiciphersuite, or a
// client's option) sets.
func (p *cfParser) cipherSuite(c *Console, what string, f cfField) int {
	v := f.v
	if v == "-1" {
		return 0
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 || v[0] == '+' {
		p.b.warnf(f.file, f.line, "console %s: %s %s is not a number; the automatic choice is used", c.Name, what, quote(v))
		return 0
	}
	switch n {
	case 3, 8, 12, 17:
		return n
	case 0:
		c.Notes = append(c.Notes, what+" 0 (no authentication, no encryption) left out: solgate tries 17, then 3; set cipher_suite = 0 with insecure_cipher_suite_zero = true to keep it")
	case 1, 2, 6, 7, 11, 15, 16:
		c.Notes = append(c.Notes, fmt.Sprintf("%s %d (without both integrity and encryption) left out: solgate tries 17, then 3; an explicit weak suite needs insecure_cipher_suite = true", what, n))
	default:
		p.b.warnf(f.file, f.line, "console %s: %s %d is not a suite solgate supports (1-3, 6-8, 11, 12, 15-17); the automatic choice is used", c.Name, what, n)
	}
	return 0
}

func (p *cfParser) workarounds(console string, f cfField) []string {
	var q []string
	for _, t := range splitList(f.v) {
		not := strings.HasPrefix(t, "!")
		t = strings.TrimPrefix(t, "!")
		if t == "default" {
			if not {
				q = nil
			}
			continue // libipmiconsole's defaults: solgate needs none
		}
		name, ok := cfWorkarounds[t]
		if !ok {
			p.b.warnf(f.file, f.line, "console %s: ipmiworkaround %s is not one conserver knows; ignored", console, quote(t))
			continue
		}
		if not {
			q = slices.DeleteFunc(q, func(s string) bool { return s == name })
		} else if !slices.Contains(q, name) {
			q = append(q, name)
		}
	}
	return q
}

// notes lists a console's settings that solgate does without.
func (p *cfParser) notes(e *cfEntity, c *Console) {
	add := func(format string, args ...any) { c.Notes = append(c.Notes, fmt.Sprintf(format, args...)) }
	if lf, ok := e.get("logfile"); ok {
		add("conserver logged to %s (& is the console name); solgate writes LOG_DIR/NAME/*.zst, see [server] log_dir; old logs stay where they are", quote(lf))
	} else {
		add("conserver kept no log file for this console; solgate logs every console")
	}
	if ts, ok := e.get("timestamp"); ok && ts != "" {
		add("timestamp %s: solgate stamps every log line with the time, and logs attach, detach, power and break events", quote(ts))
	}
	br, ok := e.get("break")
	if !ok {
		br = "1"
	}
	if seq := p.breakSeq(br); seq != `\z` {
		add("break %s (%s): conserver's ^Ecl0 sent this sequence; solgate's ^Ecl0 sends a serial break", br, quote(seq))
	}
	for _, k := range []struct{ key, why string }{
		{"motd", "solgate's banner shows the console's state, there is no per-console message"},
		{"idletimeout", "solgate sends nothing to idle consoles"},
		{"idlestring", "solgate sends nothing to idle consoles"},
		{"initcmd", "solgate runs no commands on a console"}, // shown without arguments
		{"options", "solgate keeps every console's SOL session up and reconnects by itself"},
		{"tasklist", "solgate has no tasks"},
		{"breaklist", "solgate has only the serial break (^Ecl0)"},
	} {
		v, ok := e.get(k.key)
		if !ok || k.key == "tasklist" && v == "*" || k.key == "breaklist" && v == "*" {
			continue
		}
		shown := quote(v)
		if k.key == "initcmd" {
			shown = command(v)
		}
		add("%s %s: %s", k.key, shown, k.why)
	}
	if len(e.aliases) > 0 {
		add("aliases %s: a solgate console has one name", quote(strings.Join(e.aliases, ",")))
	}
}

// command shows a command line without its arguments, which may hold a
// password (ipmitool -P ...), and without the value of a variable
// assignment in front (IPMI_PASSWORD=... ipmitool -E ...).
func command(cmd string) string {
	f := strings.Fields(cmd)
	if len(f) == 0 {
		return quote(cmd)
	}
	if i := strings.IndexByte(f[0], '='); i >= 0 {
		f[0] = f[0][:i+1] + "..."
	}
	if len(f) == 1 {
		return quote(f[0])
	}
	return fmt.Sprintf("%s with %d %s (not shown)", quote(f[0]), len(f)-1, plural(len(f)-1, "argument", "arguments"))
}

// breakSeq returns conserver's break sequence n, its built-in ones included.
func (p *cfParser) breakSeq(n string) string {
	if b := p.breaks[n]; b != nil {
		return b.seq
	}
	return map[string]string{"1": `\z`, "2": `\r~^b`, "3": `#.`, "4": `\r\d~\d^b`}[n]
}

// access turns conserver's rw and ro lists into solgate principals.
func (p *cfParser) access(e *cfEntity) Access {
	var a Access
	add := func(list *[]string, s string) {
		if !slices.Contains(*list, s) {
			*list = append(*list, s)
		}
	}
	principal := func(u string) string {
		switch {
		case u == "*":
			return "@all"
		case p.groups[u]:
			return "@" + u
		}
		return u // a user, or @unixgroup as written
	}
	for _, l := range []struct {
		list  []string
		write bool
	}{{e.rw, true}, {e.ro, false}} {
		for _, u := range l.list {
			if strings.HasPrefix(u, "!") {
				add(&a.Deny, principal(u[1:]))
				continue
			}
			add(&a.Read, principal(u))
			if l.write {
				add(&a.Write, principal(u))
			}
		}
	}
	return a
}

// describe says what a console that is not imported was.
func (p *cfParser) describe(e *cfEntity, typ string) string {
	get := func(k string) string { v, _ := e.get(k); return v }
	switch typ {
	case "exec":
		return p.describeExec(e, false, "")
	case "host":
		port := get("port")
		if n, err := strconv.Atoi(port); err == nil {
			base, inc := 0, 1
			if v, err := strconv.Atoi(get("portbase")); err == nil {
				base = v
			}
			if v, err := strconv.Atoi(get("portinc")); err == nil {
				inc = v
			}
			port = strconv.Itoa(base + inc*n)
		}
		return "type host (terminal server) " + quote(get("host")+":"+port)
	case "device":
		return "type device (serial port) " + quote(get("device"))
	case "uds":
		return "type uds (Unix socket) " + quote(get("uds"))
	case "noop":
		return "type noop (a placeholder)"
	case "":
		p.b.warnf(e.file, e.line, "console %s has no type; conserver ignores it", quote(e.name))
		return "no type"
	}
	p.b.warnf(e.file, e.line, "console %s: unknown type %s; conserver ignores it", quote(e.name), quote(typ))
	return "unknown type " + quote(typ)
}

// describeExec says what an exec console that is not imported ran: client
// says the command runs an IPMI SOL client, and why what was not
// translated.
func (p *cfParser) describeExec(e *cfEntity, client bool, why string) string {
	cmd, _ := e.get("exec")
	if cmd == "" {
		cmd = "/bin/sh -i"
	}
	if !client {
		return "type exec " + command(cmd) + ": solgate runs no commands"
	}
	return "type exec " + command(cmd) + ": an IPMI client, not translated: " + why + "; add the BMC as a [[console]] by hand"
}

// decodeKG applies conserver's ipmikg escapes: \ooo octal and \c literal.
func decodeKG(s string) string {
	var out []byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' {
			out = append(out, c)
			continue
		}
		if i+1 == len(s) {
			out = append(out, '\\')
			break
		}
		i++
		if s[i] >= '0' && s[i] <= '7' {
			v, n := 0, 0
			for n < 3 && i < len(s) && s[i] >= '0' && s[i] <= '7' {
				v = v*8 + int(s[i]-'0')
				i++
				n++
			}
			i--
			out = append(out, byte(v))
			continue
		}
		out = append(out, s[i])
	}
	return string(out)
}

// parseLogfileMax reads conserver's logfilemax: a number with an optional
// k or m.
func parseLogfileMax(s string) (int64, bool) {
	mult := int64(1)
	switch {
	case strings.HasSuffix(s, "k") || strings.HasSuffix(s, "K"):
		mult, s = 1<<10, s[:len(s)-1]
	case strings.HasSuffix(s, "m") || strings.HasSuffix(s, "M"):
		mult, s = 1<<20, s[:len(s)-1]
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 || s[0] == '+' || n > (1<<40)/mult {
		return 0, false
	}
	return n * mult, true
}
