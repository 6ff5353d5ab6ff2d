package bmcsim

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/solgate/solgate/ipmilan/internal/wire"
)

// This file holds the configuration a client can change on a simulated
// BMC (users, LAN, channel access, SOL settings, cipher suite
// privileges), its persistence in an optional state file, the
// Misconfigured knob, and SystemInterface, the in-band entry point. The
// command handlers are in users.go and lanconf.go.

// confState is the changeable configuration; guarded by BMC.mu.
type confState struct {
	users        []userEntry // index = user ID - 1
	lan          lanState
	chanV        wire.ChannelAccess // active (volatile) LAN channel access
	chanNV       wire.ChannelAccess // stored (non-volatile)
	cipherPrivs  map[uint8]Privilege
	solForceAuth bool
	stateFile    string
	inband       *session // the pseudo-session of SystemInterface
}

// userEntry is one user ID. User.MaxPriv is the user's privilege limit on
// the LAN channel (PrivNoAccess: none).
type userEntry struct {
	User
	enabled      bool
	ipmiMsg      bool
	linkAuth     bool
	callbackOnly bool
	sol          bool // SOL payload access
	oemPayloads  uint8
	pw20         bool // the password is stored in the 20-byte form
}

// usable reports whether the user may open a LAN session.
func (u *userEntry) usable() bool {
	return u.enabled && u.ipmiMsg && u.MaxPriv >= PrivCallback && u.MaxPriv <= PrivOEM
}

type lanState struct {
	setInProgress                  uint8
	ipSource                       wire.IPSource
	ip, netmask, gateway, backupGW wire.IPv4
	mac, gatewayMAC, backupMAC     wire.MAC
	vlan                           wire.VLAN
	vlanPriority                   uint8
	authEnables                    wire.AuthTypeEnables
	community                      [18]byte
	ipHeader                       [3]byte
	arpControl, gratARP            uint8
}

const defaultMaxUsers = 16

// PrivNoAccess as a user's privilege limit removes its access.
const PrivNoAccess = wire.PrivNoAccess

// initConf builds the changeable configuration from the Config: users at
// IDs 2 and up (ID 1 is the null user, disabled), the LAN channel always
// available at the admin limit, every offered cipher suite at admin, a
// made-up static address and MAC. It runs before the state file is
// loaded, which overrides all of it.
func (b *BMC) initConf() {
	c := &b.conf
	n := max(defaultMaxUsers, len(b.cfg.Users)+1)
	if b.cfg.MaxUsers > 0 {
		n = max(b.cfg.MaxUsers, len(b.cfg.Users)+1)
	}
	c.users = make([]userEntry, n)
	c.users[0] = userEntry{User: User{MaxPriv: PrivNoAccess}}
	for i := 1; i < n; i++ {
		c.users[i] = userEntry{User: User{MaxPriv: PrivNoAccess}}
	}
	for i, u := range b.cfg.Users {
		c.users[i+1] = userEntry{User: u, enabled: true, ipmiMsg: true, sol: true, pw20: len(u.Password) > 16}
	}
	c.chanV = wire.ChannelAccess{Mode: wire.AccessAlways, PrivLimit: PrivAdmin}
	c.chanNV = c.chanV
	c.cipherPrivs = map[uint8]Privilege{}
	for _, id := range b.cfg.CipherSuites {
		c.cipherPrivs[id] = PrivAdmin
	}
	g := b.cfg.GUID
	c.lan = lanState{
		ipSource: wire.IPSourceStatic,
		ip:       wire.IPv4{10, 0, g[14], g[15]}, netmask: wire.IPv4{255, 255, 0, 0}, gateway: wire.IPv4{10, 0, 0, 1},
		mac:        wire.MAC{0x02, 0x00, g[12], g[13], g[14], g[15]}, // locally administered
		gatewayMAC: wire.MAC{0x02, 0x00, 0x00, 0x00, 0x00, 0x01},
		ipHeader:   [3]byte{0x40, 0x40, 0x10},
		arpControl: 0x02,
	}
	copy(c.lan.community[:], "public")
	if b.cfg.Allow15 {
		m := wire.AuthTypeMask(1<<wire.AuthMD5 | 1<<wire.AuthPassword)
		if b.cfg.AllowAuthNone {
			m |= 1 << wire.AuthNone
		}
		for i := range 4 {
			c.lan.authEnables[i] = m
		}
	}
	c.stateFile = b.cfg.StateFile
	c.inband = &session{priv: PrivAdmin, maxPriv: PrivAdmin, userIdx: -1, state: stateActive}
	if b.cfg.Misconfigured {
		b.misconfigure()
	}
}

