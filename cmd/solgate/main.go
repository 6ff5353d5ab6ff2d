// Command solgate is a console server for clusters: it keeps an IPMI
// Serial-over-LAN session open to every node, logs and ships what each
// console prints, and offers power control and an SSH gateway.
//
// main only parses the command line and wires packages together; each
// subcommand lives in its own file and registers itself with register.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
)

// command is one solgate subcommand.
type command struct {
	name    string
	summary string // one line for the overview
	// run executes the command. stdout and stderr are passed so tests can
	// capture them. The returned error is printed by main; exitError
	// carries a specific exit status.
	run func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

var commands = map[string]command{}

func register(c command) {
	if _, dup := commands[c.name]; dup {
		panic("solgate: command registered twice: " + c.name)
	}
	commands[c.name] = c
}

// exitError asks main to exit with code after printing msg (if any).
type exitError struct {
	code int
	msg  string
}

func (e *exitError) Error() string { return e.msg }

func main() {
	ctx, stop := notifyContext()
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(exitCode(err, os.Stderr))
}

func exitCode(err error, stderr io.Writer) int {
	if err == nil {
		return 0
	}
	var se *signalError
	if errors.As(err, &se) {
		fmt.Fprintln(stderr, "solgate:", err)
		return se.code()
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.msg != "" {
			fmt.Fprintln(stderr, "solgate:", ee.msg)
		}
		return ee.code
	}
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	fmt.Fprintln(stderr, "solgate:", err)
	return 1
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		if len(args) > 1 {
			if c, ok := commands[args[1]]; ok {
				return c.run(ctx, []string{"--help"}, stdout, stderr)
			}
		}
		usage(stdout)
		if len(args) == 0 {
			return &exitError{code: 2}
		}
		return nil
	}
	if args[0] == "--version" || args[0] == "version" {
		fmt.Fprintln(stdout, "solgate", version)
		return nil
	}
	c, ok := commands[args[0]]
	if !ok {
		usage(stderr)
		return &exitError{code: 2, msg: fmt.Sprintf("unknown command %q", args[0])}
	}
	return c.run(ctx, args[1:], stdout, stderr)
}

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func usage(w io.Writer) {
	var names []string
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	var b strings.Builder
	b.WriteString("solgate: a console server for clusters (IPMI Serial-over-LAN, logs, power, SSH gateway)\n\n")
	b.WriteString("Usage: solgate COMMAND [flags] [args]\n\nCommands:\n")
	for _, n := range names {
		fmt.Fprintf(&b, "  %-8s %s\n", n, commands[n].summary)
	}
	b.WriteString("\nRun 'solgate COMMAND --help' for a command's flags and examples.\n")
	io.WriteString(w, b.String())
}
