package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

func TestSecretNeverPrints(t *testing.T) {
	t.Parallel()
	const pw = "hunter2-very-secret"
	c := mustLoad(t, map[string]string{
		"bmc.pass":     pw + "\n",
		"solgate.toml": "[[console]]\nname = \"n1\"\nbmc = \"b\"\npassword_file = \"bmc.pass\"\n",
	})
	con, _ := c.Console("n1")
	if string(con.Password.Reveal()) != pw {
		t.Fatalf("Reveal = %q", con.Password.Reveal())
	}
	var outputs []string
	for _, f := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X"} {
		outputs = append(outputs, fmt.Sprintf(f, con.Password), fmt.Sprintf(f, *con), fmt.Sprintf(f, con))
	}
	outputs = append(outputs, fmt.Sprint(con.Password), con.Password.String(), con.Password.GoString())
	j, err := json.Marshal(con)
	if err != nil {
		t.Fatal(err)
	}
	outputs = append(outputs, string(j))
	var logs bytes.Buffer
	for _, h := range []slog.Handler{slog.NewTextHandler(&logs, nil), slog.NewJSONHandler(&logs, nil)} {
		slog.New(h).Info("console", "password", con.Password, "console", con)
	}
	outputs = append(outputs, logs.String())
	var dump bytes.Buffer
	if err := c.Dump(&dump); err != nil {
		t.Fatal(err)
	}
	outputs = append(outputs, dump.String())
	hexpw := fmt.Sprintf("%x", pw)
	for _, o := range outputs {
		if strings.Contains(o, pw) || strings.Contains(strings.ToLower(o), hexpw) {
			t.Errorf("secret leaked in %q", o)
		}
	}
	if !strings.Contains(logs.String(), redacted) || !strings.Contains(string(j), redacted) {
		t.Errorf("placeholder missing: %s %s", logs.String(), j)
	}
	if (Secret{}).String() != "(none)" || (Secret{}).IsSet() {
		t.Error("zero Secret")
	}
}

func TestSecretEqual(t *testing.T) {
	t.Parallel()
	a := newSecret([]byte("x"), "file /a")
	b := newSecret([]byte("x"), "file /b")
	if !a.Equal(b) {
		t.Error("same value from different files should be equal")
	}
	if a.Equal(newSecret([]byte("y"), "file /a")) || a.Equal(Secret{}) {
		t.Error("different secrets equal")
	}
	s1, s2 := Secret{source: "file /a", set: true}, Secret{source: "file /b", set: true}
	if s1.Equal(s2) || !s1.Equal(s1) {
		t.Error("unread secrets compare by source")
	}
}