// misconfigure plants what Config.Misconfigured promises: the problems
// `solgate bmc doctor` finds on factory-fresh or neglected BMCs.
func (b *BMC) misconfigure() {
	c := &b.conf
	b.sol.disabled = true
	b.sol.bitRate = [2]uint8{uint8(wire.BitRate9600), uint8(wire.BitRate9600)}
	for i := 1; i < len(c.users) && i <= len(b.cfg.Users); i++ {
		c.users[i].sol = false // nobody may use SOL
	}
	c.users[0] = userEntry{User: User{MaxPriv: PrivAdmin}, enabled: true, ipmiMsg: true, sol: true} // anonymous login
	c.chanV.PerMsgAuthOff, c.chanNV.PerMsgAuthOff = true, true
	if _, ok := b.suites[0]; !ok {
		s, _ := suiteByID(0)
		b.suites[0] = s
		b.cfg.CipherSuites = append([]uint8{0}, b.cfg.CipherSuites...)
	}
	c.cipherPrivs[0] = PrivAdmin
}

// suiteEnabledLocked reports whether cipher suite id may be used (its
// privilege in LAN parameter 24 is not "unused").
func (b *BMC) suiteEnabledLocked(id uint8) bool {
	return b.conf.cipherPrivs[id] != 0
}

// suitePrivLocked is cipher suite id's maximum privilege.
func (b *BMC) suitePrivLocked(id uint8) Privilege { return b.conf.cipherPrivs[id] }

// userLimitLocked is the highest privilege user idx (an index into
// conf.users) may have on the LAN channel now.
func (b *BMC) userLimitLocked(idx int) Privilege {
	return min(b.conf.users[idx].MaxPriv, b.conf.chanV.PrivLimit)
}

// solAllowedLocked reports whether session s's user has SOL payload
// access.
func (b *BMC) solAllowedLocked(s *session) bool {
	return s.userIdx < 0 || s.userIdx < len(b.conf.users) && b.conf.users[s.userIdx].sol
}

// channelLocked resolves a channel number in a request of session s:
// ChannelThis is the LAN channel, or the system interface in-band.
func (b *BMC) channelLocked(s *session, ch uint8) uint8 {
	if ch&0x0F != wire.ChannelThis {
		return ch & 0x0F
	}
	if s == b.conf.inband {
		return wire.ChannelSystemInterface
	}
	return channelLAN
}

// SystemInterface runs one IPMI command as the BMC's system interface
// (KCS) would: in-band, without a session, at administrator privilege.
// It is what a host's Linux IPMI driver reaches; ipmilan's in-band tests
// put it behind a double of that driver. Payload commands (SOL) are not
// available in-band (completion code 0xC1).
func (b *BMC) SystemInterface(netFn, cmd uint8, data []byte) (code uint8, resp []byte) {
	req := wire.Request{RsAddr: wire.BMCSlaveAddr, NetFn: wire.NetFn(netFn), RqAddr: 0x20, Cmd: cmd,
		Data: append([]byte(nil), data...)}
	if netFn == uint8(wire.NetFnApp) && cmd >= wire.CmdActivatePayload && cmd <= wire.CmdGetPayloadInstanceInfo ||
		netFn == uint8(wire.NetFnApp) && cmd >= wire.CmdGetSessionChallenge && cmd <= wire.CmdCloseSession {
		return uint8(wire.CCInvalidCommand), nil
	}
	if b.isDown(b.now()) {
		return uint8(wire.CCBMCInitializing), nil
	}
	b.mu.Lock()
	now := b.now()
	r, _ := b.commandLocked(b.conf.inband, req, nil, now)
	b.unlockAndFlush(now)
	return uint8(r.Code), append([]byte(nil), r.Data...)
}

