// Package ipmilan is a native IPMI-over-LAN client: IPMI v2.0 RMCP+
// sessions (cipher suites 1, 2, 3 and 17 by default, 6-16 on request),
// IPMI v1.5 sessions for old BMCs (MD5, straight password), chassis and
// device commands, and, built on the same session, Serial-over-LAN.
//
// Entry points: Dial opens an authenticated session to one BMC; the
// Session methods (ChassisStatus, ChassisControl, SetBootDevice, DeviceID,
// SessionInfo, Do) run commands on it; Close ends it. Ping sends an ASF
// presence ping.
//
// Each Session owns one UDP socket with a fresh source port. One goroutine
// reads it and demultiplexes: IPMI responses go to the caller waiting on
// that request sequence number, and other payloads (SOL) to their
// handler, so unsolicited traffic never confuses a waiting command.
// Requests are retransmitted with a per-attempt timeout (Config.Timeout,
// Config.Retries) inside the caller's ctx, which bounds the whole call.
// Session methods are safe for concurrent use.
//
// Security defaults: cipher suite 0 and v1.5 authentication type none or
// straight password are refused unless Config.Insecure allows them; the
// BMC's RAKP2 proof is verified before the console's proof (RAKP3) is
// sent; integrity is checked before decryption; sequence-number windows
// drop replays; session IDs and nonces come from crypto/rand. Passwords
// are a Secret that never prints.
//
// BMC configuration: Commander is what a *Session and an *Inband (the
// local BMC through the Linux IPMI driver, OpenInband) have in common, and
// the configuration commands take one: Get/Set LAN Configuration
// Parameters (ReadLANConfig, SetLANAddr, ...), Get/Set Channel Access, Get
// Channel Info and Cipher Suites, the user commands (ListUsers,
// SetUserName, SetUserPassword, SetUserAccess, SetUserPayloadAccess, ...)
// and Get/Set SOL Configuration Parameters (ReadSOLConfig, SetSOLEnabled,
// ...). A command or parameter the BMC lacks is a *NotSupportedError
// (IsNotSupported); any other refusal a *CompletionError.
//
// Not here: ipmitool-style SDR, SEL, FRU or sensor commands, and IPMB
// bridging; solgate only needs power, console and BMC setup.
//
// The pure packet codecs live in ipmilan/internal/wire and the simulated
// BMCs used by tests and demos in ipmilan/bmcsim.
package ipmilan
