// Package ipmilan is a native IPMI-over-LAN client: IPMI v2.0 RMCP+
// sessions (cipher suites 17 and 3 chosen automatically; 1-3, 6-8, 11,
// 12, 15-17 by number, those without integrity or encryption only with
// Config.Insecure), IPMI v1.5 sessions for old BMCs (MD5; straight
// password and auth type none only with Insecure), chassis and device
// commands, and, built on the same session, Serial-over-LAN.
//
// Entry points: Dial opens an authenticated session to one BMC; the
// Session methods (ChassisStatus, ChassisControl, SetBootDevice,
// BootDevice, DeviceID, SessionInfo, Do) run commands on it; Close ends
// it. DialSOL (or Session.ActivateSOL) opens a console: SOL.Read,
// ReadContext, Write, Break, Events, Stats, Done, Err and Close. Ping
// sends an ASF presence ping.
//
// Each Session owns one UDP socket with a fresh source port. One reader
// takes its datagrams and demultiplexes: IPMI responses go to the caller
// waiting on that request sequence number, and SOL packets to the
// console's engine, which handles them on the reader's goroutine
// (buffering, acknowledgement), so unsolicited traffic never confuses a
// waiting command and console output costs no hand-off. On Linux the
// reader is one of a few pollers shared by all sessions (an epoll instance
// each, up to 512 sessions per poller and GOMAXPROCS pollers, started as
// sessions need them, ended with their last session): a packet then costs
// no goroutine wake-up of its own. Elsewhere, and for sessions on an
// injected net.PacketConn, each session has a reader goroutine. Requests
// are retransmitted with a per-attempt timeout
// (Config.Timeout, Config.Retries) inside the caller's ctx, which bounds
// the whole call. A keepalive sends a command when no IPMI answer came for
// Config.KeepAlive (for a console, Get Payload Instance Info, which also
// tells whether another session took the payload) and ends the session
// when the BMC has been silent for Config.DeadAfter. It is a timer, not a
// goroutine: armed for when the next one is due, on a grid shared by all
// sessions of the process (KeepAlive/16, at most a second), so thousands
// of idle sessions cost a few wakeups a second. A socket error other than
// a timeout or an ICMP report ends the session too. Done and Err say when
// and why a session or console ended.
//
// A panic in any goroutine that handles the BMC's packets (the reader,
// the keepalive, a console's engine) is recovered: it ends that session
// with an error naming the panic and where it happened, and leaves the
// process and every other session running.
//
// Security: automatic cipher suite choice tries 17, then 3 (both with
// integrity and AES); a named suite without integrity or encryption, suite
// 0, IPMI 1.5 auth type none and straight passwords fail with ErrInsecure
// unless Config.Insecure allows them, and each such session logs a
// warning. An IPMI 1.5 BMC that turns per-message authentication off in
// its Activate Session answer is refused the same way, and an activation
// answer that is not authenticated as asked is ignored. The BMC's RAKP2
// proof is verified before the console's own proof (RAKP3) is sent;
// integrity is checked before decryption; receive windows (32 each way)
// drop replays and refuse numbers far ahead; session IDs and nonces come
// from crypto/rand. Passwords and keys are a Secret, which prints as
// [redacted] with every fmt verb, in JSON and in slog records; sessions
// and consoles print as their BMC address.
//
// The SOL engine acknowledges output only once it is in the read buffer
// (bounded by SOLOptions.BufferSize), pauses the BMC when that is full
// at a cost of about two packets each way per half second, delivers each
// character once however the BMC resends, retransmits typed input, and
// reports gaps, overruns, theft and deactivation as events; its rules are
// documented on solEngine in solengine.go.
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
// Not here: ipmitool-style SDR, SEL, FRU or sensor commands, IPMB
// bridging, and sharing one socket among sessions; solgate only needs
// power, console and BMC setup.
//
// A reader's handling of a packet must not block (other sessions share
// its poller): a SOL console's SetOutput function in particular, and
// socket writes, which on Linux drop a datagram the send buffer has no
// room for instead of waiting, as a lossy network would.
//
// Goroutine-safety: Session methods are safe for concurrent use. A SOL
// console takes Read (or ReadContext) from one goroutine and Write from
// one, while a third drains Events; Break, Stats and Close may come from
// any.
//
// The pure packet codecs live in ipmilan/internal/wire and the simulated
// BMCs used by tests and demos in ipmilan/bmcsim.
package ipmilan
