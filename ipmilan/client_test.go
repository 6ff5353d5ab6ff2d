package ipmilan_test

import (
	"context"
	"encoding/hex"
	"errors"
	"net"
	"runtime"
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
		s, err := dial(t, ipmilan.Config{Addr: addr, CipherSuite: int(id)})
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
	// A BMC that lists only 3 gets 3; one that cannot list gets tried.
	_, addr3 := startBMC(t, bmcsim.Config{CipherSuites: []uint8{3, 1}})
	s3, err := dial(t, ipmilan.Config{Addr: addr3})
	if err != nil || s3.CipherSuite() != 3 {
		t.Fatalf("listed 3,1: suite %v err %v", s3, err)
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

// TestBadBMCs: a BMC that answers garbage, nothing, or through a lossy
// link gives a clear error within the timeout, or works, never hangs.
func TestBadBMCs(t *testing.T) {
	for _, g := range []bmcsim.GarbageKind{bmcsim.GarbageRandom, bmcsim.GarbageWrongSeq, bmcsim.GarbageBadChecksum, bmcsim.GarbageTruncated} {
		t.Run("garbage "+g.String(), func(t *testing.T) {
			_, addr := startBMC(t, bmcsim.Config{Faults: bmcsim.Faults{Garbage: g}})
			start := time.Now()
			_, err := dial(t, ipmilan.Config{Addr: addr, Timeout: 100 * time.Millisecond})
			if !errors.Is(err, ipmilan.ErrNoAnswer) && !errors.Is(err, ipmilan.ErrProtocol) {
				t.Fatalf("got %v", err)
			}
			// Three tries of 100 ms; generous for a loaded CI machine.
			if d := time.Since(start); d > 5*time.Second {
				t.Fatalf("took %v", d)
			}
		})
	}
	t.Run("frozen", func(t *testing.T) {
		_, addr := startBMC(t, bmcsim.Config{Faults: bmcsim.Faults{Freeze: true}})
		start := time.Now()
		_, err := dial(t, ipmilan.Config{Addr: addr, Timeout: 100 * time.Millisecond, Retries: 2})
		if !errors.Is(err, ipmilan.ErrNoAnswer) || time.Since(start) > 5*time.Second {
			t.Fatalf("got %v after %v", err, time.Since(start))
		}
	})
	t.Run("unreachable", func(t *testing.T) {
		pc, _ := net.ListenPacket("udp", "127.0.0.1:0")
		addr := pc.LocalAddr().String()
		pc.Close()
		_, err := dial(t, ipmilan.Config{Addr: addr, Timeout: 100 * time.Millisecond})
		if !errors.Is(err, ipmilan.ErrNoAnswer) {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("lossy", func(t *testing.T) {
		bmc, addr := startBMC(t, bmcsim.Config{Faults: bmcsim.Faults{Seed: 1, DropRequests: 0.15, Drop: 0.15, Duplicate: 0.2, Reorder: 0.2}})
		for i := range 20 {
			s, err := dial(t, ipmilan.Config{Addr: addr, Timeout: 50 * time.Millisecond, Retries: 8})
			if err != nil {
				t.Fatalf("session %d: %v", i, err)
			}
			on := i%2 == 0
			ctl := ipmilan.PowerOff
			if on {
				ctl = ipmilan.PowerOn
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

func TestKeepAliveAndDeadBMC(t *testing.T) {
	bmc, addr := startBMC(t, bmcsim.Config{SessionTimeout: time.Second})
	s, err := dial(t, ipmilan.Config{Addr: addr, KeepAlive: 200 * time.Millisecond, Timeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	time.Sleep(3 * time.Second) // three BMC session timeouts
	if _, err := s.ChassisStatus(context.Background()); err != nil {
		t.Fatalf("session did not survive idle time with keepalives: %v", err)
	}
	bmc.SetFaults(bmcsim.Faults{Freeze: true})
	select {
	case <-s.Done():
		if !errors.Is(s.Err(), ipmilan.ErrNoAnswer) {
			t.Fatalf("dead BMC: session ended with %v", s.Err())
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a frozen BMC was not noticed")
	}
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