// State is the configuration a client can change on a simulated BMC, as
// its state file holds it (JSON). Passwords are stored in clear: it is a
// simulator.
type State struct {
	LAN     LANState     `json:"lan"`
	Channel ChannelState `json:"channel"`
	SOL     SOLState     `json:"sol"`
	Users   []UserState  `json:"users"` // user ID 1 first
}

// LANState is the LAN channel's configuration.
type LANState struct {
	IPSource    string     `json:"ip_source"` // static, dhcp, bios, other, unspecified
	IP          netip.Addr `json:"ip"`
	Netmask     netip.Addr `json:"netmask"`
	Gateway     netip.Addr `json:"gateway"`
	MAC         string     `json:"mac"`
	VLAN        uint16     `json:"vlan"` // 0: no VLAN
	AuthEnables [5]string  `json:"auth_enables"`
	// CipherPrivs is each offered cipher suite's maximum privilege
	// ("unused" disables it), by suite ID.
	CipherPrivs map[string]string `json:"cipher_privileges"`
}

// ChannelState is the LAN channel's access settings (both copies).
type ChannelState struct {
	Access     string `json:"access"` // disabled, preboot, always, shared
	Privilege  string `json:"privilege"`
	PerMsgAuth bool   `json:"per_message_auth"`
	UserAuth   bool   `json:"user_level_auth"`
	Alerting   bool   `json:"alerting"`
}

// SOLState is the SOL configuration.
type SOLState struct {
	Enabled             bool          `json:"enabled"`
	Privilege           string        `json:"privilege"`
	ForceEncryption     bool          `json:"force_encryption"`
	ForceAuthentication bool          `json:"force_authentication"`
	Accumulate          time.Duration `json:"accumulate_interval"`
	Threshold           int           `json:"send_threshold"`
	Retries             int           `json:"retry_count"`
	RetryInterval       time.Duration `json:"retry_interval"`
	BitRate             int           `json:"bit_rate"`              // volatile, bits per second; 0: serial setting
	NonVolatileBitRate  int           `json:"non_volatile_bit_rate"` // likewise
}

// UserState is one user ID.
type UserState struct {
	ID            uint8  `json:"id"`
	Name          string `json:"name"`
	Password      string `json:"password"`
	Password20    bool   `json:"password_20"`
	Enabled       bool   `json:"enabled"`
	Privilege     string `json:"privilege"` // limit on the LAN channel; "none": no access
	IPMIMessaging bool   `json:"ipmi_messaging"`
	LinkAuth      bool   `json:"link_auth"`
	CallbackOnly  bool   `json:"callback_only"`
	SOL           bool   `json:"sol"`
}

func privText(p Privilege) string {
	if p == PrivNoAccess || p == 0 {
		return "none"
	}
	return p.String()
}

func parsePrivText(s string, allowNone bool) (Privilege, error) {
	p, ok := wire.ParsePrivilegeName(s)
	if !ok || p == PrivNoAccess && !allowNone {
		return 0, fmt.Errorf("privilege %q", s)
	}
	return p, nil
}

// ConfigState returns the BMC's changeable configuration now.
func (b *BMC) ConfigState() State {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.stateLocked()
}

