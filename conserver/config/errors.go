package config

import (
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"
)

// maxErrors caps the problems one Load reports; a generated file with a
// systematic mistake would otherwise print thousands of lines.
const maxErrors = 100

// Error is one problem in the configuration, located as precisely as the
// source allows.
type Error struct {
	File    string // file the problem is in; "" when it is not in one file
	Line    int    // 1-based line, or 0 when unknown
	Console string // console (or compressed list of consoles) concerned, if any
	Msg     string
}

func (e *Error) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		if e.Line > 0 {
			fmt.Fprintf(&b, ":%d", e.Line)
		}
		b.WriteString(": ")
	}
	if e.Console != "" {
		b.WriteString("console ")
		b.WriteString(e.Console)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// ErrorList is every problem Load found, in file order, at most maxErrors of
// them. Load returns it as its error; use errors.As to get at the entries.
type ErrorList struct {
	Errors  []*Error
	Omitted int // problems found beyond the cap
}

func (l *ErrorList) Error() string {
	var b strings.Builder
	for i, e := range l.Errors {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(e.Error())
	}
	if l.Omitted > 0 {
		fmt.Fprintf(&b, "\n... and %d more errors", l.Omitted)
	}
	return b.String()
}

// Len is the number of problems found, including omitted ones.
func (l *ErrorList) Len() int { return len(l.Errors) + l.Omitted }

func (l *ErrorList) add(e *Error) {
	if len(l.Errors) >= maxErrors {
		l.Omitted++
		return
	}
	// Values are quoted cut where they are formatted; this is the net
	// under every message, so that no mistake prints megabytes.
	e.Console = cutMessage(e.Console, 200)
	e.Msg = cutMessage(e.Msg, maxMessage)
	l.Errors = append(l.Errors, e)
}

// maxMessage bounds one error or warning, in bytes.
const maxMessage = 2000

// cutMessage cuts s to at most n bytes on a character boundary, saying so.
func cutMessage(s string, n int) string {
	if len(s) <= n {
		return s
	}
	i := n
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i] + fmt.Sprintf("... (cut: %d bytes)", len(s))
}

func (l *ErrorList) addf(file string, line int, console, format string, args ...any) {
	l.add(&Error{File: file, Line: line, Console: console, Msg: fmt.Sprintf(format, args...)})
}

// sort orders the problems by file (in the given order) and line, so
// that they read top to bottom whatever check found them.
func (l *ErrorList) sort(files []string) {
	rank := func(f string) int {
		for i, x := range files {
			if x == f {
				return i
			}
		}
		return len(files)
	}
	slices.SortStableFunc(l.Errors, func(a, b *Error) int {
		if c := rank(a.File) - rank(b.File); c != 0 {
			return c
		}
		return a.Line - b.Line
	})
}

func (l *ErrorList) err() error {
	if l.Len() == 0 {
		return nil
	}
	return l
}
