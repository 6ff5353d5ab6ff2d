package test

import (
	"strings"
	"testing"

	"github.com/solgate/solgate/ipmilan/bmcsim"
)

// TestBMCDoctor plants one problem at a time on a simulated BMC: doctor
// must report exactly that problem, with the fix it names, and exit 1;
// running the printed fix must make the next doctor run clean (exit 0).
// A good BMC is clean from the start.
func TestBMCDoctor(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name     string
		cfg      bmcsim.Config
		plant    func(st *bmcsim.State)
		login    []string // instead of -u admin
		args     []string // more doctor flags
		check    string
		insecure bool
		fix      string // after "solgate bmc"; HOST is the BMC; "" = no command can fix it
		message  string
	}{
		{name: "good BMC"},
		{name: "SOL disabled", plant: func(st *bmcsim.State) { st.SOL.Enabled = false },
			check: "sol.enable", fix: "set CONN HOST sol.enable=on", message: "SOL is disabled"},
		{name: "bit rate differs", plant: func(st *bmcsim.State) { st.SOL.BitRate = 9600 },
			check: "sol.bitrate", fix: "set CONN HOST sol.bitrate=115200", message: "volatile 9600, the console runs at 115200"},
		{name: "bit rate not set", plant: func(st *bmcsim.State) { st.SOL.NonVolatileBitRate = 0 },
			check: "sol.bitrate", fix: "set CONN HOST sol.bitrate=115200", message: "non-volatile not set"},
		{name: "bit rate is not the console's", args: []string{"--baud", "57600"},
			check: "sol.bitrate", fix: "set CONN HOST sol.bitrate=57600", message: "volatile 115200, non-volatile 115200, the console runs at 57600"},
		{name: "SOL privilege above the user's", plant: func(st *bmcsim.State) { st.SOL.Privilege = "admin" },
			login: []string{"-u", "oper", "--privilege", "operator"},
			check: "sol.privilege", fix: "set CONN HOST sol.privilege=operator", message: `SOL needs admin privilege, user "oper" has at most operator`},
		{name: "no SOL payload access", plant: func(st *bmcsim.State) { st.Users[1].SOL = false },
			check: "user.sol", fix: "user CONN HOST sol admin on", message: `user "admin" has no SOL payload access`},
		{name: "channel pre-boot only", plant: func(st *bmcsim.State) { st.Channel.Access = "preboot" },
			check: "channel.access", fix: "set CONN HOST channel.access=always", message: "IPMI messaging on LAN channel 1 is preboot"},
		{name: "per-message authentication off", plant: func(st *bmcsim.State) { st.Channel.PerMsgAuth = false },
			check: "channel.auth", insecure: true, fix: "set CONN HOST channel.per-msg-auth=on"},
		{name: "user-level authentication off", plant: func(st *bmcsim.State) { st.Channel.UserAuth = false },
			check: "channel.auth", insecure: true, fix: "set CONN HOST channel.user-auth=on"},
		{name: "cipher suite 0", cfg: bmcsim.Config{AllowCipherZero: true},
			check: "cipher.zero", insecure: true, fix: "set CONN HOST lan.cipher.0=unused", message: "cipher suite 0 is enabled"},
		{name: "configured suite unused", plant: func(st *bmcsim.State) { st.LAN.CipherPrivs["17"] = "unused" },
			login: []string{"-u", "admin", "-C", "3"}, args: []string{"--expect-suite", "17"},
			check: "cipher.offered", fix: "set CONN HOST lan.cipher.17=admin", message: "cipher suite 17 is not offered (it offers 1,2,3)"},
		{name: "configured suite not offered", cfg: bmcsim.Config{CipherSuites: []uint8{3}},
			login: []string{"-u", "admin", "-C", "3"}, args: []string{"--expect-suite", "17"},
			check: "cipher.offered", message: "cipher suite 17 is not offered (it offers 3): configure a suite it offers"},
		{name: "auth type none", cfg: bmcsim.Config{Allow15: true, AllowAuthNone: true},
			plant: func(st *bmcsim.State) { st.LAN.AuthEnables = [5]string{"md5", "md5", "md5", "none,md5", "off"} },
			check: "auth.none", insecure: true, fix: "set CONN HOST lan.auth.admin=md5", message: "authentication type none (no password at all) is enabled for admin level"},
		{name: "straight password", cfg: bmcsim.Config{Allow15: true},
			plant: func(st *bmcsim.State) { st.LAN.AuthEnables = [5]string{"md5", "md5", "md5,password", "md5", "off"} },
			check: "auth.password", insecure: true, fix: "set CONN HOST lan.auth.operator=md5", message: "for operator level"},
		{name: "null user", plant: func(st *bmcsim.State) {
			st.Users[0] = bmcsim.UserState{ID: 1, Enabled: true, Privilege: "admin", IPMIMessaging: true, SOL: true}
		}, check: "user.null", insecure: true, fix: "user CONN HOST disable 1", message: "user 1 has no name and is enabled"},
		{name: "anonymous user", plant: func(st *bmcsim.State) {
			st.Users[5] = bmcsim.UserState{ID: 6, Name: "anonymous", Password: "x", Enabled: true, Privilege: "user", IPMIMessaging: true}
		}, check: "user.anonymous", insecure: true, fix: "user CONN HOST disable 6", message: `user 6 is called "anonymous" and is enabled`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			sim := startSimBMC(t, tc.cfg)
			if tc.plant != nil {
				st := sim.ConfigState()
				tc.plant(&st)
				if err := sim.SetConfigState(st); err != nil {
					t.Fatal(err)
				}
			}
			pw := "s3cret-for-tests"
			if len(tc.login) > 1 && tc.login[1] == "oper" {
				pw = "operpw"
			}
			pwFile := writeSecretFile(t, "bmc.pass", pw)
			login := tc.login
			if login == nil {
				login = []string{"-u", "admin"}
			}
			// In the order doctor repeats them in its fixes.
			conn := append([]string{login[0], login[1], "--password-file", pwFile}, login[2:]...)
			args := append(append([]string{"bmc", "doctor", sim.Addr}, conn...), tc.args...)
			out, errOut, code := runSolgate(t, nil, args...)
			if tc.check == "" {
				if code != 0 || strings.TrimSpace(out) != sim.Addr+": ok" {
					t.Fatalf("good BMC: exit %d\n%s%s", code, out, errOut)
				}
				return
			}
			lines := strings.Split(strings.TrimSpace(out), "\n")
			if code != 1 || len(lines) != 1 {
				t.Fatalf("exit %d, want 1 and one problem line:\n%s%s", code, out, errOut)
			}
			tag := ""
			if tc.insecure {
				tag = " [insecure]"
			}
			line := lines[0]
			if !strings.HasPrefix(line, sim.Addr+": "+tc.check+tag+": ") || !strings.Contains(line, tc.message) {
				t.Fatalf("problem line %q: want check %s%s and %q", line, tc.check, tag, tc.message)
			}
			_, fix, hasFix := strings.Cut(line, "; fix: solgate bmc ")
			if tc.fix == "" {
				if hasFix {
					t.Fatalf("a fix for what no command can fix: %q", line)
				}
				return
			}
			flags := strings.Join(conn, " ")
			if want := strings.NewReplacer("CONN", flags, "HOST", sim.Addr).Replace(tc.fix); fix != want {
				t.Fatalf("fix %q, want %q", fix, want)
			}
			if login[1] == "oper" {
				// Fixes need an administrator (doctor says so); run
				// this one as admin.
				adm := writeSecretFile(t, "admin.pass", bmcsimPassword)
				fix = strings.Replace(fix, flags, "-u admin --password-file "+adm, 1)
			}
			fout, ferr, fcode := runSolgate(t, nil, append([]string{"bmc"}, strings.Fields(fix)...)...)
			if fcode != 0 {
				t.Fatalf("the fix %q: exit %d\n%s%s", fix, fcode, fout, ferr)
			}
			if out, errOut, code := runSolgate(t, nil, args...); code != 0 || strings.TrimSpace(out) != sim.Addr+": ok" {
				t.Fatalf("after the fix: exit %d\n%s%s", code, out, errOut)
			}
		})
	}
}

// TestBMCDoctorMisconfiguredJSON: the demo's misconfigured BMC, as JSON.
func TestBMCDoctorMisconfiguredJSON(t *testing.T) {
	t.Parallel()
	sim := startSimBMC(t, bmcsim.Config{Misconfigured: true})
	pw := writeSecretFile(t, "bmc.pass", bmcsimPassword)
	out, errOut, code := runSolgate(t, nil, "bmc", "doctor", sim.Addr, "-u", "admin", "--password-file", pw, "--json")
	if code != 1 {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	for _, want := range []string{`"check": "sol.enable"`, `"check": "sol.bitrate"`, `"check": "user.sol"`, `"check": "channel.auth"`,
		`"check": "cipher.zero"`, `"check": "user.null"`, `"insecure": true`, `"fix": "solgate bmc set -u admin --password-file ` + pw + " " + sim.Addr + ` sol.enable=on"`} {
		if !strings.Contains(out, want) {
			t.Errorf("no %s in\n%s", want, out)
		}
	}
}
