// Package bmcsim simulates baseboard management controllers: the server
// side of IPMI v1.5 and v2.0 (RMCP+) over LAN, with a chassis power state
// machine and boot options, for tests, benchmarks and demos. One process
// serves many BMCs, each on its own UDP socket.
//
// Entry points: New(Config) builds a BMC; (*BMC).Serve(ctx, conn) answers
// on a socket until ctx ends; StartFleet starts N BMCs on consecutive
// loopback ports or addresses and returns their addresses. Power,
// SetPower, Boot and Stats observe and drive the simulated host;
// SetFaults changes fault injection at run time. The serial console:
// HostWrite, Stream (with AppendStreamText to check what arrived),
// HostInput, PauseInput, DeactivateSOL and Reboot; Config.SOL configures
// it.
//
// What it speaks: ASF presence ping; Get Channel Authentication
// Capabilities (1.5 format, extended data); Get Channel Cipher Suites;
// IPMI v1.5 sessions with MD5 or straight password (auth type none only
// with AllowAuthNone; v1.5 only with Allow15); RMCP+ Open Session and
// RAKP 1-4 with cipher suites 1, 2, 3 and 17 by default (6-8, 11, 12, 15,
// 16 on request; 0 only with AllowCipherZero), K_g, name-only and
// name+privilege lookup; Set Session Privilege Level, Close Session, Get
// Session Info, Get Device ID, Get System GUID, Get Chassis Status,
// Chassis Control (needs OPERATOR), Chassis Identify, Set/Get System Boot
// Options (parameters 0, 3, 4, 5), and the SOL commands below. Everything
// else is answered 0xC1.
//
// Behaviour a client can rely on: session IDs and nonces come from
// crypto/rand; sessions start at USER privilege and are raised up to the
// user's limit; a full session table answers CC 0x81 / RMCP+ status 0x01;
// idle sessions end after SessionTimeout (half-open ones after at most
// 10 s); an unknown user gets RAKP2
// status 0x0D without an HMAC; a wrong RAKP3 code gets RAKP4 status 0x0F
// and the half-open session is discarded; a v1.5 Activate Session with a
// wrong auth code gets no answer (any answer would carry a crackable auth
// code). Sequence numbers are checked against a window (16 each way for
// RMCP+, 8 for v1.5) after the integrity check; duplicates are dropped.
// A retransmitted session-setup message (even with a new message tag, as
// FreeIPMI sends them) or v1.5 Activate Session gets the first answer
// again, and a retransmitted Chassis Control (same rqSeq and data within
// 5 s) is answered without acting twice. Cycle, reset and diagnostic interrupt
// on a powered-off host answer 0xD5; a soft shutdown powers off after
// SoftOffDelay, a cycle powers back on after CycleDelay. One-time boot
// flags are consumed by the next power-on or reset.
//
// Faults (drop, duplicate, reorder, delay, freeze, garbage, wrong
// answers) are decided by a generator seeded from Faults.Seed, so runs
// repeat. Quirks imitate known firmware bugs (ipmi_sim's Open Session
// privilege, Supermicro's long RAKP2 code, bad checksums, 1.5-only auth
// caps, missing cipher suite list) and attacks a client must resist: a
// RAKP2 proof that does not match the password (CorruptRAKP2; Stats.RAKP3s
// shows whether the client then sent its own proof), an IPMI 1.5
// activation that turns authentication off (PerMessageAuthOff), and an
// unauthenticated Activate Session answer (UnauthenticatedActivate).
//
// Serial-over-LAN (SOL 1.0 over RMCP+): Activate/Deactivate Payload, Get
// Payload Activation Status and Instance Info, Get Channel Payload
// Support/Version, Get/Set SOL Configuration Parameters 0-8. Config.SOL
// sets the instance capacity, payload sizes, an alternate SOL port
// (reported and served), retransmission, buffering and the character
// accumulate interval/threshold. A second Activate of an active instance
// answers 0x80; any session with the SOL privilege may deactivate it
// (stealing), and the old owner then gets a packet with the "SOL
// deactivating" status (unless SOLConfig.SilentTakeover: then it is not
// told, and only Get Payload Instance Info shows the new owner), as it
// does after DeactivateSOL or when SOL is disabled; the instance also ends
// with its session (close, timeout, Reboot). Output is stop-and-wait and
// resent with the same SOL sequence number; the rest of a partly
// acknowledged packet goes in a new packet, one retry interval later when
// nothing was accepted; a NACKed packet is resent after one interval. A
// console packet repeating the last sequence number is acknowledged again
// without being delivered twice, one up to 7 behind is ignored as a late
// copy; partial ACKs and NACKs follow the host's input FIFO, and input to
// a powered-off host is NACKed with "character transfer unavailable".
// Fault injection applies to SOL datagrams too.
//
// Behind the serial port is a simulated host (console.go): it prints a
// boot (BIOS screen with ANSI escapes, GRUB, kernel log, login prompt) on
// power on and reset, echoes typed input like a tty, and prints what
// HostWrite and Stream give it. Output printed while no console is
// active is kept in a small buffer (newest BufferSize bytes; dropped
// bytes are reported as an overrun). HostInput returns what was typed.
// Reboot makes the BMC drop every session and go silent for a while.
//
// BMC configuration (confstate.go, users.go, lanconf.go): a user table
// of MaxUsers IDs (ID 1 the null user) with Get/Set User Name, Set User
// Password (16 and 20 bytes, enable, disable, test), Get/Set User Access
// and Get/Set User Payload Access, all enforced at login and SOL
// activation; Get Channel Info, Get/Set Channel Access (the privilege
// limit is enforced); Get/Set LAN Configuration Parameters 0-7, 10-17 and
// 20-24, where parameter 24 enables and caps the cipher suites and
// parameter 2 the v1.5 authentication types (an address set there is
// reported but does not move the socket). ConfigState and SetConfigState
// read and plant that configuration; Config.StateFile keeps it across
// restarts, Config.Misconfigured starts with the problems `solgate bmc
// doctor` reports, and SystemInterface runs a command in-band, as the
// Linux IPMI driver would deliver it.
//
// Not here: SDR, SEL, FRU and sensors, IPv6
// fleets, the 60 s boot-flag expiry, SOL over IPMI v1.5 (there is none in
// the standard), serial modem-line semantics.
//
// Goroutines: Serve runs in the caller's goroutine and is the only reader
// of its socket (with SOLConfig.Port it also serves that port from a
// goroutine it waits for); delayed answers run on timers it stops before
// returning. SOL timing (resends, accumulate interval, boot text, owner
// timeouts) runs from one time.AfterFunc timer per BMC, armed only while
// something is due, so an idle BMC costs no goroutine. A Fleet owns one
// Serve goroutine per BMC and Close waits for all of them. All BMC methods
// are safe for concurrent use.
package bmcsim
