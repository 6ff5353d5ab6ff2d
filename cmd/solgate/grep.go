package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"regexp"
	"runtime"
	"sync"
	"time"

	"github.com/solgate/solgate/conserver/hostlist"
	"github.com/solgate/solgate/logstore"
)

func init() {
	register(command{name: "grep", summary: "search archived console logs: grep PATTERN [HOSTS] --since/--until", run: runGrep})
}

const grepUsage = `Usage: solgate grep PATTERN [HOSTS] [--since T] [--until T] [-i] [-q] [-s]
                    [--log-dir DIR | -c FILE]

Searches the logs of the consoles in HOSTS (a hostlist such as
node[001-128],login1; default: every console with a log) for lines matching
PATTERN, a Go regular expression (RE2 syntax, as in grep -E), and prints each
as "CONSOLE TIME LINE". Lines are matched and printed as plain text: escape
sequences stripped, CR and backspace applied. Events match as "kind text"
and print as "CONSOLE TIME ! kind text". A console's lines come in order;
consoles are searched in parallel, so their blocks of lines may interleave.

Times (T) are RFC 3339, a local date and time ("2026-11-20 10:00") or an age
(30m, 1h, 2d); --since includes T, --until excludes it. Only the parts of
the logs in that range are decompressed.

The logs are found in --log-dir, else in log_dir of the config file (-c,
default /etc/solgate/solgate.toml), else in /var/log/solgate.

Exit status (as grep): 0 if a line matched, 1 if none did, 2 on an error
(bad usage, a missing or damaged log: a segment cut short or unreadable is
named on stderr, and every intact line is still searched), even if lines
matched. Files in a console's folder that are not segments are named on
stderr and ignored.

Examples:
  solgate grep 'Kernel panic' --since 1d
  solgate grep -i 'mce|machine check' 'node[001-128]' --since "2026-11-20 00:00"
  solgate grep 'Out of memory' node42 --since 2d --until 1d
  solgate grep -q 'login:' node42 && echo "node42 reached a login prompt"`

func runGrep(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("grep", grepUsage, stderr)
	var lf logFlags
	lf.register(fs)
	icase := fs.Bool("i", false, "ignore case")
	quiet := fs.Bool("q", false, "print nothing; exit 0 at the first match")
	silent := fs.Bool("s", false, "do not report consoles in HOSTS that have no log")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return usageErr(err)
	}
	if len(pos) < 1 || len(pos) > 2 {
		fs.Usage()
		return &exitError{code: 2, msg: "grep: want PATTERN and at most one HOSTS argument"}
	}
	pat := pos[0]
	if *icase {
		pat = "(?i)" + pat
	}
	re, err := regexp.Compile(pat)
	if err != nil {
		return &exitError{code: 2, msg: "grep: " + err.Error()}
	}
	dir, q, err := lf.resolve(time.Now())
	if err != nil {
		return &exitError{code: 2, msg: "grep: " + err.Error()}
	}
	var warnMu sync.Mutex // consoles are searched in parallel
	s, err := openLogs(dir, func(err error) {
		warnMu.Lock()
		fmt.Fprintf(stderr, "solgate: grep: warning: %v\n", err)
		warnMu.Unlock()
	})
	if err != nil {
		return &exitError{code: 2, msg: "grep: " + err.Error()}
	}
	defer s.Close()
	var consoles []string
	if len(pos) == 2 {
		if consoles, err = hostlist.Expand(pos[1]); err != nil {
			return &exitError{code: 2, msg: "grep: " + err.Error()}
		}
		for _, c := range consoles {
			if err := logstore.CheckConsoleName(c); err != nil {
				return &exitError{code: 2, msg: "grep: " + err.Error()}
			}
		}
	} else if consoles, err = s.Consoles(); err != nil {
		return &exitError{code: 2, msg: "grep: " + err.Error()}
	}

	g := &grepRun{s: s, re: re, q: q, quiet: *quiet, silent: *silent, stdout: stdout, stderr: stderr, errMu: &warnMu}
	g.run(ctx, consoles)
	switch {
	case g.failed && !(g.matched && *quiet):
		return &exitError{code: 2}
	case g.matched:
		return nil
	}
	return &exitError{code: 1}
}

// grepRun searches several consoles in parallel and serialises output.
type grepRun struct {
	s              *logstore.Store
	re             *regexp.Regexp
	q              logstore.Query
	quiet, silent  bool
	stdout, stderr io.Writer

	errMu   *sync.Mutex // guards stderr, shared with the store's warnings
	mu      sync.Mutex  // guards the fields below and stdout
	matched bool
	failed  bool
	cancel  context.CancelFunc
}

func (g *grepRun) run(ctx context.Context, consoles []string) {
	ctx, g.cancel = context.WithCancel(ctx)
	defer g.cancel()
	// Each console's search is itself parallel over its chunks; a few
	// consoles at a time keep both cores busy for many small logs.
	par := max(2, runtime.GOMAXPROCS(0))
	workers := 1
	if len(consoles) < par {
		workers = runtime.GOMAXPROCS(0)
	}
	sem := make(chan struct{}, par)
	var wg sync.WaitGroup
	for _, c := range consoles {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			g.console(ctx, c, workers)
		}()
	}
	wg.Wait()
}

// console searches one console, writing its output in blocks.
func (g *grepRun) console(ctx context.Context, name string, workers int) {
	var buf []byte
	flush := func() {
		if len(buf) == 0 {
			return
		}
		g.mu.Lock()
		g.stdout.Write(buf)
		g.mu.Unlock()
		buf = buf[:0]
	}
	found := false
	err := g.s.Grep(ctx, name, g.re, g.q, func(m logstore.Match) error {
		if !found {
			found = true
			g.mu.Lock()
			g.matched = true
			g.mu.Unlock()
		}
		if g.quiet {
			g.cancel()
			return context.Canceled
		}
		buf = append(buf, name...)
		buf = append(buf, ' ')
		buf = append(buf, logstore.FormatTime(m.Time)...)
		buf = append(buf, ' ')
		if m.Event != "" {
			buf = append(buf, "! "...)
			buf = append(buf, m.Event...)
			buf = append(buf, ' ')
		}
		buf = append(buf, bytes.ReplaceAll(m.Text, []byte("\n"), []byte(`\n`))...)
		buf = append(buf, '\n')
		if len(buf) >= 64<<10 {
			flush()
		}
		return nil
	}, logstore.GrepOptions{Workers: workers})
	flush()
	if err == nil || errors.Is(err, context.Canceled) {
		return
	}
	if errors.Is(err, logstore.ErrNoSuchLog) {
		if g.silent {
			return
		}
		err = fmt.Errorf("no log for console %s in %s", name, g.s.Dir())
	}
	g.mu.Lock()
	g.failed = true
	g.mu.Unlock()
	g.errMu.Lock()
	fmt.Fprintf(g.stderr, "solgate: grep: %v\n", err)
	g.errMu.Unlock()
}
