package migrate

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"slices"
	"strings"
	"testing"
)

// fuzzImport checks the properties both importers share, for any input:
// no panic; an error is an *Error naming the file and a line of the input;
// otherwise the output loads with config.Load, has one console per
// imported console, and is the same on a second run.
func fuzzImport(t *testing.T, name string, data []byte, imp func(string, []byte, Options) (*Result, error)) {
	opts := Options{ReadFile: func(p string) ([]byte, error) {
		if strings.HasSuffix(p, "/inc.cf") {
			return []byte("console inc { type ipmi; host inc-bmc; master localhost; }\n"), nil
		}
		return nil, fs.ErrNotExist
	}}
	r, err := imp(name, data, opts)
	if err != nil {
		var e *Error
		if !errors.As(err, &e) {
			t.Fatalf("error %v is not an *Error", err)
		}
		lines := bytes.Count(data, []byte("\n")) + 1
		if !strings.HasPrefix(err.Error(), name+":") || e.Line < 1 || e.Line > lines+1 {
			t.Fatalf("error %q does not name a line of %s (1-%d)", err, name, lines)
		}
		return
	}
	for _, w := range r.Warnings {
		if w.Line < 1 {
			t.Fatalf("warning without a line: %s", w)
		}
	}
	cfg, err := loadSkipSecrets(t, t.TempDir(), r)
	if err != nil {
		t.Fatalf("the import of accepted input does not load: %v\n%s", err, numbered(r.TOML()))
	}
	if len(cfg.Consoles) != len(r.Consoles) {
		t.Fatalf("%d consoles imported, %d loaded", len(r.Consoles), len(cfg.Consoles))
	}
	for _, c := range r.Consoles {
		lc, ok := cfg.Console(c.Name)
		if !ok || lc.BMC != c.BMC || lc.User != c.User {
			t.Fatalf("console %s (bmc %s, user %q) loads as %+v", c.Name, c.BMC, c.User, lc)
		}
	}
	r2, err := imp(name, data, opts)
	if err != nil || !bytes.Equal(r.TOML(), r2.TOML()) {
		t.Fatalf("a second import differs (%v)", err)
	}
}

func addFileSeed(f *testing.F, path string) {
	if data, err := os.ReadFile(path); err == nil {
		f.Add(data)
	}
}

func FuzzConserver(f *testing.F) {
	for _, ex := range debianExamples {
		if ex.format == "conserver" {
			addFileSeed(f, ex.path)
		}
	}
	text, _, _ := genConserver(12)
	f.Add([]byte(text))
	for _, s := range []string{
		"default * { master localhost; type ipmi; }\nconsole a { host a-bmc; ipmiworkaround intel-session,!default; ipmikg \"\\001x\"; }\n",
		"#include inc.cf\nconsole b { include x; }\n",
		"console \"q\\\"x\" { type ipmi; host [fd00::1]:623; master localhost; username \"\"; password p; }",
		"break 3 { string \"\\r~.\"; }\ntask x { cmd \"a b\"; }\ngroup g { users a, !b; }\naccess * { allowed 1.2.3.4; }\n",
		"console a\\\n b { type ipmi; host x; master localhost; logfilemax 4k; ipmiciphersuite 17; }",
		"console a { type ipmi; host x",
		"default s { type exec; exec \"ipmitool -I lanplus -H X -U a -P 'p w' -C 3 sol activate\"; execsubst X=h4s,Y=cs; }\nconsole n1 { include s; host n1-bmc; master localhost; }\n",
		"console b { type exec; exec \"exec ipmiconsole --hostname=b:623 -u r -pP -W intel20 -k 0x6b\"; master localhost; }\n",
		"console c { type exec; exec \"ipmitool -I lan -H fd00::1 -p 6230 -f /etc/pw -L user sol activate instance=1\"; master localhost; }\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzImport(t, "fuzz.cf", data, Conserver)
	})
}

func FuzzConMan(f *testing.F) {
	for _, ex := range debianExamples {
		if ex.format == "conman" {
			addFileSeed(f, ex.path)
		}
	}
	text, _, _ := genConMan(12)
	f.Add([]byte(text))
	for _, s := range []string{
		"console name=\"a\" dev=\"ipmi:%N-bmc\" ipmiopts=\"U:x,P:0x41,K:k,C:3,L:op,W:solport,W:0x08000000\"\n",
		"global ipmiopts=\"u,p,-,intel20\"\nconsole name='b' dev='ipmi:b'\n",
		"server logdir=\"/l\" loopback=on timestamp=1h\nglobal log=\"%N\" logopts=\"timestamp\"\nconsole name=\"c\" \\\n dev=\"ipmi:10.0.0.1:623\" log=\"x\"\n",
		"console name=\"d\" dev=\"/usr/lib/conman/exec/ipmitool.exp d-bmc root pw kg\"\n",
		"console name=\"e\" dev=\"ts:23\"\nconsole name=\"e\" dev=\"ipmi:e\"\n",
		"console name=\"f\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzImport(t, "fuzz.conf", data, ConMan)
	})
}

// FuzzShellSplit: no panic, and for a command shellSplit accepts, the
// words quoted again and joined split back into the same words.
func FuzzShellSplit(f *testing.F) {
	for _, s := range []string{
		"ipmitool -I lanplus -H h -P 'se cret' sol activate",
		`a "b\"c\\d\$" 'e'\''f' g\ h ''`,
		"a\\\nb \"c\\\nd\"",
		"a | b", "x=1 y", "'unterminated",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		words, err := shellSplit(s)
		if err != nil {
			return
		}
		q := make([]string, len(words))
		for i, w := range words {
			q[i] = shellQuote(w)
		}
		again, err := shellSplit(strings.Join(q, " "))
		if err != nil || !slices.Equal(again, words) {
			t.Fatalf("%q splits into %q; quoted again, into %q (%v)", s, words, again, err)
		}
	})
}
