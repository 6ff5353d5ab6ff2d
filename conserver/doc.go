// Package conserver is solgate's console manager: one SOL session per
// configured console kept connected all the time, every byte of output
// written to the log store and fanned out to the users attached, escape
// commands and power actions for them, boot markers, and the configuration
// applied live.
//
// # Entry points
//
//	m, err := conserver.NewManager(conserver.Options{Store: store, StateDir: dir, Logger: log})
//	res, err := m.Apply(ctx, cfg)   // first call starts every console; later calls diff and apply
//	m.Shutdown(ctx)                 // deactivate every payload, close sessions and log writers (bounded)
//	m.Config(); m.Console(name); m.Consoles(); m.Store()
//
//	c.Status()   // Name, BMC, State (Connecting, Up, Retrying, Waiting, Contested, Down, Stopped),
//	             // Since, Reason, NextTry, Owner/OwnerSince, UpSince, Reconnects, Writer, Attached,
//	             // LastOutput, BytesIn/Out, SOL (ipmilan.SOLStats), Log (logstore.WriterStats)
//	c.Who()      // AttachInfo: User, Via, Remote, Since, Idle, Mode, Lagging, Missed
//	a, err := c.Attach(conserver.Identity{User, Via, Remote}, conserver.AttachOptions{Mode, Force, Replay, Spy})
//	a.Read(p)    // what this user sees: console output, notices, escape-command answers
//	a.Write(p)   // what they type: escape commands, then the console (if a writes)
//	a.Break(); a.Mode(); a.Close(); a.Done(); a.Cause(); a.Identity(); a.Console()
//	c.Power(ctx, id, power.Cycle) // (result, error); c.Reopen(id); c.Force(id); c.Tail(n)
//	c.ReopenAdmin(id) // reopen for the host's administrator (solgate ctl): no access rule applies
//
// This is the API of BRIEF.md's plan with these refinements: Cause returns
// an error (one line for the user, wrapping ErrDetached, ErrTooSlow,
// ErrDenied or ErrClosed); Attach's banner (the console's state and how to
// get help) is the first thing Read returns, so a front end need not write
// one; AttachOptions.Mode is ModeAuto (the zero value: read-write if the
// user may write and nobody does), ModeRW or ModeRO, and Spy attaches
// read-only without telling the others; Force (the console's) takes the
// SOL payload from whoever holds it, as escape o (Reopen) does when the
// payload is held; taking write access from another user is
// AttachOptions.Force or escape f. Access is checked against the running
// configuration's Perms(user, console): Read to attach, replay and see
// power status, Write to type, force and reopen, Power for power actions.
//
// # A console
//
// Each console has one supervisor goroutine for its lifetime: it dials
// (through a manager-wide limiter of max_handshakes concurrent session
// setups), reads the SOL into the log writer and the attachments, turns
// SOL events (gaps, overruns, dropped input) into log events and notices,
// and waits out the backoff after a failure (reconnect_min doubling with
// jitter up to reconnect_max; reset after a session stayed up
// reconnect_stable). Failures retrying cannot fix soon (authentication,
// K_g, SOL disabled, unsupported) leave the console Down, retried at
// reconnect_max. A second goroutine (the input pump) runs only while typed
// input is queued; the ipmilan session adds its reader and SOL
// engine (and a keepalive timer) while connected. Removal and Shutdown cancel the console's
// context with the cause its users read; the supervisor then deactivates
// the payload, closes the session, detaches every attachment with that
// cause and closes the log writer. Tests check that no goroutine outlives
// its console.
//
// SOL ownership (steal = never, when-idle, always), no ping-pong
// (steal_limit takeovers within steal_window make a console Contested),
// and solgate's own stale payload reclaimed after a crash: see the
// comment of ownership in ownership.go. Boot markers: see boots.go.
//
// # Attachments
//
// Output reaches an attachment through its own bounded buffer
// (Options.AttachBuffer, default 256 KiB), filled by the supervisor with a
// copy and never waited on: a reader that falls behind misses output (it
// is counted, the user is told how much once they catch up) and is
// dropped once it missed Options.MaxMissed (default 4 MiB) in one go. A
// slow or stopped reader therefore never stalls the console, its log or
// the other attachments. The buffer exists only while it holds something.
// Typed input goes through a bounded per-console queue (16 KiB) to
// SOL.Write on the pump goroutine, never from Write itself; a typist who
// fills it waits up to 5 s, then is told what was discarded. Input while
// the console is not connected, or from a read-only attachment, is
// discarded with a notice (at most every 10 s).
//
// Replay (AttachOptions.Replay lines, escapes r and p) comes from the log
// store, unflushed output included. The attachment is registered, and its
// attach event written, under the console's output lock before the log is
// read, so no output falls between the replay and live output: what
// arrived meanwhile is in both, and the replay ends at the attachment's
// own attach event. Each attachment has a number unique in the manager,
// carried by its attach and detach events ("bob via ssh from
// 127.0.0.1:40000 (ro) #7"), so two attachments with the same user,
// address and mode never take each other's event for their own. Only if
// the event is not found (at least 16384 lines came after it) is the
// overlap cut by content.
//
// # Escape commands
//
// After the console's escape (config escape, default ^Ec): . detach, ?
// help, a attach read-write if free, f force read-write, s read-only, w
// who, i info, r / p replay 20 / 60 lines, l0 serial break, o reopen, and
// the power menu ! with c cycle, r reset, 1 on, 0 off, s soft, n PXE then
// reset, b BIOS setup then reset, d NMI, ? status; the destructive ones
// ask [y/N] (only y or Y confirms; the escape's first byte cancels and
// starts an escape). The escape typed twice sends it once. Answers go to
// the typist only, never to the console nor into its log text; the
// actions themselves (power, force, reopen, steal, attach, detach) are
// event lines in the console log and daemon log records. A changed escape
// applies to attached users at once.
//
// # Reload
//
// Apply builds every new or changed console's settings off to the side
// and checks them; any error changes nothing. Then: added consoles start,
// removed ones stop, ChangeConnection reconnects (and clears a contested
// state), ChangeCredentials alone (a new password or K_g) keeps a live
// session, checks them with a short-lived one and has a console waiting
// to retry try now, ChangeSteal alone keeps a live session and has a
// console waiting for the payload or contested apply it now, ChangeLog sets the writer's rotation and retention in place,
// ChangeEscape applies to attachments, and every attachment is re-checked
// against the new access rules (detached, or made read-only, with a
// one-line reason). An identical configuration is a no-op. [server]
// settings (backoff, limits, boot banners) apply without reconnecting.
//
// # Not here
//
// No network front end (the SSH gateway declares its own interface and is
// handed the Manager by cmd/solgate), no terminal emulation (screen
// repaint), no metrics exposition, no polling of chassis power state
// beyond what the keepalive does (every fourth keepalive asks for it
// instead of the payload's owner, so a node powered on from elsewhere gets
// a boot marker at no extra load on the BMCs).
//
// Manager, Console and Attachment methods are safe for concurrent use;
// an Attachment's Read and Write may run on different goroutines.
package conserver
