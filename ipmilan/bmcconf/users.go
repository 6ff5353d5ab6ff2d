package bmcconf

import (
	"fmt"
	"strings"

	"github.com/solgate/solgate/ipmilan"
)

// UserOp is one `solgate bmc user` action, turned into assignments
// against a snapshot by Assignments.
type UserOp struct {
	// Action is add, password, enable, disable, privilege or sol.
	Action string
	// User names the user; all digits is a user ID.
	User string
	// Value is the privilege (add, privilege) or on/off (sol).
	Value string
	// Password and Size are the new password (add, password).
	Password ipmilan.Secret
	Size     ipmilan.PasswordSize
	// ID is the user ID add uses (0: the first free one from 2 up).
	ID uint8
	// NoSOL: add without SOL payload access.
	NoSOL bool
}

// UserActions lists the actions with their arguments, for help texts.
var UserActions = []struct{ Action, Args, Help string }{
	{"add", "NAME [PRIVILEGE]", "create the user (or update it if it exists): name, password from --new-password-file, privilege (default admin), IPMI messaging, SOL payload access (unless --no-sol), enabled"},
	{"password", "NAME|ID", "set the password from --new-password-file (--password-size 16 or 20)"},
	{"enable", "NAME|ID", "allow the user to log in"},
	{"disable", "NAME|ID", "forbid the user to log in"},
	{"privilege", "NAME|ID PRIVILEGE", "set the privilege limit on the LAN channel: user, operator, admin, callback or none"},
	{"sol", "NAME|ID on|off", "grant or revoke SOL payload access"},
}

// Assignments returns the keys op sets on the BMC of s.
func (op UserOp) Assignments(s *Snapshot) ([]Assignment, error) {
	if s.UsersErr != nil {
		return nil, fmt.Errorf("users: %w", s.UsersErr)
	}
	k := func(id uint8, field, v string) Assignment {
		return Assignment{Key: fmt.Sprintf("user.%d.%s", id, field), Value: v}
	}
	pw := func(id uint8) Assignment {
		return Assignment{Key: fmt.Sprintf("user.%d.password", id), Secret: op.Password, Size: op.Size}
	}
	if op.Action == "add" {
		return op.add(s, k, pw)
	}
	u, err := s.FindUser(op.User)
	if err != nil {
		return nil, err
	}
	switch op.Action {
	case "password":
		if len(op.Password) == 0 {
			return nil, fmt.Errorf("password: no new password (give --new-password-file)")
		}
		return []Assignment{pw(u.ID)}, nil
	case "enable", "disable":
		return []Assignment{k(u.ID, "enabled", onOff(op.Action == "enable"))}, nil
	case "privilege":
		p, err := parsePriv(op.Value, true)
		if err != nil {
			return nil, fmt.Errorf("privilege %w", err)
		}
		as := []Assignment{k(u.ID, "privilege", privName(p))}
		if p != ipmilan.PrivNoAccess {
			as = append(as, k(u.ID, "messaging", "on"))
		}
		return as, nil
	case "sol":
		b, err := parseOnOff(op.Value)
		if err != nil {
			return nil, fmt.Errorf("sol %w", err)
		}
		return []Assignment{k(u.ID, "sol", onOff(b))}, nil
	}
	return nil, fmt.Errorf("unknown user action %q (want add, password, enable, disable, privilege or sol)", op.Action)
}

func (op UserOp) add(s *Snapshot, k func(uint8, string, string) Assignment, pw func(uint8) Assignment) ([]Assignment, error) {
	name := op.User
	if name == "" || len(name) > ipmilan.MaxUserNameLen || strings.ContainsRune(name, 0) {
		return nil, fmt.Errorf("add: user name %q: want 1-16 bytes", name)
	}
	if _, isID := userIDRef(name); isID {
		return nil, fmt.Errorf("add: user name %q: all digits reads as a user ID", name)
	}
	priv := ipmilan.PrivAdmin
	if op.Value != "" {
		p, err := parsePriv(op.Value, false)
		if err != nil {
			return nil, fmt.Errorf("add: privilege %w", err)
		}
		priv = p
	}
	var u *ipmilan.User
	for i := range s.Users {
		if s.Users[i].Name == name {
			u = &s.Users[i]
		}
	}
	switch {
	case u != nil && op.ID != 0 && u.ID != op.ID:
		return nil, fmt.Errorf("add: %q exists already as user ID %d", name, u.ID)
	case u == nil && op.ID != 0:
		if u = s.User(op.ID); u == nil {
			return nil, fmt.Errorf("add: no user ID %d (the BMC has %d)", op.ID, len(s.Users))
		}
		if u.Name != "" || u.ID == 1 {
			return nil, fmt.Errorf("add: user ID %d is taken (%q)", op.ID, u.Name)
		}
	case u == nil:
		for i := range s.Users {
			if c := &s.Users[i]; c.ID >= 2 && c.Name == "" && !c.Enabled() {
				u = c
				break
			}
		}
		if u == nil {
			return nil, fmt.Errorf("add: no free user ID (all %d are in use)", len(s.Users))
		}
	}
	var as []Assignment
	if u.Name != name {
		if len(op.Password) == 0 {
			return nil, fmt.Errorf("add: a new user needs a password (give --new-password-file)")
		}
		as = append(as, k(u.ID, "name", name))
	}
	if len(op.Password) > 0 {
		as = append(as, pw(u.ID))
	}
	as = append(as, k(u.ID, "privilege", privName(priv)), k(u.ID, "messaging", "on"))
	if u.PayloadErr == nil {
		as = append(as, k(u.ID, "sol", onOff(!op.NoSOL)))
	}
	return append(as, k(u.ID, "enabled", "on")), nil
}
