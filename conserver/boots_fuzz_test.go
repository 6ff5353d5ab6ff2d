package conserver

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/solgate/solgate/conserver/config"
)

// FuzzBootScan: the boot detector, fed any output in any chunks, finds the
// same boots at the same places as the plain line-by-line scan it
// replaced (scanLines without skipping), which copies and tests every
// line: the skipping of lines before the first pattern occurrence must
// not change a result. And a pattern's rarest-byte search finds what
// bytes.Index finds, from every line start.
func FuzzBootScan(f *testing.F) {
	f.Add([]byte("noise\r\n[    0.000000] Linux version 6.1\r\nlogin: "), []byte{3, 9, 200})
	f.Add([]byte("\rLinux version 6\r\nsaid Linux version 6\nAmerican Megatrends\n"), []byte{1})
	f.Add(append(bytes.Repeat([]byte("x"), 500), []byte("to enter setup\nto enter setup")...), []byte{255, 7})
	f.Add([]byte("xab\nab\n"), []byte{})
	f.Add([]byte("American MegatrendsAmerican Megatrends\n\n\nLinux version "), []byte{0, 1, 2})
	bp := fuzzBootPatterns(f)
	f.Fuzz(func(t *testing.T, out, cuts []byte) { checkBootScan(t, bp, out, cuts) })
}

// TestBootScanRandom is FuzzBootScan over texts made of the patterns,
// pieces of them, newlines and CRs, which the fuzzer seldom builds.
func TestBootScanRandom(t *testing.T) {
	t.Parallel()
	bp := fuzzBootPatterns(t)
	tokens := []string{"American Megatrends", "American", "A", "L", "S", " Megatrends", "to enter setup", "ab", "a", "b", "] Linux version ", "Linux version ", "\n", "\r", "\r\n", "x", "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", strings.Repeat("y", 300)}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 3000 {
		var out []byte
		for range rng.IntN(40) {
			out = append(out, tokens[rng.IntN(len(tokens))]...)
		}
		cuts := make([]byte, 1+rng.IntN(4))
		for i := range cuts {
			cuts[i] = byte(rng.IntN(256))
		}
		checkBootScan(t, bp, out, cuts)
		if t.Failed() {
			return
		}
	}
}

func fuzzBootPatterns(t testing.TB) *bootPatterns {
	d := config.Daemon{BootFirmware: []string{"American Megatrends", "to enter setup", "ab"}, BootKernel: []string{"] Linux version ", "^Linux version ", "^\nx"}}
	bp, err := compileBoots(&d)
	if err != nil {
		t.Fatal(err)
	}
	return bp
}

// checkBootScan feeds out to the detector in chunks of the sizes cuts
// gives (cycled; none: one chunk) and compares each step with the
// line-by-line scan's, after comparing each pattern's search with
// bytes.Index.
func checkBootScan(t *testing.T, bp *bootPatterns, out, cuts []byte) {
	t.Helper()
	for k := 0; k <= len(out); k++ {
		if k > 0 && out[k-1] != '\n' {
			continue
		}
		for i := range bp.pats {
			p := &bp.pats[i]
			if got, want := p.index(out[k:]), bytes.Index(out[k:], p.lit); got != want {
				t.Fatalf("pattern %q in %q: found at %d, bytes.Index says %d", p.lit, out[k:], got, want)
			}
		}
	}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var got, want bootDetector
	for c := 0; len(out) > 0; c++ {
		n := len(out)
		if len(cuts) > 0 {
			n = min(n, int(cuts[c%len(cuts)])+1)
		}
		now := t0.Add(time.Duration(c) * 20 * time.Second) // some boots continue, some start anew
		chunk := out[:n]
		out = out[n:]
		for len(chunk) > 0 {
			i, j, how := got.scan(chunk, bp, now)
			wi, wj, whow := want.scanLines(chunk, bp, now, false)
			if i != wi || j != wj || how != whow {
				t.Fatalf("chunk %d %q: scan gives (%d, %d, %q), the line-by-line scan (%d, %d, %q)", c, chunk, i, j, how, wi, wj, whow)
			}
			chunk = chunk[j:]
		}
		if got.stage != want.stage || got.matched != want.matched || !bytes.Equal(got.line, want.line) {
			t.Fatalf("after chunk %d: state %v %v %q, line-by-line %v %v %q", c, got.stage, got.matched, got.line, want.stage, want.matched, want.line)
		}
	}
}

// BenchmarkBootScan is the boot detector on a busy console's packets
// (250 bytes of numbered lines, no banner), with the default patterns;
// everyLine is the scan before lines were skipped.
func BenchmarkBootScan(b *testing.B) {
	d := config.Daemon{BootFirmware: config.DefaultBootFirmware, BootKernel: config.DefaultBootKernel}
	bp, err := compileBoots(&d)
	if err != nil {
		b.Fatal(err)
	}
	var text []byte
	for i := 0; len(text) < 1<<16; i++ {
		text = fmt.Appendf(text, "[%8d.%06d] node42 stream line %d: the quick brown fox\r\n", i/1000, i%1000*997, i)
	}
	for _, tc := range []struct {
		name string
		scan func(*bootDetector, []byte, *bootPatterns, time.Time) (int, int, string)
	}{{"skip", (*bootDetector).scan}, {"everyLine", func(d *bootDetector, p []byte, bp *bootPatterns, now time.Time) (int, int, string) {
		return d.scanLines(p, bp, now, false)
	}}} {
		b.Run(tc.name, func(b *testing.B) {
			var det bootDetector
			now := time.Now()
			b.SetBytes(250)
			off := 0
			for b.Loop() {
				if off+250 > len(text) {
					off = 0
				}
				tc.scan(&det, text[off:off+250], bp, now)
				off += 250
			}
		})
	}
}
