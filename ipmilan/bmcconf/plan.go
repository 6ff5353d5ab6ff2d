package bmcconf

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/solgate/solgate/ipmilan"
)

// Assignment is one KEY=VALUE. A user's password is the one value that is
// not text: set Secret (and Size) for user.N.password, which only the
// user operations produce, never a command line.
type Assignment struct {
	Key, Value string
	Secret     ipmilan.Secret
	Size       ipmilan.PasswordSize
}

// ParseAssignment splits "KEY=VALUE".
func ParseAssignment(s string) (Assignment, error) {
	k, v, ok := strings.Cut(s, "=")
	if !ok || k == "" {
		return Assignment{}, fmt.Errorf("%q: want KEY=VALUE", s)
	}
	if strings.HasSuffix(k, ".password") {
		return Assignment{}, fmt.Errorf("%q: passwords are never given on the command line: use solgate bmc user HOSTS password NAME --new-password-file FILE", k)
	}
	return Assignment{Key: strings.ToLower(k), Value: v}, nil
}

// Change is one key that a Plan changes.
type Change struct {
	Key      string
	Old, New string
	// Disrupts says why the change could cut off the session in use
	// (empty when it cannot): such changes need AllowDisconnect and run
	// last.
	Disrupts string

	group  string
	userID uint8 // for user groups
}

// password is a user.N.password assignment.
type password struct {
	secret ipmilan.Secret
	size   ipmilan.PasswordSize
}

// Plan is a set of changes to one BMC, computed against a Snapshot.
type Plan struct {
	Changes []Change
	// Unchanged are the keys assigned the value they have already.
	Unchanged []string
	cur, want *Snapshot
	passwords map[uint8]password
}

// NewPlan checks every assignment against s and returns the changes.
// Nothing is sent. An unknown key, a bad value or a key the BMC does not
// support is an error naming the key.
func NewPlan(s *Snapshot, as []Assignment) (*Plan, error) {
	p := &Plan{cur: s, want: s.Clone(), passwords: map[uint8]password{}}
	type assigned struct {
		k key
		a Assignment
	}
	var keys []assigned
	for _, a := range as {
		if id, ok := passwordKey(a.Key); ok {
			if s.User(id) == nil {
				return nil, fmt.Errorf("%s: no user ID %d", a.Key, id)
			}
			if _, err := a.Size.Check(a.Secret); err != nil {
				return nil, fmt.Errorf("%s: %w", a.Key, err)
			}
			p.passwords[id] = password{secret: a.Secret, size: a.Size}
			continue
		}
		k, err := lookupKey(s, a.Key)
		if err != nil {
			return nil, err
		}
		if k.set == nil {
			return nil, fmt.Errorf("%s is read-only", k.name)
		}
		if _, err := k.get(s); err != nil && !errors.Is(err, ErrNotReported) {
			return nil, fmt.Errorf("%s: cannot be set: %w", k.name, err)
		}
		if err := k.set(p.want, a.Value); err != nil {
			return nil, fmt.Errorf("%s=%s: %w", k.name, a.Value, err)
		}
		keys = append(keys, assigned{k, a})
	}
	seen := map[string]bool{}
	for _, ka := range keys {
		if seen[ka.k.name] {
			continue
		}
		seen[ka.k.name] = true
		old, oerr := ka.k.get(s)
		nw, _ := ka.k.get(p.want)
		if oerr == nil && old == nw {
			p.Unchanged = append(p.Unchanged, ka.k.name)
			continue
		}
		if oerr != nil {
			old = "unknown"
		}
		p.Changes = append(p.Changes, Change{Key: ka.k.name, Old: old, New: nw, group: ka.k.group, userID: userOfGroup(ka.k.group)})
	}
	ids := make([]int, 0, len(p.passwords))
	for id := range p.passwords {
		ids = append(ids, int(id))
	}
	sort.Ints(ids)
	for _, id := range ids {
		p.Changes = append(p.Changes, Change{Key: fmt.Sprintf("user.%d.password", id), Old: "(secret)", New: "(secret)",
			group: fmt.Sprintf("user.%d.password", id), userID: uint8(id)})
	}
	for i := range p.Changes {
		p.Changes[i].Disrupts = disrupts(s, p.want, &p.Changes[i])
	}
	// In the order Apply writes them: what cannot cut off the session
	// first, then by parameter.
	sort.SliceStable(p.Changes, func(i, j int) bool {
		a, b := p.Changes[i], p.Changes[j]
		if (a.Disrupts != "") != (b.Disrupts != "") {
			return b.Disrupts != ""
		}
		return groupRank(a.group) < groupRank(b.group)
	})
	return p, nil
}

