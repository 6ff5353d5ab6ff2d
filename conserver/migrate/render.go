package migrate

import (
	"bytes"
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/solgate/solgate/conserver/hostlist"
)

// kv is one setting line: a key and its value written as TOML.
type kv struct{ k, v string }

// settings returns a console's settings in a fixed order; absent keys keep
// solgate's built-in defaults.
func settings(c *Console) []kv {
	var out []kv
	if c.HasUser {
		out = append(out, kv{"user", tomlString(c.User)})
	}
	if c.Password != "" {
		out = append(out, kv{"password_file", tomlString(c.Password)})
	}
	if c.KG != "" {
		out = append(out, kv{"kg_file", tomlString(c.KG)})
	}
	if c.Interface != "" {
		out = append(out, kv{"interface", tomlString(c.Interface)})
	}
	if c.CipherSuite != 0 {
		out = append(out, kv{"cipher_suite", strconv.Itoa(c.CipherSuite)})
	}
	if c.Privilege != "" && c.Privilege != "admin" {
		out = append(out, kv{"privilege", tomlString(c.Privilege)})
	}
	if len(c.Quirks) > 0 {
		q := make([]string, len(c.Quirks))
		for i, s := range c.Quirks {
			q[i] = tomlString(s)
		}
		out = append(out, kv{"quirks", "[" + strings.Join(q, ", ") + "]"})
	}
	if c.RotateSize != 0 {
		out = append(out, kv{"log_rotate_size", tomlString(formatSize(c.RotateSize))})
	}
	return out
}

// formatSize writes a byte count in the largest binary unit that divides it.
func formatSize(n int64) string {
	for _, u := range []struct {
		name string
		v    int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if n >= u.v && n%u.v == 0 {
			return strconv.FormatInt(n/u.v, 10) + u.name
		}
	}
	return strconv.FormatInt(n, 10)
}

// layout is the result arranged for printing: what goes to [defaults] and
// the entries with what is left.
type layout struct {
	set          map[*Console][]kv // settings(c), computed once
	defaults     []kv
	defTemplate  string
	defNotes     []string
	hoisted      map[string]bool // keys in defaults
	hoistedNotes map[string]bool
	entries      []entry
}

func (r *Result) layout() *layout {
	l := &layout{set: map[*Console][]kv{}, hoisted: map[string]bool{}, hoistedNotes: map[string]bool{}}
	cs := make([]*Console, len(r.Consoles))
	for i := range r.Consoles {
		cs[i] = &r.Consoles[i]
		l.set[cs[i]] = settings(cs[i])
	}
	if len(cs) == 0 {
		return l
	}
	// A setting every console has with the same value goes to [defaults].
	for _, s := range l.set[cs[0]] {
		all := true
		for _, c := range cs[1:] {
			if !hasKV(l.set[c], s) {
				all = false
				break
			}
		}
		if all {
			l.defaults = append(l.defaults, s)
			l.hoisted[s.k] = true
		}
	}
	for _, n := range cs[0].Notes {
		all := true
		for _, c := range cs[1:] {
			if !contains(c.Notes, n) {
				all = false
				break
			}
		}
		if all && !l.hoistedNotes[n] {
			l.defNotes = append(l.defNotes, n)
			l.hoistedNotes[n] = true
		}
	}
	t := template(cs[0].Name, cs[0].BMC)
	for _, c := range cs[1:] {
		if template(c.Name, c.BMC) != t {
			t = ""
			break
		}
	}
	l.defTemplate = t
	l.entries = fold(cs, func(c *Console) string {
		var b strings.Builder
		for _, s := range l.rest(c) {
			b.WriteString(s.k + "=" + s.v + "\n")
		}
		for _, n := range l.notes(c) {
			b.WriteString("#" + n + "\n")
		}
		return b.String()
	}, t)
	return l
}

func hasKV(list []kv, s kv) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// rest is a console's settings not in [defaults].
func (l *layout) rest(c *Console) []kv {
	var out []kv
	for _, s := range l.set[c] {
		if !l.hoisted[s.k] {
			out = append(out, s)
		}
	}
	return out
}

