package wire

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/md5"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/subtle"
	"encoding"
	"encoding/binary"
	"fmt"
	"hash"
	"io"
	"slices"
	"sync"
)

// PayloadType is the RMCP+ payload type (spec 13.27.3), bits 5:0.
type PayloadType uint8

const (
	PayloadIPMI            PayloadType = 0x00
	PayloadSOL             PayloadType = 0x01
	PayloadOEMExplicit     PayloadType = 0x02
	PayloadOpenSessionReq  PayloadType = 0x10
	PayloadOpenSessionResp PayloadType = 0x11
	PayloadRAKP1           PayloadType = 0x12
	PayloadRAKP2           PayloadType = 0x13
	PayloadRAKP3           PayloadType = 0x14
	PayloadRAKP4           PayloadType = 0x15
)

func (p PayloadType) String() string {
	switch p {
	case PayloadIPMI:
		return "IPMI"
	case PayloadSOL:
		return "SOL"
	case PayloadOEMExplicit:
		return "OEM"
	case PayloadOpenSessionReq:
		return "Open Session Request"
	case PayloadOpenSessionResp:
		return "Open Session Response"
	case PayloadRAKP1, PayloadRAKP2, PayloadRAKP3, PayloadRAKP4:
		return fmt.Sprintf("RAKP%d", p-PayloadRAKP1+1)
	}
	return fmt.Sprintf("PayloadType(%#02x)", uint8(p))
}

const (
	payloadEncrypted     = 0x80
	payloadAuthenticated = 0x40
	session20HeaderLen   = 12
	nextHeaderIPMI       = 0x07
	aesBlock             = 16
)

// Packet20 is an RMCP+ packet after the RMCP header (spec 13.6).
type Packet20 struct {
	Type          PayloadType
	Encrypted     bool
	Authenticated bool
	SessionID     uint32 // the receiver's session ID
	Seq           uint32
	OEMIANA       uint32 // only for PayloadOEMExplicit
	OEMPayloadID  uint16 // only for PayloadOEMExplicit
	Payload       []byte // as on the wire: ciphertext (IV first) when Encrypted
	// Trailer is the integrity trailer (pad, pad length, next header,
	// auth code). It is present iff SessionID != 0 and Authenticated.
	Trailer []byte
}

// HasTrailer reports whether the packet carries an integrity trailer.
func (p Packet20) HasTrailer() bool { return p.SessionID != 0 && p.Authenticated }

// appendHeader appends the header and payload (no trailer).
func (p Packet20) appendHeader(b []byte) []byte {
	return append(p.appendHeaderLen(b, len(p.Payload)), p.Payload...)
}

// appendHeaderLen appends the header for a payload of n bytes (not the
// payload).
func (p Packet20) appendHeaderLen(b []byte, n int) []byte {
	t := uint8(p.Type) & 0x3F
	if p.Encrypted {
		t |= payloadEncrypted
	}
	if p.Authenticated {
		t |= payloadAuthenticated
	}
	b = append(b, uint8(AuthRMCPPlus), t)
	if p.Type == PayloadOEMExplicit {
		b = binary.LittleEndian.AppendUint32(b, p.OEMIANA&0xFFFFFF)
		b = binary.LittleEndian.AppendUint16(b, p.OEMPayloadID)
	}
	b = binary.LittleEndian.AppendUint32(b, p.SessionID)
	b = binary.LittleEndian.AppendUint32(b, p.Seq)
	return binary.LittleEndian.AppendUint16(b, uint16(n))
}

// Append encodes the packet as is, trailer included when HasTrailer.
func (p Packet20) Append(b []byte) []byte {
	b = p.appendHeader(b)
	if p.HasTrailer() {
		b = append(b, p.Trailer...)
	}
	return b
}

