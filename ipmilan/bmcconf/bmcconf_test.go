package bmcconf_test

import (
	"context"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/solgate/solgate/ipmilan"
	"github.com/solgate/solgate/ipmilan/bmcconf"
	"github.com/solgate/solgate/ipmilan/bmcsim"
)

var users = []bmcsim.User{{Name: "admin", Password: "secret"}, {Name: "oper", Password: "operpw", MaxPriv: bmcsim.PrivOperator}}

// lanBMC serves a simulated BMC and returns a LAN session to it as user.
func lanBMC(t *testing.T, cfg bmcsim.Config, user, pw string, priv ipmilan.Privilege) (*bmcsim.BMC, *ipmilan.Session) {
	t.Helper()
	if cfg.Users == nil {
		cfg.Users = users
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
	dctx, dcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer dcancel()
	s, err := ipmilan.Dial(dctx, ipmilan.Config{Addr: pc.LocalAddr().String(), User: user, Password: ipmilan.Secret(pw), Privilege: priv, KeepAlive: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return b, s
}

// systemInterface is an in-band Commander straight onto the simulated
// BMC (ipmilan's Inband tests cover the driver in between).
type systemInterface struct{ b *bmcsim.BMC }

func (s systemInterface) Do(_ context.Context, netFn ipmilan.NetFn, cmd uint8, data []byte) ([]byte, error) {
	code, r := s.b.SystemInterface(uint8(netFn), cmd, data)
	if code != 0 {
		return nil, &ipmilan.CompletionError{NetFn: netFn, Cmd: cmd, Code: ipmilan.CompletionCode(code)}
	}
	return r, nil
}

func read(t *testing.T, c ipmilan.Commander) *bmcconf.Snapshot {
	t.Helper()
	s, err := bmcconf.Read(context.Background(), c, 0)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func assigns(kv ...string) []bmcconf.Assignment {
	var out []bmcconf.Assignment
	for _, s := range kv {
		a, err := bmcconf.ParseAssignment(s)
		if err != nil {
			panic(err)
		}
		out = append(out, a)
	}
	return out
}

func statuses(res []bmcconf.Result) map[string]bmcconf.Status {
	m := map[string]bmcconf.Status{}
	for _, r := range res {
		m[r.Key] = r.Status
	}
	return m
}

func TestSnapshotValues(t *testing.T) {
	_, s := lanBMC(t, bmcsim.Config{}, "admin", "secret", 0)
	snap := read(t, s)
	if snap.Channel != 1 || !snap.Self.LAN || snap.Self.UserID != 2 || snap.Self.Privilege != ipmilan.PrivAdmin || snap.Self.Suite != 17 {
		t.Fatalf("snapshot channel %d self %+v", snap.Channel, snap.Self)
	}
	got := map[string]string{}
	for _, v := range snap.Values() {
		if v.Err != nil {
			t.Errorf("%s: %v", v.Key, v.Err)
		}
		got[v.Key] = v.Value
	}
	for k, want := range map[string]string{"sol.enable": "on", "sol.bitrate": "115200", "sol.privilege": "user", "lan.ciphers": "1,2,3,17",
		"lan.cipher.17": "admin", "channel.access": "always", "lan.auth": "off", "sol.accumulate": "100ms", "sol.retry.interval": "100ms"} {
		if got[k] != want {
			t.Errorf("%s = %q, want %q", k, got[k], want)
		}
	}
	if u := snap.ShownUsers(); len(u) != 2 || u[0].Name != "admin" || u[1].Name != "oper" {
		t.Errorf("shown users %+v", u)
	}
}

func TestPlanApply(t *testing.T) {
	b, s := lanBMC(t, bmcsim.Config{Allow15: true}, "admin", "secret", 0)
	ctx := context.Background()
	snap := read(t, s)
	p, err := bmcconf.NewPlan(snap, assigns("sol.enable=off", "sol.bitrate=57600", "sol.privilege=operator", "sol.encryption=on",
		"sol.accumulate=50ms", "sol.threshold=20", "sol.retry.count=3", "sol.retry.interval=250ms", "lan.auth=md5",
		"lan.cipher.1=unused", "channel.alerting=off", "sol.threshold=20", "channel.access=always"))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(p.Unchanged, []string{"channel.access"}) {
		t.Errorf("unchanged %v", p.Unchanged)
	}
	for _, c := range p.Changes {
		if c.Disrupts != "" {
			t.Errorf("%s: %s -> %s would disrupt: %s", c.Key, c.Old, c.New, c.Disrupts)
		}
	}
	res := p.Apply(ctx, s, bmcconf.ApplyOptions{})
	for _, r := range res {
		if r.Status != bmcconf.StatusOK {
			t.Errorf("%s: %s %v (got %q)", r.Key, r.Status, r.Err, r.Got)
		}
	}
	if len(res) != 11 {
		t.Errorf("%d results, want 11: %+v", len(res), res)
	}
	st := b.ConfigState()
	if st.SOL.Enabled || st.SOL.BitRate != 57600 || st.SOL.NonVolatileBitRate != 57600 || st.SOL.Privilege != "operator" ||
		!st.SOL.ForceEncryption || st.SOL.Threshold != 20 || st.SOL.Retries != 3 || st.SOL.RetryInterval != 250*time.Millisecond ||
		st.LAN.AuthEnables[3] != "md5" || st.LAN.CipherPrivs["1"] != "unused" || st.Channel.Alerting {
		t.Fatalf("BMC state %+v %+v %+v", st.SOL, st.LAN, st.Channel)
	}

	for _, bad := range []struct{ kv, want string }{
		{"sol.bogus=1", "unknown key"},
		{"sol.bitrate=300", "want 9600"},
		{"lan.ip=10.1.0", "IPv4"},
		{"lan.ciphers=3", "read-only"},
		{"lan.cipher.9=admin", "no entry"},
		{"sol.accumulate=2s", "5ms to 1.275s"},
		{"user.9.name=seventeen-letters", "16 bytes"},
		{"user.1.name=root", "null user"},
		{"channel.privilege=none", "want callback"},
	} {
		if _, err := bmcconf.NewPlan(snap, assigns(bad.kv)); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%s: %v, want an error with %q", bad.kv, err, bad.want)
		}
	}
	if _, err := bmcconf.ParseAssignment("user.2.password=x"); err == nil {
		t.Error("a password on the command line was accepted")
	}
}

// TestPlanReadBackMismatch: a BMC that says yes but does not change
// anything is caught by the read-back.
func TestPlanReadBackMismatch(t *testing.T) {
	b, s := lanBMC(t, bmcsim.Config{}, "admin", "secret", 0)
	if err := b.SetFaults(bmcsim.Faults{WrongAnswers: map[bmcsim.Command]bmcsim.Answer{bmcsim.CmdSetSOLConfig: {Code: 0}}}); err != nil {
		t.Fatal(err)
	}
	p, err := bmcconf.NewPlan(read(t, s), assigns("sol.enable=off"))
	if err != nil {
		t.Fatal(err)
	}
	res := p.Apply(context.Background(), s, bmcconf.ApplyOptions{})
	if len(res) != 1 || res[0].Status != bmcconf.StatusMismatch || res[0].Got != "on" {
		t.Fatalf("results %+v", res)
	}
	// A refused write is a failure, and a second key of the same
	// parameter is skipped.
	b.SetFaults(bmcsim.Faults{WrongAnswers: map[bmcsim.Command]bmcsim.Answer{bmcsim.CmdSetSOLConfig: {Code: 0xD4}}})
	p, _ = bmcconf.NewPlan(read(t, s), assigns("sol.privilege=admin", "sol.encryption=on"))
	st := statuses(p.Apply(context.Background(), s, bmcconf.ApplyOptions{}))
	if st["sol.privilege"] != bmcconf.StatusFailed || st["sol.encryption"] != bmcconf.StatusSkipped {
		t.Fatalf("statuses %v", st)
	}
}

// TestDisruptive: over a LAN session, address changes and changes to the
// login user are refused without AllowDisconnect and applied last with
// it; in-band nothing is refused.
func TestDisruptive(t *testing.T) {
	b, s := lanBMC(t, bmcsim.Config{}, "admin", "secret", 0)
	ctx := context.Background()
	snap := read(t, s)
	p, err := bmcconf.NewPlan(snap, assigns("lan.ip=10.9.0.1", "sol.enable=off", "user.2.enabled=off", "channel.privilege=operator",
		"lan.cipher.17=unused", "user.3.privilege=user", "user.2.sol=off", "lan.vlan=12"))
	if err != nil {
		t.Fatal(err)
	}
	var order []string
	for _, c := range p.Changes {
		order = append(order, c.Key)
		risky := c.Disrupts != ""
		want := c.Key != "sol.enable" && c.Key != "user.3.privilege" && c.Key != "user.2.sol"
		if risky != want {
			t.Errorf("%s: disrupts %q", c.Key, c.Disrupts)
		}
	}
	if order[0] != "sol.enable" || order[len(order)-1] != "user.2.enabled" {
		t.Errorf("order %v: safe changes first, the login user's last", order)
	}
	st := statuses(p.Apply(ctx, s, bmcconf.ApplyOptions{}))
	if st["sol.enable"] != bmcconf.StatusOK || st["user.3.privilege"] != bmcconf.StatusOK || st["user.2.sol"] != bmcconf.StatusOK ||
		st["lan.ip"] != bmcconf.StatusRefused || st["user.2.enabled"] != bmcconf.StatusRefused || st["lan.vlan"] != bmcconf.StatusRefused {
		t.Fatalf("statuses %v", st)
	}
	if cs := b.ConfigState(); cs.LAN.IP.String() == "10.9.0.1" || !cs.Users[1].Enabled || cs.LAN.VLAN != 0 {
		t.Fatal("a refused change reached the BMC")
	}

	p, _ = bmcconf.NewPlan(read(t, s), assigns("lan.ip=10.9.0.1", "lan.vlan=12"))
	st = statuses(p.Apply(ctx, s, bmcconf.ApplyOptions{AllowDisconnect: true}))
	if st["lan.ip"] != bmcconf.StatusOK || st["lan.vlan"] != bmcconf.StatusOK { // the simulator keeps serving its socket
		t.Fatalf("with AllowDisconnect: %v", st)
	}

	in := systemInterface{b}
	p, err = bmcconf.NewPlan(read(t, in), assigns("lan.ip=10.9.0.2", "user.2.enabled=off", "channel.access=disabled"))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range p.Changes {
		if c.Disrupts != "" {
			t.Errorf("in-band %s disrupts: %s", c.Key, c.Disrupts)
		}
	}
	for k, v := range statuses(p.Apply(ctx, in, bmcconf.ApplyOptions{})) {
		if v != bmcconf.StatusOK {
			t.Errorf("in-band %s: %s", k, v)
		}
	}
}

func TestUserOps(t *testing.T) {
	b, s := lanBMC(t, bmcsim.Config{}, "admin", "secret", 0)
	ctx := context.Background()
	apply := func(op bmcconf.UserOp, o bmcconf.ApplyOptions) map[string]bmcconf.Status {
		t.Helper()
		as, err := op.Assignments(read(t, s))
		if err != nil {
			t.Fatal(err)
		}
		p, err := bmcconf.NewPlan(read(t, s), as)
		if err != nil {
			t.Fatal(err)
		}
		return statuses(p.Apply(ctx, s, o))
	}
	st := apply(bmcconf.UserOp{Action: "add", User: "alice", Value: "operator", Password: ipmilan.Secret("a-20-byte-password!!")}, bmcconf.ApplyOptions{})
	for k, v := range st {
		if v != bmcconf.StatusOK {
			t.Errorf("add: %s %s", k, v)
		}
	}
	u := b.ConfigState().Users[3]
	if u.Name != "alice" || !u.Enabled || u.Privilege != "operator" || !u.IPMIMessaging || !u.SOL || !u.Password20 || u.Password != "a-20-byte-password!!" {
		t.Fatalf("alice on the BMC: %+v", u)
	}
	// Again: only the password is written.
	st = apply(bmcconf.UserOp{Action: "add", User: "alice", Value: "operator", Password: ipmilan.Secret("another")}, bmcconf.ApplyOptions{})
	if len(st) != 1 || st["user.4.password"] != bmcconf.StatusOK || b.ConfigState().Users[3].Password != "another" {
		t.Fatalf("second add: %v", st)
	}
	apply(bmcconf.UserOp{Action: "sol", User: "alice", Value: "off"}, bmcconf.ApplyOptions{})
	apply(bmcconf.UserOp{Action: "privilege", User: "4", Value: "user"}, bmcconf.ApplyOptions{})
	apply(bmcconf.UserOp{Action: "disable", User: "oper"}, bmcconf.ApplyOptions{})
	cs := b.ConfigState()
	if cs.Users[3].SOL || cs.Users[3].Privilege != "user" || cs.Users[2].Enabled {
		t.Fatalf("after sol off, privilege user, disable oper: %+v %+v", cs.Users[3], cs.Users[2])
	}
	// The login user: refused, then allowed.
	if st := apply(bmcconf.UserOp{Action: "password", User: "admin", Password: ipmilan.Secret("new")}, bmcconf.ApplyOptions{}); st["user.2.password"] != bmcconf.StatusRefused {
		t.Fatalf("own password: %v", st)
	}
	for _, bad := range []bmcconf.UserOp{
		{Action: "add", User: "bob"},                                       // no password
		{Action: "add", User: "12", Password: ipmilan.Secret("x")},         // digits
		{Action: "add", User: "bob", ID: 2, Password: ipmilan.Secret("x")}, // taken
		{Action: "enable", User: "nobody"},
		{Action: "privilege", User: "alice", Value: "god"},
		{Action: "fly", User: "alice"},
	} {
		if _, err := bad.Assignments(read(t, s)); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
}

func diagnose(t *testing.T, b *bmcsim.BMC, e bmcconf.Expect) ([]bmcconf.Problem, []string) {
	t.Helper()
	return bmcconf.Diagnose(read(t, systemInterface{b}), e)
}

func TestDiagnose(t *testing.T) {
	good := bmcsim.New(bmcsim.Config{Users: users})
	if p, sk := diagnose(t, good, bmcconf.Expect{User: "admin"}); len(p) != 0 || len(sk) != 0 {
		t.Fatalf("a good BMC: problems %+v, skipped %v", p, sk)
	}
	bad := bmcsim.New(bmcsim.Config{Users: users, Misconfigured: true})
	p, _ := diagnose(t, bad, bmcconf.Expect{User: "admin"})
	var got []string
	for _, x := range p {
		got = append(got, x.Check+" "+strings.Join(x.Fix[2:], " "))
	}
	want := []string{"sol.enable sol.enable=on", "sol.bitrate sol.bitrate=115200", "user.sol sol admin on",
		"channel.auth channel.per-msg-auth=on", "cipher.zero lan.cipher.0=unused", "user.null disable 1"}
	if !slices.Equal(got, want) {
		t.Fatalf("misconfigured BMC: %q, want %q", got, want)
	}
	// Fixing every problem with its own fix makes the BMC clean.
	for _, x := range p {
		var as []bmcconf.Assignment
		snap := read(t, systemInterface{bad})
		if x.Fix[0] == "set" {
			as = assigns(x.Fix[2:]...)
		} else {
			var err error
			op := bmcconf.UserOp{Action: x.Fix[2], User: x.Fix[3]}
			if len(x.Fix) > 4 {
				op.Value = x.Fix[4]
			}
			if as, err = op.Assignments(snap); err != nil {
				t.Fatal(err)
			}
		}
		plan, err := bmcconf.NewPlan(snap, as)
		if err != nil {
			t.Fatalf("fix %v: %v", x.Fix, err)
		}
		for _, r := range plan.Apply(context.Background(), systemInterface{bad}, bmcconf.ApplyOptions{}) {
			if r.Status != bmcconf.StatusOK {
				t.Errorf("fix %v: %s %s %v", x.Fix, r.Key, r.Status, r.Err)
			}
		}
	}
	if p, _ := diagnose(t, bad, bmcconf.Expect{User: "admin"}); len(p) != 0 {
		t.Fatalf("after the fixes: %+v", p)
	}
}

// FuzzPlan: no KEY=VALUE makes planning panic, and every value a plan
// accepts is canonical: planning the value it reports changes to gives
// that value again.
func FuzzPlan(f *testing.F) {
	for _, s := range []string{"sol.bitrate=115200", "lan.ip=10.1.2.3", "lan.vlan=off", "lan.auth.admin=MD5,password",
		"sol.accumulate=52ms", "user.3.name=bob", "user.2.privilege=none", "lan.cipher.17=unused", "channel.access=Always",
		"sol.retry.interval=1s", "lan.mac=02-00-00-00-00-01", "user.2.sol=yes", "sol.privilege=operator"} {
		f.Add(s)
	}
	b := bmcsim.New(bmcsim.Config{Users: users, Allow15: true})
	snap, err := bmcconf.Read(context.Background(), systemInterface{b}, 0)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, kv string) {
		a, err := bmcconf.ParseAssignment(kv)
		if err != nil {
			return
		}
		p, err := bmcconf.NewPlan(snap, []bmcconf.Assignment{a})
		if err != nil {
			return
		}
		for _, c := range p.Changes {
			again, err := bmcconf.NewPlan(snap, []bmcconf.Assignment{{Key: c.Key, Value: c.New}})
			if err != nil || len(again.Changes) != 1 || again.Changes[0].New != c.New {
				t.Fatalf("%q plans %s -> %q, which plans %+v (%v)", kv, c.Key, c.New, again, err)
			}
		}
	})
}