func (l *layout) notes(c *Console) []string {
	var out []string
	for _, n := range c.Notes {
		if !l.hoistedNotes[n] && !contains(out, n) {
			out = append(out, n)
		}
	}
	return out
}

// TOML returns the translated configuration.
func (r *Result) TOML() []byte {
	var b bytes.Buffer
	r.WriteTOML(&b)
	return b.Bytes()
}

// WriteTOML writes the translated configuration: a solgate main file with
// comments for everything that did not translate.
func (r *Result) WriteTOML(w io.Writer) error {
	l := r.layout()
	var b bytes.Buffer
	src := filepath.Base(r.Source)
	tool := map[string]string{"conserver": "conserver", "conman": "ConMan"}[r.Format]
	fmt.Fprintf(&b, "# solgate configuration imported from %s's %s by\n", tool, src)
	fmt.Fprintf(&b, "#   solgate import %s %s\n", r.Format, commentText(r.Source))
	fmt.Fprintf(&b, "# %d IPMI %s imported as %d [[console]] %s; %d %s not imported.\n",
		len(r.Consoles), plural(len(r.Consoles), "console", "consoles"),
		len(l.entries), plural(len(l.entries), "entry", "entries"),
		len(r.Skipped), plural(len(r.Skipped), "console", "consoles"))
	if len(r.Secrets) > 0 {
		b.WriteString("#\n# Before using it: create the secret files listed below, read the notes, and\n")
		b.WriteString("# check it as the daemon will read it:\n")
	} else {
		b.WriteString("#\n# Before using it: read the notes, and check it as the daemon will read it:\n")
	}
	b.WriteString("#   solgate check -c /etc/solgate/solgate.toml\n")

	if len(r.Secrets) > 0 {
		fmt.Fprintf(&b, "#\n# Secrets are not copied from %s. Write each into its file, on one\n", src)
		b.WriteString("# line, mode 0600 or 0640, readable by the user solgate runs as:\n")
		for _, s := range r.Secrets {
			form := ""
			if s.Kind == "K_g" {
				form = "; as text, or 0x followed by hex"
				if s.Binary {
					form = "; it has non-text bytes: write it as 0x followed by hex"
				}
			}
			fmt.Fprintf(&b, "#   %s: the %s set at %s (%d %s%s)\n", commentText(s.Path), s.Kind,
				Note{File: s.File, Line: s.Line}.loc(), s.Consoles, plural(s.Consoles, "console", "consoles"), form)
		}
	}
	if len(r.Warnings) > 0 {
		fmt.Fprintf(&b, "#\n# Warnings: %s has problems that %s reports too; what they\n", src, tool)
		b.WriteString("# concern was left out:\n")
		for _, n := range r.Warnings {
			fmt.Fprintf(&b, "#   %s\n", commentText(n.String()))
		}
	}
	if len(r.Notes) > 0 {
		b.WriteString("#\n# Not carried over (solgate has no equivalent, or does it its own way):\n")
		for _, n := range r.Notes {
			fmt.Fprintf(&b, "#   %s\n", commentText(n.String()))
		}
	}

	if r.Listen != "" {
		b.WriteString("\n[server]\n")
		fmt.Fprintf(&b, "listen = %s", tomlString(r.Listen))
		if r.ListenNote != "" {
			fmt.Fprintf(&b, "  # %s", commentText(r.ListenNote))
		}
		b.WriteByte('\n')
	}

	b.WriteString("\n# Every console inherits these; a [[console]] entry overrides them.\n[defaults]\n")
	if !l.hoisted["interface"] {
		fmt.Fprintf(&b, "interface = \"lanplus\"  # %s reaches BMCs through FreeIPMI's libipmiconsole: IPMI 2.0\n", tool)
	}
	b.WriteString("escape = \"^Ec\"")
	if r.EscapeNote != "" {
		fmt.Fprintf(&b, "  # %s", commentText(r.EscapeNote))
	}
	b.WriteByte('\n')
	if !l.hoisted["privilege"] {
		fmt.Fprintf(&b, "privilege = \"admin\"  # as %s's default\n", tool)
	}
	for _, s := range l.defaults {
		fmt.Fprintf(&b, "%s = %s\n", s.k, s.v)
	}
	if l.defTemplate != "" {
		fmt.Fprintf(&b, "bmc = %s\n", tomlString(l.defTemplate))
	}
	for _, n := range l.defNotes {
		fmt.Fprintf(&b, "# %s\n", commentText(n))
	}

	for _, e := range l.entries {
		c := e.cons[0]
		at := Note{File: c.File, Line: c.Line}.loc()
		if len(e.cons) > 1 {
			at += fmt.Sprintf(" and %d more", len(e.cons)-1)
		}
		fmt.Fprintf(&b, "\n[[console]]  # %s\n", commentText(at))
		fmt.Fprintf(&b, "name = %s\n", tomlString(e.name))
		if e.bmc != "" {
			fmt.Fprintf(&b, "bmc = %s\n", tomlString(e.bmc))
		}
		for _, s := range l.rest(c) {
			fmt.Fprintf(&b, "%s = %s\n", s.k, s.v)
		}
		for _, n := range l.notes(c) {
			fmt.Fprintf(&b, "# %s\n", commentText(n))
		}
	}

	if len(r.Skipped) > 0 {
		b.WriteString("\n# Not imported: solgate speaks IPMI Serial-over-LAN only, and needs a\n")
		b.WriteString("# console name of letters, digits, '.', '_' and '-'.\n")
		for _, s := range r.Skipped {
			name := s.Name
			if checkName(name) != nil {
				name = quote(name)
			}
			fmt.Fprintf(&b, "#   %s (%s): %s\n", commentText(name), commentText(Note{File: s.File, Line: s.Line}.loc()), commentText(s.Why))
		}
	}

	r.writeAccess(&b)
	_, err := w.Write(b.Bytes())
	return err
}

