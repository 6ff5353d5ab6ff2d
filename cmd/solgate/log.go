package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"time"

	"github.com/solgate/solgate/conserver"
	"github.com/solgate/solgate/conserver/config"
	"github.com/solgate/solgate/logstore"
)

func init() {
	register(command{name: "log", summary: "print a console's archived output (--follow, time ranges, --raw, --plain)", run: runLog})
}

const logUsage = `Usage: solgate log HOST [--since T] [--until T] [-n N] [--follow] [--raw|--plain]
                   [--boot N | --list-boots] [--log-dir DIR | -c FILE]

Prints what console HOST printed, from the log store, oldest first: one line
per console line, prefixed with its UTC time (when its first byte arrived),
and events (attach, detach, power, reconnect, stolen, gap) as "! kind text".
Escape sequences are passed to the terminal as they came, so colours show;
--plain strips them (and applies CR and backspace as a terminal would), and
--raw prints exactly the bytes the console sent, without times or events.

Times (T) are RFC 3339 (2026-11-20T10:00:00Z), a local date and time
("2026-11-20 10:00", "2026-11-20", "10:00" for today), or an age: 30m, 1h,
2d, 1w, 1h30m. --since includes T, --until excludes it.

Boots: solgate serve marks where each boot starts ("! boot" events: at a
power cycle, reset or power on it performed, and at firmware and kernel
banners in the output). --list-boots lists them, with start, end and how
each started; --boot N prints one, as journalctl -b does: 0 is the current
boot, -1 the one before, 1 the first in the log.

The logs are found in --log-dir, else in log_dir of the config file (-c,
default /etc/solgate/solgate.toml), else in /var/log/solgate.

Exit status: 0 on success, 1 if the log is missing or damaged (what is
intact is still printed, and what is damaged is named on stderr: a segment
cut short, one that cannot be read), 2 on bad usage. Files in the console's
folder that are not segments are named on stderr and ignored.

Examples:
  solgate log node42 --since 1h
  solgate log node42 -n 50 -f                   # like tail -n 50 -f
  solgate log node42 --since "2026-11-20 10:00" --until "2026-11-20 11:00" --plain
  solgate log node42 --since 2d --raw > node42.typescript
  solgate log node42 --boot -1                  # the boot before this one
  solgate log node42 --list-boots
  solgate log --log-dir /srv/consoles node42`

// logFlags are the flags log and grep share.
type logFlags struct {
	logDir, config string
	since, until   timeFlag
}

// timeFlag is a time flag's text, and whether it was given at all: an
// empty --since is a mistake, not "from the beginning".
type timeFlag struct {
	s   string
	set bool
}

func (t *timeFlag) String() string     { return t.s }
func (t *timeFlag) Set(s string) error { t.s, t.set = s, true; return nil }

func (t *timeFlag) parse(now time.Time) (time.Time, error) {
	if t.set && strings.TrimSpace(t.s) == "" {
		return time.Time{}, errors.New("empty time: give one (RFC 3339, \"2026-11-20 10:00\", an age such as 1h), or leave the flag out")
	}
	return parseWhen(t.s, now)
}

func (f *logFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.logDir, "log-dir", "", "log `DIR` (default: log_dir of the config file)")
	fs.StringVar(&f.config, "c", "", "config `FILE` to take log_dir from (default "+config.DefaultPath+")")
	fs.StringVar(&f.config, "config", "", "same as -c")
	fs.Var(&f.since, "since", "start at time `T` (RFC 3339, \"2026-11-20 10:00\", or an age such as 1h, 2d)")
	fs.Var(&f.until, "until", "stop before time `T`")
}

// defaultLogDir is used without --log-dir and without a config file.
const defaultLogDir = "/var/log/solgate"

// resolve returns the log directory and the time range.
func (f *logFlags) resolve(now time.Time) (dir string, q logstore.Query, err error) {
	if q.Since, err = f.since.parse(now); err != nil {
		return "", q, fmt.Errorf("--since: %w", err)
	}
	if q.Until, err = f.until.parse(now); err != nil {
		return "", q, fmt.Errorf("--until: %w", err)
	}
	if !q.Since.IsZero() && !q.Until.IsZero() && !q.Until.After(q.Since) {
		return "", q, fmt.Errorf("--until %s is not after --since %s", logstore.FormatTime(q.Until), logstore.FormatTime(q.Since))
	}
	dir, err = f.dir()
	return dir, q, err
}

