package sshgw

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Limits on an exec command line: a script has no reason to send more,
// and a parser fed by strangers should not allocate without bound.
const (
	maxCommandLen  = 4096
	maxCommandArgs = 64
)

// SplitCommand splits an exec command line into words the way a POSIX
// shell does for simple commands: blanks separate words, single quotes
// keep everything literally, double quotes keep everything but a
// backslash before one of \ " $ `, and a backslash outside quotes keeps
// the next character. Nothing is expanded. Control characters other than
// tab are refused, as are unterminated quotes and lines over 4096 bytes or
// 64 words.
func SplitCommand(line string) ([]string, error) {
	if len(line) > maxCommandLen {
		return nil, fmt.Errorf("%w: command line is %d bytes, more than %d", ErrUsage, len(line), maxCommandLen)
	}
	var words []string
	var cur strings.Builder
	inWord := false
	for i := 0; i < len(line); i++ {
		c := line[i]
		if c < 0x20 && c != '\t' || c == 0x7f {
			return nil, fmt.Errorf("%w: control character %#02x at byte %d of the command line", ErrUsage, c, i)
		}
		switch c {
		case ' ', '\t':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
			continue
		case '\'':
			end := strings.IndexByte(line[i+1:], '\'')
			if end < 0 {
				return nil, fmt.Errorf("%w: unterminated single quote at byte %d of the command line", ErrUsage, i)
			}
			seg := line[i+1 : i+1+end]
			if j := strings.IndexFunc(seg, isControl); j >= 0 {
				return nil, fmt.Errorf("%w: control character %#02x at byte %d of the command line", ErrUsage, seg[j], i+1+j)
			}
			cur.WriteString(seg)
			i += end + 1
		case '"':
			j := i + 1
			for ; j < len(line) && line[j] != '"'; j++ {
				d := line[j]
				if d < 0x20 && d != '\t' || d == 0x7f {
					return nil, fmt.Errorf("%w: control character %#02x at byte %d of the command line", ErrUsage, d, j)
				}
				if d == '\\' && j+1 < len(line) && strings.IndexByte("\\\"$`", line[j+1]) >= 0 {
					j++
					d = line[j]
				}
				cur.WriteByte(d)
			}
			if j >= len(line) {
				return nil, fmt.Errorf("%w: unterminated double quote at byte %d of the command line", ErrUsage, i)
			}
			i = j
		case '\\':
			if i+1 >= len(line) {
				return nil, fmt.Errorf("%w: the command line ends with a backslash", ErrUsage)
			}
			i++
			if d := line[i]; d < 0x20 && d != '\t' || d == 0x7f {
				return nil, fmt.Errorf("%w: control character %#02x at byte %d of the command line", ErrUsage, d, i)
			}
			cur.WriteByte(line[i])
		default:
			cur.WriteByte(c)
		}
		inWord = true
		if len(words) >= maxCommandArgs {
			return nil, fmt.Errorf("%w: more than %d words on the command line", ErrUsage, maxCommandArgs)
		}
	}
	if inWord {
		words = append(words, cur.String())
	}
	if len(words) > maxCommandArgs {
		return nil, fmt.Errorf("%w: more than %d words on the command line", ErrUsage, maxCommandArgs)
	}
	return words, nil
}

func isControl(r rune) bool { return r < 0x20 && r != '\t' || r == 0x7f }

// QuoteCommand joins words into a command line that SplitCommand splits
// back into the same words.
func QuoteCommand(words []string) string {
	var b strings.Builder
	for i, w := range words {
		if i > 0 {
			b.WriteByte(' ')
		}
		if w != "" && !strings.ContainsAny(w, " \t'\"\\") {
			b.WriteString(w)
			continue
		}
		b.WriteByte('\'')
		b.WriteString(strings.ReplaceAll(w, "'", `'\''`))
		b.WriteByte('\'')
	}
	return b.String()
}

