package conserver

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/solgate/solgate/conserver/config"
	"github.com/solgate/solgate/ipmilan"
)

func TestBMCConfig(t *testing.T) {
	base := config.Console{Name: "node1", BMC: "node1-bmc", User: "ADMIN", Interface: "lanplus", Privilege: "operator", CipherSuite: 3}
	c, err := BMCConfig(&base, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Addr != "node1-bmc:623" || c.User != "ADMIN" || c.Privilege != ipmilan.PrivOperator || c.CipherSuite != 3 || c.Insecure || c.ForceSuiteZero {
		t.Fatalf("mapped %+v", c)
	}
	zero := base
	zero.CipherSuite, zero.CipherSuiteZero = 0, true
	if c, err := BMCConfig(&zero, nil); err != nil || !c.ForceSuiteZero || !c.Insecure {
		t.Fatalf("suite zero written in the config: %+v %v", c, err)
	}
	weak := base
	weak.CipherSuite, weak.InsecureCipherSuite = 2, true
	if c, err := BMCConfig(&weak, nil); err != nil || c.CipherSuite != 2 || !c.Insecure || c.ForceSuiteZero {
		t.Fatalf("suite 2 allowed by insecure_cipher_suite: %+v %v", c, err)
	}
	md5 := base
	md5.Interface, md5.AuthType = "lan", ""
	if c, err := BMCConfig(&md5, nil); err != nil || c.AuthType != ipmilan.AuthMD5 || c.Insecure {
		t.Fatalf("1.5 default auth: %+v %v", c, err)
	}
	lan := base
	lan.Interface, lan.AuthType, lan.Quirks = "lan", "password", []string{"nochecksumcheck"}
	if c, err := BMCConfig(&lan, nil); err != nil || c.Interface != ipmilan.LAN || c.AuthType != ipmilan.AuthPassword || !c.Insecure || !c.Quirks.Has(ipmilan.QuirkNoChecksumCheck) {
		t.Fatalf("1.5 straight password: %+v %v", c, err)
	}
	none := base
	none.Interface, none.AuthType = "lan", "none"
	if c, err := BMCConfig(&none, nil); err != nil || c.AuthType != ipmilan.AuthNone || !c.ForceAuthNone || !c.Insecure {
		t.Fatalf("1.5 auth type none (ipmilan needs ForceAuthNone too): %+v %v", c, err)
	}
	md2 := base
	md2.AuthType = "md2"
	if _, err := BMCConfig(&md2, nil); err == nil || !strings.Contains(err.Error(), "node1") {
		t.Fatalf("md2: %v", err)
	}
}

// TestBMCConfigInsecureFromFile: from the TOML keys to ipmilan's one
// switch: only a console whose file says insecure_* gets Insecure.
func TestBMCConfigInsecureFromFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "solgate.toml")
	err := os.WriteFile(path, []byte(`
[defaults]
bmc = "{name}-bmc"
password = "pw"
insecure_inline_password = true
[[console]]
name = "auto"
[[console]]
name = "s17"
cipher_suite = 17
[[console]]
name = "s1"
cipher_suite = 1
insecure_cipher_suite = true
[[console]]
name = "straight"
interface = "lan"
auth_type = "password"
insecure_auth_password = true
`), 0o600)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]bool{"auto": false, "s17": false, "s1": true, "straight": true} {
		c, _ := cfg.Console(name)
		ic, err := BMCConfig(c, nil)
		if err != nil || ic.Insecure != want {
			t.Errorf("%s: Insecure %v, want %v (%v)", name, ic.Insecure, want, err)
		}
	}
}