func (f *logFlags) dir() (string, error) {
	if f.logDir != "" {
		if f.config != "" {
			return "", errors.New("use --log-dir or -c, not both")
		}
		return f.logDir, nil
	}
	path := f.config
	if path == "" {
		path = config.DefaultPath
		if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
			return defaultLogDir, nil
		}
	}
	cfg, err := config.LoadWith(path, config.Options{SkipSecrets: true})
	if err != nil {
		return "", fmt.Errorf("config %s: %w", path, err)
	}
	if cfg.Server.LogDir == "" {
		return defaultLogDir, nil
	}
	return cfg.Server.LogDir, nil
}

// parseWhen parses a time given on the command line; "" is the zero time.
func parseWhen(s string, now time.Time) (time.Time, error) {
	s = strings.TrimSpace(s)
	switch s {
	case "":
		return time.Time{}, nil
	case "now":
		return now, nil
	}
	if d, ok := parseAge(s); ok {
		return now.Add(-d), nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	for _, layout := range []string{"2006-01-02 15:04:05", "2006-01-02 15:04", "2006-01-02T15:04:05", "2006-01-02T15:04", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, s, time.Local); err == nil {
			return t, nil
		}
	}
	for _, layout := range []string{"15:04:05", "15:04"} {
		if t, err := time.ParseInLocation(layout, s, time.Local); err == nil {
			y, m, d := now.In(time.Local).Date()
			return time.Date(y, m, d, t.Hour(), t.Minute(), t.Second(), 0, time.Local), nil
		}
	}
	return time.Time{}, fmt.Errorf("bad time %q: want RFC 3339 (2026-11-20T10:00:00Z), a local time (\"2026-11-20 10:00\", \"10:00\") or an age (30m, 1h, 2d, 1w)", s)
}

// parseAge parses ages such as 90s, 30m, 1h30m, 2d, 1w.
func parseAge(s string) (time.Duration, bool) {
	d, err := config.ParseDuration(s)
	return d, err == nil && d > 0
}

// openLogs opens a log directory for reading; warn receives, once per
// file, what is in a console's folder but is not a segment.
func openLogs(dir string, warn func(error)) (*logstore.Store, error) {
	s, err := logstore.Open(dir, logstore.Options{ReadOnly: true, Warn: warn})
	if err != nil {
		return nil, fmt.Errorf("log directory: %w", err)
	}
	return s, nil
}