// Request is a parsed exec command.
type Request struct {
	Cmd     string // power, tail, log, grep, who, info, screen, spy, force, break, help, list
	Action  string // power: the action
	Lines   int    // tail: how many lines (default 20)
	Pattern string // grep: the regular expression
	Query   LogQuery
	JSON    bool // --json: machine-readable output (power, who, info, list)
}

// powerActions are the actions the power command accepts.
var powerActions = []string{"status", "on", "off", "cycle", "reset", "soft", "diag", "pxe", "bios"}

// defaultTail is how many lines tail prints without -n.
const defaultTail = 20

// maxTail bounds tail -n.
const maxTail = 100000

// ParseRequest parses the words of an exec command (see SplitCommand).
// Errors wrap ErrUsage and say what is wrong in one line.
func ParseRequest(words []string) (Request, error) {
	if len(words) == 0 {
		return Request{}, fmt.Errorf("%w: empty command", ErrUsage)
	}
	r := Request{Cmd: words[0]}
	type flagSpec struct {
		dst  *string // value flag
		flag *bool   // boolean flag
	}
	var lines string
	flags := map[string]flagSpec{}
	positional := 0 // how many positional arguments the command takes
	var pos []string
	switch r.Cmd {
	case "power":
		positional = 1
		flags["--json"] = flagSpec{flag: &r.JSON}
	case "tail":
		flags["-n"] = flagSpec{dst: &lines}
		flags["--lines"] = flagSpec{dst: &lines}
	case "log":
		flags["--since"] = flagSpec{dst: &r.Query.Since}
		flags["--until"] = flagSpec{dst: &r.Query.Until}
		flags["--boot"] = flagSpec{dst: &r.Query.Boot}
		flags["--raw"] = flagSpec{flag: &r.Query.Raw}
		flags["--plain"] = flagSpec{flag: &r.Query.Plain}
		flags["--list-boots"] = flagSpec{flag: &r.Query.ListBoots}
	case "grep":
		positional = 1
		flags["--since"] = flagSpec{dst: &r.Query.Since}
		flags["--until"] = flagSpec{dst: &r.Query.Until}
	case "who", "info", "list":
		flags["--json"] = flagSpec{flag: &r.JSON}
	case "screen", "spy", "force", "break", "help":
	default:
		return Request{}, fmt.Errorf("%w: unknown command %s (try help)", ErrUsage, quoteShort(r.Cmd))
	}
	args := words[1:]
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			pos = append(pos, args[i+1:]...)
			break
		}
		if !strings.HasPrefix(a, "-") || a == "-" {
			pos = append(pos, a)
			continue
		}
		name, val, hasVal := strings.Cut(a, "=")
		if _, whole := flags[name]; !whole && len(a) > 2 && a[1] != '-' {
			if spec, ok := flags[a[:2]]; ok && spec.dst != nil {
				// A one-letter flag with its value attached, as in tail -n5.
				name, val, hasVal = a[:2], a[2:], true
			}
		}
		spec, ok := flags[name]
		if !ok {
			return Request{}, fmt.Errorf("%w: %s: unknown flag %s", ErrUsage, r.Cmd, quoteShort(name))
		}
		switch {
		case spec.flag != nil:
			if hasVal {
				return Request{}, fmt.Errorf("%w: %s: flag %s takes no value", ErrUsage, r.Cmd, name)
			}
			*spec.flag = true
		case hasVal:
			*spec.dst = val
		default:
			if i+1 >= len(args) {
				return Request{}, fmt.Errorf("%w: %s: flag %s needs a value", ErrUsage, r.Cmd, name)
			}
			i++
			*spec.dst = args[i]
		}
	}
	if len(pos) != positional {
		switch {
		case r.Cmd == "power":
			return Request{}, fmt.Errorf("%w: power: want one action of %s", ErrUsage, strings.Join(powerActions, " "))
		case r.Cmd == "grep":
			return Request{}, fmt.Errorf("%w: grep: want one PATTERN", ErrUsage)
		default:
			return Request{}, fmt.Errorf("%w: %s: unexpected argument %s", ErrUsage, r.Cmd, quoteShort(pos[positional]))
		}
	}
	switch r.Cmd {
	case "power":
		r.Action = pos[0]
		if !slices.Contains(powerActions, r.Action) {
			return Request{}, fmt.Errorf("%w: power: unknown action %s; want one of %s", ErrUsage, quoteShort(r.Action), strings.Join(powerActions, " "))
		}
	case "grep":
		r.Pattern = pos[0]
		if r.Pattern == "" {
			return Request{}, fmt.Errorf("%w: grep: empty pattern", ErrUsage)
		}
	case "tail":
		r.Lines = defaultTail
		if lines != "" {
			n, err := strconv.Atoi(lines)
			if err != nil || n < 0 || n > maxTail {
				return Request{}, fmt.Errorf("%w: tail: -n %s is not a number from 0 to %d", ErrUsage, quoteShort(lines), maxTail)
			}
			r.Lines = n
		}
	case "log":
		if r.Query.Raw && r.Query.Plain {
			return Request{}, fmt.Errorf("%w: log: --raw and --plain exclude each other", ErrUsage)
		}
		if r.Query.ListBoots && (r.Query != LogQuery{ListBoots: true}) {
			return Request{}, fmt.Errorf("%w: log: --list-boots takes no other flag", ErrUsage)
		}
		if r.Query.Boot != "" {
			if _, err := strconv.Atoi(r.Query.Boot); err != nil {
				return Request{}, fmt.Errorf("%w: log: --boot %s is not a number (0 is this boot, -1 the one before)", ErrUsage, quoteShort(r.Query.Boot))
			}
		}
	}
	return r, nil
}

