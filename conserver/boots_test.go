package conserver

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/solgate/solgate/conserver/config"
	"github.com/solgate/solgate/ipmilan/bmcsim"
	"github.com/solgate/solgate/logstore"
)

func TestBootDetector(t *testing.T) {
	t.Parallel()
	d := config.Daemon{BootFirmware: []string{"American Megatrends", "to enter setup"}, BootKernel: []string{"] Linux version ", "^Linux version "}}
	bp, err := compileBoots(&d)
	must(t, err)
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	type step struct {
		at     time.Duration
		chunk  string
		power  bool   // a power action marks a boot before the chunk
		starts string // the boot the chunk reveals ("" none): its event text contains this
		before string // the part of the chunk before the event
	}
	for _, tc := range []struct {
		name  string
		steps []step
	}{
		{"firmware-then-kernel-one-boot", []step{
			{0, "Version 2.20 (C) American Megatrends\r\n", false, "firmware", ""},
			{time.Second, "Press DEL to enter setup\r\n", false, "", ""},
			{10 * time.Second, "[    0.000000] Linux version 6.1\r\n", false, "", ""},
		}},
		{"kernel-then-firmware-new-boot", []step{
			{0, "[    0.000000] Linux version 6.1\r\nlogin: ", false, "kernel", ""},
			{time.Minute, "\r\nreboot: Restarting system\r\nAmerican Megatrends\r\n", false, "firmware", "\r\nreboot: Restarting system\r\n"},
		}},
		{"power-then-banners-one-boot", []step{
			{0, "shutting down\r\n", true, "", ""},
			{5 * time.Second, "American Megatrends\r\n", false, "", ""},
			{20 * time.Second, "x] Linux version 6\r\n", false, "", ""},
		}},
		{"kernel-twice-a-minute-apart", []step{
			{0, "[0.0] Linux version 6\r\n", false, "kernel", ""},
			{30 * time.Second, "[0.0] Linux version 6\r\n", false, "", ""},
			{2 * time.Minute, "[0.0] Linux version 6\r\n", false, "kernel", ""},
		}},
		{"split-across-chunks", []step{
			{0, "noise\r\n[    0.000000] Lin", false, "", ""},
			{0, "ux version 6.1\r\n", false, "kernel", ""},
		}},
		{"anchored", []step{
			{0, "$ cat /proc/version\r\nsaid Linux version 6\r\n", false, "", ""},
			{time.Minute, "\rLinux version 6.1 (gcc)\r\n", false, "kernel", ""},
		}},
		{"long-line-tested-at-the-cap", []step{
			{0, strings.Repeat("x", 400) + "American Megatrends" + strings.Repeat("y", 400), false, "firmware", ""},
			{time.Second, strings.Repeat("z", 300) + "American Megatrends\r\n", false, "", ""},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var det bootDetector
			for i, s := range tc.steps {
				now := t0.Add(s.at)
				if s.power {
					det.powered(now)
				}
				p := []byte(s.chunk)
				j0, j, how := det.scan(p, bp, now)
				if s.starts == "" {
					if j0 >= 0 {
						t.Fatalf("step %d: a boot (%s) at %d, want none", i, how, j0)
					}
					continue
				}
				if j0 < 0 || !strings.Contains(how, s.starts) {
					t.Fatalf("step %d: boot %q at %d, want a %s boot", i, how, j0, s.starts)
				}
				if string(p[:j0]) != s.before {
					t.Fatalf("step %d: event after %q, want after %q", i, p[:j0], s.before)
				}
				if rest, _, _ := det.scan(p[j:], bp, now); rest >= 0 {
					t.Fatalf("step %d: a second boot in the rest", i)
				}
			}
		})
	}
}