// ParsePacket20 decodes an RMCP+ packet (b starts at the auth type byte).
// It does not check the trailer: Keys.Open does that.
func ParsePacket20(b []byte) (Packet20, error) {
	if len(b) < session20HeaderLen {
		return Packet20{}, shortErr("RMCP+ session header", session20HeaderLen, len(b))
	}
	if AuthType(b[0]) != AuthRMCPPlus {
		return Packet20{}, fmt.Errorf("wire: RMCP+ auth type: want 6, got %d", b[0])
	}
	p := Packet20{
		Type:          PayloadType(b[1] & 0x3F),
		Encrypted:     b[1]&payloadEncrypted != 0,
		Authenticated: b[1]&payloadAuthenticated != 0,
	}
	off := 2
	if p.Type == PayloadOEMExplicit {
		if len(b) < session20HeaderLen+6 {
			return Packet20{}, shortErr("RMCP+ OEM session header", session20HeaderLen+6, len(b))
		}
		p.OEMIANA = binary.LittleEndian.Uint32(b[2:]) & 0xFFFFFF
		p.OEMPayloadID = binary.LittleEndian.Uint16(b[6:])
		off = 8
	}
	p.SessionID = binary.LittleEndian.Uint32(b[off:])
	p.Seq = binary.LittleEndian.Uint32(b[off+4:])
	n := int(binary.LittleEndian.Uint16(b[off+8:]))
	off += 10
	if len(b)-off < n {
		return Packet20{}, fmt.Errorf("wire: RMCP+ payload length: header says %d, %d bytes left", n, len(b)-off)
	}
	p.Payload = b[off : off+n]
	if p.HasTrailer() {
		p.Trailer = b[off+n:]
	}
	return p, nil
}

// AuthAlg is an RMCP+ authentication (RAKP) algorithm.
type AuthAlg uint8

const (
	AuthRAKPNone       AuthAlg = 0x00
	AuthRAKPHMACSHA1   AuthAlg = 0x01
	AuthRAKPHMACMD5    AuthAlg = 0x02
	AuthRAKPHMACSHA256 AuthAlg = 0x03
)

func (a AuthAlg) String() string {
	return [...]string{"RAKP-none", "RAKP-HMAC-SHA1", "RAKP-HMAC-MD5", "RAKP-HMAC-SHA256"}[a&3] + suffix(a > 3, uint8(a))
}

// newHash returns the hash the algorithm's HMACs use; nil for RAKP-none.
func (a AuthAlg) newHash() func() hash.Hash {
	switch a {
	case AuthRAKPHMACSHA1:
		return sha1.New
	case AuthRAKPHMACMD5:
		return md5.New
	case AuthRAKPHMACSHA256:
		return sha256.New
	}
	return nil
}

// Valid reports whether ipmilan implements the algorithm.
func (a AuthAlg) Valid() bool { return a <= AuthRAKPHMACSHA256 }

// ICVLen is the length of the RAKP4 integrity check value.
func (a AuthAlg) ICVLen() int {
	switch a {
	case AuthRAKPHMACSHA1:
		return 12
	case AuthRAKPHMACMD5, AuthRAKPHMACSHA256:
		return 16
	}
	return 0
}

// CodeLen is the length of the RAKP2/RAKP3 key exchange auth codes.
func (a AuthAlg) CodeLen() int {
	if h := a.newHash(); h != nil {
		return h().Size()
	}
	return 0
}

// HMAC computes the algorithm's HMAC of the concatenated parts; nil for
// RAKP-none.
func (a AuthAlg) HMAC(key []byte, parts ...[]byte) []byte {
	h := a.newHash()
	if h == nil {
		return nil
	}
	m := hmac.New(h, key)
	for _, p := range parts {
		m.Write(p)
	}
	return m.Sum(nil)
}

// IntegrityAlg is an RMCP+ integrity algorithm.
type IntegrityAlg uint8

const (
	IntegrityNone          IntegrityAlg = 0x00
	IntegrityHMACSHA1_96   IntegrityAlg = 0x01
	IntegrityHMACMD5_128   IntegrityAlg = 0x02
	IntegrityMD5_128       IntegrityAlg = 0x03
	IntegrityHMACSHA256128 IntegrityAlg = 0x04
)

func (a IntegrityAlg) String() string {
	if a > 4 {
		return fmt.Sprintf("IntegrityAlg(%d)", uint8(a))
	}
	return [...]string{"none", "HMAC-SHA1-96", "HMAC-MD5-128", "MD5-128", "HMAC-SHA256-128"}[a]
}

// Valid reports whether ipmilan implements the algorithm.
func (a IntegrityAlg) Valid() bool { return a <= IntegrityHMACSHA256128 }

