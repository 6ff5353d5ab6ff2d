package conserver

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// seamNotice matches a notice on a line of its own (banner, replay title,
// replayed events, attach notices).
var seamNotice = regexp.MustCompile(`\r\n\[[^\]\r\n]*\]\r\n`)

// seamLines returns the numbers of the "<prefix>-NNNNNN" lines in what an
// attachment read, in order, notices left out.
func seamLines(text, prefix string) []int {
	re := regexp.MustCompile(regexp.QuoteMeta(prefix) + `-(\d{6})\r\n`)
	var out []int
	for _, m := range re.FindAllStringSubmatch(seamNotice.ReplaceAllString(text, ""), -1) {
		n, _ := strconv.Atoi(m[1])
		out = append(out, n)
	}
	return out
}

// checkSeam reports the first line shown twice or missing in nums, which
// must run from first to last without a hole.
func checkSeam(nums []int, first, last int) error {
	if len(nums) == 0 {
		return fmt.Errorf("no numbered line seen (want %d to %d)", first, last)
	}
	if nums[0] != first {
		return fmt.Errorf("first line %d, want %d", nums[0], first)
	}
	for k := 1; k < len(nums); k++ {
		switch {
		case nums[k] <= nums[k-1]:
			return fmt.Errorf("line %d shown again after line %d (replay and live output overlap)", nums[k], nums[k-1])
		case nums[k] != nums[k-1]+1:
			return fmt.Errorf("lines %d to %d missing (a hole between replay and live output)", nums[k-1]+1, nums[k]-1)
		}
	}
	if nums[len(nums)-1] != last {
		return fmt.Errorf("last line %d, want %d", nums[len(nums)-1], last)
	}
	return nil
}

// holdForReplay puts a in the state Attach leaves it in while it
// prepares a replay (live output held, the log not read yet) and returns
// where its held output begins, for insertReplay.
func holdForReplay(a *Attachment) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.holding = true
	return len(a.buf)
}

// bufText is what a has buffered for its user.
func bufText(a *Attachment) string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return string(a.buf)
}

func printLines(c *Console, prefix string, from, to int) {
	for i := from; i < to; i++ {
		c.output(fmt.Appendf(nil, "%s-%06d\r\n", prefix, i))
	}
}

// TestReplaySeamSameIdentity: two attachments whose attach events would
// read the same (same user, front end, address and mode: two sessions on
// one SSH connection) each get a replay that ends where their own live
// output begins. Driven step by step: a is caught between writing its
// attach event and reading the log (the state Attach is in while it
// prepares the replay) while output arrives and b attaches; a prompt
// without a line ending stands at a's seam. With flush, the log is
// written to disk at every step, so the replay joins records on disk and
// pending ones across the seam.
func TestReplaySeamSameIdentity(t *testing.T) {
	for _, flush := range []bool{false, true} {
		t.Run(fmt.Sprintf("flush=%v", flush), func(t *testing.T) {
			e, _, _, _, _ := engineEnv(t)
			c := e.m.Console("node1")
			step := func() {
				if flush {
					must(t, c.w.Flush())
				}
			}
			id := Identity{User: "bob", Via: "ssh", Remote: "127.0.0.1:40000"}
			printLines(c, "n", 0, 10)
			c.output([]byte("prompt> "))
			a, err := c.Attach(id, AttachOptions{Mode: ModeRO})
			must(t, err)
			defer a.Close()
			heldFrom := holdForReplay(a)
			step()
			c.output([]byte("typed\r\n"))
			printLines(c, "n", 10, 15) // live for a, in the log after a's event
			step()
			b, err := c.Attach(id, AttachOptions{Mode: ModeRO, Replay: 30})
			must(t, err)
			defer b.Close()
			printLines(c, "n", 15, 20) // live for both
			step()
			a.insertReplay(30, heldFrom)

			for _, tc := range []struct {
				name string
				a    *Attachment
			}{{"first", a}, {"second", b}} {
				text := bufText(tc.a)
				if err := checkSeam(seamLines(text, "n"), 0, 19); err != nil {
					t.Errorf("%s attachment: %v:\n%s", tc.name, err, strings.ReplaceAll(text, "\r\n", "\n"))
				}
				p, ty := strings.Count(text, "prompt> "), strings.Count(text, "typed\r\n")
				if p != 1 || ty != 1 || strings.Index(text, "prompt> ") > strings.Index(text, "typed\r\n") {
					t.Errorf("%s attachment: prompt shown %d times, its continuation %d (want once each, in order):\n%s", tc.name, p, ty, strings.ReplaceAll(text, "\r\n", "\n"))
				}
			}
		})
	}
}

// TestReplaySeamSameIdentityConcurrent: the console prints numbered lines
// without pause while two attachments with the same identity and mode
// attach with a replay at the same moment, many times over. Each one's
// replay followed by its live output shows every line once, up to the
// last line printed before it was closed.
func TestReplaySeamSameIdentityConcurrent(t *testing.T) {
	e, _, _, _, _ := engineEnv(t)
	c := e.m.Console("node1")
	id := Identity{User: "bob", Via: "ssh", Remote: "127.0.0.1:40000"}
	deadline := time.Now().Add(8 * time.Second)
	const (
		rounds   = 50
		maxLines = 1000 // per round: 12 KB, well inside every buffer
	)
	for round := range rounds {
		if time.Now().After(deadline) {
			t.Logf("stopped after %d rounds (time bound)", round)
			break
		}
		prefix := fmt.Sprintf("r%03d", round)
		// Lines before the attachments, so that the replay holds some.
		printLines(c, prefix, 0, 30)
		stop, printed := make(chan struct{}), make(chan int)
		go func() {
			// Bounded, so that neither the attachments' buffers nor the
			// log's pending output overflow (that would drop lines).
			i := 30
			for ; i < 30+maxLines; i++ {
				select {
				case <-stop:
					printed <- i
					return
				default:
				}
				c.output(fmt.Appendf(nil, "%s-%06d\r\n", prefix, i))
			}
			<-stop
			printed <- i
		}()
		var (
			wg    sync.WaitGroup
			start = make(chan struct{})
			atts  [2]*Attachment
			rs    [2]*reader
			errs  [2]error
		)
		for k := range atts {
			wg.Go(func() {
				<-start
				atts[k], errs[k] = c.Attach(id, AttachOptions{Mode: ModeRO, Replay: 25})
				if errs[k] == nil {
					rs[k] = readAll(atts[k])
				}
			})
		}
		close(start)
		wg.Wait()
		close(stop)
		next := <-printed // the printer has returned
		printLines(c, prefix, next, next+3)
		last := next + 2
		for k, a := range atts {
			must(t, errs[k])
			r := rs[k]
			a.Close()
			<-r.done
			text := r.text()
			nums := seamLines(text, prefix)
			if len(nums) == 0 {
				t.Fatalf("round %d, attachment %d: no line seen:\n%q", round, k, text)
			}
			// The replay starts somewhere in the lines printed before; from
			// there on, every line once.
			if err := checkSeam(nums, nums[0], last); err != nil {
				t.Fatalf("round %d, attachment %d: %v; it read:\n%s...", round, k, err, strings.ReplaceAll(text[:min(len(text), 1500)], "\r\n", "\n"))
			}
			if !strings.Contains(text, "node1: the last 25 lines") {
				t.Fatalf("round %d, attachment %d: no full replay; it read:\n%s...", round, k, strings.ReplaceAll(text[:min(len(text), 1500)], "\r\n", "\n"))
			}
		}
	}
}