// TestBootMarkedBeforeItsLine: the banner line's head was logged in an
// earlier chunk; the boot event still comes before the whole line.
func TestBootMarkedBeforeItsLine(t *testing.T) {
	t.Parallel()
	f := &fakeBMC{}
	e := newEnv(t, "", []consoleSpec{{name: "node1", bmc: "127.0.0.1:623"}}, Options{}, func(m *Manager) { m.open = f.open })
	c := e.m.Console("node1")
	waitState(t, c, Up, 5*time.Second)
	for _, chunk := range []string{"old\r\n[    0.000000] Li", "nux version 6.1 (gcc)\r\n", "more\r\n"} {
		c.output([]byte(chunk))
	}
	lines, err := e.store.Tail("node1", 4)
	must(t, err)
	var got []string
	for _, l := range lines {
		got = append(got, string(l.Event)+"|"+string(l.Text))
	}
	want := []string{"|old\r\n", `boot|kernel banner seen: "] Linux version "`, "|[    0.000000] Linux version 6.1 (gcc)\r\n", "|more\r\n"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("log:\n%q\nwant:\n%q", got, want)
	}
}

// TestPowerCycleFromTheEscapeMenu: ^Ec!c y over the live session; the
// BMC cycles the host, which boots again: one boot event (the power
// action), then the new boot's output.
func TestPowerCycleFromTheEscapeMenu(t *testing.T) {
	t.Parallel()
	s := startSim(t, bmcsim.Config{PowerOn: true, CycleDelay: 100 * time.Millisecond})
	e := newEnv(t, "", []consoleSpec{{name: "node1", bmc: s.Addr}}, Options{})
	c := e.m.Console("node1")
	waitState(t, c, Up, 10*time.Second)
	a, err := c.Attach(Identity{User: "alice", Via: "test"}, AttachOptions{Replay: 30})
	must(t, err)
	r := readAll(a)
	r.wait(t, "simnode login: ", 10*time.Second)
	sessions := s.Stats().SessionsOpened
	a.Write([]byte("\x05c!c"))
	r.wait(t, "power cycle? [y/N]", 5*time.Second)
	a.Write([]byte("y"))
	r.wait(t, "node1: power cycle: ok", 10*time.Second)
	waitFor(t, "the new boot's login prompt", 10*time.Second, func() bool {
		// After the answer: the replay and the live output may both show
		// the first boot's prompt (their seam can repeat a few bytes).
		_, after, _ := strings.Cut(r.text(), "node1: power cycle: ok")
		return strings.Contains(after, "simnode login: ")
	})
	if st := s.Stats(); st.SessionsOpened != sessions || st.PowerOffs != 1 || st.PowerOns < 1 {
		t.Fatalf("BMC stats %+v: want the cycle over the existing session", st)
	}
	// Read back from disk (flushed within a second), as solgate log does.
	var (
		boots  []logstore.Boot
		text   string
		nboots int
	)
	waitFor(t, "the new boot on disk", 5*time.Second, func() bool {
		boots, err = e.store.Boots(context.Background(), "node1")
		if err != nil || len(boots) < 2 {
			return false
		}
		var cur []string
		nboots = 0
		for l, err := range e.store.Lines(context.Background(), "node1", logstore.Query{Since: boots[len(boots)-1].Start}) {
			must(t, err)
			cur = append(cur, string(l.Event)+" "+string(l.Text))
			if l.Event == logstore.EventBoot {
				nboots++
			}
		}
		text = strings.Join(cur, "")
		return strings.Contains(text, "simnode login: ")
	})
	if boots[len(boots)-1].How != "power cycle by alice" {
		t.Fatalf("boots %+v: want the last started by the power cycle", boots)
	}
	for _, want := range []string{"boot power cycle by alice", "Simulated BIOS", "Linux version 6.1.0-18-amd64", "simnode login: "} {
		if !strings.Contains(text, want) {
			t.Fatalf("the current boot lacks %q:\n%s", want, text)
		}
	}
	if nboots != 1 {
		t.Fatalf("the cycle's banners started more boots:\n%s", text)
	}
	a.Close()
}