func passwordKey(k string) (uint8, bool) {
	rest, ok := strings.CutPrefix(k, "user.")
	if !ok {
		return 0, false
	}
	id, field, _ := strings.Cut(rest, ".")
	n, ok := userIDRef(id)
	return n, ok && field == "password"
}

func userOfGroup(g string) uint8 {
	rest, ok := strings.CutPrefix(g, "user.")
	if !ok {
		return 0
	}
	id, _, _ := strings.Cut(rest, ".")
	n, _ := userIDRef(id)
	return n
}

// groupRank orders the writes: network settings, channel, SOL, then a
// user's name, password, access and payloads before it is enabled.
func groupRank(g string) int {
	switch {
	case strings.HasPrefix(g, "lan."):
		return 0
	case g == "channel":
		return 1
	case strings.HasPrefix(g, "sol."):
		return 2
	}
	for i, s := range []string{".name", ".password", ".access", ".payload", ".enable"} {
		if strings.HasSuffix(g, s) {
			return 10 + i
		}
	}
	return 20
}

// disrupts says why c could cut off the session the snapshot was read
// through (nothing in-band).
func disrupts(cur, want *Snapshot, c *Change) string {
	self := cur.Self
	if !self.LAN {
		return ""
	}
	switch c.group {
	case "lan.3", "lan.4", "lan.5", "lan.6", "lan.12", "lan.20":
		return "it changes the BMC's network address"
	case "lan.2":
		if self.Suite == 0 {
			return "the session in use is IPMI 1.5 and this changes its authentication types"
		}
	case "lan.24":
		if old, ok := cur.LAN.CipherPriv(uint8(self.Suite)); ok {
			if nw, _ := want.LAN.CipherPriv(uint8(self.Suite)); nw < old && nw < self.Privilege {
				return fmt.Sprintf("the session in use runs on cipher suite %d", self.Suite)
			}
		}
	case "channel":
		if want.Access.Mode == ipmilan.AccessDisabled || want.Access.Mode == ipmilan.AccessPreBoot {
			return "it turns IPMI over LAN off or to pre-boot only"
		}
		if want.Access.PrivLimit < self.Privilege {
			return fmt.Sprintf("the session in use has %v privilege", self.Privilege)
		}
	}
	if c.userID != 0 && c.userID == self.UserID {
		u, w := cur.User(c.userID), want.User(c.userID)
		switch {
		case strings.HasSuffix(c.group, ".payload"):
			return ""
		case strings.HasSuffix(c.group, ".access") && w.Access.IPMIMessaging && w.Access.PrivLimit >= self.Privilege && w.Access.PrivLimit <= ipmilan.PrivOEM:
			return ""
		case strings.HasSuffix(c.group, ".enable") && w.Access.Status == ipmilan.UserStatusEnabled:
			return ""
		case u != nil && w != nil:
			return fmt.Sprintf("user %d (%s) is the one this session logged in as", c.userID, u.Name)
		}
	}
	return ""
}

// ApplyOptions tune Apply.
type ApplyOptions struct {
	// AllowDisconnect applies changes that could cut off the session in
	// use (after all the others); without it they are refused.
	AllowDisconnect bool
}

