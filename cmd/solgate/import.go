package main

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/solgate/solgate/conserver/migrate"
)

func init() {
	register(command{name: "import", summary: "translate a conserver.cf or conman.conf into solgate TOML", run: runImport})
}

const importUsage = `Usage: solgate import conserver|conman FILE [--secret-dir DIR] [-o OUT]

Reads an existing conserver.cf (conserver.cf(5), #include files too) or
conman.conf (conman.conf(5)) and prints an equivalent solgate main
configuration file: every IPMI console with its BMC, user, cipher suite,
privilege and workarounds, folded into hostlists (node[001-128] with
bmc = "{name}-ipmi", or parallel lists such as 10.0.0.[1-128]); settings
every console shares go to [defaults]. conserver's type exec consoles that
run "ipmitool ... sol activate" (-I lanplus or lan) or ipmiconsole are
imported too when their command translates for certain (plain sh words,
execsubst applied as conserver does); otherwise the comment says what could
not be translated.

Passwords and K_g keys are never printed: each distinct one becomes a
password_file or kg_file under --secret-dir (bmc.pass, bmc-2.pass, ...),
and a comment says which line of FILE held it, so you can create the files.
Everything without a solgate equivalent (log file names, timestamps, break
sequences other than the serial break, tasks, motd, client host rules,
consoles that are not IPMI: other exec commands, telnet, serial ports,
Unix sockets) is listed in comments with its line. conserver's rw/ro lists become commented
[[access]] rules to adapt: solgate users need SSH keys.

Syntax errors stop the import with FILE:LINE: what. Problems the old daemon
works around itself (an unknown workaround, a console without a host) are
warnings, printed to stderr and in the output, and the console or setting
concerned is left out. The output always passes 'solgate check' once the
secret files exist.

Exit status: 0 on success (warnings included), 1 on a syntax error or an
unreadable file, 2 on bad usage.

Examples:
  solgate import conserver /etc/conserver/conserver.cf > /etc/solgate/solgate.toml
  solgate import conman /etc/conman.conf -o solgate.toml
  solgate import conman /etc/conman.conf --secret-dir /etc/solgate/secrets | less
  solgate check -c /etc/solgate/solgate.toml`

func runImport(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("import", importUsage, stderr)
	secretDir := fs.String("secret-dir", migrate.DefaultSecretDir, "directory the password_file and kg_file placeholders name")
	out := fs.String("o", "", "write the configuration to `OUT` (mode 0640, not replacing an existing file) instead of stdout")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return usageErr(err)
	}
	if len(pos) != 2 {
		fs.Usage()
		return &exitError{code: 2, msg: "import: want a format (conserver or conman) and a FILE"}
	}
	format, file := pos[0], pos[1]
	var imp func(string, []byte, migrate.Options) (*migrate.Result, error)
	switch format {
	case "conserver":
		imp = migrate.Conserver
	case "conman":
		imp = migrate.ConMan
	default:
		return &exitError{code: 2, msg: fmt.Sprintf("import: unknown format %q (want conserver or conman)", format)}
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return &exitError{code: 1, msg: "import: " + err.Error()}
	}
	res, err := imp(file, data, migrate.Options{SecretDir: *secretDir})
	if err != nil {
		return &exitError{code: 1, msg: "import: " + err.Error()}
	}
	for _, w := range res.Warnings {
		fmt.Fprintln(stderr, "warning:", w.String())
	}
	text := res.TOML()
	if *out == "" {
		_, err = stdout.Write(text)
		return err
	}
	f, err := os.OpenFile(*out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o640)
	if err != nil {
		return &exitError{code: 1, msg: "import: " + err.Error()}
	}
	if _, err := f.Write(text); err != nil {
		f.Close()
		return &exitError{code: 1, msg: "import: " + err.Error()}
	}
	if err := f.Close(); err != nil {
		return &exitError{code: 1, msg: "import: " + err.Error()}
	}
	fmt.Fprintf(stderr, "%s: %d consoles imported, %d not, %d secret files to create; check it with: solgate check -c %s\n",
		*out, len(res.Consoles), len(res.Skipped), len(res.Secrets), *out)
	return nil
}