// TestPowerOnSeenStartsBoot: a node powered on by something other than
// this console (its power button, another tool) gets a boot marker from
// the keepalive that looks at the chassis, even when its console prints
// nothing; when its firmware's banner came first, that banner's boot is
// the one, and the power look adds only a power event.
func TestPowerOnSeenStartsBoot(t *testing.T) {
	t.Parallel()
	for _, quiet := range []bool{true, false} {
		t.Run(fmt.Sprintf("quiet=%v", quiet), func(t *testing.T) {
			t.Parallel()
			s := startSim(t, bmcsim.Config{PowerOn: false, SOL: bmcsim.SOLConfig{NoBootText: quiet}})
			e := newEnv(t, `ipmi_keepalive = "500ms"`, []consoleSpec{{name: "node1", bmc: s.Addr}}, Options{})
			c := e.m.Console("node1")
			waitState(t, c, Up, 10*time.Second)
			// The first power look (every 4th keepalive) must see it off:
			// wait for five keepalives' worth of commands, however slow
			// the machine, instead of a fixed time.
			c0 := s.Stats().Commands
			waitFor(t, "five keepalives", 30*time.Second, func() bool { return s.Stats().Commands >= c0+5 })
			s.SetPower(true)
			want := "power on seen (the chassis was off)"
			if !quiet {
				want = `firmware banner seen: "to enter setup"`
			}
			var boots []logstore.Boot
			waitFor(t, "a power event after power on", 15*time.Second, func() bool {
				var err error
				boots, err = e.store.Boots(context.Background(), "node1")
				if err != nil || len(boots) == 0 {
					return false
				}
				for l, err := range e.store.Lines(context.Background(), "node1", logstore.Query{}) {
					if err == nil && (l.Event == logstore.EventBoot || l.Event == logstore.EventPower) && strings.Contains(string(l.Text), "power on seen") {
						return true
					}
				}
				return false
			})
			// Again: the line may have come after the boots were read.
			boots, err := e.store.Boots(context.Background(), "node1")
			must(t, err)
			var real []logstore.Boot // the first is what came before the first marker
			for _, b := range boots {
				if b.How != "" {
					real = append(real, b)
				}
			}
			if len(real) != 1 || real[0].How != want {
				t.Fatalf("boots %+v: want one, %q", boots, want)
			}
		})
	}
}

// TestReplaySeamExact: users attaching with a replay while the console
// prints fast see every line once: the replay ends where their live
// output begins (at their attach event in the log), nothing repeated,
// nothing skipped.
func TestReplaySeamExact(t *testing.T) {
	t.Parallel()
	s := startSim(t, bmcsim.Config{PowerOn: true, SOL: bmcsim.SOLConfig{NoBootText: true}})
	e := newEnv(t, "", []consoleSpec{{name: "node1", bmc: s.Addr}}, Options{})
	c := e.m.Console("node1")
	waitState(t, c, Up, 10*time.Second)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go s.Stream(ctx, 20000, 1<<30)
	header := regexp.MustCompile(`(\d{10}) ABCDEFGHIJ`)
	notice := regexp.MustCompile(`\r\n\[[^\]\r\n]*\]\r\n`)
	time.Sleep(300 * time.Millisecond)
	for i := range 8 {
		a, err := c.Attach(Identity{User: "carol", Via: "test"}, AttachOptions{Replay: 10})
		must(t, err)
		r := readAll(a)
		time.Sleep(150 * time.Millisecond)
		a.Close()
		var offs []int
		// Notices (banner, replay title, events) may stand inside a line.
		text := notice.ReplaceAllString(r.text(), "")
		for _, m := range header.FindAllStringSubmatch(text, -1) {
			n, _ := strconv.Atoi(m[1])
			offs = append(offs, n)
		}
		if len(offs) < 12 {
			t.Fatalf("attach %d: only %d stream lines seen", i, len(offs))
		}
		for k := 1; k < len(offs); k++ {
			if offs[k] != offs[k-1]+bmcsim.StreamLineLen {
				t.Fatalf("attach %d: line %d after line %d (replay and live output overlap or leave a hole)", i, offs[k], offs[k-1])
			}
		}
	}
}
