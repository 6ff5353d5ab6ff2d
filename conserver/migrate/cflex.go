package migrate

// The conserver.cf tokenizer, after conserver.cf(5) PARSER: the tokens
// '{', '}' and ';' separate words; '#' starts a comment to the end of the
// line; a backslash makes the next character literal; inside double quotes
// everything is literal except \" (a backslash before anything else stays).
// White space ends a block type or keyword, but inside a block name or value
// it is kept (only leading and trailing white space is dropped). A line
// starting "#include FILE" in column 0 reads FILE in its place.

type cfTok int

const (
	cfEOF cfTok = iota
	cfLBrace
	cfRBrace
	cfSemi
	cfWord
	cfInclude
	cfBadQuote // a double quote not closed before the end of the file
)

func (t cfTok) String() string {
	return [...]string{"end of file", "'{'", "'}'", "';'", "word", "#include", "unterminated quote"}[t]
}

type cfLexer struct {
	data []byte
	pos  int
	line int
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'
}

// next returns the next token and the line it starts on. spaceOK keeps white
// space inside the word (for names and values). It follows conserver's own
// tokenizer, quirks included: a comment swallows its newline, so a word
// interrupted by a comment goes on after it.
func (l *cfLexer) next(spaceOK bool) (tok cfTok, word string, line int) {
	var w []byte
	started := false // a word has begun: a character or a quote seen
	quoted := false
	inQuote, qBackslash, backslash := false, false, false
	start := l.line
	mark := func() {
		if !started {
			started, start = true, l.line
		}
	}
	finish := func() (cfTok, string, int) {
		for len(w) > 0 && isSpace(w[len(w)-1]) {
			w = w[:len(w)-1]
		}
		return cfWord, string(w), start
	}
	for l.pos < len(l.data) {
		c := l.data[l.pos]
		bol := l.pos == 0 || l.data[l.pos-1] == '\n'
		l.pos++
		if c == '\n' {
			l.line++
		}
		if backslash {
			w = append(w, c)
			backslash = false
			continue
		}
		if inQuote {
			switch {
			case qBackslash && c == '"':
				w = append(w, '"')
				qBackslash = false
			case qBackslash:
				w = append(w, '\\')
				qBackslash = c == '\\'
				if !qBackslash {
					w = append(w, c)
				}
			case c == '"':
				inQuote = false
			case c == '\\':
				qBackslash = true
			default:
				w = append(w, c)
			}
			continue
		}
		switch {
		case c == '\\':
			mark()
			backslash = true
		case c == '#':
			if bol {
				if name, end, ok := includeLine(l.data, l.pos); ok {
					if started {
						// Finish the word; the include is read next.
						l.pos--
						return finish()
					}
					line := l.line
					l.pos = end
					if l.pos < len(l.data) {
						l.pos++ // the newline
						l.line++
					}
					return cfInclude, name, line
				}
			}
			for l.pos < len(l.data) {
				c := l.data[l.pos]
				l.pos++
				if c == '\n' {
					l.line++
					break
				}
			}
		case c == '"':
			mark()
			inQuote, quoted = true, true
		case isSpace(c):
			if len(w) == 0 {
				continue
			}
			if spaceOK {
				w = append(w, c)
				continue
			}
			return finish()
		case c == '{' || c == '}' || c == ';':
			if len(w) == 0 && !quoted {
				t := cfSemi
				switch c {
				case '{':
					t = cfLBrace
				case '}':
					t = cfRBrace
				}
				return t, "", l.line
			}
			l.pos--
			return finish()
		default:
			mark()
			w = append(w, c)
		}
	}
	if inQuote {
		return cfBadQuote, "", start
	}
	if len(w) > 0 || quoted {
		return finish()
	}
	return cfEOF, "", l.line
}

// includeLine recognizes "include FILE" after a '#' in column 0 at i. It
// returns the file name and the offset of the end of the line.
func includeLine(b []byte, i int) (name string, end int, ok bool) {
	if !hasPrefixAt(b, i, "include") || i+7 >= len(b) || !isSpace(b[i+7]) || b[i+7] == '\n' {
		return "", 0, false
	}
	end = i + 7
	for end < len(b) && b[end] != '\n' {
		end++
	}
	name = trimSpace(string(b[i+7 : end]))
	return name, end, name != ""
}

func hasPrefixAt(b []byte, i int, p string) bool {
	return len(b)-i >= len(p) && string(b[i:i+len(p)]) == p
}

func trimSpace(s string) string {
	i, j := 0, len(s)
	for i < j && isSpace(s[i]) {
		i++
	}
	for j > i && isSpace(s[j-1]) {
		j--
	}
	return s[i:j]
}
