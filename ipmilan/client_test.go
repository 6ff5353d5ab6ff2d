package ipmilan_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/solgate/solgate/ipmilan"
	"github.com/solgate/solgate/ipmilan/bmcsim"
)

// startBMC serves one simulated BMC on a loopback port for the test.
func startBMC(t *testing.T, cfg bmcsim.Config) (*bmcsim.BMC, string) {
	t.Helper()
	if cfg.Users == nil {
		cfg.Users = []bmcsim.User{{Name: "admin", Password: "secret"}, {Name: "viewer", Password: "viewpw", MaxPriv: bmcsim.PrivUser}}
	}
	b := bmcsim.New(cfg)
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); b.Serve(ctx, pc) }()
	t.Cleanup(func() { cancel(); pc.Close(); <-done })
	return b, pc.LocalAddr().String()
}

func dial(t *testing.T, cfg ipmilan.Config) (*ipmilan.Session, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if cfg.User == "" {
		cfg.User = "admin"
	}
	if cfg.Password == nil {
		cfg.Password = ipmilan.Secret("secret")
	}
	return ipmilan.Dial(ctx, cfg)
}

func TestCipherSuites(t *testing.T) {
	all := []uint8{1, 2, 3, 6, 7, 8, 11, 12, 15, 16, 17}
	bmc, addr := startBMC(t, bmcsim.Config{CipherSuites: all})
	for _, id := range all {
		weak := id != 3 && id != 8 && id != 12 && id != 17 // no integrity or no encryption
		s, err := dial(t, ipmilan.Config{Addr: addr, CipherSuite: int(id), Insecure: weak})
		if err != nil {
			t.Fatalf("suite %d: %v", id, err)
		}
		ctx := context.Background()
		want := id%2 == 0 // alternate power states so each suite changes something
		ctl := ipmilan.PowerOff
		if want {
			ctl = ipmilan.PowerOn
		}
		if err := s.ChassisControl(ctx, ctl); err != nil {
			t.Fatalf("suite %d: %v", id, err)
		}
		st, err := s.ChassisStatus(ctx)
		if err != nil || st.PowerOn() != want || bmc.Power() != want {
			t.Fatalf("suite %d: status %+v err %v, BMC power %v, want %v", id, st, err, bmc.Power(), want)
		}
		if s.CipherSuite() != int(id) {
			t.Fatalf("suite %d: session reports %d", id, s.CipherSuite())
		}
		s.Close()
	}
}

// TestWeakSuites: suites without integrity or encryption are never
// chosen automatically, are refused when named without Insecure (before
// any packet of the handshake), and log a warning (without secrets) when
// allowed.
func TestWeakSuites(t *testing.T) {
	weak := []uint8{1, 2, 6, 7, 11, 15, 16}
	bmc, addr := startBMC(t, bmcsim.Config{CipherSuites: weak})
	for _, id := range weak {
		if _, err := dial(t, ipmilan.Config{Addr: addr, CipherSuite: int(id)}); !errors.Is(err, ipmilan.ErrInsecure) {
			t.Fatalf("suite %d without Insecure: %v", id, err)
		}
	}
	if st := bmc.Stats(); st.SessionsOpened != 0 || st.RAKP3s != 0 {
		t.Fatalf("refused suites still logged in: %+v", st)
	}
	// Automatic choice against a BMC offering only weak suites fails,
	// saying why, rather than falling back to one.
	_, err := dial(t, ipmilan.Config{Addr: addr})
	if !errors.Is(err, ipmilan.ErrUnsupported) || !strings.Contains(err.Error(), "1, 2, 6") {
		t.Fatalf("automatic choice with weak suites only: %v", err)
	}
	if st := bmc.Stats(); st.SessionsOpened != 0 {
		t.Fatalf("automatic choice opened a weak session: %+v", st)
	}
	for _, id := range weak {
		var logs syncBuffer
		log := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
		s, err := dial(t, ipmilan.Config{Addr: addr, CipherSuite: int(id), Insecure: true, Logger: log})
		if err != nil {
			t.Fatalf("suite %d with Insecure: %v", id, err)
		}
		s.Close()
		out := logs.String()
		if !strings.Contains(out, `"level":"WARN"`) || !strings.Contains(out, fmt.Sprintf(`"suite":%d`, id)) {
			t.Fatalf("suite %d: no warning logged:\n%s", id, out)
		}
		if strings.Contains(out, "secret") {
			t.Fatalf("suite %d: the log holds the password:\n%s", id, out)
		}
	}
}

