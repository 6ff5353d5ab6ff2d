package conserver

import (
	"bytes"
	"fmt"
	"strings"
	"time"

	"github.com/solgate/solgate/conserver/config"
	"github.com/solgate/solgate/logstore"
)

// Boots. The console log marks where each boot starts with a "boot"
// event: at power actions solgate performs (cycle, reset, power on), and
// at boot banners in the output, matched per line against [server]
// boot_firmware (BIOS/UEFI POST) and boot_kernel (the kernel's first
// line) substrings. Each line is tested once (at its end, or once its
// first maxBootLine bytes are in) with bytes.Contains per pattern: no
// regexp, no per-byte state machine.
//
// A banner starts a new boot unless it continues the current one: boots
// go power action, then firmware, then kernel; a banner of a later stage
// than the last mark continues the boot, one of the same stage within
// sameStage continues it too (POST prints several banner lines), and any
// other starts a new boot. So a power cycle followed by its POST and
// kernel lines is one boot, and a kernel line after a kernel line a
// minute later (a reboot whose firmware prints nothing on the serial
// line) is a new one. The chassis power state is not polled: at 10,000
// consoles that would be real load on the BMCs, and the output says it.

const (
	maxBootLine = 512
	sameStage   = time.Minute
)

type bootStage uint8

const (
	stageNone bootStage = iota
	stagePower
	stageFirmware
	stageKernel
)

// bootPattern is one compiled pattern.
type bootPattern struct {
	lit      []byte
	rare     int  // the index in lit of its rarest byte (rareness), which the search looks for
	anchored bool // at the line start (after leading CRs)
	stage    bootStage
	text     string
}

type bootPatterns struct{ pats []bootPattern }

func compileBoots(d *config.Daemon) (*bootPatterns, error) {
	bp := &bootPatterns{}
	add := func(list []string, st bootStage) {
		for _, p := range list {
			lit, anchored := p, false
			if len(lit) > 0 && lit[0] == '^' {
				lit, anchored = lit[1:], true
			}
			if lit == "" {
				continue
			}
			bp.pats = append(bp.pats, bootPattern{lit: []byte(lit), rare: rarest(lit), anchored: anchored, stage: st, text: lit})
		}
	}
	add(d.BootFirmware, stageFirmware)
	add(d.BootKernel, stageKernel)
	return bp, nil
}

// first returns where the earliest occurrence of any pattern in p starts,
// -1 if none occurs (a line can match only where one does).
func (bp *bootPatterns) first(p []byte) int {
	k := -1
	for i := range bp.pats {
		lim := p
		if k >= 0 {
			lim = p[:min(len(p), k+len(bp.pats[i].lit)-1)] // only an earlier one matters
		}
		if j := bp.pats[i].index(lim); j >= 0 {
			k = j
		}
	}
	return k
}

// index is bytes.Index(s, p.lit), found by looking for the pattern's
// rarest byte: console text seldom holds it, so one vectorised
// IndexByte pass over s usually settles it, where bytes.Index stops at
// every occurrence of the first byte (a space, a bracket, a "t").
func (p *bootPattern) index(s []byte) int {
	r, lit := p.rare, p.lit
	for from := r; from < len(s); {
		j := bytes.IndexByte(s[from:], lit[r])
		if j < 0 {
			return -1
		}
		start := from + j - r
		if bytes.HasPrefix(s[start:], lit) {
			return start
		}
		from += j + 1
	}
	return -1
}

// rarest returns the index in lit of the byte least likely in console
// text: controls and bytes past ASCII, then rarer punctuation, capitals,
// common punctuation, digits, then lower case by English letter
// frequency; space is the most common of all.
func rarest(lit string) int {
	const common = "etaoinshrdlcumwfgypbvkjxqz" // most frequent first
	score := func(c byte) int {
		switch {
		case c == ' ':
			return 100
		case c >= 'a' && c <= 'z':
			return 99 - strings.IndexByte(common, c)
		case c >= 'A' && c <= 'Z':
			return 50
		case c >= '0' && c <= '9':
			return 70
		case strings.IndexByte(".,:;-_/[]()=<>", c) >= 0:
			return 60 // kernel and firmware lines are full of them
		case c < ' ' || c > '~':
			return 0
		}
		return 30
	}
	best := 0
	for i := 1; i < len(lit); i++ {
		if score(lit[i]) < score(lit[best]) {
			best = i
		}
	}
	return best
}

// match returns the first pattern the line matches.
func (bp *bootPatterns) match(line []byte) (*bootPattern, bool) {
	for i := range bp.pats {
		p := &bp.pats[i]
		if p.anchored {
			if bytes.HasPrefix(bytes.TrimLeft(line, "\r"), p.lit) {
				return p, true
			}
		} else if p.index(line) >= 0 {
			return p, true
		}
	}
	return nil, false
}

// bootDetector follows one console's output line by line. Guarded by
// Console.outMu.
type bootDetector struct {
	line    []byte // the current line's first maxBootLine bytes (allocated at first output)
	tested  int    // len(line) when it was last tested
	matched bool   // the current line matched already
	stage   bootStage
	last    time.Time
}

// scan follows p. When a line of p reveals a new boot it returns the
// offset in p where that line's part in p starts (the boot event goes
// before it), the offset where scanning stopped, and the event text; i
// is -1 when p holds no boot start.
func (d *bootDetector) scan(p []byte, bp *bootPatterns, now time.Time) (i, j int, how string) {
	return d.scanLines(p, bp, now, true)
}