func runLog(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("log", logUsage, stderr)
	var lf logFlags
	lf.register(fs)
	follow := fs.Bool("follow", false, "keep printing new output as it is written, across rotations")
	fs.BoolVar(follow, "f", false, "same as --follow")
	raw := fs.Bool("raw", false, "print the exact bytes the console sent (no times, no events)")
	plain := fs.Bool("plain", false, "strip terminal escape sequences")
	last := fs.Int("n", 0, "print only the last `N` lines (of the range); with --follow the default is 10")
	boot := fs.Int("boot", 0, "print boot `N` only: 0 the current, -1 the previous, 1 the first in the log")
	listBoots := fs.Bool("list-boots", false, "list the boots in the log: start, end and how each started")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return usageErr(err)
	}
	if len(pos) != 1 {
		fs.Usage()
		return &exitError{code: 2, msg: "log: want exactly one HOST"}
	}
	host := pos[0]
	if err := logstore.CheckConsoleName(host); err != nil {
		return &exitError{code: 2, msg: "log: " + err.Error()}
	}
	if *raw && *plain {
		return &exitError{code: 2, msg: "log: --raw and --plain exclude each other"}
	}
	if *last < 0 {
		return &exitError{code: 2, msg: "log: -n must not be negative"}
	}
	dir, q, err := lf.resolve(time.Now())
	if err != nil {
		return &exitError{code: 2, msg: "log: " + err.Error()}
	}
	if *follow {
		if !q.Until.IsZero() {
			return &exitError{code: 2, msg: "log: --follow and --until exclude each other"}
		}
		q.Follow = true
		if *last == 0 && q.Since.IsZero() {
			*last = 10
		}
	}
	q.Last = *last
	out := bufio.NewWriterSize(stdout, 64<<10)
	defer out.Flush()
	s, err := openLogs(dir, func(err error) {
		out.Flush() // the reader's goroutine: the one writing out
		fmt.Fprintf(stderr, "solgate: log: warning: %v\n", err)
	})
	if err != nil {
		return &exitError{code: 1, msg: "log: " + err.Error()}
	}
	defer s.Close()
	if set := setFlags(fs); set["boot"] || *listBoots {
		if set["boot"] && *listBoots {
			return &exitError{code: 2, msg: "log: --boot and --list-boots exclude each other"}
		}
		if q.Follow && *boot != 0 {
			return &exitError{code: 2, msg: "log: --follow goes with the current boot only (--boot 0)"}
		}
		boots, err := s.Boots(ctx, host, conserver.BootOptions)
		if errors.Is(err, logstore.ErrNoSuchLog) {
			return &exitError{code: 1, msg: fmt.Sprintf("log: no log for console %s in %s", host, dir)}
		} else if err != nil {
			return &exitError{code: 1, msg: "log: " + err.Error()}
		}
		if *listBoots {
			return listBootsTo(stdout, boots)
		}
		b, err := logstore.BootAt(boots, *boot)
		if err != nil {
			return &exitError{code: 1, msg: fmt.Sprintf("log: %s: no boot %d (the log holds %d; see --list-boots)", host, *boot, len(boots))}
		}
		if q.Since.IsZero() || q.Since.Before(b.Start) {
			q.Since = b.Start
		}
		if !b.End.IsZero() && (q.Until.IsZero() || b.End.Before(q.Until)) {
			q.Until = b.End
		}
	}

	damaged := false
	report := func(err error) error {
		if errors.Is(err, logstore.ErrNoSuchLog) {
			return &exitError{code: 1, msg: fmt.Sprintf("log: no log for console %s in %s", host, dir)}
		}
		var ce *logstore.CorruptError
		if errors.As(err, &ce) {
			damaged = true
			out.Flush()
			if errors.Is(err, logstore.ErrTruncated) {
				fmt.Fprintf(stderr, "solgate: log: warning: %v\n", err)
			} else {
				fmt.Fprintf(stderr, "solgate: log: warning: %v (skipped)\n", err)
			}
			return nil
		}
		return &exitError{code: 1, msg: "log: " + err.Error()}
	}
	flushLine := func() error {
		if q.Follow {
			return out.Flush()
		}
		return nil
	}

	if *raw {
		// Records carry the exact bytes; Lines would regroup them.
		for rec, err := range s.Records(ctx, host, q) {
			if err != nil {
				if e := report(err); e != nil {
					return e
				}
				continue
			}
			if rec.Event == "" {
				out.Write(rec.Data)
				if err := flushLine(); err != nil {
					return nil // the reader went away
				}
			}
		}
	} else {
		var buf []byte
		for l, err := range s.Lines(ctx, host, q) {
			if err != nil {
				if e := report(err); e != nil {
					return e
				}
				continue
			}
			buf = appendLogLine(buf[:0], l, *plain)
			if _, err := out.Write(buf); err != nil {
				return nil
			}
			if err := flushLine(); err != nil {
				return nil
			}
		}
	}
	if err := out.Flush(); err != nil {
		return nil
	}
	if damaged {
		return &exitError{code: 1, msg: "log: the log is damaged; everything intact was printed"}
	}
	return nil
}

// appendLogLine formats a line for the text and plain views.
func appendLogLine(dst []byte, l logstore.Line, plain bool) []byte {
	dst = append(dst, logstore.FormatTime(l.Time)...)
	dst = append(dst, ' ')
	if l.Event != "" {
		dst = append(dst, "! "...)
		dst = append(dst, l.Event...)
		dst = append(dst, ' ')
		dst = logstore.AppendPlain(dst, l.Text)
		return append(dst, '\n')
	}
	if plain {
		dst = logstore.AppendPlain(dst, l.Text)
	} else {
		t := bytes.TrimSuffix(l.Text, []byte("\n"))
		dst = append(dst, bytes.TrimSuffix(t, []byte("\r"))...)
	}
	return append(dst, '\n')
}

// listBootsTo prints one line per boot, numbered as --boot takes them.
func listBootsTo(w io.Writer, boots []logstore.Boot) error {
	out := bufio.NewWriter(w)
	for i, b := range boots {
		end := "(current)"
		if !b.End.IsZero() {
			end = logstore.FormatTime(b.End)
		}
		how := b.How
		if how == "" {
			how = "(before the first recorded boot)"
		}
		fmt.Fprintf(out, "%4d  %s  %-24s  %s\n", i-len(boots)+1, logstore.FormatTime(b.Start), end, how)
	}
	return out.Flush()
}
