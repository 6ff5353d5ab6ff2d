// Package bmcconf reads, changes and checks a BMC's configuration: the
// engine behind `solgate bmc show`, `set`, `user` and `doctor`. It works
// over any ipmilan.Commander, so the same code configures a BMC over a
// LAN session and the local BMC in-band.
//
// Entry points: Read takes a Snapshot of everything (LAN parameters,
// channel access, cipher suites, users, SOL settings), recording what the
// BMC does not support instead of failing. Keys lists the settable
// KEY=VALUE names; Plan turns assignments (and user operations, see
// UserOp) into Changes against a Snapshot, each marked when it could cut
// off the session in use; Apply writes them, the risky ones last and only
// when allowed, and reads every change back. Diagnose checks a Snapshot
// for what stops SOL from working and what is insecure, each Problem with
// the set or user arguments that fix it.
//
// What it deliberately does not do: resolve host names, expand per-host
// values or print anything (the command line does), or hold connections
// (the caller's Commander does). Nothing here keeps state between calls;
// a Snapshot is a plain value owned by its caller and not safe for
// concurrent mutation.
package bmcconf
