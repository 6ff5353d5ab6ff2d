package test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/solgate/solgate/ipmilan"
)

// TestIPMISimSessions drives OpenIPMI's ipmi_sim with our client over
// IPMI 1.5 MD5 and RMCP+ suites 1, 2 and 3 (ipmi_sim has no 17; 1 and 2,
// without encryption, need Insecure), and checks that power changes reach
// the simulated chassis.
func TestIPMISimSessions(t *testing.T) {
	sim := startIPMISim(t, defaultSimUsers)
	cases := []struct {
		name string
		cfg  ipmilan.Config
	}{
		{"lanplus-suite1", ipmilan.Config{CipherSuite: 1, Insecure: true}},
		{"lanplus-suite2", ipmilan.Config{CipherSuite: 2, Insecure: true}},
		{"lanplus-suite3", ipmilan.Config{CipherSuite: 3}},
		{"lanplus-auto", ipmilan.Config{}},
		{"lan-md5", ipmilan.Config{Interface: ipmilan.LAN}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			cfg := tc.cfg
			cfg.Addr, cfg.User, cfg.Password = sim.Addr, "admin", ipmilan.Secret("secret")
			s, err := ipmilan.Dial(ctx, cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if tc.cfg.Interface == ipmilan.LANPlus && tc.cfg.CipherSuite == 0 && s.CipherSuite() != 3 {
				t.Errorf("automatic suite: got %d, want 3 (ipmi_sim's best)", s.CipherSuite())
			}
			info, err := s.SessionInfo(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if info.Privilege != ipmilan.PrivAdmin || info.IPMI20 != (cfg.Interface == ipmilan.LANPlus) {
				t.Errorf("session info %+v: want admin privilege and matching IPMI version", info)
			}
			for _, want := range []bool{false, true, false, true} {
				ctl := ipmilan.PowerOff
				if want {
					ctl = ipmilan.PowerOn
				}
				if err := s.ChassisControl(ctx, ctl); err != nil {
					t.Fatal(err)
				}
				if got := sim.Power(t); got != want {
					t.Fatalf("after %v the simulated chassis has power %v", ctl, got)
				}
				st, err := s.ChassisStatus(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if st.PowerOn() != want {
					t.Fatalf("after %v chassis status says power %v", ctl, st.PowerOn())
				}
			}
		})
	}
}

// TestIPMISimErrors: bad credentials and privileges give clear errors,
// quickly, never a hang.
func TestIPMISimErrors(t *testing.T) {
	sim := startIPMISim(t, defaultSimUsers)
	cases := []struct {
		name    string
		cfg     ipmilan.Config
		want    error
		maxTime time.Duration
	}{
		{"wrong password 2.0", ipmilan.Config{User: "admin", Password: ipmilan.Secret("nope"), CipherSuite: 3}, ipmilan.ErrAuth, time.Second},
		{"wrong user 2.0", ipmilan.Config{User: "mallory", Password: ipmilan.Secret("secret"), CipherSuite: 3}, ipmilan.ErrAuth, time.Second},
		{"wrong password 1.5", ipmilan.Config{User: "admin", Password: ipmilan.Secret("nope"), Interface: ipmilan.LAN, Timeout: 200 * time.Millisecond}, ipmilan.ErrNoAnswer, 2 * time.Second},
		{"clear password refused", ipmilan.Config{User: "admin", Password: ipmilan.Secret("secret"), Interface: ipmilan.LAN, AuthType: ipmilan.AuthPassword}, ipmilan.ErrInsecure, time.Second},
		{"suite 17 unsupported", ipmilan.Config{User: "admin", Password: ipmilan.Secret("secret"), CipherSuite: 17}, ipmilan.ErrUnsupported, time.Second},
		{"suite 2 needs insecure", ipmilan.Config{User: "admin", Password: ipmilan.Secret("secret"), CipherSuite: 2}, ipmilan.ErrInsecure, time.Second},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			cfg := tc.cfg
			cfg.Addr = sim.Addr
			start := time.Now()
			s, err := ipmilan.Dial(ctx, cfg)
			if err == nil {
				s.Close()
				t.Fatal("dial succeeded")
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			// Bounds with room for a loaded 2-core CI machine running
			// the race detector: the point is a quick error, not a hang.
			if d := time.Since(start); d > tc.maxTime+3*time.Second {
				t.Errorf("took %v, want under %v", d, tc.maxTime)
			}
			t.Logf("error: %v", err)
		})
	}
	t.Run("insufficient privilege", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		s, err := ipmilan.Dial(ctx, ipmilan.Config{Addr: sim.Addr, User: "viewer", Password: ipmilan.Secret("viewpw"), CipherSuite: 3, Privilege: ipmilan.PrivUser})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if _, err := s.ChassisStatus(ctx); err != nil {
			t.Fatalf("status as user: %v", err)
		}
		err = s.ChassisControl(ctx, ipmilan.PowerOff)
		var ce *ipmilan.CompletionError
		if !errors.As(err, &ce) || ce.Code != 0xD4 {
			t.Fatalf("power off as user: got %v, want completion code 0xd4", err)
		}
		if !sim.Power(t) {
			t.Fatal("power went off although the user may not")
		}
	})
}