// Status of one change after Apply.
type Status string

const (
	StatusOK          Status = "ok"            // written and read back
	StatusRefused     Status = "refused"       // could cut off the session; AllowDisconnect not given
	StatusFailed      Status = "failed"        // the BMC refused the write
	StatusMismatch    Status = "mismatch"      // written, but reads back otherwise
	StatusNotReadBack Status = "not read back" // written; reading back failed or the BMC does not report it
	StatusSkipped     Status = "skipped"       // an earlier write of the same parameter failed
)

// Result is what Apply did with one Change.
type Result struct {
	Change
	Status Status
	Got    string // the value read back (StatusMismatch)
	Err    error  // StatusFailed, StatusNotReadBack
}

// Apply writes the plan's changes to c (the BMC the snapshot came from),
// each parameter once: first every change that cannot cut off the
// session, which are then read back; then, with AllowDisconnect, the
// others, read back if the session survives them. It returns one Result
// per Change, in the plan's order.
func (p *Plan) Apply(ctx context.Context, c ipmilan.Commander, o ApplyOptions) []Result {
	res := make([]Result, len(p.Changes))
	for i, ch := range p.Changes {
		res[i].Change = ch
	}
	phase := func(risky bool) {
		written := map[string]error{}
		var idx []int
		for i, ch := range p.Changes {
			if (ch.Disrupts != "") != risky {
				continue
			}
			if risky && !o.AllowDisconnect {
				res[i].Status = StatusRefused
				continue
			}
			err, done := written[ch.group]
			if !done {
				err = p.write(ctx, c, ch)
				written[ch.group] = err
			} else if err != nil {
				res[i].Status, res[i].Err = StatusSkipped, err
				continue
			}
			if err != nil {
				res[i].Status, res[i].Err = StatusFailed, err
				continue
			}
			idx = append(idx, i)
		}
		if len(idx) == 0 {
			return
		}
		p.readBack(ctx, c, res, idx)
	}
	phase(false)
	phase(true)
	return res
}

func (p *Plan) write(ctx context.Context, c ipmilan.Commander, ch Change) error {
	if ch.userID != 0 {
		_, g, _ := strings.Cut(strings.TrimPrefix(ch.group, "user."), ".")
		pw := p.passwords[ch.userID]
		return userWriter(ctx, c, p.cur.Channel, p.want, ch.userID, g, &pw)
	}
	w := writers[ch.group]
	if w == nil {
		return fmt.Errorf("bmcconf: no writer for %s", ch.Key)
	}
	return w(ctx, c, p.cur.Channel, p.want)
}

// readBack reads the BMC again and compares the changes idx.
func (p *Plan) readBack(ctx context.Context, c ipmilan.Commander, res []Result, idx []int) {
	now, err := Read(ctx, c, p.cur.Channel)
	for _, i := range idx {
		ch := res[i].Change
		if err != nil {
			res[i].Status, res[i].Err = StatusNotReadBack, err
			continue
		}
		if pw, ok := p.passwords[ch.userID]; ok && strings.HasSuffix(ch.Key, ".password") {
			good, terr := ipmilan.TestUserPassword(ctx, c, ch.userID, pw.secret, pw.size)
			switch {
			case terr != nil:
				res[i].Status, res[i].Err = StatusNotReadBack, terr
			case good:
				res[i].Status = StatusOK
			default:
				res[i].Status, res[i].Got = StatusMismatch, "(a different password)"
			}
			continue
		}
		k, kerr := lookupKey(now, ch.Key)
		if kerr != nil {
			res[i].Status, res[i].Err = StatusNotReadBack, kerr
			continue
		}
		got, gerr := k.get(now)
		switch {
		case gerr != nil:
			res[i].Status, res[i].Err = StatusNotReadBack, gerr
		case got != ch.New:
			res[i].Status, res[i].Got = StatusMismatch, got
		default:
			res[i].Status = StatusOK
		}
	}
}
