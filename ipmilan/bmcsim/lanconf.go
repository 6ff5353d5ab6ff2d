package bmcsim

import (
	"github.com/solgate/solgate/ipmilan/internal/wire"
)

// Channel commands (spec 22.22-22.24) and LAN Configuration Parameters
// (23.1, 23.2) of the simulated LAN channel (channel 1). Addresses set
// here are reported back but do not move the socket the BMC serves.

// ipmiForumIANA is the IPMI forum's enterprise number, the protocol
// vendor of standard channels.
const ipmiForumIANA = 7154

func (b *BMC) channelInfoLocked(s *session, req wire.Request) wire.Response {
	if len(req.Data) < 1 {
		return respond(req, wire.CCBadLength, nil)
	}
	switch ch := b.channelLocked(s, req.Data[0]); ch {
	case channelLAN:
		active := 0
		for _, o := range b.sessions {
			if o.state == stateActive {
				active++
			}
		}
		i := wire.ChannelInfo{Channel: channelLAN, Medium: wire.MediumLAN, Protocol: 0x01, SessionSupport: 2,
			ActiveSessions: uint8(min(active, 63)), VendorIANA: ipmiForumIANA}
		return respond(req, wire.CCOK, i.Append(nil))
	case wire.ChannelSystemInterface:
		i := wire.ChannelInfo{Channel: ch, Medium: wire.MediumSystemInterface, Protocol: 0x05, VendorIANA: ipmiForumIANA} // KCS, session-less
		return respond(req, wire.CCOK, i.Append(nil))
	}
	return respond(req, wire.CCInvalidField, nil)
}

func (b *BMC) getChannelAccessLocked(s *session, req wire.Request) wire.Response {
	r, err := wire.ParseGetChannelAccessRequest(req.Data)
	if err != nil {
		return respond(req, wire.CCBadLength, nil)
	}
	if !b.lanChannelLocked(s, r.Channel) {
		return respond(req, wire.CCInvalidField, nil)
	}
	switch r.Target {
	case wire.AccessVolatile:
		return respond(req, wire.CCOK, b.conf.chanV.Append(nil))
	case wire.AccessNonVolatile:
		return respond(req, wire.CCOK, b.conf.chanNV.Append(nil))
	}
	return respond(req, wire.CCInvalidField, nil)
}

func (b *BMC) setChannelAccessLocked(s *session, req wire.Request) (wire.Response, bool) {
	r, err := wire.ParseSetChannelAccessRequest(req.Data)
	if err != nil {
		return respond(req, wire.CCBadLength, nil), false
	}
	if !b.lanChannelLocked(s, r.Channel) || r.AccessSet == 3 || r.PrivSet == 3 {
		return respond(req, wire.CCInvalidField, nil), false
	}
	if r.PrivSet != wire.AccessNoChange && (r.Access.PrivLimit < PrivCallback || r.Access.PrivLimit > PrivOEM) {
		return respond(req, wire.CCInvalidField, nil), false
	}
	if r.AccessSet != wire.AccessNoChange && r.Access.Mode > wire.AccessShared {
		return respond(req, wire.CCInvalidField, nil), false
	}
	for _, t := range []struct {
		target wire.AccessTarget
		dst    *wire.ChannelAccess
	}{{wire.AccessVolatile, &b.conf.chanV}, {wire.AccessNonVolatile, &b.conf.chanNV}} {
		if r.AccessSet == t.target {
			p := t.dst.PrivLimit
			*t.dst = r.Access
			t.dst.PrivLimit = p
		}
		if r.PrivSet == t.target {
			t.dst.PrivLimit = r.Access.PrivLimit
		}
	}
	return respond(req, wire.CCOK, nil), true
}

// cipherEntriesLocked are the cipher suite IDs of LAN parameter 23: every
// suite the BMC implements, in its configured order.
func (b *BMC) cipherEntriesLocked() []uint8 {
	ids := b.cfg.CipherSuites
	return ids[:min(len(ids), wire.MaxCipherSuiteEntries)]
}

func (b *BMC) getLANParamLocked(s *session, req wire.Request) wire.Response {
	r, err := wire.ParseGetParamRequest(req.Data)
	if err != nil {
		return respond(req, wire.CCBadLength, nil)
	}
	if !b.lanChannelLocked(s, r.Channel) {
		return respond(req, wire.CCInvalidField, nil)
	}
	out := []byte{wire.ConfigParamRevision}
	if r.RevisionOnly {
		return respond(req, wire.CCOK, out)
	}
	l := &b.conf.lan
	switch wire.LANParam(r.Param) {
	case wire.LANSetInProgress:
		out = append(out, l.setInProgress)
	case wire.LANAuthTypeSupport:
		out = append(out, uint8(1<<wire.AuthNone|1<<wire.AuthMD5|1<<wire.AuthPassword))
	case wire.LANAuthTypeEnables:
		out = l.authEnables.Append(out)
	case wire.LANIPAddress:
		out = l.ip.Append(out)
	case wire.LANIPSource:
		out = l.ipSource.Append(out)
	case wire.LANMACAddress:
		out = l.mac.Append(out)
	case wire.LANSubnetMask:
		out = l.netmask.Append(out)
	case wire.LANIPv4Header:
		out = append(out, l.ipHeader[:]...)
	case wire.LANBMCARPControl:
		out = append(out, l.arpControl)
	case wire.LANGratuitousARP:
		out = append(out, l.gratARP)
	case wire.LANDefaultGateway:
		out = l.gateway.Append(out)
	case wire.LANDefaultGatewayMAC:
		out = l.gatewayMAC.Append(out)
	case wire.LANBackupGateway:
		out = l.backupGW.Append(out)
	case wire.LANBackupGatewayMAC:
		out = l.backupMAC.Append(out)
	case wire.LANCommunityString:
		out = append(out, l.community[:]...)
	case wire.LANDestinationCount:
		out = append(out, 0)
	case wire.LANVLANID:
		out = l.vlan.Append(out)
	case wire.LANVLANPriority:
		out = append(out, l.vlanPriority)
	case wire.LANCipherSuiteSupport:
		out = append(out, uint8(len(b.cipherEntriesLocked())))
	case wire.LANCipherSuiteEntries:
		out = wire.CipherSuiteEntries(b.cipherEntriesLocked()).Append(out)
	case wire.LANCipherSuitePrivs:
		var p wire.CipherSuitePrivs
		for i, id := range b.cipherEntriesLocked() {
			p[i] = b.suitePrivLocked(id)
		}
		out = p.Append(out)
	default:
		return respond(req, wire.CCParamNotSupported, nil)
	}
	return respond(req, wire.CCOK, out)
}

