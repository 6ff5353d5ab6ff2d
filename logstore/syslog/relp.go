package syslog

// RELP, the Reliable Event Logging Protocol of rsyslog (librelp's
// doc/relp.html): over TCP, frames
//
//	TXNR SP COMMAND SP DATALEN [SP DATA] LF
//
// TXNR counts 1 to 999999999 and wraps to 1; the client sends "open"
// (offers: relp_version, relp_software, commands), then one "syslog"
// command per message, and "close"; the server answers each with "rsp"
// carrying the same TXNR and "200 OK" (or "500 reason"), and may send
// "serverclose" (TXNR 0) when it goes away. A message counts as taken
// once its "200 OK" arrives, so a receiver that dies loses nothing the
// sender counted as taken.
//
// No Go RELP client is served by the module proxy here, so this one is
// written from the protocol description and tested against rsyslog's
// imrelp (librelp).

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"time"
)

const relpMaxTxnr = 999999999

// maxRELPFrame bounds what the reader accepts from a server (responses are
// short).
const maxRELPFrame = 64 << 10

type relpConn struct {
	c    net.Conn
	w    *bufio.Writer
	txnr int // last TXNR sent
	sent int // syslog messages written
	dl   writeDeadline

	mu      sync.Mutex  // guards the fields below
	acked   map[int]int // TXNR -> message number, for messages not yet acknowledged
	ok      []bool      // acknowledged flags of messages from base on
	base    int         // messages taken: all before base are acknowledged
	err     error       // what broke the session
	closing int         // TXNR of the close command, once sent
	wakeC   chan struct{}
	rdone   chan struct{}
	open    chan error // the answer to "open"
}

func newRELPConn(ctx context.Context, c net.Conn) (*relpConn, error) {
	r := &relpConn{c: c, w: bufio.NewWriterSize(c, streamBuffer), acked: map[int]int{},
		wakeC: make(chan struct{}, 1), rdone: make(chan struct{}), open: make(chan error, 1)}
	go r.reader()
	offer := "relp_version=0\nrelp_software=solgate\ncommands=syslog"
	r.txnr = 1
	if err := r.frame(1, "open", []byte(offer)); err != nil {
		r.close()
		return nil, err
	}
	if d, ok := ctx.Deadline(); ok {
		c.SetWriteDeadline(d)
	}
	if err := r.w.Flush(); err != nil {
		r.close()
		return nil, fmt.Errorf("relp open: %w", err)
	}
	select {
	case err := <-r.open:
		if err != nil {
			r.close()
			return nil, err
		}
	case <-ctx.Done():
		r.close()
		return nil, fmt.Errorf("relp open: %w", ctx.Err())
	case <-r.rdone:
		r.close()
		return nil, fmt.Errorf("relp open: %w", r.failure())
	}
	return r, nil
}

func (r *relpConn) frame(txnr int, cmd string, data []byte) error {
	var b [32]byte
	h := strconv.AppendInt(b[:0], int64(txnr), 10)
	h = append(h, ' ')
	h = append(h, cmd...)
	h = append(h, ' ')
	h = strconv.AppendInt(h, int64(len(data)), 10)
	if len(data) > 0 {
		h = append(h, ' ')
	}
	r.w.Write(h)
	r.w.Write(data)
	return r.w.WriteByte('\n')
}

func (r *relpConn) write(msg []byte) error {
	r.txnr++
	if r.txnr > relpMaxTxnr {
		r.txnr = 1
	}
	r.mu.Lock()
	if r.err != nil {
		err := r.err
		r.mu.Unlock()
		return err
	}
	if _, dup := r.acked[r.txnr]; dup {
		r.mu.Unlock()
		return errors.New("relp: a billion messages unacknowledged")
	}
	r.acked[r.txnr] = r.sent
	r.ok = append(r.ok, false)
	r.mu.Unlock()
	r.sent++
	if needsFlush(r.w, msg) {
		// Flush first, under a fresh write deadline (the buffer writing
		// by itself would use the last one, perhaps long past).
		if err := r.flush(); err != nil {
			return err
		}
	}
	r.frame(r.txnr, "syslog", msg)
	if r.w.Buffered() >= 60<<10 {
		return r.flush()
	}
	return nil
}

func (r *relpConn) flush() error {
	if r.w.Buffered() == 0 {
		return nil
	}
	r.dl.arm(r.c)
	return r.w.Flush()
}

func (r *relpConn) stopping(by time.Time) { r.dl.stop(r.c, by) }

func (r *relpConn) taken() (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.base, r.err
}

func (r *relpConn) wake() <-chan struct{} { return r.wakeC }

// suspect is 0: RELP counts a message taken once the receiver answered.
func (r *relpConn) suspect() int { return 0 }

