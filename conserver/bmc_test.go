package conserver

import (
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
	lan := base
	lan.Interface, lan.AuthType, lan.Quirks = "lan", "password", []string{"nochecksumcheck"}
	if c, err := BMCConfig(&lan, nil); err != nil || c.Interface != ipmilan.LAN || c.AuthType != ipmilan.AuthPassword || !c.Insecure || !c.Quirks.Has(ipmilan.QuirkNoChecksumCheck) {
		t.Fatalf("1.5 straight password: %+v %v", c, err)
	}
	md2 := base
	md2.AuthType = "md2"
	if _, err := BMCConfig(&md2, nil); err == nil || !strings.Contains(err.Error(), "node1") {
		t.Fatalf("md2: %v", err)
	}
}