// CodeLen is the length of the AuthCode in the integrity trailer.
func (a IntegrityAlg) CodeLen() int {
	switch a {
	case IntegrityHMACSHA1_96:
		return 12
	case IntegrityHMACMD5_128, IntegrityMD5_128, IntegrityHMACSHA256128:
		return 16
	}
	return 0
}

// ConfAlg is an RMCP+ confidentiality algorithm.
type ConfAlg uint8

const (
	ConfNone      ConfAlg = 0x00
	ConfAESCBC128 ConfAlg = 0x01
	ConfXRC4_128  ConfAlg = 0x02
	ConfXRC4_40   ConfAlg = 0x03
)

func (a ConfAlg) String() string {
	if a > 3 {
		return fmt.Sprintf("ConfAlg(%d)", uint8(a))
	}
	return [...]string{"none", "AES-CBC-128", "xRC4-128", "xRC4-40"}[a]
}

// Valid reports whether ipmilan implements the algorithm (not xRC4).
func (a ConfAlg) Valid() bool { return a == ConfNone || a == ConfAESCBC128 }

func suffix(bad bool, v uint8) string {
	if bad {
		return fmt.Sprintf("(%d)", v)
	}
	return ""
}

// Keys protects and checks the packets of an established RMCP+ session.
// The zero value (all algorithms none) passes packets through unchanged.
type Keys struct {
	Integrity IntegrityAlg
	Conf      ConfAlg
	K1        []byte // integrity key (HMAC algorithms)
	K2        []byte // confidentiality key; AES uses K2[:16]
	Password  []byte // MD5-128 integrity is keyed by the password (20 bytes)
	Rand      io.Reader

	// The AES key schedule is computed once per session, not per packet;
	// the block is read-only afterwards and safe for concurrent use.
	blockOnce sync.Once
	block     cipher.Block
	blockErr  error
	// The HMAC key's two padded blocks are hashed once per session and
	// kept as the hash states after them (about 100 bytes each); each
	// packet's code starts from those states in a hash object taken from
	// a pool shared by all sessions. So a session holds no hash objects
	// of its own (it kept up to two keyed crypto/hmac objects, some 500
	// bytes each by their fields, one touched at every packet: with
	// thousands of sessions, cache misses; 10,000 idle consoles measured
	// 0.4 KiB less resident each without them), and no packet hashes the
	// key blocks again.
	padOnce  sync.Once
	padInner []byte
	padOuter []byte
}

func (k *Keys) aes() (cipher.Block, error) {
	k.blockOnce.Do(func() {
		if len(k.K2) < 16 {
			k.blockErr = fmt.Errorf("wire: AES key: want 16 bytes, got %d", len(k.K2))
			return
		}
		k.block, k.blockErr = aes.NewCipher(k.K2[:16])
	})
	return k.block, k.blockErr
}

// Seal encrypts plaintext if the session has confidentiality, builds the
// packet with p's header fields, and appends it with its integrity trailer
// to b. The Encrypted and Authenticated flags are set from the algorithms.
// Encryption happens in b itself: with room in b, Seal allocates nothing.
func (k *Keys) Seal(b []byte, p Packet20, plaintext []byte) ([]byte, error) {
	p.Encrypted = k.Conf != ConfNone && p.SessionID != 0
	p.Authenticated = k.Integrity != IntegrityNone && p.SessionID != 0
	start := len(b)
	if p.Encrypted {
		if k.Conf != ConfAESCBC128 {
			return b, fmt.Errorf("wire: confidentiality algorithm %v not supported", k.Conf)
		}
		blk, err := k.aes()
		if err != nil {
			return b, err
		}
		// IV, plaintext, pad 1..N, N: a multiple of the block size.
		pad := (aesBlock - (len(plaintext)+1)%aesBlock) % aesBlock
		n := aesBlock + len(plaintext) + pad + 1
		b = p.appendHeaderLen(b, n)
		off := len(b)
		b = slices.Grow(b, n)[:off+n]
		ct := b[off:]
		r := k.Rand
		if r == nil {
			r = rand.Reader
		}
		if _, err := io.ReadFull(r, ct[:aesBlock]); err != nil {
			return b[:start], fmt.Errorf("wire: AES IV: %w", err)
		}
		copy(ct[aesBlock:], plaintext)
		for i := 1; i <= pad; i++ {
			ct[aesBlock+len(plaintext)+i-1] = uint8(i)
		}
		ct[n-1] = uint8(pad)
		cbcEncrypt(blk, ct[:aesBlock], ct[aesBlock:])
	} else {
		p.Payload = plaintext
		b = p.appendHeader(b)
	}
	if !p.HasTrailer() {
		return b, nil
	}
	// Pad so that header + payload + pad + 2 is a multiple of 4.
	pad := (4 - (len(b)-start+2)%4) % 4
	for range pad {
		b = append(b, 0xFF)
	}
	b = append(b, uint8(pad), nextHeaderIPMI)
	return k.appendIntegrityCode(b, b[start:]), nil
}

