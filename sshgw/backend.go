package sshgw

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"time"

	gossh "golang.org/x/crypto/ssh"
)

// Backend is what the gateway needs from the console manager. The gateway
// knows nothing of IPMI or of the configuration format: it sees people,
// consoles, attachments and commands through this interface, and the
// command that runs the daemon adapts the manager to it. Implementations
// must be safe for concurrent use.
type Backend interface {
	// Identify returns the person a public key or certificate identifies
	// when presented from remote (for a certificate's source-address), or
	// an error saying why it identifies nobody. The error is logged, never
	// shown to the client. Identify must have no side effects: it is
	// called for every key a client offers and again for the key that
	// authenticated, and on every reload for every live session.
	Identify(key gossh.PublicKey, remote net.Addr) (person string, err error)

	// Lookup returns the named console as id.Person may use it. A console
	// the person may not read is reported exactly like one that does not
	// exist: an error wrapping ErrNoConsole. Its text may say which ("was
	// removed", "access revoked"): the gateway shows it only to sessions
	// that already had the console. The handle answers with the
	// configuration in force when a method is called, not when Lookup was.
	Lookup(id Identity, console string) (Console, error)

	// List returns the status of every console id.Person may read, in the
	// configuration's order.
	List(id Identity) []Status

	// Changed returns a channel that is closed at the next change of the
	// configuration (users, keys, CAs, access rules, consoles). The
	// gateway then re-checks every live session and calls Changed again.
	Changed() <-chan struct{}
}

// Console is one console as seen by one person (the Identity given to
// Backend.Lookup): every method checks that person's permissions at the
// time of the call and records what it does in the console's log where
// the manager does so (power, force, break).
type Console interface {
	// Status is the console's state as of now.
	Status() Status
	// Perm is what the person may do on the console now; 0 once the
	// console is gone or the person lost read access.
	Perm() Perm
	// Who lists the attached sessions.
	Who() []Attached
	// Attach attaches the person. With Mode ReadWrite the attachment
	// writes if nobody else does (or Force is set) and is read-only
	// otherwise; Attachment.Mode says which it got.
	Attach(opts AttachOptions) (Attachment, error)
	// Power runs a power action (status, on, off, cycle, reset, soft,
	// diag, pxe, bios) and returns its one-line result.
	Power(ctx context.Context, action string) (string, error)
	// Break sends a serial break to the console.
	Break(ctx context.Context) error
	// Tail writes the last n lines of the console's log to w.
	Tail(ctx context.Context, n int, w io.Writer) error
	// Log writes a time range of the console's log to w.
	Log(ctx context.Context, q LogQuery, w io.Writer) error
	// Grep writes the lines of the console's log that match the regular
	// expression pattern to w and returns how many matched; a malformed
	// pattern is an error wrapping ErrUsage.
	Grep(ctx context.Context, pattern string, q LogQuery, w io.Writer) (int, error)
	// Recent returns up to max of the console's most recent raw output
	// bytes (what a terminal showing the console has received lately),
	// for repainting the current screen.
	Recent(max int) ([]byte, error)
}

// Attachment is one person attached to one console. Read and Write may be
// called concurrently with each other and with the other methods.
type Attachment interface {
	// Read returns the person's output: console bytes unchanged, notices,
	// and the answers to escape commands. It returns io.EOF once the
	// attachment has ended and everything before the end was read. A
	// reader that falls behind never stalls the console: the manager's
	// bounded buffer drops output for it and says so in the stream.
	Read(p []byte) (int, error)
	// Write hands typed bytes to the console's escape engine, which runs
	// escape commands and sends the rest to the console if this
	// attachment writes.
	Write(p []byte) (int, error)
	// Break sends a serial break, if this attachment writes.
	Break() error
	// Mode is the attachment's current mode; it changes on force, on a
	// switch to read-only, or when a reload downgrades the person.
	Mode() Mode
	// Close ends the attachment; it is safe to call more than once.
	Close() error
	// Done is closed when the attachment has ended.
	Done() <-chan struct{}
	// Cause is why the attachment ended, one line safe to show, or nil
	// while it lasts. It wraps ErrDetached when the person detached.
	Cause() error
}

