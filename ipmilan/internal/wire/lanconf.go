package wire

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"strings"
)

// LANParam is a LAN Configuration Parameter selector (spec table 23-4).
type LANParam uint8

const (
	LANSetInProgress      LANParam = 0
	LANAuthTypeSupport    LANParam = 1 // read-only
	LANAuthTypeEnables    LANParam = 2
	LANIPAddress          LANParam = 3
	LANIPSource           LANParam = 4
	LANMACAddress         LANParam = 5
	LANSubnetMask         LANParam = 6
	LANIPv4Header         LANParam = 7
	LANPrimaryRMCPPort    LANParam = 8
	LANSecondaryRMCPPort  LANParam = 9
	LANBMCARPControl      LANParam = 10
	LANGratuitousARP      LANParam = 11
	LANDefaultGateway     LANParam = 12
	LANDefaultGatewayMAC  LANParam = 13
	LANBackupGateway      LANParam = 14
	LANBackupGatewayMAC   LANParam = 15
	LANCommunityString    LANParam = 16
	LANDestinationCount   LANParam = 17 // read-only
	LANDestinationType    LANParam = 18
	LANDestinationAddress LANParam = 19
	LANVLANID             LANParam = 20
	LANVLANPriority       LANParam = 21
	LANCipherSuiteSupport LANParam = 22 // read-only: number of entries in 23
	LANCipherSuiteEntries LANParam = 23 // read-only
	LANCipherSuitePrivs   LANParam = 24
)

var lanParamNames = map[LANParam]string{
	LANSetInProgress: "set in progress", LANAuthTypeSupport: "authentication type support",
	LANAuthTypeEnables: "authentication type enables", LANIPAddress: "IP address",
	LANIPSource: "IP address source", LANMACAddress: "MAC address", LANSubnetMask: "subnet mask",
	LANIPv4Header: "IPv4 header parameters", LANPrimaryRMCPPort: "primary RMCP port",
	LANSecondaryRMCPPort: "secondary RMCP port", LANBMCARPControl: "BMC-generated ARP control",
	LANGratuitousARP: "gratuitous ARP interval", LANDefaultGateway: "default gateway address",
	LANDefaultGatewayMAC: "default gateway MAC address", LANBackupGateway: "backup gateway address",
	LANBackupGatewayMAC: "backup gateway MAC address", LANCommunityString: "community string",
	LANDestinationCount: "number of destinations", LANDestinationType: "destination type",
	LANDestinationAddress: "destination addresses", LANVLANID: "802.1q VLAN ID",
	LANVLANPriority: "802.1q VLAN priority", LANCipherSuiteSupport: "RMCP+ cipher suite entry support",
	LANCipherSuiteEntries: "RMCP+ cipher suite entries", LANCipherSuitePrivs: "RMCP+ cipher suite privilege levels",
}

func (p LANParam) String() string {
	if s, ok := lanParamNames[p]; ok {
		return fmt.Sprintf("%d (%s)", uint8(p), s)
	}
	return fmt.Sprintf("%d", uint8(p))
}

// IPSource is LAN parameter 4, bits 3:0.
type IPSource uint8

const (
	IPSourceUnspecified IPSource = 0
	IPSourceStatic      IPSource = 1
	IPSourceDHCP        IPSource = 2
	IPSourceBIOS        IPSource = 3 // loaded by the BIOS or system software
	IPSourceOther       IPSource = 4
)

var ipSourceNames = [...]string{"unspecified", "static", "dhcp", "bios", "other"}

func (s IPSource) String() string {
	if int(s) < len(ipSourceNames) {
		return ipSourceNames[s]
	}
	return fmt.Sprintf("IPSource(%d)", uint8(s))
}

// ParseIPSourceName maps a name String prints back to an IPSource.
func ParseIPSourceName(s string) (IPSource, bool) {
	for i, n := range ipSourceNames {
		if strings.EqualFold(s, n) {
			return IPSource(i), true
		}
	}
	return 0, false
}

// Append encodes parameter 4.
func (s IPSource) Append(b []byte) []byte { return append(b, uint8(s)&0x0F) }

// ParseIPSource decodes parameter 4.
func ParseIPSource(b []byte) (IPSource, error) {
	if len(b) < 1 {
		return 0, shortErr("IP address source", 1, len(b))
	}
	return IPSource(b[0] & 0x0F), nil
}

// IPv4 is an IPv4 address as LAN parameters 3, 6, 12 and 14 carry it
// (most significant byte first).
type IPv4 [4]byte

