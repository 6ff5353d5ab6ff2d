package config

import (
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"
)

// writeTree creates files (relative path -> content) under a new temporary
// directory and returns the directory.
func writeTree(t testing.TB, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o750); err != nil {
			t.Fatal(err)
		}
		mode := os.FileMode(0o640)
		if strings.HasSuffix(name, ".pass") || strings.HasSuffix(name, ".kg") {
			mode = 0o600
		}
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// loadTree writes files and loads dir/solgate.toml.
func loadTree(t testing.TB, files map[string]string, opts Options) (*Config, error) {
	t.Helper()
	dir := writeTree(t, files)
	return LoadWith(filepath.Join(dir, "solgate.toml"), opts)
}

// mustLoad is loadTree that fails the test on error.
func mustLoad(t testing.TB, files map[string]string) *Config {
	t.Helper()
	c, err := loadTree(t, files, Options{})
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	return c
}

// errorLines returns the problems of a failed load with the temporary
// directory stripped, one string each.
func errorLines(t testing.TB, err error) []string {
	t.Helper()
	var el *ErrorList
	if !errors.As(err, &el) {
		t.Fatalf("error %T is not an *ErrorList: %v", err, err)
	}
	var out []string
	for _, e := range el.Errors {
		e2 := *e
		e2.File = filepath.Base(filepath.Dir(e.File)) + "/" + filepath.Base(e.File)
		if filepath.Base(filepath.Dir(e.File)) != "conf.d" {
			e2.File = filepath.Base(e.File)
		}
		out = append(out, e2.Error())
	}
	return out
}

// newKey returns a fresh ed25519 SSH key pair.
func newKey(t testing.TB) (ssh.PublicKey, ssh.Signer) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	sp, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return sp, signer
}

func authorizedKey(k ssh.PublicKey, comment string) string {
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(k))) + " " + comment
}
