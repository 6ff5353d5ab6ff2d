package ipmilan

import (
	"context"
	"fmt"
	"net/netip"

	"github.com/solgate/solgate/ipmilan/internal/wire"
)

// Types of the LAN configuration parameters (spec 23).
type (
	LANParam           = wire.LANParam
	IPSource           = wire.IPSource
	VLAN               = wire.VLAN
	MAC                = wire.MAC
	AuthTypeMask       = wire.AuthTypeMask
	AuthTypeEnables    = wire.AuthTypeEnables
	CipherSuitePrivs   = wire.CipherSuitePrivs
	CipherSuiteRecord  = wire.CipherSuiteRecord
	CipherSuiteEntries = wire.CipherSuiteEntries
)

// LAN configuration parameters and IP address sources.
const (
	LANSetInProgress      = wire.LANSetInProgress
	LANAuthTypeSupport    = wire.LANAuthTypeSupport
	LANAuthTypeEnables    = wire.LANAuthTypeEnables
	LANIPAddress          = wire.LANIPAddress
	LANIPSource           = wire.LANIPSource
	LANMACAddress         = wire.LANMACAddress
	LANSubnetMask         = wire.LANSubnetMask
	LANDefaultGateway     = wire.LANDefaultGateway
	LANVLANID             = wire.LANVLANID
	LANCipherSuiteSupport = wire.LANCipherSuiteSupport
	LANCipherSuiteEntries = wire.LANCipherSuiteEntries
	LANCipherSuitePrivs   = wire.LANCipherSuitePrivs

	IPSourceUnspecified = wire.IPSourceUnspecified
	IPSourceStatic      = wire.IPSourceStatic
	IPSourceDHCP        = wire.IPSourceDHCP
	IPSourceBIOS        = wire.IPSourceBIOS
	IPSourceOther       = wire.IPSourceOther
)

// ParseIPSource maps "static", "dhcp", "bios", "other" and "unspecified"
// to an IPSource.
func ParseIPSource(s string) (IPSource, error) {
	if v, ok := wire.ParseIPSourceName(s); ok {
		return v, nil
	}
	return 0, fmt.Errorf("ipmilan: IP address source %q: want static, dhcp, bios, other or unspecified", s)
}

// ParseAuthTypes parses a comma-separated list of IPMI v1.5
// authentication types (none, md2, md5, password, oem; "off" or "" for
// none at all).
func ParseAuthTypes(s string) (AuthTypeMask, error) {
	m, err := wire.ParseAuthTypeMaskNames(s)
	if err != nil {
		return 0, fmt.Errorf("ipmilan: %w", err)
	}
	return m, nil
}

// AuthEnableLevels are the privilege levels of AuthTypeEnables, in order.
var AuthEnableLevels = wire.AuthEnableLevels

func lanWhat(p LANParam) string { return "LAN parameter " + p.String() }

// GetLANParam runs Get LAN Configuration Parameters for parameter p of
// channel ch and returns the parameter data (after the revision byte).
// A parameter the BMC does not have is a *NotSupportedError.
func GetLANParam(ctx context.Context, c Commander, ch uint8, p LANParam) ([]byte, error) {
	req := wire.GetParamRequest{Channel: ch, Param: uint8(p)}.Append(nil)
	r, err := do(ctx, c, wire.NetFnTransport, wire.CmdGetLANConfigParam, req, "get "+lanWhat(p), true, true)
	if err != nil {
		return nil, err
	}
	pr, err := wire.ParseParamResponse(r)
	if err != nil {
		return nil, protoErr("get "+lanWhat(p), err)
	}
	return pr.Data, nil
}

// SetLANParam runs Set LAN Configuration Parameters.
func SetLANParam(ctx context.Context, c Commander, ch uint8, p LANParam, data []byte) error {
	req := wire.SetParamRequest{Channel: ch, Param: uint8(p), Data: data}.Append(nil)
	_, err := do(ctx, c, wire.NetFnTransport, wire.CmdSetLANConfigParam, req, "set "+lanWhat(p), true, false)
	return err
}

// LANConfig is a LAN channel's configuration as far as the BMC supports
// it; parameters it does not support are listed in Unsupported and their
// fields left zero.
type LANConfig struct {
	Channel     uint8
	AuthSupport AuthTypeMask    // v1.5 authentication types implemented (read-only)
	AuthEnables AuthTypeEnables // enabled per privilege level (AuthEnableLevels)
	IPSource    IPSource
	IP          netip.Addr
	Netmask     netip.Addr
	Gateway     netip.Addr
	MAC         MAC
	VLAN        VLAN
	// CipherSuites are the suite IDs of the cipher suite entries
	// (parameter 23) and CipherPrivs each entry's maximum privilege
	// (parameter 24; 0: the suite is not usable).
	CipherSuites []uint8
	CipherPrivs  []Privilege
	Unsupported  []LANParam
}

// Supports reports whether the BMC answered parameter p.
func (l *LANConfig) Supports(p LANParam) bool {
	for _, u := range l.Unsupported {
		if u == p {
			return false
		}
	}
	return true
}

// CipherPriv returns the maximum privilege of cipher suite id, and false
// when no entry lists the suite (or parameter 24 was not supported).
func (l *LANConfig) CipherPriv(id uint8) (Privilege, bool) {
	for i, s := range l.CipherSuites {
		if s == id && i < len(l.CipherPrivs) {
			return l.CipherPrivs[i], true
		}
	}
	return 0, false
}

