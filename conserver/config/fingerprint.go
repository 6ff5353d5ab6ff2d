package config

import "encoding/hex"

// Fingerprint identifies the effective configuration in 16 hex digits,
// for metrics (solgate_config_info) and solgate ctl: the same canonical
// form Equal compares, where files and lines do not count, except that a
// secret counts by its source (file or variable name), never by its
// value, so that the fingerprint, which anyone who can scrape metrics
// reads, gives nothing to guess a BMC password against. A changed
// password alone therefore leaves the fingerprint as it was.
func (c *Config) Fingerprint() string {
	sum := c.digest(false)
	return hex.EncodeToString(sum[:8])
}
