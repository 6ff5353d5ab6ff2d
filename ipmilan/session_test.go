package ipmilan

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/solgate/solgate/ipmilan/bmcsim"
	"github.com/solgate/solgate/ipmilan/internal/wire"
)

// These tests run sessions over memNet under testing/synctest, so that
// keepalives, timeouts and dead BMCs take no real time.

const memBMCAddr = "127.0.0.1:623"

func memDial(t *testing.T, n *memNet, addr string, cfg Config) (*Session, *memConn) {
	t.Helper()
	cfg, conn := memConfig(n, addr, cfg)
	s, err := Dial(context.Background(), cfg)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { s.Close() })
	return s, conn
}

func memSOL(t *testing.T, n *memNet, addr string, cfg Config, o SOLOptions) (*SOL, *memConn) {
	t.Helper()
	cfg, conn := memConfig(n, addr, cfg)
	c, err := DialSOL(context.Background(), cfg, o)
	if err != nil {
		t.Fatalf("SOL %s: %v", addr, err)
	}
	t.Cleanup(func() { c.Close() })
	return c, conn
}

// TestKeepAliveAndDeadBMC: keepalives hold an idle session open across
// many BMC session timeouts, and a BMC that goes silent ends the session
// after DeadAfter, with ErrNoAnswer.
func TestKeepAliveAndDeadBMC(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := newMemNet()
		bmc := memBMC(t, n, memBMCAddr, bmcsim.Config{SessionTimeout: 30 * time.Second})
		s, _ := memDial(t, n, memBMCAddr, Config{KeepAlive: 15 * time.Second})
		before := bmc.Stats().Commands
		time.Sleep(5 * time.Minute) // ten BMC session timeouts
		if _, err := s.ChassisStatus(context.Background()); err != nil {
			t.Fatalf("session did not survive idle time with keepalives: %v", err)
		}
		// One keepalive per KeepAlive (due a keepAliveGrid late at most).
		if k := bmc.Stats().Commands - before - 1; k < 16 || k > 21 {
			t.Fatalf("%d keepalives in 5 minutes at 15 s, want about 20", k)
		}
		bmc.SetFaults(bmcsim.Faults{Freeze: true})
		start := time.Now()
		<-s.Done()
		if !errors.Is(s.Err(), ErrNoAnswer) {
			t.Fatalf("dead BMC: session ended with %v", s.Err())
		}
		// DeadAfter is 2*15s + 3*1s; the keepalive that notices starts at
		// most KeepAlive later and takes its retries.
		if d := time.Since(start); d < 33*time.Second || d > 33*time.Second+15*time.Second+5*time.Second {
			t.Fatalf("frozen BMC noticed after %v, want 33-53 s", d)
		}
	})
}

// TestKeepAlivesCoalesce: the keepalives of idle sessions opened at
// different moments fall due on a common grid, so a process with many
// sessions wakes a few times a second for them, not once per session and
// keepalive; each session still sends one per KeepAlive, at most one grid
// step late.
func TestKeepAlivesCoalesce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const ka = 15 * time.Second
		grid := keepAliveGrid(ka)
		n := newMemNet()
		var (
			mu    sync.Mutex
			sends = map[string][]time.Time{} // client address: keepalive send times
			watch bool
		)
		n.tap = func(from, to string, b []byte) []byte {
			mu.Lock()
			if watch && strings.HasSuffix(to, ":623") {
				sends[from] = append(sends[from], time.Now())
			}
			mu.Unlock()
			return b
		}
		const sessions = 6
		for i := range sessions {
			addr := fmt.Sprintf("127.0.0.%d:623", 10+i)
			memBMC(t, n, addr, bmcsim.Config{SessionTimeout: 30 * time.Second})
			memDial(t, n, addr, Config{KeepAlive: ka})
			time.Sleep(137 * time.Millisecond) // opened at scattered moments
		}
		mu.Lock()
		watch = true
		mu.Unlock()
		time.Sleep(3 * time.Minute)
		mu.Lock()
		defer mu.Unlock()
		if len(sends) != sessions {
			t.Fatalf("keepalives from %d sessions, want %d", len(sends), sessions)
		}
		instants := map[time.Time]bool{}
		total := 0
		for from, ts := range sends {
			if len(ts) < 11 || len(ts) > 12 {
				t.Errorf("%s: %d keepalives in 3 minutes at %v, want 11-12", from, len(ts), ka)
			}
			for i, at := range ts {
				total++
				instants[at] = true
				if at.UnixNano()%int64(grid) != 0 {
					t.Errorf("%s: keepalive at %v, not on the %v grid", from, at, grid)
				}
				if i > 0 {
					if d := at.Sub(ts[i-1]); d < ka || d > ka+grid {
						t.Errorf("%s: keepalives %v apart, want %v to %v", from, d, ka, ka+grid)
					}
				}
			}
		}
		// Six sessions opened within 0.7 s share at most two grid
		// steps per round.
		if rounds := total / sessions; len(instants) > 2*(rounds+1) {
			t.Errorf("%d keepalives at %d distinct instants, want at most %d", total, len(instants), 2*(rounds+1))
		}
		t.Logf("%d keepalives from %d sessions at %d distinct instants", total, sessions, len(instants))
	})
}