func (r *relpConn) failure() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err == nil {
		return io.ErrUnexpectedEOF
	}
	return r.err
}

func (r *relpConn) fail(err error) {
	r.mu.Lock()
	if r.err == nil {
		r.err = err
	}
	r.mu.Unlock()
	select {
	case r.wakeC <- struct{}{}:
	default:
	}
}

// close says goodbye when the session is healthy and everything is
// acknowledged (waiting briefly), then closes the socket.
func (r *relpConn) close() {
	r.mu.Lock()
	healthy := r.err == nil && r.base == r.sent
	r.mu.Unlock()
	if healthy && r.txnr > 0 {
		r.txnr++
		if r.txnr > relpMaxTxnr {
			r.txnr = 1
		}
		r.mu.Lock()
		r.closing = r.txnr
		r.mu.Unlock()
		r.c.SetWriteDeadline(time.Now().Add(time.Second))
		r.frame(r.txnr, "close", nil)
		if r.w.Flush() == nil {
			select {
			case <-r.rdone:
			case <-time.After(time.Second):
			}
		}
	}
	r.c.Close()
	<-r.rdone
}

// reader reads the server's frames: the answer to open, rsp for each
// message, serverclose.
func (r *relpConn) reader() {
	defer close(r.rdone)
	br := bufio.NewReaderSize(r.c, 4096)
	opened := false
	for {
		txnr, cmd, data, err := readRELPFrame(br)
		if err != nil {
			if !opened {
				r.open <- fmt.Errorf("relp open: %w", err)
			}
			r.fail(fmt.Errorf("relp: %w", err))
			return
		}
		switch cmd {
		case "serverclose":
			if !opened {
				r.open <- errors.New("relp open: server closed the session")
			}
			r.fail(errors.New("relp: server closed the session"))
			return
		case "rsp":
		default:
			r.fail(fmt.Errorf("relp: unexpected command %q from the server", cmd))
			return
		}
		code, text, _ := bytes.Cut(data, []byte(" "))
		text, _, _ = bytes.Cut(text, []byte("\n"))
		if !opened {
			opened = true
			if string(code) != "200" {
				r.open <- fmt.Errorf("relp open refused: %s %s", code, text)
				r.fail(errors.New("relp: open refused"))
				return
			}
			r.open <- nil
			continue
		}
		r.mu.Lock()
		i, known := r.acked[txnr]
		if known {
			delete(r.acked, txnr)
		}
		r.mu.Unlock()
		if !known {
			r.mu.Lock()
			closing := r.closing
			r.mu.Unlock()
			if closing > 0 && txnr == closing {
				return // the answer to close
			}
			r.fail(fmt.Errorf("relp: response to unknown transaction %d", txnr))
			return
		}
		if string(code) != "200" {
			r.fail(fmt.Errorf("relp: receiver refused a message: %s %s", code, bytes.ToValidUTF8(text, nil)))
			return
		}
		r.mu.Lock()
		r.ok[i-r.base] = true
		k := 0
		for k < len(r.ok) && r.ok[k] {
			k++
		}
		if k > 0 {
			r.base += k
			r.ok = append(r.ok[:0], r.ok[k:]...)
		}
		r.mu.Unlock()
		select {
		case r.wakeC <- struct{}{}:
		default:
		}
	}
}

// readRELPFrame reads one frame.
func readRELPFrame(br *bufio.Reader) (txnr int, cmd string, data []byte, err error) {
	field := func(max int) (string, error) {
		var b []byte
		for {
			c, err := br.ReadByte()
			if err != nil {
				return "", err
			}
			if c == ' ' || c == '\n' {
				if c == '\n' {
					br.UnreadByte()
				}
				return string(b), nil
			}
			if len(b) >= max {
				return "", errors.New("frame header field too long")
			}
			b = append(b, c)
		}
	}
	s, err := field(9)
	if err != nil {
		return 0, "", nil, err
	}
	txnr, err = strconv.Atoi(s)
	if err != nil || txnr < 0 {
		return 0, "", nil, fmt.Errorf("bad TXNR %q", s)
	}
	if cmd, err = field(32); err != nil {
		return 0, "", nil, err
	}
	s, err = field(9)
	if err != nil {
		return 0, "", nil, err
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 || n > maxRELPFrame {
		return 0, "", nil, fmt.Errorf("bad DATALEN %q", s)
	}
	data = make([]byte, n)
	if _, err := io.ReadFull(br, data); err != nil {
		return 0, "", nil, err
	}
	c, err := br.ReadByte()
	if err != nil {
		return 0, "", nil, err
	}
	if c != '\n' {
		return 0, "", nil, fmt.Errorf("frame trailer %q, want LF", c)
	}
	return txnr, cmd, data, nil
}
