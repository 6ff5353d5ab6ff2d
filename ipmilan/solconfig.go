package ipmilan

import (
	"context"
	"fmt"
	"time"

	"github.com/solgate/solgate/ipmilan/internal/wire"
)

// SOL configuration types (spec 26).
type (
	SOLParam            = wire.SOLParam
	SOLAuth             = wire.SOLAuth
	SOLAccumulateParams = wire.SOLAccumulateParams
	SOLRetryParams      = wire.SOLRetryParams
	BitRate             = wire.BitRate
)

// SOL configuration parameters and bit rates.
const (
	SOLSetInProgress = wire.SOLSetInProgress
	SOLEnable        = wire.SOLEnable
	SOLAuthParam     = wire.SOLAuthParam
	SOLAccumulate    = wire.SOLAccumulate
	SOLRetry         = wire.SOLRetryParam
	SOLNVBitRate     = wire.SOLNVBitRate
	SOLVBitRate      = wire.SOLVBitRate
	SOLPayloadChan   = wire.SOLPayloadChan
	SOLPayloadPort   = wire.SOLPayloadPort

	BitRateSerial = wire.BitRateSerial
	BitRate9600   = wire.BitRate9600
	BitRate19200  = wire.BitRate19200
	BitRate38400  = wire.BitRate38400
	BitRate57600  = wire.BitRate57600
	BitRate115200 = wire.BitRate115200

	SOLAccumulateUnit = wire.SOLAccumulateUnit
	SOLRetryUnit      = wire.SOLRetryUnit
)

// ParseBitRate maps 9600, 19200, 38400, 57600 or 115200 (or "serial": use
// the IPMI-over-serial setting) to a BitRate.
func ParseBitRate(s string) (BitRate, error) {
	if s == "serial" {
		return BitRateSerial, nil
	}
	var bps int
	if _, err := fmt.Sscanf(s, "%d", &bps); err == nil && fmt.Sprint(bps) == s {
		if r, ok := wire.BitRateOf(bps); ok {
			return r, nil
		}
	}
	return 0, fmt.Errorf("ipmilan: SOL bit rate %q: want 9600, 19200, 38400, 57600, 115200 or serial", s)
}

func solWhat(p SOLParam) string { return "SOL parameter " + p.String() }

// GetSOLParam runs Get SOL Configuration Parameters and returns the
// parameter data (after the revision byte). A parameter the BMC does not
// have is a *NotSupportedError.
func GetSOLParam(ctx context.Context, c Commander, ch uint8, p SOLParam) ([]byte, error) {
	req := wire.GetParamRequest{Channel: ch, Param: uint8(p)}.Append(nil)
	r, err := do(ctx, c, wire.NetFnTransport, wire.CmdGetSOLConfigParam, req, "get "+solWhat(p), true, true)
	if err != nil {
		return nil, err
	}
	pr, err := wire.ParseParamResponse(r)
	if err != nil {
		return nil, protoErr("get "+solWhat(p), err)
	}
	return pr.Data, nil
}

// SetSOLParam runs Set SOL Configuration Parameters.
func SetSOLParam(ctx context.Context, c Commander, ch uint8, p SOLParam, data []byte) error {
	req := wire.SetParamRequest{Channel: ch, Param: uint8(p), Data: data}.Append(nil)
	_, err := do(ctx, c, wire.NetFnTransport, wire.CmdSetSOLConfigParam, req, "set "+solWhat(p), true, false)
	return err
}

// SOLConfig is a channel's SOL configuration as far as the BMC supports
// it; parameters it does not support are listed in Unsupported and their
// fields left zero.
type SOLConfig struct {
	Channel     uint8
	Enabled     bool
	Auth        SOLAuth
	Accumulate  SOLAccumulateParams
	Retry       SOLRetryParams
	NVBitRate   BitRate
	VBitRate    BitRate
	PayloadChan uint8
	Port        uint16
	Unsupported []SOLParam
}

// Supports reports whether the BMC answered parameter p.
func (s *SOLConfig) Supports(p SOLParam) bool {
	for _, u := range s.Unsupported {
		if u == p {
			return false
		}
	}
	return true
}