// Open checks the integrity trailer of a parsed packet (raw is the packet
// from the auth type byte to its end, as ParsePacket20 saw it) and
// decrypts the payload. The integrity check comes first, so forged packets
// are never decrypted. A packet without the protection the session's
// algorithms require is rejected: no downgrade to clear or unsigned data.
func (k *Keys) Open(raw []byte, p Packet20) ([]byte, error) { return k.OpenTo(nil, raw, p) }

// OpenTo is Open that decrypts into dst's spare capacity (appending to
// dst[:0]), so a reader that reuses dst allocates nothing. A payload that
// was not encrypted is returned as it is in raw.
func (k *Keys) OpenTo(dst, raw []byte, p Packet20) ([]byte, error) {
	if k.Integrity != IntegrityNone && !p.Authenticated {
		return nil, fmt.Errorf("wire: RMCP+ packet not authenticated in an integrity-protected session")
	}
	if k.Conf != ConfNone && !p.Encrypted {
		return nil, fmt.Errorf("wire: RMCP+ %v payload not encrypted", p.Type)
	}
	if p.HasTrailer() {
		if k.Integrity == IntegrityNone {
			return nil, fmt.Errorf("wire: RMCP+ packet has an integrity trailer but the session has no integrity algorithm")
		}
		n := k.Integrity.CodeLen()
		t := p.Trailer
		if len(t) < n+2 {
			return nil, shortErr("RMCP+ integrity trailer", n+2, len(t))
		}
		if len(t) > n+2+3 {
			return nil, fmt.Errorf("wire: RMCP+ integrity trailer: want at most %d bytes, got %d", n+5, len(t))
		}
		padLen := int(t[len(t)-n-2])
		if t[len(t)-n-1] != nextHeaderIPMI {
			return nil, fmt.Errorf("wire: RMCP+ next header: want 0x07, got %#02x", t[len(t)-n-1])
		}
		if padLen != len(t)-n-2 {
			return nil, fmt.Errorf("wire: RMCP+ integrity pad length: field says %d, trailer has %d", padLen, len(t)-n-2)
		}
		for _, c := range t[:padLen] {
			if c != 0xFF {
				return nil, fmt.Errorf("wire: RMCP+ integrity pad byte %#02x, want 0xff", c)
			}
		}
		var code [32]byte
		if len(raw) < n || !hmac.Equal(k.appendIntegrityCode(code[:0], raw[:len(raw)-n]), raw[len(raw)-n:]) {
			return nil, ErrIntegrity
		}
	}
	if !p.Encrypted {
		return p.Payload, nil
	}
	if k.Conf != ConfAESCBC128 {
		return nil, fmt.Errorf("wire: RMCP+ encrypted payload but session confidentiality is %v", k.Conf)
	}
	return k.decrypt(dst[:0], p.Payload)
}

// ErrIntegrity reports an RMCP+ integrity check value that does not match.
var ErrIntegrity = fmt.Errorf("wire: RMCP+ integrity check value mismatch")

// macHash is a pooled hash object with room for its sum.
type macHash struct {
	h   hash.Hash
	sum [sha256.Size]byte
}

// macPools hold hash objects per integrity algorithm; they carry no key.
var macPools = [...]sync.Pool{
	IntegrityHMACSHA1_96:   {New: func() any { return &macHash{h: sha1.New()} }},
	IntegrityHMACMD5_128:   {New: func() any { return &macHash{h: md5.New()} }},
	IntegrityMD5_128:       {New: func() any { return &macHash{h: md5.New()} }},
	IntegrityHMACSHA256128: {New: func() any { return &macHash{h: sha256.New()} }},
}