// lanParamSize is the data length of each settable LAN parameter.
var lanParamSize = map[wire.LANParam]int{
	wire.LANSetInProgress: 1, wire.LANAuthTypeEnables: 5, wire.LANIPAddress: 4, wire.LANIPSource: 1,
	wire.LANMACAddress: 6, wire.LANSubnetMask: 4, wire.LANIPv4Header: 3, wire.LANBMCARPControl: 1,
	wire.LANGratuitousARP: 1, wire.LANDefaultGateway: 4, wire.LANDefaultGatewayMAC: 6, wire.LANBackupGateway: 4,
	wire.LANBackupGatewayMAC: 6, wire.LANCommunityString: 18, wire.LANVLANID: 2, wire.LANVLANPriority: 1,
	wire.LANCipherSuitePrivs: 9,
}

func (b *BMC) setLANParamLocked(s *session, req wire.Request) (wire.Response, bool) {
	r, err := wire.ParseSetParamRequest(req.Data)
	if err != nil {
		return respond(req, wire.CCBadLength, nil), false
	}
	if !b.lanChannelLocked(s, r.Channel) {
		return respond(req, wire.CCInvalidField, nil), false
	}
	p := wire.LANParam(r.Param)
	switch p {
	case wire.LANAuthTypeSupport, wire.LANDestinationCount, wire.LANCipherSuiteSupport, wire.LANCipherSuiteEntries:
		return respond(req, wire.CCParamReadOnly, nil), false
	}
	n, known := lanParamSize[p]
	if !known {
		return respond(req, wire.CCParamNotSupported, nil), false
	}
	if len(r.Data) != n {
		return respond(req, wire.CCBadLength, nil), false
	}
	d := r.Data
	l := &b.conf.lan
	switch p {
	case wire.LANSetInProgress:
		v := d[0] & 3
		if v == 3 {
			return respond(req, wire.CCInvalidField, nil), false
		}
		if v == 1 && l.setInProgress == 1 {
			return respond(req, wire.CCParamSetInProgress, nil), false
		}
		l.setInProgress = v &^ 2 // a commit write completes at once
		return respond(req, wire.CCOK, nil), false
	case wire.LANAuthTypeEnables:
		for _, c := range d {
			if wire.AuthTypeMask(c)&^wire.AuthTypeMaskBits != 0 {
				return respond(req, wire.CCInvalidField, nil), false
			}
		}
		l.authEnables, _ = wire.ParseAuthTypeEnables(d)
	case wire.LANIPAddress:
		l.ip = wire.IPv4(d)
	case wire.LANIPSource:
		if d[0]&0x0F > uint8(wire.IPSourceOther) {
			return respond(req, wire.CCInvalidField, nil), false
		}
		l.ipSource = wire.IPSource(d[0] & 0x0F)
	case wire.LANMACAddress:
		l.mac = wire.MAC(d)
	case wire.LANSubnetMask:
		l.netmask = wire.IPv4(d)
	case wire.LANIPv4Header:
		l.ipHeader = [3]byte(d)
	case wire.LANBMCARPControl:
		l.arpControl = d[0] & 3
	case wire.LANGratuitousARP:
		l.gratARP = d[0]
	case wire.LANDefaultGateway:
		l.gateway = wire.IPv4(d)
	case wire.LANDefaultGatewayMAC:
		l.gatewayMAC = wire.MAC(d)
	case wire.LANBackupGateway:
		l.backupGW = wire.IPv4(d)
	case wire.LANBackupGatewayMAC:
		l.backupMAC = wire.MAC(d)
	case wire.LANCommunityString:
		l.community = [18]byte(d)
	case wire.LANVLANID:
		v, _ := wire.ParseVLAN(d)
		if v.Enabled && (v.ID < 1 || v.ID > 4094) {
			return respond(req, wire.CCInvalidField, nil), false
		}
		l.vlan = v
	case wire.LANVLANPriority:
		if d[0] > 7 {
			return respond(req, wire.CCInvalidField, nil), false
		}
		l.vlanPriority = d[0]
	case wire.LANCipherSuitePrivs:
		privs, _ := wire.ParseCipherSuitePrivs(d)
		ids := b.cipherEntriesLocked()
		for _, pr := range privs {
			if pr > PrivOEM {
				return respond(req, wire.CCInvalidField, nil), false
			}
		}
		for i, id := range ids {
			b.conf.cipherPrivs[id] = privs[i]
		}
	}
	return respond(req, wire.CCOK, nil), true
}
