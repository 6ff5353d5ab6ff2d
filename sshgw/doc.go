// Package sshgw is solgate's SSH gateway: the stock OpenSSH client is the
// console client. `ssh -p 2222 node42@consoles` attaches to console
// node42; `ssh node42@consoles power cycle` runs a command; `ssh
// list@consoles` lists the consoles the person may use.
//
// The SSH user name names the console, never the person: the person is
// whoever the public key or certificate identifies (Backend.Identify).
// Only public-key authentication is offered. Decisions are taken in the
// session from the key that authenticated (carried in the connection's
// Permissions by the verified-key callback), never from side effects of
// the callbacks x/crypto runs for every offered key.
//
// The package is built on github.com/gliderlabs/ssh for listening, the
// handshake and host keys, with its own "session" channel handler:
// gliderlabs' handler rewrites LF to CRLF on PTY sessions, which would
// corrupt console output, and can block its request loop on a window
// change. Console bytes pass unchanged both ways; a full-screen console
// (BIOS setup) is repainted on attach from a terminal emulator
// (hinshun/vt10x) made for that moment from the console's recent output.
//
// What it deliberately does not do: it knows nothing of IPMI, the
// configuration file or the log format. It imports nothing of solgate's:
// it declares Backend, Console and Attachment, and the daemon adapts its
// console manager to them. Escape commands (^Ec...) are the manager's:
// the gateway hands it every typed byte. It forwards no agent, no ports
// and no X11, and runs no shell.
//
// Entry points: New(Options) -> *Server; Server.Serve(listener);
// Server.Shutdown(ctx) or Close; LoadHostKey for a persistent host key;
// SplitCommand and ParseRequest for exec command lines.
//
// Lifetimes nest as scopes, each with a context ended with a cause: the
// server, a TCP connection (handshake timeout, keepalives, idle timeout),
// an SSH session, its attachment. The cause is the one line the person
// reads when the scope ends. When the backend reports a configuration
// change, every live session is re-checked and those whose key or console
// access went away are ended. Server's methods are safe for concurrent
// use.
package sshgw
