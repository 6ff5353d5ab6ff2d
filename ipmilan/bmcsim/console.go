package bmcsim

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
)

// console is the simulated host on the BMC's serial port: what it
// prints, what it reads, and the BMC-side buffer of output nobody has
// taken yet. Guarded by BMC.mu (it is part of BMC.sol).
type console struct {
	b *BMC

	backlog        []byte // output kept while no SOL instance is active
	backlogOverrun bool   // some of it was dropped

	typed  []byte // everything the host has read from its serial port
	fifo   []byte // typed input not read yet (PauseInput)
	paused bool

	// Boot text being printed: script steps due at bootStart+step.at.
	booting   bool
	bootStart time.Time
	bootIdx   int
	script    []bootStep

	// Stream calls in progress, served in order: their text is made
	// as the SOL layer takes it (streamFillLocked).
	streams []*hostStream
	text    []byte // scratch for the stream text, reused
}

type bootStep struct {
	at   time.Duration
	text string
}

func (c *console) init(b *BMC) {
	c.b = b
	c.script = bootScript(b.cfg.SOL.Hostname)
	if b.cfg.PowerOn && !b.cfg.SOL.NoBootText {
		// The host booted before the simulator started: its boot is in
		// the BMC's buffer, ending at the login prompt.
		for _, s := range c.script {
			c.keep([]byte(s.text))
		}
		c.backlogOverrun = false
	}
}

// keep adds output to the BMC's buffer, dropping the oldest bytes beyond
// BufferSize (reported as an overrun at the next activation).
func (c *console) keep(p []byte) {
	limit := c.b.cfg.SOL.BufferSize
	c.backlog = append(c.backlog, p...)
	if over := len(c.backlog) - limit; over > 0 {
		c.backlog = append(c.backlog[:0:0], c.backlog[over:]...)
		c.backlogOverrun = true
		c.b.stats.solOverruns.Add(uint64(over))
	}
}

// room is how much output fits in the BMC's buffer now (no instance
// active).
func (c *console) room() int { return max(0, c.b.cfg.SOL.BufferSize-len(c.backlog)) }

// input offers typed characters to the host's serial FIFO and returns
// how many it took.
func (c *console) input(p []byte, now time.Time) int {
	limit := c.b.cfg.SOL.InputBuffer
	if c.paused {
		n := min(len(p), limit-len(c.fifo))
		c.fifo = append(c.fifo, p[:n]...)
		return n
	}
	n := min(len(p), limit)
	c.read(p[:n], now)
	return n
}

// read is the host reading its serial input: recorded, and echoed as a
// tty in cooked mode does (CR becomes CR LF).
func (c *console) read(p []byte, now time.Time) {
	c.typed = append(c.typed, p...)
	if c.b.cfg.SOL.NoEcho || !c.b.chassis.on {
		return
	}
	echo := make([]byte, 0, len(p)+4)
	for _, ch := range p {
		echo = append(echo, ch)
		if ch == '\r' {
			echo = append(echo, '\n')
		}
	}
	c.b.hostOutputLocked(echo, false, now)
}

func (c *console) breakReceived(now time.Time) {}

// boot starts the boot text (power on or reset).
func (c *console) boot(now time.Time) {
	c.fifo = nil
	if c.b.cfg.SOL.NoBootText {
		return
	}
	c.booting, c.bootStart, c.bootIdx = true, now, 0
}

// powerOff stops the host: no more boot text, typed input not read is
// lost.
func (c *console) powerOff() {
	c.booting = false
	c.fifo = nil
}

// advance prints the boot text that is due.
func (c *console) advance(now time.Time) {
	for c.booting && c.bootIdx < len(c.script) && !now.Before(c.bootStart.Add(c.script[c.bootIdx].at)) {
		c.b.hostOutputLocked([]byte(c.script[c.bootIdx].text), false, now)
		c.bootIdx++
	}
	if c.bootIdx >= len(c.script) {
		c.booting = false
	}
}