// Words returns the request as command words that ParseRequest parses
// back into the same request.
func (r Request) Words() []string {
	w := []string{r.Cmd}
	switch r.Cmd {
	case "power":
		w = append(w, r.Action)
	case "tail":
		w = append(w, "-n", strconv.Itoa(r.Lines))
	case "log":
		for _, f := range []struct{ name, v string }{{"--since", r.Query.Since}, {"--until", r.Query.Until}, {"--boot", r.Query.Boot}} {
			if f.v != "" {
				w = append(w, f.name+"="+f.v)
			}
		}
		if r.Query.Raw {
			w = append(w, "--raw")
		}
		if r.Query.Plain {
			w = append(w, "--plain")
		}
		if r.Query.ListBoots {
			w = append(w, "--list-boots")
		}
	case "grep":
		for _, f := range []struct{ name, v string }{{"--since", r.Query.Since}, {"--until", r.Query.Until}} {
			if f.v != "" {
				w = append(w, f.name+"="+f.v)
			}
		}
		w = append(w, "--", r.Pattern)
	}
	if r.JSON {
		w = append(w, "--json")
	}
	return w
}

// quoteShort quotes a value for an error message, cut to a sensible
// length and with anything unprintable escaped.
func quoteShort(s string) string {
	const max = 40
	if len(s) > max {
		return strconv.Quote(cutAt(s, max)) + "..."
	}
	return strconv.Quote(s)
}

// cutAt is s's first max bytes, or fewer, so as not to split a UTF-8
// sequence.
func cutAt(s string, max int) string {
	if len(s) <= max {
		return s
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut]
}

// maxLogged is how much of a client's command line or user name the
// daemon log keeps: both may be as long as an SSH packet.
const maxLogged = 256

// logShort is s for the daemon log: cut at maxLogged bytes, saying how
// long it was.
func logShort(s string) string {
	if len(s) <= maxLogged {
		return s
	}
	return fmt.Sprintf("%s... (%d bytes)", cutAt(s, maxLogged), len(s))
}