// TestKeepAliveQuietWhileTraffic: a session whose IPMI commands come more
// often than KeepAlive sends no keepalive at all.
func TestKeepAliveQuietWhileTraffic(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := newMemNet()
		bmc := memBMC(t, n, memBMCAddr, bmcsim.Config{SessionTimeout: 30 * time.Second})
		s, _ := memDial(t, n, memBMCAddr, Config{KeepAlive: 15 * time.Second})
		before := bmc.Stats().Commands
		for range 12 {
			time.Sleep(10 * time.Second)
			if _, err := s.ChassisStatus(context.Background()); err != nil {
				t.Fatal(err)
			}
		}
		if k := bmc.Stats().Commands - before - 12; k != 0 {
			t.Fatalf("%d keepalives while a command came every 10 s (KeepAlive 15 s), want none", k)
		}
		time.Sleep(20 * time.Second) // now idle: the keepalive resumes
		if k := bmc.Stats().Commands - before - 12; k != 1 {
			t.Fatalf("%d keepalives in 20 s of idleness after the last command, want 1", k)
		}
	})
}

// TestSOLBMCReboot: a BMC that reboots drops the session silently; the
// console learns it through the keepalive, as a session loss.
func TestSOLBMCReboot(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := newMemNet()
		bmc := memBMC(t, n, memBMCAddr, bmcsim.Config{SOL: bmcsim.SOLConfig{NoBootText: true}})
		c, _ := memSOL(t, n, memBMCAddr, Config{KeepAlive: 10 * time.Second}, SOLOptions{})
		bmc.Reboot(2 * time.Minute)
		start := time.Now()
		ev := waitSOLEvent(t, c, time.Minute, SOLSessionLost)
		if !errors.Is(ev.Err, ErrNoAnswer) {
			t.Fatalf("session lost because %v", ev.Err)
		}
		if d := time.Since(start); d < 23*time.Second || d > 40*time.Second {
			t.Fatalf("reboot noticed after %v, want DeadAfter (23 s) to one keepalive more", d)
		}
		if _, err := c.Read(make([]byte, 1)); err == nil {
			t.Fatal("read after the session was lost succeeded")
		}
	})
}

func waitSOLEvent(t *testing.T, c *SOL, within time.Duration, kinds ...SOLEventKind) SOLEvent {
	t.Helper()
	timeout := time.After(within)
	for {
		select {
		case ev, ok := <-c.Events():
			if !ok {
				t.Fatalf("events closed without %v (console error %v)", kinds, c.Err())
			}
			for _, k := range kinds {
				if ev.Kind == k {
					return ev
				}
			}
		case <-timeout:
			t.Fatalf("no %v event within %v", kinds, within)
		}
	}
}

// TestSessionReadError: a socket read error other than a timeout ends
// the session with that cause at once, and a blocked SOL Read returns.
// (Before, the reader returned silently and Read blocked for ever.)
func TestSessionReadError(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := newMemNet()
		memBMC(t, n, memBMCAddr, bmcsim.Config{SOL: bmcsim.SOLConfig{NoBootText: true}})
		c, conn := memSOL(t, n, memBMCAddr, Config{KeepAlive: -1}, SOLOptions{})
		broken := errors.New("injected socket failure")
		readErr := make(chan error, 1)
		go func() {
			_, err := c.Read(make([]byte, 10))
			readErr <- err
		}()
		synctest.Wait()
		conn.fail(broken)
		synctest.Wait()
		select {
		case <-c.Session().Done():
		default:
			t.Fatal("session still open after its socket failed")
		}
		if !errors.Is(c.Session().Err(), broken) {
			t.Fatalf("session ended with %v, want the socket's error", c.Session().Err())
		}
		select {
		case err := <-readErr:
			if !errors.Is(err, ErrClosed) || !strings.Contains(err.Error(), broken.Error()) {
				t.Fatalf("SOL read returned %v", err)
			}
		default:
			t.Fatal("SOL read still blocked after the session ended")
		}
	})
}

