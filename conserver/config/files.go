// Reading the files a configuration names: bounded, and never blocking on
// something that is not a regular file.

package config

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"syscall"
)

// Size limits of the files a configuration reads besides its own (which
// maxFileSize bounds). A password is at most 20 bytes and a K_g 40 hex
// digits; anything much larger is not the file the operator meant.
const (
	MaxSecretFile = 4 << 10  // password_file, kg_file, --password-file, --kg-file
	maxCAKeysFile = 1 << 20  // trusted_user_ca_files: SSH public keys
	maxCABundle   = 16 << 20 // tls_ca_file: PEM certificates (Debian's bundle is about 200 KiB)
)

// ReadFileLimit reads the regular file name, which must hold at most limit
// bytes. It opens the file without blocking (O_NONBLOCK, so a FIFO with no
// writer cannot hang the caller) and checks with fstat what it opened
// before reading anything: a FIFO, socket, device or directory is refused
// with an error that says what it is, and so is a file larger than limit,
// without reading it. The read itself is bounded too, for a file that
// grows meanwhile. Errors do not repeat the name; the caller says which
// file it was.
func ReadFileLimit(name string, limit int64) ([]byte, fs.FileInfo, error) {
	f, err := os.OpenFile(name, os.O_RDONLY|syscall.O_NONBLOCK|syscall.O_NOCTTY, 0)
	if err != nil {
		return nil, nil, openError(name, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, nil, unwrapPath(err)
	}
	if !st.Mode().IsRegular() {
		return nil, st, fmt.Errorf("is %s, not a regular file", fileKind(st.Mode()))
	}
	if st.Size() > limit {
		return nil, st, fmt.Errorf("is %s, larger than the %s such a file may be", formatBytes(st.Size()), formatBytes(limit))
	}
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, st, fmt.Errorf("read: %w", unwrapPath(err))
	}
	if int64(len(data)) > limit {
		return nil, st, fmt.Errorf("grew past %s while being read", formatBytes(limit))
	}
	return data, st, nil
}

// openError explains why name could not be opened, telling a symbolic link
// that leads nowhere or round in circles from a missing file.
func openError(name string, err error) error {
	switch {
	case errors.Is(err, syscall.ELOOP):
		return errors.New("is a symbolic link loop")
	case errors.Is(err, fs.ErrNotExist):
		if lst, lerr := os.Lstat(name); lerr == nil && lst.Mode()&fs.ModeSymlink != 0 {
			target, _ := os.Readlink(name)
			return fmt.Errorf("is a symbolic link to %s, which does not exist", quote(target))
		}
	case errors.Is(err, syscall.ENXIO):
		// A socket cannot be opened at all; say what it is.
		if st, serr := os.Stat(name); serr == nil && !st.Mode().IsRegular() {
			return fmt.Errorf("is %s, not a regular file", fileKind(st.Mode()))
		}
	}
	return unwrapPath(err)
}

// fileKind names a file type for a message.
func fileKind(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&fs.ModeNamedPipe != 0:
		return "a FIFO (named pipe)"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeCharDevice != 0:
		return "a character device"
	case m&fs.ModeDevice != 0:
		return "a block device"
	case m&fs.ModeIrregular != 0:
		return "an irregular file"
	}
	return "not a regular file"
}

// formatBytes prints a size for people: 512 bytes, 4 KiB, 22 GiB.
func formatBytes(n int64) string {
	for _, u := range []struct {
		name string
		v    int64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if n >= u.v {
			if n%u.v == 0 || n >= 10*u.v {
				return fmt.Sprintf("%d %s", n/u.v, u.name)
			}
			return fmt.Sprintf("%.1f %s", float64(n)/float64(u.v), u.name)
		}
	}
	if n == 1 {
		return "1 byte"
	}
	return fmt.Sprintf("%d bytes", n)
}
