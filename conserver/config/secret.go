package config

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
)

// Secret holds a password or key read from a file, the environment or (when
// the operator insisted) the config file. Every way of printing it (every
// fmt verb, %d and %x included, through Format; String, GoString, LogValue,
// MarshalText) shows a redacted placeholder; only Reveal gives the bytes.
type Secret struct {
	// The bytes sit behind a pointer: fmt's fallback for a verb it cannot
	// apply (%p on a value) bypasses Format and prints fields by
	// reflection, and a nested pointer prints as an address.
	v      *secretBytes
	source string // where it came from, e.g. "file /etc/solgate/bmc.pass"
	set    bool
	read   bool // b holds the value (false when Load skipped secrets)
}

type secretBytes struct{ b []byte }

const redacted = "[redacted]"

func newSecret(b []byte, source string) Secret {
	return Secret{v: &secretBytes{b}, source: source, set: true, read: true}
}

// Reveal returns the secret bytes. Callers must not modify or log them.
func (s Secret) Reveal() []byte {
	if s.v == nil {
		return nil
	}
	return s.v.b
}

// IsSet reports whether a source for the secret was configured.
func (s Secret) IsSet() bool { return s.set }

// Source says where the secret comes from ("file PATH", "env NAME",
// "inline"), or "" when it is not set. It is safe to print.
func (s Secret) Source() string { return s.source }

// String returns a placeholder, never the secret.
func (s Secret) String() string {
	if !s.set {
		return "(none)"
	}
	return redacted
}

// Format prints the placeholder for every verb and flag: without it %d, %o
// or %b would print the struct's fields, the bytes among them.
func (s Secret) Format(f fmt.State, verb rune) {
	switch {
	case verb == 'q':
		fmt.Fprintf(f, "%q", s.String())
	case verb == 'v' && f.Flag('#'):
		io.WriteString(f, s.GoString())
	default:
		io.WriteString(f, s.String())
	}
}

// GoString keeps %#v from printing the bytes.
func (s Secret) GoString() string { return "config.Secret{" + s.String() + "}" }

// LogValue makes slog print the placeholder.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }

// MarshalText makes encoders (JSON, TOML) write the placeholder.
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// Equal reports whether two secrets hold the same value. Secrets that were
// not read (Options.SkipSecrets) are equal when their sources are.
func (s Secret) Equal(o Secret) bool {
	if s.set != o.set || s.read != o.read {
		return false
	}
	if !s.read {
		return s.source == o.source
	}
	return bytes.Equal(s.Reveal(), o.Reveal())
}