// TestSessionPanicsRecovered injects a panic into each goroutine that
// handles the BMC's packets: the reader, the keepalive, the SOL engine.
// Each ends its own session with an error naming the panic; another
// session in the same process is unaffected.
func TestSessionPanicsRecovered(t *testing.T) {
	for _, where := range []string{"reader", "keepalive", "SOL engine"} {
		t.Run(where, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				n := newMemNet()
				bmc1 := memBMC(t, n, "127.0.0.1:623", bmcsim.Config{SOL: bmcsim.SOLConfig{NoBootText: true}})
				bmc2 := memBMC(t, n, "127.0.0.3:623", bmcsim.Config{SOL: bmcsim.SOLConfig{NoBootText: true}})
				if where == "SOL engine" {
					first := true
					testHookSOLEngine = func(e *solEngine) {
						if !first {
							return
						}
						first = false
						send := e.send
						e.send = func(p []byte) error {
							if p[1] != 0 { // an ACK of output
								var out []byte
								_ = out[len(p)] // the kind of bug a packet could reach
							}
							return send(p)
						}
					}
					t.Cleanup(func() { testHookSOLEngine = nil })
				}
				victim, _ := memSOL(t, n, "127.0.0.1:623", Config{KeepAlive: 10 * time.Second}, SOLOptions{})
				other, _ := memSOL(t, n, "127.0.0.3:623", Config{KeepAlive: 10 * time.Second}, SOLOptions{})
				switch where {
				case "reader":
					victim.Session().setPayloadHandler(func(wire.PayloadType, []byte) { panic("injected reader panic") })
				case "keepalive":
					fn := func(context.Context) error { panic("injected keepalive panic") }
					victim.Session().keepaliveFn.Store(&fn)
				}
				bmc1.HostWrite([]byte("to the victim\r\n"))
				bmc2.HostWrite([]byte("to the other\r\n"))
				select {
				case <-victim.Session().Done():
				case <-time.After(time.Minute):
					t.Fatal("the panic did not end the session")
				}
				var pe *panicError
				if err := victim.Session().Err(); !errors.As(err, &pe) || pe.goroutine != where || !strings.Contains(err.Error(), "panic") {
					t.Fatalf("session ended with %v, want a panic error naming the %s goroutine", err, where)
				}
				t.Logf("victim: %v", victim.Session().Err())
				if _, err := io.ReadAll(victim); err == nil || !errors.As(err, &pe) {
					t.Fatalf("victim console ended with %v, want the panic", err)
				}
				// The other session lives on.
				buf := make([]byte, 64)
				k, err := io.ReadAtLeast(other, buf, len("to the other"))
				if err != nil || !strings.Contains(string(buf[:k]), "to the other") {
					t.Fatalf("other console: %q, %v", buf[:k], err)
				}
				time.Sleep(time.Minute) // keepalives of the other session run
				if _, err := other.Session().ChassisStatus(context.Background()); err != nil || other.Err() != nil {
					t.Fatalf("other session: %v, console %v", err, other.Err())
				}
			})
		})
	}
}

