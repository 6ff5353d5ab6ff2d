package conserver

import (
	"fmt"
	"log/slog"

	"github.com/solgate/solgate/conserver/config"
	"github.com/solgate/solgate/ipmilan"
)

// BMCConfig translates a console's configured BMC settings into the
// ipmilan connection configuration. Every insecure option the console
// allows (insecure_cipher_suite_zero, insecure_cipher_suite,
// insecure_auth_password, insecure_auth_none) becomes
// ipmilan.Config.Insecure; nothing else sets it.
func BMCConfig(c *config.Console, log *slog.Logger) (ipmilan.Config, error) {
	cfg := ipmilan.Config{
		Addr:        c.BMCAddr(),
		User:        c.User,
		Password:    ipmilan.Secret(c.Password.Reveal()),
		KG:          ipmilan.Secret(c.KG.Reveal()),
		CipherSuite: c.CipherSuite,
		Logger:      log,
	}
	var err error
	if cfg.Interface, err = ipmilan.ParseInterface(c.Interface); err != nil {
		return cfg, fmt.Errorf("console %s: %w", c.Name, err)
	}
	if cfg.Privilege, err = ipmilan.ParsePrivilege(c.Privilege); err != nil {
		return cfg, fmt.Errorf("console %s: %w", c.Name, err)
	}
	if cfg.Quirks, err = ipmilan.ParseQuirks(c.Quirks...); err != nil {
		return cfg, fmt.Errorf("console %s: %w", c.Name, err)
	}
	// Each insecure choice below was written down with its insecure_* key
	// (config validation refuses it otherwise); ipmilan.Config has one
	// switch for all of them.
	if c.CipherSuiteZero {
		cfg.ForceSuiteZero, cfg.Insecure = true, true
	}
	if c.InsecureCipherSuite {
		cfg.Insecure = true // an explicit suite without integrity or encryption
	}
	switch c.AuthType {
	case "", "md5":
		cfg.AuthType = ipmilan.AuthMD5
	case "password":
		cfg.AuthType, cfg.Insecure = ipmilan.AuthPassword, true
	case "none":
		cfg.AuthType, cfg.ForceAuthNone, cfg.Insecure = ipmilan.AuthNone, true, true
	default:
		return cfg, fmt.Errorf("console %s: IPMI 1.5 auth type %q is not supported (use md5)", c.Name, c.AuthType)
	}
	return cfg, nil
}
