package ipmilan

import (
	"context"
	"errors"
	"fmt"

	"github.com/solgate/solgate/ipmilan/internal/wire"
)

// Channel types (spec 22.22-22.24).
type (
	ChannelInfo   = wire.ChannelInfo
	ChannelAccess = wire.ChannelAccess
	AccessMode    = wire.AccessMode
	AccessTarget  = wire.AccessTarget
)

// Channel access modes, targets and media.
const (
	AccessDisabled = wire.AccessDisabled
	AccessPreBoot  = wire.AccessPreBoot
	AccessAlways   = wire.AccessAlways
	AccessShared   = wire.AccessShared

	AccessNoChange    = wire.AccessNoChange
	AccessNonVolatile = wire.AccessNonVolatile
	AccessVolatile    = wire.AccessVolatile

	MediumLAN             = wire.MediumLAN
	MediumOtherLAN        = wire.MediumOtherLAN
	MediumSystemInterface = wire.MediumSystemInterface

	// ChannelThis asks about the channel the request came in on.
	ChannelThis = wire.ChannelThis
)

// ParseAccessMode maps "disabled", "preboot", "always" and "shared" to an
// AccessMode.
func ParseAccessMode(s string) (AccessMode, error) {
	if m, ok := wire.ParseAccessModeName(s); ok {
		return m, nil
	}
	return 0, fmt.Errorf("ipmilan: channel access mode %q: want disabled, preboot, always or shared", s)
}

// ErrNoLANChannel: FindLANChannel found no 802.3 LAN channel.
var ErrNoLANChannel = errors.New("no LAN channel on the BMC")

// GetChannelInfo runs Get Channel Info for channel ch (ChannelThis: the
// channel of the request).
func GetChannelInfo(ctx context.Context, c Commander, ch uint8) (ChannelInfo, error) {
	r, err := do(ctx, c, wire.NetFnApp, wire.CmdGetChannelInfo, []byte{ch & 0x0F}, fmt.Sprintf("get channel info %d", ch), false, true)
	if err != nil {
		return ChannelInfo{}, err
	}
	i, err := wire.ParseChannelInfo(r)
	if err != nil {
		return i, protoErr("get channel info", err)
	}
	return i, nil
}

// FindLANChannel returns the number of the BMC's LAN channel: the one the
// request came in on if that is a LAN channel (a LAN session), else the
// first 802.3 LAN channel of 1-11 (in-band, where requests arrive on the
// system interface).
func FindLANChannel(ctx context.Context, c Commander) (uint8, error) {
	if i, err := GetChannelInfo(ctx, c, wire.ChannelThis); err == nil && isLAN(i.Medium) {
		return i.Channel, nil
	}
	for ch := uint8(1); ch <= 11; ch++ {
		i, err := GetChannelInfo(ctx, c, ch)
		if err != nil {
			var ce *CompletionError
			if errors.As(err, &ce) {
				continue // no such channel
			}
			return 0, err
		}
		if isLAN(i.Medium) {
			return ch, nil
		}
	}
	return 0, fmt.Errorf("ipmilan: %w (channels 1-11 asked)", ErrNoLANChannel)
}

func isLAN(m uint8) bool { return m == wire.MediumLAN || m == wire.MediumOtherLAN }

// GetChannelAccess reads channel ch's access settings: the active
// (AccessVolatile) or the stored (AccessNonVolatile) copy.
func GetChannelAccess(ctx context.Context, c Commander, ch uint8, which AccessTarget) (ChannelAccess, error) {
	req := wire.GetChannelAccessRequest{Channel: ch, Target: which}.Append(nil)
	r, err := do(ctx, c, wire.NetFnApp, wire.CmdGetChannelAccess, req, fmt.Sprintf("get channel %d access (%v)", ch, which), false, true)
	if err != nil {
		return ChannelAccess{}, err
	}
	a, err := wire.ParseChannelAccess(r)
	if err != nil {
		return a, protoErr("get channel access", err)
	}
	return a, nil
}

// SetChannelAccess writes channel ch's access settings: the mode and the
// authentication and alerting bits to the copies accessSet names, the
// privilege limit to those privSet names (AccessNoChange leaves a part
// alone). To change both copies, call it once per target.
func SetChannelAccess(ctx context.Context, c Commander, ch uint8, a ChannelAccess, accessSet, privSet AccessTarget) error {
	req := wire.SetChannelAccessRequest{Channel: ch, Access: a, AccessSet: accessSet, PrivSet: privSet}.Append(nil)
	_, err := do(ctx, c, wire.NetFnApp, wire.CmdSetChannelAccess, req, fmt.Sprintf("set channel %d access", ch), false, false)
	return err
}

// GetChannelCipherSuites lists the cipher suites channel ch offers for
// IPMI messages, paging through Get Channel Cipher Suites.
func GetChannelCipherSuites(ctx context.Context, c Commander, ch uint8) ([]CipherSuiteRecord, error) {
	var data []byte
	for idx := uint8(0); idx < 64; idx++ {
		req := wire.CipherSuitesRequest{Channel: ch, PayloadType: wire.PayloadIPMI, Index: idx, BySuite: true}.Append(nil)
		r, err := do(ctx, c, wire.NetFnApp, wire.CmdGetChannelCipherSuites, req, "get channel cipher suites", false, true)
		if err != nil {
			return nil, err
		}
		if len(r) < 1 {
			return nil, protoErr("get channel cipher suites", fmt.Errorf("empty response"))
		}
		data = append(data, r[1:]...)
		if len(r)-1 < 16 {
			break
		}
	}
	recs, err := wire.ParseCipherSuiteRecords(data)
	if err != nil {
		return recs, protoErr("get channel cipher suites", err)
	}
	return recs, nil
}

// AuthCaps is the Get Channel Authentication Capabilities answer.
type AuthCaps = wire.AuthCaps

// GetChannelAuthCaps runs Get Channel Authentication Capabilities for
// channel ch and privilege level priv, asking for the IPMI v2.0 data.
func GetChannelAuthCaps(ctx context.Context, c Commander, ch uint8, priv Privilege) (AuthCaps, error) {
	req := wire.AuthCapsRequest{Channel: ch, Extended: true, MaxPriv: priv}.Append(nil)
	r, err := do(ctx, c, wire.NetFnApp, wire.CmdGetChannelAuthCaps, req, "get channel authentication capabilities", false, true)
	if err != nil {
		return AuthCaps{}, err
	}
	a, err := wire.ParseAuthCaps(r)
	if err != nil {
		return a, protoErr("get channel authentication capabilities", err)
	}
	return a, nil
}