// TestSessionReplayDropped replays an authenticated IPMI response (from
// the BMC's own earlier answer) to a request that reuses its sequence
// number, while the BMC's real answers are dropped: the session's window
// must drop the replay, so the request gets no answer.
func TestSessionReplayDropped(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
	}{{"lanplus", Config{}}, {"lan", Config{Interface: LAN}}} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				n := newMemNet()
				memBMC(t, n, memBMCAddr, bmcsim.Config{Allow15: true})
				var (
					mu       sync.Mutex
					recorded []byte
					drop     bool
				)
				n.tap = func(from, to string, b []byte) []byte {
					if from != memBMCAddr {
						return b
					}
					mu.Lock()
					defer mu.Unlock()
					if drop {
						return nil
					}
					recorded = b
					return b
				}
				cfg := tc.cfg
				cfg.KeepAlive, cfg.Retries, cfg.Timeout = -1, 1, time.Second
				s, conn := memDial(t, n, memBMCAddr, cfg)
				s.mu.Lock()
				seq := s.rqSeq
				s.mu.Unlock()
				if _, err := s.DeviceID(context.Background()); err != nil {
					t.Fatal(err)
				}
				mu.Lock()
				replay := recorded
				drop = true
				mu.Unlock()
				s.mu.Lock()
				s.rqSeq = seq // the next request matches the recorded answer
				s.mu.Unlock()
				go func() {
					time.Sleep(100 * time.Millisecond)
					n.inject(memBMCAddr, conn.addr.String(), replay)
				}()
				if d, err := s.DeviceID(context.Background()); !errors.Is(err, ErrNoAnswer) {
					t.Fatalf("request answered only by a replay: got %+v, %v; want ErrNoAnswer", d, err)
				}
			})
		})
	}
}

// TestSessionFarAheadSequence: one authentic-looking packet numbered far
// ahead (forged in a session without integrity, or a stray) must not
// move the receive window, or every genuine answer after it would look
// old and be dropped.
func TestSessionFarAheadSequence(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
	}{{"lanplus", Config{}}, {"lan", Config{Interface: LAN}}} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				n := newMemNet()
				memBMC(t, n, memBMCAddr, bmcsim.Config{Allow15: true})
				cfg := tc.cfg
				cfg.KeepAlive = -1
				s, conn := memDial(t, n, memBMCAddr, cfg)
				ctx := context.Background()
				if _, err := s.DeviceID(ctx); err != nil {
					t.Fatal(err)
				}
				s.mu.Lock()
				hi := s.inAuth.hi
				s.mu.Unlock()
				msg := wire.Response{RqAddr: wire.RemoteSWID, NetFn: wire.NetFnApp | 1, RsAddr: wire.BMCSlaveAddr, RqSeq: 63, Cmd: 1}.Append(nil)
				pkt := wire.RMCPHeader{Seq: wire.RMCPSeqNoACK, Class: wire.ClassIPMI}.Append(nil)
				far := hi + 1<<20
				if s.v2 {
					var err error
					if pkt, err = s.keys.Seal(pkt, wire.Packet20{Type: wire.PayloadIPMI, SessionID: s.sidm, Seq: far}, msg); err != nil {
						t.Fatal(err)
					}
				} else {
					code, err := wire.AuthCode15(s.authType, s.pw16, s.sid, msg, far)
					if err != nil {
						t.Fatal(err)
					}
					pkt = wire.Session15{AuthType: s.authType, Seq: far, SessionID: s.sid, AuthCode: code, Message: msg}.Append(pkt)
				}
				n.inject(memBMCAddr, conn.addr.String(), pkt)
				synctest.Wait()
				for i := range 3 {
					if _, err := s.DeviceID(ctx); err != nil {
						t.Fatalf("genuine request %d after a far-ahead packet: %v", i, err)
					}
				}
			})
		})
	}
}

// TestSOLSilentTheft: a BMC that lets another session take the payload
// without telling the owner (no "SOL deactivating" packet, ipmi_sim
// style). The owner's keepalive, Get Payload Instance Info, sees another
// session own the instance and ends the console with ErrSOLStolen.
func TestSOLSilentTheft(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := newMemNet()
		bmc := memBMC(t, n, memBMCAddr, bmcsim.Config{SOL: bmcsim.SOLConfig{NoBootText: true, SilentTakeover: true}})
		owner, _ := memSOL(t, n, memBMCAddr, Config{KeepAlive: 15 * time.Second}, SOLOptions{})
		thief, _ := memSOL(t, n, memBMCAddr, Config{KeepAlive: 15 * time.Second}, SOLOptions{Steal: true})
		if st := bmc.Stats(); st.SOLSteals != 1 {
			t.Fatalf("BMC counted %d steals", st.SOLSteals)
		}
		start := time.Now()
		ev := waitSOLEvent(t, owner, time.Minute, SOLStolen, SOLDeactivated)
		<-owner.Done() // the event comes first, then the console ends
		if ev.Kind != SOLStolen || !errors.Is(owner.Err(), ErrSOLStolen) {
			t.Fatalf("owner saw %v, console error %v: want stolen", ev.Kind, owner.Err())
		}
		if d := time.Since(start); d > 15*time.Second+5*time.Second {
			t.Fatalf("theft noticed after %v, want within one keepalive", d)
		}
		if !strings.Contains(ev.Detail, fmt.Sprintf("%#x", thief.Session().ID())) {
			t.Fatalf("event %q does not name the thief's session %#x", ev.Detail, thief.Session().ID())
		}
		if thief.Err() != nil {
			t.Fatalf("thief's console ended: %v", thief.Err())
		}
	})
}

