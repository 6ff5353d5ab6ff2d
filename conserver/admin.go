package conserver

import "github.com/solgate/solgate/logstore"

// ReopenAdmin is Reopen on behalf of the host's administrator (solgate
// ctl, whose socket only the daemon's own user and root can use): no
// access rule applies, as none names local accounts. The event line and
// the daemon log name id as for any reopen.
func (c *Console) ReopenAdmin(id Identity) error {
	return c.redial(id, "reopen", logstore.EventReopen)
}
