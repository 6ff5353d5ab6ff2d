package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/solgate/solgate/conserver/config"
	"github.com/solgate/solgate/conserver/hostlist"
)

func init() {
	register(command{name: "check", summary: "validate the configuration; --dump shows each console's effective settings", run: runCheck})
}

const checkUsage = `Usage: solgate check [-c FILE] [--dump] [--no-secrets] [HOSTS]

Reads the main config file and every conf.d/*.toml beside it exactly as
'solgate serve' does (including the password and key files they name),
and reports every problem, one per line, as FILE:LINE: [console NAME:] what.
Unknown keys are errors; a likely misspelling is pointed out. Every file it
reads must be a regular file of bounded size: a FIFO, socket or device (such
as /dev/zero), a huge file, or a conf.d entry that is a dangling symlink, a
symlink loop or a directory is reported at once. On success it prints a
summary: files, consoles, users, access rules and syslog targets, plus any
warnings (world-readable password files, consoles sharing a BMC, rules that
match no console, a hostlist that names a console twice).

--dump prints the effective settings: [server], then every console (or only
the consoles in HOSTS) with [defaults] applied and secrets shown as
[redacted] with their source, then users (key fingerprints), access rules
and syslog targets.

--no-secrets checks where passwords, K_g and CA files come from without
reading them, for validating a config on a machine that lacks the secrets
(a CI job, a config repository).

Exit status: 0 if the configuration is valid, 1 if not, 2 on bad usage.

Examples:
  solgate check
  solgate check -c /etc/solgate/solgate.toml
  solgate check --dump 'node[001-004]'
  solgate check --no-secrets -c ./site/solgate.toml   # in CI, without the secrets
  solgate check --dump | less`

func runCheck(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("check", checkUsage, stderr)
	path := config.DefaultPath
	fs.StringVar(&path, "c", path, "main config `FILE`; conf.d/ beside it is read too")
	fs.StringVar(&path, "config", path, "same as -c")
	dump := fs.Bool("dump", false, "print the effective configuration, secrets redacted")
	noSecrets := fs.Bool("no-secrets", false, "do not read password, K_g and CA files or environment variables")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return usageErr(err)
	}
	if len(pos) > 1 {
		fs.Usage()
		return &exitError{code: 2, msg: "check: at most one HOSTS argument"}
	}
	var hosts []string
	if len(pos) == 1 {
		if !*dump {
			return &exitError{code: 2, msg: "check: HOSTS only makes sense with --dump"}
		}
		if hosts, err = hostlist.Expand(pos[0]); err != nil {
			return &exitError{code: 2, msg: "check: " + err.Error()}
		}
	}

	cfg, err := config.LoadWith(path, config.Options{SkipSecrets: *noSecrets})
	if err != nil {
		var el *config.ErrorList
		if !errors.As(err, &el) {
			return &exitError{code: 1, msg: fmt.Sprintf("check: %s: %v", path, err)}
		}
		fmt.Fprintln(stderr, el.Error())
		n := el.Len()
		return &exitError{code: 1, msg: fmt.Sprintf("check: %s: %d %s", path, n, plural(n, "error", "errors"))}
	}
	for _, w := range cfg.Warnings {
		fmt.Fprintln(stderr, "warning:", w)
	}
	if *dump {
		if hosts != nil {
			if err := cfg.DumpConsoles(stdout, hosts); err != nil {
				return &exitError{code: 1, msg: "check: " + err.Error()}
			}
			return nil
		}
		return cfg.Dump(stdout)
	}
	names := make([]string, len(cfg.Consoles))
	for i := range cfg.Consoles {
		names[i] = cfg.Consoles[i].Name
	}
	secrets := "secrets read"
	if *noSecrets {
		secrets = "secrets not read (--no-secrets)"
	}
	fmt.Fprintf(stdout, "%s: OK, %d %s, %s\n", path, len(cfg.Files), plural(len(cfg.Files), "file", "files"), secrets)
	fmt.Fprintf(stdout, "  consoles:       %d %s\n", len(cfg.Consoles), abbreviate(hostlist.Compress(names), 200))
	fmt.Fprintf(stdout, "  users:          %d\n", len(cfg.Users))
	fmt.Fprintf(stdout, "  access rules:   %d\n", len(cfg.Rules))
	fmt.Fprintf(stdout, "  syslog targets: %d\n", len(cfg.Syslog))
	if len(cfg.Warnings) > 0 {
		fmt.Fprintf(stdout, "  warnings:       %d (on stderr)\n", len(cfg.Warnings))
	}
	return nil
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

func abbreviate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