func (b *BMC) stateLocked() State {
	c := &b.conf
	l := &c.lan
	st := State{
		LAN: LANState{IPSource: l.ipSource.String(), IP: l.ip.Addr(), Netmask: l.netmask.Addr(), Gateway: l.gateway.Addr(),
			MAC: l.mac.String(), CipherPrivs: map[string]string{}},
		Channel: ChannelState{Access: c.chanV.Mode.String(), Privilege: privText(c.chanV.PrivLimit),
			PerMsgAuth: !c.chanV.PerMsgAuthOff, UserAuth: !c.chanV.UserAuthOff, Alerting: !c.chanV.AlertingOff},
		SOL: SOLState{Enabled: !b.sol.disabled, Privilege: privText(b.sol.minPriv), ForceEncryption: b.sol.forceEncryption,
			ForceAuthentication: c.solForceAuth, Accumulate: b.sol.accumulate, Threshold: b.sol.threshold,
			Retries: b.sol.retries, RetryInterval: b.sol.retryInterval,
			BitRate: wire.BitRate(b.sol.bitRate[1]).Bps(), NonVolatileBitRate: wire.BitRate(b.sol.bitRate[0]).Bps()},
	}
	if l.vlan.Enabled {
		st.LAN.VLAN = l.vlan.ID
	}
	for i, m := range l.authEnables {
		st.LAN.AuthEnables[i] = m.String()
	}
	for id, p := range c.cipherPrivs {
		v := privText(p)
		if p == 0 {
			v = "unused"
		}
		st.LAN.CipherPrivs[strconv.Itoa(int(id))] = v
	}
	for i, u := range c.users {
		st.Users = append(st.Users, UserState{ID: uint8(i + 1), Name: u.Name, Password: u.Password, Password20: u.pw20,
			Enabled: u.enabled, Privilege: privText(u.MaxPriv), IPMIMessaging: u.ipmiMsg, LinkAuth: u.linkAuth,
			CallbackOnly: u.callbackOnly, SOL: u.sol})
	}
	return st
}

// SetConfigState replaces the BMC's changeable configuration (and writes
// the state file, if there is one). Tests use it to plant a problem.
func (b *BMC) SetConfigState(st State) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.applyStateLocked(st); err != nil {
		return err
	}
	b.saveStateLocked()
	return nil
}