// syncBuffer is a bytes.Buffer safe for a logger and the test at once.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// TestRAKP2Verified: a BMC whose RAKP2 proof does not match the password
// (an impostor, or a wrong password) gets no RAKP3: the client's own
// proof, which an impostor could use to guess the password offline, is
// never sent. The BMC counts the RAKP3 messages it receives.
func TestRAKP2Verified(t *testing.T) {
	good, addrGood := startBMC(t, bmcsim.Config{})
	s, err := dial(t, ipmilan.Config{Addr: addrGood})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if n := good.Stats().RAKP3s; n != 1 {
		t.Fatalf("an honest BMC received %d RAKP3s, want 1 (the counter works)", n)
	}
	for _, suite := range []int{3, 17} {
		bad, addrBad := startBMC(t, bmcsim.Config{Quirks: bmcsim.Quirks{CorruptRAKP2: true}})
		_, err := dial(t, ipmilan.Config{Addr: addrBad, CipherSuite: suite})
		if !errors.Is(err, ipmilan.ErrAuth) || !strings.Contains(err.Error(), "RAKP2") {
			t.Fatalf("suite %d, corrupt RAKP2: %v", suite, err)
		}
		if n := bad.Stats().RAKP3s; n != 0 {
			t.Fatalf("suite %d: the client sent %d RAKP3s after a wrong RAKP2", suite, n)
		}
	}
}

func TestAutomaticSuite(t *testing.T) {
	_, addr := startBMC(t, bmcsim.Config{})
	s, err := dial(t, ipmilan.Config{Addr: addr})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.CipherSuite() != 17 {
		t.Fatalf("automatic suite %d, want 17", s.CipherSuite())
	}
	// A BMC that lists only 3 and weaker gets 3; one that cannot list
	// gets 17, then 3, tried.
	_, addr3 := startBMC(t, bmcsim.Config{CipherSuites: []uint8{1, 2, 3}})
	s3, err := dial(t, ipmilan.Config{Addr: addr3})
	if err != nil || s3.CipherSuite() != 3 {
		t.Fatalf("listed 1,2,3: suite %v err %v", s3, err)
	}
	s3.Close()
	_, addrNL := startBMC(t, bmcsim.Config{CipherSuites: []uint8{3}, Quirks: bmcsim.Quirks{NoCipherSuiteList: true}})
	sNL, err := dial(t, ipmilan.Config{Addr: addrNL})
	if err != nil || sNL.CipherSuite() != 3 {
		t.Fatalf("no list: suite %v err %v", sNL, err)
	}
	sNL.Close()
}

func TestIPMI15(t *testing.T) {
	for _, q := range []bmcsim.Quirks{{}, {NoExtendedAuthCaps: true}} {
		bmc, addr := startBMC(t, bmcsim.Config{Allow15: true, Quirks: q})
		s, err := dial(t, ipmilan.Config{Addr: addr, Interface: ipmilan.LAN})
		if err != nil {
			t.Fatalf("quirks %+v: %v", q, err)
		}
		if err := s.ChassisControl(context.Background(), ipmilan.PowerOn); err != nil || !bmc.Power() {
			t.Fatalf("quirks %+v: power on: %v (BMC power %v)", q, err, bmc.Power())
		}
		s.Close()
	}
	// Refused without an explicit opt-in: clear-text passwords.
	_, addr := startBMC(t, bmcsim.Config{Allow15: true})
	if _, err := dial(t, ipmilan.Config{Addr: addr, Interface: ipmilan.LAN, AuthType: ipmilan.AuthPassword}); !errors.Is(err, ipmilan.ErrInsecure) {
		t.Fatalf("straight password without Insecure: %v", err)
	}
	s, err := dial(t, ipmilan.Config{Addr: addr, Interface: ipmilan.LAN, AuthType: ipmilan.AuthPassword, Insecure: true})
	if err != nil {
		t.Fatalf("straight password with Insecure: %v", err)
	}
	s.Close()
}

