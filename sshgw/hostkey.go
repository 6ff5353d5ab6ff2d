package sshgw

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	gossh "golang.org/x/crypto/ssh"
)

// LoadHostKey reads an SSH host private key (OpenSSH or PEM format). With
// create set and no file at path, it generates an ed25519 key and writes
// it there first (mode 0600, the directory created 0700), so the host key
// clients pin survives restarts. It refuses a key file that others may
// read or write.
func LoadHostKey(path string, create bool) (gossh.Signer, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) && create {
		if err := createHostKey(path); err != nil {
			return nil, err
		}
		data, err = os.ReadFile(path)
	}
	if err != nil {
		return nil, fmt.Errorf("sshgw: host key: %w", err)
	}
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("sshgw: host key: %w", err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("sshgw: host key %s: mode %04o lets others read it; chmod 600 it", path, st.Mode().Perm())
	}
	s, err := gossh.ParsePrivateKey(data)
	if err != nil {
		return nil, fmt.Errorf("sshgw: host key %s: %w", path, err)
	}
	return s, nil
}

// createHostKey writes a new ed25519 key to path without ever leaving a
// partial or world-readable file there.
func createHostKey(path string) error {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return fmt.Errorf("sshgw: generate host key: %w", err)
	}
	block, err := gossh.MarshalPrivateKey(priv, "solgate host key")
	if err != nil {
		return fmt.Errorf("sshgw: encode host key: %w", err)
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("sshgw: host key directory: %w", err)
	}
	f, err := os.CreateTemp(dir, ".hostkey-*")
	if err != nil {
		return fmt.Errorf("sshgw: write host key: %w", err)
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return fmt.Errorf("sshgw: write host key: %w", err)
	}
	if _, err := f.Write(pem.EncodeToMemory(block)); err != nil {
		f.Close()
		return fmt.Errorf("sshgw: write host key: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("sshgw: write host key: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("sshgw: write host key: %w", err)
	}
	// Link, not rename: if another process created the key meanwhile,
	// keep theirs.
	if err := os.Link(tmp, path); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("sshgw: write host key: %w", err)
	}
	return nil
}