// TestBadBMCs: a BMC that answers garbage, nothing, or through a lossy
// link gives a clear error within the timeout, or works; it never hangs.
func TestBadBMCs(t *testing.T) {
	for _, g := range []bmcsim.GarbageKind{bmcsim.GarbageRandom, bmcsim.GarbageWrongSeq, bmcsim.GarbageBadChecksum, bmcsim.GarbageTruncated} {
		t.Run("garbage "+g.String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				n := newMemNet()
				memBMC(t, n, memBMCAddr, bmcsim.Config{Faults: bmcsim.Faults{Garbage: g}})
				cfg, _ := memConfig(n, memBMCAddr, Config{Timeout: 100 * time.Millisecond})
				start := time.Now()
				_, err := Dial(context.Background(), cfg)
				if !errors.Is(err, ErrNoAnswer) && !errors.Is(err, ErrProtocol) {
					t.Fatalf("got %v", err)
				}
				// At most three tries of 100 ms for each of the few setup steps.
				if d := time.Since(start); d > 2*time.Second {
					t.Fatalf("took %v", d)
				}
			})
		})
	}
	t.Run("frozen", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			n := newMemNet()
			memBMC(t, n, memBMCAddr, bmcsim.Config{Faults: bmcsim.Faults{Freeze: true}})
			cfg, _ := memConfig(n, memBMCAddr, Config{Timeout: 100 * time.Millisecond, Retries: 2})
			start := time.Now()
			_, err := Dial(context.Background(), cfg)
			if !errors.Is(err, ErrNoAnswer) || time.Since(start) != 300*time.Millisecond {
				t.Fatalf("got %v after %v, want no answer after 3 tries of 100ms", err, time.Since(start))
			}
		})
	})
	t.Run("lossy", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			n := newMemNet()
			bmc := memBMC(t, n, memBMCAddr, bmcsim.Config{Faults: bmcsim.Faults{Seed: 1, DropRequests: 0.15, Drop: 0.15, Duplicate: 0.2, Reorder: 0.2}})
			for i := range 20 {
				cfg, _ := memConfig(n, memBMCAddr, Config{Timeout: 50 * time.Millisecond, Retries: 8})
				s, err := Dial(context.Background(), cfg)
				if err != nil {
					t.Fatalf("session %d: %v", i, err)
				}
				on := i%2 == 0
				ctl := PowerOff
				if on {
					ctl = PowerOn
				}
				if err := s.ChassisControl(context.Background(), ctl); err != nil {
					t.Fatalf("session %d: %v", i, err)
				}
				if bmc.Power() != on {
					t.Fatalf("session %d: power %v, want %v", i, bmc.Power(), on)
				}
				s.Close()
			}
		})
	})
}

