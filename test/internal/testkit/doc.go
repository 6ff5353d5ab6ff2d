// Package testkit holds the helpers that solgate's two test packages,
// test (end-to-end and interop) and test/scale (scale and chaos), both
// need and cannot share otherwise: a test package cannot import another
// one's _test.go files. It builds cmd/solgate once per run, collects a
// child process's output safely, waits for a peer's TCP inputs, stops a
// peer or a daemon by PID, mounts a scratch tmpfs and finds peer programs
// that install into the sbin directories.
//
// It deliberately holds no policy of either package: whether a missing
// peer skips or fails a test, which messages a daemon's log must show,
// how much of an output a failure prints. Those stay with the callers and
// come in as parameters.
//
// Entry points: Binary (Path, Cleanup), LockedBuffer, Tail, FindTool,
// WaitTCP, StopProcess, KillAtCleanup, MountTmpfs, Nobody, OpenTo.
//
// Goroutine-safety: LockedBuffer and Binary.Path may be used from any
// goroutine; the other functions are called from the test's goroutine
// (they may call t.Fatal). It imports only the standard library, and only
// test packages import it.
package testkit