// applyStateLocked validates st and, only if all of it is valid, makes it
// the configuration.
func (b *BMC) applyStateLocked(st State) error {
	c := b.conf
	c.users = append([]userEntry(nil), c.users...)
	c.cipherPrivs = map[uint8]Privilege{}
	var sol solSettings
	var err error
	l := &c.lan
	if l.ipSource, err = ipSourceOf(st.LAN.IPSource); err != nil {
		return err
	}
	for _, a := range []struct {
		dst  *wire.IPv4
		addr netip.Addr
		name string
	}{{&l.ip, st.LAN.IP, "ip"}, {&l.netmask, st.LAN.Netmask, "netmask"}, {&l.gateway, st.LAN.Gateway, "gateway"}} {
		if !a.addr.IsValid() {
			*a.dst = wire.IPv4{}
			continue
		}
		v4, ok := wire.IPv4Of(a.addr)
		if !ok {
			return fmt.Errorf("bmcsim: state: lan %s %v is not IPv4", a.name, a.addr)
		}
		*a.dst = v4
	}
	if st.LAN.MAC != "" {
		if l.mac, err = parseMAC(st.LAN.MAC); err != nil {
			return err
		}
	}
	if st.LAN.VLAN > 4094 {
		return fmt.Errorf("bmcsim: state: VLAN %d: want 0 (none) to 4094", st.LAN.VLAN)
	}
	l.vlan = wire.VLAN{ID: st.LAN.VLAN, Enabled: st.LAN.VLAN != 0}
	for i, s := range st.LAN.AuthEnables {
		if l.authEnables[i], err = wire.ParseAuthTypeMaskNames(s); err != nil {
			return fmt.Errorf("bmcsim: state: %w", err)
		}
	}
	for id, s := range st.LAN.CipherPrivs {
		n, err := strconv.Atoi(id)
		if _, known := b.suites[uint8(n)]; err != nil || n < 0 || n > 255 || !known {
			return fmt.Errorf("bmcsim: state: cipher suite %q is not offered by this BMC", id)
		}
		p := Privilege(0)
		if s != "unused" {
			if p, err = parsePrivText(s, false); err != nil {
				return fmt.Errorf("bmcsim: state: cipher suite %s: %w", id, err)
			}
		}
		c.cipherPrivs[uint8(n)] = p
	}
	for id := range b.suites {
		if _, ok := c.cipherPrivs[id]; !ok {
			c.cipherPrivs[id] = 0 // a suite the state does not list is unused
		}
	}
	ch := wire.ChannelAccess{PerMsgAuthOff: !st.Channel.PerMsgAuth, UserAuthOff: !st.Channel.UserAuth, AlertingOff: !st.Channel.Alerting}
	m, ok := wire.ParseAccessModeName(st.Channel.Access)
	if !ok {
		return fmt.Errorf("bmcsim: state: channel access %q", st.Channel.Access)
	}
	ch.Mode = m
	if ch.PrivLimit, err = parsePrivText(st.Channel.Privilege, false); err != nil {
		return fmt.Errorf("bmcsim: state: channel %w", err)
	}
	c.chanV, c.chanNV = ch, ch

	sol.disabled = !st.SOL.Enabled
	if sol.minPriv, err = parsePrivText(st.SOL.Privilege, false); err != nil || sol.minPriv < PrivUser {
		return fmt.Errorf("bmcsim: state: SOL privilege %q", st.SOL.Privilege)
	}
	sol.forceEncryption, c.solForceAuth = st.SOL.ForceEncryption, st.SOL.ForceAuthentication
	if st.SOL.Accumulate < 5*time.Millisecond || st.SOL.Threshold < 1 || st.SOL.Threshold > 255 ||
		st.SOL.Retries < 0 || st.SOL.RetryInterval < 0 {
		return fmt.Errorf("bmcsim: state: SOL accumulate %v / threshold %d / retries %d / interval %v out of range",
			st.SOL.Accumulate, st.SOL.Threshold, st.SOL.Retries, st.SOL.RetryInterval)
	}
	sol.accumulate, sol.threshold, sol.retries = st.SOL.Accumulate, st.SOL.Threshold, st.SOL.Retries
	sol.retryInterval = max(10*time.Millisecond, st.SOL.RetryInterval)
	for i, bps := range []int{st.SOL.NonVolatileBitRate, st.SOL.BitRate} {
		r := wire.BitRateSerial
		if bps != 0 {
			if r, ok = wire.BitRateOf(bps); !ok {
				return fmt.Errorf("bmcsim: state: SOL bit rate %d", bps)
			}
		}
		sol.bitRate[i] = uint8(r)
	}

	if len(st.Users) > maxUserIDs {
		return fmt.Errorf("bmcsim: state: %d users: at most %d", len(st.Users), maxUserIDs)
	}
	if len(st.Users) > 0 {
		c.users = make([]userEntry, max(len(st.Users), len(b.conf.users)))
		for i := range c.users {
			c.users[i] = userEntry{User: User{MaxPriv: PrivNoAccess}}
		}
	}
	for _, u := range st.Users {
		if u.ID < 1 || int(u.ID) > len(c.users) {
			return fmt.Errorf("bmcsim: state: user ID %d: want 1-%d", u.ID, len(c.users))
		}
		if len(u.Name) > 16 || len(u.Password) > 20 {
			return fmt.Errorf("bmcsim: state: user %d: name over 16 or password over 20 bytes", u.ID)
		}
		p, err := parsePrivText(u.Privilege, true)
		if err != nil {
			return fmt.Errorf("bmcsim: state: user %d: %w", u.ID, err)
		}
		c.users[u.ID-1] = userEntry{User: User{Name: u.Name, Password: u.Password, MaxPriv: p}, enabled: u.Enabled,
			ipmiMsg: u.IPMIMessaging, linkAuth: u.LinkAuth, callbackOnly: u.CallbackOnly, sol: u.SOL, pw20: u.Password20}
	}
	b.conf = c
	b.sol.disabled, b.sol.minPriv, b.sol.forceEncryption = sol.disabled, sol.minPriv, sol.forceEncryption
	b.sol.accumulate, b.sol.threshold, b.sol.retries = sol.accumulate, sol.threshold, sol.retries
	b.sol.retryInterval, b.sol.bitRate = sol.retryInterval, sol.bitRate
	if b.sol.disabled {
		for _, in := range b.sol.inst {
			if in != nil {
				b.deactivateLocked(in, true, b.now())
			}
		}
	}
	return nil
}