// TestIPMI15Downgrade: a BMC whose Activate Session answer switches the
// session to auth type none (per-message authentication off) is refused
// unless Insecure allows it; with Insecure the session works
// unauthenticated and a warning says so.
func TestIPMI15Downgrade(t *testing.T) {
	bmc, addr := startBMC(t, bmcsim.Config{Allow15: true, Quirks: bmcsim.Quirks{PerMessageAuthOff: true}})
	_, err := dial(t, ipmilan.Config{Addr: addr, Interface: ipmilan.LAN})
	if !errors.Is(err, ipmilan.ErrInsecure) || !strings.Contains(err.Error(), "auth type none") {
		t.Fatalf("downgrade without Insecure: %v", err)
	}
	var logs syncBuffer
	s, err := dial(t, ipmilan.Config{Addr: addr, Interface: ipmilan.LAN, Insecure: true,
		Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatalf("downgrade with Insecure: %v", err)
	}
	defer s.Close()
	if err := s.ChassisControl(context.Background(), ipmilan.PowerOn); err != nil || !bmc.Power() {
		t.Fatalf("power on in the unauthenticated session: %v (BMC power %v)", err, bmc.Power())
	}
	if !strings.Contains(logs.String(), "level=WARN") || strings.Contains(logs.String(), "secret") {
		t.Fatalf("log:\n%s", logs.String())
	}
}

// TestIPMI15UnauthenticatedActivate: an Activate Session answer without
// an auth code (anyone could have sent it) is not trusted: the login gets
// no answer rather than a session on the forger's terms.
func TestIPMI15UnauthenticatedActivate(t *testing.T) {
	bmc, addr := startBMC(t, bmcsim.Config{Allow15: true, Quirks: bmcsim.Quirks{UnauthenticatedActivate: true}})
	_, err := dial(t, ipmilan.Config{Addr: addr, Interface: ipmilan.LAN, Timeout: 100 * time.Millisecond, Insecure: true})
	if !errors.Is(err, ipmilan.ErrNoAnswer) {
		t.Fatalf("unauthenticated Activate Session answer: %v, want it ignored (no answer)", err)
	}
	if st := bmc.Stats(); st.SessionsOpened == 0 {
		t.Fatalf("the BMC did activate (stats %+v): the test did not reach the point", st)
	}
}

func TestCredentialErrors(t *testing.T) {
	kg := []byte("0123456789abcdefghij")
	_, addr := startBMC(t, bmcsim.Config{})
	_, addrKG := startBMC(t, bmcsim.Config{KG: kg})
	cases := []struct {
		name string
		cfg  ipmilan.Config
		want error
	}{
		{"wrong password", ipmilan.Config{Addr: addr, Password: ipmilan.Secret("nope")}, ipmilan.ErrAuth},
		{"wrong user", ipmilan.Config{Addr: addr, User: "mallory"}, ipmilan.ErrAuth},
		{"missing K_g", ipmilan.Config{Addr: addrKG}, ipmilan.ErrKG},
		{"wrong K_g", ipmilan.Config{Addr: addrKG, KG: ipmilan.Secret("not-the-bmc-key")}, ipmilan.ErrKG},
		{"suite zero refused", ipmilan.Config{Addr: addr, ForceSuiteZero: true}, ipmilan.ErrInsecure},
		{"privilege above the user's", ipmilan.Config{Addr: addr, User: "viewer", Password: ipmilan.Secret("viewpw")}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			s, err := dial(t, tc.cfg)
			if err == nil {
				s.Close()
				t.Fatal("dial succeeded")
			}
			if tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Fatalf("took %v", d)
			}
			t.Log(err)
		})
	}
	s, err := dial(t, ipmilan.Config{Addr: addrKG, KG: ipmilan.Secret(kg)})
	if err != nil {
		t.Fatalf("right K_g: %v", err)
	}
	s.Close()
	s, err = dial(t, ipmilan.Config{Addr: addrKG, KG: ipmilan.Secret("0x" + hex.EncodeToString(kg))})
	if err != nil {
		t.Fatalf("right K_g in hex: %v", err)
	}
	s.Close()
}