// ReadSOLConfig reads SOL parameters 1-8 of channel ch. An unsupported
// parameter is recorded, not an error; any other failure is.
func ReadSOLConfig(ctx context.Context, c Commander, ch uint8) (*SOLConfig, error) {
	s := &SOLConfig{Channel: ch}
	steps := []struct {
		p     SOLParam
		parse func([]byte) error
	}{
		{wire.SOLEnable, func(d []byte) (err error) { s.Enabled, err = wire.ParseBool(d, "SOL enable"); return }},
		{wire.SOLAuthParam, func(d []byte) (err error) { s.Auth, err = wire.ParseSOLAuth(d); return }},
		{wire.SOLAccumulate, func(d []byte) (err error) { s.Accumulate, err = wire.ParseSOLAccumulate(d); return }},
		{wire.SOLRetryParam, func(d []byte) (err error) { s.Retry, err = wire.ParseSOLRetry(d); return }},
		{wire.SOLNVBitRate, func(d []byte) (err error) { s.NVBitRate, err = wire.ParseBitRate(d); return }},
		{wire.SOLVBitRate, func(d []byte) (err error) { s.VBitRate, err = wire.ParseBitRate(d); return }},
		{wire.SOLPayloadChan, func(d []byte) (err error) { s.PayloadChan, err = wire.ParseChannelNumber(d); return }},
		{wire.SOLPayloadPort, func(d []byte) (err error) { s.Port, err = wire.ParsePort(d, "SOL payload port"); return }},
	}
	for _, st := range steps {
		d, err := GetSOLParam(ctx, c, ch, st.p)
		if IsNotSupported(err) {
			s.Unsupported = append(s.Unsupported, st.p)
			continue
		}
		if err != nil {
			return s, err
		}
		if err := st.parse(d); err != nil {
			return s, protoErr("get "+solWhat(st.p), err)
		}
	}
	return s, nil
}

// SetSOLEnabled switches SOL on or off (parameter 1).
func SetSOLEnabled(ctx context.Context, c Commander, ch uint8, on bool) error {
	return SetSOLParam(ctx, c, ch, wire.SOLEnable, wire.AppendBool(nil, on))
}

// SetSOLAuth sets SOL parameter 2: forced encryption and authentication,
// and the privilege needed to activate SOL.
func SetSOLAuth(ctx context.Context, c Commander, ch uint8, a SOLAuth) error {
	if a.Priv < PrivUser || a.Priv > PrivOEM {
		return fmt.Errorf("ipmilan: SOL privilege %v: want user, operator, admin or oem", a.Priv)
	}
	return SetSOLParam(ctx, c, ch, wire.SOLAuthParam, a.Append(nil))
}

// SetSOLAccumulate sets how long (rounded to 5 ms, 5 ms to 1.275 s) and
// how many characters (1-255) the BMC accumulates before it sends
// (parameter 3).
func SetSOLAccumulate(ctx context.Context, c Commander, ch uint8, interval time.Duration, threshold int) error {
	n := (interval + wire.SOLAccumulateUnit/2) / wire.SOLAccumulateUnit
	if n < 1 || n > 255 {
		return fmt.Errorf("ipmilan: SOL accumulate interval %v: want 5ms to 1.275s", interval)
	}
	if threshold < 1 || threshold > 255 {
		return fmt.Errorf("ipmilan: SOL send threshold %d: want 1-255 characters", threshold)
	}
	return SetSOLParam(ctx, c, ch, wire.SOLAccumulate, SOLAccumulateParams{Interval: uint8(n), Threshold: uint8(threshold)}.Append(nil))
}

// SetSOLRetry sets how often (0-7) and at what interval (rounded to 10 ms,
// up to 2.55 s) the BMC resends unacknowledged SOL packets (parameter 4).
func SetSOLRetry(ctx context.Context, c Commander, ch uint8, count int, interval time.Duration) error {
	if count < 0 || count > 7 {
		return fmt.Errorf("ipmilan: SOL retry count %d: want 0-7", count)
	}
	n := (interval + wire.SOLRetryUnit/2) / wire.SOLRetryUnit
	if n < 0 || n > 255 {
		return fmt.Errorf("ipmilan: SOL retry interval %v: want 0 to 2.55s", interval)
	}
	return SetSOLParam(ctx, c, ch, wire.SOLRetryParam, SOLRetryParams{Count: uint8(count), Interval: uint8(n)}.Append(nil))
}

// SetSOLBitRate sets the serial speed while SOL is active: the volatile
// (parameter 6, the running setting) or the non-volatile one (5).
func SetSOLBitRate(ctx context.Context, c Commander, ch uint8, volatile bool, r BitRate) error {
	if r != BitRateSerial && r.Bps() == 0 {
		return fmt.Errorf("ipmilan: SOL bit rate code %d: not a rate SOL can select", uint8(r))
	}
	p := wire.SOLNVBitRate
	if volatile {
		p = wire.SOLVBitRate
	}
	return SetSOLParam(ctx, c, ch, p, r.Append(nil))
}

// SetSOLPort sets the UDP port of the SOL payload (parameter 8; read-only
// on many BMCs).
func SetSOLPort(ctx context.Context, c Commander, ch uint8, port uint16) error {
	if port == 0 {
		return fmt.Errorf("ipmilan: SOL port 0")
	}
	return SetSOLParam(ctx, c, ch, wire.SOLPayloadPort, wire.AppendPort(nil, port))
}