func (n Note) loc() string {
	if n.Line > 0 {
		return fmt.Sprintf("%s:%d", filepath.Base(n.File), n.Line)
	}
	return filepath.Base(n.File)
}

// writeAccess sketches [[access]] rules from conserver's rw and ro lists,
// commented out: solgate's users need SSH keys, which conserver did not have.
func (r *Result) writeAccess(b *bytes.Buffer) {
	type group struct {
		a     Access
		names []string
	}
	var groups []*group
	byKey := map[string]*group{}
	for i := range r.Consoles {
		c := &r.Consoles[i]
		if c.Access.empty() {
			continue
		}
		k := c.Access.key()
		g := byKey[k]
		if g == nil {
			g = &group{a: c.Access}
			byKey[k] = g
			groups = append(groups, g)
		}
		g.names = append(g.names, c.Name)
	}
	if len(groups) == 0 && len(r.Groups) == 0 {
		return
	}
	b.WriteString("\n# Access: conserver's rw and ro lists as [[access]] rules to adapt. Each\n")
	b.WriteString("# person needs a [[user]] with their SSH keys (conserver had passwords or\n")
	b.WriteString("# host trust instead); conserver groups become groups = [...] of those users.\n")
	for _, g := range r.Groups {
		fmt.Fprintf(b, "# group %s (%s): %s\n", commentText(g.Name), commentText(Note{File: g.File, Line: g.Line}.loc()), commentText(strings.Join(g.Members, ", ")))
	}
	for _, g := range groups {
		b.WriteString("#\n# [[access]]\n")
		consoles := "*"
		if len(g.names) < len(r.Consoles) {
			consoles = hostlist.Compress(g.names)
		}
		fmt.Fprintf(b, "# consoles = %s\n", commentText(tomlString(consoles)))
		for _, l := range []struct {
			key  string
			list []string
		}{{"read", g.a.Read}, {"write", g.a.Write}, {"deny", g.a.Deny}} {
			if len(l.list) == 0 {
				continue
			}
			q := make([]string, len(l.list))
			for i, p := range l.list {
				q[i] = tomlString(strings.ToValidUTF8(p, "?"))
			}
			fmt.Fprintf(b, "# %s = [%s]\n", l.key, commentText(strings.Join(q, ", ")))
		}
	}
}

// commentText makes text safe inside a TOML comment: valid UTF-8 without
// control characters, on one line.
func commentText(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == '\t':
			b.WriteByte(' ')
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, "\\x%02x", r)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
