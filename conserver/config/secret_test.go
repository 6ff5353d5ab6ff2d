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
	verbs := []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "% x", "%#x", "%d", "%o", "%O", "%b", "%c", "%U", "%e", "%t", "%p", "%10.3s", "%-8d"}
	for _, f := range verbs {
		// The secret alone prints only a placeholder (%p is fmt's own:
		// it never calls Format, and prints an address, checked below).
		got := fmt.Sprintf(f, con.Password)
		if f != "%p" && !strings.Contains(got, redacted) {
			t.Errorf("Sprintf(%q, secret) = %q, want the placeholder", f, got)
		}
		outputs = append(outputs, got, fmt.Sprintf(f, &con.Password), fmt.Sprintf(f, *con), fmt.Sprintf(f, con), fmt.Sprintf(f, []Secret{con.Password}))
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
	// The bytes in any base a verb could print them in.
	var forms []string
	for _, f := range []string{"%x", "% x", "%d", "%o", "%b", "%U"} {
		forms = append(forms, strings.Trim(fmt.Sprintf(f, []byte(pw)[:4]), "[]"))
	}
	for _, o := range outputs {
		if strings.Contains(o, pw) || strings.Contains(o, pw[:6]) {
			t.Errorf("secret leaked in %q", o)
		}
		for _, form := range forms {
			if strings.Contains(strings.ToLower(o), strings.ToLower(form)) {
				t.Errorf("secret leaked as %q in %q", form, o)
			}
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