// hmacPads computes the hash states after the HMAC key's inner and outer
// padded blocks (RFC 2104: the key, hashed first if longer than a block,
// zero-padded to the block size, XORed with 0x36 and 0x5c).
func (k *Keys) hmacPads() {
	m := macPools[k.Integrity].Get().(*macHash)
	defer macPools[k.Integrity].Put(m)
	h := m.h
	key := k.K1
	if len(key) > h.BlockSize() {
		h.Reset()
		h.Write(key)
		key = h.Sum(nil)
	}
	pad := make([]byte, h.BlockSize())
	state := func(x byte) []byte {
		clear(pad)
		copy(pad, key)
		for i := range pad {
			pad[i] ^= x
		}
		h.Reset()
		h.Write(pad)
		b, err := h.(encoding.BinaryMarshaler).MarshalBinary()
		if err != nil {
			panic("wire: " + err.Error()) // the standard library's hashes marshal
		}
		return b
	}
	k.padInner, k.padOuter = state(0x36), state(0x5c)
	clear(pad)
}

// appendIntegrityCode appends the AuthCode over covered to dst; covered
// may be a part of dst.
func (k *Keys) appendIntegrityCode(dst, covered []byte) []byte {
	if k.Integrity == IntegrityNone || !k.Integrity.Valid() {
		return dst
	}
	m := macPools[k.Integrity].Get().(*macHash)
	h := m.h
	if k.Integrity == IntegrityMD5_128 {
		var pw [20]byte
		copy(pw[:], k.Password)
		h.Reset()
		h.Write(pw[:])
		h.Write(covered)
		h.Write(pw[:])
		clear(pw[:])
	} else {
		k.padOnce.Do(k.hmacPads)
		u := h.(encoding.BinaryUnmarshaler)
		if err := u.UnmarshalBinary(k.padInner); err != nil {
			panic("wire: " + err.Error()) // a state this package marshaled
		}
		h.Write(covered)
		inner := h.Sum(m.sum[:0])
		if err := u.UnmarshalBinary(k.padOuter); err != nil {
			panic("wire: " + err.Error())
		}
		h.Write(inner)
	}
	dst = append(dst, h.Sum(m.sum[:0])[:k.Integrity.CodeLen()]...)
	macPools[k.Integrity].Put(m)
	return dst
}

// cbcEncrypt encrypts buf in place in CBC mode (crypto/cipher's CBC
// allocates per call; packets are a few blocks).
func cbcEncrypt(blk cipher.Block, iv, buf []byte) {
	prev := iv
	for i := 0; i < len(buf); i += aesBlock {
		b := buf[i : i+aesBlock]
		subtle.XORBytes(b, b, prev)
		blk.Encrypt(b, b)
		prev = b
	}
}

// cbcDecrypt decrypts src into dst (same length, not overlapping) in CBC
// mode.
func cbcDecrypt(blk cipher.Block, iv, dst, src []byte) {
	prev := iv
	for i := 0; i < len(src); i += aesBlock {
		blk.Decrypt(dst[i:i+aesBlock], src[i:i+aesBlock])
		subtle.XORBytes(dst[i:i+aesBlock], dst[i:i+aesBlock], prev)
		prev = src[i : i+aesBlock]
	}
}

func (k *Keys) decrypt(dst, ct []byte) ([]byte, error) {
	if len(ct) < 2*aesBlock || len(ct)%aesBlock != 0 {
		return nil, fmt.Errorf("wire: AES payload length %d: want a multiple of 16, at least 32", len(ct))
	}
	blk, err := k.aes()
	if err != nil {
		return nil, err
	}
	pt := slices.Grow(dst, len(ct)-aesBlock)[len(dst) : len(dst)+len(ct)-aesBlock]
	cbcDecrypt(blk, ct[:aesBlock], pt, ct[aesBlock:])
	pad := int(pt[len(pt)-1])
	if pad > 15 || pad+1 > len(pt) {
		return nil, fmt.Errorf("wire: AES pad length %d invalid for %d bytes", pad, len(pt))
	}
	for i := range pad {
		if pt[len(pt)-1-pad+i] != uint8(i+1) {
			return nil, fmt.Errorf("wire: AES pad byte %d: want %d, got %d", i, i+1, pt[len(pt)-1-pad+i])
		}
	}
	return pt[:len(pt)-1-pad], nil
}