const maxUserIDs = wire.MaxUserID

// solSettings are the fields of solState a State sets.
type solSettings struct {
	disabled, forceEncryption bool
	minPriv                   Privilege
	accumulate, retryInterval time.Duration
	threshold, retries        int
	bitRate                   [2]uint8
}

func ipSourceOf(s string) (wire.IPSource, error) {
	v, ok := wire.ParseIPSourceName(s)
	if !ok {
		return 0, fmt.Errorf("bmcsim: state: IP source %q", s)
	}
	return v, nil
}

func parseMAC(s string) (wire.MAC, error) {
	var m wire.MAC
	parts := strings.Split(s, ":")
	if len(parts) != 6 {
		return m, fmt.Errorf("bmcsim: state: MAC %q: want six hex bytes separated by colons", s)
	}
	for i, p := range parts {
		v, err := strconv.ParseUint(p, 16, 8)
		if err != nil {
			return m, fmt.Errorf("bmcsim: state: MAC %q: %q is not a hex byte", s, p)
		}
		m[i] = uint8(v)
	}
	return m, nil
}

// readStateFile reads and parses a state file; a missing file is (nil,
// nil).
func readStateFile(path string) (*State, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("bmcsim: state file: %w", err)
	}
	var st State
	if err := json.Unmarshal(data, &st); err != nil {
		return nil, fmt.Errorf("bmcsim: state file %s: %w", path, err)
	}
	return &st, nil
}

// loadStateLocked applies the state file, if there is one (New; Validate
// checked that it parses).
func (b *BMC) loadStateLocked() error {
	if b.conf.stateFile == "" {
		return nil
	}
	st, err := readStateFile(b.conf.stateFile)
	if err != nil || st == nil {
		return err
	}
	if err := b.applyStateLocked(*st); err != nil {
		return fmt.Errorf("%w (in %s)", err, b.conf.stateFile)
	}
	return nil
}

// saveStateLocked writes the state file after a change: to a temporary
// file, then renamed over the old one, mode 0600 (it holds passwords). A
// failure is logged; the change stays in effect in memory. The write is
// synchronous: state files are small and changes rare.
func (b *BMC) saveStateLocked() {
	if b.conf.stateFile == "" {
		return
	}
	st := b.stateLocked()
	sort.Slice(st.Users, func(i, j int) bool { return st.Users[i].ID < st.Users[j].ID })
	data, err := json.MarshalIndent(st, "", "  ")
	if err == nil {
		err = writeFileAtomic(b.conf.stateFile, append(data, '\n'))
	}
	if err != nil {
		b.log.Warn("state file not written", "file", b.conf.stateFile, "err", err)
	}
}

func writeFileAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// validateConf checks MaxUsers and the state file (that it parses and
// applies to a BMC of this configuration).
func validateConf(c *Config) error {
	if c.MaxUsers < 0 || c.MaxUsers > maxUserIDs {
		return fmt.Errorf("bmcsim: MaxUsers %d: want 0 (default) to %d", c.MaxUsers, maxUserIDs)
	}
	if c.StateFile == "" {
		return nil
	}
	st, err := readStateFile(c.StateFile)
	if err != nil || st == nil {
		return err
	}
	probe := *c
	probe.StateFile = ""
	b := New(probe)
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.applyStateLocked(*st); err != nil {
		return fmt.Errorf("%w (in %s)", err, c.StateFile)
	}
	return nil
}
