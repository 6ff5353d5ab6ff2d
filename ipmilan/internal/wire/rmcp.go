package wire

import (
	"encoding/binary"
	"fmt"
)

// RMCP constants (spec 13.1.3).
const (
	RMCPVersion1   = 0x06
	RMCPSeqNoACK   = 0xFF // "no RMCP ACK wanted": used for every IPMI packet
	RMCPHeaderSize = 4
)

// RMCPClass is the message class byte of the RMCP header.
type RMCPClass uint8

const (
	ClassASF  RMCPClass = 0x06
	ClassIPMI RMCPClass = 0x07
	ClassOEM  RMCPClass = 0x08
)

func (c RMCPClass) String() string {
	switch c & 0x1F {
	case ClassASF:
		return "ASF"
	case ClassIPMI:
		return "IPMI"
	case ClassOEM:
		return "OEM"
	}
	return fmt.Sprintf("RMCPClass(%#02x)", uint8(c))
}

// RMCPHeader is the 4-byte header in front of every packet on UDP port 623.
type RMCPHeader struct {
	Seq   uint8
	Class RMCPClass // bit 7 set means the packet is an RMCP ACK
}

// IsACK reports whether the packet is an RMCP acknowledgement.
func (h RMCPHeader) IsACK() bool { return h.Class&0x80 != 0 }

// Append appends the encoded header.
func (h RMCPHeader) Append(b []byte) []byte {
	return append(b, RMCPVersion1, 0, h.Seq, uint8(h.Class))
}

// ParseRMCP decodes the RMCP header and returns it with the rest of b.
func ParseRMCP(b []byte) (RMCPHeader, []byte, error) {
	if len(b) < RMCPHeaderSize {
		return RMCPHeader{}, nil, shortErr("RMCP header", RMCPHeaderSize, len(b))
	}
	if b[0] != RMCPVersion1 {
		return RMCPHeader{}, nil, fmt.Errorf("wire: RMCP version: want %#02x, got %#02x", RMCPVersion1, b[0])
	}
	return RMCPHeader{Seq: b[2], Class: RMCPClass(b[3])}, b[4:], nil
}

// ASF message types (DSP0136).
const (
	ASFIANA              = 4542
	ASFTypePing    uint8 = 0x80
	ASFTypePong    uint8 = 0x40
	asfHeaderLen         = 8
	asfPongDataLen       = 16
)

// ASFMessage is an ASF presence ping or pong (class ASF, big-endian).
type ASFMessage struct {
	Type uint8
	Tag  uint8
	// Pong only.
	OEMIANA       uint32
	OEMDefined    uint32
	Entities      uint8 // bit 7: IPMI supported; bits 3:0 ASF version
	Interactions  uint8 // bit 7: RMCP security extensions
	IPMISupported bool  // derived from Entities on parse
}

// Append appends the ASF message (without RMCP header).
func (m ASFMessage) Append(b []byte) []byte {
	b = binary.BigEndian.AppendUint32(b, ASFIANA)
	b = append(b, m.Type, m.Tag, 0)
	if m.Type != ASFTypePong {
		return append(b, 0)
	}
	b = append(b, asfPongDataLen)
	b = binary.BigEndian.AppendUint32(b, m.OEMIANA)
	b = binary.BigEndian.AppendUint32(b, m.OEMDefined)
	b = append(b, m.Entities, m.Interactions)
	return append(b, make([]byte, 6)...)
}

// ParseASF decodes an ASF ping or pong.
func ParseASF(b []byte) (ASFMessage, error) {
	if len(b) < asfHeaderLen {
		return ASFMessage{}, shortErr("ASF header", asfHeaderLen, len(b))
	}
	if iana := binary.BigEndian.Uint32(b); iana != ASFIANA {
		return ASFMessage{}, fmt.Errorf("wire: ASF IANA: want %d, got %d", ASFIANA, iana)
	}
	m := ASFMessage{Type: b[4], Tag: b[5]}
	n := int(b[7])
	if len(b)-asfHeaderLen < n {
		return ASFMessage{}, shortErr("ASF data", asfHeaderLen+n, len(b))
	}
	if m.Type == ASFTypePong {
		if n < asfPongDataLen {
			return ASFMessage{}, fmt.Errorf("wire: ASF pong data length: want %d, got %d", asfPongDataLen, n)
		}
		d := b[asfHeaderLen:]
		m.OEMIANA = binary.BigEndian.Uint32(d)
		m.OEMDefined = binary.BigEndian.Uint32(d[4:])
		m.Entities, m.Interactions = d[8], d[9]
		m.IPMISupported = m.Entities&0x80 != 0
	}
	return m, nil
}

func shortErr(what string, want, got int) error {
	return fmt.Errorf("wire: %s: want at least %d bytes, got %d", what, want, got)
}
