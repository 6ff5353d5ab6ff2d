package syslog

import (
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Format is a syslog message format.
type Format int

const (
	RFC5424 Format = iota // the default: structured data, UTC with milliseconds
	RFC3164               // legacy BSD syslog: no year, zone, MSGID or structured data
)

func (f Format) String() string {
	if f == RFC3164 {
		return "rfc3164"
	}
	return "rfc5424"
}

// ParseFormat parses "rfc5424" or "rfc3164" ("" is rfc5424).
func ParseFormat(s string) (Format, error) {
	switch s {
	case "", "rfc5424":
		return RFC5424, nil
	case "rfc3164":
		return RFC3164, nil
	}
	return 0, fmt.Errorf("syslog: format %q is not rfc5424 or rfc3164", s)
}

// Severity is a syslog severity, 0 (emerg) to 7 (debug).
type Severity int

const (
	Emerg Severity = iota
	Alert
	Crit
	Err
	Warning
	Notice
	Info
	Debug
)

var severityNames = [...]string{"emerg", "alert", "crit", "err", "warning", "notice", "info", "debug"}

func (s Severity) String() string {
	if s >= 0 && int(s) < len(severityNames) {
		return severityNames[s]
	}
	return "severity(" + strconv.Itoa(int(s)) + ")"
}

// ParseSeverity parses a severity name (emerg, alert, crit, err, warning,
// notice, info, debug; also error, warn, panic as aliases).
func ParseSeverity(s string) (Severity, error) {
	switch s {
	case "error":
		return Err, nil
	case "warn":
		return Warning, nil
	case "panic":
		return Emerg, nil
	}
	for i, n := range severityNames {
		if s == n {
			return Severity(i), nil
		}
	}
	return 0, fmt.Errorf("syslog: severity %q is not one of %s", s, strings.Join(severityNames[:], ", "))
}

// RFC limits (RFC 5424 section 6).
const (
	maxHostname = 255
	maxAppName  = 48
	maxMsgID    = 32
	maxSDName   = 32
)

// AppName is the APP-NAME (RFC 5424) or TAG (RFC 3164) of every message.
const AppName = "solgate"

// MsgIDConsole is the MSGID of console text; events carry their kind
// (attach, power, reconnect, gap, ...).
const MsgIDConsole = "console"

// DefaultSDID is the SD-ID of the structured data element. 32473 is the
// private enterprise number reserved for documentation (RFC 5612);
// solgate has none of its own, so a site may set its own.
const DefaultSDID = "solgate@32473"

// message is one syslog message before framing.
type message struct {
	time     time.Time
	hostname string
	msgID    string
	severity Severity
	seq      uint64
	part     int // 0: a whole line; 1, 2, ...: the parts of a split one
	text     []byte
	// cont marks a part that the next part continues; the text then ends
	// with contMark.
	cont bool
}

// Markers of a line split over several messages: a part that goes on
// ends with contMark, the part after it starts with contLead.
const (
	contMark = " [continued]"
	contLead = "[continued] "
)

// formatter turns messages into syslog wire text (without framing).
type formatter struct {
	format   Format
	facility int
	sdid     string // sanitised SD-ID
	max      int    // the most bytes a formatted message may have
}

// minMessage is the smallest message limit a formatter accepts: a header
// and room for text.
const minMessage = 480 // what every RFC 5424 receiver must accept

// maxMessage is the largest message limit: a stream connection's buffer
// holds one such message with its framing (transport.go).
const maxMessage = 64 << 10

func newFormatter(f Format, facility int, sdid string, max int) formatter {
	if sdid == "" {
		sdid = DefaultSDID
	}
	sdid = sanitizeSDName(sdid)
	return formatter{format: f, facility: facility & 0x1f % 24, sdid: sdid, max: max}
}

// appendHeader appends everything before the text.
func (f *formatter) appendHeader(dst []byte, m *message) []byte {
	pri := f.facility*8 + int(m.severity&7)
	dst = append(dst, '<')
	dst = strconv.AppendInt(dst, int64(pri), 10)
	dst = append(dst, '>')
	t := m.time.UTC()
	if f.format == RFC3164 {
		// Mmm dd hh:mm:ss, day padded with a space; the host's UTC, no year.
		dst = t.AppendFormat(dst, time.Stamp)
		dst = append(dst, ' ')
		dst = appendHeaderField(dst, m.hostname, maxHostname)
		dst = append(dst, ' ')
		dst = append(dst, AppName...)
		dst = append(dst, ':', ' ')
		if m.msgID != MsgIDConsole {
			// No MSGID in RFC 3164: events start with the log store's
			// own event marker.
			dst = append(dst, '!', ' ')
			dst = appendHeaderField(dst, m.msgID, maxMsgID)
			dst = append(dst, ' ')
		}
		return dst
	}
	dst = append(dst, '1', ' ')
	dst = t.AppendFormat(dst, "2006-01-02T15:04:05.000Z")
	dst = append(dst, ' ')
	dst = appendHeaderField(dst, m.hostname, maxHostname)
	dst = append(dst, ' ')
	dst = append(dst, AppName...)
	dst = append(dst, " - "...) // PROCID
	dst = appendHeaderField(dst, m.msgID, maxMsgID)
	dst = append(dst, " ["...)
	dst = append(dst, f.sdid...)
	dst = append(dst, " console=\""...)
	dst = appendParamValue(dst, m.hostname)
	dst = append(dst, "\" seq=\""...)
	dst = strconv.AppendUint(dst, m.seq, 10)
	if m.part > 0 {
		dst = append(dst, "\" part=\""...)
		dst = strconv.AppendInt(dst, int64(m.part), 10)
	}
	dst = append(dst, "\"] "...)
	return dst
}

// appendHeaderField appends s as a header field: printable US-ASCII
// (33-126), others replaced by '_', cut to max, "-" when empty.
func appendHeaderField(dst []byte, s string, max int) []byte {
	if s == "" {
		return append(dst, '-')
	}
	for i := 0; i < len(s) && i < max; i++ {
		c := s[i]
		if c < 33 || c > 126 {
			c = '_'
		}
		dst = append(dst, c)
	}
	return dst
}

// appendParamValue appends s as an SD PARAM-VALUE: '"', '\' and ']'
// escaped with a backslash, invalid UTF-8 replaced.
func appendParamValue(dst []byte, s string) []byte {
	s = strings.ToValidUTF8(s, "\uFFFD")
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '"', '\\', ']':
			dst = append(dst, '\\', c)
		default:
			dst = append(dst, c)
		}
	}
	return dst
}

