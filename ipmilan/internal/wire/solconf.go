package wire

import (
	"fmt"
	"strconv"
	"time"
)

// SOLParam is a SOL Configuration Parameter selector (spec table 26-5).
type SOLParam uint8

const (
	SOLSetInProgress SOLParam = 0
	SOLEnable        SOLParam = 1
	SOLAuthParam     SOLParam = 2 // force encryption/authentication, privilege
	SOLAccumulate    SOLParam = 3 // character accumulate interval and send threshold
	SOLRetryParam    SOLParam = 4
	SOLNVBitRate     SOLParam = 5 // non-volatile bit rate
	SOLVBitRate      SOLParam = 6 // volatile bit rate
	SOLPayloadChan   SOLParam = 7 // read-only
	SOLPayloadPort   SOLParam = 8
)

var solParamNames = [...]string{"set in progress", "SOL enable", "SOL authentication",
	"character accumulate interval and send threshold", "SOL retry", "non-volatile bit rate",
	"volatile bit rate", "SOL payload channel", "SOL payload port number"}

func (p SOLParam) String() string {
	if int(p) < len(solParamNames) {
		return fmt.Sprintf("%d (%s)", uint8(p), solParamNames[p])
	}
	return fmt.Sprintf("%d", uint8(p))
}

// ParseBool decodes a one-bit parameter (bit 0), such as SOL Enable.
func ParseBool(b []byte, field string) (bool, error) {
	if len(b) < 1 {
		return false, shortErr(field, 1, len(b))
	}
	return b[0]&1 != 0, nil
}

// AppendBool encodes a one-bit parameter.
func AppendBool(b []byte, v bool) []byte {
	if v {
		return append(b, 1)
	}
	return append(b, 0)
}

// SOLAuth is SOL parameter 2: whether SOL must be encrypted and
// authenticated, and the privilege needed to activate it.
type SOLAuth struct {
	ForceEncryption     bool // bit 7
	ForceAuthentication bool // bit 6
	Priv                Privilege
}

// Append encodes parameter 2 (1 byte).
func (a SOLAuth) Append(b []byte) []byte {
	v := uint8(a.Priv) & 0x0F
	if a.ForceEncryption {
		v |= 0x80
	}
	if a.ForceAuthentication {
		v |= 0x40
	}
	return append(b, v)
}

// ParseSOLAuth decodes parameter 2.
func ParseSOLAuth(b []byte) (SOLAuth, error) {
	if len(b) < 1 {
		return SOLAuth{}, shortErr("SOL authentication", 1, len(b))
	}
	return SOLAuth{ForceEncryption: b[0]&0x80 != 0, ForceAuthentication: b[0]&0x40 != 0, Priv: Privilege(b[0] & 0x0F)}, nil
}

// Units of the SOL timing parameters.
const (
	SOLAccumulateUnit = 5 * time.Millisecond
	SOLRetryUnit      = 10 * time.Millisecond
)

// SOLAccumulateParams is SOL parameter 3: the BMC sends buffered serial
// output when Threshold characters are waiting or the oldest has waited
// Interval (in 5 ms units, 1-255; 0 is reserved).
type SOLAccumulateParams struct {
	Interval  uint8
	Threshold uint8
}

// IntervalDuration is Interval as a duration.
func (p SOLAccumulateParams) IntervalDuration() time.Duration {
	return time.Duration(p.Interval) * SOLAccumulateUnit
}

// Append encodes parameter 3 (2 bytes).
func (p SOLAccumulateParams) Append(b []byte) []byte { return append(b, p.Interval, p.Threshold) }

// ParseSOLAccumulate decodes parameter 3.
func ParseSOLAccumulate(b []byte) (SOLAccumulateParams, error) {
	if len(b) < 2 {
		return SOLAccumulateParams{}, shortErr("SOL character accumulate interval and threshold", 2, len(b))
	}
	return SOLAccumulateParams{Interval: b[0], Threshold: b[1]}, nil
}

// SOLRetryParams is SOL parameter 4: how often the BMC resends an
// unacknowledged packet (Count, 0-7) and how long it waits between tries
// (Interval, in 10 ms units).
type SOLRetryParams struct {
	Count    uint8
	Interval uint8
}

// IntervalDuration is Interval as a duration.
func (p SOLRetryParams) IntervalDuration() time.Duration {
	return time.Duration(p.Interval) * SOLRetryUnit
}

// Append encodes parameter 4 (2 bytes).
func (p SOLRetryParams) Append(b []byte) []byte { return append(b, p.Count&0x07, p.Interval) }

// ParseSOLRetry decodes parameter 4.
func ParseSOLRetry(b []byte) (SOLRetryParams, error) {
	if len(b) < 2 {
		return SOLRetryParams{}, shortErr("SOL retry", 2, len(b))
	}
	return SOLRetryParams{Count: b[0] & 0x07, Interval: b[1]}, nil
}

// BitRate is SOL parameters 5 and 6 (bits 3:0): the serial port speed
// while SOL is active.
type BitRate uint8

const (
	BitRateSerial BitRate = 0 // use the setting of the IPMI-over-serial channel
	BitRate9600   BitRate = 6
	BitRate19200  BitRate = 7
	BitRate38400  BitRate = 8
	BitRate57600  BitRate = 9
	BitRate115200 BitRate = 10
)

var bitRateBps = map[BitRate]int{BitRate9600: 9600, BitRate19200: 19200, BitRate38400: 38400, BitRate57600: 57600, BitRate115200: 115200}

// Bps is the rate in bits per second; 0 for BitRateSerial and unknown
// codes.
func (r BitRate) Bps() int { return bitRateBps[r] }

// BitRateOf maps bits per second to the code; ok is false for rates SOL
// cannot select.
func BitRateOf(bps int) (BitRate, bool) {
	for r, v := range bitRateBps {
		if v == bps {
			return r, true
		}
	}
	return 0, false
}

func (r BitRate) String() string {
	if r == BitRateSerial {
		return "serial"
	}
	if v, ok := bitRateBps[r]; ok {
		return strconv.Itoa(v)
	}
	return fmt.Sprintf("BitRate(%d)", uint8(r))
}

// Append encodes parameter 5 or 6 (1 byte).
func (r BitRate) Append(b []byte) []byte { return append(b, uint8(r)&0x0F) }

// ParseBitRate decodes parameter 5 or 6.
func ParseBitRate(b []byte) (BitRate, error) {
	if len(b) < 1 {
		return 0, shortErr("SOL bit rate", 1, len(b))
	}
	return BitRate(b[0] & 0x0F), nil
}

// ParseChannelNumber decodes SOL parameter 7 (bits 3:0).
func ParseChannelNumber(b []byte) (uint8, error) {
	if len(b) < 1 {
		return 0, shortErr("SOL payload channel", 1, len(b))
	}
	return b[0] & 0x0F, nil
}
