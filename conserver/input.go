package conserver

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Typed input goes from the writer's Attachment.Write into a bounded
// per-console queue; a pump goroutine, started only while the queue holds
// something, hands it to SOL.Write (which may block while ipmilan's own
// queue is full). So no attachment ever waits on the BMC, and an idle
// console has no input goroutine.

const (
	// maxInput bounds the queue. A typist who fills it (a paste while the
	// BMC is slow) waits up to inputWait, then the rest is dropped and
	// the typist told.
	maxInput  = 16 << 10
	inputWait = 5 * time.Second
	// pumpChunk is the most the pump hands to SOL.Write at once.
	pumpChunk = 4 << 10
	// breakWait bounds waiting for the BMC to accept a serial break.
	breakWait = 10 * time.Second
)

// inputQueue is the typed input not yet handed to SOL.Write. Guarded by
// Console.mu.
type inputQueue struct {
	items []inItem
	bytes int
}

type inItem struct {
	data []byte
	brk  chan error // a serial break: the result goes here
}

// errNotConnected is told to a typist while SOL is down.
var errNotConnected = errors.New("not connected")

// input queues typed data of attachment a.
func (c *Console) input(a *Attachment, data []byte) {
	deadline := time.Time{}
	for len(data) > 0 {
		c.mu.Lock()
		switch {
		case c.writer != a:
			c.mu.Unlock()
			a.warnReadOnly()
			return
		case c.conn == nil:
			st := c.st
			c.mu.Unlock()
			a.warnOnce(fmt.Sprintf("%s: %s: input discarded", c.name, st))
			return
		}
		room := maxInput - c.in.bytes
		if room <= 0 {
			c.mu.Unlock()
			if deadline.IsZero() {
				deadline = time.Now().Add(inputWait)
			}
			t := time.NewTimer(time.Until(deadline))
			select {
			case <-c.inRoom:
				t.Stop()
				continue
			case <-a.done:
			case <-c.ctx.Done():
			case <-t.C:
				a.notice(fmt.Sprintf("%s: the console is not taking input: %d bytes discarded", c.name, len(data)))
			}
			t.Stop()
			return
		}
		n := min(room, len(data))
		c.in.items = append(c.in.items, inItem{data: append([]byte(nil), data[:n]...)})
		c.in.bytes += n
		data = data[n:]
		c.startPumpLocked()
		c.mu.Unlock()
	}
}

// sendBreak queues a serial break after a's typed input and waits for the
// BMC's answer.
func (c *Console) sendBreak(a *Attachment) error {
	ch := make(chan error, 1)
	c.mu.Lock()
	switch {
	case c.writer != a:
		c.mu.Unlock()
		return errors.New("you are read-only")
	case c.conn == nil:
		c.mu.Unlock()
		return errNotConnected
	}
	c.in.items = append(c.in.items, inItem{brk: ch})
	c.startPumpLocked()
	c.mu.Unlock()
	t := time.NewTimer(breakWait + time.Second)
	defer t.Stop()
	select {
	case err := <-ch:
		return err
	case <-t.C:
		return errors.New("no answer from the BMC")
	case <-a.done:
		return a.Cause()
	}
}

// startPumpLocked starts the pump for the current connection if it is not
// running; mu is held and c.conn is set.
func (c *Console) startPumpLocked() {
	if c.pumping || c.conn == nil || len(c.in.items) == 0 {
		return
	}
	c.pumping = true
	c.wg.Add(1)
	go c.pump(c.conn)
}

// pump hands queued input to conn's SOL until the queue is empty.
func (c *Console) pump(conn *solConn) {
	defer c.wg.Done()
	for {
		c.mu.Lock()
		if c.conn != conn || len(c.in.items) == 0 {
			c.pumping = false
			c.startPumpLocked() // a new connection with input typed for it
			c.mu.Unlock()
			return
		}
		it := c.in.items[0]
		if it.brk == nil {
			// Take consecutive data items, up to pumpChunk.
			var b []byte
			n := 0
			for n < len(c.in.items) && c.in.items[n].brk == nil && len(b)+len(c.in.items[n].data) <= pumpChunk {
				b = append(b, c.in.items[n].data...)
				n++
			}
			if n == 0 { // one item larger than pumpChunk (never: items are bounded by maxInput)
				b, n = it.data, 1
			}
			it = inItem{data: b}
			c.in.items = c.in.items[n:]
			c.in.bytes -= len(b)
		} else {
			c.in.items = c.in.items[1:]
		}
		if len(c.in.items) == 0 {
			c.in.items = nil
		}
		c.mu.Unlock()
		select {
		case c.inRoom <- struct{}{}:
		default:
		}
		if it.brk != nil {
			ctx, cancel := context.WithTimeout(c.ctx, breakWait)
			it.brk <- conn.sol.Break(ctx)
			cancel()
			continue
		}
		n, err := conn.sol.Write(it.data)
		c.bytesOut.Add(uint64(n))
		if err != nil {
			c.mu.Lock()
			if c.conn == conn {
				c.dropInputLocked()
			}
			c.pumping = false
			c.startPumpLocked()
			c.mu.Unlock()
			c.tellWriter(fmt.Sprintf("%s: input lost: %d bytes (%s)", c.name, len(it.data)-n, describe(err, conn.sess.Addr())))
			return
		}
	}
}

// dropInputLocked discards the queue (the connection it was typed for is
// gone); mu is held.
func (c *Console) dropInputLocked() {
	for _, it := range c.in.items {
		if it.brk != nil {
			it.brk <- errNotConnected
		}
	}
	c.in = inputQueue{}
	select {
	case c.inRoom <- struct{}{}:
	default:
	}
}

// warnReadOnly tells a read-only typist why nothing happens, at most every
// 10 seconds.
func (a *Attachment) warnReadOnly() {
	a.warnOnce(fmt.Sprintf("%s: you are read-only: input ignored (%sa attaches read-write, %sf forces)", a.c.name, formatEscape(a.esc), formatEscape(a.esc)))
}

func (a *Attachment) warnOnce(text string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if time.Since(a.roWarned) < 10*time.Second {
		return
	}
	a.roWarned = time.Now()
	a.noticeLocked(text)
}
