package migrate

import (
	"errors"
	"strings"
)

// errShellSyntax is a command that /bin/sh would not run at all.
var errShellSyntax = errors.New("does not parse as a shell command (an unterminated quote, or a backslash at the end)")

// shellFeature is a command that uses more of the shell than plain words.
type shellFeature struct{ what string }

func (e *shellFeature) Error() string { return "the command uses shell features (" + e.what + ")" }

// shellSplit splits a command into words as /bin/sh does for a simple
// command of plain words: blanks separate words, single quotes keep
// everything up to the next single quote, double quotes keep everything
// with \ escaping $ ` " \ and newline, and a backslash outside quotes
// escapes the next character (a backslash-newline is removed). Anything
// else sh would interpret (expansions, pipes, lists, redirections,
// subshells, globbing, comments, tilde expansion, a newline between
// commands; braces, which bash as sh expands) is an error of type *shellFeature: the words would not be what
// the program gets. An unterminated quote is errShellSyntax. The
// messages name the kind of feature, never the text around it, which may
// be a password.
func shellSplit(s string) ([]string, error) {
	var words []string
	var w strings.Builder
	inWord := false
	feature := func(what string) error { return &shellFeature{what} }
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch c {
		case ' ', '\t':
			if inWord {
				words = append(words, w.String())
				w.Reset()
				inWord = false
			}
		case '\n':
			return nil, feature("a newline between commands")
		case '\'':
			end := strings.IndexByte(s[i+1:], '\'')
			if end < 0 {
				return nil, errShellSyntax
			}
			w.WriteString(s[i+1 : i+1+end])
			i += end + 1
			inWord = true
		case '"':
			i++
			for ; i < len(s) && s[i] != '"'; i++ {
				switch s[i] {
				case '$':
					return nil, feature("a $ expansion")
				case '`':
					return nil, feature("a ` command substitution")
				case '\\':
					if i+1 < len(s) {
						switch s[i+1] {
						case '$', '`', '"', '\\':
							i++
						case '\n':
							i++
							continue
						}
					}
				}
				w.WriteByte(s[i])
			}
			if i == len(s) {
				return nil, errShellSyntax
			}
			inWord = true
		case '\\':
			if i+1 == len(s) {
				return nil, errShellSyntax
			}
			i++
			if s[i] == '\n' {
				continue // a line continuation
			}
			w.WriteByte(s[i])
			inWord = true
		case '$':
			return nil, feature("a $ expansion")
		case '`':
			return nil, feature("a ` command substitution")
		case '|', ';', '&':
			return nil, feature("a pipe or command list")
		case '<', '>':
			return nil, feature("a redirection")
		case '(', ')':
			return nil, feature("a subshell")
		case '*', '?', '[':
			return nil, feature("a globbing pattern")
		case '~':
			return nil, feature("a ~ home directory")
		case '{', '}':
			return nil, feature("braces")
		case '#':
			if !inWord {
				return nil, feature("a comment")
			}
			w.WriteByte(c)
		default:
			w.WriteByte(c)
			inWord = true
		}
	}
	if inWord {
		words = append(words, w.String())
	}
	return words, nil
}

// shellQuote quotes a word so that shellSplit (and sh) reads it back
// unchanged.
func shellQuote(w string) string {
	return "'" + strings.ReplaceAll(w, "'", `'\''`) + "'"
}