// Addr returns the address as a netip.Addr.
func (a IPv4) Addr() netip.Addr { return netip.AddrFrom4(a) }

func (a IPv4) String() string { return a.Addr().String() }

// IPv4Of converts an IPv4 (or IPv4-mapped IPv6) address; ok is false for
// anything else.
func IPv4Of(a netip.Addr) (IPv4, bool) {
	a = a.Unmap()
	if !a.Is4() {
		return IPv4{}, false
	}
	return IPv4(a.As4()), true
}

// Append encodes the address (4 bytes).
func (a IPv4) Append(b []byte) []byte { return append(b, a[:]...) }

// ParseIPv4 decodes an IPv4 address parameter; field names it in errors.
func ParseIPv4(b []byte, field string) (IPv4, error) {
	if len(b) < 4 {
		return IPv4{}, shortErr(field, 4, len(b))
	}
	return IPv4(b[:4]), nil
}

// MAC is a MAC address (LAN parameters 5, 13 and 15).
type MAC [6]byte

func (m MAC) String() string {
	return fmt.Sprintf("%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4], m[5])
}

// Append encodes the address (6 bytes).
func (m MAC) Append(b []byte) []byte { return append(b, m[:]...) }

// ParseMAC decodes a MAC address parameter; field names it in errors.
func ParseMAC(b []byte, field string) (MAC, error) {
	if len(b) < 6 {
		return MAC{}, shortErr(field, 6, len(b))
	}
	return MAC(b[:6]), nil
}

// VLAN is LAN parameter 20: the 802.1q VLAN ID (12 bits, least
// significant byte first) and its enable bit (data 2 bit 7).
type VLAN struct {
	ID      uint16
	Enabled bool
}

func (v VLAN) String() string {
	if !v.Enabled {
		return "off"
	}
	return fmt.Sprintf("%d", v.ID)
}

// Append encodes parameter 20 (2 bytes).
func (v VLAN) Append(b []byte) []byte {
	hi := uint8(v.ID>>8) & 0x0F
	if v.Enabled {
		hi |= 0x80
	}
	return append(b, uint8(v.ID), hi)
}

// ParseVLAN decodes parameter 20.
func ParseVLAN(b []byte) (VLAN, error) {
	if len(b) < 2 {
		return VLAN{}, shortErr("802.1q VLAN ID", 2, len(b))
	}
	return VLAN{ID: uint16(b[0]) | uint16(b[1]&0x0F)<<8, Enabled: b[1]&0x80 != 0}, nil
}

// AuthTypeMask is a bitmap of IPMI v1.5 authentication types: bit n set
// means AuthType(n) (none 0, MD2 1, MD5 2, straight password 4, OEM 5).
type AuthTypeMask uint8

// AuthTypeMaskBits are the bits an AuthTypeMask may have.
const AuthTypeMaskBits AuthTypeMask = 0x37

var authTypeMaskNames = []struct {
	bit  AuthTypeMask
	name string
}{{1 << AuthNone, "none"}, {1 << AuthMD2, "md2"}, {1 << AuthMD5, "md5"}, {1 << AuthPassword, "password"}, {1 << AuthOEM, "oem"}}

// Has reports whether the mask includes t.
func (m AuthTypeMask) Has(t AuthType) bool { return t < 8 && m&(1<<t) != 0 }

// String lists the types, comma separated ("md5,password"); the empty
// mask prints as "off".
func (m AuthTypeMask) String() string {
	var out []string
	for _, n := range authTypeMaskNames {
		if m&n.bit != 0 {
			out = append(out, n.name)
		}
	}
	if len(out) == 0 {
		return "off"
	}
	return strings.Join(out, ",")
}

// ParseAuthTypeMaskNames parses what String prints ("off" or "" for the
// empty mask).
func ParseAuthTypeMaskNames(s string) (AuthTypeMask, error) {
	var m AuthTypeMask
	if s == "" || strings.EqualFold(s, "off") {
		return 0, nil
	}
	for _, f := range strings.Split(s, ",") {
		found := false
		for _, n := range authTypeMaskNames {
			if strings.EqualFold(strings.TrimSpace(f), n.name) {
				m |= n.bit
				found = true
			}
		}
		if !found {
			return 0, fmt.Errorf("wire: authentication type %q: want none, md2, md5, password, oem or off", f)
		}
	}
	return m, nil
}

// AuthTypeEnables is LAN parameter 2: the v1.5 authentication types
// enabled for each privilege level, in the order callback, user,
// operator, admin, OEM.
type AuthTypeEnables [5]AuthTypeMask

// AuthEnableLevels are the privilege levels of AuthTypeEnables, in order.
var AuthEnableLevels = [5]Privilege{PrivCallback, PrivUser, PrivOperator, PrivAdmin, PrivOEM}

// Append encodes parameter 2 (5 bytes).
func (e AuthTypeEnables) Append(b []byte) []byte {
	for _, m := range e {
		b = append(b, uint8(m&AuthTypeMaskBits))
	}
	return b
}

// ParseAuthTypeEnables decodes parameter 2.
func ParseAuthTypeEnables(b []byte) (AuthTypeEnables, error) {
	var e AuthTypeEnables
	if len(b) < 5 {
		return e, shortErr("authentication type enables", 5, len(b))
	}
	for i := range e {
		e[i] = AuthTypeMask(b[i]) & AuthTypeMaskBits
	}
	return e, nil
}

// ParseAuthTypeSupport decodes parameter 1 (read-only): the types the BMC
// implements.
func ParseAuthTypeSupport(b []byte) (AuthTypeMask, error) {
	if len(b) < 1 {
		return 0, shortErr("authentication type support", 1, len(b))
	}
	return AuthTypeMask(b[0]) & AuthTypeMaskBits, nil
}

// MaxCipherSuiteEntries is the number of entries parameters 23 and 24
// have room for.
const MaxCipherSuiteEntries = 16

// ParseCipherSuiteCount decodes parameter 22: the number of cipher suite
// entries (bits 4:0).
func ParseCipherSuiteCount(b []byte) (int, error) {
	if len(b) < 1 {
		return 0, shortErr("cipher suite entry support", 1, len(b))
	}
	return int(min(b[0]&0x1F, MaxCipherSuiteEntries)), nil
}

// CipherSuiteEntries is parameter 23: the cipher suite IDs the BMC
// supports, in entry order (parameter 24 gives each entry's privilege).
type CipherSuiteEntries []uint8

// Append encodes parameter 23: a reserved byte, then the IDs (at most 16).
func (e CipherSuiteEntries) Append(b []byte) []byte {
	return append(append(b, 0), e[:min(len(e), MaxCipherSuiteEntries)]...)
}

// ParseCipherSuiteEntries decodes parameter 23; count (from parameter 22)
// bounds how many entries are valid, a negative count takes all.
func ParseCipherSuiteEntries(b []byte, count int) (CipherSuiteEntries, error) {
	if len(b) < 1 {
		return nil, shortErr("cipher suite entries", 1, len(b))
	}
	ids := b[1:min(len(b), 1+MaxCipherSuiteEntries)]
	if count >= 0 && count < len(ids) {
		ids = ids[:count]
	}
	return append(CipherSuiteEntries(nil), ids...), nil
}

// CipherSuitePrivs is parameter 24: the maximum privilege of each cipher
// suite entry of parameter 23 (0 = unused: the suite cannot be used).
type CipherSuitePrivs [MaxCipherSuiteEntries]Privilege

// Append encodes parameter 24: a reserved byte, then two entries per byte,
// the lower-numbered in the low nibble (9 bytes).
func (p CipherSuitePrivs) Append(b []byte) []byte {
	b = append(b, 0)
	for i := 0; i < MaxCipherSuiteEntries; i += 2 {
		b = append(b, uint8(p[i])&0x0F|uint8(p[i+1])<<4)
	}
	return b
}

// ParseCipherSuitePrivs decodes parameter 24.
func ParseCipherSuitePrivs(b []byte) (CipherSuitePrivs, error) {
	var p CipherSuitePrivs
	if len(b) < 9 {
		return p, shortErr("cipher suite privilege levels", 9, len(b))
	}
	for i := range MaxCipherSuiteEntries / 2 {
		p[2*i], p[2*i+1] = Privilege(b[1+i]&0x0F), Privilege(b[1+i]>>4)
	}
	return p, nil
}

// AppendPort encodes a 16-bit port number, least significant byte first
// (LAN parameters 8 and 9, SOL parameter 8).
func AppendPort(b []byte, port uint16) []byte { return binary.LittleEndian.AppendUint16(b, port) }

// ParsePort decodes a 16-bit port number; field names it in errors.
func ParsePort(b []byte, field string) (uint16, error) {
	if len(b) < 2 {
		return 0, shortErr(field, 2, len(b))
	}
	return binary.LittleEndian.Uint16(b), nil
}
