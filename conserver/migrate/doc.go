// Package migrate translates the configuration of conserver (conserver.cf,
// conserver.cf(5)) and ConMan (conman.conf, conman.conf(5)) into solgate
// TOML, for `solgate import conserver|conman FILE`.
//
// Each importer reads its format the way the original daemon does:
//
//   - conserver: blocks `TYPE NAME { keyword value; ... }` with its quoting
//     (backslash, double quotes, whitespace kept inside names and values),
//     `#include FILE` in column 0, `default` blocks applied by `include`
//     and the implicit `default *`, later definitions replacing earlier
//     ones, break sequences, tasks and user groups.
//   - ConMan: newline-terminated SERVER, GLOBAL and CONSOLE directives of
//     KEY=VALUE pairs (backslash-newline continues a line, keywords are
//     case-insensitive), GLOBAL settings applying to the consoles after
//     them, ipmiopts "U:,P:,K:,C:,L:,W:" (and the older positional form)
//     merged over the global ones, %N in dev and log.
//
// Consoles of type ipmi (conserver) and dev="ipmi:HOST" (ConMan) become
// [[console]] entries with their BMC, user, cipher suite, privilege and
// workarounds (as solgate quirks). Runs of consoles with the same settings
// are folded into one entry: a hostlist of names with a "{name}" BMC
// template when every BMC is derived from its console's name, or two
// parallel hostlists when both count up together. Settings common to every
// console go to [defaults].
//
// Secrets are never copied: a password or K_g becomes a password_file or
// kg_file placeholder under Options.SecretDir (one file per distinct
// value, in order of first use) and a comment naming the line that held it.
// Everything without a solgate equivalent (log file names, timestamps,
// break sequences other than the serial break, tasks, motd, idle strings,
// access lists, other console types) is listed in comments, with the file
// and line it came from; conserver's rw/ro lists become commented
// [[access]] sketches, since solgate users need SSH keys.
//
// Syntax errors (an unterminated quote or block, an unknown block type or
// keyword, a missing '=') are an *Error naming file and line: the importer
// does not guess at input its daemon would misread. Problems the daemon
// itself reports and works around (an unknown workaround name, a console
// without a host, a name solgate cannot use) become Warnings, and the
// console concerned is left out or its setting dropped.
//
// Entry points: Conserver and ConMan parse a file into a *Result; its
// WriteTOML prints the configuration. Every Result that either returns
// prints a configuration that config.Load accepts once the secret files
// exist (the tests check this on generated and fuzzed input).
//
// The package has no state; its functions are safe for concurrent use. It
// does not touch the network and reads only the files it is given (and, for
// conserver, the files they #include, through Options.ReadFile).
package migrate
