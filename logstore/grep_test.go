package logstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestAppendPlain(t *testing.T) {
	tests := []struct{ in, want string }{
		{"plain line\r\n", "plain line"},
		{"lf only\n", "lf only"},
		{"\x1b[0;32m  OK  \x1b[0m] Started\r\n", "  OK  ] Started"},
		{"progress 10%\rprogress 20%\rprogress 30%\r\n", "progress 30%"},
		{"abcdef\rxy\r\n", "xycdef"},
		{"ab\b\bXY", "XY"},
		{"Grüße\b\bxx", "Grüxx"},
		{"a\x00b\x07c", "abc"},
		{"\x1b]0;title\x07prompt$ ", "prompt$ "},
		{"tab\there", "tab\there"},
	}
	for _, tt := range tests {
		if got := string(AppendPlain(nil, []byte(tt.in))); got != tt.want {
			t.Errorf("AppendPlain(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestPrefilter(t *testing.T) {
	tests := []struct {
		re   string
		want string // literals joined by |, (?i) when folded, ! when non-ASCII lines count
	}{
		{`panic`, "panic"},
		{`Kernel panic - not syncing`, "Kernel panic - not syncing"},
		{`^\[\s*[0-9.]+\] Out of memory: Killed`, "] Out of memory: Killed"},
		{`(?i)panic`, "(?i)panic"},
		{`(?i)Kernel PANIC`, "(?i)!kernel panic"},
		{`panic|oops`, "panic|oops"},
		{`error|errno`, "err"},
		{`(?i)mce|Machine check`, "(?i)!ce|achine check"}, // the parser factors out the m
		{`a*`, ""},
		{`(err)+or`, "err"},
		{`x{2,}yz`, "yz"},
		{`.`, ""},
		{`panic|.`, ""},
		{`node[0-9]+ down`, " down"},
		{`(?i)grüße`, ""},
	}
	for _, tt := range tests {
		pf := buildPrefilter(regexp.MustCompile(tt.re))
		var ls []string
		for _, l := range pf.lits {
			ls = append(ls, string(l))
		}
		got := strings.Join(ls, "|")
		if pf.nonASCII {
			got = "!" + got
		}
		if pf.fold {
			got = "(?i)" + got
		}
		if got != tt.want {
			t.Errorf("buildPrefilter(%q) = %q, want %q", tt.re, got, tt.want)
		}
	}
}

// naiveGrep is what Grep must return: Lines, made plain, matched one by one.
func naiveGrep(t *testing.T, s *Store, console string, re *regexp.Regexp, q Query) []string {
	var out []string
	for l, err := range s.Lines(context.Background(), console, q) {
		if err != nil {
			t.Fatal(err)
		}
		text := AppendPlain(nil, l.Text)
		if l.Event != "" {
			text = append([]byte(string(l.Event)+" "), text...)
		}
		if re.Match(text) {
			if l.Event != "" {
				text = text[len(l.Event)+1:]
			}
			out = append(out, fmt.Sprintf("%s %s %s", FormatTime(l.Time), l.Event, text))
		}
	}
	return out
}

func TestGrep(t *testing.T) {
	clk := newClock()
	s := openTest(t, "", Options{Now: clk.Now, SegmentAge: 20 * time.Minute, SealFrameBytes: 3000, FrameBytes: 1500})
	w := mustWriter(t, s, "n")
	rng := rand.New(rand.NewPCG(3, 4))
	words := []string{"boot", "panic", "PANIC", "Kernel panic - not syncing", "FA\x1b[0mILED", "ok", "oops", "\x1b[1mbold\x1b[0m",
		"\u212Aernel panic", "ſtarted", "Grüße"}
	for i := range 3000 {
		line := fmt.Sprintf("[%d] %s %s", i, words[rng.IntN(len(words))], words[rng.IntN(len(words))])
		switch rng.IntN(10) {
		case 0: // a line that arrives in pieces across flushes
			w.Write([]byte(line[:len(line)/2]))
			w.Flush()
			w.Write([]byte(line[len(line)/2:] + "\r\n"))
		case 1:
			w.Event(EventPower, "cycle: panic button")
		case 2:
			w.Write([]byte("progress 1%\rprogress 99% panic\r\n"))
		default:
			w.Write([]byte(line + "\r\n"))
		}
		if rng.IntN(5) == 0 {
			w.Flush()
		}
		clk.Advance(time.Duration(rng.IntN(3000)) * time.Millisecond)
	}
	w.Write([]byte("final partial panic"))
	w.Flush()
	s.quiesce()
	if n := len(segmentsOf(t, s, "n")); n < 3 {
		t.Fatalf("only %d segments", n)
	}
	patterns := []string{`panic`, `Kernel panic`, `(?i)panic`, `FAILED`, `^\[\d+\] ok`, `bold$`, `99% panic$`, `cycle`, `.`, `nomatch`, `^progress 1%`,
		`(?i)kernel panic`, `(?i)started|GRÜSSE`, `panic|oops`, `(?i)PANIC|boot`}
	ranges := []Query{{}, {Since: t0.Add(30 * time.Minute), Until: t0.Add(50 * time.Minute)}}
	for _, pat := range patterns {
		re := regexp.MustCompile(pat)
		for qi, q := range ranges {
			want := naiveGrep(t, s, "n", re, q)
			for _, workers := range []int{1, 3} {
				var got []string
				err := s.Grep(context.Background(), "n", re, q, func(m Match) error {
					got = append(got, fmt.Sprintf("%s %s %s", FormatTime(m.Time), m.Event, m.Text))
					return nil
				}, GrepOptions{Workers: workers})
				if err != nil {
					t.Fatal(err)
				}
				if strings.Join(got, "\n") != strings.Join(want, "\n") {
					t.Fatalf("%q range %d workers %d: %d matches, naive %d\n got %q\nwant %q", pat, qi, workers, len(got), len(want), head(got), head(want))
				}
				if pat == "nomatch" && len(got) != 0 || pat == "." && qi == 0 && len(got) < 3000 {
					t.Fatalf("%q: %d matches", pat, len(got))
				}
			}
		}
	}
	// fn's error stops the search.
	stop := errors.New("enough")
	n := 0
	err := s.Grep(context.Background(), "n", regexp.MustCompile(`.`), Query{}, func(Match) error {
		n++
		if n == 5 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || n != 5 {
		t.Fatalf("Grep = %v after %d matches", err, n)
	}
	if err := s.Grep(context.Background(), "nobody", regexp.MustCompile(`x`), Query{}, func(Match) error { return nil }); !errors.Is(err, ErrNoSuchLog) {
		t.Fatalf("Grep of a missing console = %v", err)
	}
}

func head(s []string) []string { return s[:min(len(s), 5)] }

func TestGrepReportsDamage(t *testing.T) {
	s := openTest(t, "", Options{Now: newClock().Now})
	w := mustWriter(t, s, "n")
	for i := range 20 {
		fmt.Fprintf(w, "line %d\r\n", i)
		w.Flush()
	}
	w.Close()
	segs := segmentsOf(t, s, "n")
	b, _ := os.ReadFile(segs[0].path)
	b[len(b)/2] ^= 0xff
	os.WriteFile(segs[0].path, b, 0o640)
	var got int
	err := s.Grep(context.Background(), "n", regexp.MustCompile(`line`), Query{}, func(Match) error { got++; return nil })
	var ce *CorruptError
	if !errors.As(err, &ce) || got < 15 {
		t.Fatalf("Grep over damage: %d matches, err %v", got, err)
	}
}

func TestLowerASCII(t *testing.T) {
	var in []byte
	for c := range 256 {
		in = append(in, byte(c), 'A', byte(c), 'z', byte(c), 'Z', '@', '[')
	}
	var na []int
	got := lowerASCII(nil, in, true, &na)
	var wantNA []int
	for i, c := range in {
		w := c
		if c >= 'A' && c <= 'Z' {
			w = c + 32
		}
		if got[i] != w {
			t.Fatalf("byte %d: %q lowered to %q, want %q", i, c, got[i], w)
		}
		if c >= 0x80 {
			wantNA = append(wantNA, i)
		}
	}
	if fmt.Sprint(na) != fmt.Sprint(wantNA) {
		t.Fatalf("non-ASCII positions differ")
	}
}

func BenchmarkLowerASCII(b *testing.B) {
	in := benchText(1<<20, 5)
	var out []byte
	b.SetBytes(int64(len(in)))
	for b.Loop() {
		out = lowerASCII(out, in, true, new([]int))
	}
}

// FuzzPlain checks that the plain view of any line holds no escape
// sequence and no control byte but TAB, and is stable.
func FuzzPlain(f *testing.F) {
	f.Add([]byte("\x1b[0;32m  OK  \x1b[0m] Started\r\n"))
	f.Add([]byte("abc\rxy\b\bZ\x00\x1b]0;t\x07 end\n"))
	f.Add([]byte("\xff\u212a\b\r\r"))
	f.Fuzz(func(t *testing.T, line []byte) {
		p := AppendPlain(nil, line)
		for i, c := range p {
			if c < 0x20 && c != '\t' || c == 0x7f {
				t.Fatalf("plain %q has control byte %#x at %d", p, c, i)
			}
		}
		if again := AppendPlain(nil, p); !bytes.Equal(again, p) {
			t.Fatalf("not stable: %q -> %q -> %q", line, p, again)
		}
	})
}

// TestGrepLongLine: a line longer than grepLineBytes (a console that
// printed for long without a line feed) is searched whole as Grep reads
// it, holding only its last grepLineBytes: a match in its beginning, its
// end, or across where Grep cut it is reported once, with the line's end.
func TestGrepLongLine(t *testing.T) {
	clk := newClock()
	s := openTest(t, "", Options{Now: clk.Now, FrameBytes: 64 << 10, IndexInterval: time.Second})
	w := mustWriter(t, s, "n")
	// No CR in it: Grep matches what a terminal shows, and text a CR
	// returns over is overwritten.
	fill := bytes.Repeat([]byte(" 42% copied."), (3*grepLineBytes)/12)
	write := func(parts ...[]byte) {
		for _, p := range parts {
			for i := 0; i < len(p); i += 4 << 10 {
				w.Write(p[i:min(i+4<<10, len(p))])
				if i%(32<<10) == 0 {
					w.Flush()
					clk.Advance(2 * time.Second) // an index entry per flush: many chunks for Grep
				}
			}
		}
		w.Write([]byte("\r\n"))
	}
	write([]byte("EARLY-NEEDLE"), fill)
	write([]byte("short line\r\n"))
	write(fill, []byte("LATE-NEEDLE"))
	w.Flush() // the live segment: one chunk per frame, so the long lines span many
	for _, tc := range []struct {
		pat  string
		want int
	}{{`EARLY-NEEDLE`, 1}, {`LATE-NEEDLE`, 1}, {`NEEDLE`, 2}, {`short`, 1}, {`copied`, 2}, {`ied. 42`, 2}, {`nowhere`, 0}} {
		var got []Match
		err := s.Grep(context.Background(), "n", regexp.MustCompile(tc.pat), Query{}, func(m Match) error {
			got = append(got, Match{Time: m.Time, Text: bytes.Clone(m.Text)})
			return nil
		}, GrepOptions{Workers: 2})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != tc.want {
			t.Errorf("%q: %d matches, want %d", tc.pat, len(got), tc.want)
		}
		for _, m := range got {
			if len(m.Text) > 2*grepLineBytes {
				t.Errorf("%q: a match of %d bytes, want a long line's end (at most %d)", tc.pat, len(m.Text), 2*grepLineBytes)
			}
		}
	}
}