// TestUnreachableBMC: nothing listens at the address: ICMP port
// unreachable turns into ErrNoAnswer saying so. (The other bad BMCs run
// in TestBadBMCs, under synctest.)
func TestUnreachableBMC(t *testing.T) {
	// A port just freed; another test process (a simulated BMC of the
	// packages running beside this one) may take it meanwhile, and then
	// answer: try another.
	for try := 0; ; try++ {
		pc, _ := net.ListenPacket("udp", "127.0.0.1:0")
		addr := pc.LocalAddr().String()
		pc.Close()
		s, err := dial(t, ipmilan.Config{Addr: addr, Timeout: 100 * time.Millisecond})
		if err == nil && try < 5 {
			s.Close()
			continue
		}
		if !errors.Is(err, ipmilan.ErrNoAnswer) || !strings.Contains(err.Error(), "unreachable") {
			t.Fatalf("got %v", err)
		}
		return
	}
}

func TestQuirks(t *testing.T) {
	_, addrLong := startBMC(t, bmcsim.Config{Quirks: bmcsim.Quirks{RAKP2ExtraByte: true}})
	if _, err := dial(t, ipmilan.Config{Addr: addrLong, CipherSuite: 3}); !errors.Is(err, ipmilan.ErrProtocol) {
		t.Fatalf("long RAKP2 code without quirk: %v", err)
	}
	s, err := dial(t, ipmilan.Config{Addr: addrLong, CipherSuite: 3, Quirks: ipmilan.QuirkSupermicro20})
	if err != nil {
		t.Fatalf("long RAKP2 code with supermicro20: %v", err)
	}
	s.Close()
	_, addrSum := startBMC(t, bmcsim.Config{Quirks: bmcsim.Quirks{BadChecksum: true}})
	if _, err := dial(t, ipmilan.Config{Addr: addrSum, Timeout: 100 * time.Millisecond}); !errors.Is(err, ipmilan.ErrNoAnswer) {
		t.Fatalf("bad checksums without quirk: %v", err)
	}
	s, err = dial(t, ipmilan.Config{Addr: addrSum, Quirks: ipmilan.QuirkNoChecksumCheck})
	if err != nil {
		t.Fatalf("bad checksums with nochecksumcheck: %v", err)
	}
	s.Close()
	_, addrPriv := startBMC(t, bmcsim.Config{Quirks: bmcsim.Quirks{OpenSessionPrivZero: true}})
	s, err = dial(t, ipmilan.Config{Addr: addrPriv})
	if err != nil {
		t.Fatalf("ipmi_sim-style Open Session privilege: %v", err)
	}
	s.Close()
}

func TestNoGoroutineLeak(t *testing.T) {
	_, addr := startBMC(t, bmcsim.Config{})
	before := runtime.NumGoroutine()
	for range 20 {
		s, err := dial(t, ipmilan.Config{Addr: addr})
		if err != nil {
			t.Fatal(err)
		}
		s.Close()
	}
	deadline := time.Now().Add(2 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		t.Fatalf("%d goroutines after 20 sessions, %d before", n, before)
	}
}