// scanLines is scan; with skip false it copies and tests every line
// (what scan did before it skipped lines: the fuzz test's reference).
func (d *bootDetector) scanLines(p []byte, bp *bootPatterns, now time.Time, skip bool) (i, j int, how string) {
	off := 0
	for off < len(p) {
		if skip && len(d.line) == 0 && !d.matched {
			// At a line start: lines that end before the first place a
			// pattern occurs cannot match, so they are skipped, not
			// copied and tested one by one (most output holds none).
			k := bp.first(p[off:])
			if k < 0 {
				d.keepTail(p[off:])
				return -1, len(p), ""
			}
			if nl := bytes.LastIndexByte(p[off:off+k], '\n'); nl >= 0 {
				off += nl + 1
			}
		}
		end := len(p)
		if k := bytes.IndexByte(p[off:], '\n'); k >= 0 {
			end = off + k + 1
		}
		seg := p[off:end]
		if !d.matched && len(d.line) < maxBootLine {
			if d.line == nil {
				d.line = make([]byte, 0, maxBootLine)
			}
			d.line = append(d.line, seg[:min(len(seg), maxBootLine-len(d.line))]...)
			// Test once per line: at its end, or when its first
			// maxBootLine bytes are in.
			if done := seg[len(seg)-1] == '\n' || len(d.line) == maxBootLine; done && len(d.line) > d.tested {
				d.tested = len(d.line)
				if pat, ok := bp.match(d.line); ok {
					d.matched = true
					if d.begins(pat.stage, now) {
						how = fmt.Sprintf("%s%s%q", stageName(pat.stage), bannerSeen, pat.text)
						if seg[len(seg)-1] == '\n' {
							d.endLine()
						}
						return off, end, how
					}
				}
			}
		}
		if seg[len(seg)-1] == '\n' {
			d.endLine()
		}
		off = end
	}
	return -1, len(p), ""
}

// keepTail starts the current line with the unfinished last line of p,
// which holds no pattern (nor do the lines before it).
func (d *bootDetector) keepTail(p []byte) {
	tail := p[bytes.LastIndexByte(p, '\n')+1:]
	if len(tail) == 0 {
		return
	}
	if d.line == nil {
		d.line = make([]byte, 0, maxBootLine)
	}
	d.line = append(d.line[:0], tail[:min(len(tail), maxBootLine)]...)
	d.tested = len(d.line) // tested: it holds no pattern
}

func (d *bootDetector) endLine() {
	d.line, d.tested, d.matched = d.line[:0], 0, false
}

// begins records a banner of stage st and reports whether it starts a
// new boot.
func (d *bootDetector) begins(st bootStage, now time.Time) bool {
	cont := d.stage != stageNone && (st > d.stage || st == d.stage && now.Sub(d.last) < sameStage)
	d.stage, d.last = st, now
	return !cont
}

// powered records a boot started by a power action.
func (d *bootDetector) powered(now time.Time) {
	d.stage, d.last = stagePower, now
}

func stageName(s bootStage) string {
	switch s {
	case stageFirmware:
		return "firmware"
	case stageKernel:
		return "kernel"
	}
	return "power"
}

// BootOptions are the options for logstore's Boots on logs the manager
// writes: a boot it marks at a banner line (firmware or kernel banner
// seen) starts with the screen that line is on (logstore.BootOptions).
var BootOptions = logstore.BootOptions{SeenOnScreen: bootSeenOnScreen}

// bootSeenOnScreen says a boot event is one written in front of the
// banner line that revealed it (the text the detector writes, below).
func bootSeenOnScreen(how string) bool { return strings.Contains(how, bannerSeen) }

// bannerSeen is in the text of every boot event marked at a banner.
const bannerSeen = " banner seen: "

// logOutputLocked writes console output that came at now to the log,
// with a boot event in front of every line that starts a boot. outMu is
// held.
func (c *Console) logOutputLocked(p []byte, now time.Time) {
	bp := c.m.boots.Load()
	if bp == nil || len(bp.pats) == 0 {
		c.w.Write(p)
		return
	}
	for len(p) > 0 {
		i, j, how := c.boot.scan(p, bp, now)
		if i < 0 {
			c.w.Write(p)
			return
		}
		if i > 0 {
			c.w.Write(p[:i])
		}
		c.w.EventBeforeLine(logstore.EventBoot, how)
		c.logger().Info("conserver: boot", "how", how)
		c.w.Write(p[i:j])
		p = p[j:]
	}
}

// powerOnSeen is the keepalive seeing the chassis powered on after it was
// off at the previous look: a boot, unless output already marked one
// since then (the firmware's banner usually comes first).
func (c *Console) powerOnSeen() {
	const how = "power on seen (the chassis was off)"
	since := time.Duration(powerEvery+1) * c.m.ipmiConfig(c.settings()).KeepAlive
	c.outMu.Lock()
	marked := !c.boot.last.IsZero() && time.Since(c.boot.last) < since
	c.outMu.Unlock()
	if marked {
		c.event(logstore.EventPower, how)
		return
	}
	c.markBoot(how)
	c.logger().Info("conserver: boot", "how", how)
}

// markBoot records a boot started by a power action.
func (c *Console) markBoot(how string) {
	c.outMu.Lock()
	defer c.outMu.Unlock()
	c.w.Event(logstore.EventBoot, how)
	c.boot.powered(time.Now())
}