// nextAt is when the next boot step is due (zero: none).
func (c *console) nextAt() time.Time {
	if !c.booting || c.bootIdx >= len(c.script) {
		return time.Time{}
	}
	return c.bootStart.Add(c.script[c.bootIdx].at)
}

// bootScript is a plausible serial console boot: a BIOS screen drawn
// with ANSI escapes (clear screen, colours, cursor moves), POST lines,
// GRUB, kernel log lines with timestamps, systemd, and a login prompt.
func bootScript(host string) []bootStep {
	const ms = time.Millisecond
	s := []bootStep{
		{0, "\x1b[0m\x1b[2J\x1b[H\x1b[1;37;44m" + strings.Repeat(" ", 80) + "\x1b[1;20H Simulated BIOS v2.19.1  (C) 2024 bmcsim \x1b[0m\r\n"},
		{20 * ms, "\x1b[3;1HCPU0: Intel(R) Xeon(R) Gold 6338 CPU @ 2.00GHz\x1b[4;1HMemory Test: \x1b[1m262144 MB OK\x1b[0m\r\n"},
		{60 * ms, "\x1b[6;1HInitializing USB Controllers .. Done.\x1b[7;1HNVMe 0: SAMSUNG MZQL2960HCJR-00A07  960GB\r\n"},
		{100 * ms, "\x1b[9;1HBMC IP: 127.0.0.1   BMC firmware 1.0\x1b[24;1H\x1b[7mPress <DEL> or <F2> to enter setup, <F11> Boot Menu, <F12> Network Boot\x1b[0m"},
		{200 * ms, "\x1b[2J\x1b[H\x1b[?25lBooting from NVMe 0 ...\r\n"},
		{240 * ms, "\x1b[2J\x1b[1;28HGNU GRUB  version 2.06\x1b[3;2H\x1b[7m*Debian GNU/Linux                                                        \x1b[0m\x1b[4;2H Advanced options for Debian GNU/Linux\x1b[12;2HThe highlighted entry will be executed automatically in 0s.\x1b[?25h\x1b[2J\x1b[H"},
	}
	kernel := []string{
		"Linux version 6.1.0-18-amd64 (debian-kernel@lists.debian.org) (gcc-12 (Debian 12.2.0-14) 12.2.0) #1 SMP PREEMPT_DYNAMIC Debian 6.1.76-1 (2024-02-01)",
		"Command line: BOOT_IMAGE=/boot/vmlinuz-6.1.0-18-amd64 root=UUID=5b0e9a43-1f5c-4c1e-9d2b-7f6d1c2a3b4c ro console=tty0 console=ttyS0,115200n8",
		"BIOS-provided physical RAM map:",
		"BIOS-e820: [mem 0x0000000000000000-0x000000000009ffff] usable",
		"DMI: bmcsim Simulated Server/SIM-1U, BIOS 2.19.1 02/01/2024",
		"tsc: Detected 2000.000 MHz processor",
		"Kernel command line: BOOT_IMAGE=/boot/vmlinuz-6.1.0-18-amd64 console=ttyS0,115200n8",
		"Memory: 263921364K/268434948K available (16384K kernel code, 2659K rwdata)",
		"smp: Brought up 2 nodes, 64 CPUs",
		"serial8250: ttyS0 at I/O 0x3f8 (irq = 4, base_baud = 115200) is a 16550A",
		"printk: console [ttyS0] enabled",
		"ACPI: Power Button [PWRB]",
		"nvme nvme0: 64/0/0 default/read/poll queues",
		" nvme0n1: p1 p2 p3",
		"EXT4-fs (nvme0n1p2): mounted filesystem with ordered data mode. Quota mode: none.",
		"systemd[1]: systemd 252.22-1~deb12u1 running in system mode",
		"systemd[1]: Hostname set to <" + host + ">.",
		"ice 0000:4b:00.0 eno1: NIC Link is up 25 Gbps Full Duplex",
	}
	at := 300 * ms
	for i, l := range kernel {
		t := float64(i)*0.41 + 0.000001*float64(i*i)
		if i == 0 {
			t = 0
		}
		s = append(s, bootStep{at, fmt.Sprintf("[%5d.%06d] %s\r\n", int(t), int(math.Round((t-math.Floor(t))*1e6))%1000000, l)})
		at += 15 * ms
	}
	for _, u := range []string{"Journal Service", "Load Kernel Modules", "Network Time Synchronization", "OpenBSD Secure Shell server", "Serial Getty on ttyS0"} {
		s = append(s, bootStep{at, "[\x1b[0;32m  OK  \x1b[0m] Started \x1b[0;1;39m" + u + "\x1b[0m.\r\n"})
		at += 10 * ms
	}
	s = append(s, bootStep{at + 50*ms, "\r\nDebian GNU/Linux 12 " + host + " ttyS0\r\n\r\n" + host + " login: "})
	return s
}