// Identity is who uses a console, for permission checks and audit.
type Identity struct {
	Person string // the configured user a key or certificate identified
	Remote string // the client's address, host:port
	Via    string // the front end: "ssh"
}

// Perm is a set of permissions on a console.
type Perm uint8

const (
	PermRead  Perm = 1 << iota // attach read-only, tail, log, grep, who, info, screen
	PermWrite                  // type into the console, force, break
	PermPower                  // power actions
)

func (p Perm) String() string {
	if p == 0 {
		return "none"
	}
	var parts []string
	for _, x := range []struct {
		p    Perm
		name string
	}{{PermRead, "read"}, {PermWrite, "write"}, {PermPower, "power"}} {
		if p&x.p != 0 {
			parts = append(parts, x.name)
		}
	}
	return strings.Join(parts, "+")
}

// Mode is an attachment's mode.
type Mode uint8

const (
	ReadOnly Mode = iota
	ReadWrite
)

func (m Mode) String() string {
	if m == ReadWrite {
		return "rw"
	}
	return "ro"
}

// AttachOptions say how to attach.
type AttachOptions struct {
	Mode   Mode // ReadWrite asks to write
	Force  bool // take write from the current writer (who becomes read-only and is told)
	Spy    bool // a read-only stream for a script (spy command)
	Replay int  // lines of recent output to send before live output
}

// Status is a console's state, for the banner, the listing and info.
type Status struct {
	Name string
	// State is one of "connecting", "up", "retrying", "waiting",
	// "contested", "down", "stopped".
	State      string
	Since      time.Time // when the console entered State
	Reason     string    // why it is not up (retrying, down, contested)
	NextTry    time.Time // retrying: when the next attempt is due
	Owner      string    // waiting, contested: who holds the SOL payload
	Writer     string    // the person who writes, "" if nobody
	Attached   int       // attached sessions
	LastOutput time.Time // zero if the console never printed
	Escape     string    // the escape prefix, e.g. "^Ec"
	// Details are further facts for info (BMC, reconnects, bytes), in
	// order.
	Details []Field
}

// Field is one named fact in Status.Details.
type Field struct {
	Name  string
	Value string
}

// Attached is one attached session, for who.
type Attached struct {
	User    string
	Via     string
	Remote  string
	Since   time.Time
	Idle    time.Duration
	Mode    Mode
	Lagging bool
	Missed  int64 // output bytes dropped because the session fell behind
}

// LogQuery selects a range of a console's log. Times and the boot are
// passed as the person typed them; the backend parses them as solgate log
// does and returns an error wrapping ErrUsage if they are malformed.
type LogQuery struct {
	Since, Until string
	Boot         string // "" for none, else a boot number such as "0" or "-1"
	Raw, Plain   bool
	// ListBoots asks Log for the list of boots in the log instead (one
	// line each: number for Boot, start, end, how it started); it goes
	// with no other field.
	ListBoots bool
}

var (
	// ErrNoConsole means the console does not exist, or the person may
	// not read it: the two are indistinguishable on purpose.
	ErrNoConsole = errors.New("no such console")
	// ErrNotPermitted means the person may read the console but not do
	// what was asked.
	ErrNotPermitted = errors.New("not permitted")
	// ErrDetached is wrapped by Attachment.Cause when the person detached
	// (the escape command).
	ErrDetached = errors.New("detached")
	// ErrUsage is wrapped by errors about malformed arguments.
	ErrUsage = errors.New("usage")
	// ErrServerClosed is returned by Serve after Shutdown or Close.
	ErrServerClosed = errors.New("sshgw: server closed")
)
