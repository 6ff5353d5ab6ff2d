package sshgw

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestSplitCommand(t *testing.T) {
	for _, c := range []struct {
		in   string
		want []string
		err  string
	}{
		{"", nil, ""},
		{"power status", []string{"power", "status"}, ""},
		{"  tail\t-n   5 ", []string{"tail", "-n", "5"}, ""},
		{`grep 'kernel: panic'`, []string{"grep", "kernel: panic"}, ""},
		{`grep "a \"quoted\" \$x \n"`, []string{"grep", `a "quoted" $x \n`}, ""},
		{`grep a\ b\\c`, []string{"grep", `a b\c`}, ""},
		{`grep ''`, []string{"grep", ""}, ""},
		{`x'a'"b"c`, []string{"xabc"}, ""},
		{"grep 'oops", nil, "unterminated single quote"},
		{`grep "oops`, nil, "unterminated double quote"},
		{`grep oops\`, nil, "ends with a backslash"},
		{"power\x00status", nil, "control character 0x00"},
		{"grep '\x1b[31m'", nil, "control character 0x1b"},
		{strings.Repeat("a ", 65), nil, "more than 64 words"},
		{strings.Repeat("a", 5000), nil, "more than 4096"},
	} {
		got, err := SplitCommand(c.in)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) || !errors.Is(err, ErrUsage) {
				t.Errorf("SplitCommand(%.30q) = %q, %v; want error %q", c.in, got, err, c.err)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, c.want) {
			t.Errorf("SplitCommand(%q) = %q, %v; want %q", c.in, got, err, c.want)
		}
	}
}

func TestParseRequest(t *testing.T) {
	for _, c := range []struct {
		in   string
		want Request
		err  string
	}{
		{"power cycle", Request{Cmd: "power", Action: "cycle"}, ""},
		{"power status --json", Request{Cmd: "power", Action: "status", JSON: true}, ""},
		{"power", Request{}, "want one action of status on off cycle"},
		{"power cycle now", Request{}, "want one action"},
		{"power fry", Request{}, `unknown action "fry"`},
		{"tail", Request{Cmd: "tail", Lines: 20}, ""},
		{"tail -n 5", Request{Cmd: "tail", Lines: 5}, ""},
		{"tail -n=7", Request{Cmd: "tail", Lines: 7}, ""},
		{"tail --lines 0", Request{Cmd: "tail", Lines: 0}, ""},
		{"tail -n", Request{}, "flag -n needs a value"},
		{"tail -n -3", Request{}, `-n "-3" is not a number`},
		{"tail -n 1000001", Request{}, "is not a number from 0 to 100000"},
		{"tail extra", Request{}, `unexpected argument "extra"`},
		{"log --since 1h --until=10m --boot -1 --plain", Request{Cmd: "log", Query: LogQuery{Since: "1h", Until: "10m", Boot: "-1", Plain: true}}, ""},
		{"log --raw --plain", Request{}, "exclude each other"},
		{"log --boot last", Request{}, `--boot "last" is not a number`},
		{"log --json", Request{}, `unknown flag "--json"`},
		{"log --list-boots", Request{Cmd: "log", Query: LogQuery{ListBoots: true}}, ""},
		{"log --list-boots --boot -1", Request{}, "--list-boots takes no other flag"},
		{"log --since 1h --list-boots", Request{}, "--list-boots takes no other flag"},
		{"tail -n5", Request{Cmd: "tail", Lines: 5}, ""},
		{"tail -nx", Request{}, `-n "x" is not a number`},
		{"tail -x5", Request{}, `unknown flag "-x5"`},
		{"log --boot-1", Request{}, `unknown flag "--boot-1"`},
		{"grep panic --since 2d", Request{Cmd: "grep", Pattern: "panic", Query: LogQuery{Since: "2d"}}, ""},
		{"grep -- -x", Request{Cmd: "grep", Pattern: "-x"}, ""},
		{"grep", Request{}, "want one PATTERN"},
		{"who --json", Request{Cmd: "who", JSON: true}, ""},
		{"info", Request{Cmd: "info"}, ""},
		{"info --json=yes", Request{}, "takes no value"},
		{"screen", Request{Cmd: "screen"}, ""},
		{"spy", Request{Cmd: "spy"}, ""},
		{"force", Request{Cmd: "force"}, ""},
		{"break", Request{Cmd: "break"}, ""},
		{"help", Request{Cmd: "help"}, ""},
		{"list --json", Request{Cmd: "list", JSON: true}, ""},
		{"rm -rf /", Request{}, `unknown command "rm"`},
	} {
		words, err := SplitCommand(c.in)
		if err != nil {
			t.Fatal(err)
		}
		got, err := ParseRequest(words)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) || !errors.Is(err, ErrUsage) {
				t.Errorf("ParseRequest(%q) = %+v, %v; want error %q", c.in, got, err, c.err)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, c.want) {
			t.Errorf("ParseRequest(%q) = %+v, %v; want %+v", c.in, got, err, c.want)
		}
	}
}

// FuzzCommand: any command line never panics; what splits re-quotes to a
// line that splits the same; what parses re-encodes to words that parse
// to the same request.
func FuzzCommand(f *testing.F) {
	for _, s := range []string{"power status", "tail -n 5", `grep 'a b' --since=1h`, `log --boot -1 --raw`, "log --list-boots", "tail -n5",
		`x"a\"b"'c'\ d`, "who --json", "grep -- --", "", "'", `"\`, "power\tcycle"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		words, err := SplitCommand(line)
		if err != nil {
			if !errors.Is(err, ErrUsage) {
				t.Fatalf("error %v does not wrap ErrUsage", err)
			}
			return
		}
		again, err := SplitCommand(QuoteCommand(words))
		if err != nil || !reflect.DeepEqual(again, words) && !(len(again) == 0 && len(words) == 0) {
			t.Fatalf("words %q quoted as %q split to %q, %v", words, QuoteCommand(words), again, err)
		}
		req, err := ParseRequest(words)
		if err != nil {
			if !errors.Is(err, ErrUsage) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("bad error %q", err)
			}
			return
		}
		req2, err := ParseRequest(req.Words())
		if err != nil || !reflect.DeepEqual(req, req2) {
			t.Fatalf("request %+v re-encoded as %q parsed to %+v, %v", req, req.Words(), req2, err)
		}
	})
}

// A client's command line and user name may be as long as an SSH packet;
// the daemon log keeps their first 256 bytes and says how long they were.
func TestLogShort(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"power status", "power status"},
		{strings.Repeat("x", 256), strings.Repeat("x", 256)},
		{strings.Repeat("x", 5000), strings.Repeat("x", 256) + "... (5000 bytes)"},
		// Not cut inside a UTF-8 sequence: 255 bytes, then a 2-byte rune.
		{strings.Repeat("x", 255) + "é" + "tail", strings.Repeat("x", 255) + "... (261 bytes)"},
	} {
		if got := logShort(tc.in); got != tc.want {
			t.Errorf("logShort(%d bytes) = %q, want %q", len(tc.in), got, tc.want)
		}
	}
}