// TestSOLLossyStream: a 1 MB numbered stream through 10% loss plus
// duplication and reordering each way arrives complete and in order.
func TestSOLLossyStream(t *testing.T) {
	if testing.Short() {
		t.Skip("1 MB through a lossy link")
	}
	synctest.Test(t, func(t *testing.T) {
		n := newMemNet()
		bmc := memBMC(t, n, memBMCAddr, bmcsim.Config{SOL: bmcsim.SOLConfig{NoBootText: true, RetryInterval: 5 * time.Millisecond, Retries: 1000}})
		c, _ := memSOL(t, n, memBMCAddr, Config{Timeout: 100 * time.Millisecond, Retries: 10}, SOLOptions{RetryInterval: 20 * time.Millisecond, Retries: 1000})
		bmc.SetFaults(bmcsim.Faults{Seed: 3, DropRequests: 0.1, Drop: 0.1, Duplicate: 0.05, Reorder: 0.05})
		const total = 1 << 20
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		streamed := make(chan error, 1)
		go func() { streamed <- bmc.Stream(ctx, 0, total) }()
		got := make([]byte, total)
		if _, err := io.ReadFull(c, got); err != nil {
			t.Fatalf("read %d bytes: %v", total, err)
		}
		if want := bmcsim.AppendStreamText(nil, 0, total); !bytes.Equal(got, want) {
			i := 0
			for i < total && got[i] == want[i] {
				i++
			}
			t.Fatalf("output differs at byte %d: lost, duplicated or reordered", i)
		}
		if err := <-streamed; err != nil {
			t.Fatal(err)
		}
		st := c.Stats()
		t.Logf("client stats %+v", st)
		if st.Duplicates == 0 || st.Gaps != 0 || st.Overruns != 0 {
			t.Errorf("want duplicates dropped and no gaps or overruns: %+v", st)
		}
	})
}

// TestSOLPowerWatch: with PowerEvery, a power change nobody made through
// this console (the power button, another tool) is reported by the
// keepalive, and the keepalives that look at the power state replace
// owner checks instead of adding requests.
func TestSOLPowerWatch(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := newMemNet()
		bmc := memBMC(t, n, memBMCAddr, bmcsim.Config{PowerOn: true, SOL: bmcsim.SOLConfig{NoBootText: true}})
		c, _ := memSOL(t, n, memBMCAddr, Config{KeepAlive: 10 * time.Second}, SOLOptions{PowerEvery: 2})
		time.Sleep(25 * time.Second) // two keepalives: the second sees power on, the baseline
		bmc.SetPower(false)
		ev := waitSOLEvent(t, c, time.Minute, SOLPowerOff, SOLPowerOn)
		if ev.Kind != SOLPowerOff {
			t.Fatalf("after the power went off: %v %s", ev.Kind, ev.Detail)
		}
		bmc.SetPower(true)
		if ev := waitSOLEvent(t, c, time.Minute, SOLPowerOff, SOLPowerOn); ev.Kind != SOLPowerOn {
			t.Fatalf("after the power came back: %v %s", ev.Kind, ev.Detail)
		}
		// One command per keepalive interval, power looks included.
		mark, at := bmc.Stats().Commands, time.Now()
		time.Sleep(100 * time.Second)
		if got, most := bmc.Stats().Commands-mark, uint64(time.Since(at)/(10*time.Second))+1; got > most {
			t.Errorf("%d commands in %v of keepalives every 10s: power looks added requests", got, time.Since(at))
		}
		if c.Err() != nil {
			t.Fatalf("console ended: %v", c.Err())
		}
	})
}

// TestActivateSOLAnswerLost: the BMC activates the payload but its answer
// is lost; the retransmitted Activate Payload is told the payload is
// active, on this very session (BMCs that do not recognise a retransmitted
// request execute it again). That is not another client: the session
// takes its own payload back and the console works, instead of the
// console manager waiting for a "foreign" holder that is itself.
func TestActivateSOLAnswerLost(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := newMemNet()
		memBMC(t, n, memBMCAddr, bmcsim.Config{SOL: bmcsim.SOLConfig{NoBootText: true}})
		var (
			mu     sync.Mutex
			armed  bool
			seen   int
			lostAt = 2 // the answers after arming: activation status, then Activate Payload
		)
		n.tap = func(from, to string, b []byte) []byte {
			if from != memBMCAddr {
				return b
			}
			mu.Lock()
			defer mu.Unlock()
			if armed {
				if seen++; seen == lostAt {
					return nil
				}
			}
			return b
		}
		s, _ := memDial(t, n, memBMCAddr, Config{KeepAlive: -1, Timeout: 500 * time.Millisecond})
		mu.Lock()
		armed = true
		mu.Unlock()
		c, err := s.ActivateSOL(context.Background(), SOLOptions{})
		if err != nil {
			t.Fatalf("ActivateSOL with its answer lost: %v", err)
		}
		defer c.Close()
		mu.Lock()
		if seen < lostAt {
			t.Fatalf("only %d answers after arming: the Activate Payload answer was not the one lost", seen)
		}
		mu.Unlock()
		if _, err := c.Write([]byte("x")); err != nil {
			t.Fatalf("write to the console: %v", err)
		}
	})
}
