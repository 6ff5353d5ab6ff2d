// Package syslog ships console lines from the log store to syslog
// receivers: every complete console line, escape sequences stripped, as
// one message (RFC 5424 or RFC 3164), over UDP, TCP (octet counting), TLS
// (RFC 5425), RELP or a local socket.
//
// # Entry points
//
//	sh := syslog.NewShipper(store, stateDir, logger)
//	err := sh.Apply([]syslog.Target{{Network: "tcp", Address: "10.0.0.1:514", Facility: 16}})
//	stats := sh.Stats()   // per target: sent, bytes, backlog, reconnects, last error
//	err = sh.Close()      // waits briefly for in-flight messages, saves positions
//
// # How it ships
//
// Each target has one goroutine that reads the consoles' logs with a
// logstore.Cursor each, from the position it saved, and one connection.
// It hears of new frames through logstore.Store.Changes (so a line is
// shipped within milliseconds of its frame reaching the disk, which the
// store does at least every second), and looks at every console every 30
// seconds anyway. Consoles take turns, 512 records at a time, so one with
// a big backlog does not hold up the others. A console never waits for
// syslog: the shipper only reads files.
//
// A console's position advances only once the receiver has taken its
// lines: for udp and a unix datagram socket once sent; for tcp and tls
// once the peer's TCP acknowledged the bytes (TCP_INFO bytes_acked); for
// a unix stream socket once the peer read them (SIOCOUTQ); for relp once
// the receiver answered "200 OK". When the
// connection breaks, whatever it had not taken is read again from the
// log and resent after a reconnect (backoff from 100 ms doubling to 30
// s). A TCP receiver that closes with bytes its kernel acknowledged but it
// never read resets the connection, and those bytes are gone (rsyslog
// does this when stopped); so when a tcp or tls connection ends other than
// by a clean close, the lines taken in its last 2 s, or within twice the
// receiver's largest window of its end, are sent again too: a receiver
// restart may repeat a few lines (same seq) but loses none. Positions are saved (a file per target in the state directory,
// written atomically) at most every second, and whenever Window messages
// (default 10,000) are in flight or taken but not yet saved: the shipper
// sends no more until they are saved. A console's position stays at the
// start of a line that has not ended yet, so the parts of such a line
// already sent are sent again with the rest of it after a crash. So after
// a crash (kill -9), beyond those parts:
//
//   - udp: lines sent while the receiver was down or dropped by the
//     network are lost; up to Window lines may be sent twice;
//   - tcp, tls: up to Window lines may be sent twice; lines the
//     receiver's kernel acknowledged but the receiver never processed
//     (it crashed) are lost;
//   - relp: nothing the receiver acknowledged is lost; up to Window lines
//     may be sent twice;
//   - unix: as udp for a datagram socket, as tcp for a stream one.
//
// Each message's structured data carries the console and a sequence
// number (RFC 5424 only): per target and console, 1, 2, 3, ... in log
// order, saved with the position, so a resent message carries the number
// it had the first time. A receiver sees a gap as a missing number and a
// duplicate as a repeated one; a new target (or a lost positions file)
// starts again at 1.
//
// # Messages
//
// HOSTNAME is the console name, APP-NAME "solgate", MSGID "console" for
// console text and the event kind for events (attach, power, reconnect,
// gap, ...), TIMESTAMP the record's time (UTC, milliseconds), structured
// data [solgate@32473 console="node42" seq="17"] (plus part="N" for the
// parts of a split line). Text is valid UTF-8 (invalid bytes and control
// characters become U+FFFD, TAB a space), with CR and BS applied the way a
// terminal shows the line. A line longer than the message limit is split
// into parts, each but the last ending with " [continued]" and each but
// the first starting with "[continued] ". A line without an end is held
// up to 16 KiB, then shipped in such parts. Lines that are empty once
// stripped are not shipped. An event record in the middle of a line is
// shipped as its own message and the line goes on as one message (a gap
// event too: the bytes around it are what the console showed). Records
// the shipper cannot read (deleted by retention before it got to them,
// damaged) become a gap event, and the console goes on after them (a
// damaged live frame is reported again only when a restart or reconnect
// resumes right where it starts).
//
// RFC 3164 messages are <PRI>Mmm dd hh:mm:ss HOST solgate: TEXT, in UTC,
// without milliseconds, structured data or MSGID; events read
// "! KIND TEXT", as the log store writes them.
//
// # Not done here
//
// No RELP over TLS, no message queue on disk (the log store is the
// queue), no name resolution beyond what the Go resolver does at each
// dial, no backlog line count for consoles not yet read (BacklogLines
// counts only what is in flight).
//
// A Shipper is safe for concurrent use.
package syslog
