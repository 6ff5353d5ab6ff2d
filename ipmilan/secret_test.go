package ipmilan_test

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/solgate/solgate/ipmilan"
	"github.com/solgate/solgate/ipmilan/bmcsim"
)

type secretHolder struct{ P ipmilan.Secret }

// TestSecretNeverPrints: a Secret prints as [redacted] with every fmt
// verb and flag, inside structs and pointers, in JSON, XML and slog
// records; the bytes (here "hunter2", 0x68 0x75 ...) never show, in any
// base.
func TestSecretNeverPrints(t *testing.T) {
	pw := ipmilan.Secret("hunter2")
	cfg := ipmilan.Config{Addr: "10.0.0.1", User: "admin", Password: pw, KG: ipmilan.Secret("kgkgkg")}
	leaks := func(out string) bool {
		for _, needle := range []string{"hunter2", "kgkgkg", "68756e74", "68 75 6e", "104 117 110", "150 165 156", "1101000 1110101", "aHVudGVy", "U+0068 U+0075", "'h' 'u'", "hun"} {
			if strings.Contains(out, needle) {
				return true
			}
		}
		return false
	}
	var outs []string
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "% x", "%#x", "%d", "%o", "%O", "%b", "%c", "%U", "%e", "%08d", "%-10s", "%T"} {
		for _, arg := range []any{pw, &pw, cfg, &cfg, []ipmilan.Secret{pw}, map[string]ipmilan.Secret{"k": pw}, struct{ P ipmilan.Secret }{pw}} {
			outs = append(outs, fmt.Sprintf(verb, arg))
		}
	}
	outs = append(outs, fmt.Sprint(pw), fmt.Sprintln(pw, cfg), pw.String())
	for _, v := range []any{pw, cfg} {
		j, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		outs = append(outs, string(j))
		x, err := xml.Marshal(secretHolder{pw})
		if err != nil {
			t.Fatal(err)
		}
		outs = append(outs, string(x))
	}
	var logs bytes.Buffer
	for _, h := range []slog.Handler{slog.NewTextHandler(&logs, nil), slog.NewJSONHandler(&logs, nil)} {
		l := slog.New(h)
		l.Info("login", "password", pw, "cfg", cfg, slog.Any("kg", cfg.KG), slog.Group("g", "pw", pw))
	}
	outs = append(outs, logs.String())
	for _, out := range outs {
		if leaks(out) {
			t.Fatalf("secret bytes in %q", out)
		}
	}
	// A session and a console hold the password and keys in their fields.
	_, addr := startBMC(t, bmcsim.Config{SOL: bmcsim.SOLConfig{NoBootText: true}})
	c := dialSOL(t, addr, ipmilan.SOLOptions{}, ipmilan.Config{}) // password "secret"
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%x", "%d", "%q"} {
		for _, arg := range []any{c, c.Session()} {
			out := fmt.Sprintf(verb, arg)
			if leaks(out) || strings.Contains(out, "736563726574") || strings.Contains(out, "115 101 99") || !strings.Contains(out, addr) {
				t.Fatalf("%s of %T: %q", verb, arg, out)
			}
		}
	}
	if s := fmt.Sprintf("%s|%v|%q|%d", pw, pw, pw, pw); s != `[redacted]|[redacted]|"[redacted]"|[redacted]` {
		t.Fatalf("got %s", s)
	}
	if string(pw) != "hunter2" {
		t.Fatal("the bytes themselves changed")
	}
}
