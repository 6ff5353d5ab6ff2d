package migrate

import "testing"

// BenchmarkImport10k parses and prints a generated configuration of 10,000
// consoles in each format.
func BenchmarkImport10k(b *testing.B) {
	for _, f := range []struct {
		name string
		gen  func(int) (string, map[string]want, []string)
		imp  func(string, []byte, Options) (*Result, error)
	}{{"conserver", genConserver, Conserver}, {"conman", genConMan, ConMan}} {
		text, _, _ := f.gen(10000)
		b.Run(f.name, func(b *testing.B) {
			b.SetBytes(int64(len(text)))
			for b.Loop() {
				r, err := f.imp("gen", []byte(text), Options{})
				if err != nil {
					b.Fatal(err)
				}
				if len(r.TOML()) == 0 {
					b.Fatal("no output")
				}
			}
		})
	}
}