// HostWrite makes the simulated host print p on its serial port. It never
// waits: output that does not fit in the BMC's buffer is dropped and
// reported as an overrun. It works whatever the power state (a test
// driver's shortcut).
func (b *BMC) HostWrite(p []byte) {
	b.mu.Lock()
	now := b.now()
	b.hostOutputLocked(p, false, now)
	b.unlockAndFlush(now)
}

// HostInput returns a copy of everything the host has read from its
// serial port: the typed input SOL consoles delivered, in order.
func (b *BMC) HostInput() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]byte(nil), b.sol.con.typed...)
}

// PauseInput stops (or resumes) the host reading its serial input. While
// paused, typed input fills the input FIFO (SOLConfig.InputBuffer), then
// the BMC acknowledges partially and NACKs; resuming reads what is
// waiting.
func (b *BMC) PauseInput(paused bool) {
	b.mu.Lock()
	now := b.now()
	c := &b.sol.con
	c.paused = paused
	if !paused && len(c.fifo) > 0 {
		p := c.fifo
		c.fifo = nil
		c.read(p, now)
	}
	b.unlockAndFlush(now)
}

// StreamLineLen is the length of each line Stream prints.
const StreamLineLen = 75

const streamFiller = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

// AppendStreamText appends bytes [offset, offset+n) of the text Stream
// prints to p (offset must not be negative). The text is lines of
// StreamLineLen bytes: the line's byte offset as ten decimal digits
// (modulo 10^10), a space, a fixed filler, CR LF. Tests use it to check
// what a console received.
func AppendStreamText(p []byte, offset, n int) []byte {
	var line [StreamLineLen]byte
	line[10] = ' '
	copy(line[11:], streamFiller)
	line[StreamLineLen-2], line[StreamLineLen-1] = '\r', '\n'
	for n > 0 {
		in := offset % StreamLineLen
		v := (offset - in) % 10_000_000_000
		for i := 9; i >= 0; i-- {
			line[i] = byte('0' + v%10)
			v /= 10
		}
		k := min(n, StreamLineLen-in)
		p = append(p, line[in:in+k]...)
		offset += k
		n -= k
	}
	return p
}

// hostStream is a Stream call in progress. Guarded by BMC.mu.
type hostStream struct {
	rate, total int
	start       time.Time
	off         int           // bytes handed to the SOL layer so far
	done        chan struct{} // closed once all total bytes are handed over
}

