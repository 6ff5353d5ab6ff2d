// Package config reads, validates, compares and watches solgate's
// configuration: a main TOML file (default /etc/solgate/solgate.toml) plus
// every conf.d/*.toml beside it.
//
// A file may hold:
//
//	[server]      daemon settings (main file only)
//	[defaults]    console settings every console inherits (main file only)
//	[[console]]   name = hostlist, bmc = parallel hostlist or "{name}" template,
//	              plus any per-console override of [defaults]
//	[[user]]      name, SSH public keys (authorized_keys syntax), groups
//	[[access]]    consoles = hostlist or "*"; read / write / power / deny lists
//	              of user names and @groups (@all is every user)
//	[[syslog]]    address = udp:// tcp:// tls:// or unix:// URL, format, facility
//
// Decoding is strict: an unknown key is an error with its file and line,
// and a suggestion when it looks like a typo. Validation collects every
// problem it finds (up to 100) into an *ErrorList whose entries name file,
// line and console. Secrets (password_file, password_env, kg_file, kg_env,
// and an inline password only with insecure_inline_password = true) are
// read at load time into Secret values that never print themselves.
// Relative paths in a file (password_file, kg_file, tls_ca_file,
// trusted_user_ca_files) are relative to that file's directory. Every file
// is read with ReadFileLimit: opened without blocking, refused unless it is
// a regular file of bounded size (a FIFO, socket, device or huge file is an
// error at once, as is a conf.d entry that is a dangling symlink, a symlink
// loop or a directory).
//
// Console names follow logstore.CheckConsoleName, must differ by more than
// letter case, and hold no white space (hostlists in the config take commas
// between names); at most MaxConsoles in all, each hostlist expanded
// against what is left of that budget. Messages quote values through
// logstore.QuoteShort (cut, non-ASCII as characters), and every message is
// cut at 2,000 bytes whatever it holds.
//
// Entry points:
//   - Load / LoadWith: one validated *Config snapshot.
//   - Config.Console, Config.Perms / Allowed, Config.UserForKey /
//     IdentifyKey: what the console manager and SSH gateway ask.
//   - Compare: what changed between two snapshots, per console and per kind
//     (connection, log, access, escape).
//   - CheckBMC, CheckTemplate, ReadFileLimit: the same checks and bounded
//     reads for the command line (solgate power and sol).
//   - Watcher: reloads on file changes (fsnotify on the directories, with a
//     debounce), on Reload (SIGHUP) and periodically, and emits validated
//     snapshots with their Diff, or an error while keeping the old one.
//
// It deliberately does not open BMC sessions, create directories or write
// files, and it never logs secrets. A *Config is immutable after Load and
// safe for concurrent use; a Watcher's methods are safe for concurrent use.
package config