// ReadLANConfig reads the parameters LANConfig holds from channel ch. An
// unsupported parameter is recorded, not an error; any other failure is.
func ReadLANConfig(ctx context.Context, c Commander, ch uint8) (*LANConfig, error) {
	l := &LANConfig{Channel: ch}
	get := func(p LANParam, parse func([]byte) error) error {
		d, err := GetLANParam(ctx, c, ch, p)
		if IsNotSupported(err) {
			l.Unsupported = append(l.Unsupported, p)
			return nil
		}
		if err != nil {
			return err
		}
		if err := parse(d); err != nil {
			return protoErr("get "+lanWhat(p), err)
		}
		return nil
	}
	addr := func(dst *netip.Addr, field string) func([]byte) error {
		return func(d []byte) error {
			a, err := wire.ParseIPv4(d, field)
			*dst = a.Addr()
			return err
		}
	}
	count := -1
	steps := []struct {
		p     LANParam
		parse func([]byte) error
	}{
		{wire.LANAuthTypeSupport, func(d []byte) (err error) { l.AuthSupport, err = wire.ParseAuthTypeSupport(d); return }},
		{wire.LANAuthTypeEnables, func(d []byte) (err error) { l.AuthEnables, err = wire.ParseAuthTypeEnables(d); return }},
		{wire.LANIPSource, func(d []byte) (err error) { l.IPSource, err = wire.ParseIPSource(d); return }},
		{wire.LANIPAddress, addr(&l.IP, "IP address")},
		{wire.LANSubnetMask, addr(&l.Netmask, "subnet mask")},
		{wire.LANDefaultGateway, addr(&l.Gateway, "default gateway address")},
		{wire.LANMACAddress, func(d []byte) (err error) { l.MAC, err = wire.ParseMAC(d, "MAC address"); return }},
		{wire.LANVLANID, func(d []byte) (err error) { l.VLAN, err = wire.ParseVLAN(d); return }},
		{wire.LANCipherSuiteSupport, func(d []byte) (err error) { count, err = wire.ParseCipherSuiteCount(d); return }},
		{wire.LANCipherSuiteEntries, func(d []byte) error {
			e, err := wire.ParseCipherSuiteEntries(d, count)
			l.CipherSuites = e
			return err
		}},
		{wire.LANCipherSuitePrivs, func(d []byte) error {
			p, err := wire.ParseCipherSuitePrivs(d)
			if err == nil {
				l.CipherPrivs = append([]Privilege(nil), p[:min(len(l.CipherSuites), len(p))]...)
			}
			return err
		}},
	}
	for _, s := range steps {
		if err := get(s.p, s.parse); err != nil {
			return l, err
		}
	}
	return l, nil
}

// SetLANIPSource sets how the BMC gets its address (parameter 4).
func SetLANIPSource(ctx context.Context, c Commander, ch uint8, s IPSource) error {
	return SetLANParam(ctx, c, ch, wire.LANIPSource, s.Append(nil))
}

// SetLANAddr sets an IPv4 address parameter: LANIPAddress, LANSubnetMask
// or LANDefaultGateway.
func SetLANAddr(ctx context.Context, c Commander, ch uint8, p LANParam, a netip.Addr) error {
	v4, ok := wire.IPv4Of(a)
	if !ok {
		return fmt.Errorf("ipmilan: set %s: %v is not an IPv4 address", lanWhat(p), a)
	}
	switch p {
	case wire.LANIPAddress, wire.LANSubnetMask, wire.LANDefaultGateway, wire.LANBackupGateway:
	default:
		return fmt.Errorf("ipmilan: set %s: not an address parameter", lanWhat(p))
	}
	return SetLANParam(ctx, c, ch, p, v4.Append(nil))
}

// SetLANMAC sets the BMC's MAC address (parameter 5; read-only on many
// BMCs, which answer CCParamReadOnly).
func SetLANMAC(ctx context.Context, c Commander, ch uint8, m MAC) error {
	return SetLANParam(ctx, c, ch, wire.LANMACAddress, m.Append(nil))
}

// SetLANVLAN sets the 802.1q VLAN (parameter 20).
func SetLANVLAN(ctx context.Context, c Commander, ch uint8, v VLAN) error {
	if v.Enabled && (v.ID < 1 || v.ID > 4094) {
		return fmt.Errorf("ipmilan: VLAN ID %d: want 1-4094", v.ID)
	}
	return SetLANParam(ctx, c, ch, wire.LANVLANID, v.Append(nil))
}

// SetLANAuthEnables sets the IPMI v1.5 authentication types allowed per
// privilege level (parameter 2).
func SetLANAuthEnables(ctx context.Context, c Commander, ch uint8, e AuthTypeEnables) error {
	return SetLANParam(ctx, c, ch, wire.LANAuthTypeEnables, e.Append(nil))
}

// SetLANCipherPrivs sets the maximum privilege per cipher suite entry
// (parameter 24); privs[i] belongs to the suite of entry i (see
// LANConfig.CipherSuites), and 0 disables it.
func SetLANCipherPrivs(ctx context.Context, c Commander, ch uint8, privs []Privilege) error {
	if len(privs) > wire.MaxCipherSuiteEntries {
		return fmt.Errorf("ipmilan: %d cipher suite privileges: at most %d", len(privs), wire.MaxCipherSuiteEntries)
	}
	var p CipherSuitePrivs
	copy(p[:], privs)
	return SetLANParam(ctx, c, ch, wire.LANCipherSuitePrivs, p.Append(nil))
}