// Stream makes the host print total bytes of sequence-numbered lines (see
// AppendStreamText) at rate bytes per second (0: as fast as the BMC takes
// them). Unlike HostWrite it waits for room in the BMC's buffer, so
// nothing is lost to overruns: what a console misses was lost by the SOL
// protocol. It returns nil once everything is handed to the SOL layer,
// or ctx's error. Several Stream calls on one BMC print one after the
// other, in the order they were made.
//
// Stream's goroutine only waits: the text is made under the BMC's lock
// by whatever runs the SOL work (streamFillLocked), when room is freed
// (on the packet handler's goroutine, as an acknowledgement arrives) or
// when the rate allows the next hundredth of a second's worth (on the
// BMC's SOL timer), so streaming costs no goroutine wake-up per packet.
func (b *BMC) Stream(ctx context.Context, rate, total int) error {
	if rate < 0 || total < 0 {
		return fmt.Errorf("bmcsim: stream rate %d, total %d: want 0 or more", rate, total)
	}
	if err := ctx.Err(); err != nil || total == 0 {
		return err
	}
	b.mu.Lock()
	now := b.now()
	s := &hostStream{rate: rate, total: total, start: now, done: make(chan struct{})}
	b.sol.con.streams = append(b.sol.con.streams, s)
	b.unlockAndFlush(now)
	select {
	case <-s.done:
		return nil
	case <-ctx.Done():
	}
	b.mu.Lock()
	con := &b.sol.con
	if i := slices.Index(con.streams, s); i >= 0 {
		con.streams = slices.Delete(con.streams, i, i+1)
	}
	b.unlockAndFlush(b.now()) // the next Stream, if any, may start
	select {
	case <-s.done:
		return nil // finished meanwhile
	default:
		return ctx.Err()
	}
}

// streamFillLocked hands the SOL layer the text of the Stream calls that
// is due by their rate and fits in the BMC's buffer. It returns when the
// rate allows more (zero if the stream waits for room instead: freeing
// room always goes with a pump, which calls this again).
func (b *BMC) streamFillLocked(now time.Time) time.Time {
	con := &b.sol.con
	for len(con.streams) > 0 {
		s := con.streams[0]
		n := s.total - s.off
		if s.rate > 0 {
			// A hundredth of a second's worth at a time.
			step := min(n, max(1, s.rate/100))
			allowed := int(int64(float64(s.rate)*now.Sub(s.start).Seconds()) - int64(s.off))
			if allowed < step {
				want := s.off + step
				due := s.start.Add(time.Duration(float64(want) / float64(s.rate) * float64(time.Second)))
				return later(due, now.Add(time.Millisecond))
			}
			n = min(n, allowed)
		}
		if n = min(n, b.outputRoomLocked()); n <= 0 {
			return time.Time{}
		}
		con.text = AppendStreamText(con.text[:0], s.off, n)
		b.hostOutputLocked(con.text, true, now)
		s.off += n
		if s.off < s.total {
			continue // the rate or the room is used up: the next round returns
		}
		close(s.done)
		con.streams[0] = nil
		con.streams = con.streams[1:]
	}
	con.streams = nil
	return time.Time{}
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// DeactivateSOL deactivates every active SOL instance from the BMC side:
// each owner gets a packet with the "SOL deactivating" status (resent
// until acknowledged), as when SOL is disabled or the BMC gives the port
// to another user.
func (b *BMC) DeactivateSOL() {
	b.mu.Lock()
	now := b.now()
	for _, in := range b.sol.inst {
		if in != nil {
			b.deactivateLocked(in, true, now)
		}
	}
	b.unlockAndFlush(now)
}

// Reboot simulates a BMC firmware reboot: every session ends at once
// (nothing is sent), output the BMC held is lost, and the BMC answers
// nothing for down. The host keeps running; what it prints meanwhile is
// kept (up to BufferSize) for the next console.
func (b *BMC) Reboot(down time.Duration) {
	b.mu.Lock()
	now := b.now()
	b.downUntil.Store(now.Add(down).UnixNano())
	for _, s := range b.sessions {
		b.closeSessionLocked(s, "BMC reboot")
	}
	clear(b.challenges)
	b.sol.notices = nil
	b.sol.con.backlog, b.sol.con.backlogOverrun = nil, false
	b.outbox = nil
	b.stats.reboots.Add(1)
	b.unlockAndFlush(now)
}

// isDown reports whether the BMC is rebooting.
func (b *BMC) isDown(now time.Time) bool {
	u := b.downUntil.Load()
	return u != 0 && now.UnixNano() < u
}