// sanitizeSDName makes s a valid SD-NAME: printable US-ASCII except '=',
// SP, ']' and '"', at most 32 characters (the '@' of an enterprise ID is
// allowed).
func sanitizeSDName(s string) string {
	b := make([]byte, 0, min(len(s), maxSDName))
	for i := 0; i < len(s) && len(b) < maxSDName; i++ {
		c := s[i]
		if c < 33 || c > 126 || c == '=' || c == ']' || c == '"' {
			c = '_'
		}
		b = append(b, c)
	}
	if len(b) == 0 {
		return DefaultSDID
	}
	return string(b)
}

// appendText appends message text: valid UTF-8 without control
// characters (the caller has stripped escape sequences; what is left of
// C0, DEL and C1 becomes U+FFFD, TAB a space).
func appendText(dst, text []byte) []byte {
	for i := 0; i < len(text); {
		c := text[i]
		if c >= 0x20 && c < 0x7f {
			j := i + 1
			for j < len(text) && text[j] >= 0x20 && text[j] < 0x7f {
				j++
			}
			dst = append(dst, text[i:j]...)
			i = j
			continue
		}
		if c == '\t' {
			dst = append(dst, ' ')
			i++
			continue
		}
		if c < 0x80 {
			dst = append(dst, "\uFFFD"...)
			i++
			continue
		}
		r, n := utf8.DecodeRune(text[i:])
		if r == utf8.RuneError && n == 1 || r >= 0x80 && r <= 0x9f {
			dst = append(dst, "\uFFFD"...)
		} else {
			dst = append(dst, text[i:i+n]...)
		}
		i += n
	}
	return dst
}

// cutText returns how many bytes of the clean (valid UTF-8) text fit in n
// bytes, cut at a rune boundary.
func cutText(text []byte, n int) int {
	if n >= len(text) {
		return len(text)
	}
	if n <= 0 {
		return 0
	}
	for n > 0 && !utf8.RuneStart(text[n]) {
		n--
	}
	return n
}
